/* bench/flag.h: the floor under a round trip between two CPUs. Two bare
 * threads hand a counter back and forth through two atomic words, polling
 * with a pause: what the round trip costs in cache-line transfers alone,
 * with no queue, message or task around it (docs/core.md, "The ping-pong"
 * and "What a leg is made of"). Where the two words lie is the caller's:
 * core-bench's thread_flag_roundtrip_ns keeps both on one line,
 * bench/leg-ladder has that (flag1) and a line each (flag, as two rings
 * have). Both threads must have a CPU: on a loaded machine this measures
 * the scheduler instead. */
#ifndef SL_BENCH_FLAG_H
#define SL_BENCH_FLAG_H
#include <pthread.h>
#include <stdatomic.h>
#include "sl_time.h"

static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

typedef struct bench_flags {
    _Atomic long *ab, *ba;   /* written by the caller's thread; by the peer */
    long n;
} bench_flags;

static void *bench_flag_peer(void *arg)
{
    const bench_flags *f = arg;
    _Atomic long *ab = f->ab, *ba = f->ba;
    for (long i = 1, n = f->n; i <= n; i++) {
        while (atomic_load_explicit(ab, memory_order_acquire) != i)
            bench_relax();
        atomic_store_explicit(ba, i, memory_order_release);
    }
    return NULL;
}

/* ns a round trip, over n of them; -1 if the peer thread cannot start */
static inline double bench_flag_roundtrip(_Atomic long *ab, _Atomic long *ba, long n)
{
    bench_flags f = { ab, ba, n };
    pthread_t t;
    atomic_store(ab, 0);
    atomic_store(ba, 0);
    if (pthread_create(&t, NULL, bench_flag_peer, &f) != 0)
        return -1;
    uint64_t t0 = sl_now_ns();
    for (long i = 1; i <= n; i++) {
        atomic_store_explicit(ab, i, memory_order_release);
        while (atomic_load_explicit(ba, memory_order_acquire) != i)
            bench_relax();
    }
    uint64_t t1 = sl_now_ns();
    pthread_join(t, NULL);
    return (double)(t1 - t0) / (double)n;
}
#endif
