/* sl_diag.h: what the runtime says about itself.
 *
 * Reports are plain text handed to the runtime's report sink (stderr unless
 * sl_runtime_opts.report says otherwise):
 *  - "deadlock": every task of a reactor is parked on channels, locks, joins
 *    or groups of that reactor with no deadline, and nothing else (a timer, a
 *    socket or other event on the base, a cross-reactor operation, a channel
 *    used from another reactor) could wake any of them. Go's "all goroutines
 *    are asleep", as a report rather than a crash. Checked whenever the run
 *    queue drains after a task parked; reported once per episode. A task
 *    waiting on a channel of another reactor is a way out there; when every
 *    task of EVERY reactor is parked with no deadline, cross-reactor waits
 *    included, and nothing else can run, the check across reactors reports
 *    it (each reactor its own tasks) within two deadlock_check_ms periods.
 *  - "leak": at sl_runtime_free()/sl_reactor_free(), each task still alive and
 *    each channel not freed, with the file:line that made it.
 *  - "misuse": a double close, a close or free by a non-owner, an unlock by a
 *    non-holder..., with the caller's file:line. Misuse never crashes: the
 *    operation returns an error as well.
 */
#ifndef SL_DIAG_H
#define SL_DIAG_H
#include <stddef.h>
#include <stdint.h>
#include "sl_runtime.h"
#include "sl_task.h"

typedef struct sl_reactor_stats {
    size_t tasks;                /* live */
    size_t channels;             /* live */
    uint64_t spawned, ended;     /* tasks since start */
    uint64_t steps;              /* step function calls */
    uint64_t msgs;               /* cross-reactor messages run */
    uint64_t wakeups;            /* times the message queue woke the reactor */
    uint64_t deadlocks;          /* deadlock reports */
    uint64_t misuses;            /* misuse reports */
    uint64_t leaks;              /* leaked tasks + channels at free */
    uint64_t stalls;             /* steps that ran past the stall threshold */
    /* Idle spins (sl_runtime_opts.idle_spin_us): times the reactor, with
     * nothing to do right after cross-reactor traffic, polled its message
     * queue instead of sleeping at once, and how many of those polls saw a
     * message arrive (a wake-up saved). */
    uint64_t spins, spin_hits;
    /* Hits run inside the spin (its messages, the tasks they made ready,
     * and a spin again for the answer) without a libevent turn, and the
     * times a spin handed a hit to libevent instead, to let its poll and
     * timers in (at most SL_SPIN_RUN_LEGS legs or 50 us in a row, or a
     * timer due); spin_bounds counts a wake-up's polls that met as many
     * messages in a row too. */
    uint64_t spin_runs, spin_bounds;
    /* sched_yield() calls of the spins and of a wake-up's brief poll
     * (polls after their pauses); spins that saw nothing come and let the
     * reactor sleep; spins left out by the backoff (a spin that took over
     * twice its length); wake-ups by a producer's eventfd write, i.e. the
     * reactor had let go of its queue (docs/core.md, "The slow mode"). */
    uint64_t spin_yields, spin_misses, spin_skips, fd_wakeups;
    /* The runtime's stall watchdog (the same figures on every reactor of
     * it): the times its thread woke (a tick, or a reactor's turn waking it
     * from a park) and parked, every reactor being idle (docs/core.md,
     * "An idle process sleeps"). 0 without a runtime or a watchdog. */
    uint64_t watchdog_wakeups, watchdog_parks;
    /* Spins left out because the reactor's recent spins found nothing
     * (SL_SPIN_EMPTY_MAX of them in a row, then 1, 2, 4 ... up to 256 left
     * out per further empty spin), and the times a message that came
     * within a spin's length of such a skip ended the skipping (docs/
     * core.md, "The ping-pong": the idle spin). */
    uint64_t spin_empty_skips, spin_empty_wakes;
    /* A wake-up's brief poll (after its messages ran, before it lets go of
     * the queue: up to as long as they took, at most 50 us): the polls,
     * those that saw a message come, and the wall time of the polls that
     * saw none (their yields; the first pauses are not timed), which
     * bounds the CPU they cost from above: a yield that let another
     * thread run counts that thread's time too. A wake-up whose messages
     * made a task ready, or with an event due, does not poll and is not
     * counted. */
    uint64_t brief_polls, brief_hits, brief_empty_ns;
} sl_reactor_stats;

/* Empty spins in a row (no message came) before a reactor leaves spins
 * out (reactor.c, miss_adapt). */
#define SL_SPIN_EMPTY_MAX 4
/* The most hits a spin runs in a row before it lets libevent poll (and
 * at most 50 us of them: the bound that binds in a ping-pong, whose legs
 * are ~100-300 ns). 64 cost a ping-pong 7-9 % of its time in libevent
 * turns where legs are short (docs/core.md, "The reactor's share of a
 * leg"). */
#define SL_SPIN_RUN_LEGS 1024

/* Counters of `r`; call on r's thread, or when r is not running. */
void sl_reactor_stats_get(const sl_reactor *r, sl_reactor_stats *st);

/* Writes a one-line description of `t` into buf (always NUL-terminated):
 * name, spawn site, status, what it waits on and for how long. Returns the
 * length it wanted, like snprintf. */
int sl_task_describe(const sl_task *t, char *buf, size_t size);

/* WHY IS IT NOT READY. For a task parked on channels (a send, a receive,
 * a select; also an operation on another reactor's channel), one entry per
 * channel it waits on, saying what it waits for. */
typedef enum sl_why {
    SL_WHY_NONE = 0,       /* not waiting on a channel */
    SL_WHY_EMPTY,          /* receive: nothing buffered, no sender parked */
    SL_WHY_FULL,           /* send: the buffer is full of elements */
    SL_WHY_LENT,           /* send: full only counting the room lent to
                            * senders of other reactors (credit) */
    SL_WHY_NO_RECEIVER,    /* send on a rendezvous channel: no receiver waits */
    SL_WHY_NO_SENDER,      /* receive on a rendezvous channel: no sender waits */
    SL_WHY_CLOSED,         /* receive on a closed, empty channel whose lent
                            * credit is not back yet (elements may still come) */
    SL_WHY_CREDIT,         /* send to another reactor's channel: waits for room lent */
    SL_WHY_REMOTE,         /* another reactor's channel: waits for its answer */
    /* A select's case on another reactor's rendezvous channel, by offer
     * (docs/core.md "Rendezvous cases by offer"): its proxy waits at the
     * home for the other operation, which offers itself to the select */
    SL_WHY_HOME_RECEIVER,  /* send case: waits for a receiver at the home */
    SL_WHY_HOME_SENDER,    /* receive case: waits for a sender at the home */
} sl_why;

typedef struct sl_wait_case {
    const char *chan;      /* the channel's name ("" if none) */
    int op;                /* SL_SEND, SL_RECV, or 0 (a round trip to another reactor;
                            * a receive fed ahead, waiting for a lend, says SL_RECV) */
    sl_why why;
    size_t len, cap;       /* 0 and cap for another reactor's channel (its length is not ours to read) */
    size_t lent;           /* room lent to other reactors' senders */
    bool ends;             /* the channel's ends are declared (sl_chan_attach) ... */
    uint32_t peers;        /* ... and this many holders of the other end */
    const char *peer;      /* the name of one of them, or NULL */
    uint64_t until;        /* a send's element deadline (sl_chan_send_until), 0 none */
} sl_wait_case;

/* Short lowercase words for a reason ("full", "no receiver"). */
const char *sl_why_name(sl_why w);

/* Fills out[0..max) for `t` (on t's reactor) and returns how many channels
 * t waits on: 0 when it is not parked on channels, may exceed max (only
 * max filled). sl_task_describe, /debug/tasks and the deadlock, stall and
 * leak reports show the same. */
int sl_task_why(const sl_task *t, sl_wait_case *out, int max);

/* Runs the deadlock check on `r` now (it also runs by itself). Returns the
 * number of tasks in the reported deadlock, or 0 when there is none. */
int sl_reactor_check_deadlock(sl_reactor *r);

/* Runs the wait-for check on `r` now (it also runs by itself every
 * deadlock_check_ms while some task is parked without a deadline): finds sets
 * of tasks that wait only for each other while other tasks may run. Reports
 * a set once, and applies the runtime's policy (SL_DEADLOCK_CANCEL cancels
 * one of its tasks with -EDEADLK). Returns the size of a newly reported set,
 * or 0. Call on r's thread. */
int sl_reactor_check_waits(sl_reactor *r);

/* Calls fn with each of the last (up to 8) deadlock reports of `r`, oldest
 * first, and when each was made (sl_now_ns clock). Stops when fn returns
 * non-zero and returns that. Call on r's thread. */
int sl_reactor_deadlocks(const sl_reactor *r, int (*fn)(const char *text, uint64_t at_ns, void *arg), void *arg);

/* Hands a report to r's sink (stderr when r is NULL), for the layers above
 * core. sl_report_misuse also counts it as a misuse and prefixes the
 * caller's file:line. */
void sl_report(sl_reactor *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define sl_report_misuse(r, ...) sl__misuse((r), __FILE__, __LINE__, __VA_ARGS__)
void sl__misuse(sl_reactor *r, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Replaces r's report sink (NULL: the process's, sl_diag_set_sink). */
void sl_reactor_set_report(sl_reactor *r, void (*report)(const char *, void *), void *arg);

/* The process's report sink: where the reports of reactors without a sink
 * of their own go (sl_runtime_opts.report NULL), and those made with no
 * reactor. fn NULL: stderr (the default). Serialized with every sink call
 * (see sl_runtime_opts.report), so after it returns no report goes to the
 * previous sink. The log sink (net/sl_log.h) installs one at sl_log_open
 * and removes it at sl_log_close: reports become log lines. */
void sl_diag_set_sink(void (*fn)(const char *text, void *arg), void *arg);

#endif
