/* offload.c: the runtime's pool of worker threads for blocking calls.
 *
 * One mutex guards the queue, the list of running work, the counters and
 * each item's state; workers sleep on one condition variable. An item is
 * touched by two threads only: its task's reactor (which made it, parks the
 * task on it, and frees it) and the worker that runs it, and every hand-off
 * between them goes through the mutex or through the reactor's message
 * queue. So a deadline or cancel that comes while the item is queued takes
 * it off the queue under the mutex (it never starts), and one that comes
 * while it runs only marks it orphaned on the reactor: the worker posts the
 * result home all the same, and home, finding no task waiting, hands arg to
 * the abandon hook and frees the item. Nothing is freed while another
 * thread may still use it, and nobody waits for a worker but shutdown.
 *
 * A mutex and a condition variable, not a lock-free queue: the work is a
 * blocking call (microseconds to seconds), so a few uncontended lock
 * operations per item are noise, and the lock makes cancel-while-queued
 * exact. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "sl_offload.h"

enum { QUEUED, RUNNING, DONE, DROPPED };

typedef struct item {
    sl_msg msg;                       /* the result, on its way home */
    SL_LINK(struct item) link;        /* the queue, or the running list */
    sl_offload_fn fn;
    void *arg;
    void (*interrupt)(void *);
    void (*abandon)(void *, int);
    const char *name, *file, *task_name;
    int line;
    sl_reactor *home;
    /* home's only: the waiting task, NULL once it gave up */
    sl_task *task;
    /* under the pool's mutex */
    int state;
    bool interrupted;
    int result;
    uint64_t queued_at, started_at;
    char site[64];                    /* the default name: "file:line" */
} item;

struct sl_offload_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;                /* workers wait here for work */
    SL_LIST(item) queue;              /* oldest first */
    SL_LIST(item) running;
    size_t qcap;
    int max, started, idle;
    _Atomic size_t nq;                /* = st.queued, for workers polling without the mutex */
    bool stop;
    pthread_t *th;
    sl_offload_stats st;
};

#define DEFAULT_THREADS 4
#define DEFAULT_QUEUE 256

int sl__offload_new(sl_runtime *rt, const sl_runtime_opts *opts)
{
    int n = opts ? opts->offload_threads : 0;
    if (n < 0)
        return 0;   /* no pool: sl_offload says -ENOTSUP */
    struct sl_offload_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->max = n ? n : DEFAULT_THREADS;
    p->qcap = opts && opts->offload_queue > 0 ? (size_t)opts->offload_queue : DEFAULT_QUEUE;
    p->th = calloc((size_t)p->max, sizeof *p->th);
    if (!p->th || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->th);
        free(p);
        return -ENOMEM;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p->th);
        free(p);
        return -ENOMEM;
    }
    p->st.threads_max = p->max;
    p->st.queue_cap = p->qcap;
    rt->offload = p;
    return 0;
}

/* ---- home: the task's reactor -------------------------------------------------- */

/* The result is home: the task takes it, or, if it gave up, abandon takes arg. */
static void result_home(void *arg)
{
    item *it = arg;
    if (it->task)
        sl__external_wake(it->task, it->result);
    else if (it->abandon)
        it->abandon(it->arg, it->result);
    free(it);
}

/* The task's deadline or cancel (or its end at shutdown) came first. */
static void on_abort(sl_task *t, void *obj, int err)
{
    item *it = obj;
    struct sl_offload_pool *p = t->reactor_->rt->offload;
    (void)err;
    it->task = NULL;
    pthread_mutex_lock(&p->mu);
    int state = it->state;
    if (state == QUEUED) {
        SL_LIST_REMOVE(&p->queue, it, link);
        atomic_store_explicit(&p->nq, --p->st.queued, memory_order_relaxed);
        p->st.dropped++;
        it->state = DROPPED;
    } else if (state == RUNNING) {
        p->st.abandoned++;
        if (it->interrupt && !it->interrupted) {
            /* under the mutex: the worker cannot record fn's return, and so
             * cannot start other work that the hook would hit instead */
            it->interrupted = true;
            it->interrupt(it->arg);
        }
    }
    pthread_mutex_unlock(&p->mu);
    if (state == QUEUED) {
        /* never started: nobody else has it */
        if (it->abandon)
            it->abandon(it->arg, -ECANCELED);
        free(it);
    }
    /* RUNNING or DONE: the result is or will be on its way home */
}

/* ---- workers -------------------------------------------------------------------- */

/* A worker that has just returned a result looks for the next call a
 * little before it sleeps: a task that awaits calls one after another
 * submits its next one within microseconds of its result landing, and
 * waking a sleeping thread costs a futex wake and, on a VM, tens of
 * microseconds more (measured: the empty round trip falls from ~1.6x a
 * cross-reactor round trip to ~1.0x). As the reactor does (reactor.c,
 * poll_briefly), it yields the CPU between looks, reads the clock every 8
 * of them, and polls about as long as the call took, at most 50 us, so
 * it spends at most about half its time polling. The price: a worker that
 * polls takes a burst of tiny calls one at a time as they come instead of
 * sleeping until the burst is queued (64 tasks of empty calls: ~2x fewer
 * calls/s on the loaded development VM); calls worth offloading are not
 * tiny. */
#define SPIN_MAX_NS 50000

static void poll_briefly(struct sl_offload_pool *p, uint64_t worked)
{
    uint64_t until = sl_now_ns() + (worked < SPIN_MAX_NS ? worked : SPIN_MAX_NS);
    for (unsigned i = 1; !atomic_load_explicit(&p->nq, memory_order_relaxed); i++) {
        if (i % 8 == 0 && sl_now_ns() >= until)
            return;
        sched_yield();
    }
}

static void *worker_main(void *arg)
{
    struct sl_offload_pool *p = arg;
    pthread_setname_np(pthread_self(), "sl-offload");   /* top -H and perf tell the threads apart */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->queue.head && !p->stop) {
            p->idle++;
            pthread_cond_wait(&p->cv, &p->mu);
            p->idle--;
        }
        if (!p->queue.head)
            break;   /* stopping, and nothing left to run */
        item *it = p->queue.head;
        SL_LIST_REMOVE(&p->queue, it, link);
        atomic_store_explicit(&p->nq, --p->st.queued, memory_order_relaxed);
        it->state = RUNNING;
        SL_LIST_PUSH_FRONT(&p->running, it, link);
        p->st.running++;
        it->started_at = sl_now_ns();
        uint64_t waited = it->started_at - it->queued_at;
        p->st.wait_ns += waited;
        if (waited > p->st.wait_max_ns)
            p->st.wait_max_ns = waited;
        pthread_mutex_unlock(&p->mu);

        int rc = it->fn(it->arg);

        uint64_t ran = sl_now_ns() - it->started_at;
        pthread_mutex_lock(&p->mu);
        SL_LIST_REMOVE(&p->running, it, link);
        p->st.running--;
        p->st.completed++;
        p->st.run_ns += ran;
        if (ran > p->st.run_max_ns)
            p->st.run_max_ns = ran;
        it->state = DONE;
        it->result = rc == SL_PENDING ? -EINVAL : rc;
        pthread_mutex_unlock(&p->mu);
        /* DONE: home frees the item once this arrives, and not before */
        uint64_t started = it->started_at;   /* the item is home's once posted */
        sl_reactor_post_mem(it->home, &it->msg, result_home, it);
        poll_briefly(p, sl_now_ns() - started);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Starts the pool's threads, at its first use; with p->mu held. Blocking
 * every signal first, so that the workers inherit a mask that leaves
 * signals to the program's own threads. Returns 0 if at least one runs. */
static int start_workers(struct sl_offload_pool *p)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    while (p->started < p->max && pthread_create(&p->th[p->started], NULL, worker_main, p) == 0)
        p->started++;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    p->st.threads = p->started;
    return p->started ? 0 : -EAGAIN;
}

int sl_offload_start(sl_runtime *rt)
{
    if (!rt)
        return -EINVAL;
    struct sl_offload_pool *p = rt->offload;
    if (!p)
        return -ENOTSUP;
    pthread_mutex_lock(&p->mu);
    int rc = p->stop ? -ECANCELED : p->started < p->max ? start_workers(p) : 0;
    pthread_mutex_unlock(&p->mu);
    return rc;
}

/* ---- submitting ----------------------------------------------------------------- */

int sl_offload_at_(sl_task *t, sl_offload_fn fn, void *arg, const sl_offload_opts *opts,
                   const char *file, int line)
{
    if (!t || !fn)
        return -EINVAL;
    sl_reactor *r = t->reactor_;
    if (!sl__on_reactor(r))
        return -EXDEV;
    if (t->status_ != SL_TASK_RUNNING)
        return -EINVAL;   /* only the running task may park itself */
    struct sl_offload_pool *p = r->rt ? r->rt->offload : NULL;
    if (!p)
        return -ENOTSUP;
    item *it = malloc(sizeof *it);
    if (!it)
        return -ENOMEM;
    *it = (item){ .fn = fn, .arg = arg, .file = file, .line = line, .home = r, .task = t,
                  .task_name = t->name_, .state = QUEUED };
    if (opts) {
        it->name = opts->name;
        it->interrupt = opts->interrupt;
        it->abandon = opts->abandon;
    }
    if (!it->name) {
        snprintf(it->site, sizeof it->site, "%s:%d", file, line);
        it->name = it->site;
    }
    /* park first: once queued, a worker may finish it at any moment */
    int rc = sl__park_external(t, SL_WAIT_OFFLOAD, it, on_abort, it->name);
    if (rc != SL_PENDING) {
        free(it);
        return rc;
    }
    pthread_mutex_lock(&p->mu);
    rc = 0;
    if (p->st.queued >= p->qcap || p->stop) {
        p->st.rejected++;
        rc = -EBUSY;
    } else if (p->started < p->max && !p->idle) {
        rc = start_workers(p);   /* the first use (or a retry after -EAGAIN) */
    }
    if (rc < 0) {
        pthread_mutex_unlock(&p->mu);
        sl__park_undo(t);
        free(it);
        return rc;
    }
    it->queued_at = sl_now_ns();
    SL_LIST_PUSH_BACK(&p->queue, it, link);
    atomic_store_explicit(&p->nq, ++p->st.queued, memory_order_relaxed);
    p->st.submitted++;
    if (p->idle)
        pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return SL_PENDING;
}

int sl_offload_stats_get(sl_runtime *rt, sl_offload_stats *st)
{
    if (!rt || !st)
        return -EINVAL;
    struct sl_offload_pool *p = rt->offload;
    if (!p) {
        *st = (sl_offload_stats){ 0 };
        return 0;
    }
    pthread_mutex_lock(&p->mu);
    *st = p->st;
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* ---- shutdown ------------------------------------------------------------------- */

/* At sl_runtime_free, before the tasks go: reports the work running now,
 * while its task (if it still waits) is alive to be named beside it.
 * Returns the number reported. */
int sl__offload_report(sl_runtime *rt)
{
    struct sl_offload_pool *p = rt->offload;
    if (!p)
        return 0;
    int n = 0;
    uint64_t now = sl_now_ns();
    pthread_mutex_lock(&p->mu);
    for (item *it = p->running.head; it; it = it->link.next, n++)
        sl__report(it->home, "sluice: leak: offloaded work '%s' (submitted at %s:%d by task '%s') "
                   "still running at shutdown after %.3f ms; waiting for it to return",
                   it->name, it->file, it->line, it->task_name, (double)(now - it->started_at) / 1e6);
    pthread_mutex_unlock(&p->mu);
    return n;
}

/* Then, after every task has gone (so every item's task has given up:
 * queued work was dropped, running work orphaned and interrupted): asks
 * what still runs to stop, waits for the workers to return and end. The
 * caller then runs the results home, so that each abandon hook is called
 * and each item freed. */
void sl__offload_stop(sl_runtime *rt)
{
    struct sl_offload_pool *p = rt->offload;
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    for (item *it = p->running.head; it; it = it->link.next)
        if (it->interrupt && !it->interrupted) {
            it->interrupted = true;
            it->interrupt(it->arg);
        }
    p->stop = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->started; i++)
        pthread_join(p->th[i], NULL);
    /* the queue is empty unless a task's end did not withdraw its work */
    while (p->queue.head) {
        item *it = p->queue.head;
        SL_LIST_REMOVE(&p->queue, it, link);
        if (it->abandon)
            it->abandon(it->arg, -ECANCELED);
        free(it);
    }
}

void sl__offload_free(sl_runtime *rt)
{
    struct sl_offload_pool *p = rt->offload;
    if (!p)
        return;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->th);
    free(p);
    rt->offload = NULL;
}
