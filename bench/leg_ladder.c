/* leg-ladder: what a cross-reactor ping-pong leg is made of (issue 17's
 * thirteenth stop; docs/core.md, "What a leg is made of", and the
 * fourteenth's "The reactor's share of a leg"). Each rung is a round trip
 * between two threads; the main ones add one layer each of what
 * `core-bench --only cross_reactor_chan_pingpong_ns` does, ringw and ring1
 * are experiments beside `ring`:
 *
 *   flag1  two bare threads, one atomic word each way, both words on one
 *          line (core-bench's thread_flag_roundtrip_ns)
 *   flag   the same, each word on a line of its own, as a pair of rings
 *          has a line each way (the floor under them)
 *   ring   two bare threads, the two directions of one sl_ring_pair
 *          (core/ring.h): a 16-byte cell each way, the answer's cell in
 *          the line of the question's (since the sixteenth stop; 48-byte
 *          cells, a line each, before)
 *   ringw  ring with LADDER_WORK (default 40) iterations of a dependent
 *          multiply-add on each side between a cell's arrival and the
 *          answer (about 1 ns each here): is a leg's own work dearer in
 *          the slow mode? LADDER_PREFETCH=1: each side prefetches for
 *          writing the cell of its answer as a cell arrives;
 *          LADDER_AFTER=1: the work after the answer's post instead;
 *          LADDER_POLL=K: K pauses between two looks at a cell (1)
 *   ring1  the same layout made by hand, the sixteenth stop's
 *          experiment (16 bytes inline each, no backlog, no chains): the
 *          reference the ring rung is read against
 *   post   two reactors: a message run inside the spin posts the next one
 *          back inline (sl__reactor_post_inline): the spin, the drain,
 *          the callback's end, no task, no channel
 *   task   the same, the message unparks a task (sl_task_unpark) and the
 *          task, when it runs, posts back and parks again: the run queue
 *          and the task's switch, no channel
 *   chan   the ping-pong through two channels of capacity 1, one homed on
 *          each reactor (core-bench's figure)
 *
 *   bench/leg-ladder RUNG [ROUND_TRIPS]   prints {"RUNG_ns": ns a round trip}
 *   LADDER_STATS=1 ...   each reactor's counters after each run, on stderr
 *
 * Best of three runs, as core-bench. Links libsluice.a: the rungs reach
 * the private ring and inline post. Run each under `flock
 * /tmp/sluice-bench.lock chrt -f 10`, alternated with the others, and
 * classify the round by `flag1` (about 45 ns fast, 400 slow here). */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"
#include "ring.h"
#include "flag.h"

/* ---- flag and flag1 (bench/flag.h) -------------------------------------- */

/* flag: each word on a line of its own, as a pair of rings has */
static _Alignas(64) _Atomic long flag_ab;
static _Alignas(64) _Atomic long flag_ba;

static double r_flag(long n)
{
    return bench_flag_roundtrip(&flag_ab, &flag_ba, n);
}

/* flag1: both words on one line (core-bench's thread_flag_roundtrip_ns) */
static _Alignas(64) struct { _Atomic long ab, ba; } one;

static double r_flag1(long n)
{
    return bench_flag_roundtrip(&one.ab, &one.ba, n);
}

static long rt_n;   /* the round trips of the running rung */

/* ---- ring ---------------------------------------------------------------- */

static sl_ring *ring_a, *ring_b;   /* the two threads' ends: main's, the peer's */

typedef struct cellmsg { long i; unsigned char pad[8]; } cellmsg;   /* a cell's room (SL_RING_INLINE) */
_Static_assert(sizeof(cellmsg) == SL_RING_INLINE, "the rungs' message fills a cell");

static void noop(void *arg) { (void)arg; }

/* pauses between two looks at a cell (LADDER_POLL for ringw; 1 else) */
static long ring_poll = 1;

static long ring_get(sl_ring *q)
{
    void (*fn)(void *);
    _Alignas(8) unsigned char copy[SL_RING_INLINE] = { 0 };   /* (gcc cannot see take fill it) */
    sl_ring_cell *c;
    uint64_t at;
    while (!(c = sl_ring_poll(q, &at)))
        for (long k = 0; k < ring_poll; k++)
            bench_relax();
    if (sl_ring_take(q, c, at, &fn, copy) || !fn)
        abort();   /* always inline here */
    cellmsg m;
    memcpy(&m, copy, sizeof m);
    return m.i;
}

static void ring_put(sl_ring *q, long i)
{
    cellmsg m = { .i = i };
    while (!sl_ring_try_put_inline(q, noop, &m, sizeof m))
        bench_relax();
}

/* ringw: LADDER_WORK iterations of a dependent multiply-add (about 1 ns
 * each here) between a cell's arrival and the answer's post, on each side:
 * whether a leg's own work costs the same in both modes (docs/core.md,
 * "The reactor's share of a leg"). 0 for the ring rung. */
static long ring_work;

static long work(long v)
{
    uint64_t x = (uint64_t)v;
    for (long k = 0; k < ring_work; k++)
        x = x * 6364136223846793005ull + 1442695040888963407ull;
    __asm__ __volatile__("" : "+r"(x));
    return ring_work ? v + (long)(x & 0) : v;
}

/* LADDER_PREFETCH=1: as a cell arrives, a prefetch for writing of the
 * cell the answer will fill, so that its line is on its way while the
 * work runs */
static int ring_prefetch;

static long get_for(sl_ring *in, sl_ring *out)
{
    long v = ring_get(in);
    if (ring_prefetch)
        __builtin_prefetch(ring_pcell(out, out->pc), 1, 3);
    return v;
}

/* LADDER_AFTER=1: the work after the answer's post, not before it */
static int ring_after;

static void *ring_peer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= rt_n; i++) {
        if (ring_after) {
            ring_put(ring_b, get_for(ring_b, ring_b));
            work(i);
        } else {
            ring_put(ring_b, work(get_for(ring_b, ring_b)));
        }
    }
    return NULL;
}

static double r_ring(long n)
{
    pthread_t t;
    rt_n = n;
    sl__ring_cells = SL_RING_CELLS;
    sl_ring_pair *p = sl_ring_pair_new(NULL, NULL);
    if (!p)
        return -1;
    ring_a = &p->end[0];
    ring_b = &p->end[1];
    if (pthread_create(&t, NULL, ring_peer, NULL) != 0) {
        free(p);
        return -1;
    }
    uint64_t t0 = sl_now_ns();
    for (long i = 1; i <= n; i++) {
        ring_put(ring_a, i);
        if (ring_after)
            work(i);   /* while the peer answers */
        long v = get_for(ring_a, ring_a);
        if ((ring_after ? v : work(v)) != i)
            abort();
    }
    uint64_t t1 = sl_now_ns();
    pthread_join(t, NULL);
    if (getenv("LADDER_STATS"))
        fprintf(stderr, "ring: reused %llu and %llu, stepped %llu and %llu, cells %llu and %llu\n",
                (unsigned long long)p->end[0].reused, (unsigned long long)p->end[1].reused,
                (unsigned long long)p->end[0].stepped, (unsigned long long)p->end[1].stepped,
                (unsigned long long)p->end[0].pc, (unsigned long long)p->end[1].pc);
    free(p);
    return (double)(t1 - t0) / (double)n;
}

static double r_ringw(long n)
{
    const char *w = getenv("LADDER_WORK");
    ring_work = w ? atol(w) : 40;
    ring_prefetch = getenv("LADDER_PREFETCH") && atoi(getenv("LADDER_PREFETCH"));
    ring_after = getenv("LADDER_AFTER") && atoi(getenv("LADDER_AFTER"));
    ring_poll = getenv("LADDER_POLL") ? atol(getenv("LADDER_POLL")) : 1;
    double v = r_ring(n);
    ring_work = 0;
    ring_prefetch = ring_after = 0;
    ring_poll = 1;
    return v;
}

/* ---- ring1: both directions of a pair in one line ----------------------- */

/* The pair's two rings interleaved: the cell of position p of each
 * direction share one line (a sequence word, fn and 16 bytes each), so a
 * ping-pong's answer is written on the line its question came on, as
 * flag1 has it, where two rings move a line each way (flag). The
 * sixteenth stop's experiment (docs/core.md, "The reactor's share of a
 * leg"), which core/ring.h's sl_ring_pair now is; kept as the hand-made
 * reference for the ring rung. Each direction keeps its producer's and
 * consumer's counters on lines of their own, as sl_ring. */
#define PAIR_INLINE 16

typedef struct pair_line {
    _Alignas(64) _Atomic uint64_t seq[2];
    void (*fn[2])(void *);
    _Alignas(8) unsigned char data[2][PAIR_INLINE];
} pair_line;
_Static_assert(sizeof(pair_line) == 64, "a pair's cells of one position are one line");

static struct pair_dir {
    _Alignas(64) uint64_t put, seen_get;   /* producer */
    _Alignas(64) _Atomic uint64_t get;     /* consumer */
} pdir[2];
static pair_line *pair_lines;
static const uint64_t pair_n = SL_RING_CELLS;

static void pair_put(int d, long i)
{
    struct pair_dir *q = &pdir[d];
    while (q->put - q->seen_get == pair_n) {
        q->seen_get = atomic_load_explicit(&q->get, memory_order_acquire);
        bench_relax();
    }
    pair_line *c = &pair_lines[q->put & (pair_n - 1)];
    c->fn[d] = noop;
    memcpy(c->data[d], &i, sizeof i);
    atomic_store_explicit(&c->seq[d], ++q->put, memory_order_seq_cst);
}

static long pair_get(int d)
{
    struct pair_dir *q = &pdir[d];
    uint64_t get = atomic_load_explicit(&q->get, memory_order_relaxed);
    pair_line *c = &pair_lines[get & (pair_n - 1)];
    while (atomic_load_explicit(&c->seq[d], memory_order_seq_cst) != get + 1)
        bench_relax();
    _Alignas(8) unsigned char copy[PAIR_INLINE];
    if (!c->fn[d])
        abort();
    memcpy(copy, c->data[d], PAIR_INLINE);
    atomic_store_explicit(&q->get, get + 1, memory_order_release);
    long v;
    memcpy(&v, copy, sizeof v);
    return v;
}

static void *pair_peer(void *arg)
{
    (void)arg;
    for (long i = 1; i <= rt_n; i++)
        pair_put(1, pair_get(0));
    return NULL;
}

static double r_ring1(long n)
{
    pthread_t t;
    rt_n = n;
    memset(pdir, 0, sizeof pdir);
    pair_lines = aligned_alloc(64, pair_n * sizeof *pair_lines);
    if (!pair_lines)
        return -1;
    memset(pair_lines, 0, pair_n * sizeof *pair_lines);
    if (pthread_create(&t, NULL, pair_peer, NULL) != 0) {
        free(pair_lines);
        return -1;
    }
    uint64_t t0 = sl_now_ns();
    for (long i = 1; i <= n; i++)
        if (pair_put(0, i), pair_get(1) != i)
            abort();
    uint64_t t1 = sl_now_ns();
    pthread_join(t, NULL);
    free(pair_lines);
    return (double)(t1 - t0) / (double)n;
}

/* ---- post, task, chan: two reactors -------------------------------------- */

static sl_runtime *rt;
static sl_reactor *R[2];

/* each side's state on a line of its own (the benchmark's own false
 * sharing cost a miss a leg once: docs/core.md, eleventh stop) */
static struct side {
    _Alignas(64) long i;
    sl_task *task;
    sl_chan *in, *out;   /* chan: receives on in, sends on out */
    int64_t v;
    int rc;
    bool got, parked;
    uint64_t t0, t1;
} S[2];
static _Alignas(64) long lad_n;

static void run2(sl_step_fn fn)
{
    sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 2, .stall_ms = -1, .spin_limit = UINT_MAX });
    R[0] = sl_runtime_reactor(rt, 0);
    R[1] = sl_runtime_reactor(rt, 1);
    sl_spawn_on(R[0], fn, NULL, NULL);
    sl_runtime_run(rt);
    if (getenv("LADDER_STATS"))
        for (int i = 0; i < 2; i++) {
            sl_reactor_stats s;
            sl_reactor_stats_get(R[i], &s);
            fprintf(stderr, "reactor %d: msgs %llu steps %llu wakeups %llu fd_wakeups %llu spins %llu spin_hits %llu "
                    "spin_runs %llu spin_yields %llu rs_early %llu quick_hits %llu\n", i,
                    (unsigned long long)s.msgs, (unsigned long long)s.steps, (unsigned long long)s.wakeups,
                    (unsigned long long)s.fd_wakeups, (unsigned long long)s.spins,
                    (unsigned long long)s.spin_hits, (unsigned long long)s.spin_runs,
                    (unsigned long long)s.spin_yields, (unsigned long long)R[i]->rs_early,
                    (unsigned long long)R[i]->quick_hits);
            fprintf(stderr, "  look_delay %u\n", R[i]->look_delay);
        }
    sl_runtime_free(rt);
}

static void finish(void *arg)
{
    (void)arg;
    sl_runtime_stop(rt);
}

/* post: a message that posts the next back; side 0 counts round trips */
static void post_msg(void *arg);

static void post_to(int to, long i)
{
    cellmsg m = { .i = i };
    if (sl__reactor_post_inline(R[to], post_msg, &m, sizeof m) < 0)
        abort();   /* a ping-pong never finds the ring full or a chain before it */
}

static void post_msg(void *arg)
{
    cellmsg m;
    memcpy(&m, arg, sizeof m);
    int me = sl__tl_reactor == R[1];
    if (me == 1) {
        post_to(0, m.i);
        return;
    }
    if (m.i == lad_n) {
        S[0].t1 = sl_now_ns();
        sl_runtime_stop(rt);
        return;
    }
    post_to(1, m.i + 1);
}

static int post_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    S[0].t0 = sl_now_ns();
    post_to(1, 1);
    return 0;
}

/* task: the message unparks the task there, which posts back and parks.
 * Side 1 says hello (0) once its task exists; side 0 counts. */
static void task_msg(void *arg)
{
    cellmsg m;
    memcpy(&m, arg, sizeof m);
    struct side *s = &S[sl__tl_reactor == R[1]];
    s->i = m.i;
    s->got = true;
    if (s->parked) {
        s->parked = false;
        sl_task_unpark(s->task, 0);
    }
}

static void task_post(int to, long i)
{
    cellmsg m = { .i = i };
    if (sl__reactor_post_inline(R[to], task_msg, &m, sizeof m) < 0)
        abort();
}

static int task_side(sl_task *t, void *arg)
{
    int me = (int)(intptr_t)arg;
    struct side *s = &S[me];
    SL_BEGIN(t);
    s->task = t;
    if (me == 1)
        task_post(0, 0);
    for (;;) {
        if (!s->got) {
            s->parked = true;
            SL_AWAIT(t, s->rc, sl_task_park(t, s, NULL));
            continue;
        }
        s->got = false;
        if (me == 1) {
            task_post(0, s->i);
            if (s->i == lad_n)
                break;
            continue;
        }
        if (s->i == 0)
            s->t0 = sl_now_ns();
        if (s->i == lad_n)
            break;
        task_post(1, s->i + 1);
    }
    if (me == 0) {
        s->t1 = sl_now_ns();
        sl_runtime_stop(rt);
    }
    SL_END(t);
}

static int task_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    sl_spawn(NULL, task_side, (void *)(intptr_t)0, NULL, NULL);
    sl_spawn_on(R[1], task_side, (void *)(intptr_t)1, NULL);
    return 0;
}

/* chan: core-bench's cross_reactor_chan_pingpong_ns */
static int chan_b(sl_task *t, void *arg)   /* reactor 0 */
{
    (void)arg;
    struct side *s = &S[0];
    SL_BEGIN(t);
    for (s->i = 0; s->i < lad_n; s->i++) {
        SL_AWAIT(t, s->rc, sl_chan_recv(t, s->in, &s->v));
        SL_AWAIT(t, s->rc, sl_chan_send(t, s->out, &s->v));
    }
    sl_chan_free(t, s->in);
    SL_END(t);
}

static int chan_a(sl_task *t, void *arg)   /* reactor 1 */
{
    (void)arg;
    struct side *s = &S[1];
    SL_BEGIN(t);
    sl_chan_new(&s->in, sizeof(int64_t), 1, NULL);
    S[0].out = s->in;
    /* LADDER_SKEW=k: k messages more from reactor 1 to 0 before the
     * first leg, so that the pair's two directions start k positions
     * apart (ring.h, ring_realign) */
    for (long j = 0, k = getenv("LADDER_SKEW") ? atol(getenv("LADDER_SKEW")) : 0; j < k; j++) {
        cellmsg m = { .i = 0 };
        if (sl__reactor_post_inline(R[0], noop, &m, sizeof m) < 0)
            abort();
    }
    s->t0 = sl_now_ns();
    for (s->i = 0; s->i < lad_n; s->i++) {
        s->v = s->i;
        SL_AWAIT(t, s->rc, sl_chan_send(t, s->out, &s->v));
        SL_AWAIT(t, s->rc, sl_chan_recv(t, s->in, &s->v));
    }
    s->t1 = sl_now_ns();
    sl_chan_free(t, s->in);
    sl_reactor_post(R[0], finish, NULL);
    SL_END(t);
}

static int chan_main(sl_task *t, void *arg)
{
    (void)arg;
    sl_task *b;
    sl_chan_new(&S[0].in, sizeof(int64_t), 1, NULL);
    S[1].out = S[0].in;
    sl_spawn(NULL, chan_b, NULL, &b, NULL);
    sl_chan_give(S[0].in, t, b);
    sl_spawn_on(R[1], chan_a, NULL, NULL);
    return 0;
}

static double r_reactors(long n, sl_step_fn fn, int timed)
{
    memset(S, 0, sizeof S);
    lad_n = n;
    run2(fn);
    return (double)(S[timed].t1 - S[timed].t0) / (double)n;
}

static double r_post(long n) { return r_reactors(n, post_main, 0); }
static double r_task(long n) { return r_reactors(n, task_main, 0); }
static double r_chan(long n) { return r_reactors(n, chan_main, 1); }

int main(int argc, char **argv)
{
    static const struct { const char *name; double (*fn)(long); long n; } rungs[] = {
        { "flag1", r_flag1, 1000000 }, { "flag", r_flag, 1000000 }, { "ring", r_ring, 1000000 },
        { "ring1", r_ring1, 1000000 }, { "ringw", r_ringw, 1000000 }, { "post", r_post, 200000 },
        { "task", r_task, 200000 }, { "chan", r_chan, 100000 },
    };
    if (argc < 2) {
        fprintf(stderr, "usage: leg-ladder flag1|flag|ring|ring1|ringw|post|task|chan [ROUND_TRIPS]\n");
        return 2;
    }
    for (size_t k = 0; k < sizeof rungs / sizeof *rungs; k++) {
        if (strcmp(argv[1], rungs[k].name))
            continue;
        long n = argc > 2 ? atol(argv[2]) : rungs[k].n;
        double best = 1e300;
        for (int i = 0; i < 3; i++) {
            double v = rungs[k].fn(n);
            if (v < 0)
                return 1;
            if (v < best)
                best = v;
        }
        printf("{\"%s_ns\": %.1f}\n", argv[1], best);
        return 0;
    }
    fprintf(stderr, "leg-ladder: no rung %s\n", argv[1]);
    return 2;
}
