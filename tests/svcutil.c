/* svcutil.c: starting and stopping the demo chain's programs (see svcutil.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "svcutil.h"

#define MAX_LIVE 32

/* Everything started and not yet stopped, for svc_teardown: copies, since
 * the svc structs of a test that failed lived on a stack that is gone. */
static struct { pid_t pid; int fd; } live[MAX_LIVE];

uint64_t svc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *svc_path(const char *name)
{
    static __thread char path[512];   /* threads: usage runs go in parallel */
    const char *dir = getenv("SVC_BINDIR");
    if (strchr(name, '/'))   /* a program of the build by its path: "examples/http/http" */
        snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", name);
    else
        snprintf(path, sizeof path, "%s/services/%s/%s-svc", dir ? dir : ".", name, name);
    return path;
}

static void live_add(const svc *s)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (!live[i].pid) {
            live[i].pid = s->pid;
            live[i].fd = s->out_fd;
            return;
        }
    fail_msg("more than %d services alive", MAX_LIVE);
}

static void live_del(const svc *s)
{
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i].pid == s->pid)
            live[i].pid = 0;
}

/* fork/exec with stdout (and optionally stderr) on pipes. */
static pid_t spawn(const char *name, const char *const *args, int *out, int *err)
{
    const char *argv[SVC_MAX_ARGS + 2];
    int n = 0;
    argv[n++] = svc_path(name);
    for (; args && *args && n <= SVC_MAX_ARGS; args++)
        argv[n++] = *args;
    argv[n] = NULL;
    int po[2], pe[2] = { -1, -1 };
    assert_int_equal(pipe2(po, O_CLOEXEC), 0);
    if (err)
        assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* no preStop window unless a test asks for one (SIGTERM would wait
         * 2 s per program: docs/net.md, Draining) */
        setenv("SLUICE_PRESTOP_MS", "0", 0);
        dup2(po[1], 1);
        if (err)
            dup2(pe[1], 2);
        execv(argv[0], (char *const *)argv);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(po[1]);
    *out = po[0];
    if (err) {
        close(pe[1]);
        *err = pe[0];
    }
    return pid;
}

/* Reads up to a newline from fd within the deadline. Returns the length, or
 * -1 on EOF or timeout. */
static int read_line(int fd, char *buf, size_t n, uint64_t deadline)
{
    size_t have = 0;
    while (have < n - 1) {
        uint64_t now = svc_now_ms();
        if (now >= deadline)
            return -1;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, (int)(deadline - now)) <= 0)
            continue;
        ssize_t k = read(fd, buf + have, 1);   /* byte by byte: the rest stays in the pipe */
        if (k <= 0)
            return -1;
        if (buf[have] == '\n')
            break;
        have++;
    }
    buf[have] = '\0';
    return (int)have;
}

/* Waits for pid's exit within bound_ms; true with *status set. */
static bool wait_bounded(pid_t pid, int bound_ms, int *status)
{
    uint64_t end = svc_now_ms() + (uint64_t)bound_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
        if (svc_now_ms() >= end)
            return false;
        poll(NULL, 0, 2);   /* a reap poll, not a synchronisation */
    }
}

static int exit_code(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int svc_start(svc *s, const char *name, const char *const *args)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->out_fd = -1;
    s->pid = spawn(name, args, &s->out_fd, NULL);
    live_add(s);
    char line[256];
    int port = 0;
    if (read_line(s->out_fd, line, sizeof line, svc_now_ms() + SVC_START_MS) < 0 ||
        sscanf(line, "listening on 127.0.0.1:%d", &port) != 1 || port <= 0) {
        int st = 0;
        if (wait_bounded(s->pid, 2000, &st)) {   /* it ended before listening */
            live_del(s);
            close(s->out_fd);
            s->pid = 0;
            return exit_code(st) ? exit_code(st) : 255;
        }
        fail_msg("%s printed no \"listening on 127.0.0.1:PORT\" line within %d ms (got \"%s\")", name,
                 SVC_START_MS, line);
    }
    s->port = port;
    return 0;
}

int svc_stop_status(svc *s, int bound_ms)
{
    if (!s->pid)
        return 0;
    int st = 0;
    kill(s->pid, SIGTERM);
    bool ok = wait_bounded(s->pid, bound_ms, &st);
    if (!ok) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
    }
    live_del(s);
    close(s->out_fd);
    s->pid = 0;
    if (!ok)
        fail_msg("%s did not exit within %d ms of SIGTERM", s->name, bound_ms);
    return st;
}

void svc_stop(svc *s)
{
    char name[16];
    snprintf(name, sizeof name, "%s", s->name);
    int st = svc_stop_status(s, SVC_STOP_MS);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("%s ended with %s %d after SIGTERM, not exit 0", name,
                 WIFEXITED(st) ? "exit code" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
}

int svc_run_usage(const char *name, const char *const *args, char *err, size_t errsz)
{
    int out, efd;
    pid_t pid = spawn(name, args, &out, &efd);
    size_t have = 0;
    uint64_t end = svc_now_ms() + SVC_START_MS;
    for (;;) {   /* stderr to EOF, bounded */
        uint64_t now = svc_now_ms();
        struct pollfd p = { .fd = efd, .events = POLLIN };
        /* 0: the bound passed with nothing to read (a program that does
         * not exit): a read now would wait for it forever */
        if (now >= end || poll(&p, 1, (int)(end - now)) <= 0)
            break;
        char tmp[512];
        ssize_t k = read(efd, tmp, sizeof tmp);
        if (k <= 0)
            break;
        size_t take = (size_t)k < errsz - 1 - have ? (size_t)k : errsz - 1 - have;
        memcpy(err + have, tmp, take);
        have += take;
    }
    err[have] = '\0';
    close(efd);
    close(out);
    int st = 0;
    if (!wait_bounded(pid, 2000, &st)) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    return exit_code(st);
}

int svc_teardown(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_LIVE; i++)
        if (live[i].pid) {
            kill(live[i].pid, SIGKILL);
            waitpid(live[i].pid, NULL, 0);
            close(live[i].fd);
            live[i].pid = 0;
        }
    return 0;
}

int svc_port_reserve(int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*fd >= 0);
    int one = 1;
    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(*fd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&sa, &len), 0);
    return ntohs(sa.sin_port);
}

/* ---- the chain ------------------------------------------------------------------------ */

typedef struct argv_b {
    const char *v[SVC_MAX_ARGS + 1];
    char store[6][96];
    int n, ns;
} argv_b;

static void arg(argv_b *a, const char *s)
{
    assert_true(a->n < SVC_MAX_ARGS);
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

static void argf(argv_b *a, const char *fmt, ...)
{
    assert_true(a->ns < 6);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->store[a->ns], sizeof a->store[0], fmt, ap);
    va_end(ap);
    arg(a, a->store[a->ns++]);
}

/* --threads N [--mode M] [--admin] and the test's extra options. */
static void common_args(argv_b *a, const chain_opts *o, const char *const *extra)
{
    arg(a, "--threads");
    argf(a, "%d", o->threads ? o->threads : 1);
    if (o->mode) {
        arg(a, "--mode");
        arg(a, o->mode);
    }
    if (o->admin)
        arg(a, "--admin");
    for (; *extra; extra++)
        arg(a, *extra);
}

static int start_chain_once(chain *c, const chain_opts *o)
{
    int rfd;
    int r = svc_port_reserve(&rfd);
    argv_b pa = { 0 }, ia = { 0 }, oa = { 0 };
    arg(&pa, "--listen"), arg(&pa, "127.0.0.1:0");
    common_args(&pa, o, o->pay_args);
    arg(&pa, "--order");
    argf(&pa, "http://%s:%d", o->host ? o->host : "127.0.0.1", r);
    assert_int_equal(svc_start(&c->pay, "payment", pa.v), 0);

    arg(&ia, "--listen"), arg(&ia, "127.0.0.1:0");
    common_args(&ia, o, o->inv_args);
    arg(&ia, "--payment");
    argf(&ia, "http://%s:%d", o->host ? o->host : "127.0.0.1", c->pay.port);
    if (o->stock)
        arg(&ia, "--stock"), arg(&ia, o->stock);
    assert_int_equal(svc_start(&c->inv, "inventory", ia.v), 0);

    arg(&oa, "--listen");
    argf(&oa, "127.0.0.1:%d", r);
    common_args(&oa, o, o->order_args);
    arg(&oa, "--inventory");
    argf(&oa, "http://%s:%d", o->host ? o->host : "127.0.0.1", c->inv.port);
    if (o->order_timeout_ms)
        arg(&oa, "--timeout-ms"), argf(&oa, "%d", o->order_timeout_ms);
    int rc = svc_start(&c->order, "order", oa.v);
    close(rfd);
    if (rc == 0)
        assert_int_equal(c->order.port, r);
    return rc;
}

void chain_start(chain *c, const chain_opts *o)
{
    memset(c, 0, sizeof *c);
    for (int attempt = 0; attempt < 4; attempt++) {
        if (start_chain_once(c, o) == 0) {
            c->base_order = svc_task_count(c->order.port);
            c->base_inv = svc_task_count(c->inv.port);
            c->base_pay = svc_task_count(c->pay.port);
            assert_true(c->base_order > 0 && c->base_inv > 0 && c->base_pay > 0);
            return;
        }
        svc_stop(&c->inv);   /* order could not bind its port: start over */
        svc_stop(&c->pay);
    }
    fail_msg("order-svc could not listen on a reserved port in 4 attempts");
}

static void settle(const svc *s, int base)
{
    int n = svc_tasks_settle(s->port, base, 5000);
    if (n > base)
        fail_msg("%s: %d tasks alive 5 s after the test, idle baseline %d", s->name, n, base);
}

void svc_kill9(svc *s)
{
    int st = 0;
    assert_true(s->pid > 0);
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    live_del(s);
    close(s->out_fd);
    s->pid = 0;
}

void chain_restart(chain *c, svc *s, const chain_opts *o)
{
    argv_b a = { 0 };
    const char *host = o->host ? o->host : "127.0.0.1";
    int port = s->port;
    arg(&a, "--listen");
    argf(&a, "127.0.0.1:%d", port);
    if (s == &c->pay) {
        common_args(&a, o, o->pay_args);
        arg(&a, "--order");
        argf(&a, "http://%s:%d", host, c->order.port);
        assert_int_equal(svc_start(s, "payment", a.v), 0);
    } else if (s == &c->inv) {
        common_args(&a, o, o->inv_args);
        arg(&a, "--payment");
        argf(&a, "http://%s:%d", host, c->pay.port);
        if (o->stock)
            arg(&a, "--stock"), arg(&a, o->stock);
        assert_int_equal(svc_start(s, "inventory", a.v), 0);
    } else {
        common_args(&a, o, o->order_args);
        arg(&a, "--inventory");
        argf(&a, "http://%s:%d", host, c->inv.port);
        if (o->order_timeout_ms)
            arg(&a, "--timeout-ms"), argf(&a, "%d", o->order_timeout_ms);
        assert_int_equal(svc_start(s, "order", a.v), 0);
    }
    assert_int_equal(s->port, port);
}

void chain_end(chain *c)
{
    settle(&c->order, c->base_order);
    settle(&c->inv, c->base_inv);
    settle(&c->pay, c->base_pay);
    chain_stop(c);
}

void chain_stop(chain *c)
{
    svc_stop(&c->order);
    svc_stop(&c->inv);
    svc_stop(&c->pay);
}

void svc_tmpdir(char *out, size_t n, const char *what)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(out, n, "%s/sluice-%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", what);
    assert_non_null(mkdtemp(out));
}

void svc_rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

long svc_undo_counter(int port, const char *key)
{
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    long v = http_req(port, "GET", "/debug/compensations", NULL, NULL, 3000, r) == 200 ? (long)jint(r, key, -1) : -1;
    free(r);
    return v;
}

void svc_undo_settles(int port, const char *who, int bound_ms)
{
    long n = -1;
    uint64_t end = svc_now_ms() + (uint64_t)bound_ms;
    while ((n = svc_undo_counter(port, "pending")) != 0 && svc_now_ms() < end)
        poll(NULL, 0, 20);
    if (n != 0)
        fail_msg("%s still has %ld compensations pending after %d ms", who, n, bound_ms);
}
