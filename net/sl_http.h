/* sl_http.h: the HTTP/1.1 server.
 *
 * One listener per reactor on the same port (SO_REUSEPORT): each core
 * accepts and serves its own connections, which never move. Each request
 * runs as a task under a request context whose deadline is the smaller of
 * the caller's `grpc-timeout` and the server's budget, with the caller's
 * `traceparent` (or a fresh one) and `tracestate`. The connection's read side stays armed
 * while the handler runs, so a client that goes away cancels the request's
 * context (cause "client disconnected") at once. A handler that has not
 * answered when it ends gets an answer for it: 504 if its budget ran out,
 * 500 otherwise.
 *
 *     static int hello(sl_task *t, void *arg) {
 *         sl_http_req *req = arg;
 *         return sl_http_reply(req, 200, "application/json", "{\"message\":\"Hello\"}", 19);
 *     }
 *     ...
 *     sl_http_server *srv;
 *     sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" });
 *     sl_http_route(srv, "GET", "/hello", hello, 0, NULL);
 *     sl_http_server_start(srv);            // binds; sl_http_server_port(srv)
 *     sl_runtime_run(rt);                   // until shutdown
 *
 * A handler is a task step function (sl_task.h) whose state is the request;
 * what it keeps across waits lives in sl_http_req_state(req), `state_size`
 * zeroed bytes per request. Errors are JSON: {"error":"<code>","message":".."}.
 *
 * Limits (per server, 0 = the default): request line + headers (431),
 * body (413, answered from Content-Length before the body is read), header
 * read timeout (408, then close: slowloris), idle keep-alive timeout,
 * connections per reactor (accept pauses, including on EMFILE), concurrent
 * requests per reactor with a bounded admission queue: beyond it 503 with
 * Retry-After at once, never an unbounded queue. */
#ifndef SL_HTTP_H
#define SL_HTTP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <jansson.h>
#include "sl_chan.h"
#include "sl_ctx.h"
#include "sl_runtime.h"
#include "sl_task.h"
#include "sl_wire.h"
#include "sl_metrics.h"

typedef struct sl_http_server sl_http_server;
typedef struct sl_http_req sl_http_req;

/* Who may use /debug/... (the built-in views and any route of the
 * application under /debug/): they show tasks, channels and traces, which
 * a production service does not show the network unless asked to: the
 * default (0) is loopback only. /healthz and /metrics are not affected:
 * health checkers and scrapers run elsewhere, and they show counts, not
 * internals. */
enum {
    SL_HTTP_DEBUG_LOOPBACK = 0,  /* clients on 127.0.0.0/8 (the default); anyone else gets 403 */
    SL_HTTP_DEBUG_ON,            /* anyone */
    SL_HTTP_DEBUG_OFF,           /* nobody: 404, as if there were no such route */
};

typedef struct sl_http_server_opts {
    const char *listen;          /* "HOST:PORT" (IPv4, [IPv6] or a name), port 0 picks a free one (default 127.0.0.1:8080) */
    const char *name;            /* this hop's name in sluice-cause answers: 1-47 bytes of
                                    [a-z0-9._:[]-] (copied; default: the HOST:PORT it listens on) */
    uint32_t timeout_ms;         /* request budget (10000) */
    uint32_t max_head;           /* request line + headers, bytes (16 KiB) -> 431 */
    uint32_t max_headers;        /* header lines (100) -> 431 */
    uint64_t max_body;           /* body bytes (1 MiB) -> 413 */
    uint32_t header_timeout_ms;  /* to receive a whole head (10000) -> 408 */
    uint32_t idle_timeout_ms;    /* keep-alive connection with nothing to do (60000) */
    uint32_t max_conns;          /* per reactor (10000) */
    uint32_t max_inflight;       /* running requests per reactor (1024) */
    uint32_t max_queue;          /* admitted but waiting, per reactor (1024) */
    uint32_t max_pipeline;       /* requests in flight per connection (16); beyond
                                    it, and while 256 KiB of answers wait for a
                                    client that does not read them, nothing more is
                                    parsed, and reading stops at 256 KiB of unparsed
                                    input: TCP pushes back (/metrics shows the
                                    buffered bytes) */
    uint32_t retry_after_s;      /* Retry-After of a 503 (1) */
    uint32_t grace_ms;           /* graceful shutdown: time for in-flight requests (5000) */
    uint32_t prestop_ms;         /* graceful shutdown: the preStop window before the drain,
                                    /readyz failing and everything still served (2000;
                                    at most 600000, or SL_HTTP_PRESTOP_OFF: none) */
    bool bad_timeout_ignored;    /* a malformed grpc-timeout: ignore it (default: 400) */
    bool access_log;             /* one line per request through the log sink (sl_log.h;
                                    stderr at once if no sink is open) (off) */
    bool no_builtin;             /* no /healthz, /metrics, /debug/...  routes */
    /* called on reactor 0 once a graceful shutdown has closed everything;
     * NULL: sl_runtime_stop() */
    void (*on_stopped)(sl_http_server *srv, void *arg);
    void *on_stopped_arg;
    int debug;                   /* SL_HTTP_DEBUG_ON, _LOOPBACK or _OFF */
    uint32_t max_undo;           /* undo-lane requests running past the limits, per
                                    reactor (256); beyond it they meet the normal
                                    admission (sl_http_route_set) */
    /* Adaptive admission (docs/net.md, "Admission"); the defaults need no
     * tuning. Within max_inflight and max_queue, per reactor:
     *  - a concurrency limit that follows measured latency: it shrinks
     *    while requests take longer than their quiet baseline plus
     *    queue_target_ms (or twice it), grows while they do not;
     *  - a queue bounded in time (queue_wait_ms), first come first
     *    served: a request that would wait longer, at the rate the
     *    server drains its queue, is refused at once (503), one that
     *    waited longer when seen; CoDel's state (its oldest waiter past
     *    queue_target_ms for a whole queue_interval_ms, and growing) tells
     *    the limit an overload from a queue that stands still;
     *  - deadline-aware: a request whose remaining budget is below what its
     *    route needs (sl_http_route_opts.need_ms, else the route's recent
     *    median time) is refused at once (503), before its body is stored;
     *    one whose budget is gone gets 504.
     * SL_HTTP_ADMISSION_FIXED turns them all off: max_inflight run, the
     * queue is FIFO up to max_queue, the rest get 503 (the behaviour
     * before issue 14, for comparisons). */
    int admission;               /* SL_HTTP_ADMISSION_ADAPTIVE (default) or _FIXED */
    uint32_t queue_target_ms;    /* CoDel's target (5; or the service time, up to 4 x) */
    uint32_t queue_interval_ms;  /* CoDel interval and the limit's window (100; >= target) */
    uint32_t limit_min;          /* the adaptive limit's floor (16, or max_inflight if
                                    smaller; <= max_inflight) */
    uint32_t limit_initial;      /* where it starts (32) */
    uint32_t queue_wait_ms;      /* the longest a request may wait in the queue (0: twice
                                    the longer of queue_target_ms and the requests'
                                    recent mean time, once it while the queue is flooded:
                                    seldom empty for an interval, refusing more
                                    than ended; else
                                    >= queue_target_ms):
                                    a request that would wait longer at the rate the server
                                    drains its queue is refused at its head, one that
                                    waited longer is refused when seen */
    uint32_t flood_batch_us;     /* while the admission queue is flooded, the reactor reads
                                    its connections in batches: it polls them at most once
                                    this period, sleeping out the rest after a pass (500;
                                    at most 10000, or SL_HTTP_FLOOD_BATCH_OFF: never) */
    struct sl_tracer *tracer;    /* samples requests and exports their spans (sl_tracer.h);
                                    NULL: a request keeps its caller's sampled flag, a
                                    trace started here is not sampled, nothing is exported.
                                    Must outlive the server. */
} sl_http_server_opts;

/* sl_http_server_opts.prestop_ms: drain at once (tests; a program whose
 * load balancer is told otherwise) */
#define SL_HTTP_PRESTOP_OFF UINT32_MAX
#define SL_HTTP_FLOOD_BATCH_OFF UINT32_MAX

enum {
    SL_HTTP_ADMISSION_ADAPTIVE = 0,
    SL_HTTP_ADMISSION_FIXED,
};

/* Creates a server on `rt` (not started). Copies opts. The listen HOST is
 * a numeric IPv4 address, an IPv6 one in brackets ("[::]:8081" listens on
 * every address, IPv4 too; "[::1]:8081"), "localhost" (127.0.0.1) or a
 * name, looked up now, blocking (the hosts file, then DNS: see
 * sl_client.h), to listen on its first address. Returns 0, -ENOMEM,
 * -EINVAL (not HOST:PORT: a bad host or port; an unknown `debug` policy
 * or `admission`; prestop_ms above 600000; flood_batch_us above 10000; queue_target_ms above
 * queue_interval_ms; queue_wait_ms below
 * queue_target_ms (but not 0); limit_min above
 * max_inflight), -ENOENT (no such name), -EAGAIN (no answer from the
 * resolver). */
int sl_http_server_new(sl_http_server **out, sl_runtime *rt, const sl_http_server_opts *opts);

/* Adds a route (sl_router.h patterns). `handler` runs as a task with the
 * request as its state; `state_size` zeroed bytes are its own
 * (sl_http_req_state, aligned for any type), `arg` is shared
 * (sl_http_req_arg). Before start only. `method` and `pattern` are copied;
 * `arg` is not: the server only hands it to every handler, on every
 * reactor's thread at once, so it must outlive the server
 * (sl_http_server_free) and be safe to read from all reactors.
 * Returns 0, -EINVAL, -EEXIST, -ENOMEM, -EBUSY (started). */
int sl_http_route(sl_http_server *srv, const char *method, const char *pattern,
                  sl_step_fn handler, size_t state_size, void *arg);

/* Admission lanes: how a route's requests meet the server's admission
 * control (docs/net.md, "Admission").
 *  - NORMAL: the limits, the admission queue and shedding (503) apply.
 *  - UNDO: work that undoes a step already taken (a release, a void). A
 *    compensation that is shed leaves the books wrong for as long as the
 *    overload lasts, so these start at once, past max_inflight and the
 *    queue, while fewer than max_undo of them run on the reactor; beyond
 *    that bound they are admitted like NORMAL ones, so a flood of them
 *    cannot take the server.
 *  - CONTROL: health checks and metrics (the built-in /healthz and
 *    /metrics are in it): started at once, never queued or shed, so a busy
 *    server still answers its probes and its scrapes. Keep it to cheap
 *    handlers that do not wait.
 *  - CONTINUE: work that continues a request admitted before, elsewhere in
 *    a chain (a payment's callback to the order it pays): shedding it
 *    wastes all the work done for it upstream. It skips the adaptive limit
 *    and the queue, up to max_inflight; beyond that, normal admission. Its
 *    budget is still checked.
 * UNDO and CONTROL requests are never refused for their budget. */
enum {
    SL_HTTP_LANE_NORMAL = 0,
    SL_HTTP_LANE_UNDO,
    SL_HTTP_LANE_CONTROL,
    SL_HTTP_LANE_CONTINUE,
};

typedef struct sl_http_route_opts {
    int lane;                    /* SL_HTTP_LANE_NORMAL (default), _UNDO, _CONTROL, _CONTINUE */
    uint32_t need_ms;            /* deadline-aware admission: a request with less budget
                                    left is refused at once (503); 0: the route's recent
                                    median time, learned per reactor */
    bool no_budget_check;        /* never refuse this route's requests for their budget */
    struct sl_http_upstream *upstream;   /* the upstream every request of this route calls
                                    (sl_client.h; same runtime, must outlive the
                                    server), or NULL: while that upstream's fail-fast
                                    would refuse the call (its throttle, or less budget
                                    than its median), the request is refused at its head
                                    (503, reason "upstream") instead of started to fail
                                    at the call with its first steps wasted. NORMAL lane
                                    and adaptive admission only */
} sl_http_route_opts;

/* Sets the options of a route added before with the same method and
 * pattern (byte for byte). Copies opts. Before start only. Returns 0,
 * -EINVAL (NULL argument, unknown lane, need_ms above 24 h), -EXDEV (an
 * upstream made on another runtime), -ENOENT (no such route), -EBUSY
 * (started). */
int sl_http_route_set(sl_http_server *srv, const char *method, const char *pattern,
                      const sl_http_route_opts *opts);

/* Binds one listening socket per reactor (SO_REUSEPORT among this
 * server's reactors only: if another process already listens on the port,
 * -EADDRINUSE, rather than sharing its traffic) and starts serving
 * when the reactors run. The port is claimed first, atomically (an
 * abstract Unix socket named "sluice-listen HOST:PORT", held until
 * sl_http_server_free or the process's end): of two servers starting on
 * one address in the same instant, in one process or two, exactly one
 * starts and the other gets -EADDRINUSE. SIGPIPE is ignored from then on
 * unless the program has its own handler (a client that goes mid-answer
 * must not kill the process). Returns 0, -EALREADY, or -errno from
 * socket/bind/listen (-EADDRINUSE...). */
int sl_http_server_start(sl_http_server *srv);

/* The bound port (after start). */
int sl_http_server_port(const sl_http_server *srv);

/* The server's metrics registry (sl_metrics.h): families registered in it
 * are served by /metrics with the built-in ones, and live until
 * sl_http_server_free. Register before start (or from one thread at a
 * time); update from anywhere. NULL only for a NULL server. */
sl_metrics *sl_http_server_metrics(sl_http_server *srv);

/* Graceful shutdown, in the shape orchestrators expect (docs/net.md,
 * "Draining"):
 *  1. the preStop window (prestop_ms): GET /readyz answers 503 while
 *     everything is still served as before, so load balancers stop
 *     sending new work before any is refused (a plain SIGTERM with no
 *     preStop hook thus drains without a reset);
 *  2. the drain: new connections are still accepted, new work (routes of
 *     the NORMAL lane) gets 503 + Connection: close, requests that belong
 *     to work in flight (the CONTINUE, UNDO and CONTROL lanes: callbacks,
 *     compensations, probes) are served, every answer closes its
 *     connection; once no reactor has a request left, idle connections
 *     and the listeners close (new clients are refused, not reset);
 *  3. at grace_ms after the drain began, what still runs is cancelled with
 *     cause "shutdown" (its clients get 503), and 500 ms later connections
 *     left are dropped; then on_stopped is called.
 * So a server exits within prestop_ms + grace_ms + 0.5 s. From any reactor
 * or thread (not from a signal handler: use sl_http_server_handle_signals).
 * Idempotent. GET /livez and /healthz answer 200 throughout. */
void sl_http_server_shutdown(sl_http_server *srv);

/* Makes SIGTERM and SIGINT start a graceful shutdown (libevent signal
 * events on reactor 0). Returns 0 or -ENOMEM. */
int sl_http_server_handle_signals(sl_http_server *srv);

/* Makes /metrics report the calls of `up` (sl_client.h) under `name`:
 * sluice_upstream_calls_total{upstream="NAME",result="ok|refused|reset|
 * timeout|cancelled|busy|protocol"} and sluice_upstream_events_total
 * {upstream,event="retried|ejected"}, summed over reactors,
 * sluice_upstream_connections{upstream,state="active|idle|waiting"}, and
 * each attempt in sluice_upstream_request_duration_seconds{upstream,
 * replica} and sluice_upstream_attempts_total{upstream,replica,result}
 * (docs/metrics.md). While the server lives: sl_http_server_free stops it.
 * Before start only; `up` must be on the server's runtime and outlive the
 * server. Returns 0, -EINVAL (NULL, or a name that is empty, longer than
 * 63 bytes or has a character outside [A-Za-z0-9_.-]), -EEXIST (the name
 * is taken), -EXDEV (another runtime), -EBUSY (started), -ENOMEM. */
typedef struct sl_http_upstream sl_http_upstream;
int sl_http_server_add_upstream(sl_http_server *srv, const char *name, sl_http_upstream *up);

/* Frees the server; call after sl_runtime_run() returned. */
void sl_http_server_free(sl_http_server *srv);

/* ---- requests ------------------------------------------------------------------ */

/* The getters below point into the request's own copy of what arrived:
 * valid while the request is, that is until its handler task ends (its
 * last step returned), also after the reply; copy what must outlive it.
 * They are not NUL-terminated unless said so (path, query, header values,
 * params: use *len). Call them on the request's reactor only. */

const char *sl_http_req_method(const sl_http_req *req);         /* "GET" */
/* The path without the query, and the query without '?' (len 0 if none). */
const char *sl_http_req_path(const sl_http_req *req, size_t *len);
const char *sl_http_req_query(const sl_http_req *req, size_t *len);
/* A header value (any case name), or NULL. */
const char *sl_http_req_header(const sl_http_req *req, const char *name, size_t *len);
/* A route capture ("{id}"), or NULL. */
const char *sl_http_req_param(const sl_http_req *req, const char *name, size_t *len);
/* The whole body (NUL-terminated for convenience; len excludes the NUL). */
const char *sl_http_req_body(const sl_http_req *req, size_t *len);
void *sl_http_req_state(sl_http_req *req);
void *sl_http_req_arg(const sl_http_req *req);
/* The request's context (its deadline, cancel and cause) and trace. The
 * context carries its own copy of the trace (sl_ctx_trace, sl_wire.h) and
 * the tracestate received with it (sl_ctx_tracestate, sl_tracestate.h), so
 * contexts derived from it may outlive the request. The trace is the
 * request's own span: the caller's trace-id (or a fresh one), a span-id of
 * its own, and flags holding only `sampled`, as the tracer's sampler says
 * (sl_tracer.h). */
sl_ctx *sl_http_req_ctx(const sl_http_req *req);
const sl_traceparent *sl_http_req_trace(const sl_http_req *req);
/* The client's IPv4 address (host byte order) and port; an IPv6 client's
 * port and address 0 (an IPv4 client of a dual-stack "[::]" listener, whose
 * address is ::ffff:a.b.c.d, gets a.b.c.d). Kept for IPv4 programs: use
 * sl_http_req_peer_addr, which knows IPv6. */
uint32_t sl_http_req_peer(const sl_http_req *req, uint16_t *port);
/* The client's address, AF_INET or AF_INET6 with its port (length in *len
 * if len is not NULL), valid while the request is; NULL if unknown. */
const struct sockaddr *sl_http_req_peer_addr(const sl_http_req *req, socklen_t *len);
/* The same as text into buf (n bytes; SL_HTTP_ADDR_STR_MAX is enough):
 * "10.0.0.7:41234" or "[::1]:41234", "?" if unknown. Returns buf. */
#define SL_HTTP_ADDR_STR_MAX 56
const char *sl_http_req_peer_str(const sl_http_req *req, char *buf, size_t n);
/* Whether the client connected from a loopback address (127.0.0.0/8, ::1,
 * or ::ffff:127.0.0.0/104 on a dual-stack listener): admin endpoints use it
 * to refuse anyone else (403) even when the server listens on all
 * addresses. */
bool sl_http_req_from_loopback(const sl_http_req *req);
/* The route pattern that matched ("/orders/{id}"). */
const char *sl_http_req_route(const sl_http_req *req);

/* Parses the body as JSON. Returns 0 and a new reference in *out; on
 * invalid JSON, a body that is not an object, or an empty body, answers
 * 400 {"error":"bad_request","message":...} itself and returns -EINVAL. */
int sl_http_req_json(sl_http_req *req, json_t **out);

/* ---- responses: once per request; a second reply returns -EALREADY ------------- */

/* Adds a header to the coming reply (copied). Returns 0, -EALREADY, -EINVAL
 * (CR or LF in name or value), -ENOMEM. */
int sl_http_reply_header(sl_http_req *req, const char *name, const char *value);

/* Answers with `status` and the body (copied). Returns 0, -EALREADY,
 * -EINVAL (status out of 100..599), -ENOMEM, -EPIPE (the client is gone:
 * nothing is sent). */
int sl_http_reply(sl_http_req *req, int status, const char *content_type, const void *body, size_t len);

/* Answers with a JSON body; takes the reference to `body`. */
int sl_http_reply_json(sl_http_req *req, int status, json_t *body);

/* Answers {"error":code,"message":...} with `status`. */
int sl_http_reply_error(sl_http_req *req, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

bool sl_http_replied(const sl_http_req *req);

/* ---- why an error answer: the sluice-cause header (sl_wire.h, docs/context.md) ---- */

/* An answer with status 502, 503, 504 or 508 carries a sluice-cause header
 * saying why and which hop decided, and sl_http_reply_error adds the same
 * in words to its message ("... (cause: caller-deadline at payment-svc
 * (called with 180 ms))"). This hop's own cause, unless a handler relayed
 * another (below): its context's cause once it ended (deadline: its own
 * timeout; caller-deadline: the grpc-timeout it was called with, when that
 * was below its own; disconnect; shutdown; ...), else by status (503
 * overloaded, 504 deadline, 508 loop, 502 upstream); the hop is the
 * server's name; left-ms the budget the request arrived with. The access
 * log (cause=...) and the request's span (sluice.cause) show it too.
 * Fills *out with what an answer with `status` carries (or would). Returns
 * 0, or -ENOENT: no cause for this status and none relayed. */
int sl_http_req_cause(const sl_http_req *req, int status, sl_cause_info *out);

/* Makes the coming answer carry *ci (copied) instead of this hop's own
 * cause, whatever its status: a handler that passes on an upstream's
 * failure relays the upstream's cause (sl_http_resp_cause), so that a
 * caller three hops up learns which hop ran out of time and with what
 * budget. Returns 0; -EALREADY (answered, or a cause set already); -EINVAL
 * (NULL, or *ci would not format: sl_cause_hdr_format); -ENOMEM. */
int sl_http_reply_cause(sl_http_req *req, const sl_cause_info *ci);

/* Fault injection: closes the request's connection at once with a TCP
 * reset (SO_LINGER {1, 0}) instead of an answer. The request counts as
 * answered (no automatic 500/504; metrics and the access log say 444), the
 * other requests pipelined on that connection are dropped (their handlers
 * cancelled with "client disconnected"), and the server goes on serving.
 * This request's own context is left alone: its handler may go on.
 * Returns 0, -EALREADY (answered already), -EPIPE (the client is gone). */
int sl_http_req_reset(sl_http_req *req);

/* Backpressure to the socket: while `ch` holds `high` or more elements the
 * server reads and parses nothing more from this request's connection (so
 * TCP pushes back on the client instead of memory growing), and it resumes
 * when `ch` falls to `low`. Requests already parsed (up to max_pipeline)
 * still run. Sets ch's pressure callback (sl_chan_set_pressure);
 * the channel must outlive the connection, or be released first with
 * ch NULL. Returns 0, -EINVAL, -EPIPE (the client is gone), -EXDEV. */
int sl_http_req_throttle(sl_http_req *req, sl_chan *ch, size_t high, size_t low);

#endif
