/* internal.h: what core's files share and nobody else sees. */
#ifndef SL_INTERNAL_H
#define SL_INTERNAL_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "heap.h"
#include "list.h"
#include "mpsc.h"
#include "sl_chan.h"
#include "sl_diag.h"
#include "sl_lock.h"
#include "sl_runtime.h"
#include "sl_task.h"

#define SL_CONTAINER_OF(p, type, member) \
    ((type *)(void *)((char *)(p) - offsetof(type, member)))

/* task->flags_ */
enum {
    SL_TF_JOINABLE = 1,   /* the spawner holds a reference */
    SL_TF_MEM = 2,        /* the struct is the caller's storage */
    SL_TF_CANCELLED = 4,
    SL_TF_TIMER_OK = 8,   /* the current wait's timer is a sleep's end, not the deadline */
    SL_TF_BLOCKED = 16,   /* counted in reactor->blocked (parked, no timer, local) */
    SL_TF_ZOMBIE = 32,    /* ended, joinable, in the reactor's zombie list */
    SL_TF_INSET = 64,     /* wait-for check: still a suspect */
    SL_TF_REPORTED = 128, /* in a deadlock already reported */
};

/* A channel end held by a task (sl_chan_attach). */
typedef struct sl_trace_ring sl_trace_ring;

typedef struct sl_hold {
    sl_chan *ch;
    sl_task *task;
    SL_LINK(struct sl_hold) tlink;    /* the task's holds_ */
    SL_LINK(struct sl_hold) clink;    /* the channel's holds_ */
    int ends;
} sl_hold;

/* rsend.c's slots: a channel a small message names by a number (1 to
 * SL_RS_SLOTS - 1; 0 names none), with its generation (chan.c,
 * type-stable headers: an older channel at the same address is another).
 * The sender's entry knows the one field that caches its number (a
 * sender record's, a loan's), cleared when the slot is given to another
 * channel or the cache's owner goes. */
#define SL_RS_PEERS 16
#define SL_RS_SLOTS 16
typedef struct sl_rs_slot {
    struct sl_chan *ch;
    uint32_t gen;
} sl_rs_slot;
/* The cache a sender record or a loan keeps of its slot (the seventeenth
 * stop): the slot's offset (0: none), and whether the owner named it
 * since the victim hand last passed (set on every use; rsend.c "slots",
 * the clock). */
typedef struct sl_rs_cache {
    uint8_t off;
    uint8_t used;
} sl_rs_cache;
typedef struct sl_rs_slot_out {
    struct sl_chan *ch;
    uint32_t gen;
    uint8_t used;                /* with no owner: its last owner's `used` as it went */
    sl_rs_cache *owner;
} sl_rs_slot_out;

struct sl_reactor {
    sl_runtime *rt;
    int id;
    struct event_base *base;
    bool own_base;
    void *_Atomic owner;              /* the owning thread's token; NULL: anyone */

    sl_task *rq_head, *rq_tail;       /* ready tasks */
    sl_task *yq_head, *yq_tail;       /* tasks that yielded: ready after the backend's next look */
    struct event *run_ev;
    bool run_scheduled, in_run;       /* run_ev active or armed; a batch under way */
    uint64_t turn_t0;                 /* when the batch under way began (sl_task_await_due_) */
    void (*turn_end[SL_TURN_END_MAX])(sl_reactor *);  /* sl_reactor_at_turn_end's fns, */
    int nturn_end;                                    /* in the order asked */

    SL_LIST(sl_task) tasks;           /* live tasks, newest first (by link_) */
    SL_LIST(sl_task) zombies;         /* ended joinable tasks not yet joined (by link_) */
    size_t ntasks, blocked;
    uint64_t task_ids;                /* the next task id of this reactor's block (task.c, sl__task_id_next) */
    SL_LIST(sl_chan) chans;           /* registered channels, newest first (by link_) */
    size_t nchans;
    SL_LIST(sl_chan) quar;            /* freed heap channels' headers, oldest first (chan.c; by link_) */
    unsigned nquar;
    bool quar_off;                    /* tearing down: free headers at once */
    SL_LIST(sl_chan) chan_spare;      /* headers past the quarantine, for sl_chan_new (chan.c: type-stable) */
    unsigned nchan_spare;

    sl_heap heap;
    struct event *timer_ev;
    uint64_t timer_at;                /* when timer_ev fires; 0: not armed */

    sl_mpsc q;
    /* Per-pair rings (ring.h, reactor.c "rings"): ours to each reactor of
     * our runtime, by its id (NULL array: none, the MPSC carries all), and
     * the other reactors' to us; the rest of a cell's chain being run, and
     * where the next look at the rings starts. */
    struct sl_ring **ring_out, **ring_in, *ring_last;
    int nring_in, ring_rr;
    sl_msg *in_cur;
    sl_reactor *in_from;              /* whose ring carried the message running (sl__reactor_msg_from) */
    int nbacklog;                     /* our rings holding a chain that did not fit */
    uint64_t ring_fulls;              /* chains that found their ring full (tests/test_ring.c) */
    uint64_t ring_inlines, ring_inline_refused;   /* sl__reactor_post_inline: went; fell back */
    uint64_t rs_early;                /* rsend.c ship_early: batches shipped at the send (tests/test_credit.c) */
    uint64_t rs_closed;               /* rsend.c close_others: batches shipped as another channel of their home began one (tests/test_credit.c test_xyx_order) */
    uint64_t rs_filled;               /* rsend.c append: batches shipped mid-callback as they filled (tests/test_credit.c test_filled_batch_order) */
    uint64_t rs_made;                 /* rsend.c: sender records made (tests/test_credit.c: not one a leg) */
    uint32_t rs_nrec;                 /* rsend.c: sender records in rsends (tests/test_credit.c) */
    uint64_t quick_hits;              /* wake_run's polls that found a message within their pauses (reactor.c) */
    _Atomic int space_ready;          /* a consumer freed cells of a ring we wait on */
    int wake_fd;
    struct event *wake_ev;
    /* wake_cb's work again after libevent's next poll, without an eventfd
     * read (a zero-timeout timer: reactor.c, resume_later) */
    struct event *resume_ev;
    /* Read by every producer after every push (reactor.c, wake()): on a
     * line of its own, whatever the struct's alignment, so that our own
     * writes of every leg (the queue's tail, the spin's counters) do not
     * make it a cache miss on each post of a ping-pong. */
    char wake_pad0_[64];
    _Atomic int wake_pending;
    char wake_pad1_[64 - sizeof(int)];
    _Atomic bool stopping;

    uint32_t remote_pending;          /* cross-reactor ops of our tasks in flight */
    SL_LIST(struct rv_proxy) rsel_claims;   /* rsel_claim.c: offers out for selects of ours claimed for them */
    SL_LIST(struct rv_proxy) rsel_holds;    /* rsel_hold.c: selects of ours held for another reactor's meet */
    uint32_t rv_queued;               /* rsel_home.c: other reactors' proxies queued at our channels */
    /* idle spin (reactor.c): its length (0 off), and whether the callback
     * under way has posted or run a cross-reactor message */
    uint64_t spin_ns;
    bool remote_hot;
    bool in_spin_run;                 /* spin_run's drain: a task made ready waits for its run_batch */
    /* wake_run kept wake_pending for the tasks its messages made ready:
     * run_turn's spin takes it over, or run_turn lets it go (reactor.c) */
    bool wake_held;
    /* hits run inside spins since libevent last polled, and the time of
     * the first: bounded (reactor.c, SL_SPIN_RUN_LEGS and SPIN_RUN_NS) */
    unsigned spin_legs;
    uint64_t spin_since;
    uint64_t spin_clock;              /* the clock at the last hit that read it, and hits */
    unsigned spin_clock_left;         /* that may reuse it (reactor.c, SPIN_CLOCK_HITS) */
    unsigned spin_skip, spin_backoff; /* spins to leave out, and the next such count */
    unsigned pause_skip, pause_backoff; /* spins that only yield, and the next such count */
    /* empty spins in a row (a spin that ran no hit), the spins to leave out
     * for them and the next such count, and the clock when the last was
     * left out (0: none since the last wake-up): reactor.c, miss_adapt */
    unsigned spin_empty, empty_skip, empty_backoff;
    uint64_t empty_skipped_at;
    struct sl_rsend *rsends, *rs_dirty;  /* credit senders (rsend.c): all, and to flush */
    struct sl_rrecv *rrecvs, *rr_dirty;  /* fed receivers (rrecv.c): all, and to flush */
    sl_chan *grant_head;              /* our channels with room for queued asks */
    struct sl_rs_loan *rs_owed;       /* loans of our channels with a top-up owed (rsend.c) */
    bool hold_topups;                 /* the flush keeps them for a batch the next tasks may send */
    bool topup_early;                 /* ... but sent a large one: spin_run publishes it first */
    bool rs_owed_big;                 /* a top-up owed may be over HOLD_TOPUP_MAX (rsend.c topup; in padding: moves nothing) */
    struct rs_batch *rs_spares;       /* small batches' memory, done with, for our next (rsend.c) */
    unsigned rs_nspares;
    struct sl_rsend *rs_idle;         /* idle sender records' memory, for the next (rsend.c) */
    unsigned rs_nidle;
    uint64_t rs_batch_mallocs;        /* batches not made from spares (tests/test_credit.c counts them) */
    bool check_deadlock, deadlock_reported;
    /* Published for the other reactors' deadlock checks: nothing is ready
     * and every task waits on something local, with no way out. */
    _Atomic bool quiet;
    /* Published for the all-asleep check across reactors (diag.c): -1 while
     * anything of ours may still run (stored at the start of a callback that
     * may change that); else how many of our tasks are parked with no way out
     * of their own (local waits and cross-reactor operations without a
     * deadline) and not reported yet. `turns` counts callback ends and
     * `steps_pub` is st.steps as of the last one: a checker that reads the
     * same values twice knows nothing ran in between. */
    _Atomic int asleep;
    _Atomic uint64_t turns, steps_pub;
    uint64_t asleep_seen;             /* the checker's stamp of its previous look */
    bool tearing_down;

    /* diagnostics (watch.c) */
    int policy;                       /* SL_DEADLOCK_REPORT / _CANCEL */
    int wg_ms;                        /* wait-for check period, 0 off */
    struct event *wg_ev;
    bool wg_armed;
    unsigned spin_limit;
    _Atomic uint32_t step_seq;        /* odd while a step runs */
    uint32_t seq;
    pthread_t thread;
    _Atomic bool thread_ready;
    /* odd while a turn that may run steps (run_turn, a spin) is under way:
     * the watchdog parks only when it is even and still (watch.c). In the
     * hole after thread_ready: no field after it moves. */
    _Atomic uint32_t busy_seq;
    _Atomic uint64_t stalls;
    _Atomic int bt_state;             /* 0 idle, 1 asked, 2 captured */
    void *bt[32];
    int bt_n;
    char stall_task[160];
    /* the watchdog's own: the same task stalling again within a second is
     * counted, not reported again, so a log is not a wall of backtraces */
    char stall_last[160];
    uint64_t stall_last_at;
    unsigned stall_quiet;

    struct sl_trace_ring *trace;      /* NULL unless tracing was started */
    bool trace_on;                    /* recording (own thread's view) */

    /* Messages posted to other reactors during one of our callbacks: kept
     * in a chain per destination and published when the callback ends, with
     * one atomic exchange and at most one eventfd write per destination
     * (Seastar batches the same way) instead of one of each per message;
     * a chain that grows to CHAIN_MAX (reactor.c) goes at once. */
    bool in_cb;
    sl_reactor *same_rt;              /* publish(): the last destination seen to be of our runtime */
    int ndefer;
    struct { sl_reactor *to; sl_msg *first, *last; int n; } defer[32];

    /* the last deadlock reports, for /debug/deadlocks */
    struct { char *text; uint64_t at; } dl[8];
    unsigned ndl;

    uint64_t rng;
    uint64_t now;                     /* coarse clock for statistics: refreshed per callback (the kernel's
                                       * coarse clock in run_cb, the exact one in timer_cb) */
    sl_task *current;
    sl_reactor_stats st;
    void (*report)(const char *, void *);
    void *report_arg;
    /* deadlock checks run (reactor.c; tests/test_credit.c counts them).
     * Last, so that no field other reactors read (`quiet`, `asleep`,
     * `turns`) moves to another line: a build with it above them ran the
     * ping-pong slower in one alternation and not in the next (docs/core.md,
     * "The cuts of the twelfth stop"), so where it sat is not settled. */
    uint64_t dl_looks;
    /* rsend.c and rrecv.c (issue 17, fourteenth stop), last too, for the
     * same reason: none moves a field above */
    uint64_t rs_now;                  /* send_now: sends that went home at once, no batch made (tests/test_credit.c) */
    uint64_t rs_walks;                /* flushes that looked for idle sender records to retire (tests/test_credit.c) */
    uint64_t rs_held_only;            /* flushes that only held small top-ups (rsend.c sl__rsend_flush; tests/test_credit.c) */
    uint64_t rs_front_topups;         /* top-ups in a batch added to the record in front (rsend.c home_take; tests/test_credit.c) */
    uint32_t rs_ndrop;                /* sender records not to keep idle (an error or a recall came) */
    uint32_t rs_seq;                  /* stamps of batches begun and receives to report, in the order made (rsend.c close_others) */
    uint64_t rs_before;               /* batches the flush shipped ahead of a later receive's report (rsend.c sl__rsend_ship_before; fifteenth stop) */
    /* rsend.c (fifteenth stop), last for the same reason */
    uint64_t rs_small_fast;           /* small batches of one element taken by home_small's own path (tests/test_credit.c) */
    /* the spin's path to the answer (reactor.c; issue 17, fifteenth stop),
     * last for the same reason */
    bool spin_one;                    /* this hit came after an empty look: spin_run runs its first cell only, then its tasks */
    uint64_t spin_ones;               /* hits run so (tests/test_reactor.c) */
    uint64_t spin_clock_runs;         /* clock reads after a hit's run (SPIN_CLOCK_HITS; tests/test_reactor.c) */
    /* the last pieces before the post (issue 17, fifteenth stop), last
     * for the same reason */
    uint64_t rs_held_called;          /* held-only flushes that still called sl__rsend_flush (tests/test_credit.c) */
    uint64_t rs_topups_early;         /* large top-ups sent by a holding flush, before the tasks run (rsend.c; tests/test_credit.c) */
    /* A leg in sixteen bytes (rsend.c "slots"; issue 17, sixteenth stop),
     * last for the same reason. Per other reactor (by id): the channels
     * our small messages to it name by slot number (out: what we defined,
     * the next victim), and those its messages to us name (in: as its
     * definitions ran here). Rings, and so inline messages, exist only
     * between reactors of a runtime of at most 16 (reactor.c
     * RING_MAX_REACTORS, asserted no more than SL_RS_PEERS there). */
    sl_rs_slot_out rs_slot_out[SL_RS_PEERS][SL_RS_SLOTS];
    sl_rs_slot rs_slot_in[SL_RS_PEERS][SL_RS_SLOTS];
    uint8_t rs_slot_next[SL_RS_PEERS];
    /* the row of rs_slot_in last used, and whose it is: found without
     * reading the sender's struct (its `id` shares a line with its ready
     * queue, which it writes at every leg: a miss a leg read that way) */
    struct sl_reactor *rs_in_from;
    sl_rs_slot *rs_in_row;
    uint64_t rs_slot_defs;            /* definitions posted (tests/test_credit.c) */
    uint64_t rs_slot_refused;         /* definitions the ring refused: the message went the general way */
    uint64_t rs_small_big;            /* small messages whose top-up or credit given back passed 16 bits: the general way */
    /* the worker pool's item (issue 17, sixteenth stop), last for the same reason */
    uint64_t rr_late_grows;           /* asks ahead whose window doubled: a receive parked while the last was on its way (rrecv.c; tests/test_credit.c) */
    uint64_t rr_front;                /* receives of held elements taken by sl__rrecv's own path, the record in front (rrecv.c; tests/test_credit.c) */
    /* More than fifteen channels a pair (issue 17, seventeenth stop;
     * rsend.c "slots"), last for the same reason: the row of rs_slot_out
     * last defined into, and whose it is (found by the runtime's array,
     * not by the destination's `id`, as the home's rs_in_from); the
     * owners the victim hand passed over (their `used` cleared), and the
     * slots an owner found still defined (no definition posted). */
    struct sl_reactor *rs_out_to;
    int rs_out_row;
    uint64_t rs_slot_passed;
    uint64_t rs_slot_found;
    /* Not looking too soon (reactor.c sl__look_adapt; issue 17, seventeenth
     * stop), last for the same reason: pauses before the spin's first
     * look, the window's hits and late ones, windows before the next
     * probe and the wait after a failed one, a probe under way; raises and
     * lowers made (tests/test_ring.c) */
    unsigned look_delay, look_n, look_late, look_wait, look_backoff;
    bool look_probing;
    uint64_t look_ups, look_downs;
    /* a ping-pong of messages (issue 17, seventeenth stop), last for the same reason */
    uint64_t wake_spins;              /* wake_run's loops that handed wake_pending to the spin after a short drain (reactor.c spin_takes_over; tests/test_reactor.c) */
};

struct sl_runtime {
    int n;
    sl_reactor **r;
    bool pin;
    _Atomic int state;               /* 0 new, 1 running, 2 done */
    int stall_ms;                    /* 0: no watchdog */
    pthread_t watchdog;
    bool watchdog_on;
    _Atomic bool watchdog_stop;
    /* The watchdog parked (futex word, 1) while every reactor was idle, and
     * whether it may (membarrier: watch.c); its wake-ups and parks since
     * start (sl_reactor_stats.watchdog_wakeups, watchdog_parks). */
    _Atomic int wd_park;
    bool wd_can_park;
    _Atomic uint64_t wd_wakeups, wd_parks;
    FILE *trace_file;
    _Atomic bool trace_want;
    struct sl_offload_pool *offload;  /* offload.c; NULL: off */
    /* opts.stop_when_done: tasks not ended yet, over all reactors, and
     * sl_spawn_on calls whose task is not created yet */
    bool stop_when_done;
    _Atomic long live;
    _Atomic int stop_err;            /* what run returns: -EDEADLK (policy STOP) */
    _Atomic uint64_t asleep_stamp;   /* the all-asleep deadlock last reported (diag.c) */
};

/* reactor.c */
/* The per-pair rings of a runtime's reactors (after every reactor's init),
 * and one reactor's outgoing ones (after every reactor's teardown). */
int sl__reactor_rings_new(sl_runtime *rt);
void sl__reactor_rings_free(sl_reactor *r);
/* Bytes a ring cell carries inline (ring.h): a small message is copied
 * in, and the consumer runs its fn on a copy taken out of the cell. 16, so
 * that the cells of one position of both directions of a pair are one line
 * (docs/core.md, "One line for both directions (sixteenth stop)"). */
#define SL_RING_INLINE 16
/* A small message carried inside the pair's ring cell (reactor.c): 0, or
 * -EAGAIN and the caller posts it the usual way. len <= SL_RING_INLINE (16). */
int sl__reactor_post_inline(sl_reactor *to, void (*fn)(void *), const void *data, size_t len);
/* The same for a message of exactly the cell's room (SL_RING_INLINE, 16
 * bytes, all of them read): copied by fixed moves, not a memcpy call
 * (rsend.c's rs_small). 0, or -EAGAIN as above. */
int sl__reactor_post_cell(sl_reactor *to, void (*fn)(void *), const void *data);
/* rsend.c: the largest top-up or credit given back a small message
 * carries (UINT16_MAX: its fields); tests lower it to see the general
 * way taken. At least HOLD_TOPUP_MAX (16) or 0. */
extern uint32_t sl__rs_small_max;
/* Inside a message's fn on r's thread: the reactor whose ring (of r's
 * runtime) carried it, inline or in a chain; NULL if it came through the
 * MPSC (a foreign thread, r itself, another runtime's reactor, a pair
 * with no rings). A message posted inline always has one: its handler may
 * leave the sender out of the cell. Outside a message: stale, not to be read. */
static inline sl_reactor *sl__reactor_msg_from(const sl_reactor *r) { return r->in_from; }
/* reactor.c: a spin's quick looks found their message after `empty`
 * empty ones (SPIN_QUICK_POLLS: none within them); adapts look_delay */
void sl__look_adapt(sl_reactor *r, unsigned empty);
#define SL_LOOK_WINDOW 16
#define SL_LOOK_MAX 12
#define SL_LOOK_BACKOFF_MAX 64
/* cpus.c: the CPU quota (cpu.max, rounded up) of the cgroup v2 named in
 * `proc_cgroup` (a /proc/self/cgroup) or any above it, under `root`; 0 if
 * none. Files as arguments: unit-tested on a fake tree. */
int sl__cpus_quota(const char *proc_cgroup, const char *root);

int sl__reactor_init(sl_reactor *r, sl_runtime *rt, int id, struct event_base *base,
                     const sl_runtime_opts *opts);
int sl__reactor_teardown(sl_reactor *r);
int sl__reactor_teardown_tasks(sl_reactor *r);
int sl__reactor_drain(sl_reactor *r);
void sl__reactor_stop(sl_reactor *r);
void sl__set_current_reactor(sl_reactor *r);
void sl__claim(sl_reactor *r, bool mine);   /* owned by the calling thread, or by nobody */
bool sl__on_reactor(const sl_reactor *r);   /* may the calling thread touch r? */
void sl__ready(sl_task *t);                  /* append to r's run queue */
void sl__yield(sl_task *t);                  /* ready again after the next I/O poll */
void sl__report(sl_reactor *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl__report_text(sl_reactor *r, const char *text);   /* serialized sink call */
void sl__report_text_from_watchdog(sl_reactor *r, const char *text, int ms);
uint64_t sl__rand(sl_reactor *r);

/* runtime.c: opts.stop_when_done's count of tasks (no-ops without it) */
void sl__live_add(sl_runtime *rt);
void sl__live_sub(sl_runtime *rt);

/* task.c */
/* Parks t on `obj` of kind `kind`; the caller has already queued t's waiter
 * node(s). `until` is a wait-specific end (sleep) or 0. Returns SL_PENDING, or
 * the error that forbids waiting (cancelled, deadline passed), in which case
 * the caller must dequeue its node(s) again. */
int sl__park(sl_task *t, sl_wait_kind kind, void *obj, uint64_t until);
/* The error a wait must fail with right now (cancel), or 0. */
static inline int sl__check(const sl_task *t) { return t->cancel_err_; }
/* Ends t's current wait with `result` and makes it ready. */
void sl__wake(sl_task *t, int result);
/* Removes t's waiter node(s) from whatever it is parked on. */
void sl__unpark(sl_task *t);
/* sl_task_park_as with a wait kind of core's own (SL_WAIT_OFFLOAD): no
 * deadlock suspect, on_abort(t, obj, err) at its deadline or cancel. */
int sl__park_external(sl_task *t, sl_wait_kind kind, void *obj,
                      void (*on_abort)(sl_task *, void *, int), const char *what);
/* Takes back a park of that kind that has just succeeded, before anything
 * could end it (the work it waits for was refused after all). */
void sl__park_undo(sl_task *t);
/* Ends such a wait with `result` (sl_task_unpark for core's own kinds). */
void sl__external_wake(sl_task *t, int result);
void sl__timer_fire(sl_reactor *r, uint64_t now);
void sl__timer_rearm(sl_reactor *r);
void sl__run_task(sl_task *t);
void sl__task_destroy(sl_task *t, bool leaked);
int sl__free_zombies(sl_reactor *r);
/* Whether (t, id) is a live task of r: never dereferences t, which may be
 * an ended task's stale pointer. O(live tasks): for diagnostics. */
bool sl__task_alive(sl_reactor *r, const sl_task *t, uint64_t id);
/* Whether t (live, or NULL for code outside tasks) is the one recorded as
 * (owner, owner_id): the pointer alone would pass a later task made at an
 * ended owner's address. */
static inline bool sl__task_is(const sl_task *t, const sl_task *owner, uint64_t owner_id)
{
    return t == owner && (!t || t->id_ == owner_id);
}

/* Generations of a channel's header (chan.c, "type-stable headers"). */
/* Another reactor, when its task names the channel (alive then, by the
 * user's contract): the generation its messages will carry. */
static inline uint32_t sl__chan_gen(const sl_chan *ch)
{
    return __atomic_load_n(&ch->gen_, __ATOMIC_ACQUIRE);
}
/* The home: is the channel a message of generation `gen` names the one
 * here, alive? False: it was freed (and the header may be another's). */
static inline bool sl__chan_alive_gen(const sl_chan *ch, uint32_t gen)
{
    return __atomic_load_n(&ch->gen_, __ATOMIC_RELAXED) == gen;
}
/* The home: the generation the channel had while alive (its free bumped
 * it once): what the home's messages about it carry, before and after
 * the free, while the header is kept for them. */
static inline uint32_t sl__chan_live_gen(const sl_chan *ch)
{
    return __atomic_load_n(&ch->gen_, __ATOMIC_RELAXED) - ch->freed_;
}
static inline void sl__chan_gen_bump(sl_chan *ch)
{
    __atomic_store_n(&ch->gen_, __atomic_load_n(&ch->gen_, __ATOMIC_RELAXED) + 1, __ATOMIC_RELEASE);
}

/* Is w in q (not merely in some queue)? A walk: for unparks only. */
static inline bool sl__wq_holds(const sl_wq *q, const sl_waiter *w)
{
    for (const sl_waiter *x = q->head; x; x = x->link.next)
        if (x == w)
            return true;
    return false;
}

/* chan.c, select.c, lock.c, group.c: detach a parked task's node(s). */
void sl__chan_unpark(sl_task *t);
void sl__select_unpark(sl_task *t);
void sl__mutex_unpark(sl_task *t);
void sl__mutex_release_all(sl_task *t);
void sl__sem_unpark(sl_task *t);
void sl__join_unpark(sl_task *t);
void sl__group_unpark(sl_task *t);
void sl__group_leave(sl_task *t);
void sl__chan_release_holds(sl_task *t);
void sl__chan_teardown(sl_chan *ch);
void sl__chan_quarantine_free(sl_reactor *r);
/* Completes a waiter of a channel queue: wakes its task (select aware) or,
 * for a proxy, sends the result home. */
void sl__waiter_fire(sl_waiter *w, int result);
bool sl__waiter_is_proxy(const sl_waiter *w);

/* remote.c: cross-reactor send/recv. */
int sl__remote_op(sl_task *t, sl_chan *ch, uint32_t gen, int op, void *buf);
void sl__remote_unpark(sl_task *t);
bool sl__remote_waits(const sl_task *t);    /* parked remotely, no withdrawal under way */
/* Diagnostics (diag.c): the name and capacity of the other reactor's
 * channel a task waits on (a round trip; for credit; for a lend), copied
 * when it parked into memory of its own reactor: the channel is never
 * read there (its home may have freed it). name NULL: not known. */
void sl__remote_waits_on(const sl_task *t, const char **name, size_t *cap);
/* rsend.c, rrecv.c: from r's record of (ch, gen), or with w non-NULL the
 * record of ch whose queue holds w (a parked task's node: the task does
 * not keep the generation it read). */
bool sl__rsend_chan_info(const sl_reactor *r, const sl_chan *ch, uint32_t gen, const sl_waiter *w,
                         const char **name, size_t *cap);
bool sl__rrecv_chan_info(const sl_reactor *r, const sl_chan *ch, uint32_t gen, const sl_waiter *w,
                         const char **name, size_t *cap);
bool sl__rsel_case_info(const sl_case *c, const char **name, size_t *cap);
/* rsel.c, for diag.c: a task of ours offering itself to another reactor's
 * select (a blocking one, a claimed select) whose channel was freed since:
 * the offering waiter, its channel not to be read; else NULL. */
const sl_waiter *sl__rsel_offer_gone(const sl_task *t);

/* rsend.c: sends by credit on a buffered channel of another reactor. */
#define SL_RSEND_TAG 0x52534e44u   /* t->w_.tag of a task waiting for credit */
int sl__rsend(sl_task *t, sl_chan *ch, uint32_t gen, const void *elem, uint64_t until);
bool sl__rsend_parked(const sl_task *t);
void sl__rsend_unpark(sl_task *t);
int sl__rsend_flush(sl_reactor *r, bool all);   /* how many things it sent or served */
/* The open batches homed on `home` begun before stamp `before` (rs_seq)
 * leave now, before a report made after them (rrecv.c's flush); how many. */
int sl__rsend_ship_before(sl_reactor *r, const sl_reactor *home, uint32_t before);
/* Tests: batches begun from now on hold at most `max` elements (0: all the
 * credit in hand), so one fills inside a step. Set while no runtime runs. */
void sl__rsend_set_batch_room(uint32_t max);
void sl__rsend_free_all(sl_reactor *r);
void sl__rsend_grant(sl_chan *ch);
bool sl__rsend_ask_first(sl_chan *ch);   /* home: room goes to a passed-over ask? */
void sl__rsend_fail_asks(sl_chan *ch, int err);
void sl__rsend_drop_asks(sl_chan *ch);     /* teardown: free them, answer nobody */
void sl__rsend_recall(sl_chan *ch);        /* home: room wanted, lent credit comes back */
void sl__rsend_free_loans(sl_chan *ch);    /* the header goes: its loan records too */
/* select.c's remote send cases (sl_select): ready = credit in hand here;
 * the case node waits in this reactor's queue for credit. */
/* `gen`: the channel's generation, as the case read it (sl_case gen_):
 * the record is (ch, gen)'s (rsend.c find). */
bool sl__rsend_ready(sl_reactor *r, const sl_chan *ch, uint32_t gen);
sl_wq *sl__rsend_queue(sl_reactor *r, const sl_chan *ch, uint32_t gen);   /* NULL: none */
void sl__rsend_pin(sl_reactor *r, const sl_chan *ch, uint32_t gen, int d);   /* a held/claimed select's node off it: kept */
int sl__rsend_push(sl_reactor *r, sl_chan *ch, uint32_t gen, sl_waiter *w);
void sl__rsend_want(sl_reactor *r, const sl_chan *ch, uint32_t gen);     /* parked: ask home */
int sl__rsend_poll(sl_reactor *r, sl_chan *ch, uint32_t gen);            /* not ready, not parking: ask */
/* An element's copy (chan.c, rsend.c, rrecv.c): the usual sizes by fixed
 * moves, inlined; a memcpy call with a variable length was ~20
 * instructions a send or receive (sixteenth stop). */
static inline void sl__copy_elem(void *dst, const void *src, size_t esz)
{
    switch (esz) {
    case 8: memcpy(dst, src, 8); break;
    case 4: memcpy(dst, src, 4); break;
    case 16: memcpy(dst, src, 16); break;
    default: memcpy(dst, src, esz);
    }
}

/* rrecv.c: receives on a buffered channel of another reactor, fed ahead. */
#define SL_RRECV_TAG 0x52524356u   /* t->w_.tag of a task waiting for a lend */
/* Fed (lent or given), not a round trip? Inlined: a call at every
 * receive of another reactor (sixteenth stop). Lending off, elements are
 * given instead (the round trip is not used). */
static inline bool sl__rrecv_wanted(sl_reactor *r, const sl_chan *ch)
{
    (void)r;
    return ch->cap_ && !ch->expiring_ && ch->heap_;
}
int sl__rrecv(sl_task *t, sl_chan *ch, uint32_t gen, void *elem);
bool sl__rrecv_parked(const sl_task *t);
void sl__rrecv_unpark(sl_task *t);
int sl__rrecv_flush(sl_reactor *r, bool all);
/* Tests: `after(arg)` runs after each report, answer or ask goes home
 * (ship_dirty), on the receiving reactor's thread; NULL: none. Set while
 * no runtime runs. */
void sl__rrecv_set_report_hook(void (*after)(void *), void *arg);
int sl__rrecv_ship_to(sl_reactor *r, const sl_reactor *home, uint32_t before);   /* before a batch leaves mid-callback (rsend.c) */
int sl__rrecv_ship_all_to(sl_reactor *r, const sl_reactor *home);   /* all owed to home, before a round trip (remote.c) */
void sl__rrecv_free_all(sl_reactor *r);
bool sl__rrecv_ask_first(sl_chan *ch);         /* home: element goes to a passed-over ask? */
void sl__rrecv_lend_first(sl_chan *ch);
void sl__rrecv_serve(sl_chan *ch);              /* home, turn end: lend to queued asks */
void sl__rrecv_recall(sl_chan *ch, bool contended);
void sl__rrecv_fail_asks(sl_chan *ch, int err);
void sl__rrecv_drop_asks(sl_chan *ch);
/* select.c's remote receive cases: ready = an element held here. */
bool sl__rrecv_ready(sl_reactor *r, const sl_chan *ch, uint32_t gen);
sl_wq *sl__rrecv_queue(sl_reactor *r, const sl_chan *ch, uint32_t gen);   /* NULL: none */
void sl__rrecv_pin(sl_reactor *r, const sl_chan *ch, uint32_t gen, int d);   /* a held/claimed select's node off it: kept */
void sl__select_unpin(sl_task *t);   /* select.c: a held or claimed select fires: its records may go */
int sl__rrecv_push(sl_reactor *r, sl_chan *ch, uint32_t gen, sl_waiter *w);
int sl__rrecv_poll(sl_reactor *r, sl_chan *ch, uint32_t gen);            /* not ready, not parking: ask */
/* A wait that ends on the task's own reactor (credit, lend): a deadline
 * or cancel just leaves it, nothing was taken. */
static inline bool sl__remote_local(const sl_task *t)
{
    return t->wait_kind_ == SL_WAIT_REMOTE && (t->w_.tag == SL_RSEND_TAG || t->w_.tag == SL_RRECV_TAG);
}
/* chan.c, for rrecv.c: the first n lent elements were received there; the
 * lent ones left come back (freed channel: destroyed); parked receivers
 * at the home take from the ring once nothing is lent. */
void sl__chan_lent_taken(sl_chan *ch, size_t n);
void sl__chan_lent_back(sl_chan *ch);
void sl__chan_given_taken(sl_chan *ch, size_t n);
void sl__chan_given_back(sl_chan *ch, const unsigned char *elems, size_t n);
void sl__rrecv_recall_given(sl_chan *ch);   /* free: given elements come back, destroyed */
void sl__rrecv_drop_given(sl_chan *ch);     /* teardown: forget the records */
void sl__chan_serve_local(sl_chan *ch);
void sl__chan_turn_end(sl_chan *ch);
/* chan.c: a batch's elements enter the channel; `returned` credit comes
 * back with them (their own included). `untils`: the elements' deadlines
 * (n unaligned uint64_t), or NULL for none. */
void sl__chan_maybe_release(sl_chan *ch);
void sl__chan_admit(sl_chan *ch, const unsigned char *elems, const unsigned char *untils,
                    uint32_t n, uint32_t returned);
/* chan.c: sl__chan_admit of one element with its own credit, no deadline,
 * into a channel not freed (a small batch's: rsend.c home_small) */
void sl__chan_admit_one(sl_chan *ch, const void *elem);
/* chan.c: drops a full channel's expired elements; true if room was made */
bool sl__chan_sweep(sl_chan *ch);
void sl__proxy_fire(sl_waiter *w, int result);

/* rsel.c (and rsel_*.c, map in rsel.h): select cases on another reactor's rendezvous channel, by offer */
#define SL_CASE_RV 2                     /* a parked case's w_.tag: by offer, its proxy in w_.until (select.c) */
#define SL_CASE_GONE 3                   /* a claimed select's case whose channel was freed (rsel.c) */
#define SL_OFFER_TAG 0x4f464652u         /* t->w_.tag of a home task whose offer is out */
#define SL_OFFER_ABORT_TAG 0x4f464641u   /* ... whose deadline or cancel came meanwhile */
/* t->w_.tag of a select parked with remote cases: counted in the
 * reactor's remote_pending (it waits for another reactor) */
#define SL_SELR_TAG 0x53454c52u
/* A select's proxy from another reactor (rsel.c), in a channel queue */
static inline bool sl__waiter_is_rvproxy(const sl_waiter *w) { return !w->task && w->idx < 0; }
int sl__rsel_prepare(sl_task *t, sl_case *c);      /* R: the case's proxy; -ENOMEM */
void sl__rsel_post(sl_task *t, sl_case *c);        /* R: parked: it goes home */
void sl__rsel_detach(sl_reactor *r, sl_case *c);   /* R: the select stops waiting */
bool sl__rsel_offer(sl_chan *ch, int cp_op, sl_waiter *cp);   /* H: a round trip offers */
int sl__rsel_offer_task(sl_task *t, sl_chan *ch, int op, void *buf, uint64_t until);   /* H: -EAGAIN: none */
void sl__rsel_offer_head(sl_chan *ch);   /* H: an expiring channel's head to a receive proxy */
void sl__chan_expire_head(sl_chan *ch);
void sl__chan_hold_head(sl_chan *ch, void *buf, uint64_t *until);
void sl__chan_held_back(sl_chan *ch, const void *buf, uint64_t until, bool accepted);
void sl__rsel_fire(sl_waiter *w, int err);
void sl__rsel_drop_queued(sl_waiter *w);
void sl__rsel_task_abort(sl_task *t);
bool sl__rsel_claim(sl_task *t, sl_case *c);   /* H: a select parked here offered to a proxy; false: none */
bool sl__rsel_select_offered(const sl_task *t);   /* a select claimed or held for an offer (diag.c) */
int sl__rsel_held_waiting(const sl_task *t);   /* held by another reactor's meet: messages waiting for it; else -1 */
int sl__rsel_held_home(const sl_task *t);      /* ... the holding home's reactor id */
int sl__rsel_claim_waiting(const sl_task *t);  /* claimed here with proxies elsewhere: messages waiting for it; else -1 */
int sl__rsel_claim_from(const sl_task *t);     /* ... the reactor id of the select it is offered to */
bool sl__select_local_only(const sl_task *t);  /* select.c, for rsel_claim.c */
bool sl__select_has_proxies(const sl_task *t); /* a case by offer at another home */
void sl__select_take(sl_task *t);
void sl__select_hold(sl_task *t);   /* R: a select held for its rendezvous send case (rsel.c) */
void sl__select_detach_proxies(sl_task *t);   /* R: a held select's wait ends: its proxies withdrawn */
int sl__select_rematch(sl_task *t);
void sl__select_put_back(sl_task *t);
void sl__rsel_inject_failure(int nth);   /* tests: the nth proxy from now fails (-1: none) */
void sl__rsel_set_hooks(void (*at_r_offer)(void *), void (*at_h_offer)(void *), void *arg);   /* tests */
/* Tests: the watchdogs started from now on find membarrier unavailable
 * (watch.c): they tick and never park. */
void sl__watch_test_no_membarrier(bool on);
void sl__rsel_set_hold_hook(void (*at_hold)(void *, int phase), void *arg);   /* tests: rsel.c's phases */
/* remote.c, for rsel.c: a round trip's request as an offering counterpart */
void sl__remote_offered(sl_waiter *w);
bool sl__remote_offer_aborted(const sl_waiter *w);
void sl__remote_offer_end(sl_waiter *w, int rc, bool withdrawn);
void sl__remote_requeued(sl_waiter *w);
void sl__remote_chan_gone(sl_waiter *w);
void sl__rsel_chan_freed(sl_chan *ch);   /* chan.c's free: offers out forget the channel */

/* watch.c */
void sl__watch_init(sl_reactor *r, const sl_runtime_opts *opts);
void sl__watch_free(sl_reactor *r);
void sl__watch_blocked(sl_reactor *r);            /* a task became blocked */
void sl__deadlock_act(sl_reactor *r, sl_task **set, size_t n);   /* the policy */
int sl__watchdog_start(sl_runtime *rt);
void sl__watchdog_stop(sl_runtime *rt);
void sl__watchdog_wake(sl_runtime *rt);   /* it is parked: a reactor has work */
void sl__spin(sl_task *t);
int sl__stall_signal(void);
sl_reactor *sl__current_reactor_raw(void);                         /* an empty poll */
static inline void sl__step_mark(sl_reactor *r)
{
    atomic_store_explicit(&r->step_seq, ++r->seq, memory_order_relaxed);
}

/* offload.c */
int sl__offload_new(sl_runtime *rt, const sl_runtime_opts *opts);
int sl__offload_report(sl_runtime *rt);   /* work still running, as leaks */
void sl__offload_stop(sl_runtime *rt);    /* waits for it, stops the workers */
void sl__offload_free(sl_runtime *rt);

/* trace.c */
void sl__trace_step(sl_reactor *r, const sl_task *t, uint64_t start);
void sl__trace_sync(void *arg);
int sl__trace_write(sl_runtime *rt);
static inline bool sl__tracing(const sl_reactor *r) { return r->trace_on; }

/* diag.c */
void sl__deadlock_maybe(sl_reactor *r);
void sl__deadlock_keep(sl_reactor *r, const char *text);
bool sl__stuck(sl_reactor *r);
void sl__callback_end(sl_reactor *r);
void sl__callback_begin(sl_reactor *r);     /* a callback that may make tasks ready */
void sl__asleep_check(sl_reactor *r);        /* the all-asleep check across reactors */
bool sl__others_may_act(sl_reactor *r);     /* another reactor may run, or a message waits (a cut) */
int sl__destroy_leaked_tasks(sl_reactor *r);
void sl__report_leaks_before_teardown(sl_reactor *r);
int sl__release_leaked_chans(sl_reactor *r);
void sl__remote_drop_proxy(sl_waiter *w);
#endif
