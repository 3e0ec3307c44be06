/* server_int.h: what the server's files share (private). */
#ifndef SL_SERVER_INT_H
#define SL_SERVER_INT_H
#include <assert.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include "addr.h"
#include "admit.h"
#include "http_parse.h"
#include "list.h"
#include "metrics_int.h"
#include "sl_http.h"
#include "sl_router.h"

typedef struct conn conn;
typedef struct srv_reactor srv_reactor;

typedef struct route_info {
    sl_step_fn handler;
    size_t state_size;
    void *arg;
    int lane;                    /* SL_HTTP_LANE_... */
    uint32_t need_ms;            /* sl_http_route_opts */
    bool no_budget_check;
    struct sl_http_upstream *upstream;   /* refused at the head while its fail-fast refuses */
    int idx;                     /* into srv_reactor.need, from start */
    char *method, *pattern;      /* as added, for sl_http_route_set */
    struct route_info *next;     /* sl_http_server.routes */
} route_info;

/* The series a reactor last used for a route's requests (sl__srv_count):
 * one per reactor and route, so no other thread touches it. */
typedef struct route_series {
    const char *dur_method;          /* a method label (a static string) */
    sl_series *dur;                  /* its sluice_http_request_duration_seconds */
    struct { const char *method; int status; sl_series *s; } req[4];   /* sluice_http_requests_total */
    int next;                        /* the entry of req to replace */
} route_series;

/* Why a request was refused with 503 before a handler ran: the reason
 * label of sluice_http_admission_shed_total (docs/net.md, "Admission"). */
typedef enum srv_shed {
    SHED_QUEUE_FULL,          /* the admission queue was full */
    SHED_QUEUE_DELAY,         /* it waited in the queue past its time bound */
    SHED_BUDGET,              /* less budget left than its route needs */
    SHED_UPSTREAM,            /* the upstream its route calls would refuse the call */
    SHED_QUEUE_TIME,          /* it would have waited past the queue's time bound: refused
                                 before it was queued */
    SHED_DRAINING,            /* the server is stopping (not admission: not in shed) */
    SHED_COUNT
} srv_shed;

typedef struct srv_stats {
    uint32_t inflight_peak;   /* the most requests running at once, ever */
    uint64_t requests, shed, timeouts, parse_errors, accepted, closed_idle;
    uint64_t undo_started;    /* undo-lane requests started past the limits */
    /* refusals before a handler ran, by reason (srv_shed; shed is the sum
     * of the admission ones, every reason but SHED_DRAINING) */
    uint64_t shed_by[SHED_COUNT];
    uint64_t expired;         /* 504: the budget was gone before it started */
    uint64_t batch_naps;      /* flooded: sleeps out the rest of a batch period (sl__srv_batch) */
    uint64_t ctx_ends[SL_CAUSE_COUNT];
} srv_stats;

struct srv_reactor {
    sl_http_server *srv;
    sl_reactor *r;
    int fd;
    struct evconnlistener *lev;
    struct event *accept_retry;
    struct event *queue_ev;          /* looks at the admission queue while it is not empty */
    SL_LIST(conn) conns;             /* newest first (by conn.link) */
    uint32_t nconns, inflight, queued;
    uint32_t undo;                   /* undo-lane requests started past the limits */
    SL_LIST(sl_http_req) queue;      /* admission queue, oldest first (by qlink) */
    sl_admit adm;                    /* the adaptive limit, the queue's bound, CoDel's state (admit.h) */
    struct timeval batch_pass;       /* flooded: the loop pass last batched (libevent's cached time) */
    uint64_t batch_end;              /* and when its sleep ended */
    sl_admit_need *need;             /* per route (route_info.idx): its median time */
    int nneed;
    route_series *rser;              /* per route (route_info.idx), then unmatched */
    SL_LIST(sl_http_req) running;    /* requests whose handler task is alive (by rlink) */
    bool draining, stopped;
    bool busy;                       /* draining: counted in sl_http_server.busy */
    bool finished;                   /* draining: listener closed, idle connections closed */
    struct event *grace_ev;
    struct event *drain_ev;          /* draining: looks whether anything is left to do */
    struct event *hard_ev;           /* after the grace period: drops what is left */
    time_t date_at;
    char date[64];                    /* "Date: ...\r\n" */
    size_t date_len;
    srv_stats st;
    struct start_msg *start;         /* posted, not yet run */
    char *rbuf;                      /* reads land here, parsed in place; what
                                        a connection leaves unparsed is copied out */
    char *wbuf;                      /* a response written at once is formatted here */
    sl_msg m_shutdown;
};

typedef struct srv_upstream {
    char name[64];
    sl_http_upstream *up;
} srv_upstream;

/* Tests only (tests/test_listen.c): when set, sl_http_server_start calls
 * it after the check that nobody else listens on the port and before the
 * binds, to widen the window two processes starting at once race in. */
extern void (*sl__listen_pause)(void);

struct sl_http_server {
    sl_runtime *rt;
    srv_upstream *ups;           /* reported by /metrics; fixed once started */
    int nups;
    sl_http_server_opts o;
    sl_metrics *metrics;         /* sl_http_server_metrics: built-in families and the application's */
    sl_metric *m_requests, *m_duration;   /* the built-in families the hot path updates */
    sl_metric *m_up_dur, *m_up_attempts;  /* upstream attempts (client_int.h) */
    sl_metric *m_up_failfast;             /* calls refused by the client (client_int.h) */
    sl_series *m_shed[SHED_COUNT];        /* sluice_http_admission_shed_total{reason} */
    struct builtin_fams *fams;   /* the rest, set at scrape (builtin.c) */
    sl_router *router;
    route_info *routes;          /* every route added, newest first */
    struct sockaddr_storage addr;   /* where to listen (the port set at start if 0) */
    socklen_t addr_len;
    int port;
    int claim;                   /* the port's claim (server.c, claim_port), or -1 */
    bool started;
    int n;
    srv_reactor *sr;
    char hop[SL_CAUSE_HOP_MAX];  /* this hop in sluice-cause: o.name, or HOST:PORT once listening */
    /* the sluice-cause lines of the canned refusals up to "left-ms=", one
     * per canned_cause (sl__reply_causes_init): a refusal copies one */
    char canned[3][sizeof SL_CAUSE_HDR ": v1;cause=caller-deadline;hop=;left-ms=" + SL_CAUSE_HOP_MAX];
    uint8_t canned_len[3];
    _Atomic int shutdown_started;
    _Atomic int draining_left;
    _Atomic int not_ready;       /* /readyz answers 503 (the shutdown began) */
    _Atomic int busy;            /* draining reactors with work in flight */
    struct event *prestop_ev;    /* on reactor 0: the end of the preStop window */
    struct event *sig_term, *sig_int;
    sl_msg m_stopped, m_prestop;
};

/* ---- the life of a request and of a connection (docs/net.md, "Connection and
 * request states") ----------------------------------------------------------------
 *
 * A request has two sides, each moved by one function only:
 *
 *   its handler (req->run, sl__req_set_run, asserting the edge):
 *
 *       PARSED --admitted, room--------------------------> RUNNING --task ends--> ENDED
 *       PARSED --admitted, no room--> QUEUED --a slot---> PARSED --> RUNNING
 *                                     QUEUED --refused (time bound, deadline) or
 *                                              its connection gone--> PARSED
 *
 *     PARSED is also where a request answered by the server itself stays (a
 *     404, a refusal, a parse error): it never runs.
 *
 *   its turn on the connection (req->flushed, sl__req_flushed): false while
 *   it is in the pipeline, true once its answer was written in order, or
 *   dropped because the connection went. Answering (req->replied, the one
 *   answer a request gets, reply.c) happens in any handler state, before
 *   its turn or, once the connection is gone, after it.
 *
 * A request is freed in one place (sl__req_set_run and sl__req_flushed
 * both end in req_maybe_free): when its turn has passed and no handler
 * runs or waits for it (flushed, and PARSED or ENDED). Each live request
 * holds a reference on its connection.
 */
typedef enum req_run {
    REQ_PARSED,               /* no handler runs nor waits: not admitted yet, refused, or answered by us */
    REQ_QUEUED,               /* in the admission queue (srv_reactor.queue) */
    REQ_RUNNING,              /* its handler task lives (srv_reactor.running) */
    REQ_ENDED                 /* its handler task ended */
} req_run;

struct sl_http_req {
    conn *c;
    srv_reactor *sr;
    SL_LINK(sl_http_req) plink; /* conn.pipe: the connection's pipeline, in order */
    SL_LINK(sl_http_req) qlink; /* srv_reactor.queue, while queued */
    SL_LINK(sl_http_req) rlink; /* srv_reactor.running, while its task lives */
    char *head;                 /* copies of target and headers */
    const char *method;
    const char *path, *query;
    size_t path_len, query_len;
    sl_http_header *headers;
    uint32_t nheaders;
    sl_route_match match;
    route_info *route;
    char *body;
    size_t body_len, body_cap;
    sl_ctx *ctx;
    sl_traceparent trace;       /* the request's own span (sl__trace_req_begin) */
    uint8_t span_parent[8];     /* the caller's span-id, if span_has_parent */
    bool span_has_parent;
    uint64_t deadline, t_start;
    uint64_t t_queued, t_run;   /* entered the admission queue; started */
    uint32_t inflight_at;       /* requests running when it started, itself included */
    int status;                 /* answered, for logs and metrics */
    int immediate;              /* answer this status without a handler */
    const char *immediate_code, *immediate_msg;
    req_run run;                /* its handler's state: change it with sl__req_set_run only */
    bool flushed;               /* its turn passed (written or dropped): sl__req_flushed only */
    bool replied;               /* it has its one answer (or a refused attempt: -EPIPE) */
    bool is_head, keep_alive;
    bool reset;                 /* answered by sl_http_req_reset */
    bool retry_after;           /* the answer carries Retry-After (a 503) */
    bool refused_early;         /* refused as its head was parsed: no head copy, trace or log */
    bool orphan;                /* its server was freed while its task lived */
    bool undo_slot;             /* started in the undo lane: holds a slot of sr->undo */
    bool callers_deadline;      /* its deadline is the caller's grpc-timeout (below our own) */
    uint8_t canned_cause;       /* 1 + the server's canned[] line its answer carries, or 0 */
    char *cause;                /* the sluice-cause its answer carries (malloc'd), or NULL */
    sl_task *task;              /* the handler, while it lives */
    sl_task task_mem;           /* its storage: the request goes after it ends */
    char *out;                  /* the formatted response, until its turn */
    size_t out_len;
    bool out_borrowed;          /* out is the reactor's wbuf (written at once) */
    struct evbuffer *extra;     /* headers added by sl_http_reply_header */
    /* the handler's state (sl_http_route's state_size): aligned for any
     * type, as malloc's memory is (svc.h's job relies on it) */
    _Alignas(max_align_t) unsigned char state[];
};

/* A connection's life (conn.c, conn_set_state; states only move forward):
 *
 *   READING --asked to close (Connection: close, HTTP/1.0, a parse error, the
 *             408, out of memory, a drain closing idle ones)--> CLOSING
 *   READING or CLOSING --the peer went (EOF, reset, a write error), the idle
 *             timeout, a reset by sl_http_req_reset, everything answered and
 *             written while CLOSING, the server's teardown--> GONE
 *
 * READING: requests are parsed and served. CLOSING: nothing more is parsed
 * (what arrives is dropped); the pipeline is answered and written, then
 * the socket closes. GONE: the socket is closed and every request of the
 * pipeline has had its turn (dropped); handlers still running are
 * cancelled ("client disconnected").
 *
 * The struct itself is freed by conn_put when the last reference goes and
 * it is GONE: each live request holds one (req_new .. the request's free),
 * and so does any function that calls out (parsing, answering) while the
 * connection may go under it (conn_hold/conn_put around the call). */
typedef enum conn_state { CONN_READING, CONN_CLOSING, CONN_GONE } conn_state;

/* What the connection's one timer watches for (conn.c, "timers"). */
typedef enum conn_timer {
    TIMER_NONE,               /* requests in flight: their budgets govern */
    TIMER_HEADER,             /* a head has begun: it must end within header_timeout_ms */
    TIMER_IDLE                /* nothing in flight: the peer must send within idle_timeout_ms */
} conn_timer;

/* A connection reads and writes its socket itself (plain events, not a
 * bufferevent: one recv per readable event, no FIONREAD ioctl, and no copy
 * of a request that arrives whole). Unparsed input lives in `in` from
 * in_off to in_len: normally the reactor's rbuf for the length of one read
 * callback (in_borrowed), else a buffer of its own. Output the socket did
 * not take waits in `out` from out_off to out_len, with wev armed. */
struct conn {
    srv_reactor *sr;
    int fd;
    struct event *rev, *wev;
    char *in, *out;
    size_t in_off, in_len, in_cap, out_off, out_len, out_cap;
    sl_http_parser p;
    SL_LIST(sl_http_req) pipe;  /* requests parsed and not yet flushed, in order (by plink) */
    sl_http_req *cur;           /* the request being parsed (its head is in, its body not all) */
    uint32_t npipe;             /* requests in pipe */
    uint32_t refs;              /* conn_hold/conn_put: the struct goes at 0 once GONE */
    conn_state st;              /* conn_set_state only */
    struct event *timer;
    uint64_t timer_at;          /* when the pending timer fires (ns), 0 if none */
    uint64_t since;             /* when the current timer_mode began (ns) */
    conn_timer timer_mode;
    bool head_started;          /* bytes of a head are in, the head is not whole */
    bool in_process, again;     /* conn_process runs (again: call it once more) */
    bool teardown;              /* GONE by sl__conn_drop: the runtime stopped, touch no handler */
    bool paused;                /* the throttle channel is over its high mark */
    bool in_borrowed, reading, writing;   /* `in` is the reactor's rbuf; rev, wev armed */
    sl_chan *throttle;          /* the channel whose pressure pauses reading */
    union {                     /* the client's address (sa_family 0: unknown) */
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
    SL_LINK(conn) link;         /* srv_reactor.conns */
};

/* conn.c */
void sl__conn_accept(srv_reactor *sr, int fd, const struct sockaddr *peer);
void sl__conn_flush(conn *c);
void sl__conn_cancel_all(conn *c, sl_cause cause);

/* reply.c: copies `name` into hop (SL_CAUSE_HOP_MAX bytes) if it is a valid
 * sluice-cause hop (sl_wire.h); 0 or -EINVAL (hop untouched). */
int sl__hop_name_set(char *hop, const char *name);
void sl__conn_close_idle(conn *c);
void sl__conn_drop(conn *c);
/* Closes c now, its handlers cancelled ("client disconnected"), while the
 * runtime runs on (sl__conn_drop is for a server being freed). */
void sl__conn_abort(conn *c);
/* Adds up the bytes connections hold: unparsed input, unsent output, and
 * the most one connection holds (for /metrics). */
void sl__conn_buffered(srv_reactor *sr, uint64_t *in, uint64_t *out, uint64_t *most);
/* Frees a request and drops its reference on its connection (conn.c);
 * only through the transitions below. */
void sl__req_done(sl_http_req *req);

/* The one place a request of a connection is freed: once its turn has
 * passed and no handler runs or waits for it. */
static inline void sl__req_maybe_free(sl_http_req *req)
{
    if (req->flushed && req->run != REQ_QUEUED && req->run != REQ_RUNNING)
        sl__req_done(req);
}

/* The edges of the diagram above sl_http_req, a bit each (from * 4 + to). */
#define REQ_EDGE(from, to) (1u << ((from) * 4 + (to)))
#define REQ_EDGES (REQ_EDGE(REQ_PARSED, REQ_QUEUED) | REQ_EDGE(REQ_PARSED, REQ_RUNNING) | \
                   REQ_EDGE(REQ_QUEUED, REQ_PARSED) | REQ_EDGE(REQ_RUNNING, REQ_ENDED))

/* The transitions of a request: each asserts its edge, and may free the
 * request (inline: they run a few times per request, on the hot path). */
static inline void sl__req_set_run(sl_http_req *req, req_run to)
{
    assert(REQ_EDGES & REQ_EDGE(req->run, to));
    req->run = to;
    sl__req_maybe_free(req);
}

static inline void sl__req_flushed(sl_http_req *req)
{
    assert(!req->flushed);
    req->flushed = true;
    sl__req_maybe_free(req);
}
/* Frees a request whose server is gone (an orphan: no connection). */
void sl__req_free(sl_http_req *req);
/* Drops a request's reference on its connection without freeing it
 * (sl_http_server_free cuts running handlers loose before the drop). */
void sl__conn_put(conn *c);

/* server.c */
void sl__srv_admit(sl_http_req *req);

/* Counts a refusal of reactor sr's for `why` (stats and /metrics). */
void sl__srv_shed(srv_reactor *sr, srv_shed why);
/* A connection is readable (its read event's callback, before it reads):
 * while the admission queue is flooded, the first of a loop pass sleeps
 * out what is left of flood_batch_us since the last pass's sleep ended, so
 * the reactor polls its sockets once a period and takes what came in it
 * as one batch (docs/net.md, "Admission": "A flood is read in batches"). */
void sl__srv_batch(srv_reactor *sr);
/* The same for a refusal by the admission queue (full, queue time, queue
 * delay): it also tells the controller (is the queue flooded?). */
void sl__srv_shed_queue(srv_reactor *sr, srv_shed why);
/* Admission as soon as a head is parsed, before anything is made for the
 * request (its body is then discarded, not stored): 0 to go on, or the
 * status that refuses it at once, 504 when its budget (ending at
 * `deadline`) is gone, 503 when less is left than the route needs or the
 * admission queue is full; *code and *msg then name why (literals). Counts
 * the refusal. */
int sl__srv_precheck(srv_reactor *sr, const route_info *ri, uint64_t now, uint64_t deadline,
                     const char **code, const char **msg);
/* Takes a request that never started out of the admission queue. */
void sl__srv_unqueue(sl_http_req *req);
void sl__srv_task_ended(sl_http_req *req);
void sl__srv_conn_gone(srv_reactor *sr);
void sl__srv_count(srv_reactor *sr, sl_http_req *req);

/* builtin.c */
/* Registers the built-in families in srv->metrics. Returns 0 or -ENOMEM. */
int sl__builtin_register(sl_http_server *srv);
void sl__builtin_unregister(sl_http_server *srv);
int sl__builtin_metrics(sl_task *t, void *arg);
int sl__builtin_debug_tasks(sl_task *t, void *arg);
int sl__builtin_debug_channels(sl_task *t, void *arg);
int sl__builtin_debug_deadlocks(sl_task *t, void *arg);
size_t sl__builtin_state_size(void);

/* reply.c */
int sl__reply_format(sl_http_req *req, int status, const char *ctype, const void *body, size_t len);
/* Answers {"error":code,"message":msg} (+ Retry-After for a 503) without
 * printf or JSON: code and msg are literals that need no JSON escaping.
 * The errors of sl_http_reply. */
int sl__reply_static(sl_http_req *req, int status, const char *code, const char *msg);

/* Formats the server's canned sluice-cause lines (overloaded, deadline,
 * caller-deadline) for its hop: once the hop is known, before the
 * reactors start. */
void sl__reply_causes_init(sl_http_server *s);
#endif
