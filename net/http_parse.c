/* http_parse.c: sl_http_parser over http_parser 2.9.4.
 *
 * http_parser drives the state machine and calls back; the callbacks copy
 * the head into a store and *pause* the parser at every event (head
 * complete, body piece, message complete), so that feed() returns one event
 * at a time with an exact count of the bytes used. Every byte that is not
 * body is also run through a small scanner after http_parser has seen it:
 * Debian builds http_parser non-strict, and the scanner is what rejects
 * bare CR/LF, control characters, obs-fold and malformed chunk lines.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <http_parser.h>
#include "http_parse.h"

#define HP(p) (&(p)->in_.hp)

enum { PH_IDLE, PH_HEAD, PH_BODY, PH_TRAILER, PH_CLOSED };
enum { CB_NONE, CB_FIELD, CB_VALUE, CB_SKIP };

/* Scanner states. Head mode (start line, header and trailer lines): */
enum { SC_MID, SC_CR, SC_LF, SC_ECR, SC_END };
/* Chunked mode (chunk-size lines and the CRLF after each chunk's data): */
enum { CK_HEX0 = 10, CK_HEX, CK_BWS, CK_EXT, CK_LF, CK_DCR, CK_DLF };

/* Byte classes for the head scanner; K_OK and K_WS (mid-line) are the
 * ones the tight loop passes over. */
enum { K_OK, K_WS, K_CR, K_LF, K_BAD, K_BAD8 };
static const uint8_t head_cls[256] = {
    [0 ... 8] = K_BAD, ['\t'] = K_WS, ['\n'] = K_LF, [11 ... 12] = K_BAD,
    ['\r'] = K_CR, [14 ... 31] = K_BAD, [' '] = K_WS, [127] = K_BAD,
};
/* The request line also refuses HTAB and 8-bit bytes. */
static const uint8_t reqline_cls[256] = {
    [0 ... 8] = K_BAD, ['\t'] = K_BAD8, ['\n'] = K_LF, [11 ... 12] = K_BAD,
    ['\r'] = K_CR, [14 ... 31] = K_BAD, [' '] = K_WS, [127] = K_BAD,
    [128 ... 255] = K_BAD8,
};

/* tchar (RFC 9110 5.6.2): field names, methods, transfer-codings. */
static const uint8_t tchar[256] = {
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1,
};

static inline unsigned char lower(unsigned char c)
{
    return (unsigned char)(c | ((unsigned)(c - 'A') < 26u ? 0x20 : 0));
}

static inline bool is_hex(unsigned char c)
{
    return (unsigned)(c - '0') < 10u || (unsigned)(lower(c) - 'a') < 6u;
}

bool sl_http_str_ieq(sl_http_str s, const char *name, size_t len)
{
    if (s.len != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (lower((unsigned char)s.ptr[i]) != lower((unsigned char)name[i]))
            return false;
    return true;
}

#define IEQ(s, lit) sl_http_str_ieq((s), "" lit, sizeof(lit) - 1)

const sl_http_header *sl_http_msg_header(const sl_http_msg *m, const char *name, size_t len)
{
    for (uint32_t i = 0; i < m->nheaders; i++)
        if (sl_http_str_ieq(m->headers[i].name, name, len))
            return &m->headers[i];
    return NULL;
}

/* ------------------------------------------------------------ errors */

int sl_http_error_status(int err)
{
    switch (err) {
    case SL_HTTP_E_METHOD:
    case SL_HTTP_E_CODING: return 501;
    case SL_HTTP_E_VERSION: return 505;
    case SL_HTTP_E_HEAD_TOO_LARGE:
    case SL_HTTP_E_TOO_MANY_HEADERS: return 431;
    case SL_HTTP_E_BODY_TOO_LARGE: return 413;
    case SL_HTTP_E_SYNTAX:
    case SL_HTTP_E_FRAMING:
    case SL_HTTP_E_CONTENT_LENGTH:
    case SL_HTTP_E_HEADER_CHAR:
    case SL_HTTP_E_OBS_FOLD:
    case SL_HTTP_E_CHUNK:
    case SL_HTTP_E_HOST:
    case SL_HTTP_E_TRUNCATED:
    case SL_HTTP_E_CLOSED: return 400;
    default: return 500;
    }
}

const char *sl_http_error_str(int err)
{
    switch (err) {
    case SL_HTTP_E_SYNTAX: return "malformed HTTP message";
    case SL_HTTP_E_METHOD: return "method not implemented";
    case SL_HTTP_E_VERSION: return "HTTP version not supported";
    case SL_HTTP_E_HEAD_TOO_LARGE: return "header section too large";
    case SL_HTTP_E_TOO_MANY_HEADERS: return "too many header fields";
    case SL_HTTP_E_BODY_TOO_LARGE: return "content too large";
    case SL_HTTP_E_FRAMING: return "conflicting or invalid Content-Length/Transfer-Encoding";
    case SL_HTTP_E_CODING: return "transfer coding not supported";
    case SL_HTTP_E_CONTENT_LENGTH: return "invalid Content-Length";
    case SL_HTTP_E_HEADER_CHAR: return "invalid character or line ending in header";
    case SL_HTTP_E_OBS_FOLD: return "obsolete line folding in header";
    case SL_HTTP_E_CHUNK: return "invalid chunked encoding";
    case SL_HTTP_E_HOST: return "missing or repeated Host header";
    case SL_HTTP_E_TRUNCATED: return "connection closed in the middle of a message";
    case SL_HTTP_E_CLOSED: return "data after the last message of the connection";
    case -ENOMEM: return "out of memory";
    default: return "unknown error";
    }
}

/* ------------------------------------------------------------ stores */

static int store_alloc(sl_http_store_ *s, uint32_t cap, uint32_t hcap)
{
    s->buf = malloc(cap);
    s->hdr = malloc((size_t)hcap * sizeof *s->hdr);
    if (!s->buf || !s->hdr) {
        free(s->buf);
        free(s->hdr);
        s->buf = NULL, s->hdr = NULL;
        return -ENOMEM;
    }
    s->cap = cap, s->hcap = hcap, s->used = 0, s->n = 0;
    return 0;
}

static void rebase(sl_http_str *s, const char *from, char *to)
{
    if (s->ptr)
        s->ptr = to + (s->ptr - from);
}

/* Makes room for `n` more bytes in the current store. Growing moves the
 * bytes, so every string already in the store is rebased; that is safe
 * because a store only grows before its strings are handed out (the head
 * store before HEAD, the trailer store before DONE). */
static int store_room(sl_http_parser *p, size_t n)
{
    sl_http_store_ *s = p->in_.cur;
    size_t need = (size_t)s->used + n;
    if (need <= s->cap)
        return 0;
    if (need > p->in_.lim.max_head)
        return SL_HTTP_E_HEAD_TOO_LARGE;
    size_t cap = s->cap ? s->cap : 256;
    while (cap < need)
        cap *= 2;
    if (cap > p->in_.lim.max_head)
        cap = p->in_.lim.max_head;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    if (s->used)
        memcpy(buf, s->buf, s->used);
    for (uint32_t i = 0; i < s->n; i++) {
        rebase(&s->hdr[i].name, s->buf, buf);
        rebase(&s->hdr[i].value, s->buf, buf);
    }
    if (s == &p->in_.head) {
        rebase(&p->msg.target, s->buf, buf);
        rebase(&p->msg.reason, s->buf, buf);
    }
    free(s->buf);
    s->buf = buf, s->cap = (uint32_t)cap;
    return 0;
}

/* Appends bytes to `str`, which must be the last string of the store. */
static int store_append(sl_http_parser *p, sl_http_str *str, const char *at, size_t n)
{
    int rc = store_room(p, n);
    if (rc)
        return rc;
    sl_http_store_ *s = p->in_.cur;
    if (!str->ptr)
        str->ptr = s->buf + s->used;
    memcpy(s->buf + s->used, at, n);
    s->used += (uint32_t)n, str->len += n;
    return 0;
}

/* A new header slot in the current store, growing its array if needed. */
static int store_new_header(sl_http_parser *p, sl_http_header **out)
{
    sl_http_store_ *s = p->in_.cur;
    if (s->n == s->hcap) {
        uint32_t hcap = s->hcap ? s->hcap * 2 : 4;
        if (hcap > p->in_.lim.max_headers)
            hcap = p->in_.lim.max_headers;
        sl_http_header *h = realloc(s->hdr, (size_t)hcap * sizeof *h);
        if (!h)
            return -ENOMEM;
        s->hdr = h, s->hcap = hcap;
    }
    sl_http_header *h = &s->hdr[s->n++];
    h->name = (sl_http_str){ s->buf ? s->buf + s->used : NULL, 0 };
    h->value = (sl_http_str){ NULL, 0 };
    *out = h;
    return 0;
}

/* ------------------------------------------------------------ header checks */

/* Content-Length = 1*DIGIT, at most INT64_MAX. */
static int parse_content_length(sl_http_str v, int64_t *out)
{
    uint64_t n = 0;
    if (v.len == 0)
        return SL_HTTP_E_CONTENT_LENGTH;
    for (size_t i = 0; i < v.len; i++) {
        unsigned d = (unsigned char)v.ptr[i] - '0';
        if (d > 9 || n > ((uint64_t)INT64_MAX - d) / 10)
            return SL_HTTP_E_CONTENT_LENGTH;
        n = n * 10 + d;
    }
    *out = (int64_t)n;
    return 0;
}

/* RFC 3986 reg-name bytes: unreserved and sub-delims ('%' is checked
 * apart); 2 marks what else an IP-literal may hold. */
static const uint8_t host_ch[256] = {
    ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
    ['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
    ['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1,
    ['*'] = 1, ['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1, [':'] = 2,
};

/* Host = uri-host [ ":" port ] (RFC 9112 3.2, RFC 3986 3.2.2): a reg-name
 * (pct-encoding included) or an IP-literal in brackets, then an optional
 * ":" and digits. Empty is valid (a target without authority). Lenient
 * inside the brackets (any IPv6 or IPvFuture character), strict about
 * what could change where the request goes: no '@', '/', '?', '#', space,
 * second port, or bracket out of place. */
static bool valid_host(sl_http_str v)
{
    const unsigned char *s = (const unsigned char *)v.ptr;
    size_t i = 0, n = v.len;
    if (n && s[0] == '[') {
        for (i = 1; i < n && s[i] != ']'; i++)
            if (!host_ch[s[i]])
                return false;
        if (i == n || i == 1)
            return false;
        i++;
    } else {
        for (; i < n && s[i] != ':'; i++) {
            if (s[i] == '%') {
                if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
                    return false;
                i += 2;
            } else if (host_ch[s[i]] != 1) {
                return false;
            }
        }
    }
    if (i < n && s[i++] != ':')
        return false;
    for (; i < n; i++)
        if ((unsigned)(s[i] - '0') > 9u)
            return false;
    return true;
}

/* Adds one Transfer-Encoding field line to the tally of codings: all field
 * lines together form one comma-separated list (RFC 9110 5.3). */
static void te_tally(sl_http_parser *p, sl_http_str v)
{
    size_t i = 0;
    do {
        size_t b = i, e;
        while (i < v.len && v.ptr[i] != ',')
            i++;
        e = i++;
        while (b < e && (v.ptr[b] == ' ' || v.ptr[b] == '\t'))
            b++;
        while (e > b && (v.ptr[e - 1] == ' ' || v.ptr[e - 1] == '\t'))
            e--;
        sl_http_str c = { v.ptr + b, e - b };
        bool token = c.len > 0;
        for (size_t k = 0; k < c.len && token; k++)
            token = tchar[(unsigned char)c.ptr[k]];
        if (!token) {
            p->in_.te_bad = true;   /* empty element, parameters, junk */
        } else if (IEQ(c, "chunked")) {
            p->in_.te_chunked++;
            p->in_.te_last_chunked = true;
        } else {
            p->in_.te_other = true;
            p->in_.te_last_chunked = false;
        }
    } while (i <= v.len);
}

/* Notes the fields that decide framing, keep-alive and expectations. Names
 * are compared by length first, then without case. */
static int classify_header(sl_http_parser *p, const sl_http_header *h)
{
    switch (h->name.len) {
    case 4:
        if (IEQ(h->name, "host")) {
            p->in_.host_count++;
            p->in_.host_bad |= !valid_host(h->value);
        }
        break;
    case 6:
        if (IEQ(h->name, "expect") && IEQ(h->value, "100-continue"))
            p->in_.expect_seen = true;
        break;
    case 14:
        if (IEQ(h->name, "content-length")) {
            p->in_.cl_count++;
            return parse_content_length(h->value, &p->in_.cl_value);
        }
        break;
    case 17:
        if (IEQ(h->name, "transfer-encoding")) {
            p->in_.te_count++;
            te_tally(p, h->value);
        }
        break;
    }
    return 0;
}

/* Ends the header being collected: trims OWS around the value, checks the
 * name is a token (no "Transfer-Encoding : chunked"), classifies it. */
static int finish_header(sl_http_parser *p)
{
    sl_http_store_ *s = p->in_.cur;
    sl_http_header *h = &s->hdr[s->n - 1];
    p->in_.last_cb = CB_NONE;
    if (!h->name.ptr || h->name.len == 0)
        return SL_HTTP_E_HEADER_CHAR;
    if (!h->value.ptr)
        h->value.ptr = h->name.ptr + h->name.len;
    while (h->value.len && (h->value.ptr[0] == ' ' || h->value.ptr[0] == '\t'))
        h->value.ptr++, h->value.len--;
    while (h->value.len &&
           (h->value.ptr[h->value.len - 1] == ' ' || h->value.ptr[h->value.len - 1] == '\t'))
        h->value.len--;
    for (size_t i = 0; i < h->name.len; i++)
        if (!tchar[(unsigned char)h->name.ptr[i]])
            return SL_HTTP_E_HEADER_CHAR;
    return p->in_.phase == PH_HEAD ? classify_header(p, h) : 0;
}

/* Decides chunked vs Content-Length (RFC 9112 6.1-6.3) and cross-checks
 * with what http_parser decided, so that the two can never frame the body
 * differently. */
static int check_framing(sl_http_parser *p, bool no_body)
{
    const http_parser *hp = HP(p);
    sl_http_msg *m = &p->msg;
    bool request = p->in_.kind == SL_HTTP_REQUEST;
    if (p->in_.te_count) {
        if (p->in_.cl_count || m->version_minor == 0)
            return SL_HTTP_E_FRAMING;
        if (p->in_.te_bad || p->in_.te_chunked > 1)
            return SL_HTTP_E_FRAMING;
        if (!p->in_.te_last_chunked && request)
            return SL_HTTP_E_FRAMING;
        if ((!p->in_.te_last_chunked || p->in_.te_other) && !no_body)
            return SL_HTTP_E_CODING;
        if (p->in_.te_last_chunked && !(hp->flags & F_CHUNKED))
            return SL_HTTP_E_FRAMING;
        m->chunked = p->in_.te_last_chunked;
    } else if (hp->uses_transfer_encoding || (hp->flags & F_CHUNKED)) {
        return SL_HTTP_E_FRAMING;
    }
    if (p->in_.cl_count) {
        if (p->in_.cl_count > 1 || (uint64_t)p->in_.cl_value != hp->content_length)
            return SL_HTTP_E_FRAMING;
        m->content_length = p->in_.cl_value;
    } else if (hp->flags & F_CONTENTLENGTH) {
        return SL_HTTP_E_FRAMING;
    }
    return 0;
}

static sl_http_method map_method(unsigned m)
{
    switch (m) {
    case HTTP_GET: return SL_HTTP_GET;
    case HTTP_HEAD: return SL_HTTP_HEAD;
    case HTTP_POST: return SL_HTTP_POST;
    case HTTP_PUT: return SL_HTTP_PUT;
    case HTTP_DELETE: return SL_HTTP_DELETE;
    case HTTP_PATCH: return SL_HTTP_PATCH;
    case HTTP_OPTIONS: return SL_HTTP_OPTIONS;
    case HTTP_TRACE: return SL_HTTP_TRACE;
    case HTTP_CONNECT: return SL_HTTP_CONNECT;
    default: return SL_HTTP_OTHER;
    }
}

/* A response that has no body whatever its headers say (RFC 9112 6.3). */
static bool response_without_body(const sl_http_parser *p)
{
    int st = p->msg.status;
    return p->in_.head_request || st / 100 == 1 || st == 204 || st == 304;
}

static bool decide_keep_alive(const sl_http_parser *p)
{
    const http_parser *hp = HP(p);
    const sl_http_msg *m = &p->msg;
    if (hp->flags & F_CONNECTION_CLOSE)
        return false;
    if (m->version_minor == 0 && !(hp->flags & F_CONNECTION_KEEP_ALIVE))
        return false;
    if (m->body_until_close || m->method == SL_HTTP_CONNECT || m->status == 101)
        return false;
    return true;
}

/* Everything known once the header section is complete: version, Host,
 * framing, body size, keep-alive. Fills p->msg. */
static int check_head(sl_http_parser *p)
{
    const http_parser *hp = HP(p);
    sl_http_msg *m = &p->msg;
    bool request = p->in_.kind == SL_HTTP_REQUEST;
    if (hp->http_major != 1)
        return SL_HTTP_E_VERSION;
    m->version_minor = hp->http_minor;
    m->headers = p->in_.head.hdr;
    m->nheaders = p->in_.head.n;
    if (request) {
        m->method = map_method(hp->method);
        m->method_name = http_method_str((enum http_method)hp->method);
        if (p->in_.host_count > 1 || (m->version_minor >= 1 && p->in_.host_count == 0) ||
            p->in_.host_bad)
            return SL_HTTP_E_HOST;
        /* CONNECT has no content (RFC 9110 9.3.6): what follows its head
         * is the tunnel, which http_parser does not parse. A request that
         * frames a body anyway would be read as content by another parser
         * and as tunnel bytes here: refused, like any ambiguous framing. */
        if (m->method == SL_HTTP_CONNECT && (p->in_.te_count || p->in_.cl_value > 0))
            return SL_HTTP_E_FRAMING;
    } else {
        m->status = hp->status_code;
    }
    bool no_body = !request && response_without_body(p);
    int rc = check_framing(p, no_body);
    if (rc)
        return rc;
    if (no_body)
        m->has_body = false;
    else if (m->chunked)
        m->has_body = true;
    else if (m->content_length >= 0)
        m->has_body = m->content_length > 0;
    else
        m->has_body = m->body_until_close = !request;
    if (m->has_body && m->content_length > 0 && !m->chunked &&
        (uint64_t)m->content_length > p->in_.lim.max_body)
        return SL_HTTP_E_BODY_TOO_LARGE;
    m->keep_alive = decide_keep_alive(p);
    m->expect_continue = request && m->version_minor >= 1 && p->in_.expect_seen;
    m->upgrade = hp->upgrade;
    return 0;
}

/* ------------------------------------------------------------ callbacks */

static int cb_fail(sl_http_parser *p, int err)
{
    if (!p->in_.err)
        p->in_.err = err;
    return -1;      /* http_parser stops with HPE_CB_*; feed() maps it back */
}

/* Data callbacks run at the end of a token or of the bytes given, so when
 * they run depends on how the input was split. They therefore never fail
 * on the input: problems are noted here, in header order, and reported
 * when the head (or trailer section) is complete, at a fixed byte. */
static void defer(sl_http_parser *p, int err)
{
    if (!p->in_.deferred)
        p->in_.deferred = err;
}

static int on_url(http_parser *hp, const char *at, size_t n)
{
    sl_http_parser *p = hp->data;
    int rc = store_append(p, &p->msg.target, at, n);
    return rc ? cb_fail(p, rc) : 0;
}

static int on_status(http_parser *hp, const char *at, size_t n)
{
    sl_http_parser *p = hp->data;
    int rc = store_append(p, &p->msg.reason, at, n);
    return rc ? cb_fail(p, rc) : 0;
}

static int on_header_field(http_parser *hp, const char *at, size_t n)
{
    sl_http_parser *p = hp->data;
    int rc = 0;
    if (p->in_.last_cb != CB_FIELD) {
        sl_http_header *h;
        if (p->in_.last_cb == CB_VALUE)
            defer(p, finish_header(p));
        p->in_.last_cb = CB_FIELD;
        if (p->in_.head.n + p->in_.trail.n >= p->in_.lim.max_headers) {
            defer(p, SL_HTTP_E_TOO_MANY_HEADERS);
            p->in_.last_cb = CB_SKIP;
        } else if ((rc = store_new_header(p, &h))) {
            return cb_fail(p, rc);
        }
    }
    if (p->in_.last_cb == CB_SKIP)
        return 0;
    sl_http_store_ *s = p->in_.cur;
    rc = store_append(p, &s->hdr[s->n - 1].name, at, n);
    return rc ? cb_fail(p, rc) : 0;
}

static int on_header_value(http_parser *hp, const char *at, size_t n)
{
    sl_http_parser *p = hp->data;
    sl_http_store_ *s = p->in_.cur;
    if (p->in_.last_cb == CB_SKIP)
        return 0;
    if (p->in_.last_cb == CB_FIELD && p->in_.phase == PH_HEAD) {
        /* The name is complete. http_parser 2.9.4 flags Transfer-Encoding
         * as soon as 17 bytes of a name match it ("Transfer-Encodings",
         * "Transfer-Encoding-Hint"), and would then refuse the request or
         * read a response until close: only the exact name may count. It
         * reads the flag only once the header section ends, after this. */
        if (IEQ(s->hdr[s->n - 1].name, "transfer-encoding"))
            p->in_.te_named = true;
        hp->uses_transfer_encoding = p->in_.te_named;
    }
    p->in_.last_cb = CB_VALUE;
    int rc = store_append(p, &s->hdr[s->n - 1].value, at, n);
    return rc ? cb_fail(p, rc) : 0;
}

/* Ends a header or trailer section: finishes the last field and reports
 * what the data callbacks noted. */
static int end_section(sl_http_parser *p)
{
    if (p->in_.last_cb == CB_FIELD || p->in_.last_cb == CB_VALUE)
        defer(p, finish_header(p));
    p->in_.last_cb = CB_NONE;
    return p->in_.deferred;
}

/* Head complete: validate, publish, pause. Returning 1 tells http_parser
 * there is no body (HEAD responses, 204, 304, 1xx). */
static int on_headers_complete(http_parser *hp)
{
    sl_http_parser *p = hp->data;
    int rc;
    if ((rc = end_section(p)) || (rc = check_head(p)))
        return cb_fail(p, rc);
    p->in_.event = SL_HTTP_EV_HEAD;
    http_parser_pause(hp, 1);
    return p->msg.has_body ? 0 : 1;
}

static int on_body(http_parser *hp, const char *at, size_t n)
{
    sl_http_parser *p = hp->data;
    p->msg.body_read += n;
    if (p->msg.body_read > p->in_.lim.max_body)     /* body read until close */
        return cb_fail(p, SL_HTTP_E_BODY_TOO_LARGE);
    p->in_.body = (sl_http_str){ at, n };
    p->in_.event = SL_HTTP_EV_BODY;
    http_parser_pause(hp, 1);
    return 0;
}

/* A chunk-size line was parsed: refuse a chunk that would pass max_body
 * before its data arrives; after the last chunk, pause so that the trailer
 * section starts a fresh step with the head byte budget. */
static int on_chunk_header(http_parser *hp)
{
    sl_http_parser *p = hp->data;
    uint64_t size = hp->content_length;
    if (size == 0) {
        p->in_.phase = PH_TRAILER;
        p->in_.cur = &p->in_.trail;
        http_parser_pause(hp, 1);
        return 0;
    }
    if (size > p->in_.lim.max_body - p->msg.body_read)
        return cb_fail(p, SL_HTTP_E_BODY_TOO_LARGE);
    return 0;
}

static int on_message_complete(http_parser *hp)
{
    sl_http_parser *p = hp->data;
    int rc = end_section(p);
    if (rc)
        return cb_fail(p, rc);
    p->in_.event = SL_HTTP_EV_DONE;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
    .on_chunk_header = on_chunk_header,
};

/* ------------------------------------------------------------ scanner */

/* The start line, which the non-strict http_parser checks loosely: a
 * request line must end in " HTTP/d.d" and hold no HTAB or 8-bit byte
 * (http_parser lets both into the target), a status line must begin with
 * "HTTP/d.d " and a status code of exactly three digits, 100 to 599,
 * followed by SP or the end of the line (http_parser takes "1", "099" and
 * "000000000204"). line1 keeps the last 9 bytes of a request line or the
 * first 13 of a status line, pushed a run of bytes at a time. */
static void line1_push(sl_http_parser *p, const unsigned char *b, size_t n)
{
    char *w = p->in_.line1;
    uint32_t have = p->in_.line1_len;
    if (!have && n)
        p->in_.line1_first = b[0];
    if (p->in_.kind == SL_HTTP_REQUEST) {
        if (n >= 9) {
            memcpy(w, b + n - 9, 9);
        } else if (n) {
            memmove(w, w + n, 9 - n);
            memcpy(w + 9 - n, b, n);
        }
    } else if (have < 13) {
        memcpy(w + have, b, n < 13 - have ? n : 13 - have);
    }
    p->in_.line1_len = have + (uint32_t)(n < 0x10000000 ? n : 0x10000000);
}

static int line1_check(const sl_http_parser *p)
{
    static const char req_tail[] = " HTTP/#.#", resp_head[] = "HTTP/#.# ###";
    bool request = p->in_.kind == SL_HTTP_REQUEST;
    const char *pat = request ? req_tail : resp_head, *l = p->in_.line1;
    size_t len = request ? 9 : 12;
    if (p->in_.line1_len < len)
        return SL_HTTP_E_SYNTAX;
    for (size_t i = 0; i < len; i++) {
        unsigned char x = (unsigned char)l[i];
        if (pat[i] == '#' ? (unsigned)(x - '0') > 9u : x != (unsigned char)pat[i])
            return SL_HTTP_E_SYNTAX;
    }
    if (request)    /* "PRI * HTTP/2.0" (the HTTP/2 preface) is 505, not 501 */
        return l[6] == '1' ? 0 : SL_HTTP_E_VERSION;
    if ((p->in_.line1_len > 12 && l[12] != ' ') || l[9] < '1' || l[9] > '5')
        return SL_HTTP_E_SYNTAX;
    return 0;
}

/* Whether 8 bytes hold one that the tight loop must stop at: below 0x20
 * (CTL, CR, LF, HTAB), DEL, or (request line) 8-bit. The classic
 * "has a byte less than n" bit trick; exact about whether, not where. */
static inline bool word_has_special(uint64_t x, bool eight_bit)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t del = x ^ (ones * 0x7f);
    uint64_t hit = ((x - ones * 0x20) & ~x) | ((del - ones) & ~del);
    return ((hit | (eight_bit ? x : 0)) & highs) != 0;
}

/* Head bytes, scanned *before* http_parser sees them and only up to the LF
 * that ends the head: CR only before LF, no bare LF, no CTL but HTAB, no
 * line that starts with SP/HTAB (obs-fold), a valid start line. Returns 0
 * or an error, and sets *ok to the bytes accepted (all, up to the end of
 * the head, or up to the bad byte), so that http_parser only ever runs on
 * accepted bytes. Ordinary bytes in the middle of a line take the tight
 * loop; only line ends and line starts take the state machine. */
static int scan_head(sl_http_parser *p, const unsigned char *s, size_t n, size_t *ok)
{
    int st = p->in_.scan, rc = 0;
    size_t i = 0;
    while (i < n && st != SC_END) {
        bool line1 = !p->in_.line1_done;
        const uint8_t *cls = line1 && p->in_.kind == SL_HTTP_REQUEST ? reqline_cls : head_cls;
        if (st == SC_MID) {
            size_t j = i;
            bool eight_bit = cls == reqline_cls;
            for (uint64_t x; j + 8 <= n; j += 8) {
                memcpy(&x, s + j, 8);
                if (word_has_special(x, eight_bit))
                    break;
            }
            while (j < n && cls[s[j]] <= K_WS)
                j++;
            if (line1)
                line1_push(p, s + i, j - i);
            if ((i = j) == n)
                break;
        }
        int k = cls[s[i]];
        if ((st == SC_CR || st == SC_ECR) && k != K_LF) {
            rc = SL_HTTP_E_HEADER_CHAR;     /* CR not followed by LF */
            break;
        }
        if (k == K_OK || k == K_WS) {       /* first byte of a line */
            if (st == SC_LF && k == K_WS) {
                rc = SL_HTTP_E_OBS_FOLD;
                break;
            }
            st = SC_MID;
            continue;                       /* the tight loop takes it */
        }
        if (k == K_CR) {
            if (line1 && p->in_.line1_len) {
                p->in_.line1_done = true;   /* the end of the start line */
                if ((rc = line1_check(p)))
                    break;
                st = SC_CR;
            } else {
                /* an empty line ends the head, unless it comes before the
                 * start line (tolerated there, as by http_parser) */
                st = st == SC_LF && !line1 ? SC_ECR : SC_CR;
            }
        } else if (k == K_LF && (st == SC_CR || st == SC_ECR)) {
            st = st == SC_ECR ? SC_END : SC_LF;
        } else {
            rc = k == K_BAD8 ? SL_HTTP_E_SYNTAX : SL_HTTP_E_HEADER_CHAR;
            break;
        }
        i++;
    }
    p->in_.scan = st;
    *ok = i;
    return rc;
}

/* Chunked framing bytes: chunk-size [BWS] [; ext...] CRLF, then after the
 * data exactly CRLF. Data bytes are never scanned. */
static int scan_chunked(sl_http_parser *p, const unsigned char *s, size_t n)
{
    int st = p->in_.scan;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        switch (st) {
        case CK_HEX0:
            if (!is_hex(c))
                return SL_HTTP_E_CHUNK;
            st = CK_HEX;
            break;
        case CK_HEX:
            if (is_hex(c))
                break;
            /* fall through */
        case CK_BWS:
            if (c == ' ' || c == '\t')
                st = CK_BWS;
            else if (c == ';')
                st = CK_EXT;
            else if (c == '\r')
                st = CK_LF;
            else
                return SL_HTTP_E_CHUNK;
            break;
        case CK_EXT:
            if (c == '\r')
                st = CK_LF;
            else if ((c < ' ' && c != '\t') || c == 0x7f)
                return SL_HTTP_E_CHUNK;
            break;
        case CK_LF:
            if (c != '\n')
                return SL_HTTP_E_CHUNK;
            st = CK_DCR;
            break;
        case CK_DCR:
            if (c != '\r')
                return SL_HTTP_E_CHUNK;
            st = CK_DLF;
            break;
        case CK_DLF:
            if (c != '\n')
                return SL_HTTP_E_CHUNK;
            st = CK_HEX0;
            break;
        default: return SL_HTTP_E_CHUNK;
        }
    }
    p->in_.scan = st;
    return 0;
}

static int scan(sl_http_parser *p, int phase, const char *s, size_t n)
{
    if (phase == PH_BODY && p->msg.chunked)
        return scan_chunked(p, (const unsigned char *)s, n);
    return 0;   /* identity body: every byte is data */
}

/* Scans s[0..n) except the body piece of this step, if any. */
static int scan_around_body(sl_http_parser *p, int phase, const char *s, size_t n)
{
    if (p->in_.event != SL_HTTP_EV_BODY)
        return scan(p, phase, s, n);
    const char *b = p->in_.body.ptr, *e = b + p->in_.body.len, *end = s + n;
    int rc = scan(p, phase, s, (size_t)(b - s));
    if (!rc && e < end)
        rc = scan(p, phase, e, (size_t)(end - e));
    return rc;
}

/* ------------------------------------------------------------ feed */

static int fail(sl_http_parser *p, int err)
{
    p->in_.err = err;
    p->in_.phase = PH_CLOSED;
    return err;
}

static int map_errno(sl_http_parser *p, enum http_errno e, int phase, int bad_byte)
{
    switch (e) {
    case HPE_CB_message_begin: case HPE_CB_url: case HPE_CB_header_field:
    case HPE_CB_header_value: case HPE_CB_headers_complete: case HPE_CB_body:
    case HPE_CB_message_complete: case HPE_CB_status: case HPE_CB_chunk_header:
    case HPE_CB_chunk_complete:
        return p->in_.err ? p->in_.err : SL_HTTP_E_SYNTAX;
    case HPE_HEADER_OVERFLOW: return SL_HTTP_E_HEAD_TOO_LARGE;
    case HPE_INVALID_METHOD:
        /* A token we do not know is a method we do not implement (501):
         * http_parser stops at its first byte that no method it knows has
         * there, or at the SP after a prefix of one ("O", "POS"). Anything
         * else (a leading SP, TLS hello, binary) is not HTTP at all (400). */
        if (bad_byte == ' ')
            return tchar[p->in_.line1_first] ? SL_HTTP_E_METHOD : SL_HTTP_E_SYNTAX;
        return bad_byte >= 0 && tchar[bad_byte] ? SL_HTTP_E_METHOD : SL_HTTP_E_SYNTAX;
    case HPE_INVALID_CONTENT_LENGTH:
        return phase == PH_BODY ? SL_HTTP_E_CHUNK : SL_HTTP_E_CONTENT_LENGTH;
    case HPE_INVALID_CHUNK_SIZE: return SL_HTTP_E_CHUNK;
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_TRANSFER_ENCODING: return SL_HTTP_E_FRAMING;
    case HPE_INVALID_HEADER_TOKEN:
    case HPE_LF_EXPECTED: return SL_HTTP_E_HEADER_CHAR;
    case HPE_CLOSED_CONNECTION: return SL_HTTP_E_CLOSED;
    case HPE_INVALID_EOF_STATE: return SL_HTTP_E_TRUNCATED;
    default: return SL_HTTP_E_SYNTAX;
    }
}

static void begin_message(sl_http_parser *p)
{
    memset(&p->msg, 0, sizeof p->msg);
    p->msg.content_length = -1;
    p->msg.headers = p->in_.head.hdr;
    p->in_.head.used = p->in_.head.n = 0;
    p->in_.trail.used = p->in_.trail.n = 0;
    p->in_.cur = &p->in_.head;
    p->in_.head_bytes = 0;
    p->in_.last_cb = CB_NONE;
    p->in_.deferred = 0;
    p->in_.scan = SC_MID;
    p->in_.line1_len = 0;
    p->in_.line1_done = false;
    p->in_.cl_value = 0;
    p->in_.cl_count = p->in_.te_count = p->in_.host_count = 0;
    p->in_.te_chunked = 0;
    p->in_.te_other = p->in_.te_bad = p->in_.te_last_chunked = false;
    p->in_.expect_seen = false;
    p->in_.te_named = p->in_.host_bad = false;
    p->in_.line_err = 0;
    p->in_.phase = PH_HEAD;
}

static int message_done(sl_http_parser *p)
{
    sl_http_msg *m = &p->msg;
    bool interim = p->in_.kind == SL_HTTP_RESPONSE && m->status / 100 == 1 && m->status != 101;
    p->in_.pending_done = false;
    m->trailers = p->in_.trail.hdr;
    m->ntrailers = p->in_.trail.n;
    if (!interim)
        p->in_.head_request = false;
    p->in_.phase = (m->keep_alive || interim) ? PH_IDLE : PH_CLOSED;
    return SL_HTTP_EV_DONE;
}

/* Runs http_parser over one byte that must be there (the LF that ends the
 * head, or the last body byte http_parser re-reads to end the message) and
 * notes a DONE it produces. */
static int step_one(sl_http_parser *p, const char *s, size_t *used)
{
    http_parser *hp = HP(p);
    p->in_.event = 0;
    http_parser_pause(hp, 0);
    *used = http_parser_execute(hp, &settings, s, 1);
    enum http_errno e = HTTP_PARSER_ERRNO(hp);
    if (e != HPE_OK && e != HPE_PAUSED)
        return fail(p, map_errno(p, e, p->in_.phase, -1));
    if (p->in_.event == SL_HTTP_EV_DONE)
        p->in_.pending_done = true;
    return 0;
}

/* The head is complete up to its last LF (already scanned), which
 * http_parser has not used yet: use it now, so that HEAD covers the whole
 * head and nothing after it. */
static int finish_head(sl_http_parser *p, const char *lf, size_t *used)
{
    int rc;
    p->in_.head_bytes++;
    if ((rc = step_one(p, lf, used)))
        return rc;
    p->in_.phase = PH_BODY;
    p->in_.scan = CK_HEX0;
    return SL_HTTP_EV_HEAD;
}

/* The request line that http_parser refused goes on to its end through the
 * scanner alone: there line1_check() says E_VERSION (or E_SYNTAX), which
 * wins, or the line is fine and http_parser's verdict stands. A bad byte
 * on the way is a byte-level error, as it always is. */
static int rest_of_bad_line(sl_http_parser *p, int serr, size_t n, size_t *used)
{
    if (p->in_.line1_done) {
        int rc = line1_check(p);
        return fail(p, rc ? rc : p->in_.line_err);
    }
    if (serr)
        return fail(p, serr);
    p->in_.head_bytes += (uint32_t)n;
    *used = n;
    return 0;
}

/* One http_parser_execute over at most `n` bytes, stopping at the first
 * event. Returns the event, 0 for none, or an error. */
static int step(sl_http_parser *p, const char *s, size_t n, size_t *used)
{
    http_parser *hp = HP(p);
    int phase = p->in_.phase, rc, serr = 0;
    bool head_mode = phase == PH_HEAD || phase == PH_TRAILER;
    bool line_open = phase == PH_HEAD && p->in_.kind == SL_HTTP_REQUEST && !p->in_.line1_done;
    *used = 0;
    if (head_mode) {
        uint32_t budget = p->in_.lim.max_head - p->in_.head_bytes;
        if (budget == 0)
            return fail(p, SL_HTTP_E_HEAD_TOO_LARGE);
        if (n > budget)
            n = budget;
        serr = scan_head(p, (const unsigned char *)s, n, &n);
        if (n == 0)     /* the first byte is bad: nothing for http_parser */
            return fail(p, serr ? serr : SL_HTTP_E_SYNTAX);
        if (p->in_.line_err)
            return rest_of_bad_line(p, serr, n, used);
    }
    p->in_.event = 0;
    http_parser_pause(hp, 0);
    size_t r = http_parser_execute(hp, &settings, s, n);
    enum http_errno e = HTTP_PARSER_ERRNO(hp);
    bool failed = e != HPE_OK && e != HPE_PAUSED;
    /* Body framing is scanned after http_parser: what was used, and, when
     * http_parser itself refused a byte, that byte, on which our verdict is
     * the more precise one. (A callback's error may come after http_parser
     * used the byte; then the callback's verdict stands.) */
    bool own = failed && (e < HPE_CB_message_begin || e > HPE_CB_chunk_complete);
    if (!head_mode && (rc = scan_around_body(p, phase, s, r + (own && r < n))))
        return fail(p, rc);
    if (own && line_open) {
        /* http_parser refused the request line ("PRI * HTTP/2.0" stops at
         * the method): the verdict waits for the line's end, where the
         * version is known, so that it does not depend on the split. */
        p->in_.line_err = map_errno(p, e, phase, r < n ? (unsigned char)s[r] : -1);
        return rest_of_bad_line(p, serr, n, used);
    }
    if (failed)
        return fail(p, map_errno(p, e, phase, r < n ? (unsigned char)s[r] : -1));
    if (serr)   /* http_parser took every byte before the bad one */
        return fail(p, serr);
    /* In head mode the scanner stopped at the LF that ends the section;
     * http_parser must end it there too (HEAD pauses on that LF, DONE
     * after it), or the two read the bytes differently. */
    if (head_mode && e == HPE_PAUSED &&
        r + (p->in_.event == SL_HTTP_EV_HEAD) != n)
        return fail(p, SL_HTTP_E_SYNTAX);
    if (head_mode)
        p->in_.head_bytes += (uint32_t)r;
    *used = r;
    if (e == HPE_OK)
        return 0;
    size_t more = 0;
    switch (p->in_.event) {
    case SL_HTTP_EV_HEAD:
        rc = finish_head(p, s + r, &more);
        *used += more;
        return rc;
    case SL_HTTP_EV_BODY:
        /* At the end of a Content-Length body http_parser hands out the
         * last byte but leaves it unused, to end the message on it. */
        if (p->in_.body.ptr + p->in_.body.len > s + r) {
            sl_http_str body = p->in_.body;
            if ((rc = step_one(p, s + r, &more)))
                return rc;
            *used += more;
            p->in_.body = body;
        }
        return SL_HTTP_EV_BODY;
    case SL_HTTP_EV_DONE:
        return SL_HTTP_EV_DONE;
    default:    /* paused after the last chunk: trailers follow */
        p->in_.scan = SC_LF;
        return 0;
    }
}

int sl_http_parser_feed(sl_http_parser *p, const char *data, size_t len, size_t *consumed,
                        sl_http_str *body)
{
    size_t off = 0;
    int rc = 0;
    *consumed = 0;
    if (body)
        *body = (sl_http_str){ NULL, 0 };
    if (p->in_.err)
        return p->in_.err;
    if (p->in_.pending_done)
        return message_done(p);
    while (off < len && rc == 0) {
        size_t used;
        if (p->in_.phase == PH_CLOSED) {
            *consumed = off;
            return fail(p, SL_HTTP_E_CLOSED);
        }
        if (p->in_.phase == PH_IDLE)
            begin_message(p);
        rc = step(p, data + off, len - off, &used);
        off += used;
    }
    *consumed = off;
    if (rc == SL_HTTP_EV_BODY && body)
        *body = p->in_.body;
    if (rc == SL_HTTP_EV_DONE)
        return message_done(p);
    return rc;
}

int sl_http_parser_finish(sl_http_parser *p)
{
    http_parser *hp = HP(p);
    if (p->in_.err)
        return p->in_.err;
    if (p->in_.pending_done)
        return message_done(p);
    if (p->in_.phase == PH_IDLE || p->in_.phase == PH_CLOSED) {
        p->in_.phase = PH_CLOSED;
        return SL_HTTP_EV_NEED_MORE;
    }
    if (p->in_.line_err)    /* a refused request line, cut short */
        return fail(p, p->in_.line_err);
    p->in_.event = 0;
    http_parser_pause(hp, 0);
    http_parser_execute(hp, &settings, NULL, 0);
    enum http_errno e = HTTP_PARSER_ERRNO(hp);
    if ((e == HPE_OK || e == HPE_PAUSED) && p->in_.event == SL_HTTP_EV_DONE) {
        message_done(p);
        p->in_.phase = PH_CLOSED;
        return SL_HTTP_EV_DONE;
    }
    if (e == HPE_OK && p->in_.event == 0) {
        p->in_.phase = PH_CLOSED;   /* only empty lines since the last message */
        return SL_HTTP_EV_NEED_MORE;
    }
    return fail(p, SL_HTTP_E_TRUNCATED);
}

void sl_http_parser_expect_head_response(sl_http_parser *p)
{
    p->in_.head_request = true;
}

/* ------------------------------------------------------------ life cycle */

int sl_http_parser_init(sl_http_parser *p, sl_http_kind kind, const sl_http_limits *limits)
{
    sl_http_limits lim = limits ? *limits : (sl_http_limits){ 0, 0, 0 };
    memset(p, 0, sizeof *p);
    if (kind != SL_HTTP_REQUEST && kind != SL_HTTP_RESPONSE)
        return -EINVAL;
    if (!lim.max_head)
        lim.max_head = SL_HTTP_DEFAULT_MAX_HEAD;
    if (!lim.max_headers)
        lim.max_headers = SL_HTTP_DEFAULT_MAX_HEADERS;
    if (!lim.max_body)
        lim.max_body = SL_HTTP_DEFAULT_MAX_BODY;
    if (lim.max_head > (1u << 30) || lim.max_headers > (1u << 20))
        return -EINVAL;
    p->in_.lim = lim;
    p->in_.kind = kind;
    uint32_t cap = lim.max_head < 1024 ? lim.max_head : 1024;
    uint32_t hcap = lim.max_headers < 16 ? lim.max_headers : 16;
    if (store_alloc(&p->in_.head, cap, hcap))
        return -ENOMEM;
    sl_http_parser_reset(p);
    return 0;
}

void sl_http_parser_reset(sl_http_parser *p)
{
    http_parser *hp = HP(p);
    http_parser_init(hp, p->in_.kind == SL_HTTP_REQUEST ? HTTP_REQUEST : HTTP_RESPONSE);
    hp->data = p;
    memset(&p->msg, 0, sizeof p->msg);
    p->msg.content_length = -1;
    p->in_.cur = &p->in_.head;
    p->in_.phase = PH_IDLE;
    p->in_.err = 0;
    p->in_.event = 0;
    p->in_.pending_done = false;
    p->in_.head_request = false;
}

void sl_http_parser_fini(sl_http_parser *p)
{
    free(p->in_.head.buf);
    free(p->in_.head.hdr);
    free(p->in_.trail.buf);
    free(p->in_.trail.hdr);
    p->in_.head = (sl_http_store_){ 0 };
    p->in_.trail = (sl_http_store_){ 0 };
    p->in_.err = SL_HTTP_E_CLOSED;
    p->in_.phase = PH_CLOSED;
}
