/* sl_task.h: stackless tasks, groups, sleep and join.
 *
 * A task is a small struct plus a step function. The step function runs
 * until it has to wait, parks the task on a channel, lock, timer or join, and
 * returns SL_PENDING; the reactor calls it again when the wait is over. The
 * macros below make a step function read as straight-line code:
 *
 *     struct ticker { int i; int rc; };
 *
 *     static int tick(sl_task *t, void *arg) {
 *         struct ticker *s = arg;
 *         SL_BEGIN(t);
 *         for (s->i = 0; s->i < 3; s->i++) {
 *             SL_AWAIT(t, s->rc, sl_sleep(t, 10 * SL_NS_PER_MS));
 *             if (s->rc < 0) SL_RETURN(t, s->rc);   // -ETIMEDOUT, -ECANCELED
 *         }
 *         SL_END(t);                                  // result 0
 *     }
 *
 * RULES. Local variables do NOT survive an SL_AWAIT or SL_YIELD: the C stack
 * is gone when the step function returns. Keep everything that must live
 * across a wait in the task's state struct (`arg`). At most one SL_AWAIT or
 * SL_YIELD per source line (the resume point is named by the line number;
 * two on a line do not compile). Under GCC and Clang a wait may sit inside a
 * `switch` of your own; with other compilers it may not (the task then ends
 * with -EINVAL and a misuse report naming the wait's file:line).
 *
 * Every wait is bounded: a task has a deadline (absolute, sl_now_ns() clock,
 * 0 = none) and can be cancelled. A wait that would last past the deadline
 * ends with -ETIMEDOUT when the deadline comes; once a task is cancelled every
 * wait operation fails with the cancel error (-ECANCELED unless the canceller
 * said otherwise), including the one it is parked in. A wait that can complete
 * at once completes without parking.
 *
 * Ownership: a task is owned by its reactor and freed when it ends, after its
 * state destructor ran. A task spawned `joinable` keeps one more reference for
 * the spawner, who must sl_task_join() it or sl_task_detach() it. */
#ifndef SL_TASK_H
#define SL_TASK_H
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "sl_runtime.h"
#include "sl_time.h"

/* Returned by a wait that parked the task; never a task's final result. */
#define SL_PENDING (-0x7fffff00)

typedef struct sl_task sl_task;
typedef struct sl_group sl_group;

/* A step function: returns SL_PENDING after parking, else the task's final
 * result (>= 0 for success, a negative errno for failure). */
typedef int (*sl_step_fn)(sl_task *t, void *state);

/* ---- protothread macros ------------------------------------------------ */

/* Two implementations, one contract. Under GCC and Clang the resume point
 * is the address of a label (labels as values): SL_BEGIN jumps straight to
 * it, so an SL_AWAIT or SL_YIELD may sit anywhere in the step function,
 * inside a switch of your own included. Elsewhere (or with
 * SL_PROTOTHREAD_SWITCH defined) the resume point is a line number and
 * SL_BEGIN opens a switch on it (Duff's device): a wait inside a switch of
 * your own then cannot be resumed, and the task ends with -EINVAL and a
 * misuse report naming the wait's file:line instead of running on wrongly. */
#define SL_CAT2_(a, b) a##b
#define SL_CAT_(a, b) SL_CAT2_(a, b)
/* The resume point of an ended protothread: SL_BEGIN returns 0 at once. */
#define SL_ENDED_ ((void *)(uintptr_t)1)

/* The switch form (private names: the test suite runs both forms). */
#define SL_BEGIN_SW_(t)                                              \
    switch ((t)->pc_) {                                              \
    default:                                                         \
        return sl_task_lost_resume_((t), __FILE__);                  \
    case 0:
#define SL_SUSPEND_SW_(t)                                            \
        (t)->pc_ = __LINE__;                                         \
        return SL_PENDING;                                           \
    case __LINE__:
#define SL_RETURN_SW_(t, rc) do { (t)->pc_ = -1; return (rc); } while (0)
#define SL_END_SW_(t) case -1:; } (t)->pc_ = -1; return 0
#define SL_RESET_SW_(t) ((void)((t)->pc_ = 0))

/* The labels-as-values form. */
#define SL_BEGIN_LV_(t)                                              \
    {                                                                \
        if ((t)->lc_) {                                              \
            if ((t)->lc_ == SL_ENDED_)                               \
                return 0;                                            \
            goto *(t)->lc_;                                          \
        }                                                            \
        (void)&&sl_top_;   /* a label whose address is taken */     \
    sl_top_:;
/* GCC 12's -Wdangling-pointer takes a label's address for a local's. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define SL_LABEL_STORE_(lhs, label)                                  \
    _Pragma("GCC diagnostic push")                                   \
    _Pragma("GCC diagnostic ignored \"-Wdangling-pointer\"")         \
    lhs = &&label;                                                   \
    _Pragma("GCC diagnostic pop")
#else
#define SL_LABEL_STORE_(lhs, label) lhs = &&label;
#endif
#define SL_SUSPEND_LV_(t)                                            \
        SL_LABEL_STORE_((t)->lc_, SL_CAT_(sl_resume_, __LINE__))     \
        return SL_PENDING;                                           \
    SL_CAT_(sl_resume_, __LINE__):
#define SL_RETURN_LV_(t, rc) do { (t)->lc_ = SL_ENDED_; return (rc); } while (0)
#define SL_END_LV_(t) } (t)->lc_ = SL_ENDED_; return 0
#define SL_RESET_LV_(t) ((void)((t)->lc_ = NULL))

#if (defined(__GNUC__) || defined(__clang__)) && !defined(SL_PROTOTHREAD_SWITCH)
#define SL_BEGIN_ SL_BEGIN_LV_
#define SL_SUSPEND_ SL_SUSPEND_LV_
#define SL_RETURN_ SL_RETURN_LV_
#define SL_END_ SL_END_LV_
#define SL_RESET_ SL_RESET_LV_
#else
#define SL_BEGIN_ SL_BEGIN_SW_
#define SL_SUSPEND_ SL_SUSPEND_SW_
#define SL_RETURN_ SL_RETURN_SW_
#define SL_END_ SL_END_SW_
#define SL_RESET_ SL_RESET_SW_
#endif

#define SL_BEGIN(t) SL_BEGIN_(t)

/* Runs `op` (an expression that may return SL_PENDING); if it parked, returns
 * from the step function and resumes here with the final result. Stores the
 * result in `rc` (an lvalue; a local is fine since it is assigned on resume).
 * An op that completed at once may still yield here (rarely: every 32nd
 * such await looks): when the reactor's turn has run 50 us while messages
 * wait to run or to leave, the task resumes with the op's result on the
 * next turn, after them. The op is done either way (core/reactor.c,
 * sl_task_await_due_). */
#define SL_AWAIT(t, rc, op) SL_AWAIT_AS_(t, rc, op, SL_SUSPEND_)
#define SL_AWAIT_AS_(t, rc, op, suspend)                             \
    do {                                                             \
        int sl_r_ = (op);                                            \
        if (sl_r_ == SL_PENDING ||                                   \
            ((++(t)->awaits_ & 31) == 0 && sl_task_await_due_(t, sl_r_))) { \
            suspend(t)                                               \
            sl_r_ = (t)->wait_result_;                               \
        }                                                            \
        (rc) = sl_r_;                                                \
    } while (0)

/* Goes to the back of the reactor's queue and resumes here on its next turn,
 * after the reactor has polled its sockets, timers and cross-reactor
 * messages (and run what they made ready): a task that yields in a loop
 * slows its reactor but never freezes it. */
#define SL_YIELD(t) SL_YIELD_AS_(t, SL_SUSPEND_)
#define SL_YIELD_AS_(t, suspend)                                     \
    do {                                                             \
        sl_task_yield_(t);                                           \
        suspend(t);                                                  \
    } while (0)

/* Ends the task with result `rc`. */
#define SL_RETURN(t, rc) SL_RETURN_(t, rc)

/* Ends the step function; falling off the end ends the task with 0. */
#define SL_END(t) SL_END_(t)

/* Rewinds t's resume point, so that the next SL_BEGIN starts at the top.
 * For a step that runs protothreads one after another on the same task (a
 * prologue, then a handler), each with its own SL_BEGIN..SL_END: reset
 * between them, never inside one. */
#define SL_RESET(t) SL_RESET_(t)

/* ---- spawning ---------------------------------------------------------- */

typedef struct sl_spawn_opts {
    const char *name;              /* static string, for diagnostics */
    void (*state_free)(void *state); /* runs once after the task ended, when
                                        core is done with it (it may free the
                                        storage of an sl_spawn_mem task) */
    uint64_t deadline;             /* absolute, sl_now_ns() clock; 0 none */
    sl_group *group;               /* spawn into this group (see below) */
    bool joinable;                 /* spawner keeps a reference: join or detach */
} sl_spawn_opts;

/* The options come last so that a compound literal may be written in place
 * (the `...` is that one argument, a pointer or NULL: none, or two, does not
 * compile):
 *     sl_spawn(NULL, fn, st, &t, &(sl_spawn_opts){ .name = "x", .joinable = true });
 *
 * Spawns a task on reactor `r` (NULL: the current reactor), which must be the
 * calling thread's reactor or a reactor that is not running yet. The task
 * becomes ready at once; it first runs after the caller returns to the
 * reactor. `opts` may be NULL. If `out` is not NULL it receives the task
 * (valid until the task ends, or until join/detach for a joinable task).
 * On failure the state destructor is NOT called: the caller still owns state.
 * Returns 0, -ENOMEM, -EINVAL (no reactor, NULL fn, or a group of another
 * reactor or already closed), -EXDEV (r runs on another thread: use
 * sl_spawn_on). Records the caller's file:line as the spawn site. */
#define sl_spawn(r, fn, state, out, ...) \
    sl_spawn_at_((r), (fn), (state), SL_OPTS_(sl_spawn_opts, __VA_ARGS__), (out), NULL, __FILE__, __LINE__)

/* The same, with the caller's storage for the task struct: nothing is
 * allocated. `mem` must stay valid until the task has ended (and, joinable,
 * been joined or detached). */
#define sl_spawn_mem(r, fn, state, mem, ...) \
    sl_spawn_at_((r), (fn), (state), SL_OPTS_(sl_spawn_opts, __VA_ARGS__), NULL, (mem), __FILE__, __LINE__)

/* Spawns a detached task on reactor `r` from any thread, through a
 * cross-reactor message; opts->group and opts->joinable are not allowed.
 * The task is created when `r` drains its messages. If creation fails there
 * the state destructor is called and the failure reported. Returns 0,
 * -ENOMEM or -EINVAL. */
#define sl_spawn_on(r, fn, state, ...) \
    sl_spawn_on_at_((r), (fn), (state), SL_OPTS_(sl_spawn_opts, __VA_ARGS__), __FILE__, __LINE__)

/* ---- waiting ----------------------------------------------------------- */

/* Parks `t` for `ns` nanoseconds (sl_sleep) or until the absolute time `at`
 * (sl_sleep_until). Final result 0 when the time came, -ETIMEDOUT if the
 * task's deadline came first, -ECANCELED (or the cancel error) if cancelled.
 * A time already past returns 0 without parking. */
int sl_sleep(sl_task *t, uint64_t ns);
int sl_sleep_until(sl_task *t, uint64_t at);

/* Waits for joinable task `other` to end. Final result 0 once it has ended:
 * its result is stored in *result (which must live in t's state), and the
 * join releases the spawner's reference (other must not be used again). If
 * the wait ends first (-ETIMEDOUT, -ECANCELED) the reference is kept and the
 * join may be retried. Returns 0 at once if other already ended; -EINVAL if
 * other is not joinable (or already joined or detached) or result is NULL;
 * -EBUSY if another task is joining it; -EDEADLK if t == other; -EXDEV if
 * other lives on another reactor; the cancel error if t is cancelled. */
int sl_task_join(sl_task *t, sl_task *other, int *result);

/* Gives up the spawner's reference of a joinable task: it is freed when it
 * ends. Returns 0 or -EINVAL (not joinable or already joined/detached). */
int sl_task_detach(sl_task *other);

/* ---- waiting on I/O and other things outside core ---------------------- */

/* Parks `t` on something core does not know (a socket, a timer of the
 * caller's): it resumes with `result` when sl_task_unpark(t, result) is
 * called on its reactor, or ends with -ETIMEDOUT at its deadline or with the
 * cancel error. In those two cases on_abort(t, obj, err) runs first (may be
 * NULL), so the operation can be abandoned (its connection closed) before
 * the task runs again. Returns SL_PENDING, or the error that forbids waiting
 * (cancelled, deadline passed) without parking. */
int sl_task_park(sl_task *t, void *obj, void (*on_abort)(sl_task *t, void *obj, int err));

/* sl_task_park, saying what t waits for ("HTTP POST /reserve"): diagnostics
 * (/debug/tasks, deadlock and leak reports) show it as the wait's object.
 * `what` must stay valid until t resumes. Returns as sl_task_park. */
int sl_task_park_as(sl_task *t, void *obj, void (*on_abort)(sl_task *t, void *obj, int err), const char *what);

/* Ends a wait begun with sl_task_park. Returns 0, -EINVAL if t is not parked
 * that way (its wait has already ended), -EXDEV off t's reactor. */
int sl_task_unpark(sl_task *t, int result);

/* ---- deadline and cancellation ---------------------------------------- */

/* Cancels `t`: the wait it is parked in, if any, ends with `err`, and every
 * later wait operation fails with `err`. `err` is a negative errno (0 means
 * -ECANCELED); the first cancel's error is kept. Must be called on t's
 * reactor. Returns 0, -EALREADY if t was already cancelled, -EINVAL if t has
 * ended or err > 0, -EXDEV from another reactor's thread. */
int sl_task_cancel(sl_task *t, int err);

/* Sets t's deadline (absolute, 0 = none) and returns the previous one. A
 * task may narrow its deadline for one wait and restore it afterwards. The
 * new deadline applies to the next wait (not to one it is parked in). */
uint64_t sl_task_set_deadline(sl_task *t, uint64_t deadline);
uint64_t sl_task_deadline(const sl_task *t);

/* The cancel error if `t` was cancelled, else 0. */
int sl_task_cancelled(const sl_task *t);

/* ---- introspection ----------------------------------------------------- */

typedef enum sl_task_status {
    SL_TASK_READY, SL_TASK_RUNNING, SL_TASK_PARKED, SL_TASK_DONE
} sl_task_status;

/* What a parked task waits on. */
typedef enum sl_wait_kind {
    SL_WAIT_NONE, SL_WAIT_SLEEP, SL_WAIT_SEND, SL_WAIT_RECV, SL_WAIT_SELECT,
    SL_WAIT_MUTEX, SL_WAIT_SEM, SL_WAIT_JOIN, SL_WAIT_GROUP, SL_WAIT_REMOTE,
    SL_WAIT_EXTERNAL,
    SL_WAIT_OFFLOAD          /* blocking work on the runtime's pool (sl_offload.h) */
} sl_wait_kind;

typedef struct sl_task_info {
    const char *name;        /* "" if none was given */
    const char *file;        /* spawn site */
    int line;
    sl_task_status status;
    sl_wait_kind wait;       /* SL_WAIT_NONE unless parked */
    const void *wait_obj;    /* the channel, lock, task or group; another reactor's
                              * channel (SL_WAIT_REMOTE) is not to be read: its home may
                              * have freed it (the name is in wait_name) */
    const char *wait_name;   /* that object's name (an offload: the work's), or NULL */
    uint64_t waiting_ns;     /* how long it has been parked */
    uint64_t deadline;       /* 0 none */
    int cancelled;           /* the cancel error, or 0 */
    uint64_t spawned_ns;
} sl_task_info;

/* Fills `info` for `t`. Must be called on t's reactor. */
void sl_task_info_get(const sl_task *t, sl_task_info *info);

/* A short lowercase name for a status or a wait kind ("parked", "recv"). */
const char *sl_task_status_name(sl_task_status s);
const char *sl_wait_kind_name(sl_wait_kind k);

/* The task being run by the calling thread's reactor, or NULL. */
sl_task *sl_task_current(void);
sl_reactor *sl_task_reactor(const sl_task *t);
const char *sl_task_name(const sl_task *t);
/* Renames t; `name` must outlive the task (a static string). */
void sl_task_set_name(sl_task *t, const char *name);

/* Calls fn for every live task of `r` (on r's thread). Stops early and
 * returns fn's value when it is not 0. fn must not spawn or end tasks. */
int sl_reactor_foreach_task(sl_reactor *r, int (*fn)(sl_task *, void *), void *arg);

/* Number of live tasks on `r`. */
size_t sl_reactor_task_count(const sl_reactor *r);

/* An extension slot for the layers above core (context/ binds a task to its
 * context here): one pointer and its operations, both on t's reactor.
 * `ops` is the caller's (static storage: core keeps the pointer); either
 * hook may be NULL, and so may ops. */
typedef struct sl_task_ext_ops {
    /* Runs when the task ends, before its state destructor; the slot is
     * cleared first. */
    void (*on_end)(sl_task *t, void *ext);
    /* Runs when t's deadline ends the wait it is parked in (its timer, at
     * `now`, the clock read that found it due), before that wait ends: so a
     * layer whose own clock-driven state the deadline belongs to (a
     * context's end) can bring it up to date first, and t never wakes to
     * state that is a timer behind. It may end the wait itself
     * (sl_task_cancel(t, ...)); if it does not, the wait ends with
     * -ETIMEDOUT as it would without the hook. Not for a sleep's end, nor
     * for a wait begun after the deadline (it returns -ETIMEDOUT without
     * parking, and nothing runs). */
    void (*on_deadline)(sl_task *t, void *ext, uint64_t now);
} sl_task_ext_ops;

/* Sets t's slot (setting it again replaces it). */
void sl_task_set_ext(sl_task *t, void *ext, const sl_task_ext_ops *ops);
void *sl_task_ext(const sl_task *t);

/* ---- groups (structured concurrency) ----------------------------------- */

/* A group holds the tasks spawned into it (opts.group). sl_group_close()
 * cancels every member and parks the closer until all have ended: no task
 * outlives its group. sl_group_wait() waits for the members to end by
 * themselves. A group lives on one reactor; its storage is the caller's.
 * A group must be closed (and the close finished) before its storage goes. */
void sl_group_init(sl_group *g, sl_reactor *r);

/* Cancels every member with `err` (0: -ECANCELED) without waiting, and stops
 * the group from taking new members. Returns the number of members. */
int sl_group_cancel(sl_group *g, int err);

/* Closes: cancel (as above) and wait until every member has ended. Final
 * result 0. The wait is not cut short by the closer's own deadline or cancel
 * (members are cancelled, and each ends at its next wait). Returns 0 at once
 * if the group is empty; -EBUSY if another task is already waiting on it. */
int sl_group_close(sl_task *t, sl_group *g);

/* Waits until the group is empty without cancelling anyone; bounded by t's
 * deadline and cancel like any wait. Returns 0, SL_PENDING, -EBUSY. */
int sl_group_wait(sl_task *t, sl_group *g);

/* Number of live members. */
size_t sl_group_size(const sl_group *g);

/* ---- private: layout, for _mem storage and the macros ------------------ */

typedef struct sl_waiter {
    struct { struct sl_waiter *prev, *next; } link;   /* on a sl_wq (core/list.h) */
    sl_task *task;               /* NULL for a cross-reactor proxy */
    void *buf;                   /* send: source, recv: destination */
    int idx;                     /* case index in a select */
    int err;                     /* a select case's own result */
    uint64_t tag;                /* a lock waiter's tag */
    uint64_t until;              /* a parked send's element expires then (0 never) */
} sl_waiter;

typedef struct sl_wq { sl_waiter *head, *tail; uint32_t n; } sl_wq;

struct sl_task {
    union {                      /* resume point for the macros: */
        int pc_;                 /* a line (switch form) */
        void *lc_;               /* a label's address (labels as values) */
    };
    int wait_result_;            /* the result an SL_AWAIT resumes with */
    int result_;                 /* here, in what was padding: the room for id_ below */
    sl_task *run_next_;
    struct { sl_task *prev, *next; } link_;    /* the reactor's live tasks, or its zombies (core/list.h) */
    struct { sl_task *prev, *next; } glink_;   /* the group's members */
    sl_reactor *reactor_;
    sl_step_fn step_;
    void *state_;
    void (*state_free_)(void *);
    const char *name_, *file_;
    int line_;
    uint8_t status_, wait_kind_, flags_, refs_;
    int cancel_err_;
    uint32_t heap_idx_;
    /* Never reused (task.c, task ids): what keeps a record of this task
     * beyond its life (a channel's owner, a semaphore's holder) keeps
     * (pointer, id_), so a later task at the same address is not taken for
     * it. In the room two 4-byte holes left (result_ moved up): a task is
     * 296 bytes still, bytes_per_parked_task unchanged. */
    uint64_t id_;
    /* the slot's hooks (sl_task_set_ext): here, between fields that a
     * deadline wake reads anyway (flags_, heap_idx_, wake_at_), not beside
     * ext_, so an unbound task's NULL check costs no cache line of its own */
    const sl_task_ext_ops *ext_ops_;
    uint64_t deadline_;
    uint64_t wake_at_;           /* when the timer of the current wait fires */
    uint64_t wait_since_;
    void *wait_obj_;
    sl_waiter w_;                /* the node for single-object waits */
    sl_task *joiner_;
    sl_group *group_;
    void *ext_;
    struct { struct sl_hold *head, *tail; } holds_;   /* channel ends held (sl_chan_attach; core/list.h) */
    struct sl_mutex *mutexes_;   /* mutexes held */
    void (*abort_)(sl_task *, void *, int);   /* sl_task_park's on_abort */
    uint32_t spins_;             /* polls in a row that found nothing */
    uint32_t awaits_;            /* SL_AWAITs that completed at once: every 32nd looks at the turn */
    uint64_t spawned_ns_;
};

struct sl_group {
    sl_reactor *reactor_;
    struct { sl_task *head, *tail; } members_;   /* by glink_ (core/list.h) */
    size_t size_;
    sl_task *waiter_;
    int closing_;
    int cancel_err_;
};

int sl_spawn_at_(sl_reactor *r, sl_step_fn fn, void *state, const sl_spawn_opts *opts,
                 sl_task **out, sl_task *mem, const char *file, int line);
int sl_spawn_on_at_(sl_reactor *r, sl_step_fn fn, void *state, const sl_spawn_opts *opts,
                    const char *file, int line);
void sl_task_yield_(sl_task *t);
int sl_task_await_due_(sl_task *t, int rc);   /* SL_AWAIT: yield with rc? (core/reactor.c) */
/* The switch form's SL_BEGIN met a resume point it cannot reach: reports
 * the misuse with the wait's file:line; the task ends with -EINVAL. */
int sl_task_lost_resume_(sl_task *t, const char *file);

#endif
