/* sluice-load: a load client that tells the truth about latency.
 * See load_usage() (opts.c) and docs/load.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "load.h"
#include "report.h"
#include "svc_env.h"

/* One flag from a SLUICE_ variable, parsed with a stand-in URL. */
static int env_check(int argc, char **argv, char *err, size_t errlen, void *arg)
{
    char *v[4] = { argv[0], argv[1], argc > 2 ? argv[2] : NULL, NULL };
    v[argc] = "http://127.0.0.1:1/";
    load_opts scratch;
    (void)arg;
    int rc = load_opts_parse(&scratch, argc + 1, v, err, errlen);
    if (rc == 0)
        load_opts_free(&scratch);
    return rc ? -EINVAL : 0;
}

int main(int argc, char **argv)
{
    load_opts o;
    char err[512];
    /* every flag also from SLUICE_<FLAG> (svc_env.h); the command line wins */
    char **eargv;
    int eargc;
    int rc = svc_env_argv("sluice-load", argc, argv, NULL, env_check, NULL, &eargv, &eargc, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "%s\n", rc == -ENOMEM ? "sluice-load: out of memory" : err);
        return rc == -ENOMEM ? 1 : 2;
    }
    rc = load_opts_parse(&o, eargc, eargv, err, sizeof err);
    free(eargv);   /* the options point at the strings, not into the array */
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
