/* test_ring.c: the per-pair rings between reactors (core/ring.h,
 * core/reactor.c "rings") with 2 cells a ring, so that a full ring is
 * reached at once: nothing is dropped or reordered, a producer whose ring
 * is full is woken when the consumer frees cells, and two reactors full
 * towards each other both get through; the two directions of a pair,
 * whose cells of one position share a line (ring.h), busy at once, with
 * two, three and sixteen reactors. Links libsluice.a for sl__ring_cells
 * and the reactors' counters. */
#include <stdatomic.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>
#include "testutil.h"
#include "internal.h"
#include "ring.h"

static sl_runtime *rt;
static capture cap;

#define LONG_WAIT (10 * SL_NS_PER_S)   /* generous: only a bug runs into it */
#define FLOOD_N 2000                   /* 32 chains of CHAIN_MAX: 16x a ring of 2 */

/* Bounded wait for another reactor's flag: the test fails, not hangs. */
static bool wait_flag(_Atomic int *f)
{
    uint64_t until = sl_now_ns() + LONG_WAIT;
    while (!atomic_load(f))
        if (sl_now_ns() > until)
            return false;
        else
            sched_yield();
    return true;
}

/* A run that loses a message, or a producer that is never woken, would
 * hang: the guard stops the runtime once `*done` has not reached `want`
 * and the scene has made no progress for 3 LONG_WAITs, and the test's
 * counts fail. Progress, not the whole run: a scene of 20,000 cross-reactor
 * round trips takes 20,000 wake-ups, which a loaded machine stretches (at
 * load 20 beside two CPU hogs, 3 scenes of one run and 1 of another ran
 * past a bound of 30 s on the whole run; the runs took 110 s and 256 s
 * where they take 5-19). Each reactor counts its scene's steps in
 * seen[its id] (guard_tick), alone: a relaxed store, no shared line. */
static struct {
    _Atomic int *done;
    int want;
    _Atomic bool fired;        /* the guard stopped it: a hang */
    _Atomic long seen[16][8];  /* [reactor][0]: its steps; a line each */
} G;

static void guard_tick(int reactor)
{
    _Atomic long *n = &G.seen[reactor][0];
    atomic_store_explicit(n, atomic_load_explicit(n, memory_order_relaxed) + 1, memory_order_relaxed);
}

static long guard_seen(void)
{
    long n = 0;
    for (int i = 0; i < 16; i++)
        n += atomic_load_explicit(&G.seen[i][0], memory_order_relaxed);
    return n;
}

static void *guard(void *arg)
{
    (void)arg;
    long last = -1;
    uint64_t still_since = sl_now_ns();
    while (atomic_load(G.done) < G.want && sl_now_ns() - still_since < 3 * LONG_WAIT) {
        long seen = guard_seen();
        if (seen != last) {
            last = seen;
            still_since = sl_now_ns();
        }
        usleep(1000);
    }
    if (atomic_load(G.done) < G.want) {
        print_message("guard: %d of %d finished, no step for %d s after %ld\n", atomic_load(G.done), G.want,
                      (int)(3 * LONG_WAIT / SL_NS_PER_S), last);
        atomic_store(&G.fired, true);
        sl_runtime_stop(rt);
    }
    return NULL;
}

static void run_guarded(_Atomic int *done, int want)
{
    pthread_t g;
    G.done = done;
    G.want = want;
    atomic_store(&G.fired, false);
    for (int i = 0; i < 16; i++)
        atomic_store(&G.seen[i][0], 0);
    assert_int_equal(pthread_create(&g, NULL, guard, NULL), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    pthread_join(g, NULL);
    /* the stop (an eventfd write to every reactor) would get a sleeping
     * producer going again: a run the guard had to end is a failure */
    assert_false(atomic_load(&G.fired));
}

/* ---- one way: the consumer held while the producer posts FLOOD_N ------------------- */

static struct {
    sl_msg m[2][2 * FLOOD_N];
    int rounds;                /* test_ring_backlog_keeps_order: floods reactor 1 sends */
    long next[2];              /* the next index each reactor expects */
    long bad[2];
    _Atomic int flooded[2];    /* reactor i has posted all of its flood */
    _Atomic int done;          /* reactors that received all they should */
    int want;                  /* how many must finish */
    bool held[2];              /* wait_flag gave up: a bug */
} F;

static void flood_more(void *arg);

static void got(void *arg)
{
    long i = (long)(intptr_t)arg;
    int me = sl_reactor_current() == sl_runtime_reactor(rt, 0) ? 0 : 1;
    guard_tick(me);
    if (i != F.next[me])
        F.bad[me]++;
    F.next[me] = i + 1;
    if (i == 0 && F.rounds == 2)   /* the first of the flood: ask for the second */
        sl_reactor_post(sl_runtime_reactor(rt, 1), flood_more, NULL);
    if (F.next[me] == (F.rounds == 2 ? 2 : 1) * FLOOD_N && atomic_fetch_add(&F.done, 1) + 1 == F.want)
        sl_runtime_stop(rt);
}

/* reactor `me` posts FLOOD_N to the other in one callback: chains of
 * CHAIN_MAX each go at once, so the ring of 2 fills while the other is
 * held; the rest is the backlog, published as the callback ends */
static void flood_from(int me, long from)
{
    sl_reactor *to = sl_runtime_reactor(rt, !me);
    for (long i = from; i < from + FLOOD_N; i++)
        sl_reactor_post_mem(to, &F.m[me][i], got, (void *)(intptr_t)i);
}

static void flood_more(void *arg)   /* reactor 1 */
{
    (void)arg;
    flood_from(1, FLOOD_N);
}

static void flood(int me)
{
    sl_reactor *to = sl_runtime_reactor(rt, !me);
    for (long i = 0; i < FLOOD_N; i++)
        sl_reactor_post_mem(to, &F.m[me][i], got, (void *)(intptr_t)i);
    atomic_store(&F.flooded[me], 1);
}

/* Reactor 0: busy until reactor 1 has posted and gone to sleep with its
 * backlog (its may_sleep cleared wake_pending): one cell freed would take
 * the whole backlog, so only then is it the consumer's wake, and nothing
 * else, that gets reactor 1 to put it. */
static void hold0(void *arg)
{
    (void)arg;
    sl_reactor *r1 = sl_runtime_reactor(rt, 1);
    uint64_t until = sl_now_ns() + LONG_WAIT;
    F.held[0] = !wait_flag(&F.flooded[1]);
    while (atomic_load(&r1->wake_pending) && sl_now_ns() < until)
        sched_yield();
    F.held[0] |= atomic_load(&r1->wake_pending) != 0;
}

static void flood1(void *arg)
{
    (void)arg;
    flood(1);
}

/* Reactor 0 held while reactor 1 floods it through a ring of 2 cells,
 * `rounds` floods in all: every element arrives in order, and the ring
 * was full on the way (the backlog and the consumer's wake were used). */
static void flood_scene(int rounds)
{
    sl__ring_cells = 2;
    memset(&F, 0, sizeof F);
    F.want = 1;
    F.rounds = rounds;
    rt = rt_new(2, &cap);
    sl_reactor *r1 = sl_runtime_reactor(rt, 1);
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 0), hold0, NULL), 0);
    assert_int_equal(sl_reactor_post(r1, flood1, NULL), 0);
    run_guarded(&F.done, 1);
    assert_false(F.held[0]);
    assert_int_equal(F.next[0], rounds * FLOOD_N);
    assert_int_equal(F.bad[0], 0);
    assert_true(r1->ring_fulls > 0);
    assert_int_equal(r1->nbacklog, 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    sl__ring_cells = SL_RING_CELLS;
}

static void test_ring_full_one_way(void **s)
{
    (void)s;
    flood_scene(1);
}

/* The same, and reactor 0, as it takes the first of the flood, asks
 * reactor 1 for a second one: reactor 1 posts it while its backlog still
 * waits and a cell is free (reactor 0 has taken one, and the wake for it
 * comes after the ask). The second flood joins the backlog, behind it:
 * put in the free cell it overtook the backlog (disorder at reactor 0). */
static void test_ring_backlog_keeps_order(void **s)
{
    (void)s;
    flood_scene(2);
}

/* ---- both ways: each floods the other, then waits until the other has too ---------- */

static void flood_both(void *arg)
{
    int me = (int)(intptr_t)arg;
    flood(me);
    /* neither drains until both have posted: both rings are full */
    F.held[me] = !wait_flag(&F.flooded[!me]);
}

static void test_ring_full_both_ways(void **s)
{
    (void)s;
    sl__ring_cells = 2;
    memset(&F, 0, sizeof F);
    F.want = 2;
    rt = rt_new(2, &cap);
    sl_reactor *r0 = sl_runtime_reactor(rt, 0), *r1 = sl_runtime_reactor(rt, 1);
    assert_int_equal(sl_reactor_post(r0, flood_both, (void *)(intptr_t)0), 0);
    assert_int_equal(sl_reactor_post(r1, flood_both, (void *)(intptr_t)1), 0);
    run_guarded(&F.done, 2);
    assert_false(F.held[0]);
    assert_false(F.held[1]);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(F.next[i], FLOOD_N);
        assert_int_equal(F.bad[i], 0);
    }
    assert_true(r0->ring_fulls > 0);
    assert_true(r1->ring_fulls > 0);
    assert_int_equal(r0->nbacklog + r1->nbacklog, 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    sl__ring_cells = SL_RING_CELLS;
}

/* ---- every kind of a pair's traffic through rings of 2 ------------------------------ */

/* Two streams the opposite ways, each sent by credit (rsend.c: batches,
 * grants, top-ups, recalls when the home's receiver needs the room) into
 * a channel of the other reactor, with a ping-pong beside them: each
 * receiver checks that it sees 0, 1, 2, ... An element or a control
 * message overtaken by a later one of the same pair shows as disorder or
 * as a lost element (the run then hangs: a guard thread stops it after
 * LONG_WAIT, and the counts fail). */
#define ST_N 20000

static struct {
    sl_chan *c[2];             /* c[i]: home reactor i, sent from the other */
    long is[2], ir[2], bad[2];
    int64_t vs[2], vr[2];
    int rcs[2], rcr[2];
    _Atomic int finished;
    size_t cap;                /* the channels' capacity */
} S;

static void st_finished(void)
{
    if (atomic_fetch_add(&S.finished, 1) + 1 == 4)
        sl_runtime_stop(rt);
}

static int st_send(sl_task *t, void *arg)   /* on reactor !i, into c[i] */
{
    int i = (int)(intptr_t)arg;
    SL_BEGIN(t);
    for (S.is[i] = 0; S.is[i] < ST_N; S.is[i]++) {
        S.vs[i] = S.is[i];
        SL_AWAIT(t, S.rcs[i], sl_chan_send(t, S.c[i], &S.vs[i]));
        guard_tick(!i);
        if (S.rcs[i] < 0)
            break;
    }
    st_finished();
    SL_END(t);
}

static int st_recv(sl_task *t, void *arg)   /* on reactor i, from c[i] */
{
    int i = (int)(intptr_t)arg;
    SL_BEGIN(t);
    for (S.ir[i] = 0; S.ir[i] < ST_N; S.ir[i]++) {
        SL_AWAIT(t, S.rcr[i], sl_chan_recv(t, S.c[i], &S.vr[i]));
        guard_tick(i);
        if (S.rcr[i] < 0)
            break;
        if (S.vr[i] != S.ir[i])
            S.bad[i]++;
    }
    st_finished();
    SL_END(t);
}

static int st_home(sl_task *t, void *arg)   /* reactor i: the channel's home and receiver */
{
    int i = (int)(intptr_t)arg;
    (void)t;
    sl_chan_new(&S.c[i], sizeof(int64_t), S.cap, NULL);
    sl_chan_give(S.c[i], t, NULL);
    sl_spawn(NULL, st_recv, arg, NULL, NULL);
    sl_spawn_on(sl_runtime_reactor(rt, !i), st_send, arg, NULL);
    return 0;
}


/* The streams above through rings of `cells`, channels of capacity cap;
 * the reactors' counters come back for the caller's checks */
static void run_streams(unsigned cells, size_t chcap, uint64_t *fulls, uint64_t *inl, uint64_t *refused)
{
    sl__ring_cells = cells;
    memset(&S, 0, sizeof S);
    S.cap = chcap;
    rt = rt_new(2, &cap);
    sl_reactor *r0 = sl_runtime_reactor(rt, 0), *r1 = sl_runtime_reactor(rt, 1);
    assert_int_equal(sl_spawn_on(r0, st_home, (void *)(intptr_t)0, NULL), 0);
    assert_int_equal(sl_spawn_on(r1, st_home, (void *)(intptr_t)1, NULL), 0);
    run_guarded(&S.finished, 4);
    *fulls = r0->ring_fulls + r1->ring_fulls;
    *inl = r0->ring_inlines + r1->ring_inlines;
    *refused = r0->ring_inline_refused + r1->ring_inline_refused;
    printf("streams, rings of %u, capacity %zu: %llu chains found their ring full, %llu batches "
           "inline, %llu fell back\n", cells, chcap, (unsigned long long)*fulls,
           (unsigned long long)*inl, (unsigned long long)*refused);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(S.rcs[i], 0);
        assert_int_equal(S.rcr[i], 0);
        assert_int_equal(S.ir[i], ST_N);
        assert_int_equal(S.bad[i], 0);
    }
    sl_chan_free(NULL, S.c[0]);
    sl_chan_free(NULL, S.c[1]);
    assert_int_equal(sl_runtime_free(rt), 0);
    sl__ring_cells = SL_RING_CELLS;
}

static void test_ring_pair_fifo_streams(void **s)
{
    (void)s;
    uint64_t fulls, inl, refused;
    run_streams(2, 4, &fulls, &inl, &refused);
}

/* Capacity 1: every batch holds one element and goes inside a cell
 * (rsend.c, ship_small), beside the chains of the grants, asks and
 * top-ups sent alone; with rings of 2 some find a backlog or a full ring
 * and fall back to the heap batch. Order is checked as above: an inline
 * batch passing a chain or a backlog of its pair shows as disorder. */
static void test_ring_inline_small_batches(void **s)
{
    (void)s;
    uint64_t fulls, inl, refused;
    run_streams(SL_RING_CELLS, 1, &fulls, &inl, &refused);
    assert_true(inl > 0);   /* fails if ship never carries a batch inline (rsend.c's rs_small fills a cell) */
    run_streams(2, 1, &fulls, &inl, &refused);
    assert_true(inl > 0);
}

/* ---- both directions of every pair at once: the shared lines ------------------------ */

/* Each of n reactors streams PU.want messages to every other one, all at
 * once, in bursts (a message of its own, posted to itself, sends the next
 * burst): inline in a cell (sl__reactor_post_inline, all 16 bytes used),
 * and every PU_HEAP_EVERY-th as a heap message, in a chain. An inline
 * post that refuses (a full ring, a chain or backlog before it) is tried
 * again at the next burst, so every message meant inline goes inline
 * (a fallback to the heap would leave the rest of the stream chained
 * while the drain that holds the chain lasts): both directions of each
 * pair are busy together,
 * at every position of their rings, each writing and reading its half of
 * a line while the other direction writes and reads the other half. Each
 * receiver checks every message: from whom (its own words and
 * sl__reactor_msg_from), its count in its sender's stream (FIFO per
 * pair, inline and chained together), and its second word, so that a
 * half written by the wrong direction, or a copy from the wrong half,
 * shows. */
#define PU_MAX 16
#define PU_BURST 8
#define PU_HEAP_EVERY 5   /* i % 5 == 4: a heap message */
#define PU_CHECK 0x5a5ac3c3a5a53c3cull

typedef struct pu_heap {
    sl_msg m;
    uint64_t w[2];
} pu_heap;

static struct {
    int n;
    long want;                          /* messages a direction */
    sl_reactor *r[PU_MAX];
    long sent[PU_MAX][PU_MAX];          /* [from][to]: from's thread only */
    long next[PU_MAX][PU_MAX];          /* [to][from]: to's thread only */
    long bad[PU_MAX][PU_MAX], inl[PU_MAX][PU_MAX], heap[PU_MAX][PU_MAX];
    int pump_rc[PU_MAX];                /* a self-post that failed */
    pu_heap *h;                         /* [from][to][i] */
    _Atomic int done;                   /* directions received whole */
} PU;

static int pu_me(void)
{
    sl_reactor *cur = sl_reactor_current();
    for (int i = 0; i < PU.n; i++)
        if (PU.r[i] == cur)
            return i;
    return -1;
}

static void pu_words(uint64_t w[2], int from, int to, long i)
{
    w[0] = (uint64_t)from << 56 | (uint64_t)to << 48 | (uint64_t)i;
    w[1] = ~w[0] ^ PU_CHECK;
}

static void pu_got(const uint64_t w[2], bool inl)
{
    int me = pu_me();
    sl_reactor *src = sl__reactor_msg_from(PU.r[me]);
    int from = (int)(w[0] >> 56);
    guard_tick(me);
    if (from >= PU.n || PU.r[from] != src) {
        PU.bad[me][me]++;   /* no direction to charge it to */
        return;
    }
    uint64_t want[2];
    pu_words(want, from, me, PU.next[me][from]);
    if (w[0] != want[0] || w[1] != want[1])
        PU.bad[me][from]++;
    (inl ? PU.inl : PU.heap)[me][from]++;
    if (++PU.next[me][from] == PU.want && atomic_fetch_add(&PU.done, 1) + 1 == PU.n * (PU.n - 1))
        sl_runtime_stop(rt);
}

static void pu_inline(void *arg)   /* arg: the cell's copy, 8-aligned */
{
    uint64_t w[2];
    memcpy(w, arg, sizeof w);
    pu_got(w, true);
}

static void pu_chain(void *arg) { pu_got(((pu_heap *)arg)->w, false); }

static bool pu_heap_one(long i) { return i % PU_HEAP_EVERY == PU_HEAP_EVERY - 1; }

/* The next message of me's stream to `to`; false if its inline post
 * refused (tried again at the next burst) */
static bool pu_send(int me, int to)
{
    long i = PU.sent[me][to];
    uint64_t w[2];
    pu_words(w, me, to, i);
    if (pu_heap_one(i)) {
        pu_heap *h = &PU.h[((size_t)me * PU.n + (size_t)to) * (size_t)PU.want + (size_t)i];
        memcpy(h->w, w, sizeof w);
        sl_reactor_post_mem(PU.r[to], &h->m, pu_chain, h);
    } else if (sl__reactor_post_inline(PU.r[to], pu_inline, w, sizeof w) < 0) {
        return false;
    }
    PU.sent[me][to]++;
    return true;
}

static void pu_pump(void *arg)
{
    (void)arg;
    int me = pu_me();
    bool more = false;   /* no guard_tick: a pump whose posts all refuse is no progress */
    for (int to = 0; to < PU.n; to++) {
        if (to == me)
            continue;
        for (int b = 0; b < PU_BURST && PU.sent[me][to] < PU.want && pu_send(me, to); b++)
            ;
        more |= PU.sent[me][to] < PU.want;
    }
    if (more && !PU.pump_rc[me])
        PU.pump_rc[me] = sl_reactor_post(PU.r[me], pu_pump, NULL);
}

static void pump_scene(int n, unsigned cells, long want)
{
    sl__ring_cells = cells;
    memset(&PU, 0, sizeof PU);
    PU.n = n;
    PU.want = want;
    PU.h = calloc((size_t)n * (size_t)n * (size_t)want, sizeof *PU.h);
    assert_non_null(PU.h);
    rt = rt_new(n, &cap);
    for (int i = 0; i < n; i++)
        PU.r[i] = sl_runtime_reactor(rt, i);
    for (int i = 0; i < n; i++)
        assert_int_equal(sl_reactor_post(PU.r[i], pu_pump, NULL), 0);
    run_guarded(&PU.done, n * (n - 1));
    long inl = 0, heap = 0, nheap = 0;
    for (long i = 0; i < want; i++)
        nheap += pu_heap_one(i);
    for (int to = 0; to < n; to++) {
        assert_int_equal(PU.pump_rc[to], 0);
        assert_int_equal(PU.bad[to][to], 0);
        for (int from = 0; from < n; from++) {
            if (from == to)
                continue;
            assert_int_equal(PU.sent[from][to], want);
            assert_int_equal(PU.next[to][from], want);
            assert_int_equal(PU.bad[to][from], 0);
            /* each came the way it was sent */
            assert_int_equal(PU.heap[to][from], nheap);
            assert_int_equal(PU.inl[to][from], want - nheap);
            inl += PU.inl[to][from];
            heap += PU.heap[to][from];
        }
    }
    printf("%d reactors, rings of %u, %ld a direction: %ld inline, %ld chained\n", n, cells, want, inl, heap);
    assert_int_equal(sl_runtime_free(rt), 0);
    free(PU.h);
    sl__ring_cells = SL_RING_CELLS;
}

/* One pair, both ways at once: rings of 2 (full at once, backlogs both
 * ways, positions reused every other message) and of SL_RING_CELLS */
static void test_ring_pair_both_ways_busy(void **s)
{
    (void)s;
    pump_scene(2, 2, 20000);
    pump_scene(2, SL_RING_CELLS, 20000);
}

/* Three reactors, three pairs, six streams at once: each pair's lines are
 * its own (a pair's half written by the wrong pair's producer shows) */
static void test_ring_three_pairs(void **s)
{
    (void)s;
    pump_scene(3, 2, 5000);
    pump_scene(3, SL_RING_CELLS, 5000);
}

/* The most reactors that have rings (reactor.c, RING_MAX_REACTORS): 120
 * pairs, 240 streams at once, each pair's allocation found by both of its
 * reactors and freed once (ASan, valgrind) */
static void test_ring_sixteen_reactors(void **s)
{
    (void)s;
    pump_scene(16, 2, 300);
    pump_scene(16, SL_RING_CELLS, 300);
}

/* ---- a ping-pong of messages alone polls with pauses first ---------------------------- */

/* Two reactors hand a count back and forth in messages that ready no task
 * (each message posts the next). Such traffic keeps a reactor in
 * wake_run's loop (its messages make nothing ready, so the idle spin
 * never starts), whose polls yielded the CPU before every look: one
 * sched_yield() a message, 495-665 ns a round trip against 160-218 for
 * the same through tasks (bench/leg-ladder post, task). They pause first
 * now, as the spin's polls do (reactor.c, quick_poll): when the round
 * trips stay short (the pauses are left out while the backoff says the
 * answer comes after them), looks find their message within them at each
 * reactor (before: none) and yield for fewer than half the messages
 * (before: more yields than messages). Since the seventeenth stop the
 * spin takes over after such a short drain (reactor.c, spin_takes_over)
 * and runs the legs as its hits: most messages are met by the spin's
 * looks, and none by wake_run's pauses. */
#define MP_N 20000

static struct {
    _Atomic int done;
    long n;
    uint64_t t0, t1;
} MP;

static void mp_msg(void *arg)
{
    long i = (long)(intptr_t)arg;
    sl_reactor *me = sl_reactor_current();
    guard_tick(me == sl_runtime_reactor(rt, 1));
    if (me == sl_runtime_reactor(rt, 1)) {
        assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 0), mp_msg, (void *)(intptr_t)i), 0);
        return;
    }
    MP.n = i;
    if (i == MP_N) {
        MP.t1 = sl_now_ns();
        atomic_store(&MP.done, 1);
        sl_runtime_stop(rt);
        return;
    }
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 1), mp_msg, (void *)(intptr_t)(i + 1)), 0);
}

static int mp_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    MP.t0 = sl_now_ns();
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 1), mp_msg, (void *)(intptr_t)1), 0);
    return 0;
}

static void test_ring_message_pingpong_pauses(void **s)
{
    (void)s;
    memset(&MP, 0, sizeof MP);
    rt = rt_new(2, &cap);
    sl_reactor *r[2] = { sl_runtime_reactor(rt, 0), sl_runtime_reactor(rt, 1) };
    assert_int_equal(sl_spawn_on(r[0], mp_main, NULL, NULL), 0);
    run_guarded(&MP.done, 1);
    assert_int_equal(MP.n, MP_N);
    double rtt = (double)(MP.t1 - MP.t0) / MP_N;
    sl_reactor_stats st[2];
    for (int i = 0; i < 2; i++) {
        sl_reactor_stats_get(r[i], &st[i]);
        printf("message ping-pong, reactor %d: %llu messages, %llu yields, %llu found within the pauses; "
               "%.0f ns a round trip; brief polls %llu, hits %llu\n", i, (unsigned long long)st[i].msgs,
               (unsigned long long)st[i].spin_yields, (unsigned long long)r[i]->quick_hits, rtt,
               (unsigned long long)st[i].brief_polls, (unsigned long long)st[i].brief_hits);
    }
    /* Asserted when the round trip stayed under 1 us: it was 495-924 ns
     * with a yield before every look, 145-485 without. Slower, the peer's
     * answer comes after the pauses (2.4 us with other builds running,
     * where the peer waits for a CPU; 3.8 us under AddressSanitizer, 9.8
     * under ThreadSanitizer) and the backoff rightly yields. */
    /* wake_run's brief polls, when the spin is left out, count every look
     * and every message they find (a find within the pauses is one of
     * them) */
    for (int i = 0; i < 2; i++) {
        printf("reactor %d: %llu handed to the spin, %llu spin hits\n", i,
               (unsigned long long)r[i]->wake_spins, (unsigned long long)st[i].spin_hits);
        assert_true(st[i].brief_hits <= st[i].brief_polls);
        assert_true(st[i].brief_hits >= r[i]->quick_hits);
    }
    if (rtt < 1000)
        for (int i = 0; i < 2; i++) {
            assert_true(r[i]->wake_spins > 0);
            assert_true(st[i].spin_yields < st[i].msgs / 2);
            assert_true(st[i].spin_hits > st[i].msgs / 2);   /* most answers were met by the spin */
        }
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- who sent a message: sl__reactor_msg_from ----------------------------------------- */

/* Reactor 0 is told, inside each message's fn, which reactor's ring
 * carried it: inline in a cell or in a chain from reactors 1 and 2, and
 * NULL for a post from a foreign thread (the MPSC). An inline handler
 * that leaves the sender out of its cell (rsend.c) relies on it. */
enum { MF_INLINE1, MF_CHAIN1, MF_INLINE2, MF_CHAIN2, MF_FOREIGN, MF_N };

static struct {
    sl_reactor *seen[MF_N];
    int got[MF_N];
    int inline_rc[3];
    int kinds[MF_N];
    _Atomic int done;
} MF;

static void mf_note(int k)   /* reactor 0 */
{
    MF.seen[k] = sl__reactor_msg_from(sl_reactor_current());
    MF.got[k]++;
    int all = 1;
    for (int i = 0; i < MF_N; i++)
        all &= MF.got[i] > 0;
    if (all) {
        atomic_store(&MF.done, 1);
        sl_runtime_stop(rt);
    }
}

static void mf_inline(void *arg)   /* reactor 0: arg is the cell's copy */
{
    int k;
    memcpy(&k, arg, sizeof k);
    mf_note(k);
}

static void mf_chain(void *arg) { mf_note(*(int *)arg); }

static void mf_send(void *arg)   /* reactor 1 or 2 */
{
    int me = *(int *)arg, k = me == 1 ? MF_INLINE1 : MF_INLINE2;
    sl_reactor *r0 = sl_runtime_reactor(rt, 0);
    MF.inline_rc[me] = sl__reactor_post_inline(r0, mf_inline, &k, sizeof k);
    assert_int_equal(sl_reactor_post(r0, mf_chain, &MF.kinds[me == 1 ? MF_CHAIN1 : MF_CHAIN2]), 0);
}

static void test_ring_msg_from(void **s)
{
    (void)s;
    static int who[3] = { 0, 1, 2 };
    memset(&MF, 0, sizeof MF);
    for (int k = 0; k < MF_N; k++)
        MF.kinds[k] = k;
    rt = rt_new(3, &cap);
    sl_reactor *r[3];
    for (int i = 0; i < 3; i++)
        r[i] = sl_runtime_reactor(rt, i);
    assert_int_equal(sl_reactor_post(r[0], mf_chain, &MF.kinds[MF_FOREIGN]), 0);
    assert_int_equal(sl_reactor_post(r[1], mf_send, &who[1]), 0);
    assert_int_equal(sl_reactor_post(r[2], mf_send, &who[2]), 0);
    run_guarded(&MF.done, 1);
    assert_int_equal(MF.inline_rc[1], 0);   /* else the inline case was not run */
    assert_int_equal(MF.inline_rc[2], 0);
    for (int k = 0; k < MF_N; k++)
        assert_int_equal(MF.got[k], 1);
    assert_ptr_equal(MF.seen[MF_INLINE1], r[1]);
    assert_ptr_equal(MF.seen[MF_CHAIN1], r[1]);
    assert_ptr_equal(MF.seen[MF_INLINE2], r[2]);
    assert_ptr_equal(MF.seen[MF_CHAIN2], r[2]);
    assert_null(MF.seen[MF_FOREIGN]);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- cells reused, keeping step (ring.h, "Cells reused") ------------------ */

/* A ping-pong of inline messages between reactors 0 and 1 after one side
 * has sent `skew` extra messages first, so that the two directions' cells
 * start apart. The side behind advances one cell a message until the two
 * meet (keeping step: stepped), and from then both reuse their cell (the
 * answer written on the question's line, the next question on the
 * answer's): every message arrives, in order, and at the end both
 * directions are in one cell. */
#define RA_N 2000

static struct {
    long next[2];   /* the value each reactor expects next */
    int bad;
    int skew;       /* > 0: reactor 0 sends the extras; < 0: reactor 1 */
    int refused;
    _Atomic int done;
} RA;

static void ra_msg(void *arg);

static void ra_post(int to, long v)
{
    if (sl__reactor_post_inline(sl_runtime_reactor(rt, to), ra_msg, &v, sizeof v) < 0)
        RA.refused++;
}

static void ra_msg(void *arg)
{
    long v;
    memcpy(&v, arg, sizeof v);
    int me = sl_reactor_current() == sl_runtime_reactor(rt, 1);
    if (v != RA.next[me])
        RA.bad++;
    RA.next[me] = v + 1;
    if (me == 1) {
        ra_post(0, v);
        return;
    }
    if (v == RA_N) {
        atomic_store(&RA.done, 1);
        sl_runtime_stop(rt);
        return;
    }
    ra_post(1, v + 1);
}

static void ra_extra(void *arg) { (void)arg; }

static void ra_start(void *arg)   /* reactor 0 */
{
    (void)arg;
    ra_post(1, 1);
}

static void ra_extras(void *arg)   /* the reactor that sends them */
{
    int to = *(int *)arg;
    long v = 0;
    /* from reactor 1 the start message is a cell of 1 -> 0 too */
    for (int k = 0; k < abs(RA.skew) - (to == 0); k++)
        if (sl__reactor_post_inline(sl_runtime_reactor(rt, to), ra_extra, &v, sizeof v) < 0)
            RA.refused++;
    if (to == 1)
        ra_start(NULL);
    else   /* from reactor 1: reactor 0 starts once they are sent */
        assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 0), ra_start, NULL), 0);
}

/* Runs the scene; *e0 and *e1 get reactor 0's and 1's ends of their pair */
static void reuse_scene(int skew, sl_ring *e0, sl_ring *e1)
{
    static int to0 = 0, to1 = 1;
    memset(&RA, 0, sizeof RA);
    RA.skew = skew;
    RA.next[0] = 1;   /* reactor 0 gets back 1, 2, ... */
    RA.next[1] = 1;
    rt = rt_new(2, &cap);
    sl_reactor *r0 = sl_runtime_reactor(rt, 0), *r1 = sl_runtime_reactor(rt, 1);
    if (skew >= 0)
        assert_int_equal(sl_reactor_post(r0, ra_extras, &to1), 0);
    else
        assert_int_equal(sl_reactor_post(r1, ra_extras, &to0), 0);
    run_guarded(&RA.done, 1);
    assert_int_equal(RA.refused, 0);
    assert_int_equal(RA.bad, 0);
    assert_int_equal(RA.next[0], RA_N + 1);
    *e0 = *r0->ring_out[1];
    *e1 = *r1->ring_out[0];
    print_message("skew %d: cells %llu and %llu, reused %llu and %llu, stepped %llu and %llu\n", skew,
                  (unsigned long long)e0->pc, (unsigned long long)e1->pc, (unsigned long long)e0->reused,
                  (unsigned long long)e1->reused, (unsigned long long)e0->stepped, (unsigned long long)e1->stepped);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* One side behind by 1 to SL_RING_STEP_MAX cells: it steps, once a cell,
 * and then both stay on one line. Without the step the two reuse their
 * own cells apart (the pcs differ); without reuse, `reused` stays 0. */
static void test_ring_reuse_keeps_step(void **s)
{
    (void)s;
    static const int skews[] = { 1, 3, SL_RING_STEP_MAX, -2, -3 };
    for (size_t i = 0; i < sizeof skews / sizeof *skews; i++) {
        sl_ring e0, e1;
        reuse_scene(skews[i], &e0, &e1);
        assert_int_equal(e0.pc, e1.pc);   /* in one cell: one line */
        /* the side behind steps: the answerer for skew > 0 (reactor 0
         * sent the extras), the asker for skew <= -2 */
        uint64_t want = skews[i] > 0 ? (uint64_t)skews[i] : (uint64_t)(-skews[i] - 1);
        assert_int_equal(e0.stepped + e1.stepped, want);
        /* every leg after the meeting reuses: RA_N each way, less the
         * first messages and the steps */
        assert_true(e0.reused >= RA_N - 2 * SL_RING_STEP_MAX - 2);
        assert_true(e1.reused >= RA_N - 2 * SL_RING_STEP_MAX - 2);
    }
}

/* In step from the start (skew 0; -1 is the start message alone): no
 * step, and every leg but the first of each side reuses. */
static void test_ring_reuse_in_step(void **s)
{
    (void)s;
    for (int skew = 0; skew >= -1; skew--) {
        sl_ring e0, e1;
        reuse_scene(skew, &e0, &e1);
        assert_int_equal(e0.stepped + e1.stepped, 0);
        assert_int_equal(e0.pc, e1.pc);
        assert_true(e0.reused >= RA_N - 2);
        assert_true(e1.reused >= RA_N - 2);
    }
}

/* Past sl__ring_reuse_max reuses in a row a producer advances (so every
 * cell is rewritten well within 2^32 messages and an old sequence number
 * never matches), and its consumer finds the message in the next cell;
 * the other side steps after it. With 8: a ping-pong of RA_N legs
 * advances about RA_N / 9 times each way, every message in order. */
static void test_ring_reuse_forced_advance(void **s)
{
    (void)s;
    sl__ring_reuse_max = 8;
    sl_ring e0, e1;
    reuse_scene(0, &e0, &e1);
    sl__ring_reuse_max = SL_RING_REUSE_MAX;
    assert_int_equal(e0.pc, e1.pc);
    /* each side's messages: reused + advanced (stepped, forced, first) */
    assert_true(e0.reused + e1.reused <= 2 * RA_N * 8 / 9 + 2);
    assert_true(e0.reused + e1.reused >= 2 * RA_N * 8 / 10);
    assert_true(e0.stepped + e1.stepped >= RA_N / 9 - 2);
}

/* A stream one way writes no acks back: its producer advances a cell a
 * message (a reused cell is one the consumer would not look at). Reactor
 * 0 streams 40 messages before the ping-pong starts: they take cells 0 to
 * 39 and the first question cell 40, all advancing; the answers start at
 * cell 0. 40 cells apart is past SL_RING_STEP_MAX, so neither steps: each
 * side reuses its own cell from then on, on two lines. */
static void test_ring_stream_never_reuses(void **s)
{
    (void)s;
    sl_ring e0, e1;
    reuse_scene(40, &e0, &e1);
    assert_int_equal(e0.put, 40 + RA_N);
    assert_int_equal(e0.reused, e0.put - 41);   /* all but the stream and the first question */
    assert_int_equal(e0.pc, 40);
    assert_int_equal(e1.pc, 0);
    assert_int_equal(e0.stepped + e1.stepped, 0);
}

/* ---- ring sizes (ring.c sl_ring_pair_new) --------------------------------------- */

/* sl__ring_cells as a runtime reads it: a power of two up to 4096 is
 * taken (acks are 32 bits and widened against the last; 4096 outstanding
 * is far inside that); 0, a value that is not a power of two, or more
 * reads as SL_RING_CELLS. Each end's counts agree. */
static void test_ring_cells_bad_values(void **s)
{
    (void)s;
    static const struct { unsigned ask, got; } t[] = {
        { 0, SL_RING_CELLS }, { 3, SL_RING_CELLS }, { 100, SL_RING_CELLS }, { 8192, SL_RING_CELLS },
        { 1u << 31, SL_RING_CELLS }, { 1, 1 }, { 2, 2 }, { 4096, 4096 },
    };
    for (size_t k = 0; k < sizeof t / sizeof *t; k++) {
        sl__ring_cells = t[k].ask;
        sl_ring_pair *p = sl_ring_pair_new(NULL, NULL);
        assert_non_null(p);
        for (int e = 0; e < 2; e++) {
            assert_int_equal(p->end[e].ncells, t[k].got);
            assert_int_equal(p->end[e].cmask, t[k].got - 1);
            assert_int_equal(p->end[e].pc, t[k].got - 1);   /* the first message goes to cell 0 */
            assert_ptr_equal(p->end[e].peer, &p->end[!e]);
        }
        free(p);
    }
    sl__ring_cells = SL_RING_CELLS;
}

/* ---- not looking too soon (reactor.c sl__look_adapt) ------------------------ */

/* A reactor as sl__reactor_init leaves the controller: delay 0, backoff 1 */
static sl_reactor *look_new(void)
{
    sl_reactor *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->look_backoff = 1;
    return r;
}

/* n windows whose hits came after `late` empty looks of 16 each (0: on
 * time), `empty` looks before each late one */
static void look_windows(sl_reactor *r, int n, int late, unsigned empty)
{
    for (int w = 0; w < n; w++)
        for (int h = 0; h < SL_LOOK_WINDOW; h++)
            sl__look_adapt(r, h < late ? empty : 0);
}

/* Windows with half or more late hits raise the delay one a window, up
 * to SL_LOOK_MAX; a hit within the window does not act before its end. */
static void test_look_late_raises(void **s)
{
    (void)s;
    sl_reactor *r = look_new();
    for (int h = 0; h < SL_LOOK_WINDOW - 1; h++)
        sl__look_adapt(r, 3);
    assert_int_equal(r->look_delay, 0);   /* the window is not over */
    sl__look_adapt(r, 3);
    assert_int_equal(r->look_delay, 1);
    look_windows(r, 1, SL_LOOK_WINDOW / 2, 1);   /* exactly half: late */
    assert_int_equal(r->look_delay, 2);
    look_windows(r, 1, SL_LOOK_WINDOW / 2 - 1, 1);   /* less than half, more than one: no change */
    assert_int_equal(r->look_delay, 2);
    look_windows(r, 30, SL_LOOK_WINDOW, 16);
    assert_int_equal(r->look_delay, SL_LOOK_MAX);
    assert_int_equal(r->look_ups, SL_LOOK_MAX);
    free(r);
}

/* On-time windows lower the delay by probes: a probe that holds (the
 * next window on time too) keeps it and probes again after one window. */
static void test_look_probe_holds(void **s)
{
    (void)s;
    sl_reactor *r = look_new();
    look_windows(r, 3, SL_LOOK_WINDOW, 2);   /* delay 3, waiting one window */
    assert_int_equal(r->look_delay, 3);
    look_windows(r, 1, 1, 2);   /* one late hit is on time */
    assert_int_equal(r->look_delay, 3);   /* the wait */
    look_windows(r, 1, 0, 0);
    assert_int_equal(r->look_delay, 2);   /* the probe */
    assert_true(r->look_probing);
    look_windows(r, 1, 0, 0);
    assert_int_equal(r->look_delay, 2);   /* it held */
    assert_false(r->look_probing);
    look_windows(r, 1, 0, 0);   /* the wait of one window */
    look_windows(r, 1, 0, 0);
    assert_int_equal(r->look_delay, 1);
    look_windows(r, 4, 0, 0);
    assert_int_equal(r->look_delay, 0);
    look_windows(r, 8, 0, 0);   /* nothing below 0 */
    assert_int_equal(r->look_delay, 0);
    assert_int_equal(r->look_downs, 3);
    free(r);
}

/* A probe whose next window is late goes back up and doubles the wait
 * before the next probe, up to SL_LOOK_BACKOFF_MAX windows: at its right
 * delay a reactor spends one window in 2, 3, 5, ... 65 below it. */
static void test_look_probe_fails_backs_off(void **s)
{
    (void)s;
    sl_reactor *r = look_new();
    look_windows(r, 2, SL_LOOK_WINDOW, 2);   /* delay 2, wait 1 */
    look_windows(r, 1, 0, 0);   /* waits */
    unsigned wait = 1;
    for (int round = 0; round < 10; round++) {
        look_windows(r, 1, 0, 0);   /* the probe */
        assert_int_equal(r->look_delay, 1);
        look_windows(r, 1, SL_LOOK_WINDOW, 2);   /* late again: back up */
        assert_int_equal(r->look_delay, 2);
        wait = wait * 2 > SL_LOOK_BACKOFF_MAX ? SL_LOOK_BACKOFF_MAX : wait * 2;
        assert_int_equal(r->look_wait, wait);
        look_windows(r, (int)wait, 0, 0);   /* the wait, on time at 2 */
        assert_int_equal(r->look_delay, 2);
    }
    assert_int_equal(r->look_backoff, SL_LOOK_BACKOFF_MAX);
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ring_full_one_way),
        cmocka_unit_test(test_ring_backlog_keeps_order),
        cmocka_unit_test(test_ring_full_both_ways),
        cmocka_unit_test(test_ring_pair_fifo_streams),
        cmocka_unit_test(test_ring_inline_small_batches),
        cmocka_unit_test(test_ring_message_pingpong_pauses),
        cmocka_unit_test(test_ring_msg_from),
        cmocka_unit_test(test_ring_reuse_keeps_step),
        cmocka_unit_test(test_ring_reuse_in_step),
        cmocka_unit_test(test_ring_reuse_forced_advance),
        cmocka_unit_test(test_ring_stream_never_reuses),
        cmocka_unit_test(test_ring_cells_bad_values),
        cmocka_unit_test(test_look_late_raises),
        cmocka_unit_test(test_look_probe_holds),
        cmocka_unit_test(test_look_probe_fails_backs_off),
        cmocka_unit_test(test_ring_pair_both_ways_busy),
        cmocka_unit_test(test_ring_three_pairs),
        cmocka_unit_test(test_ring_sixteen_reactors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
