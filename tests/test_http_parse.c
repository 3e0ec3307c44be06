/* test_http_parse.c: the HTTP/1.1 parsing layer: requests, responses,
 * pipelining, every way of splitting the input, limits, every error code,
 * the request smuggling cases, and a deterministic mutation fuzz. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "http_parse.h"

/* ------------------------------------------------------------ harness */

#define MAXMSG 8
#define MAXH 40

typedef struct rec_msg {
    int method, status, minor;
    char method_name[16], target[300], reason[64];
    int nheaders, ntrailers;
    char hname[MAXH][40], hval[MAXH][300];
    char tname[8][40], tval[8][80];
    int64_t content_length;
    bool has_body, chunked, until_close, keep_alive, expect, upgrade, done;
    char body[20000];
    size_t body_len;
} rec_msg;

typedef struct rec {
    rec_msg m[MAXMSG];
    int n;          /* messages whose HEAD was seen */
    int err;        /* 0 or the error */
    int eof;        /* what finish() said, when asked */
} rec;

enum { WHOLE = 0, BYTES = 1, RANDOM = 2 };

static void copy_str(char *dst, size_t cap, sl_http_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = 0;
}

static void record_head(rec *r, const sl_http_msg *msg)
{
    rec_msg *m = &r->m[r->n++];
    m->method = msg->method;
    m->status = msg->status;
    m->minor = msg->version_minor;
    if (msg->method_name)
        snprintf(m->method_name, sizeof m->method_name, "%s", msg->method_name);
    copy_str(m->target, sizeof m->target, msg->target);
    copy_str(m->reason, sizeof m->reason, msg->reason);
    m->nheaders = (int)msg->nheaders;
    for (uint32_t i = 0; i < msg->nheaders && i < MAXH; i++) {
        copy_str(m->hname[i], sizeof m->hname[i], msg->headers[i].name);
        copy_str(m->hval[i], sizeof m->hval[i], msg->headers[i].value);
    }
    m->content_length = msg->content_length;
    m->has_body = msg->has_body;
    m->chunked = msg->chunked;
    m->until_close = msg->body_until_close;
    m->keep_alive = msg->keep_alive;
    m->expect = msg->expect_continue;
    m->upgrade = msg->upgrade;
}

static void record_done(rec *r, const sl_http_msg *msg)
{
    assert_true(r->n > 0);
    rec_msg *m = &r->m[r->n - 1];
    assert_false(m->done);
    assert_int_equal(msg->body_read, m->body_len);
    m->done = true;
    m->ntrailers = (int)msg->ntrailers;
    for (uint32_t i = 0; i < msg->ntrailers && i < 8; i++) {
        copy_str(m->tname[i], sizeof m->tname[i], msg->trailers[i].name);
        copy_str(m->tval[i], sizeof m->tval[i], msg->trailers[i].value);
    }
}

static bool defined_error(int rc)
{
    return (rc <= SL_HTTP_E_SYNTAX && rc >= SL_HTTP_E_CLOSED) || rc == -ENOMEM;
}

/* Feeds `in` the way a server does: each read appends to a pending buffer
 * (a fresh exact-size copy, so ASan sees any read outside it), and the
 * buffer is fed until NEED_MORE, dropping what each call used. `head_mask`
 * bit i: response i answers a HEAD request. */
static void run_ex(sl_http_kind kind, const sl_http_limits *lim, const char *in, size_t len,
                   int mode, unsigned seed, bool eof, unsigned head_mask, rec *r)
{
    sl_http_parser p;
    char *pend = NULL;
    size_t npend = 0, off = 0;
    int finals = 0;
    memset(r, 0, sizeof *r);
    assert_int_equal(sl_http_parser_init(&p, kind, lim), 0);
    if (head_mask & 1)
        sl_http_parser_expect_head_response(&p);
    while (off < len && !r->err) {
        size_t chunk = mode == WHOLE ? len - off : mode == BYTES ? 1 : 1 + (size_t)rand_r(&seed) % 23;
        if (chunk > len - off)
            chunk = len - off;
        char *buf = malloc(npend + chunk);
        assert_non_null(buf);
        if (npend)
            memcpy(buf, pend, npend);
        memcpy(buf + npend, in + off, chunk);
        free(pend);
        pend = buf, npend += chunk, off += chunk;
        for (;;) {
            size_t used = 99999;
            sl_http_str body = { (const char *)1, 5 };
            int rc = sl_http_parser_feed(&p, pend, npend, &used, &body);
            assert_true(used <= npend);
            if (rc < 0) {
                assert_true(defined_error(rc));
                r->err = rc;
                break;
            }
            if (rc == SL_HTTP_EV_HEAD) {
                assert_true(r->n < MAXMSG);
                record_head(r, &p.msg);
            } else if (rc == SL_HTTP_EV_BODY) {
                rec_msg *m = &r->m[r->n - 1];
                assert_true(body.len > 0);
                assert_true(body.ptr >= pend && body.ptr + body.len <= pend + used);
                assert_true(m->body_len + body.len <= sizeof m->body);
                memcpy(m->body + m->body_len, body.ptr, body.len);
                m->body_len += body.len;
            } else if (rc == SL_HTTP_EV_DONE) {
                record_done(r, &p.msg);
                if (kind == SL_HTTP_RESPONSE && p.msg.status / 100 != 1 &&
                    (head_mask >> ++finals) & 1)
                    sl_http_parser_expect_head_response(&p);
            } else {
                assert_int_equal(rc, SL_HTTP_EV_NEED_MORE);
                assert_int_equal(used, npend);
                assert_null(body.ptr);
            }
            memmove(pend, pend + used, npend - used);
            npend -= used;
            if (rc == SL_HTTP_EV_NEED_MORE)
                break;
        }
    }
    if (eof && !r->err) {
        int rc = sl_http_parser_finish(&p);
        if (rc == SL_HTTP_EV_DONE)
            record_done(r, &p.msg);
        else if (rc < 0)
            r->err = rc;
        r->eof = rc;
    }
    free(pend);
    sl_http_parser_fini(&p);
}

static void run(sl_http_kind kind, const sl_http_limits *lim, const char *in, int mode, rec *r)
{
    run_ex(kind, lim, in, strlen(in), mode, 1, false, 0, r);
}

/* After an error, how much of the failing message's body was handed out
 * before it depends on where the reads were split; all else must not. */
static void normalize(rec *r)
{
    if (r->err && r->n > 0) {
        rec_msg *m = &r->m[r->n - 1];
        memset(m->body, 0, sizeof m->body);
        m->body_len = 0;
    }
}

/* Parses `in` whole, byte by byte and in random pieces; all three must
 * agree. Returns the whole-buffer result in *r. */
static void run_all(sl_http_kind kind, const sl_http_limits *lim, const char *in, size_t len,
                    bool eof, unsigned head_mask, rec *r)
{
    static rec other;
    run_ex(kind, lim, in, len, WHOLE, 1, eof, head_mask, r);
    normalize(r);
    run_ex(kind, lim, in, len, BYTES, 1, eof, head_mask, &other);
    normalize(&other);
    assert_memory_equal(r, &other, sizeof *r);
    for (unsigned seed = 1; seed < 4; seed++) {
        run_ex(kind, lim, in, len, RANDOM, seed, eof, head_mask, &other);
        normalize(&other);
        assert_memory_equal(r, &other, sizeof *r);
    }
}

static rec R;   /* big: keep off the stack */

static void req(const char *in)
{
    run_all(SL_HTTP_REQUEST, NULL, in, strlen(in), false, 0, &R);
}

/* The error a request gives, the same whatever the split. */
static int req_err(const char *in)
{
    req(in);
    return R.err;
}

static int req_err_n(const char *in, size_t len)
{
    run_all(SL_HTTP_REQUEST, NULL, in, len, false, 0, &R);
    return R.err;
}

static int resp_err(const char *in)
{
    run_all(SL_HTTP_RESPONSE, NULL, in, strlen(in), true, 0, &R);
    return R.err;
}

/* ------------------------------------------------------------ requests */

static void test_simple_get(void **s)
{
    (void)s;
    req("GET /orders/17?x=1 HTTP/1.1\r\nHost: example\r\nUser-Agent:  curl/8 \t\r\n"
        "X-Empty:\r\n\r\n");
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 1);
    rec_msg *m = &R.m[0];
    assert_true(m->done);
    assert_int_equal(m->method, SL_HTTP_GET);
    assert_string_equal(m->method_name, "GET");
    assert_string_equal(m->target, "/orders/17?x=1");
    assert_int_equal(m->minor, 1);
    assert_int_equal(m->nheaders, 3);
    assert_string_equal(m->hname[0], "Host");
    assert_string_equal(m->hval[0], "example");
    assert_string_equal(m->hname[1], "User-Agent");
    assert_string_equal(m->hval[1], "curl/8");     /* OWS trimmed both sides */
    assert_string_equal(m->hname[2], "X-Empty");
    assert_string_equal(m->hval[2], "");
    assert_int_equal(m->content_length, -1);
    assert_false(m->has_body);
    assert_false(m->chunked);
    assert_true(m->keep_alive);
    assert_false(m->expect);
    assert_false(m->upgrade);
    assert_int_equal(m->body_len, 0);
}

/* The API itself, step by step: HEAD uses exactly the head, DONE uses
 * nothing, lookups ignore case. */
static void test_events_and_lookup(void **s)
{
    (void)s;
    const char *in = "GET / HTTP/1.1\r\nHost: a\r\nCONTENT-TYPE: text/plain\r\n\r\nGET /2";
    size_t head_len = strlen("GET / HTTP/1.1\r\nHost: a\r\nCONTENT-TYPE: text/plain\r\n\r\n");
    sl_http_parser p;
    size_t used;
    sl_http_str body;
    assert_int_equal(sl_http_parser_init(&p, SL_HTTP_REQUEST, NULL), 0);
    assert_int_equal(sl_http_parser_feed(&p, in, strlen(in), &used, &body), SL_HTTP_EV_HEAD);
    assert_int_equal(used, head_len);
    const sl_http_header *h = SL_HTTP_HEADER(&p.msg, "content-type");
    assert_non_null(h);
    assert_int_equal(h->value.len, 10);
    assert_memory_equal(h->value.ptr, "text/plain", 10);
    assert_null(SL_HTTP_HEADER(&p.msg, "content-typ"));
    assert_null(SL_HTTP_HEADER(&p.msg, "content-typf"));
    assert_true(sl_http_str_ieq(h->name, "Content-Type", 12));
    assert_int_equal(sl_http_parser_feed(&p, in + used, strlen(in) - used, &used, &body),
                     SL_HTTP_EV_DONE);
    assert_int_equal(used, 0);
    /* the next request is incomplete: all bytes used, nothing yet */
    assert_int_equal(sl_http_parser_feed(&p, in + head_len, 6, &used, NULL), SL_HTTP_EV_NEED_MORE);
    assert_int_equal(used, 6);
    assert_int_equal(sl_http_parser_feed(&p, "", 0, &used, NULL), SL_HTTP_EV_NEED_MORE);
    /* EOF in the middle of a request */
    assert_int_equal(sl_http_parser_finish(&p), SL_HTTP_E_TRUNCATED);
    assert_int_equal(sl_http_parser_feed(&p, "x", 1, &used, NULL), SL_HTTP_E_TRUNCATED);
    assert_int_equal(used, 0);
    /* reset: a new connection */
    sl_http_parser_reset(&p);
    assert_int_equal(sl_http_parser_feed(&p, in, head_len, &used, NULL), SL_HTTP_EV_HEAD);
    assert_int_equal(sl_http_parser_feed(&p, "", 0, &used, NULL), SL_HTTP_EV_DONE);
    assert_int_equal(sl_http_parser_finish(&p), SL_HTTP_EV_NEED_MORE);   /* clean close */
    assert_int_equal(sl_http_parser_feed(&p, "G", 1, &used, NULL), SL_HTTP_E_CLOSED);
    sl_http_parser_fini(&p);
    sl_http_parser_fini(&p);    /* twice is fine */
}

static void test_post_content_length(void **s)
{
    (void)s;
    char in[4096], body[3000];
    for (size_t i = 0; i < sizeof body; i++)
        body[i] = (char)('a' + i % 26);
    int n = snprintf(in, sizeof in, "POST /orders HTTP/1.1\r\nHost: h\r\nContent-Length: %zu\r\n\r\n",
                     sizeof body);
    memcpy(in + n, body, sizeof body);
    /* run_all checks that whole, byte-by-byte and random splits agree */
    run_all(SL_HTTP_REQUEST, NULL, in, (size_t)n + sizeof body, false, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 1);
    assert_true(R.m[0].done);
    assert_int_equal(R.m[0].method, SL_HTTP_POST);
    assert_int_equal(R.m[0].content_length, sizeof body);
    assert_true(R.m[0].has_body);
    assert_int_equal(R.m[0].body_len, sizeof body);
    assert_memory_equal(R.m[0].body, body, sizeof body);

    /* byte by byte: one BODY event per byte, each pointing into the byte */
    run(SL_HTTP_REQUEST, NULL, "PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc", BYTES, &R);
    assert_int_equal(R.err, 0);
    assert_string_equal(R.m[0].body, "abc");
    assert_int_equal(R.m[0].method, SL_HTTP_PUT);

    /* Content-Length: 0 and a body-less POST */
    req("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(R.err, 0);
    assert_true(R.m[0].done);
    assert_false(R.m[0].has_body);
    assert_int_equal(R.m[0].content_length, 0);
}

static void test_chunked(void **s)
{
    (void)s;
    const char *in =
        "POST /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;name=value;q=\"x y\"\r\nhello\r\n"
        "6 ; ext\r\n world\r\n"
        "A\r\n0123456789\r\n"
        "0\r\nX-Checksum: abc\r\nX-Other:  2 \r\n\r\n"
        "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
    req(in);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 2);
    rec_msg *m = &R.m[0];
    assert_true(m->done);
    assert_true(m->chunked);
    assert_true(m->has_body);
    assert_int_equal(m->content_length, -1);
    assert_int_equal(m->body_len, 21);
    assert_memory_equal(m->body, "hello world0123456789", 21);
    assert_int_equal(m->nheaders, 2);
    assert_int_equal(m->ntrailers, 2);
    assert_string_equal(m->tname[0], "X-Checksum");
    assert_string_equal(m->tval[0], "abc");
    assert_string_equal(m->tname[1], "X-Other");
    assert_string_equal(m->tval[1], "2");
    assert_string_equal(R.m[1].target, "/next");
    assert_true(R.m[1].done);
    assert_int_equal(R.m[1].ntrailers, 0);

    /* uppercase hex, leading zeros, no trailers, "CHUNKED" in any case */
    req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:  CHUNKED \r\n\r\n"
        "00000000000000000000000B\r\nhello world\r\n0\r\n\r\n");
    assert_int_equal(R.err, 0);
    assert_true(R.m[0].done);
    assert_string_equal(R.m[0].body, "hello world");
}

/* Head pointers stay valid while trailers (which may grow their own store)
 * arrive, until the next message begins. */
static void test_pointers_stable(void **s)
{
    (void)s;
    char in[8192];
    int n = snprintf(in, sizeof in,
                     "POST /stable HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n0\r\n");
    for (int i = 0; i < 30; i++)
        n += snprintf(in + n, sizeof in - (size_t)n, "T%d: %0100d\r\n", i, i);
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\n");
    sl_http_parser p;
    size_t used, off = 0;
    sl_http_str body;
    assert_int_equal(sl_http_parser_init(&p, SL_HTTP_REQUEST, NULL), 0);
    assert_int_equal(sl_http_parser_feed(&p, in, (size_t)n, &used, &body), SL_HTTP_EV_HEAD);
    off += used;
    sl_http_str target = p.msg.target;
    const sl_http_header *host = SL_HTTP_HEADER(&p.msg, "Host");
    assert_non_null(host);
    assert_int_equal(sl_http_parser_feed(&p, in + off, (size_t)n - off, &used, &body), SL_HTTP_EV_BODY);
    off += used;
    assert_int_equal(sl_http_parser_feed(&p, in + off, (size_t)n - off, &used, &body), SL_HTTP_EV_DONE);
    off += used;
    assert_int_equal(off, (size_t)n);
    assert_int_equal(p.msg.ntrailers, 30);
    assert_ptr_equal(p.msg.target.ptr, target.ptr);
    assert_memory_equal(target.ptr, "/stable", 7);
    assert_ptr_equal(SL_HTTP_HEADER(&p.msg, "Host"), host);
    assert_memory_equal(host->value.ptr, "h", 1);
    assert_memory_equal(p.msg.trailers[29].name.ptr, "T29", 3);
    sl_http_parser_fini(&p);
}

/* Many large headers: the store grows (and rebases) while the head arrives. */
static void test_store_growth(void **s)
{
    (void)s;
    static char in[40000];
    sl_http_limits lim = { .max_head = 64 * 1024 };
    int n = snprintf(in, sizeof in, "GET /%0250d HTTP/1.1\r\nHost: h\r\n", 7);
    for (int i = 0; i < 38; i++)
        n += snprintf(in + n, sizeof in - (size_t)n, "X-Header-%02d: %0290d\r\n", i, i);
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\n");
    run_all(SL_HTTP_REQUEST, &lim, in, (size_t)n, false, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.m[0].nheaders, 39);
    assert_int_equal(strlen(R.m[0].target), 251);
    for (int i = 0; i < 38; i++) {
        char name[24], val[300];
        snprintf(name, sizeof name, "X-Header-%02d", i);
        snprintf(val, sizeof val, "%0290d", i);
        assert_string_equal(R.m[0].hname[i + 1], name);
        assert_string_equal(R.m[0].hval[i + 1], val);
    }
}

static void test_pipelined(void **s)
{
    (void)s;
    const char *in =
        "GET /a HTTP/1.1\r\nHost: h\r\n\r\n"
        "POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody"
        "\r\n"      /* an empty line between messages is tolerated (RFC 9112 2.2) */
        "DELETE /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        "PATCH /d HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    req(in);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 4);
    assert_string_equal(R.m[0].target, "/a");
    assert_string_equal(R.m[1].target, "/b");
    assert_string_equal(R.m[1].body, "body");
    assert_int_equal(R.m[2].method, SL_HTTP_DELETE);
    assert_string_equal(R.m[2].body, "hi");
    assert_int_equal(R.m[3].method, SL_HTTP_PATCH);
    for (int i = 0; i < 4; i++)
        assert_true(R.m[i].done);
    assert_false(R.m[3].keep_alive);
    /* nothing may follow a Connection: close request */
    char more[512];
    snprintf(more, sizeof more, "%sGET /e HTTP/1.1\r\nHost: h\r\n\r\n", in);
    assert_int_equal(req_err(more), SL_HTTP_E_CLOSED);
    assert_int_equal(R.n, 4);
    assert_true(R.m[3].done);
}

static void test_keep_alive(void **s)
{
    (void)s;
    static const struct { const char *in; bool ka; } cases[] = {
        { "GET / HTTP/1.1\r\nHost: h\r\n\r\n", true },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", false },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: CLOSE\r\n\r\n", false },
        { "GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", true },
        { "GET / HTTP/1.0\r\n\r\n", false },
        { "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true },
        { "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", true },
        { "GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false },
        { "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", false },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        req(cases[i].in);
        assert_int_equal(R.err, 0);
        assert_true(R.m[0].done);
        if (R.m[0].keep_alive != cases[i].ka)
            fail_msg("case %zu: keep_alive %d", i, R.m[0].keep_alive);
    }
    /* HTTP/1.0 with keep-alive carries a second request */
    req("GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /2 HTTP/1.0\r\n\r\n");
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 2);
    assert_int_equal(R.m[1].minor, 0);
    assert_false(R.m[1].keep_alive);
    /* CONNECT ends the HTTP conversation */
    assert_int_equal(req_err("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n\x16\x03\x01"),
                     SL_HTTP_E_CLOSED);
    assert_int_equal(R.m[0].method, SL_HTTP_CONNECT);
    assert_true(R.m[0].upgrade);
    /* a request to upgrade that we do not act on leaves the connection HTTP */
    req("GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 2);
    assert_true(R.m[0].upgrade);
    assert_true(R.m[0].keep_alive);
    assert_false(R.m[1].upgrade);
}

static void test_expect_continue(void **s)
{
    (void)s;
    const char *head = "POST /big HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n";
    sl_http_parser p;
    size_t used;
    assert_int_equal(sl_http_parser_init(&p, SL_HTTP_REQUEST, NULL), 0);
    /* the head comes alone: the server sees it (and can send 100) before the body */
    assert_int_equal(sl_http_parser_feed(&p, head, strlen(head), &used, NULL), SL_HTTP_EV_HEAD);
    assert_int_equal(used, strlen(head));
    assert_true(p.msg.expect_continue);
    assert_true(p.msg.has_body);
    assert_int_equal(p.msg.content_length, 5);
    sl_http_str body;
    assert_int_equal(sl_http_parser_feed(&p, "hello", 5, &used, &body), SL_HTTP_EV_BODY);
    assert_int_equal(used, 5);
    assert_int_equal(body.len, 5);
    assert_int_equal(sl_http_parser_feed(&p, "", 0, &used, &body), SL_HTTP_EV_DONE);
    sl_http_parser_fini(&p);

    req("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx");
    assert_false(R.m[0].expect);    /* RFC 9110 10.1.1: ignored from HTTP/1.0 */
    req("POST / HTTP/1.1\r\nHost: h\r\nExpect: something-else\r\nContent-Length: 1\r\n\r\nx");
    assert_false(R.m[0].expect);
    req("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_false(R.m[0].expect);
}

static void test_other_methods(void **s)
{
    (void)s;
    static const struct { const char *name; int m; } cases[] = {
        { "HEAD", SL_HTTP_HEAD }, { "OPTIONS", SL_HTTP_OPTIONS }, { "TRACE", SL_HTTP_TRACE },
        { "PROPFIND", SL_HTTP_OTHER }, { "PURGE", SL_HTTP_OTHER },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[128];
        snprintf(in, sizeof in, "%s / HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].name);
        req(in);
        assert_int_equal(R.err, 0);
        assert_int_equal(R.m[0].method, cases[i].m);
        assert_string_equal(R.m[0].method_name, cases[i].name);
    }
    /* absolute-form target is passed through */
    req("GET http://h:8080/p?q HTTP/1.1\r\nHost: h:8080\r\n\r\n");
    assert_string_equal(R.m[0].target, "http://h:8080/p?q");
}

/* ------------------------------------------------------------ request errors */

static void test_bad_method(void **s)
{
    (void)s;
    assert_int_equal(req_err("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_METHOD);
    assert_int_equal(sl_http_error_status(R.err), 501);
    assert_int_equal(req_err("get / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_METHOD);
    assert_int_equal(req_err("GETS / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_METHOD);
    /* a token that is a prefix of a method http_parser knows (found by
     * fuzz_load_opts: sluice-load --method O got 400, not 501) */
    assert_int_equal(req_err("O / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_METHOD);
    assert_int_equal(req_err("GE / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_METHOD);
    assert_int_equal(req_err("POS / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_METHOD);
    assert_int_equal(req_err("GET / HTTP/1.1\r\nHost: h\r\n\r\nO / HTTP/1.1\r\nHost: h\r\n\r\n"),
                     SL_HTTP_E_METHOD);
    assert_int_equal(req_err("\r\nPOS / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_METHOD);
    assert_int_equal(req_err(" GE / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    /* not HTTP at all: a TLS client hello, a space, binary */
    assert_int_equal(req_err("\x16\x03\x01\x02\x00\x01\x00"), SL_HTTP_E_HEADER_CHAR);
    assert_int_equal(req_err(" GET / HTTP/1.1\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(req_err("GE( / HTTP/1.1\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(sl_http_error_status(R.err), 400);
}

static void test_bad_version(void **s)
{
    (void)s;
    assert_int_equal(req_err("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), SL_HTTP_E_VERSION);
    assert_int_equal(sl_http_error_status(R.err), 505);
    assert_int_equal(req_err("GET / HTTP/3.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_VERSION);
    assert_int_equal(req_err("GET /\r\n\r\n"), SL_HTTP_E_SYNTAX);           /* HTTP/0.9 */
    assert_int_equal(req_err("GET / HTTX/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(req_err("GET / HXXX/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(req_err("GET / http/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(req_err("GET / HTTP/1x1\r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(req_err("GET / HTTP/1.10\r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(req_err("GET / HTTP/1.1 \r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    /* a later minor version is HTTP/1.1 */
    req("GET / HTTP/1.2\r\nHost: h\r\n\r\n");
    assert_int_equal(R.err, 0);
    assert_int_equal(R.m[0].minor, 2);
}

static void test_bad_target_and_host(void **s)
{
    (void)s;
    assert_int_equal(req_err("GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(req_err("GET /a\x80z HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(req_err("GET /a\x7fz HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_HEADER_CHAR);
    assert_int_equal(req_err("GET /a\x01z HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_HEADER_CHAR);
    assert_int_equal(req_err("GET / HTTP/1.1\r\n\r\n"), SL_HTTP_E_HOST);
    assert_int_equal(req_err("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n"), SL_HTTP_E_HOST);
    assert_int_equal(req_err("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), SL_HTTP_E_HOST);
    assert_int_equal(sl_http_error_status(R.err), 400);
    req("GET / HTTP/1.0\r\n\r\n");      /* HTTP/1.0 needs no Host */
    assert_int_equal(R.err, 0);
}

/* Every byte value at every offset of a 16-byte run, in a header value and
 * in the request target: the word-at-a-time scan must agree with the
 * byte-at-a-time one (run_all feeds whole and byte by byte). */
static void test_every_byte(void **s)
{
    (void)s;
    char in[128];
    for (int c = 0; c < 256; c++) {
        for (int at = 0; at < 16; at++) {
            char run16[17];
            memset(run16, 'a', 16);
            run16[16] = 0;
            run16[at] = (char)c;
            int n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: h\r\nX: b");
            memcpy(in + n, run16, 16);
            n += 16;
            n += snprintf(in + n, sizeof in - (size_t)n, "b\r\n\r\n");
            int want = (c < 0x20 && c != '\t') || c == 0x7f ? SL_HTTP_E_HEADER_CHAR : 0;
            int got = req_err_n(in, (size_t)n);
            if (got != want)
                fail_msg("value byte 0x%02x at %d: %d, want %d", c, at, got, want);
            if (c >= 0x20 && c < 0x7f)
                continue;   /* printable: up to http_parser's URL rules */
            n = snprintf(in, sizeof in, "GET /");
            memcpy(in + n, run16, 16);
            n += 16;
            n += snprintf(in + n, sizeof in - (size_t)n, " HTTP/1.1\r\nHost: h\r\n\r\n");
            /* CR ends the request line early: its tail is then wrong */
            want = c >= 0x80 || c == '\t' || c == '\r' ? SL_HTTP_E_SYNTAX : SL_HTTP_E_HEADER_CHAR;
            got = req_err_n(in, (size_t)n);
            if (got != want)
                fail_msg("target byte 0x%02x at %d: %d, want %d", c, at, got, want);
        }
    }
}

/* The smuggling cases: every ambiguous framing is refused. */
static void test_smuggling(void **s)
{
    (void)s;
    static const struct { const char *in; int err; } cases[] = {
        /* Content-Length with Transfer-Encoding, either order */
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
          SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
          SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nContent-Length: 3\r\n\r\nabc",
          SL_HTTP_E_FRAMING },
        /* two Content-Lengths, different or equal */
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
          SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
          SL_HTTP_E_FRAMING },
        /* Content-Length that is not 1*DIGIT */
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc", SL_HTTP_E_CONTENT_LENGTH },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +3\r\n\r\nabc", SL_HTTP_E_CONTENT_LENGTH },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", SL_HTTP_E_CONTENT_LENGTH },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x3\r\n\r\nabc", SL_HTTP_E_CONTENT_LENGTH },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3 3\r\n\r\nabc", SL_HTTP_E_CONTENT_LENGTH },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n", SL_HTTP_E_CONTENT_LENGTH },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999\r\n\r\n",
          SL_HTTP_E_CONTENT_LENGTH },
        /* Transfer-Encoding must be exactly chunked */
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
          SL_HTTP_E_CODING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
          SL_HTTP_E_CODING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
          SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
          SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n",
          SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
          SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\nabc", SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n0\r\n\r\n", SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", SL_HTTP_E_FRAMING },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", SL_HTTP_E_FRAMING },
        /* RFC 9112 6.1: Transfer-Encoding in HTTP/1.0 is faulty framing */
        { "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", SL_HTTP_E_FRAMING },
        /* whitespace before the colon (RFC 9112 5.1) */
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n", SL_HTTP_E_HEADER_CHAR },
        { "POST / HTTP/1.1\r\nHost: h\r\nContent-Length : 3\r\n\r\nabc", SL_HTTP_E_HEADER_CHAR },
        { "POST / HTTP/1.1\r\nHost: h\r\n Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", SL_HTTP_E_OBS_FOLD },
        /* CTL, bare CR and bare LF in the head (NUL: below) */
        { "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n", SL_HTTP_E_HEADER_CHAR },
        { "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7fz\r\n\r\n", SL_HTTP_E_HEADER_CHAR },
        { "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n", SL_HTTP_E_HEADER_CHAR },
        { "GET / HTTP/1.1\r\nHost: h\r\nX: a\nTransfer-Encoding: chunked\r\n\r\n", SL_HTTP_E_HEADER_CHAR },
        { "GET / HTTP/1.1\nHost: h\n\n", SL_HTTP_E_HEADER_CHAR },
        { "GET / HTTP/1.1\r\nHost: h\r\n\n", SL_HTTP_E_HEADER_CHAR },
        { "GET / HTTP/1.1\r\nHost: h\r\n\rX", SL_HTTP_E_HEADER_CHAR },
        { "GET / HTTP/1.1\rX\nHost: h\r\n\r\n", SL_HTTP_E_HEADER_CHAR },
        { "GET / HTTP/1.1\r\nHost: h\r\nX@Y: a\r\n\r\n", SL_HTTP_E_HEADER_CHAR },
        /* obs-fold */
        { "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n", SL_HTTP_E_OBS_FOLD },
        { "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tb\r\n\r\n", SL_HTTP_E_OBS_FOLD },
        /* chunked framing */
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5 garbage\r\nhello\r\n0\r\n\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\rXhello\r\n0\r\n\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nx\r\n\r\n", SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n\r\n", SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
          SL_HTTP_E_CHUNK },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2;\x01\r\nhi\r\n0\r\n\r\n",
          SL_HTTP_E_CHUNK },
        /* trailers follow the head rules */
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\nU: b\r\n\r\n",
          SL_HTTP_E_HEADER_CHAR },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT: a\r\n b\r\n\r\n",
          SL_HTTP_E_OBS_FOLD },
        { "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nT : a\r\n\r\n",
          SL_HTTP_E_HEADER_CHAR },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int err = req_err(cases[i].in);
        if (err != cases[i].err)
            fail_msg("case %zu: got %d (%s), want %d", i, err, sl_http_error_str(err), cases[i].err);
        assert_int_equal(sl_http_error_status(err), err == SL_HTTP_E_CODING ? 501 : 400);
    }
    /* NULs, with explicit lengths */
    static const char nul_value[] = "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n";
    assert_int_equal(req_err_n(nul_value, sizeof nul_value - 1), SL_HTTP_E_HEADER_CHAR);
    static const char nul_name[] = "GET / HTTP/1.1\r\nHost: h\r\nX\0Y: a\r\n\r\n";
    assert_int_equal(req_err_n(nul_name, sizeof nul_name - 1), SL_HTTP_E_HEADER_CHAR);
    static const char nul_target[] = "GET /a\0b HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(req_err_n(nul_target, sizeof nul_target - 1), SL_HTTP_E_HEADER_CHAR);
    static const char nul_ext[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "2;a\0\r\nhi\r\n0\r\n\r\n";
    assert_int_equal(req_err_n(nul_ext, sizeof nul_ext - 1), SL_HTTP_E_CHUNK);
    /* a NUL in the body is just data */
    static const char nul_body[] = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\na\0b";
    assert_int_equal(req_err_n(nul_body, sizeof nul_body - 1), 0);
    assert_int_equal(R.m[0].body_len, 3);
    assert_memory_equal(R.m[0].body, "a\0b", 3);
}

/* ------------------------------------------------------------ limits */

static void test_head_limit(void **s)
{
    (void)s;
    sl_http_limits lim = { .max_head = 200 };
    char in[512];
    const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
    /* exactly 200 bytes of head passes; 201 is 431 */
    for (int extra = 0; extra < 2; extra++) {
        size_t fill = 200 - strlen(pre) - 4 + (size_t)extra;
        snprintf(in, sizeof in, "%s%0*d\r\n\r\n", pre, (int)fill, 0);
        assert_int_equal(strlen(in), 200 + (size_t)extra);
        run_all(SL_HTTP_REQUEST, &lim, in, strlen(in), false, 0, &R);
        assert_int_equal(R.err, extra ? SL_HTTP_E_HEAD_TOO_LARGE : 0);
    }
    assert_int_equal(sl_http_error_status(SL_HTTP_E_HEAD_TOO_LARGE), 431);
    /* a long request line alone is enough, and the error comes before the
     * whole head is there: the parser never buffers more than max_head */
    memset(in, 'a', sizeof in);
    memcpy(in, "GET /", 5);
    run_all(SL_HTTP_REQUEST, &lim, in, sizeof in, false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_HEAD_TOO_LARGE);
    /* the limit is per message: many small pipelined ones are fine */
    char many[2000] = "";
    for (int i = 0; i < MAXMSG; i++)
        strcat(many, "GET /0123456789 HTTP/1.1\r\nHost: h\r\nX: 0123456789012345678901234567890\r\n\r\n");
    run_all(SL_HTTP_REQUEST, &lim, many, strlen(many), false, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, MAXMSG);
    assert_true(R.m[MAXMSG - 1].done);
    /* trailers share the budget */
    lim.max_head = 100;
    const char *tr = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\nT: 012345678901234567890123456789012345678901234567890\r\n\r\n";
    run_all(SL_HTTP_REQUEST, &lim, tr, strlen(tr), false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_HEAD_TOO_LARGE);
    assert_int_equal(R.n, 1);
}

static void test_header_count_limit(void **s)
{
    (void)s;
    sl_http_limits lim = { .max_headers = 5 };
    const char *five = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    run_all(SL_HTTP_REQUEST, &lim, five, strlen(five), false, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.m[0].nheaders, 5);
    const char *six = "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\nE: 5\r\n\r\n";
    run_all(SL_HTTP_REQUEST, &lim, six, strlen(six), false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_TOO_MANY_HEADERS);
    assert_int_equal(sl_http_error_status(R.err), 431);
    /* trailers count too */
    const char *tr = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
    run_all(SL_HTTP_REQUEST, &lim, tr, strlen(tr), false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_TOO_MANY_HEADERS);
}

static void test_body_limit(void **s)
{
    (void)s;
    sl_http_limits lim = { .max_body = 10 };
    /* by Content-Length: refused on the head, before any body byte */
    const char *head = "POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n";
    sl_http_parser p;
    size_t used;
    assert_int_equal(sl_http_parser_init(&p, SL_HTTP_REQUEST, &lim), 0);
    assert_int_equal(sl_http_parser_feed(&p, head, strlen(head), &used, NULL), SL_HTTP_E_BODY_TOO_LARGE);
    assert_int_equal(sl_http_error_status(SL_HTTP_E_BODY_TOO_LARGE), 413);
    assert_int_equal(p.msg.content_length, 11);   /* the head is there for the log */
    assert_int_equal(p.msg.target.len, 3);
    sl_http_parser_fini(&p);
    const char *ten = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789";
    run_all(SL_HTTP_REQUEST, &lim, ten, strlen(ten), false, 0, &R);
    assert_int_equal(R.err, 0);
    /* chunked: a chunk that would pass the limit fails on its size line */
    const char *ch = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "6\r\n012345\r\n5\r\n";
    run_all(SL_HTTP_REQUEST, &lim, ch, strlen(ch), false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_BODY_TOO_LARGE);
    /* the same with the data behind it, in one buffer (found by the fuzz:
     * the data must not be taken for framing) */
    const char *chd = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                      "55;e=1\r\nhello\r\n0\r\n\r\n";
    run_all(SL_HTTP_REQUEST, &lim, chd, strlen(chd), false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_BODY_TOO_LARGE);
    const char *ch10 = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "6\r\n012345\r\n4\r\n6789\r\n0\r\n\r\n";
    run_all(SL_HTTP_REQUEST, &lim, ch10, strlen(ch10), false, 0, &R);
    assert_int_equal(R.err, 0);
    assert_string_equal(R.m[0].body, "0123456789");
    /* a response read until close */
    const char *rs = "HTTP/1.1 200 OK\r\n\r\n0123456789A";
    run_all(SL_HTTP_RESPONSE, &lim, rs, strlen(rs), true, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_BODY_TOO_LARGE);
    /* no limit */
    lim.max_body = UINT64_MAX;
    const char *huge = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n";
    run_all(SL_HTTP_REQUEST, &lim, huge, strlen(huge), false, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.m[0].content_length, INT64_MAX);
}

/* Counters do not wrap: 257 Host lines are 257, not 1. */
static void test_many_repeats(void **s)
{
    (void)s;
    static char in[16384];
    sl_http_limits lim = { .max_head = sizeof in, .max_headers = 1000 };
    int n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 257; i++)
        n += snprintf(in + n, sizeof in - (size_t)n, "Host: h\r\n");
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\n");
    run_ex(SL_HTTP_REQUEST, &lim, in, (size_t)n, WHOLE, 1, false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_HOST);
    n = snprintf(in, sizeof in, "POST / HTTP/1.1\r\nHost: h\r\n");
    for (int i = 0; i < 257; i++)
        n += snprintf(in + n, sizeof in - (size_t)n, "Transfer-Encoding: chunked\r\n");
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\n0\r\n\r\n");
    run_ex(SL_HTTP_REQUEST, &lim, in, (size_t)n, WHOLE, 1, false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_FRAMING);
}

/* http_parser has its own cap (80 KiB of head); above it, the same 431. */
static void test_http_parser_cap(void **s)
{
    (void)s;
    static char in[100000];
    sl_http_limits lim = { .max_head = 200000 };
    int n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
    memset(in + n, 'x', 90000);
    n += 90000;
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\n\r\n");
    run_ex(SL_HTTP_REQUEST, &lim, in, (size_t)n, WHOLE, 1, false, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_HEAD_TOO_LARGE);
    /* 60 KiB is fine with a limit that allows it */
    n = snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: h\r\nX-Big: ");
    memset(in + n, 'x', 60000);
    n += 60000;
    n += snprintf(in + n, sizeof in - (size_t)n, "\r\n\r\n");
    run_ex(SL_HTTP_REQUEST, &lim, in, (size_t)n, RANDOM, 5, false, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(strlen(R.m[0].hval[1]), sizeof R.m[0].hval[1] - 1);   /* truncated copy */
}

/* EOF after blank lines between messages is a clean close. */
static void test_blank_lines_then_eof(void **s)
{
    (void)s;
    const char *in = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n\r\n\r\n";
    run_all(SL_HTTP_REQUEST, NULL, in, strlen(in), true, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 1);
    assert_int_equal(R.eof, SL_HTTP_EV_NEED_MORE);
    const char *rs = "\r\nHTTP/1.1 204 No Content\r\n\r\n";
    run_all(SL_HTTP_RESPONSE, NULL, rs, strlen(rs), true, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.m[0].status, 204);
}

static void test_init_errors(void **s)
{
    (void)s;
    sl_http_parser p;
    assert_int_equal(sl_http_parser_init(&p, (sl_http_kind)7, NULL), -EINVAL);
    sl_http_parser_fini(&p);
    sl_http_limits lim = { .max_head = (1u << 30) + 1 };
    assert_int_equal(sl_http_parser_init(&p, SL_HTTP_REQUEST, &lim), -EINVAL);
    sl_http_parser_fini(&p);
    lim = (sl_http_limits){ .max_headers = (1u << 20) + 1 };
    assert_int_equal(sl_http_parser_init(&p, SL_HTTP_RESPONSE, &lim), -EINVAL);
    sl_http_parser_fini(&p);
    /* tiny limits work: the store starts at the limit */
    lim = (sl_http_limits){ .max_head = 40, .max_headers = 1 };
    assert_int_equal(sl_http_parser_init(&p, SL_HTTP_REQUEST, &lim), 0);
    size_t used;
    const char *in = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(sl_http_parser_feed(&p, in, strlen(in), &used, NULL), SL_HTTP_EV_HEAD);
    sl_http_parser_fini(&p);
}

static void test_error_table(void **s)
{
    (void)s;
    static const struct { int err, status; } t[] = {
        { SL_HTTP_E_SYNTAX, 400 }, { SL_HTTP_E_METHOD, 501 }, { SL_HTTP_E_VERSION, 505 },
        { SL_HTTP_E_HEAD_TOO_LARGE, 431 }, { SL_HTTP_E_TOO_MANY_HEADERS, 431 },
        { SL_HTTP_E_BODY_TOO_LARGE, 413 }, { SL_HTTP_E_FRAMING, 400 }, { SL_HTTP_E_CODING, 501 },
        { SL_HTTP_E_CONTENT_LENGTH, 400 }, { SL_HTTP_E_HEADER_CHAR, 400 },
        { SL_HTTP_E_OBS_FOLD, 400 }, { SL_HTTP_E_CHUNK, 400 }, { SL_HTTP_E_HOST, 400 },
        { SL_HTTP_E_TRUNCATED, 400 }, { SL_HTTP_E_CLOSED, 400 }, { -ENOMEM, 500 }, { 12345, 500 },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        assert_int_equal(sl_http_error_status(t[i].err), t[i].status);
        const char *msg = sl_http_error_str(t[i].err);
        assert_non_null(msg);
        assert_true(strlen(msg) > 5);
        for (size_t j = 0; j < i; j++)  /* each known code has its own message */
            if (t[i].err != 12345)
                assert_string_not_equal(msg, sl_http_error_str(t[j].err));
    }
}

/* ------------------------------------------------------------ responses */

static void test_response_basic(void **s)
{
    (void)s;
    const char *in = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                     "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"
                     "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"
                     "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
                     "HTTP/1.1 100 Continue\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n";
    run_all(SL_HTTP_RESPONSE, NULL, in, strlen(in), true, 0, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 6);
    assert_int_equal(R.m[0].status, 201);
    assert_string_equal(R.m[0].reason, "Created");
    assert_string_equal(R.m[0].body, "{}");
    assert_true(R.m[0].keep_alive);
    assert_int_equal(R.m[1].status, 200);
    assert_string_equal(R.m[1].reason, "");
    assert_int_equal(R.m[2].status, 204);       /* 204 and 304 have no body */
    assert_false(R.m[2].has_body);
    assert_int_equal(R.m[2].content_length, 5);
    assert_int_equal(R.m[3].status, 304);
    assert_false(R.m[3].has_body);
    assert_int_equal(R.m[4].status, 100);       /* interim, then the final one */
    assert_true(R.m[5].chunked);
    assert_string_equal(R.m[5].body, "abc");
    assert_int_equal(R.m[5].ntrailers, 1);
    for (int i = 0; i < 6; i++)
        assert_true(R.m[i].done);
    assert_int_equal(R.eof, SL_HTTP_EV_NEED_MORE);
}

static void test_response_head(void **s)
{
    (void)s;
    /* the answer to HEAD says Content-Length (and even chunked) but has no
     * body; the response after it is parsed from the next byte */
    const char *in = "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    run_all(SL_HTTP_RESPONSE, NULL, in, strlen(in), false, 0x3, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 3);
    assert_int_equal(R.m[0].content_length, 1234);
    assert_false(R.m[0].has_body);
    assert_int_equal(R.m[0].body_len, 0);
    assert_false(R.m[1].has_body);
    assert_true(R.m[1].keep_alive);
    assert_string_equal(R.m[2].body, "ok");
    /* and over the body limit is no error for HEAD */
    sl_http_limits lim = { .max_body = 10 };
    run_all(SL_HTTP_RESPONSE, &lim, in, strlen(in), false, 0x3, &R);
    assert_int_equal(R.err, 0);
    /* the flag holds across a 1xx response */
    const char *c = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n";
    run_all(SL_HTTP_RESPONSE, NULL, c, strlen(c), false, 0x1, &R);
    assert_int_equal(R.err, 0);
    assert_int_equal(R.n, 2);
    assert_true(R.m[1].done);
    assert_false(R.m[1].has_body);
    /* without the flag the same bytes are a truncated body */
    run_all(SL_HTTP_RESPONSE, NULL, c, strlen(c), true, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_TRUNCATED);
}

static void test_response_until_close(void **s)
{
    (void)s;
    const char *in = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of this\r\nuntil close";
    run_all(SL_HTTP_RESPONSE, NULL, in, strlen(in), true, 0, &R);
    assert_int_equal(R.err, 0);
    assert_true(R.m[0].until_close);
    assert_true(R.m[0].has_body);
    assert_false(R.m[0].keep_alive);
    assert_true(R.m[0].done);
    assert_int_equal(R.eof, SL_HTTP_EV_DONE);
    assert_string_equal(R.m[0].body, "all of this\r\nuntil close");
    /* HTTP/1.0 without a length, and an empty body */
    run_all(SL_HTTP_RESPONSE, NULL, "HTTP/1.0 200 OK\r\n\r\n", 19, true, 0, &R);
    assert_int_equal(R.err, 0);
    assert_true(R.m[0].done);
    assert_int_equal(R.m[0].body_len, 0);
    /* a body cut short by EOF */
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort"), SL_HTTP_E_TRUNCATED);
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"),
                     SL_HTTP_E_TRUNCATED);
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nContent-Len"), SL_HTTP_E_TRUNCATED);
    /* a closing response takes no more bytes */
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx"
                              "HTTP/1.1 200 OK\r\n\r\n"),
                     SL_HTTP_E_CLOSED);
    assert_int_equal(resp_err("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                              "Connection: Upgrade\r\n\r\n\x81\x05hello"),
                     SL_HTTP_E_CLOSED);
    assert_true(R.m[0].upgrade);
    assert_true(R.m[0].done);
}

static void test_response_errors(void **s)
{
    (void)s;
    assert_int_equal(resp_err("HTTP/2.0 200 OK\r\n\r\n"), SL_HTTP_E_VERSION);
    assert_int_equal(resp_err("HTTP/1.1 2000 OK\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(resp_err("HTTP/1.1 OK\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(resp_err("HTXP/1.1 200 OK\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(resp_err("HTTP/1.1  200 OK\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(resp_err("HTTP/1.1\r\n\r\n"), SL_HTTP_E_SYNTAX);
    assert_int_equal(resp_err("HTTP/1.1 200 OK\rXContent-Length: 0\r\n\r\n"), SL_HTTP_E_HEADER_CHAR);
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     SL_HTTP_E_FRAMING);
    /* a coding we cannot undo, chunked or not */
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx"), SL_HTTP_E_CODING);
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"),
                     SL_HTTP_E_CODING);
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nxx"),
                     SL_HTTP_E_CODING);
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
                     SL_HTTP_E_CHUNK);
    assert_int_equal(resp_err("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), SL_HTTP_E_OBS_FOLD);
    sl_http_limits lim = { .max_head = 64 };
    const char *big = "HTTP/1.1 200 OK\r\nX-Long: 0123456789012345678901234567890123456789\r\n\r\n";
    run_all(SL_HTTP_RESPONSE, &lim, big, strlen(big), true, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_HEAD_TOO_LARGE);
    /* a response to HEAD with a coding we cannot undo is fine: no body */
    const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    run_all(SL_HTTP_RESPONSE, NULL, h, strlen(h), false, 1, &R);
    assert_int_equal(R.err, 0);
    assert_true(R.m[0].done);
}

/* ------------------------------------------------------------ issue 22 */

/* A field name that merely starts with "Transfer-Encoding" is an ordinary
 * field: http_parser flags the prefix, the framing must not follow it. */
static void test_te_prefix_names(void **s)
{
    (void)s;
    static const char *names[] = { "Transfer-Encodings", "Transfer-Encoding-Hint", "transfer-encodingX" };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        char in[256];
        snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: h\r\n%s: x\r\n\r\n", names[i]);
        req(in);
        if (R.err)
            fail_msg("'%s' refused: %d", names[i], R.err);
        assert_false(R.m[0].chunked);
        assert_false(R.m[0].has_body);
        assert_true(R.m[0].done);
        /* with a Content-Length body, and with an empty value */
        snprintf(in, sizeof in, "POST / HTTP/1.1\r\nHost: h\r\n%s: none\r\nContent-Length: 3\r\n\r\nabc"
                 "GET /2 HTTP/1.1\r\nHost: h\r\n%s:\r\n\r\n", names[i], names[i]);
        req(in);
        assert_int_equal(R.err, 0);
        assert_int_equal(R.n, 2);
        assert_string_equal(R.m[0].body, "abc");
        assert_true(R.m[1].done);
        /* responses: framed by Content-Length, not read until close */
        snprintf(in, sizeof in, "HTTP/1.1 200 OK\r\n%s: x\r\nContent-Length: 2\r\n\r\nok"
                 "HTTP/1.1 204 No Content\r\n\r\n", names[i]);
        run_all(SL_HTTP_RESPONSE, NULL, in, strlen(in), true, 0, &R);
        assert_int_equal(R.err, 0);
        assert_int_equal(R.n, 2);
        assert_false(R.m[0].until_close);
        assert_string_equal(R.m[0].body, "ok");
    }
    /* the exact name still counts, before or after such a field */
    assert_int_equal(req_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                             "Transfer-Encodings: x\r\nContent-Length: 3\r\n\r\n0\r\n\r\n"), SL_HTTP_E_FRAMING);
    assert_int_equal(req_err("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding-Hint: x\r\n"
                             "Transfer-Encoding: gzip\r\n\r\n"), SL_HTTP_E_FRAMING);
    req("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding-Hint: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3\r\nabc\r\n0\r\n\r\n");
    assert_int_equal(R.err, 0);
    assert_true(R.m[0].chunked);
    assert_string_equal(R.m[0].body, "abc");
}

/* A status code is exactly three digits, 100 to 599. */
static void test_status_code_form(void **s)
{
    (void)s;
    static const char *bad[] = {
        "HTTP/1.1 1\r\n\r\n", "HTTP/1.1 1 OK\r\n\r\n", "HTTP/1.1 20 OK\r\n\r\n", "HTTP/1.1 099 X\r\n\r\n",
        "HTTP/1.1 000000000204 No Content\r\n\r\n", "HTTP/1.1 0204 X\r\n\r\n", "HTTP/1.1 600 X\r\n\r\n",
        "HTTP/1.1 999 X\r\n\r\n", "HTTP/1.1 000 X\r\n\r\n", "HTTP/1.1 2000\r\n\r\n", "HTTP/1.1 20x OK\r\n\r\n",
        "HTTP/1.1 200x OK\r\n\r\n", "HTTP/1.1 200\tOK\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (resp_err(bad[i]) != SL_HTTP_E_SYNTAX)
            fail_msg("'%s': %d, want E_SYNTAX", bad[i], R.err);
    static const struct { const char *in; int status; } ok[] = {
        { "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 599 X\r\nContent-Length: 0\r\n\r\n", 599 },
        { "HTTP/1.1 204\r\n\r\n", 204 },            /* no reason, no SP */
        { "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 200 },      /* empty reason */
        { "HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", 404 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        run_all(SL_HTTP_RESPONSE, NULL, ok[i].in, strlen(ok[i].in), true, 0, &R);
        if (R.err)
            fail_msg("'%s' refused: %d", ok[i].in, R.err);
        assert_int_equal(R.m[R.n - 1].status, ok[i].status);
        assert_true(R.m[R.n - 1].done);
    }
}

/* CONNECT has no content: a request that frames one is refused instead of
 * announcing a body that would never be parsed. */
static void test_connect_with_body(void **s)
{
    (void)s;
    assert_int_equal(req_err("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 5\r\n\r\nhello"),
                     SL_HTTP_E_FRAMING);
    assert_int_equal(req_err("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nTransfer-Encoding: chunked\r\n\r\n"
                             "5\r\nhello\r\n0\r\n\r\n"), SL_HTTP_E_FRAMING);
    assert_int_equal(req_err("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nTransfer-Encoding: gzip\r\n\r\n"),
                     SL_HTTP_E_FRAMING);
    /* Content-Length: 0 announces nothing */
    req("CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(R.err, 0);
    assert_false(R.m[0].has_body);
    assert_true(R.m[0].done);
    assert_false(R.m[0].keep_alive);
    /* the contract for every request: has_body false means no BODY event */
    static const char *reqs[] = {
        "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof *reqs; i++) {
        req(reqs[i]);
        assert_int_equal(R.err, 0);
        assert_false(R.m[0].has_body);
        assert_int_equal(R.m[0].body_len, 0);
    }
}

/* RFC 9112 3.2: a Host whose value is not uri-host [":" port] is 400. */
static void test_host_value(void **s)
{
    (void)s;
    static const char *bad[] = {
        "a b", "a/b", "user@h", "h:x", "h:80:80", "h:-1", "[::1", "[]", "[::1]x", "[::1]:8a", "h%zz",
        "h%4", "h?q", "h#f", "h\"", "h<", "[::1]]", "h[", "h]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char in[256];
        snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", bad[i]);
        if (req_err(in) != SL_HTTP_E_HOST)
            fail_msg("Host '%s': %d, want E_HOST", bad[i], R.err);
        assert_int_equal(sl_http_error_status(R.err), 400);
        snprintf(in, sizeof in, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", bad[i]);
        if (req_err(in) != SL_HTTP_E_HOST)
            fail_msg("HTTP/1.0 Host '%s': %d, want E_HOST", bad[i], R.err);
    }
    static const char *ok[] = {
        "", "h", "localhost:8080", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:8080",
        "[v1.fe80::a+en1]", "xn--bcher-kva.example", "a_b~c.d-e", "h%41", "h:", "a!$&'()*+,;=b",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char in[256];
        snprintf(in, sizeof in, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", ok[i]);
        if (req_err(in))
            fail_msg("Host '%s' refused: %d", ok[i], R.err);
    }
}

/* A request line with a version we do not speak is 505 however it starts:
 * the HTTP/2 preface's "PRI" is no method http_parser knows, but the
 * version decides, at the line's end, whatever the split. */
static void test_version_before_method(void **s)
{
    (void)s;
    assert_int_equal(req_err("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), SL_HTTP_E_VERSION);
    assert_int_equal(sl_http_error_status(R.err), 505);
    assert_int_equal(req_err("BREW /pot HTTP/3.0\r\nHost: h\r\n\r\n"), SL_HTTP_E_VERSION);
    assert_int_equal(req_err("GET <> HTTP/2.0\r\nHost: h\r\n\r\n"), SL_HTTP_E_VERSION);
    assert_int_equal(req_err("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), SL_HTTP_E_VERSION);
    /* the method's own verdict stands for HTTP/1.x, also with bad bytes
     * after the line; a bad byte inside the line is a byte error */
    assert_int_equal(req_err("PRI * HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_E_METHOD);
    assert_int_equal(req_err("BREW / HTTP/1.1\r\nX\x01"), SL_HTTP_E_METHOD);
    assert_int_equal(req_err("BREW /\x01 HTTP/2.0\r\n"), SL_HTTP_E_HEADER_CHAR);
    assert_int_equal(req_err("GE( / HTTP/2.0\r\n\r\n"), SL_HTTP_E_VERSION);
    assert_int_equal(req_err("BREW / HTTX/1.1\r\n\r\n"), SL_HTTP_E_SYNTAX);
    /* an unfinished line: nothing yet; cut short by EOF: the method's verdict */
    assert_int_equal(req_err("PRI * HTTP/2"), 0);
    run_all(SL_HTTP_REQUEST, NULL, "PRI * HTTP/2", 12, true, 0, &R);
    assert_int_equal(R.err, SL_HTTP_E_METHOD);
    /* a refused line that never ends is bounded by max_head */
    static char big[20000];
    memset(big, 'a', sizeof big);
    memcpy(big, "BREW /", 6);
    assert_int_equal(req_err_n(big, sizeof big), SL_HTTP_E_HEAD_TOO_LARGE);
}

/* ------------------------------------------------------------ fuzz */

static const char *seeds[] = {
    "GET /a/b?c=d HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n",
    "POST /orders HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\nhello world",
    "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\n",
    ("GET / HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
     "DELETE /3 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"),
};
static const char *rseeds[] = {
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 404 Not Found\r\n\r\nnot found",
};

static size_t mutate(char *buf, size_t len, size_t cap, unsigned *seed)
{
    static const char special[] = "\r\n\0 \t:;,0f9-+xX\x7f\x80\xff\"aAzZ";
    int nmut = 1 + rand_r(seed) % 3;
    for (int k = 0; k < nmut && len > 0; k++) {
        size_t at = (size_t)rand_r(seed) % len;
        char c = rand_r(seed) % 2 ? special[rand_r(seed) % (sizeof special - 1)] : (char)rand_r(seed);
        int op = rand_r(seed) % 20;     /* 35% replace, 25% insert, 15% delete,
                                         * 15% duplicate, 10% truncate */
        switch (op < 7 ? 0 : op < 12 ? 1 : op < 15 ? 2 : op < 18 ? 3 : 4) {
        case 0: buf[at] = c; break;                                 /* replace */
        case 1:                                                     /* insert */
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = c;
                len++;
            }
            break;
        case 2:                                                     /* delete */
            memmove(buf + at, buf + at + 1, len - at - 1);
            len--;
            break;
        case 3: {                                                   /* duplicate a piece */
            size_t n = 1 + (size_t)rand_r(seed) % 16;
            if (at + n > len)
                n = len - at;
            if (len + n <= cap) {
                memmove(buf + at + n, buf + at, len - at);
                len += n;
            }
            break;
        }
        default: len = at; break;                                   /* truncate */
        }
    }
    return len;
}

static void test_fuzz(void **s)
{
    (void)s;
    unsigned seed = 20240601;
    static rec a, b;
    char buf[1024];
    int outcomes[2] = { 0, 0 };
    sl_http_limits lim = { .max_head = 256, .max_headers = 8, .max_body = 64 };
    for (int i = 0; i < 10000; i++) {
        bool response = i % 4 == 3;
        const char *src = response ? rseeds[i % 3] : seeds[i % 4];
        size_t len = strlen(src);
        memcpy(buf, src, len);
        len = mutate(buf, len, sizeof buf, &seed);
        sl_http_kind kind = response ? SL_HTTP_RESPONSE : SL_HTTP_REQUEST;
        const sl_http_limits *l = i % 3 ? NULL : &lim;
        unsigned split = (unsigned)i;
        run_ex(kind, l, buf, len, WHOLE, split, true, 0, &a);
        assert_true(a.err == 0 || defined_error(a.err));
        outcomes[a.err != 0]++;
        /* how the bytes arrive never changes the outcome */
        run_ex(kind, l, buf, len, i % 2 ? BYTES : RANDOM, split, true, 0, &b);
        normalize(&a);
        normalize(&b);
        if (memcmp(&a, &b, sizeof a) != 0) {
            fprintf(stderr, "fuzz %d: split changed the outcome (%d vs %d); input:\n", i, a.err, b.err);
            for (size_t k = 0; k < len; k++)
                fprintf(stderr, (unsigned char)buf[k] < 32 || (unsigned char)buf[k] > 126 ? "\\x%02x" : "%c",
                        (unsigned char)buf[k]);
            fprintf(stderr, "\n");
            fail();
        }
    }
    /* both outcomes are well represented */
    print_message("fuzz: %d parsed, %d refused\n", outcomes[0], outcomes[1]);
    assert_true(outcomes[0] > 1000);
    assert_true(outcomes[1] > 1000);
}

/* ------------------------------------------------------------ bench */

#include <time.h>

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* `test_http_parse bench [N]`: N pipelined requests (default 1M) fed in
 * 16 KiB reads, as a server would; prints ns per request. */
static int bench(long n, const char *req, const char *name)
{
    size_t rl = strlen(req), per = 16384 / rl, len = per * rl;
    char *buf = malloc(len);
    for (size_t i = 0; i < per; i++)
        memcpy(buf + i * rl, req, rl);
    sl_http_parser p;
    if (sl_http_parser_init(&p, SL_HTTP_REQUEST, NULL))
        return 1;
    long done = 0;
    uint64_t sink = 0;
    double t0 = now_ns();
    while (done < n) {
        const char *d = buf;
        size_t left = len, used;
        sl_http_str body;
        for (;;) {
            int ev = sl_http_parser_feed(&p, d, left, &used, &body);
            d += used, left -= used;
            if (ev == SL_HTTP_EV_NEED_MORE)
                break;
            if (ev < 0) {
                fprintf(stderr, "bench: %s\n", sl_http_error_str(ev));
                return 1;
            }
            if (ev == SL_HTTP_EV_HEAD)
                sink += p.msg.nheaders + p.msg.target.len;
            else if (ev == SL_HTTP_EV_BODY)
                sink += body.len;
            else if (ev == SL_HTTP_EV_DONE)
                done++;
        }
    }
    double dt = now_ns() - t0;
    printf("%-28s %ld requests of %zu bytes: %.1f ns/request, %.0f MB/s (%llu)\n", name, done, rl,
           dt / (double)done, (double)done * (double)rl / dt * 1e3, (unsigned long long)sink % 10);
    sl_http_parser_fini(&p);
    free(buf);
    return 0;
}

static int run_bench(long n)
{
    return bench(n, "GET /orders/123 HTTP/1.1\r\nHost: localhost:8080\r\n\r\n", "GET, 1 header") ||
           bench(n, "GET /stock/sku-1 HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: sluice-load/0.1\r\n"
                    "Accept: */*\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n"
                    "grpc-timeout: 250m\r\n\r\n", "GET, 5 headers") ||
           bench(n, "POST /orders HTTP/1.1\r\nHost: localhost:8080\r\nContent-Type: application/json\r\n"
                    "Content-Length: 44\r\n\r\n{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1250}",
                 "POST, 3 headers, 44 B body") ||
           bench(n, "POST /orders HTTP/1.1\r\nHost: localhost:8080\r\nTransfer-Encoding: chunked\r\n\r\n"
                    "2c\r\n{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1250}\r\n0\r\n\r\n",
                 "POST chunked, 44 B body");
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "bench") == 0)
        return run_bench(argc > 2 ? atol(argv[2]) : 1000000);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_events_and_lookup),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_pointers_stable),
        cmocka_unit_test(test_store_growth),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_expect_continue),
        cmocka_unit_test(test_other_methods),
        cmocka_unit_test(test_bad_method),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_bad_target_and_host),
        cmocka_unit_test(test_every_byte),
        cmocka_unit_test(test_smuggling),
        cmocka_unit_test(test_head_limit),
        cmocka_unit_test(test_header_count_limit),
        cmocka_unit_test(test_body_limit),
        cmocka_unit_test(test_many_repeats),
        cmocka_unit_test(test_http_parser_cap),
        cmocka_unit_test(test_blank_lines_then_eof),
        cmocka_unit_test(test_init_errors),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_response_basic),
        cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_response_until_close),
        cmocka_unit_test(test_response_errors),
        cmocka_unit_test(test_te_prefix_names),
        cmocka_unit_test(test_status_code_form),
        cmocka_unit_test(test_connect_with_body),
        cmocka_unit_test(test_host_value),
        cmocka_unit_test(test_version_before_method),
        cmocka_unit_test(test_fuzz),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
