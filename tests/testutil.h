/* testutil.h: running a small program on a runtime inside a cmocka test. */
#ifndef SL_TESTUTIL_H
#define SL_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "sluice.h"

/* Reports (deadlock, leak, misuse) are captured here rather than printed. */
typedef struct capture {
    char text[16384];
    size_t len;
    int count;
} capture;

static inline void capture_report(const char *text, void *arg)
{
    capture *c = arg;
    int n = snprintf(c->text + c->len, sizeof c->text - c->len, "%s\n", text);
    if (n > 0)
        c->len += (size_t)n < sizeof c->text - c->len ? (size_t)n : sizeof c->text - c->len - 1;
    c->count++;
}

static inline sl_runtime *rt_new(int threads, capture *cap)
{
    sl_runtime *rt = NULL;
    /* no stall watchdog: a preempted test process is not a stalled program */
    sl_runtime_opts o = { .threads = threads, .report = cap ? capture_report : NULL, .report_arg = cap,
                          .stall_ms = -1 };
    assert_int_equal(sl_runtime_new(&rt, &o), 0);
    return rt;
}

/* Runs `fn(state)` as the first task of reactor 0 until something calls
 * sl_runtime_stop(), then frees the runtime and returns the leak count. */
static inline int rt_run(sl_runtime *rt, sl_step_fn fn, void *state)
{
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), fn, state, &(sl_spawn_opts){ .name = "main" }), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    return sl_runtime_free(rt);
}

/* The same, without freeing: for tests that must free what used the
 * runtime (servers, upstreams) first. Returns 0 once the runtime stopped. */
static inline int rt_run_keep(sl_runtime *rt, sl_step_fn fn, void *state)
{
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), fn, state, &(sl_spawn_opts){ .name = "main" }), 0);
    return sl_runtime_run(rt);
}

/* A deadline-bounded wait must not end early, and must end soon after. The
 * bound is checked on the median of several waits, so one descheduling of
 * this process on a loaded machine cannot fail the test. */
static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static inline uint64_t median_u64(uint64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_u64);
    return v[n / 2];
}

#endif
