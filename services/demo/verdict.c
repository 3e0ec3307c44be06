/* verdict.c: what a mode's numbers say happened (see demo.h). */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "demo.h"

static long total(const mode_result *m, size_t off)
{
    long n = 0;
    for (int p = 0; p < NPHASE; p++)
        n += *(const long *)((const char *)&m->ph[p] + off);
    return n;
}
#define TOTAL(m, field) total((m), offsetof(phase_result, field))

long demo_tasks_left(const mode_result *m, int s)
{
    return m->tasks_after[s] < 0 || m->tasks_idle[s] < 0 ? -1 : m->tasks_after[s] - m->tasks_idle[s];
}

/* The chain hung when the client got no answer to more than 1 % of its
 * requests within its timeout AND order still holds requests after the
 * run (its tasks beyond idle, after the settle): the seed's deadlock keeps
 * them without end. Client timeouts alone are no hang: on a busy machine
 * the load client runs late (it measures from the intended send time) and
 * reads answers late, and since the budget travels with each request the
 * chain's 504 and the client's give-up fall on the same instant; every
 * such request still ended in the chain (test_demo failed so at load 20:
 * 5 client timeouts of 350 in guarded, nothing held; likewise with the
 * load client stopped for 900 ms). */
void demo_verdict(const demo_cfg *cfg, mode_result *m)
{
    long req = TOTAL(m, requests), to = TOTAL(m, timeouts), ok = TOTAL(m, st201);
    long s508 = TOTAL(m, st508);
    const phase_result *f = &m->ph[PH_FAULT];
    char inv[160];
    if (m->disagree)
        snprintf(inv, sizeof inv, "INVARIANT BROKEN: %ld of %ld finished orders disagree", m->disagree, m->checked);
    else
        snprintf(inv, sizeof inv, "the three services agree on all %ld finished orders", m->checked);
    size_t n = sizeof m->verdict;
    if (m->overload && m->ran && !m->error[0]) {
        const phase_result *a = &m->ph[PH_RECOVERY];
        double dur = f->duration_s > 0 ? f->duration_s : 1;
        char low[96] = "";
        if (m->capacity_conns && m->capacity_conns != 64)   /* see measure_capacity */
            snprintf(low, sizeof low, ", measured %d at a time: 64 at once all outlasted the budget", m->capacity_conns);
        snprintf(m->verdict, n, "%s: a %dx burst (%d/s offered, C = %.1f/s%s): goodput %.0f/s = %.2f C, 201 p99 "
                 "%.0f ms, %ld x 503, %ld x 504, %ld client timeouts; after it, %.0f%% 201; %s", m->mode,
                 cfg->overload_x, m->rate[PH_FAULT], m->capacity, low, f->st201 / dur,
                 m->capacity > 0 ? f->st201 / dur / m->capacity : 0, f->p99_201, f->st503, f->st504,
                 f->timeouts, a->requests ? 100.0 * a->st201 / a->requests : 0, inv);
        return;
    }
    if (!m->ran || m->error[0]) {
        snprintf(m->verdict, n, "%s: did not complete: %s", m->mode, m->error[0] ? m->error : "not run");
        return;
    }
    bool known = m->tasks_after[SVC_ORDER] >= 0 && m->tasks_idle[SVC_ORDER] >= 0;
    long held = known ? m->tasks_after[SVC_ORDER] - m->tasks_idle[SVC_ORDER] : 0;
    bool holds = !known || held > 0;   /* not known: no proof that nothing is held */
    char late[200] = "";
    if (to > 0 && !holds)   /* said, not hidden: the table shows them too */
        snprintf(late, sizeof late, "; %ld client timeouts, yet order held nothing after the run: the delay was "
                 "outside the chain or within its budget (a busy machine)", to);
    else if (to > 0)
        snprintf(late, sizeof late, "; %ld client timeouts (1 %% at most)", to);
    if (to * 100 > req && holds) {
        char stuck[64] = "order's tasks after the run not known";
        if (known)
            snprintf(stuck, sizeof stuck, "%ld tasks still stuck in order after the run", held);
        snprintf(m->verdict, n, "%s: HUNG - %ld of %ld requests got no answer within the client's %d ms; %s; %s",
                 m->mode, to, req, cfg->client_timeout_ms, stuck, inv);
    }
    else if (s508 > ok)
        snprintf(m->verdict, n, "%s: failed fast - the lock cycle was detected (%ld x 508, p99 %.1f ms), "
                 "nothing hung, %ld tasks left%s; %s", m->mode, s508, m->ph[PH_STEADY].p99,
                 demo_tasks_left(m, SVC_ORDER) + demo_tasks_left(m, SVC_INVENTORY) +
                 demo_tasks_left(m, SVC_PAYMENT), late, inv);
    else
        snprintf(m->verdict, n, "%s: did not hang - %ld orders PAID; while payment hung order answered 504 "
                 "within its %d ms budget (max %.0f ms) and recovered at once%s; %s", m->mode, ok,
                 cfg->budget_ms, f->max, late, inv);
}
