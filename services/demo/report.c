/* report.c: the demo's side-by-side table (stdout) and its HTML page:
 * inline SVG, no script, no network, so it opens anywhere. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "demo.h"

void report_text(const demo_cfg *cfg, const mode_result *mr, int nmodes)
{
    printf("\nsluice demo: POST /orders at %d/s (open loop) through order -> inventory -> payment -> order,\n"
           "client timeout %d ms, service budget %d ms, %d reactor(s) per service; payment hangs in phase 3.\n\n",
           cfg->rate, cfg->client_timeout_ms, cfg->budget_ms, cfg->threads);
    printf("%-8s %-14s %7s %8s %8s %8s %6s %5s %5s %5s %5s %5s %4s  %s\n", "mode", "phase", "ok/s", "p50 ms",
           "p99 ms", "max ms", "201", "503", "504", "508", "other", "t/o", "err", "peak in-flight o/i/p");
    for (int i = 0; i < nmodes; i++) {
        mode_result *m = (mode_result *)&mr[i];
        demo_verdict(cfg, m);
        if (m->overload && (i == 0 || !mr[i - 1].overload))
            printf("Overload: the safe chain, C/2, then a %dx C burst, then C/2 again; admission on, then off "
                   "(--admission off), the same rates.\n\n", cfg->overload_x);
        for (int p = 0; p < NPHASE; p++) {
            const phase_result *ph = &m->ph[p];
            if (!ph->ran)
                continue;
            printf("%-8s %-14s %7.1f %8.1f %8.1f %8.1f %6ld %5ld %5ld %5ld %5ld %5ld %4ld  %ld/%ld/%ld\n",
                   p == 0 ? m->mode : "", demo_phase_name(m, p), ph->duration_s > 0 ? ph->st201 / ph->duration_s : 0,
                   ph->p50, ph->p99, ph->max, ph->st201, ph->st503, ph->st504, ph->st508, ph->st_other,
                   ph->timeouts, ph->errors, ph->peak_inflight[0], ph->peak_inflight[1], ph->peak_inflight[2]);
        }
        if (m->ran)
            printf("%-8s after the run: tasks left beyond idle %ld/%ld/%ld, RSS %.1f/%.1f/%.1f MiB, "
                   "exit %d/%d/%d (order/inventory/payment)\n", "", demo_tasks_left(m, 0), demo_tasks_left(m, 1),
                   demo_tasks_left(m, 2), m->rss_kib[0] / 1024.0, m->rss_kib[1] / 1024.0, m->rss_kib[2] / 1024.0,
                   m->exit_status[0], m->exit_status[1], m->exit_status[2]);
        printf("\n");
    }
    for (int i = 0; i < nmodes; i++)
        printf("=> %s\n", mr[i].verdict);
    printf("\nCharts: %s\n", cfg->report);
}

/* ---- HTML --------------------------------------------------------------------------- */

#define W 900
#define H 220
#define ML 56
#define MR 12
#define MT 22
#define MB 28

typedef struct point {
    double t;                   /* seconds from the mode's start, middle of its second */
    double p50, p99, max;
    long n[7];                  /* 201 503 504 508 other timeout error */
} point;

static const char *const cat_name[7] = { "201", "503", "504", "508", "other status", "client timeout", "error" };
static const char *const cat_color[7] = { "#2e9e44", "#e0b000", "#f07800", "#8e44ad", "#d62728", "#111", "#888" };

static int points(const mode_result *m, point **out)
{
    int n = 0, cap = 0;
    point *pts = NULL;
    for (int p = 0; p < NPHASE; p++) {
        size_t i;
        json_t *e;
        json_array_foreach(m->ph[p].series, i, e) {
            if (n == cap) {
                point *np = realloc(pts, sizeof *pts * (size_t)(cap = cap ? cap * 2 : 64));
                if (!np)
                    break;
                pts = np;
            }
            point *q = &pts[n++];
            memset(q, 0, sizeof *q);
            json_t *lat = json_object_get(e, "latency_ms");
            q->t = m->ph[p].start_s + json_number_value(json_object_get(e, "t")) - 0.5;
            q->p50 = json_number_value(json_object_get(lat, "p50"));
            q->p99 = json_number_value(json_object_get(lat, "p99"));
            q->max = json_number_value(json_object_get(lat, "max"));
            const char *k;
            json_t *v;
            json_object_foreach(json_object_get(e, "status"), k, v) {
                int code = atoi(k), c = code == 201 ? 0 : code == 503 ? 1 : code == 504 ? 2 : code == 508 ? 3 : 4;
                q->n[c] += (long)json_integer_value(v);
            }
            json_object_foreach(json_object_get(e, "errors"), k, v)
                q->n[strcmp(k, "timeout") ? 6 : 5] += (long)json_integer_value(v);
        }
    }
    *out = pts;
    return n;
}

static double span_s(const mode_result *m)
{
    double end = 0;
    for (int p = 0; p < NPHASE; p++)
        if (m->ph[p].ran)
            end = m->ph[p].start_s + m->ph[p].duration_s;
    return end > 0 ? end : 1;
}

static double xpos(double t, double span) { return ML + (W - ML - MR) * t / span; }

/* The fault window and the phase boundaries, under everything else. */
static void frame(FILE *f, const mode_result *m, double span, const char *ylabel)
{
    const phase_result *fp = &m->ph[PH_FAULT];
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='11'>\n", W, H);
    if (fp->ran)
        fprintf(f, "<rect x='%.1f' y='%d' width='%.1f' height='%d' fill='#fbe3e3'/>\n",
                xpos(fp->start_s, span), MT, xpos(fp->start_s + fp->duration_s, span) - xpos(fp->start_s, span),
                H - MT - MB);
    for (int p = 0; p < NPHASE; p++) {
        if (!m->ph[p].ran)
            continue;
        double x = xpos(m->ph[p].start_s, span);
        if (p > 0)
            fprintf(f, "<line x1='%.1f' x2='%.1f' y1='%d' y2='%d' stroke='#bbb' stroke-dasharray='3,3'/>\n",
                    x, x, MT, H - MB);
        fprintf(f, "<text x='%.1f' y='%d' fill='%s'>%s</text>\n", x + 4, MT - 8,
                p == PH_FAULT ? "#b22" : "#666", demo_phase_name(m, p));
    }
    fprintf(f, "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='#333'/><line x1='%d' x2='%d' y1='%d' y2='%d' stroke='#333'/>\n",
            ML, W - MR, H - MB, H - MB, ML, ML, MT, H - MB);
    for (int s = 0; s <= (int)span; s += span > 30 ? 10 : 5)
        fprintf(f, "<text x='%.1f' y='%d' text-anchor='middle'>%ds</text>\n", xpos(s, span), H - MB + 14, s);
    fprintf(f, "<text x='12' y='%d' transform='rotate(-90 12 %d)' text-anchor='middle'>%s</text>\n",
            H / 2, H / 2, ylabel);
}

static void latency_svg(FILE *f, const mode_result *m, const point *pts, int n, double ymax)
{
    double span = span_s(m), lo = 0.1;
    frame(f, m, span, "latency (ms, log)");
    for (double v = 1; v <= ymax; v *= 10) {
        double y = H - MB - (H - MT - MB) * (log10(v) - log10(lo)) / (log10(ymax) - log10(lo));
        fprintf(f, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#eee'/><text x='%d' y='%.1f' text-anchor='end'>%g</text>\n",
                ML, W - MR, y, y, ML - 4, y + 4, v);
    }
    static const char *const col[3] = { "#1f77b4", "#d62728", "#999" };
    static const char *const name[3] = { "p50", "p99", "max" };
    for (int k = 0; k < 3; k++) {
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.6' points='", col[k]);
        for (int i = 0; i < n; i++) {
            double v = k == 0 ? pts[i].p50 : k == 1 ? pts[i].p99 : pts[i].max;
            v = v < lo ? lo : v > ymax ? ymax : v;
            fprintf(f, "%.1f,%.1f ", xpos(pts[i].t, span),
                    H - MB - (H - MT - MB) * (log10(v) - log10(lo)) / (log10(ymax) - log10(lo)));
        }
        fprintf(f, "'/><text x='%d' y='%d' fill='%s'>%s</text>\n", W - MR - 110 + 36 * k, MT - 8, col[k], name[k]);
    }
    fprintf(f, "</svg>\n");
}

static void status_svg(FILE *f, const mode_result *m, const point *pts, int n)
{
    double span = span_s(m), ymax = 1;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int c = 0; c < 7; c++)
            s += (double)pts[i].n[c];
        ymax = s > ymax ? s : ymax;
    }
    frame(f, m, span, "answers per second");
    fprintf(f, "<text x='%d' y='%d' text-anchor='end'>%.0f</text>\n", ML - 4, MT + 4, ymax);
    double bw = (W - ML - MR) / span * 0.8;
    for (int i = 0; i < n; i++) {
        double y = H - MB;
        for (int c = 0; c < 7; c++) {
            double h = (H - MT - MB) * (double)pts[i].n[c] / ymax;
            if (h <= 0)
                continue;
            y -= h;
            fprintf(f, "<rect x='%.1f' y='%.1f' width='%.1f' height='%.1f' fill='%s'/>\n",
                    xpos(pts[i].t, span) - bw / 2, y, bw, h, cat_color[c]);
        }
    }
    for (int c = 0; c < 7; c++)
        fprintf(f, "<rect x='%d' y='%d' width='10' height='10' fill='%s'/><text x='%d' y='%d'>%s</text>\n",
                ML + 8 + 100 * c, H - 10, cat_color[c], ML + 22 + 100 * c, H - 1, cat_name[c]);
    fprintf(f, "</svg>\n");
}

static void html_escape(FILE *f, const char *s)
{
    for (; *s; s++)
        if (*s == '<') fputs("&lt;", f);
        else if (*s == '>') fputs("&gt;", f);
        else if (*s == '&') fputs("&amp;", f);
        else fputc(*s, f);
}

int report_html(const demo_cfg *cfg, const mode_result *mr, int nmodes)
{
    FILE *f = fopen(cfg->report, "w");
    if (!f) {
        perror(cfg->report);
        return -1;
    }
    fprintf(f, "<!doctype html><html><head><meta charset='utf-8'><title>sluice demo</title>"
               "<style>body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
               "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;text-align:right}"
               "th{border-bottom:1px solid #999}td:first-child,th:first-child{text-align:left}"
               ".v{font-weight:bold;margin:.5em 0}</style></head><body>\n"
               "<h1>sluice demo: order &rarr; inventory &rarr; payment &rarr; order</h1>\n"
               "<p>POST /orders at %d/s, open loop (latency from the intended send time). Client timeout %d ms; "
               "each service's request budget %d ms. In the shaded window payment hangs (it never answers "
               "until its caller gives up).</p>\n", cfg->rate, cfg->client_timeout_ms, cfg->budget_ms);
    for (int i = 0; i < nmodes; i++) {
        const mode_result *m = &mr[i];
        if (m->overload && (i == 0 || !mr[i - 1].overload))
            fprintf(f, "<h1>Overload: admission on and off</h1>\n<p>The safe chain at half its capacity C "
                       "(201/s in a closed loop of %d connections%s: %.1f/s), then in the shaded window a burst of "
                       "%d x C, then C/2 again. First with sluice's adaptive admission (a concurrency limit that "
                       "follows latency, CoDel on the queue, refusals by remaining budget), then the same chain "
                       "with <code>--admission off</code> (fixed limits only), at the same rates. Goodput is the "
                       "green: a 503 is a quick, cheap no; a client timeout (black) is work wasted.</p>\n",
                    m->capacity_conns, m->capacity_conns != 64 ? ", as 64 at once all outlasted the budget on "
                    "this machine" : "", m->capacity, cfg->overload_x);
        fprintf(f, "<h2>%s</h2><p class='v'>", m->mode);
        html_escape(f, m->verdict);
        fprintf(f, "</p>\n<table><tr><th>phase</th><th>ok/s</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th>"
                   "<th>201</th><th>503</th><th>504</th><th>508</th><th>other</th><th>timeouts</th>"
                   "<th>peak in-flight o/i/p</th></tr>\n");
        double ymax = cfg->client_timeout_ms * 2.0;
        for (int p = 0; p < NPHASE; p++) {
            const phase_result *ph = &m->ph[p];
            if (!ph->ran)
                continue;
            fprintf(f, "<tr><td>%s</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%ld</td><td>%ld</td>"
                       "<td>%ld</td><td>%ld</td><td>%ld</td><td>%ld</td><td>%ld/%ld/%ld</td></tr>\n",
                    demo_phase_name(m, p), ph->duration_s > 0 ? ph->st201 / ph->duration_s : 0, ph->p50, ph->p99, ph->max,
                    ph->st201, ph->st503, ph->st504, ph->st508, ph->st_other, ph->timeouts, ph->peak_inflight[0],
                    ph->peak_inflight[1], ph->peak_inflight[2]);
            ymax = ph->max > ymax ? ph->max : ymax;
        }
        fprintf(f, "</table>\n<p>After the run: tasks beyond idle %ld / %ld / %ld, RSS %.1f / %.1f / %.1f MiB "
                   "(order / inventory / payment).</p>\n", demo_tasks_left(m, 0), demo_tasks_left(m, 1), demo_tasks_left(m, 2),
                m->rss_kib[0] / 1024.0, m->rss_kib[1] / 1024.0, m->rss_kib[2] / 1024.0);
        point *pts;
        int n = points(m, &pts);
        latency_svg(f, m, pts, n, ymax);
        status_svg(f, m, pts, n);
        free(pts);
    }
    fprintf(f, "</body></html>\n");
    return fclose(f) == 0 ? 0 : -1;
}
