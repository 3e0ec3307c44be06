/* client.c: calls to upstream replicas over per-reactor keep-alive pools.
 *
 * Everything here lives on one reactor: an upstream keeps one pool per
 * reactor, made the first time a task of that reactor calls, so no lock is
 * ever taken. A call parks its task with sl_task_park(); the connection's
 * callbacks wake it with the result, and the task's deadline or cancel
 * aborts it, closing the connection so that the callee notices. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include "client_int.h"
#include "http_parse.h"
#include "sl_client.h"
#include "sl_ctx.h"
#include "sl_http.h"
#include "sl_wire.h"
#include "trace_int.h"

#define DEF(v, d) ((v) ? (v) : (d))

typedef struct replica {
    char host[64];
    int port;
    char hosthdr[80];
} replica;

typedef struct pool pool;
typedef struct cconn cconn;
typedef struct sl_http_call_priv priv;

struct sl_http_upstream {
    sl_runtime *rt;
    sl_http_upstream_opts o;
    replica *reps;
    int nreps;
    int nreactors;
    pool **pools;    /* one per reactor, each touched by its reactor only */
};

typedef struct rep_pool {
    cconn *idle;
    uint32_t nconns, outstanding;
    uint32_t fails;        /* attempts failed in a row */
    uint64_t out_until;    /* out of rotation until then (ns); 0: in */
    uint32_t out_ms;       /* the length of its current ejection */
    bool probing;          /* its ejection ran out and one call tests it */
} rep_pool;

struct pool {
    sl_http_upstream *up;
    sl_reactor *r;
    rep_pool *reps;
    priv *wq_head, *wq_tail;
    uint32_t nwait, rr;
    uint32_t nout;         /* replicas out of rotation */
    uint32_t tokens;       /* retry budget, in thousandths of a retry */
    sl_http_upstream_stats st;
};

struct cconn {
    pool *pool;
    int rep;
    struct bufferevent *bev;
    sl_http_parser p;
    priv *call;          /* NULL while idle */
    cconn *next;         /* idle list */
    bool connected;
};

struct sl_http_call_priv {
    sl_http_resp *call;
    sl_task *task;
    pool *pool;
    int rep;
    cconn *conn;
    struct evbuffer *req;   /* what follows the head: framing and body */
    priv *qnext;
    bool queued, done, head_request;
    bool retryable, got_bytes, probe;
    uint32_t tries;
    uint64_t deadline;
    sl_http_header *hdrs;
    uint32_t nhdrs;
    char *hbuf;
    char tp[SL_TRACEPARENT_LEN + 1];
    sl__call_span span;     /* the call's span (trace_int.h) */
    char *ts;               /* the tracestate to send, or NULL (after line) */
    char what[80];          /* "HTTP POST /reserve", for diagnostics */
    size_t line_len;
    char line[];            /* "METHOD PATH HTTP/1.1\r\n" */
};

/* ---- upstreams ------------------------------------------------------------------ */

static int parse_replica(replica *r, const char *s, size_t len)
{
    char tmp[128];
    if (len < 8 || len >= sizeof tmp || strncmp(s, "http://", 7))
        return -EINVAL;
    memcpy(tmp, s + 7, len - 7);
    tmp[len - 7] = '\0';
    char *slash = strchr(tmp, '/');
    if (slash && slash[1])
        return -EINVAL;   /* no paths: a replica is an address */
    if (slash)
        *slash = '\0';
    char *colon = strrchr(tmp, ':');
    if (!colon || colon == tmp || (size_t)(colon - tmp) >= sizeof r->host)
        return -EINVAL;
    *colon = '\0';
    if (strlen(tmp) >= sizeof r->host)
        return -EINVAL;
    strcpy(r->host, strcmp(tmp, "localhost") ? tmp : "127.0.0.1");
    struct in_addr ia;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (inet_pton(AF_INET, r->host, &ia) != 1 || *end || end == colon + 1 || port < 1 || port > 65535)
        return -EINVAL;
    r->port = (int)port;
    snprintf(r->hosthdr, sizeof r->hosthdr, "%s:%d", r->host, r->port);
    return 0;
}

int sl_http_upstream_new(sl_http_upstream **out, sl_runtime *rt, const char *replicas,
                         const sl_http_upstream_opts *opts)
{
    if (!out || !rt || !replicas || !*replicas)
        return -EINVAL;
    sl_http_upstream *up = calloc(1, sizeof *up);
    if (!up)
        return -ENOMEM;
    sl__ignore_sigpipe();
    up->rt = rt;
    up->o = opts ? *opts : (sl_http_upstream_opts){ 0 };
    up->o.max_conns = DEF(up->o.max_conns, 64);
    up->o.max_waiting = up->o.no_wait ? 0 : DEF(up->o.max_waiting, 128);
    up->o.margin_ms = DEF(up->o.margin_ms, 5);
    up->o.connect_timeout_ms = DEF(up->o.connect_timeout_ms, 1000);
    up->o.retry_budget_pct = DEF(up->o.retry_budget_pct, 10);
    up->o.retry_budget_cap = DEF(up->o.retry_budget_cap, 10);
    up->o.eject_after = DEF(up->o.eject_after, 5);
    up->o.eject_ms = DEF(up->o.eject_ms, 1000);
    up->o.eject_max_ms = DEF(up->o.eject_max_ms, 30000);
    if (up->o.eject_max_ms < up->o.eject_ms)
        up->o.eject_max_ms = up->o.eject_ms;
    int n = 1;
    for (const char *p = replicas; *p; p++)
        n += *p == ',';
    up->reps = calloc((size_t)n, sizeof *up->reps);
    up->nreactors = sl_runtime_threads(rt);
    up->pools = calloc((size_t)up->nreactors, sizeof *up->pools);
    if (!up->reps || !up->pools) {
        sl_http_upstream_free(up);
        return -ENOMEM;
    }
    for (const char *p = replicas;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (parse_replica(&up->reps[up->nreps], p, len) < 0) {
            sl_http_upstream_free(up);
            return -EINVAL;
        }
        up->nreps++;
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = up;
    return 0;
}

static void conn_close(cconn *c);

void sl_http_upstream_free(sl_http_upstream *up)
{
    if (!up)
        return;
    for (int i = 0; up->pools && i < up->nreactors; i++) {
        pool *pl = up->pools[i];
        if (!pl)
            continue;
        for (int r = 0; r < up->nreps; r++)
            while (pl->reps[r].idle) {
                cconn *c = pl->reps[r].idle;
                pl->reps[r].idle = c->next;
                conn_close(c);
            }
        free(pl->reps);
        free(pl);
    }
    free(up->pools);
    free(up->reps);
    free(up);
}

static pool *get_pool(sl_http_upstream *up, sl_reactor *r)
{
    int id = sl_reactor_id(r);
    if (id < 0 || id >= up->nreactors)
        return NULL;
    if (!up->pools[id]) {
        pool *pl = calloc(1, sizeof *pl);
        if (!pl || !(pl->reps = calloc((size_t)up->nreps, sizeof *pl->reps))) {
            free(pl);
            return NULL;
        }
        pl->up = up;
        pl->r = r;
        pl->tokens = up->o.retry_budget_cap * 1000;
        up->pools[id] = pl;
    }
    return up->pools[id];
}

static void stats_of(sl_http_upstream *up, pool *pl, sl_http_upstream_stats *st)
{
    *st = pl ? pl->st : (sl_http_upstream_stats){ 0 };
    if (!pl)
        return;
    st->waiting = pl->nwait;
    st->out = pl->nout;
    for (int r = 0; r < up->nreps; r++) {
        st->active += pl->reps[r].outstanding;
        for (cconn *c = pl->reps[r].idle; c; c = c->next)
            st->idle++;
    }
}

void sl_http_upstream_stats_get(sl_http_upstream *up, sl_http_upstream_stats *st)
{
    stats_of(up, sl_reactor_current() ? get_pool(up, sl_reactor_current()) : NULL, st);
}

void sl__upstream_stats_peek(sl_http_upstream *up, int id, sl_http_upstream_stats *st)
{
    stats_of(up, id >= 0 && id < up->nreactors ? up->pools[id] : NULL, st);
}

sl_runtime *sl__upstream_runtime(const sl_http_upstream *up) { return up->rt; }

/* ---- finishing a call ------------------------------------------------------------ */

static void count(pool *pl, int rc)
{
    switch (rc) {
    case 0: pl->st.ok++; break;
    case -ECONNREFUSED: pl->st.refused++; break;
    case -ECONNRESET: pl->st.reset++; break;
    case -ETIMEDOUT: pl->st.timeouts++; break;
    case -EPROTO: pl->st.protocol++; break;
    default: pl->st.cancelled++; break;
    }
}

static void start_on(priv *pv, int rep);
static priv *next_waiter(pool *pl);
static int pick(pool *pl, int avoid, bool *probe);

/* Outlier detection: what the end of an attempt on `rep` says of it. Any
 * answer is a sign of life; a refusal, a reset, garbage or silence until
 * the deadline count against it; the caller's own cancel says nothing. */
static void judge(pool *pl, int rep, bool probe, int rc)
{
    const sl_http_upstream_opts *o = &pl->up->o;
    rep_pool *rp = &pl->reps[rep];
    if (probe)
        rp->probing = false;
    if (rc == 0) {
        rp->fails = 0;
        if (rp->out_until) {   /* back in rotation */
            rp->out_until = 0;
            pl->nout--;
        }
        return;
    }
    if (o->no_eject || (rc != -ECONNREFUSED && rc != -ECONNRESET && rc != -EPROTO && rc != -ETIMEDOUT))
        return;
    rp->fails++;
    if (probe && rp->out_until) {   /* still failing: out again, for longer */
        rp->out_ms = rp->out_ms * 2 < o->eject_max_ms ? rp->out_ms * 2 : o->eject_max_ms;
        rp->out_until = sl_now_ns() + (uint64_t)rp->out_ms * SL_NS_PER_MS;
        pl->st.ejected++;
    } else if (!rp->out_until && rp->fails >= o->eject_after && pl->nout + 1 < (uint32_t)pl->up->nreps) {
        rp->out_ms = o->eject_ms;   /* never the last one in rotation */
        rp->out_until = sl_now_ns() + (uint64_t)rp->out_ms * SL_NS_PER_MS;
        pl->nout++;
        pl->st.ejected++;
    }
}

/* Another attempt for a call refused or reset before any byte of its
 * answer, if the method, the budget and the caller's context allow it. */
static bool retry(priv *pv, int rc)
{
    pool *pl = pv->pool;
    const sl_http_upstream_opts *o = &pl->up->o;
    if (!pv->retryable || pv->tries >= o->retries || pv->got_bytes || !pv->task ||
        (rc != -ECONNREFUSED && rc != -ECONNRESET) || pl->tokens < 1000 || sl_task_cancelled(pv->task))
        return false;
    uint64_t deadline = sl_task_deadline(pv->task);
    if (deadline && deadline <= sl_now_ns() + ((uint64_t)o->margin_ms + 1) * SL_NS_PER_MS)
        return false;
    bool probe;
    int rep = pick(pl, pv->rep, &probe);
    rep_pool *rp = &pl->reps[rep];
    if (!rp->idle && rp->nconns >= o->max_conns)
        return false;   /* no queueing for a second try */
    pl->tokens -= 1000;
    pl->st.retried++;
    pv->tries++;
    pv->probe = probe;
    rp->probing |= probe;
    rp->outstanding++;
    start_on(pv, rep);
    return true;
}

/* The call has its result: its span, if sampled. */
static void span_end(priv *pv, int rc)
{
    if (pv->span.on)
        sl__trace_call_end(pv->pool->up->o.tracer, &pv->span, rc, pv->call->status, pv->line,
                           pv->pool->up->reps[pv->rep].hosthdr, pv->ts,
                           pv->task ? sl_task_ctx(pv->task) : NULL);
}

/* An attempt has its result: try again, or wake the task. */
static void finish(priv *pv, int rc)
{
    if (pv->done)
        return;
    pool *pl = pv->pool;
    count(pl, rc);
    judge(pl, pv->rep, pv->probe, rc);
    pv->probe = false;
    pl->reps[pv->rep].outstanding--;
    if (rc < 0 && retry(pv, rc))
        return;
    pv->done = true;
    span_end(pv, rc);
    if (pv->task)
        sl_task_unpark(pv->task, rc);
}

/* The first call waiting for a connection, taken out of the queue. */
static priv *next_waiter(pool *pl)
{
    priv *w = pl->wq_head;
    if (!w)
        return NULL;
    pl->wq_head = w->qnext;
    if (!pl->wq_head)
        pl->wq_tail = NULL;
    pl->nwait--;
    w->queued = false;
    return w;
}

/* A connection is free again: give it to a waiting call, or keep it idle. */
static void conn_release(cconn *c)
{
    pool *pl = c->pool;
    c->call = NULL;
    priv *w = next_waiter(pl);
    if (w) {
        if (w->probe && w->rep != c->rep) {   /* it goes elsewhere: no probe */
            pl->reps[w->rep].probing = false;
            w->probe = false;
        }
        w->rep = c->rep;
        pl->reps[c->rep].outstanding++;
        c->next = pl->reps[c->rep].idle;
        pl->reps[c->rep].idle = c;
        start_on(w, c->rep);
        return;
    }
    c->next = pl->reps[c->rep].idle;
    pl->reps[c->rep].idle = c;
}

static void conn_close(cconn *c)
{
    pool *pl = c->pool;
    if (c->bev)
        bufferevent_free(c->bev);
    sl_http_parser_fini(&c->p);
    pl->reps[c->rep].nconns--;
    free(c);
    /* a waiting call can have the slot */
    priv *w = next_waiter(pl);
    if (w) {
        pl->reps[w->rep].outstanding++;
        start_on(w, w->rep);
    }
}

static void unlink_idle(cconn *c)
{
    cconn **pp = &c->pool->reps[c->rep].idle;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
}

/* ---- the connection's callbacks ---------------------------------------------------- */

static void copy_headers(priv *pv, const sl_http_msg *m)
{
    size_t need = 0;
    for (uint32_t i = 0; i < m->nheaders; i++)
        need += m->headers[i].name.len + m->headers[i].value.len + 2;
    pv->hbuf = malloc(need ? need : 1);
    pv->hdrs = calloc(m->nheaders ? m->nheaders : 1, sizeof *pv->hdrs);
    if (!pv->hbuf || !pv->hdrs)
        return;
    char *p = pv->hbuf;
    for (uint32_t i = 0; i < m->nheaders; i++) {
        const sl_http_header *h = &m->headers[i];
        memcpy(p, h->name.ptr, h->name.len);
        p[h->name.len] = '\0';
        pv->hdrs[i].name = (sl_http_str){ p, h->name.len };
        p += h->name.len + 1;
        memcpy(p, h->value.ptr, h->value.len);
        p[h->value.len] = '\0';
        pv->hdrs[i].value = (sl_http_str){ p, h->value.len };
        p += h->value.len + 1;
    }
    pv->nhdrs = m->nheaders;
}

static int append_body(sl_http_resp *call, sl_http_str piece)
{
    char *b = realloc(call->body, call->body_len + piece.len + 1);
    if (!b)
        return -ENOMEM;
    memcpy(b + call->body_len, piece.ptr, piece.len);
    call->body = b;
    call->body_len += piece.len;
    b[call->body_len] = '\0';
    return 0;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    cconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    priv *pv = c->call;
    if (!pv) {   /* bytes on an idle connection: not HTTP we asked for */
        unlink_idle(c);
        conn_close(c);
        return;
    }
    pv->got_bytes = true;   /* too late to try again */
    bool pending = false;
    for (;;) {
        size_t len = evbuffer_get_contiguous_space(in);
        if (!len && !pending)
            return;
        const char *data = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
        size_t used = 0;
        sl_http_str body = { 0 };
        int ev = sl_http_parser_feed(&c->p, data, len, &used, &body);
        if (ev == SL_HTTP_EV_BODY && append_body(pv->call, body) < 0)
            ev = -ENOMEM;
        if (used)
            evbuffer_drain(in, used);
        pending = ev == SL_HTTP_EV_HEAD || ev == SL_HTTP_EV_BODY;
        if (ev == SL_HTTP_EV_NEED_MORE && !len)
            return;
        if (ev == SL_HTTP_EV_HEAD) {
            if (c->p.msg.status < 200)
                continue;   /* 1xx: the real answer follows */
            pv->call->status = c->p.msg.status;
            copy_headers(pv, &c->p.msg);
        } else if (ev == SL_HTTP_EV_DONE) {
            bool keep = c->p.msg.keep_alive;
            pv->conn = NULL;
            finish(pv, 0);
            if (keep) {
                sl_http_parser_reset(&c->p);
                conn_release(c);
            } else {
                conn_close(c);
            }
            return;
        } else if (ev < 0) {
            pv->conn = NULL;
            finish(pv, ev == -ENOMEM ? -ENOMEM : -EPROTO);
            conn_close(c);
            return;
        }
    }
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    cconn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    int err = EVUTIL_SOCKET_ERROR();
    priv *pv = c->call;
    if (!pv) {   /* an idle connection the server closed */
        unlink_idle(c);
        conn_close(c);
        return;
    }
    pv->conn = NULL;
    int rc = !c->connected && (what & BEV_EVENT_ERROR) && err == ECONNREFUSED ? -ECONNREFUSED : -ECONNRESET;
    if (what & BEV_EVENT_EOF && sl_http_parser_finish(&c->p) == SL_HTTP_EV_DONE && pv->call->status)
        rc = 0;   /* a body read until close */
    finish(pv, rc);
    conn_close(c);
}

/* ---- starting a call --------------------------------------------------------------- */

static cconn *conn_new(pool *pl, int rep)
{
    cconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (sl_http_parser_init(&c->p, SL_HTTP_RESPONSE, &(sl_http_limits){ .max_body = 64u << 20 }) < 0) {
        free(c);
        return NULL;
    }
    c->pool = pl;
    c->rep = rep;
    c->bev = bufferevent_socket_new(sl_reactor_base(pl->r), -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        sl_http_parser_fini(&c->p);
        free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    const replica *r = &pl->up->reps[rep];
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)r->port) };
    inet_pton(AF_INET, r->host, &sa.sin_addr);
    pl->reps[rep].nconns++;
    pl->st.connects++;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&sa, sizeof sa) < 0) {
        /* refused at once (a closed port on loopback can be) */
        bufferevent_free(c->bev);
        c->bev = NULL;
        sl_http_parser_fini(&c->p);
        pl->reps[rep].nconns--;
        free(c);
        return NULL;
    }
    int fd = bufferevent_getfd(c->bev), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    return c;
}

/* Writes the request: the head is made for each attempt (the replica's
 * Host, the budget left now); the rest is kept while another attempt may
 * follow. */
static void send_request(priv *pv, cconn *c)
{
    const sl_http_upstream *up = pv->pool->up;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char timeout[SL_GRPC_TIMEOUT_MAX + 16] = "";
    if (pv->deadline) {
        /* what is left now, less the margin (at least 1 ms: a retry is
         * only made with more than that left) */
        uint64_t now = sl_now_ns(), margin = (uint64_t)up->o.margin_ms * SL_NS_PER_MS;
        uint64_t left = pv->deadline > now + margin + SL_NS_PER_MS ? pv->deadline - now - margin : SL_NS_PER_MS;
        memcpy(timeout, "grpc-timeout: ", 14);
        sl_grpc_timeout_format(left, timeout + 14);
        strcat(timeout, "\r\n");
    }
    evbuffer_add_printf(out, "%.*sHost: %s\r\ntraceparent: %s\r\n%s%s%s%s", (int)pv->line_len, pv->line,
                        up->reps[c->rep].hosthdr, pv->tp, pv->ts ? "tracestate: " : "", pv->ts ? pv->ts : "",
                        pv->ts ? "\r\n" : "", timeout);
    if (pv->retryable && pv->tries < up->o.retries)
        evbuffer_add(out, evbuffer_pullup(pv->req, -1), evbuffer_get_length(pv->req));
    else
        evbuffer_add_buffer(out, pv->req);
}

/* Sends pv on an idle connection of `rep`, or a new one. */
static void start_on(priv *pv, int rep)
{
    pool *pl = pv->pool;
    cconn *c = pl->reps[rep].idle;
    if (c) {
        pl->reps[rep].idle = c->next;
        pl->st.reused++;
    } else if (!(c = conn_new(pl, rep))) {
        finish(pv, -ECONNREFUSED);
        return;
    }
    c->call = pv;
    pv->conn = c;
    pv->rep = rep;
    if (pv->head_request)
        sl_http_parser_expect_head_response(&c->p);
    send_request(pv, c);
}

/* The task's deadline or cancel ended the wait: close the connection, so
 * the callee sees the caller go. */
static void on_abort(sl_task *t, void *obj, int err)
{
    priv *pv = obj;
    (void)t;
    if (pv->done) {
        pv->task = NULL;
        return;
    }
    pv->done = true;
    span_end(pv, err);
    pv->task = NULL;
    count(pv->pool, err);
    pool *pl = pv->pool;
    if (pv->queued) {
        priv **pp = &pl->wq_head;
        while (*pp && *pp != pv)
            pp = &(*pp)->qnext;
        if (*pp) {
            *pp = pv->qnext;
            if (pl->wq_tail == pv) {
                pl->wq_tail = NULL;
                for (priv *q = pl->wq_head; q; q = q->qnext)
                    pl->wq_tail = q;
            }
            pl->nwait--;
        }
        pv->queued = false;
        if (pv->probe)
            pl->reps[pv->rep].probing = false;
        return;
    }
    pl->reps[pv->rep].outstanding--;
    /* silence until the deadline counts against the replica */
    judge(pl, pv->rep, pv->probe, pv->conn && err == -ETIMEDOUT ? -ETIMEDOUT : -ECANCELED);
    if (pv->conn) {
        cconn *c = pv->conn;
        pv->conn = NULL;
        c->call = NULL;
        conn_close(c);
    }
}

/* The replica for an attempt: one whose ejection ran out, to probe it;
 * else the one in rotation with the fewest calls under way (round robin
 * among equals), other than `avoid` (the one that just failed) when there
 * is a choice; with none in rotation (cannot happen: panic), any. */
static int pick(pool *pl, int avoid, bool *probe)
{
    int n = pl->up->nreps, best = -1, fallback = -1;
    uint32_t least = UINT32_MAX;
    uint64_t now = 0;
    *probe = false;
    if (avoid < 0)   /* a retry leaves the turn order alone */
        pl->rr++;
    for (int k = 0; k < n; k++) {
        int r = (int)((pl->rr + (uint32_t)k) % (uint32_t)n);
        rep_pool *rp = &pl->reps[r];
        if (rp->out_until) {
            if (!rp->probing && rp->out_until <= (now ? now : (now = sl_now_ns()))) {
                *probe = true;
                return r;
            }
            continue;
        }
        if (r == avoid) {
            fallback = r;
        } else if (rp->outstanding < least) {
            least = rp->outstanding;
            best = r;
        }
    }
    if (best < 0)
        best = fallback;
    for (int r = 0; best < 0 && r < n; r++)   /* panic: everyone */
        if (pl->reps[r].outstanding < least) {
            least = pl->reps[r].outstanding;
            best = r;
        }
    return best;
}

static bool idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") || !strcmp(m, "DELETE") ||
           !strcmp(m, "OPTIONS");
}

static const char *method_token(const char *m)
{
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return NULL;
    return *m ? m : NULL;
}

int sl_http_call(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *method,
                 const char *path, const char *body, size_t body_len)
{
    memset(call, 0, sizeof *call);
    if (!up || !method_token(method) || !path || path[0] != '/' || strpbrk(path, " \r\n") || (body_len && !body))
        return -EINVAL;
    int rc = sl_task_cancelled(t);
    if (rc)
        return rc;
    pool *pl = get_pool(up, sl_task_reactor(t));
    if (!pl)
        return -ENOMEM;
    pl->st.calls++;
    uint32_t cap = up->o.retry_budget_cap * 1000;
    pl->tokens = pl->tokens + up->o.retry_budget_pct * 10 < cap ? pl->tokens + up->o.retry_budget_pct * 10 : cap;
    /* the budget: what the caller has left, less a margin; none left, no call */
    uint64_t deadline = sl_task_deadline(t), now = sl_now_ns();
    uint64_t margin = (uint64_t)up->o.margin_ms * SL_NS_PER_MS;
    if (deadline && deadline <= now + margin + SL_NS_PER_MS) {
        pl->st.timeouts++;
        return -ETIMEDOUT;
    }
    /* the caller's trace with a new span (or a fresh trace), and its tracestate */
    sl__call_span span;
    size_t ts_len;
    const char *ts = sl__trace_call_begin(up->o.tracer, sl_task_ctx(t), &span, &ts_len);
    size_t line_len = strlen(method) + strlen(path) + 12;   /* "M P HTTP/1.1\r\n" */
    priv *pv = calloc(1, sizeof *pv + line_len + 1 + (ts ? ts_len + 1 : 0));
    if (!pv || !(pv->req = evbuffer_new())) {
        free(pv);
        return -ENOMEM;
    }
    sl_traceparent_format(&span.tp, pv->tp);
    span.deadline = deadline;
    pv->span = span;
    if (ts)
        pv->ts = memcpy(pv->line + line_len + 1, ts, ts_len + 1);
    snprintf(pv->line, line_len + 1, "%s %s HTTP/1.1\r\n", method, path);
    pv->line_len = line_len;
    pv->deadline = deadline;
    pv->call = call;
    pv->task = t;
    pv->pool = pl;
    pv->head_request = !strcmp(method, "HEAD");
    pv->retryable = up->o.retries && idempotent(method);
    call->priv_ = pv;
    snprintf(pv->what, sizeof pv->what, "HTTP %s %s", method, path);
    bool probe;
    int rep = pick(pl, -1, &probe);
    if (body_len || strcmp(method, "GET"))
        evbuffer_add_printf(pv->req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    evbuffer_add(pv->req, "\r\n", 2);
    if (body_len)
        evbuffer_add(pv->req, body, body_len);

    rep_pool *rp = &pl->reps[rep];
    pv->rep = rep;
    if (!rp->idle && rp->nconns >= up->o.max_conns) {
        if (pl->nwait >= up->o.max_waiting) {   /* backpressure: no unbounded queue */
            pl->st.busy++;
            pv->done = true;
            span_end(pv, -EBUSY);
            return -EBUSY;
        }
        rc = sl_task_park_as(t, pv, on_abort, pv->what);
        if (rc != SL_PENDING) {
            pv->done = true;
            return rc;
        }
        pv->queued = true;
        if (pl->wq_tail)
            pl->wq_tail->qnext = pv;
        else
            pl->wq_head = pv;
        pl->wq_tail = pv;
        pl->nwait++;
        return SL_PENDING;
    }
    rc = sl_task_park_as(t, pv, on_abort, pv->what);
    if (rc != SL_PENDING) {
        pv->done = true;
        return rc;
    }
    rp->outstanding++;
    pv->probe = probe;
    rp->probing |= probe;
    start_on(pv, rep);
    return SL_PENDING;   /* even if it already failed: the result comes on resume */
}

const char *sl_http_resp_header(const sl_http_resp *call, const char *name, size_t *len)
{
    priv *pv = call->priv_;
    size_t nl = strlen(name);
    for (uint32_t i = 0; pv && i < pv->nhdrs; i++)
        if (sl_http_str_ieq(pv->hdrs[i].name, name, nl)) {
            if (len)
                *len = pv->hdrs[i].value.len;
            return pv->hdrs[i].value.ptr;
        }
    return NULL;
}

void sl_http_call_end(sl_http_resp *call)
{
    priv *pv = call->priv_;
    if (pv) {
        if (!pv->done)   /* still under way (the caller stopped waiting): abort */
            on_abort(pv->task, pv, -ECANCELED);
        evbuffer_free(pv->req);
        free(pv->hbuf);
        free(pv->hdrs);
        free(pv);
    }
    free(call->body);
    memset(call, 0, sizeof *call);
}
