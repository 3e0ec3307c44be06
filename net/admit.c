/* admit.c: the adaptive admission controller (admit.h). */
#include <errno.h>
#include "admit.h"

/* The baseline is the quietest window of the last one or two periods: it
 * follows a lasting change of the workload within 2 periods, but an
 * overload shorter than that cannot raise it (it is a minimum). */
#define BASE_PERIOD_WINDOWS 100
/* A window needs a few samples to mean anything. */
#define WIN_MIN_SAMPLES 4
/* At most this many times the configured target (see sl__admit_target). */
#define TARGET_SCALE_MAX 4

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
        c->interval_ns < c->target_ns)
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
}

uint32_t sl__admit_limit(const sl_admit *a)
{
    return (uint32_t)a->limit;
}

/* The band of a limit: bands start at 1, 2, 3, ... 8, 10, 12, 15, 18, 22,
 * 27, 33, 41, 51, 63, 78, 97 ... (each ~1/4 wider than the last, as the
 * noise of a throughput is in proportion to it). */
static int band_of(uint32_t limit)
{
    int b = 0;
    for (uint32_t lo = 1;; b++) {
        uint32_t step = lo / 4 > 1 ? lo / 4 : 1;
        if (limit < lo + step || b == SL_ADMIT_BANDS - 1)
            return b;
        lo += step;
    }
}

static bool band_fresh(const sl_admit *a, const struct sl_admit_band *b, uint64_t now)
{
    /* now may be older than the measure (a clock read earlier in the
     * same turn): no unsigned wrap to "forgotten" */
    return b->at && (now <= b->at || now - b->at < (uint64_t)SL_ADMIT_BAND_WINDOWS * a->cfg.interval_ns);
}

/* A window that ran at its limit measured the throughput of that limit. */
static void band_add(sl_admit *a, uint64_t now, double rate)
{
    struct sl_admit_band *b = &a->band[band_of((uint32_t)a->limit)];
    /* a moving mean over ~4 windows: one window of a few hundred
     * requests is ~5 % noise, about what tells one band from the next */
    b->rate = band_fresh(a, b, now) ? b->rate + (rate - b->rate) / 4 : rate;
    b->at = now;
    b->limit = (uint32_t)a->limit;
}

/* The best throughput remembered (requests/s; 0: none), what the server
 * can do when it is never short of work. */
static double best_rate(const sl_admit *a, uint64_t now)
{
    double best = 0;
    for (int i = 0; i < SL_ADMIT_BANDS; i++)
        if (band_fresh(a, &a->band[i], now) && a->band[i].rate > best)
            best = a->band[i].rate;
    return best;
}

/* Within 1/16 of the best: one band's step buys less than that past the knee. */
#define KNEE_SLACK 16.0

/* The knee (sl__admit_floor), and whether the band above it is to be
 * tried (none above measured lately). */
static uint32_t knee_of(const sl_admit *a, uint64_t now, bool *top)
{
    double best = 0;
    int hi = -1, k = -1;
    for (int i = 0; i < SL_ADMIT_BANDS; i++)
        if (band_fresh(a, &a->band[i], now)) {
            hi = i;
            if (a->band[i].rate > best)
                best = a->band[i].rate;
        }
    if (hi < 0)
        return 0;
    for (int i = 0; i <= hi && k < 0; i++)
        if (band_fresh(a, &a->band[i], now) && a->band[i].rate >= best * (1 - 1 / KNEE_SLACK))
            k = i;
    uint32_t knee = a->band[k].limit;
    /* the band above is tried again once no band above the knee was
     * measured for SL_ADMIT_PROBE_WINDOWS: one window that did no better
     * (the noise of a few hundred requests, a stall of the machine) must
     * not hold the limit at the knee until it is forgotten */
    *top = true;
    for (int i = k + 1; i <= hi; i++)
        if (band_fresh(a, &a->band[i], now) &&
            (now <= a->band[i].at || now - a->band[i].at < (uint64_t)SL_ADMIT_PROBE_WINDOWS * a->cfg.interval_ns))
            *top = false;
    /* the latency it may cost: at most a mean of baseline + 4 x target
     * at the best throughput (Little's law: in flight = rate x latency) */
    uint64_t base = a->base_cur < a->base_prev ? a->base_cur : a->base_prev;
    if (base != UINT64_MAX) {
        double cap = best * (double)(base + TARGET_SCALE_MAX * a->cfg.target_ns) / 1e9;
        if (knee > cap) {
            knee = cap < 1 ? 1 : (uint32_t)cap;
            *top = false;   /* nothing above is to be tried */
        }
    }
    return knee;
}

uint32_t sl__admit_floor(const sl_admit *a, uint64_t now)
{
    bool top;
    return knee_of(a, now, &top);
}

/* The end of a window: the gradient step. */
static void window_end(sl_admit *a, uint64_t now)
{
    uint64_t mean = a->win_sum / a->win_n;
    a->last_mean = mean;
    /* only while requests waited all through: then the server was never
     * short of work at this limit, and what it ended is what the limit
     * can serve (otherwise it is only what was asked) */
    if (a->standing && a->win_peak >= (uint32_t)a->limit)
        band_add(a, now, (double)a->win_n * 1e9 / (double)(now - a->win_start));
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
     * the gradient alone held it below C (issue 14) */
    if (a->standing && !a->overloaded && mean < a->cfg.interval_ns)
        g = 1.0;
    double l = a->limit * g;
    /* the gradient does not cut the limit below the knee, the least
     * concurrency at which the server had its best throughput: past
     * capacity the latency rises whatever the limit, and the gradient
     * followed it down to 16-24 where the chain, whose requests wait on
     * two other processes and on disk, needs ~64 to serve C (issue 14).
     * Nor without an overload: below the knee a cut either does not bind
     * (fewer run than the limit: they are not slow for their number) or
     * costs throughput; on a machine at load 28, the chain's latency rose
     * in the recovery at 0.5 C, the gradient cut order-svc's limit from
     * 50 to 16, and the queue that then formed had 788 refused. Only
     * what would be cut: a limit above the knee still shrinks, and the
     * knee is bounded by Little's law (knee_of). */
    if (g < 1.0) {
        bool top = false;
        uint32_t knee = knee_of(a, now, &top);
        /* while overloaded and no band above the knee was measured
         * lately, the one above may do better still, so it is tried (for
         * one window; if it does not beat the knee by 1/16, the limit
         * goes back, and it is tried again SL_ADMIT_PROBE_WINDOWS
         * windows later) */
        if (top && knee && a->overloaded)
            knee += knee / 4 > 1 ? knee / 4 : 1;
        if (l < knee)
            l = knee;
    }
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

bool sl__admit_observe(sl_admit *a, uint64_t now, uint64_t oldest)
{
    a->last_delay = oldest;
    if (!a->cfg.adaptive)
        return false;
    uint64_t target = sl__admit_target(a);
    if (now >= a->cd_end) {
        /* a queue that never got shorter than the target for a whole
         * interval is a standing queue; one that did is a burst. A
         * standing queue is an overload only while it grows: one that
         * stands still is the concurrency its clients chose (a closed
         * loop of more clients than the limit), and refusing them does
         * not shorten it, they send again at once. Past a whole interval
         * of standing delay it is refused however it came to be. */
        /* A queue that piled up in a stall (a downstream's checkpoint, a
         * process descheduled: nothing ends for 100 ms) is no overload
         * while fewer than 2/3 of what the server has shown it can serve
         * come (its best throughput remembered): the backlog drains
         * within twice the time it took to form. At 0.5 C after 3 C, one
         * stall of ~100 ms (order-svc's limit full, 374 queued, the
         * oldest 82 ms) had CoDel refuse 843 requests whose budgets were
         * 10 x what they waited, and main's gradient then cut the limit
         * from 72 to 22: 89 % 201 in the recovery, where admission off
         * had 100 % (issue 14). Not more than 2/3: the best was measured
         * closed loop and in bursts, above what the chain serves open
         * loop; counted as what the server could end, it made a 1 C open
         * loop no overload, its queue stood at the backstop and the 201
         * p99 rose from 69 to 954 ms. */
        double can = best_rate(a, now) * (double)(now - (a->cd_end - a->cfg.interval_ns)) / 1e9;
        bool growing = a->cd_in > a->cd_out + (a->cd_out >> GROWTH_SLACK_SHIFT) && 3.0 * a->cd_in >= 2.0 * can;
        a->standing = a->cd_seen && a->cd_min > 0;
        /* Once refusing, it goes on while the queue did not empty and
         * still grows: its own refusals keep the oldest waiter below 2 x
         * target, and requests come in batches (all that one event-loop
         * turn read), so the oldest left after a refusal is often younger
         * than the target. Judged by the target again, every other
         * interval was "no overload": FIFO, no refusal, the queue filled
         * to max_queue, the 201s that came through waited the whole
         * interval and the rest were refused as queue_full (issue 14). A
         * queue that empties, or stops growing, ends it. */
        bool above = a->overloaded ? a->standing : a->cd_seen && a->cd_min > target;
        a->overloaded = above && (growing || a->cd_min > a->cfg.interval_ns);
        a->cd_min = oldest;
        a->cd_seen = true;
        a->cd_end = now + a->cfg.interval_ns;
        a->cd_in = a->cd_out = 0;
    } else if (!a->cd_seen || oldest < a->cd_min) {
        a->cd_min = oldest;
        a->cd_seen = true;
    }
    return a->overloaded && oldest > 2 * target;
}

/* (Counted only when adaptive: a fixed controller never ends an
 * interval, so its counts would only pile up.) */
void sl__admit_arrive(sl_admit *a)
{
    if (a->cfg.adaptive)
        a->cd_in++;
}

void sl__admit_depart(sl_admit *a)
{
    if (a->cfg.adaptive)
        a->cd_out++;
}

bool sl__admit_lifo(const sl_admit *a)
{
    return a->cfg.adaptive && a->overloaded;
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
