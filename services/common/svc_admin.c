/* svc_admin.c: POST/DELETE /admin/fault and the fault a request meets.
 *
 * The admin request's reactor sends the new setting to every reactor as a
 * message; each stores its own copy, and the last to do so wakes the admin
 * request, so the answer means "in force everywhere". If the admin request
 * gives up first, the last message frees the broadcast instead. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "svc_int.h"

#define HANG_NS (1000ULL * 86400 * SL_NS_PER_S)   /* until the request's context ends */

typedef struct bcast {
    atomic_int left;
    sl_reactor *origin;
    sl_task *waiter;          /* NULL once the admin request gave up */
    struct admin_state *st;
    svc_fault f;
    sl_msg back;
    struct bmsg { sl_msg m; struct bcast *b; } msgs[];
} bcast;

typedef struct admin_state {
    bcast *b;
    int rc;
} admin_state;

static void bcast_back(void *arg)
{
    bcast *b = arg;
    if (b->waiter)
        sl_task_unpark(b->waiter, 0);   /* the admin request frees it */
    else
        free(b);
}

static void held_remove(svc_shard *sh, svc_job *job)
{
    if (job->held_prev_)
        job->held_prev_->held_next_ = job->held_next_;
    else
        sh->held = job->held_next_;
    if (job->held_next_)
        job->held_next_->held_prev_ = job->held_prev_;
    job->held_prev_ = job->held_next_ = NULL;
}

static void bcast_apply(void *arg)
{
    struct bmsg *m = arg;
    bcast *b = m->b;
    svc_shard *sh = svc_here();
    sh->fault = b->f;
    /* the hold in force has been cleared or replaced: what it held goes on */
    while (sh->held) {
        svc_job *job = sh->held;
        held_remove(sh, job);
        sl_task_unpark(job->held_t_, 0);
    }
    if (atomic_fetch_sub(&b->left, 1) == 1)
        sl_reactor_post_mem(b->origin, &b->back, bcast_back, b);
}

static void bcast_abort(sl_task *t, void *obj, int err)
{
    bcast *b = obj;
    (void)t;
    (void)err;
    b->st->b = NULL;
    b->waiter = NULL;
}

/* Sends f to every reactor and parks t until all have it. */
static int bcast_start(sl_task *t, admin_state *st, svc *s, const svc_fault *f)
{
    bcast *b = calloc(1, sizeof *b + (size_t)s->n * sizeof b->msgs[0]);
    if (!b)
        return -ENOMEM;
    int rc = sl_task_park(t, b, bcast_abort);
    if (rc != SL_PENDING) {
        free(b);
        return rc;
    }
    atomic_init(&b->left, s->n);
    b->origin = sl_task_reactor(t);
    b->waiter = t;
    b->st = st;
    b->f = *f;
    st->b = b;
    for (int i = 0; i < s->n; i++) {
        b->msgs[i].b = b;
        sl_reactor_post_mem(s->shards[i].r, &b->msgs[i].m, bcast_apply, &b->msgs[i]);
    }
    return SL_PENDING;
}

static int admin_fault(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    admin_state *st = sl_http_req_state(req);
    svc *s = sl_http_req_arg(req);
    svc_fault f = { 0 };
    SL_BEGIN(t);
    if (!sl_http_req_from_loopback(req))
        SL_RETURN(t, sl_http_reply_error(req, 403, "forbidden", "admin endpoints answer loopback clients only"));
    if (!strcmp(sl_http_req_method(req), "POST")) {
        char err[160];
        size_t len;
        const char *body = sl_http_req_body(req, &len);
        if (svc_fault_parse(body, len, &f, err, sizeof err) < 0)
            SL_RETURN(t, sl_http_reply_error(req, 400, "bad_request", "%s", err));
    }
    SL_AWAIT(t, st->rc, bcast_start(t, st, s, &f));
    if (st->rc < 0)
        SL_RETURN(t, st->rc);
    json_t *o = json_pack("{s:o}", "fault", svc_fault_json(&st->b->f));
    free(st->b);
    st->b = NULL;
    SL_RETURN(t, o ? sl_http_reply_json(req, 200, o) : -ENOMEM);
    SL_END(t);
}

int svc_admin_routes(svc *s)
{
    /* CONTROL lane: an operator clearing a fault from an overloaded
     * service must not be shed with the load the fault caused */
    const sl_http_route_opts control = { .lane = SL_HTTP_LANE_CONTROL };
    int rc = sl_http_route(s->srv, "POST", "/admin/fault", admin_fault, sizeof(admin_state), s);
    if (rc == 0)
        rc = sl_http_route(s->srv, "DELETE", "/admin/fault", admin_fault, sizeof(admin_state), s);
    if (rc == 0)
        rc = sl_http_route_set(s->srv, "POST", "/admin/fault", &control);
    return rc < 0 ? rc : sl_http_route_set(s->srv, "DELETE", "/admin/fault", &control);
}

/* ---- the fault a business request meets ---------------------------------------------- */

/* A held request's deadline or cancel came first: it leaves the list. */
static void hold_abort(sl_task *t, void *obj, int err)
{
    svc_job *job = obj;
    (void)t;
    (void)err;
    held_remove(job->sh, job);
}

static int hold_start(sl_task *t, svc_job *job)
{
    int rc = sl_task_park_as(t, job, hold_abort, "fault hold (DELETE /admin/fault)");
    if (rc != SL_PENDING)
        return rc;
    svc_shard *sh = job->sh;
    job->held_t_ = t;
    job->held_prev_ = NULL;
    job->held_next_ = sh->held;
    if (sh->held)
        sh->held->held_prev_ = job;
    sh->held = job;
    return SL_PENDING;
}

static bool roll(svc_shard *sh, double rate)
{
    return (double)(svc_rand(sh) >> 11) * 0x1.0p-53 < rate;
}

int svc_fault_step(sl_task *t, svc_job *job)
{
    const svc_fault *f = &job->sh->fault;
    sl_http_req *req = job->req_;
    size_t len;
    SL_BEGIN(t);
    const char *path = sl_http_req_path(req, &len);
    if (!svc_fault_applies(f, path, len, sl_http_req_route(req)))
        SL_RETURN(t, 0);
    if (f->reset) {
        sl_http_req_reset(req);
        SL_RETURN(t, 1);
    }
    if (f->error_rate > 0 && roll(job->sh, f->error_rate)) {
        sl_http_reply_error(req, 500, "injected_fault", "fault injected by /admin/fault");
        SL_RETURN(t, 1);
    }
    if (f->hang) {
        SL_AWAIT(t, job->rc_, sl_sleep(t, HANG_NS));
        SL_RETURN(t, job->rc_ < 0 ? job->rc_ : 1);
    }
    if (f->hold) {
        SL_AWAIT(t, job->rc_, hold_start(t, job));
        SL_RETURN(t, job->rc_ < 0 ? job->rc_ : 0);   /* released: the handler runs */
    }
    if (f->delay_ms) {
        SL_AWAIT(t, job->rc_, sl_sleep(t, (uint64_t)f->delay_ms * SL_NS_PER_MS));
        if (job->rc_ < 0)
            SL_RETURN(t, job->rc_);
    }
    SL_END(t);
}
