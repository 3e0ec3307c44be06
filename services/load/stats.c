/* stats.c: recording, sealing and merging (see stats.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "stats.h"

const char *const load_err_names[ERR_KINDS] = { "connect", "reset", "timeout", "protocol" };

int load_stats_init(load_stats *s, size_t nsecs)
{
    memset(s, 0, sizeof *s);
    s->all = hist_new();
    s->ok = hist_new();
    s->secs = calloc(nsecs ? nsecs : 1, sizeof *s->secs);
    s->nsecs = nsecs;
    if (!s->all || !s->ok || !s->secs) {
        load_stats_free(s);
        return -ENOMEM;
    }
    return 0;
}

static void sec_close(load_sec *c)
{
    free(c->open);
    free(c->open_status);
    c->open = NULL, c->open_status = NULL;
}

void load_stats_free(load_stats *s)
{
    for (size_t i = 0; s->secs && i < s->nsecs; i++) {
        sec_close(&s->secs[i]);
        hist_sparse_free(&s->secs[i].lat);
        free(s->secs[i].status);
    }
    free(s->secs);
    free(s->all);
    free(s->ok);
    memset(s, 0, sizeof *s);
}

int load_stats_record(load_stats *s, size_t sec, uint64_t lat_ns, int status, int err)
{
    if (sec >= s->nsecs)
        sec = s->nsecs - 1;     /* rounding at the window's end */
    load_sec *c = &s->secs[sec];
    if (!c->open) {
        c->open = hist_new();
        c->open_status = calloc(STATUS_CODES, sizeof *c->open_status);
        if (!c->open || !c->open_status) {
            sec_close(c);
            return -ENOMEM;
        }
    }
    hist_record(s->all, lat_ns);
    hist_record(c->open, lat_ns);
    s->requests++, c->requests++;
    if (err >= 0) {
        s->err[err]++, c->err[err]++;
    } else {
        s->status[status]++;
        c->open_status[status]++;
        if (status >= 200 && status < 300)
            hist_record(s->ok, lat_ns);
    }
    return 0;
}

int load_stats_seal(load_stats *s, size_t sec)
{
    load_sec *c = &s->secs[sec];
    if (!c->open)
        return 0;
    /* a late request reopened a sealed second: fold the sealed part back */
    hist_merge_sparse(c->open, &c->lat);
    hist_sparse_free(&c->lat);
    for (uint32_t i = 0; i < c->nstatus; i++)
        c->open_status[c->status[i].code] += (uint32_t)c->status[i].n;
    free(c->status);
    c->status = NULL, c->nstatus = 0;
    uint32_t n = 0;
    for (uint32_t i = 0; i < STATUS_CODES; i++)
        n += c->open_status[i] != 0;
    struct load_status *st = n ? malloc(n * sizeof *st) : NULL;
    if ((n && !st) || hist_seal(c->open, &c->lat) < 0) {
        free(st);               /* everything is still in the open second */
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < STATUS_CODES; i++)
        if (c->open_status[i])
            st[c->nstatus++] = (struct load_status){ i, c->open_status[i] };
    c->status = st;
    sec_close(c);
    return 0;
}

/* ---- merging ------------------------------------------------------------ */

static int merge_point(load_point *p, load_stats *const *s, int n, size_t sec, hist *tmp,
                       uint64_t *status)
{
    hist_clear(tmp);
    memset(status, 0, STATUS_CODES * sizeof *status);
    for (int w = 0; w < n; w++) {
        const load_sec *c = &s[w]->secs[sec];
        p->requests += c->requests;
        for (int k = 0; k < ERR_KINDS; k++)
            p->err[k] += c->err[k];
        hist_merge_sparse(tmp, &c->lat);
        for (uint32_t i = 0; i < c->nstatus; i++)
            status[c->status[i].code] += c->status[i].n;
    }
    p->p50 = hist_quantile(tmp, 0.5);
    p->p99 = hist_quantile(tmp, 0.99);
    p->max = (double)tmp->max;
    for (uint32_t i = 0; i < STATUS_CODES; i++)
        p->nstatus += status[i] != 0;
    if (p->nstatus && !(p->status = malloc(p->nstatus * sizeof *p->status)))
        return -ENOMEM;
    p->nstatus = 0;
    for (uint32_t i = 0; i < STATUS_CODES; i++)
        if (status[i])
            p->status[p->nstatus++] = (struct load_status){ i, status[i] };
    return 0;
}

int load_result_merge(load_result *r, load_stats *const *s, int n)
{
    memset(r, 0, sizeof *r);
    r->npoints = n ? s[0]->nsecs : 0;
    r->all = hist_new();
    r->ok = hist_new();
    r->points = calloc(r->npoints ? r->npoints : 1, sizeof *r->points);
    hist *tmp = hist_new();
    uint64_t *status = malloc(STATUS_CODES * sizeof *status);
    int rc = r->all && r->ok && r->points && tmp && status ? 0 : -ENOMEM;
    for (int w = 0; !rc && w < n; w++) {
        hist_merge(r->all, s[w]->all);
        hist_merge(r->ok, s[w]->ok);
        r->requests += s[w]->requests;
        r->behind += s[w]->behind;
        for (int k = 0; k < ERR_KINDS; k++)
            r->err[k] += s[w]->err[k];
        for (int i = 0; i < STATUS_CODES; i++)
            r->status[i] += s[w]->status[i];
    }
    for (size_t i = 0; !rc && i < r->npoints; i++)
        rc = merge_point(&r->points[i], s, n, i, tmp, status);
    free(tmp);
    free(status);
    if (rc)
        load_result_free(r);
    return rc;
}

void load_result_free(load_result *r)
{
    for (size_t i = 0; r->points && i < r->npoints; i++)
        free(r->points[i].status);
    free(r->points);
    free(r->all);
    free(r->ok);
    memset(r, 0, sizeof *r);
}
