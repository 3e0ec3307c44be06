/* engine.h: sluice-load's generator (internal).
 *
 * One worker per reactor. A worker owns its connections (non-blocking
 * sockets on raw libevent events of its reactor's base: one request per
 * connection at a time, no pipelining), its share of the schedule, and its
 * own load_stats. The worker's life (start, measured window, drain, close)
 * is a sluice task; the hot path is plain callbacks. Nothing is shared
 * between workers but read-only options and a few relaxed counters for the
 * progress line.
 *
 * Open loop: request j (over all workers) is due at t_begin + j / rate;
 * worker i sends j = i, i + N, i + 2N... A timerfd (ns precision, where
 * libevent's own timers round to milliseconds) wakes the worker at the next
 * due time and it sends every request that is due. A due request takes an
 * idle connection, else opens a new one (up to the cap), else waits in a
 * FIFO. Its latency runs from the due time whatever happened in between:
 * that is the correction for coordinated omission.
 *
 * Closed loop: each connection sends its next request when the answer to
 * the previous one has come; latency runs from the actual send.
 *
 * A sweep every few milliseconds times out requests past their deadline
 * (in flight or still waiting for a connection), reopens failed closed-loop
 * connections, and seals the seconds whose requests have all ended. */
#ifndef LOAD_ENGINE_H
#define LOAD_ENGINE_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include "http_parse.h"
#include "opts.h"
#include "sluice.h"
#include "stats.h"
#include "tick.h"

#define LOAD_BEHIND_NS (1 * SL_NS_PER_MS)   /* sent this late: behind schedule */
#define LOAD_RBUF (64 * 1024)

struct worker;

typedef struct lreq {
    uint64_t start;             /* latency origin: due time or send time */
    uint64_t seq;
    bool measured;
} lreq;

enum { C_FREE, C_CONNECTING, C_BUSY, C_IDLE };

typedef struct lconn {
    struct worker *w;
    int fd, state;
    bool parser_ready, in_idle;
    bool retry;                 /* closed loop: reopen at the next sweep */
    struct event *rev, *wev;
    sl_http_parser p;
    int status;                 /* of the answer being read */
    lreq req;
    uint64_t deadline;
    char *out;                  /* the request's bytes */
    size_t out_len, out_off, out_cap;
    struct lconn *next_idle;
} lconn;

typedef struct load_shared {
    const load_opts *o;
    sl_runtime *rt;
    int nthreads;
    uint64_t t_begin, t0, t_end;
    double period_ns;           /* open loop, over all workers */
    char *prefix;               /* request line, Host, user headers */
    size_t prefix_len;
    atomic_int done;
    atomic_bool interrupted;    /* SIGINT: end the window now */
    struct worker **workers;
} load_shared;

typedef struct worker {
    load_shared *sh;
    int id;
    sl_reactor *r;
    struct event_base *base;
    load_stats st;
    int fail;                   /* -ENOMEM and the like: the run is invalid */
    lconn *conns;
    int nconns, opened, busy;
    lconn *idle;
    uint64_t next_j;            /* open loop: next request index */
    uint64_t seq;               /* closed loop */
    bool gen_done;              /* no more requests will start */
    int tfd;
    load_tick tick;             /* open loop: the timer's phase (tick.h) */
    struct event *tev, *sweep;
    lreq *pq;                   /* open loop: requests waiting for a connection */
    size_t pq_cap, pq_head, pq_len;
    uint64_t t_end;             /* the shared end, or earlier on SIGINT */
    size_t sealed;              /* seconds sealed so far */
    uint64_t rng, last_progress;
    char *rbuf;
    char *bodybuf;              /* an expanded body (body.max_len bytes) */
    sl_task *task;
    bool draining;
    _Atomic uint64_t a_done, a_err, a_p99;   /* for the progress line */
} worker;

/* conn.c */
void conn_open(lconn *c, const lreq *rq);
void conn_send(lconn *c, const lreq *rq, uint64_t now);
void conn_close(lconn *c);
void conn_fini(lconn *c);

/* worker.c: a request ended on c (status >= 0 an answer, else err kind). */
void worker_finish(lconn *c, int status, int err, bool keep);
void worker_conn_freed(worker *w, lconn *c);
int worker_spawn(worker *w);

#endif
