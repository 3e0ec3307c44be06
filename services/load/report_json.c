/* report_json.c: the machine-readable result (one JSON object). */
#include <stdio.h>
#include "report.h"

static json_t *ms(double ns)
{
    return json_real(ns / 1e6);
}

static json_t *status_obj(const struct load_status *st, uint32_t n)
{
    json_t *o = json_object();
    char code[8];
    for (uint32_t i = 0; o && i < n; i++) {
        snprintf(code, sizeof code, "%u", st[i].code);
        json_object_set_new(o, code, json_integer((json_int_t)st[i].n));
    }
    return o;
}

static json_t *errors_obj(const uint64_t *err)
{
    json_t *o = json_object();
    for (int k = 0; o && k < ERR_KINDS; k++)
        json_object_set_new(o, load_err_names[k], json_integer((json_int_t)err[k]));
    return o;
}

static json_t *latency_obj(const hist *h)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
                     "min", ms((double)h->min), "p50", ms(hist_quantile(h, 0.5)),
                     "p90", ms(hist_quantile(h, 0.9)), "p99", ms(hist_quantile(h, 0.99)),
                     "p999", ms(hist_quantile(h, 0.999)), "p9999", ms(hist_quantile(h, 0.9999)),
                     "max", ms((double)h->max), "mean", ms(hist_mean(h)),
                     "stdev", ms(hist_stdev(h)));
}

static json_t *series(const load_opts *o, const load_result *r)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < r->npoints; i++) {
        const load_point *p = &r->points[i];
        double width = o->duration_s - (double)i;   /* the last second may be partial */
        width = width > 1 || width <= 0 ? 1 : width;
        json_t *e = json_pack("{s:I,s:I,s:f,s:{s:o,s:o,s:o},s:o,s:o}", "t", (json_int_t)(i + 1),
                              "requests", (json_int_t)p->requests, "rps", (double)p->requests / width,
                              "latency_ms", "p50", ms(p->p50), "p99", ms(p->p99), "max", ms(p->max),
                              "status", status_obj(p->status, p->nstatus), "errors", errors_obj(p->err));
        if (!e || json_array_append_new(a, e) < 0) {
            json_decref(a);
            return NULL;
        }
    }
    return a;
}

json_t *report_json(const load_opts *o, const load_result *r)
{
    struct load_status st[STATUS_CODES];
    uint32_t n = 0;
    for (uint32_t i = 0; i < STATUS_CODES; i++)
        if (r->status[i])
            st[n++] = (struct load_status){ i, r->status[i] };
    double rps = r->duration_s > 0 ? (double)r->requests / r->duration_s : 0;
    return json_pack("{s:s,s:s,s:s,s:o,s:i,s:i,s:I,s:I,s:f,s:f,s:o,s:o,s:o,s:o,s:I,s:o}",
                     "url", o->url, "method", o->method, "mode", o->rate > 0 ? "open" : "closed",
                     "rate", o->rate > 0 ? json_real(o->rate) : json_null(),
                     "connections", o->connections, "threads", o->threads,
                     "timeout_ms", (json_int_t)o->timeout_ms, "requests", (json_int_t)r->requests,
                     "duration_s", r->duration_s, "rps", rps, "latency_ms", latency_obj(r->all),
                     "latency_2xx_ms", latency_obj(r->ok),
                     "status", status_obj(st, n), "errors", errors_obj(r->err),
                     "behind_schedule", (json_int_t)r->behind, "series", series(o, r));
}
