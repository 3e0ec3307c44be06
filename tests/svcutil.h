/* svcutil.h: the harness of the demo chain's integration tests.
 *
 * The tests drive the real programs (services/order/order-svc, ...) as a
 * client would: they start them with fork/exec, read the first line
 * `listening on 127.0.0.1:PORT` from a pipe on their stdout (bounded wait),
 * talk HTTP to them with a small blocking client that has its own timeout,
 * and stop them by pid (SIGTERM, bounded waitpid, exit status 0 asserted;
 * SIGKILL and a failure when they do not exit in time).
 *
 * Programs are found relative to the build directory, where automake runs
 * the tests (`services/order/order-svc`); SVC_BINDIR overrides it.
 *
 * Starting the chain. The three services form a cycle of URLs (order needs
 * inventory's, inventory payment's, payment order's), and each port is
 * picked by the kernel. The cycle is cut at order: the harness reserves
 * order's port first by binding a socket to 127.0.0.1:0 with SO_REUSEADDR
 * and SO_REUSEPORT and *keeps it bound, without listening*, while it starts
 * payment (--order http://127.0.0.1:R, port 0), then inventory (port 0,
 * --payment at payment's port), then order itself on --listen
 * 127.0.0.1:R. The held socket keeps the kernel from handing R to anyone
 * who asks for port 0 (a port search never shares a bound port), while
 * order's listeners, which set SO_REUSEPORT themselves, can still bind it; a
 * socket that never listens receives no connections. The reservation is
 * closed once order is up. The services connect to upstreams lazily, so
 * payment does not need order to be up yet. If order still cannot bind R
 * (another user's SO_REUSEPORT socket, say), everything is stopped and the
 * whole start is retried with a new reservation, a few times.
 *
 * Programs are started with SLUICE_PRESTOP_MS=0 (no preStop window on
 * SIGTERM) unless the test's environment sets it.
 *
 * Every process started is recorded, so a test that fails half-way (cmocka
 * longjmps out of it) still has them killed by svc_teardown().
 *
 * Every helper asserts with cmocka where a failure is the test's failure. */
#ifndef SL_SVCUTIL_H
#define SL_SVCUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <cmocka.h>
#include <jansson.h>

/* ---- processes ------------------------------------------------------------------------ */

enum {
    SVC_START_MS = 15000,   /* to print "listening on" (ASan, a loaded 2-core VM) */
    SVC_STOP_MS = 12000,    /* from SIGTERM to exit: the drain's grace period and more */
    SVC_MAX_ARGS = 24,
};

typedef struct svc {
    pid_t pid;               /* 0: not running */
    int port;
    int out_fd;              /* its stdout, read up to the "listening" line */
    char name[16];
} svc;

/* Milliseconds on the monotonic clock. */
uint64_t svc_now_ms(void);

/* The path of a program, e.g. svc_path("order") -> "services/order/order-svc";
 * a name with a '/' is a path in the build directory already
 * ("examples/http/http"). */
const char *svc_path(const char *name);

/* Starts program `name` with `args` (NULL-terminated, without argv[0]) and
 * waits for its "listening on" line. Returns 0, or the exit code it ended
 * with before listening (its stderr is the test's). */
int svc_start(svc *s, const char *name, const char *const *args);

/* Sends SIGTERM and waits for the exit within SVC_STOP_MS: returns its exit
 * status as waitpid gives it; on timeout kills it and fails the test. */
int svc_stop_status(svc *s, int bound_ms);

/* svc_stop_status and the assertion that it exited 0. */
void svc_stop(svc *s);

/* Runs program `name` with `args` to its end (bounded), capturing stderr
 * into err; returns the exit code (128+signal; -1: still running after the
 * bound, then killed). For bad command lines; callable from threads (it
 * asserts only on fork/pipe failures). */
int svc_run_usage(const char *name, const char *const *args, char *err, size_t errsz);

/* Kills (SIGKILL) and reaps whatever a failed test left running. */
int svc_teardown(void **state);

/* Holds a free loopback port: a socket bound with SO_REUSEPORT, not
 * listening. Returns the port; *fd is to be closed by the caller. */
int svc_port_reserve(int *fd);

/* ---- the chain ------------------------------------------------------------------------ */

typedef struct chain_opts {
    const char *mode;               /* --mode (NULL: not passed: safe is the default) */
    int threads;                    /* --threads (0: 1) */
    int order_timeout_ms;           /* order's --timeout-ms (0: not passed) */
    const char *stock;              /* inventory's --stock (NULL: not passed) */
    bool admin;                     /* --admin on all three */
    const char *order_args[6];      /* more options, NULL-terminated */
    const char *inv_args[6];
    const char *pay_args[6];
    const char *host;               /* the services' URLs name them so (NULL: 127.0.0.1) */
} chain_opts;

typedef struct chain {
    svc order, inv, pay;
    int base_order, base_inv, base_pay;   /* tasks alive when idle, right after start */
} chain;

void chain_start(chain *c, const chain_opts *o);

/* Asserts that every service's tasks go back to their idle baseline
 * (polled within a bound), then stops the three, asserting exit 0. */
void chain_end(chain *c);

/* Stops the three (exit 0 asserted) without the task check. */
void chain_stop(chain *c);

/* A crash: SIGKILL and reap (no drain, nothing flushed). */
void svc_kill9(svc *s);

/* Starts `s` (&c->order, &c->inv or &c->pay) again after svc_kill9, on
 * the port it had and with the options chain_start gave it (`o`, the
 * same: --data among the extra options keeps its data). */
void chain_restart(chain *c, svc *s, const chain_opts *o);

/* ---- HTTP ----------------------------------------------------------------------------- */

typedef struct hresp {
    int status;           /* >0: the status; HTTP_TIMEOUT; HTTP_CLOSED (closed or reset first) */
    char head[4096];
    char body[1 << 17];
    size_t len;
    uint64_t ms;          /* from just before the send to the whole answer */
} hresp;

enum { HTTP_TIMEOUT = -1, HTTP_CLOSED = 0, HTTP_REFUSED = -2 };

/* One request on a fresh connection, answered within timeout_ms (the
 * client's own timeout). `hdrs` are extra header lines ("Name: v\r\n"...) or
 * NULL; `body` NULL sends none. Returns r->status. */
int http_req(int port, const char *method, const char *path, const char *body, const char *hdrs,
             int timeout_ms, hresp *r);

/* The same, keeping the connection open for the caller (naive mode: the
 * chain must see a client that gives up without closing at once). *fd is
 * set; the caller closes it. */
int http_req_keep(int port, const char *method, const char *path, const char *body, const char *hdrs,
                  int timeout_ms, hresp *r, int *fd);

/* A header's value (any case) copied into out; false if absent. */
bool http_header(const hresp *r, const char *name, char *out, size_t n);

/* Fields of a JSON body (parsed on each call; nothing to free). */
bool jstr(const hresp *r, const char *key, char *out, size_t n);
long long jint(const hresp *r, const char *key, long long absent);
bool jhas(const hresp *r, const char *key);

/* Asserts status `want` and, for an error body, {"error": code}. */
void expect_status(const hresp *r, int want, const char *code);

/* Requests in parallel, one thread each (the burst tests). */
typedef struct hjob {
    int port;
    const char *method, *path;
    char body[256];
    int timeout_ms;
    hresp r;
} hjob;
void http_parallel(hjob *jobs, int n);
/* GET path with Connection: close; the body in the heap, however long
 * (the caller frees it), NUL-terminated; NULL with *status HTTP_REFUSED,
 * HTTP_TIMEOUT or HTTP_CLOSED. */
char *http_get_long(int port, const char *path, int timeout_ms, int *status, size_t *len);

/* ---- the services' state and diagnostics ---------------------------------------------- */

/* POST /orders {"item","qty","amount_cents"}; the order_id into id (or ""). */
int order_post(int port, const char *item, int qty, long amount, char id[64], hresp *r);

/* Posts an order of `qty` sku-1 for `amount` on a thread of its own (one
 * held up by a fault) and returns its record: pthread_join(*th), then read
 * ->r and ->id, and free it. */
typedef struct bg_order { int port, qty; long amount; hresp r; char id[64]; } bg_order;
bg_order *order_post_bg(int port, int qty, long amount, pthread_t *th);

/* GET /stock/{item} -> available, -1 if not 200. */
long stock_of(int inv_port, const char *item);

/* GET /orders/{id} -> status into out ("" if not 200). These reads ask
 * again, for up to 10 s, while the service answers 503, 504 or nothing in
 * 3 s (svchttp.c, read_state). */
void order_status(int order_port, const char *id, char *out, size_t n);

/* GET /charges/{id} -> status into out ("" on 404, asserted to be 404 then),
 * and its amount. */
void charge_status(int pay_port, const char *id, char *out, size_t n, long *amount);

/* GET /reservations/{id} at inv_port -> status into out ("" on 404; any
 * status but 200 and 404 fails the test). A replica that released an order
 * it never had says TOMBSTONE. */
void resv_status(int inv_port, const char *id, char *out, size_t n);

/* Total tasks alive over all reactors per /debug/tasks; -1 on failure. */
int svc_task_count(int port);

/* /debug/tasks as JSON (caller decrefs), or NULL. */
json_t *svc_tasks(int port);

/* Polls until the task count is <= want; returns the last count. */
int svc_tasks_settle(int port, int want, int bound_ms);

/* Sum of a /metrics series over the lines that contain `label` (NULL: all),
 * excluding those that contain `except` (NULL: none). -1 on failure. */
double svc_metric(int port, const char *name, const char *label, const char *except);

/* A fresh directory $TMPDIR/sluice-WHAT.XXXXXX (mkdtemp); its path into out. */
void svc_tmpdir(char *out, size_t n, const char *what);

/* rm -rf dir (a directory svc_tmpdir made); fails the test if it cannot. */
void svc_rm_rf(const char *dir);

/* GET /debug/compensations at port: one counter ("pending", "posted",
 * "completed", "attempts"); -1 when the answer is not a 200. */
long svc_undo_counter(int port, const char *key);

/* Polls until no compensation is pending at port; fails the test, naming
 * `who`, after bound_ms. */
void svc_undo_settles(int port, const char *who, int bound_ms);

/* Polls (bounded by bound_ms) until at least n requests are in flight at
 * port (sluice_http_inflight over its reactors, this /metrics request
 * included); fails the test, naming `who`, after the bound. */
void svc_wait_inflight(int port, const char *who, int n, int bound_ms);

/* Request contexts that ended other than by completing (sluice_ctx_ends_total
 * without cause="completed"). */
double svc_ctx_cancelled(int port);

/* The invariant for one order: PAID (charge CHARGED with `amount`) or FAILED
 * (charge absent or VOIDED). Returns true for PAID. Polls a bounded while
 * for compensation still under way (a FAILED order's VOID). */
bool order_check(const chain *c, const char *id, long amount);

/* Every order of GET /orders against its reservation and its charge: PAID
 * with both kept (the charge's amount the order's), or FAILED with neither.
 * Returns the disagreements (the first ten printed); adds the PAID
 * quantities per item into taken[1..nitems] (items sku-1..sku-nitems; any
 * other fails the test); *orders gets how many were walked. */
int ledger_walk(const chain *c, long *taken, int nitems, int *orders);

/* Posts the fault (JSON) to a service's /admin/fault; returns the status. */
int fault_set(int port, const char *json);
int fault_clear(int port);

#endif
