/* sl_offload.h: blocking calls off the reactors, on the runtime's worker pool.
 *
 * A step function must never block: every other task of its reactor waits
 * meanwhile (and the stall watchdog says so). A call that blocks (a database
 * driver, getaddrinfo, file I/O, a compression or crypto library) goes to
 * the runtime's pool of worker threads instead, and the task awaits it like
 * any other wait:
 *
 *     struct lookup { const char *host; struct addrinfo *ai; };   // not in the task state
 *
 *     static int resolve(void *arg) {                 // on a worker thread
 *         struct lookup *l = arg;
 *         return getaddrinfo(l->host, "80", NULL, &l->ai) ? -EHOSTUNREACH : 0;
 *     }
 *
 *     SL_AWAIT(t, s->rc, sl_offload(t, resolve, s->l, &(sl_offload_opts){
 *                  .name = "getaddrinfo", .abandon = lookup_free }));
 *     if (s->rc < 0) ...     // -ETIMEDOUT, -ECANCELED, -EBUSY, or resolve's error
 *
 * The pool has a fixed number of threads (sl_runtime_opts.offload_threads,
 * started at the first sl_offload) and a bounded queue of work waiting for
 * one (offload_queue): when the queue is full sl_offload fails at once with
 * -EBUSY, so overload is pushed back to the caller instead of piling up.
 * fn's result comes back to the task's own reactor through its message
 * queue, and the task resumes with it.
 *
 * The task's deadline and cancel end the wait at once, like any wait:
 *  - work that has not started yet is taken off the queue and never runs;
 *  - work that is running cannot be stopped from outside: its interrupt
 *    hook (if any) is called to ask it to stop, and its result, whenever fn
 *    returns, is dropped.
 *
 * OWNERSHIP of `arg`. While the work is queued or running, fn uses arg on
 * another thread: the task must not touch it. When the task resumes with
 * fn's result, arg is the task's again. When the task stops waiting first
 * (deadline, cancel, or the task freed at shutdown), arg is no longer the
 * task's: the pool hands it to opts->abandon(arg, result) once fn has
 * returned or been dropped from the queue (result -ECANCELED then), on the
 * task's reactor. So arg must not live in memory that goes with the task
 * (its state struct) unless the work can never be abandoned; allocate it,
 * and free it in abandon. Without an abandon hook, arg simply is not
 * touched again by the pool.
 *
 * Visible: /debug/tasks shows the task parked on "offload" with the work's
 * name; sl_offload_stats_get (net/ serves it in /metrics) counts queue
 * depth, rejections and wait and run times; sl_runtime_free reports work
 * still running at shutdown. A task parked on offloaded work is not a
 * stall (its reactor runs on) and not a deadlock suspect (a worker will
 * wake it). */
#ifndef SL_OFFLOAD_H
#define SL_OFFLOAD_H
#include <stddef.h>
#include <stdint.h>
#include "sl_runtime.h"
#include "sl_task.h"

/* Runs on a worker thread. Returns a result for the task (>= 0 success, a
 * negative errno failure; SL_PENDING is not a result and becomes -EINVAL).
 * It may block, for as long as it must, but it must return: the runtime
 * waits for running work when it is freed. It must not call sluice's task,
 * channel or context functions (it is on no reactor); sl_reactor_post is
 * allowed. */
typedef int (*sl_offload_fn)(void *arg);

typedef struct sl_offload_opts {
    /* static string: what the task waits for, in /debug/tasks and reports;
     * NULL: the call site's file:line */
    const char *name;
    /* Called when the task stops waiting while fn is running, to ask fn to
     * stop early (sqlite3_interrupt, a flag fn checks, a shutdown(2) of the
     * socket it reads...). It runs on the task's reactor while fn has not
     * yet been recorded as returned (the worker takes no other work until
     * it returns): it must be quick and must not block. NULL: none. */
    void (*interrupt)(void *arg);
    /* Takes arg back when the task stopped waiting before the result came:
     * called once the pool is done with arg, on the task's reactor (at
     * shutdown, on the thread freeing the runtime), with fn's result or
     * -ECANCELED if fn never ran. NULL: nothing is done with arg. */
    void (*abandon)(void *arg, int result);
} sl_offload_opts;

/* The options come last so that a compound literal may be written in place.
 *
 * Queues fn(arg) on the pool of t's runtime and parks t until it returns.
 * t must be the task running on the calling reactor. Final result: fn's
 * result; -ETIMEDOUT if t's deadline came first; the cancel error (usually
 * -ECANCELED) if t was cancelled first (see above for what becomes of the
 * work then). Returns SL_PENDING, or at once without queueing anything:
 * -EBUSY the queue is full (counted as a rejection), -ETIMEDOUT the
 * deadline has passed, the cancel error if t is cancelled, -ENOMEM,
 * -EAGAIN no worker thread could be started, -EINVAL NULL t or fn or t
 * not the running task,
 * -EXDEV t belongs to another thread's reactor, -ENOTSUP t's reactor has no
 * runtime (sl_reactor_new_on) or the runtime's pool is off
 * (offload_threads < 0). When it returns anything but SL_PENDING, arg is
 * still the caller's and no hook is called. Records the caller's file:line
 * for reports. */
#define sl_offload(t, fn, arg, ...) \
    sl_offload_at_((t), (fn), (arg), (__VA_ARGS__), __FILE__, __LINE__)

typedef struct sl_offload_stats {
    int threads;              /* worker threads started (0 before the first sl_offload) */
    int threads_max;          /* the pool's size */
    size_t queued;            /* waiting for a worker now */
    size_t queue_cap;         /* the most that may wait */
    size_t running;           /* running on a worker now */
    uint64_t submitted;       /* accepted by sl_offload */
    uint64_t rejected;        /* refused with -EBUSY (queue full) */
    uint64_t completed;       /* fn returned (its task waiting or not) */
    uint64_t dropped;         /* taken off the queue unstarted: their task gave up */
    uint64_t abandoned;       /* their task gave up while fn ran (result dropped) */
    uint64_t wait_ns;         /* sum over started work of the time queued */
    uint64_t wait_max_ns;
    uint64_t run_ns;          /* sum over completed work of fn's running time */
    uint64_t run_max_ns;
} sl_offload_stats;

/* Starts rt's worker threads now rather than at the first sl_offload, whose
 * caller's step would otherwise pay for creating them (with a large pool,
 * milliseconds: a stall report). Callable from any thread, before or after
 * sl_runtime_run; idempotent. Returns 0; -EINVAL NULL rt; -ENOTSUP the pool
 * is off (offload_threads < 0); -EAGAIN no thread could be started;
 * -ECANCELED the runtime is being freed. */
int sl_offload_start(sl_runtime *rt);

/* Fills `st` with the counters of rt's pool; callable from any thread.
 * Returns 0, or -EINVAL for NULL arguments. A runtime whose pool is off
 * reports zeros. */
int sl_offload_stats_get(sl_runtime *rt, sl_offload_stats *st);

/* private: see the macro */
int sl_offload_at_(sl_task *t, sl_offload_fn fn, void *arg, const sl_offload_opts *opts,
                   const char *file, int line);

#endif
