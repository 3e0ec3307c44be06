/* ctx_internal.h: what the files of context/ share. Not installed.
 *
 * ctx.c      the tree: making, ending, references, reading
 * deadline.c deadline timers, remaining time, budgets
 * after.c    after-funcs
 * bind.c     tasks bound to contexts (sl_go)
 * link.c     linked children on other reactors
 * live.c     allocation, the live-object count, failure injection for tests */
#ifndef SL_CTX_INTERNAL_H
#define SL_CTX_INTERNAL_H
#include <stdbool.h>
#include <stddef.h>
#include "sl_ctx.h"
#include "list.h"

enum ctx_kind {
    K_BG,        /* the static background */
    K_NODE,      /* with_cancel / with_deadline / with_timeout / a linked child /
                  * with_trace_deadline (a node that also carries a value) */
    K_VALUE,     /* with_value, with_trace */
    K_NOCANCEL,  /* without_cancel: never ends */
};

/* A task bound to a context (bind.c): in the context's list of tasks and in
 * the task's extension slot. */
typedef struct sl_binding sl_binding;
struct sl_binding {
    sl_ctx *ctx;
    sl_task *task;
    SL_LINK(sl_binding) link;   /* ctx->tasks */
};
typedef struct sl_link sl_link;

struct sl_ctx {
    sl_reactor *r;
    sl_ctx *parent;            /* holds a reference; NULL for the background */
    const sl_ctx *up;          /* where value lookup goes on: the parent, or
                                * across a link the remote parent */
    SL_LIST(sl_ctx) children;  /* running children, newest first: ending this ends them */
    SL_LINK(sl_ctx) clink;     /* in parent->children while attached */
    sl_ctx *fire_next;         /* ending: the list of nodes with after-funcs */
    SL_LIST(sl_after) afters;  /* armed after-funcs, in order (by sl_after.link_) */
    SL_LIST(sl_binding) tasks; /* bound tasks, newest first */
    sl_binding bind0;          /* the first bound task's binding (in use while
                                * bind0.task is set): no allocation for the
                                * usual one task per context */
    uint32_t refs;
    uint8_t kind;
    bool attached;
    bool callers;              /* its own deadline is its caller's (sl_ctx_deadline_is_callers) */
    int err;
    sl_cause cause;
    uint64_t deadline;
    struct event *timer;       /* the deadline timer's storage (in tail), or NULL */
    SL_LINK(sl_ctx) tlink;     /* in this thread's list of timers to arm */
    uint8_t tstate;            /* T_NONE, T_PENDING (armed at the turn's end), T_ARMED */
    const void *key;
    void *value;
    void (*free_fn)(void *);
    sl_link *link;             /* a linked child's link */
    max_align_t tail[];        /* a value's copy, then the timer's struct event */
};

/* ctx.c */
int sl__ctx_make(sl_ctx **out, sl_ctx *parent, int kind, uint64_t deadline, size_t extra);
void sl__ctx_end(sl_ctx *top, int err, sl_cause cause);
bool sl__ctx_foreign_report(const sl_ctx *c, const char *what);
/* Is c used off its reactor? (The common answer, no, costs a compare.) */
static inline bool sl__ctx_foreign(const sl_ctx *c, const char *what)
{
    if (c->kind == K_BG || c->r == sl_reactor_current())
        return false;
    return sl__ctx_foreign_report(c, what);
}
static inline bool sl__ctx_can_end(const sl_ctx *c) { return c->kind != K_BG && c->kind != K_NOCANCEL; }

/* deadline.c */
size_t sl__ctx_timer_size(void);
/* Gives c a deadline timer, a struct event of sl__ctx_timer_size() bytes at
 * mem (in c's own allocation), armed at the end of the reactor's turn. 0 or
 * -ENOMEM. */
int sl__ctx_arm(sl_ctx *c, void *mem);
void sl__ctx_disarm(sl_ctx *c);
/* A task bound to c wakes by its deadline at `now`: ends the context that
 * owns c's deadline by it, if it is due and that context still runs. */
void sl__ctx_deadline_due(sl_ctx *c, uint64_t now);

/* after.c */
void sl__ctx_fire_afters(sl_ctx *c);

/* bind.c */
void sl__ctx_cancel_tasks(sl_ctx *c, int err);

/* link.c */
void sl__ctx_link_child_gone(sl_link *l);

/* live.c: every allocation of context/ goes through these two */
void *sl__ctx_alloc(size_t size);     /* zeroed; NULL on failure */
void sl__ctx_free(void *p);
/* A point that may fail (allocations, timer scheduling): true if a failure
 * was injected here. */
bool sl__ctx_fail_point(void);
/* For tests: the fail point after `skip` passing ones fails, once; -1 turns
 * injection off. Process-wide. */
void sl__ctx_inject_failure(int skip);

#endif
