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
 * a compensation that outlives the request. An order is created on the
 * reactor that receives it (its id is drawn to hash there), so only the
 * callback and the reads may travel. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "failure.h"
#include "order.h"
#include "svc_hop.h"

#define COMPENSATION_MS 5000     /* the whole compensation */
#define RELEASE_CALL_MS 1000     /* one attempt */
#define RELEASE_ATTEMPTS 4

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
    json_t *root = json_loadb(job->body, job->body_len, 0, NULL), *item, *qty, *amount;
    int ok = json_is_object(root) && json_is_string(item = json_object_get(root, "item")) &&
             json_is_integer(qty = json_object_get(root, "qty")) &&
             json_is_integer(amount = json_object_get(root, "amount_cents"));
    if (ok) {
        ok = svc_key_valid(json_string_value(item), json_string_length(item), ITEM_MAX) &&
             json_integer_value(qty) >= 1 && json_integer_value(amount) >= 0;
        if (ok) {
            strcpy(o->item, json_string_value(item));
            o->qty = json_integer_value(qty);
            o->amount = json_integer_value(amount);
        }
    }
    json_decref(root);
    if (!ok)
        svc_reply_error(job, 400, "bad_request", NULL, "want {\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1250}: "
                        "item 1-63 of [A-Za-z0-9._:-], qty >= 1, amount_cents >= 0");
    return ok ? 0 : -EINVAL;
}

static order *create(svc_job *job, create_st *st)
{
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

/* The compensation: mark FAILED if the request could not, and give the
 * reservation back, under a context of its own (the caller may be gone). */
typedef struct comp_st {
    char id[ID_MAX];
    char item[ITEM_MAX];
    uint64_t tag;
    bool mark;
    int rc, attempt, status;
    uint64_t deadline;
    char body[ID_MAX + ITEM_MAX + 32];
    sl_http_resp resp;
} comp_st;

/* Releases, retrying (an overloaded inventory may drop the first attempt)
 * until it answers 200 or 404 (never reserved: a reservation still on its
 * way fails by itself, since the order is FAILED by now). */
static int compensate(sl_task *t, void *arg)
{
    comp_st *c = arg;
    order *o = find(c->id, strlen(c->id));
    SL_BEGIN(t);
    if (c->mark && o) {
        SL_AWAIT(t, c->rc, sl_mutex_lock(t, &o->lock, c->tag));
        if (c->rc == 0) {
            o->status = FAILED;
            sl_mutex_unlock(t, &o->lock);
        }
    }
    for (c->attempt = 0; c->attempt < RELEASE_ATTEMPTS; c->attempt++) {
        if (c->attempt) {
            SL_AWAIT(t, c->rc, sl_sleep(t, (100ULL << c->attempt) * SL_NS_PER_MS));
            if (c->rc < 0)
                break;
        }
        int len = snprintf(c->body, sizeof c->body, "{\"order_id\":\"%s\",\"item\":\"%s\"}", c->id, c->item);
        c->deadline = sl_ctx_narrow(t, RELEASE_CALL_MS);
        SL_AWAIT(t, c->rc, sl_http_call(t, &c->resp, S.up, "POST", "/release", c->body, (size_t)len));
        sl_task_set_deadline(t, c->deadline);
        c->status = svc_upstream_status(c->rc, &c->resp);
        sl_http_call_end(&c->resp);
        if (c->status == 200 || c->status == 404)
            SL_RETURN(t, 0);
    }
    sl_report(sl_task_reactor(t), "order-svc: release of order %s failed (last answer %d)", c->id, c->status);
    SL_END(t);
}

static void comp_free(void *arg)
{
    comp_st *c = arg;
    sl_http_call_end(&c->resp);
    free(c);
}

static void start_compensation(svc_job *job, const order *o, bool mark)
{
    comp_st *c = calloc(1, sizeof *c);
    sl_ctx *ctx = NULL;
    if (c) {
        strcpy(c->id, o->id);
        strcpy(c->item, o->item);
        c->tag = job->tag;
        c->mark = mark;
    }
    if (!c || svc_compensation_ctx(job, COMPENSATION_MS, &ctx) < 0 ||
        svc_spawn_bg(ctx, compensate, c, "order compensation", comp_free) < 0) {
        sl_report(sl_reactor_current(), "order-svc: cannot compensate order %s", o->id);
        free(c);
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
    start_compensation(job, o, !marked);
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
        SL_AWAIT(t, st->rc, sl_http_call(t, &st->resp, S.up, "POST", "/reserve", body, (size_t)len));
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
