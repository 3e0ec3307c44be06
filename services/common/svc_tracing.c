/* svc_tracing.c: see svc_tracing.h. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include "svc_tracing.h"

int svc_tracer_make(const svc_opts *o, const char *prog, sl_tracer **out, char *err, size_t errlen)
{
    sl_tracer_opts to;
    char why[200];
    *out = NULL;
    if (sl_tracer_opts_env(&to, why, sizeof why) < 0)
        return snprintf(err, errlen, "%s: %s", prog, why), -EINVAL;
    bool sampler_env = getenv("OTEL_TRACES_SAMPLER") && *getenv("OTEL_TRACES_SAMPLER");
    if (o->otlp_endpoint)
        to.endpoint = *o->otlp_endpoint ? o->otlp_endpoint : NULL;
    if (o->service_name)
        to.service_name = o->service_name;
    if (!to.service_name)
        to.service_name = prog;
    if (o->traces_sampler && sl_tracer_sampler_parse(o->traces_sampler, &to.sampler) < 0)
        return snprintf(err, errlen, "%s: --traces-sampler wants always_on, always_off, traceidratio, "
                        "parentbased_always_on, parentbased_always_off or parentbased_traceidratio, not '%s'",
                        prog, o->traces_sampler), -EINVAL;
    if (o->traces_sampler_arg && sl_tracer_ratio_parse(o->traces_sampler_arg, &to.ratio) < 0)
        return snprintf(err, errlen, "%s: --traces-sampler-arg wants a number from 0 to 1, not '%s'", prog,
                        o->traces_sampler_arg), -EINVAL;
    if (!to.endpoint && !o->traces_sampler && !sampler_env)
        return 0;   /* nothing asked for: no tracer */
    int rc = sl_tracer_new(out, &to);
    if (rc == -EINVAL)
        return snprintf(err, errlen, "%s: --otlp-endpoint wants http://HOST:PORT[/path], not '%s'", prog,
                        to.endpoint ? to.endpoint : ""), rc;
    if (rc < 0)
        return snprintf(err, errlen, "%s: tracer: %s", prog, strerror(-rc)), rc;
    return 0;
}
