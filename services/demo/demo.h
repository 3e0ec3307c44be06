/* demo.h: what one run of the demo measured, shared by the driver (demo.c)
 * and the report writers (report.c). */
#ifndef DEMO_DEMO_H
#define DEMO_DEMO_H
#include <stdbool.h>
#include <jansson.h>

enum { SVC_ORDER, SVC_INVENTORY, SVC_PAYMENT, NSVC };
enum { PH_WARMUP, PH_STEADY, PH_FAULT, PH_RECOVERY, NPHASE };

extern const char *const svc_name[NSVC];
extern const char *const phase_name[NPHASE];

typedef struct phase_result {
    bool ran;
    double start_s;              /* offset of the phase in the mode's timeline */
    double duration_s;
    long requests;
    long st201, st503, st504, st508, st_other;
    long timeouts, errors;       /* client gave up; other transport errors */
    double p50, p99, max;        /* ms, from intended send time */
    double p99_201;              /* ms, of the 201s alone */
    long peak_inflight[NSVC];    /* sampled from /metrics, -1 unknown */
    json_t *series;              /* sluice-load's per-second series (owned) */
} phase_result;

typedef struct mode_result {
    const char *mode;            /* its label ("safe", "safe, admission off") */
    bool ran;
    /* the overload scene (issue 14): the safe chain under a burst of
     * overload_x x C in PH_FAULT, at half C in PH_WARMUP and PH_RECOVERY,
     * no PH_STEADY; admission on or off */
    bool overload, admission_off;
    double capacity;             /* C: 201/s in a closed loop of capacity_conns connections */
    int capacity_conns;          /* 64; fewer when 64 at once all outlasted the budget (a loaded machine) */
    int rate[NPHASE];            /* per phase; 0: cfg->rate */
    char error[512];             /* why the run stopped early, "" if it did not */
    phase_result ph[NPHASE];
    long tasks_idle[NSVC];       /* /debug/tasks before the load */
    long tasks_after[NSVC];      /* ... after it (and a short settle) */
    long rss_kib[NSVC];
    int exit_status[NSVC];       /* after SIGTERM; -1 had to be killed */
    long orders, checked, disagree, unfinished;   /* the invariant */
    char verdict[768];
} mode_result;

typedef struct demo_cfg {
    const char *bindir;          /* build directory holding services/ */
    bool flat;                   /* bindir holds the programs themselves (installed) */
    const char *report;          /* HTML file */
    const char *logdir;
    const char *trace_dir;       /* --trace: one merged Chrome trace per mode, or NULL */
    int rate, threads, client_timeout_ms, budget_ms;
    int phase_s[NPHASE];
    int overload_s[3];           /* calm, burst, after (seconds); [0] == 0: no overload scene */
    int overload_x;              /* the burst, in multiples of C */
} demo_cfg;

/* A phase's name in a mode (the overload scene calls its own). */
const char *demo_phase_name(const mode_result *m, int p);

/* verdict.c */

/* Writes m->verdict, one line that says what happened, from m's numbers
 * alone (an overload scene's, or a fault mode's: HUNG when more than 1 %
 * of the requests got no answer within the client's timeout and order
 * still holds tasks after the run (or they could not be counted); else
 * failed fast when 508s outnumber 201s; else did not hang). A mode that
 * did not run or stopped early (m->error) "did not complete". */
void demo_verdict(const demo_cfg *cfg, mode_result *m);

/* Tasks alive in service s after the run beyond those before the load;
 * -1 unknown. */
long demo_tasks_left(const mode_result *m, int s);

/* report.c */
void report_text(const demo_cfg *cfg, const mode_result *m, int nmodes);
int report_html(const demo_cfg *cfg, const mode_result *m, int nmodes);

#endif
