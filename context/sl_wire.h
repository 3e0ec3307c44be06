/* sl_wire.h: what a context looks like on the wire.
 *
 * Deadline: the remaining budget as a relative timeout in gRPC's
 * `grpc-timeout` format: 1 to 8 ASCII digits and one unit, H (hours),
 * M (minutes), S (seconds), m (milliseconds), u (microseconds) or
 * n (nanoseconds). Relative, never an absolute wall-clock time, so clock
 * skew between hosts cannot stretch or cut a budget.
 *
 * Trace: W3C Trace Context `traceparent`:
 * `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`, lowercase.
 *
 *     // caller                                   // callee
 *     char to[SL_GRPC_TIMEOUT_MAX], tp[56];       sl_ctx_with_grpc_timeout(&req, root,
 *     if (sl_ctx_grpc_timeout(ctx, 20, to) < 0)       hdr, hdr_len, own_timeout_ms);
 *         fail without sending;                   sl_traceparent_parse(...) then
 *     sl_traceparent out;                         sl_ctx_with_trace(&req2, req, &tp);
 *     sl_ctx_outgoing_trace(ctx, &out);
 *     sl_traceparent_format(&out, tp);
 */
#ifndef SL_WIRE_H
#define SL_WIRE_H
#include <stddef.h>
#include <stdint.h>
#include "sl_ctx.h"

#define SL_GRPC_TIMEOUT_MAX 10      /* 8 digits, a unit, NUL */
#define SL_TRACEPARENT_LEN 55

/* ---- grpc-timeout ------------------------------------------------------------ */

/* Parses the `len` bytes at s (no NUL needed) as a grpc-timeout value.
 * Returns 0 and the timeout in *ns (saturated at UINT64_MAX), or -EINVAL
 * for anything but 1-8 ASCII digits followed by exactly one of H M S m u n:
 * empty, 9 or more digits, signs, spaces, a missing or unknown unit, bytes
 * after the unit; also for a NULL s or ns. *ns is set only on success. */
int sl_grpc_timeout_parse(const char *s, size_t len, uint64_t *ns);

/* Formats `ns` with the finest unit whose count fits in 8 digits, rounding
 * down (a budget never grows on the wire): 250 ms is "250000u". Writes a
 * NUL-terminated string into buf (at least SL_GRPC_TIMEOUT_MAX bytes) and
 * returns its length (2 to 9). */
int sl_grpc_timeout_format(uint64_t ns, char *buf);

/* The header value to send on a call made under ctx: its remaining time
 * minus `margin_ms` (the time the answer needs to come back), formatted as
 * above into buf (SL_GRPC_TIMEOUT_MAX bytes). Returns the length (> 0); 0
 * when ctx has no deadline (send no header; buf holds ""); -ETIMEDOUT when
 * less than 1 ms would be left (do not send the call); ctx's error if it has
 * ended; -EINVAL (NULL argument); -EXDEV (another reactor, reported). */
int sl_ctx_grpc_timeout(const sl_ctx *ctx, uint64_t margin_ms, char *buf);

/* The context for an incoming request: a child of `parent` whose deadline is
 * now + the grpc-timeout in s[0..len), capped at `max_ms` (0: no cap). With
 * s NULL (no header) the deadline is now + max_ms (none if max_ms is 0).
 * When the header's budget is the one that counts (below max_ms, and
 * earlier than the parent's deadline) the deadline is marked as the
 * caller's (sl_ctx_deadline_is_callers): it ends with
 * SL_CAUSE_CALLER_DEADLINE. Returns 0; -EINVAL for a malformed header
 * (nothing is made: answer 400 or ignore the header, as you choose), and as
 * sl_ctx_with_deadline. */
int sl_ctx_with_grpc_timeout(sl_ctx **out, sl_ctx *parent, const char *s, size_t len,
                             uint64_t max_ms);

/* ---- traceparent ----------------------------------------------------------------- */

typedef struct sl_traceparent {
    uint8_t version;
    uint8_t trace_id[16];
    uint8_t span_id[8];       /* the parent-id on the wire */
    uint8_t flags;
} sl_traceparent;

/* Parses a traceparent header value strictly: lowercase hex only, dashes in
 * their places, version not ff, version 00 exactly 55 bytes (a later version
 * may carry more after a '-' at offset 55), trace-id and parent-id not all
 * zero. Returns 0, or -EINVAL (also for a NULL s or tp); *tp is set only on
 * success. */
int sl_traceparent_parse(const char *s, size_t len, sl_traceparent *tp);

/* Writes the version 00 form (55 bytes and a NUL) into buf (at least 56
 * bytes), whatever version was parsed: we speak 00. Returns 55. */
int sl_traceparent_format(const sl_traceparent *tp, char *buf);

/* A fresh trace: random non-zero trace-id and span-id, version 00, flags 00
 * (not sampled, the spec's default: a sampler sets the flag, sl_tracer.h).
 * Ids come from a per-thread generator seeded by getrandom(). */
void sl_traceparent_new(sl_traceparent *tp);

/* The header for an outgoing call: the same trace-id and flags, a new
 * random span-id (the call's own span). */
void sl_traceparent_child(const sl_traceparent *parent, sl_traceparent *child);

/* The trace-id as 32 lowercase hex digits and a NUL (buf: 33 bytes). */
void sl_trace_id_hex(const sl_traceparent *tp, char *buf);

/* The low 64 bits of the trace-id, never 0 (an all-zero low half gives 1):
 * the tag that lock holders carry (sl_mutex_lock), so that a request waiting
 * for a lock held by its own trace is refused. */
uint64_t sl_traceparent_tag(const sl_traceparent *tp);

/* ---- sluice-cause ------------------------------------------------------------------ */

/* Why a call failed, and where: a response header on error answers,
 *
 *     sluice-cause: v1;cause=deadline;hop=payment-svc;left-ms=180
 *
 * "v1", then `;`-separated key=value pairs, all lowercase: `cause` (one of
 * the names below), `hop` (the name of the service that decided: 1-47
 * bytes of [a-z0-9._:[]-]) and optionally `left-ms` (the budget that hop
 * had left when it was called, 1-8 digits). At most SL_CAUSE_HDR_MAX - 1
 * bytes. A reader ignores a malformed value whole (no half-understood
 * cause), and an unknown key of the same syntax (a later v1 may add keys);
 * another version is malformed to a v1 reader. Diagnostics only: never
 * trust it for a decision (any peer can send anything). See
 * docs/context.md. */
#define SL_CAUSE_HDR "sluice-cause"
#define SL_CAUSE_HDR_MAX 128
#define SL_CAUSE_HOP_MAX 48

typedef enum sl_wire_cause {
    SL_WC_NONE = 0,
    SL_WC_DEADLINE,           /* "deadline": the hop's own timeout passed */
    SL_WC_CALLER_DEADLINE,    /* "caller-deadline": the budget its caller gave it passed */
    SL_WC_DISCONNECT,         /* "disconnect": its client went away */
    SL_WC_SHUTDOWN,           /* "shutdown": it is shutting down */
    SL_WC_OVERLOADED,         /* "overloaded": it shed the request (no slot, no budget) */
    SL_WC_UPSTREAM,           /* "upstream": a call of its failed (no answer, an answer not HTTP) */
    SL_WC_LOOP,               /* "loop": it refused a request waiting for itself (508) */
    SL_WC_CANCELED,           /* "canceled": cancelled for any other reason */
    SL_WC_COUNT
} sl_wire_cause;

typedef struct sl_cause_info {
    sl_wire_cause cause;
    char hop[SL_CAUSE_HOP_MAX];   /* NUL-terminated */
    int64_t left_ms;              /* -1: not given */
} sl_cause_info;

/* The wire name of a cause ("caller-deadline"); "" for NONE or out of range. */
const char *sl_wire_cause_name(sl_wire_cause c);

/* The wire cause for a context's cause (SL_WC_NONE for SL_CAUSE_NONE). */
sl_wire_cause sl_wire_cause_of(sl_cause c);

/* Parses len bytes (no NUL needed) as above. Returns 0, or -EINVAL (also
 * for NULL arguments) with *out untouched. */
int sl_cause_hdr_parse(const char *s, size_t len, sl_cause_info *out);

/* Formats *ci into buf (SL_CAUSE_HDR_MAX bytes), NUL-terminated; returns
 * the length, or -EINVAL for a cause out of range or a hop that would not
 * parse back (nothing written then). */
int sl_cause_hdr_format(const sl_cause_info *ci, char *buf);

/* A sentence for logs and messages into buf (n bytes, truncated):
 * "deadline at payment-svc (called with 180 ms)". Returns buf. */
char *sl_cause_info_text(const sl_cause_info *ci, char *buf, size_t n);

/* ---- the trace in a context ---------------------------------------------------------- */

/* A child of parent carrying a copy of *tp as its trace (a value, see
 * sl_ctx_with_value). Returns as sl_ctx_with_value; -EINVAL for a NULL tp. */
int sl_ctx_with_trace(sl_ctx **out, sl_ctx *parent, const sl_traceparent *tp);

/* One context for what sl_ctx_with_trace() then sl_ctx_with_deadline() on
 * top of it would make two of: a child of parent carrying a copy of *tp,
 * whose deadline is `deadline` or the parent's, whichever is earlier (0:
 * the parent's). A server makes one per request. Returns as
 * sl_ctx_with_deadline; -EINVAL for a NULL tp. */
int sl_ctx_with_trace_deadline(sl_ctx **out, sl_ctx *parent, const sl_traceparent *tp,
                               uint64_t deadline);

/* The trace carried by ctx or its nearest ancestor (across links too), or
 * NULL. Valid while ctx is. */
const sl_traceparent *sl_ctx_trace(const sl_ctx *ctx);

/* sl_traceparent_tag() of ctx's trace, or 0 when it carries none. */
uint64_t sl_ctx_trace_tag(const sl_ctx *ctx);

/* The traceparent for a call made under ctx: a child span of ctx's trace, or
 * a fresh trace when ctx carries none. */
void sl_ctx_outgoing_trace(const sl_ctx *ctx, sl_traceparent *out);

#endif
