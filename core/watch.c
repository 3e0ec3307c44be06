/* watch.c: the diagnostics that watch a running program.
 *
 *  - The wait-for check finds deadlocks among some tasks while others run
 *    (Go sees only "all goroutines are asleep"). Every task parked with no
 *    deadline is a suspect; a suspect is cleared when something outside the
 *    suspects could end its wait: a mutex holder that is not a suspect, a
 *    channel end held by a non-suspect (or, for a channel whose ends nobody
 *    declared, any task that is not a suspect), a channel used from another
 *    reactor, a joined task or group member that is not a suspect. What is
 *    left when nothing more clears is a set of tasks that wait for each other
 *    and nothing else: a deadlock. It runs on a timer, only while some task
 *    is parked without a deadline, off the hot path.
 *  - The watchdog thread notices a reactor whose current step has run longer
 *    than the stall threshold, asks that thread for a backtrace by signal
 *    (as Seastar does) and reports it. A step costs two plain stores for it.
 *    Once every reactor is idle (no step, no turn, none for PARK_TICKS
 *    ticks) it parks, and the next turn of any reactor wakes it: an idle
 *    process does not wake 4 times per stall_ms for nothing.
 *  - Busy polling: a task whose polls (try_ operations, select with default,
 *    SL_YIELD) keep finding nothing is reported once its run of empty polls
 *    reaches the limit. */
#include <errno.h>
#include <execinfo.h>
#include <linux/futex.h>
#include <linux/membarrier.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <event2/event.h>
#include "internal.h"
#include "sl_trace.h"

/* ---- wait-for check ----------------------------------------------------------- */

static bool suspect(const sl_task *t)
{
    return t && (t->flags_ & SL_TF_INSET);
}

/* Could a task outside the suspects provide the `need` end of ch? */
static bool chan_way_out(const sl_chan *ch, int need, bool others_live)
{
    if (ch->remote_seen_ || ch->remote_ops_ || ch->closed_)
        return true;
    bool tracked = false;
    for (const sl_hold *h = ch->holds_.head; h; h = h->clink.next) {
        if (!(h->ends & need))
            continue;
        tracked = true;
        if (!suspect(h->task))
            return true;   /* a live holder (or non-task code) that can act */
    }
    return tracked ? false : others_live;
}

static int need_for(int op) { return op == SL_SEND ? SL_CHAN_RECEIVER : SL_CHAN_SENDER; }

static bool way_out(const sl_task *t, bool others_live)
{
    switch ((sl_wait_kind)t->wait_kind_) {
    case SL_WAIT_SEND:
        return chan_way_out(t->wait_obj_, SL_CHAN_RECEIVER, others_live);
    case SL_WAIT_RECV:
        return chan_way_out(t->wait_obj_, SL_CHAN_SENDER, others_live);
    case SL_WAIT_SELECT: {
        const sl_case *c = t->wait_obj_;
        /* a case on another reactor's channel (w_.tag; not read: its
         * home may have freed it), or on a freed one, is a way out */
        for (int i = 0; i < t->w_.idx; i++)
            if (c[i].w_.tag || chan_way_out(c[i].ch, need_for(c[i].op), others_live))
                return true;
        return false;
    }
    case SL_WAIT_MUTEX:
        return !suspect(((const sl_mutex *)t->wait_obj_)->holder_);
    case SL_WAIT_JOIN:
        return !suspect(t->wait_obj_);
    case SL_WAIT_GROUP:
        for (const sl_task *m = ((const sl_group *)t->wait_obj_)->members_.head; m; m = m->glink_.next)
            if (!suspect(m))
                return true;
        return false;
    default:
        return true;   /* semaphores: their holders are not all known */
    }
}

static void report_set(sl_reactor *r, sl_task **set, size_t n, const char *what)
{
    sl_trace_instant(r, "diag", "deadlock", what);
    char *text = NULL;
    size_t len = 0;
    char line[512];
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    fprintf(f, "sluice: deadlock on reactor %d: %s:", r->id, what);
    for (size_t i = 0; i < n; i++) {
        sl_task_describe(set[i], line, sizeof line);
        fprintf(f, "\n  %s", line);
    }
    fclose(f);
    r->st.deadlocks++;
    sl__deadlock_keep(r, text);
    sl__report(r, "%s", text);
    free(text);
}

void sl__deadlock_act(sl_reactor *r, sl_task **set, size_t n)
{
    for (size_t i = 0; i < n; i++)
        set[i]->flags_ |= SL_TF_REPORTED;
    if (r->policy == SL_DEADLOCK_CANCEL && n) {
        sl__report(r, "sluice: deadlock on reactor %d: cancelling task '%s' (spawned at %s:%d) with -EDEADLK",
                   r->id, set[0]->name_, set[0]->file_, set[0]->line_);
        sl_task_cancel(set[0], -EDEADLK);
    }
    if (r->policy == SL_DEADLOCK_STOP && n && r->rt) {
        sl__report(r, "sluice: deadlock on reactor %d: stopping the runtime (SL_DEADLOCK_STOP)", r->id);
        int none = 0;
        atomic_compare_exchange_strong(&r->rt->stop_err, &none, -EDEADLK);
        sl_runtime_stop(r->rt);
    }
}

/* Runs the check once. Returns the number of tasks in a newly found
 * deadlock (0 if none, or if it was reported before). */
int sl_reactor_check_waits(sl_reactor *r)
{
    size_t n = 0;
    for (sl_task *t = r->tasks.head; t; t = t->link_.next)
        if (t->flags_ & SL_TF_BLOCKED) {
            t->flags_ |= SL_TF_INSET;
            n++;
        }
    /* A channel whose ends nobody declared may be used by any task that
     * is not a suspect, of this reactor or of another: a task of another
     * reactor may not have used it yet (its first operation is a message
     * still on its way, or it has not run yet). Reactor 1's only task,
     * parked on a send to its own channel, was reported while reactor 0's
     * task, late, was about to receive from it (tests/test_watch.c
     * test_remote_wait_posted_late_is_not_deadlock). So while another
     * reactor may run, or a message waits (sl__others_may_act: read as a
     * cut), such a channel is a way out; once every other reactor is
     * asleep too, the all-asleep check (diag.c) sees the whole. */
    bool far_live = n && sl__others_may_act(r);
    for (bool changed = true; changed && n;) {
        changed = false;
        bool others_live = r->ntasks > n || far_live;
        for (sl_task *t = r->tasks.head; t; t = t->link_.next)
            if ((t->flags_ & SL_TF_INSET) && way_out(t, others_live)) {
                t->flags_ &= (uint8_t)~SL_TF_INSET;
                n--;
                changed = true;
            }
    }
    sl_task **set = n ? malloc(n * sizeof *set) : NULL;
    size_t k = 0, fresh = 0;
    for (sl_task *t = r->tasks.head; t; t = t->link_.next)
        if (t->flags_ & SL_TF_INSET) {
            t->flags_ &= (uint8_t)~SL_TF_INSET;
            if (set)
                set[k++] = t;
            fresh += !(t->flags_ & SL_TF_REPORTED);
        }
    int found = 0;
    if (set && fresh) {
        char what[128];
        snprintf(what, sizeof what, "%zu task%s wait for each other while %zu other%s run",
                 k, k == 1 ? "" : "s", r->ntasks - k, r->ntasks - k == 1 ? "" : "s");
        report_set(r, set, k, what);
        sl__deadlock_act(r, set, k);
        found = (int)k;
    }
    free(set);
    return found;
}

static void wg_cb(evutil_socket_t fd, short what, void *arg)
{
    sl_reactor *r = arg;
    (void)fd;
    (void)what;
    r->wg_armed = false;
    if (!r->blocked && !r->remote_pending)
        return;
    sl__asleep_check(r);
    if (r->blocked && sl_reactor_check_waits(r))
        sl__callback_begin(r);   /* the policy may have readied a task: not asleep */
    sl__watch_blocked(r);
}

void sl__watch_blocked(sl_reactor *r)
{
    if (r->wg_armed || !r->wg_ms || !r->wg_ev)
        return;
    struct timeval tv = { r->wg_ms / 1000, (r->wg_ms % 1000) * 1000 };
    evtimer_add(r->wg_ev, &tv);
    r->wg_armed = true;
}

void sl__watch_init(sl_reactor *r, const sl_runtime_opts *o)
{
    r->policy = o ? o->deadlock_policy : SL_DEADLOCK_REPORT;
    r->wg_ms = !o || !o->deadlock_check_ms ? 250 : o->deadlock_check_ms < 0 ? 0 : o->deadlock_check_ms;
    r->spin_limit = o && o->spin_limit ? o->spin_limit : 10000;
    if (r->wg_ms)
        r->wg_ev = evtimer_new(r->base, wg_cb, r);
}

void sl__watch_free(sl_reactor *r)
{
    if (r->wg_ev)
        event_free(r->wg_ev);
    r->wg_ev = NULL;
}

/* ---- busy polling ---------------------------------------------------------------- */

void sl__spin(sl_task *t)
{
    if (++t->spins_ != t->reactor_->spin_limit)
        return;
    char line[512];
    sl_task_describe(t, line, sizeof line);
    sl__report(t->reactor_, "sluice: busy poll on reactor %d: %s has polled %u times in a row "
               "(select default, try_ operations or SL_YIELD) without any channel making progress",
               t->reactor_->id, line, t->spins_);
}

/* ---- stall watchdog ------------------------------------------------------------------ */

int sl__stall_signal(void) { return SIGRTMIN + 4; }

/* On the stalled thread, in a signal handler: copy what the watchdog needs.
 * backtrace() was loaded before (by the watchdog), so it does not allocate. */
static void on_stall_signal(int sig)
{
    (void)sig;
    int saved = errno;
    sl_reactor *r = sl__current_reactor_raw();
    if (r && atomic_load(&r->bt_state) == 1) {
        sl_task *t = r->current;
        if (t)
            snprintf(r->stall_task, sizeof r->stall_task, "task '%s' (spawned at %s:%d)", t->name_, t->file_, t->line_);
        else
            snprintf(r->stall_task, sizeof r->stall_task, "a callback outside any task");
        r->bt_n = backtrace(r->bt, 32);
        atomic_store(&r->bt_state, 2);
    }
    errno = saved;
}

static void report_stall(sl_runtime *rt, sl_reactor *r, uint64_t ran_ns)
{
    atomic_store(&r->bt_state, 1);
    pthread_kill(r->thread, sl__stall_signal());
    for (int i = 0; i < 200 && atomic_load(&r->bt_state) != 2; i++)
        usleep(500);
    uint64_t now = sl_now_ns();
    if (atomic_load(&r->bt_state) == 2 && !strcmp(r->stall_task, r->stall_last) &&
        now - r->stall_last_at < SL_NS_PER_S) {
        r->stall_quiet++;
        atomic_store(&r->bt_state, 0);
        return;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return;
    if (atomic_load(&r->bt_state) == 2) {
        fprintf(f, "sluice: stall on reactor %d: %s has run for %.1f ms without returning to the reactor "
                "(threshold %d ms); every other task of this reactor waits meanwhile", r->id, r->stall_task,
                (double)ran_ns / 1e6, rt->stall_ms);
        if (r->stall_quiet)
            fprintf(f, " (and it stalled %u more times since its last report)", r->stall_quiet);
        fprintf(f, ". Backtrace:");
        snprintf(r->stall_last, sizeof r->stall_last, "%s", r->stall_task);
        r->stall_last_at = now;
        r->stall_quiet = 0;
        char **sym = backtrace_symbols(r->bt, r->bt_n);
        for (int i = 0; sym && i < r->bt_n; i++)
            fprintf(f, "\n  %s", sym[i]);
        free(sym);
    } else {
        fprintf(f, "sluice: stall on reactor %d: a step has run for %.1f ms (threshold %d ms); no backtrace",
                r->id, (double)ran_ns / 1e6, rt->stall_ms);
    }
    fclose(f);
    /* On the watchdog's thread (the reactor is stuck, perhaps for good, so
     * the report cannot wait for it), serialized with every other sink call. */
    sl__report_text_from_watchdog(r, text, 1000);
    free(text);
    atomic_store(&r->bt_state, 0);
}

/* ---- the watchdog parks while every reactor is idle ---------------------------------------
 *
 * It ticked every stall_ms/4 in every process, also when every reactor
 * slept in epoll: 400 wake-ups a second with the services' 10 ms, in each
 * of them (bench/idle-wakeups.sh). Now, once a tick finds every reactor
 * outside a step and outside a turn, and nothing moved for PARK_TICKS
 * ticks, it parks on a futex until a reactor begins a turn (busy_begin in
 * reactor.c, the one way into a step: run_turn, and the spin after a
 * wake-up), which sees the flag and wakes it.
 *
 * No step may begin unseen. A reactor stores busy_seq odd and then loads
 * wd_park; the watchdog stores wd_park and then loads busy_seq and
 * step_seq: either the reactor sees the flag, or the watchdog sees the
 * reactor busy and does not park. Each side's store must be visible
 * before its load; rather than a fence on the reactor's side, at every
 * turn, the watchdog pays for both with membarrier() (a barrier on every
 * CPU running one of our threads; microseconds, once per park), and the
 * reactor's side keeps a compiler barrier only (the asymmetric fence of
 * userspace RCU). Without membarrier (an old kernel, a seccomp filter)
 * the watchdog never parks (tests/test_watch.c
 * test_watchdog_without_membarrier). Once woken it starts its count afresh, so a
 * step that begins after a long idle is reported as any other, stall_ms
 * (and a tick) after it began (tests/test_watch.c
 * test_watchdog_parks_while_idle). */
#define PARK_TICKS 4
/* A park that lasted this long says the process is mostly idle: after the
 * next wake-up (a request, a timer) it parks after one still tick, not
 * PARK_TICKS. Requests every 20 ms or less keep it at PARK_TICKS, so it
 * does not park and wake at every one. At 5 orders/s the chain's
 * voluntary switches per order went 36 -> 28 (docs/core.md). */
#define PARK_LONG_NS (100 * SL_NS_PER_MS)

static long sys_membarrier(int cmd) { return syscall(SYS_membarrier, cmd, 0, 0); }

/* For tests (sl__watch_test_no_membarrier): registration fails as on a
 * kernel without membarrier, so that path, ticking and never parking, is
 * run on every machine. Read at the watchdog's start. */
static _Atomic bool no_membarrier;

void sl__watch_test_no_membarrier(bool on) { atomic_store(&no_membarrier, on); }

static bool membarrier_register(void)
{
    if (atomic_load(&no_membarrier))
        return false;
    /* per process; registering again is harmless */
    return sys_membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

static void futex_wait(_Atomic int *word, int val)
{
    syscall(SYS_futex, (int *)word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(_Atomic int *word)
{
    syscall(SYS_futex, (int *)word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void sl__watchdog_wake(sl_runtime *rt)
{
    if (atomic_exchange(&rt->wd_park, 0))
        futex_wake(&rt->wd_park);
}

/* Every reactor outside a step and a turn, and as it was at the last tick? */
static bool all_still(sl_runtime *rt, const uint32_t *last, const uint32_t *busy)
{
    for (int i = 0; i < rt->n; i++) {
        uint32_t seq = atomic_load_explicit(&rt->r[i]->step_seq, memory_order_relaxed);
        uint32_t b = atomic_load_explicit(&rt->r[i]->busy_seq, memory_order_relaxed);
        if ((seq & 1) || seq != last[i] || (b & 1) || b != busy[i])
            return false;
    }
    return true;
}

/* Parks until a reactor's turn wakes it, unless one moved meanwhile.
 * Returns true if it parked. */
static bool park(sl_runtime *rt, const uint32_t *last, const uint32_t *busy)
{
    atomic_store(&rt->wd_park, 1);
    if (sys_membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 || !all_still(rt, last, busy)) {
        atomic_store(&rt->wd_park, 0);
        return false;
    }
    atomic_fetch_add_explicit(&rt->wd_parks, 1, memory_order_relaxed);
    while (atomic_load(&rt->wd_park) && !atomic_load(&rt->watchdog_stop))
        futex_wait(&rt->wd_park, 1);
    return true;
}

static void *watchdog_main(void *arg)
{
    sl_runtime *rt = arg;
    uint32_t last[rt->n], busy[rt->n];
    uint64_t since[rt->n];
    bool told[rt->n];
    void *warm[4];
    pthread_setname_np(pthread_self(), "sl-watchdog");   /* top -H and perf tell the threads apart */
    backtrace(warm, 4);   /* load libgcc now, not in a signal handler */
    memset(last, 0, sizeof last);
    memset(busy, 0, sizeof busy);
    memset(since, 0, sizeof since);
    memset(told, 0, sizeof told);
    useconds_t tick = (useconds_t)rt->stall_ms * 1000 / 4;
    unsigned still = 0;   /* ticks in a row that found every reactor idle and unmoved */
    unsigned need = PARK_TICKS;   /* such ticks before it parks */
    while (!atomic_load(&rt->watchdog_stop)) {
        uint64_t parked_at = still >= need && rt->wd_can_park ? sl_now_ns() : 0;
        if (parked_at && park(rt, last, busy)) {
            still = 0;   /* woken: what it saw before is stale */
            need = sl_now_ns() - parked_at >= PARK_LONG_NS ? 1 : PARK_TICKS;
        } else {
            usleep(tick ? tick : 1000);
        }
        atomic_fetch_add_explicit(&rt->wd_wakeups, 1, memory_order_relaxed);
        uint64_t now = sl_now_ns();
        bool moved = false;
        for (int i = 0; i < rt->n; i++) {
            sl_reactor *r = rt->r[i];
            uint32_t seq = atomic_load_explicit(&r->step_seq, memory_order_relaxed);
            uint32_t b = atomic_load_explicit(&r->busy_seq, memory_order_relaxed);
            moved |= (seq & 1) || seq != last[i] || (b & 1) || b != busy[i];
            busy[i] = b;
            if (!(seq & 1) || seq != last[i]) {
                last[i] = seq;
                since[i] = now;
                told[i] = false;
                continue;
            }
            if (!told[i] && now - since[i] >= (uint64_t)rt->stall_ms * SL_NS_PER_MS &&
                atomic_load(&r->thread_ready)) {
                told[i] = true;
                atomic_fetch_add(&r->stalls, 1);
                report_stall(rt, r, now - since[i]);
            }
        }
        still = moved ? 0 : still + 1;
    }
    return NULL;
}

int sl__watchdog_start(sl_runtime *rt)
{
    if (!rt->stall_ms)
        return 0;
    struct sigaction sa = { .sa_handler = on_stall_signal, .sa_flags = SA_RESTART };
    sigemptyset(&sa.sa_mask);
    sigaction(sl__stall_signal(), &sa, NULL);
    atomic_store(&rt->watchdog_stop, false);
    atomic_store(&rt->wd_park, 0);
    rt->wd_can_park = membarrier_register();
    if (pthread_create(&rt->watchdog, NULL, watchdog_main, rt) != 0)
        return -EAGAIN;
    rt->watchdog_on = true;
    return 0;
}

void sl__watchdog_stop(sl_runtime *rt)
{
    if (!rt->watchdog_on)
        return;
    atomic_store(&rt->watchdog_stop, true);
    sl__watchdog_wake(rt);
    pthread_join(rt->watchdog, NULL);
    rt->watchdog_on = false;
}
