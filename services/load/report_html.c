/* report_html.c: a self-contained HTML page (inline SVG, no scripts, no
 * network): latency percentiles over time, throughput and status over
 * time, and the latency distribution. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "report.h"

#define W 760
#define H 260
#define L 64            /* left margin: axis labels */
#define B 30            /* bottom margin */
#define T 16
#define R 110           /* right margin: legend */

typedef struct axis { double lo, hi; bool log; } axis;

static double map(const axis *a, double v, double px)
{
    if (a->log) {
        v = v > a->lo ? v : a->lo;
        return px * (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    }
    return px * (v - a->lo) / (a->hi - a->lo);
}

static double X(const axis *a, double v) { return L + map(a, v, W - L - R); }
static double Y(const axis *a, double v) { return H - B - map(a, v, H - B - T); }

/* A log axis over [lo, hi] ms, in whole decades. */
static axis log_axis(double lo, double hi)
{
    axis a = { 1e-3, 1, true };
    while (a.lo * 10 <= lo && a.lo < 1e6)
        a.lo *= 10;
    while (a.lo > lo && a.lo > 1e-6)
        a.lo /= 10;
    a.hi = a.lo * 10;
    while (a.hi < hi)
        a.hi *= 10;
    return a;
}

static void frame(FILE *f, const char *title, const axis *x, const axis *y, const char *xlabel,
                  const char *ylabel)
{
    fprintf(f, "<h2>%s</h2>\n<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' "
            "font-family='sans-serif' font-size='11'>\n", title, W, H);
    fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='#fafafa' stroke='#999'/>\n", L, T,
            W - L - R, H - B - T);
    for (int i = 0; i <= 4 && !y->log; i++) {
        double v = y->lo + (y->hi - y->lo) * i / 4;
        fprintf(f, "<text x='%d' y='%.1f' text-anchor='end'>%.4g</text>"
                "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n",
                L - 4, Y(y, v) + 4, v, L, W - R, Y(y, v), Y(y, v));
    }
    for (double v = y->lo; y->log && v <= y->hi * 1.0001; v *= 10)
        fprintf(f, "<text x='%d' y='%.1f' text-anchor='end'>%g</text>"
                "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n",
                L - 4, Y(y, v) + 4, v, L, W - R, Y(y, v), Y(y, v));
    for (int i = 0; i <= 5 && !x->log; i++) {
        double v = x->lo + (x->hi - x->lo) * i / 5;
        fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%.4g</text>\n", X(x, v), H - B + 14, v);
    }
    fprintf(f, "<text x='%d' y='%d' text-anchor='middle'>%s</text>\n", L + (W - L - R) / 2, H - 2, xlabel);
    fprintf(f, "<text x='12' y='%d' transform='rotate(-90 12 %d)' text-anchor='middle'>%s</text>\n",
            T + (H - B - T) / 2, T + (H - B - T) / 2, ylabel);
}

static void legend(FILE *f, int i, const char *color, const char *name)
{
    fprintf(f, "<rect x='%d' y='%d' width='10' height='10' fill='%s'/><text x='%d' y='%d'>%s</text>\n",
            W - R + 8, T + 4 + 16 * i, color, W - R + 22, T + 13 + 16 * i, name);
}

static void line(FILE *f, const char *color, const axis *x, const axis *y, const double *xs,
                 const double *ys, size_t n)
{
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", color);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.1f,%.1f ", X(x, xs[i]), Y(y, ys[i]));
    fprintf(f, "'/>\n");
}

static void latency_over_time(FILE *f, const load_result *r)
{
    size_t n = r->npoints;
    double xs[n], p50[n], p99[n], mx[n], lo = INFINITY, hi = 0;
    for (size_t i = 0; i < n; i++) {
        xs[i] = (double)i + 1;
        p50[i] = r->points[i].p50 / 1e6, p99[i] = r->points[i].p99 / 1e6, mx[i] = r->points[i].max / 1e6;
        if (r->points[i].requests) {
            lo = p50[i] < lo ? p50[i] : lo;
            hi = mx[i] > hi ? mx[i] : hi;
        }
    }
    axis x = { 1, n > 1 ? (double)n : 2, false }, y = log_axis(isinf(lo) ? 1e-3 : lo, hi > 0 ? hi : 1);
    frame(f, "Latency over time (by the second each request started)", &x, &y, "second", "ms (log)");
    line(f, "#2a7", &x, &y, xs, p50, n), legend(f, 0, "#2a7", "p50");
    line(f, "#e80", &x, &y, xs, p99, n), legend(f, 1, "#e80", "p99");
    line(f, "#c22", &x, &y, xs, mx, n), legend(f, 2, "#c22", "max");
    fprintf(f, "</svg>\n");
}

/* Stacked bars per second: 2xx, 3xx, 4xx, 5xx, errors. */
static void status_over_time(FILE *f, const load_result *r)
{
    static const char *color[] = { "#2a7", "#58c", "#e80", "#c22", "#555" };
    static const char *name[] = { "2xx", "3xx", "4xx", "5xx", "errors" };
    size_t n = r->npoints;
    double hi = 1;
    for (size_t i = 0; i < n; i++)
        hi = (double)r->points[i].requests > hi ? (double)r->points[i].requests : hi;
    axis x = { 0, (double)n, false }, y = { 0, hi * 1.1, false };
    frame(f, "Throughput and status over time", &x, &y, "second", "requests");
    double bw = (W - L - R) / (double)n;
    for (size_t i = 0; i < n; i++) {
        const load_point *p = &r->points[i];
        double cls[5] = { 0 }, base = 0;
        for (uint32_t k = 0; k < p->nstatus; k++) {
            int c = (int)p->status[k].code / 100 - 2;
            cls[c < 0 ? 0 : c > 3 ? 3 : c] += (double)p->status[k].n;
        }
        for (int k = 0; k < ERR_KINDS; k++)
            cls[4] += (double)p->err[k];
        for (int c = 0; c < 5; c++) {
            if (!cls[c])
                continue;
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'/>\n",
                    X(&x, (double)i) + 1, Y(&y, base + cls[c]), bw > 3 ? bw - 2 : bw,
                    Y(&y, base) - Y(&y, base + cls[c]), color[c]);
            base += cls[c];
        }
    }
    for (int c = 0; c < 5; c++)
        legend(f, c, color[c], name[c]);
    fprintf(f, "</svg>\n");
}

/* The percentile spectrum: x = 1/(1-q) on a log scale, as HdrHistogram plots it. */
static void distribution(FILE *f, const load_result *r)
{
    enum { N = 101 };
    double xs[N], ys[N], hi = (double)r->all->max / 1e6, lo = (double)r->all->min / 1e6;
    for (int k = 0; k < N; k++) {
        double q = 1 - pow(10, -k / 20.0);       /* 0 .. 99.999% */
        xs[k] = 1 / (1 - q);
        ys[k] = hist_quantile(r->all, q) / 1e6;
    }
    axis x = { 1, 1e5, true }, y = log_axis(lo > 0 ? lo : 1e-3, hi > 0 ? hi : 1);
    frame(f, "Latency distribution", &x, &y, "percentile", "ms (log)");
    static const char *tick[] = { "0%", "90%", "99%", "99.9%", "99.99%", "99.999%" };
    for (int i = 0; i <= 5; i++)
        fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%s</text>\n", X(&x, pow(10, i)),
                H - B + 14, tick[i]);
    line(f, "#58c", &x, &y, xs, ys, N);
    fprintf(f, "</svg>\n");
}

static void summary(FILE *f, const load_opts *o, const load_result *r)
{
    const hist *h = r->all;
    fprintf(f, "<table><tr><th>requests</th><th>req/s</th><th>min</th><th>p50</th><th>p90</th>"
            "<th>p99</th><th>p99.9</th><th>p99.99</th><th>max</th><th>behind schedule</th></tr>\n"
            "<tr><td>%llu</td><td>%.1f</td>", (unsigned long long)r->requests,
            r->duration_s > 0 ? (double)r->requests / r->duration_s : 0);
    double q[] = { -1, 0.5, 0.9, 0.99, 0.999, 0.9999, 2 };
    for (size_t i = 0; i < sizeof q / sizeof *q; i++)
        fprintf(f, "<td>%.3f ms</td>", (q[i] < 0 ? (double)h->min : q[i] > 1 ? (double)h->max
                                                  : hist_quantile(h, q[i])) / 1e6);
    fprintf(f, "<td>%llu</td></tr></table>\n<p>errors:", (unsigned long long)r->behind);
    for (int k = 0; k < ERR_KINDS; k++)
        fprintf(f, " %s %llu", load_err_names[k], (unsigned long long)r->err[k]);
    fprintf(f, " &middot; latency from the %s send time</p>\n", o->rate > 0 ? "intended" : "actual");
}

/* Escapes the few characters that matter in HTML text. */
static void text(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
}

int report_html(const char *path, const load_opts *o, const load_result *r)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -errno;
    fprintf(f, "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>sluice-load report</title>\n"
            "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}"
            "h2{font-size:15px;margin-top:1.5em}</style></head><body>\n<h1>sluice-load: ");
    text(f, o->method);
    fputc(' ', f);
    text(f, o->url);
    fprintf(f, "</h1>\n<p>%s, %d connection(s), %d thread(s), %.1f s, timeout %u ms</p>\n",
            o->rate > 0 ? "open loop" : "closed loop", o->connections, o->threads, r->duration_s,
            o->timeout_ms);
    summary(f, o, r);
    if (r->npoints) {
        latency_over_time(f, r);
        status_over_time(f, r);
    }
    if (r->all->count)
        distribution(f, r);
    fprintf(f, "</body></html>\n");
    int bad = ferror(f);
    return fclose(f) || bad ? -EIO : 0;
}
