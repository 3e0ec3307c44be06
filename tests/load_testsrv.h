/* load_testsrv.h: for the sluice-load integration tests: a sluice server on
 * its own thread (routes chosen by the test) and sluice-load run as a
 * child process whose JSON output is parsed. */
#ifndef LOAD_TESTSRV_H
#define LOAD_TESTSRV_H
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <sys/wait.h>
#include "httputil.h"

/* Starts a server with the routes `add` adds (on its own thread). */
static inline void lsrv_start(test_srv *ts, void (*add)(sl_http_server *))
{
    memset(ts, 0, sizeof *ts);
    ts->rt = rt_new(1, &ts->cap);
    /* a server that never sheds: fixed admission, generous bounds */
    sl_http_server_opts o = { .listen = "127.0.0.1:0", .prestop_ms = SL_HTTP_PRESTOP_OFF, .max_inflight = 4096, .max_queue = 4096,
                              .admission = SL_HTTP_ADMISSION_FIXED };
    assert_int_equal(sl_http_server_new(&ts->srv, ts->rt, &o), 0);
    add(ts->srv);
    srv_run(ts);
}

/* Graceful stop: in-flight handlers end (their clients are gone), then the
 * runtime stops by itself; no task may be left. */
static inline void lsrv_stop(test_srv *ts)
{
    sl_http_server_shutdown(ts->srv);
    pthread_join(ts->th, NULL);
    sl_http_server_free(ts->srv);
    assert_int_equal(sl_runtime_free(ts->rt), 0);
}

/* Runs sluice-load with argv (NULL-terminated, without the program name);
 * returns its exit status and, when out is not NULL, its stdout (malloc'd). */
static inline int load_exec(char *const *args, char **out)
{
    char *argv[64] = { LOAD_BIN };
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pfd[1], 1);
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 2);
        close(pfd[0]);
        execv(LOAD_BIN, argv);
        _exit(127);
    }
    close(pfd[1]);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    ssize_t r;
    while ((r = read(pfd[0], buf + len, cap - len - 1)) > 0 || (r < 0 && errno == EINTR))
        if (r > 0 && (len += (size_t)r) + 1 == cap)
            buf = realloc(buf, cap *= 2);
    buf[len] = '\0';
    close(pfd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    if (out)
        *out = buf;
    else
        free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* Runs sluice-load --json --quiet on 127.0.0.1:port/path with extra args;
 * asserts exit 0 and returns the parsed object. */
static inline json_t *load_json(int port, const char *path, char *const *extra)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    char *args[48] = { url, "--json", "--quiet" };
    int n = 3;
    for (int i = 0; extra[i]; i++)
        args[n++] = extra[i];
    args[n] = NULL;
    char *out;
    assert_int_equal(load_exec(args, &out), 0);
    json_error_t e;
    json_t *j = json_loads(out, 0, &e);
    if (!j)
        fail_msg("not JSON (%s): %s", e.text, out);
    free(out);
    return j;
}

static inline double jnum(json_t *o, const char *path)
{
    json_t *v = json_object_get(o, path);
    if (!json_is_number(v))
        fail_msg("no number at %s", path);
    return json_number_value(v);
}

static inline double jnum2(json_t *o, const char *obj, const char *key)
{
    json_t *v = json_object_get(json_object_get(o, obj), key);
    if (!json_is_number(v))
        fail_msg("no number at %s.%s", obj, key);
    return json_number_value(v);
}

#endif
