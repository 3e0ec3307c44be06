/* conn.c: one HTTP/1.1 connection: parse, dispatch, answer in order.
 *
 * The read side stays armed while handlers run, so EOF or a reset is seen
 * at once and cancels the requests still in flight ("client disconnected").
 * Pipelined requests are parsed up to max_pipeline ahead and answered in
 * order. A connection is freed when the peer is gone (or we closed) and no
 * request of it is still alive (a running handler keeps its request). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include "server_int.h"

enum { T_NONE, T_HEADER, T_IDLE };

static void conn_process(conn *c);
static void conn_free(conn *c);

/* ---- requests ---------------------------------------------------------------------- */

void sl__req_free(sl_http_req *req)
{
    if (req->ctx)
        sl_ctx_unref(req->ctx);
    if (req->out)
        evbuffer_free(req->out);
    if (req->extra)
        evbuffer_free(req->extra);
    free(req->head);
    free(req->headers);
    free(req->body);
    free(req);
}

/* A request goes when its response has been flushed (or can never be) and
 * its handler task has ended (or never started). */
void sl__req_release(sl_http_req *req)
{
    if (!(req->flushed && (req->task_done || !req->started)))
        return;
    conn *c = req->c;
    sl__req_free(req);
    if (c && --c->alive_reqs == 0 && c->freed)
        free(c);
}

static sl_http_req *req_new(conn *c, size_t state_size)
{
    sl_http_req *req = calloc(1, sizeof *req + state_size);
    if (!req)
        return NULL;
    req->c = c;
    req->sr = c->sr;
    req->t_start = sl_now_ns();
    req->keep_alive = true;
    c->alive_reqs++;
    if (c->tail)
        c->tail->next = req;
    else
        c->head = req;
    c->tail = req;
    c->npipe++;
    return req;
}

/* An answer made by the server itself (errors, 404, 503...). */
static void answer_now(sl_http_req *req, int status, const char *code, const char *msg)
{
    if (req->replied)
        return;
    sl_http_reply_error(req, status, code, "%s", msg);
}

/* ---- timers ------------------------------------------------------------------------ */

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    conn *c = arg;
    (void)fd;
    (void)what;
    if (c->timer_mode == T_IDLE) {
        c->sr->st.closed_idle++;
        c->closing = true;
        conn_free(c);
        return;
    }
    /* a head that took too long: slowloris */
    c->timer_mode = T_NONE;
    c->closing = true;
    sl_http_req *req = req_new(c, 0);
    if (!req) {
        conn_free(c);
        return;
    }
    req->method = "?";
    answer_now(req, 408, "request_timeout", "the request head took too long to arrive");
}

static void arm(conn *c, int mode)
{
    if (c->timer_mode == mode)
        return;
    c->timer_mode = mode;
    if (mode == T_NONE) {
        evtimer_del(c->timer);
        return;
    }
    const sl_http_server_opts *o = &c->sr->srv->o;
    uint32_t ms = mode == T_HEADER ? o->header_timeout_ms : o->idle_timeout_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(c->timer, &tv);
}

static void update_timer(conn *c)
{
    if (c->closing || c->gone)
        arm(c, T_NONE);
    else if (c->head_started && !c->cur)
        arm(c, T_HEADER);
    else if (!c->head && !c->cur)
        arm(c, T_IDLE);
    else
        arm(c, T_NONE);   /* requests in flight: their budgets govern */
}

/* ---- writing --------------------------------------------------------------------------- */

/* Writes what `stage` holds to the socket now, and hands what the socket
 * did not take (or an error, for the event callback to report) to the
 * bufferevent. Writing at once spares the EV_WRITE round trip (two
 * epoll_ctl calls per response) when nothing is queued before it. */
static void write_now(conn *c, struct evbuffer *stage, struct evbuffer *out)
{
    if (evbuffer_get_length(stage))
        evbuffer_write(stage, bufferevent_getfd(c->bev));
    if (evbuffer_get_length(stage))
        evbuffer_add_buffer(out, stage);
}

/* Writes every answered request at the front of the pipeline, in order:
 * one write for all of them. */
void sl__conn_flush(conn *c)
{
    struct evbuffer *out = c->bev ? bufferevent_get_output(c->bev) : NULL;
    srv_reactor *sr = c->sr;
    if (out && !sr->stage)
        sr->stage = evbuffer_new();
    /* straight to the socket only when nothing waits ahead of it */
    struct evbuffer *to = out && sr->stage && !evbuffer_get_length(out) ? sr->stage : out;
    while (c->head && c->head->replied) {
        sl_http_req *req = c->head;
        c->head = req->next;
        if (!c->head)
            c->tail = NULL;
        c->npipe--;
        if (to && req->out && !c->gone)
            evbuffer_add_buffer(to, req->out);
        if (!req->keep_alive)
            c->closing = true;
        sl__srv_count(c->sr, req);
        req->flushed = true;
        sl__req_release(req);   /* may free req */
    }
    if (to && to != out)
        write_now(c, to, out);
    if (c->closing && !c->head && !c->cur) {
        /* close once the output has gone (write_cb), or now if nothing is left */
        if (!out || evbuffer_get_length(out) == 0)
            conn_free(c);
        return;
    }
    if (!c->in_process && !c->gone)
        conn_process(c);   /* room in the pipeline again */
}

static void write_cb(struct bufferevent *bev, void *arg)
{
    conn *c = arg;
    (void)bev;
    if (c->closing && !c->head && !c->cur)
        conn_free(c);
}

/* ---- reading ------------------------------------------------------------------------- */

static void copy_head(sl_http_req *req, const sl_http_msg *m)
{
    size_t need = m->target.len + 1;
    for (uint32_t i = 0; i < m->nheaders; i++)
        need += m->headers[i].name.len + m->headers[i].value.len + 2;
    req->head = malloc(need);
    req->headers = calloc(m->nheaders ? m->nheaders : 1, sizeof *req->headers);
    if (!req->head || !req->headers)
        return;
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
        return (c->peer_addr >> 24) == 127 ? 0 : 403;
    return 404;
}

static void on_head(conn *c)
{
    srv_reactor *sr = c->sr;
    sl_http_server *srv = sr->srv;
    const sl_http_msg *m = &c->p.msg;
    sl_route_match match;
    char allow[128];
    c->head_started = false;
    int rc = sl_router_match(srv->router, m->method_name, strlen(m->method_name), m->target.ptr,
                             m->target.len, &match, allow, sizeof allow);
    route_info *ri = rc == 0 ? match.arg : NULL;
    sl_http_req *req = req_new(c, ri ? ri->state_size : 0);
    if (!req) {
        c->closing = true;
        return;
    }
    c->cur = req;
    req->method = m->method_name;
    req->is_head = m->method == SL_HTTP_HEAD;
    req->keep_alive = m->keep_alive;
    copy_head(req, m);
    if (!req->head || !req->headers) {
        req->immediate = 500;
        req->immediate_code = "internal";
        req->immediate_msg = "out of memory";
        return;
    }
    int denied = debug_denied(c, req);
    /* match again against our copy, so captures point into memory we own */
    if (denied) {
        req->immediate = denied;
        req->immediate_code = denied == 403 ? "forbidden" : "not_found";
        req->immediate_msg = denied == 403 ? "debug endpoints answer loopback clients only" : "no such route";
    } else if (rc == 0) {
        sl_router_match(srv->router, req->method, strlen(req->method), req->path, req->path_len,
                        &req->match, NULL, 0);
        req->route = ri;
    } else if (rc == -EOPNOTSUPP) {
        req->immediate = 405;
        req->immediate_code = "method_not_allowed";
        req->immediate_msg = "method not allowed for this path";
        sl_http_reply_header(req, "Allow", allow);
    } else {
        req->immediate = 404;
        req->immediate_code = "not_found";
        req->immediate_msg = "no such route";
    }
    /* the caller's budget: relative, never later than ours */
    uint64_t budget = (uint64_t)srv->o.timeout_ms * SL_NS_PER_MS;
    size_t len;
    const char *gt = sl_http_req_header(req, "grpc-timeout", &len);
    uint64_t ns;
    if (gt && sl_grpc_timeout_parse(gt, len, &ns) == 0) {
        if (ns < budget)
            budget = ns;
    } else if (gt && !srv->o.bad_timeout_ignored && !req->immediate) {
        req->immediate = 400;
        req->immediate_code = "bad_request";
        req->immediate_msg = "malformed grpc-timeout header";
    }
    req->deadline = req->t_start + budget;
    const char *tp = sl_http_req_header(req, "traceparent", &len);
    if (!tp || sl_traceparent_parse(tp, len, &req->trace) < 0)
        sl_traceparent_new(&req->trace);
    if (sr->draining && !req->immediate) {
        req->immediate = 503;
        req->immediate_code = "shutting_down";
        req->immediate_msg = "the server is shutting down";
        c->closing = true;
    }
    /* Expect: 100-continue, for a request we will serve, when it is the
     * first in line (a 100 must not overtake an earlier response) */
    if (m->expect_continue && !req->immediate && c->head == req && c->bev)
        evbuffer_add(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n", 25);
}

static int on_body(conn *c, sl_http_str piece)
{
    sl_http_req *req = c->cur;
    if (!req || req->immediate)
        return 0;   /* discarded: we answer without it */
    if (req->body_len + piece.len + 1 > req->body_cap) {
        size_t cap = req->body_cap ? req->body_cap : 1024;
        while (cap < req->body_len + piece.len + 1)
            cap *= 2;
        char *b = realloc(req->body, cap);
        if (!b)
            return -ENOMEM;
        req->body = b;
        req->body_cap = cap;
    }
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
        c->closing = true;   /* no more requests from this connection */
    if (req->immediate)
        answer_now(req, req->immediate, req->immediate_code, req->immediate_msg);
    else
        sl__srv_admit(req);
}

static void on_parse_error(conn *c, int err)
{
    c->closing = true;
    c->sr->st.parse_errors++;
    sl_http_req *req = c->cur;
    c->cur = NULL;
    if (!req && !(req = req_new(c, 0)))
        return;
    if (!req->method)
        req->method = "?";
    req->immediate = 0;
    int status = sl_http_error_status(err);
    const char *code = status == 413 ? "too_large" : status == 431 ? "headers_too_large"
                       : status == 505 ? "bad_version" : status == 501 ? "not_implemented" : "bad_request";
    answer_now(req, status, code, sl_http_error_str(err));
}

static void conn_process(conn *c)
{
    if (c->in_process) {
        c->again = true;
        return;
    }
    c->in_process = true;
    c->alive_reqs++;   /* hold the struct: an answer can close the connection under us */
    struct evbuffer *in = bufferevent_get_input(c->bev);
    uint32_t max_pipe = c->sr->srv->o.max_pipeline;
    do {
        c->again = false;
        /* after HEAD or BODY the parser may end the message without another
         * byte (DONE uses 0 bytes): ask it again even with nothing new */
        bool pending = false;
        while (!c->closing && !c->gone && !c->paused && (c->cur || c->npipe < max_pipe)) {
            size_t len = evbuffer_get_contiguous_space(in);
            if (!len && !pending)
                break;
            const char *data = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
            size_t used = 0;
            sl_http_str body = { 0 };
            int ev = sl_http_parser_feed(&c->p, data, len, &used, &body);
            if (ev == SL_HTTP_EV_BODY && on_body(c, body) < 0)
                ev = -ENOMEM;
            if (used)
                evbuffer_drain(in, used);
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
            if (c->freed)
                break;
        }
    } while (c->again && !c->freed);
    c->in_process = false;
    if (c->freed) {
        if (--c->alive_reqs == 0)
            free(c);
        return;
    }
    c->alive_reqs--;
    update_timer(c);
}

static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_process(arg);
}

/* The peer closed or reset: everything in flight is for nobody now. */
static void event_cb(struct bufferevent *bev, short events, void *arg)
{
    conn *c = arg;
    (void)bev;
    if (!(events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    c->gone = true;
    sl__conn_cancel_all(c, SL_CAUSE_DISCONNECT);
    conn_free(c);
}

void sl__conn_cancel_all(conn *c, sl_cause cause)
{
    for (sl_http_req *req = c->head; req; req = req->next)
        if (req->ctx && !req->task_done && !req->reset)
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
    if (peer && peer->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)peer;
        c->peer_addr = ntohl(in->sin_addr.s_addr);
        c->peer_port = ntohs(in->sin_port);
    }
    c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->timer = evtimer_new(base, timer_cb, c);
    if (!c->bev || !c->timer) {
        if (c->bev)
            bufferevent_free(c->bev);
        else
            close(fd);
        if (c->timer)
            event_free(c->timer);
        sl_http_parser_fini(&c->p);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, read_cb, write_cb, event_cb, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->next = sr->conns;
    if (sr->conns)
        sr->conns->prev = c;
    sr->conns = c;
    sr->nconns++;
    sr->st.accepted++;
    update_timer(c);
}

/* Closes the socket now; the struct stays while requests of it live. */
static void conn_free(conn *c)
{
    if (c->freed)
        return;
    c->freed = true;
    c->gone = true;
    srv_reactor *sr = c->sr;
    if (c->throttle && !c->teardown) {   /* the channel must not call us any more */
        sl_chan_set_pressure(c->throttle, 0, 0, NULL, NULL);
        c->throttle = NULL;
    }
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
    }
    if (c->timer) {
        event_free(c->timer);
        c->timer = NULL;
    }
    sl_http_parser_fini(&c->p);
    if (c->prev)
        c->prev->next = c->next;
    else
        sr->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    sr->nconns--;
    /* requests not yet answered: cancel their handlers; their answers go nowhere */
    if (!c->teardown)
        sl__conn_cancel_all(c, SL_CAUSE_DISCONNECT);
    sl_http_req *req = c->head;
    c->head = c->tail = NULL;
    c->cur = NULL;
    c->alive_reqs++;   /* hold the struct while its requests let go of it */
    while (req) {
        sl_http_req *next = req->next;
        if (req->queued) {   /* never started: take it out of the admission queue */
            sl_http_req **pp = &sr->q_head;
            while (*pp && *pp != req)
                pp = &(*pp)->qnext;
            if (*pp) {
                *pp = req->qnext;
                if (sr->q_tail == req) {
                    sl_http_req *t = sr->q_head;
                    while (t && t->qnext)
                        t = t->qnext;
                    sr->q_tail = t;
                }
                sr->queued--;
            }
            req->queued = false;
        }
        if (!req->status)
            req->status = 499;
        req->flushed = true;
        sl__req_release(req);
        req = next;
    }
    if (--c->alive_reqs == 0)
        free(c);
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
    if (!c->bev)
        return;
    if (high) {
        bufferevent_disable(c->bev, EV_READ);
    } else {
        bufferevent_enable(c->bev, EV_READ);
        if (!c->in_process)
            conn_process(c);   /* what was buffered meanwhile */
    }
}

int sl_http_req_throttle(sl_http_req *req, sl_chan *ch, size_t high, size_t low)
{
    conn *c = req->c;
    if (!c || c->gone)
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
    if (!c || c->gone || !c->bev) {
        req->status = 499;
        return -EPIPE;
    }
    req->reset = true;
    req->status = 444;   /* nginx's "closed without a response" */
    sl__srv_count(c->sr, req);
    /* linger 0: close() sends RST and drops whatever is unsent */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(bufferevent_getfd(c->bev), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    c->closing = true;
    conn_free(c);
    return 0;
}

void sl__conn_drop(conn *c)
{
    c->teardown = true;
    conn_free(c);
}

void sl__conn_close_idle(conn *c)
{
    if (!c->head && !c->cur)
        conn_free(c);
    else
        c->closing = true;
}
