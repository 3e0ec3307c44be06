/* after.c: after-funcs, run once when a context ends.
 *
 * An armed after-func sits in its context's list (in the order they were
 * armed) and holds a reference to it. When the context ends, sl__ctx_end
 * calls sl__ctx_fire_afters, which pops them one at a time: an after-func
 * may stop another one of the same context, and that one is then simply no
 * longer in the list. */
#include <errno.h>
#include "ctx_internal.h"

enum {
    A_IDLE, A_ARMED, A_RAN, A_STOPPED,
    A_NEVER,   /* armed on a context that cannot end: not listed, holds nothing */
};

static void unlink_after(sl_ctx *c, sl_after *a)
{
    SL_LIST_REMOVE(&c->afters, a, link_);
}

int sl_ctx_after(sl_ctx *ctx, sl_after *a, void (*fn)(sl_ctx *, void *), void *arg)
{
    if (!ctx || !a || !fn)
        return -EINVAL;
    if (sl__ctx_foreign(ctx, "sl_ctx_after"))
        return -EXDEV;
    *a = (sl_after){ .ctx_ = ctx, .fn_ = fn, .arg_ = arg, .state_ = A_ARMED };
    if (ctx->err) {
        a->state_ = A_RAN;
        fn(ctx, arg);
        return 0;
    }
    if (!sl__ctx_can_end(ctx)) {
        /* it would wait forever: hold nothing, so the context is not kept
         * alive for nothing (and the shared background is not written) */
        a->state_ = A_NEVER;
        return 0;
    }
    ctx->refs++;
    SL_LIST_PUSH_BACK(&ctx->afters, a, link_);
    return 0;
}

int sl_after_stop(sl_after *a)
{
    if (!a)
        return -EINVAL;
    if (a->state_ == A_RAN)
        return -EALREADY;
    if (a->state_ == A_NEVER) {   /* its context may be gone: do not look at it */
        a->state_ = A_STOPPED;
        return 0;
    }
    if (a->state_ != A_ARMED)
        return -ENOENT;
    sl_ctx *c = a->ctx_;
    if (sl__ctx_foreign(c, "sl_after_stop"))
        return -EXDEV;
    a->state_ = A_STOPPED;
    unlink_after(c, a);
    sl_ctx_unref(c);
    return 0;
}

void sl__ctx_fire_afters(sl_ctx *c)
{
    sl_after *a;
    while ((a = c->afters.head)) {
        unlink_after(c, a);
        a->state_ = A_RAN;
        a->fn_(c, a->arg_);
        sl_ctx_unref(c);   /* the after-func's reference; the caller holds one more */
    }
}
