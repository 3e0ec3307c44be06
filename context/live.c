/* live.c: allocation for context/, the live-object count, and failure
 * injection for tests.
 *
 * Contexts come and go millions of times a second on every reactor, so the
 * count must not be one shared atomic (every reactor would bounce its cache
 * line). Each thread keeps its own counter, written only by itself;
 * sl_ctx_live_count() adds them up. A thread's count moves into `retired`
 * when the thread exits, so objects made on one thread and freed on another
 * (teardown) still balance. */
#include <pthread.h>
#include <stdatomic.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include "ctx_internal.h"

typedef struct counter {
    _Atomic long n;
    SL_LINK(struct counter) link;        /* on `all` */
} counter;

/* Small per-thread caches of freed blocks, one per size (each takes the
 * size of the first block it gets): a request makes a value context, a
 * deadline context and a task binding, three sizes, and frees them on the
 * same reactor again and again; reusing a block skips malloc and free,
 * whose speed depends on everything else the program has allocated. */
#define CACHE_MAX 64
#define NCACHES 3
typedef struct cache {
    void *head;          /* blocks linked through their first word */
    size_t usable;       /* malloc_usable_size of every block here */
    int n;
} cache;
static __thread __attribute__((tls_model("initial-exec"))) cache blocks[NCACHES];

static pthread_mutex_t all_mu = PTHREAD_MUTEX_INITIALIZER;
static SL_LIST(counter) all;         /* every live thread's counter (core/list.h) */
static _Atomic long retired;         /* counts of threads that have exited */
static pthread_key_t exit_key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static __thread __attribute__((tls_model("initial-exec"))) counter *mine;

static void drop_cache(void)
{
    for (int i = 0; i < NCACHES; i++) {
        while (blocks[i].head) {
            void *b = blocks[i].head;
            blocks[i].head = *(void **)b;
            free(b);
        }
        blocks[i].n = 0;
    }
}

static void retire(void *p)
{
    counter *c = p;
    drop_cache();
    pthread_mutex_lock(&all_mu);
    SL_LIST_REMOVE(&all, c, link);
    atomic_fetch_add(&retired, atomic_load(&c->n));
    pthread_mutex_unlock(&all_mu);
    mine = NULL;
    free(c);
}

static void make_key(void)
{
    pthread_key_create(&exit_key, retire);
}

static counter *my_counter(void)
{
    if (mine)
        return mine;
    pthread_once(&key_once, make_key);
    counter *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    pthread_mutex_lock(&all_mu);
    SL_LIST_PUSH_FRONT(&all, c, link);
    pthread_mutex_unlock(&all_mu);
    pthread_setspecific(exit_key, c);
    mine = c;
    return c;
}

static void count(long d)
{
    counter *c = my_counter();
    if (c)   /* only this thread writes it: no read-modify-write needed */
        atomic_store_explicit(&c->n, atomic_load_explicit(&c->n, memory_order_relaxed) + d,
                              memory_order_relaxed);
    else
        atomic_fetch_add(&retired, d);
}

long sl_ctx_live_count(void)
{
    pthread_mutex_lock(&all_mu);
    long n = atomic_load(&retired);
    counter *c;
    SL_LIST_FOREACH(c, &all, link)
        n += atomic_load_explicit(&c->n, memory_order_relaxed);
    pthread_mutex_unlock(&all_mu);
    return n;
}

/* ---- failure injection ---------------------------------------------------- */

static _Atomic int fail_in = -1;   /* passing points left before the failure */

void sl__ctx_inject_failure(int skip)
{
    atomic_store(&fail_in, skip);
}

bool sl__ctx_fail_point(void)
{
    int n = atomic_load_explicit(&fail_in, memory_order_relaxed);
    while (n >= 0) {
        if (atomic_compare_exchange_weak(&fail_in, &n, n - 1))
            return n == 0;
    }
    return false;
}

/* ---- allocation ------------------------------------------------------------- */

void *sl__ctx_alloc(size_t size)
{
    if (sl__ctx_fail_point())
        return NULL;
    cache *best = NULL;   /* the smallest blocks that fit */
    for (int i = 0; i < NCACHES; i++)
        if (blocks[i].head && size <= blocks[i].usable && (!best || blocks[i].usable < best->usable))
            best = &blocks[i];
    void *p;
    if (best) {
        p = best->head;
        best->head = *(void **)p;
        best->n--;
        memset(p, 0, size);
    } else {
        p = calloc(1, size);
    }
    if (p)
        count(1);
    return p;
}

void sl__ctx_free(void *p)
{
    if (!p)
        return;
    count(-1);
    size_t u = malloc_usable_size(p);
    cache *c = NULL, *empty = NULL;
    for (int i = 0; i < NCACHES && !c; i++) {
        if (blocks[i].head && blocks[i].usable == u)
            c = &blocks[i];
        else if (!blocks[i].head && !empty)
            empty = &blocks[i];
    }
    if (!c && empty) {   /* an empty cache takes the size of the block it gets */
        c = empty;
        c->usable = u;
    }
    if (c && c->n < CACHE_MAX) {
        *(void **)p = c->head;
        c->head = p;
        c->n++;
        return;
    }
    free(p);
}
