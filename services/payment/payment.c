/* payment-svc: charges per order, and the callback that closes the loop.
 *
 * POST /charge records the charge (on the reactor hash(order_id) names),
 * calls order's POST /orders/{id}/paid, and keeps the charge only when the
 * order confirmed it: any other answer voids it (409 from the order:
 * 409 order_failed; anything else passed on). POST /void of a charge not
 * made yet leaves a tombstone, so that the charge is refused when it
 * comes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "svc.h"
#include "svc_body.h"
#include "svc_hop.h"
#include "svc_map.h"

#define ID_MAX 24
_Static_assert(ID_MAX == SVC_BODY_ID_MAX, "the body's order id fits the record's");

enum { CHARGED, VOIDED };

/* A charge: CHARGED (confirmed once the order said PAID), then perhaps
 * VOIDED. A tombstone is a void that came first: nothing was charged and
 * nothing will be for this order (a late charge is refused with 409); it
 * reads as "never charged" (404). */
typedef struct charge {
    svc_node node;
    char id[ID_MAX];
    int64_t amount;
    int status;
    bool confirmed;           /* the order said PAID */
    bool tomb;
} charge;

static svc S;

static charge *find(const char *id)
{
    svc_map *charges = svc_here()->app;
    return (charge *)svc_map_find(charges, id, strlen(id));
}

/* ---- steps on the charge's reactor ------------------------------------------------------ */

typedef struct chg_io {
    char id[ID_MAX];
    int64_t amount;
    int code;                 /* 0: go on; else the status to answer */
    int status;               /* CHARGED / VOIDED, -1: none */
} chg_io;

static int open_begin(sl_task *t, void *arg)
{
    chg_io *io = arg;
    charge *c = find(io->id);
    (void)t;
    io->code = 0;
    if (c) {   /* the same order again (idempotent), or voided before it came */
        io->code = c->status == VOIDED ? 409 : c->confirmed ? 200 : 409;
        io->amount = c->amount;
    } else if (!(c = calloc(1, sizeof *c))) {
        io->code = 503;
    } else {
        strcpy(c->id, io->id);
        c->amount = io->amount;
        c->status = CHARGED;
        c->node.key = c->id;
        c->node.klen = strlen(c->id);
        svc_map_put(svc_here()->app, &c->node);
    }
    return 0;
}

static int confirm_begin(sl_task *t, void *arg)
{
    chg_io *io = arg;
    charge *c = find(io->id);
    (void)t;
    io->code = c && c->status == CHARGED ? 200 : 409;   /* voided meanwhile: the order failed */
    if (io->code == 200)
        c->confirmed = true;
    return 0;
}

/* Voids the charge; when there is none yet, leaves a tombstone: the void
 * was decided, so a charge of this order still on its way (queued,
 * delayed, retried) must be refused. io->status -1: nothing was charged. */
static int void_begin(sl_task *t, void *arg)
{
    chg_io *io = arg;
    charge *c = find(io->id);
    (void)t;
    if (!c) {
        if (!(c = calloc(1, sizeof *c)))
            return -ENOMEM;
        strcpy(c->id, io->id);
        c->tomb = true;
        c->node.key = c->id;
        c->node.klen = strlen(c->id);
        svc_map_put(svc_here()->app, &c->node);
    }
    c->status = VOIDED;
    io->status = c->tomb ? -1 : VOIDED;
    io->amount = c->amount;
    return 0;
}

static int get_begin(sl_task *t, void *arg)
{
    chg_io *io = arg;
    charge *c = find(io->id);
    (void)t;
    io->status = c && !c->tomb ? c->status : -1;
    io->amount = c ? c->amount : 0;
    return 0;
}

static const svc_step open_step = { .name = "charge (on the charge's reactor)", .begin = open_begin };
static const svc_step confirm_step = { .name = "charge confirmed", .begin = confirm_begin };
static const svc_step void_step = { .name = "charge voided", .begin = void_begin, .undo = true };
static const svc_step get_step = { .name = "charge lookup", .begin = get_begin };

static sl_reactor *owner(const char *id) { return svc_owner(&S, id, strlen(id)); }

static void answer(svc_job *job, const chg_io *io, const char *status)
{
    char out[ID_MAX + 96];
    int len = snprintf(out, sizeof out, "{\"order_id\":\"%s\",\"amount_cents\":%" PRId64 ",\"status\":\"%s\"}",
                       io->id, io->amount, status);
    svc_reply(job, 200, out, (size_t)len);
}

/* {"order_id"} (and "amount_cents" >= 0 when `amount` is not NULL). */
static int parse(svc_job *job, chg_io *io, bool amount)
{
    svc_body b;
    char err[160];
    if (svc_body_parse(job->body, job->body_len, SVC_BODY_ORDER_ID | (amount ? SVC_BODY_AMOUNT : 0), 0, &b, err,
                       sizeof err) < 0) {
        svc_reply_error(job, 400, "bad_request", NULL, "%s; want %s", err,
                        amount ? "{\"order_id\",\"amount_cents\" >= 0}" : "{\"order_id\"}");
        return -EINVAL;
    }
    strcpy(io->id, b.order_id);
    io->amount = b.amount_cents;
    return 0;
}

/* ---- POST /charge ------------------------------------------------------------------------- */

typedef struct charge_st {
    chg_io io;
    svc_hop hop;
    int rc, call_rc, status;
    sl_http_resp resp;
} charge_st;

static int charge_order(sl_task *t, svc_job *job)
{
    charge_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (parse(job, &st->io, true) < 0)
        SL_RETURN(t, 0);
    SVC_ON(t, st->rc, &st->hop, job, owner(st->io.id), &open_step, &st->io);
    if (st->rc < 0) {   /* cancelled on the way: the step may have run all the same */
        SVC_ON(t, st->call_rc, &st->hop, job, owner(st->io.id), &void_step, &st->io);
        SL_RETURN(t, st->rc);
    }
    if (st->io.code == 200)
        SL_RETURN(t, (answer(job, &st->io, "CHARGED"), 0));
    if (st->io.code)
        SL_RETURN(t, svc_reply_error(job, st->io.code, st->io.code == 503 ? "overloaded" : "order_failed", NULL,
                                     "order %s: charge %s", st->io.id, st->io.code == 503 ? "not recorded" : "voided or under way"));
    {
        char path[ID_MAX + 16];
        snprintf(path, sizeof path, "/orders/%s/paid", st->io.id);
        SL_AWAIT(t, st->call_rc, sl_http_call_key(t, &st->resp, S.up, "POST", path, NULL, 0, st->io.id, strlen(st->io.id)));
    }
    st->status = svc_upstream_status(st->call_rc, &st->resp);
    if (st->status == 200) {
        SVC_ON(t, st->rc, &st->hop, job, owner(st->io.id), &confirm_step, &st->io);
        if (st->rc == 0 && st->io.code == 200)
            answer(job, &st->io, "CHARGED");
        else if (st->rc == 0)
            svc_reply_error(job, 409, "order_failed", NULL, "the charge of order %s was voided meanwhile", st->io.id);
    } else {
        SVC_ON(t, st->rc, &st->hop, job, owner(st->io.id), &void_step, &st->io);
        if (st->status == 409)
            svc_reply_error(job, 409, "order_failed", NULL, "order %s has failed; its charge is voided", st->io.id);
        else
            svc_reply_upstream(job, st->call_rc, &st->resp, NULL);
    }
    sl_http_call_end(&st->resp);
    SL_END(t);
}

/* ---- POST /void, GET /charges/{order_id} ---------------------------------------------------- */

typedef struct void_st {
    chg_io io;
    svc_hop hop;
    int rc;
} void_st;

static int void_charge(sl_task *t, svc_job *job)
{
    void_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (parse(job, &st->io, false) < 0)
        SL_RETURN(t, 0);
    SVC_ON(t, st->rc, &st->hop, job, owner(st->io.id), &void_step, &st->io);
    if (st->rc < 0)
        SL_RETURN(t, st->rc);
    if (st->io.status < 0)
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "no charge for order %s", st->io.id));
    answer(job, &st->io, "VOIDED");
    SL_END(t);
}

static int get_charge(sl_task *t, svc_job *job)
{
    void_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (!svc_key_copy(job->param, job->param_len, st->io.id, ID_MAX))
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "no such charge"));
    SVC_ON(t, st->rc, &st->hop, job, owner(st->io.id), &get_step, &st->io);
    if (st->rc < 0)
        SL_RETURN(t, st->rc);
    if (st->io.status < 0)
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "no charge for order %s", st->io.id));
    answer(job, &st->io, st->io.status == CHARGED ? "CHARGED" : "VOIDED");
    SL_END(t);
}

/* ---- the program ------------------------------------------------------------------------------ */

static const svc_prog prog = { "payment-svc", "127.0.0.1:8083", "--order", "http://127.0.0.1:8081", false };

int main(int argc, char **argv)
{
    int rc = svc_setup(&S, &prog, argc, argv);
    if (rc)
        return rc;
    S.app_init = svc_one_map_init;
    S.app_free = svc_one_map_free;
    if ((rc = svc_route(&S, "POST", "/charge", charge_order, sizeof(charge_st))) < 0 ||
        (rc = svc_route_undo(&S, "POST", "/void", void_charge, sizeof(void_st))) < 0 ||
        (rc = svc_route(&S, "GET", "/charges/{order_id}", get_charge, sizeof(void_st))) < 0) {
        fprintf(stderr, "payment-svc: routes: %s\n", strerror(-rc));
        return 1;
    }
    return svc_run(&S);
}
