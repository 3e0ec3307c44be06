/* conn.c: one HTTP/1.1 connection: parse, dispatch, answer in order.
 *
 * The read side stays armed while handlers run, so EOF or a reset is seen
 * at once and cancels the requests still in flight ("client disconnected").
 * Pipelined requests are parsed up to max_pipeline ahead and answered in
 * order. The states of a connection and of its requests, and who moves
 * them, are drawn in server_int.h: a connection's socket closes as it goes
 * GONE, its struct when the last reference (conn_hold/sl__conn_put) goes;
 * a request goes when its turn has passed and no handler runs for it.
 *
 * The socket is served by two plain events (see struct conn): a request
 * that arrives whole and is answered at once costs one recv and one writev,
 * as with the fastest servers. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include "server_int.h"
#include "trace_int.h"

static void conn_process(conn *c);
static void conn_free(conn *c);
static void conn_fail(conn *c);

/* ---- states and references (server_int.h draws them) ------------------------------- */

/* Moves c forward to `to`; states never go back, so asking to close a
 * connection that is already GONE changes nothing. */
static void conn_set_state(conn *c, conn_state to)
{
    if (to > c->st)
        c->st = to;
}

static inline void conn_hold(conn *c)
{
    c->refs++;
}

static inline void conn_put(conn *c)
{
    assert(c->refs > 0);
    if (--c->refs == 0 && c->st == CONN_GONE)
        free(c);
}

void sl__conn_put(conn *c)
{
    conn_put(c);
}

/* ---- requests ---------------------------------------------------------------------- */

void sl__req_free(sl_http_req *req)
{
    if (req->ctx)
        sl_ctx_unref(req->ctx);
    if (!req->out_borrowed)
        free(req->out);
    if (req->extra)
        evbuffer_free(req->extra);
    if (req->cause)   /* only error answers have one: no call per request */
        free(req->cause);
    free(req->body);
    free(req);
}

void sl__req_done(sl_http_req *req)
{
    conn *c = req->c;
    sl__req_free(req);
    if (c)
        conn_put(c);
}

/* Grows *buf (capacity *cap, doubling from `first`) to hold at least
 * `need` bytes. */
static int grow(char **buf, size_t *cap, size_t need, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : first;
    while (n < need)
        n *= 2;
    char *b = realloc(*buf, n);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = n;
    return 0;
}

/* The bytes a copy of m's target and headers takes after the request's
 * state: the header array, then the strings, NUL-terminated. */
static size_t head_size(const sl_http_msg *m)
{
    if (!m)
        return 0;
    size_t need = m->nheaders * sizeof(sl_http_header) + m->target.len + 1;
    for (uint32_t i = 0; i < m->nheaders; i++)
        need += m->headers[i].name.len + m->headers[i].value.len + 2;
    return need;
}

/* A client that pipelines far ahead of its answers, or does not read them,
 * is pushed back by TCP instead of growing our memory: nothing more is
 * parsed while OUT_MAX bytes of answers wait for it, and reading stops at
 * IN_MAX bytes of unparsed input (a read adds at most RBUF_SIZE). */
#define IN_MAX (256 * 1024)
#define OUT_MAX (256 * 1024)
#define RBUF_SIZE (64 * 1024)

#define ALIGN_UP(n, a) (((n) + (a) - 1) / (a) * (a))

/* A request, its handler's state and the copy of its head are one
 * allocation (m: the head, or NULL for an answer without one). */
static sl_http_req *req_new(conn *c, size_t state_size, const sl_http_msg *m, uint64_t now)
{
    size_t at = ALIGN_UP(offsetof(sl_http_req, state) + state_size, _Alignof(sl_http_header));
    /* malloc + memset, not calloc: glibc's calloc skips the thread cache,
     * so each request would take the slow path twice (calloc, then a free
     * that finds the cache full) */
    sl_http_req *req = malloc(at + head_size(m));
    if (!req)
        return NULL;
    memset(req, 0, at);   /* the head copy after it is written whole */
    if (m) {
        req->headers = (sl_http_header *)(void *)((char *)req + at);
        req->head = (char *)(req->headers + m->nheaders);
    }
    req->c = c;
    req->sr = c->sr;
    req->t_start = now;
    req->keep_alive = true;
    conn_hold(c);   /* dropped as the request is freed */
    SL_LIST_PUSH_BACK(&c->pipe, req, plink);
    c->npipe++;
    return req;
}

/* An answer made by the server itself (errors, 404, 503...). */
static void answer_now(sl_http_req *req, int status, const char *code, const char *msg)
{
    if (req->replied)
        return;
    sl__reply_static(req, status, code, msg);
}

/* ---- timers ------------------------------------------------------------------------ */

static uint64_t mode_ns(const conn *c, conn_timer mode)
{
    const sl_http_server_opts *o = &c->sr->srv->o;
    return (uint64_t)(mode == TIMER_HEADER ? o->header_timeout_ms : o->idle_timeout_ms) * SL_NS_PER_MS;
}

static void timer_set(conn *c, uint64_t at, uint64_t now)
{
    uint64_t ns = at > now ? at - now : 0;
    struct timeval tv = { (time_t)(ns / SL_NS_PER_S), (suseconds_t)(ns % SL_NS_PER_S / 1000) };
    evtimer_add(c->timer, &tv);
    c->timer_at = at;
}

/* The timer is lazy: a mode that ends leaves it pending, and it checks
 * when it fires, so a keep-alive request costs no timer operation at all
 * (a busy connection's timer fires once per idle timeout and re-arms). */
static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    c->timer_at = 0;
    if (c->timer_mode == TIMER_NONE)
        return;
    uint64_t now = sl_now_ns(), due = c->since + mode_ns(c, c->timer_mode);
    if (now < due) {
        timer_set(c, due, now);
        return;
    }
    if (c->timer_mode == TIMER_IDLE) {
        c->sr->st.closed_idle++;
        conn_free(c);
        return;
    }
    /* a head that took too long: slowloris */
    c->timer_mode = TIMER_NONE;
    conn_set_state(c, CONN_CLOSING);
    sl_http_req *req = req_new(c, 0, NULL, now);
    if (!req) {
        conn_free(c);
        return;
    }
    req->method = "?";
    answer_now(req, 408, "request_timeout", "the request head took too long to arrive");
}

/* A time certainly not before now, without the exact clock: the coarse
 * clock plus its lag. A timer from it is never early, at most a few ms
 * late, and the idle timer costs no exact clock read per request. */
static uint64_t now_or_later(void) { return sl_now_coarse_ns() + sl_coarse_slack_ns(); }

static void arm(conn *c, conn_timer mode)
{
    if (c->timer_mode == mode)
        return;
    c->timer_mode = mode;
    if (mode == TIMER_NONE)
        return;
    uint64_t now = now_or_later(), due = now + mode_ns(c, mode);
    c->since = now;
    if (!c->timer_at || c->timer_at > due)
        timer_set(c, due, now);
}

static void update_timer(conn *c)
{
    if (c->st != CONN_READING)
        arm(c, TIMER_NONE);
    else if (c->head_started && !c->cur)
        arm(c, TIMER_HEADER);
    else if (!c->pipe.head && !c->cur)
        arm(c, TIMER_IDLE);
    else
        arm(c, TIMER_NONE);   /* requests in flight: their budgets govern */
}

/* ---- writing --------------------------------------------------------------------------- */

/* Bytes of answers the socket has not taken yet. */
static size_t out_held(const conn *c)
{
    return c->out_len - c->out_off;
}

/* Keeps what the socket did not take, after what already waits, and asks
 * to be told when it can take more. */
static int out_keep(conn *c, const char *p, size_t n)
{
    if (c->out_len + n > c->out_cap) {
        if (c->out_off) {   /* slide down what is left before growing */
            memmove(c->out, c->out + c->out_off, out_held(c));
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (grow(&c->out, &c->out_cap, c->out_len + n, 4096) < 0)
            return -ENOMEM;
    }
    memcpy(c->out + c->out_len, p, n);
    c->out_len += n;
    if (!c->writing) {
        event_add(c->wev, NULL);
        c->writing = true;
    }
    return 0;
}

/* send/sendmsg rather than write/writev: the socket calls skip the file
 * layer (in a threaded process each writev takes and drops a reference on
 * the file, and more), and MSG_NOSIGNAL needs no SIGPIPE handling. */
static ssize_t sock_send(int fd, const struct iovec *iov, int n)
{
    if (n == 1)
        return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
    return sendmsg(fd, &mh, MSG_NOSIGNAL);
}

/* Sends iov in order: straight to the socket when nothing waits before it
 * (which spares the EV_WRITE round trip, two epoll_ctl calls), else after
 * what waits. -EPIPE when the peer is gone, -ENOMEM. */
static int out_send(conn *c, const struct iovec *iov, int n)
{
    ssize_t done = 0;
    if (!out_held(c)) {
        done = sock_send(c->fd, iov, n);
        if (done < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -EPIPE;
        if (done < 0)
            done = 0;
    }
    for (int i = 0; i < n; i++) {
        size_t skip = (size_t)done < iov[i].iov_len ? (size_t)done : iov[i].iov_len;
        done -= (ssize_t)skip;
        if (skip < iov[i].iov_len && out_keep(c, (const char *)iov[i].iov_base + skip, iov[i].iov_len - skip) < 0)
            return -ENOMEM;
    }
    return 0;
}

#define FLUSH_IOV 64

/* Writes every answered request at the front of the pipeline, in order:
 * one writev for all of them. */
void sl__conn_flush(conn *c)
{
    struct iovec iov[FLUSH_IOV];
    sl_http_req *done[FLUSH_IOV];
    int err = 0;
    while (c->pipe.head && c->pipe.head->replied) {
        int n = 0;
        for (sl_http_req *req = c->pipe.head; req && req->replied && n < FLUSH_IOV; req = req->plink.next) {
            iov[n] = (struct iovec){ req->out, req->out ? req->out_len : 0 };
            done[n++] = req;
        }
        if (c->st != CONN_GONE && !err)
            err = out_send(c, iov, n);
        for (int i = 0; i < n; i++) {
            sl_http_req *req = done[i];
            SL_LIST_REMOVE(&c->pipe, req, plink);
            c->npipe--;
            if (!req->keep_alive)
                conn_set_state(c, CONN_CLOSING);
            sl__srv_count(c->sr, req);
            sl__req_flushed(req);   /* may free req */
        }
    }
    if (err) {
        conn_fail(c);
        return;
    }
    if (c->st != CONN_READING && !c->pipe.head && !c->cur) {
        /* close once the output has gone (write_cb), or now if nothing is left */
        if (!out_held(c))
            conn_free(c);
        return;
    }
    if (!c->in_process && c->st != CONN_GONE)
        conn_process(c);   /* room in the pipeline again */
}

static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)what;
    ssize_t n = send(fd, c->out + c->out_off, out_held(c), MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n < 0) {
        conn_fail(c);
        return;
    }
    bool was_full = out_held(c) >= OUT_MAX;
    c->out_off += (size_t)n;
    if (c->timer_mode == TIMER_IDLE)
        c->since = now_or_later();   /* idle means no progress: a slow reader makes some */
    if (out_held(c)) {
        if (was_full && out_held(c) < OUT_MAX && !c->in_process)
            conn_process(c);   /* parse what waited for room (may free c) */
        return;
    }
    c->out_off = c->out_len = 0;
    if (c->out_cap > 65536) {   /* a burst's buffer is not kept for ever */
        free(c->out);
        c->out = NULL;
        c->out_cap = 0;
    }
    event_del(c->wev);
    c->writing = false;
    if (c->st == CONN_CLOSING && !c->pipe.head && !c->cur)
        conn_free(c);
    else if (was_full && !c->in_process)
        conn_process(c);
}

void sl__conn_buffered(srv_reactor *sr, uint64_t *in, uint64_t *out, uint64_t *most)
{
    for (conn *c = sr->conns.head; c; c = c->link.next) {
        uint64_t i = c->in_borrowed ? 0 : c->in_len - c->in_off, o = out_held(c);
        *in += i;
        *out += o;
        if (i + o > *most)
            *most = i + o;
    }
}

/* ---- reading ------------------------------------------------------------------------- */

static void copy_head(sl_http_req *req, const sl_http_msg *m)
{
    char *p = req->head;
    memcpy(p, m->target.ptr, m->target.len);
    p[m->target.len] = '\0';
    const char *q = memchr(p, '?', m->target.len);
    req->path = p;
    req->path_len = q ? (size_t)(q - p) : m->target.len;
    req->query = q ? q + 1 : "";
    req->query_len = q ? m->target.len - req->path_len - 1 : 0;
    p += m->target.len + 1;
    for (uint32_t i = 0; i < m->nheaders; i++) {
        const sl_http_header *h = &m->headers[i];
        memcpy(p, h->name.ptr, h->name.len);
        p[h->name.len] = '\0';
        req->headers[i].name = (sl_http_str){ p, h->name.len };
        p += h->name.len + 1;
        memcpy(p, h->value.ptr, h->value.len);
        p[h->value.len] = '\0';
        req->headers[i].value = (sl_http_str){ p, h->value.len };
        p += h->value.len + 1;
    }
    req->nheaders = m->nheaders;
}

/* The debug policy (sl_http_server_opts.debug): the status that refuses
 * this request, or 0. It goes before routing, so that a 405 cannot tell
 * that a hidden route exists. */
static int debug_denied(const conn *c, const sl_http_req *req)
{
    int policy = c->sr->srv->o.debug;
    if (policy == SL_HTTP_DEBUG_ON || req->path_len < 7 || memcmp(req->path, "/debug/", 7))
        return 0;
    if (policy == SL_HTTP_DEBUG_LOOPBACK)
        return sl__sockaddr_loopback(&c->peer.sa) ? 0 : 403;
    return 404;
}

/* The caller's budget (grpc-timeout), relative, never more than ours; -1
 * when the header is malformed. *callers: the caller's budget is the
 * shorter, so its end is the caller's deadline (sluice-cause). */
static int head_budget(const sl_http_server *srv, const sl_http_msg *m, uint64_t *budget, bool *callers)
{
    *budget = (uint64_t)srv->o.timeout_ms * SL_NS_PER_MS;
    *callers = false;
    for (uint32_t i = 0; i < m->nheaders; i++) {
        if (!sl_http_str_ieq(m->headers[i].name, "grpc-timeout", 12))
            continue;
        uint64_t ns;
        if (sl_grpc_timeout_parse(m->headers[i].value.ptr, m->headers[i].value.len, &ns) < 0)
            return -1;
        if (ns < *budget) {
            *budget = ns;
            *callers = true;
        }
        return 0;
    }
    return 0;
}

/* ---- a head: routing, then the reasons to answer it ourselves -------------------------- */

/* What routing and the head's budget tell about a head (route_head). */
typedef struct head_route {
    int rc;                     /* sl_router_match: 0, -EOPNOTSUPP (405), else 404 */
    route_info *ri;             /* the route, when rc == 0 */
    sl_route_match match;       /* its captures point into the parser's store */
    char allow[128];            /* the Allow header of a 405 */
    uint64_t now, budget;       /* the request's budget, relative */
    bool callers;               /* the budget is the caller's grpc-timeout */
    bool bad_budget;            /* grpc-timeout was malformed */
    bool debug_path;            /* under /debug/ with a policy other than ON */
} head_route;

static void route_head(const conn *c, const sl_http_msg *m, head_route *h)
{
    const sl_http_server *srv = c->sr->srv;
    h->rc = sl_router_match(srv->router, m->method_name, strlen(m->method_name), m->target.ptr, m->target.len,
                            &h->match, h->allow, sizeof h->allow);
    h->ri = h->rc == 0 ? h->match.arg : NULL;
    h->now = sl_now_ns();
    h->bad_budget = head_budget(srv, m, &h->budget, &h->callers) < 0;
    /* routes under /debug/ meet the debug policy first (debug_denied) */
    h->debug_path = m->target.len >= 7 && !memcmp(m->target.ptr, "/debug/", 7) && srv->o.debug != SL_HTTP_DEBUG_ON;
}

/* Notes that the server answers req itself, once its body has been read
 * past (on_done): status, with a JSON error of code and msg (literals).
 * The first reason found wins. */
static void answer_later(sl_http_req *req, int status, const char *code, const char *msg)
{
    if (req->immediate)
        return;
    req->immediate = status;
    req->immediate_code = code;
    req->immediate_msg = msg;
}

/* A request that admission refuses as soon as its head is parsed costs no
 * copy of its head, no trace span, no context, no task and no log line;
 * its body is read off the socket and dropped, and its answer is canned
 * (sl__reply_static). Only what it needs to keep its place in the
 * pipeline is made. Only for a routed head with nothing else against it. */
static bool refuse_early(conn *c, const sl_http_msg *m, const head_route *h)
{
    const char *code, *msg;
    uint64_t deadline = h->now + h->budget;
    int status = sl__srv_precheck(c->sr, h->ri, h->now, deadline, &code, &msg);
    if (!status)
        return false;
    sl_http_req *req = req_new(c, 0, NULL, h->now);
    if (!req) {
        conn_set_state(c, CONN_CLOSING);
        return true;
    }
    c->cur = req;
    req->method = m->method_name;
    req->is_head = m->method == SL_HTTP_HEAD;
    req->keep_alive = m->keep_alive;
    req->match.pattern = h->match.pattern;   /* the route's label in /metrics */
    req->route = h->ri;
    req->deadline = deadline;
    req->callers_deadline = h->callers;
    req->refused_early = true;
    answer_later(req, status, code, msg);
    return true;
}

/* The request of a head, with a copy of the head, as c->cur. */
static sl_http_req *req_of_head(conn *c, const sl_http_msg *m, const head_route *h)
{
    sl_http_req *req = req_new(c, h->ri ? h->ri->state_size : 0, m, h->now);
    if (!req)
        return NULL;
    c->cur = req;
    req->method = m->method_name;
    req->is_head = m->method == SL_HTTP_HEAD;
    req->keep_alive = m->keep_alive;
    copy_head(req, m);
    req->deadline = h->now + h->budget;
    req->callers_deadline = h->callers;   /* its end is the caller's deadline (sluice-cause) */
    return req;
}

/* The route, or 405/404. */
static void set_route(sl_http_req *req, const sl_http_msg *m, head_route *h)
{
    if (h->rc == 0) {
        /* the captures point into the parser's store: move them to our copy */
        req->match = h->match;
        for (int i = 0; i < h->match.nparams; i++)
            req->match.params[i].value = req->head + (h->match.params[i].value - m->target.ptr);
        req->route = h->ri;
    } else if (h->rc == -EOPNOTSUPP) {
        answer_later(req, 405, "method_not_allowed", "method not allowed for this path");
        sl_http_reply_header(req, "Allow", h->allow);
    } else {
        answer_later(req, 404, "not_found", "no such route");
    }
}

/* Draining: new work is refused; what continues or undoes work in flight,
 * and probes, are still served (sl_http.h). */
static void refuse_draining(srv_reactor *sr, sl_http_req *req)
{
    if (!sr->draining || req->immediate || !req->route || req->route->lane != SL_HTTP_LANE_NORMAL)
        return;
    sl__srv_shed(sr, SHED_DRAINING);
    /* not CLOSING yet: the body must still be read to answer (the answer
     * says Connection: close while draining, reply.c) */
    answer_later(req, 503, "shutting_down", "the server is shutting down");
}

/* Expect: 100-continue, for a request we will serve, when it is the first
 * in line (a 100 must not overtake an earlier response). */
static void send_continue(conn *c, sl_http_req *req, const sl_http_msg *m)
{
    if (!m->expect_continue || req->immediate || c->pipe.head != req || c->st == CONN_GONE)
        return;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct iovec iov = { (void *)cont, sizeof cont - 1 };
    if (out_send(c, &iov, 1) < 0)
        conn_set_state(c, CONN_CLOSING);   /* the read side will see the peer go */
}

/* A head is in: route it, then, in order, each reason to answer it
 * ourselves (the first wins): the debug policy (before routing, so that a
 * 405 cannot tell that a hidden route exists), no route, a malformed
 * budget, admission, the drain. Then the trace span and 100-continue. */
static void on_head(conn *c)
{
    srv_reactor *sr = c->sr;
    const sl_http_msg *m = &c->p.msg;
    head_route h;
    c->head_started = false;
    route_head(c, m, &h);
    if (h.ri && !h.bad_budget && !h.debug_path && !sr->draining && refuse_early(c, m, &h))
        return;
    sl_http_req *req = req_of_head(c, m, &h);
    if (!req) {
        conn_set_state(c, CONN_CLOSING);
        return;
    }
    int denied = debug_denied(c, req);
    if (denied)
        answer_later(req, denied, denied == 403 ? "forbidden" : "not_found",
                     denied == 403 ? "debug endpoints answer loopback clients only" : "no such route");
    else
        set_route(req, m, &h);
    if (h.bad_budget && !sr->srv->o.bad_timeout_ignored)
        answer_later(req, 400, "bad_request", "malformed grpc-timeout header");
    if (req->route && !req->immediate) {   /* a /debug/ route, a malformed budget ignored */
        const char *code, *msg;
        int status = sl__srv_precheck(sr, req->route, h.now, req->deadline, &code, &msg);
        if (status)
            answer_later(req, status, code, msg);
    }
    sl__trace_req_begin(req);
    refuse_draining(sr, req);
    send_continue(c, req, m);
}

static int on_body(conn *c, sl_http_str piece)
{
    sl_http_req *req = c->cur;
    if (!req || req->immediate)
        return 0;   /* discarded: we answer without it */
    if (grow(&req->body, &req->body_cap, req->body_len + piece.len + 1, 1024) < 0)
        return -ENOMEM;
    memcpy(req->body + req->body_len, piece.ptr, piece.len);
    req->body_len += piece.len;
    req->body[req->body_len] = '\0';
    return 0;
}

static void on_done(conn *c)
{
    sl_http_req *req = c->cur;
    c->cur = NULL;
    if (!req)
        return;
    if (!req->keep_alive)
        conn_set_state(c, CONN_CLOSING);   /* no more requests from this connection */
    if (req->immediate)
        answer_now(req, req->immediate, req->immediate_code, req->immediate_msg);
    else
        sl__srv_admit(req);
}

static void on_parse_error(conn *c, int err)
{
    conn_set_state(c, CONN_CLOSING);
    c->sr->st.parse_errors++;
    sl_http_req *req = c->cur;
    c->cur = NULL;
    if (!req && !(req = req_new(c, 0, NULL, sl_now_ns())))
        return;
    if (!req->method)
        req->method = "?";
    req->immediate = 0;
    int status = sl_http_error_status(err);
    const char *code = status == 413 ? "too_large" : status == 431 ? "headers_too_large"
                       : status == 505 ? "bad_version" : status == 501 ? "not_implemented" : "bad_request";
    answer_now(req, status, code, sl_http_error_str(err));
}


/* Reads when there is a reason to: not paused by backpressure, not over
 * IN_MAX, and the peer still there. */
static void update_reading(conn *c)
{
    bool want = c->st != CONN_GONE && !c->paused && c->in_len - c->in_off < IN_MAX;
    if (want == c->reading)
        return;
    if (want)
        event_add(c->rev, NULL);
    else
        event_del(c->rev);
    c->reading = want;
}

static void conn_process(conn *c)
{
    if (c->in_process) {
        c->again = true;
        return;
    }
    c->in_process = true;
    conn_hold(c);   /* an answer can close the connection under us */
    uint32_t max_pipe = c->sr->srv->o.max_pipeline;
    do {
        c->again = false;
        /* after HEAD or BODY the parser may end the message without another
         * byte (DONE uses 0 bytes): ask it again even with nothing new */
        bool pending = false;
        while (c->st == CONN_READING && !c->paused && (c->cur || c->npipe < max_pipe)
               && out_held(c) < OUT_MAX) {
            size_t len = c->in_len - c->in_off;
            if (!len && !pending)
                break;
            const char *data = len ? c->in + c->in_off : "";
            size_t used = 0;
            sl_http_str body = { 0 };
            int ev = sl_http_parser_feed(&c->p, data, len, &used, &body);
            if (ev == SL_HTTP_EV_BODY && on_body(c, body) < 0)
                ev = -ENOMEM;
            c->in_off += used;
            pending = ev == SL_HTTP_EV_HEAD || ev == SL_HTTP_EV_BODY;
            if (ev == SL_HTTP_EV_NEED_MORE) {
                if (used && !c->cur)
                    c->head_started = true;
                if (!len)
                    break;
            } else if (ev == SL_HTTP_EV_HEAD) {
                on_head(c);
            } else if (ev == SL_HTTP_EV_DONE) {
                on_done(c);
            } else if (ev < 0) {
                on_parse_error(c, ev);
            }
            if (c->st == CONN_GONE)
                break;
        }
    } while (c->again && c->st != CONN_GONE);
    c->in_process = false;
    if (c->st != CONN_GONE) {
        if (c->in_off == c->in_len && !c->in_borrowed) {   /* an idle connection holds no buffer */
            free(c->in);
            c->in = NULL;
            c->in_off = c->in_len = c->in_cap = 0;
        }
        update_reading(c);
        update_timer(c);
    }
    conn_put(c);
}

/* What a read into the reactor's buffer left unparsed becomes the
 * connection's own before another connection reads there. */
static int keep_unparsed(conn *c)
{
    size_t rest = c->in_len - c->in_off;
    const char *from = c->in + c->in_off;
    c->in_borrowed = false;
    c->in = NULL;
    c->in_off = c->in_len = c->in_cap = 0;
    if (!rest)
        return 0;
    size_t cap = rest < 4096 ? 4096 : rest;
    if (!(c->in = malloc(cap)))
        return -ENOMEM;
    memcpy(c->in, from, rest);
    c->in_len = rest;
    c->in_cap = cap;
    return 0;
}

/* Room for one more read after what is unparsed (there is some). */
static char *in_room(conn *c, size_t *room)
{
    if (c->in_off) {
        memmove(c->in, c->in + c->in_off, c->in_len - c->in_off);
        c->in_len -= c->in_off;
        c->in_off = 0;
    }
    if (grow(&c->in, &c->in_cap, c->in_len + 4096, 4096) < 0)
        return NULL;
    *room = c->in_cap - c->in_len < RBUF_SIZE ? c->in_cap - c->in_len : RBUF_SIZE;
    return c->in + c->in_len;
}

/* The peer closed or reset, or a write failed: everything in flight is
 * for nobody now (conn_free cancels it, "client disconnected"). */
static void conn_fail(conn *c)
{
    conn_free(c);
}

/* One recv per readable event (level-triggered: if more is waiting, the
 * event comes again). A connection with nothing unparsed reads into the
 * reactor's buffer and is parsed in place. */
static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    srv_reactor *sr = c->sr;
    (void)what;
    sl__srv_batch(sr);   /* flooded: one poll a period */
    if (!sr->rbuf && !(sr->rbuf = malloc(RBUF_SIZE)))
        return;   /* level-triggered: tried again on the next turn */
    ssize_t n;
    if (c->in_off == c->in_len) {
        free(c->in);
        n = recv(fd, sr->rbuf, RBUF_SIZE, 0);
        c->in = sr->rbuf;
        c->in_off = 0;
        c->in_len = n > 0 ? (size_t)n : 0;
        c->in_cap = RBUF_SIZE;
        c->in_borrowed = true;
    } else {
        size_t room;
        char *at = in_room(c, &room);
        if (!at) {
            conn_free(c);
            return;
        }
        n = recv(fd, at, room, 0);
        if (n > 0)
            c->in_len += (size_t)n;
    }
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        c->in_off = c->in_len;
        conn_fail(c);
        return;
    }
    if (c->st != CONN_READING)   /* nothing more is parsed: what comes is dropped */
        c->in_off = c->in_len;
    conn_hold(c);   /* across processing and the handlers it starts */
    conn_process(c);
    /* the handlers run now: what they answer at once goes out before the
     * next connection is read (their answers may parse more of `in`) */
    sl_reactor_run_ready(sr->r);
    if (c->st != CONN_GONE && c->in_borrowed && keep_unparsed(c) < 0)
        conn_free(c);
    if (c->st != CONN_GONE)
        update_reading(c);
    conn_put(c);
}

void sl__conn_cancel_all(conn *c, sl_cause cause)
{
    for (sl_http_req *req = c->pipe.head; req; req = req->plink.next)
        if (req->ctx && req->run != REQ_ENDED && !req->reset)
            sl_ctx_cancel(req->ctx, cause);
}

/* ---- life cycle ------------------------------------------------------------------------ */

void sl__conn_accept(srv_reactor *sr, int fd, const struct sockaddr *peer)
{
    conn *c = calloc(1, sizeof *c);
    struct event_base *base = sl_reactor_base(sr->r);
    const sl_http_server_opts *o = &sr->srv->o;
    sl_http_limits lim = { .max_head = o->max_head, .max_headers = o->max_headers, .max_body = o->max_body };
    if (!c || sl_http_parser_init(&c->p, SL_HTTP_REQUEST, &lim) < 0) {
        free(c);
        close(fd);
        return;
    }
    c->sr = sr;
    if (peer && peer->sa_family == AF_INET)
        c->peer.in = *(const struct sockaddr_in *)peer;
    else if (peer && peer->sa_family == AF_INET6)
        c->peer.in6 = *(const struct sockaddr_in6 *)peer;
    c->fd = fd;
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
    c->timer = evtimer_new(base, timer_cb, c);
    if (!c->rev || !c->wev || !c->timer || event_add(c->rev, NULL) < 0) {
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        if (c->timer)
            event_free(c->timer);
        close(fd);
        sl_http_parser_fini(&c->p);
        free(c);
        return;
    }
    c->reading = true;
    SL_LIST_PUSH_FRONT(&sr->conns, c, link);
    sr->nconns++;
    sr->st.accepted++;
    update_timer(c);
}

/* READING or CLOSING -> GONE: closes the socket now, drops the pipeline
 * (each request's turn passes unanswered, 499) and cancels the handlers
 * still running; the struct stays while references to it do. */
static void conn_free(conn *c)
{
    if (c->st == CONN_GONE)
        return;
    conn_set_state(c, CONN_GONE);
    srv_reactor *sr = c->sr;
    if (c->throttle && !c->teardown) {   /* the channel must not call us any more */
        sl_chan_set_pressure(c->throttle, 0, 0, NULL, NULL);
        c->throttle = NULL;
    }
    if (c->fd >= 0) {
        event_free(c->rev);
        event_free(c->wev);
        close(c->fd);
        c->fd = -1;
        c->rev = c->wev = NULL;
        c->reading = c->writing = false;
    }
    if (!c->in_borrowed)
        free(c->in);
    free(c->out);
    c->in = c->out = NULL;
    c->in_off = c->in_len = c->out_off = c->out_len = 0;
    c->in_borrowed = false;
    if (c->timer) {
        event_free(c->timer);
        c->timer = NULL;
    }
    sl_http_parser_fini(&c->p);
    SL_LIST_REMOVE(&sr->conns, c, link);
    sr->nconns--;
    /* requests not yet answered: cancel their handlers; their answers go nowhere */
    if (!c->teardown)
        sl__conn_cancel_all(c, SL_CAUSE_DISCONNECT);
    c->cur = NULL;
    conn_hold(c);   /* while its requests let go of it */
    sl_http_req *req;
    while ((req = c->pipe.head)) {
        SL_LIST_REMOVE(&c->pipe, req, plink);
        if (req->run == REQ_QUEUED)   /* never started: take it out of the admission queue */
            sl__srv_unqueue(req);
        if (!req->status)
            req->status = 499;
        sl__req_flushed(req);   /* may free req */
    }
    conn_put(c);   /* may free c */
    sl__srv_conn_gone(sr);
}

/* Server teardown after the runtime stopped: no handler may be touched
 * (their contexts belong to reactors that no longer run). */
/* ---- backpressure ---------------------------------------------------------------------- */

static void on_pressure(sl_chan *ch, bool high, void *arg)
{
    conn *c = arg;
    (void)ch;
    c->paused = high;
    if (c->st == CONN_GONE)
        return;
    update_reading(c);
    if (!high && !c->in_process)
        conn_process(c);   /* what was buffered meanwhile */
}

int sl_http_req_throttle(sl_http_req *req, sl_chan *ch, size_t high, size_t low)
{
    conn *c = req->c;
    if (!c || c->st == CONN_GONE)
        return -EPIPE;
    if (c->throttle && c->throttle != ch) {   /* one channel per connection */
        sl_chan_set_pressure(c->throttle, 0, 0, NULL, NULL);
        c->throttle = NULL;
        on_pressure(NULL, false, c);
    }
    if (!ch)
        return 0;
    int rc = sl_chan_set_pressure(ch, high, low, on_pressure, c);
    if (rc == 0)
        c->throttle = ch;
    return rc;
}

/* ---- fault injection ------------------------------------------------------------------ */

int sl_http_req_reset(sl_http_req *req)
{
    if (req->replied)
        return -EALREADY;
    req->replied = true;
    conn *c = req->c;
    if (!c || c->st == CONN_GONE || c->fd < 0) {
        req->status = 499;
        return -EPIPE;
    }
    req->reset = true;
    req->status = 444;   /* nginx's "closed without a response" */
    sl__srv_count(c->sr, req);
    /* linger 0: close() sends RST and drops whatever is unsent */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    conn_free(c);
    return 0;
}

void sl__conn_drop(conn *c)
{
    c->teardown = true;
    conn_free(c);
}

void sl__conn_abort(conn *c)
{
    conn_free(c);
}

void sl__conn_close_idle(conn *c)
{
    if (!c->pipe.head && !c->cur)
        conn_free(c);
    else
        conn_set_state(c, CONN_CLOSING);
}
