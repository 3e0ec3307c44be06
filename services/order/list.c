/* list.c: GET /orders[?status=PENDING|PAID|FAILED]: every order of every
 * reactor, for the demo's invariant check.
 *
 * Each reactor writes its own orders as JSON text in one step on it (a
 * cross-reactor message, like every other step: no state is shared), and
 * hands the text back; the request's task joins the pieces, one reactor
 * after the other, and answers with one copy. Thousands of orders cost a
 * few formatted lines each, and no JSON tree is built. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "order.h"
#include "svc_hop.h"

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

/* ---- on each reactor: its orders as text ------------------------------------------ */

typedef struct list_io {
    int filter;               /* a status, or -1: every order */
    char *text;               /* `{...},{...}` or NULL when none (malloc'd: the caller's) */
    size_t len;
    bool failed;              /* out of memory */
} list_io;

typedef struct each_arg {
    buf b;
    int filter;
} each_arg;

static void add_order(svc_node *n, void *arg)
{
    each_arg *a = arg;
    const order *o = (const order *)n;
    char line[ID_MAX + ITEM_MAX + 128];
    if (a->filter >= 0 && o->status != a->filter)
        return;
    /* ids and items are checked keys (svc_key_valid): nothing to escape */
    int len = snprintf(line, sizeof line, "%s{\"order_id\":\"%s\",\"item\":\"%s\",\"qty\":%" PRId64
                       ",\"amount_cents\":%" PRId64 ",\"status\":\"%s\"}", a->b.len ? "," : "",
                       o->id, o->item, o->qty, o->amount, order_status_name[o->status]);
    buf_add(&a->b, line, (size_t)len);
}

static int list_begin(sl_task *t, void *arg)
{
    list_io *io = arg;
    svc_map *orders = svc_here()->app;
    each_arg a = { .filter = io->filter };
    (void)t;
    svc_map_each(orders, add_order, &a);
    io->failed = a.b.failed;
    if (a.b.failed)
        free(a.b.p);
    else
        io->text = a.b.p, io->len = a.b.len;
    return 0;
}

/* The caller gave up before the text came back. */
static void list_drop(void *arg)
{
    list_io *io = arg;
    free(io->text);
}

static const svc_step list_step = { .name = "orders listed", .begin = list_begin, .drop = list_drop };

/* ---- the request ------------------------------------------------------------------ */

typedef struct list_st {
    list_io io;
    svc_hop hop;
    buf out;
    int i, rc, filter;
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
    for (st->i = 0; st->i < job->s->n; st->i++) {
        st->io = (list_io){ .filter = st->filter };
        SVC_ON(t, st->rc, &st->hop, job, job->s->shards[st->i].r, &list_step, &st->io);
        st->out.failed |= st->io.failed;
        if (st->rc == 0 && st->io.len) {
            if (st->out.p[st->out.len - 1] != '[')
                buf_add(&st->out, ",", 1);
            buf_add(&st->out, st->io.text, st->io.len);
        }
        free(st->io.text);
        if (st->rc < 0)
            break;
    }
    buf_add(&st->out, "]}", 2);
    if (st->rc == 0 && st->out.failed)
        svc_reply_error(job, 503, "overloaded", NULL, "out of memory listing the orders");
    else if (st->rc == 0)
        svc_reply(job, 200, st->out.p, st->out.len);
    free(st->out.p);
    st->out = (buf){ 0 };
    if (st->rc < 0)   /* cancelled: the client is gone */
        SL_RETURN(t, st->rc);
    SL_END(t);
}
