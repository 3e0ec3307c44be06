/* ctx_wire.c: a context's budget and trace, to and from the wire formats. */
#include <errno.h>
#include <string.h>
#include "ctx_internal.h"
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
    if (s) {
        if (sl_grpc_timeout_parse(s, len, &ns) < 0)
            return -EINVAL;
        if (cap && cap < ns)
            ns = cap;
    }
    if (!s && !max_ms)
        return sl_ctx_with_cancel(out, parent);
    uint64_t now = sl_now_ns();
    return sl_ctx_with_deadline(out, parent, ns > UINT64_MAX - now ? UINT64_MAX : now + ns);
}

/* ---- the trace ---------------------------------------------------------------- */

static const char trace_key;   /* its address is the key */

static int with_trace(sl_ctx **out, sl_ctx *parent, int kind, uint64_t deadline,
                      const sl_traceparent *tp)
{
    if (!tp)
        return -EINVAL;
    int rc = sl__ctx_make(out, parent, kind, deadline, sizeof *tp);
    if (rc < 0)
        return rc;
    sl_traceparent *copy = (sl_traceparent *)(void *)(*out)->tail;
    *copy = *tp;
    (*out)->key = &trace_key;
    (*out)->value = copy;
    return 0;
}

int sl_ctx_with_trace(sl_ctx **out, sl_ctx *parent, const sl_traceparent *tp)
{
    return with_trace(out, parent, K_VALUE, 0, tp);
}

int sl_ctx_with_trace_deadline(sl_ctx **out, sl_ctx *parent, const sl_traceparent *tp,
                               uint64_t deadline)
{
    return with_trace(out, parent, K_NODE, deadline, tp);
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
