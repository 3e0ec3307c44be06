/* hello: examples/http/http.c with options: the server the benchmarks measure.
 *
 *   examples/hello/hello --listen 127.0.0.1:0 --threads 1
 *
 * GET /hello answers {"message":"Hello, World!"}; /healthz, /metrics and
 * /debug/... come with every server. SIGTERM or SIGINT drain and exit 0.
 * With OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_TRACES_SAMPLER set it samples
 * and exports spans (sl_tracer.h, docs/diagnostics.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sluice.h"
#include "sl_http.h"
#include "sl_tracer.h"

static int hello(sl_task *t, void *arg)
{
    static const char body[] = "{\"message\":\"Hello, World!\"}";
    (void)t;
    return sl_http_reply(arg, 200, "application/json", body, sizeof body - 1);
}

static int usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--listen HOST:PORT] [--threads N] [--timeout-ms MS] [--access-log] [--trace FILE.json]\n", argv0);
    return 2;
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:8080", *trace = NULL;
    int threads = 0, rc;
    sl_http_server_opts o = { 0 };
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc)
            listen = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--timeout-ms") && i + 1 < argc)
            o.timeout_ms = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--access-log"))
            o.access_log = true;
        else if (!strcmp(argv[i], "--trace") && i + 1 < argc)
            trace = argv[++i];
        else
            return usage(argv[0]);
    }
    o.listen = listen;
    sl_tracer_opts to;
    char err[256];
    if (sl_tracer_opts_env(&to, err, sizeof err) < 0) {
        fprintf(stderr, "hello: %s\n", err);
        return 2;
    }
    sl_tracer *tracer = NULL;
    if ((to.endpoint || getenv("OTEL_TRACES_SAMPLER")) && (rc = sl_tracer_new(&tracer, &to)) < 0) {
        fprintf(stderr, "hello: tracer: %s\n", strerror(-rc));
        return 1;
    }
    o.tracer = tracer;
    sl_runtime *rt;
    sl_http_server *srv;
    rc = sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = threads });
    if (rc < 0) {
        fprintf(stderr, "hello: runtime: %s\n", strerror(-rc));
        return 1;
    }
    if ((rc = sl_http_server_new(&srv, rt, &o)) < 0) {
        fprintf(stderr, "hello: --listen %s: %s\n", listen, strerror(-rc));
        return rc == -EINVAL ? 2 : 1;
    }
    if ((rc = sl_http_route(srv, "GET", "/hello", hello, 0, NULL)) < 0 ||
        (rc = sl_http_server_start(srv)) < 0 || (rc = sl_http_server_handle_signals(srv)) < 0) {
        fprintf(stderr, "hello: %s\n", strerror(-rc));
        return 1;
    }
    if (trace && (rc = sl_trace_start(rt, trace, 0)) < 0) {
        fprintf(stderr, "hello: --trace %s: %s\n", trace, strerror(-rc));
        return 1;
    }
    char host[64];
    snprintf(host, sizeof host, "%.*s", (int)(strrchr(listen, ':') - listen), listen);
    printf("listening on %s:%d\n", host, sl_http_server_port(srv));
    fflush(stdout);
    sl_runtime_run(rt);
    sl_http_server_free(srv);
    int leaks = sl_runtime_free(rt);
    sl_tracer_free(tracer);
    return leaks ? 1 : 0;
}
