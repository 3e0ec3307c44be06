/* ctx.c: the context tree — making, ending, references, reading.
 *
 * A context that can end and has not ended sits in its parent's list of
 * children (a doubly linked list, so freeing a child takes it out in O(1)).
 * Ending a context walks its subtree without recursion or a stack: it ends a
 * node, takes it out of its parent's list and descends into its first
 * child; a node with no children left sends the walk back to its parent,
 * whose next child is now at the head of its list. Every node is visited
 * once, so the walk is O(descendants). After-funcs run only once the whole
 * subtree has ended, so that an after-func sees a consistent tree. */
#include <errno.h>
#include <event2/event.h>
#include "ctx_internal.h"
#include "sl_diag.h"

static sl_ctx background = { .kind = K_BG, .refs = 1 };

static const char *const cause_texts[SL_CAUSE_COUNT] = {
    "", "canceled", "deadline exceeded", "client disconnected", "shutdown", "upstream failed",
    "deadlock", "caller's deadline",
};

sl_ctx *sl_ctx_background(void) { return &background; }

const char *sl_cause_text(sl_cause c)
{
    return (unsigned)c < SL_CAUSE_COUNT ? cause_texts[c] : "?";
}

sl_reactor *sl_ctx_reactor(const sl_ctx *ctx) { return ctx ? ctx->r : NULL; }

/* A context is touched by its own reactor's thread only; the background is
 * read-only and shared. */
bool sl__ctx_foreign_report(const sl_ctx *c, const char *what)
{
    sl_reactor *cur = sl_reactor_current();
    sl_report_misuse(cur, "%s: context of reactor %d used %s", what, sl_reactor_id(c->r),
                     cur ? "on another reactor" : "outside any reactor");
    return true;
}

/* ---- the children list ------------------------------------------------------ */

static void attach(sl_ctx *parent, sl_ctx *c)
{
    SL_LIST_PUSH_FRONT(&parent->children, c, clink);
    c->attached = true;
}

static void detach(sl_ctx *c)
{
    if (!c->attached)
        return;
    SL_LIST_REMOVE(&c->parent->children, c, clink);
    c->attached = false;
}

/* ---- ending ------------------------------------------------------------------- */

/* Ends one node; if it has after-funcs it joins the fire list (with a
 * reference, so an after-func dropping the last one cannot free it under
 * the others). */
static void end_one(sl_ctx *c, int err, sl_cause cause, sl_ctx ***fire_tail)
{
    detach(c);
    c->err = err;
    c->cause = cause;
    sl__ctx_disarm(c);
    sl__ctx_cancel_tasks(c, err);
    if (c->afters.head) {
        c->refs++;
        **fire_tail = c;
        *fire_tail = &c->fire_next;
    }
}

void sl__ctx_end(sl_ctx *top, int err, sl_cause cause)
{
    sl_ctx *fire = NULL, **fire_tail = &fire;
    top->refs++;   /* an after-func may drop the caller's last reference */
    end_one(top, err, cause, &fire_tail);
    for (sl_ctx *cur = top;;) {
        sl_ctx *ch = cur->children.head;
        if (ch) {
            end_one(ch, err, cause, &fire_tail);
            cur = ch;
        } else if (cur == top) {
            break;
        } else {
            cur = cur->parent;
        }
    }
    while (fire) {
        sl_ctx *c = fire;
        fire = c->fire_next;
        c->fire_next = NULL;
        sl__ctx_fire_afters(c);
        sl_ctx_unref(c);
    }
    sl_ctx_unref(top);
}

int sl_ctx_cancel(sl_ctx *ctx, sl_cause cause)
{
    if (!ctx || cause <= SL_CAUSE_NONE || cause >= SL_CAUSE_COUNT)
        return -EINVAL;
    if (sl__ctx_foreign(ctx, "sl_ctx_cancel"))
        return -EXDEV;
    if (!sl__ctx_can_end(ctx))
        return -EINVAL;
    if (ctx->err)
        return -EALREADY;
    bool timed = cause == SL_CAUSE_DEADLINE || cause == SL_CAUSE_CALLER_DEADLINE;
    sl__ctx_end(ctx, timed ? -ETIMEDOUT : -ECANCELED, cause);
    return 0;
}

/* ---- making --------------------------------------------------------------------- */

/* The child's deadline, and whether it is its own (earlier than the
 * parent's) and so needs a timer. */
static uint64_t child_deadline(const sl_ctx *parent, int kind, uint64_t want, bool *own)
{
    uint64_t pd = parent->deadline;
    *own = false;
    if (kind == K_NOCANCEL)
        return 0;
    if (want && (!pd || want < pd)) {
        *own = true;
        return want;
    }
    return pd;
}

/* Makes a child of `parent` of the given kind, with `extra` bytes of tail
 * storage for the caller (a value's copy) at c->tail. Everything that can fail happens
 * before the child is linked anywhere. */
int sl__ctx_make(sl_ctx **out, sl_ctx *parent, int kind, uint64_t deadline, size_t extra)
{
    if (!out || !parent)
        return -EINVAL;
    if (sl__ctx_foreign(parent, "making a child"))
        return -EXDEV;
    sl_reactor *r = sl_reactor_current();
    if (!r)
        return -EINVAL;
    bool own;
    uint64_t d = child_deadline(parent, kind, deadline, &own);
    /* A deadline further off than the coarse clock can lag is certainly
     * ahead (a request's budget, usually): the exact clock only near it. */
    bool ended = parent->err != 0 ||
                 (own && d <= sl_now_coarse_ns() + sl_coarse_slack_ns() && d <= sl_now_ns());
    bool timer = own && !ended;
    /* the tail: the caller's `extra` bytes first (so a value's copy sits at
     * c->tail whether or not there is a timer), then the timer */
    size_t at = (extra + _Alignof(max_align_t) - 1) / _Alignof(max_align_t) * _Alignof(max_align_t);
    sl_ctx *c = sl__ctx_alloc(sizeof *c + at + (timer ? sl__ctx_timer_size() : 0));
    if (!c)
        return -ENOMEM;
    c->r = r;
    c->kind = (uint8_t)kind;
    c->refs = 1;
    c->deadline = d;
    if (timer && sl__ctx_arm(c, (char *)c->tail + at) < 0) {
        sl__ctx_free(c);
        return -ENOMEM;
    }
    c->parent = sl_ctx_ref(parent);
    c->up = parent;
    if (kind != K_NOCANCEL && parent->err) {   /* born ended, like its parent */
        c->err = parent->err;
        c->cause = parent->cause;
    } else if (kind != K_NOCANCEL && own && ended) {   /* a deadline already past */
        c->err = -ETIMEDOUT;
        c->cause = SL_CAUSE_DEADLINE;
    } else if (kind != K_NOCANCEL && sl__ctx_can_end(parent)) {
        attach(parent, c);
    }
    *out = c;
    return 0;
}

int sl_ctx_with_cancel(sl_ctx **out, sl_ctx *parent)
{
    return sl__ctx_make(out, parent, K_NODE, 0, 0);
}

int sl_ctx_with_deadline(sl_ctx **out, sl_ctx *parent, uint64_t deadline)
{
    return sl__ctx_make(out, parent, K_NODE, deadline, 0);
}

int sl_ctx_with_timeout(sl_ctx **out, sl_ctx *parent, uint64_t ms)
{
    uint64_t now = sl_now_ns();
    uint64_t ns = ms > (UINT64_MAX - now) / SL_NS_PER_MS ? UINT64_MAX - now : ms * SL_NS_PER_MS;
    return sl__ctx_make(out, parent, K_NODE, now + ns, 0);
}

int sl_ctx_without_cancel(sl_ctx **out, sl_ctx *parent)
{
    return sl__ctx_make(out, parent, K_NOCANCEL, 0, 0);
}

int sl_ctx_with_value(sl_ctx **out, sl_ctx *parent, const void *key, void *value,
                      void (*free_fn)(void *))
{
    if (!key)
        return -EINVAL;
    int rc = sl__ctx_make(out, parent, K_VALUE, 0, 0);
    if (rc == 0) {
        (*out)->key = key;
        (*out)->value = value;
        (*out)->free_fn = free_fn;
    }
    return rc;
}

/* ---- reading ------------------------------------------------------------------------ */

void *sl_ctx_value(const sl_ctx *ctx, const void *key)
{
    if (!ctx || !key || sl__ctx_foreign(ctx, "sl_ctx_value"))
        return NULL;
    /* Keys, values and `up` never change once made, and a linked child holds
     * its remote parent, so following `up` across a link is safe. */
    for (const sl_ctx *c = ctx; c; c = c->up)
        if (c->key == key)   /* NULL in a context that carries no value */
            return c->value;
    return NULL;
}

int sl_ctx_err(const sl_ctx *ctx)
{
    if (!ctx)
        return -EINVAL;
    if (sl__ctx_foreign(ctx, "sl_ctx_err"))
        return -EXDEV;
    return ctx->err;
}

sl_cause sl_ctx_cause(const sl_ctx *ctx, const char **reason)
{
    sl_cause c = ctx && !sl__ctx_foreign(ctx, "sl_ctx_cause") ? ctx->cause : SL_CAUSE_NONE;
    if (reason)
        *reason = cause_texts[c];
    return c;
}

/* ---- references ---------------------------------------------------------------------- */

sl_ctx *sl_ctx_ref(sl_ctx *ctx)
{
    if (!ctx || sl__ctx_foreign(ctx, "sl_ctx_ref"))
        return NULL;
    if (ctx->kind != K_BG)
        ctx->refs++;
    return ctx;
}

static void free_one(sl_ctx *c)
{
    /* An armed after-func or a bound task holds a reference, and children
     * hold one too: nothing is left hanging from c here. */
    detach(c);
    sl__ctx_disarm(c);
    if (c->free_fn)
        c->free_fn(c->value);
    if (c->link)
        sl__ctx_link_child_gone(c->link);
    sl__ctx_free(c);
}

void sl_ctx_unref(sl_ctx *ctx)
{
    if (!ctx || sl__ctx_foreign(ctx, "sl_ctx_unref"))
        return;
    /* the child's reference to its parent goes with it: iterate, so a deep
     * chain cannot overflow the stack */
    while (ctx && ctx->kind != K_BG && --ctx->refs == 0) {
        sl_ctx *parent = ctx->parent;
        free_one(ctx);
        ctx = parent;
    }
}
