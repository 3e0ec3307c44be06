/* sluice-load: a load client that tells the truth about latency.
 * See load_usage() (opts.c) and docs/load.md. */
#include <stdio.h>
#include <string.h>
#include "load.h"
#include "report.h"

int main(int argc, char **argv)
{
    load_opts o;
    char err[512];
    int rc = load_opts_parse(&o, argc, argv, err, sizeof err);
    if (rc == -1)
        return 0;
    if (rc) {
        fprintf(stderr, "sluice-load: %s\n", err);
        return rc;
    }
    load_result r;
    if (load_run(&o, &r, err, sizeof err) < 0) {
        fprintf(stderr, "sluice-load: %s\n", err);
        load_opts_free(&o);
        return 1;
    }
    rc = 0;
    if (o.json) {
        json_t *j = report_json(&o, &r);
        if (!j || json_dumpf(j, stdout, JSON_COMPACT | JSON_REAL_PRECISION(9)) < 0 ||
            fputc('\n', stdout) == EOF) {
            fprintf(stderr, "sluice-load: cannot write the JSON result\n");
            rc = 1;
        }
        json_decref(j);
    }
    if (!o.json)
        report_text(stdout, &o, &r);
    else if (!o.quiet)
        report_text(stderr, &o, &r);
    if (o.report && (rc = report_html(o.report, &o, &r)) < 0) {
        fprintf(stderr, "sluice-load: --report %s: %s\n", o.report, strerror(-rc));
        rc = 1;
    }
    load_result_free(&r);
    load_opts_free(&o);
    return rc;
}
