/* conn.c: one keep-alive HTTP/1.1 connection of a worker: connect, write a
 * request, read and parse its answer. One request at a time. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <event2/event.h>
#include "engine.h"

#define HEX "0123456789abcdef"

static void on_read(evutil_socket_t fd, short what, void *arg);
static void on_write(evutil_socket_t fd, short what, void *arg);

static char *put_hex(char *p, uint64_t v, int digits)
{
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        p[i] = HEX[v & 15];
    return p + digits;
}

/* Formats the request for rq into c->out. Returns 0 or -ENOMEM. */
static int build(lconn *c, const lreq *rq, uint64_t now)
{
    worker *w = c->w;
    const load_opts *o = w->sh->o;
    size_t need = w->sh->prefix_len + 160 + (o->has_body ? o->body.max_len : 0);
    if (need > c->out_cap) {
        char *nb = realloc(c->out, need);
        if (!nb)
            return -ENOMEM;
        c->out = nb, c->out_cap = need;
    }
    char *p = c->out;
    memcpy(p, w->sh->prefix, w->sh->prefix_len);
    p += w->sh->prefix_len;
    if (o->deadline_header) {
        uint64_t left = c->deadline > now ? (c->deadline - now) / SL_NS_PER_MS : 0;
        p = memcpy(p, "grpc-timeout: ", 14) + 14;
        p += tmpl_put_u64(p, left ? left : 1);
        p = memcpy(p, "m\r\n", 3) + 3;
    }
    if (o->trace) {
        p = memcpy(p, "traceparent: 00-", 16) + 16;
        p = put_hex(p, tmpl_rand(&w->rng), 16);
        p = put_hex(p, tmpl_rand(&w->rng), 16);
        *p++ = '-';
        p = put_hex(p, tmpl_rand(&w->rng), 16);
        p = memcpy(p, "-01\r\n", 5) + 5;
    }
    if (o->has_body) {
        const char *body = o->body.src;
        size_t blen = o->body.src_len;
        if (!o->body.constant)
            blen = tmpl_expand(&o->body, rq->seq, &w->rng, w->bodybuf), body = w->bodybuf;
        p = memcpy(p, "Content-Length: ", 16) + 16;
        p += tmpl_put_u64(p, blen);
        p = memcpy(p, "\r\n\r\n", 4) + 4;
        memcpy(p, body, blen);
        p += blen;
    } else {
        p = memcpy(p, "\r\n", 2) + 2;
    }
    c->out_len = (size_t)(p - c->out);
    c->out_off = 0;
    return 0;
}

/* The request is on its way: from now on its answer is awaited. */
static void mark_sent(lconn *c, uint64_t now)
{
    worker *w = c->w;
    c->state = C_BUSY;
    if (!c->req.measured)
        return;
    if (now > w->st.last_send)
        w->st.last_send = now;
    if (w->sh->o->rate > 0 && now - c->req.start > LOAD_BEHIND_NS)
        w->st.behind++;
}

static void write_out(lconn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(c->wev, NULL);
            return;
        }
        worker_finish(c, -1, ERR_RESET, false);
        return;
    }
}

/* Takes rq, computes its deadline and formats it. Returns 0 or -ENOMEM. */
static int take(lconn *c, const lreq *rq, uint64_t now)
{
    c->req = *rq;
    c->deadline = rq->start + (uint64_t)c->w->sh->o->timeout_ms * SL_NS_PER_MS;
    c->status = 0;
    c->w->busy++;
    return build(c, rq, now);
}

void conn_send(lconn *c, const lreq *rq, uint64_t now)
{
    if (take(c, rq, now) < 0) {
        c->w->fail = -ENOMEM;
        worker_finish(c, -1, ERR_PROTOCOL, false);
        return;
    }
    mark_sent(c, now);
    write_out(c);
}

static int open_socket(lconn *c)
{
    worker *w = c->w;
    int fd = socket(w->sh->o->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->rev = event_new(w->base, fd, EV_READ | EV_PERSIST, on_read, c);
    c->wev = event_new(w->base, fd, EV_WRITE, on_write, c);
    if (!c->rev || !c->wev)
        return -ENOMEM;
    if (!c->parser_ready) {
        sl_http_limits lim = { .max_body = UINT64_MAX };
        if (sl_http_parser_init(&c->p, SL_HTTP_RESPONSE, &lim) < 0)
            return -ENOMEM;
        c->parser_ready = true;
    } else {
        sl_http_parser_reset(&c->p);
    }
    const load_opts *o = w->sh->o;
    if (connect(fd, (const struct sockaddr *)&o->addr, o->addr_len) < 0 && errno != EINPROGRESS)
        return -errno;
    return 0;
}

void conn_open(lconn *c, const lreq *rq)
{
    worker *w = c->w;
    w->opened++;
    c->state = C_CONNECTING;
    c->retry = false;
    int rc = take(c, rq, sl_now_ns());
    if (rc == 0)
        rc = open_socket(c);
    if (rc == -ENOMEM)
        w->fail = -ENOMEM;
    if (rc < 0) {
        worker_finish(c, -1, rc == -ENOMEM ? ERR_PROTOCOL : ERR_CONNECT, false);
        return;
    }
    event_add(c->rev, NULL);
    event_add(c->wev, NULL);     /* writable: connected (or failed) */
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    lconn *c = arg;
    (void)what;
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            worker_finish(c, -1, ERR_CONNECT, false);
            return;
        }
        mark_sent(c, sl_now_ns());
    }
    write_out(c);
}

/* Feeds bytes to the parser; ends the request on a whole answer. */
static void parse(lconn *c, const char *buf, size_t len)
{
    while (c->state == C_BUSY) {
        size_t used;
        int ev = sl_http_parser_feed(&c->p, buf, len, &used, NULL);
        buf += used, len -= used;
        if (ev == SL_HTTP_EV_NEED_MORE)
            return;
        if (ev < 0) {
            worker_finish(c, -1, ERR_PROTOCOL, false);
            return;
        }
        if (ev == SL_HTTP_EV_HEAD)
            c->status = c->p.msg.status;
        if (ev == SL_HTTP_EV_DONE && c->status >= 200) {
            /* bytes after the answer were never asked for: do not reuse */
            worker_finish(c, c->status, -1, c->p.msg.keep_alive && !len);
            return;
        }
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    lconn *c = arg;
    worker *w = c->w;
    (void)what;
    ssize_t n = recv(fd, w->rbuf, LOAD_RBUF, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (c->state != C_BUSY && c->state != C_CONNECTING) {
        conn_close(c);          /* an idle connection closed (or spoke unasked) */
        worker_conn_freed(w, c);
        return;
    }
    if (n > 0 && c->state == C_BUSY) {
        parse(c, w->rbuf, (size_t)n);
        return;
    }
    if (n > 0) {                /* the server spoke before our request */
        worker_finish(c, -1, ERR_PROTOCOL, false);
        return;
    }
    if (n == 0 && c->state == C_BUSY && sl_http_parser_finish(&c->p) == SL_HTTP_EV_DONE &&
        c->status >= 200) {
        worker_finish(c, c->status, -1, false);     /* a body read until close */
        return;
    }
    worker_finish(c, -1, c->state == C_CONNECTING ? ERR_CONNECT : ERR_RESET, false);
}

void conn_close(lconn *c)
{
    if (c->rev)
        event_free(c->rev);
    if (c->wev)
        event_free(c->wev);
    if (c->fd >= 0)
        close(c->fd);
    c->rev = c->wev = NULL;
    c->fd = -1;
    c->state = C_FREE;
    c->w->opened--;
}

void conn_fini(lconn *c)
{
    if (c->state != C_FREE)
        conn_close(c);
    if (c->parser_ready)
        sl_http_parser_fini(&c->p);
    c->parser_ready = false;
    free(c->out);
    c->out = NULL;
}
