/* stats.h: what a run measured. Each reactor records into its own
 * load_stats (no sharing, no locks); after the run they merge into one
 * load_result, which the reports print.
 *
 * The series has one entry per second of the measured window; a request
 * belongs to the second in which it started (its intended send time in
 * open loop, its actual send time in closed loop), so the series
 * partitions the requests exactly. A second stays open (a full histogram)
 * until every request that started in it must have ended, then it is
 * sealed to its non-empty buckets. */
#ifndef LOAD_STATS_H
#define LOAD_STATS_H
#include <stdbool.h>
#include <stdint.h>
#include "hist.h"

enum { ERR_CONNECT, ERR_RESET, ERR_TIMEOUT, ERR_PROTOCOL, ERR_KINDS };
extern const char *const load_err_names[ERR_KINDS];

#define STATUS_CODES 1000          /* 0..999: http_parser accepts 100..999 */

typedef struct load_sec {
    uint64_t requests, err[ERR_KINDS];
    hist *open;                    /* while requests of this second may still end */
    uint32_t *open_status;         /* STATUS_CODES counters, while open */
    hist_sparse lat;               /* once sealed */
    uint32_t nstatus;
    struct load_status { uint32_t code; uint64_t n; } *status;
} load_sec;

typedef struct load_stats {
    hist *all;
    hist *ok;                      /* 2xx answers only: goodput's latency */
    uint64_t requests, status[STATUS_CODES], err[ERR_KINDS];
    uint64_t behind;               /* sent > LOAD_BEHIND_NS after the intended time */
    uint64_t last_send;            /* ns, of a request of the window */
    size_t nsecs;
    load_sec *secs;
} load_stats;

int load_stats_init(load_stats *s, size_t nsecs);
void load_stats_free(load_stats *s);

/* Records one request that started in second `sec` and took `lat_ns`:
 * an answer with `status` (err < 0) or an error of kind `err`. Returns 0
 * or -ENOMEM (the open second could not be allocated). */
int load_stats_record(load_stats *s, size_t sec, uint64_t lat_ns, int status, int err);

/* Seals second `sec` (no more requests of it will end). Returns 0, -ENOMEM. */
int load_stats_seal(load_stats *s, size_t sec);

/* One second of the merged series. */
typedef struct load_point {
    uint64_t requests, err[ERR_KINDS];
    double p50, p99, max;          /* ns */
    uint32_t nstatus;
    struct load_status *status;
} load_point;

typedef struct load_result {
    hist *all;
    hist *ok;                      /* 2xx answers only */
    uint64_t requests, status[STATUS_CODES], err[ERR_KINDS], behind;
    double duration_s;
    size_t npoints;
    load_point *points;
} load_result;

/* Merges the sealed stats of n reactors. Returns 0 or -ENOMEM. */
int load_result_merge(load_result *r, load_stats *const *s, int n);
void load_result_free(load_result *r);

#endif
