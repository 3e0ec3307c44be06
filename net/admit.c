/* admit.c: the adaptive admission controller (admit.h). */
#include <errno.h>
#include "admit.h"

/* The baseline is the quietest window of the last one or two periods: it
 * follows a lasting change of the workload within 2 periods, but an
 * overload shorter than that cannot raise it (it is a minimum). */
#define BASE_PERIOD_WINDOWS 100
/* A window needs a few samples to mean anything. */
#define WIN_MIN_SAMPLES 4

/* The growth step, sqrt(limit) rounded down (no libm for one root). */
static uint32_t root(double x)
{
    uint32_t r = 1;
    while ((double)(r + 1) * (r + 1) <= x)
        r++;
    return r;
}

int sl__admit_check(const sl_admit_cfg *c)
{
    if (!c || c->min_limit < 1 || c->max_limit < c->min_limit || !c->target_ns ||
        c->interval_ns < c->target_ns || (c->max_wait_ns && c->max_wait_ns < c->target_ns))
        return -EINVAL;
    return 0;
}

void sl__admit_init(sl_admit *a, const sl_admit_cfg *cfg, uint64_t now)
{
    *a = (sl_admit){ .cfg = *cfg };
    uint32_t l = cfg->initial_limit;
    l = l < cfg->min_limit ? cfg->min_limit : l > cfg->max_limit ? cfg->max_limit : l;
    a->limit = cfg->adaptive ? l : cfg->max_limit;
    a->win_start = a->base_start = now;
    a->base_cur = a->base_prev = UINT64_MAX;
    a->cd_end = now + cfg->interval_ns;
    a->dr_start = now;
    a->dr_busy = true;
}

uint32_t sl__admit_limit(const sl_admit *a)
{
    return (uint32_t)a->limit;
}

/* The end of a window: the gradient step. */
static void window_end(sl_admit *a, uint64_t now)
{
    uint64_t mean = a->win_sum / a->win_n;
    a->last_mean = mean;
    if (now - a->base_start >= (uint64_t)BASE_PERIOD_WINDOWS * a->cfg.interval_ns) {
        a->base_prev = a->base_cur;
        a->base_cur = UINT64_MAX;
        a->base_start = now;
    }
    if (mean < a->base_cur)
        a->base_cur = mean;
    uint64_t base = a->base_cur < a->base_prev ? a->base_cur : a->base_prev;
    /* latency may rise by the queue target, or double for slow routes,
     * before the limit gives way: a little queueing is what keeps the
     * core busy, more is only delay */
    double allowed = (double)(2 * base > base + a->cfg.target_ns ? 2 * base : base + a->cfg.target_ns);
    double g = mean ? allowed / (double)mean : 1.0;
    g = g < 0.5 ? 0.5 : g > 1.0 ? 1.0 : g;
    /* requests wait and the queue does not grow: the server keeps up, so
     * running more of them at once costs no latency in all (the wait only
     * moves from the queue into the server) and may be what it needs to
     * reach its capacity; a chain whose requests wait on other processes
     * and on disk needs more than twice its quiet latency to get there, so
     * the gradient alone held it below C (issue 14). Not while more come
     * than end, though: a queue refused at its head for queue time stands
     * still too (a request refused there counts as come), and a limit that
     * grew then only made every request slower, and with it the target
     * and the queue's bound (the chain at 3 C: the limit at 70-85, twice
     * main's, and the 201s' p50 25-27 ms) */
    if (a->standing && !a->growing && !a->overloaded && mean < a->cfg.interval_ns)
        g = 1.0;
    double l = a->limit * g;
    /* grow only a limit that was in use: an idle server says nothing
     * about how much more it could take */
    if (g >= 1.0 && a->win_peak >= (uint32_t)a->limit)
        l += root(a->limit);
    l = l < a->cfg.min_limit ? a->cfg.min_limit : l > a->cfg.max_limit ? a->cfg.max_limit : l;
    a->limit = l;
    a->win_start = now;
    a->win_sum = 0;
    a->win_n = a->win_peak = 0;
}

void sl__admit_sample(sl_admit *a, uint64_t now, uint64_t lat, uint32_t inflight)
{
    if (!a->cfg.adaptive)
        return;
    a->win_sum += lat;
    a->win_n++;
    if (inflight > a->win_peak)
        a->win_peak = inflight;
    if (now - a->win_start >= a->cfg.interval_ns && a->win_n >= WIN_MIN_SAMPLES)
        window_end(a, now);
}

/* At most this many times the configured target (see sl__admit_target). */
#define TARGET_SCALE_MAX 4

uint64_t sl__admit_target(const sl_admit *a)
{
    /* A wait shorter than one service time is no standing queue: near
     * capacity, every request finds about the limit's worth of others
     * ahead of it and waits about one service time for its turn. With
     * the durable chain's requests taking 6-10 ms (offload round trips,
     * group commits), a fixed 5 ms target called that overload and shed
     * 39 % at exactly C (issue 14). Bounded, so that a route gone slow
     * cannot let the queue grow without end. */
    uint64_t t = a->cfg.target_ns, cap = TARGET_SCALE_MAX * t;
    return a->last_mean <= t ? t : a->last_mean < cap ? a->last_mean : cap;
}

/* The server is overloaded when more requests came in an interval than
 * ended, by more than the noise of one interval (1/8; a real overload
 * brings 2-3 x). */
#define GROWTH_SLACK_SHIFT 3
/* A flood: the queue refused more requests than ended (at 2-3 C it
 * refuses 60-75 % of what comes: 1.5-4 for each that ends), and was found
 * empty at no more than half of the looks. Not "more than half as many":
 * at 1 C a chain whose open-loop capacity dips (a short queue batches
 * less, docs/overload-log.md) refuses 0.5-0.7 for each that ends, and the
 * flood's shorter bound then batched even less: flooded in 55-82 % of the
 * 1 C samples of two runs in twelve, which kept 0.58-0.65 C against
 * 0.85-0.97 without it; with "more than ended" 0 of four such runs were. Not "never empty" (CoDel's standing
 * queue): a flooded queue still empties whenever a group commit ends many
 * requests at once and the limit takes every waiter in, and the limit,
 * not the queue, holds back much of a flood; at 3 C the chain's queue was
 * never empty all through only about half of the intervals. A burst's
 * queue is empty at most looks.
 * And no more than 8 times as many refused as ended: a closed loop's
 * client sends again as soon as it is refused, so once some of its
 * requests are refused (a drain rate learned in a quiet spell refuses the
 * start of one) it sends and is refused without end, and under one
 * service time a closed loop whose clients wait between one and two
 * would be refused for good (the simulated chain's 64 clients: 1.1 M
 * refusals in 3 s, ~100 for each request that ended). Counting clients
 * instead (a connection once an interval) failed the other way: the load
 * reuses the connections it has free, so at 2 C its 1,200 refusals an
 * interval came from ~230 connections. Past 9 x what the server drains,
 * an offered load looks like such clients, and the bound goes back to two
 * service times: longer waits, no more refusals. */
#define FLOOD_EMPTY_SHIFT 1
#define FLOOD_MAX 8
/* A retry storm: the queue refused more than FLOOD_MAX times as many
 * requests as ended through an interval. Clients that send again the
 * moment they are refused (a closed loop; a retry loop without backoff)
 * are not shed by a refusal: each comes back at once and its refusal
 * takes the core from the requests that run, which then take longer, so
 * the limit falls and more are refused. The chain's closed loop with three
 * CPU hogs on its core served ~600 201/s and refused 20,000 a second,
 * against 2,000-4,000 201/s with admission off. So through a storm and
 * STORM_HOLD intervals after it, nothing is refused at the head for the
 * time it would wait: such clients wait in the queue, bounded in count
 * (max_pending) and in time (a waiter past the bound is refused, which
 * a storm's clients reach only once per bound), and re-sent requests do
 * not count as the queue growing. A storm ends after STORM_HOLD intervals
 * in which the queue was found empty at least once: while its clients
 * all wait (the queue stands) it lasts, since refusing them at the head
 * again would start it again at once. An open loop that brings more than 9 x what the
 * server drains is held the same way; its excess is refused as
 * queue_full or after the bound instead of at once. */
#define STORM_HOLD 10

/* The drain rate's window: a quarter of an interval (at 7,000 requests/s,
 * 175 departures), and its EWMA weight, a quarter: the estimate follows a
 * change within about an interval. */
#define DRAIN_WINDOW_DIV 4
#define DRAIN_WEIGHT 0.25

static void drain_observe(sl_admit *a, uint64_t now, bool waiting)
{
    if (!waiting)
        a->dr_busy = false;
    uint64_t len = now - a->dr_start;
    if (len < a->cfg.interval_ns / DRAIN_WINDOW_DIV)
        return;
    double rate = (double)a->dr_n * 1e9 / (double)len;
    if (a->dr_busy)   /* at its limit all through: this is its rate */
        a->drain = a->drain > 0 ? a->drain + DRAIN_WEIGHT * (rate - a->drain) : rate;
    else if (rate > a->drain)   /* it did at least this much, waiting for work */
        a->drain = rate;
    a->dr_start = now;
    a->dr_n = 0;
    a->dr_busy = waiting;
}

double sl__admit_drain(const sl_admit *a)
{
    return a->drain;
}

uint64_t sl__admit_max_wait(const sl_admit *a)
{
    if (a->cfg.max_wait_ns)
        return a->cfg.max_wait_ns;
    /* Twice the service time, as the target, but not capped with it: a
     * route whose requests take 1 s drains 16 a second at a limit of 16,
     * so under a capped bound (40 ms) even its first waiter would be
     * refused, and such a server would have no queue at all. The queue
     * stays bounded: at most about two limits' worth wait (Little). */
    uint64_t t = a->cfg.target_ns, m = a->last_mean > t ? a->last_mean : t;
    /* A flood (the queue was seldom empty through the last interval and
     * refused more than ended) refills the queue at once:
     * it needs to cover only the jitter of the departures to keep the
     * server busy, and a longer wait only makes every 201 later (the chain
     * at 3 C: 201 p50 18 ms, ~8 ms of it in order-svc's queue). So one
     * service time, as Facebook's CoDel drops its queue's timeout from the
     * interval to the target while the queue has not been empty. Not for
     * a queue that stands still (a closed loop of more clients than the
     * limit: as many come as end, and a refused client sends again at
     * once) or a burst (the queue empties now and then). */
    return a->flooded ? m : 2 * m;
}

bool sl__admit_wait_exceeds(const sl_admit *a, uint32_t ahead)
{
    if (!a->cfg.adaptive || a->drain <= 0 || a->storm)
        return false;
    return ((double)ahead + 1) * 1e9 / a->drain > (double)sl__admit_max_wait(a);
}

bool sl__admit_observe(sl_admit *a, uint64_t now, uint64_t oldest)
{
    a->last_delay = oldest;
    if (!a->cfg.adaptive)
        return false;
    drain_observe(a, now, oldest > 0);
    uint64_t target = sl__admit_target(a);
    if (now >= a->cd_end) {
        /* a queue that never got shorter than the target for a whole
         * interval is a standing queue; one that did is a burst. A
         * standing queue is an overload only while it grows: one that
         * stands still is the concurrency its clients chose (a closed
         * loop of more clients than the limit), and refusing them does
         * not shorten it, they send again at once. Past a whole interval
         * of standing delay it is refused however it came to be. */
        if (a->cd_refused > (uint64_t)a->cd_out * FLOOD_MAX)
            a->storm = STORM_HOLD;
        else if (a->storm && a->cd_empty)   /* ends only once its queue empties now and then */
            a->storm--;
        /* in a storm, a refused request sent again is no new arrival */
        uint32_t in = a->storm ? a->cd_in - (a->cd_refused < a->cd_in ? a->cd_refused : a->cd_in) : a->cd_in;
        bool growing = in > a->cd_out + (a->cd_out >> GROWTH_SLACK_SHIFT);
        a->standing = a->cd_seen && a->cd_min > 0;
        a->growing = growing;
        a->flooded = a->cd_looks && a->cd_empty <= a->cd_looks >> FLOOD_EMPTY_SHIFT &&
                     a->cd_refused > a->cd_out &&
                     a->cd_refused <= (uint64_t)a->cd_out * FLOOD_MAX;
        a->cd_looks = a->cd_empty = a->cd_refused = 0;
        a->overloaded = a->cd_seen && a->cd_min > target && (growing || a->cd_min > a->cfg.interval_ns);
        a->cd_min = oldest;
        a->cd_seen = true;
        a->cd_end = now + a->cfg.interval_ns;
        a->cd_in = a->cd_out = 0;
    } else if (!a->cd_seen || oldest < a->cd_min) {
        a->cd_min = oldest;
        a->cd_seen = true;
    }
    a->cd_looks++;
    a->cd_empty += !oldest;
    return oldest > sl__admit_max_wait(a);
}

/* (Counted only when adaptive: a fixed controller never ends an
 * interval, so its counts would only pile up.) */
void sl__admit_arrive(sl_admit *a)
{
    if (a->cfg.adaptive)
        a->cd_in++;
}

void sl__admit_refused(sl_admit *a)
{
    if (a->cfg.adaptive)
        a->cd_refused++;
}

void sl__admit_depart(sl_admit *a)
{
    if (a->cfg.adaptive) {
        a->cd_out++;
        a->dr_n++;
    }
}

void sl__admit_need_add(sl_admit_need *m, uint64_t now, uint64_t ns)
{
    m->at = now;
    if (m->n++ == 0) {
        m->med = ns;
        return;
    }
    /* a step of 1/16 of the estimate (at least 1 us): the estimate settles
     * where as many samples fall above as below, within a few percent */
    uint64_t step = m->med / 16 > 1000 ? m->med / 16 : 1000;
    if (ns > m->med)
        m->med += ns - m->med < step ? ns - m->med : step;
    else if (ns < m->med)
        m->med -= m->med - ns < step ? m->med - ns : step;
}

uint64_t sl__admit_need(const sl_admit_need *m, uint64_t now)
{
    /* now may be older than the last sample (taken before it, in the same turn) */
    if (m->n < SL_ADMIT_NEED_MIN_SAMPLES || (now > m->at && now - m->at >= SL_ADMIT_NEED_STALE_NS))
        return 0;
    return m->med;
}
