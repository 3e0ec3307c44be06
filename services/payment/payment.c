/* payment-svc: charges per order, and the callback that closes the loop.
 *
 * POST /charge records the charge (a row of its database, svc_store.h),
 * calls order's POST /orders/{id}/paid, and keeps the charge only when the
 * order confirmed it: a definite refusal voids it (409 from the order:
 * 409 order_failed; anything else passed on); an answer that leaves the
 * order's state unknown (svc_upstream_ambiguous) keeps it, and the order
 * decides: its release, if it fails, voids the charge. POST /void of a charge not
 * made yet leaves a tombstone, so that the charge is refused when it
 * comes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "svc.h"
#include "svc_body.h"
#include "svc_dbroute.h"
#include "svc_map.h"
#include "svc_store.h"

#define ID_MAX 24
#define TOMB_TTL_S 3600           /* a tombstone older than this is deleted (docs/services.md) */
_Static_assert(ID_MAX == SVC_BODY_ID_MAX, "the body's order id fits the record's");

enum { CHARGED, VOIDED };

/* A charge (a row of `charges`): CHARGED (confirmed once the order said
 * PAID), then perhaps VOIDED. A tombstone is a void that came first:
 * nothing was charged and nothing will be for this order (a late charge is
 * refused with 409); it reads as "never charged" (404). Tombstones are
 * deleted TOMB_TTL_S after they were made: a charge of that order still on
 * its way after an hour is past any budget. */
static const char schema[] =
    "CREATE TABLE IF NOT EXISTS charges(id TEXT PRIMARY KEY, amount INTEGER NOT NULL, status INTEGER NOT NULL, "
    "confirmed INTEGER NOT NULL DEFAULT 0, tomb INTEGER NOT NULL DEFAULT 0, ts INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS charges_tomb ON charges(ts) WHERE tomb = 1;";

static svc S;

/* ---- steps, on a worker of the pool (svc_store.h) ------------------------------------ */

typedef struct chg_io {
    char id[ID_MAX];
    int64_t amount;
    int code;                 /* 0: go on; else the status to answer */
    int status;               /* CHARGED / VOIDED, -1: none */
} chg_io;

/* The charge's row into io (status -1 when none or a tombstone); whether
 * there is a row at all. */
static int row(svc_conn *c, chg_io *io, bool *exists, bool *tomb, bool *confirmed)
{
    int rc;
    sqlite3_stmt *s = svc_conn_prepare(c, "SELECT amount, status, confirmed, tomb FROM charges WHERE id = ?1", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    *exists = rc == SQLITE_ROW;
    io->status = -1;
    if (*exists) {
        io->amount = sqlite3_column_int64(s, 0);
        *tomb = sqlite3_column_int(s, 3) != 0;
        *confirmed = sqlite3_column_int(s, 2) != 0;
        io->status = *tomb ? -1 : sqlite3_column_int(s, 1);
    }
    return svc_conn_done(c, rc);
}

static int exec_id(svc_conn *c, const char *sql, const chg_io *io)
{
    int rc;
    sqlite3_stmt *s = svc_conn_prepare(c, sql, &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, io->amount);
    sqlite3_bind_int64(s, 3, svc_conn_now());
    return svc_conn_done(c, sqlite3_step(s));
}

static int open_fn(svc_conn *c, void *arg)
{
    chg_io *io = arg;
    bool exists, tomb = false, confirmed = false;
    int64_t amount = io->amount;
    int rc = row(c, io, &exists, &tomb, &confirmed);
    io->code = 0;
    if (rc < 0)
        return rc;
    if (exists) {   /* the same order again (idempotent), or voided before it came */
        io->code = tomb || io->status == VOIDED ? 409 : confirmed ? 200 : 409;
        return 0;
    }
    io->amount = amount;
    return exec_id(c, "INSERT INTO charges(id, amount, status, ts) VALUES (?1, ?2, 0, ?3)", io);
}

static int confirm_fn(svc_conn *c, void *arg)
{
    chg_io *io = arg;
    int rc = exec_id(c, "UPDATE charges SET confirmed = 1 WHERE id = ?1 AND status = 0 AND tomb = 0", io);
    if (rc < 0)
        return rc;
    io->code = sqlite3_changes(svc_conn_db(c)) ? 200 : 409;   /* voided meanwhile: the order failed */
    return 0;
}

/* Deletes the tombstones past their time (a few rows at a time, with the
 * voids that make them). */
static int expire(svc_conn *c)
{
    int rc;
    sqlite3_stmt *s = svc_conn_prepare(c, "DELETE FROM charges WHERE id IN (SELECT id FROM charges WHERE tomb = 1 "
                                          "AND ts < ?1 LIMIT 16)", &rc);
    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, svc_conn_now() - TOMB_TTL_S);
    return svc_conn_done(c, sqlite3_step(s));
}

/* Voids the charge; when there is none yet, leaves a tombstone: the void
 * was decided, so a charge of this order still on its way (queued,
 * delayed, retried) must be refused. io->status -1: nothing was charged. */
static int void_fn(svc_conn *c, void *arg)
{
    chg_io *io = arg;
    bool exists, tomb = false, confirmed = false;
    int rc = row(c, io, &exists, &tomb, &confirmed);
    if (rc < 0 || (rc = expire(c)) < 0)
        return rc;
    if (!exists) {
        io->amount = 0;
        io->status = -1;
        return exec_id(c, "INSERT INTO charges(id, amount, status, tomb, ts) VALUES (?1, ?2, 1, 1, ?3)", io);
    }
    if (io->status == CHARGED && (rc = exec_id(c, "UPDATE charges SET status = 1 WHERE id = ?1",
                                                io)) < 0)
        return rc;
    if (io->status >= 0)
        io->status = VOIDED;
    return 0;
}

static int get_fn(svc_conn *c, void *arg)
{
    chg_io *io = arg;
    bool exists, tomb = false, confirmed = false;
    return row(c, io, &exists, &tomb, &confirmed);
}

static const svc_dbstep open_step = { .name = "charge recorded", .fn = open_fn, .write = true };
static const svc_dbstep confirm_step = { .name = "charge confirmed", .fn = confirm_fn, .write = true };
static const svc_dbstep void_step = { .name = "charge voided", .fn = void_fn, .write = true };
static const svc_dbstep get_step = { .name = "charge lookup", .fn = get_fn };

/* An undo step when the caller is gone: it runs all the same, detached. */
static void void_detached(svc_job *job, const chg_io *io)
{
    int rc = svc_db_undo(job, &void_step, io, sizeof *io, NULL);
    if (rc < 0)
        sl_report(sl_reactor_current(), "payment-svc: cannot void the charge of order %s: %s", io->id, strerror(-rc));
}

/* {"order_id","amount_cents","status"}. */
static void charge_json(const chg_io *io, const char *status, svc_json *j)
{
    svc_json_str(j, "order_id", io->id);
    svc_json_int(j, "amount_cents", io->amount);
    svc_json_str(j, "status", status);
}

/* A charge made (or found made) by POST /charge. */
static void answer_charged(svc_job *job, const chg_io *io)
{
    char buf[ID_MAX + 96];
    svc_json j;
    svc_json_init(&j, buf, sizeof buf);
    charge_json(io, "CHARGED", &j);
    svc_reply_json(job, 200, &j);
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
    svc_db db;
    int rc, call_rc, status;
    sl_http_resp resp;
} charge_st;

static int charge_order(sl_task *t, svc_job *job)
{
    charge_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (parse(job, &st->io, true) < 0)
        SL_RETURN(t, 0);
    SVC_DB(t, st->rc, &st->db, S.store, &open_step, &st->io);
    if (st->rc == -ETIMEDOUT || st->rc == -ECANCELED) {   /* gave up on the way: the step may have run all the same */
        void_detached(job, &st->io);
        SL_RETURN(t, st->rc);
    }
    if (st->rc < 0)
        SL_RETURN(t, svc_reply_error(job, 503, "overloaded", NULL, "order %s: charge not recorded: %s", st->io.id,
                                     strerror(-st->rc)));
    if (st->io.code == 200)
        SL_RETURN(t, (answer_charged(job, &st->io), 0));
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
        SVC_DB(t, st->rc, &st->db, S.store, &confirm_step, &st->io);
        if (st->rc == 0 && st->io.code == 200)
            answer_charged(job, &st->io);
        else if (st->rc == 0)
            svc_reply_error(job, 409, "order_failed", NULL, "the charge of order %s was voided meanwhile", st->io.id);
        else if (st->rc != -ETIMEDOUT && st->rc != -ECANCELED)
            svc_reply_error(job, 503, "overloaded", NULL, "order %s: confirmation not recorded: %s", st->io.id,
                            strerror(-st->rc));
    } else if (svc_upstream_ambiguous(st->call_rc, &st->resp)) {
        /* the order may have committed PAID (and died before answering):
         * the charge stays; if the order fails, its release voids it */
        svc_reply_upstream(job, st->call_rc, &st->resp, NULL);
    } else {
        if (sl_task_cancelled(t)) {   /* out of budget or gone: the void runs all the same */
            void_detached(job, &st->io);
        } else {
            SVC_DB(t, st->rc, &st->db, S.store, &void_step, &st->io);
            if (st->rc == -ETIMEDOUT || st->rc == -ECANCELED || st->rc == -EBUSY)
                void_detached(job, &st->io);
        }
        if (st->status == 409)
            svc_reply_error(job, 409, "order_failed", NULL, "order %s has failed; its charge is voided", st->io.id);
        else
            svc_reply_upstream(job, st->call_rc, &st->resp, NULL);
    }
    sl_http_call_end(&st->resp);
    SL_END(t);
}

/* ---- POST /void, GET /charges/{order_id}: one step each (svc_dbroute.h) ---------------------- */

static int parse_void(svc_job *job, void *io) { return parse(job, io, false); }

/* After void_fn or get_fn: the charge as it stands; 404 for none (or a
 * tombstone). */
static int charge_answer(svc_job *job, void *arg, svc_json *j)
{
    const chg_io *io = arg;
    (void)job;
    if (io->status < 0)
        return 404;
    charge_json(io, io->status == CHARGED ? "CHARGED" : "VOIDED", j);
    return 200;
}

static const svc_dbroute void_route = {
    .step = &void_step, SVC_DBROUTE_IO(chg_io, id), .parse = parse_void, .answer = charge_answer,
    .noun = "order", .failed = "void not recorded",   /* not acknowledged: inventory's outbox retries */
    .missing = "not_found", .none = "no charge for order %s", .undo = true,
};

static const svc_dbroute get_route = {
    .step = &get_step, SVC_DBROUTE_IO(chg_io, id), .answer = charge_answer,
    .noun = "order", .missing = "not_found", .no_key = "no such charge", .none = "no charge for order %s",
};

/* ---- the program ------------------------------------------------------------------------------ */

static const svc_prog prog = { .name = "payment-svc", .default_listen = "127.0.0.1:8083", .upstream_flag = "--order",
                                .default_upstream = "http://127.0.0.1:8081" };

int main(int argc, char **argv)
{
    S.schema = schema;
    int rc = svc_setup(&S, &prog, argc, argv);
    if (rc)
        return rc;
    if ((rc = svc_route(&S, "POST", "/charge", charge_order, sizeof(charge_st))) < 0 ||
        (rc = svc_route_db(&S, "POST", "/void", &void_route)) < 0 ||
        (rc = svc_route_db(&S, "GET", "/charges/{order_id}", &get_route)) < 0) {
        sl_log(SL_LOG_ERROR, "payment-svc: routes: %s", strerror(-rc));
        return 1;
    }
    return svc_run(&S);
}
