/* builtin.c: /metrics, /debug/tasks, /debug/channels.
 *
 * Each reactor knows only its own tasks, channels and counters, and nothing
 * is shared: the handler asks every reactor for a snapshot by message, and
 * each answers by message to the handler's reactor, which wakes the handler
 * through a channel. A handler that gives up (deadline) leaves the gather
 * object to the last answer, which frees it. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include "config.h"
#include "client_int.h"
#include "metrics_int.h"
#include "server_int.h"
#include "trace_int.h"
#include "sl_chan.h"
#include "sl_diag.h"
#include "sl_lock.h"
#include "sl_offload.h"
#include "sl_log.h"

enum { G_METRICS, G_TASKS, G_CHANNELS, G_DEADLOCKS };

#define MAX_CHANS 64

typedef struct snap {
    srv_stats st;
    uint32_t inflight, queued, nconns, undo;
    sl_admit adm;
    uint64_t in_bytes, out_bytes, conn_bytes_max;
    size_t tasks_by_state[4];
    sl_reactor_stats rs;
    json_t *json;                   /* debug views */
    int nch;
    struct { char name[48]; size_t len, cap; uint64_t sent, expired; } ch[MAX_CHANS];
    sl_http_upstream_stats *ups;    /* one per sl_http_server_add_upstream */
} snap;

typedef struct gather {
    int kind, n, pending;
    bool abandoned;
    sl_http_server *srv;
    sl_reactor *origin;
    sl_chan *ch;
    snap **parts;
    struct gmsg { sl_msg m, back; struct gather *g; int i; } *msgs;
} gather;

typedef struct gstate {
    gather *g;
    int i, rc, v;
} gstate;

size_t sl__builtin_state_size(void) { return sizeof(gstate); }

static void gather_free(gather *g)
{
    for (int i = 0; i < g->n; i++) {
        if (g->parts[i] && g->parts[i]->json)
            json_decref(g->parts[i]->json);
        if (g->parts[i])
            free(g->parts[i]->ups);
        free(g->parts[i]);
    }
    sl_chan_free(NULL, g->ch);
    free(g->parts);
    free(g->msgs);
    free(g);
}

static int count_task(sl_task *t, void *arg)
{
    snap *s = arg;
    sl_task_info i;
    sl_task_info_get(t, &i);
    s->tasks_by_state[i.status]++;
    return 0;
}

static int task_json(sl_task *t, void *arg)
{
    json_t *arr = arg;
    sl_task_info i;
    char site[256], tid[33] = "";
    sl_task_info_get(t, &i);
    snprintf(site, sizeof site, "%s:%d", i.file, i.line);
    sl_ctx *c = sl_task_ctx(t);
    const sl_traceparent *tp = c ? sl_ctx_trace(c) : NULL;
    if (tp)
        sl_trace_id_hex(tp, tid);
    uint64_t now = sl_now_ns();
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:f, s:f, s:s?, s:s?}",
                          "name", i.name, "site", site, "state", sl_task_status_name(i.status),
                          "waits_on", sl_wait_kind_name(i.wait), "wait_object", i.wait_name,
                          "waiting_ms", (double)i.waiting_ns / 1e6,
                          "deadline_in_ms", i.deadline ? (double)((int64_t)(i.deadline - now)) / 1e6 : 0.0,
                          "trace_id", tp ? tid : NULL, "cancelled", i.cancelled ? strerror(-i.cancelled) : NULL);
    if (o && i.wait == SL_WAIT_MUTEX) {
        uint64_t tag;
        sl_task *h = sl_mutex_holder(i.wait_obj, &tag);
        char hx[24];
        snprintf(hx, sizeof hx, "%016llx", (unsigned long long)tag);
        json_object_set_new(o, "holder", json_string(h ? sl_task_name(h) : ""));
        json_object_set_new(o, "holder_tag", json_string(hx));
    }
    sl_wait_case why[16];   /* what a channel wait waits for (issue 20) */
    int nwhy = o ? sl_task_why(t, why, 16) : 0;
    json_t *wa = nwhy ? json_array() : NULL;
    for (int k = 0; wa && k < nwhy && k < 16; k++) {
        json_t *w = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "channel", why[k].chan,
                              "op", why[k].op == SL_SEND ? "send" : why[k].op == SL_RECV ? "recv" : "remote",
                              "reason", sl_why_name(why[k].why), "len", (json_int_t)why[k].len,
                              "cap", (json_int_t)why[k].cap, "lent", (json_int_t)why[k].lent);
        if (w && why[k].ends)
            json_object_set_new(w, "peers", json_integer(why[k].peers));
        if (w && why[k].peer)
            json_object_set_new(w, "peer", json_string(why[k].peer));
        if (w && why[k].until)
            json_object_set_new(w, "expires_in_ms", json_real((double)(int64_t)(why[k].until - now) / 1e6));
        if (w)
            json_array_append_new(wa, w);
    }
    if (wa)
        json_object_set_new(o, "why", wa);
    if (!i.deadline && o)
        json_object_del(o, "deadline_in_ms");
    if (o)
        json_array_append_new(arr, o);
    return 0;
}

static int chan_snap(sl_chan *ch, void *arg)
{
    snap *s = arg;
    if (s->nch == MAX_CHANS)
        return 1;
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    snprintf(s->ch[s->nch].name, sizeof s->ch[s->nch].name, "%s", sl_chan_name(ch));
    s->ch[s->nch].len = st.len;
    s->ch[s->nch].cap = st.cap;
    s->ch[s->nch].sent = st.sent;
    s->ch[s->nch].expired = st.expired;
    s->nch++;
    return 0;
}

static int deadlock_json(const char *text, uint64_t at, void *arg)
{
    json_array_append_new(arg, json_pack("{s:f, s:s}", "ms_ago", (double)(sl_now_ns() - at) / 1e6, "report", text));
    return 0;
}

static int chan_json(sl_chan *ch, void *arg)
{
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:b, s:b, s:I, s:I, s:i, s:i, s:i, s:i}",
                          "name", sl_chan_name(ch), "len", (json_int_t)st.len, "cap", (json_int_t)st.cap,
                          "high_water", (json_int_t)st.high_water, "high", (json_int_t)st.high,
                          "low", (json_int_t)st.low, "pressured", st.pressured, "closed", st.closed,
                          "sent", (json_int_t)st.sent, "received", (json_int_t)st.received,
                          "senders", (int)st.senders, "receivers", (int)st.receivers,
                          "parked_senders", (int)st.parked_senders, "parked_receivers", (int)st.parked_receivers);
    if (o)   /* elements dropped at their deadline (sl_chan_send_until) */
        json_object_set_new(o, "expired", json_integer((json_int_t)st.expired));
    if (o)
        json_array_append_new(arg, o);
    return 0;
}

/* Each upstream's pool of reactor i, read on reactor i (its only user). */
static void upstreams_snap(sl_http_server *srv, int i, snap *s)
{
    if (!srv->nups || !(s->ups = calloc((size_t)srv->nups, sizeof *s->ups)))
        return;
    for (int k = 0; k < srv->nups; k++)
        sl__upstream_stats_peek(srv->ups[k].up, i, &s->ups[k]);
}

/* On the handler's reactor: a snapshot arrived. */
static void part_back(void *arg)
{
    struct gmsg *m = arg;
    gather *g = m->g;
    g->pending--;
    if (g->abandoned) {
        if (!g->pending)
            gather_free(g);
        return;
    }
    sl_chan_try_send(NULL, g->ch, &m->i);
}

/* Admission (admit.h): queue delay and refusals by reason, per reactor. */
static void admission_metrics(struct evbuffer *b, const gather *g)
{
    evbuffer_add_printf(b, "# HELP sluice_http_queue_delay_seconds How long the oldest request in the "
                           "admission queue has waited (last seen).\n"
                           "# TYPE sluice_http_queue_delay_seconds gauge\n");
    for (int i = 0; i < g->n; i++)
        if (g->parts[i])
            evbuffer_add_printf(b, "sluice_http_queue_delay_seconds{reactor=\"%d\"} %.6f\n", i,
                                (double)g->parts[i]->adm.last_delay / 1e9);
    evbuffer_add_printf(b, "# HELP sluice_http_admission_shed_total Requests refused with 503 by "
                           "admission, by reason.\n# TYPE sluice_http_admission_shed_total counter\n");
    for (int i = 0; i < g->n; i++) {
        const snap *s = g->parts[i];
        if (!s)
            continue;
        const struct { const char *reason; uint64_t n; } r[] = {
            { "queue_full", s->st.shed_full }, { "queue_delay", s->st.shed_delay },
            { "budget", s->st.shed_budget },
        };
        for (size_t k = 0; k < sizeof r / sizeof r[0]; k++)
            evbuffer_add_printf(b, "sluice_http_admission_shed_total{reactor=\"%d\",reason=\"%s\"} %llu\n",
                                i, r[k].reason, (unsigned long long)r[k].n);
    }
}

/* On reactor i: take the snapshot. */
static void take_part(void *arg)
{
    struct gmsg *m = arg;
    gather *g = m->g;
    srv_reactor *sr = &g->srv->sr[m->i];
    snap *s = calloc(1, sizeof *s);
    if (s) {
        s->st = sr->st;
        s->inflight = sr->inflight;
        s->queued = sr->queued;
        s->undo = sr->undo;
        s->adm = sr->adm;
        s->nconns = sr->nconns;
        sl__conn_buffered(sr, &s->in_bytes, &s->out_bytes, &s->conn_bytes_max);
        sl_reactor_stats_get(sr->r, &s->rs);
        if (g->kind == G_METRICS) {
            sl_reactor_foreach_task(sr->r, count_task, s);
            sl_reactor_foreach_chan(sr->r, chan_snap, s);
            upstreams_snap(g->srv, m->i, s);
        } else if ((s->json = json_array())) {
            if (g->kind == G_TASKS)
                sl_reactor_foreach_task(sr->r, task_json, s->json);
            else if (g->kind == G_DEADLOCKS)
                sl_reactor_deadlocks(sr->r, deadlock_json, s->json);
            else
                sl_reactor_foreach_chan(sr->r, chan_json, s->json);
        }
    }
    g->parts[m->i] = s;
    sl_reactor_post_mem(g->origin, &m->back, part_back, m);
}

static int start_gather(sl_task *t, gstate *st, sl_http_server *srv, int kind)
{
    gather *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->kind = kind;
    g->n = srv->n;
    g->srv = srv;
    g->origin = sl_task_reactor(t);
    g->parts = calloc((size_t)g->n, sizeof *g->parts);
    g->msgs = calloc((size_t)g->n, sizeof *g->msgs);
    if (!g->parts || !g->msgs || sl_chan_new(&g->ch, sizeof(int), (size_t)g->n, &(sl_chan_opts){ .name = "debug-gather" }) < 0) {
        free(g->parts);
        free(g->msgs);
        free(g);
        return -ENOMEM;
    }
    sl_chan_give(g->ch, t, NULL);
    for (int i = 0; i < g->n; i++) {
        g->msgs[i].g = g;
        g->msgs[i].i = i;
        g->pending++;
        sl_reactor_post_mem(srv->sr[i].r, &g->msgs[i].m, take_part, &g->msgs[i]);
    }
    st->g = g;
    return 0;
}

/* Upstream calls summed over reactors: one pool per reactor, one series
 * per upstream (a reactor label would multiply series for nothing). */
static void upstreams_text(gather *g, struct evbuffer *b)
{
    /* outcomes of attempts, and events (retried: attempts made again,
     * ejected: replicas taken out of rotation) in a family of their own,
     * so that a sum over results counts attempts */
    static const char *results[] = { "ok", "refused", "reset", "timeout", "cancelled", "busy", "protocol" };
    static const char *events[] = { "retried", "ejected" };
    sl_http_server *srv = g->srv;
    if (!srv->nups)
        return;
    uint64_t (*sum)[9] = calloc((size_t)srv->nups, sizeof *sum);
    if (!sum)
        return;
    for (int k = 0; k < srv->nups; k++)
        for (int i = 0; i < g->n; i++) {
            const sl_http_upstream_stats *u = g->parts[i] && g->parts[i]->ups ? &g->parts[i]->ups[k] : NULL;
            if (!u)
                continue;
            const uint64_t v[9] = { u->ok, u->refused, u->reset, u->timeouts, u->cancelled, u->busy,
                                    u->protocol, u->retried, u->ejected };
            for (int r = 0; r < 9; r++)
                sum[k][r] += v[r];
        }
    evbuffer_add_printf(b, "# HELP sluice_upstream_calls_total Attempts of calls to upstreams by result "
                           "(busy: refused here, the pool's queue was full).\n"
                           "# TYPE sluice_upstream_calls_total counter\n");
    for (int k = 0; k < srv->nups; k++)
        for (int r = 0; r < 7; r++)
            evbuffer_add_printf(b, "sluice_upstream_calls_total{upstream=\"%s\",result=\"%s\"} %llu\n",
                                srv->ups[k].name, results[r], (unsigned long long)sum[k][r]);
    evbuffer_add_printf(b, "# HELP sluice_upstream_events_total Events of upstream pools: retried (attempts "
                           "made again), ejected (replicas taken out of rotation).\n"
                           "# TYPE sluice_upstream_events_total counter\n");
    for (int k = 0; k < srv->nups; k++)
        for (int r = 0; r < 2; r++)
            evbuffer_add_printf(b, "sluice_upstream_events_total{upstream=\"%s\",event=\"%s\"} %llu\n",
                                srv->ups[k].name, events[r], (unsigned long long)sum[k][7 + r]);
    free(sum);
    evbuffer_add_printf(b, "# HELP sluice_upstream_connections Connections to upstreams (active, idle) "
                           "and calls waiting for one, summed over reactors.\n"
                           "# TYPE sluice_upstream_connections gauge\n");
    for (int k = 0; k < srv->nups; k++) {
        uint64_t active = 0, idle = 0, waiting = 0;
        for (int i = 0; i < g->n; i++)
            if (g->parts[i] && g->parts[i]->ups) {
                active += g->parts[i]->ups[k].active;
                idle += g->parts[i]->ups[k].idle;
                waiting += g->parts[i]->ups[k].waiting;
            }
        evbuffer_add_printf(b, "sluice_upstream_connections{upstream=\"%s\",state=\"active\"} %llu\n"
                               "sluice_upstream_connections{upstream=\"%s\",state=\"idle\"} %llu\n"
                               "sluice_upstream_connections{upstream=\"%s\",state=\"waiting\"} %llu\n",
                            srv->ups[k].name, (unsigned long long)active, srv->ups[k].name,
                            (unsigned long long)idle, srv->ups[k].name, (unsigned long long)waiting);
    }
}

/* The process's log sink (sl_log.h): one counter for the process. */
static void log_text(struct evbuffer *b)
{
    evbuffer_add_printf(b, "# HELP sluice_log_dropped_total Log lines dropped because the log sink's buffer "
                           "was full or its fd failed (sl_log.h).\n"
                           "# TYPE sluice_log_dropped_total counter\n"
                           "sluice_log_dropped_total %llu\n",
                        (unsigned long long)sl_log_dropped());
}

/* The runtime's blocking-work pool (core/sl_offload.h): one pool per
 * runtime, so one series each, read under the pool's lock from here. */
static void offload_text(gather *g, struct evbuffer *b)
{
    sl_runtime *rt = sl_reactor_runtime(g->srv->sr[0].r);
    sl_offload_stats o;
    if (!rt || sl_offload_stats_get(rt, &o) < 0 || !o.threads_max)
        return;
    evbuffer_add_printf(b, "# HELP sluice_offload_queue_depth Offloaded calls waiting for a worker thread.\n"
                           "# TYPE sluice_offload_queue_depth gauge\n"
                           "sluice_offload_queue_depth %zu\n"
                           "# HELP sluice_offload_queue_capacity The most that may wait; beyond it sl_offload says -EBUSY.\n"
                           "# TYPE sluice_offload_queue_capacity gauge\n"
                           "sluice_offload_queue_capacity %zu\n"
                           "# HELP sluice_offload_running Offloaded calls running on a worker thread now.\n"
                           "# TYPE sluice_offload_running gauge\n"
                           "sluice_offload_running %zu\n"
                           "# HELP sluice_offload_threads Worker threads started, of the pool's size.\n"
                           "# TYPE sluice_offload_threads gauge\n"
                           "sluice_offload_threads{state=\"started\"} %d\n"
                           "sluice_offload_threads{state=\"max\"} %d\n",
                        o.queued, o.queue_cap, o.running, o.threads, o.threads_max);
    evbuffer_add_printf(b, "# HELP sluice_offload_calls_total Offloaded calls by outcome: accepted, rejected "
                           "(queue full), completed (returned), dropped (never started: their task gave up), "
                           "abandoned (their task gave up while they ran).\n"
                           "# TYPE sluice_offload_calls_total counter\n"
                           "sluice_offload_calls_total{result=\"accepted\"} %llu\n"
                           "sluice_offload_calls_total{result=\"rejected\"} %llu\n"
                           "sluice_offload_calls_total{result=\"completed\"} %llu\n"
                           "sluice_offload_calls_total{result=\"dropped\"} %llu\n"
                           "sluice_offload_calls_total{result=\"abandoned\"} %llu\n",
                        (unsigned long long)o.submitted, (unsigned long long)o.rejected,
                        (unsigned long long)o.completed, (unsigned long long)o.dropped,
                        (unsigned long long)o.abandoned);
    uint64_t started = o.submitted - o.dropped - o.queued;
    evbuffer_add_printf(b, "# HELP sluice_offload_wait_seconds Time offloaded calls waited for a worker.\n"
                           "# TYPE sluice_offload_wait_seconds summary\n"
                           "sluice_offload_wait_seconds_sum %.6f\n"
                           "sluice_offload_wait_seconds_count %llu\n"
                           "# HELP sluice_offload_wait_seconds_max The longest such wait.\n"
                           "# TYPE sluice_offload_wait_seconds_max gauge\n"
                           "sluice_offload_wait_seconds_max %.6f\n"
                           "# HELP sluice_offload_run_seconds Time offloaded calls ran on a worker.\n"
                           "# TYPE sluice_offload_run_seconds summary\n"
                           "sluice_offload_run_seconds_sum %.6f\n"
                           "sluice_offload_run_seconds_count %llu\n"
                           "# HELP sluice_offload_run_seconds_max The longest such run.\n"
                           "# TYPE sluice_offload_run_seconds_max gauge\n"
                           "sluice_offload_run_seconds_max %.6f\n",
                        (double)o.wait_ns / 1e9, (unsigned long long)started, (double)o.wait_max_ns / 1e9,
                        (double)o.run_ns / 1e9, (unsigned long long)o.completed, (double)o.run_max_ns / 1e9);
}

/* ---- built-in families ------------------------------------------------------------ */

/* The process_* families as Prometheus' client libraries name them, and
 * sluice_build_info: read from the OS at each scrape (Linux's /proc; a
 * figure that cannot be read is left out, as 0). */
struct builtin_fams {
    sl_series *cpu, *rss, *vms, *fds, *max_fds, *start;
};

/* When the process started, in seconds since the epoch: its start in clock
 * ticks since boot (/proc/self/stat, field 22) plus the boot time
 * (/proc/stat's btime); 0 if /proc cannot tell. */
static double process_start_time(void)
{
    char buf[1024];
    double start = 0;
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');   /* the command name may hold spaces */
    unsigned long long ticks = 0;
    for (int field = 2; p && field < 22; field++)
        p = strchr(p + 1, ' ');
    if (!p || sscanf(p + 1, "%llu", &ticks) != 1)
        return 0;
    if (!(f = fopen("/proc/stat", "r")))
        return 0;
    char line[256];
    unsigned long long btime = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (btime && hz > 0)
        start = (double)btime + (double)ticks / (double)hz;
    return start;
}

int sl__builtin_register(sl_http_server *srv)
{
    sl_metrics *m = srv->metrics;
    static const char *const by_route[] = { "method", "route", NULL };
    static const char *const by_status[] = { "method", "route", "status", NULL };
    static const char *const by_version[] = { "version", NULL };
    sl_metric *f;
    struct builtin_fams *bf = srv->fams = calloc(1, sizeof *srv->fams);
    if (!bf)
        return -ENOMEM;
    /* routes are few and fixed; the statuses of each are a handful */
    int rc = sl_metric_new(m, &srv->m_requests, SL_METRIC_COUNTER, "sluice_http_requests_total",
                           &(sl_metric_opts){ .help = "Requests answered, by method, route (\"unmatched\" "
                                              "for a path no route matches) and status.",
                                              .labels = by_status, .max_series = 1024 });
    if (rc == 0)
        rc = sl_metric_new(m, &srv->m_duration, SL_METRIC_HISTOGRAM, "sluice_http_request_duration_seconds",
                           &(sl_metric_opts){ .help = "Time from the request's head to its answer, by method "
                                              "and route.", .labels = by_route, .max_series = 256 });
    static const char *const by_replica[] = { "upstream", "replica", NULL };
    static const char *const by_result[] = { "upstream", "replica", "result", NULL };
    if (rc == 0)
        rc = sl_metric_new(m, &srv->m_up_dur, SL_METRIC_HISTOGRAM, "sluice_upstream_request_duration_seconds",
                           &(sl_metric_opts){ .help = "Time of each attempt of a call to an upstream, from its "
                                              "start on a connection to its answer or failure, by upstream and "
                                              "replica (address:port).", .labels = by_replica, .max_series = 256 });
    if (rc == 0)
        rc = sl_metric_new(m, &srv->m_up_attempts, SL_METRIC_COUNTER, "sluice_upstream_attempts_total",
                           &(sl_metric_opts){ .help = "Attempts of calls to upstreams by upstream, replica and "
                                              "result: ok, refused, reset, timeout, protocol, cancelled.",
                                              .labels = by_result, .max_series = 1024 });
    struct { sl_series **s; sl_metric_type type; const char *name, *help; } proc[] = {
        { &bf->cpu, SL_METRIC_COUNTER, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds." },
        { &bf->rss, SL_METRIC_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes." },
        { &bf->vms, SL_METRIC_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes." },
        { &bf->fds, SL_METRIC_GAUGE, "process_open_fds", "Number of open file descriptors." },
        { &bf->max_fds, SL_METRIC_GAUGE, "process_max_fds", "Maximum number of open file descriptors." },
        { &bf->start, SL_METRIC_GAUGE, "process_start_time_seconds",
          "Start time of the process since unix epoch in seconds." },
    };
    for (size_t i = 0; rc == 0 && i < sizeof proc / sizeof *proc; i++)
        if ((rc = sl_metric_new(m, &f, proc[i].type, proc[i].name, &(sl_metric_opts){ .help = proc[i].help })) == 0)
            sl_metric_series(f, NULL, proc[i].s);
    if (rc == 0)
        rc = sl_metric_new(m, &f, SL_METRIC_GAUGE, "sluice_build_info",
                           &(sl_metric_opts){ .help = "The sluice library serving: 1, with its version.",
                                              .labels = by_version });
    if (rc == 0) {
        sl_series *one;
        sl_metric_series(f, (const char *[]){ PACKAGE_VERSION }, &one);
        sl__series_put(one, 1);
        sl__series_put(bf->start, process_start_time());
    }
    return rc;
}

void sl__builtin_unregister(sl_http_server *srv)
{
    sl_metrics_free(srv->metrics);
    srv->metrics = NULL;
    free(srv->fams);
    srv->fams = NULL;
}

/* Reads the process_* figures now. */
static void process_figures(sl_http_server *srv)
{
    struct builtin_fams *bf = srv->fams;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        sl__series_put(bf->cpu, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                                (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long vm, rss;
    if (f) {
        if (fscanf(f, "%llu %llu", &vm, &rss) == 2) {
            double page = (double)sysconf(_SC_PAGESIZE);
            sl__series_put(bf->vms, (double)vm * page);
            sl__series_put(bf->rss, (double)rss * page);
        }
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        for (struct dirent *e; (e = readdir(d));)
            n += e->d_name[0] != '.';
        closedir(d);
        sl__series_put(bf->fds, (double)(n - 1));   /* not the one that read the directory */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        sl__series_put(bf->max_fds, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
}

/* OpenMetrics names a counter family without its _total (its samples keep
 * it): the HELP and TYPE lines of the counters printed by hand below are
 * rewritten so. Everything else they print reads the same in both
 * formats. */
static void om_counters(struct evbuffer *in, struct evbuffer *out)
{
    size_t len = evbuffer_get_length(in);
    const char *t = (const char *)evbuffer_pullup(in, -1);
    if (!t)
        return;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(t + i, '\n', len - i);
        size_t n = nl ? (size_t)(nl - (t + i)) + 1 : len - i;
        const char *line = t + i;
        bool help = n > 7 && !memcmp(line, "# HELP ", 7), type = n > 7 && !memcmp(line, "# TYPE ", 7);
        const char *name = line + 7, *end = help || type ? memchr(name, ' ', n - 7) : NULL;
        bool strip = false;
        if (end && end - name > 6 && !memcmp(end - 6, "_total", 6)) {
            /* a counter: its TYPE line is this one (TYPE) or the next (HELP) */
            const char *tl = type ? line : line + n;
            size_t nlen = (size_t)(end - name);
            strip = tl + 7 + nlen + 9 <= t + len && !memcmp(tl, "# TYPE ", 7) && !memcmp(tl + 7, name, nlen) &&
                    !memcmp(tl + 7 + nlen, " counter\n", 9);
        }
        if (strip) {
            evbuffer_add(out, line, (size_t)(end - 6 - line));
            evbuffer_add(out, end, n - (size_t)(end - line));
        } else {
            evbuffer_add(out, line, n);
        }
        i += n;
    }
}

static void metrics_text(gather *g, struct evbuffer *out, bool om)
{
    process_figures(g->srv);
    sl__metrics_text(g->srv->metrics, out, om);
    struct evbuffer *b = om ? evbuffer_new() : out;
    if (!b)
        return;
#define GAUGE(name, help, type, expr)                                                            \
    evbuffer_add_printf(b, "# HELP " name " " help "\n# TYPE " name " " type "\n");              \
    for (int i = 0; i < g->n; i++)                                                               \
        if (g->parts[i])                                                                         \
            evbuffer_add_printf(b, name "{reactor=\"%d\"} %llu\n", i, (unsigned long long)(expr));
    GAUGE("sluice_http_inflight", "Requests running now.", "gauge", g->parts[i]->inflight)
    GAUGE("sluice_http_inflight_peak", "The most requests running at once since start (per reactor: "
          "their sum bounds the process's peak).", "gauge", g->parts[i]->st.inflight_peak)
    GAUGE("sluice_http_queued", "Requests admitted and waiting to run.", "gauge", g->parts[i]->queued)
    GAUGE("sluice_http_connections", "Open connections.", "gauge", g->parts[i]->nconns)
    GAUGE("sluice_http_buffered_input_bytes", "Request bytes read and not yet parsed.", "gauge",
          g->parts[i]->in_bytes)
    GAUGE("sluice_http_buffered_output_bytes", "Response bytes waiting for slow clients.", "gauge",
          g->parts[i]->out_bytes)
    GAUGE("sluice_http_connection_buffered_max_bytes", "The most bytes one connection holds now "
          "(input + output; bounded near 512 KiB plus one batch of answers).", "gauge",
          g->parts[i]->conn_bytes_max)
    GAUGE("sluice_http_shed_total", "Requests refused with 503 by admission (every reason).", "counter",
          g->parts[i]->st.shed)
    GAUGE("sluice_http_admission_limit", "Requests the adaptive limit lets run at once now.", "gauge",
          sl__admit_limit(&g->parts[i]->adm))
    GAUGE("sluice_http_admission_overloaded", "1 while CoDel sees a standing admission queue.", "gauge",
          g->parts[i]->adm.overloaded)
    GAUGE("sluice_http_expired_total", "Requests answered 504 because their budget was gone before they "
          "started.", "counter", g->parts[i]->st.expired)
    admission_metrics(b, g);
    GAUGE("sluice_http_undo_started_total", "Undo-lane requests (compensations) started past the "
          "admission limits.", "counter", g->parts[i]->st.undo_started)
    GAUGE("sluice_http_undo_running", "Undo-lane requests running past the admission limits now.", "gauge",
          g->parts[i]->undo)
    GAUGE("sluice_http_parse_errors_total", "Malformed requests.", "counter", g->parts[i]->st.parse_errors)
    GAUGE("sluice_deadlocks_total", "Deadlocks reported.", "counter", g->parts[i]->rs.deadlocks)
    GAUGE("sluice_stalls_total", "Reactor stalls reported.", "counter", g->parts[i]->rs.stalls)
#undef GAUGE
    evbuffer_add_printf(b, "# HELP sluice_ctx_ends_total Request contexts ended, by cause.\n"
                           "# TYPE sluice_ctx_ends_total counter\n");
    for (int i = 0; i < g->n; i++)
        for (int c = 0; g->parts[i] && c < SL_CAUSE_COUNT; c++)
            evbuffer_add_printf(b, "sluice_ctx_ends_total{reactor=\"%d\",cause=\"%s\"} %llu\n", i,
                                c ? sl_cause_text((sl_cause)c) : "completed",
                                (unsigned long long)g->parts[i]->st.ctx_ends[c]);
    evbuffer_add_printf(b, "# HELP sluice_tasks Tasks alive, by state.\n# TYPE sluice_tasks gauge\n");
    for (int i = 0; i < g->n; i++)
        for (int k = 0; g->parts[i] && k < 4; k++)
            evbuffer_add_printf(b, "sluice_tasks{reactor=\"%d\",state=\"%s\"} %zu\n", i,
                                sl_task_status_name((sl_task_status)k), g->parts[i]->tasks_by_state[k]);
    evbuffer_add_printf(b, "# HELP sluice_channel_length Elements buffered in a channel.\n"
                           "# TYPE sluice_channel_length gauge\n");
    /* channel_id tells apart channels of one name on a reactor (the k-th
     * of that name, from 0), which would otherwise be one series twice */
    for (int i = 0; i < g->n; i++)
        for (int k = 0; g->parts[i] && k < g->parts[i]->nch; k++) {
            int same = 0;
            for (int j = 0; j < k; j++)
                same += !strcmp(g->parts[i]->ch[j].name, g->parts[i]->ch[k].name);
            evbuffer_add_printf(b, "sluice_channel_length{reactor=\"%d\",channel=\"", i);
            sl__label_value(b, g->parts[i]->ch[k].name);
            evbuffer_add_printf(b, "\",channel_id=\"%d\",capacity=\"%zu\"} %zu\n", same,
                                g->parts[i]->ch[k].cap, g->parts[i]->ch[k].len);
        }
    evbuffer_add_printf(b, "# HELP sluice_channel_expired_total Elements dropped at their deadline, never received.\n"
                           "# TYPE sluice_channel_expired_total counter\n");
    for (int i = 0; i < g->n; i++)
        for (int k = 0; g->parts[i] && k < g->parts[i]->nch; k++) {
            int same = 0;
            for (int j = 0; j < k; j++)
                same += !strcmp(g->parts[i]->ch[j].name, g->parts[i]->ch[k].name);
            evbuffer_add_printf(b, "sluice_channel_expired_total{reactor=\"%d\",channel=\"", i);
            sl__label_value(b, g->parts[i]->ch[k].name);
            evbuffer_add_printf(b, "\",channel_id=\"%d\"} %llu\n", same,
                                (unsigned long long)g->parts[i]->ch[k].expired);
        }
    upstreams_text(g, b);
    offload_text(g, b);
    log_text(b);
    if (g->srv->o.tracer)
        sl__tracer_metrics(g->srv->o.tracer, b);
    if (om) {
        om_counters(b, out);
        evbuffer_free(b);
        evbuffer_add(out, "# EOF\n", 6);
    }
}

/* Whether the scraper asks for OpenMetrics (Prometheus does, first, in its
 * Accept header): the only format with exemplars. */
static bool wants_openmetrics(const sl_http_req *req)
{
    size_t n;
    const char *a = sl_http_req_header(req, "Accept", &n);
    static const char om[] = "application/openmetrics-text";
    for (size_t i = 0; a && i + sizeof om - 1 <= n; i++)
        if (!strncasecmp(a + i, om, sizeof om - 1))
            return true;
    return false;
}

static int gather_handler(sl_task *t, void *arg, int kind)
{
    sl_http_req *req = arg;
    gstate *st = sl_http_req_state(req);
    SL_BEGIN(t);
    if (start_gather(t, st, req->sr->srv, kind) < 0)
        SL_RETURN(t, -ENOMEM);
    for (st->i = 0; st->i < st->g->n; st->i++) {
        SL_AWAIT(t, st->rc, sl_chan_recv(t, st->g->ch, &st->v));
        if (st->rc < 0) {
            /* the last answer frees it; if every answer is in already
             * (some still unread in the channel), nobody else will */
            if (st->g->pending)
                st->g->abandoned = true;
            else
                gather_free(st->g);
            SL_RETURN(t, st->rc);
        }
    }
    if (kind == G_METRICS) {
        struct evbuffer *b = evbuffer_new();
        if (b) {
            bool om = wants_openmetrics(req);
            metrics_text(st->g, b, om);
            size_t n = evbuffer_get_length(b);
            sl_http_reply(req, 200, om ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                       : "text/plain; version=0.0.4", evbuffer_pullup(b, -1), n);
            evbuffer_free(b);
        }
    } else {
        json_t *reactors = json_array();
        for (int i = 0; i < st->g->n; i++) {
            snap *s = st->g->parts[i];
            json_array_append_new(reactors, json_pack("{s:i, s:o}", "reactor", i,
                                  kind == G_TASKS ? "tasks" : kind == G_DEADLOCKS ? "deadlocks" : "channels",
                                  s && s->json ? json_incref(s->json) : json_array()));
        }
        json_t *doc = json_pack("{s:o}", "reactors", reactors);
        if (kind == G_DEADLOCKS) {
            uint64_t total = 0;
            for (int i = 0; i < st->g->n; i++)
                total += st->g->parts[i] ? st->g->parts[i]->rs.deadlocks : 0;
            json_object_set_new(doc, "total", json_integer((json_int_t)total));
        }
        sl_http_reply_json(req, 200, doc);
    }
    gather_free(st->g);
    SL_END(t);
}

int sl__builtin_metrics(sl_task *t, void *arg) { return gather_handler(t, arg, G_METRICS); }
int sl__builtin_debug_tasks(sl_task *t, void *arg) { return gather_handler(t, arg, G_TASKS); }
int sl__builtin_debug_channels(sl_task *t, void *arg) { return gather_handler(t, arg, G_CHANNELS); }
int sl__builtin_debug_deadlocks(sl_task *t, void *arg) { return gather_handler(t, arg, G_DEADLOCKS); }
