/* run.c: a run: the runtime with one worker per reactor, the start line,
 * the progress line, SIGINT, and the merge at the end. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>
#include "engine.h"
#include "load.h"

#define START_DELAY_NS (20 * SL_NS_PER_MS)   /* every reactor is up by then */

typedef struct run {
    load_shared sh;
    worker *w;
    struct event *progress, *sigint;
    uint64_t last_done;
} run;

static int build_prefix(load_shared *sh, const load_opts *o)
{
    sh->prefix = load_request_prefix(o, &sh->prefix_len);
    return sh->prefix ? 0 : -ENOMEM;
}

static int worker_init(worker *w, run *rn, int i, size_t nsecs)
{
    const load_opts *o = rn->sh.o;
    w->sh = &rn->sh;
    w->id = i;
    w->tfd = -1;
    w->r = sl_runtime_reactor(rn->sh.rt, i);
    w->base = sl_reactor_base(w->r);
    w->t_end = rn->sh.t_end;
    w->rng = 0x9E3779B97F4A7C15ULL * (uint64_t)(i + 1) ^ sl_now_ns();
    w->rng = w->rng ? w->rng : 1;
    w->nconns = o->connections / rn->sh.nthreads + (i < o->connections % rn->sh.nthreads);
    w->conns = calloc((size_t)w->nconns, sizeof *w->conns);
    w->rbuf = malloc(LOAD_RBUF);
    w->bodybuf = malloc(o->has_body ? o->body.max_len + 1 : 1);
    if (!w->conns || !w->rbuf || !w->bodybuf || load_stats_init(&w->st, nsecs) < 0)
        return -ENOMEM;
    for (int k = 0; k < w->nconns; k++)
        w->conns[k] = (lconn){ .w = w, .fd = -1, .state = C_FREE };
    return 0;
}

static void worker_free(worker *w)
{
    free(w->conns);
    free(w->rbuf);
    free(w->bodybuf);
    free(w->pq);
    load_stats_free(&w->st);
}

/* ---- progress line (reactor 0, only when stderr is a terminal) --------- */

static void on_progress(evutil_socket_t fd, short what, void *arg)
{
    run *rn = arg;
    uint64_t done = 0, errs = 0, p99 = 0, now = sl_now_ns();
    (void)fd, (void)what;
    for (int i = 0; i < rn->sh.nthreads; i++) {
        worker *w = &rn->w[i];
        done += atomic_load_explicit(&w->a_done, memory_order_relaxed);
        errs += atomic_load_explicit(&w->a_err, memory_order_relaxed);
        uint64_t p = atomic_load_explicit(&w->a_p99, memory_order_relaxed);
        p99 = p > p99 ? p : p99;
    }
    double el = now > rn->sh.t_begin ? (double)(now - rn->sh.t_begin) / 1e9 : 0;
    fprintf(stderr, "\r  %6.1fs  %9.0f req/s  p99 %8.2f ms  errors %llu   ", el,
            (double)(done - rn->last_done), (double)p99 / 1e6, (unsigned long long)errs);
    rn->last_done = done;
}

static void on_sigint(evutil_socket_t fd, short what, void *arg)
{
    run *rn = arg;
    (void)fd, (void)what;
    atomic_store(&rn->sh.interrupted, true);
}

static int add_events(run *rn)
{
    struct event_base *b0 = sl_reactor_base(sl_runtime_reactor(rn->sh.rt, 0));
    rn->sigint = evsignal_new(b0, SIGINT, on_sigint, rn);
    if (!rn->sigint || evsignal_add(rn->sigint, NULL) < 0)
        return -ENOMEM;
    if (rn->sh.o->quiet || !isatty(STDERR_FILENO))
        return 0;
    struct timeval sec = { 1, 0 };
    rn->progress = event_new(b0, -1, EV_PERSIST, on_progress, rn);
    return rn->progress && event_add(rn->progress, &sec) == 0 ? 0 : -ENOMEM;
}

/* ---- the run ------------------------------------------------------------ */

static int setup(run *rn, const load_opts *o)
{
    load_shared *sh = &rn->sh;
    sh->o = o;
    sh->nthreads = o->threads;
    sh->period_ns = o->rate > 0 ? 1e9 / o->rate : 0;
    size_t nsecs = (size_t)ceil(o->duration_s - 1e-9);
    int rc = sl_runtime_new(&sh->rt, &(sl_runtime_opts){ .threads = o->threads, .deadlock_check_ms = -1,
                                                     .stall_ms = -1 });
    if (rc < 0)
        return rc;
    if (build_prefix(sh, o) < 0 || !(rn->w = calloc((size_t)o->threads, sizeof *rn->w)))
        return -ENOMEM;
    sh->t_begin = sl_now_ns() + START_DELAY_NS;
    sh->t0 = sh->t_begin + (uint64_t)(o->warmup_s * 1e9);
    sh->t_end = sh->t0 + (uint64_t)(o->duration_s * 1e9);
    for (int i = 0; i < o->threads; i++)
        if ((rc = worker_init(&rn->w[i], rn, i, nsecs ? nsecs : 1)) < 0)
            return rc;
    for (int i = 0; i < o->threads; i++)
        if ((rc = worker_spawn(&rn->w[i])) < 0)
            return rc;
    return add_events(rn);
}

static int collect(run *rn, load_result *res)
{
    load_shared *sh = &rn->sh;
    load_stats **st = calloc((size_t)sh->nthreads, sizeof *st);
    uint64_t end = 0, last = 0;
    int fail = 0;
    if (!st)
        return -ENOMEM;
    for (int i = 0; i < sh->nthreads; i++) {
        st[i] = &rn->w[i].st;
        end = rn->w[i].t_end > end ? rn->w[i].t_end : end;
        last = st[i]->last_send > last ? st[i]->last_send : last;
        fail = fail ? fail : rn->w[i].fail;
    }
    int rc = fail ? fail : load_result_merge(res, st, sh->nthreads);
    free(st);
    if (rc < 0)
        return rc;
    /* the window, or longer when the generator sent its last requests late */
    res->duration_s = (double)((last > end ? last : end) - sh->t0) / 1e9;
    size_t secs = (size_t)ceil((double)(end - sh->t0) / 1e9 - 1e-9);
    secs = secs ? secs : 1;
    while (res->npoints > secs)    /* interrupted: keep the seconds that were run */
        free(res->points[--res->npoints].status);
    return 0;
}

static void teardown(run *rn)
{
    if (rn->progress) {
        event_free(rn->progress);
        fputc('\n', stderr);
    }
    if (rn->sigint)
        event_free(rn->sigint);
    for (int i = 0; rn->w && i < rn->sh.nthreads; i++)
        worker_free(&rn->w[i]);
    free(rn->w);
    free(rn->sh.prefix);
    if (rn->sh.rt && sl_runtime_free(rn->sh.rt))
        fprintf(stderr, "sluice-load: the runtime reported leaks\n");
}

int load_run(const load_opts *o, load_result *res, char *err, size_t errlen)
{
    run rn = { 0 };
    memset(res, 0, sizeof *res);
    int rc = setup(&rn, o);
    if (rc == 0 && (rc = sl_runtime_run(rn.sh.rt)) == 0)
        rc = collect(&rn, res);
    if (rc < 0)
        snprintf(err, errlen, "cannot run: %s", strerror(-rc));
    teardown(&rn);
    return rc;
}
