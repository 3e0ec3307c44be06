/* httputil.h: a blocking HTTP client on raw sockets, and a server on its own
 * thread, for the net/ tests. */
#ifndef SL_HTTPUTIL_H
#define SL_HTTPUTIL_H
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include "testutil.h"
#include "sl_http.h"

typedef struct test_srv {
    sl_runtime *rt;
    sl_http_server *srv;
    pthread_t th;
    int port;
    capture cap;
} test_srv;

static inline void *srv_thread(void *arg)
{
    test_srv *ts = arg;
    sl_runtime_run(ts->rt);
    return NULL;
}

/* Starts `srv` (routes added by the caller) on its own thread. */
static inline void srv_run(test_srv *ts)
{
    assert_int_equal(sl_http_server_start(ts->srv), 0);
    ts->port = sl_http_server_port(ts->srv);
    assert_true(ts->port > 0);
    assert_int_equal(pthread_create(&ts->th, NULL, srv_thread, ts), 0);
}

static inline void srv_stop(test_srv *ts)
{
    sl_runtime_stop(ts->rt);
    pthread_join(ts->th, NULL);
    sl_http_server_free(ts->srv);
    assert_int_equal(sl_runtime_free(ts->rt), 0);
}

/* A handler for GET /items/{id}: answers the id. */
static inline int h_item(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    size_t n;
    const char *id = sl_http_req_param(req, "id", &n);
    (void)t;
    return sl_http_reply(req, 200, "text/plain", id, n);
}

/* Connects to host:port (numeric IPv4). */
static inline int cli_connect_to(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    assert_int_equal(inet_pton(AF_INET, host, &sa.sin_addr), 1);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static inline int cli_connect(int port) { return cli_connect_to("127.0.0.1", port); }

static inline void cli_send(int fd, const char *s)
{
    size_t len = strlen(s);
    while (len) {
        ssize_t n = write(fd, s, len);
        assert_true(n > 0);
        s += n;
        len -= (size_t)n;
    }
}

typedef struct resp {
    int status;             /* 0: connection closed before a response; -1 timeout */
    char head[4096];
    char body[65536];
    size_t body_len;
    bool closed_after;      /* "Connection: close" */
} resp;

/* Set while reading the answer to a HEAD request: it has no body. */
static __thread bool cli_no_body;

/* Reads one response (Content-Length framed) within timeout_ms. */
static inline int cli_read(int fd, resp *r, int timeout_ms)
{
    static __thread char buf[1 << 17];
    static __thread size_t have;
    static __thread int buf_fd = -1;
    if (buf_fd != fd) {
        have = 0;
        buf_fd = fd;
    }
    memset(r, 0, sizeof *r);
    uint64_t end = sl_now_ns() + (uint64_t)timeout_ms * SL_NS_PER_MS;
    for (;;) {
        char *hend = have ? memmem(buf, have, "\r\n\r\n", 4) : NULL;
        if (hend) {
            size_t hl = (size_t)(hend - buf) + 4;
            size_t cl = 0;
            char *p = memmem(buf, hl, "Content-Length: ", 16);
            if (p && !cli_no_body)
                cl = strtoul(p + 16, NULL, 10);
            if (have >= hl + cl) {
                memcpy(r->head, buf, hl < sizeof r->head - 1 ? hl : sizeof r->head - 1);
                r->status = atoi(buf + 9);
                r->body_len = cl < sizeof r->body - 1 ? cl : sizeof r->body - 1;
                memcpy(r->body, buf + hl, r->body_len);
                r->closed_after = memmem(buf, hl, "Connection: close", 17) != NULL;
                memmove(buf, buf + hl + cl, have - hl - cl);
                have -= hl + cl;
                return r->status;
            }
        }
        uint64_t now = sl_now_ns();
        if (now >= end)
            return r->status = -1;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        if (poll(&pfd, 1, (int)((end - now) / SL_NS_PER_MS) + 1) <= 0)
            continue;
        ssize_t n = read(fd, buf + have, sizeof buf - have);
        if (n <= 0)
            return r->status = 0;
        have += (size_t)n;
    }
}

/* Reads one response and checks its status and body. */
static inline void cli_expect(int fd, int status, const char *body)
{
    static __thread resp r;
    assert_int_equal(cli_read(fd, &r, 5000), status);
    assert_string_equal(r.body, body);
}

/* Waits for the server to close fd (read returns 0). */
static inline bool cli_closed(int fd, int timeout_ms)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    char c[256];
    uint64_t end = sl_now_ns() + (uint64_t)timeout_ms * SL_NS_PER_MS;
    while (sl_now_ns() < end) {
        if (poll(&pfd, 1, 10) > 0) {
            ssize_t n = read(fd, c, sizeof c);
            if (n <= 0)
                return true;
        }
    }
    return false;
}

static inline int get_from(const char *host, int port, const char *path, resp *r)
{
    char req[512];
    int fd = cli_connect_to(host, port);
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\n\r\n", path);
    cli_send(fd, req);
    int st = cli_read(fd, r, 5000);
    close(fd);
    return st;
}

static inline int get(int port, const char *path, resp *r) { return get_from("127.0.0.1", port, path, r); }

/* Polls the server's /metrics (a control-lane route: answered however
 * busy the server is) until it shows `line`: waits for the event, up to
 * 5 s, never a fixed time. */
static inline void wait_metric_on(int port, const char *line)
{
    resp r;
    for (int i = 0; i < 2500; i++) {
        if (get(port, "/metrics", &r) == 200 && strstr(r.body, line))
            return;
        usleep(2000);
    }
    fail_msg("/metrics never showed %s", line);
}
#endif
