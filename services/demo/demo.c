/* sluice-demo: the order -> inventory -> payment chain in three modes under
 * the same load, side by side (`make demo`).
 *
 * For each mode it starts the three services on free loopback ports, drives
 * POST /orders with sluice-load at a fixed open-loop rate through four
 * phases (warm-up, steady, payment hangs, recovery), samples each service's
 * in-flight requests, then reads what is left (tasks, RSS), checks that the
 * three services agree on every finished order, stops them by pid, and
 * prints a table; demo-report.html gets the charts. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "demo.h"
#include "svc_env.h"
#include "hget.h"
#include "proc.h"

const char *const svc_name[NSVC] = { "order", "inventory", "payment" };
const char *const phase_name[NPHASE] = { "warm-up", "steady", "payment hangs", "recovery" };
static const char *const overload_phase_name[NPHASE] = { "calm (C/2)", "-", "burst", "after (C/2)" };

const char *demo_phase_name(const mode_result *m, int p)
{
    return m->overload ? overload_phase_name[p] : phase_name[p];
}
static const char *const svc_prog[NSVC] = { "services/order/order-svc", "services/inventory/inventory-svc",
                                            "services/payment/payment-svc" };
static const char order_body[] = "{\"item\":\"sku-{{rand:1-10}}\",\"qty\":1,\"amount_cents\":1250}";
#define NITEMS 10
#define STOCK0 1000000L

typedef struct chain {
    proc p[NSVC];
    int port[NSVC];
} chain;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the services ------------------------------------------------------------------- */

static void stop_chain(chain *c, mode_result *m)
{
    for (int s = NSVC - 1; s >= 0; s--)
        if (c->p[s].pid > 0) {
            int st = proc_stop(&c->p[s], 8000);
            if (m)
                m->exit_status[s] = st;
        }
}

/* Starts payment, inventory and order on ports reserved beforehand: the
 * chain is a cycle (payment calls order back), so every port must be known
 * before the first program starts. A port taken in between makes that
 * program fail to bind; the caller retries with new ports. */
static int start_chain(const demo_cfg *cfg, const char *mode, const char *tag, bool admission_off, chain *c,
                       char *err, size_t errsz)
{
    char listen[NSVC][32], url[NSVC][40], threads[16], budget[16], prog[NSVC][1024], log[NSVC][1024];
    char trace[NSVC][1024];
    memset(c, 0, sizeof *c);
    for (int s = 0; s < NSVC; s++) {
        c->port[s] = free_port();
        if (c->port[s] <= 0) {
            snprintf(err, errsz, "no free port");
            return -1;
        }
        snprintf(listen[s], sizeof listen[s], "127.0.0.1:%d", c->port[s]);
        snprintf(url[s], sizeof url[s], "http://127.0.0.1:%d", c->port[s]);
        snprintf(prog[s], sizeof prog[s], "%s/%s", cfg->bindir, cfg->flat ? strrchr(svc_prog[s], '/') + 1 : svc_prog[s]);
        snprintf(log[s], sizeof log[s], "%s/%s-%s.log", cfg->logdir, tag, svc_name[s]);
        snprintf(trace[s], sizeof trace[s], "%s/%s-%s.json", cfg->trace_dir ? cfg->trace_dir : "", tag,
                 svc_name[s]);
        c->p[s].out = -1;
    }
    snprintf(threads, sizeof threads, "%d", cfg->threads);
    snprintf(budget, sizeof budget, "%d", cfg->budget_ms);
    static const char *const up_opt[NSVC] = { "--inventory", "--payment", "--order" };
    static const int up_of[NSVC] = { SVC_INVENTORY, SVC_PAYMENT, SVC_ORDER };
    for (int s = NSVC - 1; s >= 0; s--) {
        /* naive is the seed as written: no budget at all, so no --timeout-ms */
        bool naive = !strcmp(mode, "naive");
        /* --prestop-ms 0: no load balancer to wait for, the drain at once */
        char *argv[20] = { prog[s], "--listen", listen[s], "--threads", threads, "--mode", (char *)mode,
                           (char *)up_opt[s], url[up_of[s]], "--admin", "--prestop-ms", "0" };
        int argc = 12;
        if (admission_off) {
            argv[argc++] = "--admission";
            argv[argc++] = "off";
        }
        if (!naive) {
            argv[argc++] = "--timeout-ms";
            argv[argc++] = budget;
        }
        if (cfg->trace_dir) {
            argv[argc++] = "--trace";
            argv[argc++] = trace[s];
        }
        char line[128];
        int rc = proc_start(&c->p[s], argv, log[s]);
        if (rc == 0)
            rc = proc_read_line(&c->p[s], line, sizeof line, 15000);
        if (rc < 0 || !strstr(line, listen[s])) {
            snprintf(err, errsz, "%s did not start (%.80s; see %.160s)", svc_name[s],
                     rc < 0 ? strerror(-rc) : line, log[s]);
            stop_chain(c, NULL);
            return -1;
        }
    }
    return 0;
}

/* Sums the samples of one Prometheus metric over its label sets; -1 if absent. */
static long metric_sum(const char *text, const char *name)
{
    long sum = -1;
    size_t nl = strlen(name);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, nl) || (l[nl] != '{' && l[nl] != ' '))
            continue;
        const char *v = l[nl] == '{' ? strchr(l, '}') : l + nl;
        if (v && (v = strchr(v, ' ')))
            sum = (sum < 0 ? 0 : sum) + strtol(v + 1, NULL, 10);
    }
    return sum;
}

static long inflight(int port)
{
    hget_resp r;
    if (hget(port, "GET", "/metrics", NULL, 500, &r) < 0)
        return -1;
    long v = r.status == 200 ? metric_sum(r.body, "sluice_http_inflight") : -1;
    hget_free(&r);
    return v;
}

/* Compensations (releases, voids) still pending in a service's outbox;
 * -1 if it cannot tell. */
static long undo_pending(int port)
{
    hget_resp r;
    if (hget(port, "GET", "/debug/compensations", NULL, 500, &r) < 0)
        return -1;
    json_t *doc = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    json_t *v = json_object_get(doc, "pending");
    long n = json_is_integer(v) ? (long)json_integer_value(v) : -1;
    json_decref(doc);
    hget_free(&r);
    return n;
}

/* Tasks alive in a service, as /debug/tasks lists them (the task answering
 * the question included); -1 when `tries` tries of timeout_ms each got no
 * list. names: when not NULL, how many of each name ("3 x /orders, ..."),
 * cut to size. */
static long tasks_listed(int port, int tries, int timeout_ms, char *names, size_t size)
{
    hget_resp r;
    int rc = -1;
    for (int i = 0; i < tries && rc < 0; i++)
        if ((rc = hget(port, "GET", "/debug/tasks", NULL, timeout_ms, &r)) == 0 && r.status != 200) {
            hget_free(&r);
            rc = -1;
        }
    if (rc < 0)
        return -1;
    long n = -1;
    json_t *doc = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    size_t i, k;
    json_t *re, *t, *by_name = json_object();
    if (doc) {
        n = 0;
        json_array_foreach(json_object_get(doc, "reactors"), i, re) {
            n += (long)json_array_size(json_object_get(re, "tasks"));
            json_array_foreach(json_object_get(re, "tasks"), k, t) {
                const char *name = json_string_value(json_object_get(t, "name"));
                name = name ? name : "?";
                json_object_set_new(by_name, name,
                                    json_integer(json_integer_value(json_object_get(by_name, name)) + 1));
            }
        }
    }
    if (names && size) {
        size_t len = 0;
        const char *name;
        json_t *v;
        names[0] = '\0';
        json_object_foreach(by_name, name, v) {
            if (len >= size)
                break;
            int w = snprintf(names + len, size - len, "%s%lld x %s", len ? ", " : "",
                             (long long)json_integer_value(v), name);
            len += w > 0 ? (size_t)w : 0;
        }
    }
    json_decref(by_name);
    json_decref(doc);
    hget_free(&r);
    return n;
}

/* The count the hang verdict reads after the run: three tries of 5 s each,
 * as a busy machine must not lose it. */
static long tasks_alive(int port)
{
    return tasks_listed(port, 3, 5000, NULL, 0);
}

static int set_fault(int port, const char *json)
{
    hget_resp r;
    int rc = hget(port, json ? "POST" : "DELETE", "/admin/fault", json, 2000, &r);
    if (rc < 0)
        return rc;
    rc = r.status == 200 ? 0 : -EPROTO;
    hget_free(&r);
    return rc;
}

/* ---- one phase of load -------------------------------------------------------------- */

static long jlong(json_t *o, const char *k)
{
    return (long)json_integer_value(json_object_get(o, k));
}

static void take_load_json(phase_result *ph, json_t *doc)
{
    json_t *lat = json_object_get(doc, "latency_ms"), *st = json_object_get(doc, "status");
    json_t *er = json_object_get(doc, "errors");
    ph->requests = jlong(doc, "requests");
    ph->duration_s = json_number_value(json_object_get(doc, "duration_s"));
    ph->p50 = json_number_value(json_object_get(lat, "p50"));
    ph->p99 = json_number_value(json_object_get(lat, "p99"));
    ph->max = json_number_value(json_object_get(lat, "max"));
    ph->p99_201 = json_number_value(json_object_get(json_object_get(doc, "latency_2xx_ms"), "p99"));
    const char *k;
    json_t *v;
    json_object_foreach(st, k, v) {
        long n = (long)json_integer_value(v);
        int code = atoi(k);
        if (code == 201) ph->st201 += n;
        else if (code == 503) ph->st503 += n;
        else if (code == 504) ph->st504 += n;
        else if (code == 508) ph->st508 += n;
        else ph->st_other += n;
    }
    json_object_foreach(er, k, v) {
        if (!strcmp(k, "timeout"))
            ph->timeouts += (long)json_integer_value(v);
        else
            ph->errors += (long)json_integer_value(v);
    }
    ph->series = json_incref(json_object_get(doc, "series"));
}

/* Runs sluice-load for one phase while sampling the services' in-flight
 * requests every 100 ms: open loop at `rps`, or closed loop with 64
 * connections when rps is 0. Returns 0 or -1 with err set. */
static int run_phase_conns(const demo_cfg *cfg, chain *c, phase_result *ph, int rps, int seconds, bool naive,
                           int conns, char *err, size_t errsz)
{
    char prog[1024], url[64], rate[16], dur[16], tmo[16], nconn[16];
    snprintf(prog, sizeof prog, "%s/%ssluice-load", cfg->bindir, cfg->flat ? "" : "services/load/");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/orders", c->port[SVC_ORDER]);
    snprintf(rate, sizeof rate, "%d", rps);
    snprintf(dur, sizeof dur, "%d", seconds);
    snprintf(tmo, sizeof tmo, "%d", cfg->client_timeout_ms);
    snprintf(nconn, sizeof nconn, "%d", conns);
    char *argv[] = { prog, url, rps ? "--rate" : "--warmup", rps ? rate : "0", "--duration", dur,
                     "--timeout", tmo, "--method", "POST", "--body", (char *)order_body, "--connections",
                     nconn, "--json",
                     naive ? "--no-deadline-header" : NULL, NULL };   /* the seed's client sent none */
    char log[1024];
    snprintf(log, sizeof log, "%s/sluice-load.log", cfg->logdir);
    proc lp;
    if (proc_start(&lp, argv, log) < 0) {
        snprintf(err, errsz, "cannot start %.160s", prog);
        return -1;
    }
    for (int s = 0; s < NSVC; s++)
        ph->peak_inflight[s] = -1;
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    long long next_sample = 0;
    for (;;) {
        if (now_ms() >= next_sample) {
            for (int s = 0; s < NSVC; s++) {
                long v = inflight(c->port[s]);
                if (v > ph->peak_inflight[s])
                    ph->peak_inflight[s] = v;
            }
            next_sample = now_ms() + 100;
        }
        struct pollfd pf = { .fd = lp.out, .events = POLLIN };
        if (poll(&pf, 1, 100) <= 0)
            continue;
        if (out && len + 4096 > cap) {
            char *grown = realloc(out, cap *= 2);
            if (!grown)
                free(out);
            out = grown;
        }
        ssize_t n = out ? read(lp.out, out + len, cap - len - 1) : -1;
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    int st;
    waitpid(lp.pid, &st, 0);
    close(lp.out);
    json_t *doc = out ? (out[len] = '\0', json_loads(out, 0, NULL)) : NULL;
    free(out);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !doc) {
        snprintf(err, errsz, "sluice-load failed (exit %d; see %.160s)", WIFEXITED(st) ? WEXITSTATUS(st) : -1, log);
        json_decref(doc);
        return -1;
    }
    take_load_json(ph, doc);
    json_decref(doc);
    ph->ran = true;
    return 0;
}

static int run_phase(const demo_cfg *cfg, chain *c, phase_result *ph, int rps, int seconds, bool naive,
                     char *err, size_t errsz)
{
    return run_phase_conns(cfg, c, ph, rps, seconds, naive, rps ? 4000 : 64, err, errsz);
}

/* ---- the invariant ------------------------------------------------------------------ */

/* A read of the walk: retried (up to 20 times, 100 ms apart) while it gets
 * no answer or a 503/504. The services give the walk's reads their own
 * budget (--budget-ms): right after an overload one can outlast a short one
 * (a GET /charges answered 504 at 60 ms was counted as a charge missing
 * from a PAID order: "INVARIANT BROKEN" for books that agreed). Returns
 * hget's result; r is the last answer. */
static int walk_get(int port, const char *path, hget_resp *r)
{
    for (int i = 0;; i++) {
        int rc = hget(port, "GET", path, NULL, 10000, r);
        if (rc == 0 && r->status != 503 && r->status != 504)
            return 0;
        if (i == 19)
            return rc;
        if (rc == 0)
            hget_free(r);
        struct timespec ts = { 0, 100 * 1000 * 1000 };   /* polling remote state */
        nanosleep(&ts, NULL);
    }
}

/* Every finished order must be PAID with its reservation kept and its charge
 * CHARGED, or FAILED with its reservation given back and no charge (or a
 * voided one); the stock the inventory lost must be exactly the quantity of
 * the reservations it kept. */
static void check_invariant(chain *c, mode_result *m)
{
    hget_resp r;
    int rc = walk_get(c->port[SVC_ORDER], "/orders", &r);
    json_t *doc = rc == 0 && r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
    if (!doc) {   /* nothing walked is no verdict on the books ("1 of 0 disagree" before) */
        snprintf(m->error, sizeof m->error, "the books could not be walked: GET /orders %s %d",
                 rc < 0 ? "failed" : "answered", rc < 0 ? rc : r.status);
        if (rc == 0)
            hget_free(&r);
        return;
    }
    hget_free(&r);
    json_t *o;
    size_t i;
    long kept = 0;
    m->checked = m->disagree = m->unfinished = 0;
    json_array_foreach(json_object_get(doc, "orders"), i, o) {
        const char *id = json_string_value(json_object_get(o, "order_id"));
        const char *status = json_string_value(json_object_get(o, "status"));
        if (!id || !status)
            continue;
        m->orders++;
        char path[160];
        snprintf(path, sizeof path, "/reservations/%s", id);
        int rst = walk_get(c->port[SVC_INVENTORY], path, &r);
        bool reserved = rst == 0 && r.status == 200 && strstr(r.body, "\"RESERVED\"");
        int rstatus = rst == 0 ? r.status : rst;
        if (rst == 0)
            hget_free(&r);
        snprintf(path, sizeof path, "/charges/%s", id);
        int cst = walk_get(c->port[SVC_PAYMENT], path, &r);
        bool charged = cst == 0 && r.status == 200 && strstr(r.body, "\"CHARGED\"");
        int cstatus = cst == 0 ? r.status : cst;
        if (cst == 0)
            hget_free(&r);
        if (reserved)
            kept += jlong(o, "qty");
        if (!strcmp(status, "PENDING")) {
            m->unfinished++;
            continue;
        }
        m->checked++;
        bool paid = !strcmp(status, "PAID");
        if (rst < 0 || cst < 0 || reserved != paid || charged != paid) {
            /* the first few named, so a broken invariant can be followed */
            if (m->disagree < 5)
                fprintf(stderr, "sluice-demo: %s: order %s is %s, its reservation %s (%d), its charge %s (%d)\n",
                        m->mode, id, status, reserved ? "RESERVED" : "not reserved", rstatus,
                        charged ? "CHARGED" : "not charged", cstatus);
            m->disagree++;
        }
    }
    json_decref(doc);
    long lost = 0;
    for (int k = 1; k <= NITEMS; k++) {
        char path[64];
        snprintf(path, sizeof path, "/stock/sku-%d", k);
        if (walk_get(c->port[SVC_INVENTORY], path, &r) < 0)
            continue;
        json_t *s = r.status == 200 ? json_loads(r.body, 0, NULL) : NULL;
        lost += s ? STOCK0 - jlong(s, "available") : 0;
        json_decref(s);
        hget_free(&r);
    }
    if (m->unfinished == 0 && lost != kept)
        m->disagree++;   /* stock that no order accounts for (stuck orders hold theirs) */
}

/* ---- traces ------------------------------------------------------------------------- */

/* Merges the three services' traces of a mode into DIR/<mode>.json: their
 * pids differ and their clocks are the same (CLOCK_MONOTONIC), so one view
 * shows a request crossing the chain. */
static void merge_traces(const demo_cfg *cfg, const char *mode)
{
    json_t *all = json_array();
    json_int_t dropped = 0;
    for (int s = 0; s < NSVC; s++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s-%s.json", cfg->trace_dir, mode, svc_name[s]);
        json_t *doc = json_load_file(path, 0, NULL);
        if (!doc) {
            fprintf(stderr, "sluice-demo: no trace from %s (%s)\n", svc_name[s], path);
            continue;
        }
        json_array_extend(all, json_object_get(doc, "traceEvents"));
        dropped += json_integer_value(json_object_get(json_object_get(doc, "otherData"), "dropped"));
        json_decref(doc);
        unlink(path);
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.json", cfg->trace_dir, mode);
    json_t *out = json_pack("{s:s, s:o, s:{s:I}}", "displayTimeUnit", "ms", "traceEvents", all, "otherData",
                            "dropped", dropped);
    if (!out || json_dump_file(out, path, JSON_COMPACT) < 0)
        fprintf(stderr, "sluice-demo: cannot write %s\n", path);
    else
        fprintf(stderr, "demo: %s: trace of the three services in %s\n", mode, path);
    json_decref(out);
}

/* ---- one mode ----------------------------------------------------------------------- */

/* Waits, within `ms`, until nothing is in flight in the three services, no
 * compensation is pending in their outboxes and no service has more tasks
 * than before the load (idle, -1 unknown), so the walk sees the books as
 * they end and the hang verdict counts only what stays. The tasks too: a
 * write that a request left behind (order's detached settle, through the
 * blocking-work pool) is in flight nowhere, yet a task until it is done;
 * counted while a loaded machine was slow to finish it, it read as a held
 * request. What the chain does hold, it still holds after `ms`. */
static void settle(chain *c, int ms, const long *idle)
{
    long long end = now_ms() + ms;
    for (;;) {
        long sum = 0;
        for (int s = 0; s < NSVC; s++) {
            long v = inflight(c->port[s]), u = undo_pending(c->port[s]);
            sum += v < 0 ? 1 : v - 1;   /* the /metrics request itself is in flight */
            sum += u < 0 ? 1 : u;       /* and the compensations still owed */
        }
        for (int s = 0; s < NSVC && sum <= 0; s++) {
            long n = idle[s] < 0 ? -1 : tasks_listed(c->port[s], 1, 500, NULL, 0);
            sum += idle[s] < 0 ? 0 : n < 0 ? 1 : n > idle[s] ? n - idle[s] : 0;
        }
        if (sum <= 0)
            return;
        if (now_ms() >= end) {   /* the walk will say what it finds; this says why */
            fprintf(stderr, "sluice-demo: still in flight, owed or alive after %d ms:", ms);
            for (int s = 0; s < NSVC; s++) {
                char names[512];
                long n = tasks_listed(c->port[s], 1, 2000, names, sizeof names);
                fprintf(stderr, " %s %ld in flight, %ld undos, %ld tasks (%ld before the load: %s);", svc_name[s],
                        inflight(c->port[s]) - 1, undo_pending(c->port[s]), n, idle[s], n < 0 ? "?" : names);
            }
            fprintf(stderr, "\n");
            return;
        }
        struct timespec ts = { 0, 50 * 1000 * 1000 };   /* polling remote state */
        nanosleep(&ts, NULL);
    }
}

static void run_mode(const demo_cfg *cfg, mode_result *m)
{
    chain c;
    int tries = 0;
    while (start_chain(cfg, m->mode, m->mode, false, &c, m->error, sizeof m->error) < 0)
        if (++tries == 3)
            return;
    m->error[0] = '\0';
    m->ran = true;
    for (int s = 0; s < NSVC; s++)
        m->tasks_idle[s] = tasks_alive(c.port[s]);
    double t = 0;
    fprintf(stderr, "demo: %s:", m->mode);
    for (int p = 0; p < NPHASE; p++) {
        /* charges hang; voids (the compensations) still work, as in a real
         * outage of the card processor behind /charge */
        if (p == PH_FAULT && set_fault(c.port[SVC_PAYMENT], "{\"hang\":true,\"path\":\"/charge\"}") < 0) {
            snprintf(m->error, sizeof m->error, "could not inject the fault into payment");
            break;
        }
        fprintf(stderr, " %s", phase_name[p]);
        m->ph[p].start_s = t;
        int rc = run_phase(cfg, &c, &m->ph[p], cfg->rate, cfg->phase_s[p], !strcmp(m->mode, "naive"), m->error,
                           sizeof m->error);
        if (p == PH_FAULT)
            set_fault(c.port[SVC_PAYMENT], NULL);
        if (rc < 0)
            break;
        t += m->ph[p].duration_s;
    }
    fprintf(stderr, "\n");
    /* a chain with budgets lets go of everything: waited for, generously,
     * as a busy machine may be slow to (the hang verdict counts what order
     * holds after it); naive's requests have no end to wait for */
    settle(&c, strcmp(m->mode, "naive") ? 20000 : 2000, m->tasks_idle);
    for (int s = 0; s < NSVC; s++) {
        m->tasks_after[s] = tasks_alive(c.port[s]);
        m->rss_kib[s] = proc_rss_kib(&c.p[s]);
    }
    check_invariant(&c, m);
    stop_chain(&c, m);
    if (cfg->trace_dir)
        merge_traces(cfg, m->mode);
}

/* ---- the overload scene (issue 14) -------------------------------------------------- */

/* C, the chain's goodput (201/s) in a closed loop: 64 connections for 2 s.
 * On a loaded machine (a sanitizer build beside other work) 64 orders at
 * once can each outlast order's budget: every one answers 504 and the
 * goodput is 0, which says nothing about how many orders the chain can
 * take. So fewer at once, for longer, until at least 10 orders were
 * PAID in the window: 8 connections for 4 s, then 1 for 6 s (the chain's
 * goodput with no queueing at all). A C measured so is low, and the
 * scene says so (capacity_conns); rates follow from it all the same. No
 * 201 at all even one at a time: the chain cannot serve within its
 * budget, an error. At most 12 s more, and only when the first try
 * failed. */
static void measure_capacity(const demo_cfg *cfg, chain *c, mode_result *r)
{
    static const struct { int conns, seconds; } tries[] = { { 64, 2 }, { 8, 4 }, { 1, 6 } };
    long got = 0;
    r->capacity_conns = tries[0].conns;
    fprintf(stderr, " capacity");
    for (size_t i = 0; i < sizeof tries / sizeof *tries; i++) {
        phase_result cap;
        memset(&cap, 0, sizeof cap);
        if (i)
            fprintf(stderr, " (again, %d connections)", tries[i].conns);
        int rc = run_phase_conns(cfg, c, &cap, 0, tries[i].seconds, false, tries[i].conns, r->error,
                                 sizeof r->error);
        json_decref(cap.series);
        if (rc < 0)
            return;   /* sluice-load failed: r->error says so */
        got = cap.st201;
        if (cap.duration_s > 0 && got > 0) {
            r->capacity = got / cap.duration_s;
            r->capacity_conns = tries[i].conns;
        }
        if (got >= 10)
            return;
    }
    if (got == 0)
        snprintf(r->error, sizeof r->error, "no capacity measured (no 201 even one order at a time)");
}

/* The safe chain under a short burst of overload_x x its capacity C, with
 * admission on (m) and off (m + 1), the same rates for both: C is
 * measured once, closed loop, on the first chain. */
static void run_overload(const demo_cfg *cfg, mode_result *m)
{
    for (int k = 0; k < 2; k++) {
        mode_result *r = &m[k];
        chain c;
        int tries = 0;
        if (k == 1 && m[0].capacity <= 0) {   /* the same rates for both: there are none */
            snprintf(r->error, sizeof r->error, "not run: C was not measured");
            return;
        }
        while (start_chain(cfg, "safe", r->admission_off ? "overload-off" : "overload-on", r->admission_off, &c,
                           r->error, sizeof r->error) < 0)
            if (++tries == 3)
                return;
        r->error[0] = '\0';
        r->ran = true;
        for (int s = 0; s < NSVC; s++)
            r->tasks_idle[s] = tasks_alive(c.port[s]);
        fprintf(stderr, "demo: %s:", r->mode);
        if (k == 0) {
            measure_capacity(cfg, &c, r);
            m[1].capacity = r->capacity;
            m[1].capacity_conns = r->capacity_conns;
        }
        int half = (int)(r->capacity / 2) > 1 ? (int)(r->capacity / 2) : 1;
        r->rate[PH_WARMUP] = r->rate[PH_RECOVERY] = half;
        r->rate[PH_FAULT] = (int)(r->capacity * cfg->overload_x) > 1 ? (int)(r->capacity * cfg->overload_x) : 1;   /* 0: closed loop */
        static const int ph[3] = { PH_WARMUP, PH_FAULT, PH_RECOVERY };
        double t = 0;
        for (int i = 0; i < 3 && !r->error[0]; i++) {
            int p = ph[i];
            fprintf(stderr, " %s", overload_phase_name[p]);
            r->ph[p].start_s = t;
            if (run_phase(cfg, &c, &r->ph[p], r->rate[p], cfg->overload_s[i], false, r->error,
                          sizeof r->error) < 0)
                break;
            t += r->ph[p].duration_s;
        }
        fprintf(stderr, "\n");
        settle(&c, 3000, r->tasks_idle);
        for (int s = 0; s < NSVC; s++) {
            r->tasks_after[s] = tasks_alive(c.port[s]);
            r->rss_kib[s] = proc_rss_kib(&c.p[s]);
        }
        check_invariant(&c, r);
        stop_chain(&c, r);
    }
}

/* ---- main --------------------------------------------------------------------------- */

/* The flags, for --help and the SLUICE_ variables that stand for them. */
static const char *const demo_flags[] = { "--bindir", "--modes", "--rate", "--phases", "--threads",
                                          "--client-timeout-ms", "--budget-ms", "--report", "--overload",
                                          "--overload-x", "--trace", NULL };

static int usage(const char *msg)
{
    if (msg)
        fprintf(stderr, "sluice-demo: %s\n", msg);
    FILE *f = msg ? stderr : stdout;
    fprintf(f,
            "usage: sluice-demo [--bindir DIR] [--modes safe,guarded,naive] [--rate R]\n"
            "                   [--phases WARMUP,STEADY,FAULT,RECOVERY (seconds)] [--threads N]\n"
            "                   [--client-timeout-ms MS] [--budget-ms MS] [--report FILE.html]\n"
            "                   [--overload CALM,BURST,AFTER (seconds) | --overload off] [--overload-x N]\n"
            "                   [--trace DIR]   (DIR/<mode>.json: a Chrome trace of the three services)\n"
            "--bindir: a build directory (DIR/services/...); by default the current one, else the\n"
            "directory this program is installed in, beside order-svc, inventory-svc, payment-svc\n"
            "and sluice-load.\n"
            "Every option may also be given as an environment variable (the command line wins;\n"
            "a bad value exits 2 naming it; the programs the demo starts do not see them):\n ");
    for (const char *const *fl = demo_flags; *fl; fl++) {
        fputs(fl - demo_flags == 6 ? "\n  SLUICE_" : " SLUICE_", f);
        for (const char *c = *fl + 2; *c; c++)
            fputc(*c == '-' ? '_' : *c - ('a' <= *c && *c <= 'z' ? 'a' - 'A' : 0), f);
    }
    fputc('\n', f);
    return msg ? 2 : 0;
}

static int parse_phases(const char *s, int *out, int n)
{
    for (int p = 0; p < n; p++) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 600 || (p < n - 1 ? *end != ',' : *end != '\0'))
            return -1;
        out[p] = (int)v;
        s = end + 1;
    }
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* --modes: a comma-separated list of at most three of safe, guarded, naive. */
static bool modes_ok(const char *modes)
{
    int n = 0;
    for (const char *s = modes;; n++) {
        size_t len = strcspn(s, ",");
        if (n == 3 || !((len == 4 && !strncmp(s, "safe", 4)) || (len == 7 && !strncmp(s, "guarded", 7)) ||
                        (len == 5 && !strncmp(s, "naive", 5))))
            return false;
        if (!s[len])
            return true;
        s += len + 1;
    }
}

/* The command line into cfg and *modes: 0, 1 (--help), or -EINVAL with
 * the mistake in err ("unknown option --x" for a flag that is not ours:
 * svc_env.h asks so). Writes nothing. */
static int demo_parse(demo_cfg *cfg, const char **modes, int argc, char **argv, char *err, size_t errlen)
{
#define BAD(...) (snprintf(err, errlen, __VA_ARGS__), -EINVAL)
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return 1;
        bool known = false;
        for (const char *const *fl = demo_flags; *fl && !known; fl++)
            known = !strcmp(a, *fl);
        if (!known)
            return BAD("unknown option %s", a);
        if (!v)
            return BAD("%s needs a value", a);
        i++;
        if (!strcmp(a, "--bindir")) cfg->bindir = v;
        else if (!strcmp(a, "--report")) cfg->report = v;
        else if (!strcmp(a, "--modes")) { if (!modes_ok(v)) return BAD("--modes takes safe, guarded and naive"); *modes = v; }
        else if (!strcmp(a, "--trace")) cfg->trace_dir = v;
        else if (!strcmp(a, "--rate")) { if (parse_int(v, 1, 100000, &cfg->rate)) return BAD("bad --rate"); }
        else if (!strcmp(a, "--threads")) { if (parse_int(v, 1, 64, &cfg->threads)) return BAD("bad --threads"); }
        else if (!strcmp(a, "--client-timeout-ms")) { if (parse_int(v, 10, 600000, &cfg->client_timeout_ms)) return BAD("bad --client-timeout-ms"); }
        else if (!strcmp(a, "--budget-ms")) { if (parse_int(v, 10, 600000, &cfg->budget_ms)) return BAD("bad --budget-ms"); }
        else if (!strcmp(a, "--phases")) { if (parse_phases(v, cfg->phase_s, NPHASE)) return BAD("bad --phases"); }
        else if (!strcmp(a, "--overload")) {
            if (!strcmp(v, "off")) cfg->overload_s[0] = 0;
            else if (parse_phases(v, cfg->overload_s, 3)) return BAD("bad --overload");
        }
        else if (!strcmp(a, "--overload-x")) { if (parse_int(v, 1, 20, &cfg->overload_x)) return BAD("bad --overload-x"); }
    }
    return 0;
#undef BAD
}

static const demo_cfg cfg_default = { .bindir = ".", .report = "demo-report.html", .rate = 100, .threads = 1,
                                      .client_timeout_ms = 2000, .budget_ms = 1000, .phase_s = { 2, 5, 5, 5 },
                                      .overload_s = { 2, 6, 4 }, .overload_x = 3 };

/* One flag from a SLUICE_ variable (svc_env.h), parsed into scratch state. */
static int env_check(int argc, char **argv, char *err, size_t errlen, void *arg)
{
    demo_cfg scratch = cfg_default;
    const char *modes;
    (void)arg;
    return demo_parse(&scratch, &modes, argc, argv, err, errlen) < 0 ? -EINVAL : 0;
}

/* The SLUICE_ variables that stand for our flags are ours: the programs
 * the demo starts would take SLUICE_REPORT or SLUICE_TRACE for flags of
 * their own (sluice-load would write its HTML report over ours). They get
 * the environment without them (proc_env); those of no flag of ours
 * (SLUICE_HOSTS, SLUICE_LOG_FORMAT, ...) go on to them. */
static int env_for_programs(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof *env);
    if (!env)
        return -ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = environ[i], *eq = strchr(e, '=');
        bool ours = false;
        for (const char *const *fl = demo_flags; *fl && !ours && eq && !strncmp(e, "SLUICE_", 7); fl++) {
            size_t len = strlen(*fl + 2);
            ours = (size_t)(eq - e - 7) == len;
            for (size_t c = 0; ours && c < len; c++) {
                char f = (*fl)[2 + c];
                ours = e[7 + c] == (f == '-' ? '_' : (char)(f - ('a' <= f && f <= 'z' ? 'a' - 'A' : 0)));
            }
        }
        if (!ours)
            env[k++] = environ[i];
    }
    proc_env = env;   /* for the whole run */
    return 0;
}

int main(int argc, char **argv)
{
    demo_cfg cfg = cfg_default;
    const char *modes = "safe,guarded,naive";
    char err[512], **eargv;
    int eargc;
    /* every flag also from SLUICE_<FLAG> (svc_env.h); the command line wins */
    int rc = svc_env_argv("sluice-demo", argc, argv, NULL, env_check, NULL, &eargv, &eargc, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "%s\n", rc == -ENOMEM ? "sluice-demo: out of memory" : err);
        return 2;
    }
    rc = demo_parse(&cfg, &modes, eargc, eargv, err, sizeof err);
    free(eargv);   /* cfg points at the strings (argv's, environ's), not into the array */
    if (rc)
        return usage(rc > 0 ? NULL : err);
    if (env_for_programs() < 0) {
        fputs("sluice-demo: out of memory\n", stderr);
        return 1;
    }
    /* installed (make install): the programs sit beside this one, not in a
     * build tree's services/ */
    static char exedir[4096];
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/%s", cfg.bindir, svc_prog[0]);
    if (access(probe, X_OK) < 0) {
        ssize_t len = readlink("/proc/self/exe", exedir, sizeof exedir - 1);
        char *slash = len > 0 ? memrchr(exedir, '/', (size_t)len) : NULL;
        if (slash) {
            *slash = '\0';
            cfg.bindir = exedir;
            cfg.flat = true;
        }
    }
    mode_result m[5];
    int n = 0;
    memset(m, 0, sizeof m);
    char *list = strdup(modes);
    for (char *save, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        m[n++].mode = !strcmp(tok, "safe") ? "safe" : !strcmp(tok, "guarded") ? "guarded" : "naive";
    }
    free(list);
    int nfault = n;
    if (cfg.overload_s[0]) {   /* after the fault scene: the overload scene */
        m[n++] = (mode_result){ .mode = "safe, admission on", .overload = true };
        m[n++] = (mode_result){ .mode = "safe, admission off", .overload = true, .admission_off = true };
    }
    char logdir[] = "/tmp/sluice-demo-XXXXXX";
    if (!mkdtemp(logdir)) {
        perror("sluice-demo: mkdtemp");
        return 1;
    }
    cfg.logdir = logdir;
    signal(SIGPIPE, SIG_IGN);
    for (int i = 0; i < nfault; i++)
        run_mode(&cfg, &m[i]);
    if (n > nfault)
        run_overload(&cfg, &m[nfault]);
    report_text(&cfg, m, n);
    rc = report_html(&cfg, m, n);
    int failed = rc < 0;
    for (int i = 0; i < n; i++) {
        failed |= !m[i].ran || m[i].error[0];
        for (int p = 0; p < NPHASE; p++)
            json_decref(m[i].ph[p].series);
    }
    if (failed)
        fprintf(stderr, "sluice-demo: the logs are in %s\n", logdir);
    return failed ? 1 : 0;
}
