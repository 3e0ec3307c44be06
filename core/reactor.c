/* reactor.c: one event_base, a run queue, a timer heap and a message queue.
 *
 * Ready tasks are run from one libevent callback in batches: waking a task
 * appends it to the run queue and, if no batch is under way, activates the
 * run event. A task switch is therefore a function call, and I/O callbacks
 * get their turn between batches. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <event2/event.h>
#include "internal.h"
#include "ring.h"

#define RUN_BATCH 4096
#define TURN_MSG_NS (50 * 1000)   /* a turn's length while messages wait (run_turn) */


/* initial-exec: a direct %fs access instead of a __tls_get_addr call; the
 * library is linked, not dlopen'ed late */
#define SL_TLS __thread __attribute__((tls_model("initial-exec")))
SL_TLS sl_reactor *sl__tl_reactor;   /* private; read by sl_reactor_current() */
static SL_TLS char tl_token;          /* its address names this thread */

int sl_reactor_id(const sl_reactor *r) { return r->id; }
struct event_base *sl_reactor_base(sl_reactor *r) { return r->base; }
sl_runtime *sl_reactor_runtime(sl_reactor *r) { return r->rt; }
size_t sl_reactor_task_count(const sl_reactor *r) { return r->ntasks; }

void sl__set_current_reactor(sl_reactor *r) { sl__tl_reactor = r; }
sl_reactor *sl__current_reactor_raw(void) { return sl__tl_reactor; }

bool sl__on_reactor(const sl_reactor *r)
{
    void *o = atomic_load_explicit(&r->owner, memory_order_relaxed);
    return !o || o == &tl_token;
}

void sl__claim(sl_reactor *r, bool mine)
{
    atomic_store(&r->owner, mine ? &tl_token : NULL);
}

uint64_t sl__rand(sl_reactor *r)
{
    /* xorshift64*: fast, and good enough to choose among select cases */
    uint64_t x = r->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* sl_diag_set_sink's, read and written under report_lock */
static void (*diag_sink)(const char *, void *);
static void *diag_sink_arg;

/* A reactor without a sink of its own; called under report_lock. */
static void default_report(const char *text, void *arg)
{
    (void)arg;
    if (diag_sink)
        diag_sink(text, diag_sink_arg);
    else
        fprintf(stderr, "%s\n", text);
}

void sl_reactor_set_report(sl_reactor *r, void (*report)(const char *, void *), void *arg)
{
    r->report = report ? report : default_report;
    r->report_arg = arg;
}

/* Every call of a report sink, from any reactor's thread or the stall
 * watchdog's, holds this lock: a sink is never entered twice at once, so it
 * need not be thread-safe. Recursive: a sink may itself cause a report. */
static pthread_mutex_t report_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void sl_diag_set_sink(void (*fn)(const char *text, void *arg), void *arg)
{
    pthread_mutex_lock(&report_lock);
    diag_sink = fn;
    diag_sink_arg = arg;
    pthread_mutex_unlock(&report_lock);
}

void sl__report_text(sl_reactor *r, const char *text)
{
    pthread_mutex_lock(&report_lock);
    if (r)
        r->report(text, r->report_arg);
    else
        default_report(text, NULL);
    pthread_mutex_unlock(&report_lock);
}

/* The watchdog's way in: a reactor that stalls inside its sink holds the
 * lock, so the watchdog waits at most `ms` and then writes to stderr. */
void sl__report_text_from_watchdog(sl_reactor *r, const char *text, int ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    if (pthread_mutex_timedlock(&report_lock, &until) != 0) {
        fprintf(stderr, "%s\n", text);   /* not default_report: its sink may be what is stuck */
        return;
    }
    r->report(text, r->report_arg);
    pthread_mutex_unlock(&report_lock);
}

static void vreport(sl_reactor *r, const char *fmt, va_list ap)
{
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        return;
    sl__report_text(r, text);
    free(text);
}

void sl__report(sl_reactor *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(r, fmt, ap);
    va_end(ap);
}

void sl_report(sl_reactor *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(r, fmt, ap);
    va_end(ap);
}

void sl__misuse(sl_reactor *r, const char *file, int line, const char *fmt, ...)
{
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (r)
        r->st.misuses++;
    sl__report(r, "sluice: misuse at %s:%d: %s", file, line, what);
}

static void flush_wakes(sl_reactor *r);
static void idle_spin(sl_reactor *r);
static inline bool inbox_empty(sl_reactor *r);

/* Every callback of ours starts here: this thread runs `r` now. Returns the
 * reactor to restore when it ends (an embedded base may nest callbacks). */
static sl_reactor *enter(sl_reactor *r)
{
    sl_reactor *prev = sl__tl_reactor;
    sl__tl_reactor = r;
    r->in_cb = true;
    return prev;
}

/* ---- run queue ---------------------------------------------------------- */

/* A turn that leaves work behind (tasks that yielded, or more ready tasks
 * than one batch) comes back through the backend: run_ev is armed with a
 * zero timeout, so libevent first polls its sockets (the eventfd of
 * cross-reactor messages and sl_runtime_stop among them) and its timer
 * heap, and runs what became ready, before the next batch. event_active()
 * would not do: libevent 2.1 runs an event activated during its pass over
 * the active queue in that same pass, so a task yielding in a loop kept
 * the reactor from ever reaching epoll or its timers (issue 15). */
static const struct timeval zero_tv;

static void arm_next_turn(sl_reactor *r)
{
    r->run_scheduled = true;
    event_add(r->run_ev, &zero_tv);
}

/* Tasks that yielded go behind everything made ready since, including by
 * the poll that came in between. */
static void requeue_yielded(sl_reactor *r)
{
    if (!r->yq_head)
        return;
    if (r->rq_tail)
        r->rq_tail->run_next_ = r->yq_head;
    else
        r->rq_head = r->yq_head;
    r->rq_tail = r->yq_tail;
    r->yq_head = r->yq_tail = NULL;
}

/* One batch of ready tasks, then the turn_end hook. `polled`: we come from
 * the zero timeout, so the backend has had its look since the yielded
 * tasks yielded. Publishes nothing: turn_finish does. */
static void run_batch(sl_reactor *r, bool polled, uint64_t now)
{
    r->run_scheduled = false;
    if (polled)
        requeue_yielded(r);
    r->in_run = true;
    /* now: the exact clock, read by the caller a moment ago (a spin), or
     * 0; two clock reads are some 40 ns, a tenth of a ping-pong's leg */
    uint64_t t0 = now ? now : sl_now_ns();
    r->now = now ? now : sl_now_coarse_ns();
    r->turn_t0 = t0;
    for (int n = 0; r->rq_head && n < RUN_BATCH; n++) {
        if ((n & 63) == 63)
            r->now = sl_now_coarse_ns();
        /* Messages from other reactors wait while a turn runs: once one
         * waits and the turn has run TURN_MSG_NS, end it (the next turn
         * comes after libevent's poll has run them). Else a reactor whose
         * tasks keep each other ready ran up to 4096 steps first, and a
         * step may be long: a worker pool's producer, home worker and
         * collector passed 200,000 jobs in one turn of about 50 ms (some
         * 600 steps of up to 1024 jobs), and the worker on another
         * reactor, whose receive waited in that queue, got none of them
         * (bench: worker_pool_far_share). The look is one load; the clock
         * is read only while a message waits. The other way too: once we
         * hold a message for another reactor (a reply, a lend, a recall:
         * published when the callback ends) or credit to grant, the turn
         * ends after TURN_MSG_NS, else the remote worker's round-trip
         * receive, served at once, waited milliseconds for its reply
         * (tests/test_reactor.c test_busy_turn_publishes). */
        if (n && (!inbox_empty(r) || r->ndefer || r->grant_head || r->rs_owed) &&
            sl_now_ns() - t0 >= TURN_MSG_NS)
            break;
        sl_task *t = r->rq_head;
        r->rq_head = t->run_next_;
        if (!r->rq_head)
            r->rq_tail = NULL;
        t->run_next_ = NULL;
        sl__run_task(t);
    }
    r->in_run = false;
    if (r->nturn_end) {
        /* taken first: a fn may ask again (the next turn's end) */
        void (*fns[SL_TURN_END_MAX])(sl_reactor *);
        int n = r->nturn_end;
        memcpy(fns, r->turn_end, (size_t)n * sizeof *fns);
        r->nturn_end = 0;
        for (int i = 0; i < n; i++)
            fns[i](r);
    }
}

/* counted: tests/test_credit.c test_pingpong_messages */
static void deadlock_look(sl_reactor *r)
{
    r->dl_looks++;
    sl__deadlock_maybe(r);
}

/* The end of a callback that ran tasks: publish what they posted, come
 * back for what is left, look for a deadlock. `publish`: the state the
 * other reactors' checks read (diag.c); a spin publishes it once, as it
 * ends (spin_run). A hit run inside the spin (publish false) leaves the deadlock check to
 * the spin's end (spin_end): the spin goes on only while messages come,
 * so its tasks are not stuck meanwhile, and the spin ends within
 * SL_SPIN_RUN_LEGS legs or SPIN_RUN_NS. It was some 40 instructions a
 * leg at a ping-pong's home, whose task parks on a local channel at
 * every leg (docs/core.md, "The cuts of the twelfth stop"). */
static void turn_finish(sl_reactor *r, bool publish)
{
    flush_wakes(r);   /* before the deadlock check: a wake we owe is a way out */
    if (r->rq_head || r->yq_head)
        arm_next_turn(r);
    else if (r->check_deadlock && publish)
        deadlock_look(r);
    if (publish)
        sl__callback_end(r);
}

/* A spin that ran hits ends: the deadlock check its hits left (turn_finish),
 * then the state for the other reactors' checks. With a task ready, the
 * callback that runs it checks as it ends. */
static void spin_end(sl_reactor *r)
{
    if (r->check_deadlock && !r->rq_head && !r->yq_head)
        deadlock_look(r);
    sl__callback_end(r);
}

static void spin_release(sl_reactor *r);
static void resume_later(sl_reactor *r);

/* Around a turn that may run steps (run_turn; wake_run, whose spin may):
 * busy_seq odd, then a look at whether the stall watchdog parked, every
 * reactor having been idle, and if so a futex wake (watch.c, which pays
 * for the store-load order with membarrier: here a compiler barrier
 * only). Two stores and a load a turn; none in a spin's legs. */
static inline void busy_begin(sl_reactor *r)
{
    atomic_store_explicit(&r->busy_seq, atomic_load_explicit(&r->busy_seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
    if (r->rt && atomic_load_explicit(&r->rt->wd_park, memory_order_relaxed))
        sl__watchdog_wake(r->rt);
}

static inline void busy_end(sl_reactor *r)
{
    atomic_store_explicit(&r->busy_seq, atomic_load_explicit(&r->busy_seq, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static void run_turn(sl_reactor *r, bool polled)
{
    sl_reactor *prev = enter(r);
    busy_begin(r);
    run_batch(r, polled, 0);
    /* wake_run kept wake_pending for these tasks, and messages came while
     * they ran (no producer wrote the eventfd: the flag was ours). With
     * tasks still ready, the next turn is armed below (turn_finish) and
     * spin_release's resume_later came after it: libevent runs the two
     * zero timeouts in the order armed, so the messages waited for a
     * second turn (two turns of TURN_MSG_NS under load). Armed first, they
     * run first: one turn each. A worker pool's home answered the far
     * worker's asks ~100 us after they came, and the far worker, whose
     * window of 256 jobs lasted less, waited at almost every window
     * (docs/core.md, "The worker pool's item (sixteenth stop)";
     * tests/test_reactor.c test_held_turn_runs_messages_first). The flag
     * stays ours: resume_cb runs them without an eventfd read, as after
     * spin_release. */
    if (r->wake_held && (r->rq_head || r->yq_head) && !inbox_empty(r)) {
        r->wake_held = false;
        resume_later(r);
    }
    turn_finish(r, true);
    idle_spin(r);
    if (r->wake_held) {
        /* wake_run's hold, not taken over by a spin: let it go now (a
         * message that came meanwhile is run after the next poll) */
        r->wake_held = false;
        spin_release(r);
    }
    busy_end(r);
    sl__tl_reactor = prev;
}

static void run_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    /* EV_TIMEOUT: the zero timeout of arm_next_turn, after a poll. Only
     * EV_READ: event_active() in this pass, which also drops the timeout
     * (run_turn arms it again if yielded tasks still wait). */
    sl_reactor *r = arg;
    if (what & EV_TIMEOUT)
        r->spin_legs = 0;   /* libevent has polled: the spin's bound starts again */
    run_turn(r, (what & EV_TIMEOUT) != 0);
}

void sl_reactor_run_ready(sl_reactor *r)
{
    if (!r || sl__tl_reactor != r || r->in_cb || r->in_run || !r->rq_head)
        return;
    run_turn(r, false);
}

static void schedule_run(sl_reactor *r)
{
    /* in_spin_run: spin_run runs the batch itself once its drain ends */
    if (!r->in_run && !r->run_scheduled && !r->in_spin_run) {
        r->run_scheduled = true;
        event_active(r->run_ev, EV_READ, 0);
    }
}

int sl_reactor_at_turn_end(sl_reactor *r, void (*fn)(sl_reactor *r))
{
    if (!r || !fn || sl__tl_reactor != r)
        return -EINVAL;
    for (int i = 0; i < r->nturn_end; i++)
        if (r->turn_end[i] == fn)
            return 0;   /* waiting already: once per turn */
    if (r->nturn_end == SL_TURN_END_MAX)
        return -EBUSY;
    r->turn_end[r->nturn_end++] = fn;
    schedule_run(r);   /* in a run, its end calls fn */
    return 0;
}

void sl__ready(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    t->status_ = SL_TASK_READY;
    t->run_next_ = NULL;
    if (r->rq_tail)
        r->rq_tail->run_next_ = t;
    else
        r->rq_head = t;
    r->rq_tail = t;
    schedule_run(r);
}

/* SL_AWAIT, every 32nd op that completed at once. The check between steps
 * above cannot cut a step, and a step that goes on completing operations
 * at once keeps the reactor from its messages, in and out, for as long as
 * it lasts: a worker pool's home worker received 1,024 jobs in one step
 * (some 0.35 ms) while the worker on another reactor waited for its ask to
 * be served (bench: worker_pool_far_jobs). So once messages wait, or we
 * hold some for others (posted, credit to grant, reports and asks of fed
 * receivers, batches of credit sends), and the turn has run TURN_MSG_NS,
 * the task yields with the op's result: the op is done (an element
 * received stays received), the task resumes with it next turn, after the
 * messages (tests/test_reactor.c test_busy_step_yields). A small change in
 * the loop's policy, not in its mechanism: the yield is SL_YIELD's. */
int sl_task_await_due_(sl_task *t, int rc)
{
    sl_reactor *r = t->reactor_;
    if (!r->in_run || r->current != t)
        return 0;
    if (inbox_empty(r) && !r->ndefer && !r->grant_head && !r->rr_dirty && !r->rs_dirty &&
        !r->rs_owed)
        return 0;
    if (sl_now_ns() - r->turn_t0 < TURN_MSG_NS)
        return 0;
    t->wait_result_ = rc;
    sl__yield(t);
    return 1;
}

void sl__yield(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    t->status_ = SL_TASK_READY;
    t->run_next_ = NULL;
    if (r->yq_tail)
        r->yq_tail->run_next_ = t;
    else
        r->yq_head = t;
    r->yq_tail = t;
    if (!r->in_run && !r->run_scheduled)   /* a batch arms the next turn as it ends */
        arm_next_turn(r);
}

/* ---- timers ------------------------------------------------------------- */

void sl__timer_rearm(sl_reactor *r)
{
    sl_task *top = sl_heap_top(&r->heap);
    if (!top) {
        if (r->timer_at) {
            evtimer_del(r->timer_ev);
            r->timer_at = 0;
        }
        return;
    }
    if (r->timer_at == top->wake_at_)
        return;
    uint64_t now = sl_now_ns();
    uint64_t d = top->wake_at_ > now ? top->wake_at_ - now : 0;
    /* libevent counts in microseconds: round up so we never fire early */
    uint64_t us = (d + 999) / 1000;
    struct timeval tv = { .tv_sec = (time_t)(us / 1000000), .tv_usec = (suseconds_t)(us % 1000000) };
    evtimer_add(r->timer_ev, &tv);
    r->timer_at = top->wake_at_;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    sl_reactor *r = arg;
    sl_reactor *prev = enter(r);
    (void)fd;
    (void)what;
    r->timer_at = 0;
    r->spin_legs = 0;   /* libevent has polled */
    sl__callback_begin(r);
    r->now = sl_now_ns();
    sl__timer_fire(r, r->now);
    sl__timer_rearm(r);
    flush_wakes(r);
    sl__callback_end(r);
    sl__tl_reactor = prev;
}

/* ---- messages ----------------------------------------------------------- */

/* A deferred chain this long is published at once, so the destination can
 * start on it while we go on producing: batching amortises the exchange
 * and the wake-up, but a whole callback's worth would serialise the two
 * threads (each idle while the other works). */
#define CHAIN_MAX 64
/* Messages run per wake-up callback before the others (I/O, timers) get a
 * turn; deferred chains are published every CHAIN_MAX of them. */
#define DRAIN_MAX 4096

/* The sleep/wake handshake. wake_pending is 1 while the destination will
 * look at its queue again without being told: from a producer's 0 -> 1
 * (which writes the eventfd) until the destination, idle, clears it. A
 * producer pushes and then reads the flag; the destination clears the flag
 * and then looks at the queue (all seq_cst): one of them sees the other, so
 * a message is never left behind a sleeping reactor, and a busy one costs
 * its producers no syscall. */
static void wake(sl_reactor *r)
{
    /* Usually pending already: a plain load spares the contended exchange. */
    if (atomic_load_explicit(&r->wake_pending, memory_order_seq_cst))
        return;
    if (!atomic_exchange_explicit(&r->wake_pending, 1, memory_order_seq_cst)) {
        uint64_t one = 1;
        ssize_t n = write(r->wake_fd, &one, sizeof one);
        (void)n;   /* EAGAIN: the counter is already non-zero, a wake is due */
    }
}

static void push_chain(sl_reactor *to, sl_msg *first, sl_msg *last)
{
    sl_mpsc_push_chain(&to->q, first, last);
    wake(to);
}

/* ---- rings ---------------------------------------------------------------
 * Between two reactors of one runtime (at most RING_MAX_REACTORS of them),
 * everything one's thread posts to the other goes through their ring
 * (ring.h), in order: rsend's batches, recalls, rrecv's lends and reports,
 * rsel's offers rely on FIFO per pair (docs/core.md, "Across reactors"),
 * so none of a pair's traffic may take the MPSC, which stays for foreign
 * threads, embedded reactors and a reactor posting to itself.
 *
 * A full ring drops nothing, reorders nothing and blocks nobody: the chain
 * that does not fit becomes the pair's backlog, on the producer's side,
 * and everything after it for that pair joins it. The producer then sets
 * the ring's need_space and looks at get again; the consumer, after a
 * drain that took cells, takes need_space (both by exchange, seq_cst, so
 * whichever comes second reads what the first wrote): one of the two sees
 * the other, so either the producer puts
 * its backlog or the consumer takes need_space, sets the producer's
 * space_ready and wakes it (the eventfd, or a spin that holds wake_pending
 * sees space_ready: inbox_empty). The producer retries at its next
 * publish_deferred (every wake-up and callback end runs one). Two
 * reactors full towards each other: each drain frees cells whatever the
 * other does, so both backlogs go (tests/test_ring.c). */
#define RING_MAX_REACTORS 16
/* rsend.c's slot tables have a row per reactor an inline message can come
 * from or go to, found by its index in the runtime's array: rings exist
 * only where every index has one (the seventeenth stop; a runtime check
 * before) */
_Static_assert(RING_MAX_REACTORS <= SL_RS_PEERS, "a row of rsend.c's slot tables per reactor with rings");

int sl__reactor_rings_new(sl_runtime *rt)
{
    int n = rt->n;
    if (n < 2 || n > RING_MAX_REACTORS)
        return 0;   /* more: n^2/2 pairs of 4 KiB; the MPSC carries all */
    for (int i = 0; i < n; i++) {
        /* lines of their own: read at every post and every poll, they
         * must not share one with something another thread writes */
        size_t sz = ((size_t)n * sizeof(sl_ring *) + 63) & ~(size_t)63;
        rt->r[i]->ring_out = aligned_alloc(64, sz);
        rt->r[i]->ring_in = aligned_alloc(64, sz);
        if (!rt->r[i]->ring_out || !rt->r[i]->ring_in)
            return -ENOMEM;
        memset(rt->r[i]->ring_out, 0, sz);
        memset(rt->r[i]->ring_in, 0, sz);
    }
    /* One allocation a pair {i, j}, i < j: its end[0] is i's, end[1] j's
     * (ring.h). A reactor's end serves both directions, so it is both its
     * ring_out[] for the peer and its ring_in[] entry from it. i's
     * ring_out[j] is the allocation itself, and i's sl__reactor_rings_free
     * frees it. */
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            sl_ring_pair *p = sl_ring_pair_new(rt->r[i], rt->r[j]);
            if (!p)
                return -ENOMEM;
            rt->r[i]->ring_out[j] = &p->end[0];
            rt->r[j]->ring_out[i] = &p->end[1];
            rt->r[i]->ring_in[rt->r[i]->nring_in++] = &p->end[0];
            rt->r[j]->ring_in[rt->r[j]->nring_in++] = &p->end[1];
        }
    return 0;
}

/* After every reactor's teardown (a pair's allocation serves both of its
 * reactors): frees the pairs r owns, those with the reactors numbered
 * above it (sl__reactor_rings_new). */
void sl__reactor_rings_free(sl_reactor *r)
{
    if (r->ring_out && r->rt)
        for (int j = r->id + 1; j < r->rt->n; j++)
            free(r->ring_out[j]);   /* end[0], the pair's start, or NULL */
    free(r->ring_out);
    free(r->ring_in);
    r->ring_out = r->ring_in = NULL;
    r->ring_last = NULL;
    r->nring_in = 0;
}

/* cur's ring to `to`, or NULL: cur is the calling thread's reactor. Reads
 * nothing of `to`'s: its id and rt share a line with its run queue,
 * written at every step there, and reading them at every post made the
 * first build of the rings 1.3-1.5x main's round trip (a miss on each
 * side a leg). The rings' own `to` are ours to read; the last one found
 * is kept. */
static sl_ring *ring_to(sl_reactor *cur, sl_reactor *to)
{
    if (!cur->ring_out || cur == to)
        return NULL;
    sl_ring *q = cur->ring_last;
    if (q && q->to == to)
        return q;
    for (int j = 0; j < cur->rt->n; j++)
        if ((q = cur->ring_out[j]) && q->to == to)
            return cur->ring_last = q;
    return NULL;   /* not of our runtime */
}

/* Puts q's backlog in a cell, or asks the consumer for a wake when it
 * frees one. True if the backlog has gone. */
static bool ring_put_backlog(sl_reactor *cur, sl_ring *q)
{
    if (!sl_ring_try_put(q, q->bl_first)) {
        /* an exchange, not a store: if the consumer's read of need_space
         * (an RMW too) came first, this one reads what it wrote, and so
         * sees the get it stored before (ring_took). Read-modify-writes
         * rather than fences: ThreadSanitizer models them. */
        atomic_exchange_explicit(q->need_out, 1, memory_order_seq_cst);
        if (!sl_ring_try_put(q, q->bl_first))
            return false;
        atomic_store_explicit(q->need_out, 0, memory_order_relaxed);
    }
    q->bl_first = q->bl_last = NULL;
    cur->nbacklog--;
    return true;
}

static void ring_send(sl_reactor *cur, sl_ring *q, sl_msg *first, sl_msg *last)
{
    if (!q->bl_first) {
        if (sl_ring_try_put(q, first)) {
            wake(q->to);
            return;
        }
        q->bl_first = first;
        q->bl_last = last;
        cur->nbacklog++;
        cur->ring_fulls++;
    } else {
        atomic_store_explicit(&q->bl_last->next_, first, memory_order_relaxed);
        q->bl_last = last;
    }
    if (ring_put_backlog(cur, q))
        wake(q->to);
}

/* Our backlogs, again: returns how many went. */
static int ring_retry(sl_reactor *r)
{
    int went = 0;
    atomic_store_explicit(&r->space_ready, 0, memory_order_relaxed);
    for (int j = 0; r->nbacklog && j < r->rt->n; j++) {
        sl_ring *q = r->ring_out[j];
        if (q && q->bl_first && ring_put_backlog(r, q)) {
            wake(q->to);
            went++;
        }
    }
    return went;
}

/* After a drain that took cells of the rings in `took` (bits of ring_in):
 * a producer waiting for space is told (see above). */
static void ring_took(sl_reactor *r, uint32_t took)
{
    for (int i = 0; took; i++, took >>= 1) {
        if (!(took & 1))
            continue;
        sl_ring *q = r->ring_in[i];
        /* an RMW after our store of get: see ring_put_backlog */
        if (atomic_exchange_explicit(q->need_in, 0, memory_order_seq_cst)) {
            atomic_store_explicit(&q->from->space_ready, 1, memory_order_seq_cst);
            wake(q->from);
        }
    }
}

/* The next message for us: the rest of a cell's chain, a cell of a ring
 * (from where the last look stopped, so no ring starves the others), or
 * the MPSC. A cell holding a message inline gives NULL with *fn set and
 * the message copied to `copy` (SL_RING_INLINE bytes). */
static sl_msg *inbox_pop(sl_reactor *r, uint32_t *took, void (**fn)(void *), void *copy)
{
    sl_msg *m = r->in_cur;
    *fn = NULL;
    if (!m) {
        for (int k = 0, i = r->ring_rr; k < r->nring_in; k++, i = i + 1 == r->nring_in ? 0 : i + 1) {
            sl_ring *q = r->ring_in[i];
            uint64_t at;
            sl_ring_cell *c = sl_ring_poll(q, &at);
            if (c) {
                m = sl_ring_take(q, c, at, fn, copy);
                r->in_from = q->from;
                *took |= 1u << i;
                r->ring_rr = i + 1 == r->nring_in ? 0 : i + 1;
                if (!m)
                    return NULL;   /* inline */
                break;
            }
        }
        if (!m) {
            r->in_from = NULL;
            return sl_mpsc_pop(&r->q);
        }
    }
    /* read before m runs: its fn may post it again */
    r->in_cur = atomic_load_explicit(&m->next_, memory_order_relaxed);
    return m;
}

/* Nothing to run? seq_cst loads, after may_sleep's store (see wake()). A
 * space_ready with a backlog counts: the retry is work. */
static inline bool inbox_empty(sl_reactor *r)
{
    if (r->in_cur)
        return false;
    for (int i = 0; i < r->nring_in; i++)
        if (sl_ring_ready(r->ring_in[i]))
            return false;
    if (r->nbacklog && atomic_load_explicit(&r->space_ready, memory_order_seq_cst))
        return false;
    return sl_mpsc_empty(&r->q);
}

/* first..last (linked, last's next_ NULL) for `to`, from cur's thread */
static void send_chain(sl_reactor *cur, sl_reactor *to, sl_msg *first, sl_msg *last)
{
    sl_ring *q = cur ? ring_to(cur, to) : NULL;
    if (q)
        ring_send(cur, q, first, last);
    else
        push_chain(to, first, last);
}

/* Posts fn(copy of data) to `to` inside a cell of the pair's ring, from
 * the calling thread's reactor (issue 17, step 2). 0 if it went; -EAGAIN
 * if it cannot go inline and the caller posts a heap message instead: no
 * ring for the pair (a foreign thread, ourselves, another runtime), a
 * chain of ours for `to` not published yet or a backlog waiting (the
 * inline message would pass them: the pair's order is FIFO), or a full
 * ring. len <= SL_RING_INLINE. Inlined into its two callers below, so
 * that the cell's copy of a constant len is a few moves (a memcpy call
 * with a variable len was ~11 instructions a leg: docs/core.md, "The
 * last pieces before the post (fifteenth stop)"). */
static inline __attribute__((always_inline)) int post_inline(sl_reactor *to, void (*fn)(void *),
                                                             const void *data, size_t len)
{
    sl_reactor *cur = sl__tl_reactor;
    if (!cur || len > SL_RING_INLINE)
        return -EAGAIN;
    sl_ring *q = ring_to(cur, to);
    if (!q)
        return -EAGAIN;
    if (q->bl_first)
        goto refused;
    for (int i = 0; i < cur->ndefer; i++)
        if (cur->defer[i].to == to)
            goto refused;
    if (!sl_ring_try_put_inline(q, fn, data, len))
        goto refused;
    cur->ring_inlines++;
    cur->remote_hot = true;   /* an answer may come back soon: idle_spin */
    wake(to);
    return 0;
refused:
    cur->ring_inline_refused++;
    return -EAGAIN;
}

int sl__reactor_post_inline(sl_reactor *to, void (*fn)(void *), const void *data, size_t len)
{
    return post_inline(to, fn, data, len);
}

int sl__reactor_post_cell(sl_reactor *to, void (*fn)(void *), const void *data)
{
    return post_inline(to, fn, data, SL_RING_INLINE);
}

static void publish_deferred(sl_reactor *r)
{
    if (r->nbacklog)
        ring_retry(r);
    for (int i = 0; i < r->ndefer; i++)
        send_chain(r, r->defer[i].to, r->defer[i].first, r->defer[i].last);
    r->ndefer = 0;
}

/* The flushes inside a callback (in_cb stays set): their messages (fed
 * receivers' reports and asks, batches of remote sends, grants of
 * credit, top-ups) join the chains of what the callback posted, in
 * order, and leave with them (spin_run, flush_wakes). Inlined: out of
 * line (as gcc left it once it held the top-ups' test) its frame and call
 * cost what the test saved, three calls a leg. */
static inline __attribute__((always_inline)) void flush_chained(sl_reactor *r)
{
    if (r->rr_dirty)
        sl__rrecv_flush(r, false);
    if (r->rs_dirty || r->grant_head) {
        sl__rsend_flush(r, false);
    } else if (r->rs_owed) {
        /* Only top-ups owed: held, for the batch the next tasks may send
         * (hold_topups), while none may be large (rs_owed_big, rsend.c
         * topup), with no call. A ping-pong's first flush of every leg
         * called sl__rsend_flush only to find that (~24 instructions and
         * a call between the question's arrival and the answer's post:
         * docs/core.md, "The last pieces before the post (fifteenth
         * stop)"). Idle records are not looked for here (flush does when
         * called): the flush after the tasks does, as when none is owed. */
        if (r->hold_topups && !r->rs_owed_big)
            r->rs_held_only++;
        else
            sl__rsend_flush(r, false);
    }
}

/* Our callback is ending: publish what we posted meanwhile, and wake.
 * in_cb stays set through the flushes while a chain waits (issue 17):
 * cleared first, their messages went at once, ahead of the chain the
 * same callback had made for that reactor, so a batch posted
 * mid-callback (rsend.c: a full one,
 * or one closed by a send on another channel of its home) was passed by
 * the flush's next batch of the same channel (tests/test_reactor.c
 * test_spin_run_fifo saw acks 7281, 7279, 7280, with keep13's rule;
 * tests/test_credit.c test_post_then_send_order: a raw post, then a
 * send). */
static void flush_wakes(sl_reactor *r)
{
    /* With no chain waiting (the common case) nothing can be passed, and
     * the flush's messages go at once, as before, not through a chain
     * (behind which the flush's inline posts are refused,
     * sl__reactor_post_inline). Chained always, a stream between two
     * reactors ran at 0.86-0.96x main's in 12 of 12 alternated rounds of
     * its slow mode at load 5.4 (docs/core.md; not reproduced with both
     * threads pinned to one CPU, where both ran at ~1.01x). */
    if (r->ndefer) {
        r->in_cb = true;   /* (set already by enter; a nested callback's end may have cleared it) */
        flush_chained(r);
        r->in_cb = false;
    } else {
        r->in_cb = false;
        flush_chained(r);
    }
    publish_deferred(r);
}

/* Queues m for `to`: at once (and wakes it) when posted from outside one of
 * our callbacks or to ourselves, else in a chain published at its end (or
 * when it is CHAIN_MAX long). */
static void publish(sl_reactor *to, sl_msg *m)
{
    sl_reactor *cur = sl__tl_reactor;
    if (cur && cur != to)
        cur->remote_hot = true;   /* an answer may come back soon: idle_spin */
    /* to->rt shares its line with to's run queue, written at every step
     * there: read it once per destination, not once per message */
    atomic_store_explicit(&m->next_, NULL, memory_order_relaxed);
    if (!cur || !cur->in_cb || cur == to || !cur->rt ||
        (cur->same_rt != to && cur->rt != to->rt)) {
        send_chain(cur, to, m, m);
        return;
    }
    cur->same_rt = to;
    for (int i = 0; i < cur->ndefer; i++)
        if (cur->defer[i].to == to) {
            atomic_store_explicit(&cur->defer[i].last->next_, m, memory_order_relaxed);
            cur->defer[i].last = m;
            if (++cur->defer[i].n == CHAIN_MAX) {
                send_chain(cur, to, cur->defer[i].first, m);
                cur->defer[i] = cur->defer[--cur->ndefer];
            }
            return;
        }
    if (cur->ndefer == (int)(sizeof cur->defer / sizeof *cur->defer)) {
        send_chain(cur, to, m, m);
        return;
    }
    cur->defer[cur->ndefer].to = to;
    cur->defer[cur->ndefer].first = cur->defer[cur->ndefer].last = m;
    cur->defer[cur->ndefer].n = 1;
    cur->ndefer++;
}

/* Runs up to max messages; returns how many ran. `cell`: stop at the end
 * of the first cell (or MPSC message) instead, without a look for the
 * next: spin_run's one-cell hits (spin_one). */
static int drain(sl_reactor *r, int max, bool cell)
{
    int n = 0;
    uint32_t took = 0;
    sl_msg *m;
    void (*f)(void *);
    _Alignas(8) unsigned char copy[SL_RING_INLINE];
    while (n < max && ((m = inbox_pop(r, &took, &f, copy)) || f)) {
        void *a = copy;
        if (m) {
            f = m->fn;
            a = m->arg;
            if (m->heap_)
                free(m);
        }
        r->st.msgs++;
        f(a);
        if (cell && !r->in_cur) {
            n++;
            break;
        }
        if (++n % CHAIN_MAX == 0)
            publish_deferred(r);   /* replies flow while we drain */
    }
    if (took)
        ring_took(r, took);
    return n;
}

/* Before sleeping, a reactor that has just run messages polls its queue
 * for as long as they took, at most SPIN_MAX_NS: under steady traffic the
 * next chain lands within microseconds, while waking a sleeping thread
 * costs an eventfd write and, on a VM, tens of microseconds to wake its
 * vCPU. A few pauses first (quick_poll: an answer from a peer running on
 * the other CPU comes within them), then sched_yield(), not a pause loop:
 * on a loaded machine the thread it waits for may be queued behind it on
 * the same CPU, and a pause loop would burn the slice that thread needs
 * (measured beside CPU hogs on 2 vCPUs: 7x slower than yielding); the
 * pauses are left out while messages come after them, as the spin's are.
 * Polling about as long as it worked (the clock is read every 8 polls), a
 * reactor spends about half its time polling at most. Only when nothing
 * else of ours is due (no ready task, no active event). Returns true if a
 * message arrived. */
#define SPIN_MAX_NS 50000

static bool quick_poll(sl_reactor *r);
/* Only after a short drain: a message or two that answered a peer, which
 * answers within the pauses; a stream's drain of a batch runs for
 * microseconds, and its next batch comes later (the pauses cost the
 * streams 1-1.5% in 15 of 20 alternated rounds without this bound). */
#define QUICK_WORKED_NS 1000

static bool poll_briefly(sl_reactor *r, uint64_t worked)
{
    if (r->rq_head || r->yq_head || event_base_get_num_events(r->base, EVENT_BASE_COUNT_ACTIVE) > 0)
        return false;
    r->st.brief_polls++;
    if (worked < QUICK_WORKED_NS && quick_poll(r)) {
        r->st.brief_hits++;
        return true;
    }
    uint64_t t0 = sl_now_ns(), until = t0 + (worked < SPIN_MAX_NS ? worked : SPIN_MAX_NS), t;
    for (unsigned i = 1;; i++) {
        if (!inbox_empty(r)) {
            r->st.brief_hits++;
            return true;
        }
        if (i % 8 == 0 && ((t = sl_now_ns()) >= until ||
                           atomic_load_explicit(&r->stopping, memory_order_relaxed))) {
            r->st.brief_empty_ns += t - t0;
            return false;
        }
        r->st.spin_yields++;
        sched_yield();
    }
}

/* The queue looked empty: may we sleep? Clears wake_pending, then looks
 * again (see wake()). A message that slipped in is ours to run unless a
 * producer has already taken the flag, and with it the eventfd write. */
static bool may_sleep(sl_reactor *r)
{
    atomic_store_explicit(&r->wake_pending, 0, memory_order_seq_cst);
    if (inbox_empty(r))
        return true;
    return atomic_exchange_explicit(&r->wake_pending, 1, memory_order_seq_cst) != 0;
}

/* The end of a callback that posted or ran a cross-reactor message, with
 * nothing else of ours due: rather than sleep in epoll at once, poll the
 * queue for up to spin_ns (sl_runtime_opts.idle_spin_us). In a ping-pong
 * between two reactors the peer answers within microseconds, while a
 * sleeping reactor's wake-up (the peer's eventfd write, epoll_wait's
 * return, libevent's dispatch; on a VM an interrupt to an idle vCPU) cost
 * most of the round trip: docs/core.md, "Across reactors". While it polls
 * the reactor holds wake_pending, so a producer skips the eventfd write
 * too; a message that arrives is run inside the spin (spin_run, bounded:
 * SPIN_RUN_NS below). Without such traffic it never spins:
 * an idle reactor stays asleep, and a burst costs at most one spin after
 * it. sched_yield() between polls, as poll_briefly. */
/* The adaptive part. A spin that took much longer than it may (twice its
 * length) lost the CPU at a sched_yield(): more threads want the CPUs
 * than there are, the peer's answer waits for a CPU as much as we do, and
 * a thread that sleeps in epoll is woken ahead of one that yields (on a
 * loaded 2-vCPU machine spinning made a ping-pong 1.5-3x slower: docs/
 * core.md). So the next spins are left out, 1, 2, 4, ... up to 1024 of
 * them while it keeps happening; a spin within its length starts again
 * from 0. */
#define SPIN_BACKOFF_MAX 1024

/* The first polls of a spin pause rather than yield: a sched_yield() is a
 * syscall and a pass through the scheduler (about a microsecond on this
 * VM), and a peer running on another CPU answers a ping-pong's leg within
 * a few: in one run with CPUs free (load average 8), pauses in every
 * spin made the ping-pong's round trip 0.6-0.8 us against 1.0-3.6 us.
 * But a peer that waits for our CPU answers only once we yield, and
 * pausing first delays it (loads 9-20: pauses in every spin 1.4-3.6x
 * slower than yields alone). So the pauses
 * stay only while a spin's message comes during them; a spin whose
 * message came after the yields, or not at all, leaves them out of the
 * next 1, 2, 4 ... up to PAUSE_BACKOFF_MAX spins (measured at loads 6-20:
 * 0.6-1.8x the yields' round trip, median about 1, where pauses in every
 * spin were 1.4-3.6x; docs/core.md). The pauses last SPIN_PAUSE_NS, by
 * the clock the spin reads every 8 polls anyway: they were 64 polls, meant
 * as 4 us at 48 ns a pause, but a pause is 23 ns on today's host (a loop
 * of 10^6 of them), so 1.5 us, shorter than a ping-pong leg that meets a
 * cache miss or two, and every such leg sent the next spins to the yields
 * (380 ns each here). */
#define SPIN_PAUSE_NS 4000
#define PAUSE_BACKOFF_MAX 1024
/* -DPAUSE_ADAPT=0: pauses in every spin (the comparison in docs/core.md) */
#ifndef PAUSE_ADAPT
#define PAUSE_ADAPT 1
#endif

static void pause_adapt(sl_reactor *r, bool early)
{
    if (early) {
        r->pause_backoff = 0;
        return;
    }
    r->pause_backoff = r->pause_backoff ? r->pause_backoff * 2 : 1;
    if (r->pause_backoff > PAUSE_BACKOFF_MAX)
        r->pause_backoff = PAUSE_BACKOFF_MAX;
    r->pause_skip = r->pause_backoff;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static void spin_adapt(sl_reactor *r, uint64_t took)
{
    if (took <= 2 * r->spin_ns) {
        r->spin_backoff = 0;
        return;
    }
    r->spin_backoff = r->spin_backoff ? r->spin_backoff * 2 : 1;
    if (r->spin_backoff > SPIN_BACKOFF_MAX)
        r->spin_backoff = SPIN_BACKOFF_MAX;
    r->spin_skip = r->spin_backoff;
}

/* Spins that find nothing. At moderate load in the demo chain (500
 * orders/s, --threads 2, CPUs not saturated) the spins run and 0-0.5 % of
 * them see a message: a forwarded request's answer comes after an upstream
 * call or a store commit, hundreds of microseconds later, and each such
 * spin burns its 20 us for nothing (docs/core.md, "An idle process
 * sleeps"; the rule is in "The ping-pong"'s idle spin). Neither backoff above sees them: they are not over-long and
 * never pause-hit. So after SL_SPIN_EMPTY_MAX empty spins in a row (a spin
 * that ran no hit) the next 1, 2, 4 ... up to EMPTY_BACKOFF_MAX spins are
 * left out while the spins that still run (the probes) find nothing; a
 * probe that hits clears it all. A ping-pong or a stream, whose every spin
 * hits, never counts one. A left-out spin reads the clock (the reactor is
 * about to sleep: 40 ns against a wake-up's microseconds); a message that
 * wakes the reactor within a spin's length of it would have been a hit,
 * so the skipping ends there and the next spin probes at once (the backoff
 * itself stays until a probe hits: a stray message that happened to come
 * soon costs one spin). Two reactors of a ping-pong that both backed off
 * (their peer slow for a while) thus come back as soon as one answers
 * fast, not after up to EMPTY_BACKOFF_MAX slow legs. */
#define EMPTY_BACKOFF_MAX 256
/* -DEMPTY_ADAPT=0: no such backoff (the comparison in docs/core.md) */
#ifndef EMPTY_ADAPT
#define EMPTY_ADAPT 1
#endif

static void miss_adapt(sl_reactor *r)
{
    if (!EMPTY_ADAPT)
        return;
    if (r->spin_empty < SL_SPIN_EMPTY_MAX) {
        r->spin_empty++;
        if (r->spin_empty < SL_SPIN_EMPTY_MAX)
            return;
    }
    r->empty_backoff = r->empty_backoff ? r->empty_backoff * 2 : 1;
    if (r->empty_backoff > EMPTY_BACKOFF_MAX)
        r->empty_backoff = EMPTY_BACKOFF_MAX;
    r->empty_skip = r->empty_backoff;
}

/* Run in a row inside one spin (the spin's messages, the tasks they made
 * ready, a spin again for the answer) before a hit goes through libevent
 * instead: its poll is the only way a socket, a signal or a timer of
 * libevent's is seen, so a ping-pong must not keep it out. At most
 * SL_SPIN_RUN_LEGS hits (sl_diag.h), so a ready socket waits that many
 * legs at most (tests/test_reactor.c test_spin_lets_io_in counts them), and
 * at most SPIN_RUN_NS: the bound TURN_MSG_NS puts on a busy turn, so
 * neither way of being busy holds the poll longer than the other. The
 * time binds first in a ping-pong (1,024 legs of 100-300 ns): a libevent
 * turn (a timerfd_settime, an epoll_wait, a wake-up's run) every 64 legs,
 * as it was, cost the ping-pong 7-9 % of its round trip where legs are
 * ~110 ns, every 50 us it is about 1 % (docs/core.md, "The reactor's
 * share of a leg"). A timer of ours that is due
 * ends the run within SPIN_CLOCK_HITS legs, the clock's reading being
 * that old at most (libevent's own timers wait up to SPIN_RUN_NS). */
#define SPIN_RUN_NS TURN_MSG_NS

/* Anything of ours to run other than messages: its callback spins after it. */
static bool other_due(sl_reactor *r)
{
    return r->rq_head || r->yq_head || r->run_scheduled ||
           event_base_get_num_events(r->base, EVENT_BASE_COUNT_ACTIVE) > 0;
}

/* wake_cb's work after libevent's next poll: a zero timeout, not
 * event_active(), which libevent 2.1 runs in the pass under way, so that
 * a reactor whose every callback ends in a hit never polled at all (a
 * ping-pong of 30,000 round trips made 39 epoll_waits). wake_pending
 * stays ours until that callback clears it: no producer writes the
 * eventfd meanwhile, and the callback does not read it. */
static void resume_later(sl_reactor *r)
{
    event_add(r->resume_ev, &zero_tv);
}

/* One poll of the spin, holding wake_pending: true if a message came.
 * *now: the clock as it ends. */
/* Polls with pauses and no clock read at first: a ping-pong's answer
 * usually comes within them, and a clock read is 20-40 ns here (a spin
 * read it as it began, every 8 polls and as it ended: three or four a
 * leg). The spin's length counts from after them. */
#define SPIN_QUICK_POLLS 16

/* A quick hit reads no clock: it passes on the reading taken as the spin
 * began or after the run of an earlier hit, once in SPIN_CLOCK_HITS hits
 * (spin_clock_after). A read is ~20-46 ns, a fifth of a ping-pong's leg,
 * and made between a question's arrival and the answer's post it is work
 * the slow mode charges (docs/core.md, "The reactor's share of a leg":
 * past ~30 ns of such work a leg, the round trip jumps by ~150 ns), where
 * after the run it is done while the peer works on our answer. What the
 * reading decides (a timer of ours due, the run's SPIN_RUN_NS bound, the
 * turn's start) may come a few legs late: SPIN_CLOCK_HITS legs are a few
 * µs. Each spin reads it as it begins (idle_spin), so no reading
 * outlives a spin. */
#define SPIN_CLOCK_HITS 8

static inline void spin_clock_read(sl_reactor *r)
{
    r->spin_clock = sl_now_ns();
    r->spin_clock_left = SPIN_CLOCK_HITS - 1;
}

/* After a hit's run: the clock once in SPIN_CLOCK_HITS runs (counted:
 * tests/test_reactor.c test_spin_lets_io_in) */
static inline void spin_clock_after(sl_reactor *r)
{
    if (r->spin_clock_left) {
        r->spin_clock_left--;
    } else {
        spin_clock_read(r);
        r->spin_clock_runs++;
    }
}

/* wake_run's polls (poll_briefly) begin as the spin's do: a few pauses
 * before the first sched_yield(), left out by the same backoff (pause_skip:
 * a poll whose message came after its pauses, or not at all, leaves them
 * out of the next 1, 2, 4 ... polls, since the peer may wait for our
 * CPU). Messages that make no task ready (a ping-pong of messages alone, a
 * sender's top-ups) keep a reactor in wake_run's loop, not in the spin,
 * and it yielded before every look: one sched_yield() a message, and such
 * a ping-pong took 495-665 ns a round trip where one through tasks took
 * 160-218; 147-158 with these pauses (bench/leg-ladder post and task;
 * docs/core.md, "What a leg is made of"). Since the seventeenth stop such
 * a wake-up hands its wait to the spin instead (spin_takes_over): these
 * polls serve after longer drains and while the spin is left out. */
static bool quick_poll(sl_reactor *r)
{
    if (!r->spin_ns)
        return false;
    if (r->pause_skip) {   /* counted down here too: such a reactor may never spin */
        r->pause_skip--;
        return false;
    }
    uint64_t until = 0;
    for (unsigned i = 0;; i++) {
        if (!inbox_empty(r)) {
            r->quick_hits++;
            pause_adapt(r, true);
            return true;
        }
        /* as spin_poll: the first polls read no clock, the rest pause
         * for SPIN_PAUSE_NS by it (a peer that yields between its looks
         * answers within a few us, and only a look within them brings the
         * two back to pausing) */
        if (i == SPIN_QUICK_POLLS)
            until = sl_now_ns() + SPIN_PAUSE_NS;
        else if (i > SPIN_QUICK_POLLS && i % 8 == 0 && sl_now_ns() >= until)
            break;
        cpu_relax();
    }
    pause_adapt(r, false);   /* the message comes later, if at all: yield at once next time */
    return false;
}

/* Not looking too soon (issue 17, seventeenth stop; docs/core.md "One
 * line, and a look at the right time"). A ping-pong's answer is written
 * into the line its question came on (ring.h). Between the peer's read of
 * the question and its write of the answer the line is the peer's alone,
 * unless we look at it: a look in that window takes it back, and the
 * answer's write waits for it again (a round trip of the line, some 30
 * ns fast and 150 slow on this host). Looking from the spin's start, our
 * looks landed in the window: with the first look two pauses (~46 ns)
 * later, none did, and the channel ping-pong took 143-152 ns a round trip
 * against 211-228 (bench/leg-ladder chan; the answer then came before the
 * first look in 98 % of legs, where without the pauses it came at the
 * fourth). Too long a wait is as bad (three pauses: 172; five: 225), and
 * the right one depends on the host's mode and on the peer's work, so it
 * is learned per reactor, in pauses before the spin's first look
 * (look_delay):
 *  - hits are counted in windows of LOOK_WINDOW; a window in which half
 *    or more came after an empty look (we looked too soon) raises the
 *    delay by one, up to LOOK_MAX;
 *  - a window with at most one such hit is on time; after look_wait of
 *    them the delay is lowered by one, as a probe. A probe whose next
 *    window is late goes back up and doubles the wait before the next
 *    one (up to LOOK_BACKOFF_MAX windows), so a reactor at the right delay
 *    spends little time below it; one that is on time keeps the lower
 *    delay and probes again after one window.
 * A stream or a burst is found at the first look and sinks to no delay; a
 * peer that answers in microseconds finds the spin looking well before,
 * whatever the delay (LOOK_MAX pauses, ~280 ns). Only the quick looks
 * of the spin wait so (spin_poll); wake_run's polls do not. */
#define LOOK_WINDOW SL_LOOK_WINDOW
#define LOOK_MAX SL_LOOK_MAX
#define LOOK_BACKOFF_MAX SL_LOOK_BACKOFF_MAX
/* -DLOOK_ADAPT=0: no delay (the comparison in docs/core.md) */
#ifndef LOOK_ADAPT
#define LOOK_ADAPT 1
#endif

void sl__look_adapt(sl_reactor *r, unsigned empty)
{
    if (!LOOK_ADAPT)
        return;
    r->look_n++;
    if (empty)
        r->look_late++;
    if (r->look_n < LOOK_WINDOW)
        return;
    if (r->look_late >= LOOK_WINDOW / 2) {
        if (r->look_delay < LOOK_MAX) {
            r->look_delay++;
            r->look_ups++;
        }
        if (r->look_probing && r->look_backoff < LOOK_BACKOFF_MAX)
            r->look_backoff *= 2;
        r->look_probing = false;
        r->look_wait = r->look_backoff;
    } else if (r->look_late <= 1) {
        if (r->look_probing) {
            r->look_probing = false;   /* the lower delay holds */
            r->look_backoff = 1;
            r->look_wait = 1;
        } else if (r->look_wait) {
            r->look_wait--;
        } else if (r->look_delay) {
            r->look_delay--;
            r->look_downs++;
            r->look_probing = true;
        }
    }
    r->look_n = r->look_late = 0;
}

static bool spin_poll(sl_reactor *r, uint64_t *now)
{
    r->st.spins++;
    if (!r->pause_skip) {
        for (unsigned k = 0; k < r->look_delay; k++)   /* not too soon: sl__look_adapt */
            cpu_relax();
        for (int i = 0; i < SPIN_QUICK_POLLS; i++) {
            if (!inbox_empty(r)) {
                /* after empty looks or the wait, an answer: its cell, then
                 * its tasks; at the first look at once, more may wait
                 * (spin_run) */
                r->spin_one = i > 0 || r->look_delay;
                sl__look_adapt(r, (unsigned)i);
                pause_adapt(r, true);   /* came while pausing: as below */
                r->spin_backoff = 0;    /* spin_adapt's verdict on a spin this short */
                *now = r->spin_clock;   /* read after a run (spin_clock_after), not here */
                r->st.spin_hits++;
                return true;
            }
            cpu_relax();
        }
        sl__look_adapt(r, SPIN_QUICK_POLLS);   /* none within them: late */
    }
    uint64_t t0 = sl_now_ns(), until = t0 + r->spin_ns, t;
    uint64_t pause_until = r->pause_skip ? 0 : t0 + SPIN_PAUSE_NS;
    bool hit = false, pausing = pause_until != 0;
    if (r->pause_skip)
        r->pause_skip--;
    unsigned i;
    for (i = 1;; i++) {
        if (!inbox_empty(r)) {
            hit = true;
            break;
        }
        if (i % 8 == 0) {
            t = sl_now_ns();
            if (t >= until || atomic_load_explicit(&r->stopping, memory_order_relaxed))
                break;
            if (t >= pause_until)
                pausing = false;
        }
        if (pausing) {
            cpu_relax();
        } else {
            r->st.spin_yields++;
            sched_yield();
        }
    }
    if (pause_until && PAUSE_ADAPT)
        pause_adapt(r, hit && pausing);
    spin_clock_read(r);
    *now = t = r->spin_clock;
    spin_adapt(r, t - t0);
    if (hit) {
        r->st.spin_hits++;
        /* after empty looks (the quick ones, or this loop's first): as above */
        r->spin_one = pause_until || i > 1;
    }
    return hit;
}

/* A hit, run inside the spin: what wake_cb and run_turn would do in two
 * libevent callbacks (and, for the reactor's own timers and sockets, a
 * poll between them), in one: the messages, what they posted, then the
 * tasks they made ready and what those posted. wake_pending stays ours:
 * the spin goes on polling after it. */
static void spin_run(sl_reactor *r, uint64_t now)
{
    r->in_cb = true;
    /* No sl__callback_begin, and turn_finish publishes nothing: what the
     * other reactors' deadlock checks read (diag.c: `quiet`, `asleep`,
     * `turns`, `steps_pub`) is published once when the spin ends
     * (idle_spin), not at every hit. Those checks give up on a reactor
     * whose wake_pending is set, and the spin holds it from before its
     * first hit until after that publication (spin_release clears it,
     * seq_cst, after the stores): no checker can act on the stale state
     * meanwhile. They were four to six locked stores a leg on each side
     * (quiet and asleep flip at every hit of a ping-pong). */
    r->st.spin_runs++;
    r->now = now;
    r->in_spin_run = true;
    /* A hit that came after an empty look (spin_one: a ping-pong's answer,
     * the first of a burst) runs its cell's messages and then their tasks,
     * without a look for the next cell first: that look sat between the
     * question's arrival and the answer's post, where the slow mode
     * charges the work (docs/core.md, "The reactor's path to the answer
     * (fifteenth stop)"). A next cell is met by the spin's next look, at
     * once, and that hit drains all (found at the first look: spin_poll).
     * FIFO holds: cells are taken in order whoever runs them. */
    if (r->spin_one)
        r->spin_ones++;
    if (drain(r, DRAIN_MAX, r->spin_one))
        r->remote_hot = true;
    r->in_spin_run = false;
    /* a task that yielded in a message has armed the next turn already */
    if ((r->rq_head || r->nturn_end) && !r->run_scheduled) {
        /* What the messages did is flushed (rsend.c's grants, rrecv.c's
         * lends and reports) before a task runs, as when wake_cb and
         * run_cb ran them apart: running the tasks first let a receive at
         * a channel's home take an element past one being lent to another
         * reactor (test_credit_sends_race: disorder at the home's receiver
         * in every run). Its messages are not pushed at once, as
         * flush_wakes does, but chained behind what the messages posted,
         * and the tasks' after them, all published in one chain per
         * destination at the end: a leg's top-up and its next batch then
         * reach the peer in one push and one hit, not two (0.76-0.98x the
         * round trip, 6 of 6 alternations, load 6.3). Pushing the first
         * flush's messages at once while the rest waited for the end put
         * the end's flush ahead of them: disorder again. */
        /* Top-ups owed (rsend.c) stay for the second flush: a task made
         * ready here usually answers, and the answer's batch carries
         * them, one message a leg instead of two. Small ones only
         * (HOLD_TOPUP_MAX): a large one is published before the tasks
         * run, so its sender works while they drain its batch. */
        r->hold_topups = true;
        flush_chained(r);
        r->hold_topups = false;
        /* a large top-up, which the flush did not hold, leaves before
         * the tasks run (and what was chained before it, in order) */
        if (r->topup_early) {
            r->topup_early = false;
            publish_deferred(r);
        }
        run_batch(r, false, now);
        flush_chained(r);
    }
    turn_finish(r, false);
}

/* We hold wake_pending and stop: sleep, unless a message slipped in as we
 * let go (may_sleep), which is then ours to run. */
static void spin_release(sl_reactor *r)
{
    if (!may_sleep(r))
        resume_later(r);
}

static void idle_spin(sl_reactor *r)
{
    if (!r->remote_hot || !r->spin_ns)
        return;
    /* something else is due: the callback that runs it spins after it */
    if (other_due(r))
        return;
    r->remote_hot = false;
    if (r->spin_skip) {
        r->spin_skip--;
        r->st.spin_skips++;
        return;
    }
    if (r->empty_skip) {
        r->empty_skip--;
        r->st.spin_empty_skips++;
        r->empty_skipped_at = sl_now_ns();
        return;
    }
    if (atomic_load_explicit(&r->stopping, memory_order_relaxed))
        return;
    /* ours already (wake_run kept it for the tasks run_turn ran): the spin
     * takes it over; else held already: a producer has written the
     * eventfd, or will */
    if (r->wake_held)
        r->wake_held = false;
    else if (atomic_exchange_explicit(&r->wake_pending, 1, memory_order_seq_cst))
        return;
    spin_clock_read(r);   /* for the first hits: a quick one reads none */
    uint64_t now;
    bool ran = false;   /* a hit ran here: its state is not published yet */
    for (;;) {
        if (!spin_poll(r, &now)) {
            /* nothing else was due, so libevent's next step is a poll */
            r->spin_legs = 0;
            r->st.spin_misses++;
            if (ran)
                spin_end(r);
            else
                miss_adapt(r);   /* a spin that found nothing */
            spin_release(r);
            return;
        }
        if (!ran && r->spin_empty) {   /* a hit: spin at every chance again */
            r->spin_empty = 0;
            r->empty_backoff = 0;
        }
        /* counted since libevent's last poll, not per spin: a spin that
         * ends with a task ready returns to libevent's pass under way
         * (run_ev made active), whose next callback spins again */
        if (!r->spin_legs)
            r->spin_since = now;
        if (r->spin_legs == SL_SPIN_RUN_LEGS || now - r->spin_since >= SPIN_RUN_NS ||
            (r->timer_at && r->timer_at <= now)) {
            r->st.spin_bounds++;
            if (ran)
                spin_end(r);
            resume_later(r);
            return;
        }
        r->spin_legs++;
        spin_run(r, now);
        spin_clock_after(r);
        ran = true;
        /* as at the top: the spin goes on only as a new one would start */
        if (!r->remote_hot || other_due(r) ||
            atomic_load_explicit(&r->stopping, memory_order_relaxed)) {
            spin_end(r);   /* before wake_pending goes: see spin_run */
            spin_release(r);
            return;
        }
        r->remote_hot = false;
        if (r->spin_skip) {
            r->spin_skip--;
            r->st.spin_skips++;
            spin_end(r);
            spin_release(r);
            return;
        }
    }
}

/* After a drain of a message or two (SPIN_TAKES_MSGS: the answer to a
 * peer, not a stream's chain; counted, not timed as quick_poll's bound
 * is: a clock read fewer, and the same choice at the first message as at
 * the millionth) with nothing else of ours due: the spin takes over
 * the wait for the next one, wake_pending held throughout (wake_held), as
 * after tasks that ran. Messages that make no task ready (a ping-pong of
 * messages alone) looped in wake_run, whose every leg read the clock two
 * or three times (20-40 ns each here), asked libevent for its active
 * events and ran a full drain, which looked for a next cell before the
 * answer left (poll_briefly, quick_poll); the spin's hits read the clock
 * once in SPIN_CLOCK_HITS and run the cell they found, the answer
 * leaving as its callback ends, bounded as a spin's are (SL_SPIN_RUN_LEGS,
 * SPIN_RUN_NS: resume_later brings us back here after libevent's poll).
 * Not when the spin would be left out (its backoffs, a stop): then
 * poll_briefly, as before. docs/core.md, "A ping-pong of messages
 * (seventeenth stop)". */
#define SPIN_TAKES_MSGS 2

static bool spin_takes_over(sl_reactor *r, int ran)
{
    if (!ran || ran > SPIN_TAKES_MSGS || !r->remote_hot || !r->spin_ns || r->spin_skip ||
        r->empty_skip || atomic_load_explicit(&r->stopping, memory_order_relaxed) || other_due(r))
        return false;
    r->wake_spins++;
    return true;
}

/* The messages, after a wake-up: the eventfd's (read_fd: take its count)
 * or resume_later's. */
static void wake_run(sl_reactor *r, bool read_fd)
{
    sl_reactor *prev = enter(r);
    uint64_t cnt;
    busy_begin(r);   /* its spin may run steps */
    r->spin_legs = 0;   /* both ways in come from a poll */
    r->wake_held = false;   /* still ours, and decided again below */
    if (read_fd) {
        r->st.fd_wakeups++;
        ssize_t n = read(r->wake_fd, &cnt, sizeof cnt);
        (void)n;
    }
    sl__callback_begin(r);
    r->st.wakeups++;
    r->now = sl_now_ns();
    if (r->empty_skipped_at) {
        /* a spin left out for empty ones would have met this: probe next */
        if (r->now - r->empty_skipped_at <= r->spin_ns && r->empty_skip) {
            r->empty_skip = 0;
            r->st.spin_empty_wakes++;
        }
        r->empty_skipped_at = 0;
    }
    /* the legs this loop runs count towards the spin's bound, as the
     * spin's own do (below) */
    r->spin_since = r->now;
    int left = DRAIN_MAX;
    for (;;) {
        uint64_t t0 = sl_now_ns();
        int ran = drain(r, left, false);
        if (ran)
            r->remote_hot = true;
        left -= ran;
        if (!left) {
            /* wake_pending stays ours: come back after the other events */
            resume_later(r);
            break;
        }
        publish_deferred(r);   /* before polling: the peer may be waiting for them */
        if (spin_takes_over(r, ran)) {
            r->wake_held = true;   /* idle_spin, below, takes it */
            break;
        }
        if (poll_briefly(r, sl_now_ns() - t0)) {
            /* Each message a poll met is a leg run without libevent's
             * poll, as a spin's hit is: at most SL_SPIN_RUN_LEGS of them
             * in a row (counted with the spin's, which may take over
             * after them), then libevent polls (a socket or a timer of
             * its own is seen only so) and we come back. Before, this
             * loop ran a ping-pong of messages for up to DRAIN_MAX legs
             * in a row (tests/test_reactor.c
             * test_message_pingpong_lets_io_in). */
            if (++r->spin_legs < SL_SPIN_RUN_LEGS)
                continue;
            r->st.spin_bounds++;
            resume_later(r);   /* wake_pending stays ours, as above */
            break;
        }
        /* Tasks made ready run next (run_cb): keep wake_pending until
         * they have run, and their spin, if any, takes it over. Let go
         * here, it was taken back by the first post of the peer while
         * they ran (their answers, a stream's next batch): an eventfd
         * write there, then here a read and a poll, and the spin after
         * them found the flag taken and did not run, so the next message
         * came by the eventfd again. A stream between two reactors made
         * 300-1,700 such wake-ups per million elements at its sender
         * (docs/core.md, "The slow mode"). */
        if (r->rq_head && r->run_scheduled &&
            !atomic_load_explicit(&r->stopping, memory_order_relaxed)) {
            r->wake_held = true;
            break;
        }
        if (may_sleep(r))
            break;
    }
    /* tasks made ready run in run_cb, in this pass of libevent's: top-ups
     * owed wait for its flush, to ride in what they send (rsend.c) */
    r->hold_topups = r->rq_head && r->run_scheduled;
    flush_wakes(r);
    r->hold_topups = false;
    if (atomic_load_explicit(&r->stopping, memory_order_acquire))
        event_base_loopbreak(r->base);
    sl__callback_end(r);
    idle_spin(r);
    if (r->wake_held && !(r->rq_head && r->run_scheduled)) {
        /* spin_takes_over's hold, which the spin did not take (a task or
         * an event became due meanwhile, a stop): let it go, as run_turn
         * does; with tasks ready run_turn takes it, as before */
        r->wake_held = false;
        spin_release(r);
    }
    busy_end(r);
    sl__tl_reactor = prev;
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wake_run(arg, true);
}

/* resume_later's: we held wake_pending throughout, so no producer wrote
 * the eventfd and a read would be a syscall for EAGAIN (once per leg of a
 * ping-pong before). Should it hold a count anyway (sl_runtime_stop), it
 * stays readable and wake_cb takes it. */
static void resume_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    wake_run(arg, false);
}

int sl_reactor_post_mem(sl_reactor *r, sl_msg *m, void (*fn)(void *), void *arg)
{
    m->fn = fn;
    m->arg = arg;
    m->heap_ = false;
    publish(r, m);
    return 0;
}

int sl_reactor_post(sl_reactor *r, void (*fn)(void *), void *arg)
{
    sl_msg *m = malloc(sizeof *m);
    if (!m)
        return -ENOMEM;
    m->fn = fn;
    m->arg = arg;
    m->heap_ = true;
    publish(r, m);
    return 0;
}

/* Called by sl_runtime_stop: async-signal-safe (a store and a write). */
void sl__reactor_stop(sl_reactor *r)
{
    atomic_store_explicit(&r->stopping, true, memory_order_release);
    uint64_t one = 1;
    ssize_t n = write(r->wake_fd, &one, sizeof one);
    (void)n;
}

/* ---- life cycle --------------------------------------------------------- */

int sl__reactor_init(sl_reactor *r, sl_runtime *rt, int id, struct event_base *base,
                     const sl_runtime_opts *opts)
{
    memset(r, 0, sizeof *r);
    r->rt = rt;
    r->id = id;
    r->wake_fd = -1;
    r->look_backoff = 1;
    atomic_store(&r->quiet, true);
    atomic_store(&r->asleep, -1);   /* its thread publishes the truth as it starts */
    sl_reactor_set_report(r, opts ? opts->report : NULL, opts ? opts->report_arg : NULL);
    r->rng = 0x9E3779B97F4A7C15ULL ^ ((uint64_t)(uintptr_t)r) ^ sl_now_ns();
    if (!r->rng)
        r->rng = 1;
    sl_mpsc_init(&r->q);
    /* an embedded reactor's loop is its user's: it never spins */
    int spin_us = opts ? opts->idle_spin_us : 0;
    r->spin_ns = !rt || spin_us < 0 ? 0 : (uint64_t)(spin_us ? spin_us : SL_IDLE_SPIN_US_DEFAULT) * 1000;
    if (!base) {
        struct event_config *cfg = event_config_new();
        if (!cfg)
            return -ENOMEM;
        /* One thread owns the base: no locks inside libevent. Precise
         * timers: without the flag libevent reads CLOCK_MONOTONIC_COARSE
         * (4 ms ticks here), so a 1 ms sleep, deadline or context timeout
         * took ~4.3 ms. With it, libevent reads the exact clock and arms a
         * timerfd before each epoll_wait: one more syscall per turn that
         * sleeps or polls (measured: docs/core.md, "Timers"). */
        event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK | EVENT_BASE_FLAG_PRECISE_TIMER);
        base = event_base_new_with_config(cfg);
        event_config_free(cfg);
        if (!base)
            return -ENOMEM;
        r->own_base = true;
    }
    r->base = base;
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->wake_fd < 0)
        return -errno;
    r->run_ev = event_new(base, -1, 0, run_cb, r);
    r->timer_ev = evtimer_new(base, timer_cb, r);
    r->wake_ev = event_new(base, r->wake_fd, EV_READ | EV_PERSIST, wake_cb, r);
    r->resume_ev = evtimer_new(base, resume_cb, r);
    if (!r->run_ev || !r->timer_ev || !r->wake_ev || !r->resume_ev)
        return -ENOMEM;
    event_add(r->wake_ev, NULL);
    sl__watch_init(r, opts);
    return 0;
}

/* Runs messages posted but never run (they may complete or free things).
 * Returns how many ran. */
int sl__reactor_drain(sl_reactor *r)
{
    sl_reactor *prev = sl__tl_reactor;
    sl__tl_reactor = r;
    int n = drain(r, INT_MAX, false);
    if (r->nbacklog)   /* counted: the destination's next drain has work */
        n += ring_retry(r);
    if (r->rr_dirty || r->rrecvs)   /* lent elements go back */
        n += sl__rrecv_flush(r, true);
    if (r->rs_dirty || r->grant_head || r->rsends || r->rs_owed)   /* nothing runs any more: all credit goes back */
        n += sl__rsend_flush(r, true);
    sl__tl_reactor = prev;
    return n;
}

/* Teardown, in two passes over every reactor of a runtime: first every
 * leaked task goes (so no wait is left anywhere), then leaked channels and
 * the reactor itself. */
int sl__reactor_teardown_tasks(sl_reactor *r)
{
    sl_reactor *prev = sl__tl_reactor;
    sl__tl_reactor = r;
    int leaks = r->base ? sl__destroy_leaked_tasks(r) : 0;
    r->tearing_down = true;
    sl__tl_reactor = prev;
    return leaks;
}

int sl__reactor_teardown(sl_reactor *r)
{
    sl_reactor *prev = sl__tl_reactor;
    sl__tl_reactor = r;
    int leaks = r->base ? sl__release_leaked_chans(r) : 0;
    sl__chan_quarantine_free(r);
    sl__rsend_free_all(r);
    sl__rrecv_free_all(r);
    r->grant_head = NULL;
    sl_heap_free(&r->heap);
    sl__watch_free(r);
    for (int i = 0; i < 8; i++)
        free(r->dl[i].text);
    if (r->run_ev)
        event_free(r->run_ev);
    if (r->timer_ev)
        event_free(r->timer_ev);
    if (r->wake_ev)
        event_free(r->wake_ev);
    if (r->resume_ev)
        event_free(r->resume_ev);
    if (r->wake_fd >= 0)
        close(r->wake_fd);
    if (r->own_base && r->base)
        event_base_free(r->base);
    sl__tl_reactor = prev;
    return leaks;
}

int sl_reactor_new_on(sl_reactor **out, struct event_base *base, const sl_runtime_opts *opts)
{
    if (!out || !base)
        return -EINVAL;
    sl_reactor *r = aligned_alloc(64, (sizeof *r + 63) & ~(size_t)63);   /* its queue's lines */
    if (!r)
        return -ENOMEM;
    int rc = sl__reactor_init(r, NULL, 0, base, opts);
    if (rc < 0) {
        r->base = NULL;
        sl__reactor_teardown(r);
        free(r);
        return rc;
    }
    sl__claim(r, true);
    if (!sl__tl_reactor)
        sl__tl_reactor = r;
    *out = r;
    return 0;
}

int sl_reactor_free(sl_reactor *r)
{
    if (r->rt)
        return -EINVAL;
    while (sl__reactor_drain(r))
        ;
    int leaks = sl__reactor_teardown_tasks(r);
    leaks += sl__reactor_teardown(r);
    if (sl__tl_reactor == r)
        sl__tl_reactor = NULL;
    free(r);
    return leaks;
}
