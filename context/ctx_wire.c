/* ctx_wire.c: a context's budget and trace, to and from the wire formats. */
#include <errno.h>
#include <string.h>
#include "ctx_internal.h"
#include "sl_tracestate.h"
#include "sl_wire.h"

/* ---- the budget ------------------------------------------------------------- */

int sl_ctx_grpc_timeout(const sl_ctx *ctx, uint64_t margin_ms, char *buf)
{
    if (!ctx || !buf)
        return -EINVAL;
    if (sl__ctx_foreign(ctx, "sl_ctx_grpc_timeout"))
        return -EXDEV;
    buf[0] = '\0';
    if (ctx->err)
        return ctx->err;
    if (!ctx->deadline)
        return 0;
    uint64_t now = sl_now_ns();
    uint64_t left = ctx->deadline > now ? ctx->deadline - now : 0;
    uint64_t margin = margin_ms > UINT64_MAX / SL_NS_PER_MS ? UINT64_MAX : margin_ms * SL_NS_PER_MS;
    if (left < SL_NS_PER_MS || left - SL_NS_PER_MS < margin)
        return -ETIMEDOUT;   /* less than a millisecond would be left: do not send */
    return sl_grpc_timeout_format(left - margin, buf);
}

int sl_ctx_with_grpc_timeout(sl_ctx **out, sl_ctx *parent, const char *s, size_t len,
                             uint64_t max_ms)
{
    uint64_t cap = max_ms > UINT64_MAX / SL_NS_PER_MS ? UINT64_MAX : max_ms * SL_NS_PER_MS;
    uint64_t ns = cap;
    bool callers = false;
    if (s) {
        if (sl_grpc_timeout_parse(s, len, &ns) < 0)
            return -EINVAL;
        callers = !cap || ns < cap;
        if (!callers)
            ns = cap;
    }
    if (!s && !max_ms)
        return sl_ctx_with_cancel(out, parent);
    uint64_t now = sl_now_ns();
    int rc = sl_ctx_with_deadline(out, parent, ns > UINT64_MAX - now ? UINT64_MAX : now + ns);
    if (rc == 0 && callers)
        (void)sl_ctx_deadline_is_callers(*out);   /* -EINVAL: the parent's deadline is earlier, and stays the cause */
    return rc;
}

/* ---- the trace ---------------------------------------------------------------- */

static const char trace_key;   /* its address is the key */

/* The value under trace_key: the traceparent first (sl_ctx_trace returns
 * its address), then the tracestate received with it, if any. */
typedef struct trace_val {
    sl_traceparent tp;
    uint16_t ts_len;
    char ts[];
} trace_val;

static int with_trace(sl_ctx **out, sl_ctx *parent, int kind, uint64_t deadline,
                      const sl_traceparent *tp, const char *ts, size_t ts_len)
{
    if (!tp || ts_len > SL_TRACESTATE_MAX || (ts_len && !ts))
        return -EINVAL;
    for (size_t i = 0; i < ts_len; i++)   /* it goes into headers: no CR, LF or other control */
        if ((ts[i] < 0x20 && ts[i] != '\t') || ts[i] == 0x7f)
            return -EINVAL;
    int rc = sl__ctx_make(out, parent, kind, deadline, sizeof(trace_val) + ts_len + 1);
    if (rc < 0)
        return rc;
    trace_val *v = (trace_val *)(void *)(*out)->tail;
    v->tp = *tp;
    v->ts_len = (uint16_t)ts_len;
    if (ts_len)
        memcpy(v->ts, ts, ts_len);
    v->ts[ts_len] = '\0';
    (*out)->key = &trace_key;
    (*out)->value = v;
    return 0;
}

int sl_ctx_with_trace(sl_ctx **out, sl_ctx *parent, const sl_traceparent *tp)
{
    return with_trace(out, parent, K_VALUE, 0, tp, NULL, 0);
}

int sl_ctx_with_trace_deadline(sl_ctx **out, sl_ctx *parent, const sl_traceparent *tp,
                               uint64_t deadline)
{
    return with_trace(out, parent, K_NODE, deadline, tp, NULL, 0);
}

int sl_ctx_with_trace_state_deadline(sl_ctx **out, sl_ctx *parent, const sl_traceparent *tp,
                                     const char *ts, size_t len, uint64_t deadline)
{
    return with_trace(out, parent, K_NODE, deadline, tp, ts, len);
}

const char *sl_ctx_tracestate(const sl_ctx *ctx, size_t *len)
{
    const trace_val *v = sl_ctx_value(ctx, &trace_key);
    if (!v || !v->ts_len)
        return NULL;
    if (len)
        *len = v->ts_len;
    return v->ts;
}

const sl_traceparent *sl_ctx_trace(const sl_ctx *ctx)
{
    return sl_ctx_value(ctx, &trace_key);
}

uint64_t sl_ctx_trace_tag(const sl_ctx *ctx)
{
    const sl_traceparent *tp = sl_ctx_trace(ctx);
    return tp ? sl_traceparent_tag(tp) : 0;
}

void sl_ctx_outgoing_trace(const sl_ctx *ctx, sl_traceparent *out)
{
    const sl_traceparent *tp = sl_ctx_trace(ctx);
    if (tp)
        sl_traceparent_child(tp, out);
    else
        sl_traceparent_new(out);
}
