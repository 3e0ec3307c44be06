/* svc_tracing.h: the services' tracer, from OpenTelemetry's variables and
 * the flags that override them:
 *
 *   OTEL_EXPORTER_OTLP_ENDPOINT  --otlp-endpoint URL        http://HOST:PORT[/path]
 *   OTEL_SERVICE_NAME            --service-name NAME        (default: the program's name)
 *   OTEL_TRACES_SAMPLER          --traces-sampler NAME      (parentbased_always_on)
 *   OTEL_TRACES_SAMPLER_ARG      --traces-sampler-arg RATIO (1.0)
 *
 * With neither an endpoint nor a sampler given there is no tracer: a
 * request keeps its caller's sampled flag, a trace a service starts is not
 * sampled, and nothing is exported (sl_tracer.h). */
#ifndef SVC_TRACING_H
#define SVC_TRACING_H
#include <stddef.h>
#include "sl_tracer.h"
#include "svc_opts.h"

/* Makes *out (NULL when there is nothing to do). Returns 0, or -EINVAL
 * with a one-line reason in err naming the flag or variable and its value,
 * or another error of sl_tracer_new (also in err). */
int svc_tracer_make(const svc_opts *o, const char *prog, sl_tracer **out, char *err, size_t errlen);

#endif
