/* runtime.c: N reactors, one per thread; reactor 0 runs on the caller's. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <event2/event.h>
#include "internal.h"

int sl_runtime_new(sl_runtime **out, const sl_runtime_opts *opts)
{
    int n = opts && opts->threads > 0 ? opts->threads : sl_cpus_usable();
    if (!out || n > 1024 || (opts && (opts->deadlock_policy < SL_DEADLOCK_REPORT ||
                                      opts->deadlock_policy > SL_DEADLOCK_STOP)))
        return -EINVAL;
    if (n < 1)
        n = 1;
    sl_runtime *rt = calloc(1, sizeof *rt);
    if (!rt)
        return -ENOMEM;
    rt->r = calloc((size_t)n, sizeof *rt->r);
    if (!rt->r) {
        free(rt);
        return -ENOMEM;
    }
    rt->pin = opts && opts->pin_cpus;
    rt->stop_when_done = opts && opts->stop_when_done;
    rt->stall_ms = !opts || !opts->stall_ms ? 10 : opts->stall_ms < 0 ? 0 : opts->stall_ms;
    int prc = sl__offload_new(rt, opts);
    if (prc < 0) {
        free(rt->r);
        free(rt);
        return prc;
    }
    for (int i = 0; i < n; i++) {
        rt->r[i] = aligned_alloc(64, (sizeof *rt->r[i] + 63) & ~(size_t)63);   /* its queue's lines */
        int rc = rt->r[i] ? sl__reactor_init(rt->r[i], rt, i, NULL, opts) : -ENOMEM;
        rt->n = i + 1;
        if (rc < 0) {
            if (!rt->r[i])
                rt->n = i;
            sl_runtime_free(rt);
            return rc;
        }
    }
    int rc = sl__reactor_rings_new(rt);
    if (rc < 0) {
        sl_runtime_free(rt);
        return rc;
    }
    *out = rt;
    return 0;
}

int sl_runtime_threads(const sl_runtime *rt) { return rt->n; }

void sl__live_add(sl_runtime *rt)
{
    if (rt && rt->stop_when_done)
        atomic_fetch_add_explicit(&rt->live, 1, memory_order_relaxed);
}

/* A task ended (or a posted spawn failed). Every add is sequenced before
 * the sub of the task that made it (its spawner ends after spawning), so
 * the count cannot touch 0 while a task is still to come. */
void sl__live_sub(sl_runtime *rt)
{
    if (rt && rt->stop_when_done &&
        atomic_fetch_sub_explicit(&rt->live, 1, memory_order_acq_rel) == 1)
        sl_runtime_stop(rt);
}

sl_reactor *sl_runtime_reactor(sl_runtime *rt, int i)
{
    return i >= 0 && i < rt->n ? rt->r[i] : NULL;
}

static void pin(sl_reactor *r)
{
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)(r->id % ncpu), &set);
    pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void *reactor_main(void *arg)
{
    sl_reactor *r = arg;
    char name[16];
    /* top -H and perf tell the threads apart; reactor 0 runs on the
     * caller's thread, whose name is the program's */
    snprintf(name, sizeof name, "sl-reactor-%d", r->id);
    pthread_setname_np(pthread_self(), name);
    sl__set_current_reactor(r);
    sl__claim(r, true);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sl__stall_signal());
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    r->thread = pthread_self();
    atomic_store(&r->thread_ready, true);
    if (r->rt->pin)
        pin(r);
    sl__callback_end(r);   /* publish whether it is asleep: an idle reactor runs no callback */
    event_base_loop(r->base, EVLOOP_NO_EXIT_ON_EMPTY);
    sl__set_current_reactor(NULL);
    return NULL;
}

int sl_runtime_run(sl_runtime *rt)
{
    int expect = 0;
    if (!atomic_compare_exchange_strong(&rt->state, &expect, 1))
        return -EALREADY;
    pthread_t *th = calloc((size_t)rt->n, sizeof *th);
    if (!th)
        return -ENOMEM;
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int started = 1, rc = 0;
    for (int i = 1; i < rt->n; i++) {
        /* Nobody may touch the reactor from here on but its thread, which
         * claims it with its own token as it starts. */
        atomic_store(&rt->r[i]->owner, (void *)&rt->state);
        if (pthread_create(&th[i], NULL, reactor_main, rt->r[i]) != 0) {
            sl__claim(rt->r[i], false);
            rc = -EAGAIN;
            break;
        }
        started++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0 || (rt->stop_when_done && atomic_load(&rt->live) == 0))
        sl_runtime_stop(rt);   /* failed, or nothing to run */
    sl_reactor *r0 = rt->r[0];
    sl__claim(r0, true);
    r0->thread = pthread_self();
    atomic_store(&r0->thread_ready, true);
    if (rc == 0)
        rc = sl__watchdog_start(rt);
    sl_reactor *prev = sl_reactor_current();
    sl__set_current_reactor(r0);
    if (rt->pin)
        pin(r0);
    sl__callback_end(r0);
    event_base_loop(r0->base, EVLOOP_NO_EXIT_ON_EMPTY);
    sl__set_current_reactor(prev);
    sl__watchdog_stop(rt);
    for (int i = 1; i < started; i++)
        pthread_join(th[i], NULL);
    if (!atomic_load(&rt->trace_want))
        sl__trace_write(rt);   /* sl_trace_stop() was called while running */
    for (int i = 0; i < rt->n; i++)
        sl__claim(rt->r[i], false);
    free(th);
    atomic_store(&rt->state, 2);
    return rc ? rc : atomic_load(&rt->stop_err);
}

void sl_runtime_stop(sl_runtime *rt)
{
    for (int i = 0; i < rt->n; i++)
        sl__reactor_stop(rt->r[i]);
}

int sl_runtime_free(sl_runtime *rt)
{
    if (!rt)
        return 0;
    int leaks = 0;
    /* Messages may post more messages to other reactors: drain to a fixpoint. */
    for (int ran = 1; ran;) {
        ran = 0;
        for (int i = 0; i < rt->n; i++)
            ran += sl__reactor_drain(rt->r[i]);
    }
    sl__trace_write(rt);   /* still recording at free: write what there is */
    leaks += sl__offload_report(rt);
    for (int i = 0; i < rt->n; i++)
        leaks += sl__reactor_teardown_tasks(rt->r[i]);
    /* every task has gone: now wait for the work they left running, and
     * run its results home (each abandon hook takes its arg back) */
    sl__offload_stop(rt);
    for (int ran = 1; ran;) {
        ran = 0;
        for (int i = 0; i < rt->n; i++)
            ran += sl__reactor_drain(rt->r[i]);
    }
    sl__offload_free(rt);
    for (int i = 0; i < rt->n; i++)
        leaks += sl__reactor_teardown(rt->r[i]);
    for (int i = 0; i < rt->n; i++) {
        sl__reactor_rings_free(rt->r[i]);
        free(rt->r[i]);
    }
    free(rt->r);
    free(rt);
    return leaks;
}
