/* sl_tracestate.h: W3C Trace Context `tracestate`, and carrying it in a
 * context beside the traceparent (sl_wire.h).
 *
 * A vendor that receives a tracestate "MUST send it to outgoing requests":
 * a server validates the header it received (only when the traceparent
 * beside it was valid), keeps it in the request's context, and every call
 * made under that context (or a context derived from it) sends it on.
 *
 *     char ts[SL_TRACESTATE_MAX + 1];
 *     int n = sl_tracestate_parse(hdr, hdr_len, ts);     // < 0: drop it
 *     sl_ctx_with_trace_state_deadline(&req, root, &tp, ts, n > 0 ? n : 0, deadline);
 *     ...
 *     size_t len;
 *     const char *s = sl_ctx_tracestate(ctx, &len);      // NULL: send none
 *
 * The format (W3C Trace Context level 1, section 3.3): a list of at most 32
 * `key=value` members separated by commas, optional spaces and tabs around
 * each member, empty members allowed. key: `lcalpha 0*255(lcalpha / DIGIT
 * / "_" / "-" / "*" / "/")`, or a multi-tenant `tenant@system` (tenant:
 * lcalpha or DIGIT then up to 240 of those characters, system: lcalpha
 * then up to 13). value: 1 to 256 printable ASCII characters (0x20-0x7e)
 * other than ',' and '=', not ending in a space. Keys are unique. */
#ifndef SL_TRACESTATE_H
#define SL_TRACESTATE_H
#include <stddef.h>
#include <stdint.h>
#include "sl_ctx.h"
#include "sl_wire.h"

/* The most this library keeps and sends: the spec's "at least 512
 * characters" that a vendor should propagate. */
#define SL_TRACESTATE_MAX 512

/* Validates the `len` bytes at s (no NUL needed; several received headers
 * joined with ','). A valid value of at most SL_TRACESTATE_MAX bytes is
 * copied verbatim; a longer one is cut as the spec says: members longer
 * than 128 bytes go first, then members from the end, until the rest (joined
 * with ',') fits. Writes a NUL-terminated string into out (at least
 * SL_TRACESTATE_MAX + 1 bytes) and returns its length (0: nothing to send,
 * e.g. an empty header). Returns -EINVAL for a malformed value (a bad key
 * or value, a duplicate key, more than 32 members; also NULL s or out):
 * drop it, *out is "". */
int sl_tracestate_parse(const char *s, size_t len, char *out);

/* sl_ctx_with_trace_deadline() (sl_wire.h) that also carries `ts[0..len)`
 * (a value from sl_tracestate_parse; copied; len 0: none). Returns as
 * sl_ctx_with_trace_deadline; -EINVAL also for len > SL_TRACESTATE_MAX, a
 * NULL ts with len > 0, or a control byte in ts (it is sent as a header). */
int sl_ctx_with_trace_state_deadline(sl_ctx **out, sl_ctx *parent, const sl_traceparent *tp,
                                     const char *ts, size_t len, uint64_t deadline);

/* The tracestate carried with ctx's trace (sl_ctx_trace), NUL-terminated,
 * and its length in *len (may be NULL); NULL when ctx carries no trace or
 * its trace has no tracestate. Valid while ctx is. */
const char *sl_ctx_tracestate(const sl_ctx *ctx, size_t *len);

#endif
