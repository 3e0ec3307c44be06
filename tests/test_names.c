/* test_names.c: HOST:PORT with names and IPv6, the hosts file, and
 * upstreams that follow a name's DNS answers (a tiny DNS responder of the
 * test's own on 127.0.0.1, on its own thread; no real DNS is asked). */
#include <signal.h>
#include <stdatomic.h>
#include <event2/dns.h>
#include <event2/dns_struct.h>
#include <event2/event.h>
#include "httputil.h"
#include "addr.h"
#include "resolve.h"
#include "sl_client.h"

/* ---- HOST:PORT ------------------------------------------------------------------------- */

static void parse_ok(const char *s, bool is_name, const char *host, unsigned port, const char *formatted)
{
    sl_hostport hp;
    const char *why = NULL;
    if (sl__hostport_parse(&hp, s, strlen(s), true, &why) != 0)
        fail_msg("'%s' refused: %s", s, why);
    assert_int_equal(hp.is_name, is_name);
    assert_string_equal(hp.host, host);
    assert_int_equal(hp.port, port);
    if (formatted) {
        char buf[SL_ADDR_STR_MAX];
        sl__sockaddr_format((struct sockaddr *)&hp.sa, buf, sizeof buf);
        assert_string_equal(buf, formatted);
    }
}

static void parse_bad(const char *s, const char *why_expected)
{
    sl_hostport hp;
    const char *why = NULL;
    if (sl__hostport_parse(&hp, s, strlen(s), false, &why) != -EINVAL)
        fail_msg("'%s' accepted", s);
    if (strcmp(why, why_expected))
        fail_msg("'%s': '%s', expected '%s'", s, why, why_expected);
}

static void test_hostport(void **st)
{
    (void)st;
    parse_ok("127.0.0.1:80", false, "127.0.0.1", 80, "127.0.0.1:80");
    parse_ok("localhost:81", false, "127.0.0.1", 81, "127.0.0.1:81");
    parse_ok("[::1]:8081", false, "::1", 8081, "[::1]:8081");
    parse_ok("[::]:0", false, "::", 0, "[::]:0");
    parse_ok("[2001:db8::7]:65535", false, "2001:db8::7", 65535, "[2001:db8::7]:65535");
    parse_ok("inventory.svc:8082", true, "inventory.svc", 8082, NULL);
    parse_ok("order:8081", true, "order", 8081, NULL);
    parse_ok("a-1.B2.example.:1", true, "a-1.B2.example.", 1, NULL);
    parse_ok("1a.svc:1", true, "1a.svc", 1, NULL);
    parse_bad("inventory.svc", "no :PORT");
    parse_bad("[::1]", "no :PORT");
    parse_bad("[::1]8081", "no :PORT");
    parse_bad("::1:8081", "bad host (an IPv6 address goes in brackets: [::1]:PORT)");
    parse_bad("[::g]:80", "bad IPv6 address");
    parse_bad("[::1:80", "bad IPv6 address");
    parse_bad("[127.0.0.1]:80", "bad IPv6 address");
    parse_bad("host:", "bad port");
    parse_bad("host:0", "bad port");   /* 0 only where it is allowed */
    parse_bad("host:65536", "bad port");
    parse_bad("host:99999999999999999999", "bad port");
    parse_bad("host:8a", "bad port");
    parse_bad("host:-1", "bad port");
    parse_bad(":80", "bad host");
    parse_bad("10.0.0.300:80", "bad host");
    parse_bad("no_underscore:80", "bad host");
    parse_bad("a..b:80", "bad host");
    parse_bad(".a:80", "bad host");
    parse_bad("-a.svc:80", "bad host");
    parse_bad("a-.svc:80", "bad host");
    parse_bad("a b:80", "bad host");
    char longlabel[80];
    memset(longlabel, 'a', 64);
    strcpy(longlabel + 64, ".svc:80");
    parse_bad(longlabel, "bad host");
    longlabel[1] = '.';   /* 1 + 62: fine */
    sl_hostport hp;
    assert_int_equal(sl__hostport_parse(&hp, longlabel, strlen(longlabel), false, NULL), 0);
}

static void test_loopback(void **st)
{
    (void)st;
    struct sockaddr_storage ss;
    unsigned char a[16] = { 0 };
    inet_pton(AF_INET, "127.9.9.9", a);
    sl__sockaddr_make(&ss, AF_INET, a, 1);
    assert_true(sl__sockaddr_loopback((struct sockaddr *)&ss));
    inet_pton(AF_INET, "10.0.0.1", a);
    sl__sockaddr_make(&ss, AF_INET, a, 1);
    assert_false(sl__sockaddr_loopback((struct sockaddr *)&ss));
    inet_pton(AF_INET6, "::1", a);
    sl__sockaddr_make(&ss, AF_INET6, a, 1);
    assert_true(sl__sockaddr_loopback((struct sockaddr *)&ss));
    inet_pton(AF_INET6, "::ffff:127.0.0.1", a);
    sl__sockaddr_make(&ss, AF_INET6, a, 1);
    assert_true(sl__sockaddr_loopback((struct sockaddr *)&ss));
    inet_pton(AF_INET6, "::ffff:10.0.0.1", a);
    sl__sockaddr_make(&ss, AF_INET6, a, 1);
    assert_false(sl__sockaddr_loopback((struct sockaddr *)&ss));
    inet_pton(AF_INET6, "::2", a);
    sl__sockaddr_make(&ss, AF_INET6, a, 1);
    assert_false(sl__sockaddr_loopback((struct sockaddr *)&ss));
}

/* ---- files of the test's own -------------------------------------------------------------- */

static char dir[64], hosts_path[96], conf_path[96];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup_dir(void **st)
{
    (void)st;
    strcpy(dir, "/tmp/sl-names-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(hosts_path, sizeof hosts_path, "%s/hosts", dir);
    snprintf(conf_path, sizeof conf_path, "%s/resolv.conf", dir);
    write_file(hosts_path, "# the test's names\n"
                           "127.0.0.1   local.test  alias.test   # comment\n"
                           "::1         local.test six.test\n"
                           "127.0.0.1   local.test\n"      /* twice: one replica */
                           "bogus       broken.test\n"
                           "127.0.0.2   two.test\n");
    return 0;
}

static int teardown_dir(void **st)
{
    (void)st;
    unlink(hosts_path);
    unlink(conf_path);
    rmdir(dir);
    return 0;
}

static void test_hosts_file(void **st)
{
    (void)st;
    sl_addrs as;
    char buf[SL_ADDR_STR_MAX];
    assert_int_equal(sl__hosts_lookup(hosts_path, "local.test", 8082, &as), 0);
    assert_int_equal(as.n, 2);
    assert_int_equal(as.ttl_s, 0);
    sl__sockaddr_format((struct sockaddr *)&as.a[0], buf, sizeof buf);
    assert_string_equal(buf, "127.0.0.1:8082");
    sl__sockaddr_format((struct sockaddr *)&as.a[1], buf, sizeof buf);
    assert_string_equal(buf, "[::1]:8082");
    assert_int_equal(sl__hosts_lookup(hosts_path, "ALIAS.test.", 1, &as), 0);   /* any case, absolute */
    assert_int_equal(as.n, 1);
    assert_int_equal(sl__hosts_lookup(hosts_path, "broken.test", 1, &as), -ENOENT);
    assert_int_equal(sl__hosts_lookup(hosts_path, "other.test", 1, &as), -ENOENT);
    assert_int_equal(sl__hosts_lookup("/nonexistent/hosts", "local.test", 1, &as), -ENOENT);
}

/* ---- a DNS responder ------------------------------------------------------------------------ */

enum { ANSWER, NXDOMAIN, SERVFAIL, SILENT };

static struct {
    pthread_t th;
    struct event_base *base;
    struct evdns_server_port *port;
    int fd, udp_port;
    pthread_mutex_t mu;
    int mode;                  /* for dyn.test */
    uint32_t a[4];             /* its A records */
    int na;
    int ttl;
    atomic_int queries;        /* for dyn.test, A and AAAA */
    atomic_bool stop;
} D = { .mu = PTHREAD_MUTEX_INITIALIZER };

static void dns_answer(struct evdns_server_request *req, void *arg)
{
    (void)arg;
    int err = DNS_ERR_NOTEXIST;
    for (int i = 0; i < req->nquestions; i++) {
        const struct evdns_server_question *q = req->questions[i];
        if (!strcasecmp(q->name, "fixed.test")) {   /* 127.0.0.1 and ::1, for a long time */
            err = 0;
            uint32_t a = htonl(INADDR_LOOPBACK);
            if (q->type == EVDNS_TYPE_A)
                evdns_server_request_add_a_reply(req, q->name, 1, &a, 3600);
            else if (q->type == EVDNS_TYPE_AAAA)
                evdns_server_request_add_aaaa_reply(req, q->name, 1, &in6addr_loopback, 3600);
        } else if (!strcasecmp(q->name, "dyn.test")) {
            atomic_fetch_add(&D.queries, 1);
            pthread_mutex_lock(&D.mu);
            int mode = D.mode;
            if (mode == ANSWER && q->type == EVDNS_TYPE_A && D.na)
                evdns_server_request_add_a_reply(req, q->name, D.na, D.a, D.ttl);
            pthread_mutex_unlock(&D.mu);
            if (mode == SILENT) {
                evdns_server_request_drop(req);
                return;
            }
            err = mode == NXDOMAIN ? DNS_ERR_NOTEXIST : mode == SERVFAIL ? DNS_ERR_SERVERFAILED : 0;
        }
    }
    evdns_server_request_respond(req, err);
}

static void dns_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    if (atomic_load(&D.stop))
        event_base_loopbreak(D.base);
}

static void *dns_thread(void *arg)
{
    (void)arg;
    struct event *tick = event_new(D.base, -1, EV_PERSIST, dns_tick, NULL);
    event_add(tick, &(struct timeval){ 0, 20000 });
    event_base_dispatch(D.base);
    event_free(tick);
    return NULL;
}

static void dns_start(void)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    D.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_int_equal(bind(D.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(D.fd, (struct sockaddr *)&sa, &len), 0);
    D.udp_port = ntohs(sa.sin_port);
    D.base = event_base_new();
    D.port = evdns_add_server_port_with_base(D.base, D.fd, 0, dns_answer, NULL);
    assert_non_null(D.port);
    atomic_store(&D.stop, false);
    assert_int_equal(pthread_create(&D.th, NULL, dns_thread, NULL), 0);
    char text[160];
    snprintf(text, sizeof text, "nameserver 127.0.0.1:%d\noptions timeout:0.3 attempts:1\n", D.udp_port);
    write_file(conf_path, text);
}

static void dns_stop(void)
{
    atomic_store(&D.stop, true);
    pthread_join(D.th, NULL);
    evdns_close_server_port(D.port);
    event_base_free(D.base);
    close(D.fd);
}

static void dns_set(int mode, int ttl, int n, const char *const *addrs)
{
    pthread_mutex_lock(&D.mu);
    D.mode = mode;
    D.ttl = ttl;
    D.na = n;
    for (int i = 0; i < n; i++)
        inet_pton(AF_INET, addrs[i], &D.a[i]);
    pthread_mutex_unlock(&D.mu);
}

static void test_resolve_now(void **st)
{
    (void)st;
    sl_addrs as;
    char buf[SL_ADDR_STR_MAX];
    dns_start();
    assert_int_equal(sl__resolve_now("fixed.test", 80, conf_path, hosts_path, &as), 0);
    assert_int_equal(as.n, 2);
    assert_int_equal(as.ttl_s, 3600);
    sl__sockaddr_format((struct sockaddr *)&as.a[0], buf, sizeof buf);
    assert_true(!strcmp(buf, "127.0.0.1:80") || !strcmp(buf, "[::1]:80"));
    /* the hosts file first: no TTL */
    assert_int_equal(sl__resolve_now("local.test", 80, conf_path, hosts_path, &as), 0);
    assert_int_equal(as.ttl_s, 0);
    assert_int_equal(sl__resolve_now("nope.test", 80, conf_path, hosts_path, &as), -ENOENT);
    dns_set(SERVFAIL, 1, 0, NULL);
    assert_int_equal(sl__resolve_now("dyn.test", 80, conf_path, hosts_path, &as), -EAGAIN);
    dns_set(SILENT, 1, 0, NULL);   /* the resolver's own timeout (0.3 s) ends it */
    assert_int_equal(sl__resolve_now("dyn.test", 80, conf_path, hosts_path, &as), -EAGAIN);
    dns_set(ANSWER, 1, 0, NULL);   /* the name, without an address */
    assert_int_equal(sl__resolve_now("dyn.test", 80, conf_path, hosts_path, &as), -ENOENT);
    dns_stop();
}

/* ---- servers and upstreams by name ------------------------------------------------------------ */

static sl_runtime *rt;
static capture cap;
static sl_http_server *srv_a, *srv_b;
static int port;
static struct {
    char by;                  /* 'A' or 'B' */
    char host[96], peer[SL_HTTP_ADDR_STR_MAX];
    int family, peer_port;
    uint32_t peer_v4;
    bool loopback;
    int by_a, by_b, v4, v6;
} H;

static int h_who(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    (void)t;
    size_t n = 0;
    const char *host = sl_http_req_header(req, "host", &n);
    snprintf(H.host, sizeof H.host, "%.*s", host ? (int)n : 0, host ? host : "");
    sl_http_req_peer_str(req, H.peer, sizeof H.peer);
    socklen_t len = 0;
    const struct sockaddr *sa = sl_http_req_peer_addr(req, &len);
    H.family = sa ? sa->sa_family : 0;
    uint16_t pp;
    H.peer_v4 = sl_http_req_peer(req, &pp);
    H.peer_port = pp;
    H.loopback = sl_http_req_from_loopback(req);
    H.by = *(const char *)sl_http_req_arg(req);
    H.by_a += H.by == 'A';
    H.by_b += H.by == 'B';
    H.v4 += H.peer_v4 != 0;   /* on the dual-stack socket: [::ffff:127.0.0.1] */
    H.v6 += H.peer_v4 == 0;
    return sl_http_reply(req, 200, "text/plain", "ok", 2);
}

static const char A = 'A', B = 'B';

static sl_http_server *server_on(const char *listen, const char *who)
{
    sl_http_server *s;
    int rc = sl_http_server_new(&s, rt, &(sl_http_server_opts){ .listen = listen });
    if (rc)
        fail_msg("listen %s: %s", listen, strerror(-rc));
    assert_int_equal(sl_http_route(s, "GET", "/who", h_who, 0, (void *)who), 0);
    assert_int_equal(sl_http_server_start(s), 0);
    return s;
}

static bool have_ipv6_loopback(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static struct { sl_http_upstream *up; sl_http_resp r; int rc, i, n, errors; uint64_t until; bool calling; } U;

/* n calls of GET /who; every one must succeed */
#define CALLS(t, count)                                                                  \
    for (U.i = 0, U.n = (count); U.i < U.n; U.i++) {                                     \
        SL_AWAIT(t, U.rc, sl_http_call(t, &U.r, U.up, "GET", "/who", NULL, 0));          \
        if (U.rc || U.r.status != 200)                                                   \
            fail_msg("call: %s, status %d", strerror(-U.rc), U.r.status);               \
        sl_http_call_end(&U.r);                                                         \
    }

/* Calls (every 10 ms) until cond holds, at most 5 s; failed calls are counted. */
#define CALL_UNTIL(t, cond)                                                              \
    for (U.until = sl_now_ns() + 5 * SL_NS_PER_S; !(cond);) {                            \
        if (sl_now_ns() > U.until)                                                       \
            fail_msg("not within 5 s: %s", #cond);                                       \
        U.calling = !U.calling;   /* a call, then a sleep: one wait per line */         \
        SL_AWAIT(t, U.rc, U.calling ? sl_http_call(t, &U.r, U.up, "GET", "/who", NULL, 0) \
                                    : sl_sleep(t, 10 * SL_NS_PER_MS));                    \
        if (U.calling) {                                                                 \
            U.errors += U.rc != 0;                                                       \
            sl_http_call_end(&U.r);                                                      \
        }                                                                                \
    }

/* No lookup under way (freeing the upstream then leaks nothing). */
#define WAIT_NO_LOOKUP(t)                                                                \
    for (U.until = sl_now_ns() + 5 * SL_NS_PER_S; stats().resolving;) {                  \
        if (sl_now_ns() > U.until)                                                       \
            fail_msg("a lookup still under way after 5 s");                              \
        SL_AWAIT(t, U.rc, sl_sleep(t, 10 * SL_NS_PER_MS));                               \
    }

static sl_http_upstream_stats stats(void)
{
    sl_http_upstream_stats st;
    sl_http_upstream_stats_get(U.up, &st);
    return st;
}

/* A name of the hosts file with an IPv4 and an IPv6 address: two replicas,
 * both called; Host is the name as written; the server on [::] sees both
 * kinds of client. */
static int hosts_main(sl_task *t, void *arg)
{
    static char url[64];
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://local.test:%d", port);
    assert_int_equal(sl_http_upstream_new(&U.up, rt, url,
                                          &(sl_http_upstream_opts){ .hosts = hosts_path, .resolv_conf = conf_path }), 0);
    assert_int_equal(stats().replicas, 2);
    CALLS(t, 10);
    assert_int_equal(H.v4, 5);   /* fewest under way, round robin among equals */
    assert_int_equal(H.v6, 5);
    snprintf(url, sizeof url, "local.test:%d", port);
    assert_string_equal(H.host, url);
    assert_true(H.loopback);
    sl_http_upstream_free(U.up);
    /* an IPv6 literal */
    snprintf(url, sizeof url, "http://[::1]:%d", port);
    assert_int_equal(sl_http_upstream_new(&U.up, rt, url, NULL), 0);
    CALLS(t, 1);
    assert_int_equal(H.family, AF_INET6);
    assert_string_equal(H.host, url + 7);
    assert_true(H.loopback);
    assert_int_equal(H.peer_v4, 0);          /* the IPv4 form cannot say it */
    assert_true(H.peer_port > 0);
    assert_non_null(strstr(H.peer, "[::1]:"));
    sl_http_upstream_free(U.up);
    /* 127.0.0.1 on the dual-stack socket: ::ffff:127.0.0.1, and the IPv4 form has it */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&U.up, rt, url, NULL), 0);
    CALLS(t, 1);
    assert_int_equal(H.family, AF_INET6);
    assert_int_equal(H.peer_v4, INADDR_LOOPBACK);
    assert_true(H.loopback);
    sl_http_upstream_free(U.up);
    U.up = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_hosts_and_ipv6(void **st)
{
    (void)st;
    if (!have_ipv6_loopback()) {
        print_message("skipped: this machine has no ::1\n");
        skip();
    }
    memset(&H, 0, sizeof H);
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    srv_a = server_on("[::]:0", &A);
    port = sl_http_server_port(srv_a);
    assert_int_equal(rt_run_keep(rt, hosts_main, NULL), 0);
    sl_http_server_free(srv_a);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* A DNS name follows its answers: an address added joins at TTL expiry,
 * one dropped leaves, a failing resolver keeps the last ones, and a
 * failure of a replica has the name looked up again before its TTL. */
static int dns_main(sl_task *t, void *arg)
{
    static char url[64];
    static const char *one[] = { "127.0.0.1" }, *both[] = { "127.0.0.1", "127.0.0.2" }, *two[] = { "127.0.0.2" },
                      *dead[] = { "127.0.0.3" };
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://dyn.test:%d", port);
    dns_set(ANSWER, 1, 1, one);
    assert_int_equal(sl_http_upstream_new(&U.up, rt, url,
                                          &(sl_http_upstream_opts){ .hosts = hosts_path, .resolv_conf = conf_path,
                                                                    .resolve_min_ms = 100 }), 0);
    CALLS(t, 4);
    assert_int_equal(H.by_a, 4);
    assert_int_equal(stats().replicas, 1);
    /* a second address: it joins once the 1 s TTL ran out */
    dns_set(ANSWER, 1, 2, both);
    CALL_UNTIL(t, H.by_b > 0);
    assert_int_equal(stats().replicas, 2);
    assert_true(stats().resolved >= 1);
    {   /* both listed, each by its address (issue 21) */
        sl_http_replica l[2];
        char a[32], b[32];
        snprintf(a, sizeof a, "127.0.0.1:%d", port);
        snprintf(b, sizeof b, "127.0.0.2:%d", port);
        assert_int_equal(sl_http_upstream_replicas(U.up, l, 2), 2);
        assert_true((!strcmp(l[0].addr, a) && !strcmp(l[1].addr, b)) ||
                    (!strcmp(l[0].addr, b) && !strcmp(l[1].addr, a)));
    }
    /* the first one leaves */
    dns_set(ANSWER, 1, 1, two);
    CALL_UNTIL(t, stats().replicas == 1);
    {   /* a retired replica is not listed, and cannot be called by its address */
        sl_http_replica l[2];
        char a[32], b[32];
        snprintf(a, sizeof a, "127.0.0.1:%d", port);
        snprintf(b, sizeof b, "127.0.0.2:%d", port);
        assert_int_equal(sl_http_upstream_replicas(U.up, l, 2), 1);
        assert_string_equal(l[0].addr, b);
        assert_int_equal(sl_http_call_to(t, &U.r, U.up, a, "GET", "/who", NULL, 0, 0), -ENOENT);
        sl_http_call_end(&U.r);
    }
    H.by_a = H.by_b = 0;
    CALLS(t, 5);
    assert_int_equal(H.by_b, 5);
    /* the resolver fails, then says the name is gone: the last address stays */
    dns_set(SERVFAIL, 1, 0, NULL);
    CALL_UNTIL(t, stats().resolve_failed >= 1);
    dns_set(NXDOMAIN, 1, 0, NULL);
    CALL_UNTIL(t, stats().resolve_failed >= 2);
    CALLS(t, 3);
    assert_int_equal(stats().replicas, 1);
    assert_int_equal(U.errors, 0);
    assert_true(cap.count > 0);   /* reported once it failed */
    WAIT_NO_LOOKUP(t);
    sl_http_upstream_free(U.up);
    /* a long TTL, an address that refuses: the failures have the name
     * looked up again (after resolve_min_ms), long before its TTL */
    dns_set(ANSWER, 3600, 1, dead);
    assert_int_equal(sl_http_upstream_new(&U.up, rt, url,
                                          &(sl_http_upstream_opts){ .hosts = hosts_path, .resolv_conf = conf_path,
                                                                    .resolve_min_ms = 100 }), 0);
    dns_set(ANSWER, 3600, 1, two);
    H.by_b = 0;
    U.errors = 0;
    CALL_UNTIL(t, H.by_b > 0);
    assert_true(U.errors >= 1);
    assert_int_equal(stats().replicas, 1);
    WAIT_NO_LOOKUP(t);
    sl_http_upstream_free(U.up);
    U.up = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_dns_followed(void **st)
{
    (void)st;
    memset(&H, 0, sizeof H);
    memset(&U, 0, sizeof U);
    memset(&cap, 0, sizeof cap);
    dns_start();
    rt = rt_new(1, &cap);
    srv_a = server_on("127.0.0.1:0", &A);
    port = sl_http_server_port(srv_a);
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.2:%d", port);
    srv_b = server_on(listen, &B);
    assert_int_equal(rt_run_keep(rt, dns_main, NULL), 0);
    sl_http_server_free(srv_a);
    sl_http_server_free(srv_b);
    assert_int_equal(sl_runtime_free(rt), 0);
    dns_stop();
}

/* Errors at start say which name and what is wrong; listeners take names. */
static void test_start_errors_and_listen_names(void **st)
{
    (void)st;
    sl_http_upstream *up;
    sl_http_upstream_opts o = { .hosts = hosts_path, .resolv_conf = conf_path };
    sl_runtime *r = rt_new(1, NULL);
    dns_start();
    assert_int_equal(sl_http_upstream_new(&up, r, "http://127.0.0.1:1,http://nope.test:80", &o), -ENOENT);
    assert_string_equal(sl_http_upstream_last_error(), "nope.test: no such name (or no address for it) (at start)");
    dns_set(SILENT, 1, 0, NULL);
    assert_int_equal(sl_http_upstream_new(&up, r, "http://dyn.test:80", &o), -EAGAIN);
    assert_string_equal(sl_http_upstream_last_error(),
                        "dyn.test: no answer from the resolver (timeout or server failure) (at start)");
    assert_int_equal(sl_http_upstream_new(&up, r, "http://dyn.test:0", &o), -EINVAL);
    assert_string_equal(sl_http_upstream_last_error(), "'http://dyn.test:0': bad port");
    assert_int_equal(sl_http_upstream_new(&up, r, "http://inventory svc:80", &o), -EINVAL);
    assert_string_equal(sl_http_upstream_last_error(), "'http://inventory svc:80': bad host");
    assert_int_equal(sl_http_upstream_new(&up, r, "http://a.test:80/x", &o), -EINVAL);
    assert_int_equal(sl_http_upstream_new(&up, r, "fixed.test:80", &o), -EINVAL);
    assert_string_equal(sl_http_upstream_last_error(), "'fixed.test:80': not http://HOST:PORT");
    /* both addresses of a DNS name are replicas */
    assert_int_equal(sl_http_upstream_new(&up, r, "http://fixed.test:80/", &o), 0);
    sl_http_upstream_free(up);
    /* listeners: names from the environment's files */
    setenv("SLUICE_HOSTS", hosts_path, 1);
    setenv("SLUICE_RESOLV_CONF", conf_path, 1);
    sl_http_server *s;
    assert_int_equal(sl_http_server_new(&s, r, &(sl_http_server_opts){ .listen = "two.test:0" }), 0);
    assert_int_equal(sl_http_server_start(s), 0);
    int fd = cli_connect_to("127.0.0.2", sl_http_server_port(s));   /* listening there */
    close(fd);
    sl_http_server_free(s);
    assert_int_equal(sl_http_server_new(&s, r, &(sl_http_server_opts){ .listen = "nope.test:0" }), -ENOENT);
    assert_int_equal(sl_http_server_new(&s, r, &(sl_http_server_opts){ .listen = "[::1:0" }), -EINVAL);
    assert_int_equal(sl_http_server_new(&s, r, &(sl_http_server_opts){ .listen = "bad_name:0" }), -EINVAL);
    unsetenv("SLUICE_HOSTS");
    unsetenv("SLUICE_RESOLV_CONF");
    dns_stop();
    assert_int_equal(sl_runtime_free(r), 0);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_hosts_file),
        cmocka_unit_test(test_resolve_now),
        cmocka_unit_test(test_hosts_and_ipv6),
        cmocka_unit_test(test_dns_followed),
        cmocka_unit_test(test_start_errors_and_listen_names),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
