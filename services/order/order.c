/* order-svc: orders, and the row lock at the heart of the demo.
 *
 * POST /orders creates the order PENDING under its row lock, reserves the
 * stock at inventory (which charges at payment, which calls back
 * POST /orders/{id}/paid, which takes the same lock to set PAID).
 *  - safe: the lock is held only to create and to mark: never across a call.
 *  - guarded: held across the call, but every lock is LOOP_CHECKed: the
 *    callback of the same trace is refused at once (508) and the chain
 *    unwinds.
 *  - naive: held across the call, no deadline, unbounded wait: stuck.
 * On any failure the order ends FAILED and the reservation is released by
 * a compensation that outlives the request and is retried until inventory
 * acknowledges it (svc_undo.h): while too many are pending, new orders are
 * refused with 503. An order is created on the
 * reactor that receives it (its id is drawn to hash there), so only the
 * callback and the reads may travel. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "failure.h"
#include "order.h"
#include "svc_body.h"
#include "svc_hop.h"
#include "svc_undo.h"

_Static_assert(ID_MAX == SVC_BODY_ID_MAX && ITEM_MAX == SVC_BODY_ITEM_MAX, "the body's keys fit the records'");

#define MARK_MS 1000             /* one wait for the row lock to mark FAILED */

const char *const order_status_name[3] = { "PENDING", "PAID", "FAILED" };

static svc S;

static order *find(const char *id, size_t len)
{
    svc_map *orders = svc_here()->app;
    return (order *)svc_map_find(orders, id, len);
}

/* ---- POST /orders ------------------------------------------------------------------ */

typedef struct create_st {
    char id[ID_MAX];
    order *o;
    bool held;                /* guarded/naive: the lock stays held across the call */
    int rc, status;
    sl_http_resp resp;
} create_st;

/* A fresh id that hashes to this reactor, so the order lives here. */
static void new_id(svc_shard *sh, char *id)
{
    do
        snprintf(id, ID_MAX, "%016" PRIx64, svc_rand(sh));
    while (svc_shard_of(id, 16, S.n) != sh->id);
}

static int parse_order(svc_job *job, order *o)
{
    svc_body b;
    char err[160];
    if (svc_body_parse(job->body, job->body_len, SVC_BODY_ITEM | SVC_BODY_QTY | SVC_BODY_AMOUNT, 0, &b, err,
                       sizeof err) < 0) {
        svc_reply_error(job, 400, "bad_request", NULL, "%s; want {\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1250}", err);
        return -EINVAL;
    }
    strcpy(o->item, b.item);
    o->qty = b.qty;
    o->amount = b.amount_cents;
    return 0;
}

static order *create(svc_job *job, create_st *st)
{
    if (svc_undo_full()) {   /* every failure needs a release: none could be posted */
        svc_reply_error(job, 503, "overloaded", NULL, "%ld releases are pending at inventory", svc_undo_pending());
        return NULL;
    }
    order *o = calloc(1, sizeof *o);
    if (!o) {
        svc_reply_error(job, 503, "overloaded", NULL, "out of memory");
        return NULL;
    }
    if (parse_order(job, o) < 0) {
        free(o);
        return NULL;
    }
    new_id(job->sh, o->id);
    strcpy(st->id, o->id);
    snprintf(o->lock_name, sizeof o->lock_name, "order:%s", o->id);
    sl_mutex_init(&o->lock, NULL, o->lock_name, S.o.mode == SVC_GUARDED ? SL_MUTEX_LOOP_CHECK : 0);
    o->node.key = o->id;
    o->node.klen = strlen(o->id);
    svc_map_put(job->sh->app, &o->node);
    return o;
}

/* The compensation of a failed order: the release at inventory, which
 * gives the stock back and has the charge voided. It is posted to the
 * outbox (svc_undo.h), which retries it, each attempt with a budget of its
 * own, until inventory acknowledges it: 200, or 404 (never reserved, and
 * now tombstoned so that a reservation still on its way is refused). It
 * does not depend on the request, whose budget may be spent. */
static void post_release(svc_job *job, const order *o)
{
    char body[ID_MAX + ITEM_MAX + 32];
    int len = snprintf(body, sizeof body, "{\"order_id\":\"%s\",\"item\":\"%s\"}", o->id, o->item);
    int rc = svc_undo_post(job, "/release", body, (size_t)len, o->id);
    if (rc < 0)   /* out of memory, or at shutdown: said, not silently lost */
        sl_report(sl_reactor_current(), "order-svc: cannot post the release of order %s: %s", o->id, strerror(-rc));
}

/* Marks FAILED under the row lock when the request could not take it at
 * once (a callback holds it): whatever the callback does meanwhile, the
 * release posted already undoes, and tombstones refuse what comes late.
 * The mark must happen too (else the order would say PENDING or PAID for
 * an undone chain): each lock wait is bounded, and it is retried until it
 * succeeds; a holder never keeps the lock past its own budget. */
typedef struct mark_st {
    char id[ID_MAX];
    uint64_t tag, deadline;
    int rc, attempts;
} mark_st;

static int mark_failed(sl_task *t, void *arg)
{
    mark_st *m = arg;
    order *o = find(m->id, strlen(m->id));
    SL_BEGIN(t);
    if (!o)
        SL_RETURN(t, 0);
    for (;;) {
        m->deadline = sl_ctx_narrow(t, MARK_MS);
        SL_AWAIT(t, m->rc, sl_mutex_lock(t, &o->lock, m->tag));
        sl_task_set_deadline(t, m->deadline);
        m->attempts++;
        if (m->rc == 0) {
            o->status = FAILED;
            sl_mutex_unlock(t, &o->lock);
            SL_RETURN(t, 0);
        }
        if (sl_task_cancelled(t))
            break;
        /* timed out, or -EDEADLK (guarded: a callback of the order's own
         * trace holds it; it does not wait for us, so waiting is safe) */
        SL_AWAIT(t, m->rc, sl_sleep(t, 10 * SL_NS_PER_MS));
        if (m->rc < 0)
            break;
    }
    fprintf(stderr, "order-svc: shutdown: order %s not yet marked FAILED after %d attempts\n", m->id, m->attempts);
    SL_END(t);
}

static void start_mark(svc_job *job, const order *o)
{
    mark_st *m = calloc(1, sizeof *m);
    sl_ctx *ctx = NULL;
    if (m) {
        strcpy(m->id, o->id);
        m->tag = job->tag;
    }
    sl_ctx *base = svc_job_link_ctx(job);
    if (!m || !base || sl_ctx_without_cancel(&ctx, base) < 0 ||
        svc_spawn_bg(ctx, mark_failed, m, "order marked FAILED", free) < 0) {
        sl_report(sl_reactor_current(), "order-svc: cannot mark order %s FAILED", o->id);
        free(m);
    }
    sl_ctx_unref(ctx);
}

/* Answers inventory's failure as the contract allows (failure.h): its
 * own words when they are the client's business, else 502 naming what
 * inventory said. Nothing for a cancelled call (the client is gone). */
static void reply_failure(svc_job *job, const create_st *st)
{
    const sl_http_resp *resp = &st->resp;
    if (st->rc < 0) {   /* no answer: timed out (504), shed (503), refused, reset, garbled (502) */
        svc_reply_upstream(job, st->rc, resp, st->id);
        return;
    }
    svc_relay_cause(job, resp);
    json_t *o = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    const char *code = json_string_value(json_object_get(o, "error"));
    const char *msg = json_string_value(json_object_get(o, "message"));
    const char *out;
    int mapped = order_failure_map(resp->status, code, &out);
    if (mapped == 502)
        svc_reply_error(job, 502, out, st->id, "inventory answered %d %s%s%s", resp->status, code ? code : "(no error code)",
                        msg ? ": " : "", msg ? msg : "");
    else
        svc_reply_error(job, mapped, out, st->id, "%s", msg ? msg : out);
    json_decref(o);
}

/* After a failed reservation: FAILED under the lock (whatever the callback
 * did: the client hears of a failure, so the order failed, and the
 * release undoes whatever the chain did), released, and answered. */
static void fail_order(sl_task *t, svc_job *job, create_st *st)
{
    order *o = st->o;
    bool marked = false;
    if (st->held || sl_mutex_trylock(t, &o->lock, job->tag) == 0) {
        o->status = FAILED;
        marked = true;
        sl_mutex_unlock(t, &o->lock);
        st->held = false;
    }
    if (!marked)
        start_mark(job, o);
    post_release(job, o);
    if (st->status == 200)   /* reserved, yet the payment's callback never came */
        svc_reply_error(job, 502, "upstream_failed", st->id, "the payment was never confirmed");
    else
        reply_failure(job, st);
}

static int create_order(sl_task *t, svc_job *job)
{
    create_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (!(st->o = create(job, st)))
        SL_RETURN(t, 0);
    /* a record made just now: its lock is free, unless this task was cancelled */
    if ((st->rc = sl_mutex_trylock(t, &st->o->lock, job->tag)) < 0) {
        st->o->status = FAILED;
        SL_RETURN(t, st->rc);
    }
    if (S.o.mode == SVC_SAFE)
        sl_mutex_unlock(t, &st->o->lock);
    else
        st->held = true;
    {
        char body[ID_MAX + ITEM_MAX + 96];
        int len = snprintf(body, sizeof body, "{\"order_id\":\"%s\",\"item\":\"%s\",\"qty\":%" PRId64
                           ",\"amount_cents\":%" PRId64 "}", st->id, st->o->item, st->o->qty, st->o->amount);
        SL_AWAIT(t, st->rc, sl_http_call_key(t, &st->resp, S.up, "POST", "/reserve", body, (size_t)len,
                                                 st->id, strlen(st->id)));
    }
    st->status = svc_upstream_status(st->rc, &st->resp);
    if (st->status == 200 && st->o->status == PAID) {
        if (st->held)
            sl_mutex_unlock(t, &st->o->lock);
        char out[ID_MAX + 48];
        int len = snprintf(out, sizeof out, "{\"order_id\":\"%s\",\"status\":\"PAID\"}", st->id);
        svc_reply(job, 201, out, (size_t)len);
    } else {
        fail_order(t, job, st);
    }
    sl_http_call_end(&st->resp);
    SL_END(t);
}

/* ---- POST /orders/{id}/paid: the callback, on the order's reactor ----------------------- */

typedef struct paid_io {
    char id[ID_MAX];
    uint64_t tag;
    order *o;                 /* owner-side, between begin and finish */
    int status;               /* the answer */
} paid_io;

static int paid_begin(sl_task *t, void *arg)
{
    paid_io *io = arg;
    if (!(io->o = find(io->id, strlen(io->id))))
        return 0;
    return sl_mutex_lock(t, &io->o->lock, io->tag);
}

static int paid_finish(sl_task *t, void *arg, int rc)
{
    paid_io *io = arg;
    if (!io->o)
        io->status = 404;
    else if (rc == -EDEADLK)
        io->status = 508;
    else if (rc < 0)
        io->status = rc == -ETIMEDOUT ? 504 : 0;
    else {
        io->status = io->o->status == FAILED ? 409 : 200;
        if (io->status == 200)
            io->o->status = PAID;
        sl_mutex_unlock(t, &io->o->lock);
    }
    io->o = NULL;
    return 0;
}

static const svc_step paid_step = { .name = "order paid (on the order's reactor)", .begin = paid_begin, .finish = paid_finish };

typedef struct paid_st {
    paid_io io;
    svc_hop hop;
    int rc;
} paid_st;

static int order_paid(sl_task *t, svc_job *job)
{
    paid_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (!svc_key_copy(job->param, job->param_len, st->io.id, ID_MAX))
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "no such order"));
    st->io.tag = job->tag;
    SVC_ON(t, st->rc, &st->hop, job, svc_owner(&S, st->io.id, job->param_len), &paid_step, &st->io);
    if (st->rc < 0)
        SL_RETURN(t, st->rc);
    const char *id = st->io.id;
    if (st->io.status == 200) {
        char out[ID_MAX + 48];
        int len = snprintf(out, sizeof out, "{\"order_id\":\"%s\",\"status\":\"PAID\"}", id);
        svc_reply(job, 200, out, (size_t)len);
    } else if (st->io.status == 404) {
        svc_reply_error(job, 404, "not_found", id, "no order %s", id);
    } else if (st->io.status == 409) {
        svc_reply_error(job, 409, "order_failed", id, "order %s has already failed", id);
    } else if (st->io.status == 508) {
        char hex[33] = "";
        const sl_traceparent *tp = sl_ctx_trace(job->ctx);
        if (tp)
            sl_trace_id_hex(tp, hex);
        svc_reply_error(job, 508, "loop_detected", id,
                        "order lock 'order:%s' is held by trace %s (this request's own trace)", id, hex);
    } else if (st->io.status == 504) {
        svc_reply_error(job, 504, "deadline_exceeded", id, "the budget ran out waiting for order lock 'order:%s'", id);
    }
    SL_END(t);
}

/* ---- GET /orders/{id} ---------------------------------------------------------------- */

typedef struct get_io {
    char id[ID_MAX];
    char item[ITEM_MAX];
    int64_t qty, amount;
    int status;               /* -1: none */
} get_io;

static int get_begin(sl_task *t, void *arg)
{
    get_io *io = arg;
    order *o = find(io->id, strlen(io->id));
    (void)t;
    io->status = o ? o->status : -1;
    if (o) {
        strcpy(io->item, o->item);
        io->qty = o->qty;
        io->amount = o->amount;
    }
    return 0;
}

static const svc_step get_step = { .name = "order lookup", .begin = get_begin };

typedef struct get_st {
    get_io io;
    svc_hop hop;
    int rc;
} get_st;

static int get_order(sl_task *t, svc_job *job)
{
    get_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (!svc_key_copy(job->param, job->param_len, st->io.id, ID_MAX))
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "no such order"));
    SVC_ON(t, st->rc, &st->hop, job, svc_owner(&S, st->io.id, job->param_len), &get_step, &st->io);
    if (st->rc < 0)
        SL_RETURN(t, st->rc);
    if (st->io.status < 0)
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", st->io.id, "no order %s", st->io.id));
    char out[ID_MAX + ITEM_MAX + 128];
    int len = snprintf(out, sizeof out, "{\"order_id\":\"%s\",\"item\":\"%s\",\"qty\":%" PRId64
                       ",\"amount_cents\":%" PRId64 ",\"status\":\"%s\"}", st->io.id, st->io.item,
                       st->io.qty, st->io.amount, order_status_name[st->io.status]);
    svc_reply(job, 200, out, (size_t)len);
    SL_END(t);
}

/* ---- the program ---------------------------------------------------------------------- */

static const svc_prog prog = { "order-svc", "127.0.0.1:8081", "--inventory", "http://127.0.0.1:8082", false };

int main(int argc, char **argv)
{
    int rc = svc_setup(&S, &prog, argc, argv);
    if (rc)
        return rc;
    S.app_init = svc_one_map_init;
    S.app_free = svc_one_map_free;
    if ((rc = svc_route(&S, "POST", "/orders", create_order, sizeof(create_st))) < 0 ||
        (rc = svc_route(&S, "GET", "/orders", order_list, order_list_state_size())) < 0 ||
        (rc = svc_route(&S, "GET", "/orders/{id}", get_order, sizeof(get_st))) < 0 ||
        (rc = svc_route(&S, "POST", "/orders/{id}/paid", order_paid, sizeof(paid_st))) < 0 ||
        /* the callback finishes an order whose chain is done: shedding it
         * would waste that work and fail the order (issue 14) */
        (rc = sl_http_route_set(S.srv, "POST", "/orders/{id}/paid",
                                &(sl_http_route_opts){ .lane = SL_HTTP_LANE_CONTINUE })) < 0) {
        fprintf(stderr, "order-svc: routes: %s\n", strerror(-rc));
        return 1;
    }
    return svc_run(&S);
}
