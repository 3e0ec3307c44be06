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

typedef struct snap {
    sl_reactor_stats rs;
    json_t *json;                   /* debug views */
    sl_metrics_scrape *sc;          /* /metrics: what the collectors reported on this reactor */
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
            sl__scrape_free(g->parts[i]->sc);
        free(g->parts[i]);
    }
    sl_chan_free(NULL, g->ch);
    free(g->parts);
    free(g->msgs);
    free(g);
}

static int count_task(sl_task *t, void *arg)
{
    size_t *by_state = arg;
    sl_task_info i;
    sl_task_info_get(t, &i);
    by_state[i.status]++;
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

/* On reactor i: take the snapshot. */
static void take_part(void *arg)
{
    struct gmsg *m = arg;
    gather *g = m->g;
    srv_reactor *sr = &g->srv->sr[m->i];
    snap *s = calloc(1, sizeof *s);
    if (s) {
        sl_reactor_stats_get(sr->r, &s->rs);
        if (g->kind == G_METRICS) {
            if (sl__scrape_new(&s->sc, g->srv->metrics) == 0)
                sl__metrics_collect(g->srv->metrics, s->sc, m->i);
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

/* ---- the built-in families ------------------------------------------------------------ */

/* Families whose figures live elsewhere (each reactor's private counters,
 * the upstream pools, the offload pool, the log sink, the tracer, the OS)
 * are registered like any other and filled at scrape by the collectors
 * below, so one writer prints every family (docs/metrics.md). */
enum {
    /* per reactor, with a reactor label */
    F_INFLIGHT, F_INFLIGHT_PEAK, F_QUEUED, F_CONNS, F_BUF_IN, F_BUF_OUT, F_CONN_BUF_MAX, F_SHED, F_ADM_LIMIT,
    F_ADM_OVERLOADED, F_ADM_FLOODED, F_ADM_STORM, F_ADM_BATCH_NAPS, F_ADM_DRAIN, F_ADM_MAX_WAIT, F_EXPIRED, F_QUEUE_DELAY, F_UNDO_STARTED, F_UNDO_RUNNING, F_PARSE_ERRORS,
    F_DEADLOCKS, F_STALLS, F_MSGS, F_WAKEUPS, F_SPINS, F_SPIN_HITS, F_SPIN_RUNS, F_SPIN_BOUNDS, F_SPIN_YIELDS,
    F_SPIN_MISSES, F_SPIN_SKIPS, F_SPIN_EMPTY_SKIPS, F_SPIN_EMPTY_WAKES, F_FD_WAKEUPS, F_BRIEF_POLLS, F_BRIEF_HITS,
    F_BRIEF_EMPTY, F_CTX_ENDS, F_TASKS, F_CHANNELS, F_CHAN_EXPIRED,
    /* per upstream, summed over reactors */
    F_UP_CALLS, F_UP_EVENTS, F_UP_CONNS,
    /* the process's: reported from reactor 0 */
    F_OFF_DEPTH, F_OFF_CAP, F_OFF_RUNNING, F_OFF_THREADS, F_OFF_CALLS, F_OFF_WAIT, F_OFF_WAIT_MAX, F_OFF_RUN,
    F_OFF_RUN_MAX, F_LOG_DROPPED, F_WATCHDOG_WAKEUPS, F_WATCHDOG_PARKS, F_TRACE_SPANS, F_TRACE_QUEUE, F_CPU, F_RSS, F_VMS, F_FDS, F_MAX_FDS,
    F_COUNT
};

static const char *const L_R[] = { "reactor", NULL },
                  *const L_R_CAUSE[] = { "reactor", "cause", NULL }, *const L_R_STATE[] = { "reactor", "state", NULL },
                  *const L_CHAN[] = { "reactor", "channel", "channel_id", "capacity", NULL },
                  *const L_CHAN_ID[] = { "reactor", "channel", "channel_id", NULL },
                  *const L_UP_RESULT[] = { "upstream", "result", NULL },
                  *const L_UP_EVENT[] = { "upstream", "event", NULL },
                  *const L_UP_STATE[] = { "upstream", "state", NULL }, *const L_STATE[] = { "state", NULL },
                  *const L_RESULT[] = { "result", NULL };

#define CHANS_PER_REACTOR 256   /* channel series per reactor before the overflow series */

static const struct fam_def {
    sl_metric_type type;
    const char *name, *help;
    const char *const *labels;
    size_t per_reactor;   /* series per reactor (max_series = that x reactors); 0: max_series 1024 */
} defs[F_COUNT] = {
    [F_INFLIGHT] = { SL_METRIC_GAUGE, "sluice_http_inflight", "Requests running now.", L_R, 1 },
    [F_INFLIGHT_PEAK] = { SL_METRIC_GAUGE, "sluice_http_inflight_peak", "The most requests running at once since "
                          "start (per reactor: their sum bounds the process's peak).", L_R, 1 },
    [F_QUEUED] = { SL_METRIC_GAUGE, "sluice_http_queued", "Requests admitted and waiting to run.", L_R, 1 },
    [F_CONNS] = { SL_METRIC_GAUGE, "sluice_http_connections", "Open connections.", L_R, 1 },
    [F_BUF_IN] = { SL_METRIC_GAUGE, "sluice_http_buffered_input_bytes", "Request bytes read and not yet parsed.",
                   L_R, 1 },
    [F_BUF_OUT] = { SL_METRIC_GAUGE, "sluice_http_buffered_output_bytes", "Response bytes waiting for slow "
                    "clients.", L_R, 1 },
    [F_CONN_BUF_MAX] = { SL_METRIC_GAUGE, "sluice_http_connection_buffered_max_bytes", "The most bytes one "
                         "connection holds now (input + output; bounded near 512 KiB plus one batch of answers).",
                         L_R, 1 },
    [F_SHED] = { SL_METRIC_COUNTER, "sluice_http_shed_total", "Requests refused with 503 by admission (every "
                 "reason).", L_R, 1 },
    [F_ADM_LIMIT] = { SL_METRIC_GAUGE, "sluice_http_admission_limit", "Requests the adaptive limit lets run at "
                      "once now.", L_R, 1 },
    [F_ADM_OVERLOADED] = { SL_METRIC_GAUGE, "sluice_http_admission_overloaded", "1 while CoDel sees a standing "
                           "admission queue that grows.", L_R, 1 },
    [F_ADM_FLOODED] = { SL_METRIC_GAUGE, "sluice_http_admission_flooded", "1 while the admission queue is "
                        "flooded (seldom empty through an interval, refusing more than end): "
                        "its time bound is one service time, not two.", L_R, 1 },
    [F_ADM_STORM] = { SL_METRIC_GAUGE, "sluice_http_admission_retry_storm", "1 while the admission queue "
                      "sees a retry storm (it refused more than 8 x as many as ended: clients sending again "
                      "the moment they are refused); until its queue has emptied now and then through 10 "
                      "intervals, nobody is refused at the head for queue time: they wait.", L_R, 1 },
    [F_ADM_BATCH_NAPS] = { SL_METRIC_COUNTER, "sluice_http_flood_batch_naps_total", "Loop passes that slept "
                           "out the rest of flood_batch_us while flooded, to read the next batch at once.",
                           L_R, 1 },
    [F_ADM_DRAIN] = { SL_METRIC_GAUGE, "sluice_http_admission_drain_per_second", "How many requests the "
                      "server ends per second at its limit (estimated; 0: not measured yet).", L_R, 1 },
    [F_ADM_MAX_WAIT] = { SL_METRIC_GAUGE, "sluice_http_admission_max_wait_seconds", "The longest a request may "
                         "wait in the admission queue now (queue_time refusals beyond).", L_R, 1 },
    [F_EXPIRED] = { SL_METRIC_COUNTER, "sluice_http_expired_total", "Requests answered 504 because their budget "
                    "was gone before they started.", L_R, 1 },
    [F_QUEUE_DELAY] = { SL_METRIC_GAUGE, "sluice_http_queue_delay_seconds", "How long the oldest request in the "
                        "admission queue has waited (last seen).", L_R, 1 },
    [F_UNDO_STARTED] = { SL_METRIC_COUNTER, "sluice_http_undo_started_total", "Undo-lane requests "
                         "(compensations) started past the admission limits.", L_R, 1 },
    [F_UNDO_RUNNING] = { SL_METRIC_GAUGE, "sluice_http_undo_running", "Undo-lane requests running past the "
                         "admission limits now.", L_R, 1 },
    [F_PARSE_ERRORS] = { SL_METRIC_COUNTER, "sluice_http_parse_errors_total", "Malformed requests.", L_R, 1 },
    [F_DEADLOCKS] = { SL_METRIC_COUNTER, "sluice_deadlocks_total", "Deadlocks reported.", L_R, 1 },
    [F_STALLS] = { SL_METRIC_COUNTER, "sluice_stalls_total", "Reactor stalls reported.", L_R, 1 },
    [F_MSGS] = { SL_METRIC_COUNTER, "sluice_reactor_messages_total", "Cross-reactor messages run (from other "
                 "reactors and threads: hops, offload and store replies).", L_R, 1 },
    [F_WAKEUPS] = { SL_METRIC_COUNTER, "sluice_reactor_wakeups_total", "Times the message queue woke the "
                    "reactor.", L_R, 1 },
    [F_SPINS] = { SL_METRIC_COUNTER, "sluice_reactor_spins_total", "Times the reactor, idle right after "
                  "cross-reactor traffic, polled its message queue before sleeping (the idle spin).", L_R, 1 },
    [F_SPIN_HITS] = { SL_METRIC_COUNTER, "sluice_reactor_spin_hits_total", "Idle spins that saw a message "
                      "arrive (a sleep and a wake-up saved).", L_R, 1 },
    [F_SPIN_RUNS] = { SL_METRIC_COUNTER, "sluice_reactor_spin_runs_total", "Spin hits run inside the spin "
                      "(the messages, the tasks they readied, a spin again) without a libevent turn.", L_R, 1 },
    [F_SPIN_BOUNDS] = { SL_METRIC_COUNTER, "sluice_reactor_spin_bounds_total", "Spin hits handed to libevent "
                        "instead, to let its poll and timers in (1,024 legs or 50 us in a row, or a timer due).",
                        L_R, 1 },
    [F_SPIN_YIELDS] = { SL_METRIC_COUNTER, "sluice_reactor_spin_yields_total", "sched_yield() calls of the "
                        "spins and of the wake-ups' brief polls (polls past their first pauses).", L_R, 1 },
    [F_SPIN_MISSES] = { SL_METRIC_COUNTER, "sluice_reactor_spin_misses_total", "Spins that saw nothing come "
                        "and let the reactor sleep.", L_R, 1 },
    [F_SPIN_SKIPS] = { SL_METRIC_COUNTER, "sluice_reactor_spin_skips_total", "Spins left out because a recent "
                       "one took over twice its length (it lost its CPU: the machine is busy).", L_R, 1 },
    [F_SPIN_EMPTY_SKIPS] = { SL_METRIC_COUNTER, "sluice_reactor_spin_empty_skips_total", "Spins left out "
                             "because the recent ones saw nothing (4 in a row, then 1, 2, 4 ... 256 left out).",
                             L_R, 1 },
    [F_SPIN_EMPTY_WAKES] = { SL_METRIC_COUNTER, "sluice_reactor_spin_empty_wakes_total", "Times a message "
                             "that came within a spin's length of such a skip ended the skipping.", L_R, 1 },
    [F_FD_WAKEUPS] = { SL_METRIC_COUNTER, "sluice_reactor_fd_wakeups_total", "Wake-ups by a producer's "
                       "eventfd write (the reactor had let go of its queue).", L_R, 1 },
    [F_BRIEF_POLLS] = { SL_METRIC_COUNTER, "sluice_reactor_brief_polls_total", "A wake-up's brief polls of the "
                        "queue after its messages ran (up to as long as they took, at most 50 us).", L_R, 1 },
    [F_BRIEF_HITS] = { SL_METRIC_COUNTER, "sluice_reactor_brief_poll_hits_total", "Brief polls that saw a "
                       "message come.", L_R, 1 },
    [F_BRIEF_EMPTY] = { SL_METRIC_COUNTER, "sluice_reactor_brief_poll_empty_seconds_total", "Wall time of "
                        "brief polls that saw nothing (past their first pauses; a yield that let another thread run "
                        "counts its time too: an upper bound on their CPU).", L_R, 1 },
    [F_CTX_ENDS] = { SL_METRIC_COUNTER, "sluice_ctx_ends_total", "Request contexts ended, by cause.", L_R_CAUSE,
                     SL_CAUSE_COUNT },
    [F_TASKS] = { SL_METRIC_GAUGE, "sluice_tasks", "Tasks alive, by state.", L_R_STATE, 4 },
    [F_CHANNELS] = { SL_METRIC_GAUGE, "sluice_channel_length", "Elements buffered in a channel (channel_id: "
                     "the k-th channel of that name on the reactor, from 0).", L_CHAN, CHANS_PER_REACTOR },
    [F_CHAN_EXPIRED] = { SL_METRIC_COUNTER, "sluice_channel_expired_total", "Elements dropped at their "
                         "deadline, never received (sl_chan_send_until).", L_CHAN_ID, CHANS_PER_REACTOR },
    [F_UP_CALLS] = { SL_METRIC_COUNTER, "sluice_upstream_calls_total", "Attempts of calls to upstreams by result "
                     "(busy: refused here, the pool's queue was full).", L_UP_RESULT, 0 },
    [F_UP_EVENTS] = { SL_METRIC_COUNTER, "sluice_upstream_events_total", "Events of upstream pools: retried "
                      "(attempts made again), ejected (replicas taken out of rotation), connected (connections "
                      "made), reused (attempts on a kept-alive connection), expired (idle connections closed "
                      "past idle_timeout_ms).", L_UP_EVENT, 0 },
    [F_UP_CONNS] = { SL_METRIC_GAUGE, "sluice_upstream_connections", "Connections to upstreams (active, idle) "
                     "and calls waiting for one, summed over reactors.", L_UP_STATE, 0 },
    [F_OFF_DEPTH] = { SL_METRIC_GAUGE, "sluice_offload_queue_depth", "Offloaded calls waiting for a worker "
                      "thread.", NULL, 0 },
    [F_OFF_CAP] = { SL_METRIC_GAUGE, "sluice_offload_queue_capacity", "The most that may wait; beyond it "
                    "sl_offload says -EBUSY.", NULL, 0 },
    [F_OFF_RUNNING] = { SL_METRIC_GAUGE, "sluice_offload_running", "Offloaded calls running on a worker thread "
                        "now.", NULL, 0 },
    [F_OFF_THREADS] = { SL_METRIC_GAUGE, "sluice_offload_threads", "Worker threads started, of the pool's size.",
                        L_STATE, 0 },
    [F_OFF_CALLS] = { SL_METRIC_COUNTER, "sluice_offload_calls_total", "Offloaded calls by outcome: accepted, "
                      "rejected (queue full), completed (returned), dropped (never started: their task gave up), "
                      "abandoned (their task gave up while they ran).", L_RESULT, 0 },
    [F_OFF_WAIT] = { SL_METRIC_SUMMARY, "sluice_offload_wait_seconds", "Time offloaded calls waited for a "
                     "worker.", NULL, 0 },
    [F_OFF_WAIT_MAX] = { SL_METRIC_GAUGE, "sluice_offload_wait_seconds_max", "The longest such wait.", NULL, 0 },
    [F_OFF_RUN] = { SL_METRIC_SUMMARY, "sluice_offload_run_seconds", "Time offloaded calls ran on a worker.",
                    NULL, 0 },
    [F_OFF_RUN_MAX] = { SL_METRIC_GAUGE, "sluice_offload_run_seconds_max", "The longest such run.", NULL, 0 },
    [F_LOG_DROPPED] = { SL_METRIC_COUNTER, "sluice_log_dropped_total", "Log lines dropped because the log sink's "
                        "buffer was full or its fd failed (sl_log.h).", NULL, 0 },
    [F_WATCHDOG_WAKEUPS] = { SL_METRIC_COUNTER, "sluice_watchdog_wakeups_total", "Times the stall watchdog's "
                             "thread woke: its ticks while some reactor works, and a reactor's turn after it "
                             "parked.", NULL, 0 },
    [F_WATCHDOG_PARKS] = { SL_METRIC_COUNTER, "sluice_watchdog_parks_total", "Times the stall watchdog parked, "
                           "every reactor being idle (an idle process does not wake for it).", NULL, 0 },
    [F_TRACE_SPANS] = { SL_METRIC_COUNTER, "sluice_trace_spans_total", "Sampled spans by fate: exported (the "
                        "collector took them), dropped (the export queue was full), failed (the collector refused "
                        "them or did not answer in time).", L_RESULT, 0 },
    [F_TRACE_QUEUE] = { SL_METRIC_GAUGE, "sluice_trace_queue_spans", "Spans waiting for export.", NULL, 0 },
    /* the process_* families as Prometheus' client libraries name them */
    [F_CPU] = { SL_METRIC_COUNTER, "process_cpu_seconds_total", "Total user and system CPU time spent in "
                "seconds.", NULL, 0 },
    [F_RSS] = { SL_METRIC_GAUGE, "process_resident_memory_bytes", "Resident memory size in bytes.", NULL, 0 },
    [F_VMS] = { SL_METRIC_GAUGE, "process_virtual_memory_bytes", "Virtual memory size in bytes.", NULL, 0 },
    [F_FDS] = { SL_METRIC_GAUGE, "process_open_fds", "Number of open file descriptors.", NULL, 0 },
    [F_MAX_FDS] = { SL_METRIC_GAUGE, "process_max_fds", "Maximum number of open file descriptors.", NULL, 0 },
};

struct builtin_fams {
    sl_metric *f[F_COUNT];
};

/* Label values of the causes a request context ends with, snake_case
 * (sl_cause_text is a sentence: "caller's deadline"). */
static const char *const cause_label[] = {
    [SL_CAUSE_NONE] = "completed", [SL_CAUSE_CANCELED] = "canceled", [SL_CAUSE_DEADLINE] = "deadline_exceeded",
    [SL_CAUSE_DISCONNECT] = "client_disconnected", [SL_CAUSE_SHUTDOWN] = "shutdown",
    [SL_CAUSE_UPSTREAM] = "upstream_failed", [SL_CAUSE_DEADLOCK] = "deadlock",
    [SL_CAUSE_CALLER_DEADLINE] = "caller_deadline",
};
_Static_assert(sizeof cause_label / sizeof *cause_label == SL_CAUSE_COUNT, "a label for every cause");

#define REPORT(fam, values, v)                                                \
    do {                                                                      \
        int rc_ = sl_scrape_add(sc, bf->f[fam], values, (double)(v));         \
        if (rc_ < 0)                                                          \
            return rc_;                                                       \
    } while (0)

/* One channel of a reactor, for channel_id: the k-th of its name. */
typedef struct chan_ent {
    const char *name;
    size_t order, len, cap;
    uint64_t expired;
} chan_ent;

typedef struct chan_list {
    chan_ent *e;
    size_t n, cap;
    bool oom;
} chan_list;

static int chan_add(sl_chan *ch, void *arg)
{
    chan_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        chan_ent *e = realloc(l->e, cap * sizeof *e);
        if (!e) {
            l->oom = true;
            return 1;
        }
        l->e = e;
        l->cap = cap;
    }
    const char *name = sl_chan_name(ch);
    sl_chan_stats st;
    sl_chan_stats_get(ch, &st);
    l->e[l->n] = (chan_ent){ .name = name ? name : "", .order = l->n, .len = st.len, .cap = st.cap,
                             .expired = st.expired };
    l->n++;
    return 0;
}

static int chan_cmp(const void *a, const void *b)
{
    const chan_ent *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    return c ? c : x->order < y->order ? -1 : x->order > y->order;
}

/* Reactor i's channels: channel_id tells apart channels of one name on a
 * reactor (the k-th of that name by age, from 0), which would otherwise
 * be one series twice. */
static int channels_collect(sl_metrics_scrape *sc, struct builtin_fams *bf, srv_reactor *sr, const char *rid)
{
    chan_list l = { 0 };
    sl_reactor_foreach_chan(sr->r, chan_add, &l);
    int rc = l.oom ? -ENOMEM : 0;
    if (l.n)   /* qsort wants a non-NULL array even for none */
        qsort(l.e, l.n, sizeof *l.e, chan_cmp);
    for (size_t k = 0, same = 0; rc == 0 && k < l.n; k++) {
        same = k && !strcmp(l.e[k].name, l.e[k - 1].name) ? same + 1 : 0;
        char id[24], cap[24];
        snprintf(id, sizeof id, "%zu", same);
        snprintf(cap, sizeof cap, "%zu", l.e[k].cap);
        rc = sl_scrape_add(sc, bf->f[F_CHANNELS], (const char *const[]){ rid, l.e[k].name, id, cap },
                           (double)l.e[k].len);
        if (rc == 0)
            rc = sl_scrape_add(sc, bf->f[F_CHAN_EXPIRED], (const char *const[]){ rid, l.e[k].name, id },
                               (double)l.e[k].expired);
    }
    free(l.e);
    return rc;
}

/* The server's figures of reactor i, read on reactor i (their only writer). */
static int server_collect(sl_metrics_scrape *sc, int i, void *arg)
{
    sl_http_server *srv = arg;
    struct builtin_fams *bf = srv->fams;
    if (i < 0 || i >= srv->n)
        return 0;
    srv_reactor *sr = &srv->sr[i];
    char rid[16];
    snprintf(rid, sizeof rid, "%d", i);
    const char *const r[] = { rid };
    uint64_t in = 0, out = 0, most = 0;   /* sl__conn_buffered adds to them */
    sl__conn_buffered(sr, &in, &out, &most);
    sl_reactor_stats rs;
    sl_reactor_stats_get(sr->r, &rs);
    REPORT(F_INFLIGHT, r, sr->inflight);
    REPORT(F_INFLIGHT_PEAK, r, sr->st.inflight_peak);
    REPORT(F_QUEUED, r, sr->queued);
    REPORT(F_CONNS, r, sr->nconns);
    REPORT(F_BUF_IN, r, in);
    REPORT(F_BUF_OUT, r, out);
    REPORT(F_CONN_BUF_MAX, r, most);
    REPORT(F_SHED, r, sr->st.shed);
    REPORT(F_ADM_LIMIT, r, sl__admit_limit(&sr->adm));
    REPORT(F_ADM_OVERLOADED, r, sr->adm.overloaded);
    REPORT(F_ADM_FLOODED, r, sr->adm.flooded);
    REPORT(F_ADM_STORM, r, sr->adm.storm > 0);
    REPORT(F_ADM_BATCH_NAPS, r, sr->st.batch_naps);
    REPORT(F_ADM_DRAIN, r, sl__admit_drain(&sr->adm));
    REPORT(F_ADM_MAX_WAIT, r, (double)sl__admit_max_wait(&sr->adm) / 1e9);
    REPORT(F_EXPIRED, r, sr->st.expired);
    REPORT(F_QUEUE_DELAY, r, (double)sr->adm.last_delay / 1e9);
    REPORT(F_UNDO_STARTED, r, sr->st.undo_started);
    REPORT(F_UNDO_RUNNING, r, sr->undo);
    REPORT(F_PARSE_ERRORS, r, sr->st.parse_errors);
    REPORT(F_DEADLOCKS, r, rs.deadlocks);
    REPORT(F_STALLS, r, rs.stalls);
    REPORT(F_MSGS, r, rs.msgs);
    REPORT(F_WAKEUPS, r, rs.wakeups);
    REPORT(F_SPINS, r, rs.spins);
    REPORT(F_SPIN_HITS, r, rs.spin_hits);
    REPORT(F_SPIN_RUNS, r, rs.spin_runs);
    REPORT(F_SPIN_BOUNDS, r, rs.spin_bounds);
    REPORT(F_SPIN_YIELDS, r, rs.spin_yields);
    REPORT(F_SPIN_MISSES, r, rs.spin_misses);
    REPORT(F_SPIN_SKIPS, r, rs.spin_skips);
    REPORT(F_SPIN_EMPTY_SKIPS, r, rs.spin_empty_skips);
    REPORT(F_SPIN_EMPTY_WAKES, r, rs.spin_empty_wakes);
    REPORT(F_FD_WAKEUPS, r, rs.fd_wakeups);
    REPORT(F_BRIEF_POLLS, r, rs.brief_polls);
    REPORT(F_BRIEF_HITS, r, rs.brief_hits);
    REPORT(F_BRIEF_EMPTY, r, (double)rs.brief_empty_ns / 1e9);
    for (int c = 0; c < SL_CAUSE_COUNT; c++)
        REPORT(F_CTX_ENDS, ((const char *const[]){ rid, cause_label[c] }), sr->st.ctx_ends[c]);
    size_t by_state[4] = { 0 };
    sl_reactor_foreach_task(sr->r, count_task, by_state);
    for (int k = 0; k < 4; k++)
        REPORT(F_TASKS, ((const char *const[]){ rid, sl_task_status_name((sl_task_status)k) }), by_state[k]);
    return channels_collect(sc, bf, sr, rid);
}

/* Each upstream's pool of reactor i, read on reactor i (its only user);
 * the scrape sums the reactors (a reactor label would multiply series for
 * nothing). Outcomes of attempts and events (retried: attempts made again,
 * ejected: replicas taken out of rotation) are families of their own, so
 * that a sum over results counts attempts. */
static int upstreams_collect(sl_metrics_scrape *sc, int i, void *arg)
{
    sl_http_server *srv = arg;
    struct builtin_fams *bf = srv->fams;
    for (int k = 0; k < srv->nups; k++) {
        sl_http_upstream_stats u;
        sl__upstream_stats_peek(srv->ups[k].up, i, &u);
        const char *name = srv->ups[k].name;
        const struct { int fam; const char *what; uint64_t v; } v[] = {
            { F_UP_CALLS, "ok", u.ok }, { F_UP_CALLS, "refused", u.refused }, { F_UP_CALLS, "reset", u.reset },
            { F_UP_CALLS, "timeout", u.timeouts }, { F_UP_CALLS, "cancelled", u.cancelled },
            { F_UP_CALLS, "busy", u.busy }, { F_UP_CALLS, "protocol", u.protocol },
            { F_UP_EVENTS, "retried", u.retried }, { F_UP_EVENTS, "ejected", u.ejected },
            { F_UP_EVENTS, "connected", u.connects }, { F_UP_EVENTS, "reused", u.reused },
            { F_UP_EVENTS, "expired", u.expired },
            { F_UP_CONNS, "active", u.active }, { F_UP_CONNS, "idle", u.idle }, { F_UP_CONNS, "waiting", u.waiting },
        };
        for (size_t j = 0; j < sizeof v / sizeof *v; j++)
            REPORT(v[j].fam, ((const char *const[]){ name, v[j].what }), v[j].v);
    }
    return 0;
}

/* The runtime's blocking-work pool (core/sl_offload.h), read under the
 * pool's lock: one pool per runtime, so one series each. */
static int offload_collect(sl_metrics_scrape *sc, struct builtin_fams *bf, sl_runtime *rt)
{
    sl_offload_stats o;
    if (!bf->f[F_OFF_DEPTH] || !rt || sl_offload_stats_get(rt, &o) < 0 || !o.threads_max)
        return 0;
    REPORT(F_OFF_DEPTH, NULL, o.queued);
    REPORT(F_OFF_CAP, NULL, o.queue_cap);
    REPORT(F_OFF_RUNNING, NULL, o.running);
    REPORT(F_OFF_THREADS, ((const char *const[]){ "started" }), o.threads);
    REPORT(F_OFF_THREADS, ((const char *const[]){ "max" }), o.threads_max);
    const struct { const char *what; uint64_t v; } calls[] = {
        { "accepted", o.submitted }, { "rejected", o.rejected }, { "completed", o.completed },
        { "dropped", o.dropped }, { "abandoned", o.abandoned },
    };
    for (size_t j = 0; j < sizeof calls / sizeof *calls; j++)
        REPORT(F_OFF_CALLS, ((const char *const[]){ calls[j].what }), calls[j].v);
    int rc = sl_scrape_summary(sc, bf->f[F_OFF_WAIT], NULL, (double)o.wait_ns / 1e9,
                               o.submitted - o.dropped - o.queued);   /* the calls that started */
    if (rc == 0)
        rc = sl_scrape_summary(sc, bf->f[F_OFF_RUN], NULL, (double)o.run_ns / 1e9, o.completed);
    if (rc < 0)
        return rc;
    REPORT(F_OFF_WAIT_MAX, NULL, (double)o.wait_max_ns / 1e9);
    REPORT(F_OFF_RUN_MAX, NULL, (double)o.run_max_ns / 1e9);
    return 0;
}

/* The process's figures (reported once: from reactor 0): the OS's (Linux's
 * /proc; a figure that cannot be read is left out), the offload pool, the
 * log sink, the tracer. */
static int process_collect(sl_metrics_scrape *sc, int i, void *arg)
{
    sl_http_server *srv = arg;
    struct builtin_fams *bf = srv->fams;
    if (i != 0)
        return 0;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        REPORT(F_CPU, NULL, (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long vm, rss;
    if (f) {
        bool ok = fscanf(f, "%llu %llu", &vm, &rss) == 2;
        fclose(f);
        if (ok) {
            double page = (double)sysconf(_SC_PAGESIZE);
            REPORT(F_VMS, NULL, (double)vm * page);
            REPORT(F_RSS, NULL, (double)rss * page);
        }
    }
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        for (struct dirent *e; (e = readdir(d));)
            n += e->d_name[0] != '.';
        closedir(d);
        REPORT(F_FDS, NULL, n - 1);   /* not the one that read the directory */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        REPORT(F_MAX_FDS, NULL, rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur);
    REPORT(F_LOG_DROPPED, NULL, sl_log_dropped());
    sl_reactor_stats rs;   /* on reactor 0: the runtime's watchdog, the same on every reactor */
    sl_reactor_stats_get(srv->sr[0].r, &rs);
    REPORT(F_WATCHDOG_WAKEUPS, NULL, rs.watchdog_wakeups);
    REPORT(F_WATCHDOG_PARKS, NULL, rs.watchdog_parks);
    if (srv->o.tracer && bf->f[F_TRACE_SPANS]) {
        sl_tracer_stats st;
        sl_tracer_stats_get(srv->o.tracer, &st);
        REPORT(F_TRACE_SPANS, ((const char *const[]){ "exported" }), st.exported);
        REPORT(F_TRACE_SPANS, ((const char *const[]){ "dropped" }), st.dropped);
        REPORT(F_TRACE_SPANS, ((const char *const[]){ "failed" }), st.failed);
        REPORT(F_TRACE_QUEUE, NULL, st.queued);
    }
    return offload_collect(sc, bf, sl_reactor_runtime(srv->sr[0].r));
}
#undef REPORT

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
    /* the offload pool's families if the runtime has one, the tracer's if
     * the server has one: no families of zeros for what is not there */
    sl_offload_stats os;
    bool pool = sl_offload_stats_get(sl_reactor_runtime(srv->sr[0].r), &os) == 0 && os.threads_max;
    for (int k = 0; rc == 0 && k < F_COUNT; k++) {
        const struct fam_def *d = &defs[k];
        if ((k >= F_OFF_DEPTH && k <= F_OFF_RUN_MAX && !pool) ||
            ((k == F_TRACE_SPANS || k == F_TRACE_QUEUE) && !srv->o.tracer))
            continue;
        size_t max = d->per_reactor ? d->per_reactor * (size_t)srv->n : 1024;
        rc = sl_metric_new(m, &bf->f[k], d->type, d->name, &(sl_metric_opts){
            .help = d->help, .labels = d->labels, .max_series = max < 4096 ? max : 4096 });
    }
    if (rc == 0)
        rc = sl_metrics_collector(m, "sluice_server", server_collect, srv);
    if (rc == 0)
        rc = sl_metrics_collector(m, "sluice_upstreams", upstreams_collect, srv);
    if (rc == 0)
        rc = sl_metrics_collector(m, "sluice_process", process_collect, srv);
    if (rc == 0)
        rc = sl_metric_new(m, &f, SL_METRIC_GAUGE, "process_start_time_seconds",
                           &(sl_metric_opts){ .help = "Start time of the process since unix epoch in seconds." });
    if (rc == 0) {
        sl_series *start;
        sl_metric_series(f, NULL, &start);
        sl__series_put(start, process_start_time());
        rc = sl_metric_new(m, &f, SL_METRIC_GAUGE, "sluice_build_info",
                           &(sl_metric_opts){ .help = "The sluice library serving: 1, with its version.",
                                              .labels = by_version });
    }
    if (rc == 0) {
        sl_series *one;
        sl_metric_series(f, (const char *[]){ PACKAGE_VERSION }, &one);
        sl__series_put(one, 1);
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

static void metrics_text(gather *g, struct evbuffer *out, bool om)
{
    sl_metrics_scrape **sc = calloc((size_t)g->n, sizeof *sc);
    for (int i = 0; sc && i < g->n; i++)
        sc[i] = g->parts[i] ? g->parts[i]->sc : NULL;
    sl__metrics_write(g->srv->metrics, sc, sc ? g->n : 0, out, om);
    free(sc);
    if (om)
        evbuffer_add(out, "# EOF\n", 6);
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
