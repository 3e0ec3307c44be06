/* worker.c: one reactor's share of the load: its schedule, its queue of
 * requests waiting for a connection, timeouts, and its life as a task
 * (see engine.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <event2/event.h>
#include "engine.h"
#include "tick.h"

#define SWEEP_MAX_NS (10 * SL_NS_PER_MS)
#define DRAIN_SLACK_NS (1 * SL_NS_PER_S)
#define INTERRUPT_POLL_NS (50 * SL_NS_PER_MS)

static bool open_loop(const worker *w)
{
    return w->sh->o->rate > 0;
}

static uint64_t sweep_ns(const worker *w)
{
    uint64_t p = (uint64_t)w->sh->o->timeout_ms * SL_NS_PER_MS / 50;
    return p < SL_NS_PER_MS ? SL_NS_PER_MS : p > SWEEP_MAX_NS ? SWEEP_MAX_NS : p;
}

static inline void bump(_Atomic uint64_t *a)
{
    /* single writer: a plain store, no locked add */
    atomic_store_explicit(a, atomic_load_explicit(a, memory_order_relaxed) + 1, memory_order_relaxed);
}

/* Records the end of request rq (an answer `status`, or error kind err). */
static void record(worker *w, const lreq *rq, int status, int err, uint64_t now)
{
    bump(&w->a_done);
    if (err >= 0)
        bump(&w->a_err);
    if (!rq->measured)
        return;
    size_t sec = (size_t)((rq->start - w->sh->t0) / SL_NS_PER_S);
    if (load_stats_record(&w->st, sec, now - rq->start, status, err) < 0)
        w->fail = -ENOMEM;
}

static void check_drained(worker *w)
{
    if (w->draining && w->gen_done && !w->busy && !w->pq_len) {
        w->draining = false;
        sl_task_unpark(w->task, 0);
    }
}

/* ---- the queue of requests waiting for a connection (open loop) --------- */

static int pq_push(worker *w, const lreq *rq)
{
    if (w->pq_len == w->pq_cap) {
        size_t cap = w->pq_cap ? 2 * w->pq_cap : 1024;
        lreq *nq = malloc(cap * sizeof *nq);
        if (!nq)
            return -ENOMEM;
        for (size_t i = 0; i < w->pq_len; i++)
            nq[i] = w->pq[(w->pq_head + i) % w->pq_cap];
        free(w->pq);
        w->pq = nq, w->pq_cap = cap, w->pq_head = 0;
    }
    w->pq[(w->pq_head + w->pq_len++) % w->pq_cap] = *rq;
    return 0;
}

static lreq pq_pop(worker *w)
{
    lreq rq = w->pq[w->pq_head];
    w->pq_head = (w->pq_head + 1) % w->pq_cap;
    w->pq_len--;
    return rq;
}

/* ---- connections -------------------------------------------------------- */

static lconn *idle_pop(worker *w)
{
    while (w->idle) {
        lconn *c = w->idle;
        w->idle = c->next_idle;
        c->in_idle = false;
        if (c->state == C_IDLE)
            return c;       /* closed ones are skipped: they left lazily */
    }
    return NULL;
}

static void idle_push(worker *w, lconn *c)
{
    if (!c->in_idle) {
        c->in_idle = true;
        c->next_idle = w->idle;
        w->idle = c;
    }
}

static lconn *free_slot(worker *w)
{
    for (int i = 0; i < w->nconns; i++)
        if (w->conns[i].state == C_FREE)
            return &w->conns[i];
    return NULL;
}

static lreq closed_req(worker *w, uint64_t now)
{
    uint64_t seq = w->seq++ * (uint64_t)w->sh->nthreads + (uint64_t)w->id;
    return (lreq){ now, seq, now >= w->sh->t0 && now < w->t_end };
}

/* Open loop: the request rq is due. */
static void issue(worker *w, const lreq *rq)
{
    lconn *c = idle_pop(w);
    if (c) {
        conn_send(c, rq, sl_now_ns());
        return;
    }
    if (!w->pq_len && w->opened < w->nconns && (c = free_slot(w))) {
        conn_open(c, rq);
        return;
    }
    if (pq_push(w, rq) < 0)
        w->fail = -ENOMEM;
}

/* c is free of its request and kept: give it the next one. */
static void on_idle(worker *w, lconn *c, uint64_t now)
{
    if (open_loop(w)) {
        if (w->pq_len) {
            lreq rq = pq_pop(w);
            conn_send(c, &rq, now);
        } else {
            idle_push(w, c);
        }
        return;
    }
    if (!w->gen_done && now < w->t_end) {
        lreq rq = closed_req(w, now);
        conn_send(c, &rq, now);
        return;
    }
    w->gen_done = true;
    idle_push(w, c);
}

void worker_conn_freed(worker *w, lconn *c)
{
    if (open_loop(w)) {
        if (w->pq_len && w->opened < w->nconns) {
            lreq rq = pq_pop(w);
            conn_open(c, &rq);
        }
    } else if (!c->retry && !w->gen_done) {
        uint64_t now = sl_now_ns();
        if (now < w->t_end) {
            lreq rq = closed_req(w, now);
            conn_open(c, &rq);
        }
    }
    check_drained(w);
}

void worker_finish(lconn *c, int status, int err, bool keep)
{
    worker *w = c->w;
    uint64_t now = sl_now_ns();
    lreq rq = c->req;
    w->busy--;
    record(w, &rq, status, err, now);
    if (keep) {
        c->state = C_IDLE;
        on_idle(w, c, now);
        check_drained(w);
        return;
    }
    conn_close(c);
    c->retry = err >= 0;        /* closed loop: back off to the next sweep */
    worker_conn_freed(w, c);
}

/* ---- the schedule (open loop) ------------------------------------------- */

static uint64_t due(const worker *w, uint64_t j)
{
    return w->sh->t_begin + (uint64_t)((double)j * w->sh->period_ns);
}

/* Arms the timer to tick from `at` (request j's due time) every
 * w->tick.iv ns, or disarms it (at 0). tick.h says why periodic. */
static void arm(worker *w, uint64_t at, uint64_t j)
{
    struct itimerspec its = { { 0, 0 }, { 0, 0 } };
    if (at) {
        uint64_t a = at - 1;   /* sl_now_ns() is CLOCK_MONOTONIC + 1 */
        its.it_value = (struct timespec){ .tv_sec = (time_t)(a / SL_NS_PER_S), .tv_nsec = (long)(a % SL_NS_PER_S) };
        its.it_interval = (struct timespec){ .tv_sec = (time_t)(w->tick.iv / SL_NS_PER_S),
                                             .tv_nsec = (long)(w->tick.iv % SL_NS_PER_S) };
    }
    w->tick.tick0 = at;
    w->tick.j0 = j;
    timerfd_settime(w->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static void gen_tick(worker *w)
{
    uint64_t now = sl_now_ns();
    while (!w->gen_done) {
        uint64_t t = due(w, w->next_j);
        if (t >= w->t_end) {
            w->gen_done = true;
            if (w->tick.tick0)
                arm(w, 0, 0);   /* no ticks through the drain */
            break;
        }
        if (t > now) {
            if (!load_tick_keeps(&w->tick, w->next_j, w->sh->nthreads, t, LOAD_TICK_SLACK_NS))
                arm(w, t, w->next_j);
            break;
        }
        lreq rq = { t, w->next_j, t >= w->sh->t0 };
        w->next_j += (uint64_t)w->sh->nthreads;
        issue(w, &rq);
    }
    check_drained(w);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    uint64_t n;
    (void)what;
    /* read, whatever the count: a periodic timerfd is started again by
     * its read (an unread one stays expired and never ticks again) */
    if (read(fd, &n, sizeof n) < 0 && errno != EAGAIN)
        return;
    gen_tick(arg);
}

/* ---- the sweep ---------------------------------------------------------- */

/* Times out what is past its deadline (everything, when `all`): the
 * waiting requests first, so that a freed connection takes a live one. */
static void expire(worker *w, uint64_t now, bool all)
{
    uint64_t timeout = (uint64_t)w->sh->o->timeout_ms * SL_NS_PER_MS;
    while (w->pq_len && (all || w->pq[w->pq_head].start + timeout <= now)) {
        lreq rq = pq_pop(w);
        record(w, &rq, -1, ERR_TIMEOUT, now);
    }
    for (int i = 0; i < w->nconns; i++) {
        lconn *c = &w->conns[i];
        if ((c->state == C_BUSY || c->state == C_CONNECTING) && (all || c->deadline <= now))
            worker_finish(c, -1, ERR_TIMEOUT, false);
    }
}

static void seal_due(worker *w, uint64_t now, bool all)
{
    uint64_t wait = (uint64_t)w->sh->o->timeout_ms * SL_NS_PER_MS + 2 * sweep_ns(w);
    while (w->sealed < w->st.nsecs &&
           (all || now >= w->sh->t0 + (w->sealed + 1) * SL_NS_PER_S + wait))
        if (load_stats_seal(&w->st, w->sealed++) < 0)
            w->fail = -ENOMEM;
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    uint64_t now = sl_now_ns();
    (void)fd, (void)what;
    if (atomic_load_explicit(&w->sh->interrupted, memory_order_relaxed) && now < w->t_end)
        w->t_end = now > w->sh->t0 ? now : w->sh->t0;
    expire(w, now, false);
    for (int i = 0; !open_loop(w) && !w->gen_done && now < w->t_end && i < w->nconns; i++)
        if (w->conns[i].state == C_FREE) {
            lreq rq = closed_req(w, now);
            conn_open(&w->conns[i], &rq);
        }
    seal_due(w, now, false);
    if (now - w->last_progress >= SL_NS_PER_S) {
        w->last_progress = now;
        atomic_store_explicit(&w->a_p99, (uint64_t)hist_quantile(w->st.all, 0.99), memory_order_relaxed);
    }
    check_drained(w);
}

/* ---- the worker's life -------------------------------------------------- */

static int setup(worker *w)
{
    uint64_t p = sweep_ns(w);
    struct timeval tv = { .tv_sec = 0, .tv_usec = (suseconds_t)(p / SL_NS_PER_US) };
    w->sweep = event_new(w->base, -1, EV_PERSIST, on_sweep, w);
    if (!w->sweep || event_add(w->sweep, &tv) < 0)
        return -ENOMEM;
    if (!open_loop(w))
        return 0;
    w->tick.iv = load_tick_interval(w->sh->period_ns, w->sh->nthreads);
    w->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (w->tfd < 0)
        return -errno;
    w->tev = event_new(w->base, w->tfd, EV_READ | EV_PERSIST, on_timer, w);
    return w->tev && event_add(w->tev, NULL) == 0 ? 0 : -ENOMEM;
}

static void start(worker *w)
{
    if (open_loop(w)) {
        gen_tick(w);
        return;
    }
    uint64_t now = sl_now_ns();
    for (int i = 0; i < w->nconns && now < w->t_end; i++) {
        lreq rq = closed_req(w, now);
        conn_open(&w->conns[i], &rq);
    }
}

static void teardown(worker *w)
{
    expire(w, sl_now_ns(), true);   /* nothing is left after the drain; in case */
    seal_due(w, 0, true);
    for (int i = 0; i < w->nconns; i++)
        conn_fini(&w->conns[i]);
    if (w->tev)
        event_free(w->tev);
    if (w->sweep)
        event_free(w->sweep);
    if (w->tfd >= 0)
        close(w->tfd);
    w->tev = w->sweep = NULL;
    w->tfd = -1;
}

static int run_step(sl_task *t, void *arg)
{
    worker *w = arg;
    int rc;
    w->task = t;
    SL_BEGIN(t);
    if ((rc = setup(w)) < 0) {
        w->fail = rc;
        w->gen_done = true;
    } else {
        start(w);
    }
    /* short naps so that an interrupt (which moves t_end) is seen soon */
    while (!w->fail && sl_now_ns() < w->t_end) {
        SL_AWAIT(t, rc, sl_sleep_until(t, w->t_end < sl_now_ns() + INTERRUPT_POLL_NS ? w->t_end : sl_now_ns() + INTERRUPT_POLL_NS));
    }
    /* Open loop: every request due before the end is sent, even those
     * whose timer had not fired yet when this wake-up came first (a loaded
     * machine runs both late, in either order): the schedule, not the
     * machine's speed, says how many requests a run makes. */
    if (open_loop(w) && !w->fail)
        gen_tick(w);
    w->gen_done = true;
    if (w->tev)
        event_del(w->tev);
    if (w->busy || w->pq_len) {
        w->draining = true;
        sl_task_set_deadline(t, sl_now_ns() + (uint64_t)w->sh->o->timeout_ms * SL_NS_PER_MS + DRAIN_SLACK_NS);
        SL_AWAIT(t, rc, sl_task_park(t, w, NULL));
        (void)rc;
        w->draining = false;
    }
    teardown(w);
    if (atomic_fetch_add(&w->sh->done, 1) + 1 == w->sh->nthreads)
        sl_runtime_stop(w->sh->rt);
    SL_END(t);
}

int worker_spawn(worker *w)
{
    return sl_spawn_on(w->r, run_step, w, &(sl_spawn_opts){ .name = "load-worker" });
}
