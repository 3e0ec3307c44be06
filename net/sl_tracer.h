/* sl_tracer.h: spans, sampling, and their export over OTLP/HTTP JSON.
 *
 * A tracer decides which traces are sampled and exports a span for each
 * sampled request a server answers (kind SERVER) and each sampled call an
 * upstream makes (kind CLIENT) to an OpenTelemetry collector: POST
 * {endpoint}/v1/traces, the OTLP JSON encoding, batched. Give the same
 * tracer to every server and upstream of the process:
 *
 *     sl_tracer_opts to;
 *     char err[128];
 *     if (sl_tracer_opts_env(&to, err, sizeof err) < 0)   // OTEL_* variables
 *         die(err);
 *     sl_tracer *tr;
 *     sl_tracer_new(&tr, &to);
 *     sl_http_server_new(&srv, rt, &(sl_http_server_opts){ ..., .tracer = tr });
 *     sl_http_upstream_new(&up, rt, urls, &(sl_http_upstream_opts){ .tracer = tr });
 *     ... sl_runtime_run(rt) ...
 *     sl_http_server_free(srv); sl_http_upstream_free(up);
 *     sl_tracer_free(tr);                                   // last: exports what is left
 *
 * SAMPLING. The decision is made once per trace where it enters the
 * process (a request, or a call made with no trace) and travels in the
 * `sampled` flag of the traceparent sent downstream; what is exported
 * follows the same flag, so a trace is exported whole or not at all.
 * Other flag bits received are not forwarded (set to 0, as W3C Trace
 * Context requires of bits it does not know). Without a tracer, a request
 * keeps its caller's sampled flag and a trace sluice starts is not sampled.
 * The samplers are OpenTelemetry's (OTEL_TRACES_SAMPLER):
 *  - always_on, always_off: every trace, none (a caller's flag is ignored);
 *  - traceidratio: a share `ratio` of traces, chosen by trace-id (the low 63
 *    bits of its last 8 bytes below ratio * 2^63), so every hop that uses
 *    the same ratio makes the same choice;
 *  - parentbased_always_on (the default), parentbased_always_off,
 *    parentbased_traceidratio: the caller's sampled flag when a request
 *    brings a valid traceparent, else always_on, always_off or traceidratio.
 *
 * SPANS. Name "METHOD /route/{pattern}" (server) or "METHOD /path" (client);
 * ids from the traceparent: a server span's parent is the caller's span-id,
 * a client span's parent is the span of the request it is made under, and
 * its own span-id is the parent-id the callee receives, so the callee's
 * server span links to it. Attributes: http.request.method, http.route,
 * url.path (client), http.response.status_code, client.address and
 * client.port (server) or server.address (client: the replica),
 * sluice.cancel_cause (the context's cause when it ended, if it did),
 * sluice.deadline_left_ms (budget left at the end; negative when overrun),
 * sluice.error (a call's error, "ETIMEDOUT"...). Status ERROR for a 5xx
 * answer (server) or an error or a status >= 500 (client). The tracestate
 * received is the span's traceState.
 *
 * EXPORT. Ending a sampled span copies it into a bounded queue (one mutex,
 * taken only for sampled spans); nothing else is done on a reactor. An
 * exporter thread of the tracer's own sends batches of up to batch_max
 * spans as soon as a batch is full or the oldest span has waited delay_ms,
 * each POST on a fresh connection bounded by timeout_ms (connect, send and
 * answer). When the collector is slow or down the queue fills and further
 * spans are dropped and counted, never waited for: a request never waits
 * on the collector. A batch the collector refuses (non-2xx) or does not
 * answer in time is counted as failed, not retried. The counters are in
 * every /metrics of a server using the tracer:
 * sluice_trace_spans_total{result="exported|dropped|failed"} and
 * sluice_trace_queue_spans. */
#ifndef SL_TRACER_H
#define SL_TRACER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sl_wire.h"

typedef struct sl_tracer sl_tracer;

enum {
    SL_SAMPLER_PARENT_ALWAYS_ON = 0,   /* parentbased_always_on (default) */
    SL_SAMPLER_PARENT_ALWAYS_OFF,      /* parentbased_always_off */
    SL_SAMPLER_PARENT_RATIO,           /* parentbased_traceidratio */
    SL_SAMPLER_ALWAYS_ON,              /* always_on */
    SL_SAMPLER_ALWAYS_OFF,             /* always_off */
    SL_SAMPLER_RATIO,                  /* traceidratio */
};

typedef struct sl_tracer_opts {
    /* "http://HOST:PORT" with an optional base path ("http://c:4318/otel");
     * spans go to that + "/v1/traces". HOST: a name, an IPv4 address or a
     * bracketed IPv6 one. NULL or "": sampling only, nothing is exported
     * (the flags sent downstream still follow the sampler). */
    const char *endpoint;
    const char *service_name;  /* the resource's service.name ("unknown_service") */
    int sampler;               /* SL_SAMPLER_... */
    double ratio;              /* 0..1, for the ratio samplers; not NaN */
    uint32_t queue_max;        /* spans waiting for export (2048) */
    uint32_t batch_max;        /* spans per POST (512) */
    uint32_t delay_ms;         /* the longest a span waits for its batch (1000) */
    uint32_t timeout_ms;       /* one POST: connect + send + answer (2000) */
} sl_tracer_opts;

/* Fills *o from OpenTelemetry's variables: OTEL_EXPORTER_OTLP_ENDPOINT,
 * OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG (unset or
 * empty: the defaults above; the ratio defaults to 1.0). The strings point
 * into the environment. Returns 0, or -EINVAL with a message in err (at
 * most errlen bytes, may be NULL) naming the variable and the value: an
 * unknown sampler, a ratio that is not a number in [0, 1], an endpoint
 * that is not http://HOST:PORT[/path]. */
int sl_tracer_opts_env(sl_tracer_opts *o, char *err, size_t errlen);

/* The sampler called `name` (OTEL_TRACES_SAMPLER's spelling) in *sampler.
 * Returns 0 or -EINVAL. */
int sl_tracer_sampler_parse(const char *name, int *sampler);

/* A ratio from text ("0.01"): 0 and *ratio, or -EINVAL for anything but a
 * whole decimal number in [0, 1]. */
int sl_tracer_ratio_parse(const char *s, double *ratio);

/* Creates a tracer (copies opts and its strings) and, when it has an
 * endpoint, starts its exporter thread. Returns 0, -EINVAL (NULL, unknown
 * sampler, ratio outside [0, 1], a malformed endpoint, batch_max >
 * queue_max), -ENOMEM, -EAGAIN (no thread). */
int sl_tracer_new(sl_tracer **out, const sl_tracer_opts *opts);

/* Stops the exporter after one last attempt at what is queued (bounded by
 * timeout_ms per batch), and frees the tracer. Call after every server and
 * upstream using it is freed. NULL: nothing. */
void sl_tracer_free(sl_tracer *tr);

/* Would a trace with this trace-id be sampled? `parent` is the traceparent
 * a request brought (NULL: none). tr NULL: the parent's flag, else no. */
bool sl_tracer_sample(const sl_tracer *tr, const sl_traceparent *parent, const uint8_t trace_id[16]);

typedef struct sl_tracer_stats {
    uint64_t spans;       /* sampled spans ended (queued or dropped) */
    uint64_t exported;    /* accepted by the collector (2xx) */
    uint64_t dropped;     /* the queue was full */
    uint64_t failed;      /* in a batch the collector refused or did not answer */
    uint64_t batches;     /* POSTs made */
    uint32_t queued;      /* waiting now, including a batch being sent */
    uint64_t wakeups;     /* times the exporter thread woke (none while nothing is queued) */
} sl_tracer_stats;

/* A consistent snapshot of the counters. From any thread. */
void sl_tracer_stats_get(sl_tracer *tr, sl_tracer_stats *st);

/* Asks the exporter to send what is queued now, and waits up to
 * timeout_ms for the queue to be empty and the last batch answered
 * (tests, shutdown). Returns 0, -ETIMEDOUT, -ENOTCONN (no endpoint: the
 * queue is never sent). Not from a reactor: it blocks. */
int sl_tracer_flush(sl_tracer *tr, uint32_t timeout_ms);

#endif
