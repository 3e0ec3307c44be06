/* server.c: listeners, admission, request tasks, graceful shutdown. */
#include <arpa/inet.h>
#include <errno.h>
#include <time.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "client_int.h"
#include "resolve.h"
#include "server_int.h"
#include "trace_int.h"
#include "sl_diag.h"
#include "sl_trace.h"
#include "sl_log.h"

#define DEF(v, d) ((v) ? (v) : (d))
#define LISTEN_BACKLOG 4096

static int builtin_healthz(sl_task *t, void *arg);
static int builtin_readyz(sl_task *t, void *arg);
static void queue_tick(evutil_socket_t fd, short what, void *arg);

static sl_admit_cfg admit_cfg(const sl_http_server_opts *o)
{
    return (sl_admit_cfg){ .adaptive = o->admission == SL_HTTP_ADMISSION_ADAPTIVE,
                           .min_limit = o->limit_min, .max_limit = o->max_inflight,
                           .initial_limit = o->limit_initial,
                           .target_ns = (uint64_t)o->queue_target_ms * SL_NS_PER_MS,
                           .interval_ns = (uint64_t)o->queue_interval_ms * SL_NS_PER_MS,
                           .max_wait_ns = (uint64_t)o->queue_wait_ms * SL_NS_PER_MS };
}

/* HOST:PORT (addr.h); a name is looked up now (the hosts file, then DNS):
 * the server listens on its first address. */
static int parse_listen(sl_http_server *s, const char *addr)
{
    sl_hostport hp;
    int rc = sl__hostport_parse(&hp, addr, strlen(addr), true, NULL);
    if (rc < 0)
        return rc;
    s->port = hp.port;
    if (hp.is_name) {
        sl_addrs *as = malloc(sizeof *as);
        if (!as)
            return -ENOMEM;
        rc = sl__resolve_now(hp.host, hp.port, NULL, NULL, as);
        if (rc == 0) {
            memcpy(&s->addr, &as->a[0], as->len[0]);
            s->addr_len = as->len[0];
        }
        free(as);
        return rc;
    }
    s->addr = hp.sa;
    s->addr_len = hp.salen;
    return 0;
}

/* The refusals' families: the server's by reason (srv_shed), and its
 * upstreams' fail-fast by reason (client_int.h), resolved once so that
 * counting a refusal is a store, not a lookup. */
static int refusals_register(sl_http_server *s)
{
    static const char *const reasons[SHED_COUNT] = { "queue_full", "queue_delay", "budget", "upstream",
                                                     "queue_time", "draining" };
    static const char *const by_reason[] = { "reason", NULL };
    static const char *const by_up[] = { "upstream", "reason", NULL };
    sl_metric *f;
    int rc = sl_metric_new(s->metrics, &f, SL_METRIC_COUNTER, "sluice_http_admission_shed_total",
                           &(sl_metric_opts){ .help = "Requests refused with 503 before a handler ran, by "
                                              "reason: queue_full, queue_delay (waited in the queue past "
                                              "its time bound, then refused), budget (less left than "
                                              "the route needs), "
                                              "upstream (the upstream the route calls would refuse it), "
                                              "queue_time (would have waited past the queue's time "
                                              "bound: refused before it was queued), draining (the "
                                              "server is stopping).", .labels = by_reason });
    for (int i = 0; rc == 0 && i < SHED_COUNT; i++)
        rc = sl_metric_series(f, (const char *[]){ reasons[i] }, &s->m_shed[i]);
    if (rc == 0)
        rc = sl_metric_new(s->metrics, &s->m_up_failfast, SL_METRIC_COUNTER, "sluice_upstream_failfast_total",
                           &(sl_metric_opts){ .help = "Calls to upstreams refused here before a byte was sent, "
                                              "by upstream and reason: latency (less budget left than the "
                                              "upstream's median call), throttle (the upstream has been "
                                              "answering 503).", .labels = by_up, .max_series = 256 });
    return rc < 0 ? rc : 0;
}

int sl_http_server_new(sl_http_server **out, sl_runtime *rt, const sl_http_server_opts *opts)
{
    if (!out || !rt)
        return -EINVAL;
    sl_http_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->claim = -1;
    s->rt = rt;
    s->o = opts ? *opts : (sl_http_server_opts){ 0 };
    sl_http_server_opts *o = &s->o;
    o->timeout_ms = DEF(o->timeout_ms, 10000);
    o->header_timeout_ms = DEF(o->header_timeout_ms, 10000);
    o->idle_timeout_ms = DEF(o->idle_timeout_ms, 60000);
    o->max_conns = DEF(o->max_conns, 10000);
    o->max_inflight = DEF(o->max_inflight, 1024);
    o->max_queue = DEF(o->max_queue, 1024);
    o->max_pipeline = DEF(o->max_pipeline, 16);
    o->retry_after_s = DEF(o->retry_after_s, 1);
    o->grace_ms = DEF(o->grace_ms, 5000);
    o->prestop_ms = DEF(o->prestop_ms, 2000);
    o->max_undo = DEF(o->max_undo, 256);
    o->flood_batch_us = DEF(o->flood_batch_us, 500);
    o->queue_target_ms = DEF(o->queue_target_ms, 5);
    o->queue_interval_ms = DEF(o->queue_interval_ms, 100);
    /* a floor that is not too low: when latency rises for reasons other
     * than this server's own concurrency (a shared core), a tiny limit
     * only throws goodput away (Netflix's gradient uses 20) */
    o->limit_min = DEF(o->limit_min, o->max_inflight < 16 ? o->max_inflight : 16);
    o->limit_initial = DEF(o->limit_initial, 32);
    int rc = parse_listen(s, o->listen ? o->listen : "127.0.0.1:8080");
    if (rc == 0 && o->name && sl__hop_name_set(s->hop, o->name) < 0)
        rc = -EINVAL;
    sl_admit_cfg ac = admit_cfg(o);
    if (o->debug < SL_HTTP_DEBUG_LOOPBACK || o->debug > SL_HTTP_DEBUG_OFF ||
        (o->prestop_ms > 600000u && o->prestop_ms != SL_HTTP_PRESTOP_OFF) ||
        (o->flood_batch_us > 10000u && o->flood_batch_us != SL_HTTP_FLOOD_BATCH_OFF) ||
        o->admission < SL_HTTP_ADMISSION_ADAPTIVE || o->admission > SL_HTTP_ADMISSION_FIXED ||
        sl__admit_check(&ac) < 0)
        rc = -EINVAL;
    if (rc == 0)
        rc = sl_router_new(&s->router);
    if (rc == 0 && !o->no_builtin) {
        size_t st = sl__builtin_state_size();
        if ((rc = sl_http_route(s, "GET", "/healthz", builtin_healthz, 0, NULL)) == 0 &&
            (rc = sl_http_route(s, "GET", "/livez", builtin_healthz, 0, NULL)) == 0 &&
            (rc = sl_http_route(s, "GET", "/readyz", builtin_readyz, 0, s)) == 0 &&
            (rc = sl_http_route(s, "GET", "/metrics", sl__builtin_metrics, st, NULL)) == 0 &&
            (rc = sl_http_route(s, "GET", "/debug/tasks", sl__builtin_debug_tasks, st, NULL)) == 0 &&
            (rc = sl_http_route(s, "GET", "/debug/deadlocks", sl__builtin_debug_deadlocks, st, NULL)) == 0)
            rc = sl_http_route(s, "GET", "/debug/channels", sl__builtin_debug_channels, st, NULL);
        /* probes and scrapes are answered however busy the server is */
        for (route_info *ri = s->routes; rc == 0 && ri; ri = ri->next)
            if (!strcmp(ri->pattern, "/healthz") || !strcmp(ri->pattern, "/metrics") ||
                !strcmp(ri->pattern, "/livez") || !strcmp(ri->pattern, "/readyz"))
                ri->lane = SL_HTTP_LANE_CONTROL;
    }
    if (rc < 0) {
        sl_http_server_free(s);
        return rc;
    }
    s->n = sl_runtime_threads(rt);
    s->sr = calloc((size_t)s->n, sizeof *s->sr);
    if (!s->sr) {
        sl_http_server_free(s);
        return -ENOMEM;
    }
    for (int i = 0; i < s->n; i++) {
        s->sr[i].srv = s;
        s->sr[i].r = sl_runtime_reactor(rt, i);
        s->sr[i].fd = -1;
    }
    if ((rc = sl_metrics_new(&s->metrics, rt)) < 0 || (rc = sl__builtin_register(s)) < 0 ||
        (rc = refusals_register(s)) < 0) {
        sl_http_server_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static void route_info_free(route_info *ri)
{
    free(ri->method);
    free(ri->pattern);
    free(ri);
}

int sl_http_route(sl_http_server *srv, const char *method, const char *pattern,
                  sl_step_fn handler, size_t state_size, void *arg)
{
    if (srv->started)
        return -EBUSY;
    if (!handler)
        return -EINVAL;
    route_info *ri = malloc(sizeof *ri);
    if (!ri)
        return -ENOMEM;
    *ri = (route_info){ .handler = handler, .state_size = state_size, .arg = arg };
    int rc = -ENOMEM;
    if ((ri->method = strdup(method ? method : "")) && (ri->pattern = strdup(pattern ? pattern : "")))
        rc = sl_router_add(srv->router, method, pattern, handler, ri);
    if (rc < 0) {
        route_info_free(ri);
        return rc;
    }
    ri->next = srv->routes;
    srv->routes = ri;
    return 0;
}

int sl_http_route_set(sl_http_server *srv, const char *method, const char *pattern,
                      const sl_http_route_opts *opts)
{
    if (!srv || !method || !pattern || !opts || opts->lane < SL_HTTP_LANE_NORMAL ||
        opts->lane > SL_HTTP_LANE_CONTINUE || opts->need_ms > 86400000u)
        return -EINVAL;
    if (srv->started)
        return -EBUSY;
    if (opts->upstream && sl__upstream_runtime(opts->upstream) != srv->rt)
        return -EXDEV;
    for (route_info *ri = srv->routes; ri; ri = ri->next)
        if (!strcmp(ri->method, method) && !strcmp(ri->pattern, pattern)) {
            ri->lane = opts->lane;
            ri->need_ms = opts->need_ms;
            ri->no_budget_check = opts->no_budget_check;
            ri->upstream = opts->upstream;
            return 0;
        }
    return -ENOENT;
}

int sl_http_server_add_upstream(sl_http_server *srv, const char *name, sl_http_upstream *up)
{
    if (!srv || !name || !up)
        return -EINVAL;
    size_t len = strlen(name);
    if (!len || len >= sizeof srv->ups->name || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                              "abcdefghijklmnopqrstuvwxyz0123456789_.-") != len)
        return -EINVAL;   /* it goes into a label value unescaped */
    if (srv->started)
        return -EBUSY;
    if (sl__upstream_runtime(up) != srv->rt)
        return -EXDEV;
    for (int i = 0; i < srv->nups; i++)
        if (!strcmp(srv->ups[i].name, name))
            return -EEXIST;
    srv_upstream *ups = realloc(srv->ups, (size_t)(srv->nups + 1) * sizeof *ups);
    if (!ups)
        return -ENOMEM;
    srv->ups = ups;
    memcpy(ups[srv->nups].name, name, len + 1);
    ups[srv->nups++].up = up;
    sl__up_metrics m = { .dur = srv->m_up_dur, .attempts = srv->m_up_attempts, .failfast = srv->m_up_failfast };
    memcpy(m.name, name, len + 1);
    sl__upstream_set_metrics(up, &m);
    return 0;
}

/* ---- listening --------------------------------------------------------------------- */

void (*sl__listen_pause)(void);

static int bind_one(sl_http_server *s)
{
    struct sockaddr_storage sa = s->addr;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    /* a deep accept queue (the kernel caps it at net.core.somaxconn): a
     * burst of new connections waits there while the reactor is busy,
     * instead of having its SYNs dropped and retried a second later */
    /* the port: as asked, or the one the first socket picked */
    if (sa.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)s->port);
    else
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)s->port);
    if (bind(fd, (struct sockaddr *)&sa, s->addr_len) < 0 || listen(fd, LISTEN_BACKLOG) < 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    if (s->port == 0) {   /* the first socket picked the port; the others share it */
        socklen_t len = sizeof sa;
        getsockname(fd, (struct sockaddr *)&sa, &len);
        s->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    }
    return fd;
}

/* SO_REUSEPORT is for this process's reactors: another process listening
 * on the port would silently split the traffic and the state with us. Two
 * checks, before the binds:
 *
 * The claim, against another sluice server: an abstract Unix socket named
 * by the address ("sluice-listen 127.0.0.1:8081"), bound for as long as the
 * server lives. Binding a name is atomic, so of two processes starting on
 * one address in the same instant exactly one gets it (the other:
 * -EADDRINUSE) -- a probe and then the binds were not atomic, and both
 * could pass. The abstract namespace belongs to the network namespace, as
 * ports do, and the kernel drops the name when the process dies (kill -9
 * included): nothing to clean up, nothing stale.
 *
 * The probe, against any other listener: a socket bound with SO_REUSEADDR
 * alone conflicts with a *listening* socket on the port, and not with one
 * merely bound (a test harness's port reservation): bind one, and
 * -EADDRINUSE if someone listens. (Not atomic with the binds that follow;
 * the claim covers sluice servers, and a wildcard and a specific address
 * of one port are two names: such a pair started in the same instant still
 * has only the probe.) */
static int claim_port(sl_http_server *s)
{
    if (s->port == 0)
        return 0;   /* a port the kernel picks is free */
    struct sockaddr_storage sa = s->addr;
    if (sa.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)s->port);
    else
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)s->port);
    char addr[SL_ADDR_STR_MAX];
    sl__sockaddr_format((struct sockaddr *)&sa, addr, sizeof addr);
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    /* sun_path[0] == '\0': the abstract namespace, the name not terminated */
    int len = snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "sluice-listen %s", addr);
    if (len < 0 || (size_t)len >= sizeof un.sun_path - 1)
        return -ENAMETOOLONG;   /* cannot happen: an address is < 64 bytes */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&un, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)len)) < 0) {
        int e = errno;
        close(fd);
        return -e;   /* EADDRINUSE: another server of this network namespace has it */
    }
    s->claim = fd;
    return 0;
}

static void claim_drop(sl_http_server *s)
{
    if (s->claim >= 0)
        close(s->claim);
    s->claim = -1;
}

static int probe_port(sl_http_server *s)
{
    if (s->port == 0)
        return 0;
    struct sockaddr_storage sa = s->addr;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (sa.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)s->port);
    else
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)s->port);
    int rc = bind(fd, (struct sockaddr *)&sa, s->addr_len) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *a, int alen, void *arg)
{
    srv_reactor *sr = arg;
    (void)l;
    (void)alen;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, 1 /* TCP_NODELAY */, &one, sizeof one);
    sl__conn_accept(sr, fd, a);
    if (sr->nconns >= sr->srv->o.max_conns)
        evconnlistener_disable(sr->lev);   /* resumes when one closes */
}

static void retry_accept(evutil_socket_t fd, short what, void *arg)
{
    srv_reactor *sr = arg;
    (void)fd;
    (void)what;
    if (!sr->finished && sr->lev && sr->nconns < sr->srv->o.max_conns)
        evconnlistener_enable(sr->lev);
}

/* EMFILE and friends: pause accepting for a moment instead of spinning. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    srv_reactor *sr = arg;
    evconnlistener_disable(l);
    struct timeval tv = { 0, 100000 };
    evtimer_add(sr->accept_retry, &tv);
}

/* The message that starts listening on a reactor. A server freed before its
 * runtime ever ran cancels it (the runtime still runs it when freed). */
struct start_msg {
    srv_reactor *sr;
    bool cancelled;
};

static void start_on_reactor(void *arg)
{
    struct start_msg *m = arg;
    srv_reactor *sr = m->sr;
    bool cancelled = m->cancelled;
    free(m);
    if (cancelled)
        return;
    sr->start = NULL;
    struct event_base *base = sl_reactor_base(sr->r);
    /* backlog 0: the socket listens already; -1 would make libevent call
     * listen(fd, 128) again and shrink the queue (issue 14: SYNs dropped
     * under a burst, requests unanswered for seconds) */
    sr->lev = evconnlistener_new(base, accept_cb, sr, LEV_OPT_CLOSE_ON_FREE, 0, sr->fd);
    sr->accept_retry = evtimer_new(base, retry_accept, sr);
    sr->queue_ev = evtimer_new(base, queue_tick, sr);
    if (!sr->lev || !sr->accept_retry || !sr->queue_ev) {
        sl_report(sr->r, "sluice: http: reactor %d cannot listen (out of memory)", sl_reactor_id(sr->r));
        return;
    }
    sr->fd = -1;   /* the listener owns it */
    evconnlistener_set_error_cb(sr->lev, accept_error_cb);
}

int sl_http_server_start(sl_http_server *s)
{
    if (s->started)
        return -EALREADY;
    int nroutes = 0;
    for (route_info *ri = s->routes; ri; ri = ri->next)
        ri->idx = nroutes++;
    sl_admit_cfg ac = admit_cfg(&s->o);
    for (int i = 0; i < s->n; i++) {
        srv_reactor *sr = &s->sr[i];
        free(sr->need);
        free(sr->rser);
        sr->rser = NULL;
        if (!(sr->need = calloc((size_t)nroutes + 1, sizeof *sr->need)) ||
            !(sr->rser = calloc((size_t)nroutes + 1, sizeof *sr->rser)))
            return -ENOMEM;
        sr->nneed = nroutes;
        sl__admit_init(&sr->adm, &ac, sl_now_ns());
    }
    sl__ignore_sigpipe();
    int rc = claim_port(s);
    if (rc < 0)
        return rc;
    if ((rc = probe_port(s)) < 0) {
        claim_drop(s);
        return rc;
    }
    if (sl__listen_pause)
        sl__listen_pause();
    for (int i = 0; i < s->n; i++) {
        int fd = bind_one(s);
        if (fd < 0) {
            for (int j = 0; j < i; j++) {
                close(s->sr[j].fd);
                s->sr[j].fd = -1;
            }
            claim_drop(s);
            return fd;
        }
        s->sr[i].fd = fd;
    }
    if (!s->hop[0]) {   /* unnamed: the hop is where it listens (set before
                         * the reactors start: they only read it) */
        struct sockaddr_storage sa = s->addr;
        if (sa.ss_family == AF_INET6)
            ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)s->port);
        else
            ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)s->port);
        char buf[SL_ADDR_STR_MAX];
        sl__sockaddr_format((struct sockaddr *)&sa, buf, sizeof buf);
        (void)sl__hop_name_set(s->hop, buf);
    }
    sl__reply_causes_init(s);
    for (int i = 0; i < s->n; i++) {
        struct start_msg *m = calloc(1, sizeof *m);
        if (m) {
            m->sr = &s->sr[i];
            s->sr[i].start = m;
        }
        if (!m || sl_reactor_post(s->sr[i].r, start_on_reactor, m) < 0) {
            free(m);
            s->sr[i].start = NULL;
            for (int j = 0; j < i; j++)   /* the posted ones stand down */
                if (s->sr[j].start)
                    s->sr[j].start->cancelled = true;
            return -ENOMEM;
        }
    }
    s->started = true;
    return 0;
}

int sl_http_server_port(const sl_http_server *s) { return s->port; }

sl_metrics *sl_http_server_metrics(sl_http_server *s) { return s ? s->metrics : NULL; }

/* ---- requests ---------------------------------------------------------------------- */

/* The handler runs through this step, which notes its final result. */
static int req_step(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    int rc = req->route->handler(t, req);
    if (rc != SL_PENDING && !req->replied && req->c && req->c->st != CONN_GONE) {
        if (rc == -ETIMEDOUT || (req->ctx && sl_ctx_err(req->ctx) == -ETIMEDOUT))
            sl_http_reply_error(req, 504, "deadline_exceeded", "the request's budget ran out");
        else if (req->ctx && sl_ctx_cause(req->ctx, NULL) == SL_CAUSE_SHUTDOWN)
            sl_http_reply_error(req, 503, "shutting_down", "the server is shutting down");
        else
            sl_http_reply_error(req, 500, "internal", rc < 0 ? "the handler failed: %s"
                                : "the handler ended without an answer%s", rc < 0 ? strerror(-rc) : "");
    }
    return rc;
}

_Static_assert(offsetof(sl_http_req, state) % _Alignof(max_align_t) == 0, "request state aligned for any type");

/* The handler task's state destructor: the request, with its own type
 * (calling sl__srv_task_ended through a cast function pointer would be
 * undefined behaviour, issue 19). */
static void task_ended(void *req)
{
    sl__srv_task_ended(req);
}

static void start_req(sl_http_req *req)
{
    srv_reactor *sr = req->sr;
    int rc = sl__trace_req_ctx(req);
    if (rc == 0)
        rc = sl_go_mem(req->ctx, req_step, req, &req->task_mem, &req->task,
                       &(sl_spawn_opts){ .name = req->match.pattern,
                                         .state_free = task_ended });
    if (rc < 0) {
        sl_http_reply_error(req, 500, "internal", "cannot start the handler: %s", strerror(-rc));
        return;
    }
    sl__req_set_run(req, REQ_RUNNING);
    req->t_run = sl_now_ns();
    if (++sr->inflight > sr->st.inflight_peak)
        sr->st.inflight_peak = sr->inflight;
    req->inflight_at = sr->inflight;
    if (sl_trace_on(sr->r))
        sl_trace_async(sr->r, 'b', "http", req->match.pattern, sl_traceparent_tag(&req->trace), req->method);
    SL_LIST_PUSH_FRONT(&sr->running, req, rlink);
}

/* ---- admission (docs/net.md, "Admission"; the controller is admit.c) ------------------ */

static bool adaptive(const srv_reactor *sr)
{
    return sr->srv->o.admission == SL_HTTP_ADMISSION_ADAPTIVE;
}

/* Whether a request of route ri can still finish within its budget
 * (ending at deadline): 0 if so, else the status that refuses it (504: its
 * budget is gone; 503: less is left than its route needs). */
static int budget_refusal_ri(const srv_reactor *sr, const route_info *ri, uint64_t deadline, uint64_t now)
{
    if (!adaptive(sr) || !ri || ri->lane == SL_HTTP_LANE_CONTROL || ri->lane == SL_HTTP_LANE_UNDO ||
        ri->no_budget_check)
        return 0;
    if (now >= deadline)
        return 504;
    uint64_t need = ri->need_ms ? (uint64_t)ri->need_ms * SL_NS_PER_MS : sl__admit_need(&sr->need[ri->idx], now);
    return deadline - now < need ? 503 : 0;
}

static int budget_refusal(const sl_http_req *req, uint64_t now)
{
    return budget_refusal_ri(req->sr, req->route, req->deadline, now);
}

void sl__srv_shed(srv_reactor *sr, srv_shed why)
{
    sr->st.shed_by[why]++;
    if (sr->srv->m_shed[why])
        sl__series_inc_at(sr->srv->m_shed[why], (int)(sr - sr->srv->sr));
}

void sl__srv_shed_queue(srv_reactor *sr, srv_shed why)
{
    sl__srv_shed(sr, why);
    sl__admit_refused(&sr->adm);   /* is the queue flooded? */
}

/* A flood costs the core per wake-up, not per request: a refusal is a
 * recv and a send, but the wake-up that brings it (an epoll_wait, the
 * precise timer's timerfd_settime, a switch from whatever process ran)
 * costs as much again, and on a core shared with the services this one
 * calls, each wake-up preempts them (the chain at 3 C: inventory and
 * payment switched 1.3-2.2 times per 201 against 0.55 in the closed
 * loop, and their CPU per 201 1.15-1.46 x). So while flooded the first
 * read of a loop pass sleeps out the rest of the period: the reactor
 * polls once a period, and what came meanwhile is one batch. Never when
 * not flooded (a quiet server answers at once), and a pass told apart by
 * libevent's cached time (set once a pass, after its poll). */
void sl__srv_batch(srv_reactor *sr)
{
    uint32_t us = sr->srv->o.flood_batch_us;
    if (!sr->adm.flooded || us == SL_HTTP_FLOOD_BATCH_OFF)
        return;
    struct timeval pass;
    if (event_base_gettimeofday_cached(sl_reactor_base(sr->r), &pass) < 0 ||
        (pass.tv_sec == sr->batch_pass.tv_sec && pass.tv_usec == sr->batch_pass.tv_usec))
        return;   /* not the first read of this pass */
    sr->batch_pass = pass;
    uint64_t now = sl_now_ns(), period = (uint64_t)us * 1000;
    if (now - sr->batch_end < period) {
        uint64_t ns = period - (now - sr->batch_end);
        struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
        nanosleep(&ts, NULL);
        sr->st.batch_naps++;
        now = sl_now_ns();
    }
    sr->batch_end = now;
}

static void refuse(sl_http_req *req, int status)
{
    srv_reactor *sr = req->sr;
    if (status == 504) {
        sr->st.expired++;
        sl__reply_static(req, 504, "deadline_exceeded", "the budget ran out before the request started");
        return;
    }
    sr->st.shed++;
    sl_trace_instant(sr->r, "http", "shed", req->method);
    sl__reply_static(req, 503, "overloaded", "too many requests in flight; retry later");
}

int sl__srv_precheck(srv_reactor *sr, const route_info *ri, uint64_t now, uint64_t deadline,
                     const char **code, const char **msg)
{
    const sl_http_server_opts *o = &sr->srv->o;
    int status = budget_refusal_ri(sr, ri, deadline, now);
    if (status == 504) {
        sr->st.expired++;
        *code = "deadline_exceeded";
        *msg = "the budget ran out before the request started";
        return 504;
    }
    if (status == 503) {
        sr->st.shed++;
        sl__srv_shed(sr, SHED_BUDGET);
        *code = "overloaded";
        *msg = "less budget left than this route needs; retry later";
        return 503;
    }
    /* a full queue refuses a NORMAL request now (sl__srv_admit would) */
    if (ri->lane == SL_HTTP_LANE_NORMAL && sr->queued >= o->max_queue &&
        sr->inflight >= sl__admit_limit(&sr->adm)) {
        sl__admit_arrive(&sr->adm);
        sr->st.shed++;
        sl__srv_shed_queue(sr, SHED_QUEUE_FULL);
        *code = "overloaded";
        *msg = "too many requests in flight; retry later";
        return 503;
    }
    /* it would have to wait, longer than the queue's bound at the rate
     * the server drains it: refused now, before it is read, copied and
     * queued to be refused later (or started late) */
    if (ri->lane == SL_HTTP_LANE_NORMAL && (sr->queue.head || sr->inflight >= sl__admit_limit(&sr->adm)) &&
        sl__admit_wait_exceeds(&sr->adm, sr->queued)) {
        sl__admit_arrive(&sr->adm);
        sr->st.shed++;
        sl__srv_shed_queue(sr, SHED_QUEUE_TIME);
        *code = "overloaded";
        *msg = "too many requests in flight; retry later";
        return 503;
    }
    /* the upstream it needs would refuse its call here: no work is begun
     * that the refusal would throw away (an order row written, then
     * failed) */
    if (ri->upstream && ri->lane == SL_HTTP_LANE_NORMAL && adaptive(sr) &&
        sl__upstream_would_refuse(ri->upstream, sr->r, deadline, now)) {
        sr->st.shed++;
        sl__srv_shed(sr, SHED_UPSTREAM);
        *code = "overloaded";
        *msg = "an upstream this route needs is refusing; retry later";
        return 503;
    }
    return 0;
}

/* While requests wait, the queue is looked at every queue target (at
 * least 1 ms) even when nothing else happens on the reactor: a waiter
 * behind requests that run for a long time must still meet the queue's
 * time bound and its own deadline, not wait for a slot that does not
 * come. */
static void arm_queue_tick(srv_reactor *sr)
{
    if (!sr->queue_ev || evtimer_pending(sr->queue_ev, NULL))
        return;
    uint32_t ms = sr->srv->o.queue_target_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    evtimer_add(sr->queue_ev, &tv);
}

static void enqueue(srv_reactor *sr, sl_http_req *req, uint64_t now)
{
    sl__req_set_run(req, REQ_QUEUED);
    req->t_queued = now;
    SL_LIST_PUSH_BACK(&sr->queue, req, qlink);
    sr->queued++;
    arm_queue_tick(sr);
}

void sl__srv_unqueue(sl_http_req *req)
{
    srv_reactor *sr = req->sr;
    SL_LIST_REMOVE(&sr->queue, req, qlink);
    sr->queued--;
    sl__req_set_run(req, REQ_PARSED);
}

/* Tells the controller how long the oldest waiter waited, and refuses
 * the oldest while it says they waited too long (past the queue's time
 * bound). A waiter queued this very turn counts as waiting
 * (1 ns): the drain rate needs to know the queue was not empty. */
static void sweep(srv_reactor *sr, uint64_t now)
{
    while (sr->queue.head &&
           sl__admit_observe(&sr->adm, now, now > sr->queue.head->t_queued ? now - sr->queue.head->t_queued : 1)) {
        sl_http_req *req = sr->queue.head;
        sl__srv_unqueue(req);
        sl__srv_shed_queue(sr, SHED_QUEUE_DELAY);   /* it waited, then was refused */
        refuse(req, 503);
    }
    if (!sr->queue.head)
        sl__admit_observe(&sr->adm, now, 0);
}

/* Load shedding: an adaptive number run, others wait as long as the
 * queue's time bound lets them, the rest are told at once to come back
 * later. */
void sl__srv_admit(sl_http_req *req)
{
    srv_reactor *sr = req->sr;
    const sl_http_server_opts *o = &sr->srv->o;
    int lane = req->route ? req->route->lane : SL_HTTP_LANE_NORMAL;
    uint64_t now = sl_now_ns();
    int status;
    if (lane == SL_HTTP_LANE_CONTROL) {
        start_req(req);
    } else if (lane == SL_HTTP_LANE_UNDO && sr->undo < o->max_undo) {
        start_req(req);
        if (req->run == REQ_RUNNING) {
            req->undo_slot = true;
            sr->undo++;
            sr->st.undo_started++;
        }
    } else if ((status = budget_refusal(req, now)) != 0) {
        if (status == 503)
            sl__srv_shed(sr, SHED_BUDGET);
        refuse(req, status);
    } else if (lane == SL_HTTP_LANE_CONTINUE && sr->inflight < o->max_inflight) {
        start_req(req);
    } else {
        if (lane == SL_HTTP_LANE_NORMAL)   /* demand, for CoDel's "is it growing" */
            sl__admit_arrive(&sr->adm);
        if (sr->inflight < sl__admit_limit(&sr->adm) && !sr->queue.head) {
            start_req(req);
        } else if (lane == SL_HTTP_LANE_NORMAL && sl__admit_wait_exceeds(&sr->adm, sr->queued)) {
            /* the queue grew since its head was parsed (sl__srv_precheck) */
            sl__srv_shed_queue(sr, SHED_QUEUE_TIME);
            refuse(req, 503);
        } else if (sr->queued < o->max_queue) {
            enqueue(sr, req, now);
        } else {
            sl__srv_shed_queue(sr, SHED_QUEUE_FULL);
            refuse(req, 503);
        }
    }
    sweep(sr, now);
}

static void admit_queued(srv_reactor *sr)
{
    uint64_t now = sl_now_ns();
    sweep(sr, now);
    while (sr->queue.head && sr->inflight < sl__admit_limit(&sr->adm)) {
        /* first come first served: a newcomer's wait is then what its
         * place says (sl__admit_wait_exceeds), and none waits past the
         * bound (sweep) */
        sl_http_req *req = sr->queue.head;
        sl__srv_unqueue(req);
        if (!req->c || req->c->st == CONN_GONE)
            continue;
        int status = budget_refusal(req, now);
        if (!status && now >= req->deadline)
            status = 504;   /* a FIXED server refuses the expired too */
        if (status == 503)
            sl__srv_shed(sr, SHED_BUDGET);
        if (status)
            refuse(req, status);
        else
            start_req(req);
    }
}

/* The queue's timer: refuses the waiters whose budget is gone (504) and
 * those past the queue's time bound, and starts what the limit allows. */
static void queue_tick(evutil_socket_t fd, short what, void *arg)
{
    srv_reactor *sr = arg;
    (void)fd;
    (void)what;
    uint64_t now = sl_now_ns();
    for (sl_http_req *req = sr->queue.head, *next; req; req = next) {
        next = req->qlink.next;
        if (req->c && req->c->st != CONN_GONE && now >= req->deadline) {
            sl__srv_unqueue(req);
            refuse(req, 504);
        }
    }
    admit_queued(sr);
    if (sr->queue.head)
        arm_queue_tick(sr);
}

/* The handler task ended (its state destructor). */
void sl__srv_task_ended(sl_http_req *req)
{
    if (req->orphan) {   /* the server is gone; the runtime is ending its tasks */
        sl__req_free(req);
        return;
    }
    srv_reactor *sr = req->sr;
    SL_LIST_REMOVE(&sr->running, req, rlink);
    sr->inflight--;
    if (req->route && req->route->lane != SL_HTTP_LANE_CONTROL) {
        uint64_t now = sl_now_ns();
        sl__admit_sample(&sr->adm, now, now - req->t_run, req->inflight_at);
        if (req->route->lane == SL_HTTP_LANE_NORMAL)
            sl__admit_depart(&sr->adm);
        if (req->status >= 200 && req->status < 500)
            sl__admit_need_add(&sr->need[req->route->idx], now, now - req->t_run);
    }
    if (req->undo_slot) {
        req->undo_slot = false;
        sr->undo--;
    }
    if (req->ctx) {
        sl_cause cause = sl_ctx_cause(req->ctx, NULL);
        sr->st.ctx_ends[cause]++;
    }
    sl__req_set_run(req, REQ_ENDED);   /* may free req */
    admit_queued(sr);
    if (sr->draining)
        sl__srv_conn_gone(sr);
}

/* The method as a label value: the methods HTTP defines, lower case
 * (snake_case values), and "other" for anything a client makes up, so a
 * client cannot add series. */
static const char *method_label(const char *m)
{
    if (m && m[0] == 'G' && m[1] == 'E' && m[2] == 'T' && !m[3])   /* most requests: no call */
        return "get";
    static const char *const upper[] = { "POST", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE" };
    static const char *const lower[] = { "post", "head", "put", "delete", "patch", "options", "connect", "trace" };
    for (size_t i = 0; m && i < sizeof upper / sizeof *upper; i++)
        if (!strcmp(m, upper[i]))
            return lower[i];
    return "other";
}

/* The request in sluice_http_requests_total{method,route,status} and
 * sluice_http_request_duration_seconds{method,route}: the series come from
 * the reactor's cache for the route, so a request in steady traffic costs
 * a few compares and the cell updates, no lookup. A request that matched
 * no route counts under route="unmatched", never its path. */
static void count_series(srv_reactor *sr, sl_http_req *req, double seconds)
{
    sl_http_server *s = sr->srv;
    if (!s->m_requests)
        return;
    int row = (int)(sr - s->sr);
    const char *m = method_label(req->method);
    const char *route = req->route ? req->route->pattern : "unmatched";
    if (!sr->rser)   /* not started: nothing to count */
        return;
    route_series *rs = &sr->rser[req->route ? req->route->idx : sr->nneed];
    if (rs->dur_method != m) {
        sl_metric_series(s->m_duration, (const char *[]){ m, route }, &rs->dur);
        rs->dur_method = m;
    }
    sl__series_observe_at(rs->dur, row, seconds, req->trace.flags & 1 ? req->trace.trace_id : NULL);
    int k = 0;
    while (k < 4 && (rs->req[k].status != req->status || rs->req[k].method != m))
        k++;
    if (k == 4) {
        char st[12];
        snprintf(st, sizeof st, "%d", req->status);
        k = rs->next;
        rs->next = (k + 1) % 4;
        sl_metric_series(s->m_requests, (const char *[]){ m, route, st }, &rs->req[k].s);
        rs->req[k].method = m;
        rs->req[k].status = req->status;
    }
    sl__series_inc_at(rs->req[k].s, row);
}

void sl__srv_count(srv_reactor *sr, sl_http_req *req)
{
    srv_stats *st = &sr->st;
    if (req->run >= REQ_RUNNING && sl_trace_on(sr->r))
        sl_trace_async(sr->r, 'e', "http", req->match.pattern, sl_traceparent_tag(&req->trace), NULL);
    double ms = (double)(sl_now_ns() - req->t_start) / 1e6;
    st->requests++;
    count_series(sr, req, ms / 1000);
    if (req->trace.flags & 1)
        sl__trace_req_end(req);
    /* a refusal at the head logs nothing: under overload that would be a
     * line per refused request; /metrics counts them */
    if (sr->srv->o.access_log && !req->refused_early) {
        char tid[33];
        sl_trace_id_hex(&req->trace, tid);
        sl_log_access(req->method, req->path, req->path_len, req->status, ms, tid, req->cause);
    }
}

/* ---- shutdown ------------------------------------------------------------------------ */

static void stopped_on_0(void *arg)
{
    sl_http_server *s = arg;
    if (s->o.on_stopped)
        s->o.on_stopped(s, s->o.on_stopped_arg);
    else
        sl_runtime_stop(s->rt);
}

/* Draining (docs/net.md, "Draining"): a shutdown first fails readiness
 * and serves everything for the preStop window, so that load balancers
 * stop sending before anything is refused. Then each reactor drains: it
 * still accepts (a connection that waits in the accept queue would
 * otherwise be reset), answers new work (the NORMAL lane) 503 +
 * Connection: close, and serves the requests that belong to work in
 * flight (CONTINUE, UNDO, CONTROL lanes), each answer closing its
 * connection. Once no reactor has a request left, each closes its idle
 * connections and its listener (new clients are then refused, not
 * reset) and stops when its last connection goes. At the end of the grace
 * period what still runs is cancelled; HARD_MS later what is left is
 * dropped. */
#define DRAIN_TICK_MS 10
#define HARD_MS 500

/* A draining reactor with nothing left is done; the last one tells
 * reactor 0. */
static void maybe_drained(srv_reactor *sr)
{
    if (sr->stopped || !sr->finished || sr->nconns || sr->inflight)
        return;
    sr->stopped = true;
    if (sr->grace_ev)
        evtimer_del(sr->grace_ev);
    if (sr->hard_ev)
        evtimer_del(sr->hard_ev);
    sl_http_server *s = sr->srv;
    if (atomic_fetch_sub(&s->draining_left, 1) == 1)
        sl_reactor_post_mem(sl_runtime_reactor(s->rt, 0), &s->m_stopped, stopped_on_0, s);
}

/* Called as connections and requests go. */
void sl__srv_conn_gone(srv_reactor *sr)
{
    if (sr->draining)
        maybe_drained(sr);
    if (!sr->finished && sr->lev && sr->nconns < sr->srv->o.max_conns && !evtimer_pending(sr->accept_retry, NULL))
        evconnlistener_enable(sr->lev);
}

/* No more connections: the idle ones close; what waits in the accept
 * queue is taken in (to be answered, not reset), then the listener closes. */
static void finish(srv_reactor *sr)
{
    if (sr->finished)
        return;
    sr->finished = true;
    if (sr->drain_ev)
        evtimer_del(sr->drain_ev);
    for (conn *c = sr->conns.head, *next; c; c = next) {
        next = c->link.next;
        sl__conn_close_idle(c);
    }
    if (sr->lev) {
        int lfd = evconnlistener_get_fd(sr->lev);
        for (int i = 0; i < 1024; i++) {
            struct sockaddr_storage a;
            socklen_t alen = sizeof a;
            int fd = accept4(lfd, (struct sockaddr *)&a, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd < 0)
                break;
            accept_cb(sr->lev, fd, (struct sockaddr *)&a, (int)alen, sr);
        }
        evconnlistener_free(sr->lev);
        sr->lev = NULL;
    }
    maybe_drained(sr);
}

static bool reactor_busy(const srv_reactor *sr)
{
    if (sr->inflight || sr->queued)
        return true;
    for (const conn *c = sr->conns.head; c; c = c->link.next)
        if (c->pipe.head || c->cur)
            return true;
    return false;
}

/* Every DRAIN_TICK_MS while draining: whether any reactor still has work. */
static void drain_tick(evutil_socket_t fd, short what, void *arg)
{
    srv_reactor *sr = arg;
    sl_http_server *s = sr->srv;
    (void)fd;
    (void)what;
    bool busy = reactor_busy(sr);
    if (busy != sr->busy) {
        sr->busy = busy;
        if (busy)
            atomic_fetch_add(&s->busy, 1);
        else
            atomic_fetch_sub(&s->busy, 1);
    }
    if (!busy && atomic_load(&s->busy) == 0) {
        finish(sr);
        return;
    }
    struct timeval tv = { 0, DRAIN_TICK_MS * 1000 };
    evtimer_add(sr->drain_ev, &tv);
}

static void hard_stop(evutil_socket_t fd, short what, void *arg)
{
    srv_reactor *sr = arg;
    (void)fd;
    (void)what;
    while (sr->conns.head)   /* clients that neither send nor read */
        sl__conn_abort(sr->conns.head);
    maybe_drained(sr);
}

static void grace_over(evutil_socket_t fd, short what, void *arg)
{
    srv_reactor *sr = arg;
    (void)fd;
    (void)what;
    for (conn *c = sr->conns.head; c; c = c->link.next)
        sl__conn_cancel_all(c, SL_CAUSE_SHUTDOWN);
    /* handlers end at their next wait; connections close as they answer */
    finish(sr);
    struct timeval tv = { 0, HARD_MS * 1000 };
    if (!sr->stopped && sr->hard_ev)
        evtimer_add(sr->hard_ev, &tv);
}

static void shutdown_on_reactor(void *arg)
{
    srv_reactor *sr = arg;
    struct event_base *base = sl_reactor_base(sr->r);
    sr->draining = true;
    sr->busy = true;   /* counted in s->busy until the first tick says otherwise */
    uint32_t ms = sr->srv->o.grace_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 }, now = { 0, 0 };
    sr->grace_ev = evtimer_new(base, grace_over, sr);
    sr->hard_ev = evtimer_new(base, hard_stop, sr);
    sr->drain_ev = evtimer_new(base, drain_tick, sr);
    if (sr->grace_ev)
        evtimer_add(sr->grace_ev, &tv);
    if (sr->drain_ev)
        evtimer_add(sr->drain_ev, &now);
    else
        finish(sr);   /* out of memory: the old way, at once */
}

static void start_drain(sl_http_server *s)
{
    atomic_store(&s->busy, s->n);
    atomic_store(&s->draining_left, s->n);
    for (int i = 0; i < s->n; i++)
        sl_reactor_post_mem(s->sr[i].r, &s->sr[i].m_shutdown, shutdown_on_reactor, &s->sr[i]);
}

static void prestop_over(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_drain(arg);
}

static void prestop_on_0(void *arg)
{
    sl_http_server *s = arg;
    uint32_t ms = s->o.prestop_ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    s->prestop_ev = evtimer_new(sl_reactor_base(sl_runtime_reactor(s->rt, 0)), prestop_over, s);
    if (!s->prestop_ev || evtimer_add(s->prestop_ev, &tv) < 0)
        start_drain(s);
}

void sl_http_server_shutdown(sl_http_server *s)
{
    if (atomic_exchange(&s->shutdown_started, 1))
        return;
    atomic_store(&s->not_ready, 1);
    if (s->o.prestop_ms == SL_HTTP_PRESTOP_OFF)
        start_drain(s);
    else
        sl_reactor_post_mem(sl_runtime_reactor(s->rt, 0), &s->m_prestop, prestop_on_0, s);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    sl_http_server_shutdown(arg);
}

int sl_http_server_handle_signals(sl_http_server *s)
{
    struct event_base *b = sl_reactor_base(sl_runtime_reactor(s->rt, 0));
    s->sig_term = evsignal_new(b, SIGTERM, on_signal, s);
    s->sig_int = evsignal_new(b, SIGINT, on_signal, s);
    if (!s->sig_term || !s->sig_int)
        return -ENOMEM;
    evsignal_add(s->sig_term, NULL);
    evsignal_add(s->sig_int, NULL);
    return 0;
}

void sl_http_server_free(sl_http_server *s)
{
    if (!s)
        return;
    for (int i = 0; s->sr && i < s->n; i++) {
        srv_reactor *sr = &s->sr[i];
        if (sr->start)
            sr->start->cancelled = true;
        /* handler tasks still alive (the runtime was stopped, not drained)
         * outlive the server: cut them loose, their end frees them */
        for (sl_http_req *req = sr->running.head, *next; req; req = next) {
            next = req->rlink.next;
            req->orphan = true;
            sl_task_set_name(req->task, "http request of a freed server");   /* the route's name goes */
            if (req->c)
                sl__conn_put(req->c);   /* the request's reference: it goes with the server */
            req->c = NULL;
            req->sr = NULL;
        }
        while (sr->conns.head)
            sl__conn_drop(sr->conns.head);
        if (sr->lev)
            evconnlistener_free(sr->lev);
        else if (sr->fd >= 0)
            close(sr->fd);
        if (sr->accept_retry)
            event_free(sr->accept_retry);
        if (sr->queue_ev)
            event_free(sr->queue_ev);
        if (sr->grace_ev)
            event_free(sr->grace_ev);
        if (sr->drain_ev)
            event_free(sr->drain_ev);
        if (sr->hard_ev)
            event_free(sr->hard_ev);
        free(sr->rbuf);
        free(sr->wbuf);
        free(sr->need);
        free(sr->rser);
    }
    for (int i = 0; i < s->nups; i++)   /* the families go with the server; the upstreams stay */
        sl__upstream_set_metrics(s->ups[i].up, NULL);
    sl__builtin_unregister(s);
    claim_drop(s);
    if (s->prestop_ev)
        event_free(s->prestop_ev);
    if (s->sig_term)
        event_free(s->sig_term);
    if (s->sig_int)
        event_free(s->sig_int);
    free(s->sr);
    free(s->ups);
    sl_router_free(s->router);
    while (s->routes) {
        route_info *ri = s->routes;
        s->routes = ri->next;
        route_info_free(ri);
    }
    free(s);
}

/* ---- /healthz, /livez, /readyz ------------------------------------------------------- */

static int builtin_healthz(sl_task *t, void *arg)
{
    (void)t;
    return sl_http_reply(arg, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

/* Ready until a shutdown begins: then 503 for the preStop window and the
 * drain, so that load balancers and orchestrators stop sending new work
 * while the server still serves it. */
static int builtin_readyz(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    sl_http_server *s = sl_http_req_arg(req);
    (void)t;
    if (atomic_load(&s->not_ready))
        return sl_http_reply(req, 503, "application/json", "{\"status\":\"draining\"}", 21);
    return sl_http_reply(req, 200, "application/json", "{\"status\":\"ready\"}", 18);
}
