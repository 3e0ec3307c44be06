/* lock.c: mutex and counting semaphore, FIFO with direct hand-off. */
#include <errno.h>
#include "internal.h"
#include "list.h"

static int lock_check(const sl_task *t, const sl_reactor *r)
{
    if (t->reactor_ != r)
        return -EXDEV;
    return t->cancel_err_;
}

static int park_lock(sl_task *t, sl_wq *q, sl_wait_kind kind, void *obj, uint64_t tag)
{
    t->w_.task = t;
    t->w_.tag = tag;
    sl_wq_push(q, &t->w_);
    int rc = sl__park(t, kind, obj, 0);
    if (rc != SL_PENDING)
        sl_wq_remove(q, &t->w_);
    return rc;
}

/* ---- mutex ---------------------------------------------------------------- */

static void take(sl_mutex *m, sl_task *t, uint64_t tag)
{
    m->holder_ = t;
    m->tag_ = tag;
    m->hnext_ = t->mutexes_;
    t->mutexes_ = m;
}

static void drop(sl_mutex *m, sl_task *t)
{
    sl_mutex **pp = &t->mutexes_;
    while (*pp != m)
        pp = &(*pp)->hnext_;
    *pp = m->hnext_;
    m->hnext_ = NULL;
}

void sl_mutex_init(sl_mutex *m, sl_reactor *r, const char *name, int flags)
{
    *m = (sl_mutex){ .reactor_ = r ? r : sl_reactor_current(), .name_ = name ? name : "",
                     .flags_ = flags };
}

int sl_mutex_trylock(sl_task *t, sl_mutex *m, uint64_t tag)
{
    int rc = lock_check(t, m->reactor_);
    if (rc)
        return rc;
    if (m->holder_)
        return -EBUSY;
    take(m, t, tag);
    return 0;
}

int sl_mutex_lock(sl_task *t, sl_mutex *m, uint64_t tag)
{
    int rc = lock_check(t, m->reactor_);
    if (rc)
        return rc;
    if (!m->holder_) {
        take(m, t, tag);
        return 0;
    }
    if (m->holder_ == t)
        return -EDEADLK;
    /* a waiter of the holder's own trace would wait for itself */
    if ((m->flags_ & SL_MUTEX_LOOP_CHECK) && tag && tag == m->tag_)
        return -EDEADLK;
    return park_lock(t, &m->waiters_, SL_WAIT_MUTEX, m, tag);
}

int sl_mutex_unlock_at_(sl_task *t, sl_mutex *m, const char *file, int line)
{
    if (m->holder_ != t) {
        sl__misuse(m->reactor_, file, line, "unlock of mutex '%s' by task '%s', which does not hold it",
                   m->name_, t ? t->name_ : "(none)");
        return -EPERM;
    }
    drop(m, t);
    sl_waiter *w = sl_wq_pop(&m->waiters_);
    m->holder_ = NULL;
    m->tag_ = 0;
    if (w) {
        take(m, w->task, w->tag);
        sl__wake(w->task, 0);
    }
    return 0;
}

/* A task that ends holding a mutex would block its waiters forever. */
void sl__mutex_release_all(sl_task *t)
{
    while (t->mutexes_) {
        sl_mutex *m = t->mutexes_;
        if (!t->reactor_->tearing_down)   /* a leaked task torn down: reported as a leak already */
            sl__misuse(t->reactor_, t->file_, t->line_, "task '%s' ended holding mutex '%s'; unlocked for it",
                       t->name_, m->name_);
        sl_mutex_unlock_at_(t, m, t->file_, t->line_);
    }
}

void sl__mutex_unpark(sl_task *t)
{
    sl_mutex *m = t->wait_obj_;
    sl_wq_remove(&m->waiters_, &t->w_);
}

sl_task *sl_mutex_holder(const sl_mutex *m, uint64_t *tag)
{
    if (tag)
        *tag = m->tag_;
    return m->holder_;
}

size_t sl_mutex_waiters(const sl_mutex *m) { return m->waiters_.n; }

/* ---- semaphore -------------------------------------------------------------- */

void sl_sem_init(sl_sem *s, sl_reactor *r, const char *name, unsigned permits)
{
    *s = (sl_sem){ .reactor_ = r ? r : sl_reactor_current(), .name_ = name ? name : "",
                   .permits_ = permits, .avail_ = permits };
}

/* The holder is a record for diagnostics that outlives its task (nothing
 * at a task's end knows its semaphores, and a permit is not the task's):
 * kept as (pointer, task id), so an ended holder is told from a later task
 * at its address without touching either (sl_sem_holder). A mutex's holder
 * needs no id: a task's end unlocks its mutexes (sl__mutex_release_all). */
static void sem_take(sl_sem *s, sl_task *t, uint64_t tag)
{
    s->avail_--;
    s->holder_ = t;
    s->holder_id_ = t->id_;
    s->tag_ = tag;
}

int sl_sem_try_acquire(sl_task *t, sl_sem *s, uint64_t tag)
{
    int rc = lock_check(t, s->reactor_);
    if (rc)
        return rc;
    if (!s->avail_)
        return -EBUSY;
    sem_take(s, t, tag);
    return 0;
}

int sl_sem_acquire(sl_task *t, sl_sem *s, uint64_t tag)
{
    int rc = lock_check(t, s->reactor_);
    if (rc)
        return rc;
    if (s->avail_ && !s->waiters_.head) {
        sem_take(s, t, tag);
        return 0;
    }
    return park_lock(t, &s->waiters_, SL_WAIT_SEM, s, tag);
}

int sl_sem_release_at_(sl_task *t, sl_sem *s, const char *file, int line)
{
    if (s->avail_ >= s->permits_) {
        sl__misuse(s->reactor_, file, line, "release of semaphore '%s' beyond its %u permits by task '%s'",
                   s->name_, s->permits_, t ? t->name_ : "(none)");
        return -EOVERFLOW;
    }
    s->avail_++;
    if (s->holder_ && sl__task_is(t, s->holder_, s->holder_id_)) {
        s->holder_ = NULL;
        s->tag_ = 0;
    }
    sl_waiter *w = sl_wq_pop(&s->waiters_);
    if (w) {
        sem_take(s, w->task, w->tag);
        sl__wake(w->task, 0);
    }
    return 0;
}

void sl__sem_unpark(sl_task *t)
{
    sl_sem *s = t->wait_obj_;
    sl_wq_remove(&s->waiters_, &t->w_);
}

unsigned sl_sem_available(const sl_sem *s) { return s->avail_; }
size_t sl_sem_waiters(const sl_sem *s) { return s->waiters_.n; }

sl_task *sl_sem_holder(const sl_sem *s, uint64_t *tag)
{
    bool alive = s->holder_ && sl__task_alive(s->reactor_, s->holder_, s->holder_id_);
    if (tag)
        *tag = alive ? s->tag_ : 0;
    return alive ? s->holder_ : NULL;
}
