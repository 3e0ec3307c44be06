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
 * refused with 503.
 *
 * The orders are rows of the service's database (svc_store.h); each state
 * step is one transaction, and FAILED is written in the same transaction
 * as the release's outbox row. The row lock is in memory, on the reactor
 * the order's id hashes to (an order is created on the reactor that
 * receives it: its id is drawn to hash there), and exists only while
 * someone holds or waits for it, or its creating request lives: memory
 * does not grow with the orders.
 * The callback tells the creator that it committed PAID through a note
 * any reactor can read (paid_note), which spares the settle's
 * transaction.
 * The rows' consistency does not rest on the lock: the callback sets PAID
 * only over PENDING (one conditional UPDATE), so a FAILED written
 * meanwhile wins; the lock is the seed's story (held across the calls in
 * naive and guarded mode, LOOP_CHECKed in guarded). At start, the orders a
 * crash left PENDING are marked FAILED and their releases posted: their
 * clients never got a 201. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "failure.h"
#include "order.h"
#include "svc_body.h"
#include "svc_dbroute.h"
#include "svc_hop.h"
#include "svc_store.h"
#include "svc_undo.h"

_Static_assert(ID_MAX == SVC_BODY_ID_MAX && ITEM_MAX == SVC_BODY_ITEM_MAX, "the body's keys fit the records'");
const char *const order_status_name[3] = { "PENDING", "PAID", "FAILED" };

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS orders(id TEXT PRIMARY KEY, item TEXT NOT NULL, qty INTEGER NOT NULL, "
    "amount INTEGER NOT NULL, status INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS orders_pending ON orders(status) WHERE status = 0;";

svc S_order;
#define S S_order

/* SVC_TEST_EXIT_AFTER_PAID: the process dies right after it committed an
 * order PAID, before answering the callback (tests/test_services_durable:
 * a crash at the worst moment, made to happen every time). */
static bool exit_after_paid;

/* ---- the row locks: in memory, only while used ---------------------------------------- */

typedef struct olock {
    svc_node node;
    char id[ID_MAX];
    int refs;                 /* holders and waiters (and the creator's task, to its end) */
    sl_mutex m;
    char name[ID_MAX + 8];    /* "order:<id>" (/debug/tasks shows it) */
} olock;

/* The lock of order `id` on this reactor, made if needed, with a reference. */
static olock *lock_get(const char *id)
{
    svc_map *locks = svc_here()->app;
    olock *l = (olock *)svc_map_find(locks, id, strlen(id));
    if (!l) {
        if (!(l = calloc(1, sizeof *l)))
            return NULL;
        strcpy(l->id, id);
        snprintf(l->name, sizeof l->name, "order:%s", id);
        sl_mutex_init(&l->m, NULL, l->name, S.o.mode == SVC_GUARDED ? SL_MUTEX_LOOP_CHECK : 0);
        l->node.key = l->id;
        l->node.klen = strlen(l->id);
        svc_map_put(locks, &l->node);
    }
    l->refs++;
    return l;
}

static void lock_put(olock *l)
{
    if (--l->refs == 0) {
        svc_map_del(svc_here()->app, &l->node);
        free(l);
    }
}

/* ---- the callback's note to the creator: PAID is committed -------------------------- */

/* An order's id is 16 hex digits, a random 64-bit number (new_id). The
 * callback, once it committed PAID, stores that number in the slot it
 * indexes; the creator, once inventory answered 200, finds it there and
 * skips its settle transaction (create_order). The slots are atomics
 * that every reactor reads and writes, not state of one reactor: the
 * callback lands on whichever reactor the kernel gave payment's
 * connection, with --threads 2 half the time not the order's, and a
 * message to the order's reactor (as before) woke a sleeping reactor for
 * one flag, on one CPU a context switch per such order (issue 17). A
 * match is exact (a slot holds a whole id: it is this order's own PAID);
 * two orders under way whose ids share a slot can lose a note, and that
 * creator then settles, as without one. The store comes before the
 * callback's answer, which payment's answer to inventory and inventory's
 * answer to the creator wait for (release/acquire say so to the
 * compiler and to ThreadSanitizer). */
#define PAID_NOTES 16384      /* slots, a power of two: 128 KiB, touched as used */
static _Atomic uint64_t paid_notes[PAID_NOTES];

/* The number an order id stands for: exactly 16 lowercase hex digits, not
 * 0 (an empty slot; new_id never draws it); else false. */
static bool id_number(const char *id, uint64_t *v)
{
    uint64_t x = 0;
    int i = 0;
    for (; id[i] && i < 16; i++) {
        char ch = id[i];
        if (ch >= '0' && ch <= '9')
            x = x << 4 | (uint64_t)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            x = x << 4 | (uint64_t)(ch - 'a' + 10);
        else
            return false;
    }
    *v = x;
    return i == 16 && !id[i] && x != 0;
}

static void paid_note(const char *id)
{
    uint64_t v;
    if (id_number(id, &v))
        atomic_store_explicit(&paid_notes[v & (PAID_NOTES - 1)], v, memory_order_release);
}

static bool paid_noted(const char *id)
{
    uint64_t v;
    return id_number(id, &v) &&
           atomic_load_explicit(&paid_notes[v & (PAID_NOTES - 1)], memory_order_acquire) == v;
}

/* ---- steps, on a worker of the pool (svc_store.h) ------------------------------------ */

typedef struct order_io {
    char id[ID_MAX];
    char item[ITEM_MAX];
    int64_t qty, amount;
    int status;               /* -1: none */
    bool ok;                  /* settle: inventory answered 200 */
    bool unsent;              /* settle: no byte of the reserve left (sl_http_call_reached: the pool
                               * or its fail-fast refused it, no budget was left to send it, it timed
                               * out waiting for a connection, the connection was refused):
                               * inventory never saw it, so there is nothing to release, and under
                               * overload a release only adds load (issue 14) */
    int64_t seq;              /* settle: the release's outbox row (0: none) */
} order_io;

static int read_row(svc_conn *c, order_io *io)
{
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "SELECT item, qty, amount, status FROM orders WHERE id = ?1", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
    io->status = -1;
    if ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        snprintf(io->item, sizeof io->item, "%s", (const char *)sqlite3_column_text(s, 0));
        io->qty = sqlite3_column_int64(s, 1);
        io->amount = sqlite3_column_int64(s, 2);
        io->status = sqlite3_column_int(s, 3);
    }
    return svc_conn_done(c, rc);
}

static int insert_fn(svc_conn *c, void *arg)
{
    order_io *io = arg;
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "INSERT INTO orders(id, item, qty, amount, status) VALUES (?1, ?2, ?3, ?4, 0)", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, io->item, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, io->qty);
    sqlite3_bind_int64(s, 4, io->amount);
    return svc_conn_done(c, sqlite3_step(s));
}

/* The release's body at inventory: {"order_id","item"} (in buf,
 * RELEASE_BODY_MAX bytes). */
#define RELEASE_BODY_MAX (ID_MAX + ITEM_MAX + 32)
static const char *release_body(const char *id, const char *item, char *buf, size_t *len)
{
    svc_json j;
    svc_json_init(&j, buf, RELEASE_BODY_MAX);
    svc_json_str(&j, "order_id", id);
    svc_json_str(&j, "item", item);
    return svc_json_end(&j, len);
}

/* FAILED and the release's outbox row (none when seq is NULL), in one
 * transaction. */
static int fail_row(svc_conn *c, const char *id, const char *item, int64_t *seq)
{
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "UPDATE orders SET status = 2 WHERE id = ?1", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    if ((rc = svc_conn_done(c, sqlite3_step(s))) < 0 || !seq)
        return rc;
    char buf[RELEASE_BODY_MAX];
    size_t len;
    return svc_conn_outbox_add(c, "/release", release_body(id, item, buf, &len), id, seq);
}

/* After the reserve: PAID stays PAID when inventory answered 200 (the
 * callback set it); anything else is FAILED, with its release. */
static int settle_fn(svc_conn *c, void *arg)
{
    order_io *io = arg;
    char item[ITEM_MAX];
    strcpy(item, io->item);
    int rc = read_row(c, io);
    if (rc < 0)
        return rc;
    if (io->status < 0)
        return -EIO;   /* the row was inserted by this request: cannot be */
    if (io->ok && io->status == PAID)
        return 0;
    io->status = FAILED;
    return fail_row(c, io->id, item, io->unsent ? NULL : &io->seq);
}

/* The callback: PAID, only over PENDING. */
static int paid_fn(svc_conn *c, void *arg)
{
    order_io *io = arg;
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "UPDATE orders SET status = 1 WHERE id = ?1 AND status = 0", &rc);
    if (!s)
        return rc;
    sqlite3_bind_text(s, 1, io->id, -1, SQLITE_STATIC);
    if ((rc = svc_conn_done(c, sqlite3_step(s))) < 0)
        return rc;
    if (sqlite3_changes(svc_conn_db(c))) {
        io->status = PAID;
        return 0;
    }
    return read_row(c, io);
}

static int get_fn(svc_conn *c, void *io) { return read_row(c, io); }

static const svc_dbstep insert_step = { .name = "order recorded", .fn = insert_fn, .write = true };
static const svc_dbstep settle_step = { .name = "order settled", .fn = settle_fn, .write = true };
static const svc_dbstep paid_db_step = { .name = "order paid", .fn = paid_fn, .write = true };
static const svc_dbstep get_db_step = { .name = "order lookup", .fn = get_fn };

/* ---- POST /orders ------------------------------------------------------------------ */

typedef struct create_st {
    order_io io;
    olock *lock;              /* referenced to the end; held while `held` (guarded/naive: across the call) */
    bool held;
    svc_db db;
    int rc, status, draws;
    sl_http_resp resp;
} create_st;

/* A fresh id that hashes to this reactor, so the order's lock lives here
 * (never 0: see paid_note). Its first 10 hex digits are the time in
 * 1/65536 s (mod 2^40: the first 6 are the seconds mod 2^24, ~194 days),
 * the last 6 random: consecutive orders' keys sort in the order they were
 * made, so each service's insert of an order goes to the right edge of
 * its table's B-tree, the page the previous order's insert dirtied (one
 * page per group commit, not one random leaf per order: issue 14,
 * docs/overload-log.md "Fewer pages per order"). Two orders clash only if
 * made in the same 15 us and drawn the same 24 bits (at 10,000 orders/s
 * about once in 3 h), and a clash is never a wrong order: its INSERT
 * fails, and create_order draws again. */
static void new_id(svc_shard *sh, char *id)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = ((uint64_t)ts.tv_sec << 16 | (uint64_t)ts.tv_nsec * 65536 / 1000000000) & ((UINT64_C(1) << 40) - 1);
    uint64_t v;
    do
        snprintf(id, ID_MAX, "%016" PRIx64, v = t << 24 | svc_rand(sh) >> 40);
    while (v == 0 || svc_shard_of(id, 16, S.n) != sh->id);
}

static int parse_order(svc_job *job, order_io *o)
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

/* The compensation of a failed order: the release at inventory, which
 * gives the stock back and has the charge voided. Its outbox row was
 * written with FAILED; the outbox (svc_undo.h) retries it, each attempt
 * with a budget of its own, until inventory acknowledges it: 200, or 404
 * (never reserved, and now tombstoned so that a reservation still on its
 * way is refused). It does not depend on the request, whose budget may be
 * spent. */
static void post_release(svc_job *job, const order_io *o)
{
    char buf[RELEASE_BODY_MAX];
    size_t len;
    const char *body = release_body(o->id, o->item, buf, &len);
    int rc = job ? svc_undo_post(job, "/release", body, len, o->id, o->seq)
                 : svc_undo_post_bg(&S, "/release", body, len, o->id, o->seq);
    if (rc < 0)   /* out of memory, or at shutdown: the row stays, the next start posts it */
        sl_report(sl_reactor_current(), "order-svc: cannot post the release of order %s now: %s (its outbox "
                  "row is kept)", o->id, strerror(-rc));
}

/* A settle the request could not wait for (it was cancelled, or the pool
 * refused it): detached; the release is posted once FAILED is written. */
static void settled_detached(void *io, int rc)
{
    order_io *o = io;
    if (rc == 0 && o->status == FAILED && !o->unsent)
        post_release(NULL, o);
}

static void settle_detached(svc_job *job, const order_io *io)
{
    int rc = svc_db_undo(job, &settle_step, io, sizeof *io, settled_detached);
    if (rc < 0)   /* the order stays PENDING: the next start fails and releases it */
        sl_report(sl_reactor_current(), "order-svc: cannot settle order %s now: %s", io->id, strerror(-rc));
}

/* Answers inventory's failure as the contract allows (failure.h): its
 * own words when they are the client's business, else 502 naming what
 * inventory said. Nothing for a cancelled call (the client is gone). */
static void reply_failure(svc_job *job, const create_st *st)
{
    const sl_http_resp *resp = &st->resp;
    if (st->status == 200) {   /* reserved, yet the payment's callback never came */
        svc_reply_error(job, 502, "upstream_failed", st->io.id, "the payment was never confirmed");
        return;
    }
    if (st->rc < 0) {   /* no answer: timed out (504), shed (503), refused, reset, garbled (502) */
        svc_reply_upstream(job, st->rc, resp, st->io.id);
        return;
    }
    svc_relay_cause(job, resp);
    json_t *o = json_loadb(resp->body ? resp->body : "", resp->body_len, 0, NULL);
    const char *code = json_string_value(json_object_get(o, "error"));
    const char *msg = json_string_value(json_object_get(o, "message"));
    const char *out;
    int mapped = order_failure_map(resp->status, code, &out);
    if (mapped == 502)
        svc_reply_error(job, 502, out, st->io.id, "inventory answered %d %s%s%s", resp->status,
                        code ? code : "(no error code)", msg ? ": " : "", msg ? msg : "");
    else
        svc_reply_error(job, mapped, out, st->io.id, "%s", msg ? msg : out);
    json_decref(o);
}

/* The order's own budget ended while a step of its own was being written
 * (the detached settle fails it): 504 with its id, as every failure of an
 * order that may exist is answered, so the client can look it up (the
 * server's generic 504 would carry none). Nothing reaches a client that is
 * gone. */
static int out_of_budget(svc_job *job, const create_st *st)
{
    return svc_reply_error(job, 504, "deadline_exceeded", st->io.id,
                           "the order's budget ran out while it was being recorded");
}

/* {"order_id","status":"PAID"} */
static void answer_paid(svc_job *job, int status, const char *id)
{
    char buf[ID_MAX + 48];
    svc_json j;
    svc_json_init(&j, buf, sizeof buf);
    svc_json_str(&j, "order_id", id);
    svc_json_str(&j, "status", "PAID");
    svc_reply_json(job, status, &j);
}

static void unlock(sl_task *t, create_st *st)
{
    if (st->lock) {
        if (st->held)
            sl_mutex_unlock(t, &st->lock->m);
        st->held = false;
        lock_put(st->lock);
        st->lock = NULL;
    }
}

static int create_order(sl_task *t, svc_job *job)
{
    create_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (svc_undo_full())   /* every failure needs a release: none could be posted */
        SL_RETURN(t, svc_reply_error(job, 503, "overloaded", NULL, "%ld releases are pending at inventory",
                                     svc_undo_pending()));
    if (parse_order(job, &st->io) < 0)
        SL_RETURN(t, 0);
    do {   /* an id that clashes with an older order's (new_id): another */
        new_id(job->sh, st->io.id);
        SVC_DB(t, st->rc, &st->db, S.store, &insert_step, &st->io);
    } while (st->rc == -EEXIST && ++st->draws < 4);
    /* until the reserve is sent, a failure has nothing to release (issue
     * 14: the release of a reserve that never left is a round trip to
     * inventory for a 404 and a tombstone, and under overload thousands
     * of them queued for the pool with the reserves) */
    st->io.unsent = true;
    if (st->rc == -ETIMEDOUT || st->rc == -ECANCELED) {   /* it may be recorded: fail it */
        settle_detached(job, &st->io);
        SL_RETURN(t, out_of_budget(job, st));
    }
    if (st->rc < 0)   /* nothing recorded: no order */
        SL_RETURN(t, svc_reply_error(job, 503, "overloaded", NULL, "the order cannot be recorded: %s",
                                     strerror(-st->rc)));
    /* a lock made just now: free, unless this task was cancelled */
    if (!(st->lock = lock_get(st->io.id)) || (st->rc = sl_mutex_trylock(t, &st->lock->m, job->tag)) < 0) {
        if (st->lock)
            lock_put(st->lock);
        st->lock = NULL;
        settle_detached(job, &st->io);
        SL_RETURN(t, svc_reply_error(job, 503, "overloaded", st->io.id, "the order's lock cannot be taken"));
    }
    st->held = true;
    /* safe: held only to create; the reference stays to the end, so that
     * a callback on this reactor finds the lock made (one malloc and
     * mutex init per order, not two) */
    if (S.o.mode == SVC_SAFE) {
        sl_mutex_unlock(t, &st->lock->m);
        st->held = false;
    }
    {
        char buf[ID_MAX + ITEM_MAX + 96];
        svc_json j;
        size_t len;
        svc_json_init(&j, buf, sizeof buf);
        svc_json_str(&j, "order_id", st->io.id);
        svc_json_str(&j, "item", st->io.item);
        svc_json_int(&j, "qty", st->io.qty);
        svc_json_int(&j, "amount_cents", st->io.amount);
        const char *body = svc_json_end(&j, &len);   /* fits: two keys, two numbers */
        SL_AWAIT(t, st->rc, sl_http_call_key(t, &st->resp, S.up, "POST", "/reserve", body, len,
                                                 st->io.id, strlen(st->io.id)));
    }
    st->status = svc_upstream_status(st->rc, &st->resp);
    st->io.ok = st->status == 200;
    st->io.unsent = !sl_http_call_reached(&st->resp);
    if (sl_task_cancelled(t)) {   /* out of budget, or the client is gone: no success was heard of */
        st->io.ok = false;
        unlock(t, st);
        settle_detached(job, &st->io);
        reply_failure(job, st);   /* 504 with the order's id; nothing to a client that is gone */
        sl_http_call_end(&st->resp);
        SL_RETURN(t, 0);
    }
    /* Inventory said 200 and the callback, on either reactor, committed
     * PAID for this order while we waited (its note): the settle would
     * read PAID and write nothing (only this task writes FAILED over it
     * while it lives), so its transaction is skipped: one store round
     * trip and commit fewer per order (issue 16). Without the note (the
     * callback never came, or its slot was taken by another order's) the
     * settle step decides, as ever. */
    if (st->io.ok && paid_noted(st->io.id)) {
        unlock(t, st);
        answer_paid(job, 201, st->io.id);
        sl_http_call_end(&st->resp);
        SL_RETURN(t, 0);
    }
    {
        int rc;
        SVC_DB(t, rc, &st->db, S.store, &settle_step, &st->io);
        unlock(t, st);
        if (rc < 0) {   /* not written: a detached settle tries again (FAILED: the client hears of a failure) */
            st->io.ok = false;
            settle_detached(job, &st->io);
            if (rc != -ETIMEDOUT && rc != -ECANCELED)
                svc_reply_error(job, 503, "overloaded", st->io.id, "the order cannot be settled: %s", strerror(-rc));
            else
                out_of_budget(job, st);
        } else if (st->io.status == PAID) {
            answer_paid(job, 201, st->io.id);
        } else {
            if (!st->io.unsent)
                post_release(job, &st->io);
            reply_failure(job, st);
        }
    }
    sl_http_call_end(&st->resp);
    SL_END(t);
}

/* ---- POST /orders/{id}/paid: the callback ---------------------------------------------- */

/* The row lock, on the order's reactor: taken (the seed's story: in naive
 * and guarded mode the creator holds it across the chain) and let go. */
typedef struct paid_io {
    char id[ID_MAX];
    uint64_t tag;
    olock *l;                 /* owner-side, between begin and finish */
    int status;               /* 0: the lock was had; else 508, 504 */
} paid_io;

static int paid_begin(sl_task *t, void *arg)
{
    paid_io *io = arg;
    if (!(io->l = lock_get(io->id)))
        return -ENOMEM;
    return sl_mutex_lock(t, &io->l->m, io->tag);
}

static int paid_finish(sl_task *t, void *arg, int rc)
{
    paid_io *io = arg;
    if (!io->l)
        return rc;
    io->status = rc == -EDEADLK ? 508 : rc == -ETIMEDOUT ? 504 : rc < 0 ? 503 : 0;
    if (rc == 0)
        sl_mutex_unlock(t, &io->l->m);
    lock_put(io->l);
    io->l = NULL;
    return rc == -EDEADLK || rc == -ETIMEDOUT ? 0 : rc;
}

static const svc_step paid_step = { .name = "order lock (on the order's reactor)", .begin = paid_begin,
                                    .finish = paid_finish };

typedef struct paid_st {
    paid_io io;
    order_io row;
    svc_hop hop;
    svc_db db;
    int rc;
} paid_st;

static int order_paid(sl_task *t, svc_job *job)
{
    paid_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if (!svc_key_copy(job->param, job->param_len, st->io.id, ID_MAX))
        SL_RETURN(t, svc_reply_error(job, 404, "not_found", NULL, "no such order"));
    st->io.tag = job->tag;
    /* Safe mode on another reactor than the order's: no lock. In safe
     * mode no task holds an order's lock across a wait (the creator lets
     * go of it in the step that took it, and the callback below in the
     * step that got it), so the callback would always find it free and
     * taking it would order nothing: PAID is written only over PENDING
     * (paid_fn), which is what keeps the books. Taking it there was a hop
     * to the order's reactor and back for every callback the kernel put
     * on the other reactor, about half of them with --threads 2: a
     * context linked there, a task, three cross-reactor messages per such
     * order (issue 17). On its own reactor it is taken as ever (it costs
     * nothing there), and in guarded and naive mode always: there it is
     * the story (held across the chain by the creator). */
    if (S.o.mode == SVC_SAFE && svc_owner(&S, st->io.id, job->param_len) != sl_reactor_current()) {
        st->rc = 0;
        st->io.status = 0;
    } else {
        SVC_ON(t, st->rc, &st->hop, job, svc_owner(&S, st->io.id, job->param_len), &paid_step, &st->io);
    }
    if (st->rc < 0)
        SL_RETURN(t, st->rc);
    const char *id = st->io.id;
    if (st->io.status == 508) {
        char hex[33] = "";
        const sl_traceparent *tp = sl_ctx_trace(job->ctx);
        if (tp)
            sl_trace_id_hex(tp, hex);
        SL_RETURN(t, svc_reply_error(job, 508, "loop_detected", id,
                                     "order lock 'order:%s' is held by trace %s (this request's own trace)", id, hex));
    }
    if (st->io.status == 504)
        SL_RETURN(t, svc_reply_error(job, 504, "deadline_exceeded", id,
                                     "the budget ran out waiting for order lock 'order:%s'", id));
    strcpy(st->row.id, st->io.id);
    SVC_DB(t, st->rc, &st->db, S.store, &paid_db_step, &st->row);
    if (st->rc == -ETIMEDOUT || st->rc == -ECANCELED)   /* PAID may be written: the 504 is ambiguous to payment */
        SL_RETURN(t, st->rc);
    if (exit_after_paid && st->rc == 0 && st->row.status == PAID)
        _exit(137);   /* a crash between PAID and its answer, for the tests */
    id = st->io.id;
    if (st->rc < 0) {
        svc_reply_error(job, 503, "overloaded", id, "order %s: %s", id, strerror(-st->rc));
    } else if (st->row.status == PAID) {
        paid_note(id);
        answer_paid(job, 200, id);
    } else if (st->row.status < 0) {
        svc_reply_error(job, 404, "not_found", id, "no order %s", id);
    } else {
        svc_reply_error(job, 409, "order_failed", id, "order %s has already failed", id);
    }
    SL_END(t);
}

/* ---- GET /orders/{id}: one step (svc_dbroute.h) --------------------------------------- */

static int order_answer(svc_job *job, void *arg, svc_json *j)
{
    const order_io *io = arg;
    (void)job;
    if (io->status < 0)
        return 404;
    svc_json_str(j, "order_id", io->id);
    svc_json_str(j, "item", io->item);
    svc_json_int(j, "qty", io->qty);
    svc_json_int(j, "amount_cents", io->amount);
    svc_json_str(j, "status", order_status_name[io->status]);
    return 200;
}

static const svc_dbroute get_route = {
    .step = &get_db_step, SVC_DBROUTE_IO(order_io, id), .answer = order_answer, .noun = "order",
    .missing = "not_found", .no_key = "no such order", .none = "no order %s", .key_is_order_id = true,
};

/* ---- at start: the orders a crash left PENDING ---------------------------------------- */

static int recover_fn(svc_conn *c, void *arg)
{
    long *n = arg;
    int rc = 0;
    sqlite3_stmt *s = svc_conn_prepare(c, "SELECT id, item FROM orders WHERE status = 0 LIMIT 256", &rc);
    if (!s)
        return rc;
    char ids[256][ID_MAX], items_[256][ITEM_MAX];
    int k = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW && k < 256) {
        snprintf(ids[k], ID_MAX, "%s", (const char *)sqlite3_column_text(s, 0));
        snprintf(items_[k], ITEM_MAX, "%s", (const char *)sqlite3_column_text(s, 1));
        k++;
    }
    if ((rc = svc_conn_done(c, rc)) < 0)
        return rc;
    sqlite3_reset(s);
    for (int i = 0; i < k; i++) {
        int64_t seq;
        if ((rc = fail_row(c, ids[i], items_[i], &seq)) < 0)
            return rc;
    }
    *n += k;
    return k;
}

/* Their clients never got a 201 (the process died first): FAILED, and
 * released (the release gives back and voids whatever the chain did). */
static int recover(svc *s, char *err, size_t errlen)
{
    long n = 0;
    int rc;
    while ((rc = svc_store_exec_now(s->store, recover_fn, &n)) > 0)
        ;
    if (rc < 0)
        return snprintf(err, errlen, "settling the orders left PENDING: %s", strerror(-rc)), rc;
    if (n)
        sl_log(SL_LOG_WARN, "order-svc: %ld orders were left PENDING by the last run: FAILED, their releases posted", n);
    return 0;
}

static int locks_init(svc_shard *sh)
{
    svc_map *m = calloc(1, sizeof *m);
    if (!m || svc_map_init(m, 64) < 0) {
        free(m);
        return -ENOMEM;
    }
    sh->app = m;
    return 0;
}

/* ---- the program ---------------------------------------------------------------------- */

static const svc_prog prog = { .name = "order-svc", .default_listen = "127.0.0.1:8081", .upstream_flag = "--inventory",
                                .default_upstream = "http://127.0.0.1:8082" };

int main(int argc, char **argv)
{
    S.schema = schema;
    S.recover = recover;
    exit_after_paid = getenv("SVC_TEST_EXIT_AFTER_PAID") != NULL;
    int rc = svc_setup(&S, &prog, argc, argv);
    if (rc)
        return rc;
    S.app_init = locks_init;
    S.app_free = svc_one_map_free;
    if ((rc = svc_route(&S, "POST", "/orders", create_order, sizeof(create_st))) < 0 ||
        /* while inventory would be refused, an order is refused at its
         * head: no PENDING row written to be failed at once (issue 14) */
        (rc = sl_http_route_set(S.srv, "POST", "/orders", &(sl_http_route_opts){ .upstream = S.up })) < 0 ||
        (rc = svc_route(&S, "GET", "/orders", order_list, order_list_state_size())) < 0 ||
        (rc = svc_route_db(&S, "GET", "/orders/{id}", &get_route)) < 0 ||
        (rc = svc_route(&S, "POST", "/orders/{id}/paid", order_paid, sizeof(paid_st))) < 0 ||
        /* the callback finishes an order whose chain is done: shedding it
         * would waste that work and fail the order (issue 14) */
        (rc = sl_http_route_set(S.srv, "POST", "/orders/{id}/paid",
                                &(sl_http_route_opts){ .lane = SL_HTTP_LANE_CONTINUE })) < 0) {
        sl_log(SL_LOG_ERROR, "order-svc: routes: %s", strerror(-rc));
        return 1;
    }
    return svc_run(&S);
}
