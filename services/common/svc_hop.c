/* svc_hop.c: a state step on its owner reactor; see svc_hop.h.
 *
 * Who frees a travelling hop: always the caller's reactor, when the "done"
 * message arrives (after the owner's task ended). The caller either is
 * still parked (copy the io back, wake it) or gave up (its on_abort
 * cleared `waiter`): both happen on the caller's reactor, so no race. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "svc_hop.h"

typedef struct hop {
    const svc_step *step;
    sl_reactor *origin;
    sl_task *waiter;          /* NULL once the caller gave up */
    void *dst;                /* the caller's io */
    size_t io_size;
    int rc;
    sl_msg done;
    alignas(16) unsigned char io[];
} hop;

/* ---- on the caller's reactor ---------------------------------------------------------- */

static void hop_done(void *arg)
{
    hop *h = arg;
    if (h->waiter) {
        memcpy(h->dst, h->io, h->io_size);
        sl_task_unpark(h->waiter, h->rc);
    } else if (h->step->drop) {
        h->step->drop(h->io);
    }
    free(h);
}

static void hop_abort(sl_task *t, void *obj, int err)
{
    hop *h = obj;
    (void)t;
    (void)err;
    h->waiter = NULL;   /* the result, when it comes, is dropped */
}

/* ---- on the owner ------------------------------------------------------------------------ */

static int hop_task(sl_task *t, void *arg)
{
    hop *h = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, h->rc, h->step->begin(t, h->io));
    if (h->step->finish)
        h->rc = h->step->finish(t, h->io, h->rc);
    SL_END(t);
}

/* The task ended (its binding to the linked context is gone too). */
static void hop_task_end(void *arg)
{
    hop *h = arg;
    sl_reactor_post_mem(h->origin, &h->done, hop_done, h);
}

static void hop_linked(sl_ctx *child, int err, void *arg)
{
    hop *h = arg;
    svc_shard *sh = svc_here();
    if (err == 0 && sh->closing)
        err = -ECANCELED;
    /* (an undo sent by a cancelled caller runs under an ended context: its
     * step does not wait, so that does not stop it) */
    if (err == 0)
        err = sl_go(child, hop_task, h, NULL, &(sl_spawn_opts){ .name = h->step->name,
                    .state_free = hop_task_end, .group = &sh->bg });
    sl_ctx_unref(child);
    if (err < 0) {
        h->rc = err;
        hop_task_end(h);
    }
}

/* ---- the caller's side ------------------------------------------------------------------- */

int svc_hop_start(sl_task *t, svc_hop *hop_, svc_job *job, sl_reactor *owner, const svc_step *step,
                  void *io, size_t io_size)
{
    int cancelled = sl_task_cancelled(t);
    hop_->local = owner == sl_task_reactor(t);
    if (hop_->local)
        return cancelled && !step->undo ? cancelled : step->begin(t, io);
    if (cancelled && !step->undo)
        return cancelled;
    sl_ctx *parent = svc_job_link_ctx(job);
    hop *h = parent ? malloc(sizeof *h + io_size) : NULL;
    int rc;
    if (!h)
        return -ENOMEM;
    *h = (hop){ .step = step, .origin = sl_task_reactor(t), .dst = io, .io_size = io_size };
    memcpy(h->io, io, io_size);
    if ((rc = sl_ctx_link_on(owner, parent, hop_linked, h)) < 0) {
        free(h);
        return rc;
    }
    /* linked: the step will run and hop_done will free h whatever happens */
    if (cancelled)
        return cancelled;
    rc = sl_task_park(t, h, hop_abort);
    if (rc == SL_PENDING)
        h->waiter = t;
    return rc;
}

int svc_hop_end(sl_task *t, svc_hop *hop_, const svc_step *step, void *io, int rc)
{
    if (hop_->local && step->finish)
        return step->finish(t, io, rc);
    return rc;
}
