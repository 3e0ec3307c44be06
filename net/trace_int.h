/* trace_int.h: what the server, the client and the tracer share of spans
 * (private). The hooks are one call where a request or a call starts and
 * one where it ends; they do nothing more unless the trace is sampled and
 * a tracer exports. */
#ifndef SL_TRACE_INT_H
#define SL_TRACE_INT_H
#include <stdbool.h>
#include <stdint.h>
#include "sl_tracer.h"
#include "sl_tracestate.h"
#include "sl_wire.h"

struct sl_http_req;
struct evbuffer;

enum { SL__SPAN_SERVER = 2, SL__SPAN_CLIENT = 3 };   /* OTLP's SpanKind */

/* A finished span as queued for export. */
typedef struct sl__span {
    uint8_t trace_id[16], span_id[8], parent_id[8];
    bool has_parent;
    uint8_t kind;
    uint16_t peer_port;            /* server: the client's port */
    int status;                    /* HTTP status, 0 if none */
    int err;                       /* a call's error (-errno), 0 if none */
    int cause;                     /* sl_cause of the context, at the end */
    bool has_left;
    int64_t left_ms;               /* deadline left at the end */
    uint64_t start_ns, end_ns;     /* Unix time */
    char method[16];
    char route[96];                /* server: the pattern; client: the path */
    char peer[64];                 /* server: client IPv4; client: the replica */
    char cause_hdr[SL_CAUSE_HDR_MAX];  /* the sluice-cause of the answer (server: sent; client: received, well formed), or "" */
    char tracestate[SL_TRACESTATE_MAX + 1];
} sl__span;

/* Does tr export at all (endpoint set)? */
bool sl__tracer_exports(const sl_tracer *tr);

/* Queues a copy of *sp, or counts it dropped. Any thread. */
void sl__tracer_push(sl_tracer *tr, const sl__span *sp);


/* Unix time of a moment of sl_now_ns()'s clock. */
uint64_t sl__unix_ns_of(uint64_t mono_ns);

/* ---- the server (trace_hook.c) -------------------------------------------------- */

/* After routing: the request's trace (req->trace) from its traceparent,
 * or a fresh one; its own span-id; the sampler's flag. */
void sl__trace_req_begin(struct sl_http_req *req);

/* The request's context: its trace, deadline and (with a valid
 * traceparent) the tracestate received. As sl_ctx_with_trace_deadline. */
int sl__trace_req_ctx(struct sl_http_req *req);

/* The request was answered: its span, if sampled and exported. */
void sl__trace_req_end(struct sl_http_req *req);

/* ---- the client (trace_hook.c) -------------------------------------------------- */

typedef struct sl__call_span {
    sl_traceparent tp;             /* sent: the call's own span */
    uint8_t parent_id[8];
    bool has_parent, on;           /* on: sampled and exported: record at the end */
    uint64_t t_start, deadline;
} sl__call_span;

/* Fills sp for a call made under ctx (may be NULL): a child of ctx's
 * trace or a fresh sampled-or-not trace. Returns ctx's tracestate (to
 * send; NULL: none) and its length in *ts_len. */
const char *sl__trace_call_begin(sl_tracer *tr, sl_ctx *ctx, sl__call_span *sp, size_t *ts_len);

/* The call ended with rc (and status when rc is 0). Records its span if
 * sp->on, then clears on (a second end does nothing). line: the request
 * line ("POST /charge HTTP/1.1"), peer: the replica, tracestate: what was
 * sent (NULL: none), cause: the answer's well-formed sluice-cause value
 * (cause_len bytes; NULL: none), ctx: the caller's context, for its cause
 * (may be NULL). */
void sl__trace_call_end(sl_tracer *tr, sl__call_span *sp, int rc, int status, const char *line,
                        const char *peer, const char *tracestate, const char *cause, size_t cause_len,
                        sl_ctx *ctx);

/* ---- OTLP (otlp.c) ----------------------------------------------------------------- */

/* The OTLP/JSON body for n spans (malloc'd, NUL-terminated), or NULL. */
char *sl__otlp_json(const sl__span *spans, size_t n, const char *service_name);

/* A parsed endpoint: host, port, and the path to POST to. */
typedef struct sl__otlp_target {
    char host[256], port[8], path[256], hosthdr[272];
} sl__otlp_target;

/* Parses "http://HOST:PORT[/base]" into t (path: base + "/v1/traces").
 * Returns 0 or -EINVAL. */
int sl__otlp_target_parse(const char *endpoint, sl__otlp_target *t);

/* POSTs body to t within timeout_ms. Returns the HTTP status (any), or
 * -errno: -ETIMEDOUT, -ECONNREFUSED, -EPROTO, -ENOENT (no such host)... */
int sl__otlp_post(const sl__otlp_target *t, const char *body, size_t len, uint32_t timeout_ms);

#endif
