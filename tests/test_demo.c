/* test_demo.c: `make demo` end to end, shortened: the driver starts the
 * chain in each mode, drives it, injects and clears the payment hang, and
 * must tell the three stories — safe did not hang, guarded failed fast with
 * 508, naive hung — with the services agreeing on every finished order,
 * every program stopped, and a report with its charts. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "demo.h"

/* Forks with the child's fd `which` (stdout or stderr) into a pipe, whose
 * read end the parent gets in *rfd. Returns the child's pid (0 in the
 * child, which execs the driver). */
static pid_t fork_piped(int which, int *rfd)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], which);
        close(fds[0]);
        return 0;
    }
    close(fds[1]);
    *rfd = fds[0];
    return pid;
}

/* A new empty report file: path is a mkstemps template ending in ".html". */
static void new_report(char *path)
{
    int fd = mkstemps(path, 5);
    assert_true(fd >= 0);
    close(fd);
}

/* The report's text into html (NUL-terminated); removes the file. */
static void read_report(const char *path, char *html, size_t size)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(html, 1, size - 1, f);
    html[n] = '\0';
    fclose(f);
    unlink(path);
}

/* Reads the driver's output (fd) into out (NUL-terminated as it comes)
 * until it closes, within limit_s seconds (else kills it and fails, saying
 * what it printed), and reaps it: its exit status (128 + the signal). */
static int collect(pid_t pid, int fd, char *out, size_t size, int limit_s)
{
    size_t len = 0;
    time_t end = time(NULL) + limit_s;
    out[0] = '\0';
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int n = poll(&p, 1, 1000);
        if (n < 0 && errno == EINTR)
            continue;
        if (time(NULL) > end) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_msg("sluice-demo did not finish within %d s: %s", limit_s, out);
        }
        if (n == 0)
            continue;
        ssize_t r = read(fd, out + len, size - len - 1);
        if (r <= 0)
            break;
        len += (size_t)r;
        out[len] = '\0';
    }
    close(fd);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs the driver with a bound on its time, its report in a new file
 * (report: a template, see new_report); returns its exit status and its
 * stdout in out (NUL-terminated), which it also prints. bindir: where
 * the programs are (BUILDDIR); phases, modes, overload: the --phases,
 * --modes and --overload values. */
static int run_demo(char *out, size_t size, char *report, int limit_s, const char *bindir, const char *phases,
                    const char *modes, const char *overload)
{
    int fd;
    new_report(report);
    pid_t pid = fork_piped(STDOUT_FILENO, &fd);
    if (pid == 0) {
        execl(DEMO_BIN, DEMO_BIN, "--bindir", bindir, "--rate", "50", "--phases", phases,
              "--client-timeout-ms", "1000", "--budget-ms", "300", "--report", report, "--modes", modes,
              "--overload", overload, (char *)NULL);
        _exit(127);
    }
    int st = collect(pid, fd, out, size, limit_s);
    print_message("%s", out);
    return st;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* The driver's whole output on stderr: cmocka's print_message cuts at 4
 * KiB, which hid the "=>" verdicts of a failed run (flaky at load 20). */
static void dump_output(const char *out)
{
    fflush(stdout);   /* cmocka's own lines first, not in the middle */
    fputs("---- sluice-demo output ----\n", stderr);
    fwrite(out, 1, strlen(out), stderr);
    fputs("\n---- end of sluice-demo output ----\n", stderr);
}

/* Claims on the output: a failed one shows the whole output, then fails
 * naming the text and the line. */
#define EXPECT_IN(out, text)                                        \
    do {                                                            \
        if (!strstr((out), (text))) {                               \
            dump_output(out);                                       \
            fail_msg("missing in the output: \"%s\"", (text));      \
        }                                                           \
    } while (0)
#define EXPECT_NOT_IN(out, text)                                    \
    do {                                                            \
        if (strstr((out), (text))) {                                \
            dump_output(out);                                       \
            fail_msg("not expected in the output: \"%s\"", (text)); \
        }                                                           \
    } while (0)

static void test_demo_tells_three_stories(void **state)
{
    (void)state;
    static char out[1 << 16];
    char report[] = "/tmp/sluice-demo-test-XXXXXX.html";
    assert_int_equal(run_demo(out, sizeof out, report, 150, BUILDDIR, "1,2,2,2", "safe,guarded,naive", "off"), 0);
    EXPECT_IN(out, "=> safe: did not hang");
    EXPECT_IN(out, "=> guarded: failed fast");
    EXPECT_IN(out, "=> naive: HUNG");
    EXPECT_NOT_IN(out, "INVARIANT BROKEN");
    EXPECT_NOT_IN(out, "did not complete");
    /* every service of every mode exited 0 on SIGTERM */
    if (count(out, "exit 0/0/0") != 3) {
        dump_output(out);
        fail_msg("not every service of every mode exited 0");
    }
    /* the report: two charts per mode, self-contained */
    static char html[1 << 20];
    read_report(report, html, sizeof html);
    assert_int_equal(count(html, "<svg"), 6);
    assert_non_null(strstr(html, "payment hangs"));
    assert_null(strstr(html, "<script"));
    /* no fetch of anything: the only URL is the SVG namespace name */
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "href="));
}

/* A load client that runs late is not a chain that hangs: the driver runs
 * sluice-load through a wrapper that stops it for 900 ms (the client's
 * timeout is 1 s) half a second into the phase where payment hangs, as a
 * busy machine does (test_demo failed at load 20 with 5 client timeouts
 * of 350 in guarded). The answers order gave in 300 ms to the requests
 * then in flight are read after the client's deadline: client timeouts,
 * about 10 of 250 (10-18 seen). Before, more than 1 % of them made the
 * verdict HUNG; now it takes order still holding requests after the run
 * too, and says how many the client gave up on. */
static void test_demo_late_client_is_no_hang(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-demo-late-XXXXXX", path[4096], target[4096];
    assert_non_null(mkdtemp(dir));
    static const char *const progs[] = { "order/order-svc", "inventory/inventory-svc", "payment/payment-svc" };
    static const char *const subdirs[] = { "services", "services/order", "services/inventory",
                                           "services/payment", "services/load" };
    for (size_t i = 0; i < sizeof subdirs / sizeof *subdirs; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, subdirs[i]);
        assert_int_equal(mkdir(path, 0700), 0);
    }
    for (size_t i = 0; i < sizeof progs / sizeof *progs; i++) {
        snprintf(path, sizeof path, "%s/services/%s", dir, progs[i]);
        snprintf(target, sizeof target, "%s/services/%s", BUILDDIR, progs[i]);
        assert_int_equal(symlink(target, path), 0);
    }
    snprintf(path, sizeof path, "%s/services/load/sluice-load", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    /* the demo runs it once per phase, the third is payment's hang; the
     * stop is the scene (a stalled client), not a wait for an event */
    fprintf(f, "#!/bin/sh\nn=$(($(cat %s/runs 2>/dev/null || echo 0) + 1)); echo $n > %s/runs\n"
               "%s/services/load/sluice-load \"$@\" &\npid=$!\n"
               "if [ $n = 3 ]; then sleep 0.5; kill -STOP $pid; sleep 0.9; kill -CONT $pid; fi\nwait $pid\n",
            dir, dir, BUILDDIR);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, 0700), 0);

    static char out[1 << 16];
    char report[] = "/tmp/sluice-demo-test-XXXXXX.html";
    int st = run_demo(out, sizeof out, report, 90, dir, "1,1,2,1", "guarded", "off");
    unlink(report);
    static const char *const rm[] = { "services/order/order-svc", "services/inventory/inventory-svc",
                                      "services/payment/payment-svc", "services/load/sluice-load",
                                      "runs", "services/load", "services/payment", "services/inventory",
                                      "services/order", "services", "" };
    for (size_t i = 0; i < sizeof rm / sizeof *rm; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, rm[i]);
        assert_int_equal(remove(path), 0);
    }
    assert_int_equal(st, 0);
    EXPECT_IN(out, "=> guarded: failed fast");
    EXPECT_NOT_IN(out, "HUNG");
    EXPECT_NOT_IN(out, "INVARIANT BROKEN");
    /* Whether the stopped client counted timeouts is its own race: once
     * it runs again, its timers and the answers that came meanwhile are
     * ready in the same turn (a quiet CI run under ASan read every answer
     * first: 0 timeouts, the phase's max 1,183 ms). When it did give up on
     * some, the verdict says so. */
    const char *row = strstr(out, "payment hangs  ");
    assert_non_null(row);
    double okps, p50, p99, max;
    int n201, n503, n504, n508, other, timeouts = -1;
    assert_int_equal(sscanf(row + strlen("payment hangs"), "%lf %lf %lf %lf %d %d %d %d %d %d", &okps, &p50, &p99,
                            &max, &n201, &n503, &n504, &n508, &other, &timeouts),
                     10);
    if (timeouts > 0)
        EXPECT_IN(out, "client timeouts, yet order held nothing after the run");
    else
        EXPECT_NOT_IN(out, "client timeouts, yet");
}

/* ---- the verdict, from numbers alone (verdict.c) ---- */

static const demo_cfg verdict_cfg = { .client_timeout_ms = 1000, .budget_ms = 300, .overload_x = 3 };

/* A fault mode that ran: 350 requests, 50/100/100/100 per phase, order
 * with 4 tasks before the load and after it. */
static mode_result ran_mode(const char *mode)
{
    mode_result m;
    memset(&m, 0, sizeof m);
    m.mode = mode;
    m.ran = true;
    static const long per[NPHASE] = { 50, 100, 100, 100 };
    for (int p = 0; p < NPHASE; p++) {
        m.ph[p].ran = true;
        m.ph[p].requests = per[p];
    }
    for (int s = 0; s < NSVC; s++)
        m.tasks_idle[s] = m.tasks_after[s] = 4;
    m.checked = 350;
    return m;
}

#define VERDICT_IS(m, text)                                                            \
    do {                                                                               \
        demo_verdict(&verdict_cfg, &(m));                                              \
        if (!strstr((m).verdict, (text)))                                              \
            fail_msg("verdict \"%s\" does not say \"%s\"", (m).verdict, (text));       \
    } while (0)

/* HUNG: the client got no answer to more than 1 %, and order still holds
 * requests after the run (or its tasks could not be counted). */
static void test_verdict_hang_is_held_requests(void **state)
{
    (void)state;
    mode_result m = ran_mode("naive");   /* the seed, as the demo shows it */
    m.ph[PH_WARMUP].timeouts = 50, m.ph[PH_STEADY].timeouts = 100, m.ph[PH_FAULT].timeouts = 42;
    m.ph[PH_FAULT].st503 = 58, m.ph[PH_RECOVERY].st503 = 100;
    m.tasks_after[SVC_ORDER] = 324;
    VERDICT_IS(m, "naive: HUNG - 192 of 350 requests got no answer within the client's 1000 ms; 320 tasks "
                  "still stuck in order after the run; the three services agree");
    m.tasks_after[SVC_ORDER] = 5;   /* one held is held */
    VERDICT_IS(m, "naive: HUNG - 192 of 350");
    m.tasks_after[SVC_ORDER] = -1;   /* not counted: no proof that nothing is held */
    VERDICT_IS(m, "naive: HUNG - 192 of 350 requests got no answer within the client's 1000 ms; order's tasks "
                  "after the run not known");
    m.tasks_after[SVC_ORDER] = 324;
    m.tasks_idle[SVC_ORDER] = -1;
    VERDICT_IS(m, "naive: HUNG");

    /* 1 % of timeouts is not more than 1 %, whatever is held */
    m = ran_mode("guarded");
    m.ph[PH_STEADY].st508 = 300;
    m.ph[PH_FAULT].timeouts = 3;
    m.tasks_after[SVC_ORDER] = 10;
    VERDICT_IS(m, "guarded: failed fast - the lock cycle was detected (300 x 508");
    VERDICT_IS(m, "; 3 client timeouts (1 % at most)");
    m.ph[PH_FAULT].timeouts = 4;
    VERDICT_IS(m, "guarded: HUNG - 4 of 350");
}

/* Client timeouts with nothing held are a busy machine's (test_demo failed
 * so at load 20): the verdict stands, and says them. */
static void test_verdict_late_client_is_no_hang(void **state)
{
    (void)state;
    mode_result m = ran_mode("guarded");
    m.ph[PH_WARMUP].st508 = 50, m.ph[PH_STEADY].st508 = 100, m.ph[PH_RECOVERY].st508 = 100;
    m.ph[PH_FAULT].timeouts = 5;
    VERDICT_IS(m, "guarded: failed fast - the lock cycle was detected (250 x 508");
    VERDICT_IS(m, "; 5 client timeouts, yet order held nothing after the run");
    m.tasks_after[SVC_ORDER] = 2;   /* fewer than before the load: nothing held */
    VERDICT_IS(m, "guarded: failed fast");

    m = ran_mode("safe");
    m.ph[PH_STEADY].st201 = 250;
    m.ph[PH_FAULT].timeouts = 18;
    VERDICT_IS(m, "safe: did not hang - 250 orders PAID");
    VERDICT_IS(m, "; 18 client timeouts, yet order held nothing");
    m.ph[PH_FAULT].timeouts = 0;   /* none: nothing said of them */
    demo_verdict(&verdict_cfg, &m);
    assert_null(strstr(m.verdict, "client timeouts"));
}

static void test_verdict_did_not_complete(void **state)
{
    (void)state;
    mode_result m = ran_mode("safe");
    snprintf(m.error, sizeof m.error, "sluice-load failed");
    VERDICT_IS(m, "safe: did not complete: sluice-load failed");
    m = ran_mode("naive");
    m.ran = false;
    VERDICT_IS(m, "naive: did not complete: not run");
    m = ran_mode("safe");
    m.disagree = 2;
    m.ph[PH_STEADY].st201 = 250;
    VERDICT_IS(m, "INVARIANT BROKEN: 2 of 350 finished orders disagree");
}

/* The overload scene: C measured, a burst, admission on and then off at
 * the same rates, each in the table and the report. (Whether the books
 * balance after an overload is issue 14's item 2, tested with the
 * services; here: the scene runs and reports.) */
static void test_demo_overload_scene(void **state)
{
    (void)state;
    static char out[1 << 16];
    char report[] = "/tmp/sluice-demo-test-XXXXXX.html";
    assert_int_equal(run_demo(out, sizeof out, report, 150, BUILDDIR, "1,2,2,2", "safe", "1,2,1"), 0);
    EXPECT_NOT_IN(out, "did not complete");
    EXPECT_IN(out, "=> safe, admission on: a 3x burst (");
    EXPECT_IN(out, "=> safe, admission off: a 3x burst (");
    EXPECT_IN(out, "burst");
    EXPECT_IN(out, "after (C/2)");
    static char html[1 << 20];
    read_report(report, html, sizeof html);
    assert_int_equal(count(html, "<svg"), 6);   /* safe, then on and off */
    assert_non_null(strstr(html, "Overload: admission on and off"));
    assert_non_null(strstr(html, "<h2>safe, admission off</h2>"));
}

static void test_demo_bad_usage(void **state)
{
    (void)state;
    static const char *const bad[][3] = { { "--rate", "0", NULL }, { "--modes", "fast", NULL },
                                          { "--phases", "1,2,3", NULL }, { "--bogus", "1", NULL },
                                          { "--rate", NULL, NULL }, { "--overload", "1,2", NULL },
                                          { "--overload", "0,1,1", NULL }, { "--overload-x", "0", NULL } };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, STDERR_FILENO);
            execl(DEMO_BIN, DEMO_BIN, bad[i][0], bad[i][1], (char *)NULL);
            _exit(127);
        }
        int st;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 2);
    }
}

/* Every option also from a SLUICE_ variable (issue 21), and those are the
 * demo's own: the programs it starts do not get them (sluice-load would
 * take SLUICE_TRACE=DIR for its --trace, which takes no value, and exit 2;
 * before, the demo ignored the variables, ran all three modes at their
 * default length and every sluice-load failed so). Bounded at 60 s. */
static void test_demo_reads_sluice_variables(void **state)
{
    (void)state;
    char report[] = "/tmp/sluice-demo-env-XXXXXX.html", tdir[] = "/tmp/sluice-demo-envtr-XXXXXX", trace[64];
    new_report(report);
    assert_non_null(mkdtemp(tdir));
    snprintf(trace, sizeof trace, "%s/safe.json", tdir);
    int fd;
    pid_t pid = fork_piped(STDOUT_FILENO, &fd);
    if (pid == 0) {
        setenv("SLUICE_MODES", "safe", 1);
        setenv("SLUICE_OVERLOAD", "off", 1);
        setenv("SLUICE_PHASES", "1,1,1,1", 1);
        setenv("SLUICE_RATE", "50", 1);
        setenv("SLUICE_BUDGET_MS", "300", 1);
        setenv("SLUICE_CLIENT_TIMEOUT_MS", "1000", 1);
        setenv("SLUICE_REPORT", report, 1);
        setenv("SLUICE_TRACE", tdir, 1);
        setenv("SLUICE_BINDIR", BUILDDIR, 1);
        execl(DEMO_BIN, DEMO_BIN, "--rate", "40", (char *)NULL);   /* the command line wins */
        _exit(127);
    }
    static char out[1 << 16];
    int st = collect(pid, fd, out, sizeof out, 60);
    print_message("%s", out);
    assert_int_equal(st, 0);
    assert_non_null(strstr(out, "POST /orders at 40/s"));         /* --rate over SLUICE_RATE */
    assert_non_null(strstr(out, "service budget 300 ms"));        /* SLUICE_BUDGET_MS */
    assert_non_null(strstr(out, "=> safe: did not hang"));        /* SLUICE_MODES: safe only */
    assert_null(strstr(out, "=> guarded"));
    assert_null(strstr(out, "Overload:"));                        /* SLUICE_OVERLOAD=off */
    assert_true(access(report, R_OK) == 0);                       /* SLUICE_REPORT */
    assert_true(access(trace, R_OK) == 0);                        /* SLUICE_TRACE */
    unlink(report);
    unlink(trace);
    rmdir(tdir);
}

/* A bad value in a variable exits 2 and names the variable; --help lists
 * the variables. */
static void test_demo_bad_variable(void **state)
{
    (void)state;
    static const char *const bad[][2] = { { "SLUICE_RATE", "0" }, { "SLUICE_MODES", "fast" },
                                          { "SLUICE_PHASES", "1,2" }, { "SLUICE_OVERLOAD_X", "x" } };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd;
        pid_t pid = fork_piped(STDERR_FILENO, &fd);
        if (pid == 0) {
            setenv(bad[i][0], bad[i][1], 1);
            execl(DEMO_BIN, DEMO_BIN, (char *)NULL);
            _exit(127);
        }
        char err[512];
        assert_int_equal(collect(pid, fd, err, sizeof err, 30), 2);
        if (!strstr(err, bad[i][0]))
            fail_msg("%s=%s: the message does not name the variable: %s", bad[i][0], bad[i][1], err);
    }
    int fd;
    pid_t pid = fork_piped(STDOUT_FILENO, &fd);
    if (pid == 0) {
        execl(DEMO_BIN, DEMO_BIN, "--help", (char *)NULL);
        _exit(127);
    }
    static char help[8192];
    assert_int_equal(collect(pid, fd, help, sizeof help, 30), 0);
    static const char *const vars[] = { "SLUICE_BINDIR", "SLUICE_MODES", "SLUICE_RATE", "SLUICE_PHASES",
                                        "SLUICE_THREADS", "SLUICE_CLIENT_TIMEOUT_MS", "SLUICE_BUDGET_MS",
                                        "SLUICE_REPORT", "SLUICE_OVERLOAD ", "SLUICE_OVERLOAD_X", "SLUICE_TRACE" };
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (!strstr(help, vars[i]))
            fail_msg("--help does not list %s: %s", vars[i], help);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_bad_usage),
        cmocka_unit_test(test_demo_bad_variable),
        cmocka_unit_test(test_demo_reads_sluice_variables),
        cmocka_unit_test(test_verdict_hang_is_held_requests),
        cmocka_unit_test(test_verdict_late_client_is_no_hang),
        cmocka_unit_test(test_verdict_did_not_complete),
        cmocka_unit_test(test_demo_tells_three_stories),
        cmocka_unit_test(test_demo_late_client_is_no_hang),
        cmocka_unit_test(test_demo_overload_scene),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
