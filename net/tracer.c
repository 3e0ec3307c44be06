/* tracer.c: the sampler, the bounded span queue and the exporter thread
 * (sl_tracer.h). Reactors only ever copy a finished span into the queue
 * under a mutex held for that copy; the thread takes batches out and sends
 * them with the mutex released, so a slow collector costs a reactor
 * nothing but the spans dropped once the queue is full. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <event2/buffer.h>
#include "sl_time.h"
#include "trace_int.h"

struct sl_tracer {
    sl_tracer_opts o;
    char *endpoint, *service_name;   /* copies */
    sl__otlp_target target;
    bool exports;
    uint64_t ratio_bound;            /* sampled: low 63 bits of the id below it */
    pthread_mutex_t mu;
    pthread_cond_t wake;             /* the exporter: work or stop */
    pthread_cond_t idle;             /* flush waiters: the queue went empty */
    pthread_t th;
    bool stop, flush_asked;
    uint32_t sending;                /* spans in the batch being sent */
    sl__span *ring;                  /* queue_max spans */
    uint32_t head, len;
    uint64_t first_at;               /* when the oldest queued span came (monotonic) */
    sl_tracer_stats st;
};

/* ---- options ------------------------------------------------------------------------ */

static const char *const sampler_names[] = {
    [SL_SAMPLER_PARENT_ALWAYS_ON] = "parentbased_always_on",
    [SL_SAMPLER_PARENT_ALWAYS_OFF] = "parentbased_always_off",
    [SL_SAMPLER_PARENT_RATIO] = "parentbased_traceidratio",
    [SL_SAMPLER_ALWAYS_ON] = "always_on",
    [SL_SAMPLER_ALWAYS_OFF] = "always_off",
    [SL_SAMPLER_RATIO] = "traceidratio",
};
#define NSAMPLERS (int)(sizeof sampler_names / sizeof *sampler_names)

int sl_tracer_sampler_parse(const char *name, int *sampler)
{
    for (int i = 0; name && sampler && i < NSAMPLERS; i++)
        if (!strcmp(name, sampler_names[i])) {
            *sampler = i;
            return 0;
        }
    return -EINVAL;
}

int sl_tracer_ratio_parse(const char *s, double *ratio)
{
    if (!s || !ratio || !*s)
        return -EINVAL;
    for (const char *p = s; *p; p++)   /* digits and one '.': no sign, exponent, inf, nan, hex */
        if ((*p < '0' || *p > '9') && *p != '.')
            return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || errno || !(v >= 0 && v <= 1))
        return -EINVAL;
    *ratio = v;
    return 0;
}

static int env_fail(char *err, size_t errlen, const char *var, const char *val, const char *why)
{
    if (err && errlen)
        snprintf(err, errlen, "%s=\"%s\": %s", var, val, why);
    return -EINVAL;
}

int sl_tracer_opts_env(sl_tracer_opts *o, char *err, size_t errlen)
{
    if (!o)
        return -EINVAL;
    memset(o, 0, sizeof *o);
    o->ratio = 1.0;
    const char *v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    sl__otlp_target t;
    if (v && *v && sl__otlp_target_parse(v, &t) < 0)
        return env_fail(err, errlen, "OTEL_EXPORTER_OTLP_ENDPOINT", v, "not http://HOST:PORT[/path]");
    o->endpoint = v && *v ? v : NULL;
    v = getenv("OTEL_SERVICE_NAME");
    o->service_name = v && *v ? v : NULL;
    v = getenv("OTEL_TRACES_SAMPLER");
    if (v && *v && sl_tracer_sampler_parse(v, &o->sampler) < 0)
        return env_fail(err, errlen, "OTEL_TRACES_SAMPLER", v,
                        "not always_on, always_off, traceidratio, parentbased_always_on, "
                        "parentbased_always_off or parentbased_traceidratio");
    v = getenv("OTEL_TRACES_SAMPLER_ARG");
    if (v && *v && sl_tracer_ratio_parse(v, &o->ratio) < 0)
        return env_fail(err, errlen, "OTEL_TRACES_SAMPLER_ARG", v, "not a number from 0 to 1");
    return 0;
}

/* ---- sampling -------------------------------------------------------------------------- */

static uint64_t ratio_bound(double ratio)
{
    /* 2^63 * ratio, with 1.0 taking every id (the bound is exclusive) */
    return ratio >= 1.0 ? UINT64_MAX : (uint64_t)(ratio * 9223372036854775808.0);
}

static bool by_ratio(const sl_tracer *tr, const uint8_t id[16])
{
    uint64_t r = 0;
    for (int i = 8; i < 16; i++)
        r = r << 8 | id[i];
    return (r >> 1) < tr->ratio_bound;
}

bool sl_tracer_sample(const sl_tracer *tr, const sl_traceparent *parent, const uint8_t trace_id[16])
{
    if (!tr)
        return parent && (parent->flags & 1);
    switch (tr->o.sampler) {
    case SL_SAMPLER_ALWAYS_ON: return true;
    case SL_SAMPLER_ALWAYS_OFF: return false;
    case SL_SAMPLER_RATIO: return by_ratio(tr, trace_id);
    default: break;
    }
    if (parent)
        return parent->flags & 1;
    return tr->o.sampler == SL_SAMPLER_PARENT_ALWAYS_ON ||
           (tr->o.sampler == SL_SAMPLER_PARENT_RATIO && by_ratio(tr, trace_id));
}

/* ---- the queue -------------------------------------------------------------------------- */

bool sl__tracer_exports(const sl_tracer *tr) { return tr && tr->exports; }

uint64_t sl__unix_ns_of(uint64_t mono_ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t wall = (uint64_t)ts.tv_sec * SL_NS_PER_S + (uint64_t)ts.tv_nsec, now = sl_now_ns();
    return now >= mono_ns ? wall - (now - mono_ns) : wall + (mono_ns - now);
}

void sl__tracer_push(sl_tracer *tr, const sl__span *sp)
{
    pthread_mutex_lock(&tr->mu);
    tr->st.spans++;
    if (tr->len == tr->o.queue_max || tr->stop) {
        tr->st.dropped++;
    } else {
        if (!tr->len)
            tr->first_at = sl_now_ns();
        tr->ring[(tr->head + tr->len) % tr->o.queue_max] = *sp;
        /* the first span: the exporter, asleep for good on an empty queue,
         * starts its delay_ms; a full batch: it sends at once */
        if (++tr->len == 1 || tr->len == tr->o.batch_max)
            pthread_cond_signal(&tr->wake);
    }
    pthread_mutex_unlock(&tr->mu);
}

static void deadline_in(struct timespec *ts, uint64_t ns)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t t = (uint64_t)ts->tv_sec * SL_NS_PER_S + (uint64_t)ts->tv_nsec + ns;
    ts->tv_sec = (time_t)(t / SL_NS_PER_S);
    ts->tv_nsec = (long)(t % SL_NS_PER_S);
}

/* Sends one batch (the mutex is held on entry and on return, released
 * while sending). */
static void send_batch(sl_tracer *tr, sl__span *batch)
{
    uint32_t n = tr->len < tr->o.batch_max ? tr->len : tr->o.batch_max;
    for (uint32_t i = 0; i < n; i++)
        batch[i] = tr->ring[(tr->head + i) % tr->o.queue_max];
    tr->head = (tr->head + n) % tr->o.queue_max;
    tr->len -= n;
    tr->first_at = tr->len ? sl_now_ns() : 0;
    tr->sending = n;
    tr->st.batches++;
    pthread_mutex_unlock(&tr->mu);
    char *body = sl__otlp_json(batch, n, tr->service_name);
    int rc = body ? sl__otlp_post(&tr->target, body, strlen(body), tr->o.timeout_ms) : -ENOMEM;
    free(body);
    pthread_mutex_lock(&tr->mu);
    if (rc >= 200 && rc < 300)
        tr->st.exported += n;
    else
        tr->st.failed += n;
    tr->sending = 0;
}

static void *exporter(void *arg)
{
    sl_tracer *tr = arg;
    pthread_setname_np(pthread_self(), "sl-otlp");   /* top -H and perf tell the threads apart */
    sl__span *batch = malloc(sizeof *batch * tr->o.batch_max);
    pthread_mutex_lock(&tr->mu);
    for (;;) {
        uint64_t delay = (uint64_t)tr->o.delay_ms * SL_NS_PER_MS;
        bool due = tr->len && (tr->len >= tr->o.batch_max || tr->flush_asked || tr->stop ||
                               sl_now_ns() - tr->first_at >= delay);
        if (due && batch) {
            send_batch(tr, batch);
            continue;
        }
        if (!tr->len) {
            tr->flush_asked = false;
            pthread_cond_broadcast(&tr->idle);
        }
        if (tr->stop)
            break;
        /* Nothing queued: sleep until the first span (sl__tracer_push
         * signals it), flush or stop. It woke every delay_ms (1 s) in an
         * idle service before (bench/idle-wakeups.sh). */
        if (!tr->len) {
            pthread_cond_wait(&tr->wake, &tr->mu);
        } else {
            struct timespec ts;
            deadline_in(&ts, delay - (sl_now_ns() - tr->first_at));
            pthread_cond_timedwait(&tr->wake, &tr->mu, &ts);
        }
        tr->st.wakeups++;
    }
    if (!batch) {   /* could not send anything: count it */
        tr->st.failed += tr->len;
        tr->len = 0;
    }
    pthread_mutex_unlock(&tr->mu);
    free(batch);
    return NULL;
}

/* ---- the tracer --------------------------------------------------------------------------- */

int sl_tracer_new(sl_tracer **out, const sl_tracer_opts *opts)
{
    if (!out || !opts || opts->sampler < 0 || opts->sampler >= NSAMPLERS || !(opts->ratio >= 0 && opts->ratio <= 1))
        return -EINVAL;
    sl_tracer *tr = calloc(1, sizeof *tr);
    if (!tr)
        return -ENOMEM;
    tr->o = *opts;
    if (!tr->o.queue_max)
        tr->o.queue_max = 2048;
    if (!tr->o.batch_max)
        tr->o.batch_max = tr->o.queue_max < 512 ? tr->o.queue_max : 512;
    if (!tr->o.delay_ms)
        tr->o.delay_ms = 1000;
    if (!tr->o.timeout_ms)
        tr->o.timeout_ms = 2000;
    tr->ratio_bound = ratio_bound(tr->o.ratio);
    tr->exports = opts->endpoint && *opts->endpoint;
    int rc = tr->o.batch_max > tr->o.queue_max ? -EINVAL : 0;
    if (!rc && tr->exports && sl__otlp_target_parse(opts->endpoint, &tr->target) < 0)
        rc = -EINVAL;
    tr->service_name = strdup(opts->service_name && *opts->service_name ? opts->service_name : "unknown_service");
    tr->endpoint = tr->exports ? strdup(opts->endpoint) : NULL;
    if (!rc && (!tr->service_name || (tr->exports && !tr->endpoint)))
        rc = -ENOMEM;
    tr->o.endpoint = tr->endpoint;
    tr->o.service_name = tr->service_name;
    if (!rc && tr->exports && !(tr->ring = calloc(tr->o.queue_max, sizeof *tr->ring)))
        rc = -ENOMEM;
    if (rc) {
        free(tr->service_name);
        free(tr->endpoint);
        free(tr);
        return rc;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&tr->mu, NULL);
    pthread_cond_init(&tr->wake, &ca);
    pthread_cond_init(&tr->idle, &ca);
    pthread_condattr_destroy(&ca);
    if (tr->exports && pthread_create(&tr->th, NULL, exporter, tr) != 0) {
        tr->exports = false;
        sl_tracer_free(tr);
        return -EAGAIN;
    }
    *out = tr;
    return 0;
}

void sl_tracer_free(sl_tracer *tr)
{
    if (!tr)
        return;
    if (tr->exports) {
        pthread_mutex_lock(&tr->mu);
        tr->stop = true;
        pthread_cond_signal(&tr->wake);
        pthread_mutex_unlock(&tr->mu);
        pthread_join(tr->th, NULL);
    }
    pthread_cond_destroy(&tr->wake);
    pthread_cond_destroy(&tr->idle);
    pthread_mutex_destroy(&tr->mu);
    free(tr->ring);
    free(tr->endpoint);
    free(tr->service_name);
    free(tr);
}

void sl_tracer_stats_get(sl_tracer *tr, sl_tracer_stats *st)
{
    pthread_mutex_lock(&tr->mu);
    *st = tr->st;
    st->queued = tr->len + tr->sending;
    pthread_mutex_unlock(&tr->mu);
}

int sl_tracer_flush(sl_tracer *tr, uint32_t timeout_ms)
{
    if (!tr->exports)
        return -ENOTCONN;
    struct timespec ts;
    deadline_in(&ts, (uint64_t)timeout_ms * SL_NS_PER_MS);
    int rc = 0;
    pthread_mutex_lock(&tr->mu);
    tr->flush_asked = true;
    pthread_cond_signal(&tr->wake);
    while ((tr->len || tr->sending) && rc == 0)
        rc = pthread_cond_timedwait(&tr->idle, &tr->mu, &ts);
    pthread_mutex_unlock(&tr->mu);
    return rc ? -ETIMEDOUT : 0;
}
