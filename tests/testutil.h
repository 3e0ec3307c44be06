/* testutil.h: running a small program on a runtime inside a cmocka test. */
#ifndef SL_TESTUTIL_H
#define SL_TESTUTIL_H
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sched.h>
#include <stdatomic.h>
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

/* Makes and frees n channels (elements of esz bytes, capacity cap) on t's
 * reactor. With n = SL_CHAN_QUARANTINE, a channel freed just before has
 * its header pushed out of the quarantine to the reactor's free headers,
 * and the next sl_chan_new there takes it back (core/chan.c, type-stable
 * headers): the shape of every "a message crosses a free and a reuse"
 * scene. */
static inline void chan_churn(sl_task *t, int n, size_t esz, size_t cap)
{
    for (int k = 0; k < n; k++) {
        sl_chan *c;
        assert_int_equal(sl_chan_new(&c, esz, cap, NULL), 0);
        assert_int_equal(sl_chan_free(t, c), 0);
    }
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

/* In a task's step: looks at `cond` every millisecond until it holds, at
 * most `n` times: a bounded wait for what another reactor or thread does;
 * the caller asserts `cond` after. `i` and `rc` must outlive the step
 * (fields of the scene's state: a task is stackless). */
#define TASK_POLL(t, rc, i, n, cond)          \
    for ((i) = 0; (i) < (n) && !(cond); (i)++) \
    SL_AWAIT(t, rc, sl_sleep(t, SL_NS_PER_MS))

/* Is task `w` parked? For a bounded poll by a task of w's reactor while w
 * cannot end (it waits for what the poller's side holds back). */
static inline bool task_parked(const sl_task *w)
{
    sl_task_info info;
    sl_task_info_get(w, &info);
    return info.status == SL_TASK_PARKED;
}

/* Waits until *flag is set, at most `ns`, yielding the CPU but not the
 * reactor (for a step that must not end meanwhile); returns whether it
 * is set. */
static inline bool wait_set(_Atomic int *flag, uint64_t ns)
{
    uint64_t end = sl_now_ns() + ns;
    while (!atomic_load(flag) && sl_now_ns() < end)
        sched_yield();
    return atomic_load(flag);
}

/* Sets the int at arg: posted to a reactor, it says that reactor has
 * ended every callback it was in when the post was made (and run their
 * flushes). */
static inline void flag_set(void *arg)
{
    atomic_store((_Atomic int *)arg, 1);
}

/* ---- scenes: tests whose reactors share the file's static structs ---- */

/* A scene whose assert failed on reactor 0's thread (the test's) was left
 * by cmocka's longjmp with its other reactors still running on the
 * scene's static structs: the next test must not reset those under them
 * (an UBSan report in select.c, a case's channel read as NULL, came from
 * that). scene_guard, every such test's setup, stops the process instead:
 * the failure is the earlier scene's. */
static inline bool *scene_live(void)
{
    static bool live;
    return &live;
}

static inline int scene_guard(void **state)
{
    (void)state;
    if (*scene_live()) {
        print_error("an earlier scene failed with its reactors still running: stopping here\n");
        exit(1);
    }
    return 0;
}

/* Runs `main` as a scene on a fresh runtime of `threads` reactors (*rt
 * while it runs, reports into *cap); nothing may leak or be reported. */
static inline void scene_run(sl_runtime **rt, capture *cap, int threads, sl_step_fn main)
{
    *scene_live() = true;
    memset(cap, 0, sizeof *cap);
    *rt = rt_new(threads, cap);
    assert_int_equal(rt_run(*rt, main, NULL), 0);
    *scene_live() = false;
    if (cap->count)
        print_message("reports:\n%s", cap->text);
    assert_int_equal(cap->count, 0);
}

/* Two senders into a select over two channels: sender 1 sends 1,000,000
 * + i on case 0's channel, sender 0 sends i on case 1's. Takes what the
 * select returned (case rc, element got) and counts into bad what came
 * from the wrong channel, out of order, lost or twice; next[] is what
 * each sender should send next, from[] how many each case gave. */
static inline void mix_take(int64_t next[2], long *bad, long from[2], int rc, int64_t got)
{
    int who = got >= 1000000;
    if (who != (rc == 0) || got - who * 1000000 != next[who])
        (*bad)++;
    next[who]++;
    from[rc]++;
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
