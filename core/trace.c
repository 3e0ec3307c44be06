/* trace.c: per-reactor event rings and the Chrome Trace Event writer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "sl_trace.h"

/* Names are copied: the trace is written at the end, when the task or route
 * that lent its name may be long gone. */
typedef struct sl_trace_ev {
    uint64_t ts, dur, id;
    const char *cat;             /* static */
    char name[40];
    const char *file;
    int line;
    char ph;
    char detail[47];
} sl_trace_ev;

struct sl_trace_ring {
    sl_trace_ev *ev;
    size_t cap, head, n;
    uint64_t dropped;
};

static sl_trace_ev *slot(sl_reactor *r)
{
    sl_trace_ring *tr = r->trace;
    size_t i = (tr->head + tr->n) % tr->cap;
    if (tr->n == tr->cap) {   /* full: the oldest goes */
        tr->head = (tr->head + 1) % tr->cap;
        tr->dropped++;
    } else {
        tr->n++;
    }
    return &tr->ev[i];
}

void sl__trace_step(sl_reactor *r, const sl_task *t, uint64_t start)
{
    sl_trace_ev *e = slot(r);
    uint64_t now = sl_now_ns();
    *e = (sl_trace_ev){ .ts = start, .dur = now - start, .cat = "task", .file = t->file_, .line = t->line_, .ph = 'X' };
    snprintf(e->name, sizeof e->name, "%s", t->name_[0] ? t->name_ : "task");
}

static void put(sl_reactor *r, char ph, const char *cat, const char *name, uint64_t id, const char *detail)
{
    sl_trace_ev *e = slot(r);
    *e = (sl_trace_ev){ .ts = sl_now_ns(), .cat = cat, .id = id, .ph = ph };
    snprintf(e->name, sizeof e->name, "%s", name ? name : "");
    if (detail)
        snprintf(e->detail, sizeof e->detail, "%s", detail);
}

bool sl_trace_on(const sl_reactor *r) { return r && r->trace && r->trace_on; }

void sl_trace_instant(sl_reactor *r, const char *cat, const char *name, const char *detail)
{
    if (sl_trace_on(r))
        put(r, 'i', cat, name, 0, detail);
}

void sl_trace_async(sl_reactor *r, char phase, const char *cat, const char *name, uint64_t id,
                    const char *detail)
{
    if (sl_trace_on(r) && (phase == 'b' || phase == 'e'))
        put(r, phase, cat, name, id, detail);
}

uint64_t sl_trace_dropped(const sl_reactor *r)
{
    return r->trace ? r->trace->dropped : 0;
}

int sl_trace_start(sl_runtime *rt, const char *path, size_t events)
{
    if (rt->trace_file)
        return -EALREADY;
    if (!events)
        events = 65536;
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    for (int i = 0; i < rt->n; i++) {
        sl_trace_ring *tr = calloc(1, sizeof *tr);
        sl_trace_ev *ev = calloc(events, sizeof *ev);
        if (!tr || !ev) {
            free(tr);
            free(ev);
            fclose(f);
            for (int j = 0; j < i; j++) {
                free(rt->r[j]->trace->ev);
                free(rt->r[j]->trace);
                rt->r[j]->trace = NULL;
            }
            return -ENOMEM;
        }
        tr->ev = ev;
        tr->cap = events;
        rt->r[i]->trace = tr;
    }
    rt->trace_file = f;
    /* Reactors read the flag on their own thread; before run nobody else
     * does. While running, a message switches each one on. */
    atomic_store(&rt->trace_want, true);
    for (int i = 0; i < rt->n; i++)
        if (atomic_load(&rt->state) != 1)
            rt->r[i]->trace_on = true;
        else
            sl_reactor_post(rt->r[i], sl__trace_sync, rt->r[i]);
    return 0;
}

void sl__trace_sync(void *arg)
{
    sl_reactor *r = arg;
    r->trace_on = atomic_load(&r->rt->trace_want);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void write_ev(FILE *f, int pid, int tid, const sl_trace_ev *e)
{
    fprintf(f, ",\n{\"ph\":\"%c\",\"pid\":%d,\"tid\":%d,\"ts\":%.3f,\"cat\":", e->ph, pid, tid,
            (double)e->ts / 1e3);
    json_str(f, e->cat);
    fprintf(f, ",\"name\":");
    json_str(f, e->name);
    if (e->ph == 'X')
        fprintf(f, ",\"dur\":%.3f", (double)e->dur / 1e3);
    if (e->ph == 'i')
        fprintf(f, ",\"s\":\"t\"");
    if (e->ph == 'b' || e->ph == 'e')
        fprintf(f, ",\"id\":\"0x%llx\"", (unsigned long long)e->id);
    fprintf(f, ",\"args\":{");
    if (e->file) {
        fprintf(f, "\"site\":\"");
        for (const char *p = e->file; *p; p++)
            if (*p != '"' && *p != '\\')
                fputc(*p, f);
        fprintf(f, ":%d\"", e->line);
    } else if (e->detail[0]) {
        fprintf(f, "\"detail\":");
        json_str(f, e->detail);
    }
    fprintf(f, "}}");
}

/* Writes and closes the file; the reactors are not recording any more. */
int sl__trace_write(sl_runtime *rt)
{
    FILE *f = rt->trace_file;
    if (!f)
        return 0;
    /* The real pid and program name, and timestamps from CLOCK_MONOTONIC:
     * the traces of several processes on one host merge into one view. */
    int pid = (int)getpid();
    fprintf(f, "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    fprintf(f, "{\"ph\":\"M\",\"pid\":%d,\"name\":\"process_name\",\"args\":{\"name\":", pid);
    json_str(f, program_invocation_short_name);
    fprintf(f, "}}");
    uint64_t dropped = 0;
    for (int i = 0; i < rt->n; i++) {
        sl_reactor *r = rt->r[i];
        fprintf(f, ",\n{\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"name\":\"thread_name\",\"args\":{\"name\":\"reactor %d\"}}",
                pid, i, i);
        sl_trace_ring *tr = r->trace;
        for (size_t k = 0; tr && k < tr->n; k++)
            write_ev(f, pid, i, &tr->ev[(tr->head + k) % tr->cap]);
        dropped += tr ? tr->dropped : 0;
    }
    fprintf(f, "\n],\"otherData\":{\"dropped\":%llu}}\n", (unsigned long long)dropped);
    int rc = ferror(f) ? -EIO : 0;
    if (fclose(f) != 0 && !rc)
        rc = -errno;
    rt->trace_file = NULL;
    for (int i = 0; i < rt->n; i++) {
        if (rt->r[i]->trace) {
            free(rt->r[i]->trace->ev);
            free(rt->r[i]->trace);
            rt->r[i]->trace = NULL;
        }
        rt->r[i]->trace_on = false;
    }
    return rc;
}

int sl_trace_stop(sl_runtime *rt)
{
    if (!rt->trace_file || !atomic_load(&rt->trace_want))
        return -EINVAL;
    atomic_store(&rt->trace_want, false);
    if (atomic_load(&rt->state) == 1) {
        for (int i = 0; i < rt->n; i++)
            sl_reactor_post(rt->r[i], sl__trace_sync, rt->r[i]);
        return 0;   /* written when sl_runtime_run returns */
    }
    return sl__trace_write(rt);
}
