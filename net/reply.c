/* reply.c: requests' accessors and the formatting of responses.
 *
 * A response is formatted at once into the request's own buffer and handed
 * to the connection, which writes responses in request order (pipelining):
 * a later request that answers first waits in its buffer for its turn. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server_int.h"

/* Status lines, formatted at compile time for the codes we name. */
#define STATUS(code, text) [code - 100] = { "HTTP/1.1 " #code " " text "\r\n", sizeof "HTTP/1.1 " #code " " text "\r\n" - 1 }
static const struct {
    const char *line;
    size_t len;
} status_lines[500] = {
    STATUS(100, "Continue"),
    STATUS(200, "OK"),
    STATUS(201, "Created"),
    STATUS(202, "Accepted"),
    STATUS(204, "No Content"),
    STATUS(301, "Moved Permanently"),
    STATUS(302, "Found"),
    STATUS(304, "Not Modified"),
    STATUS(400, "Bad Request"),
    STATUS(401, "Unauthorized"),
    STATUS(403, "Forbidden"),
    STATUS(404, "Not Found"),
    STATUS(405, "Method Not Allowed"),
    STATUS(408, "Request Timeout"),
    STATUS(409, "Conflict"),
    STATUS(411, "Length Required"),
    STATUS(413, "Content Too Large"),
    STATUS(414, "URI Too Long"),
    STATUS(415, "Unsupported Media Type"),
    STATUS(422, "Unprocessable Content"),
    STATUS(429, "Too Many Requests"),
    STATUS(431, "Request Header Fields Too Large"),
    STATUS(499, "Client Closed Request"),
    STATUS(500, "Internal Server Error"),
    STATUS(501, "Not Implemented"),
    STATUS(502, "Bad Gateway"),
    STATUS(503, "Service Unavailable"),
    STATUS(504, "Gateway Timeout"),
    STATUS(505, "HTTP Version Not Supported"),
    STATUS(508, "Loop Detected"),
};
#undef STATUS

/* The status line for any code from 100 to 599 (unnamed ones by class). */
static char *put_status_line(char *p, int s)
{
    if (status_lines[s - 100].line) {
        memcpy(p, status_lines[s - 100].line, status_lines[s - 100].len);
        return p + status_lines[s - 100].len;
    }
    const char *text = s < 200 ? "Informational" : s < 300 ? "Success" : s < 400 ? "Redirection"
                       : s < 500 ? "Client Error" : "Server Error";
    p += sprintf(p, "HTTP/1.1 %d %s\r\n", s, text);
    return p;
}

/* The Date header line ("Date: ...\r\n"), formatted once a second per
 * reactor. */
static const char *date_line(srv_reactor *sr, size_t *len)
{
    time_t now = time(NULL);
    if (now != sr->date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        sr->date_len = strftime(sr->date, sizeof sr->date, "Date: %a, %d %b %Y %H:%M:%S GMT\r\n", &tm);
        sr->date_at = now;
    }
    *len = sr->date_len;
    return sr->date;
}

/* ---- accessors ---------------------------------------------------------------------- */

const char *sl_http_req_method(const sl_http_req *req) { return req->method; }

const char *sl_http_req_path(const sl_http_req *req, size_t *len)
{
    if (len)
        *len = req->path_len;
    return req->path;
}

const char *sl_http_req_query(const sl_http_req *req, size_t *len)
{
    if (len)
        *len = req->query_len;
    return req->query;
}

const char *sl_http_req_header(const sl_http_req *req, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    for (uint32_t i = 0; i < req->nheaders; i++)
        if (sl_http_str_ieq(req->headers[i].name, name, nl)) {
            if (len)
                *len = req->headers[i].value.len;
            return req->headers[i].value.ptr;
        }
    return NULL;
}

const char *sl_http_req_param(const sl_http_req *req, const char *name, size_t *len)
{
    size_t l = 0;
    const char *v = sl_route_param_get(&req->match, name, &l);
    if (v && len)
        *len = l;
    return v;
}

const char *sl_http_req_body(const sl_http_req *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body ? req->body : "";
}

void *sl_http_req_state(sl_http_req *req) { return req->state; }
void *sl_http_req_arg(const sl_http_req *req) { return req->route ? req->route->arg : NULL; }
sl_ctx *sl_http_req_ctx(const sl_http_req *req) { return req->ctx; }
const sl_traceparent *sl_http_req_trace(const sl_http_req *req) { return &req->trace; }
const char *sl_http_req_route(const sl_http_req *req) { return req->match.pattern ? req->match.pattern : ""; }
bool sl_http_replied(const sl_http_req *req) { return req->replied; }

uint32_t sl_http_req_peer(const sl_http_req *req, uint16_t *port)
{
    const struct sockaddr *sa = sl_http_req_peer_addr(req, NULL);
    uint32_t a = 0;
    uint16_t p = 0;
    if (sa && sa->sa_family == AF_INET) {
        a = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
        p = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        p = ntohs(s6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))   /* an IPv4 client of a dual-stack socket */
            memcpy(&a, &s6->sin6_addr.s6_addr[12], 4), a = ntohl(a);
    }
    if (port)
        *port = p;
    return a;
}

const struct sockaddr *sl_http_req_peer_addr(const sl_http_req *req, socklen_t *len)
{
    const conn *c = req->c;
    if (!c || !c->peer.sa.sa_family)
        return NULL;
    if (len)
        *len = c->peer.sa.sa_family == AF_INET ? sizeof c->peer.in : sizeof c->peer.in6;
    return &c->peer.sa;
}

const char *sl_http_req_peer_str(const sl_http_req *req, char *buf, size_t n)
{
    const struct sockaddr *sa = sl_http_req_peer_addr(req, NULL);
    if (sa)
        sl__sockaddr_format(sa, buf, n);
    else
        snprintf(buf, n, "?");
    return buf;
}

bool sl_http_req_from_loopback(const sl_http_req *req)
{
    const struct sockaddr *sa = sl_http_req_peer_addr(req, NULL);
    return sa && sl__sockaddr_loopback(sa);
}

int sl_http_req_json(sl_http_req *req, json_t **out)
{
    json_error_t err;
    if (!req->body_len)
        return sl_http_reply_error(req, 400, "bad_request", "a JSON object body is required"), -EINVAL;
    json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        return sl_http_reply_error(req, 400, "bad_request", "invalid JSON at line %d column %d: %s",
                                   err.line, err.column, err.text), -EINVAL;
    if (!json_is_object(j)) {
        json_decref(j);
        return sl_http_reply_error(req, 400, "bad_request", "the body must be a JSON object"), -EINVAL;
    }
    *out = j;
    return 0;
}

/* ---- replies ------------------------------------------------------------------------ */

static bool clean(const char *s)
{
    return !strpbrk(s, "\r\n");
}

int sl_http_reply_header(sl_http_req *req, const char *name, const char *value)
{
    if (req->replied)
        return -EALREADY;
    if (!name || !value || !*name || !clean(name) || !clean(value) || strchr(name, ':'))
        return -EINVAL;
    if (!req->extra && !(req->extra = evbuffer_new()))
        return -ENOMEM;
    return evbuffer_add_printf(req->extra, "%s: %s\r\n", name, value) < 0 ? -ENOMEM : 0;
}

#define WBUF_SIZE 16384

static char *put(char *p, const void *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT_LIT(p, lit) put(p, lit, sizeof lit - 1)

static char *put_uint(char *p, size_t v)
{
    char tmp[24];
    size_t i = sizeof tmp;
    do
        tmp[--i] = (char)('0' + v % 10);
    while (v /= 10);
    return put(p, tmp + i, sizeof tmp - i);
}

/* Formats the response into req->out, in one allocation and without
 * printf: this runs once per request. The connection decides when it is
 * written and whether it closes. */
int sl__reply_format(sl_http_req *req, int status, const char *ctype, const void *body, size_t len)
{
    conn *c = req->c;
    bool close = !req->keep_alive || (c && (c->st != CONN_READING || c->sr->draining));
    req->keep_alive = !close;
    size_t date_len, ctype_len = ctype ? strlen(ctype) : 0;
    const char *date = date_line(req->sr, &date_len);
    size_t extra_len = req->extra ? evbuffer_get_length(req->extra) : 0;
    size_t body_out = req->is_head ? 0 : len;
    size_t need = sizeof "HTTP/1.1 200 Request Header Fields Too Large\r\n"   /* the longest */
                  + date_len + sizeof "Content-Length: 18446744073709551615\r\n"
                  + (ctype ? sizeof "Content-Type: \r\n" + ctype_len : 0)
                  + (req->retry_after ? sizeof "Retry-After: 4294967295\r\n" : 0)
                  + sizeof "Connection: close\r\n" + extra_len + 2 + body_out
                  + (req->canned_cause ? sizeof req->sr->srv->canned[0] + 10 : 0);
    /* the first in line with nothing queued before it is written before
     * sl_http_reply returns: it borrows the reactor's buffer */
    srv_reactor *sr = req->sr;
    bool borrow = c && c->pipe.head == req && c->st != CONN_GONE && c->out_off == c->out_len && need <= WBUF_SIZE
                  && (sr->wbuf || (sr->wbuf = malloc(WBUF_SIZE)));
    char *out = borrow ? sr->wbuf : malloc(need), *p = out;
    if (!out)
        return -ENOMEM;
    p = put_status_line(p, status);
    p = put(p, date, date_len);
    p = PUT_LIT(p, "Content-Length: ");
    p = put_uint(p, len);
    p = PUT_LIT(p, "\r\n");
    if (ctype) {
        p = PUT_LIT(p, "Content-Type: ");
        p = put(p, ctype, ctype_len);
        p = PUT_LIT(p, "\r\n");
    }
    if (req->retry_after) {
        p = PUT_LIT(p, "Retry-After: ");
        p = put_uint(p, sr->srv->o.retry_after_s);
        p = PUT_LIT(p, "\r\n");
    }
    if (close)
        p = PUT_LIT(p, "Connection: close\r\n");
    if (req->canned_cause) {
        const sl_http_server *s = sr->srv;
        uint64_t left = (req->deadline - req->t_start) / SL_NS_PER_MS;
        p = put(p, s->canned[req->canned_cause - 1], s->canned_len[req->canned_cause - 1]);
        p = put_uint(p, left > 99999999 ? 99999999 : left);   /* sl_wire.h: 1-8 digits */
        p = PUT_LIT(p, "\r\n");
    }
    if (extra_len) {
        evbuffer_copyout(req->extra, p, extra_len);
        p += extra_len;
    }
    p = PUT_LIT(p, "\r\n");
    if (body_out)
        p = put(p, body, body_out);
    if (!req->out_borrowed)
        free(req->out);
    req->out = out;
    req->out_borrowed = borrow;
    req->out_len = (size_t)(p - out);
    req->status = status;
    req->replied = true;
    return 0;
}

/* ---- sluice-cause: why an error answer, and which hop decided ---------------------- */

int sl__hop_name_set(char *hop, const char *name)
{
    sl_cause_info ci = { .cause = SL_WC_DEADLINE, .left_ms = -1 };
    char buf[SL_CAUSE_HDR_MAX];
    if (strlen(name) >= sizeof ci.hop)
        return -EINVAL;
    strcpy(ci.hop, name);
    if (sl_cause_hdr_format(&ci, buf) < 0)   /* its rule for a hop */
        return -EINVAL;
    strcpy(hop, name);
    return 0;
}

/* The statuses whose answers say why: the ones a deadline, an overload, a
 * loop or a failed upstream make. */
static bool cause_status(int status)
{
    return status == 502 || status == 503 || status == 504 || status == 508;
}

/* The request's deadline has passed, and its context has not ended yet:
 * its timer has not run. A handler woken by that deadline finds its
 * context ended (context/bind.c ends it before the task's timer ends the
 * wait), but one that answers past the deadline without having been woken
 * by it does not: a busy step that ran across it, a wait begun after it
 * (it fails at once, no timer involved), a task woken by something else
 * in the turn that the deadline came in (issue 20). A clock read, on
 * error statuses only. */
static bool deadline_unseen(const sl_http_req *req)
{
    uint64_t dl = req->ctx ? sl_ctx_deadline(req->ctx) : 0;
    return dl && !sl_ctx_err(req->ctx) && sl_now_ns() >= dl;
}

/* The cause its context will end with at its deadline. */
static sl_cause deadline_cause(const sl_http_req *req)
{
    return req->callers_deadline ? SL_CAUSE_CALLER_DEADLINE : SL_CAUSE_DEADLINE;
}

int sl_http_req_cause(const sl_http_req *req, int status, sl_cause_info *out)
{
    if (req->cause)   /* relayed, or made already */
        return sl_cause_hdr_parse(req->cause, strlen(req->cause), out) == 0 ? 0 : -ENOENT;
    if (!cause_status(status))
        return -ENOENT;
    sl_cause c = req->ctx ? sl_ctx_cause(req->ctx, NULL) : SL_CAUSE_NONE;
    if (c == SL_CAUSE_NONE && deadline_unseen(req))   /* as the context will say */
        c = deadline_cause(req);
    sl_wire_cause w = sl_wire_cause_of(c);
    /* Still none, a 504: a budget left too short for an upstream call
     * (less than its margin), before the deadline. The deadline is the
     * request's all the same, so it is the caller's when the request's
     * is, as a refusal before the context says too (canned lines,
     * sl__reply_static); the status alone made it "deadline", and a hop
     * whose caller set the budget blamed itself (issue 20). A handler that
     * cut a wait shorter by its own choice (sl_ctx_narrow) and answers 504
     * for that says so with sl_http_reply_cause. */
    if (w == SL_WC_NONE && status == 504)
        w = req->callers_deadline ? SL_WC_CALLER_DEADLINE : SL_WC_DEADLINE;
    else if (w == SL_WC_NONE)
        w = status == 503 ? SL_WC_OVERLOADED : status == 508 ? SL_WC_LOOP : SL_WC_UPSTREAM;
    *out = (sl_cause_info){ .cause = w, .left_ms = (int64_t)((req->deadline - req->t_start) / SL_NS_PER_MS) };
    if (out->left_ms > 99999999)
        out->left_ms = 99999999;
    strcpy(out->hop, req->sr->srv->hop);
    return 0;
}

static int set_cause(sl_http_req *req, const sl_cause_info *ci)
{
    char buf[SL_CAUSE_HDR_MAX];
    if (sl_cause_hdr_format(ci, buf) < 0)
        return -EINVAL;
    char *copy = strdup(buf);
    if (!copy)
        return -ENOMEM;
    int rc = sl_http_reply_header(req, SL_CAUSE_HDR, buf);
    if (rc < 0) {
        free(copy);
        return rc;
    }
    free(req->cause);
    req->cause = copy;
    return 0;
}

int sl_http_reply_cause(sl_http_req *req, const sl_cause_info *ci)
{
    if (req->replied)
        return -EALREADY;
    if (!ci || req->cause)   /* one cause per answer */
        return req->cause ? -EALREADY : -EINVAL;
    return set_cause(req, ci);
}

int sl_http_reply(sl_http_req *req, int status, const char *content_type, const void *body, size_t len)
{
    if (req->replied)
        return -EALREADY;
    if (status < 100 || status > 599 || (len && !body))
        return -EINVAL;
    if (!req->c || req->c->st == CONN_GONE) {
        req->replied = true;
        req->status = 499;
        return -EPIPE;
    }
    /* an error answer past the deadline: the context ends by it now, as
     * its timer would a moment later, so the request's span and
     * sluice_ctx_ends_total (which would count it "completed") say what
     * the header says */
    if (cause_status(status) && deadline_unseen(req))
        (void)sl_ctx_cancel(req->ctx, deadline_cause(req));
    sl_cause_info ci;
    if (cause_status(status) && !req->cause && sl_http_req_cause(req, status, &ci) == 0)
        (void)set_cause(req, &ci);   /* out of memory: the answer goes without */
    int rc = sl__reply_format(req, status, content_type, body, len);
    if (rc == 0)
        sl__conn_flush(req->c);
    return rc;
}

int sl_http_reply_json(sl_http_req *req, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s)
        return -ENOMEM;
    size_t n = strlen(s);
    s[n] = '\0';
    int rc = sl_http_reply(req, status, "application/json", s, n);
    free(s);
    return rc;
}

int sl_http_reply_error(sl_http_req *req, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    sl_cause_info ci;
    if (n >= 0 && (size_t)n < sizeof msg && !req->replied && req->c && req->c->st != CONN_GONE &&
        sl_http_req_cause(req, status, &ci) == 0) {
        char why[SL_CAUSE_HDR_MAX + 32];
        snprintf(msg + n, sizeof msg - (size_t)n, " (cause: %s)", sl_cause_info_text(&ci, why, sizeof why));
    }
    json_t *j = json_pack("{s:s, s:s}", "error", code, "message", msg);
    if (!j)
        return -ENOMEM;
    req->retry_after = status == 503;
    return sl_http_reply_json(req, status, j);
}

/* The server's own answers (refusals above all: under overload most
 * answers are these) are formatted with memcpy alone: no printf, no JSON
 * object, no header buffer. A refusal must cost a small fraction of a
 * served request, or refusing eats the core it means to save (issue 14). */
int sl__reply_static(sl_http_req *req, int status, const char *code, const char *msg)
{
    if (req->replied)
        return -EALREADY;
    if (!req->c || req->c->st == CONN_GONE) {
        req->replied = true;
        req->status = 499;
        return -EPIPE;
    }
    size_t cl = strlen(code), ml = strlen(msg);
    char body[512];
    if (cl + ml + sizeof "{\"error\":\"\",\"message\":\"\"}" > sizeof body)
        return sl_http_reply_error(req, status, code, "%s", msg);
    char *p = body;
    p = PUT_LIT(p, "{\"error\":\"");
    p = put(p, code, cl);
    p = PUT_LIT(p, "\",\"message\":\"");
    p = put(p, msg, ml);
    p = PUT_LIT(p, "\"}");
    req->retry_after = status == 503;
    int canned = status == 503 ? 0 : req->callers_deadline ? 2 : 1;
    if (req->ctx || req->cause || (status != 503 && status != 504) || !req->sr->srv->canned_len[canned])
        return sl_http_reply(req, status, "application/json", body, (size_t)(p - body));
    /* refused before it had a context (at its head, or while draining):
     * the cause is this hop's, from the status alone, and its line is
     * copied whole but for left-ms (issue 20 item 1), no header buffer */
    req->canned_cause = (uint8_t)(canned + 1);
    int rc = sl__reply_format(req, status, "application/json", body, (size_t)(p - body));
    if (rc == 0)
        sl__conn_flush(req->c);
    return rc;
}

void sl__reply_causes_init(sl_http_server *s)
{
    static const sl_wire_cause causes[3] = { SL_WC_OVERLOADED, SL_WC_DEADLINE, SL_WC_CALLER_DEADLINE };
    for (int i = 0; i < 3; i++) {
        sl_cause_info ci = { .cause = causes[i], .left_ms = -1 };
        char v[SL_CAUSE_HDR_MAX];
        strcpy(ci.hop, s->hop);
        /* the hop passed sl__hop_name_set: it formats */
        int n = sl_cause_hdr_format(&ci, v);
        n = n < 0 ? 0 : snprintf(s->canned[i], sizeof s->canned[i], SL_CAUSE_HDR ": %s;left-ms=", v);
        s->canned_len[i] = (uint8_t)(n > 0 && (size_t)n < sizeof s->canned[i] ? n : 0);
    }
}
