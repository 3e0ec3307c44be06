/* inventory-svc: stock per item, reservations per order.
 *
 * An item's stock and the reservations made on it live on the reactor
 * hash(item) names, so that taking stock and recording the reservation is
 * one step (a cancelled caller cannot leave stock taken and unrecorded).
 * POST /reserve takes the stock, charges at payment and settles: kept when
 * the charge went through, given back when it did not (its status passed
 * on). POST /release gives it back (once, whoever asks first), or leaves
 * a tombstone when the reserve has not come yet, and has the charge voided
 * through the outbox (svc_undo.h); without "item" it asks every reactor,
 * as GET /reservations/{order_id} does. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stock.h"
#include "svc.h"
#include "svc_hop.h"
#include "svc_map.h"
#include "svc_metrics.h"
#include "svc_undo.h"

#define ID_MAX 24

typedef struct stock {
    svc_node node;
    char item[INV_ITEM_MAX];
    int64_t avail;
} stock;

/* A reservation: RESERVED (taken, `done` once the charge went through),
 * then perhaps RELEASED (given back, once). A tombstone is a release that
 * came first: no stock was taken and none ever will be for this order (a
 * late reserve is refused); it reads as "never reserved" (404). */
typedef struct resv {
    svc_node node;
    char id[ID_MAX];
    stock *s;                 /* NULL for a tombstone */
    int64_t qty;
    bool released, done;
} resv;

typedef struct ishard { svc_map stock, resv; } ishard;

static svc S;
static inv_item *items;
static size_t nitems;

static ishard *here(void) { return svc_here()->app; }

/* ---- steps on the item's reactor ---------------------------------------------------- */

typedef struct res_io {
    char id[ID_MAX];
    char item[INV_ITEM_MAX];
    int64_t qty;
    int code;                 /* 0: go on; else the status to answer */
    const char *err;          /* static error code */
    bool found, released;
} res_io;

static int reserve_begin(sl_task *t, void *arg)
{
    res_io *io = arg;
    ishard *sh = here();
    (void)t;
    stock *s = (stock *)svc_map_find(&sh->stock, io->item, strlen(io->item));
    resv *r = (resv *)svc_map_find(&sh->resv, io->id, strlen(io->id));
    io->code = 0;
    if (!s)
        io->code = 404, io->err = "unknown_item";
    else if (r)   /* the same order again: idempotent */
        io->code = r->released ? 409 : r->done ? 200 : 409, io->err = r->released ? "order_failed" : "in_progress";
    else if (s->avail < io->qty)
        io->code = 409, io->err = "out_of_stock";
    else if (!(r = calloc(1, sizeof *r)))
        io->code = 503, io->err = "overloaded";
    else {
        s->avail -= io->qty;
        svc_metrics_stock_add(s->item, -io->qty);
        strcpy(r->id, io->id);
        r->s = s;
        r->qty = io->qty;
        r->node.key = r->id;
        r->node.klen = strlen(r->id);
        svc_map_put(&sh->resv, &r->node);
    }
    return 0;
}

/* Gives the stock back once, whoever asks first. */
static void give_back(resv *r)
{
    if (!r->released && r->s) {
        r->released = true;
        r->s->avail += r->qty;
        svc_metrics_stock_add(r->s->item, r->qty);
    }
}

static int settle_ok_begin(sl_task *t, void *arg)
{
    res_io *io = arg;
    resv *r = (resv *)svc_map_find(&here()->resv, io->id, strlen(io->id));
    (void)t;
    io->code = !r || r->released ? 409 : 200;   /* released meanwhile: the order failed */
    if (io->code == 200)
        r->done = true;
    return 0;
}

/* Finds io->id's reservation on this reactor and tells io how it stands
 * (a tombstone is not found: it is not a reservation). */
static resv *resv_read(res_io *io)
{
    resv *r = (resv *)svc_map_find(&here()->resv, io->id, strlen(io->id));
    if (r && !r->s)
        r = NULL;
    io->found = r != NULL;
    if (r) {
        strcpy(io->item, r->s->item);
        io->qty = r->qty;
        io->released = r->released;
    }
    return r;
}

static int release_begin(sl_task *t, void *arg)
{
    resv *r = resv_read(arg);
    (void)t;
    if (r)
        give_back(r);
    return 0;
}

/* The same, and when there is nothing to give back, a tombstone: the
 * release was decided, so a reserve of this order that is still on its way
 * (queued, delayed, retried) must never take stock. */
static int release_or_tomb_begin(sl_task *t, void *arg)
{
    res_io *io = arg;
    release_begin(t, io);
    if (!io->found && !svc_map_find(&here()->resv, io->id, strlen(io->id))) {
        resv *r = calloc(1, sizeof *r);
        if (!r)
            return -ENOMEM;
        strcpy(r->id, io->id);
        r->released = true;
        r->node.key = r->id;
        r->node.klen = strlen(r->id);
        svc_map_put(&here()->resv, &r->node);
    }
    return 0;
}

static int get_begin(sl_task *t, void *arg)
{
    res_io *io = arg;
    stock *s = (stock *)svc_map_find(&here()->stock, io->item, strlen(io->item));
    (void)t;
    io->found = s != NULL;
    io->qty = s ? s->avail : 0;
    return 0;
}

/* A reservation as it stands (on its item's reactor). */
static int resv_get_begin(sl_task *t, void *arg)
{
    (void)t;
    resv_read(arg);
    return 0;
}

static const svc_step reserve_step = { .name = "reserve (on the item's reactor)", .begin = reserve_begin };
static const svc_step settle_ok_step = { .name = "reservation kept", .begin = settle_ok_begin };
static const svc_step release_step = { .name = "reservation given back", .begin = release_begin, .undo = true };
static const svc_step release_or_tomb_step = { .name = "reservation given back (or tombstoned)",
                                               .begin = release_or_tomb_begin, .undo = true };
static const svc_step get_step = { .name = "stock lookup", .begin = get_begin };
static const svc_step resv_get_step = { .name = "reservation lookup", .begin = resv_get_begin };

/* ---- POST /reserve --------------------------------------------------------------------- */

typedef struct reserve_st {
    res_io io;
    int64_t amount;
    svc_hop hop;
    sl_reactor *owner;
    int rc, call_rc, status;
    sl_http_resp resp;
} reserve_st;

static int parse_reserve(svc_job *job, res_io *io, int64_t *amount)
{
    json_t *root = json_loadb(job->body, job->body_len, 0, NULL), *id, *item, *qty, *am;
    int ok = json_is_object(root) && json_is_string(id = json_object_get(root, "order_id")) &&
             json_is_string(item = json_object_get(root, "item")) &&
             json_is_integer(qty = json_object_get(root, "qty")) &&
             (!(am = json_object_get(root, "amount_cents")) || json_is_integer(am)) &&
             svc_key_valid(json_string_value(id), json_string_length(id), ID_MAX) &&
             svc_key_valid(json_string_value(item), json_string_length(item), INV_ITEM_MAX) &&
             json_integer_value(qty) >= 1 && (!am || json_integer_value(am) >= 0);
    if (ok) {
        strcpy(io->id, json_string_value(id));
        strcpy(io->item, json_string_value(item));
        io->qty = json_integer_value(qty);
        *amount = am ? json_integer_value(am) : 0;
    }
    json_decref(root);
    if (!ok)
        svc_reply_error(job, 400, "bad_request", NULL, "want {\"order_id\",\"item\",\"qty\" >= 1,\"amount_cents\" >= 0}");
    return ok ? 0 : -EINVAL;
}

static void answer_reserved(svc_job *job, const res_io *io)
{
    char out[ID_MAX + INV_ITEM_MAX + 96];
    int len = snprintf(out, sizeof out, "{\"order_id\":\"%s\",\"item\":\"%s\",\"qty\":%" PRId64 ",\"status\":\"RESERVED\"}",
                       io->id, io->item, io->qty);
    svc_reply(job, 200, out, (size_t)len);
}

static int reserve(sl_task *t, svc_job *job)
{
    reserve_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (parse_reserve(job, &st->io, &st->amount) < 0)
        SL_RETURN(t, 0);
    st->owner = svc_owner(&S, st->io.item, strlen(st->io.item));
    SVC_ON(t, st->rc, &st->hop, job, st->owner, &reserve_step, &st->io);
    if (st->rc < 0) {   /* cancelled on the way: the step may have run all the same */
        SVC_ON(t, st->call_rc, &st->hop, job, st->owner, &release_or_tomb_step, &st->io);
        SL_RETURN(t, st->rc);
    }
    if (st->io.code == 200)
        SL_RETURN(t, (answer_reserved(job, &st->io), 0));
    if (st->io.code)
        SL_RETURN(t, svc_reply_error(job, st->io.code, st->io.err, NULL, "order %s, item %s: %s", st->io.id,
                                     st->io.item, st->io.err));
    {
        char body[ID_MAX + 64];
        int len = snprintf(body, sizeof body, "{\"order_id\":\"%s\",\"amount_cents\":%" PRId64 "}", st->io.id, st->amount);
        SL_AWAIT(t, st->rc, sl_http_call_key(t, &st->resp, S.up, "POST", "/charge", body, (size_t)len,
                                                 st->io.id, strlen(st->io.id)));
    }
    st->call_rc = st->rc;
    st->status = svc_upstream_status(st->rc, &st->resp);
    if (st->status == 200) {
        SVC_ON(t, st->rc, &st->hop, job, st->owner, &settle_ok_step, &st->io);
        if (st->rc == 0 && st->io.code == 200)
            answer_reserved(job, &st->io);
        else if (st->rc == 0)
            svc_reply_error(job, 409, "order_failed", NULL, "order %s was released meanwhile", st->io.id);
    } else {
        SVC_ON(t, st->rc, &st->hop, job, st->owner, &release_step, &st->io);
        svc_reply_upstream(job, st->call_rc, &st->resp, NULL);
    }
    sl_http_call_end(&st->resp);
    SL_END(t);
}

/* ---- POST /release ----------------------------------------------------------------------- */

typedef struct release_st {
    res_io io;
    svc_hop hop;
    int i, rc;
} release_st;

static int parse_release(svc_job *job, res_io *io)
{
    json_t *root = json_loadb(job->body, job->body_len, 0, NULL), *id, *item;
    int ok = json_is_object(root) && json_is_string(id = json_object_get(root, "order_id")) &&
             svc_key_valid(json_string_value(id), json_string_length(id), ID_MAX) &&
             (!(item = json_object_get(root, "item")) ||
              svc_key_valid(json_string_value(item), json_string_length(item), INV_ITEM_MAX));
    if (ok) {
        strcpy(io->id, json_string_value(id));
        if (item)
            strcpy(io->item, json_string_value(item));
    }
    json_decref(root);
    if (!ok)
        svc_reply_error(job, 400, "bad_request", NULL, "want {\"order_id\"} (and optionally \"item\")");
    return ok ? 0 : -EINVAL;
}

/* Gives the stock back (or leaves a tombstone), then hands the void at
 * payment to the outbox (svc_undo.h), which retries it until payment
 * acknowledges it: the release is answered 200 once the stock is back and
 * the void is owned here, whatever payment's state. A release of an order
 * never reserved voids nothing: without a reservation no charge was asked
 * for, and the tombstone keeps one from being asked. */
static int release(sl_task *t, svc_job *job)
{
    release_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (parse_release(job, &st->io) < 0)
        SL_RETURN(t, 0);
    if (svc_undo_full())   /* nothing done yet: order's outbox retries later */
        SL_RETURN(t, svc_reply_error(job, 503, "overloaded", NULL, "%ld voids are pending at payment", svc_undo_pending()));
    if (st->io.item[0]) {   /* the item names the reactor */
        SVC_ON(t, st->rc, &st->hop, job, svc_owner(&S, st->io.item, strlen(st->io.item)), &release_or_tomb_step,
               &st->io);
    } else {                /* ask each reactor in turn; if none has it, tombstone it on every one */
        for (st->i = 0; st->i < S.n && !st->io.found; st->i++) {
            SVC_ON(t, st->rc, &st->hop, job, S.shards[st->i].r, &release_step, &st->io);
            if (st->rc < 0)
                break;
        }
        for (st->i = 0; st->rc == 0 && st->i < S.n && !st->io.found; st->i++)
            SVC_ON(t, st->rc, &st->hop, job, S.shards[st->i].r, &release_or_tomb_step, &st->io);
    }
    if (st->rc < 0)
        SL_RETURN(t, st->rc);
    if (!st->io.found)
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "no reservation for order %s", st->io.id));
    char body[ID_MAX + 32];
    int len = snprintf(body, sizeof body, "{\"order_id\":\"%s\"}", st->io.id);
    if ((st->rc = svc_undo_post(job, "/void", body, (size_t)len, st->io.id)) < 0)   /* the stock is back; a retry voids */
        SL_RETURN(t, svc_reply_error(job, 503, "overloaded", NULL, "the void of order %s cannot be queued: %s",
                                     st->io.id, strerror(-st->rc)));
    char out[ID_MAX + 48];
    len = snprintf(out, sizeof out, "{\"order_id\":\"%s\",\"status\":\"RELEASED\"}", st->io.id);
    svc_reply(job, 200, out, (size_t)len);
    SL_END(t);
}

/* ---- GET /stock/{item} -------------------------------------------------------------------- */

typedef struct get_st {
    res_io io;
    svc_hop hop;
    int rc;
} get_st;

static int get_stock(sl_task *t, svc_job *job)
{
    get_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (!svc_key_copy(job->param, job->param_len, st->io.item, INV_ITEM_MAX))
        SL_RETURN(t, svc_reply_error(job, 404, "unknown_item", NULL, "no such item"));
    SVC_ON(t, st->rc, &st->hop, job, svc_owner(&S, st->io.item, job->param_len), &get_step, &st->io);
    if (st->rc < 0)
        SL_RETURN(t, st->rc);
    if (!st->io.found)
        SL_RETURN(t, svc_reply_error(job, 404, "unknown_item", NULL, "no item %s", st->io.item));
    char out[INV_ITEM_MAX + 64];
    int len = snprintf(out, sizeof out, "{\"item\":\"%s\",\"available\":%" PRId64 "}", st->io.item, st->io.qty);
    svc_reply(job, 200, out, (size_t)len);
    SL_END(t);
}

/* ---- GET /reservations/{order_id} ---------------------------------------------------------- */

/* The order id does not name the reactor (the item does): ask each in turn. */
static int get_reservation(sl_task *t, svc_job *job)
{
    release_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (!svc_key_copy(job->param, job->param_len, st->io.id, ID_MAX))
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "no such reservation"));
    for (st->i = 0; st->i < S.n && !st->io.found; st->i++) {
        SVC_ON(t, st->rc, &st->hop, job, S.shards[st->i].r, &resv_get_step, &st->io);
        if (st->rc < 0)
            SL_RETURN(t, st->rc);
    }
    if (!st->io.found)
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "order %s was never reserved", st->io.id));
    char out[ID_MAX + INV_ITEM_MAX + 96];
    int len = snprintf(out, sizeof out, "{\"order_id\":\"%s\",\"item\":\"%s\",\"qty\":%" PRId64 ",\"status\":\"%s\"}",
                       st->io.id, st->io.item, st->io.qty, st->io.released ? "RELEASED" : "RESERVED");
    svc_reply(job, 200, out, (size_t)len);
    SL_END(t);
}

/* ---- the program ----------------------------------------------------------------------------- */

static void node_free(svc_node *n) { free(n); }

static void shard_free(svc_shard *sh)
{
    ishard *is = sh->app;
    if (is) {
        svc_map_free(&is->resv, node_free);
        svc_map_free(&is->stock, node_free);
    }
    free(is);
}

/* This reactor's share of the stock: the items that hash to it. */
static int shard_init(svc_shard *sh)
{
    ishard *is = calloc(1, sizeof *is);
    if (!is)
        return -ENOMEM;
    sh->app = is;
    if (svc_map_init(&is->stock, 16) < 0 || svc_map_init(&is->resv, 1024) < 0)
        return -ENOMEM;
    for (size_t i = 0; i < nitems; i++) {
        if (svc_shard_of(items[i].name, strlen(items[i].name), S.n) != sh->id)
            continue;
        stock *s = calloc(1, sizeof *s);
        if (!s)
            return -ENOMEM;
        strcpy(s->item, items[i].name);
        s->avail = items[i].count;
        svc_metrics_stock_add(s->item, s->avail);
        s->node.key = s->item;
        s->node.klen = strlen(s->item);
        svc_map_put(&is->stock, &s->node);
    }
    return 0;
}

static int check_stock(svc *s, char *err, size_t errlen)
{
    int rc = inv_stock_parse(s->o.stock, &items, &nitems, err, errlen);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "inventory-svc: out of memory");
    return rc < 0 ? -EINVAL : 0;
}

static const svc_prog prog = { "inventory-svc", "127.0.0.1:8082", "--payment", "http://127.0.0.1:8083", true };

int main(int argc, char **argv)
{
    S.check = check_stock;
    int rc = svc_setup(&S, &prog, argc, argv);
    if (rc) {
        free(items);
        return rc;
    }
    S.app_init = shard_init;
    S.app_free = shard_free;
    if ((rc = svc_route(&S, "POST", "/reserve", reserve, sizeof(reserve_st))) < 0 ||
        (rc = svc_route_undo(&S, "POST", "/release", release, sizeof(release_st))) < 0 ||
        (rc = svc_route(&S, "GET", "/stock/{item}", get_stock, sizeof(get_st))) < 0 ||
        (rc = svc_route(&S, "GET", "/reservations/{order_id}", get_reservation, sizeof(release_st))) < 0) {
        fprintf(stderr, "inventory-svc: routes: %s\n", strerror(-rc));
        return 1;
    }
    rc = svc_run(&S);
    free(items);
    return rc;
}
