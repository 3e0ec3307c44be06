/* otlp.c: spans in the OTLP/JSON encoding, and a blocking POST of them to
 * a collector. Runs on the tracer's exporter thread only: it may block (a
 * name lookup, a slow collector), always within the export timeout, and
 * never on a reactor. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <jansson.h>
#include "sl_ctx.h"
#include "sl_time.h"
#include "trace_int.h"

/* ---- the JSON ---------------------------------------------------------------------- */

static void hex(char *out, const uint8_t *b, size_t n)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[b[i] >> 4];
        out[2 * i + 1] = d[b[i] & 15];
    }
    out[2 * n] = '\0';
}

static void attr_str(json_t *a, const char *key, const char *v)
{
    json_array_append_new(a, json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue", v));
}

/* OTLP/JSON writes 64-bit integers as strings */
static void attr_int(json_t *a, const char *key, long long v)
{
    char s[24];
    snprintf(s, sizeof s, "%lld", v);
    json_array_append_new(a, json_pack("{s:s, s:{s:s}}", "key", key, "value", "intValue", s));
}

static json_t *span_json(const sl__span *sp)
{
    char tid[33], sid[17], pid[17], start[24], end[24], name[sizeof sp->method + sizeof sp->route + 2];
    hex(tid, sp->trace_id, 16);
    hex(sid, sp->span_id, 8);
    hex(pid, sp->parent_id, 8);
    snprintf(start, sizeof start, "%llu", (unsigned long long)sp->start_ns);
    snprintf(end, sizeof end, "%llu", (unsigned long long)sp->end_ns);
    snprintf(name, sizeof name, "%s %s", sp->method, sp->route);
    json_t *a = json_array();
    attr_str(a, "http.request.method", sp->method);
    if (sp->kind == SL__SPAN_SERVER) {
        attr_str(a, "http.route", sp->route);
        if (sp->peer[0]) {
            attr_str(a, "client.address", sp->peer);
            attr_int(a, "client.port", sp->peer_port);
        }
    } else {
        attr_str(a, "url.path", sp->route);
        attr_str(a, "server.address", sp->peer);
    }
    if (sp->status)
        attr_int(a, "http.response.status_code", sp->status);
    if (sp->cause)
        attr_str(a, "sluice.cancel_cause", sl_cause_text((sl_cause)sp->cause));
    if (sp->has_left)
        attr_int(a, "sluice.deadline_left_ms", sp->left_ms);
    bool error = sp->kind == SL__SPAN_SERVER ? sp->status >= 500 : (sp->err || sp->status >= 500);
    char msg[64] = "";
    if (sp->err) {
        snprintf(msg, sizeof msg, "%s", strerror(-sp->err));
        attr_str(a, "sluice.error", msg);
    }
    json_t *s = json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:o, s:{s:i}}", "traceId", tid, "spanId", sid,
                          "name", name, "kind", sp->kind, "startTimeUnixNano", start,
                          "endTimeUnixNano", end, "attributes", a, "status", "code", error ? 2 : 0);
    if (s && sp->has_parent)
        json_object_set_new(s, "parentSpanId", json_string(pid));
    if (s && sp->tracestate[0])
        json_object_set_new(s, "traceState", json_string(sp->tracestate));
    if (s && error && msg[0])
        json_object_set_new(json_object_get(s, "status"), "message", json_string(msg));
    return s;
}

char *sl__otlp_json(const sl__span *spans, size_t n, const char *service_name)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++) {
        json_t *s = span_json(&spans[i]);
        if (s)
            json_array_append_new(arr, s);
    }
    json_t *doc = json_pack("{s:[{s:{s:[{s:s, s:{s:s}}]}, s:[{s:{s:s}, s:o}]}]}", "resourceSpans",
                            "resource", "attributes", "key", "service.name", "value", "stringValue",
                            service_name, "scopeSpans", "scope", "name", "sluice", "spans", arr);
    if (!doc)
        return NULL;
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return text;
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
