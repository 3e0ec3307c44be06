/* task.c: spawning, running, parking, waking and ending tasks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "list.h"
#include "sl_trace.h"

/* ---- spawning ----------------------------------------------------------- */

/* Task ids. A task's address is reused by the next one (malloc's free
 * lists, sl_spawn_mem), so a pointer kept past a task's end (a channel's
 * owner) would name the new task. An id is never reused: each reactor
 * takes a block of SL_TASK_ID_BLOCK ids from the process-wide counter
 * when its block is used up (one atomic per million spawns, not one per
 * spawn on a line that every reactor writes), and 2^64 ids do not run
 * out. 0 is no task's: the first block starts past it. */
#define SL_TASK_ID_BLOCK ((uint64_t)1 << 20)
static uint64_t task_id_blocks = SL_TASK_ID_BLOCK;

static uint64_t task_id_next(sl_reactor *r)
{
    if (!(r->task_ids & (SL_TASK_ID_BLOCK - 1)))
        r->task_ids = __atomic_fetch_add(&task_id_blocks, SL_TASK_ID_BLOCK, __ATOMIC_RELAXED);
    return r->task_ids++;
}

bool sl__task_alive(sl_reactor *r, const sl_task *t, uint64_t id)
{
    for (const sl_task *x = r->tasks.head; x; x = x->link_.next)
        if (x == t && x->id_ == id)
            return true;
    return false;
}

int sl_spawn_at_(sl_reactor *r, sl_step_fn fn, void *state, const sl_spawn_opts *opts,
                 sl_task **out, sl_task *mem, const char *file, int line)
{
    if (!r)
        r = sl_reactor_current();
    if (!r || !fn)
        return -EINVAL;
    if (!sl__on_reactor(r))
        return -EXDEV;
    sl_group *g = opts ? opts->group : NULL;
    if (g && (g->reactor_ != r || g->closing_))
        return -EINVAL;
    if (g && opts->joinable)
        return -EINVAL;
    sl_task *t = mem ? mem : malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    memset(t, 0, sizeof *t);
    t->reactor_ = r;
    t->step_ = fn;
    t->state_ = state;
    t->file_ = file;
    t->line_ = line;
    t->name_ = "";
    t->refs_ = 1;
    t->flags_ = mem ? SL_TF_MEM : 0;
    t->id_ = task_id_next(r);
    t->spawned_ns_ = sl_now_coarse_ns();   /* diagnostics: a TSC read per spawn is not worth it */
    if (opts) {
        if (opts->name)
            t->name_ = opts->name;
        t->state_free_ = opts->state_free;
        t->deadline_ = opts->deadline;
        if (opts->joinable) {
            t->flags_ |= SL_TF_JOINABLE;
            t->refs_ = 2;
        }
    }
    SL_LIST_PUSH_FRONT(&r->tasks, t, link_);
    r->ntasks++;
    r->st.spawned++;
    sl__live_add(r->rt);
    if (g) {
        t->group_ = g;
        SL_LIST_PUSH_FRONT(&g->members_, t, glink_);
        g->size_++;
    }
    if (out)
        *out = t;
    sl__ready(t);
    return 0;
}

typedef struct remote_spawn {
    sl_reactor *r;
    sl_step_fn fn;
    void *state;
    sl_spawn_opts opts;
    const char *file;
    int line;
} remote_spawn;

static void spawn_here(void *arg)
{
    remote_spawn *rs = arg;
    int rc = sl_spawn_at_(rs->r, rs->fn, rs->state, &rs->opts, NULL, NULL, rs->file, rs->line);
    sl__live_sub(rs->r->rt);   /* the post's count: the task counts itself now */
    if (rc < 0) {
        sl__report(rs->r, "sluice: task spawned at %s:%d could not start on reactor %d: %s",
                   rs->file, rs->line, rs->r->id, strerror(-rc));
        if (rs->opts.state_free)
            rs->opts.state_free(rs->state);
    }
    free(rs);
}

int sl_spawn_on_at_(sl_reactor *r, sl_step_fn fn, void *state, const sl_spawn_opts *opts,
                    const char *file, int line)
{
    if (!r || !fn || (opts && (opts->group || opts->joinable)))
        return -EINVAL;
    remote_spawn *rs = calloc(1, sizeof *rs);
    if (!rs)
        return -ENOMEM;
    *rs = (remote_spawn){ r, fn, state, opts ? *opts : (sl_spawn_opts){ 0 }, file, line };
    /* counted from now: the runtime must not stop before the task exists */
    sl__live_add(r->rt);
    int rc = sl_reactor_post(r, spawn_here, rs);
    if (rc < 0) {
        free(rs);
        sl__live_sub(r->rt);
    }
    return rc;
}

/* ---- running and ending ------------------------------------------------- */

static void unlink_task(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    SL_LIST_REMOVE(&r->tasks, t, link_);
    r->ntasks--;
    if (!r->tearing_down)
        sl__live_sub(r->rt);
}

/* Drops a reference. An ended task that its spawner may still join waits in
 * the reactor's zombie list, so that shutdown can report and free it. */
static void release(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    if (--t->refs_ == 0) {
        if (t->flags_ & SL_TF_ZOMBIE)
            SL_LIST_REMOVE(&r->zombies, t, link_);
        if (!(t->flags_ & SL_TF_MEM))
            free(t);
        return;
    }
    if (t->status_ == SL_TASK_DONE && !(t->flags_ & SL_TF_ZOMBIE)) {
        t->flags_ |= SL_TF_ZOMBIE;
        SL_LIST_PUSH_FRONT(&r->zombies, t, link_);
    }
}

int sl__free_zombies(sl_reactor *r)
{
    int n = 0;
    while (r->zombies.head) {
        sl_task *t = r->zombies.head;
        sl__report(r, "sluice: leak: joinable task '%s' (spawned at %s:%d) ended with %d but was never joined or detached",
                   t->name_, t->file_, t->line_, t->result_);
        sl_task_detach(t);
        n++;
    }
    return n;
}

/* Everything a task owns goes when it ends: its hold on channel ends, its
 * group membership, its joiner's wait, its state. */
static void task_end(sl_task *t, int rc)
{
    sl_reactor *r = t->reactor_;
    t->status_ = SL_TASK_DONE;
    t->result_ = rc;
    if (t->ext_ops_) {
        const sl_task_ext_ops *ops = t->ext_ops_;
        t->ext_ops_ = NULL;
        if (ops->on_end)
            ops->on_end(t, t->ext_);
    }
    sl__chan_release_holds(t);
    if (t->mutexes_)
        sl__mutex_release_all(t);
    /* the state goes last, when core no longer touches t: a state may hold
     * the task's own storage (sl_spawn_mem) and free it */
    void (*state_free)(void *) = t->state_free_;
    void *state = t->state_;
    t->state_free_ = NULL;
    unlink_task(t);
    r->st.ended++;
    if (t->group_)
        sl__group_leave(t);
    if (t->joiner_) {
        sl_task *j = t->joiner_;
        t->joiner_ = NULL;
        *(int *)j->w_.buf = rc;
        sl__wake(j, 0);
        t->flags_ &= (uint8_t)~SL_TF_JOINABLE;
        t->refs_--;   /* the joiner's reference, consumed by the join */
    }
    release(t);
    if (state_free)
        state_free(state);
}

void sl__run_task(sl_task *t)
{
    sl_reactor *r = t->reactor_;
    r->current = t;
    t->status_ = SL_TASK_RUNNING;
    r->st.steps++;
    sl__step_mark(r);
    uint64_t start = sl__tracing(r) ? sl_now_ns() : 0;
    int rc = t->step_(t, t->state_);
    if (start)
        sl__trace_step(r, t, start);
    sl__step_mark(r);
    r->current = NULL;
    if (rc != SL_PENDING) {
        task_end(t, rc);
    } else if (t->status_ == SL_TASK_RUNNING) {
        sl__misuse(r, t->file_, t->line_,
                   "task '%s' returned SL_PENDING without waiting on anything; ended with -EINVAL",
                   t->name_);
        task_end(t, -EINVAL);
    }
}

/* Used at shutdown for tasks that never ended. */
void sl__task_destroy(sl_task *t, bool leaked)
{
    (void)leaked;
    if (t->status_ == SL_TASK_PARKED)
        sl__unpark(t);
    if (t->heap_idx_)
        sl_heap_remove(&t->reactor_->heap, t);
    if (t->flags_ & SL_TF_BLOCKED) {
        t->flags_ &= (uint8_t)~SL_TF_BLOCKED;
        t->reactor_->blocked--;
    }
    t->joiner_ = NULL;
    /* a leaked joinable task is never joined now: drop that reference too */
    if (t->flags_ & SL_TF_JOINABLE) {
        t->flags_ &= (uint8_t)~SL_TF_JOINABLE;
        t->refs_--;
    }
    task_end(t, -ECANCELED);
}

/* ---- parking and waking ------------------------------------------------- */

static void external_unpark(sl_task *t, int err);

int sl__park(sl_task *t, sl_wait_kind kind, void *obj, uint64_t until)
{
    if (t->cancel_err_)
        return t->cancel_err_;
    sl_reactor *r = t->reactor_;
    uint64_t at = until;
    bool timer_ok = until != 0;
    if (t->deadline_ && (!at || t->deadline_ <= at)) {
        at = t->deadline_;
        timer_ok = false;
    }
    /* the exact clock only when a timer is involved; the wait's start is for
     * diagnostics, and the reactor's coarse clock does for that */
    uint64_t now = at ? sl_now_ns() : r->now;
    /* a wait-specific end is a sleep's (success) or an element's deadline */
    if (at && now >= at)
        return timer_ok && kind == SL_WAIT_SLEEP ? 0 : -ETIMEDOUT;
    t->spins_ = 0;
    if (sl__tracing(r) && kind != SL_WAIT_SLEEP)
        sl_trace_instant(r, "wait", sl_wait_kind_name(kind), t->name_);
    t->status_ = SL_TASK_PARKED;
    t->wait_kind_ = (uint8_t)kind;
    t->wait_obj_ = obj;
    t->wait_since_ = now;
    if (at) {
        t->wake_at_ = at;
        if (timer_ok)
            t->flags_ |= SL_TF_TIMER_OK;
        else
            t->flags_ &= (uint8_t)~SL_TF_TIMER_OK;
        if (sl_heap_push(&r->heap, t) < 0) {
            t->status_ = SL_TASK_RUNNING;
            t->wait_kind_ = SL_WAIT_NONE;
            return -ENOMEM;
        }
        if (t->heap_idx_ == 1 && (!r->timer_at || at < r->timer_at))
            sl__timer_rearm(r);
    } else if (kind != SL_WAIT_REMOTE && kind != SL_WAIT_EXTERNAL && kind != SL_WAIT_OFFLOAD) {
        t->flags_ |= SL_TF_BLOCKED;
        r->blocked++;
        r->check_deadlock = true;
        if (!r->wg_armed)
            sl__watch_blocked(r);
    } else if (kind == SL_WAIT_REMOTE && !r->wg_armed) {
        sl__watch_blocked(r);   /* the all-asleep check across reactors looks then */
    }
    return SL_PENDING;
}

void sl__wake(sl_task *t, int result)
{
    sl_reactor *r = t->reactor_;
    if (t->heap_idx_)
        sl_heap_remove(&r->heap, t);
    if (t->flags_ & SL_TF_BLOCKED) {
        t->flags_ &= (uint8_t)~SL_TF_BLOCKED;
        r->blocked--;
        r->deadlock_reported = false;
    }
    t->flags_ &= (uint8_t)~SL_TF_REPORTED;
    if (sl__tracing(r) && t->wait_kind_ != SL_WAIT_SLEEP)
        sl_trace_instant(r, "wake", result == -ETIMEDOUT ? "deadline" : result < 0 && result != -EPIPE ? "cancelled" : "unblock",
                         t->name_);
    t->wait_kind_ = SL_WAIT_NONE;
    t->wait_obj_ = NULL;
    t->wait_result_ = result;
    sl__ready(t);
}

void sl__unpark(sl_task *t)
{
    switch ((sl_wait_kind)t->wait_kind_) {
    case SL_WAIT_SEND:
    case SL_WAIT_RECV:   sl__chan_unpark(t); break;
    case SL_WAIT_SELECT: sl__select_unpark(t); break;
    case SL_WAIT_MUTEX:  sl__mutex_unpark(t); break;
    case SL_WAIT_SEM:    sl__sem_unpark(t); break;
    case SL_WAIT_JOIN:   sl__join_unpark(t); break;
    case SL_WAIT_GROUP:  sl__group_unpark(t); break;
    case SL_WAIT_REMOTE:
        if (sl__rsend_parked(t))
            sl__rsend_unpark(t);
        else if (sl__rrecv_parked(t))
            sl__rrecv_unpark(t);
        else
            sl__remote_unpark(t);
        break;
    case SL_WAIT_EXTERNAL:
    case SL_WAIT_OFFLOAD: external_unpark(t, -ECANCELED); break;
    default: break;
    }
}

/* Ends t's wait early with `err` (timeout or cancel). A cross-reactor wait
 * cannot end here and now: the operation may be completing on the other
 * reactor, so it is withdrawn there first and t wakes when that answers. */
static void abort_wait(sl_task *t, int err)
{
    if (t->wait_kind_ == SL_WAIT_REMOTE && !sl__remote_local(t)) {
        if (t->heap_idx_)
            sl_heap_remove(&t->reactor_->heap, t);
        t->w_.err = err;
        sl__remote_unpark(t);
        return;
    }
    if (t->wait_kind_ == SL_WAIT_EXTERNAL || t->wait_kind_ == SL_WAIT_OFFLOAD)
        external_unpark(t, err);
    else
        sl__unpark(t);
    sl__wake(t, err);
}

void sl__timer_fire(sl_reactor *r, uint64_t now)
{
    sl_task *t;
    while ((t = sl_heap_top(&r->heap)) && t->wake_at_ <= now) {
        if (t->flags_ & SL_TF_TIMER_OK) {
            /* not a sleep: a parked send whose element expired (chan.c, rsend.c) */
            int rc = t->wait_kind_ == SL_WAIT_SLEEP ? 0 : -ETIMEDOUT;
            sl__unpark(t);
            sl__wake(t, rc);
            continue;
        }
        /* The deadline. A layer above may keep state of its own that the
         * same instant ends by another timer (a context's), and nothing
         * orders two timers due together: its hook brings that state up to
         * date first (ending the context cancels t, which ends this wait
         * and takes t off the heap). An unbound task pays this NULL check. */
        if (t->ext_ops_ && t->ext_ops_->on_deadline) {
            t->ext_ops_->on_deadline(t, t->ext_, now);
            /* t cannot have run in between (tasks run from the queue), so
             * still on the heap means still in this wait: end it as usual */
            if (!t->heap_idx_)
                continue;
        }
        abort_wait(t, -ETIMEDOUT);
    }
}

int sl_task_lost_resume_(sl_task *t, const char *file)
{
    if (t->pc_ == -1)
        return 0;   /* an ended protothread, entered again: nothing to run */
    sl__misuse(t->reactor_, file, t->pc_,
               "task '%s' (spawned at %s:%d) cannot resume here: this wait sits inside a switch "
               "of the step function's own, which the switch form of SL_BEGIN cannot reach "
               "(build with GCC or Clang, or move the wait out of the switch); ended with -EINVAL",
               t->name_, t->file_, t->line_);
    t->pc_ = -1;
    return -EINVAL;
}

void sl_task_yield_(sl_task *t)
{
    sl__spin(t);
    sl__yield(t);
}

/* ---- external waits --------------------------------------------------------- */

int sl_task_park(sl_task *t, void *obj, void (*on_abort)(sl_task *, void *, int))
{
    return sl_task_park_as(t, obj, on_abort, NULL);
}

/* An external wait leaves t->w_ unused: its buf holds the description. */
int sl__park_external(sl_task *t, sl_wait_kind kind, void *obj,
                      void (*on_abort)(sl_task *, void *, int), const char *what)
{
    int rc = sl__park(t, kind, obj, 0);
    if (rc == SL_PENDING) {
        t->abort_ = on_abort;
        t->w_.buf = (void *)(uintptr_t)what;
    }
    return rc;
}

int sl_task_park_as(sl_task *t, void *obj, void (*on_abort)(sl_task *, void *, int), const char *what)
{
    return sl__park_external(t, SL_WAIT_EXTERNAL, obj, on_abort, what);
}

void sl__park_undo(sl_task *t)
{
    if (t->heap_idx_)
        sl_heap_remove(&t->reactor_->heap, t);
    t->abort_ = NULL;
    t->w_.buf = NULL;
    t->wait_kind_ = SL_WAIT_NONE;
    t->wait_obj_ = NULL;
    t->status_ = SL_TASK_RUNNING;
}

void sl__external_wake(sl_task *t, int result)
{
    t->abort_ = NULL;
    sl__wake(t, result);
}

int sl_task_unpark(sl_task *t, int result)
{
    if (!sl__on_reactor(t->reactor_))
        return -EXDEV;
    if (t->status_ != SL_TASK_PARKED || t->wait_kind_ != SL_WAIT_EXTERNAL)
        return -EINVAL;
    t->abort_ = NULL;
    sl__wake(t, result);
    return 0;
}

static void external_unpark(sl_task *t, int err)
{
    void (*f)(sl_task *, void *, int) = t->abort_;
    t->abort_ = NULL;
    if (f)
        f(t, t->wait_obj_, err);
}

/* ---- waits of task.c's own ---------------------------------------------- */

int sl_sleep_until(sl_task *t, uint64_t at)
{
    if (t->cancel_err_)
        return t->cancel_err_;
    if (at <= sl_now_ns())
        return 0;
    return sl__park(t, SL_WAIT_SLEEP, NULL, at);
}

int sl_sleep(sl_task *t, uint64_t ns)
{
    return sl_sleep_until(t, sl_now_ns() + ns);
}

int sl_task_join(sl_task *t, sl_task *other, int *result)
{
    if (!other || !result || !(other->flags_ & SL_TF_JOINABLE))
        return -EINVAL;
    if (t == other)
        return -EDEADLK;
    if (other->reactor_ != t->reactor_)
        return -EXDEV;
    if (other->joiner_)
        return -EBUSY;
    if (t->cancel_err_)
        return t->cancel_err_;
    if (other->status_ == SL_TASK_DONE) {
        *result = other->result_;
        other->flags_ &= (uint8_t)~SL_TF_JOINABLE;
        release(other);
        return 0;
    }
    t->w_.buf = result;
    other->joiner_ = t;
    int rc = sl__park(t, SL_WAIT_JOIN, other, 0);
    if (rc != SL_PENDING)
        other->joiner_ = NULL;
    return rc;
}

void sl__join_unpark(sl_task *t)
{
    sl_task *other = t->wait_obj_;
    if (other && other->joiner_ == t)
        other->joiner_ = NULL;
}

int sl_task_detach(sl_task *other)
{
    if (!other || !(other->flags_ & SL_TF_JOINABLE) || other->joiner_)
        return -EINVAL;
    other->flags_ &= (uint8_t)~SL_TF_JOINABLE;
    release(other);
    return 0;
}

/* ---- deadline and cancel ------------------------------------------------ */

int sl_task_cancel(sl_task *t, int err)
{
    if (!t || err > 0 || t->status_ == SL_TASK_DONE)
        return -EINVAL;
    if (!sl__on_reactor(t->reactor_))
        return -EXDEV;
    if (t->cancel_err_)
        return -EALREADY;
    t->cancel_err_ = err ? err : -ECANCELED;
    t->flags_ |= SL_TF_CANCELLED;
    if (sl__tracing(t->reactor_)) {
        char d[48];
        snprintf(d, sizeof d, "%s: %s", t->name_, strerror(-t->cancel_err_));
        sl_trace_instant(t->reactor_, "cancel", "cancel", d);
    }
    if (t->status_ != SL_TASK_PARKED)
        return 0;
    /* a closing group's closer waits for its members whatever happens */
    if (t->wait_kind_ == SL_WAIT_GROUP && ((sl_group *)t->wait_obj_)->closing_)
        return 0;
    abort_wait(t, t->cancel_err_);
    return 0;
}

uint64_t sl_task_set_deadline(sl_task *t, uint64_t deadline)
{
    uint64_t old = t->deadline_;
    t->deadline_ = deadline;
    return old;
}

uint64_t sl_task_deadline(const sl_task *t) { return t->deadline_; }
int sl_task_cancelled(const sl_task *t) { return t->cancel_err_; }

/* ---- introspection ------------------------------------------------------ */

sl_task *sl_task_current(void)
{
    sl_reactor *r = sl_reactor_current();
    return r ? r->current : NULL;
}

sl_reactor *sl_task_reactor(const sl_task *t) { return t->reactor_; }
const char *sl_task_name(const sl_task *t) { return t->name_; }
void sl_task_set_name(sl_task *t, const char *name) { t->name_ = name ? name : ""; }

void sl_task_set_ext(sl_task *t, void *ext, const sl_task_ext_ops *ops)
{
    t->ext_ = ext;
    t->ext_ops_ = ops;
}

void *sl_task_ext(const sl_task *t) { return t->ext_; }

int sl_reactor_foreach_task(sl_reactor *r, int (*fn)(sl_task *, void *), void *arg)
{
    for (sl_task *t = r->tasks.head, *next; t; t = next) {
        next = t->link_.next;
        int rc = fn(t, arg);
        if (rc)
            return rc;
    }
    return 0;
}
