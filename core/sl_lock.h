/* sl_lock.h: a mutex and a counting semaphore for tasks.
 *
 * Acquiring parks the task, FIFO, bounded by its deadline and cancel like
 * every wait. On release the lock is handed to the first waiter directly, so
 * no later arrival can barge in. Each holder is recorded with a caller-given
 * 64-bit tag (the services use the request's trace-id) so diagnostics can say
 * who holds what, and so a mutex created with SL_MUTEX_LOOP_CHECK can refuse
 * at once (-EDEADLK) a waiter whose tag equals its holder's: a request that
 * waits for a lock held by its own trace would wait forever.
 *
 * Locks live on one reactor; storage is the caller's (sl_mutex_init). Tasks of
 * other reactors get -EXDEV. */
#ifndef SL_LOCK_H
#define SL_LOCK_H
#include <stdint.h>
#include "sl_task.h"

typedef struct sl_mutex sl_mutex;
typedef struct sl_sem sl_sem;

#define SL_MUTEX_LOOP_CHECK 1   /* same non-zero tag as the holder: -EDEADLK */

/* Initialises a mutex on the current reactor (or `r` if not NULL). `name`
 * (static, may be NULL) is shown by diagnostics. */
void sl_mutex_init(sl_mutex *m, sl_reactor *r, const char *name, int flags);

/* Locks. Returns 0 if it was free, SL_PENDING if parked (final 0, -ETIMEDOUT,
 * -ECANCELED), -EDEADLK if t already holds it or (LOOP_CHECK) a holder with
 * the same non-zero tag does, -EXDEV, or the cancel error. */
int sl_mutex_lock(sl_task *t, sl_mutex *m, uint64_t tag);

/* 0 if it was free and is now t's, -EBUSY if held, -EXDEV. */
int sl_mutex_trylock(sl_task *t, sl_mutex *m, uint64_t tag);

/* Unlocks and hands the mutex to the first waiter. Returns 0, or -EPERM if t
 * is not the holder (reported with the caller's file:line). A task that ends
 * while holding mutexes is reported, and its mutexes are unlocked for it. */
#define sl_mutex_unlock(t, m) sl_mutex_unlock_at_((t), (m), __FILE__, __LINE__)

/* The holder (NULL if free) and its tag. */
sl_task *sl_mutex_holder(const sl_mutex *m, uint64_t *tag);
size_t sl_mutex_waiters(const sl_mutex *m);

/* A semaphore with `permits` permits. */
void sl_sem_init(sl_sem *s, sl_reactor *r, const char *name, unsigned permits);

/* Takes one permit. Returns 0, SL_PENDING (final 0, -ETIMEDOUT, -ECANCELED),
 * -EXDEV or the cancel error. `tag` is recorded for the last acquirer. */
int sl_sem_acquire(sl_task *t, sl_sem *s, uint64_t tag);
int sl_sem_try_acquire(sl_task *t, sl_sem *s, uint64_t tag);   /* 0 or -EBUSY */

/* Gives a permit back (to the first waiter if any). Returns 0, or -EOVERFLOW
 * if that would exceed the initial permits (reported). */
#define sl_sem_release(t, s) sl_sem_release_at_((t), (s), __FILE__, __LINE__)

unsigned sl_sem_available(const sl_sem *s);
size_t sl_sem_waiters(const sl_sem *s);
/* The last task that acquired a permit and still counts as holding (NULL if
 * none) and its tag: until it releases a permit or ends (its permit stays
 * taken: a permit is not the task's, any task may give one back). For
 * diagnostics: O(the reactor's live tasks). */
sl_task *sl_sem_holder(const sl_sem *s, uint64_t *tag);

/* ---- private ------------------------------------------------------------ */
struct sl_mutex {
    sl_reactor *reactor_;
    const char *name_;
    sl_task *holder_;
    uint64_t tag_;
    sl_wq waiters_;
    int flags_;
    sl_mutex *hnext_;            /* the holder's list of held mutexes */
};
struct sl_sem {
    sl_reactor *reactor_;
    const char *name_;
    unsigned permits_, avail_;
    sl_task *holder_;            /* with holder_id_: may have ended (lock.c, sl_sem_holder) */
    uint64_t holder_id_;
    uint64_t tag_;
    sl_wq waiters_;
};
int sl_mutex_unlock_at_(sl_task *t, sl_mutex *m, const char *file, int line);
int sl_sem_release_at_(sl_task *t, sl_sem *s, const char *file, int line);
#endif
