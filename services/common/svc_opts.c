/* svc_opts.c: the shared command line; see svc_opts.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "svc_opts.h"

#define DAY_MS 86400000u
#define GRACE_MAX_MS 600000u
#define PENDING_MAX 10000000L

const char *svc_mode_name(svc_mode m)
{
    return m == SVC_NAIVE ? "naive" : m == SVC_GUARDED ? "guarded" : "safe";
}

uint32_t svc_opts_timeout_ms(const svc_opts *o)
{
    if (o->timeout_ms)
        return o->timeout_ms;
    return o->mode == SVC_NAIVE ? DAY_MS : 2000;
}

static int fail(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A whole decimal number in [lo, hi]: digits only (strtol alone would
 * take " 80", "+80" and "-0"). */
static int number(const char *s, long lo, long hi, long *out)
{
    char *end;
    if ((unsigned)(*s - '0') > 9u)
        return -EINVAL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -EINVAL;
    *out = v;
    return 0;
}

/* The port of "HOST:PORT" (`s` to `end`, an optional '/' after it): 1 to 5
 * digits, at most 65535. The net layer checks the rest but takes " 80" and
 * "+80" for a port, as strtol does. */
static bool port_ok(const char *s, const char *end)
{
    const char *colon = NULL;
    for (const char *p = s; p < end; p++)
        if (*p == ':')
            colon = p;
    if (end > s && end[-1] == '/')
        end--;
    if (!colon || end - colon - 1 < 1 || end - colon - 1 > 5)
        return false;
    long v = 0;
    for (const char *p = colon + 1; p < end; p++) {
        if ((unsigned)(*p - '0') > 9u)
            return false;
        v = v * 10 + (*p - '0');
    }
    return v <= 65535;
}

/* Every element of a comma-separated list of addresses has a port_ok(). */
static bool ports_ok(const char *list)
{
    for (const char *s = list;; ) {
        const char *comma = strchr(s, ',');
        const char *end = comma ? comma : s + strlen(s);
        if (!port_ok(s, end))
            return false;
        if (!comma)
            return true;
        s = comma + 1;
    }
}

static int parse_mode(const char *s, svc_mode *m)
{
    static const svc_mode all[] = { SVC_SAFE, SVC_GUARDED, SVC_NAIVE };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (!strcmp(s, svc_mode_name(all[i]))) {
            *m = all[i];
            return 0;
        }
    return -EINVAL;
}

int svc_opts_parse(svc_opts *o, const svc_prog *p, int argc, char **argv, char *err, size_t errlen)
{
    *o = (svc_opts){ .listen = p->default_listen, .upstream = p->default_upstream, .grace_ms = SVC_GRACE_MS,
                   .prestop_ms = SVC_PRESTOP_MS };
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool flag = !strcmp(a, "--admin") || !strcmp(a, "--access-log");
        if (flag) {
            if (a[2] == 'a' && a[3] == 'd')
                o->admin = true;
            else
                o->access_log = true;
            continue;
        }
        if (i + 1 >= argc || strncmp(a, "--", 2))
            return fail(err, errlen, "%s: unknown option or missing value: '%s'", p->name, a);
        const char *v = argv[++i];
        long n;
        if (!strcmp(a, "--listen")) {
            if (!port_ok(v, v + strlen(v)))
                return fail(err, errlen, "%s: --listen wants HOST:PORT, PORT 0..65535, not '%s'", p->name, v);
            o->listen = v;
        } else if (!strcmp(a, "--threads")) {
            if (number(v, 1, 1024, &n) < 0)
                return fail(err, errlen, "%s: --threads wants 1..1024, not '%s'", p->name, v);
            o->threads = (int)n;
        } else if (!strcmp(a, "--timeout-ms")) {
            if (number(v, 1, DAY_MS, &n) < 0)
                return fail(err, errlen, "%s: --timeout-ms wants 1..%u, not '%s'", p->name, DAY_MS, v);
            o->timeout_ms = (uint32_t)n;
        } else if (!strcmp(a, "--grace-ms")) {
            if (number(v, 1, GRACE_MAX_MS, &n) < 0)
                return fail(err, errlen, "%s: --grace-ms wants 1..%u, not '%s'", p->name, GRACE_MAX_MS, v);
            o->grace_ms = (uint32_t)n;
        } else if (!strcmp(a, "--prestop-ms")) {
            if (number(v, 0, GRACE_MAX_MS, &n) < 0)
                return fail(err, errlen, "%s: --prestop-ms wants 0..%u, not '%s'", p->name, GRACE_MAX_MS, v);
            o->prestop_ms = (uint32_t)n;
        } else if (!strcmp(a, "--max-pending")) {
            if (number(v, 1, PENDING_MAX, &n) < 0)
                return fail(err, errlen, "%s: --max-pending wants 1..%ld, not '%s'", p->name, PENDING_MAX, v);
            o->max_pending = (uint32_t)n;
        } else if (!strcmp(a, "--mode")) {
            if (parse_mode(v, &o->mode) < 0)
                return fail(err, errlen, "%s: --mode wants safe, guarded or naive, not '%s'", p->name, v);
        } else if (!strcmp(a, "--admission")) {
            if (strcmp(v, "on") && strcmp(v, "off"))
                return fail(err, errlen, "%s: --admission wants on or off, not '%s'", p->name, v);
            o->admission_off = !strcmp(v, "off");
        } else if (!strcmp(a, "--data")) {
            if (!*v)
                return fail(err, errlen, "%s: --data wants a directory or :memory:", p->name);
            o->data = v;
        } else if (!strcmp(a, "--sync")) {
            if (strcmp(v, "normal") && strcmp(v, "full"))
                return fail(err, errlen, "%s: --sync wants normal or full, not '%s'", p->name, v);
            o->sync_full = !strcmp(v, "full");
        } else if (!strcmp(a, "--log-format")) {
            if (strcmp(v, "text") && strcmp(v, "json"))
                return fail(err, errlen, "%s: --log-format wants text or json, not '%s'", p->name, v);
            o->log_json = !strcmp(v, "json");
        } else if (!strcmp(a, "--log-buffer")) {
            if (number(v, 4096, 1L << 30, &n) < 0)
                return fail(err, errlen, "%s: --log-buffer wants 4096..%ld bytes, not '%s'", p->name, 1L << 30, v);
            o->log_buffer = (uint32_t)n;
        } else if (!strcmp(a, "--trace")) {
            o->trace = v;
        } else if (!strcmp(a, "--otlp-endpoint")) {   /* these four: checked with OTEL_* in svc_tracing.c */
            o->otlp_endpoint = v;
        } else if (!strcmp(a, "--service-name")) {
            o->service_name = v;
        } else if (!strcmp(a, "--traces-sampler")) {
            o->traces_sampler = v;
        } else if (!strcmp(a, "--traces-sampler-arg")) {
            o->traces_sampler_arg = v;
        } else if (p->upstream_flag && !strcmp(a, p->upstream_flag)) {
            if (!ports_ok(v))
                return fail(err, errlen, "%s: %s wants http://HOST:PORT[,...], not '%s'", p->name, a, v);
            o->upstream = v;
        } else if (p->upstream_flag && (!strcmp(a, "--upstream-max-conns") || !strcmp(a, "--upstream-max-waiting") ||
                                        !strcmp(a, "--upstream-margin-ms"))) {
            if (number(v, 1, 100000, &n) < 0)
                return fail(err, errlen, "%s: %s wants 1..100000, not '%s'", p->name, a, v);
            if (!strcmp(a, "--upstream-max-conns"))
                o->up_max_conns = (uint32_t)n;
            else if (!strcmp(a, "--upstream-max-waiting"))
                o->up_max_waiting = (uint32_t)n;
            else
                o->up_margin_ms = (uint32_t)n;
        } else if (p->has_stock && !strcmp(a, "--stock")) {
            o->stock = v;
        } else {
            return fail(err, errlen, "%s: unknown option '%s'", p->name, a);
        }
    }
    return 0;
}
