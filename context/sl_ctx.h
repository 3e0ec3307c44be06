/* sl_ctx.h: contexts — deadlines, cancellation with a cause, and values,
 * carried down a tree (Go's context, Trio's cancel scopes).
 *
 *     sl_ctx *req;
 *     sl_ctx_with_timeout(&req, sl_ctx_background(), 250);   // 250 ms budget
 *     sl_go(req, handler, st, NULL, NULL);   // its waits end when req does
 *     ...
 *     sl_ctx_cancel(req, SL_CAUSE_DISCONNECT);   // the client went away
 *     sl_ctx_unref(req);
 *
 * A context ends once, by cancel or by its deadline, and every descendant
 * and every task bound to it ends with it, synchronously, before
 * sl_ctx_cancel() returns, in time proportional to the descendants: bound
 * tasks are cancelled with the context's error (-ECANCELED, or -ETIMEDOUT
 * for a deadline), so the wait each one is parked in ends at once. The first
 * cause wins and is kept. A child's deadline is never later than its
 * parent's; a deadline costs a timer only when it is earlier than the
 * parent's (an equal one ends with the parent).
 *
 * OWNERSHIP. Every constructor returns a context holding one reference, the
 * caller's; sl_ctx_unref() gives it back. A child holds a reference to its
 * parent, a bound task and an armed after-func to their context. Freeing a
 * child takes it out of its parent in O(1), so a long-lived parent does not
 * grow however many children come and go. sl_ctx_background() is static
 * and never ends; ref and unref do nothing to it.
 *
 * REACTORS. A context belongs to the reactor that created it, and every
 * function below must be called on that reactor's thread (the background
 * context excepted: it is usable anywhere). A call from elsewhere is a
 * misuse: it is reported to the calling reactor's sink (stderr outside
 * reactors) and fails (-EXDEV, or the neutral value that function documents)
 * without touching the context. To carry a context to another reactor,
 * sl_ctx_link_on() makes a linked child there. */
#ifndef SL_CTX_H
#define SL_CTX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sl_runtime.h"
#include "sl_task.h"

typedef struct sl_ctx sl_ctx;

/* Why a context ended. */
typedef enum sl_cause {
    SL_CAUSE_NONE = 0,        /* "" : has not ended */
    SL_CAUSE_CANCELED,        /* "canceled" */
    SL_CAUSE_DEADLINE,        /* "deadline exceeded" (the error is -ETIMEDOUT) */
    SL_CAUSE_DISCONNECT,      /* "client disconnected" */
    SL_CAUSE_SHUTDOWN,        /* "shutdown" */
    SL_CAUSE_UPSTREAM,        /* "upstream failed" */
    SL_CAUSE_DEADLOCK,        /* "deadlock" */
    SL_CAUSE_CALLER_DEADLINE, /* "caller's deadline" (-ETIMEDOUT): the deadline
                               * that passed was the caller's, propagated over
                               * the wire (sl_ctx_deadline_is_callers) */
    SL_CAUSE_COUNT
} sl_cause;

/* ---- making contexts ------------------------------------------------------ */

/* The static root: no deadline, never ends, no values. Usable on any thread. */
sl_ctx *sl_ctx_background(void);

/* A child that can be cancelled, with the parent's deadline. *out receives
 * it, with one reference for the caller. A child of a context that has
 * already ended is born ended, with the parent's error and cause. Returns 0,
 * -EINVAL (NULL out or parent, or no reactor runs on this thread), -EXDEV
 * (parent of another reactor; reported), -ENOMEM. On failure *out is
 * untouched. */
int sl_ctx_with_cancel(sl_ctx **out, sl_ctx *parent);

/* A child whose deadline is `deadline` (absolute, sl_now_ns() clock) or the
 * parent's, whichever is earlier; 0 means no deadline of its own (as
 * sl_ctx_with_cancel). A deadline already past gives a child born ended
 * with -ETIMEDOUT. Returns as sl_ctx_with_cancel. */
int sl_ctx_with_deadline(sl_ctx **out, sl_ctx *parent, uint64_t deadline);

/* The same with a deadline `ms` milliseconds from now (0: ends at once). */
int sl_ctx_with_timeout(sl_ctx **out, sl_ctx *parent, uint64_t ms);

/* A child that keeps the parent's values but not its deadline or its
 * cancellation: for work that must finish although the caller gave up (a
 * compensation). It never ends by itself and cannot be cancelled; give the
 * work a deadline of its own with sl_ctx_with_timeout() on top of it.
 * Returns as sl_ctx_with_cancel. */
int sl_ctx_without_cancel(sl_ctx **out, sl_ctx *parent);

/* A child carrying `value` under `key` (compared by address; use the address
 * of a static object of yours). The child ends with its parent and can be
 * cancelled like any other. `free_fn` (may be NULL) runs on the value when
 * the child is freed; on failure it does not run and the caller still owns
 * value. Returns as sl_ctx_with_cancel, and -EINVAL for a NULL key. */
int sl_ctx_with_value(sl_ctx **out, sl_ctx *parent, const void *key, void *value,
                      void (*free_fn)(void *));

/* The value under `key` in ctx or in its nearest ancestor that has one (the
 * nearest shadows the others; a linked child sees its remote parent's
 * values), or NULL. NULL for a NULL ctx or key, and from another reactor
 * (reported). */
void *sl_ctx_value(const sl_ctx *ctx, const void *key);

/* ---- ending ------------------------------------------------------------------ */

/* Ends ctx, every descendant and every bound task, with -ECANCELED and
 * `cause` (SL_CAUSE_DEADLINE and SL_CAUSE_CALLER_DEADLINE give -ETIMEDOUT), and runs their after-funcs,
 * all before it returns. Idempotent: the first cause is kept. Returns 0;
 * -EALREADY if ctx had already ended; -EINVAL for a NULL ctx, the background,
 * a context made by sl_ctx_without_cancel (they cannot be cancelled), or a
 * cause that is SL_CAUSE_NONE or out of range; -EXDEV from another reactor
 * (reported). */
int sl_ctx_cancel(sl_ctx *ctx, sl_cause cause);

/* 0 while ctx runs; -ECANCELED or -ETIMEDOUT once it has ended. -EINVAL for
 * NULL, -EXDEV from another reactor (reported). */
int sl_ctx_err(const sl_ctx *ctx);

/* Why ctx ended (SL_CAUSE_NONE while it runs). If `reason` is not NULL it
 * receives the cause's short static text ("client disconnected"; "" for
 * none). NULL ctx or another reactor (reported): SL_CAUSE_NONE. */
sl_cause sl_ctx_cause(const sl_ctx *ctx, const char **reason);

/* The static text of a cause; "?" for a value out of range. */
const char *sl_cause_text(sl_cause cause);

/* ---- deadlines ------------------------------------------------------------------ */

/* The deadline (absolute, sl_now_ns() clock), or 0 for none (also for NULL,
 * and from another reactor, reported). */
uint64_t sl_ctx_deadline(const sl_ctx *ctx);

/* Says that ctx's own deadline is its caller's (a server's request whose
 * grpc-timeout was below its own cap): when it passes, ctx and the
 * descendants that end with it end with SL_CAUSE_CALLER_DEADLINE instead of
 * SL_CAUSE_DEADLINE (same error, -ETIMEDOUT), so the callee's logs say who
 * ran out of time. Call it right after making ctx; a ctx already ended by
 * that deadline (born past it) takes the new cause too. Returns 0; -EINVAL
 * for NULL, the background, a context without a deadline of its own (one
 * that only inherits its parent's: mark the parent), or one ended for
 * another reason; -EXDEV from another reactor (reported). */
int sl_ctx_deadline_is_callers(sl_ctx *ctx);

/* Whole milliseconds left before the deadline (0 once less than 1 ms is
 * left), or -1 when ctx has no deadline. Whether ctx was cancelled does not
 * matter here: ask sl_ctx_err(). NULL, or another reactor (reported): 0. */
int64_t sl_ctx_remaining_ms(const sl_ctx *ctx);

/* The budget to give a downstream call made under ctx: what is left minus a
 * safety margin `margin_ms` (the time the answer needs to come back), in
 * whole milliseconds, in *budget_ms (UINT64_MAX when ctx has no deadline).
 * Returns 0; -ETIMEDOUT when less than 1 ms would be left (do not send the
 * call at all); ctx's error if it has ended; -EINVAL (NULL argument);
 * -EXDEV (another reactor, reported). *budget_ms is set only on success. */
int sl_ctx_budget_ms(const sl_ctx *ctx, uint64_t margin_ms, uint64_t *budget_ms);

/* ---- references ---------------------------------------------------------------- */

/* Takes one more reference and returns ctx. From another reactor it is
 * reported, nothing is taken and NULL is returned. NULL gives NULL. */
sl_ctx *sl_ctx_ref(sl_ctx *ctx);

/* Gives a reference back; the last one frees ctx (running its value's
 * free_fn) and gives back its reference to its parent. NULL is ignored; from
 * another reactor it is reported and nothing is given back. */
void sl_ctx_unref(sl_ctx *ctx);

/* The reactor ctx belongs to (NULL for the background). Usable anywhere. */
sl_reactor *sl_ctx_reactor(const sl_ctx *ctx);

/* ---- after-funcs (Go's AfterFunc) ----------------------------------------------- */

/* One after-func, in the caller's storage (nothing is allocated): embed it
 * in the object the callback works on. Zero it, or arm it, before any use. */
typedef struct sl_after {
    struct { struct sl_after *prev, *next; } link_;   /* private */
    sl_ctx *ctx_;
    void (*fn_)(sl_ctx *, void *);
    void *arg_;
    int state_;
} sl_after;

/* Arms `a`: fn(ctx, arg) will run once, on ctx's reactor, when ctx ends
 * (from inside the sl_ctx_cancel() or deadline that ends it, after the whole
 * subtree has ended and its tasks have been cancelled); at once, before this
 * returns, if ctx has already ended. While armed, `a` holds a reference to
 * ctx, so ctx is not freed before fn ran or sl_after_stop(); fn may drop the
 * caller's own references. `a` must stay valid until then, and must not be
 * armed already. On a context that can never end (the background, one made
 * by sl_ctx_without_cancel) fn never runs and `a` holds nothing; stopping it
 * still returns 0. Returns 0; -EINVAL (NULL argument); -EXDEV (another
 * reactor, reported). */
int sl_ctx_after(sl_ctx *ctx, sl_after *a, void (*fn)(sl_ctx *, void *), void *arg);

/* Stops `a` so that its fn never runs, and gives back its reference.
 * Returns 0 if it was armed and is now stopped; -EALREADY if fn has already
 * run (or started to); -ENOENT if `a` was never armed or already stopped;
 * -EINVAL for NULL; -EXDEV from another reactor (reported; `a` stays
 * armed). */
int sl_after_stop(sl_after *a);

/* ---- tasks ---------------------------------------------------------------------- */

/* Spawns a task (see sl_spawn) on ctx's reactor, bound to ctx: its deadline
 * is the context's (or opts->deadline if that is earlier), and when ctx ends
 * the task is cancelled with ctx's error (sl_task_cancel), so the wait it is
 * parked in ends with -ECANCELED or -ETIMEDOUT. A task spawned under an
 * ended context starts cancelled. The task holds a reference to ctx until it
 * ends, and is unbound (O(1)) when it ends. Uses the task's extension slot
 * (sl_task_set_ext): do not set it on a task made by sl_go. Returns as
 * sl_spawn (the state is not freed on failure), -EINVAL for a NULL ctx,
 * -EXDEV for a context of another reactor (reported). */
#define sl_go(ctx, fn, state, out, ...) \
    sl_go_at_((ctx), (fn), (state), (out), SL_OPTS_(sl_spawn_opts, __VA_ARGS__), __FILE__, __LINE__)

/* The same, with the caller's storage for the task struct (see
 * sl_spawn_mem): `mem` must stay valid until the task has ended, which its
 * state destructor may use to free it. */
#define sl_go_mem(ctx, fn, state, mem, out, ...) \
    sl_go_mem_at_((ctx), (fn), (state), (mem), (out), SL_OPTS_(sl_spawn_opts, __VA_ARGS__), __FILE__, __LINE__)

/* The context a task was spawned under with sl_go (NULL otherwise, and once
 * the task has ended). */
sl_ctx *sl_task_ctx(const sl_task *t);

/* Narrows t's deadline to at most `ms` from now, for the waits that follow
 * (for instance a 50 ms budget for one lock), never widening it, and returns
 * the previous deadline: restore it with sl_task_set_deadline(t, old) after
 * the wait. The context's own deadline does not change. */
uint64_t sl_ctx_narrow(sl_task *t, uint64_t ms);

/* ---- across reactors -------------------------------------------------------------- */

/* Makes a context on reactor `r` linked to `parent` (a context of the
 * calling reactor): a child of the background there, with the parent's
 * deadline (and its own timer), which sees the parent's values and is
 * cancelled, with the parent's error and cause, by a message that the
 * parent's end posts to `r`. Once it exists, fn(child, 0, arg) runs on `r`
 * and owns the child's one reference; if it cannot be made there,
 * fn(NULL, -ENOMEM, arg) runs on `r`. The parent is held until the child is
 * freed. `r` may be the calling reactor. Returns 0; -EINVAL (NULL argument);
 * -EXDEV (parent of another reactor, reported); -ENOMEM (fn will not run). */
int sl_ctx_link_on(sl_reactor *r, sl_ctx *parent, void (*fn)(sl_ctx *child, int err, void *arg),
                   void *arg);

/* ---- diagnostics ------------------------------------------------------------------ */

/* Objects that context/ has allocated and not yet freed, over the whole
 * process: contexts, task bindings and cross-reactor links. A leak check for
 * tests; cheap (per-thread counters, summed when asked). */
long sl_ctx_live_count(void);

/* ---- private ---------------------------------------------------------------------- */
int sl_go_at_(sl_ctx *ctx, sl_step_fn fn, void *state, sl_task **out, const sl_spawn_opts *opts,
              const char *file, int line);
int sl_go_mem_at_(sl_ctx *ctx, sl_step_fn fn, void *state, sl_task *mem, sl_task **out,
                  const sl_spawn_opts *opts, const char *file, int line);

#endif
