/* sl_trace.h: a timeline of what the reactors did, for Perfetto.
 *
 * While tracing is on, every reactor records into a bounded ring of its own
 * (no lock, no allocation on the hot path; when the ring is full the oldest
 * events go and are counted): one slice per task step, instants for parking
 * on a channel and waking from it, cancellations (with their error), deadline
 * expiries and deadlock reports, plus whatever the layers above add (HTTP
 * requests as async slices keyed by trace-id, load shedding). The file is
 * the Chrome Trace Event JSON format that ui.perfetto.dev and
 * chrome://tracing open: one track per reactor ("reactor 0", ...). */
#ifndef SL_TRACE_H
#define SL_TRACE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sl_runtime.h"

/* Starts recording on every reactor of `rt`, keeping at most `events` events
 * per reactor (0: 65536). The file is created now, so a bad path fails here,
 * and written once recording has stopped: by sl_trace_stop() when the
 * runtime is not running, else when sl_runtime_run() returns. Returns 0,
 * -EALREADY if tracing is on, -ENOMEM, or -errno from opening `path`. */
int sl_trace_start(sl_runtime *rt, const char *path, size_t events);

/* Stops recording (each reactor stops at its next callback) and writes the
 * file if the runtime is not running. Returns 0, -EINVAL if tracing is off,
 * or -errno from writing. */
int sl_trace_stop(sl_runtime *rt);

/* Adds an instant event to `r`'s track (`cat` is a static string; `name`
 * is copied, up to 39 bytes, and `detail` (may be NULL) up to 47). No-op when
 * tracing is off. Call on r's thread. */
void sl_trace_instant(sl_reactor *r, const char *cat, const char *name, const char *detail);

/* Begins ('b') or ends ('e') an async slice named `name` with id `id` (for
 * example an HTTP request keyed by its trace-id) on r's track. */
void sl_trace_async(sl_reactor *r, char phase, const char *cat, const char *name, uint64_t id,
                    const char *detail);

/* Whether `r` records now: to skip working out an event's arguments when
 * it does not. Call on r's thread. */
bool sl_trace_on(const sl_reactor *r);

/* Events dropped on `r` because its ring was full. */
uint64_t sl_trace_dropped(const sl_reactor *r);

#endif
