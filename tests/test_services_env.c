/* test_services_env.c: running the programs (issue 21 item 5): --help,
 * every flag from a SLUICE_ variable with the command line winning, a bad
 * variable named in the error, the default reactors bounded by the
 * affinity mask, and a second process on a port that is taken. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "svcutil.h"

/* Reactors of a running service: its /metrics lines of one gauge. */
static int reactors(int port)
{
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    assert_int_equal(http_req(port, "GET", "/metrics", NULL, NULL, 3000, r), 200);
    int n = 0;
    for (const char *p = r->body; (p = strstr(p, "sluice_http_inflight{reactor=\"")); p++)
        n++;
    free(r);
    return n;
}

static void help_exits_0(void **state)
{
    (void)state;
    static const char *const progs[] = { "order", "inventory", "payment", "services/load/sluice-load",
                                         "services/demo/sluice-demo" };
    char err[4096];
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        const char *args[] = { "--help", NULL };
        assert_int_equal(svc_run_usage(progs[i], args, err, sizeof err), 0);
    }
}

static void bad_variable_is_named(void **state)
{
    (void)state;
    char err[4096];
    const char *none[] = { NULL };
    setenv("SLUICE_THREADS", "lots", 1);
    assert_int_equal(svc_run_usage("order", none, err, sizeof err), 2);
    assert_non_null(strstr(err, "SLUICE_THREADS"));
    assert_non_null(strstr(err, "lots"));
    unsetenv("SLUICE_THREADS");
    setenv("SLUICE_ADMIN", "maybe", 1);   /* a flag without a value wants a yes or a no */
    assert_int_equal(svc_run_usage("payment", none, err, sizeof err), 2);
    assert_non_null(strstr(err, "SLUICE_ADMIN"));
    unsetenv("SLUICE_ADMIN");
    setenv("SLUICE_INVENTORY", "http://nowhere", 1);   /* no port */
    assert_int_equal(svc_run_usage("order", none, err, sizeof err), 2);
    assert_non_null(strstr(err, "SLUICE_INVENTORY"));
    setenv("SLUICE_DURATION", "forever", 1);   /* sluice-load too */
    const char *url[] = { "http://127.0.0.1:1/", NULL };
    assert_int_equal(svc_run_usage("services/load/sluice-load", url, err, sizeof err), 2);
    assert_non_null(strstr(err, "SLUICE_DURATION"));
    unsetenv("SLUICE_DURATION");
        /* a variable that names no flag of the program is not its business */
    const char *lst[] = { "--listen", "127.0.0.1:0", NULL };
    svc s;
    assert_int_equal(svc_start(&s, "payment", lst), 0);
    unsetenv("SLUICE_INVENTORY");
    svc_stop(&s);
}

static void flag_wins_over_variable(void **state)
{
    (void)state;
    svc s;
    setenv("SLUICE_THREADS", "3", 1);
    setenv("SLUICE_LISTEN", "127.0.0.1:0", 1);
    assert_int_equal(svc_start(&s, "inventory", (const char *const[]){ NULL }), 0);
    assert_int_equal(reactors(s.port), 3);   /* from the variables alone */
    svc_stop(&s);
    assert_int_equal(svc_start(&s, "inventory", (const char *const[]){ "--threads", "2", NULL }), 0);
    assert_int_equal(reactors(s.port), 2);   /* the flag wins */
    svc_stop(&s);
    setenv("SLUICE_ADMIN", "off", 1);        /* a no: /admin/fault is not there */
    assert_int_equal(svc_start(&s, "inventory", (const char *const[]){ NULL }), 0);
    assert_int_equal(fault_set(s.port, "{\"delay_ms\":1}"), 404);
    svc_stop(&s);
    setenv("SLUICE_ADMIN", "1", 1);
    assert_int_equal(svc_start(&s, "inventory", (const char *const[]){ NULL }), 0);
    assert_int_equal(fault_set(s.port, "{\"delay_ms\":1}"), 200);
    svc_stop(&s);
    unsetenv("SLUICE_ADMIN");
    unsetenv("SLUICE_THREADS");
    unsetenv("SLUICE_LISTEN");
}

/* taskset -c 0: the process may use one CPU, so it runs one reactor. */
static void threads_follow_affinity(void **state)
{
    (void)state;
    cpu_set_t old, one;
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    int first = 0;
    while (!CPU_ISSET(first, &old))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);   /* the child inherits it */
    svc s;
    int rc = svc_start(&s, "payment", (const char *const[]){ "--listen", "127.0.0.1:0", NULL });
    assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
    assert_int_equal(rc, 0);
    assert_int_equal(reactors(s.port), 1);
    svc_stop(&s);
}

static void second_process_on_a_port_fails(void **state)
{
    (void)state;
    svc s;
    assert_int_equal(svc_start(&s, "order", (const char *const[]){ "--listen", "127.0.0.1:0", NULL }), 0);
    char listen[32], err[4096];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s.port);
    const char *args[] = { "--listen", listen, NULL };
    assert_int_equal(svc_run_usage("order", args, err, sizeof err), 1);
    assert_non_null(strstr(err, "another process listens on this port"));
    svc_stop(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(help_exits_0, svc_teardown),
        cmocka_unit_test_teardown(bad_variable_is_named, svc_teardown),
        cmocka_unit_test_teardown(flag_wins_over_variable, svc_teardown),
        cmocka_unit_test_teardown(threads_follow_affinity, svc_teardown),
        cmocka_unit_test_teardown(second_process_on_a_port_fails, svc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
