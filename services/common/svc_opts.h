/* svc_opts.h: the command line every service of the demo chain shares.
 *
 *   --listen HOST:PORT  --threads N  --timeout-ms MS  --grace-ms MS  --prestop-ms MS
 *   --max-pending N (compensations pending before new work is refused)
 *   --mode safe|guarded|naive  --admission on|off
 *   --admin  --access-log  --log-format text|json  --log-buffer BYTES  --trace FILE.json
 *   --otlp-endpoint URL  --service-name NAME  --traces-sampler NAME
 *   --data DIR|:memory:  --sync normal|full (svc_store.h)
 *   --traces-sampler-arg RATIO (OpenTelemetry's OTEL_* variables, which
 *   they override: svc_tracing.h)  and the program's own:
 *   one upstream list (--inventory / --payment / --order) with its pool
 *   (--upstream-max-conns N, --upstream-max-waiting N, --upstream-margin-ms MS) and, for
 *   inventory-svc, --stock ITEM=N,...
 *
 * Pure: parsing touches nothing but the struct, so it is unit-tested. */
#ifndef SVC_OPTS_H
#define SVC_OPTS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SVC_GRACE_MS 5000u
#define SVC_PRESTOP_MS 2000u

typedef enum svc_mode { SVC_SAFE, SVC_GUARDED, SVC_NAIVE } svc_mode;

/* What one program adds to the common options. */
typedef struct svc_prog {
    const char *name;              /* "order-svc" */
    const char *default_listen;    /* "127.0.0.1:8081" */
    const char *upstream_flag;     /* "--inventory", or NULL */
    const char *default_upstream;  /* "http://127.0.0.1:8082" */
    bool has_stock;                /* accepts --stock */
} svc_prog;

typedef struct svc_opts {
    const char *listen;
    int threads;                   /* 0: online CPUs */
    uint32_t timeout_ms;           /* 0: not given (the mode's default) */
    uint32_t grace_ms;             /* SIGTERM's drain (default SVC_GRACE_MS) */
    uint32_t prestop_ms;           /* SIGTERM's preStop window, readiness failing while all is
                                      served (default SVC_PRESTOP_MS; 0: none) */
    uint32_t max_pending;          /* 0: not given (SVC_UNDO_MAX, svc_undo.h) */
    svc_mode mode;
    bool admin, access_log;
    bool log_json;                 /* --log-format json (default text): sl_log.h */
    uint32_t log_buffer;           /* --log-buffer: lines waiting for the writer, bytes (0: 1 MiB) */
    bool admission_off;            /* --admission off: fixed limits only (docs/net.md) */
    const char *trace;             /* NULL: no trace */
    const char *upstream;
    /* the upstream client's pool (sl_client.h; 0: its default) */
    uint32_t up_max_conns, up_max_waiting, up_margin_ms;
    const char *stock;             /* NULL: the default stock */
    const char *data;              /* --data DIR (NULL: a new temporary directory; ":memory:") */
    bool sync_full;                /* --sync full (default normal) */
    /* span export (svc_tracing.h); NULL: not given, OTEL_* or the default */
    const char *otlp_endpoint, *service_name, *traces_sampler, *traces_sampler_arg;
} svc_opts;

/* Fills *o from argv (argv[0] is the program). Returns 0, or -EINVAL with a
 * one-line explanation in err (errlen bytes, NUL-terminated). */
int svc_opts_parse(svc_opts *o, const svc_prog *p, int argc, char **argv, char *err, size_t errlen);

/* "safe", "guarded", "naive". */
const char *svc_mode_name(svc_mode m);

/* The request budget the server gets: --timeout-ms, else 2000 ms; naive
 * mode ignores budgets, so there only a client's timeout ends a request
 * (24 h unless --timeout-ms is given). */
uint32_t svc_opts_timeout_ms(const svc_opts *o);

#endif
