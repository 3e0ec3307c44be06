/* sl_wire.h: what a context looks like on the wire.
 *
 * Deadline: the remaining budget as a relative timeout in gRPC's
 * `grpc-timeout` format: 1 to 8 ASCII digits and one unit, H (hours),
 * M (minutes), S (seconds), m (milliseconds), u (microseconds) or
 * n (nanoseconds). Relative, never an absolute wall-clock time, so clock skew
 * between hosts cannot stretch or cut a budget.
 *
 * Trace: W3C Trace Context `traceparent`:
 * `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`, lowercase. */
#ifndef SL_WIRE_H
#define SL_WIRE_H
#include <stddef.h>
#include <stdint.h>

#define SL_GRPC_TIMEOUT_MAX 10      /* 8 digits, a unit, NUL */
#define SL_TRACEPARENT_LEN 55

/* Parses `len` bytes (no NUL needed). Returns 0 and *ns (saturated at
 * UINT64_MAX), or -EINVAL for anything but 1-8 digits and one known unit:
 * empty, 9+ digits, signs, spaces, a missing or unknown unit, trailing
 * bytes. */
int sl_grpc_timeout_parse(const char *s, size_t len, uint64_t *ns);

/* Formats `ns` with the finest unit whose value fits in 8 digits, rounding
 * down (a budget never grows on the wire). Writes a NUL-terminated string
 * into buf (at least SL_GRPC_TIMEOUT_MAX bytes) and returns its length. */
int sl_grpc_timeout_format(uint64_t ns, char *buf);

typedef struct sl_traceparent {
    uint8_t version;
    uint8_t trace_id[16];
    uint8_t span_id[8];       /* the parent-id on the wire */
    uint8_t flags;
} sl_traceparent;

/* Parses a traceparent header value strictly: lowercase hex only, dashes in
 * their places, version not ff, version 00 exactly 55 bytes (a later version
 * may carry more after a '-'), trace-id and parent-id not all zero. Returns
 * 0 or -EINVAL. */
int sl_traceparent_parse(const char *s, size_t len, sl_traceparent *tp);

/* Writes the 55-byte form and a NUL into buf (at least 56 bytes). Returns 55. */
int sl_traceparent_format(const sl_traceparent *tp, char *buf);

/* A fresh trace: random trace-id and span-id, version 00, flags 01 (sampled). */
void sl_traceparent_new(sl_traceparent *tp);

/* The header for an outgoing call: same trace-id and flags, a new span-id. */
void sl_traceparent_child(const sl_traceparent *parent, sl_traceparent *child);

/* The trace-id as 32 lowercase hex digits and a NUL (buf: 33 bytes). */
void sl_trace_id_hex(const sl_traceparent *tp, char *buf);

/* The low 64 bits of the trace-id, never 0: a tag for lock holders. */
uint64_t sl_traceparent_tag(const sl_traceparent *tp);

#endif
