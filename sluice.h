/* sluice: tasks, bounded channels, contexts and HTTP on libevent.
 * The umbrella header: every public header, core, context and net:
 *
 *     #include <sluice/sluice.h>    // cc ... $(pkg-config --cflags --libs sluice)
 *
 * The module headers may also be included one by one
 * (<sluice/sl_chan.h>). */
#ifndef SLUICE_H
#define SLUICE_H
#include "sl_time.h"
#include "sl_runtime.h"
#include "sl_task.h"
#include "sl_chan.h"
#include "sl_lock.h"
#include "sl_diag.h"
#include "sl_trace.h"
#include "sl_offload.h"
#include "sl_ctx.h"
#include "sl_wire.h"
#include "sl_tracestate.h"
#include "sl_router.h"
#include "sl_http.h"
#include "sl_client.h"
#include "sl_tracer.h"
#include "sl_metrics.h"
#include "sl_log.h"
#endif
