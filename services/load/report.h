/* report.h: what a run prints: a JSON object for machines, a summary for
 * people, and a self-contained HTML page with charts. */
#ifndef LOAD_REPORT_H
#define LOAD_REPORT_H
#include <jansson.h>
#include <stdio.h>
#include "opts.h"
#include "stats.h"

/* The JSON object of the output contract (docs/load.md). NULL on ENOMEM. */
json_t *report_json(const load_opts *o, const load_result *r);

/* The human summary. */
void report_text(FILE *f, const load_opts *o, const load_result *r);

/* Writes the HTML report to `path`. Returns 0 or -errno. */
int report_html(const char *path, const load_opts *o, const load_result *r);

#endif
