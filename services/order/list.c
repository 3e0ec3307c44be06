/* list.c: GET /orders[?status=PENDING|PAID|FAILED]: every order, for the
 * demo's invariant check.
 *
 * One read step (svc_store.h) writes the orders as JSON text on a worker
 * and hands the text back; the request's task answers with one copy.
 * Thousands of orders cost a few formatted lines each, and no JSON tree is
 * built. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "order.h"
#include "svc_json.h"
#include "svc_store.h"

/* A growing text buffer; `failed` once memory ran out. */
typedef struct buf {
    char *p;
    size_t len, cap;
    bool failed;
} buf;

static bool buf_room(buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

static void buf_add(buf *b, const char *s, size_t n)
{
    if (buf_room(b, n)) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
    }
}

/* ---- on a worker: the orders as text ------------------------------------------------ */

typedef struct list_io {
    int filter;               /* a status, or -1: every order */
    char *text;               /* `{...},{...}` or NULL when none (malloc'd: the caller's) */
    size_t len;
    bool failed;              /* out of memory */
} list_io;

static int list_fn(svc_conn *c, void *arg)
{
    list_io *io = arg;
    int rc;
    sqlite3_stmt *s = svc_conn_prepare(c, io->filter < 0 ? "SELECT id, item, qty, amount, status FROM orders"
                                                         : "SELECT id, item, qty, amount, status FROM orders WHERE status = ?1",
                                       &rc);
    buf b = { 0 };
    if (!s)
        return rc;
    if (io->filter >= 0)
        sqlite3_bind_int(s, 1, io->filter);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        char line[ID_MAX + ITEM_MAX + 128];
        int st = sqlite3_column_int(s, 4);
        svc_json j;
        size_t len;
        svc_json_init(&j, line, sizeof line);
        svc_json_str(&j, "order_id", (const char *)sqlite3_column_text(s, 0));
        svc_json_str(&j, "item", (const char *)sqlite3_column_text(s, 1));
        svc_json_int(&j, "qty", sqlite3_column_int64(s, 2));
        svc_json_int(&j, "amount_cents", sqlite3_column_int64(s, 3));
        svc_json_str(&j, "status", order_status_name[st >= PENDING && st <= FAILED ? st : FAILED]);
        const char *obj = svc_json_end(&j, &len);   /* NULL only for a row not written by order-svc */
        if (b.len && obj)
            buf_add(&b, ",", 1);
        if (obj)
            buf_add(&b, obj, len);
    }
    sqlite3_reset(s);
    io->failed = b.failed;
    if (b.failed || (rc = svc_conn_done(c, rc)) < 0) {
        free(b.p);
        return b.failed ? 0 : rc;
    }
    io->text = b.p;
    io->len = b.len;
    return 0;
}

/* The caller gave up before the text came back. */
static void list_drop(void *arg)
{
    list_io *io = arg;
    free(io->text);
}

static const svc_dbstep list_step = { .name = "orders listed", .fn = list_fn, .drop = list_drop };

/* ---- the request ------------------------------------------------------------------ */

typedef struct list_st {
    list_io io;
    svc_db db;
    buf out;
    int rc, filter;
} list_st;

size_t order_list_state_size(void) { return sizeof(list_st); }

/* The filter: no query (-1: all), or status=PENDING|PAID|FAILED; anything
 * else is -EINVAL. */
static int parse_filter(const svc_job *job)
{
    static const char key[] = "status=";
    if (!job->query)
        return -1;
    if (job->query_len <= sizeof key - 1 || memcmp(job->query, key, sizeof key - 1))
        return -EINVAL;
    const char *v = job->query + sizeof key - 1;
    size_t n = job->query_len - (sizeof key - 1);
    for (int s = PENDING; s <= FAILED; s++)
        if (strlen(order_status_name[s]) == n && !memcmp(v, order_status_name[s], n))
            return s;
    return -EINVAL;
}

int order_list(sl_task *t, svc_job *job)
{
    list_st *st = svc_job_state(job);
    SL_BEGIN(t);
    if ((st->filter = parse_filter(job)) == -EINVAL)
        SL_RETURN(t, svc_reply_error(job, 400, "bad_request", NULL,
                                     "want no query or ?status=PENDING|PAID|FAILED, not '%.*s'",
                                     (int)(job->query_len > 64 ? 64 : job->query_len), job->query));
    buf_add(&st->out, "{\"orders\":[", 11);
    st->io = (list_io){ .filter = st->filter };
    SVC_DB(t, st->rc, &st->db, S_order.store, &list_step, &st->io);
    st->out.failed |= st->io.failed;
    if (st->rc == 0 && st->io.len)
        buf_add(&st->out, st->io.text, st->io.len);
    if (st->rc == 0)
        free(st->io.text);
    buf_add(&st->out, "]}", 2);
    if (st->rc < 0 && st->rc != -ETIMEDOUT && st->rc != -ECANCELED)
        svc_reply_error(job, 503, "overloaded", NULL, "listing the orders: %s", strerror(-st->rc));
    else if (st->rc == 0 && st->out.failed)
        svc_reply_error(job, 503, "overloaded", NULL, "out of memory listing the orders");
    else if (st->rc == 0)
        svc_reply(job, 200, st->out.p, st->out.len);
    free(st->out.p);
    st->out = (buf){ 0 };
    if (st->rc < 0)   /* cancelled: the client is gone */
        SL_RETURN(t, st->rc);
    SL_END(t);
}
