/* load.h: running a load test (the program's core, callable from tests). */
#ifndef LOAD_LOAD_H
#define LOAD_LOAD_H
#include <stddef.h>
#include "opts.h"
#include "stats.h"

/* Runs the load described by `o` and merges what was measured into *res
 * (load_result_free it). Returns 0, or -errno when the run could not be
 * made (err says why). */
int load_run(const load_opts *o, load_result *res, char *err, size_t errlen);

#endif
