/* sl_ctx.h: contexts — deadlines, cancellation with a cause, and values,
 * carried down a tree (Go's context, Trio's cancel scopes).
 *
 *     sl_ctx *req;
 *     sl_ctx_with_timeout(&req, sl_ctx_background(), 250);   // 250 ms budget
 *     sl_go(req, handler, st, NULL, NULL);   // the task's waits end when req does
 *     ...
 *     sl_ctx_cancel(req, SL_CAUSE_DISCONNECT);   // client went away
 *     sl_ctx_unref(req);
 *
 * A context ends once, by cancel or by its deadline, and every descendant
 * and every task bound to it ends with it, synchronously, before
 * sl_ctx_cancel() returns: bound tasks are cancelled with the context's
 * error (-ECANCELED, or -ETIMEDOUT for a deadline), so the wait each one is
 * parked in ends at once. A child's deadline is never later than its
 * parent's. The first cause wins and is kept.
 *
 * OWNERSHIP. Every constructor returns a context with one reference, the
 * caller's; sl_ctx_unref() gives it back. A child holds a reference to its
 * parent, a bound task to its context. sl_ctx_background() is static and
 * never ends; ref/unref do nothing to it.
 *
 * REACTORS. A context belongs to the reactor that created it (a child of the
 * background context created outside any reactor belongs to none and has no
 * deadline timer). Using it on another reactor is a misuse: the call fails
 * with -EXDEV and is reported. To carry a context to another reactor, use
 * sl_ctx_link_on(), which makes a linked child there. */
#ifndef SL_CTX_H
#define SL_CTX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sl_task.h"

typedef struct sl_ctx sl_ctx;

/* Why a context ended. */
typedef enum sl_cause {
    SL_CAUSE_NONE = 0,        /* not ended */
    SL_CAUSE_CANCELED,        /* "canceled" */
    SL_CAUSE_DEADLINE,        /* "deadline exceeded" (err -ETIMEDOUT) */
    SL_CAUSE_DISCONNECT,      /* "client disconnected" */
    SL_CAUSE_SHUTDOWN,        /* "shutdown" */
    SL_CAUSE_UPSTREAM,        /* "upstream failed" */
    SL_CAUSE_DEADLOCK,        /* "deadlock" */
    SL_CAUSE_COUNT
} sl_cause;

/* The static, never-ending root. */
sl_ctx *sl_ctx_background(void);

/* Children. Each returns 0 and a new context in *out, -ENOMEM, -EINVAL (NULL
 * argument), or -EXDEV (parent of another reactor). A child of a context that
 * has ended is born ended, with the parent's error and cause. */
int sl_ctx_with_cancel(sl_ctx **out, sl_ctx *parent);
/* `deadline` is absolute (sl_now_ns() clock); the child keeps the parent's
 * deadline if that is earlier. A deadline in the past ends it at once. */
int sl_ctx_with_deadline(sl_ctx **out, sl_ctx *parent, uint64_t deadline);
int sl_ctx_with_timeout(sl_ctx **out, sl_ctx *parent, uint64_t ms);
/* Keeps the parent's values, drops its deadline and cancellation: for work
 * that must finish even though the caller gave up (a compensation). Give it
 * a deadline of its own with sl_ctx_with_timeout on top. */
int sl_ctx_without_cancel(sl_ctx **out, sl_ctx *parent);
/* Adds a value under `key` (compared by address). `free_fn` (may be NULL)
 * frees the value when the context is freed. On failure free_fn is not
 * called. */
int sl_ctx_with_value(sl_ctx **out, sl_ctx *parent, const void *key, void *value,
                      void (*free_fn)(void *));

/* The value under `key` in ctx or its nearest ancestor that has one, or NULL. */
void *sl_ctx_value(const sl_ctx *ctx, const void *key);

/* Ends ctx, its descendants and bound tasks with -ECANCELED and `cause`
 * (SL_CAUSE_DEADLINE gives -ETIMEDOUT). Returns 0, -EALREADY if it had ended
 * (the first cause is kept), -EINVAL (background, or a bad cause), -EXDEV. */
int sl_ctx_cancel(sl_ctx *ctx, sl_cause cause);

/* 0 while running; -ECANCELED or -ETIMEDOUT once ended. */
int sl_ctx_err(const sl_ctx *ctx);
/* The cause (SL_CAUSE_NONE while running); *reason, if not NULL, receives
 * its short static text ("client disconnected"). */
sl_cause sl_ctx_cause(const sl_ctx *ctx, const char **reason);
const char *sl_cause_text(sl_cause cause);

/* The deadline (absolute), or 0 for none. */
uint64_t sl_ctx_deadline(const sl_ctx *ctx);
/* Milliseconds left (0 once passed), or -1 when there is no deadline. */
int64_t sl_ctx_remaining_ms(const sl_ctx *ctx);
/* The budget to give a downstream call: what is left minus `margin_ms`, in
 * *budget_ms (UINT64_MAX with no deadline). Returns 0; -ETIMEDOUT when
 * nothing would be left (do not send); the context's error if it ended. */
int sl_ctx_budget_ms(const sl_ctx *ctx, uint64_t margin_ms, uint64_t *budget_ms);

sl_ctx *sl_ctx_ref(sl_ctx *ctx);
void sl_ctx_unref(sl_ctx *ctx);

/* ---- after-funcs ----------------------------------------------------------- */

/* Caller's storage for one after-func (nothing is allocated). */
typedef struct sl_after {
    struct sl_after *prev_, *next_;
    sl_ctx *ctx_;
    void (*fn_)(sl_ctx *, void *);
    void *arg_;
    int state_;                     /* 0 idle, 1 armed, 2 ran */
} sl_after;

/* Runs fn(ctx, arg) once when ctx ends, on ctx's reactor, after the whole
 * subtree has ended (at once if it has already ended). `a` must stay valid
 * until fn ran or sl_after_stop(). Returns 0, -EINVAL, -EXDEV. */
int sl_ctx_after(sl_ctx *ctx, sl_after *a, void (*fn)(sl_ctx *, void *), void *arg);

/* Stops an after-func. Returns true if it was stopped before running, false
 * if it has run (or was never armed). */
bool sl_after_stop(sl_after *a);

/* ---- tasks ----------------------------------------------------------------- */

/* Spawns a task (see sl_spawn) bound to ctx: its deadline is the context's
 * (or opts->deadline if earlier), and when ctx ends the task is cancelled
 * with ctx's error. A task spawned under an ended context starts cancelled.
 * Returns as sl_spawn, or -EXDEV for a context of another reactor. */
#define sl_go(ctx, fn, state, out, ...) \
    sl_go_at_((ctx), (fn), (state), (out), (__VA_ARGS__), __FILE__, __LINE__)
int sl_go_at_(sl_ctx *ctx, sl_step_fn fn, void *state, sl_task **out, const sl_spawn_opts *opts,
              const char *file, int line);

/* The context a task was spawned under with sl_go (NULL otherwise). */
sl_ctx *sl_task_ctx(const sl_task *t);

/* Narrows t's deadline to at most `ms` from now for the next wait(s) and
 * returns the previous deadline, to restore with sl_task_set_deadline(). */
uint64_t sl_ctx_narrow(sl_task *t, uint64_t ms);

/* ---- across reactors ---------------------------------------------------------- */

/* Makes, on reactor `r`, a child of `parent` (which lives on the calling
 * reactor): it has the parent's deadline, and is cancelled with the parent's
 * cause when the parent ends (through a message). Once created there,
 * fn(child, arg) runs on `r` and owns the child's one reference. Returns 0,
 * -ENOMEM, -EINVAL, -EXDEV (parent not of this reactor). */
int sl_ctx_link_on(sl_reactor *r, sl_ctx *parent, void (*fn)(sl_ctx *child, void *arg), void *arg);

/* Contexts alive in the process (a leak check for tests). */
long sl_ctx_live(void);

#endif
