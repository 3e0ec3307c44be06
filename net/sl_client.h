/* sl_client.h: HTTP/1.1 calls to upstream services, under the caller's
 * context.
 *
 * An upstream is a list of replicas ("http://127.0.0.1:8081,http://..."),
 * each with a keep-alive connection pool per reactor (connections never
 * cross reactors). A call picks the replica with the fewest calls under
 * way; when all its connections are busy it waits in a bounded queue, and
 * when that is full too it fails at once with -EBUSY: backpressure to the
 * caller instead of a growing queue. A replica that keeps failing is taken
 * out of rotation for a while and probed back; idempotent calls can be
 * retried within a budget (sl_http_upstream_opts).
 *
 * A call runs under the calling task's context (sl_task_ctx, or the task's
 * own deadline): it sends `grpc-timeout` with the remaining budget minus a
 * safety margin, and fails with -ETIMEDOUT without sending anything if
 * nothing would be left; it sends `traceparent` with the caller's trace and
 * a new span (the call's own: flags hold only `sampled`), and the
 * caller's `tracestate` if its context carries one. When the context ends before the answer, the connection is
 * closed at once (so the callee sees a disconnect and cancels its own
 * context) and the call returns the context's error.
 *
 *     SL_AWAIT(t, st->rc, sl_http_call(t, &st->resp, up, "POST", "/charge", body, len));
 *     if (st->rc == 0 && st->resp.status == 200) ... st->resp.body ...
 *     sl_http_call_end(&st->resp);     // always: frees the answer, aborts a call under way
 *
 * Errors: -ECONNREFUSED, -ECONNRESET (closed or reset before the answer),
 * -ETIMEDOUT, -ECANCELED (or the context's cancel error), -EPROTO (not a
 * valid HTTP answer: a malformed status line or head, a 101 Switching
 * Protocols), -EBUSY (pool and queue full, or refused by fail-fast: see
 * no_fail_fast), -ENOMEM. An HTTP error status
 * is not an error of the call: rc 0, and status/body hold it. Interim 1xx
 * answers (100 Continue, 103 Early Hints) are skipped, never returned. */
#ifndef SL_CLIENT_H
#define SL_CLIENT_H
#include <stddef.h>
#include <stdint.h>
#include "sl_chan.h"
#include "sl_runtime.h"
#include "sl_task.h"
#include "sl_wire.h"

typedef struct sl_http_upstream sl_http_upstream;

typedef struct sl_http_upstream_opts {
    uint32_t max_conns;       /* per replica per reactor (64) */
    uint32_t max_waiting;     /* calls queued for a connection, per reactor (128; 0 means default) */
    bool no_wait;             /* no queue at all: -EBUSY as soon as the connections are busy */
    uint32_t margin_ms;       /* kept back from the budget sent downstream (5) */
    uint32_t connect_timeout_ms; /* when the caller has no deadline (1000) */
    /* A connection idle this long is not used again: it is closed when a
     * call would have taken it, and the call gets a fresh one. A server
     * closes a keep-alive connection after its own idle timeout (sluice's
     * server: 60000 ms, sl_http_server_opts.idle_timeout_ms; nginx 75 s;
     * Node.js 5 s), and a request written while that close is on its way
     * is lost: the connection is reset after the request left, so a POST
     * is not sent again (-ECONNRESET). Keep it below the upstream's own
     * idle timeout. Counted in stats.expired. */
    uint32_t idle_timeout_ms;    /* (30000) */
    /* Retries (off by default: a retry changes what the callee sees). A
     * call of any method whose connection was refused (or failed to
     * connect), or was reset before any byte of the request was written,
     * is sent again: the callee cannot have seen it (Envoy's
     * connect-failure and reset-before-request). An idempotent call (GET
     * HEAD PUT DELETE OPTIONS) is also sent again when reset after its
     * request was written but before any byte of its answer. Each attempt
     * goes to another replica when there is one, up to `retries` extra
     * attempts. Never after the
     * caller's context ended or when less than margin + 1 ms is left, and
     * never beyond the retry budget: each call adds retry_budget_pct/100
     * of a token to a bucket of each reactor's pool (holding at most
     * retry_budget_cap tokens, full at first) and each retry takes one, so
     * retries add at most that share of load once a burst is spent. */
    uint32_t retries;            /* extra attempts per call (0: none) */
    uint32_t retry_budget_pct;   /* (10) */
    uint32_t retry_budget_cap;   /* (10) */
    /* Outlier ejection, per reactor: a replica whose attempts fail
     * eject_after times in a row (refused, reset, protocol error, or no
     * answer before the caller's deadline; an HTTP status is an answer) is
     * taken out of rotation for eject_ms; then one call probes it: an
     * answer brings it back, a failure takes it out again for twice as
     * long, up to eject_max_ms. The last replica in rotation is never
     * taken out. */
    uint32_t eject_after;        /* consecutive failures (5) */
    uint32_t eject_ms;           /* the first ejection (1000) */
    uint32_t eject_max_ms;       /* the longest (30000) */
    bool no_eject;               /* keep every replica in rotation */
    /* Fail-fast, per reactor (on unless no_fail_fast): a call is refused
     * with -EBUSY at once, before it takes a connection or sends a byte,
     *  - when the caller's remaining budget (less margin_ms) is below the
     *    median time this upstream's calls took lately (answers below 500;
     *    from 16 answers on, and only while answers keep coming: an
     *    estimate older than 1 s is not used), since it would most likely
     *    time out after spending the upstream's work; or
     *  - when the upstream has been refusing (503): client-side throttling
     *    (Google SRE, "Handling Overload"), each call refused with
     *    probability (calls - 2 x accepted) / (calls + 1) over the last
     *    second or so, once 16 calls were counted in it; calls = those
     *    answered and those refused here, accepted = answered with
     *    anything but 503 (a call that got no answer counts in neither:
     *    outlier ejection deals with those); and only while the upstream
     *    answered 503 within the last 500 ms, so one that serves again is
     *    let through at once whatever the counts still say. The upstream keeps getting about twice
     *    what it accepts, so it is seen to recover.
     * So a caller under an overloaded chain answers its own 503 without
     * the round trip, and the refusing service spends nothing on it.
     * Counted in stats.failfast (and busy). A compensation is never
     * refused here: it goes with SL_HTTP_CALL_UNDO (sl_http_call_flags). */
    bool no_fail_fast;
    /* Names (see sl_http_upstream_new). The files are read when the
     * upstream is made (NULL: $SLUICE_RESOLV_CONF and $SLUICE_HOSTS if
     * set, else /etc/resolv.conf and /etc/hosts); the strings are not kept. */
    const char *resolv_conf;
    const char *hosts;
    uint32_t resolve_min_ms;     /* the shortest time between lookups of a name (1000) */
    uint32_t resolve_max_ms;     /* the longest TTL honoured (300000) */
    struct sl_tracer *tracer;    /* samples calls made with no trace and exports
                                    the spans of sampled calls (sl_tracer.h); must
                                    outlive the upstream */
} sl_http_upstream_opts;

/* Creates an upstream on `rt` from a comma-separated list of replicas,
 * each http://HOST:PORT (a trailing "/" allowed, no path), HOST being a
 * numeric IPv4 address, an IPv6 one in brackets (http://[::1]:8082),
 * "localhost" (127.0.0.1) or a name.
 *
 * A name gives one replica per address (A and AAAA: a headless Service's
 * pods). It is looked up now, blocking the caller (make upstreams before
 * the runtime runs): in the hosts file first, which is read once (a name
 * found there keeps its addresses), then in DNS with libevent's evdns.
 * Each reactor then looks a DNS name up again on its own reactor, never
 * blocking it (an evdns_base per reactor and upstream, made at the first
 * lookup: no lock, no message between reactors), when the answer's TTL ran
 * out (clamped to resolve_min_ms..resolve_max_ms) and, at most once per
 * resolve_min_ms, when an attempt on one of its replicas failed; a lookup
 * is started by a call, so a reactor that makes none asks nothing. An
 * answer that drops an address retires its replica (no new calls; its
 * idle connections close; the calls under way finish); a new address
 * joins. A failed lookup keeps the last addresses, is reported once
 * (sl_report) and asked again after resolve_min_ms. The Host header is
 * the name and port as written.
 *
 * Returns 0, -EINVAL (a malformed list), -ENOENT (a name with no address:
 * no such name, in the hosts file nor in DNS), -EAGAIN (the resolver did
 * not answer), -ENOMEM; sl_http_upstream_last_error() says which entry
 * and what is wrong. */
int sl_http_upstream_new(sl_http_upstream **out, sl_runtime *rt, const char *replicas,
                         const sl_http_upstream_opts *opts);

/* Why the calling thread's last sl_http_upstream_new failed, as text for a
 * message ("'http://x:99999': bad port", "inventory.svc: no such name (or
 * no address for it) (at start)"); "" after a success. */
const char *sl_http_upstream_last_error(void);

/* Frees it, closing idle connections; call after the runtime stopped. A
 * name's lookup still under way then (stats: resolving) leaks a few KiB
 * unless the reactor's event_base runs again. */
void sl_http_upstream_free(sl_http_upstream *up);

/* Counters of the calling reactor's pool, for tests and /metrics. */
typedef struct sl_http_upstream_stats {
    uint64_t calls, ok, refused, reset, timeouts, cancelled, busy, protocol;
    uint64_t connects, reused;
    uint64_t expired;     /* idle connections closed for idle_timeout_ms instead of reused */
    uint32_t idle, active, waiting;
    uint64_t retried;     /* attempts made again (each also counted by its result above) */
    uint64_t ejected;     /* times a replica was taken out of rotation */
    uint32_t out;         /* replicas out of rotation now */
    uint32_t replicas;    /* replicas now (a name's addresses count one each) */
    uint64_t resolved;    /* lookups answered after the first (at creation) */
    uint64_t resolve_failed;
    uint32_t resolving;   /* lookups under way */
    uint64_t failfast;    /* calls refused at once by fail-fast (also in busy) */
} sl_http_upstream_stats;
void sl_http_upstream_stats_get(sl_http_upstream *up, sl_http_upstream_stats *st);

/* The caller's storage for a call and its answer, in the task's state. Read status, body,
 * body_len and header() once the call returned 0. */
typedef struct sl_http_resp {
    int status;
    char *body;              /* NUL-terminated */
    size_t body_len;
    struct sl_http_call_priv *priv_;
} sl_http_resp;

/* Starts a call and parks t until its answer (SL_PENDING; final 0 or an
 * error above). `body` may be NULL; it is sent as application/json. May
 * also return an error at once (-ETIMEDOUT, -EBUSY, -ENOMEM, the cancel
 * error). Call sl_http_call_end() afterwards in every case.
 * Ownership: `method`, `path` and `body` are copied before the call parks
 * (a retry resends the copy), so they may live on the caller's stack; `up`
 * must outlive the call; `call` (in the task's state) is written until
 * sl_http_call_end(), and its body and headers stay valid until then. */
int sl_http_call(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *method,
                 const char *path, const char *body, size_t body_len);

/* The same, routed by `key` (key_len bytes, any content; an empty key is a
 * key too): every call with the same key goes to the same replica, its
 * owner by rendezvous hashing over the replicas' addresses, so that the
 * steps of one order reach the replica that holds its state (not its
 * undos: the step may have gone to a failover choice; an undo goes to
 * every replica, sl_http_upstream_replicas and sl_http_call_to).
 * Load is not balanced per call, only by the spread of keys (each replica
 * owns about 1/n of them).
 *   - While the owner is out of rotation (ejected), its keys go to their
 *     second choice (spread over the others; no other key moves), and
 *     back when it returns. Ejection is per reactor, so two reactors may
 *     briefly disagree about where an ejected replica's keys go.
 *   - A retry goes to the key's next choice as well, never to a replica
 *     chosen by load.
 *   - When the owner's connections are busy the call waits for one of
 *     them (never another replica's), within the same queue and its bound.
 * key NULL: like sl_http_call. Errors: those of sl_http_call; -EINVAL also
 * for key NULL with key_len > 0. */
int sl_http_call_key(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *method,
                     const char *path, const char *body, size_t body_len, const char *key, size_t key_len);

/* Flags of sl_http_call_flags. */
#define SL_HTTP_CALL_UNDO 1u   /* a compensation (a release, a void): its callee admits it on
                                  its undo lane however loaded it is (sl_http.h), so fail-fast
                                  never refuses it here, and its answers teach fail-fast
                                  nothing (not its throttle, not its median) */

/* sl_http_call_key with flags (SL_HTTP_CALL_*; 0: the same as
 * sl_http_call_key). Errors: those of sl_http_call_key; -EINVAL also for
 * an unknown flag. */
int sl_http_call_flags(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *method,
                       const char *path, const char *body, size_t body_len, const char *key, size_t key_len,
                       unsigned flags);

/* One replica, named by its address: "127.0.0.1:8082", "[::1]:8082". */
#define SL_HTTP_REPLICA_MAX 56   /* bytes of an address, its NUL included */
typedef struct sl_http_replica {
    char addr[SL_HTTP_REPLICA_MAX];
} sl_http_replica;

/* The replicas of `up` as the calling reactor sees them now (a name's
 * addresses one each; a retired one is not listed; an ejected one is),
 * written to out[0 .. min(n, max) - 1], where n, the return value, is how
 * many there are (may exceed max: call again with more room). For a call
 * that must reach every replica (an undo whose step may have gone to any
 * of them: see sl_http_call_to). The list changes only when a name is
 * looked up again (sl_http_upstream_new), and may differ briefly from one
 * reactor to another. Call it on a reactor thread of up's runtime (a
 * task's). Ownership: out is the caller's, written only. Returns n >= 0;
 * -EINVAL (up NULL, out NULL with max > 0), -EPERM (not on a reactor of
 * up's runtime), -ENOMEM (the reactor's pool could not be made). */
int sl_http_upstream_replicas(sl_http_upstream *up, sl_http_replica *out, size_t max);

/* A call to the one replica whose address is `replica` (as listed by
 * sl_http_upstream_replicas): no choice by load or key, no failover, no
 * retry (there is nowhere else to go), sent even while that replica is
 * ejected (its answer counts for or against it as any other's). When its
 * connections are busy the call waits for one of them, within the queue's
 * bound. `flags`: SL_HTTP_CALL_* (as sl_http_call_flags). Ownership: as
 * sl_http_call; `replica` is read during the call only. Errors: those of
 * sl_http_call; -EINVAL also for replica NULL or an unknown flag; -ENOENT
 * when the calling reactor has no such replica now, or when a lookup of
 * its name retires it while the call waits for a connection. */
int sl_http_call_to(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *replica, const char *method,
                    const char *path, const char *body, size_t body_len, unsigned flags);

/* Whether the callee may have seen the call: false only when no byte of
 * any attempt left this process — refused at once (-EBUSY: the pool's
 * queue full or fail-fast; -ETIMEDOUT: no budget left to send; the task
 * cancelled before it began), cancelled or timed out while waiting for a
 * connection, or refused while connecting (-ECONNREFUSED, a reset before
 * a byte of the request was written). Then whatever the call would have
 * done was not done, and needs no undo (a release of a reservation never
 * made only costs the callee a request, at the worst time: issue 14).
 * True for every answer, every failure after a byte may have left, and a
 * call still under way. An HTTP 503 is an answer: the callee saw it.
 * Call it after the call returned, before sl_http_call_end (which clears
 * `call`: false afterwards). */
bool sl_http_call_reached(const sl_http_resp *call);

/* A response header (any case), or NULL. The value points into the
 * answer (not NUL-terminated: use *len), valid until sl_http_call_end(). */
const char *sl_http_resp_header(const sl_http_resp *call, const char *name, size_t *len);

/* The answer's sluice-cause (sl_wire.h) in *out: 0; -ENOENT when it has
 * none; -EINVAL when it is malformed or oversized (ignore it: it says
 * nothing). Diagnostics only: relay it (sl_http_reply_cause) or log it,
 * never decide on it. */
int sl_http_resp_cause(const sl_http_resp *call, sl_cause_info *out);

/* Frees the answer; aborts (closes the connection of) a call still under
 * way. Idempotent. */
void sl_http_call_end(sl_http_resp *call);

#endif
