/* test_trace.c: the timeline trace is valid Chrome Trace Event JSON with
 * the events of a small known program. */
#include <jansson.h>
#include <unistd.h>
#include "testutil.h"

static sl_runtime *rt;
static capture cap;
static char path[] = "/tmp/sluice-trace-XXXXXX";

typedef struct prog {
    sl_chan *ch, *done;
    sl_task *victim;
    int v, rc, vrc, beta_ran, one, got;
} prog;

static prog P;

static int victim(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, P.vrc, sl_chan_recv(t, P.ch, &P.v));
    SL_END(t);
}

/* On reactor 0: tells alpha that beta ran (a message, not a wait of a
 * guessed length: on a loaded machine reactor 1 may run much later). */
static void beta_done(void *arg)
{
    (void)arg;
    P.beta_ran = 1;
    P.one = 1;
    assert_int_equal(sl_chan_try_send(NULL, P.done, &P.one), 0);
}

static int beta(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    assert_int_equal(sl_reactor_post(sl_runtime_reactor(rt, 0), beta_done, NULL), 0);
    return 0;
}

static int alpha(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&P.ch, sizeof(int), 0, &(sl_chan_opts){ .name = "inbox" }), 0);
    assert_int_equal(sl_chan_new(&P.done, sizeof(int), 1, &(sl_chan_opts){ .name = "beta-done" }), 0);
    assert_int_equal(sl_spawn(NULL, victim, NULL, &P.victim, &(sl_spawn_opts){ .name = "victim" }), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 1), beta, NULL, &(sl_spawn_opts){ .name = "beta" }), 0);
    /* beta has run on reactor 1, however late; the victim, ready before
     * alpha parked, is parked on its receive by then */
    sl_task_set_deadline(t, sl_now_ns() + 60 * SL_NS_PER_S);
    SL_AWAIT(t, P.rc, sl_chan_recv(t, P.done, &P.got));
    assert_int_equal(P.rc, 0);
    sl_task_set_deadline(t, 0);
    assert_int_equal(sl_task_cancel(P.victim, 0), 0);
    SL_AWAIT(t, P.rc, sl_sleep(t, 2 * SL_NS_PER_MS));   /* same reactor: the victim runs first */
    assert_int_equal(sl_chan_free(t, P.done), 0);
    assert_int_equal(sl_chan_free(t, P.ch), 0);
    sl_trace_instant(sl_task_reactor(t), "app", "done", "by alpha");
    assert_int_equal(sl_trace_stop(rt), 0);       /* written when run returns */
    assert_int_equal(sl_trace_stop(rt), -EINVAL);
    sl_runtime_stop(rt);
    SL_END(t);
}

static int count(json_t *evs, const char *ph, const char *name, int tid, const char *detail)
{
    int n = 0;
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e) {
        if (ph && strcmp(json_string_value(json_object_get(e, "ph")), ph))
            continue;
        if (name && (!json_object_get(e, "name") || strcmp(json_string_value(json_object_get(e, "name")), name)))
            continue;
        if (tid >= 0 && json_integer_value(json_object_get(e, "tid")) != tid)
            continue;
        if (detail) {
            const char *d = json_string_value(json_object_get(json_object_get(e, "args"), "detail"));
            if (!d || !strstr(d, detail))
                continue;
        }
        n++;
    }
    return n;
}

static void test_trace_of_known_program(void **s)
{
    (void)s;
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    rt = rt_new(2, &cap);
    assert_int_equal(sl_trace_start(rt, "/nonexistent-dir/x.json", 0), -ENOENT);
    assert_int_equal(sl_trace_start(rt, path, 1024), 0);
    assert_int_equal(sl_trace_start(rt, path, 1024), -EALREADY);
    memset(&P, 0, sizeof P);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), alpha, NULL, &(sl_spawn_opts){ .name = "alpha" }), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(P.vrc, -ECANCELED);
    assert_int_equal(P.beta_ran, 1);

    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    if (!doc)
        fail_msg("trace is not JSON: %s at line %d", err.text, err.line);
    json_t *evs = json_object_get(doc, "traceEvents");
    assert_true(json_is_array(evs));
    /* the process is named after the program, with its real pid, so that
     * the traces of several services merge into one view */
    json_t *pn = json_array_get(evs, 0);
    assert_string_equal(json_string_value(json_object_get(pn, "name")), "process_name");
    assert_string_equal(json_string_value(json_object_get(json_object_get(pn, "args"), "name")),
                        program_invocation_short_name);
    for (size_t k = 0; k < json_array_size(evs); k++)
        assert_int_equal(json_integer_value(json_object_get(json_array_get(evs, k), "pid")), getpid());
    /* one named track per reactor */
    assert_int_equal(count(evs, "M", "thread_name", 0, NULL), 1);
    assert_int_equal(count(evs, "M", "thread_name", 1, NULL), 1);
    /* task step slices on the reactor that ran them */
    assert_true(count(evs, "X", "alpha", 0, NULL) >= 3);
    assert_int_equal(count(evs, "X", "beta", 1, NULL), 1);
    assert_int_equal(count(evs, "X", "beta", 0, NULL), 0);
    assert_true(count(evs, "X", "victim", 0, NULL) >= 2);
    /* blocking on the channel, and the cancellation with its cause */
    assert_int_equal(count(evs, "i", "recv", 0, "victim"), 1);
    assert_int_equal(count(evs, "i", "cancel", 0, "victim: Operation canceled"), 1);
    assert_int_equal(count(evs, "i", "cancelled", 0, "victim"), 1);
    assert_int_equal(count(evs, "i", "done", 0, "by alpha"), 1);
    /* slices have a duration and sites */
    size_t i;
    json_t *e;
    json_array_foreach(evs, i, e) {
        if (!strcmp(json_string_value(json_object_get(e, "ph")), "X")) {
            assert_true(json_real_value(json_object_get(e, "dur")) >= 0);
            assert_non_null(strstr(json_string_value(json_object_get(json_object_get(e, "args"), "site")), "test_trace.c:"));
        }
    }
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "otherData"), "dropped")), 0);
    json_decref(doc);
    unlink(path);
}

/* A small ring keeps the newest events and counts what it dropped. */
static int chatter(sl_task *t, void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        sl_trace_instant(sl_task_reactor(t), "app", "tick", NULL);
    assert_int_equal(sl_trace_dropped(sl_task_reactor(t)), 100 - 16);   /* this step is recorded when it ends */
    sl_runtime_stop(rt);
    return 0;
}

static void test_ring_drops_oldest(void **s)
{
    (void)s;
    int fd = mkstemp(path);
    close(fd);
    rt = rt_new(1, &cap);
    assert_int_equal(sl_trace_start(rt, path, 16), 0);
    assert_int_equal(sl_spawn_on(sl_runtime_reactor(rt, 0), chatter, NULL, NULL), 0);
    assert_int_equal(sl_runtime_run(rt), 0);
    assert_int_equal(sl_runtime_free(rt), 0);   /* still on at free: written then */
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    assert_non_null(doc);
    assert_int_equal(json_array_size(json_object_get(doc, "traceEvents")), 16 + 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(doc, "otherData"), "dropped")), 85);
    json_decref(doc);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_of_known_program),
        cmocka_unit_test(test_ring_drops_oldest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
