/* admit.h: the adaptive admission controller of one reactor (private to
 * the server; docs/net.md, "Admission").
 *
 * Three mechanisms, each answering one question the server asks:
 *
 *  - How many requests may run at once? An adaptive concurrency limit
 *    (the gradient of Netflix concurrency-limits and Envoy's adaptive
 *    concurrency): every `interval` it compares the mean time requests took
 *    in that window with the quietest window seen lately (the baseline) and
 *    shrinks the limit when the latency rose by more than the queue target
 *    (and doubled), or grows it by sqrt(limit) when the limit was in use and
 *    latency stayed low. So the server runs as many requests as keep its
 *    latency near the baseline, and no more: past that, more concurrency
 *    only makes every request slower (the congestion collapse of issue 14).
 *    Except while requests wait and no more come than end (the queue
 *    stands still, below): then the server keeps up, running more at once
 *    only moves the wait from the queue into it, and the limit grows while
 *    in use (up to a mean latency of one interval).
 *
 *  - How long may a request wait for its turn? At most a bound in time
 *    (sl__admit_max_wait: 2 x the service time, 1 x in a flood), served
 *    first come first served. The server measures how fast it drains its queue (requests
 *    ended per second at its limit); a request that would wait past the
 *    bound at that rate is refused at once, at its head, and a waiter that
 *    nonetheless waited past it (the rate fell) is refused when seen.
 *
 *  - Is the queue growing, or standing still? CoDel's state (as in
 *    Facebook's wangle), kept for the limit: the queue is overloaded when
 *    the oldest waiter waited more than the target all through an
 *    interval (a standing queue, not a burst) and more requests came in
 *    that interval than ended, by more than 1/8 (it grows: a closed loop's
 *    queue stands still, and refusing its clients only makes them send
 *    again), or when it waited more than a whole interval all through one.
 *    The target is `target_ns`, or the time requests take (up to 4 x
 *    target_ns) when that is longer: a wait of one service time is what
 *    any request meets near capacity. CoDel's own actions, refusing
 *    waiters past 2 x target and serving newest first (adaptive LIFO),
 *    are gone: the time bound refuses the same waiters earlier, at their
 *    head, and with the bound CoDel's state was never on at 3 C in the
 *    overload benchmark, so LIFO never engaged (docs/net.md, "Admission").
 *
 *  - Can this request still make it? Deadline-aware admission: each route
 *    learns the median time its requests take (a streaming estimate); a
 *    request whose remaining budget is below it is refused at once instead
 *    of started to fail later.
 *
 * Pure: it sees only what it is told (times in ns, from any clock), so the
 * tests drive it step by step. Not thread-safe: one per reactor. */
#ifndef SL_ADMIT_H
#define SL_ADMIT_H
#include <stdbool.h>
#include <stdint.h>

typedef struct sl_admit_cfg {
    bool adaptive;            /* false: the limit is max_limit, no refusal for queue time */
    uint32_t min_limit;       /* the limit never goes below (>= 1) */
    uint32_t max_limit;       /* nor above (>= min_limit) */
    uint32_t initial_limit;   /* where it starts (clamped to [min, max]) */
    uint64_t target_ns;       /* CoDel target queue delay (> 0) */
    uint64_t interval_ns;     /* CoDel interval and the limit's window (>= target) */
    uint64_t max_wait_ns;     /* the longest wait in the queue (0: 2 x sl__admit_target;
                                 else >= target_ns) */
} sl_admit_cfg;

typedef struct sl_admit {
    sl_admit_cfg cfg;
    double limit;
    /* the current window of latency samples */
    uint64_t win_start, win_sum;
    uint32_t win_n, win_peak;
    /* the baseline: the lowest window mean of this period and the last */
    uint64_t base_cur, base_prev, base_start;
    uint64_t last_mean;       /* the last window's mean latency (for /metrics) */
    /* CoDel */
    uint64_t cd_end, cd_min;  /* the current interval's end and its least delay */
    bool cd_seen;             /* cd_min holds an observation */
    bool overloaded;
    uint32_t cd_in, cd_out;   /* arrivals and departures this interval */
    bool standing;            /* the queue did not empty through the last interval */
    bool growing;             /* and more came in it than ended (by 1/8) */
    bool flooded;             /* the queue empty at <= 1/2 of the looks, and it
                                 refused 1 to 8 x as many as ended */
    uint32_t cd_looks, cd_empty;   /* observations this interval, and of an empty queue */
    uint32_t cd_refused;      /* requests the queue refused this interval (sl__admit_refused) */
    uint32_t storm;           /* a retry storm (refused > 8 x ended): intervals with the
                                 queue empty at some look before it ends; while it
                                 lasts, no refusal at the head (sl__admit_wait_exceeds) */
    uint64_t last_delay;      /* the last observed queue delay (for /metrics) */
    /* the drain rate (sl__admit_drain) */
    uint64_t dr_start;        /* the current window's start */
    uint32_t dr_n;            /* departures in it */
    bool dr_busy;             /* requests waited at every observation in it */
    double drain;             /* departures per second; 0: none measured yet */
} sl_admit;

/* Returns 0, or -EINVAL for a cfg out of the ranges above. */
int sl__admit_check(const sl_admit_cfg *cfg);

/* Starts the controller at `now` (cfg checked). */
void sl__admit_init(sl_admit *a, const sl_admit_cfg *cfg, uint64_t now);

/* How many requests may run now (>= 1). */
uint32_t sl__admit_limit(const sl_admit *a);

/* A request that started with `inflight` requests running (itself
 * included) ended after `lat` ns. */
void sl__admit_sample(sl_admit *a, uint64_t now, uint64_t lat, uint32_t inflight);

/* The queue-delay target CoDel holds the queue to now: cfg.target_ns, or
 * the mean time requests took in the last window (last_mean) when that is
 * longer, at most 4 x cfg.target_ns. */
uint64_t sl__admit_target(const sl_admit *a);

/* Observes the admission queue: its oldest waiter has waited `oldest` ns
 * (0: the queue is empty). Returns true when that waiter is to be
 * refused: it waited more than sl__admit_max_wait, whatever CoDel's state
 * (a request that old is not started: its answer would come back late).
 * Also ends CoDel's intervals (overloaded: through the last one the
 * oldest stayed above sl__admit_target while more came than ended
 * (sl__admit_arrive, _depart), or above cfg.interval_ns) and the drain
 * rate's windows (sl__admit_drain). */
bool sl__admit_observe(sl_admit *a, uint64_t now, uint64_t oldest);

/* How fast the server drains its queue: requests ended per second (an
 * EWMA over windows of interval_ns / 4, ended by sl__admit_observe), 0
 * before any is measured. A window in which requests waited all through
 * is the server at its limit: its departures are the rate, and move the
 * estimate by a quarter towards them (down too: the server got slower).
 * A window in which the queue emptied says only that the server can do at
 * least that much: it may raise the estimate, never lower it, so an idle
 * or quiet server keeps what it measured under load. */
double sl__admit_drain(const sl_admit *a);

/* The longest a request may wait in the queue: cfg.max_wait_ns, or 2 x
 * the longer of the target and the mean time the last window's requests
 * ran (near capacity a request waits about one service time, twice that
 * is a queue, not a burst), 1 x while flooded (through the last CoDel
 * interval the queue was empty at no more than half of the looks and
 * refused more requests than ended, and no more than 8
 * times as many, sl__admit_refused: the queue
 * refills at once, a longer wait only delays every answer); unlike sl__admit_target not capped, so a route of slow
 * requests keeps a queue. */
uint64_t sl__admit_max_wait(const sl_admit *a);

/* Whether a request that would wait behind `ahead` others (it starts
 * after ahead + 1 departures) would wait past sl__admit_max_wait at the
 * drain rate: then it is refused at once, at its head, instead of queued
 * to be refused later (false when not adaptive or no rate is known). */
bool sl__admit_wait_exceeds(const sl_admit *a, uint32_t ahead);

/* A request of the normal lane came to the controller (it will start or
 * wait), and one that came ended: what is asked of the server and what it
 * does, which tell an overload (more comes than leaves) from a queue that
 * stands still. Departures, not starts: a closed loop sends as many as
 * end, whatever the limit does meanwhile. */
void sl__admit_arrive(sl_admit *a);
void sl__admit_depart(sl_admit *a);
/* The queue refused a request (at its head for queue time, a waiter past
 * the bound, or a full queue): what tells a flood (sl__admit_max_wait). */
void sl__admit_refused(sl_admit *a);

/* A route's median service time, estimated from a stream of samples
 * (stochastic approximation: each sample moves the estimate towards
 * itself by a step proportional to the estimate). Zeroed is empty. */
typedef struct sl_admit_need {
    uint64_t med;             /* ns */
    uint64_t at;              /* when the last sample came (the clock of now) */
    uint32_t n;
} sl_admit_need;

#define SL_ADMIT_NEED_MIN_SAMPLES 16   /* the estimate is used from then on */
/* An estimate with no sample for this long is not used: the requests it
 * refuses never run, so they can never teach it that the route got fast
 * again. Without this, a route whose median rose past the budget during an
 * overload refused every later request for good (the demo's overload scene
 * with a 60 ms budget: 0 % 201 after the burst, issue 14). */
#define SL_ADMIT_NEED_STALE_NS 1000000000ULL

void sl__admit_need_add(sl_admit_need *m, uint64_t now, uint64_t ns);

/* The estimate at `now`, or 0 (no refusal) before SL_ADMIT_NEED_MIN_SAMPLES
 * samples or SL_ADMIT_NEED_STALE_NS after the last one. */
uint64_t sl__admit_need(const sl_admit_need *m, uint64_t now);
#endif
