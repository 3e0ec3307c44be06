/* otlp.c: spans in the OTLP/JSON encoding, and a blocking POST of them to
 * a collector. Runs on the tracer's exporter thread only: it may block (a
 * name lookup, a slow collector), always within the export timeout, and
 * never on a reactor. */
#include <errno.h>
#include <stdbool.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include "sl_ctx.h"
#include "sl_time.h"
#include "trace_int.h"

/* ---- the JSON ---------------------------------------------------------------------- */

/* Written by hand into one growing buffer: a span costs a few thousand
 * instructions this way, against some 130 000 through jansson's pack and
 * dump, and at 1% sampling that difference is the exporter's whole cost
 * per request (docs/diagnostics.md, "Cost"). */
typedef struct jbuf {
    char *p;
    size_t len, cap;
    bool oom;
} jbuf;

static void jb_need(jbuf *b, size_t n)
{
    if (b->oom || b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void jb_raw(jbuf *b, const char *s, size_t n)
{
    jb_need(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

#define JB_LIT(b, s) jb_raw((b), (s), sizeof(s) - 1)

/* A JSON string: quotes, backslashes and control bytes escaped; bytes
 * that are not valid UTF-8 become U+FFFD (a route or a peer name may hold
 * anything, and one bad byte would make the collector refuse the batch). */
static void jb_str(jbuf *b, const char *s)
{
    static const char hx[] = "0123456789abcdef";
    const unsigned char *u = (const unsigned char *)s;
    jb_need(b, strlen(s) * 6 + 2);
    if (b->oom)
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    while (*u) {
        unsigned c = *u;
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        bool ok = n > 0;
        for (size_t k = 1; ok && k < n; k++)
            ok = (u[k] & 0xc0) == 0x80;
        if (ok && n > 1) {
            uint32_t cp = n == 2 ? (c & 0x1fu) << 6 | (u[1] & 0x3fu)
                        : n == 3 ? (c & 0x0fu) << 12 | (u[1] & 0x3fu) << 6 | (u[2] & 0x3fu)
                                 : (c & 0x07u) << 18 | (u[1] & 0x3fu) << 12 | (u[2] & 0x3fu) << 6 | (u[3] & 0x3fu);
            static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
            ok = cp >= least[n] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
        }
        if (!ok) {
            memcpy(o, "\\ufffd", 6);
            o += 6;
            u++;
        } else if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            u++;
        } else if (c < 0x20) {
            memcpy(o, "\\u00", 4);
            o[4] = hx[c >> 4];
            o[5] = hx[c & 15];
            o += 6;
            u++;
        } else {
            memcpy(o, u, n);
            o += n;
            u += n;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}

static void jb_hex(jbuf *b, const uint8_t *v, size_t n)
{
    static const char d[] = "0123456789abcdef";
    char s[2 * 16 + 2];
    s[0] = '"';
    for (size_t i = 0; i < n; i++) {
        s[1 + 2 * i] = d[v[i] >> 4];
        s[2 + 2 * i] = d[v[i] & 15];
    }
    s[1 + 2 * n] = '"';
    jb_raw(b, s, 2 * n + 2);
}

/* OTLP/JSON writes 64-bit integers as strings */
static void jb_int(jbuf *b, long long v)
{
    char s[24];
    int n = snprintf(s, sizeof s, "\"%lld\"", v);
    jb_raw(b, s, (size_t)n);
}

static void attr_str(jbuf *b, bool *first, const char *key, const char *v)
{
    if (!*first)
        JB_LIT(b, ",");
    *first = false;
    JB_LIT(b, "{\"key\":\"");
    jb_raw(b, key, strlen(key));   /* ours: plain ASCII */
    JB_LIT(b, "\",\"value\":{\"stringValue\":");
    jb_str(b, v);
    JB_LIT(b, "}}");
}

static void attr_int(jbuf *b, bool *first, const char *key, long long v)
{
    if (!*first)
        JB_LIT(b, ",");
    *first = false;
    JB_LIT(b, "{\"key\":\"");
    jb_raw(b, key, strlen(key));
    JB_LIT(b, "\",\"value\":{\"intValue\":");
    jb_int(b, v);
    JB_LIT(b, "}}");
}

static void span_json(jbuf *b, const sl__span *sp)
{
    JB_LIT(b, "{\"traceId\":");
    jb_hex(b, sp->trace_id, 16);
    JB_LIT(b, ",\"spanId\":");
    jb_hex(b, sp->span_id, 8);
    if (sp->has_parent) {
        JB_LIT(b, ",\"parentSpanId\":");
        jb_hex(b, sp->parent_id, 8);
    }
    if (sp->tracestate[0]) {
        JB_LIT(b, ",\"traceState\":");
        jb_str(b, sp->tracestate);
    }
    char name[sizeof sp->method + sizeof sp->route + 2];
    snprintf(name, sizeof name, sp->route[0] ? "%s %s" : "%s", sp->method, sp->route);
    JB_LIT(b, ",\"name\":");
    jb_str(b, name);
    if (sp->kind == SL__SPAN_SERVER)
        JB_LIT(b, ",\"kind\":2,\"startTimeUnixNano\":");
    else
        JB_LIT(b, ",\"kind\":3,\"startTimeUnixNano\":");
    jb_int(b, (long long)sp->start_ns);
    JB_LIT(b, ",\"endTimeUnixNano\":");
    jb_int(b, (long long)sp->end_ns);
    JB_LIT(b, ",\"attributes\":[");
    bool first = true;
    attr_str(b, &first, "http.request.method", sp->method);
    if (sp->kind == SL__SPAN_SERVER) {
        attr_str(b, &first, "http.route", sp->route);
        if (sp->peer[0]) {
            attr_str(b, &first, "client.address", sp->peer);
            attr_int(b, &first, "client.port", sp->peer_port);
        }
    } else {
        attr_str(b, &first, "url.path", sp->route);
        attr_str(b, &first, "server.address", sp->peer);
    }
    if (sp->status)
        attr_int(b, &first, "http.response.status_code", sp->status);
    if (sp->cause)
        attr_str(b, &first, "sluice.cancel_cause", sl_cause_text((sl_cause)sp->cause));
    if (sp->cause_hdr[0])
        attr_str(b, &first, "sluice.cause", sp->cause_hdr);
    if (sp->has_left)
        attr_int(b, &first, "sluice.deadline_left_ms", sp->left_ms);
    if (sp->err)
        attr_str(b, &first, "sluice.error", strerror(-sp->err));
    bool error = sp->kind == SL__SPAN_SERVER ? sp->status >= 500 : (sp->err || sp->status >= 500);
    JB_LIT(b, "],\"status\":{");
    if (error) {
        JB_LIT(b, "\"code\":2");
        if (sp->err) {
            JB_LIT(b, ",\"message\":");
            jb_str(b, strerror(-sp->err));
        }
    }
    JB_LIT(b, "}}");
}

char *sl__otlp_json(const sl__span *spans, size_t n, const char *service_name)
{
    jbuf b = { 0 };
    JB_LIT(&b, "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":{\"stringValue\":");
    jb_str(&b, service_name);
    JB_LIT(&b, "}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"sluice\"},\"spans\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            JB_LIT(&b, ",");
        span_json(&b, &spans[i]);
    }
    JB_LIT(&b, "]}]}]}");
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* ---- the endpoint ------------------------------------------------------------------ */

int sl__otlp_target_parse(const char *endpoint, sl__otlp_target *t)
{
    if (!endpoint || !t || strncmp(endpoint, "http://", 7))
        return -EINVAL;
    const char *h = endpoint + 7, *he, *p;
    if (*h == '[') {   /* [IPv6] */
        he = strchr(h, ']');
        if (!he || he == h + 1)
            return -EINVAL;
        p = he + 1;
        h++;
    } else {
        he = h + strcspn(h, ":/");
        p = he;
    }
    if (he == h || (size_t)(he - h) >= sizeof t->host || *p != ':')
        return -EINVAL;
    memcpy(t->host, h, (size_t)(he - h));
    t->host[he - h] = '\0';
    for (const char *c = t->host; *c; c++)
        if (*c <= ' ' || *c == '@' || *c == '?' || *c == '#' || *c == 0x7f)
            return -EINVAL;
    const char *port = ++p;
    size_t pl = strspn(port, "0123456789");
    if (pl < 1 || pl > 5 || atoi(port) < 1 || atoi(port) > 65535)
        return -EINVAL;
    memcpy(t->port, port, pl);
    t->port[pl] = '\0';
    const char *base = port + pl;
    if (*base && *base != '/')
        return -EINVAL;
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;   /* "http://c:4318/" is "http://c:4318" */
    for (size_t i = 0; i < bl; i++)
        if (base[i] <= ' ' || base[i] == 0x7f || base[i] == '?' || base[i] == '#')
            return -EINVAL;
    if (bl + sizeof "/v1/traces" > sizeof t->path)
        return -EINVAL;
    snprintf(t->path, sizeof t->path, "%.*s/v1/traces", (int)bl, base);
    snprintf(t->hosthdr, sizeof t->hosthdr, strchr(t->host, ':') ? "[%s]:%s" : "%s:%s", t->host, t->port);
    return 0;
}

/* ---- the POST ---------------------------------------------------------------------- */

static int wait_fd(int fd, short ev, uint64_t end)
{
    for (;;) {
        uint64_t now = sl_now_ns();
        if (now >= end)
            return -ETIMEDOUT;
        struct pollfd pfd = { .fd = fd, .events = ev };
        int n = poll(&pfd, 1, (int)((end - now + SL_NS_PER_MS - 1) / SL_NS_PER_MS));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int connect_to(const sl__otlp_target *t, uint64_t end)
{
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai;
    if (getaddrinfo(t->host, t->port, &hints, &ai) != 0)
        return -ENOENT;
    int rc = -ECONNREFUSED;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0 ||
            (errno == EINPROGRESS && (rc = wait_fd(fd, POLLOUT, end)) == 0)) {
            int e = 0;
            socklen_t el = sizeof e;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el);
            if (!e) {
                freeaddrinfo(ai);
                return fd;
            }
            rc = -e;
        } else if (errno != EINPROGRESS) {
            rc = -errno;
        }
        close(fd);
        if (rc == -ETIMEDOUT)
            break;
    }
    freeaddrinfo(ai);
    return rc;
}

static int send_all(int fd, const char *p, size_t n, uint64_t end)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(fd, POLLOUT, end);
            if (rc < 0)
                return rc;
        } else {
            return w < 0 ? -errno : -ECONNRESET;
        }
    }
    return 0;
}

/* Reads the answer's head (the body does not matter: the status says it
 * all, and the connection is closed after it). */
static int read_status(int fd, uint64_t end)
{
    char buf[1024];
    size_t have = 0;
    while (have < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
        if (r > 0) {
            have += (size_t)r;
            buf[have] = '\0';
            if (strstr(buf, "\r\n"))
                break;
        } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            int rc = wait_fd(fd, POLLIN, end);
            if (rc < 0)
                return rc;
        } else {
            return r < 0 ? -errno : -ECONNRESET;
        }
    }
    int status;
    if (strncmp(buf, "HTTP/1.", 7) || sscanf(buf + 8, " %3d", &status) != 1 || status < 100 || status > 599)
        return -EPROTO;
    return status;
}

int sl__otlp_post(const sl__otlp_target *t, const char *body, size_t len, uint32_t timeout_ms)
{
    uint64_t end = sl_now_ns() + (uint64_t)timeout_ms * SL_NS_PER_MS;
    int fd = connect_to(t, end);
    if (fd < 0)
        return fd;
    char head[768];
    int hl = snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nConnection: close\r\n\r\n", t->path, t->hosthdr, len);
    int rc = send_all(fd, head, (size_t)hl, end);
    if (rc == 0)
        rc = send_all(fd, body, len, end);
    if (rc == 0)
        rc = read_status(fd, end);
    close(fd);
    return rc;
}
