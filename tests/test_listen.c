/* test_listen.c: one port, one process (issue 21): a second process
 * cannot start on a port a sluice server listens on, not even when both
 * start in the same instant. Links libsluice.a: sl__listen_pause (an
 * internal, not exported) widens the race window. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "server_int.h"
#include "sl_http.h"
#include "sl_runtime.h"

static void pause_50ms(void)
{
    nanosleep(&(struct timespec){ 0, 50 * 1000000L }, NULL);
}

/* ---- two processes start on one port in the same instant ------------------------- */

/* One contender: a server with two reactors (their sockets share the port
 * among themselves, SO_REUSEPORT) started when `go` closes; writes its
 * start's result (0 or an errno) to `res`, keeps listening until `done`
 * closes, exits. */
static void contend(const char *addr, int go, int res, int done)
{
    sl_runtime *rt;
    sl_http_server *srv;
    sl__listen_pause = pause_50ms;
    if (sl_runtime_new(&rt, &(sl_runtime_opts){ .threads = 2 }) < 0 ||
        sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = addr }) < 0)
        _exit(3);
    char c;
    while (read(go, &c, 1) < 0 && errno == EINTR) {}   /* EOF: everyone goes */
    int rc = sl_http_server_start(srv);
    unsigned char out = (unsigned char)-rc;
    if (write(res, &out, 1) != 1)
        _exit(4);
    while (read(done, &c, 1) < 0 && errno == EINTR) {}
    _exit(0);   /* the kernel closes the sockets; nothing else to keep */
}

/* The check that nobody else listens on the port is atomic with the
 * binds: of two processes starting on one port in the same instant,
 * exactly one wins, every time (issue 21). Before, each made a probe bind
 * and then bound its SO_REUSEPORT sockets, so both could pass the probe
 * and split the port between them: with the window between the check and
 * the binds widened to 50 ms (sl__listen_pause), every pair did. */
static void test_two_at_once_one_wins(void **s)
{
    (void)s;
    enum { TRIALS = 20 };
    int both = 0, none = 0;
    for (int t = 0; t < TRIALS; t++) {
        int probe = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET };
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        socklen_t sl = sizeof sa;
        assert_int_equal(bind(probe, (struct sockaddr *)&sa, sizeof sa), 0);
        getsockname(probe, (struct sockaddr *)&sa, &sl);
        close(probe);   /* a free port, a moment ago */
        char addr[32];
        snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
        int go[2], res[2], done[2];
        assert_int_equal(pipe(go), 0);
        assert_int_equal(pipe(res), 0);
        assert_int_equal(pipe(done), 0);
        pid_t pid[2];
        for (int k = 0; k < 2; k++) {
            pid[k] = fork();
            assert_true(pid[k] >= 0);
            if (pid[k] == 0) {
                close(go[1]);
                close(res[0]);
                close(done[1]);
                contend(addr, go[0], res[1], done[0]);
            }
        }
        close(go[0]);
        close(res[1]);
        close(done[0]);
        close(go[1]);   /* both start now */
        unsigned char out[2];
        size_t got = 0;
        while (got < 2) {
            struct pollfd p = { .fd = res[0], .events = POLLIN };
            assert_int_equal(poll(&p, 1, 10000), 1);
            ssize_t r = read(res[0], out + got, 2 - got);
            assert_true(r > 0);
            got += (size_t)r;
        }
        close(done[1]);   /* both may go */
        close(res[0]);
        for (int k = 0; k < 2; k++) {
            int st;
            assert_int_equal(waitpid(pid[k], &st, 0), pid[k]);
            assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        }
        int won = (out[0] == 0) + (out[1] == 0), lost = (out[0] == EADDRINUSE) + (out[1] == EADDRINUSE);
        if (won == 2)
            both++;
        else if (won != 1 || lost != 1)
            none++;
        if (won + lost != 2)
            fail_msg("trial %d: the starts answered %d and %d", t, -out[0], -out[1]);
    }
    if (both || none)
        fail_msg("of %d pairs started at once, %d had both listening and %d none", TRIALS, both, none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_at_once_one_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
