/* bind.c: tasks bound to contexts (sl_go).
 *
 * A binding sits in its context's list of tasks and in the task's extension
 * slot; the slot's end hook takes it out (O(1)) and gives back the task's
 * reference to the context when the task ends. The first task bound to a
 * context uses the binding inside the context (one task per context is
 * the usual case: a request's handler).
 *
 * The slot's deadline hook orders two timers due at the same instant: a
 * bound task's (core's heap) and its context's (a libevent event): when
 * the task's runs first, the context ends there and then, so a task woken
 * by its deadline always finds its context ended with the deadline's cause
 * (tests/test_ctx.c test_deadline_task_timer_first). */
#include <errno.h>
#include "ctx_internal.h"

void sl__ctx_cancel_tasks(sl_ctx *c, int err)
{
    for (sl_binding *b = c->tasks.head; b; b = b->link.next)
        sl_task_cancel(b->task, err);   /* -EALREADY if someone else was first: fine */
}

static void unbind(sl_task *t, void *ext)
{
    sl_binding *b = ext;
    sl_ctx *c = b->ctx;
    (void)t;
    if (c->kind != K_BG)   /* the shared background keeps no list */
        SL_LIST_REMOVE(&c->tasks, b, link);
    if (b == &c->bind0)
        b->task = NULL;   /* free for the next task */
    else
        sl__ctx_free(b);
    sl_ctx_unref(c);
}

static void on_deadline(sl_task *t, void *ext, uint64_t now)
{
    (void)t;
    sl__ctx_deadline_due(((sl_binding *)ext)->ctx, now);
}

static const sl_task_ext_ops bind_ops = { .on_end = unbind, .on_deadline = on_deadline };

static int go(sl_ctx *ctx, sl_step_fn fn, void *state, sl_task *mem, sl_task **out,
              const sl_spawn_opts *opts, const char *file, int line)
{
    if (!ctx)
        return -EINVAL;
    if (sl__ctx_foreign(ctx, "sl_go"))
        return -EXDEV;
    /* the background is shared by every thread: its bindings are allocated */
    bool inline_b = ctx->kind != K_BG && !ctx->bind0.task;
    sl_binding *b = inline_b ? &ctx->bind0 : sl__ctx_alloc(sizeof *b);
    if (!b)
        return -ENOMEM;
    sl_spawn_opts o = opts ? *opts : (sl_spawn_opts){ 0 };
    if (ctx->deadline && (!o.deadline || ctx->deadline < o.deadline))
        o.deadline = ctx->deadline;
    sl_task *t;
    /* ctx->r is the calling reactor (NULL for the background: the same) */
    int rc = sl_spawn_at_(ctx->r, fn, state, &o, &t, mem, file, line);
    if (rc < 0) {
        if (!inline_b)
            sl__ctx_free(b);
        return rc;
    }
    if (inline_b)
        *b = (sl_binding){ 0 };
    b->ctx = sl_ctx_ref(ctx);
    b->task = t;
    if (ctx->kind != K_BG)
        SL_LIST_PUSH_FRONT(&ctx->tasks, b, link);
    sl_task_set_ext(t, b, &bind_ops);
    if (ctx->err)
        sl_task_cancel(t, ctx->err);
    if (out)
        *out = t;
    return 0;
}

int sl_go_at_(sl_ctx *ctx, sl_step_fn fn, void *state, sl_task **out, const sl_spawn_opts *opts,
              const char *file, int line)
{
    return go(ctx, fn, state, NULL, out, opts, file, line);
}

int sl_go_mem_at_(sl_ctx *ctx, sl_step_fn fn, void *state, sl_task *mem, sl_task **out,
                  const sl_spawn_opts *opts, const char *file, int line)
{
    if (!mem)
        return -EINVAL;
    return go(ctx, fn, state, mem, out, opts, file, line);
}

sl_ctx *sl_task_ctx(const sl_task *t)
{
    /* core has no getter for the slot's hooks; they tell whether the slot
     * is ours (core clears it before calling on_end, when the task ends) */
    if (!t || t->ext_ops_ != &bind_ops)
        return NULL;
    return ((sl_binding *)sl_task_ext(t))->ctx;
}
