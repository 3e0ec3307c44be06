/* log.c: the log sink; see sl_log.h.
 *
 * One ring buffer under a mutex: callers hold it only to copy a formatted
 * line in, the writer only to take or release a span, never across a
 * write(), so a reader that stops reading stalls the writer thread alone.
 * The span the writer writes stays counted in len until it is written, so
 * callers never copy over it. */
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "sl_diag.h"
#include "sl_log.h"

#define MSG_MAX 4096
#define BUF_DEFAULT (1u << 20)
#define BUF_MIN 4096

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* the writer waits for lines or closing */
    char *buf;
    size_t cap, start, len;
    bool open, closing, failed;
    int fd;
    sl_log_format fmt;
    pthread_t th;
} g = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static atomic_uint_fast64_t dropped;

uint64_t sl_log_dropped(void)
{
    return atomic_load(&dropped);
}

int sl_log_format_parse(const char *s, sl_log_format *out)
{
    if (s && !strcmp(s, "text"))
        return *out = SL_LOG_TEXT, 0;
    if (s && !strcmp(s, "json"))
        return *out = SL_LOG_JSON, 0;
    return -EINVAL;
}

/* All of n bytes to fd; a full non-blocking fd is waited for (this runs
 * on the writer thread, or on the caller's with no sink open). */
static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pf = { .fd = fd, .events = POLLOUT };
            (void)poll(&pf, 1, -1);
            continue;
        }
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static size_t count_lines(size_t start, size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        k += g.buf[(start + i) % g.cap] == '\n';
    return k;
}

static void *writer(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "sl-log");   /* top -H and perf tell the threads apart */
    pthread_mutex_lock(&g.mu);
    for (;;) {
        while (!g.len && !g.closing)
            pthread_cond_wait(&g.cv, &g.mu);
        if (!g.len)
            break;
        size_t n = g.len < g.cap - g.start ? g.len : g.cap - g.start;
        const char *p = g.buf + g.start;
        bool failed = g.failed;
        pthread_mutex_unlock(&g.mu);
        int rc = failed ? -1 : write_all(g.fd, p, n);
        pthread_mutex_lock(&g.mu);
        if (rc < 0) {   /* the fd is gone (EPIPE, EBADF...): what waits is lost, and counted */
            g.failed = true;
            atomic_fetch_add(&dropped, count_lines(g.start, n));
        }
        g.start = (g.start + n) % g.cap;
        g.len -= n;
    }
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

/* The runtime's reports (stalls, deadlocks, leaks, misuse: core/sl_diag.h)
 * as log lines while the sink is open, so --log-format json gives JSON for
 * them too. Called under core's report lock, which is never taken under
 * g.mu: no order to invert. */
static void log_report(const char *text, void *arg)
{
    (void)arg;
    bool error = !strncmp(text, "sluice: deadlock", 16) || !strncmp(text, "sluice: misuse", 14);
    sl_log(error ? SL_LOG_ERROR : SL_LOG_WARN, "%s", text);
}

int sl_log_open(const sl_log_opts *opts)
{
    sl_log_opts o = opts ? *opts : (sl_log_opts){ 0 };
    if (o.fd < 0 || (o.format != SL_LOG_TEXT && o.format != SL_LOG_JSON) ||
        (o.buffer_bytes && o.buffer_bytes < BUF_MIN))
        return -EINVAL;
    pthread_mutex_lock(&g.mu);
    if (g.open || g.closing) {
        pthread_mutex_unlock(&g.mu);
        return -EALREADY;
    }
    size_t cap = o.buffer_bytes ? o.buffer_bytes : BUF_DEFAULT;
    char *buf = malloc(cap);
    if (!buf) {
        pthread_mutex_unlock(&g.mu);
        return -ENOMEM;
    }
    g.buf = buf;
    g.cap = cap;
    g.start = g.len = 0;
    g.fd = o.fd ? o.fd : 2;
    g.fmt = o.format;
    g.failed = false;
    int rc = pthread_create(&g.th, NULL, writer, NULL);
    if (rc) {
        free(buf);
        g.buf = NULL;
        pthread_mutex_unlock(&g.mu);
        return -rc;
    }
    g.open = true;
    pthread_mutex_unlock(&g.mu);
    sl_diag_set_sink(log_report, NULL);
    return 0;
}

void sl_log_close(void)
{
    pthread_mutex_lock(&g.mu);
    if (!g.open) {
        pthread_mutex_unlock(&g.mu);
        return;
    }
    pthread_mutex_unlock(&g.mu);
    sl_diag_set_sink(NULL, NULL);   /* reports: stderr again (not under g.mu: see log_report) */
    pthread_mutex_lock(&g.mu);
    if (!g.open) {   /* closed meanwhile by another thread */
        pthread_mutex_unlock(&g.mu);
        return;
    }
    g.open = false;   /* from now on lines go to stderr at once, after what is buffered */
    g.closing = true;
    pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
    pthread_join(g.th, NULL);
    pthread_mutex_lock(&g.mu);
    free(g.buf);
    g.buf = NULL;
    g.closing = false;
    pthread_mutex_unlock(&g.mu);
}

/* One whole line (ending in '\n') into the buffer, or dropped. */
static void emit(const char *line, size_t n)
{
    pthread_mutex_lock(&g.mu);
    if (!g.open) {
        bool closing = g.closing;
        pthread_mutex_unlock(&g.mu);
        if (closing || write_all(2, line, n) < 0)   /* closing: its thread is draining the fd */
            atomic_fetch_add(&dropped, 1);
        return;
    }
    if (g.failed || g.cap - g.len < n) {
        pthread_mutex_unlock(&g.mu);
        atomic_fetch_add(&dropped, 1);
        return;
    }
    size_t at = (g.start + g.len) % g.cap, first = n < g.cap - at ? n : g.cap - at;
    memcpy(g.buf + at, line, first);
    memcpy(g.buf, line + first, n - first);
    bool was_empty = !g.len;
    g.len += n;
    if (was_empty)
        pthread_cond_signal(&g.cv);
    pthread_mutex_unlock(&g.mu);
}

static sl_log_format format_now(void)
{
    pthread_mutex_lock(&g.mu);
    sl_log_format f = g.open ? g.fmt : SL_LOG_TEXT;
    pthread_mutex_unlock(&g.mu);
    return f;
}

/* RFC 3339, UTC, milliseconds: "2026-12-05T10:40:00.123Z" (24 bytes). */
static void timestamp(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, 32 - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

static const char *const level_text[] = { "DEBUG", "INFO", "WARN", "ERROR" };
static const char *const level_json[] = { "debug", "info", "warn", "error" };

static unsigned lvl(sl_log_level l)
{
    return (unsigned)l <= SL_LOG_ERROR ? (unsigned)l : SL_LOG_ERROR;
}

/* A JSON string of n bytes: jansson refuses invalid UTF-8, so then every
 * byte >= 0x80 becomes '?' (a request path may hold anything). */
static json_t *jstr(const char *s, size_t n)
{
    json_t *j = json_stringn(s, n);
    if (j)
        return j;
    char *c = malloc(n + 1);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++)
        c[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
    j = json_stringn(c, n);
    free(c);
    return j;
}

static void emit_json(json_t *o)
{
    if (!o) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s) {
        atomic_fetch_add(&dropped, 1);
        return;
    }
    size_t n = strlen(s);
    char *line = realloc(s, n + 2);
    if (!line) {
        free(s);
        atomic_fetch_add(&dropped, 1);
        return;
    }
    line[n] = '\n';
    emit(line, n + 1);
    free(line);
}

/* {"ts":..,"level":..} with the rest added by the caller; NULL on ENOMEM. */
static json_t *json_head(const char *ts, sl_log_level level)
{
    json_t *o = json_object();
    if (o && (json_object_set_new(o, "ts", json_string(ts)) < 0 ||
              json_object_set_new(o, "level", json_string(level_json[lvl(level)])) < 0)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static bool put(json_t *o, const char *key, json_t *v)
{
    return o && json_object_set_new(o, key, v) == 0;
}

/* A text line snprintf made (k as it returned, in size bytes): cut to
 * what fits, ending in its one '\n'; a CR or LF inside (a request path is
 * raw bytes) becomes a space, so no field can forge a line. */
static void emit_text(char *line, int k, size_t size)
{
    if (k <= 0)
        return;
    size_t n = (size_t)k < size ? (size_t)k : size - 1;
    for (size_t i = 0; i + 1 < n; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[n - 1] = '\n';
    emit(line, n);
}

void sl_log(sl_log_level level, const char *fmt, ...)
{
    char ts[32], msg[MSG_MAX];
    timestamp(ts);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    size_t n = m < 0 ? 0 : (size_t)m < sizeof msg ? (size_t)m : sizeof msg - 1;
    while (n && msg[n - 1] == '\n')
        n--;
    if (format_now() == SL_LOG_JSON) {
        json_t *o = json_head(ts, level);
        if (o && !put(o, "msg", jstr(msg, n))) {
            json_decref(o);
            o = NULL;
        }
        emit_json(o);
        return;
    }
    char line[MSG_MAX + 64];
    int k = snprintf(line, sizeof line, "%s %s %.*s\n", ts, level_text[lvl(level)], (int)n, msg);
    emit_text(line, k, sizeof line);
}

void sl_log_access(const char *method, const char *path, size_t path_len, int status, double duration_ms,
                   const char *trace_id, const char *cause)
{
    char ts[32];
    timestamp(ts);
    method = method ? method : "";
    path = path ? path : "";
    if (path_len > MSG_MAX)
        path_len = MSG_MAX;
    if (format_now() == SL_LOG_JSON) {
        json_t *o = json_head(ts, SL_LOG_INFO);
        bool ok = put(o, "msg", json_string("request")) && put(o, "method", jstr(method, strlen(method))) &&
                  put(o, "path", jstr(path, path_len)) && put(o, "status", json_integer(status)) &&
                  put(o, "duration_ms", json_real(duration_ms)) &&
                  (!trace_id || put(o, "trace_id", json_string(trace_id))) &&
                  (!cause || put(o, "cause", jstr(cause, strlen(cause))));
        if (!ok) {
            json_decref(o);
            o = NULL;
        }
        emit_json(o);
        return;
    }
    char line[MSG_MAX + 512];
    int k = snprintf(line, sizeof line, "%s INFO %s %.*s %d %.3fms trace=%s%s%s\n", ts, method, (int)path_len,
                     path, status, duration_ms, trace_id ? trace_id : "", cause ? " cause=" : "",
                     cause ? cause : "");
    emit_text(line, k, sizeof line);
}
