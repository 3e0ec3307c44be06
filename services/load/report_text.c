/* report_text.c: the summary for people. */
#include "report.h"

void report_text(FILE *f, const load_opts *o, const load_result *r)
{
    const hist *h = r->all;
    double rps = r->duration_s > 0 ? (double)r->requests / r->duration_s : 0;
    if (o->rate > 0)
        fprintf(f, "%s %s: open loop at %.1f req/s, up to %d connections, %d thread(s)\n",
                o->method, o->url, o->rate, o->connections, o->threads);
    else
        fprintf(f, "%s %s: closed loop, %d connections, %d thread(s)\n", o->method, o->url,
                o->connections, o->threads);
    fprintf(f, "  %llu requests in %.2f s: %.1f req/s\n", (unsigned long long)r->requests,
            r->duration_s, rps);
    fprintf(f, "  latency (ms, from the %s send time):\n", o->rate > 0 ? "intended" : "actual");
    fprintf(f, "    min %.3f  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  p99.99 %.3f  max %.3f\n",
            (double)h->min / 1e6, hist_quantile(h, 0.5) / 1e6, hist_quantile(h, 0.9) / 1e6,
            hist_quantile(h, 0.99) / 1e6, hist_quantile(h, 0.999) / 1e6,
            hist_quantile(h, 0.9999) / 1e6, (double)h->max / 1e6);
    fprintf(f, "    mean %.3f  stdev %.3f\n", hist_mean(h) / 1e6, hist_stdev(h) / 1e6);
    fprintf(f, "  status:");
    for (int i = 0; i < STATUS_CODES; i++)
        if (r->status[i])
            fprintf(f, " %d=%llu", i, (unsigned long long)r->status[i]);
    fprintf(f, "\n  errors:");
    for (int k = 0; k < ERR_KINDS; k++)
        fprintf(f, " %s=%llu", load_err_names[k], (unsigned long long)r->err[k]);
    fprintf(f, "\n");
    if (o->rate > 0)
        fprintf(f, "  behind schedule (sent > 1 ms late): %llu\n", (unsigned long long)r->behind);
}
