/* test_lock.c: mutex and semaphore: FIFO hand-off, bounds, tags, misuse. */
#include "testutil.h"

static sl_runtime *rt;
static capture cap;

typedef struct lk_st {
    sl_mutex m;
    sl_sem s;
    char order[16];
    int n, rc[8];
    sl_task *w[4];
    uint64_t t0;
} lk_st;

static lk_st *L;

static int locker(sl_task *t, void *arg)
{
    int i = (int)(intptr_t)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, L->rc[i], sl_mutex_lock(t, &L->m, 100 + (uint64_t)i));
    if (L->rc[i] == 0) {
        L->order[L->n++] = (char)('0' + i);
        sl_mutex_unlock(t, &L->m);
    }
    SL_END(t);
}

static int lock_main(sl_task *t, void *arg)
{
    lk_st *m = arg;
    uint64_t tag;
    SL_BEGIN(t);
    sl_mutex_init(&m->m, NULL, "row", SL_MUTEX_LOOP_CHECK);
    assert_int_equal(sl_mutex_lock(t, &m->m, 7), 0);
    assert_ptr_equal(sl_mutex_holder(&m->m, &tag), t);
    assert_int_equal(tag, 7);
    assert_int_equal(sl_mutex_lock(t, &m->m, 7), -EDEADLK);       /* holder again */
    assert_int_equal(sl_mutex_trylock(t, &m->m, 1), -EBUSY);
    for (int i = 0; i < 4; i++)
        assert_int_equal(sl_spawn(NULL, locker, (void *)(intptr_t)i, &m->w[i], NULL), 0);
    SL_YIELD(t);
    assert_int_equal(sl_mutex_waiters(&m->m), 4);
    /* the holder's own tag would wait for itself: refused at once */
    assert_int_equal(sl_mutex_lock(t, &m->m, 7), -EDEADLK);
    assert_int_equal(sl_mutex_unlock(t, &m->m), 0);
    /* handed to the first waiter directly: nobody can barge in */
    assert_ptr_equal(sl_mutex_holder(&m->m, &tag), m->w[0]);
    assert_int_equal(tag, 100);
    assert_int_equal(sl_mutex_trylock(t, &m->m, 1), -EBUSY);
    assert_int_equal(sl_mutex_unlock(t, &m->m), -EPERM);           /* not the holder */
    SL_AWAIT(t, m->rc[7], sl_mutex_lock(t, &m->m, 1));
    assert_int_equal(m->rc[7], 0);
    assert_string_equal(m->order, "0123");                          /* FIFO */
    assert_int_equal(sl_mutex_unlock(t, &m->m), 0);
    assert_null(sl_mutex_holder(&m->m, NULL));
    assert_int_equal(sl_mutex_trylock(t, &m->m, 1), 0);
    assert_int_equal(sl_mutex_unlock(t, &m->m), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_mutex_fifo_handoff(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    lk_st m = { 0 };
    L = &m;
    assert_int_equal(rt_run(rt, lock_main, &m), 0);
    assert_int_equal(cap.count, 1);
    assert_non_null(strstr(cap.text, "unlock of mutex 'row' by task 'main', which does not hold it"));
    assert_non_null(strstr(cap.text, "test_lock.c:"));
}

/* ---- bounded waits ------------------------------------------------------------------- */

static int holder(sl_task *t, void *arg)
{
    int rc;
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_mutex_lock(t, &L->m, 1), 0);
    assert_int_equal(sl_sem_acquire(t, &L->s, 1), 0);
    SL_AWAIT(t, rc, sl_sleep(t, 30 * SL_NS_PER_S));   /* until stopped: a leak, however slow the machine */
    (void)rc;
    sl_mutex_unlock(t, &L->m);
    sl_sem_release(t, &L->s);
    SL_END(t);
}

static int waiter(sl_task *t, void *arg)
{
    int i = (int)(intptr_t)arg;
    SL_BEGIN(t);
    if (i % 2 == 0)
        SL_AWAIT(t, L->rc[i], sl_mutex_lock(t, &L->m, 2));
    else
        SL_AWAIT(t, L->rc[i], sl_sem_acquire(t, &L->s, 2));
    SL_END(t);
}

static int bounds_main(sl_task *t, void *arg)
{
    lk_st *m = arg;
    int rc;
    SL_BEGIN(t);
    sl_mutex_init(&m->m, NULL, "m", 0);
    sl_sem_init(&m->s, NULL, "s", 1);
    assert_int_equal(sl_spawn(NULL, holder, NULL, NULL, NULL), 0);
    SL_YIELD(t);
    m->t0 = sl_now_ns();
    for (int i = 0; i < 4; i++)
        assert_int_equal(sl_spawn(NULL, waiter, (void *)(intptr_t)i, &m->w[i],
                                  &(sl_spawn_opts){ .deadline = i < 2 ? m->t0 + 20 * SL_NS_PER_MS : 0 }), 0);
    SL_YIELD(t);
    assert_int_equal(sl_mutex_waiters(&m->m), 2);
    assert_int_equal(sl_sem_waiters(&m->s), 2);
    assert_int_equal(sl_task_cancel(m->w[2], 0), 0);
    assert_int_equal(sl_task_cancel(m->w[3], 0), 0);
    SL_YIELD(t);
    assert_int_equal(m->rc[2], -ECANCELED);
    assert_int_equal(m->rc[3], -ECANCELED);
    SL_AWAIT(t, rc, sl_sleep(t, 60 * SL_NS_PER_MS));
    assert_int_equal(rc, 0);
    assert_int_equal(m->rc[0], -ETIMEDOUT);
    assert_int_equal(m->rc[1], -ETIMEDOUT);
    assert_int_equal(sl_mutex_waiters(&m->m), 0);
    assert_int_equal(sl_sem_waiters(&m->s), 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_lock_waits_bounded(void **s)
{
    (void)s;
    rt = rt_new(1, &cap);
    lk_st m = { 0 };
    L = &m;
    /* the holder still sleeps when we stop: reported as a leak */
    assert_int_equal(rt_run(rt, bounds_main, &m), 1);
}

/* ---- semaphore ------------------------------------------------------------------------- */

static int sem_user(sl_task *t, void *arg)
{
    int i = (int)(intptr_t)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, L->rc[i], sl_sem_acquire(t, &L->s, (uint64_t)i));
    L->order[L->n++] = (char)('0' + i);
    SL_END(t);
}

static int sem_main(sl_task *t, void *arg)
{
    lk_st *m = arg;
    uint64_t tag;
    SL_BEGIN(t);
    sl_sem_init(&m->s, NULL, "pool", 2);
    assert_int_equal(sl_sem_available(&m->s), 2);
    assert_int_equal(sl_sem_release(t, &m->s), -EOVERFLOW);
    assert_int_equal(sl_sem_try_acquire(t, &m->s, 9), 0);
    assert_ptr_equal(sl_sem_holder(&m->s, &tag), t);
    assert_int_equal(tag, 9);
    assert_int_equal(sl_sem_acquire(t, &m->s, 9), 0);
    assert_int_equal(sl_sem_try_acquire(t, &m->s, 9), -EBUSY);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sl_spawn(NULL, sem_user, (void *)(intptr_t)i, NULL, NULL), 0);
    SL_YIELD(t);
    assert_int_equal(m->n, 0);
    assert_int_equal(sl_sem_waiters(&m->s), 3);
    assert_int_equal(sl_sem_release(t, &m->s), 0);
    assert_int_equal(sl_sem_release(t, &m->s), 0);
    SL_YIELD(t);
    assert_string_equal(m->order, "01");
    assert_int_equal(sl_sem_available(&m->s), 0);
    assert_int_equal(sl_sem_waiters(&m->s), 1);
    assert_int_equal(sl_sem_release(t, &m->s), 0);
    SL_YIELD(t);
    assert_string_equal(m->order, "012");
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_semaphore(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    lk_st m = { 0 };
    L = &m;
    assert_int_equal(rt_run(rt, sem_main, &m), 0);
    assert_int_equal(cap.count, 1);
    assert_non_null(strstr(cap.text, "beyond its 2 permits"));
}

/* Locks belong to one reactor. */
static int xdev_main(sl_task *t, void *arg)
{
    lk_st *m = arg;
    sl_mutex_init(&m->m, sl_runtime_reactor(rt, 1), "far", 0);
    sl_sem_init(&m->s, sl_runtime_reactor(rt, 1), "far", 1);
    assert_int_equal(sl_mutex_lock(t, &m->m, 0), -EXDEV);
    assert_int_equal(sl_mutex_trylock(t, &m->m, 0), -EXDEV);
    assert_int_equal(sl_sem_acquire(t, &m->s, 0), -EXDEV);
    sl_runtime_stop(rt);
    return 0;
}

static void test_lock_other_reactor(void **s)
{
    (void)s;
    rt = rt_new(2, &cap);
    lk_st m = { 0 };
    assert_int_equal(rt_run(rt, xdev_main, &m), 0);
}


/* ---- an ended task holds nothing (issue 17) ------------------------------------------------ */

/* A task that ends holding a mutex has it unlocked for it (and handed to
 * the first waiter), so the mutex's holder never outlives it: a later task
 * made at the same address (sl_spawn_mem: by construction) cannot unlock
 * it (-EPERM, reported). A semaphore's permit is not the task's (any task
 * may release one), but its holder was a bare pointer to the last
 * acquirer: after that task ended, sl_sem_holder named freed memory, or
 * the next task at that address. Now it names a live task or nobody. */
typedef struct end_st {
    sl_mutex m, m2;
    sl_sem s;
    sl_task mem;
    sl_task *first, *w, *mholder, *m2holder, *sholder;
    uint64_t mtag, stag;
    int rc[3], wrc;
    bool ran;
} end_st;

static int end_taker(sl_task *t, void *arg)
{
    end_st *e = arg;
    SL_BEGIN(t);
    e->first = t;
    assert_int_equal(sl_mutex_lock(t, &e->m, 5), 0);
    assert_int_equal(sl_mutex_lock(t, &e->m2, 6), 0);
    assert_int_equal(sl_sem_acquire(t, &e->s, 7), 0);
    SL_YIELD(t);   /* the waiter parks on m2 meanwhile */
    SL_END(t);     /* ends holding all three */
}

static int end_waiter(sl_task *t, void *arg)
{
    end_st *e = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, e->wrc, sl_mutex_lock(t, &e->m2, 8));
    assert_int_equal(e->wrc, 0);
    while (!e->ran)   /* holds m2 until the heir has looked */
        SL_YIELD(t);
    assert_int_equal(sl_mutex_unlock(t, &e->m2), 0);
    SL_END(t);
}

static int end_heir(sl_task *t, void *arg)
{
    end_st *e = arg;
    assert_ptr_equal(t, e->first);   /* the ended taker's address */
    e->mholder = sl_mutex_holder(&e->m, &e->mtag);
    e->m2holder = sl_mutex_holder(&e->m2, NULL);
    e->sholder = sl_sem_holder(&e->s, &e->stag);
    e->rc[0] = sl_mutex_unlock(t, &e->m);
    e->rc[1] = sl_mutex_unlock(t, &e->m2);
    e->rc[2] = sl_sem_release(t, &e->s);   /* anyone may give a permit back */
    e->ran = true;
    return 0;
}

static int end_main(sl_task *t, void *arg)
{
    end_st *e = arg;
    SL_BEGIN(t);
    sl_mutex_init(&e->m, NULL, "alone", 0);
    sl_mutex_init(&e->m2, NULL, "wanted", 0);
    sl_sem_init(&e->s, NULL, "permits", 2);
    assert_int_equal(sl_spawn_mem(NULL, end_taker, e, &e->mem, &(sl_spawn_opts){ .name = "taker" }), 0);
    assert_int_equal(sl_spawn(NULL, end_waiter, e, &e->w, &(sl_spawn_opts){ .name = "waiter" }), 0);
    while (e->m2.holder_ != e->w)   /* the taker ended and handed m2 on */
        SL_YIELD(t);
    assert_int_equal(sl_sem_available(&e->s), 1);   /* the permit stays taken */
    assert_int_equal(sl_spawn_mem(NULL, end_heir, e, &e->mem, &(sl_spawn_opts){ .name = "heir" }), 0);
    while (!e->ran)
        SL_YIELD(t);
    assert_null(e->mholder);
    assert_int_equal(e->mtag, 0);
    assert_ptr_equal(e->m2holder, e->w);
    assert_null(e->sholder);
    assert_int_equal(e->stag, 0);
    assert_int_equal(e->rc[0], -EPERM);
    assert_int_equal(e->rc[1], -EPERM);
    assert_int_equal(e->rc[2], 0);
    assert_int_equal(sl_sem_available(&e->s), 2);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_ended_holder_passes_nothing_on(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    end_st e = { 0 };
    assert_int_equal(rt_run(rt, end_main, &e), 0);
    assert_non_null(strstr(cap.text, "task 'taker' ended holding mutex 'alone'"));
    assert_non_null(strstr(cap.text, "task 'taker' ended holding mutex 'wanted'"));
    assert_non_null(strstr(cap.text, "unlock of mutex 'alone' by task 'heir', which does not hold it"));
    assert_non_null(strstr(cap.text, "unlock of mutex 'wanted' by task 'heir', which does not hold it"));
    assert_int_equal(cap.count, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutex_fifo_handoff),
        cmocka_unit_test(test_lock_waits_bounded),
        cmocka_unit_test(test_semaphore),
        cmocka_unit_test(test_lock_other_reactor),
        cmocka_unit_test(test_ended_holder_passes_nothing_on),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
