/* ctx.c: the context tree.
 *
 * A running context sits in its parent's list of children (unless it was
 * made without cancel); ending it walks the subtree iteratively, ending each
 * node, cancelling its bound tasks and collecting its after-funcs, and takes
 * each ended node out of its parent's list, so the walk needs no stack and
 * costs O(descendants). The after-funcs run once the whole subtree has
 * ended. References keep ended nodes alive for as long as someone holds
 * them: a child holds its parent, a bound task its context. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <event2/event.h>
#include "sl_ctx.h"
#include "sl_diag.h"

enum { K_BG, K_CANCEL, K_VALUE, K_NOCANCEL };

typedef struct binding {
    sl_ctx *ctx;
    sl_task *task;
    struct binding *prev, *next;
} binding;

typedef struct link link;

struct sl_ctx {
    sl_reactor *r;
    sl_ctx *parent;
    sl_ctx *children, *cprev, *cnext;
    bool attached;
    int kind;
    uint32_t refs;
    int err;
    sl_cause cause;
    uint64_t deadline;
    struct event *timer;
    sl_after *afters;
    binding *tasks;
    const void *key;
    void *value;
    void (*free_fn)(void *);
    link *link;
};

static sl_ctx background = { .kind = K_BG, .refs = 1 };
static _Atomic long live;

static const char *cause_texts[SL_CAUSE_COUNT] = {
    "", "canceled", "deadline exceeded", "client disconnected", "shutdown", "upstream failed", "deadlock",
};

sl_ctx *sl_ctx_background(void) { return &background; }
long sl_ctx_live(void) { return atomic_load_explicit(&live, memory_order_relaxed); }

const char *sl_cause_text(sl_cause c)
{
    return (unsigned)c < SL_CAUSE_COUNT ? cause_texts[c] : "?";
}

/* A context is used on its own reactor only. */
static bool foreign(const sl_ctx *c, const char *what)
{
    if (!c->r || c->r == sl_reactor_current())
        return false;
    sl_report_misuse(sl_reactor_current(), "%s on a context of reactor %d from %s", what,
                     sl_reactor_id(c->r), sl_reactor_current() ? "another reactor" : "outside any reactor");
    return true;
}

/* ---- ending ------------------------------------------------------------------ */

static void detach_from_parent(sl_ctx *c)
{
    if (!c->attached)
        return;
    sl_ctx *p = c->parent;
    if (c->cprev)
        c->cprev->cnext = c->cnext;
    else
        p->children = c->cnext;
    if (c->cnext)
        c->cnext->cprev = c->cprev;
    c->cprev = c->cnext = NULL;
    c->attached = false;
}

/* Ends one node; its armed after-funcs move to *todo (in order). */
static void end_one(sl_ctx *c, int err, sl_cause cause, sl_after **todo)
{
    c->err = err;
    c->cause = cause;
    if (c->timer) {
        event_free(c->timer);
        c->timer = NULL;
    }
    for (binding *b = c->tasks; b; b = b->next)
        sl_task_cancel(b->task, err);
    while (c->afters) {
        sl_after *a = c->afters;
        c->afters = a->next_;
        a->prev_ = NULL;
        a->next_ = *todo;   /* reversed below */
        *todo = a;
    }
}

static void end_tree(sl_ctx *top, int err, sl_cause cause)
{
    sl_after *todo = NULL;
    detach_from_parent(top);
    end_one(top, err, cause, &todo);
    for (sl_ctx *cur = top;;) {
        sl_ctx *ch = cur->children;
        if (ch) {
            detach_from_parent(ch);
            end_one(ch, err, cause, &todo);
            cur = ch;
            continue;
        }
        if (cur == top)
            break;
        cur = cur->parent;
    }
    /* run after-funcs in registration order, each unlinked before it runs */
    sl_after *rev = NULL;
    while (todo) {
        sl_after *a = todo;
        todo = a->next_;
        a->next_ = rev;
        rev = a;
    }
    while (rev) {
        sl_after *a = rev;
        rev = a->next_;
        a->next_ = NULL;
        a->state_ = 2;
        a->fn_(a->ctx_, a->arg_);
    }
}

int sl_ctx_cancel(sl_ctx *ctx, sl_cause cause)
{
    if (!ctx || ctx->kind == K_BG || cause <= SL_CAUSE_NONE || cause >= SL_CAUSE_COUNT)
        return -EINVAL;
    if (foreign(ctx, "sl_ctx_cancel"))
        return -EXDEV;
    if (ctx->err)
        return -EALREADY;
    end_tree(ctx, cause == SL_CAUSE_DEADLINE ? -ETIMEDOUT : -ECANCELED, cause);
    return 0;
}

static void arm(sl_ctx *c, uint64_t now)
{
    uint64_t us = (c->deadline - now + 999) / 1000;
    struct timeval tv = { (time_t)(us / 1000000), (suseconds_t)(us % 1000000) };
    evtimer_add(c->timer, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    sl_ctx *c = arg;
    (void)fd;
    (void)what;
    /* libevent measures from the time it cached at the start of the loop
     * iteration, so a timer can fire a little early: never end early */
    uint64_t now = sl_now_ns();
    if (now < c->deadline)
        arm(c, now);
    else if (!c->err)
        end_tree(c, -ETIMEDOUT, SL_CAUSE_DEADLINE);
}

/* ---- creating ------------------------------------------------------------------ */

static int make(sl_ctx **out, sl_ctx *parent, int kind, uint64_t deadline)
{
    if (!out || !parent)
        return -EINVAL;
    if (foreign(parent, "making a child"))
        return -EXDEV;
    sl_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->r = parent->r ? parent->r : sl_reactor_current();
    c->kind = kind;
    c->refs = 1;
    c->parent = sl_ctx_ref(parent);
    atomic_fetch_add_explicit(&live, 1, memory_order_relaxed);
    *out = c;
    if (kind == K_NOCANCEL)
        return 0;
    uint64_t pd = parent->deadline;
    c->deadline = deadline && (!pd || deadline < pd) ? deadline : pd;
    if (parent->err) {   /* born ended */
        c->err = parent->err;
        c->cause = parent->cause;
        return 0;
    }
    c->attached = true;
    c->cnext = parent->children;
    if (parent->children)
        parent->children->cprev = c;
    parent->children = c;
    /* a timer only when this deadline is its own, i.e. earlier than the parent's */
    if (c->deadline && c->deadline != pd) {
        uint64_t now = sl_now_ns();
        if (c->deadline <= now) {
            end_tree(c, -ETIMEDOUT, SL_CAUSE_DEADLINE);
            return 0;
        }
        if (c->r) {
            c->timer = evtimer_new(sl_reactor_base(c->r), on_deadline, c);
            if (!c->timer) {
                sl_ctx_unref(c);
                *out = NULL;
                return -ENOMEM;
            }
            arm(c, now);
        }
    }
    return 0;
}

int sl_ctx_with_cancel(sl_ctx **out, sl_ctx *parent) { return make(out, parent, K_CANCEL, 0); }

int sl_ctx_with_deadline(sl_ctx **out, sl_ctx *parent, uint64_t deadline)
{
    return make(out, parent, K_CANCEL, deadline ? deadline : 1);
}

int sl_ctx_with_timeout(sl_ctx **out, sl_ctx *parent, uint64_t ms)
{
    return make(out, parent, K_CANCEL, sl_now_ns() + ms * SL_NS_PER_MS);
}

int sl_ctx_without_cancel(sl_ctx **out, sl_ctx *parent) { return make(out, parent, K_NOCANCEL, 0); }

int sl_ctx_with_value(sl_ctx **out, sl_ctx *parent, const void *key, void *value, void (*free_fn)(void *))
{
    if (!key)
        return -EINVAL;
    int rc = make(out, parent, K_VALUE, 0);
    if (rc == 0) {
        (*out)->key = key;
        (*out)->value = value;
        (*out)->free_fn = free_fn;
    }
    return rc;
}

void *sl_ctx_value(const sl_ctx *ctx, const void *key)
{
    for (const sl_ctx *c = ctx; c; c = c->parent)
        if (c->kind == K_VALUE && c->key == key)
            return c->value;
    return NULL;
}

/* ---- reading -------------------------------------------------------------------- */

int sl_ctx_err(const sl_ctx *ctx) { return ctx->err; }

sl_cause sl_ctx_cause(const sl_ctx *ctx, const char **reason)
{
    if (reason)
        *reason = sl_cause_text(ctx->cause);
    return ctx->cause;
}

uint64_t sl_ctx_deadline(const sl_ctx *ctx) { return ctx->deadline; }

int64_t sl_ctx_remaining_ms(const sl_ctx *ctx)
{
    if (!ctx->deadline)
        return -1;
    uint64_t now = sl_now_ns();
    return ctx->deadline > now ? (int64_t)((ctx->deadline - now) / SL_NS_PER_MS) : 0;
}

int sl_ctx_budget_ms(const sl_ctx *ctx, uint64_t margin_ms, uint64_t *budget_ms)
{
    if (ctx->err)
        return ctx->err;
    if (!ctx->deadline) {
        *budget_ms = UINT64_MAX;
        return 0;
    }
    uint64_t now = sl_now_ns(), margin = margin_ms * SL_NS_PER_MS;
    if (ctx->deadline <= now + margin + SL_NS_PER_MS)
        return -ETIMEDOUT;   /* less than a millisecond would be left */
    *budget_ms = (ctx->deadline - now - margin) / SL_NS_PER_MS;
    return 0;
}

/* ---- references ------------------------------------------------------------------ */

sl_ctx *sl_ctx_ref(sl_ctx *ctx)
{
    if (ctx->kind != K_BG)
        ctx->refs++;
    return ctx;
}

void sl__ctx_link_gone(link *l);

static void free_one(sl_ctx *c)
{
    detach_from_parent(c);
    if (c->timer)
        event_free(c->timer);
    while (c->afters) {   /* never ran: disarmed */
        sl_after *a = c->afters;
        c->afters = a->next_;
        a->prev_ = a->next_ = NULL;
        a->state_ = 0;
    }
    if (c->free_fn)
        c->free_fn(c->value);
    if (c->link)
        sl__ctx_link_gone(c->link);
    free(c);
    atomic_fetch_sub_explicit(&live, 1, memory_order_relaxed);
}

void sl_ctx_unref(sl_ctx *ctx)
{
    while (ctx && ctx->kind != K_BG && --ctx->refs == 0) {
        sl_ctx *parent = ctx->parent;
        free_one(ctx);
        ctx = parent;   /* the child's reference to it, iteratively */
    }
}

/* ---- after-funcs ------------------------------------------------------------------ */

int sl_ctx_after(sl_ctx *ctx, sl_after *a, void (*fn)(sl_ctx *, void *), void *arg)
{
    if (!ctx || !a || !fn)
        return -EINVAL;
    if (foreign(ctx, "sl_ctx_after"))
        return -EXDEV;
    *a = (sl_after){ .ctx_ = ctx, .fn_ = fn, .arg_ = arg, .state_ = 1 };
    if (ctx->err) {
        a->state_ = 2;
        fn(ctx, arg);
        return 0;
    }
    if (ctx->kind == K_BG) {   /* never ends: stays armed, not linked */
        return 0;
    }
    a->next_ = ctx->afters;
    if (ctx->afters)
        ctx->afters->prev_ = a;
    ctx->afters = a;
    return 0;
}

bool sl_after_stop(sl_after *a)
{
    if (a->state_ != 1)
        return false;
    sl_ctx *c = a->ctx_;
    if (c->kind != K_BG) {
        if (a->prev_)
            a->prev_->next_ = a->next_;
        else
            c->afters = a->next_;
        if (a->next_)
            a->next_->prev_ = a->prev_;
    }
    a->prev_ = a->next_ = NULL;
    a->state_ = 0;
    return true;
}

/* ---- tasks ------------------------------------------------------------------------ */

static void unbind(sl_task *t, void *ext)
{
    binding *b = ext;
    sl_ctx *c = b->ctx;
    (void)t;
    if (b->prev)
        b->prev->next = b->next;
    else
        c->tasks = b->next;
    if (b->next)
        b->next->prev = b->prev;
    free(b);
    sl_ctx_unref(c);
}

int sl_go_at_(sl_ctx *ctx, sl_step_fn fn, void *state, sl_task **out, const sl_spawn_opts *opts,
              const char *file, int line)
{
    if (!ctx)
        return -EINVAL;
    if (foreign(ctx, "sl_go"))
        return -EXDEV;
    binding *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    sl_spawn_opts o = opts ? *opts : (sl_spawn_opts){ 0 };
    if (ctx->deadline && (!o.deadline || ctx->deadline < o.deadline))
        o.deadline = ctx->deadline;
    sl_task *t;
    int rc = sl_spawn_at_(ctx->r, fn, state, &o, &t, NULL, file, line);
    if (rc < 0) {
        free(b);
        return rc;
    }
    b->ctx = sl_ctx_ref(ctx);
    b->task = t;
    if (ctx->kind != K_BG) {
        b->next = ctx->tasks;
        if (ctx->tasks)
            ctx->tasks->prev = b;
        ctx->tasks = b;
    }
    sl_task_set_ext(t, b, unbind);
    if (ctx->err)
        sl_task_cancel(t, ctx->err);
    if (out)
        *out = t;
    return 0;
}

sl_ctx *sl_task_ctx(const sl_task *t)
{
    return t->ext_end_ == unbind ? ((binding *)sl_task_ext(t))->ctx : NULL;
}

uint64_t sl_ctx_narrow(sl_task *t, uint64_t ms)
{
    uint64_t old = sl_task_deadline(t), want = sl_now_ns() + ms * SL_NS_PER_MS;
    sl_task_set_deadline(t, old && old < want ? old : want);
    return old;
}

/* ---- across reactors -------------------------------------------------------------- *
 * A link joins a parent on reactor A to its child on reactor B. Each side
 * touches only its own fields; the messages carry references to the link
 * (an atomic count), so it lives until the last message has been handled:
 * one held by the parent's after-func (then by the cancel message it posts),
 * one by the child (then by the "child gone" message it posts). */

struct link {
    _Atomic int refs;
    sl_msg m_create, m_cancel, m_gone;
    /* side A */
    sl_reactor *ra;
    sl_ctx *parent;
    sl_after after;
    int err;
    sl_cause cause;
    /* side B */
    sl_reactor *rb;
    sl_ctx *child;
    uint64_t deadline;
    void (*fn)(sl_ctx *, void *);
    void *arg;
};

static void link_release(link *l)
{
    if (atomic_fetch_sub(&l->refs, 1) == 1)
        free(l);
}

static void b_cancel(void *arg)   /* on B: the parent ended */
{
    link *l = arg;
    if (l->child && !l->child->err)
        end_tree(l->child, l->err, l->cause);
    link_release(l);
}

static void a_parent_ended(sl_ctx *parent, void *arg)   /* on A */
{
    link *l = arg;
    l->err = parent->err;
    l->cause = parent->cause;
    sl_reactor_post_mem(l->rb, &l->m_cancel, b_cancel, l);   /* the after's reference goes along */
}

static void a_child_gone(void *arg)   /* on A: the child was freed */
{
    link *l = arg;
    if (sl_after_stop(&l->after))
        link_release(l);   /* the after's reference: no cancel will be sent */
    sl_ctx_unref(l->parent);
    link_release(l);       /* the child's reference */
}

void sl__ctx_link_gone(link *l)   /* on B, from free_one */
{
    l->child = NULL;
    sl_reactor_post_mem(l->ra, &l->m_gone, a_child_gone, l);
}

static void b_create(void *arg)   /* on B */
{
    link *l = arg;
    sl_ctx *c;
    if (make(&c, &background, K_CANCEL, l->deadline) < 0) {
        sl_report(l->rb, "sluice: could not create a linked context on reactor %d", sl_reactor_id(l->rb));
        sl_reactor_post_mem(l->ra, &l->m_gone, a_child_gone, l);
        return;
    }
    c->r = l->rb;
    c->link = l;
    l->child = c;
    l->fn(c, l->arg);
}

int sl_ctx_link_on(sl_reactor *r, sl_ctx *parent, void (*fn)(sl_ctx *, void *), void *arg)
{
    if (!r || !parent || !fn)
        return -EINVAL;
    if (foreign(parent, "sl_ctx_link_on"))
        return -EXDEV;
    link *l = calloc(1, sizeof *l);
    if (!l)
        return -ENOMEM;
    atomic_init(&l->refs, 2);
    l->ra = sl_reactor_current();
    l->rb = r;
    l->parent = sl_ctx_ref(parent);
    l->deadline = parent->deadline;
    l->fn = fn;
    l->arg = arg;
    sl_ctx_after(parent, &l->after, a_parent_ended, l);
    sl_reactor_post_mem(r, &l->m_create, b_create, l);
    return 0;
}
