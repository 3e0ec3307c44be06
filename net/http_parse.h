/* http_parse.h: incremental HTTP/1.1 request and response parsing (internal).
 *
 * A thin layer over Debian's http_parser 2.9.4 so that the server and the
 * client never see that library and it can be swapped later. The caller owns
 * the bytes: it passes whatever it has read (a libevent evbuffer segment, one
 * byte, or several pipelined messages at once) to sl_http_parser_feed(),
 * which returns at most one event per call and says how many bytes it used.
 * The caller drops those bytes and calls again with the rest:
 *
 *     for (;;) {
 *         int ev = sl_http_parser_feed(p, buf, len, &used, &body);
 *         buf += used, len -= used;           // or evbuffer_drain(in, used)
 *         if (ev == SL_HTTP_EV_NEED_MORE) break;          // read more bytes
 *         if (ev < 0) { answer sl_http_error_status(ev) and close; break; }
 *         if (ev == SL_HTTP_EV_HEAD) route p->msg (method, target, headers)
 *         if (ev == SL_HTTP_EV_BODY) consume body.ptr/body.len
 *         if (ev == SL_HTTP_EV_DONE) the message is complete
 *     }
 *
 * Events of one message: HEAD, then zero or more BODY (the body already
 * de-chunked; a piece points into the caller's bytes, which are never copied),
 * then DONE. The head (target, reason, header names and values, trailers) is
 * copied into a store per parser (one for the head, one for trailers, so
 * trailers never move the head); stores grow on demand up to the limits and
 * are kept for the next message, so a connection in steady state allocates
 * nothing per message or per header.
 *
 * How the bytes are split never changes the outcome: the same events with
 * the same heads, and the same error code, whether a message comes whole,
 * byte by byte or in any pieces (the tests check this, fuzz included). The
 * one thing that does vary is how much of a failing message's body was
 * handed out before its error. To get there, field-level errors (too many
 * fields, a bad field name, a bad Content-Length) are reported when the
 * header (or trailer) section ends, which max_head bounds, not at the
 * offending byte; byte-level errors (NUL, bare LF, ...) at the byte.
 *
 * Framing rules enforced here (request smuggling / response splitting). A
 * message whose framing two HTTP implementations could read differently is
 * rejected, never repaired, because a front proxy that reads it one way and
 * this parser the other would let a client hide a request inside another.
 * Debian builds http_parser with HTTP_PARSER_STRICT=0, which turns several of
 * its checks off; this layer restores them:
 *  - Content-Length and Transfer-Encoding together: 400 (SL_HTTP_E_FRAMING).
 *  - Two Content-Length field lines, equal or not: 400 (SL_HTTP_E_FRAMING);
 *    a list value ("5, 5") or anything but 1*DIGIT: 400 (E_CONTENT_LENGTH).
 *  - Transfer-Encoding (all its field lines as one list) must be exactly
 *    "chunked" (any case, OWS allowed). "chunked" twice, empty elements,
 *    parameters, "chunked" not last, or (requests) no "chunked": 400
 *    (E_FRAMING, RFC 9112 6.3); a valid list with another coding before
 *    "chunked" ("gzip, chunked"), or a response whose coding we cannot undo:
 *    501 (E_CODING). Transfer-Encoding in an HTTP/1.0 message: 400.
 *  - Our reading of Content-Length / Transfer-Encoding is cross-checked with
 *    http_parser's; any disagreement is E_FRAMING. Only the exact field
 *    name counts ("Transfer-Encodings: x" is an ordinary field, although
 *    http_parser flags any name that starts with "Transfer-Encoding").
 *  - CONNECT has no content: one with Transfer-Encoding or a non-zero
 *    Content-Length is E_FRAMING (the bytes after its head are the tunnel).
 *  - Message head (start line, header and trailer lines): CR must be followed
 *    by LF, bare LF is rejected, control characters other than HTAB (NUL,
 *    DEL, ...) are rejected (E_HEADER_CHAR); a line that starts with SP/HTAB
 *    (obs-fold) is rejected (E_OBS_FOLD); a field name must be a token, so
 *    "Transfer-Encoding : chunked" is rejected (E_HEADER_CHAR).
 *  - Start line: a request line must end in " HTTP/<digit>.<digit>", a
 *    status line start with "HTTP/<digit>.<digit> " (http_parser would take
 *    "HXYZ/1.1") and a status code of exactly 3 digits, 100-599, followed
 *    by SP or the line's end ("1", "099", "0204": E_SYNTAX); the request
 *    target has no control characters, spaces or non-ASCII bytes
 *    (E_SYNTAX). HTTP/0.9 requests are E_SYNTAX.
 *  - Chunked framing: chunk-size is hex, optionally followed by BWS and
 *    ";"-extensions of visible characters; every line ends in CRLF and the
 *    chunk data is followed by exactly CRLF (E_CHUNK); a chunk size that
 *    overflows 64 bits is E_CHUNK, one that would pass max_body is 413.
 *  - HTTP version: 1.x only; another major (HTTP/2.0) is 505. For requests
 *    the version is judged at the end of the request line, before what
 *    http_parser said of the method or target: the HTTP/2 preface
 *    "PRI * HTTP/2.0" is 505, not 501, however the bytes are split.
 *  - Requests: HTTP/1.1 needs exactly one Host, HTTP/1.0 at most one, and
 *    its value must be uri-host [":" port] (E_HOST, RFC 9112 3.2; empty is
 *    valid).
 *  - After a message that ends the connection (keep_alive false, CONNECT,
 *    101 Switching Protocols) no further bytes are parsed (E_CLOSED): they
 *    belong to no HTTP message.
 *
 * Not thread-safe: a parser belongs to one connection and so to one reactor.
 */
#ifndef SL_HTTP_PARSE_H
#define SL_HTTP_PARSE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <http_parser.h>

typedef enum sl_http_kind { SL_HTTP_REQUEST = 1, SL_HTTP_RESPONSE = 2 } sl_http_kind;

/* What sl_http_parser_feed() returns when it does not fail. */
enum sl_http_event {
    SL_HTTP_EV_NEED_MORE = 0,   /* every byte given was used; read more */
    SL_HTTP_EV_HEAD = 1,        /* p->msg holds a complete head */
    SL_HTTP_EV_BODY = 2,        /* *body holds the next piece of body */
    SL_HTTP_EV_DONE = 3,        /* the message is complete (trailers in msg) */
};

/* Parse errors: negative, apart from the errno range, each with the HTTP
 * status a server answers (sl_http_error_status) and a short static message
 * (sl_http_error_str). A client treats any of them as a bad gateway. */
enum sl_http_error {
    SL_HTTP_E_SYNTAX = -1001,          /* 400 malformed start line or head */
    SL_HTTP_E_METHOD = -1002,          /* 501 unknown method token */
    SL_HTTP_E_VERSION = -1003,         /* 505 not HTTP/1.x */
    SL_HTTP_E_HEAD_TOO_LARGE = -1004,  /* 431 start line + headers > max_head */
    SL_HTTP_E_TOO_MANY_HEADERS = -1005,/* 431 more than max_headers lines */
    SL_HTTP_E_BODY_TOO_LARGE = -1006,  /* 413 body > max_body */
    SL_HTTP_E_FRAMING = -1007,         /* 400 ambiguous CL/TE framing */
    SL_HTTP_E_CODING = -1008,          /* 501 transfer-coding not supported */
    SL_HTTP_E_CONTENT_LENGTH = -1009,  /* 400 Content-Length not 1*DIGIT */
    SL_HTTP_E_HEADER_CHAR = -1010,     /* 400 NUL/CTL, bare CR or LF, bad name */
    SL_HTTP_E_OBS_FOLD = -1011,        /* 400 obsolete line folding */
    SL_HTTP_E_CHUNK = -1012,           /* 400 bad chunk size line or CRLF */
    SL_HTTP_E_HOST = -1013,            /* 400 missing or repeated Host */
    SL_HTTP_E_TRUNCATED = -1014,       /* 400 EOF in the middle of a message */
    SL_HTTP_E_CLOSED = -1015,          /* 400 bytes after the last message */
};

/* HTTP/1.1 methods that services route on; everything else http_parser
 * knows (WebDAV etc.) is SL_HTTP_OTHER with its name in msg.method_name. */
typedef enum sl_http_method {
    SL_HTTP_OTHER = 0, SL_HTTP_GET, SL_HTTP_HEAD, SL_HTTP_POST, SL_HTTP_PUT,
    SL_HTTP_DELETE, SL_HTTP_PATCH, SL_HTTP_OPTIONS, SL_HTTP_TRACE,
    SL_HTTP_CONNECT,
} sl_http_method;

/* A byte string that is not NUL-terminated. */
typedef struct sl_http_str {
    const char *ptr;
    size_t len;
} sl_http_str;

typedef struct sl_http_header {
    sl_http_str name, value;    /* value without leading/trailing OWS */
} sl_http_header;

/* Limits; a zero field takes the default. */
typedef struct sl_http_limits {
    uint32_t max_head;      /* start line + header section bytes, CRLFs
                             * included; trailers count against the same
                             * budget (default 16 KiB; http_parser itself
                             * stops at 80 KiB) -> 431 */
    uint32_t max_headers;   /* header + trailer field lines (default 100) -> 431 */
    uint64_t max_body;      /* body bytes after de-chunking (default 1 MiB;
                             * UINT64_MAX: no limit) -> 413 */
} sl_http_limits;

#define SL_HTTP_DEFAULT_MAX_HEAD (16u * 1024)
#define SL_HTTP_DEFAULT_MAX_HEADERS 100u
#define SL_HTTP_DEFAULT_MAX_BODY (1024u * 1024)

/* The message being parsed. Every sl_http_str in it points into the
 * parser's arena and stays valid from the HEAD event until the next call of
 * sl_http_parser_feed() after DONE (or reset/fini): a server that pipelines
 * copies what it keeps before it parses the next request. */
typedef struct sl_http_msg {
    sl_http_method method;      /* requests */
    const char *method_name;    /* requests: static, NUL-terminated ("GET") */
    sl_http_str target;         /* requests: request-target as sent */
    int status;                 /* responses: 100..999 */
    sl_http_str reason;         /* responses: reason phrase (may be empty) */
    int version_minor;          /* HTTP/1.<minor>; major is always 1 */
    sl_http_header *headers;
    uint32_t nheaders;
    uint32_t ntrailers;         /* set at DONE, for chunked messages */
    sl_http_header *trailers;
    int64_t content_length;     /* -1: no Content-Length field */
    uint64_t body_read;         /* body bytes delivered so far */
    bool has_body;              /* BODY events may follow the HEAD */
    bool chunked;               /* Transfer-Encoding: chunked */
    bool body_until_close;      /* response body ends when the peer closes */
    bool keep_alive;            /* the connection may carry another message */
    bool expect_continue;       /* request: HTTP/1.1 "Expect: 100-continue" */
    bool upgrade;               /* Upgrade+Connection: upgrade, CONNECT, or
                                 * a 101 response: a server that does not
                                 * switch may ignore it for requests */
} sl_http_msg;

/* Private: a growable copy of head strings and the header slots. */
typedef struct sl_http_store_ {
    char *buf;
    sl_http_header *hdr;
    uint32_t cap, used, hcap, n;
} sl_http_store_;

/* A parser. Embed it anywhere; every field but msg is private. */
typedef struct sl_http_parser {
    sl_http_msg msg;
    struct {
        http_parser hp;                     /* Debian's, embedded: this header is
                                             * private to net/ (issue 19: no bytes
                                             * read through a cast) */
        sl_http_limits lim;
        sl_http_store_ head, trail, *cur;   /* trailers never move the head */
        sl_http_str body;                   /* set by the body callback */
        uint32_t head_bytes;                /* head + trailer bytes so far */
        int kind, phase, event, err, deferred, last_cb, scan;
        char line1[13];                     /* start line: see line1_push() */
        unsigned char line1_first;          /* its first byte */
        uint32_t line1_len;
        bool line1_done;
        int64_t cl_value;
        uint32_t cl_count, te_count, host_count, te_chunked;   /* no wrap */
        bool te_other, te_bad, te_last_chunked;
        bool head_request, pending_done, expect_seen, te_named, host_bad;
        int line_err;                       /* see step() */
    } in_;
} sl_http_parser;

/* Prepares `p` to parse requests (SL_HTTP_REQUEST, for a server) or
 * responses (SL_HTTP_RESPONSE, for a client) of one connection, with
 * `limits` (NULL or zero fields: defaults; copied). Allocates a small arena
 * (1 KiB + 16 header slots) that grows up to the limits. Returns 0; -EINVAL
 * for another kind or a max_head/max_headers above 1 GiB/1 M; -ENOMEM. The
 * caller frees it with sl_http_parser_fini(). */
int sl_http_parser_init(sl_http_parser *p, sl_http_kind kind, const sl_http_limits *limits);

/* Frees what init allocated. Safe on a parser that init failed on or that
 * was zeroed, and twice. */
void sl_http_parser_fini(sl_http_parser *p);

/* Forgets the current message and any error, as for a new connection;
 * keeps the arena. */
void sl_http_parser_reset(sl_http_parser *p);

/* Parses up to `len` bytes of `data`, stopping after the first event. Sets
 * *consumed to the bytes used (0..len): the caller must not pass them again
 * and passes the rest, followed by newer bytes, on the next call. Returns:
 *  SL_HTTP_EV_NEED_MORE  all `len` bytes used, no event (give more bytes);
 *  SL_HTTP_EV_HEAD       p->msg holds method/target or status, version,
 *                        headers, content_length, keep_alive, has_body...;
 *                        checked against the limits, so a too large
 *                        Content-Length fails here, before any body byte;
 *  SL_HTTP_EV_BODY       *body (if not NULL) points to body bytes inside
 *                        data[0..*consumed); the caller consumes them before
 *                        it frees or reuses its buffer;
 *  SL_HTTP_EV_DONE       the message ended (may use 0 bytes); p->msg keeps
 *                        its head and now its trailers; after a message with
 *                        keep_alive false the parser takes no more bytes;
 *  a negative SL_HTTP_E_* (see the list at the top and the enum) when the
 *  bytes are not an acceptable message, or -ENOMEM when the arena cannot
 *  grow. Errors are sticky: every later call returns the same error until
 *  reset. After an error p->msg holds what was parsed so far, for logs. */
int sl_http_parser_feed(sl_http_parser *p, const char *data, size_t len, size_t *consumed,
                        sl_http_str *body);

/* Tells the parser that the peer closed the connection (EOF). Returns
 * SL_HTTP_EV_DONE when that ends a response read until close (and nothing
 * more is accepted), SL_HTTP_EV_NEED_MORE (0) when no message was in
 * progress (a clean close), SL_HTTP_E_TRUNCATED when one was cut short, or
 * the sticky error. */
int sl_http_parser_finish(sl_http_parser *p);

/* Response parsers: the response to come (or the one whose head has not
 * been parsed yet) answers a HEAD request, so it has no body whatever its
 * Content-Length or Transfer-Encoding say. Holds across 1xx interim
 * responses and is cleared by the final response's DONE. */
void sl_http_parser_expect_head_response(sl_http_parser *p);

/* The HTTP status a server answers for a parse error `err` (400, 413, 431,
 * 501, 505; 500 for -ENOMEM or an unknown value). */
int sl_http_error_status(int err);

/* A short static English description of `err` ("malformed request", ...). */
const char *sl_http_error_str(int err);

/* Compares `s` with the `len` bytes of `name`, ignoring ASCII case. */
bool sl_http_str_ieq(sl_http_str s, const char *name, size_t len);

/* The first header of `m` named `name` (`len` bytes, any case), or NULL. */
const sl_http_header *sl_http_msg_header(const sl_http_msg *m, const char *name, size_t len);

/* Same, for a string literal, with its length computed at compile time. */
#define SL_HTTP_HEADER(m, lit) sl_http_msg_header((m), "" lit, sizeof(lit) - 1)

#endif
