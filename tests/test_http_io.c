/* test_http_io.c: the server's socket I/O: requests split across reads,
 * clients that pipeline far ahead of their answers or read slowly, and a
 * reset while answers wait. The bounds asserted are those of sl_http.h
 * (max_pipeline): 256 KiB of unparsed input (plus one read of 64 KiB) and
 * 256 KiB of waiting answers (plus one batch) per connection. */
#include <signal.h>
#include <stdatomic.h>
#include "httputil.h"

static test_srv TS;


/* GET /pad/{id}: the id, padded with dots to PAD bytes. */
#define PAD 1000

static int h_pad(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    size_t n;
    const char *id = sl_http_req_param(req, "id", &n);
    char body[PAD];
    (void)t;
    memset(body, '.', sizeof body);
    memcpy(body, id, n < PAD ? n : PAD);
    return sl_http_reply(req, 200, "text/plain", body, sizeof body);
}

static unsigned char big_byte(size_t i) { return (unsigned char)(i * 7 + 3); }

/* GET /big/{n}: n bytes of a known pattern. */
static int h_big(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    size_t n = strtoul(sl_http_req_param(req, "n", NULL), NULL, 10);
    unsigned char *body = malloc(n ? n : 1);
    (void)t;
    if (!body)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        body[i] = big_byte(i);
    int rc = sl_http_reply(req, 200, "application/octet-stream", body, n);
    free(body);
    return rc;
}

/* POST /echo: the body as it came. */
static int h_echo(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    size_t n;
    const char *b = sl_http_req_body(req, &n);
    (void)t;
    return sl_http_reply(req, 200, "text/plain", b, n);
}

static void start(void)
{
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    /* fixed admission: these tests are about bytes, and a client that does
     * not read its answers makes requests look slow to an adaptive limit,
     * which would refuse some of the pipeline (tests/test_admission.c) */
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){
                                            .listen = "127.0.0.1:0", .admission = SL_HTTP_ADMISSION_FIXED }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/items/{id}", h_item, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/pad/{id}", h_pad, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/big/{n}", h_big, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/echo", h_echo, 0, NULL), 0);
    srv_run(&TS);
}

/* The sum over reactors of a /metrics gauge. */
static uint64_t metric(const char *name)
{
    resp r;
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    uint64_t sum = 0;
    size_t nl = strlen(name);
    for (const char *p = r.body; (p = strstr(p, name)); p += nl)
        if ((p == r.body || p[-1] == '\n') && p[nl] == '{')
            sum += strtoull(strchr(p, '}') + 1, NULL, 10);
    return sum;
}

/* A client socket whose kernel buffers are small, so the server's own
 * buffering is what is tested. */
static int small_client(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int sz = 16384;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz), 0);
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz), 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)TS.port) };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

/* A buffered reader of one client socket. */
typedef struct rd {
    int fd;
    size_t off, have;
    char buf[65536];
} rd;

static void rd_fill(rd *r)
{
    if (r->off == r->have)
        r->off = r->have = 0;
    struct pollfd pfd = { .fd = r->fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 10000), 1);
    ssize_t k = read(r->fd, r->buf + r->have, sizeof r->buf - r->have);
    assert_true(k > 0);
    r->have += (size_t)k;
}

static void read_exact(rd *r, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        if (r->off == r->have)
            rd_fill(r);
        size_t k = r->have - r->off < n ? r->have - r->off : n;
        memcpy(p, r->buf + r->off, k);
        r->off += k;
        p += k;
        n -= k;
    }
}

/* Reads one response head and returns its Content-Length; the status must
 * be 200. */
static size_t read_head(rd *r)
{
    char *end;
    while (!(end = memmem(r->buf + r->off, r->have - r->off, "\r\n\r\n", 4))) {
        if (r->off) {   /* keep the partial head at the front */
            memmove(r->buf, r->buf + r->off, r->have - r->off);
            r->have -= r->off;
            r->off = 0;
        }
        assert_true(r->have < sizeof r->buf);
        rd_fill(r);
    }
    const char *head = r->buf + r->off;
    size_t hl = (size_t)(end - head) + 4;
    assert_int_equal(atoi(head + 9), 200);
    const char *cl = memmem(head, hl, "Content-Length: ", 16);
    assert_non_null(cl);
    r->off += hl;
    return strtoul(cl + 16, NULL, 10);
}

/* ---- requests split across reads ----------------------------------------------- */

static void send_slowly(int fd, const char *const *parts)
{
    for (int i = 0; parts[i]; i++) {
        cli_send(fd, parts[i]);
        usleep(20000);   /* not synchronisation: only makes separate reads likely */
    }
}

static void test_split_across_reads(void **s)
{
    (void)s;
    start();
    int fd = cli_connect(TS.port);
    send_slowly(fd, (const char *const[]){ "GET /items/ab", "c HTTP/1.1\r\nHo", "st: t\r\n", "\r\n", NULL });
    cli_expect(fd, 200, "abc");
    /* a body in pieces, and a whole request followed by half of the next */
    send_slowly(fd, (const char *const[]){ "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\nhello", " world",
                                           "GET /items/one HTTP/1.1\r\nHost: t\r\n\r\nGET /items/t",
                                           "wo HTTP/1.1\r\nHost: t\r\n\r\n", NULL });
    cli_expect(fd, 200, "hello world");
    cli_expect(fd, 200, "one");
    cli_expect(fd, 200, "two");
    close(fd);
    srv_stop(&TS);
}

/* ---- a pipelined stream in random pieces -------------------------------------------- */

/* 300 requests (GETs of big answers, POSTs with Content-Length and chunked
 * bodies, extra headers) written as one stream cut at random places, with
 * random short gaps, so the server's reads end anywhere: inside a request
 * line, a header, a chunk size, a body. The big answers (10 MB in all, more
 * than the kernel buffers) make the server stop parsing while they wait,
 * with a request cut anywhere in its buffer. Every answer must come back,
 * in order, with the body it should have. Deterministic: a fixed seed. */
#define STREAM_REQS 300

typedef struct stream {
    int fd;
    char *buf;
    size_t len;
    _Atomic int done;
} stream;

static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void *stream_writer(void *arg)
{
    stream *st = arg;
    for (size_t off = 0; off < st->len;) {
        size_t n = 1 + rnd(rnd(8) ? 64 : 3000);
        if (n > st->len - off)
            n = st->len - off;
        for (size_t done = 0; done < n;) {
            ssize_t k = write(st->fd, st->buf + off + done, n - done);
            assert_true(k > 0);
            done += (size_t)k;
        }
        off += n;
        if (!rnd(4))
            usleep(rnd(300));   /* not synchronisation: varies where reads end */
    }
    atomic_store(&st->done, 1);
    return NULL;
}

static void test_random_pieces(void **s)
{
    (void)s;
    start();
    size_t cap = 4 << 20, len = 0;
    char *buf = malloc(cap), **want = calloc(STREAM_REQS, sizeof *want);
    size_t want_big[STREAM_REQS] = { 0 };
    assert_non_null(buf);
    for (int i = 0; i < STREAM_REQS; i++) {
        char body[4096];
        size_t bl = rnd(3) ? rnd(3000) : 0;
        for (size_t k = 0; k < bl; k++)
            body[k] = (char)('a' + rnd(26));
        body[bl] = '\0';
        const char *extra = rnd(2) ? "X-Extra: some value\r\nAccept: */*\r\n" : "";
        int kind = (int)rnd(3);
        if (kind == 0) {   /* GET: a big answer of a known pattern */
            want_big[i] = 8000 + rnd(200000);
            len += (size_t)sprintf(buf + len, "GET /big/%zu HTTP/1.1\r\nHost: t\r\n%s\r\n", want_big[i], extra);
        } else if (kind == 1) {   /* Content-Length */
            len += (size_t)sprintf(buf + len, "POST /echo HTTP/1.1\r\nHost: t\r\n%sContent-Length: %zu\r\n\r\n%s",
                                   extra, bl, body);
            want[i] = strdup(body);
        } else {   /* chunked, in chunks of random sizes */
            len += (size_t)sprintf(buf + len, "POST /echo HTTP/1.1\r\nHost: t\r\n%sTransfer-Encoding: chunked\r\n\r\n",
                                   extra);
            for (size_t at = 0; at < bl;) {
                size_t n = 1 + rnd(700);
                if (n > bl - at)
                    n = bl - at;
                len += (size_t)sprintf(buf + len, "%zx\r\n%.*s\r\n", n, (int)n, body + at);
                at += n;
            }
            len += (size_t)sprintf(buf + len, "0\r\n\r\n");
            want[i] = strdup(body);
        }
        assert_true(len < cap - 8192);
    }
    /* small kernel buffers, and no reading until answers wait in the
     * server: parsing stops with a request cut anywhere, whose bytes the
     * connection must keep exactly */
    stream st = { .fd = small_client(), .buf = buf, .len = len };
    static rd r;
    r = (rd){ .fd = st.fd };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stream_writer, &st), 0);
    for (int i = 0; i < 1000 && !atomic_load(&st.done) &&
                    metric("sluice_http_buffered_output_bytes") < 256 * 1024; i++)
        usleep(10000);
    static char got[256000];
    for (int i = 0; i < STREAM_REQS; i++) {
        size_t n = read_head(&r);
        assert_true(n < sizeof got);
        read_exact(&r, got, n);
        got[n] = '\0';
        if (want_big[i]) {
            assert_int_equal(n, want_big[i]);
            for (size_t k = 0; k < n; k++)
                if ((unsigned char)got[k] != big_byte(k))
                    fail_msg("answer %d: byte %zu differs", i, k);
        } else if (strcmp(got, want[i])) {
            fail_msg("answer %d: got %zu bytes, want %zu", i, n, strlen(want[i]));
        }
        free(want[i]);
    }
    pthread_join(th, NULL);
    close(st.fd);
    free(want);
    free(buf);
    srv_stop(&TS);
}

/* ---- a client that pipelines far ahead and does not read --------------------------- */

#define FLOOD 20000

typedef struct flood {
    int fd;
    _Atomic int sent;   /* requests written so far */
} flood;

static void *flood_writer(void *arg)
{
    flood *f = arg;
    char req[1200], pad[900];
    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < FLOOD; i++) {
        snprintf(req, sizeof req, "GET /pad/%d HTTP/1.1\r\nHost: t\r\nX-Pad: %s\r\n\r\n", i, pad);
        cli_send(f->fd, req);
        atomic_store(&f->sent, i + 1);
    }
    return NULL;
}

static void test_flood_is_pushed_back(void **s)
{
    (void)s;
    start();
    flood f = { .fd = small_client() };
    static rd r;
    r = (rd){ .fd = f.fd };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, flood_writer, &f), 0);
    /* the server buffers up to its bounds and then stops: wait until both
     * directions are full (20 MB of requests cannot all be in flight) */
    uint64_t in = 0, out = 0;
    for (int i = 0; i < 1000; i++) {
        in = metric("sluice_http_buffered_input_bytes");
        out = metric("sluice_http_buffered_output_bytes");
        if (in >= 192 * 1024 && out >= 192 * 1024)
            break;
        usleep(10000);
    }
    assert_true(in >= 192 * 1024);
    assert_true(out >= 192 * 1024);
    /* and stays within them while the client still has requests to send
     * (20 samples of an invariant, spaced out: not a wait for an event, so
     * a descheduled test thread cannot make it fail) */
    for (int i = 0; i < 20; i++) {
        uint64_t most = metric("sluice_http_connection_buffered_max_bytes");
        assert_true(most <= 600 * 1024);
        usleep(5000);
    }
    assert_true(atomic_load(&f.sent) < FLOOD);
    /* reading resumes everything: every answer, in order */
    char body[PAD + 1], want[32];
    for (int i = 0; i < FLOOD; i++) {
        assert_int_equal(read_head(&r), PAD);
        read_exact(&r, body, PAD);
        int n = snprintf(want, sizeof want, "%d.", i);
        assert_memory_equal(body, want, (size_t)n);
    }
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&f.sent), FLOOD);
    close(f.fd);
    /* what the connection held is gone with it */
    uint64_t left = 1;
    for (int i = 0; i < 500 && (left = metric("sluice_http_buffered_output_bytes")
                                       + metric("sluice_http_buffered_input_bytes")); i++)
        usleep(10000);
    assert_int_equal(left, 0);
    srv_stop(&TS);
}

/* ---- big answers to a slow reader ----------------------------------------------------- */

static void test_big_bodies_to_a_slow_reader(void **s)
{
    (void)s;
    start();
    int fd = small_client();
    static rd r;
    r = (rd){ .fd = fd };
    cli_send(fd, "GET /big/3000000 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /big/0 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /big/1500001 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/last HTTP/1.1\r\nHost: t\r\n\r\n");
    const size_t sizes[] = { 3000000, 0, 1500001 };
    char *buf = malloc(3000000);
    assert_non_null(buf);
    for (int k = 0; k < 3; k++) {
        assert_int_equal(read_head(&r), sizes[k]);
        /* in small reads, so the server meets a full socket many times */
        for (size_t got = 0; got < sizes[k];) {
            size_t want = sizes[k] - got < 8192 ? sizes[k] - got : 8192;
            read_exact(&r, buf + got, want);
            got += want;
        }
        for (size_t i = 0; i < sizes[k]; i++)
            if ((unsigned char)buf[i] != big_byte(i))
                fail_msg("response %d: byte %zu is %u, not %u", k, i, (unsigned char)buf[i], big_byte(i));
    }
    free(buf);
    assert_int_equal(read_head(&r), 4);
    char last[4];
    read_exact(&r, last, 4);
    assert_memory_equal(last, "last", 4);
    close(fd);
    srv_stop(&TS);
}

/* ---- a reset while answers wait ----------------------------------------------------- */

static void test_reset_while_output_waits(void **s)
{
    (void)s;
    resp r;
    start();
    int fd = small_client();
    cli_send(fd, "GET /big/8000000 HTTP/1.1\r\nHost: t\r\n\r\n");
    uint64_t out = 0;
    for (int i = 0; i < 500 && !(out = metric("sluice_http_buffered_output_bytes")); i++)
        usleep(10000);
    assert_true(out > 0);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(fd);   /* RST: the server's next write fails */
    /* the connection and its 8 MB go; only /metrics' own connection is left */
    uint64_t conns = 0;
    for (int i = 0; i < 500; i++) {
        out = metric("sluice_http_buffered_output_bytes");
        conns = metric("sluice_http_connections");
        if (!out && conns == 1)
            break;
        usleep(10000);
    }
    assert_int_equal(out, 0);
    assert_int_equal(conns, 1);
    assert_int_equal(get(TS.port, "/items/still", &r), 200);
    assert_string_equal(r.body, "still");
    srv_stop(&TS);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_across_reads),
        cmocka_unit_test(test_random_pieces),
        cmocka_unit_test(test_flood_is_pushed_back),
        cmocka_unit_test(test_big_bodies_to_a_slow_reader),
        cmocka_unit_test(test_reset_while_output_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
