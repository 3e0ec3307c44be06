/* sl_runtime.h: runtime, reactors and cross-reactor messages.
 *
 * A runtime starts one reactor per core. A reactor is a thread that owns one
 * libevent event_base, a run queue of ready tasks, a timer heap and whatever
 * the program attaches to its base (sockets, listeners). Nothing is shared
 * between reactors: the only way to make another reactor do something is
 * sl_reactor_post(), a lock-free multi-producer queue drained in batches with
 * one wake-up per batch (the Seastar model).
 *
 *     sl_runtime *rt;
 *     sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 2 });
 *     sl_spawn_on(sl_runtime_reactor(rt, 0), main_task, state, NULL);
 *     sl_runtime_run(rt);            // returns after sl_runtime_stop()
 *     sl_runtime_free(rt);           // reports leaked tasks and channels
 *
 * How a program ends. A server runs until sl_runtime_stop() (a signal, see
 * sl_http_server_handle_signals). A batch program sets .stop_when_done:
 * sl_runtime_run() then returns once every task has ended; with
 * .deadlock_policy = SL_DEADLOCK_STOP a deadlock ends the run too, with
 * -EDEADLK, instead of leaving the process parked forever:
 *
 *     sl_runtime_new(&rt, &(sl_runtime_opts){ .stop_when_done = true,
 *                                             .deadlock_policy = SL_DEADLOCK_STOP });
 *     sl_spawn_on(sl_runtime_reactor(rt, 0), main_task, state, NULL);
 *     int rc = sl_runtime_run(rt);   // 0 when all ended, -EDEADLK
 *     return sl_runtime_free(rt) == 0 && rc == 0 ? 0 : 1;
 *
 * A reactor can also be embedded in an existing libevent program: see
 * sl_reactor_new_on(). */
#ifndef SL_RUNTIME_H
#define SL_RUNTIME_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
typedef struct sl_runtime sl_runtime;
typedef struct sl_reactor sl_reactor;

/* Private, for the macros that take an options pointer last (sl_spawn,
 * sl_chan_new, sl_go): their `...` is that one argument, so that a
 * compound literal, whose braces do not protect its commas from the
 * preprocessor, can be written in place. SL_OPTS_ yields the argument as a
 * `const type *`, and stops the compilation with the message below when it
 * is missing or when there are more than one: `sl_spawn_on(r, fn, st, &t,
 * &opts)` would otherwise pass the comma expression `(&t, &opts)` and never
 * set t. (The statement expression holds only the assertion: the argument
 * itself, perhaps a compound literal, stays in the caller's block.) */
#define SL_OPTS_(type, ...)                                                                 \
    (__extension__({ _Static_assert(sizeof((const type *[]){ __VA_ARGS__ }) == sizeof(const type *), \
                                    "the options: exactly one argument, a pointer to " #type " or NULL"); }), \
     (const type *[]){ __VA_ARGS__ }[0])

/* A cross-reactor message. sl_reactor_post() allocates one; the _mem twin
 * takes the caller's, which must stay valid until `fn` has run. */
typedef struct sl_msg {
    struct sl_msg *_Atomic next_;   /* private */
    void (*fn)(void *arg);
    void *arg;
    bool heap_;                     /* private: freed after fn runs */
} sl_msg;

/* What the runtime does about a deadlock it finds (sl_diag.h). */
#define SL_DEADLOCK_REPORT 0   /* report it (default) */
#define SL_DEADLOCK_CANCEL 1   /* report it and cancel one of its tasks with -EDEADLK */
#define SL_DEADLOCK_STOP   2   /* report it and stop the runtime: sl_runtime_run()
                                  returns -EDEADLK (an embedded reactor, which has
                                  no runtime to stop, only reports) */

/* sl_runtime_opts.idle_spin_us's default (microseconds): about what the
 * wake-up of a sleeping reactor costs on a VM (docs/core.md, "Across
 * reactors", has the measurement). */
#define SL_IDLE_SPIN_US_DEFAULT 20

typedef struct sl_runtime_opts {
    int threads;          /* reactors; <= 0: sl_cpus_usable() */
    bool pin_cpus;        /* pin reactor i to CPU i % online CPUs */
    int deadlock_policy;  /* SL_DEADLOCK_REPORT, _CANCEL or _STOP */
    /* sl_runtime_run() returns once no task is left on any reactor (a task
     * posted with sl_spawn_on counts from the call): the shape of a batch
     * program or a test. A server's listeners and connections are not
     * tasks: leave it false there and stop on a signal. */
    bool stop_when_done;
    int deadlock_check_ms;/* period of the wait-for check and of the check
                           * across reactors; 0: 250, < 0: off */
    /* A step running longer is a stall; 0: 10, < 0: off. While it is on,
     * sl_runtime_run installs (sigaction, SA_RESTART) a handler for the
     * real-time signal SIGRTMIN+4, which the watchdog thread sends to a
     * stalled reactor's thread to take its backtrace; the reactor threads
     * run with it unblocked. The handler stays installed after run
     * returns. A program that keeps the watchdog on must not use
     * SIGRTMIN+4 itself (no handler, timer or sigqueue of its own: the
     * last sigaction wins and stall reports lose their backtrace, or the
     * watchdog's handler swallows the program's own), and should not block
     * it on the thread that calls sl_runtime_run (reactor 0 runs there:
     * its stalls would be reported without a backtrace). */
    int stall_ms;
    unsigned spin_limit;  /* empty polls in a row that make a busy-poll report; 0: 10000 */
    int offload_threads;  /* worker threads for blocking calls (sl_offload.h), started at
                             the first sl_offload; 0: 4, < 0: no pool */
    int offload_queue;    /* offloaded calls that may wait for a worker; beyond: -EBUSY; <= 0: 256 */
    /* IDLE SPIN. A reactor left with nothing to do right after traffic with
     * another reactor (it posted or ran a cross-reactor message in the
     * callback that just ended) polls its message queue for up to this many
     * microseconds before it sleeps in epoll: the answer of a peer that is
     * busy on another core then arrives without an eventfd write and the
     * wake-up of a sleeping thread (tens of microseconds on a VM: most of a
     * cross-reactor round trip). A reactor without such traffic never spins,
     * so an idle server stays idle; the cost is at most this much CPU per
     * burst of cross-reactor traffic. It polls with sched_yield(), so a
     * thread queued on the same CPU still runs. 0: SL_IDLE_SPIN_US_DEFAULT;
     * < 0: never spin. Counted in sl_reactor_stats.spins and spin_hits. */
    int idle_spin_us;
    /* Where reports (deadlock, leaks, misuse, stalls) go; NULL: the
     * process's sink (sl_diag_set_sink: stderr unless the log sink is open).
     * Calls are serialized across the whole process: the sink is never
     * entered twice at once, so it need not be thread-safe. It is called on
     * the reporting reactor's thread, except for stall reports, which come
     * from the stall watchdog's thread (the stalled reactor cannot run
     * anything); if a sink call holds the lock for over a second meanwhile,
     * the stall report goes to stderr instead. */
    void (*report)(const char *text, void *arg);
    void *report_arg;
} sl_runtime_opts;

/* Creates a runtime with its reactors (threads are started by run). `opts`
 * may be NULL. Returns 0, -ENOMEM, or -EINVAL if opts->threads > 1024 or
 * opts->deadlock_policy is none of the three. */
int sl_runtime_new(sl_runtime **out, const sl_runtime_opts *opts);

/* Runs every reactor: reactor 0 on the calling thread, the others on threads
 * of their own, with all signals blocked so that the calling thread receives
 * them. Blocks until sl_runtime_stop() (or, with opts.stop_when_done, until
 * the last task has ended, at once if there is none) and returns after every
 * reactor has stopped. Returns 0, -EDEADLK if the SL_DEADLOCK_STOP policy
 * stopped it, -EALREADY if the runtime is running or has run, -ENOMEM, or
 * -EAGAIN if a thread could not be started. */
int sl_runtime_run(sl_runtime *rt);

/* Asks every reactor to stop after its current callback. Callable from any
 * thread and from a signal handler (it only stores a flag and writes to an
 * eventfd). Idempotent. Tasks still alive stay alive until sl_runtime_free(). */
void sl_runtime_stop(sl_runtime *rt);

/* Frees the runtime. Every task still alive is reported as leaked (name,
 * spawn site, what it waits on and for how long) and then freed, its state
 * destructor called; every channel not freed by its owner is reported.
 * Offloaded work still running (sl_offload.h) is reported, interrupted and
 * waited for (it must return), and its arg handed to its abandon hook. Must
 * not be called while sl_runtime_run() is running. Returns the number of
 * leaked tasks plus leaked channels plus offloaded work still running (0
 * for a clean shutdown). */
int sl_runtime_free(sl_runtime *rt);

/* The CPUs this process may use: its affinity mask (sched_getaffinity:
 * taskset, cpusets), capped by the cgroup v2 CPU quota of its cgroup or
 * any above it (cpu.max: docker --cpus, a Kubernetes CPU limit), rounded
 * up; at least 1. The default number of reactors. */
int sl_cpus_usable(void);

/* The number of reactors, and reactor `i` (NULL when out of range). */
int sl_runtime_threads(const sl_runtime *rt);
sl_reactor *sl_runtime_reactor(sl_runtime *rt, int i);

/* The reactor that runs on the calling thread, or NULL outside reactors.
 * (Inline: contexts and channels ask on every operation.) */
extern __thread __attribute__((tls_model("initial-exec"))) sl_reactor *sl__tl_reactor;
static inline sl_reactor *sl_reactor_current(void) { return sl__tl_reactor; }

/* Runs r's ready tasks now instead of later in this loop iteration: for an
 * I/O callback of the embedding code (a plain libevent event on r's base)
 * whose tasks should answer before the next socket is read. The HTTP
 * server calls it after parsing a socket's requests, so a request that can
 * be answered at once goes out before the next connection is read, as in
 * a server without tasks. Does nothing off r's thread or from inside a
 * task or a sluice callback (it never nests). */
void sl_reactor_run_ready(sl_reactor *r);

/* Calls fn(r) once, at the end of r's current turn: when the ready tasks
 * have run, before r waits for events again (a turn is scheduled if none
 * is coming). For work cheaper done once per turn than once per call, or
 * not at all for what is made and freed within the turn: context/ arms a
 * deadline's timer this way, so a request answered at once never costs
 * one; the services' store wakes its writer thread this way, once for
 * every write step the turn queued. fn may ask again (it then runs at the
 * end of the next turn). Up to SL_TURN_END_MAX different fns wait per
 * reactor, called in the order asked; asking again for one that waits is
 * a no-op. Call on r's thread. Returns 0; -EINVAL for NULL r or fn or off
 * r's thread; -EBUSY if SL_TURN_END_MAX different fns are waiting. */
#define SL_TURN_END_MAX 4
int sl_reactor_at_turn_end(sl_reactor *r, void (*fn)(sl_reactor *r));

/* The reactor's index in its runtime (0 for an embedded reactor), its
 * event_base (to add sockets and events to) and its runtime (NULL if
 * embedded). */
int sl_reactor_id(const sl_reactor *r);
struct event_base *sl_reactor_base(sl_reactor *r);
sl_runtime *sl_reactor_runtime(sl_reactor *r);

/* Embedding: creates a reactor that runs on the caller's event_base and
 * thread; it runs whenever the caller runs that base. `opts` may be NULL
 * (only `report` is used). The caller frees it with sl_reactor_free() before
 * freeing the base. Returns 0, -ENOMEM or -EINVAL (NULL base). */
int sl_reactor_new_on(sl_reactor **out, struct event_base *base,
                      const sl_runtime_opts *opts);

/* Frees an embedded reactor, reporting and freeing what is still alive like
 * sl_runtime_free(). Returns the count of leaks, or -EINVAL for a reactor that
 * belongs to a runtime. */
int sl_reactor_free(sl_reactor *r);

/* Runs fn(arg) on reactor `r`, from any thread (including r's own, where it
 * runs later, not inline). Messages from one thread run in the order they
 * were posted. Returns 0 or -ENOMEM. */
int sl_reactor_post(sl_reactor *r, void (*fn)(void *), void *arg);

/* The same with the caller's storage for the message: nothing is allocated.
 * `m` must stay valid and untouched until fn has started. Returns 0. */
int sl_reactor_post_mem(sl_reactor *r, sl_msg *m, void (*fn)(void *), void *arg);

#endif
