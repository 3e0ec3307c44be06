/* test_examples.c: the programs of the README run as it says (issue 18).
 *
 * examples/first/first prints its three lines and ends by itself with 0
 * (stop_when_done); examples/http/http serves GET /hello and exits 0 on
 * SIGTERM. Each run is bounded: a program that does not end in time is
 * killed and the test fails. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "svcutil.h"

enum { RUN_MS = 15000 };

/* Runs `path` to its end, its stdout into out; returns its exit code, or
 * fails the test if it has not ended within RUN_MS. */
static int run_to_end(const char *path, char *out, size_t outsz)
{
    int po[2];
    assert_int_equal(pipe2(po, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        execl(path, path, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(po[1]);
    size_t len = 0;
    uint64_t end = svc_now_ms() + RUN_MS;
    for (;;) {
        uint64_t now = svc_now_ms();
        struct pollfd p = { .fd = po[0], .events = POLLIN };
        if (now >= end || poll(&p, 1, (int)(end - now)) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            close(po[0]);
            fail_msg("%s did not end within %d ms", path, RUN_MS);
        }
        ssize_t n = read(po[0], out + len, outsz - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;   /* EOF: it closed its stdout, it is ending */
        len += (size_t)n;
        assert_true(len < outsz - 1);
    }
    out[len] = '\0';
    close(po[0]);
    int st = 0;
    /* stdout is closed at exit; the reap is bounded by the same deadline */
    while (waitpid(pid, &st, WNOHANG) == 0) {
        if (svc_now_ms() >= end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("%s closed its stdout but did not exit within %d ms", path, RUN_MS);
        }
        poll(NULL, 0, 5);   /* a reap poll, not a synchronisation */
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_first_runs_and_ends(void **s)
{
    (void)s;
    char out[256];
    assert_int_equal(run_to_end("examples/first/first", out, sizeof out), 0);
    assert_string_equal(out, "got 0\ngot 1\ngot 2\n");
}

/* docs/core.md's offload program: getaddrinfo("localhost") on the pool
 * (the hosts file answers it; no network). */
static void test_offload_runs_and_ends(void **s)
{
    (void)s;
    char out[256];
    assert_int_equal(run_to_end("examples/offload/offload", out, sizeof out), 0);
    assert_string_equal(out, "localhost resolves\n");
}

static void test_http_serves_and_stops(void **s)
{
    (void)s;
    svc srv;
    assert_int_equal(svc_start(&srv, "examples/http/http", (const char *const[]){ "127.0.0.1:0", NULL }), 0);
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    assert_int_equal(http_req(srv.port, "GET", "/hello", NULL, NULL, 5000, r), 200);
    assert_string_equal(r->body, "{\"message\":\"Hello\"}");
    assert_int_equal(http_req(srv.port, "GET", "/nowhere", NULL, NULL, 5000, r), 404);
    free(r);
    svc_stop(&srv);   /* SIGTERM: exit 0 within the bound */
}

/* A port that cannot be bound: the program says so, frees what it made and
 * exits 1. Under --enable-sanitizers a leak on that path is a
 * LeakSanitizer report on its stderr, and ASan's exit code for it is 1
 * too: the code alone cannot tell them apart, its stderr can. */
static void test_http_bad_listen_fails(void **s)
{
    (void)s;
    static const char *const bad[] = { "not-an-address", "127.0.0.1:99999", "127.0.0.1:", NULL };
    for (int i = 0; bad[i]; i++) {
        char err[16384] = "", want[128];
        assert_int_equal(svc_run_usage("examples/http/http", (const char *const[]){ bad[i], NULL }, err, sizeof err), 1);
        snprintf(want, sizeof want, "http: cannot serve on %s\n", bad[i]);
        if (strcmp(err, want) != 0)   /* anything more, a sanitizer's report included, is a failure */
            fail_msg("%s: stderr is not just \"%s\":\n%s", bad[i], want, err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_runs_and_ends),
        cmocka_unit_test(test_offload_runs_and_ends),
        cmocka_unit_test(test_http_serves_and_stops),
        cmocka_unit_test(test_http_bad_listen_fails),
    };
    return cmocka_run_group_tests(tests, NULL, svc_teardown);
}
