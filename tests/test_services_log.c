/* test_services_log.c: the services' logs (net/sl_log.h, docs/services.md):
 *  1. --log-format json: every stderr line is a JSON object with ts and
 *     level; the events (listening, stopped) and one access-log line per
 *     request with method, path, status, duration_ms and trace_id;
 *  2. text (the default): every line starts with an RFC 3339 timestamp;
 *  3. stderr into a pipe nobody reads: requests keep being answered and
 *     the lines that do not fit are dropped and counted in /metrics;
 *  4. a bad --log-format or SLUICE_LOG_FORMAT exits 2 naming it. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "svcutil.h"

/* Starts `name` with its stderr on fd `errfd` (for its start only; the
 * test's own stderr comes back). */
static void start_with_stderr(svc *s, const char *name, const char *const *args, int errfd)
{
    int saved = dup(2);
    assert_true(saved >= 0);
    fflush(stderr);
    assert_int_equal(dup2(errfd, 2), 2);
    int started = svc_start(s, name, args);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(started, 0);
}

/* A temporary file (unlinked) and its whole text after the run. */
static int tmpfile_fd(void)
{
    char path[] = "/tmp/sluice-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

static char *read_all(int fd)
{
    static char text[1 << 18];
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

static bool ts_ok(const char *ts)
{
    /* 2026-12-05T10:40:00.123Z */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    for (int i = 0; i < 24; i++)
        if (shape[i] == 'd' ? ts[i] < '0' || ts[i] > '9' : ts[i] != shape[i])
            return false;
    return true;
}

static void json_logs(void **state)
{
    (void)state;
    int errfd = tmpfile_fd();
    svc inv;
    const char *args[] = { "--listen", "127.0.0.1:0", "--threads", "1", "--access-log", "--log-format", "json",
                           "--data", ":memory:", NULL };
    start_with_stderr(&inv, "inventory", args, errfd);
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    assert_int_equal(http_req(inv.port, "GET", "/livez", NULL, NULL, 5000, r), 200);
    assert_int_equal(http_req(inv.port, "GET", "/no\"such", NULL,
                              "traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n", 5000, r),
                     404);
    free(r);
    svc_stop(&inv);   /* exit 0: what was buffered is written */
    char *text = read_all(errfd);
    close(errfd);
    int lines = 0, access = 0;
    bool listening = false, stopped = false, traced = false;
    for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
        json_error_t e;
        json_t *o = json_loads(line, 0, &e);
        if (!o)
            fail_msg("stderr line %d is not JSON (%s): %s", lines, e.text, line);
        const char *ts = json_string_value(json_object_get(o, "ts"));
        const char *level = json_string_value(json_object_get(o, "level"));
        const char *msg = json_string_value(json_object_get(o, "msg"));
        assert_true(ts && ts_ok(ts));
        assert_true(level && msg);
        listening |= strstr(msg, "inventory-svc: listening on 127.0.0.1:") != NULL;
        stopped |= !strcmp(msg, "inventory-svc: stopped");
        if (!strcmp(msg, "request")) {
            access++;
            const char *method = json_string_value(json_object_get(o, "method"));
            const char *path = json_string_value(json_object_get(o, "path"));
            assert_true(method && path && json_is_real(json_object_get(o, "duration_ms")));
            assert_true(json_is_string(json_object_get(o, "trace_id")));
            long long status = json_integer_value(json_object_get(o, "status"));
            if (!strcmp(path, "/no\"such")) {
                assert_int_equal(status, 404);
                assert_string_equal(json_string_value(json_object_get(o, "trace_id")),
                                    "0af7651916cd43dd8448eb211c80319c");
                traced = true;
            }
        }
        json_decref(o);
    }
    assert_true(listening && stopped && traced);
    assert_true(access >= 2);
}

static void text_logs(void **state)
{
    (void)state;
    int errfd = tmpfile_fd();
    svc inv;
    const char *args[] = { "--listen", "127.0.0.1:0", "--threads", "1", "--access-log", "--data", ":memory:", NULL };
    start_with_stderr(&inv, "inventory", args, errfd);
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    assert_int_equal(http_req(inv.port, "GET", "/livez", NULL, NULL, 5000, r), 200);
    free(r);
    svc_stop(&inv);
    char *text = read_all(errfd);
    close(errfd);
    bool access = false;
    int lines = 0;
    for (char *save, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save), lines++) {
        if (!ts_ok(line) || line[24] != ' ')
            fail_msg("stderr line %d has no timestamp: %s", lines, line);
        access |= !strncmp(line + 25, "INFO GET /livez 200 ", 20) && strstr(line, "ms trace=");
    }
    assert_true(lines >= 3 && access);
}

/* Nobody reads its stderr: the pipe (4 KiB) and the sink's buffer (4 KiB)
 * fill after a few dozen requests; every request is still answered and
 * /metrics counts the dropped lines. Bounded by count, not by time. */
static void blocked_stderr_never_blocks_requests(void **state)
{
    (void)state;
    int p[2];
    /* close-on-exec: the service must not hold the read end itself */
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    (void)fcntl(p[1], F_SETPIPE_SZ, 4096);   /* the smallest a pipe gets; 64 KiB if refused */
    svc inv;
    const char *args[] = { "--listen", "127.0.0.1:0", "--threads", "1", "--access-log", "--log-buffer", "4096",
                           "--data", ":memory:", NULL };
    start_with_stderr(&inv, "inventory", args, p[1]);
    close(p[1]);
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    double dropped = 0;
    int i;
    /* ~110 bytes a line: 64 KiB + 4 KiB is under 700 lines */
    for (i = 0; i < 3000 && dropped <= 0; i++) {
        assert_int_equal(http_req(inv.port, "GET", "/livez", NULL, NULL, 10000, r), 200);
        if (i % 20 == 19)
            dropped = svc_metric(inv.port, "sluice_log_dropped_total", NULL, NULL);
    }
    if (dropped <= 0)
        fail_msg("no dropped line counted after %d requests", i);
    /* and it keeps answering */
    for (int k = 0; k < 20; k++)
        assert_int_equal(http_req(inv.port, "GET", "/livez", NULL, NULL, 10000, r), 200);
    assert_true(svc_metric(inv.port, "sluice_log_dropped_total", NULL, NULL) >= dropped);
    free(r);
    close(p[0]);   /* the stuck write fails (EPIPE): the exit is not held up either */
    svc_stop(&inv);
}

static void bad_log_format_exits_2(void **state)
{
    (void)state;
    char err[1024];
    const char *a1[] = { "--log-format", "xml", NULL };
    assert_int_equal(svc_run_usage("order", a1, err, sizeof err), 2);
    assert_non_null(strstr(err, "--log-format wants text or json, not 'xml'"));
    const char *a2[] = { "--log-buffer", "100", NULL };
    assert_int_equal(svc_run_usage("payment", a2, err, sizeof err), 2);
    assert_non_null(strstr(err, "--log-buffer wants 4096"));
    setenv("SLUICE_LOG_FORMAT", "yaml", 1);
    const char *a3[] = { NULL };
    int rc = svc_run_usage("inventory", a3, err, sizeof err);
    unsetenv("SLUICE_LOG_FORMAT");
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "SLUICE_LOG_FORMAT='yaml'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(json_logs, svc_teardown),
        cmocka_unit_test_teardown(text_logs, svc_teardown),
        cmocka_unit_test_teardown(blocked_stderr_never_blocks_requests, svc_teardown),
        cmocka_unit_test_teardown(bad_log_format_exits_2, svc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
