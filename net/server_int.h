/* server_int.h: what the server's files share (private). */
#ifndef SL_SERVER_INT_H
#define SL_SERVER_INT_H
#include <netinet/in.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include "addr.h"
#include "admit.h"
#include "http_parse.h"
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
    int idx;                     /* into srv_reactor.need, from start */
    char *method, *pattern;      /* as added, for sl_http_route_set */
    struct route_info *next;     /* sl_http_server.routes */
} route_info;

#define LAT_BUCKETS 14   /* le: 1 2 5 10 25 50 100 250 500 1000 2500 5000 10000 +Inf ms */
#define MAX_ROUTE_STATS 64

typedef struct route_stat {
    const char *route;   /* pattern, or "" for unrouted */
    int status;
    uint64_t count;
} route_stat;

typedef struct srv_stats {
    uint32_t inflight_peak;   /* the most requests running at once, ever */
    uint64_t requests, shed, timeouts, parse_errors, accepted, closed_idle;
    uint64_t undo_started;    /* undo-lane requests started past the limits */
    /* admission refusals by reason (shed is their sum, with shed_full) */
    uint64_t shed_full;       /* 503: the queue was full */
    uint64_t shed_delay;      /* 503: waited past the queue-delay target (CoDel) */
    uint64_t shed_budget;     /* 503: less budget left than the route needs */
    uint64_t expired;         /* 504: the budget was gone before it started */
    uint64_t ctx_ends[SL_CAUSE_COUNT];
    uint64_t lat[LAT_BUCKETS];
    double lat_sum_s;
    route_stat routes[MAX_ROUTE_STATS];
    int nroutes;
} srv_stats;

struct srv_reactor {
    sl_http_server *srv;
    sl_reactor *r;
    int fd;
    struct evconnlistener *lev;
    struct event *accept_retry;
    struct event *queue_ev;          /* looks at the admission queue while it is not empty */
    conn *conns;
    uint32_t nconns, inflight, queued;
    uint32_t undo;                   /* undo-lane requests started past the limits */
    sl_http_req *q_head, *q_tail;    /* admission queue, oldest first */
    sl_admit adm;                    /* the adaptive limit and CoDel (admit.h) */
    sl_admit_need *need;             /* per route (route_info.idx): its median time */
    int nneed;
    sl_http_req *running;            /* requests whose handler task is alive */
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

struct sl_http_server {
    sl_runtime *rt;
    srv_upstream *ups;           /* reported by /metrics; fixed once started */
    int nups;
    sl_http_server_opts o;
    sl_router *router;
    route_info *routes;          /* every route added, newest first */
    struct sockaddr_storage addr;   /* where to listen (the port set at start if 0) */
    socklen_t addr_len;
    int port;
    bool started;
    int n;
    srv_reactor *sr;
    _Atomic int shutdown_started;
    _Atomic int draining_left;
    _Atomic int not_ready;       /* /readyz answers 503 (the shutdown began) */
    _Atomic int busy;            /* draining reactors with work in flight */
    struct event *prestop_ev;    /* on reactor 0: the end of the preStop window */
    struct event *sig_term, *sig_int;
    sl_msg m_stopped, m_prestop;
};

struct sl_http_req {
    conn *c;
    srv_reactor *sr;
    sl_http_req *next;          /* the connection's pipeline, in order */
    sl_http_req *qnext, *qprev; /* admission queue */
    sl_http_req *rprev, *rnext; /* srv_reactor.running */
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
    bool is_head, keep_alive, replied, started, task_done, flushed, queued;
    bool reset;                 /* answered by sl_http_req_reset */
    bool orphan;                /* its server was freed while its task lived */
    bool undo_slot;             /* started in the undo lane: holds a slot of sr->undo */
    sl_task *task;              /* the handler, while it lives */
    sl_task task_mem;           /* its storage: the request goes after it ends */
    char *out;                  /* the formatted response, until its turn */
    size_t out_len;
    bool out_borrowed;          /* out is the reactor's wbuf (written at once) */
    struct evbuffer *extra;     /* headers added by sl_http_reply_header */
    unsigned char state[];
};

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
    sl_http_req *head, *tail, *cur;
    uint32_t npipe, alive_reqs;
    struct event *timer;
    uint64_t timer_at;          /* when the pending timer fires (ns), 0 if none */
    uint64_t since;             /* when the current timer_mode began (ns) */
    int timer_mode;             /* 0 none, 1 header, 2 idle */
    bool head_started, closing, gone, in_process, again, freed, teardown, paused;
    bool in_borrowed, reading, writing;
    sl_chan *throttle;          /* the channel whose pressure pauses reading */
    union {                     /* the client's address (sa_family 0: unknown) */
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
    conn *prev, *next;
};

/* conn.c */
void sl__conn_accept(srv_reactor *sr, int fd, const struct sockaddr *peer);
void sl__conn_flush(conn *c);
void sl__conn_cancel_all(conn *c, sl_cause cause);
void sl__conn_close_idle(conn *c);
void sl__conn_drop(conn *c);
/* Closes c now, its handlers cancelled ("client disconnected"), while the
 * runtime runs on (sl__conn_drop is for a server being freed). */
void sl__conn_abort(conn *c);
/* Adds up the bytes connections hold: unparsed input, unsent output, and
 * the most one connection holds (for /metrics). */
void sl__conn_buffered(srv_reactor *sr, uint64_t *in, uint64_t *out, uint64_t *most);
void sl__req_release(sl_http_req *req);
void sl__req_free(sl_http_req *req);

/* server.c */
void sl__srv_admit(sl_http_req *req);
/* Deadline-aware admission as soon as the head is parsed (the body is then
 * discarded, not stored): sets req->immediate to 503 or 504 when the
 * request cannot finish within its budget. */
void sl__srv_precheck(sl_http_req *req);
/* Takes a request that never started out of the admission queue. */
void sl__srv_unqueue(sl_http_req *req);
void sl__srv_task_ended(sl_http_req *req);
void sl__srv_conn_gone(srv_reactor *sr);
void sl__srv_count(srv_reactor *sr, sl_http_req *req);

/* builtin.c */
int sl__builtin_metrics(sl_task *t, void *arg);
int sl__builtin_debug_tasks(sl_task *t, void *arg);
int sl__builtin_debug_channels(sl_task *t, void *arg);
int sl__builtin_debug_deadlocks(sl_task *t, void *arg);
size_t sl__builtin_state_size(void);

/* reply.c */
int sl__reply_format(sl_http_req *req, int status, const char *ctype, const void *body, size_t len);
#endif
