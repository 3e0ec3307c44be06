/* link.c: a child on another reactor, linked to its parent by messages.
 *
 * A link joins a parent on reactor A to a child on reactor B. Each side
 * touches only its own fields, and the fields the other side wrote before
 * posting the message that hands them over. The link lives until both sides
 * are done with it (an atomic count of two):
 *  - A's share is held by the after-func on the parent, then by the cancel
 *    message it posts to B; or, if the child goes first, given back when
 *    A stops that after-func.
 *  - B's share is held by the child, then by the "child gone" message it
 *    posts to A, which also gives back the link's reference to the parent.
 * The create message is posted before the after-func is armed, so that on B
 * a cancel can never overtake the create (messages from one thread keep
 * their order). */
#include <errno.h>
#include <stdatomic.h>
#include "ctx_internal.h"
#include "sl_diag.h"

struct sl_link {
    _Atomic int refs;
    sl_msg m_create, m_cancel, m_gone;
    sl_reactor *ra, *rb;
    void (*fn)(sl_ctx *, int, void *);
    void *arg;
    uint64_t deadline;
    /* A's */
    sl_ctx *parent;
    sl_after after;
    int err;               /* written by A before it posts m_cancel */
    sl_cause cause;
    /* B's */
    sl_ctx *child;
};

static void link_release(sl_link *l)
{
    if (atomic_fetch_sub(&l->refs, 1) == 1)
        sl__ctx_free(l);
}

static void on_a_child_gone(void *arg)
{
    sl_link *l = arg;
    if (sl_after_stop(&l->after) == 0)
        link_release(l);   /* A's share: no cancel will be sent */
    sl_ctx_unref(l->parent);
    link_release(l);       /* B's share */
}

static void post_gone(sl_link *l)
{
    sl_reactor_post_mem(l->ra, &l->m_gone, on_a_child_gone, l);
}

void sl__ctx_link_child_gone(sl_link *l)   /* on B, the child is being freed */
{
    l->child = NULL;
    post_gone(l);
}

static void on_b_cancel(void *arg)
{
    sl_link *l = arg;
    if (l->child && !l->child->err)
        sl__ctx_end(l->child, l->err, l->cause);
    link_release(l);   /* A's share */
}

static void on_a_parent_ended(sl_ctx *parent, void *arg)
{
    sl_link *l = arg;
    l->err = parent->err;
    l->cause = parent->cause;
    sl_reactor_post_mem(l->rb, &l->m_cancel, on_b_cancel, l);   /* A's share goes along */
}

static void on_b_create(void *arg)
{
    sl_link *l = arg;
    sl_ctx *c;
    int rc = sl__ctx_make(&c, sl_ctx_background(), K_NODE, l->deadline, 0);
    if (rc < 0) {
        sl_report(l->rb, "sluice: could not make a linked context on reactor %d: %d",
                  sl_reactor_id(l->rb), rc);
        l->fn(NULL, rc, l->arg);
        post_gone(l);   /* last: A may free the link once it has this */
        return;
    }
    c->link = l;
    c->up = l->parent;   /* values are read across the link: see sl_ctx_value */
    l->child = c;
    l->fn(c, 0, l->arg);
}

int sl_ctx_link_on(sl_reactor *r, sl_ctx *parent, void (*fn)(sl_ctx *, int, void *), void *arg)
{
    if (!r || !parent || !fn)
        return -EINVAL;
    if (sl__ctx_foreign(parent, "sl_ctx_link_on"))
        return -EXDEV;
    sl_reactor *ra = sl_reactor_current();
    if (!ra)
        return -EINVAL;   /* the background, outside any reactor */
    sl_link *l = sl__ctx_alloc(sizeof *l);
    if (!l)
        return -ENOMEM;
    atomic_init(&l->refs, 2);
    l->ra = ra;
    l->rb = r;
    l->fn = fn;
    l->arg = arg;
    l->deadline = parent->deadline;
    l->parent = sl_ctx_ref(parent);
    sl_reactor_post_mem(r, &l->m_create, on_b_create, l);
    sl_ctx_after(parent, &l->after, on_a_parent_ended, l);   /* cannot fail: checked above */
    return 0;
}
