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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stock.h"
#include "svc.h"
#include "svc_body.h"
#include "svc_dbroute.h"
#include "svc_map.h"
#include "svc_store.h"
#include "svc_metrics.h"
#include "svc_undo.h"

#define ID_MAX 24
#define TOMB_TTL_S 3600           /* a tombstone older than this is deleted (docs/services.md) */
_Static_assert(ID_MAX == SVC_BODY_ID_MAX && INV_ITEM_MAX == SVC_BODY_ITEM_MAX, "the body's keys fit the records'");

/* The stock (a row per item) and the reservations (a row per order):
 * RESERVED (taken, `done` once the charge went through), then perhaps
 * RELEASED (given back, once). A tombstone (item NULL) is a release that
 * came first: no stock was taken and none ever will be for this order (a
 * late reserve is refused); it reads as "never reserved" (404). Tombstones
 * are deleted TOMB_TTL_S after they were made: a reserve of that order
 * still on its way after an hour is past any budget. Taking the stock and
 * recording the reservation is one transaction, so a crash or a cancelled
 * caller never leaves stock taken and unrecorded. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS stock(item TEXT PRIMARY KEY, avail INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS resv(id TEXT PRIMARY KEY, item TEXT, qty INTEGER NOT NULL, "
    "released INTEGER NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0, ts INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS resv_tomb ON resv(ts) WHERE item IS NULL;";

static svc S;
static inv_item *items;
static size_t nitems;

/* ---- steps, on a worker of the pool (svc_store.h) -------------------------------------- */

typedef struct res_io {
    char id[ID_MAX];
    char item[INV_ITEM_MAX];
    int64_t qty;
    int64_t seq;              /* the void's outbox row (release) */
    int code;                 /* 0: go on; else the status to answer */
    const char *err;          /* static error code */
    bool found, released, done;
} res_io;

/* The reservation's row: 1 a reservation (io's item, qty, released
 * filled), 2 a tombstone, 0 none, or a negative errno. */
static int resv_row(svc_conn *c, res_io *io)
{
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "SELECT item, qty, released, done FROM resv WHERE id = ?1", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(s)) != SQLITE_ROW)
        return svc_conn_done(c, rc);
    if (sqlite3_column_type(s, 0) == SQLITE_NULL)
        return 2;
    snprintf(io->item, sizeof io->item, "%s", (const char *)sqlite3_column_text(s, 0));
    io->qty = sqlite3_column_int64(s, 1);
    io->released = sqlite3_column_int(s, 2) != 0;
    io->done = sqlite3_column_int(s, 3) != 0;
    return 1;
}

/* The stock of io->item: >= 0, -1 unknown item, or a negative errno below -1. */
static int64_t stock_row(svc_conn *c, const char *item)
{
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "SELECT avail FROM stock WHERE item = ?1", &rc);
    if (!s)
        return rc < -1 ? rc : -EIO;
    sqlite3_bind_text(s, 1, item, -1, SQLITE_STATIC);
    if ((rc = sqlite3_step(s)) == SQLITE_ROW)
        return sqlite3_column_int64(s, 0);
    rc = svc_conn_done(c, rc);
    return rc < -1 ? rc : rc < 0 ? -EIO : -1;
}

static int stock_add(svc_conn *c, const char *item, int64_t qty)
{
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "UPDATE stock SET avail = avail + ?2 WHERE item = ?1 RETURNING avail", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, item, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, qty);
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        /* the gauge is set, not added to, from the store's one writer: a
         * step whose transaction is rolled back leaves it off by that step
         * only until the item's next change sets it again */
        svc_metrics_stock_set(item, sqlite3_column_int64(s, 0));
        rc = sqlite3_step(s);
    }
    return svc_conn_done(c, rc);
}

static int reserve_fn(svc_conn *c, void *arg)
{
    res_io *io = arg;
    char item[INV_ITEM_MAX];
    int64_t qty = io->qty;
    int64_t avail = stock_row(c, io->item);
    int rc = 0;
    io->code = 0;
    if (avail < -1)
        return (int)avail;
    if (avail == -1)
        return io->code = 404, io->err = "unknown_item", 0;
    strcpy(item, io->item);
    int r = resv_row(c, io);
    if (r < 0)
        return r;
    if (r == 1)   /* the same order again: idempotent */
        return io->code = io->released ? 409 : io->done ? 200 : 409,
               io->err = io->released ? "order_failed" : "in_progress", 0;
    if (r == 2)   /* a release came first */
        return io->code = 409, io->err = "order_failed", 0;
    strcpy(io->item, item);
    io->qty = qty;
    if (avail < io->qty)
        return io->code = 409, io->err = "out_of_stock", 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "INSERT INTO resv(id, item, qty, ts) VALUES (?1, ?2, ?3, ?4)", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, io->item, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, io->qty);
    sqlite3_bind_int64(s, 4, svc_conn_now());
    if ((rc = svc_conn_done(c, sqlite3_step(s))) < 0)
        return rc;
    return stock_add(c, io->item, -io->qty);
}

static int settle_ok_fn(svc_conn *c, void *arg)
{
    res_io *io = arg;
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "UPDATE resv SET done = 1 WHERE id = ?1 AND item IS NOT NULL AND released = 0", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
    if ((rc = svc_conn_done(c, sqlite3_step(s))) < 0)
        return rc;
    io->code = sqlite3_changes(svc_conn_db(c)) ? 200 : 409;   /* released meanwhile: the order failed */
    return 0;
}

/* Deletes the tombstones past their time (a few rows with each release). */
static int expire(svc_conn *c)
{
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "DELETE FROM resv WHERE id IN (SELECT id FROM resv WHERE item IS NULL AND ts < ?1 "
                              "LIMIT 16)", &rc);
    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, svc_conn_now() - TOMB_TTL_S);
    return svc_conn_done(c, sqlite3_step(s));
}

/* The void's body at payment: {"order_id"} (in buf, VOID_BODY_MAX bytes). */
#define VOID_BODY_MAX (ID_MAX + 32)
static const char *void_body(const char *id, char *buf, size_t *len)
{
    svc_json j;
    svc_json_init(&j, buf, VOID_BODY_MAX);
    svc_json_str(&j, "order_id", id);
    return svc_json_end(&j, len);
}

/* Gives the stock back once, whoever asks first; `tomb`: when there is no
 * reservation, leaves a tombstone (the release was decided, so a reserve
 * of this order still on its way must never take stock); `post_void`:
 * inserts the void at payment into the outbox (io->seq). io->found: there
 * was a reservation. */
static int give_back(svc_conn *c, res_io *io, bool tomb, bool post_void)
{
    int rc = 0, r = resv_row(c, io);
    if (r < 0)
        return r;
    io->found = r == 1;
    if (r == 1 && !io->released) {
        sqlite3_stmt *s = svc_conn_prepare(c, "UPDATE resv SET released = 1 WHERE id = ?1", &rc);
        if (!s)
            return rc;
        sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
        if ((rc = svc_conn_done(c, sqlite3_step(s))) < 0 || (rc = stock_add(c, io->item, io->qty)) < 0)
            return rc;
    }
    if (r == 0 && tomb) {
        if ((rc = expire(c)) < 0)
            return rc;
        sqlite3_stmt *s = svc_conn_prepare(c, "INSERT INTO resv(id, item, qty, released, ts) VALUES (?1, NULL, 0, 1, ?2)", &rc);
        if (!s)
            return rc;
        sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, svc_conn_now());
        if ((rc = svc_conn_done(c, sqlite3_step(s))) < 0)
            return rc;
    }
    if (io->found && post_void) {
        char buf[VOID_BODY_MAX];
        size_t len;
        return svc_conn_outbox_add(c, "/void", void_body(io->id, buf, &len), io->id, &io->seq);
    }
    return 0;
}

static int release_fn(svc_conn *c, void *io) { return give_back(c, io, false, false); }
static int release_or_tomb_fn(svc_conn *c, void *io) { return give_back(c, io, true, false); }
static int release_void_fn(svc_conn *c, void *io) { return give_back(c, io, true, true); }

static int get_fn(svc_conn *c, void *arg)
{
    res_io *io = arg;
    int64_t avail = stock_row(c, io->item);
    if (avail < -1)
        return (int)avail;
    io->found = avail >= 0;
    io->qty = avail >= 0 ? avail : 0;
    return 0;
}

/* A reservation as it stands (a tombstone is not found: it is not one). */
static int resv_get_fn(svc_conn *c, void *arg)
{
    res_io *io = arg;
    int r = resv_row(c, io);
    if (r < 0)
        return r;
    io->found = r == 1;
    return 0;
}

static const svc_dbstep reserve_step = { .name = "reserve", .fn = reserve_fn, .write = true };
static const svc_dbstep settle_ok_step = { .name = "reservation kept", .fn = settle_ok_fn, .write = true };
static const svc_dbstep release_step = { .name = "reservation given back", .fn = release_fn, .write = true };
static const svc_dbstep release_or_tomb_step = { .name = "reservation given back (or tombstoned)",
                                                 .fn = release_or_tomb_fn, .write = true };
static const svc_dbstep release_void_step = { .name = "reservation released", .fn = release_void_fn, .write = true };
static const svc_dbstep get_step = { .name = "stock lookup", .fn = get_fn };
static const svc_dbstep resv_get_step = { .name = "reservation lookup", .fn = resv_get_fn };

/* An undo step when the caller is gone: it runs all the same, detached. */
static void undo_detached(svc_job *job, const svc_dbstep *step, const res_io *io)
{
    int rc = svc_db_undo(job, step, io, sizeof *io, NULL);
    if (rc < 0)
        sl_report(sl_reactor_current(), "inventory-svc: cannot give back the stock of order %s: %s", io->id,
                  strerror(-rc));
}

static bool gave_up(int rc) { return rc == -ETIMEDOUT || rc == -ECANCELED; }

/* ---- POST /reserve --------------------------------------------------------------------- */

typedef struct reserve_st {
    res_io io;
    int64_t amount;
    svc_db db;
    int rc, call_rc, status;
    sl_http_resp resp;
} reserve_st;

static int parse_reserve(svc_job *job, res_io *io, int64_t *amount)
{
    svc_body b;
    char err[160];
    if (svc_body_parse(job->body, job->body_len, SVC_BODY_ORDER_ID | SVC_BODY_ITEM | SVC_BODY_QTY, SVC_BODY_AMOUNT, &b,
                       err, sizeof err) < 0) {
        svc_reply_error(job, 400, "bad_request", NULL, "%s; want {\"order_id\",\"item\",\"qty\" >= 1,\"amount_cents\" >= 0}", err);
        return -EINVAL;
    }
    strcpy(io->id, b.order_id);
    strcpy(io->item, b.item);
    io->qty = b.qty;
    *amount = b.amount_cents;
    return 0;
}

/* {"order_id","item","qty","status"} */
static void resv_json(const res_io *io, const char *status, svc_json *j)
{
    svc_json_str(j, "order_id", io->id);
    svc_json_str(j, "item", io->item);
    svc_json_int(j, "qty", io->qty);
    svc_json_str(j, "status", status);
}

static void answer_reserved(svc_job *job, const res_io *io)
{
    char buf[ID_MAX + INV_ITEM_MAX + 96];
    svc_json j;
    svc_json_init(&j, buf, sizeof buf);
    resv_json(io, "RESERVED", &j);
    svc_reply_json(job, 200, &j);
}

static int reserve(sl_task *t, svc_job *job)
{
    reserve_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (parse_reserve(job, &st->io, &st->amount) < 0)
        SL_RETURN(t, 0);
    SVC_DB(t, st->rc, &st->db, S.store, &reserve_step, &st->io);
    if (gave_up(st->rc)) {   /* cancelled on the way: the step may have run all the same */
        undo_detached(job, &release_or_tomb_step, &st->io);
        SL_RETURN(t, st->rc);
    }
    if (st->rc < 0)
        SL_RETURN(t, svc_reply_error(job, 503, "overloaded", NULL, "order %s: not reserved: %s", st->io.id,
                                     strerror(-st->rc)));
    if (st->io.code == 200)
        SL_RETURN(t, (answer_reserved(job, &st->io), 0));
    if (st->io.code)
        SL_RETURN(t, svc_reply_error(job, st->io.code, st->io.err, NULL, "order %s, item %s: %s", st->io.id,
                                     st->io.item, st->io.err));
    {
        char buf[ID_MAX + 64];
        svc_json j;
        size_t len;
        svc_json_init(&j, buf, sizeof buf);
        svc_json_str(&j, "order_id", st->io.id);
        svc_json_int(&j, "amount_cents", st->amount);
        const char *body = svc_json_end(&j, &len);   /* fits: an id and a number */
        SL_AWAIT(t, st->rc, sl_http_call_key(t, &st->resp, S.up, "POST", "/charge", body, len,
                                                 st->io.id, strlen(st->io.id)));
    }
    st->call_rc = st->rc;
    st->status = svc_upstream_status(st->rc, &st->resp);
    if (st->status == 200) {
        SVC_DB(t, st->rc, &st->db, S.store, &settle_ok_step, &st->io);
        if (st->rc == 0 && st->io.code == 200)
            answer_reserved(job, &st->io);
        else if (st->rc == 0)
            svc_reply_error(job, 409, "order_failed", NULL, "order %s was released meanwhile", st->io.id);
        else if (!gave_up(st->rc))
            svc_reply_error(job, 503, "overloaded", NULL, "order %s: not settled: %s", st->io.id, strerror(-st->rc));
    } else if (svc_upstream_ambiguous(st->call_rc, &st->resp)) {
        /* payment may have charged and the order committed PAID (and died
         * before answering): the stock stays taken; if the order fails,
         * its release gives it back and voids the charge */
        svc_reply_upstream(job, st->call_rc, &st->resp, NULL);
    } else {
        if (sl_task_cancelled(t)) {   /* out of budget or gone: the stock goes back all the same */
            undo_detached(job, &release_step, &st->io);
        } else {
            SVC_DB(t, st->rc, &st->db, S.store, &release_step, &st->io);
            if (st->rc < 0)
                undo_detached(job, &release_step, &st->io);
        }
        svc_reply_upstream(job, st->call_rc, &st->resp, NULL);   /* nothing to a caller that is gone */
    }
    sl_http_call_end(&st->resp);
    SL_END(t);
}

/* ---- POST /release, GET /stock/{item}, GET /reservations/{order_id}: one step each
 * (svc_dbroute.h) ------------------------------------------------------------------------ */

/* {"order_id"} (and optionally "item"); 503 while too many voids are
 * pending (nothing done yet: order's outbox retries later). */
static int parse_release(svc_job *job, void *arg)
{
    res_io *io = arg;
    svc_body b;
    char err[160];
    if (svc_body_parse(job->body, job->body_len, SVC_BODY_ORDER_ID, SVC_BODY_ITEM, &b, err, sizeof err) < 0) {
        svc_reply_error(job, 400, "bad_request", NULL, "%s; want {\"order_id\"} (and optionally \"item\")", err);
        return -EINVAL;
    }
    strcpy(io->id, b.order_id);
    if (b.has & SVC_BODY_ITEM)
        strcpy(io->item, b.item);
    if (svc_undo_full()) {
        svc_reply_error(job, 503, "overloaded", NULL, "%ld voids are pending at payment", svc_undo_pending());
        return -EBUSY;
    }
    return 0;
}

/* After release_void_fn (one transaction: the stock back, or a
 * tombstone, and the void's outbox row): hands the void at payment to the
 * outbox (svc_undo.h), which retries it until payment acknowledges it: the
 * release is answered 200 once the stock is back and the void is owned
 * here, whatever payment's state. A release of an order never reserved
 * voids nothing: without a reservation no charge was asked for, and the
 * tombstone keeps one from being asked. A release cut short (its caller
 * gone, or a 503) is retried by order's outbox: releases are idempotent. */
static int release_answer(svc_job *job, void *arg, svc_json *j)
{
    res_io *io = arg;
    if (!io->found)
        return 404;
    char buf[VOID_BODY_MAX];
    size_t len;
    const char *body = void_body(io->id, buf, &len);
    int rc = svc_undo_post(job, "/void", body, len, io->id, io->seq);
    if (rc < 0) {   /* the stock is back; a retry voids */
        svc_reply_error(job, 503, "overloaded", NULL, "the void of order %s cannot be queued: %s", io->id,
                        strerror(-rc));
        return 0;
    }
    svc_json_str(j, "order_id", io->id);
    svc_json_str(j, "status", "RELEASED");
    return 200;
}

static int stock_answer(svc_job *job, void *arg, svc_json *j)
{
    const res_io *io = arg;
    (void)job;
    if (!io->found)
        return 404;
    svc_json_str(j, "item", io->item);
    svc_json_int(j, "available", io->qty);
    return 200;
}

static int resv_answer(svc_job *job, void *arg, svc_json *j)
{
    const res_io *io = arg;
    (void)job;
    if (!io->found)
        return 404;
    resv_json(io, io->released ? "RELEASED" : "RESERVED", j);
    return 200;
}

static const svc_dbroute release_route = {
    .step = &release_void_step, SVC_DBROUTE_IO(res_io, id), .parse = parse_release, .answer = release_answer,
    .noun = "order", .failed = "not released", .missing = "not_found", .none = "no reservation for order %s",
    .undo = true,
};

static const svc_dbroute stock_route = {
    .step = &get_step, SVC_DBROUTE_IO(res_io, item), .answer = stock_answer,
    .noun = "item", .missing = "unknown_item", .no_key = "no such item", .none = "no item %s",
};

static const svc_dbroute resv_route = {
    .step = &resv_get_step, SVC_DBROUTE_IO(res_io, id), .answer = resv_answer,
    .noun = "order", .missing = "not_found", .no_key = "no such reservation", .none = "order %s was never reserved",
};

/* ---- the program ----------------------------------------------------------------------------- */

/* At start: the --stock items a new database does not have yet (a
 * restart keeps the stock it had: --stock only seeds). */
static int seed_fn(svc_conn *c, void *arg)
{
    int rc = 0;
    (void)arg;
    for (size_t i = 0; i < nitems && rc == 0; i++) {
        sqlite3_stmt *s = svc_conn_prepare(c, "INSERT OR IGNORE INTO stock(item, avail) VALUES (?1, ?2)", &rc);
        if (!s)
            break;
        sqlite3_bind_text(s, 1, items[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, items[i].count);
        if ((rc = svc_conn_done(c, sqlite3_step(s))) < 0)
            break;
        int64_t avail = stock_row(c, items[i].name);   /* a restart keeps what it had */
        if (avail < -1)
            rc = (int)avail;
        else if (avail >= 0)
            svc_metrics_stock_set(items[i].name, avail);
    }
    return rc;
}

static int seed_stock(svc *s, char *err, size_t errlen)
{
    int rc = svc_store_exec_now(s->store, seed_fn, NULL);
    if (rc < 0)
        snprintf(err, errlen, "seeding the stock: %s", strerror(-rc));
    return rc;
}

static int check_stock(svc *s, char *err, size_t errlen)
{
    int rc = inv_stock_parse(s->o.stock, &items, &nitems, err, errlen);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "inventory-svc: out of memory");
    return rc < 0 ? -EINVAL : 0;
}

static const svc_prog prog = { .name = "inventory-svc", .default_listen = "127.0.0.1:8082", .upstream_flag = "--payment",
                                .default_upstream = "http://127.0.0.1:8083", .has_stock = true };

int main(int argc, char **argv)
{
    S.check = check_stock;
    S.schema = schema;
    S.recover = seed_stock;
    int rc = svc_setup(&S, &prog, argc, argv);
    if (rc) {
        free(items);
        return rc;
    }
    if ((rc = svc_route(&S, "POST", "/reserve", reserve, sizeof(reserve_st))) < 0 ||
        /* while payment would be refused, no stock is taken to be given back */
        (rc = sl_http_route_set(S.srv, "POST", "/reserve", &(sl_http_route_opts){ .upstream = S.up })) < 0 ||
        (rc = svc_route_db(&S, "POST", "/release", &release_route)) < 0 ||
        (rc = svc_route_db(&S, "GET", "/stock/{item}", &stock_route)) < 0 ||
        (rc = svc_route_db(&S, "GET", "/reservations/{order_id}", &resv_route)) < 0) {
        sl_log(SL_LOG_ERROR, "inventory-svc: routes: %s", strerror(-rc));
        return 1;
    }
    rc = svc_run(&S);
    free(items);
    return rc;
}
