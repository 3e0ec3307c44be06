/* trace_hook.c: where requests and calls meet the trace: the traceparent
 * and tracestate read and forwarded, the sampling decision, and the spans
 * recorded at the end. The common case (not sampled, or no exporter) costs
 * a parse, one random span-id and a flag test. */
#include <arpa/inet.h>
#include <stddef.h>
#include <string.h>
#include "server_int.h"
#include "trace_int.h"

/* ---- the server ---------------------------------------------------------------------- */

void sl__trace_req_begin(sl_http_req *req)
{
    sl_tracer *tr = req->sr->srv->o.tracer;
    size_t len;
    const char *h = sl_http_req_header(req, "traceparent", &len);
    sl_traceparent in;
    if (h && sl_traceparent_parse(h, len, &in) == 0) {
        /* the request's own span, a child of the caller's; of the flags
         * only `sampled` is known to us, and it is the sampler's to say */
        sl_traceparent_child(&in, &req->trace);
        memcpy(req->span_parent, in.span_id, 8);
        req->span_has_parent = true;
        req->trace.flags = sl_tracer_sample(tr, &in, in.trace_id) ? 1 : 0;
    } else {
        sl_traceparent_new(&req->trace);
        req->trace.flags = sl_tracer_sample(tr, NULL, req->trace.trace_id) ? 1 : 0;
    }
}

/* The tracestate headers (several are one list, joined with ','), validated
 * and bounded; only beside a valid traceparent, as the spec says. */
int sl__trace_req_ctx(sl_http_req *req)
{
    char joined[4096], ts[SL_TRACESTATE_MAX + 1];
    size_t n = 0;
    int tl = 0;
    bool any = false, fits = true;
    for (uint32_t i = 0; req->span_has_parent && i < req->nheaders; i++) {
        const sl_http_header *hd = &req->headers[i];
        if (!sl_http_str_ieq(hd->name, "tracestate", 10))
            continue;
        if (n + (any ? 1 : 0) + hd->value.len > sizeof joined) {
            fits = false;   /* more than any vendor sends: dropped whole */
            break;
        }
        if (any)
            joined[n++] = ',';
        memcpy(joined + n, hd->value.ptr, hd->value.len);
        n += hd->value.len;
        any = true;
    }
    if (any && fits)
        tl = sl_tracestate_parse(joined, n, ts);
    int rc = sl_ctx_with_trace_state_deadline(&req->ctx, sl_ctx_background(), &req->trace, ts,
                                              tl > 0 ? (size_t)tl : 0, req->deadline);
    if (rc == 0 && req->callers_deadline)   /* it ends with "caller's deadline" */
        (void)sl_ctx_deadline_is_callers(req->ctx);
    return rc;
}

static void copy_str(char *dst, size_t cap, const char *s, size_t len)
{
    if (len >= cap)
        len = cap - 1;
    memcpy(dst, s, len);
    dst[len] = '\0';
}

/* Fills what every span has; the caller sets kind, names and peer. */
static void span_base(sl__span *sp, const sl_traceparent *tp, const uint8_t parent[8], bool has_parent,
                      uint64_t t_start, uint64_t deadline)
{
    memset(sp, 0, offsetof(sl__span, tracestate) + 1);
    memcpy(sp->trace_id, tp->trace_id, 16);
    memcpy(sp->span_id, tp->span_id, 8);
    if (has_parent)
        memcpy(sp->parent_id, parent, 8);
    sp->has_parent = has_parent;
    uint64_t now = sl_now_ns();
    sp->start_ns = sl__unix_ns_of(t_start);
    sp->end_ns = sp->start_ns + (now - t_start);
    if (deadline) {
        sp->has_left = true;
        sp->left_ms = ((int64_t)deadline - (int64_t)now) / (int64_t)SL_NS_PER_MS;
    }
}

void sl__trace_req_end(sl_http_req *req)
{
    sl_tracer *tr = req->sr->srv->o.tracer;
    if (!(req->trace.flags & 1) || !sl__tracer_exports(tr))
        return;
    sl__span sp;
    span_base(&sp, &req->trace, req->span_parent, req->span_has_parent, req->t_start, req->deadline);
    sp.kind = SL__SPAN_SERVER;
    sp.status = req->status;
    sp.cause = req->ctx ? (int)sl_ctx_cause(req->ctx, NULL) : 0;
    if (req->cause)
        copy_str(sp.cause_hdr, sizeof sp.cause_hdr, req->cause, strlen(req->cause));
    copy_str(sp.method, sizeof sp.method, req->method ? req->method : "", req->method ? strlen(req->method) : 0);
    if (req->match.pattern)
        copy_str(sp.route, sizeof sp.route, req->match.pattern, strlen(req->match.pattern));
    uint16_t port;
    uint32_t ip = sl_http_req_peer(req, &port);
    if (ip) {
        struct in_addr a = { htonl(ip) };
        inet_ntop(AF_INET, &a, sp.peer, sizeof sp.peer);
        sp.peer_port = port;
    }
    size_t tl;
    const char *ts = req->ctx ? sl_ctx_tracestate(req->ctx, &tl) : NULL;
    if (ts)
        copy_str(sp.tracestate, sizeof sp.tracestate, ts, tl);
    sl__tracer_push(tr, &sp);
}

/* ---- the client ---------------------------------------------------------------------- */

const char *sl__trace_call_begin(sl_tracer *tr, sl_ctx *ctx, sl__call_span *sp, size_t *ts_len)
{
    const sl_traceparent *ptp = ctx ? sl_ctx_trace(ctx) : NULL;
    *ts_len = 0;
    if (ptp) {
        sl_traceparent_child(ptp, &sp->tp);
        sp->tp.flags &= 1;   /* whatever the context was given: only `sampled` goes on */
        memcpy(sp->parent_id, ptp->span_id, 8);
        sp->has_parent = true;
    } else {
        sl_traceparent_new(&sp->tp);
        sp->tp.flags = sl_tracer_sample(tr, NULL, sp->tp.trace_id) ? 1 : 0;
        sp->has_parent = false;
    }
    sp->on = (sp->tp.flags & 1) && sl__tracer_exports(tr);
    if (sp->on)
        sp->t_start = sl_now_ns();
    return ptp ? sl_ctx_tracestate(ctx, ts_len) : NULL;
}

void sl__trace_call_end(sl_tracer *tr, sl__call_span *sp, int rc, int status, const char *line,
                        const char *peer, const char *tracestate, const char *cause, size_t cause_len,
                        sl_ctx *ctx)
{
    if (!sp->on)
        return;
    sp->on = false;
    sl__span s;
    span_base(&s, &sp->tp, sp->parent_id, sp->has_parent, sp->t_start, sp->deadline);
    s.kind = SL__SPAN_CLIENT;
    s.status = rc == 0 ? status : 0;
    s.err = rc < 0 ? rc : 0;
    s.cause = ctx ? (int)sl_ctx_cause(ctx, NULL) : 0;
    size_t ml = strcspn(line, " ");
    copy_str(s.method, sizeof s.method, line, ml);
    const char *path = line[ml] ? line + ml + 1 : "";
    copy_str(s.route, sizeof s.route, path, strcspn(path, " "));
    copy_str(s.peer, sizeof s.peer, peer, strlen(peer));
    if (tracestate)
        copy_str(s.tracestate, sizeof s.tracestate, tracestate, strlen(tracestate));
    if (cause)   /* the upstream's: on the client span too (issue 20) */
        copy_str(s.cause_hdr, sizeof s.cause_hdr, cause, cause_len);
    sl__tracer_push(tr, &s);
}
