/* svc.h: what the three services of the demo chain share.
 *
 * A program describes itself (svc_prog), adds its routes with svc_route()
 * and runs: svc_main() parses the command line, starts the runtime and the
 * server, prints `listening on HOST:PORT`, handles SIGTERM/SIGINT (drain,
 * then end the background tasks, exit 0) and frees everything.
 *
 * A business handler is written once for the three modes:
 *
 *     static int get_order(sl_task *t, svc_job *job) {
 *         struct my_state *st = svc_job_state(job);
 *         SL_BEGIN(t);
 *         ... job->param, job->body, SL_AWAIT on calls and locks ...
 *         svc_reply(job, 200, json, len);
 *         SL_END(t);
 *     }
 *
 * In safe and guarded mode it runs in the request's task under the
 * request's context (deadline, disconnect). In naive mode the request's
 * task hands a copy of the request to a worker task running under
 * sl_ctx_without_cancel() of the request's context (the trace travels, no
 * deadline is sent or honoured, a disconnect cancels nothing) and waits for
 * its answer; if the client goes, the worker goes on and its answer is
 * dropped. Either way the fault injector (svc_fault.h) runs first.
 *
 * State is sharded over the reactors: svc_owner() names the reactor that
 * owns a key, and svc_hop.h runs a step there. Each reactor has an
 * svc_shard that only its own thread touches. */
#ifndef SVC_H
#define SVC_H
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sluice.h"
#include "sl_client.h"
#include "sl_http.h"
#include "svc_fault.h"
#include "svc_json.h"
#include "svc_opts.h"
#include "svc_tracing.h"

typedef struct svc svc;
typedef struct svc_job svc_job;

/* One reactor's share. Touched only on its reactor (or before the runtime
 * runs, and after it stopped). */
typedef struct svc_shard {
    svc *s;
    sl_reactor *r;
    int id;
    sl_group bg;              /* naive workers, hop tasks, compensations */
    bool closing;             /* shutting down: bg takes no more tasks */
    svc_fault fault;          /* this reactor's copy of the fault in force */
    svc_job *held;            /* requests parked by a "hold" fault, until it changes */
    uint64_t rng;             /* xorshift state (ids, error_rate) */
    void *app;                /* the program's state for this shard */
} svc_shard;

typedef int (*svc_handler)(sl_task *t, svc_job *job);

struct svc {
    const svc_prog *prog;
    svc_opts o;
    sl_runtime *rt;
    sl_http_server *srv;
    sl_http_upstream *up;     /* the program's one upstream list */
    sl_tracer *tracer;        /* NULL: no sampler or endpoint given (svc_tracing.h) */
    int n;                    /* reactors */
    svc_shard *shards;
    struct route_def *routes; /* freed at the end */
    atomic_int closing_left;
    /* the program's hooks: check its own options (before anything is made;
     * -EINVAL with a one-line reason in err means bad usage), make and free
     * a shard's state */
    int (*check)(svc *s, char *err, size_t errlen);
    int (*app_init)(svc_shard *sh);
    void (*app_free)(svc_shard *sh);
    /* the program's database (svc_store.h): its schema (SQL, CREATE ... IF
     * NOT EXISTS), set before svc_setup, which opens --data DIR/<name>.db;
     * and what to do at start, blocking, before the server runs (NULL:
     * nothing; < 0: exit 1 with its one-line reason in err): seed the
     * stock, settle the orders a crash left PENDING. The outbox's rows are
     * posted again after it (svc_undo_resume). */
    const char *schema;
    struct svc_store *store;
    int (*recover)(svc *s, char *err, size_t errlen);
    char *tmp_data;           /* the default data directory made (removed at a clean exit) */
};

/* Hooks for a program whose shard state is one map of malloc'd nodes
 * (sh->app is that svc_map): set them as app_init / app_free. */
int svc_one_map_init(svc_shard *sh);
void svc_one_map_free(svc_shard *sh);

/* A request as a business handler sees it. */
struct svc_job {
    svc *s;
    svc_shard *sh;            /* the shard of the reactor running the handler */
    sl_ctx *ctx;              /* the context the work runs under */
    uint64_t tag;             /* the request's trace tag (lock holders carry it) */
    const char *body;         /* NUL-terminated */
    size_t body_len;
    const char *param;        /* the route's one capture ({id}, {item}), or NULL */
    size_t param_len;
    const char *query;        /* the query without '?' (query_len bytes), or NULL */
    size_t query_len;
    /* private */
    sl_http_req *req_;        /* safe/guarded: the request */
    struct svc_naive *naive_; /* naive: where the answer goes */
    sl_ctx *link_;            /* a context carrying a copy of the trace, for hops */
    const struct route_def *route_;
    svc_job *held_prev_, *held_next_;   /* on sh->held while a hold fault parks it */
    sl_task *held_t_;                   /* the task parked there */
    int phase_, rc_;
    /* the handler's state: aligned for any type, as sl_http_req_state is
     * (net/server_int.h), so that svc_job_state's pointer may be any
     * struct's */
    alignas(max_align_t) unsigned char state_[];
};

static inline void *svc_job_state(svc_job *job) { return job->state_; }

/* Adds a business route (fault-injected; naive mode runs it in a worker).
 * `state_size` zeroed bytes are the handler's (svc_job_state). Before
 * svc_run. Returns 0 or a negative errno from sl_http_route. */
int svc_route(svc *s, const char *method, const char *pattern, svc_handler h, size_t state_size);

/* The same for a route that undoes a step (a release, a void): it is in
 * the server's UNDO admission lane, so a full server still starts it
 * (bounded by max_undo per reactor; sl_http.h): a compensation that is
 * shed leaves the books wrong for as long as the overload lasts. */
int svc_route_undo(svc *s, const char *method, const char *pattern, svc_handler h, size_t state_size);

/* Parses the command line into *s, runs s->check, makes the runtime, the
 * server (with the mode's budget), the upstream and the shards. Returns 0,
 * or the exit code to use (2 for bad usage, with its one-line message
 * printed; 1 else), having freed what it made. */
int svc_setup(svc *s, const svc_prog *p, int argc, char **argv);

/* Starts serving, prints `listening on HOST:PORT`, runs until SIGTERM/
 * SIGINT and frees everything. Returns the exit code. */
int svc_run(svc *s);

/* The shard of the calling reactor. */
svc_shard *svc_here(void);

/* The reactor that owns `key`. */
sl_reactor *svc_owner(svc *s, const char *key, size_t len);

/* A uniform pseudo-random number of the calling reactor's shard. */
uint64_t svc_rand(svc_shard *sh);

/* ---- answers ---------------------------------------------------------------------- */

/* Answers `status` with a JSON body (copied). Once per job; later calls
 * return -EALREADY. */
int svc_reply(svc_job *job, int status, const char *json, size_t len);

/* Answers `status` with the object j holds (svc_json_end). Returns
 * svc_reply's result, or -ENOSPC (nothing answered) if j failed (a value
 * did not fit its buffer). */
int svc_reply_json(svc_job *job, int status, svc_json *j);

/* Answers {"error":code,"message":...} (and "order_id" when order_id is not
 * NULL; built with svc_json.h); 503 also gets Retry-After. The message is
 * cut at 511 bytes. Returns svc_reply's result, or -ENOSPC (nothing
 * answered) when the body passes 3 KiB: only an order_id of hundreds of
 * bytes can make it. */
int svc_reply_error(svc_job *job, int status, const char *code, const char *order_id,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

bool svc_replied(const svc_job *job);

/* After an upstream call that did not give a 2xx: answers the mapped error
 * (-ETIMEDOUT 504 deadline_exceeded, -EBUSY 503 overloaded, a refused,
 * reset or malformed answer 502 upstream_failed, an HTTP error status passed
 * on with its code and message; messages name the upstream) and returns
 * the status answered; nothing is answered for a cancelled call (the
 * caller is gone): returns 0. A program whose contract allows only some
 * statuses maps them itself (order-svc: services/order/failure.h). */
int svc_reply_upstream(svc_job *job, int rc, const sl_http_resp *resp, const char *order_id);

/* Makes the coming answer carry the upstream's sluice-cause (a 5xx that
 * has a well-formed one), so that the caller learns which hop failed and
 * why (sl_http_reply_cause); svc_reply_upstream does it itself. */
void svc_relay_cause(svc_job *job, const sl_http_resp *resp);

/* The status an upstream result stands for (as svc_reply_upstream; 200 for
 * a 2xx, 0 for a cancelled call). */
int svc_upstream_status(int rc, const sl_http_resp *resp);

/* Whether a failed upstream call leaves unknown what the callee did: no
 * answer after the request may have left (a timeout, a reset, a cancelled
 * call, unless sl_http_call_reached says no byte left; -EBUSY and
 * -ECONNREFUSED never send anything) or an answer that does not say (500,
 * 502, 504). Call it before sl_http_call_end(resp). A caller then undoes nothing
 * itself: the order decides (its FAILED posts the release, whose void
 * follows), so a step the callee did commit (order's PAID before a crash)
 * is never undone behind the order's back. Definite failures (a 4xx, 503,
 * 508) may be undone at once. */
bool svc_upstream_ambiguous(int rc, const sl_http_resp *resp);

/* ---- background work ------------------------------------------------------------ */

/* A context for work that must finish although the request gave up (a
 * compensation): keeps the job's trace (a copy: it may outlive the
 * request), drops its deadline and cancellation, and ends after `ms`.
 * Returns 0 or a negative errno. */
int svc_compensation_ctx(svc_job *job, uint64_t ms, sl_ctx **out);

/* Spawns fn(state) under ctx into the calling shard's background group (so
 * shutdown can end it). On failure the state is not freed. */
int svc_spawn_bg(sl_ctx *ctx, sl_step_fn fn, void *state, const char *name, void (*state_free)(void *));

/* The context hops are linked to (svc_hop.h): the job's, with a copy of the
 * trace. NULL if it cannot be made. */
sl_ctx *svc_job_link_ctx(svc_job *job);

#endif
