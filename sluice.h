/* sluice: tasks, bounded channels, contexts and HTTP on libevent.
 * The umbrella header: include this, or the module headers one by one. */
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
#endif
