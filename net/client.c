/* client.c: calls to upstream replicas over per-reactor keep-alive pools.
 *
 * Everything here lives on one reactor: an upstream keeps one pool per
 * reactor, made the first time a task of that reactor calls, so no lock is
 * ever taken. A call parks its task with sl_task_park(); the connection's
 * callbacks wake it with the result, and the task's deadline or cancel
 * aborts it, closing the connection so that the callee notices. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include "admit.h"
#include "client_int.h"
#include "addr.h"
#include "http_parse.h"
#include "list.h"
#include "rendezvous.h"
#include "resolve.h"
#include "sl_diag.h"
#include "sl_client.h"
#include "sl_ctx.h"
#include "sl_http.h"
#include "sl_wire.h"
#include "trace_int.h"

#define DEF(v, d) ((v) ? (v) : (d))

/* An entry of the list as written: an address, or a name that gives one
 * replica per address. */
typedef struct target {
    sl_hostport hp;
    char hosthdr[SL_HOST_MAX + 8];   /* the Host header: "name:port" as written */
    bool dns;                        /* a name from DNS: looked up again (hosts-file names are not) */
    sl_addrs *seed;                  /* its addresses when the upstream was made */
} target;

typedef struct pool pool;
typedef struct cconn cconn;
typedef struct sl_http_call_priv priv;

struct sl_http_upstream {
    sl_runtime *rt;
    sl_http_upstream_opts o;
    target *targets;
    int ntargets;
    bool any_dns;
    char *resolv_conf;   /* the file each reactor's resolver reads */
    int nreactors;
    pool **pools;    /* one per reactor, each touched by its reactor only */
    sl__up_metrics met;   /* where attempts are counted (client_int.h) */
    sl_series *ff_series[2];   /* met.failfast{upstream, latency|throttle}, or NULL */
};

/* A replica: one address of a target, in one reactor's pool. Replicas come
 * and go as the names are looked up again; a slot whose replica is gone
 * is reused once nothing refers to it (connections, calls, waiters). */
typedef struct rep_pool {
    struct sockaddr_storage sa;
    socklen_t salen;
    int target;
    bool gone;             /* its name no longer gives it: no new calls */
    cconn *idle;
    uint32_t nconns, outstanding;
    uint32_t fails;        /* attempts failed in a row */
    uint64_t out_until;    /* out of rotation until then (ns); 0: in */
    uint32_t out_ms;       /* the length of its current ejection */
    bool probing;          /* its ejection ran out and one call tests it */
} rep_pool;

/* The lookups of a target, per pool. */
typedef struct tres {
    pool *pl;
    int t;
    bool busy, failing;
    uint64_t refresh_at;   /* look it up again then (ns); 0: never (an address, a hosts-file name) */
    uint64_t started;      /* the last lookup's start */
} tres;

struct pool {
    sl_http_upstream *up;
    sl_reactor *r;
    rep_pool *reps;
    uint64_t *ids;         /* each replica's hash of its address, for sl__rendezvous_pick */
    int nreps, cap;
    uint32_t nlive;        /* replicas not gone */
    tres *tr;              /* one per target */
    uint64_t next_resolve; /* the earliest refresh_at of the targets not being looked up; 0 none */
    sl_dns *dns;           /* made at the first lookup */
    bool freeing;
    SL_LIST(priv) wq;      /* calls waiting for a connection, oldest first (by qlink) */
    uint32_t nwait, rr;
    uint32_t nout;         /* replicas out of rotation */
    uint32_t tokens;       /* retry budget, in thousandths of a retry */
    /* fail-fast (sl_http_upstream_opts.no_fail_fast) */
    sl_admit_need lat;     /* the median time of a call answered below 500 */
    uint64_t ff_start;     /* the throttle's window began */
    uint32_t ff_req, ff_acc;   /* calls made and answered (not 503) in it */
    uint64_t ff_last_503;  /* when the upstream last answered 503 (ns); 0: never */
    uint64_t rng;
    sl_http_upstream_stats st;
};

_Static_assert(SL_HTTP_REPLICA_MAX >= SL_ADDR_STR_MAX, "a replica's address must fit");

static _Thread_local char last_error[SL_HOST_MAX + 160];

const char *sl_http_upstream_last_error(void) { return last_error; }

struct cconn {
    pool *pool;
    int rep;
    struct bufferevent *bev;   /* connects and writes; reading is rev's */
    struct event *rev;         /* EV_READ on the socket (conn_readable) */
    sl_http_parser p;
    priv *call;          /* NULL while idle */
    cconn *next;         /* idle list */
    uint64_t idle_since; /* when it last went idle (sl_now_ns) */
    bool connected;
};

struct sl_http_call_priv {
    sl_http_resp *call;
    sl_task *task;
    pool *pool;
    int rep;
    cconn *conn;
    struct evbuffer *req;   /* what follows the head: framing and body */
    SL_LINK(priv) qlink;    /* pool.wq, while queued */
    bool queued, done, head_request;
    bool retryable;         /* retries are on: the request is kept for another attempt */
    bool idempotent;        /* may be sent again even once some of it was written */
    bool got_bytes, probe;
    bool keyed;             /* routed by key: only key_hash's replica serves it */
    bool pinned;            /* sl_http_call_to: only `rep` serves it, whatever its state */
    bool undo;              /* SL_HTTP_CALL_UNDO: outside fail-fast and what it learns */
    bool reached;           /* some byte of some attempt may have left (sl_http_call_reached) */
    uint64_t key_hash;
    size_t sent;            /* bytes of this attempt handed to the connection */
    uint32_t tries;
    uint64_t deadline;
    uint64_t t0;            /* the call began */
    uint64_t t_attempt;     /* this attempt began (ns) */
    sl_http_header *hdrs;
    uint32_t nhdrs;
    char *hbuf;
    char tp[SL_TRACEPARENT_LEN + 1];
    sl__call_span span;     /* the call's span (trace_int.h) */
    char *ts;               /* the tracestate to send, or NULL (after line) */
    char what[80];          /* "HTTP POST /reserve", for diagnostics */
    size_t line_len;
    char line[];            /* "METHOD PATH HTTP/1.1\r\n" */
};

/* ---- upstreams ------------------------------------------------------------------ */

static int fail(int rc, const char *entry, size_t len, const char *why)
{
    snprintf(last_error, sizeof last_error, "'%.*s': %s", (int)(len > 300 ? 300 : len), entry, why);
    return rc;
}

/* "http://HOST:PORT[/]": its address, or its name looked up now. */
static int parse_target(sl_http_upstream *up, target *t, const char *s, size_t len, const char *hosts)
{
    if (len < 7 || strncmp(s, "http://", 7))
        return fail(-EINVAL, s, len, "not http://HOST:PORT");
    size_t hl = len - 7;
    const char *slash = memchr(s + 7, '/', hl);
    if (slash && slash != s + len - 1)
        return fail(-EINVAL, s, len, "a path: a replica is an address, the path goes in the call");
    if (slash)
        hl--;
    const char *why;
    if (sl__hostport_parse(&t->hp, s + 7, hl, false, &why) < 0)
        return fail(-EINVAL, s, len, why);
    if (t->hp.sa.ss_family == AF_INET6)
        snprintf(t->hosthdr, sizeof t->hosthdr, "[%s]:%u", t->hp.host, t->hp.port);
    else
        snprintf(t->hosthdr, sizeof t->hosthdr, "%s:%u", t->hp.host, t->hp.port);
    if (!(t->seed = calloc(1, sizeof *t->seed)))
        return -ENOMEM;
    if (!t->hp.is_name) {
        t->seed->n = 1;
        t->seed->a[0] = t->hp.sa;
        t->seed->len[0] = t->hp.salen;
        return 0;
    }
    int rc = sl__resolve_now(t->hp.host, t->hp.port, up->resolv_conf, hosts, t->seed);
    if (rc < 0) {
        snprintf(last_error, sizeof last_error, "%s: %s (at start)", t->hp.host, sl__resolve_strerror(rc));
        return rc;
    }
    t->dns = t->seed->ttl_s != 0;   /* hosts-file answers have none */
    up->any_dns |= t->dns;
    return 0;
}

int sl_http_upstream_new(sl_http_upstream **out, sl_runtime *rt, const char *replicas,
                         const sl_http_upstream_opts *opts)
{
    last_error[0] = '\0';
    if (!out || !rt || !replicas || !*replicas) {
        snprintf(last_error, sizeof last_error, "no replicas");
        return -EINVAL;
    }
    sl_http_upstream *up = calloc(1, sizeof *up);
    if (!up)
        return -ENOMEM;
    sl__ignore_sigpipe();
    up->rt = rt;
    up->o = opts ? *opts : (sl_http_upstream_opts){ 0 };
    up->o.max_conns = DEF(up->o.max_conns, 64);
    up->o.max_waiting = up->o.no_wait ? 0 : DEF(up->o.max_waiting, 128);
    up->o.margin_ms = DEF(up->o.margin_ms, 5);
    up->o.connect_timeout_ms = DEF(up->o.connect_timeout_ms, 1000);
    up->o.idle_timeout_ms = DEF(up->o.idle_timeout_ms, 30000);
    up->o.retry_budget_pct = DEF(up->o.retry_budget_pct, 10);
    up->o.retry_budget_cap = DEF(up->o.retry_budget_cap, 10);
    up->o.eject_after = DEF(up->o.eject_after, 5);
    up->o.eject_ms = DEF(up->o.eject_ms, 1000);
    up->o.eject_max_ms = DEF(up->o.eject_max_ms, 30000);
    up->o.resolve_min_ms = DEF(up->o.resolve_min_ms, 1000);
    up->o.resolve_max_ms = DEF(up->o.resolve_max_ms, 300000);
    if (up->o.eject_max_ms < up->o.eject_ms)
        up->o.eject_max_ms = up->o.eject_ms;
    if (up->o.resolve_max_ms < up->o.resolve_min_ms)
        up->o.resolve_max_ms = up->o.resolve_min_ms;
    int n = 1;
    for (const char *p = replicas; *p; p++)
        n += *p == ',';
    up->targets = calloc((size_t)n, sizeof *up->targets);
    up->nreactors = sl_runtime_threads(rt);
    up->pools = calloc((size_t)up->nreactors, sizeof *up->pools);
    up->resolv_conf = strdup(sl__resolv_conf_path(up->o.resolv_conf));
    up->o.resolv_conf = up->o.hosts = NULL;   /* the caller's strings are not kept */
    if (!up->targets || !up->pools || !up->resolv_conf) {
        sl_http_upstream_free(up);
        return -ENOMEM;
    }
    const char *hosts = opts ? opts->hosts : NULL;
    for (const char *p = replicas;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc = parse_target(up, &up->targets[up->ntargets++], p, len, hosts);
        if (rc < 0) {
            sl_http_upstream_free(up);
            return rc;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = up;
    return 0;
}

static void conn_close(cconn *c);

void sl_http_upstream_free(sl_http_upstream *up)
{
    if (!up)
        return;
    for (int i = 0; up->pools && i < up->nreactors; i++) {
        pool *pl = up->pools[i];
        if (!pl)
            continue;
        pl->freeing = true;
        sl__dns_free(pl->dns);   /* lookups under way end now (cancelled) */
        for (int r = 0; r < pl->nreps; r++)
            while (pl->reps[r].idle) {
                cconn *c = pl->reps[r].idle;
                pl->reps[r].idle = c->next;
                conn_close(c);
            }
        free(pl->reps);
        free(pl->ids);
        free(pl->tr);
        free(pl);
    }
    for (int t = 0; up->targets && t < up->ntargets; t++)
        free(up->targets[t].seed);
    free(up->targets);
    free(up->pools);
    free(up->resolv_conf);
    free(up);
}

/* ---- replicas come and go ----------------------------------------------------------- */

static bool is_live(void *arg, int r) { return !((pool *)arg)->reps[r].gone; }

/* A slot for a new replica: one whose replica is gone and that nothing
 * refers to any more, or a new one at the end. -1 when out of memory. */
static int rep_slot(pool *pl)
{
    for (int r = 0; r < pl->nreps; r++) {
        rep_pool *rp = &pl->reps[r];
        if (!rp->gone || rp->nconns || rp->outstanding || rp->probing)
            continue;
        bool waited_on = false;
        for (priv *w = pl->wq.head; w && !waited_on; w = w->qlink.next)
            waited_on = w->rep == r;
        if (!waited_on)
            return r;
    }
    if (pl->nreps == pl->cap) {
        int cap = pl->cap ? pl->cap * 2 : 4;
        rep_pool *reps = realloc(pl->reps, (size_t)cap * sizeof *reps);
        if (reps)
            pl->reps = reps;
        uint64_t *ids = reps ? realloc(pl->ids, (size_t)cap * sizeof *ids) : NULL;
        if (!ids)
            return -1;
        pl->ids = ids;
        pl->cap = cap;
    }
    return pl->nreps++;
}

static int rep_add(pool *pl, int t, const struct sockaddr_storage *sa, socklen_t len)
{
    int r = rep_slot(pl);
    if (r < 0)
        return -ENOMEM;
    char name[SL_ADDR_STR_MAX];
    rep_pool *rp = &pl->reps[r];
    *rp = (rep_pool){ .sa = *sa, .salen = len, .target = t };
    sl__sockaddr_format((const struct sockaddr *)sa, name, sizeof name);
    pl->ids[r] = sl__hash_bytes(name, strlen(name));   /* "10.0.0.7:8082": stable while the pod lives */
    pl->nlive++;
    return 0;
}

static int pick(pool *pl, const priv *pv, int avoid, bool *probe);
static void unqueue(pool *pl, priv *w);
static void start_on(priv *pv, int rep);
static void span_end(priv *pv, int rc);

/* Replica r's name no longer gives it: no new calls; its idle connections
 * close; keyed calls waiting for it wait for their next choice instead. */
static void rep_gone(pool *pl, int r)
{
    rep_pool *rp = &pl->reps[r];
    rp->gone = true;
    pl->nlive--;
    if (rp->out_until) {
        rp->out_until = 0;
        pl->nout--;
    }
    priv *w, *next;
    SL_LIST_FOREACH_SAFE(w, &pl->wq, qlink, next) {
        if (w->rep != r)
            continue;
        if (w->pinned) {   /* it asked for this replica and no other */
            unqueue(pl, w);
            w->done = true;
            span_end(w, -ENOENT);
            if (w->task)
                sl_task_unpark(w->task, -ENOENT);
            continue;
        }
        bool probe;
        w->rep = pick(pl, w, -1, &probe);
        w->probe = false;
        rep_pool *np = &pl->reps[w->rep];
        if (np->idle || np->nconns < pl->up->o.max_conns) {   /* room there now */
            unqueue(pl, w);
            np->outstanding++;
            start_on(w, w->rep);
        }
    }
    rp = &pl->reps[r];
    while (rp->idle) {
        cconn *c = rp->idle;
        rp->idle = c->next;
        conn_close(c);
        rp = &pl->reps[r];
    }
}

/* A lookup of target t gave `as`: replicas it no longer names go, new ones
 * come, the others keep their connections and their record. */
static void rep_apply(pool *pl, int t, const sl_addrs *as)
{
    for (int r = 0; r < pl->nreps; r++) {
        rep_pool *rp = &pl->reps[r];
        if (rp->target != t || rp->gone)
            continue;
        bool kept = false;
        for (int i = 0; i < as->n && !kept; i++)
            kept = as->len[i] == rp->salen && !memcmp(&as->a[i], &rp->sa, rp->salen);
        if (!kept)
            rep_gone(pl, r);
    }
    for (int i = 0; i < as->n; i++) {
        int found = -1;
        for (int r = 0; r < pl->nreps && found < 0; r++)
            if (pl->reps[r].target == t && pl->reps[r].salen == as->len[i] &&
                !memcmp(&pl->reps[r].sa, &as->a[i], as->len[i]))
                found = r;
        if (found >= 0 && pl->reps[found].gone) {   /* back: its record is still there */
            pl->reps[found].gone = false;
            pl->nlive++;
        } else if (found < 0 && rep_add(pl, t, &as->a[i], as->len[i]) < 0) {
            pl->st.resolve_failed++;   /* no room: the old set stays in part */
        }
    }
}

static void next_resolve_update(pool *pl)
{
    pl->next_resolve = 0;
    for (int t = 0; t < pl->up->ntargets; t++) {
        const tres *tr = &pl->tr[t];
        if (tr->refresh_at && !tr->busy && (!pl->next_resolve || tr->refresh_at < pl->next_resolve))
            pl->next_resolve = tr->refresh_at;
    }
}

static uint64_t clamp_ms(uint64_t ms, uint32_t lo, uint32_t hi)
{
    return ms < lo ? lo : ms > hi ? hi : ms;
}

static void resolved(void *arg, int rc, const sl_addrs *as)
{
    tres *tr = arg;
    pool *pl = tr->pl;
    if (pl->freeing)
        return;
    const sl_http_upstream *up = pl->up;
    const target *t = &up->targets[tr->t];
    uint64_t now = sl_now_ns();
    tr->busy = false;
    if (rc == 0) {
        pl->st.resolved++;
        rep_apply(pl, tr->t, as);
        tr->refresh_at = now + clamp_ms((uint64_t)as->ttl_s * 1000, up->o.resolve_min_ms, up->o.resolve_max_ms) * SL_NS_PER_MS;
        if (tr->failing)
            sl_report(pl->r, "sluice: upstream %s: %s answers again (%d addresses)", t->hosthdr, t->hp.host, as->n);
        tr->failing = false;
    } else {
        /* keep the replicas it had; ask again soon */
        pl->st.resolve_failed++;
        tr->refresh_at = now + (uint64_t)up->o.resolve_min_ms * SL_NS_PER_MS;
        if (!tr->failing)
            sl_report(pl->r, "sluice: upstream %s: looking %s up again failed: %s; keeping its last addresses",
                      t->hosthdr, t->hp.host, sl__resolve_strerror(rc));
        tr->failing = true;
    }
    next_resolve_update(pl);
}

/* Starts the lookups that are due (on a call: a pool nobody calls does
 * not look anything up). */
static void resolve_due(pool *pl, uint64_t now)
{
    if (!pl->dns && !(pl->dns = sl__dns_new(sl_reactor_base(pl->r), pl->up->resolv_conf)))
        return;
    for (int t = 0; t < pl->up->ntargets; t++) {
        tres *tr = &pl->tr[t];
        if (!tr->refresh_at || tr->busy || tr->refresh_at > now)
            continue;
        tr->started = now;
        tr->busy = sl__dns_lookup(pl->dns, pl->up->targets[t].hp.host, pl->up->targets[t].hp.port, resolved, tr) == 0;
        if (!tr->busy)
            tr->refresh_at = now + (uint64_t)pl->up->o.resolve_min_ms * SL_NS_PER_MS;
    }
    next_resolve_update(pl);
}

/* An attempt on replica r failed: its name may have moved; look it up
 * again soon (at most once per resolve_min_ms). */
static void resolve_soon(pool *pl, int r)
{
    tres *tr = &pl->tr[pl->reps[r].target];
    if (!tr->refresh_at || tr->busy)
        return;
    uint64_t soon = tr->started + (uint64_t)pl->up->o.resolve_min_ms * SL_NS_PER_MS;
    if (soon < tr->refresh_at) {
        tr->refresh_at = soon;
        next_resolve_update(pl);
    }
}

static pool *get_pool(sl_http_upstream *up, sl_reactor *r)
{
    int id = sl_reactor_id(r);
    if (id < 0 || id >= up->nreactors)
        return NULL;
    if (!up->pools[id]) {
        pool *pl = calloc(1, sizeof *pl);
        if (!pl || !(pl->tr = calloc((size_t)up->ntargets, sizeof *pl->tr))) {
            free(pl);
            return NULL;
        }
        pl->up = up;
        pl->r = r;
        pl->tokens = up->o.retry_budget_cap * 1000;
        uint64_t now = sl_now_ns();
        for (int t = 0; t < up->ntargets; t++) {
            const target *tg = &up->targets[t];
            pl->tr[t] = (tres){ .pl = pl, .t = t, .started = now };
            if (tg->dns)   /* first due when the answer at creation runs out */
                pl->tr[t].refresh_at = now + clamp_ms((uint64_t)tg->seed->ttl_s * 1000, up->o.resolve_min_ms,
                                                      up->o.resolve_max_ms) * SL_NS_PER_MS;
            for (int i = 0; i < tg->seed->n; i++)
                if (rep_add(pl, t, &tg->seed->a[i], tg->seed->len[i]) < 0) {
                    free(pl->reps);
                    free(pl->ids);
                    free(pl->tr);
                    free(pl);
                    return NULL;
                }
        }
        next_resolve_update(pl);
        up->pools[id] = pl;
    }
    return up->pools[id];
}

static void stats_of(sl_http_upstream *up, pool *pl, sl_http_upstream_stats *st)
{
    *st = pl ? pl->st : (sl_http_upstream_stats){ 0 };
    if (!pl)
        return;
    st->waiting = pl->nwait;
    st->out = pl->nout;
    st->replicas = pl->nlive;
    for (int t = 0; t < up->ntargets; t++)
        st->resolving += pl->tr[t].busy;
    for (int r = 0; r < pl->nreps; r++) {
        st->active += pl->reps[r].outstanding;
        for (cconn *c = pl->reps[r].idle; c; c = c->next)
            st->idle++;
    }
}

void sl_http_upstream_stats_get(sl_http_upstream *up, sl_http_upstream_stats *st)
{
    stats_of(up, sl_reactor_current() ? get_pool(up, sl_reactor_current()) : NULL, st);
}

void sl__upstream_stats_peek(sl_http_upstream *up, int id, sl_http_upstream_stats *st)
{
    stats_of(up, id >= 0 && id < up->nreactors ? up->pools[id] : NULL, st);
}

sl_runtime *sl__upstream_runtime(const sl_http_upstream *up) { return up->rt; }

/* ---- finishing a call ------------------------------------------------------------ */

static void count(pool *pl, int rc)
{
    switch (rc) {
    case 0: pl->st.ok++; break;
    case -ECONNREFUSED: pl->st.refused++; break;
    case -ECONNRESET: pl->st.reset++; break;
    case -ETIMEDOUT: pl->st.timeouts++; break;
    case -EPROTO: pl->st.protocol++; break;
    default: pl->st.cancelled++; break;
    }
}

void sl__upstream_set_metrics(sl_http_upstream *up, const sl__up_metrics *m)
{
    up->met = m ? *m : (sl__up_metrics){ 0 };
    static const char *const reasons[2] = { "latency", "throttle" };
    for (int i = 0; i < 2; i++) {
        up->ff_series[i] = NULL;
        if (up->met.failfast)   /* full or out of memory: the overflow series, still counted */
            sl_metric_series(up->met.failfast, (const char *[]){ up->met.name, reasons[i] }, &up->ff_series[i]);
    }
}

static const char *result_label(int rc)
{
    switch (rc) {
    case 0: return "ok";
    case -ECONNREFUSED: return "refused";
    case -ECONNRESET: return "reset";
    case -ETIMEDOUT: return "timeout";
    case -EPROTO: return "protocol";
    default: return "cancelled";
    }
}

/* An attempt ended with rc: its time and result under its upstream and
 * replica ("10.0.0.7:8081"), if the upstream was added to a server. A
 * lookup each (upstream calls are not the per-request hot path of a
 * server: a cache per replica slot is a later saving). */
static void observe_attempt(priv *pv, int rc)
{
    sl_http_upstream *up = pv->pool->up;
    if (!up->met.dur)
        return;
    char rep[SL_ADDR_STR_MAX];
    sl__sockaddr_format((const struct sockaddr *)&pv->pool->reps[pv->rep].sa, rep, sizeof rep);
    sl_series *s;
    sl_metric_series(up->met.dur, (const char *[]){ up->met.name, rep }, &s);
    sl_series_observe(s, (double)(sl_now_ns() - pv->t_attempt) / 1e9, NULL);
    sl_metric_add(up->met.attempts, (const char *[]){ up->met.name, rep, result_label(rc) }, 1);
}

static void start_on(priv *pv, int rep);
static priv *next_waiter(pool *pl, int rep);
static int pick(pool *pl, const priv *pv, int avoid, bool *probe);

/* Outlier detection: what the end of an attempt on `rep` says of it. Any
 * answer is a sign of life; a refusal, a reset, garbage or silence until
 * the deadline count against it; the caller's own cancel says nothing. */
static void judge(pool *pl, int rep, bool probe, int rc)
{
    const sl_http_upstream_opts *o = &pl->up->o;
    rep_pool *rp = &pl->reps[rep];
    if (probe)
        rp->probing = false;
    if (rc == 0) {
        rp->fails = 0;
        if (rp->out_until) {   /* back in rotation */
            rp->out_until = 0;
            pl->nout--;
        }
        return;
    }
    if (rc != -ECONNREFUSED && rc != -ECONNRESET && rc != -EPROTO && rc != -ETIMEDOUT)
        return;
    resolve_soon(pl, rep);
    if (o->no_eject || rp->gone)
        return;
    rp->fails++;
    if (probe && rp->out_until && !rp->gone) {   /* still failing: out again, for longer */
        rp->out_ms = rp->out_ms * 2 < o->eject_max_ms ? rp->out_ms * 2 : o->eject_max_ms;
        rp->out_until = sl_now_ns() + (uint64_t)rp->out_ms * SL_NS_PER_MS;
        pl->st.ejected++;
    } else if (!rp->out_until && rp->fails >= o->eject_after && pl->nout + 1 < pl->nlive) {
        rp->out_ms = o->eject_ms;   /* never the last one in rotation */
        rp->out_until = sl_now_ns() + (uint64_t)rp->out_ms * SL_NS_PER_MS;
        pl->nout++;
        pl->st.ejected++;
    }
}

/* Whether the attempt that failed with rc may be made again: a refusal,
 * or a reset before any byte of the request left (the callee cannot have
 * seen it), for any method; a reset before any byte of the answer only for
 * an idempotent one (Envoy's connect-failure, reset-before-request and
 * reset). `wrote` is false only while the whole request still sits in the
 * connection's output buffer. */
static bool safe_to_retry(const priv *pv, int rc, bool wrote)
{
    if (rc == -ECONNREFUSED || (rc == -ECONNRESET && !wrote))
        return true;
    return rc == -ECONNRESET && pv->idempotent && !pv->got_bytes;
}

/* Another attempt for a call that failed where safe_to_retry allows it, if
 * the budget and the caller's context allow it too. */
static bool retry(priv *pv, int rc, bool wrote)
{
    pool *pl = pv->pool;
    const sl_http_upstream_opts *o = &pl->up->o;
    if (!pv->retryable || pv->tries >= o->retries || !pv->task || !safe_to_retry(pv, rc, wrote) ||
        pl->tokens < 1000 || sl_task_cancelled(pv->task))
        return false;
    uint64_t deadline = sl_task_deadline(pv->task);
    if (deadline && deadline <= sl_now_ns() + ((uint64_t)o->margin_ms + 1) * SL_NS_PER_MS)
        return false;
    bool probe;
    int rep = pick(pl, pv, pv->rep, &probe);
    rep_pool *rp = &pl->reps[rep];
    if (!rp->idle && rp->nconns >= o->max_conns)
        return false;   /* no queueing for a second try */
    pl->tokens -= 1000;
    pl->st.retried++;
    pv->tries++;
    pv->probe = probe;
    rp->probing |= probe;
    rp->outstanding++;
    start_on(pv, rep);
    return true;
}

/* The call has its result: its span, if sampled. */
static void span_end(priv *pv, int rc)
{
    if (!pv->span.on)
        return;
    /* the upstream's sluice-cause (why it failed, which hop decided), as
     * sent, when it is well formed: diagnostics only */
    size_t clen = 0;
    sl_cause_info ci;
    const char *cause = rc == 0 ? sl_http_resp_header(pv->call, SL_CAUSE_HDR, &clen) : NULL;
    if (cause && sl_cause_hdr_parse(cause, clen, &ci) < 0)
        cause = NULL;
    sl__trace_call_end(pv->pool->up->o.tracer, &pv->span, rc, pv->call->status, pv->line,
                       pv->pool->up->targets[pv->pool->reps[pv->rep].target].hosthdr, pv->ts,
                       cause, cause ? clen : 0, pv->task ? sl_task_ctx(pv->task) : NULL);
}

/* ---- fail-fast ------------------------------------------------------------------ */

/* The throttle's window: its counts (calls answered or refused here, and
 * calls accepted) halve every FF_WINDOW_NS, so it remembers the last
 * second or so. Calls that got no answer (refused connections, resets,
 * timeouts) count in neither: outlier ejection deals with those. */
#define FF_WINDOW_NS (500 * SL_NS_PER_MS)
/* Calls in the window before the throttle may refuse any: a few 503s are
 * not a refusing upstream. */
#define FF_MIN_CALLS 16
/* Accepted calls count K times (the K of Google's SRE book, "Handling
 * Overload": with K = 2 the callee still gets up to twice what it
 * accepts, enough to see it recover). */
#define FF_K 2
static void ff_roll(pool *pl, uint64_t now)
{
    while (now - pl->ff_start >= FF_WINDOW_NS) {
        pl->ff_req /= 2;
        pl->ff_acc /= 2;
        pl->ff_start += FF_WINDOW_NS;
        if (!pl->ff_req) {
            pl->ff_start = now;
            break;
        }
    }
}

/* An answered call: what it took (an answer below 500: a 5xx may come at
 * once and says nothing of the time real work takes), and whether the
 * upstream accepted it (anything but 503). */
static void learn(pool *pl, const priv *pv)
{
    /* an undo is admitted on its callee's undo lane however loaded the
     * callee is: its answer says nothing of what a normal call meets */
    if (pv->undo)
        return;
    int status = pv->call->status;
    uint64_t now = sl_now_ns();
    ff_roll(pl, now);
    pl->ff_req++;
    if (status != 503)
        pl->ff_acc++;
    else
        pl->ff_last_503 = now;
    if (status < 500) {
        sl__admit_need_add(&pl->lat, now, now - pv->t0);
    }
}

/* Whether a call is refused here, before it takes a connection or sends
 * a byte: FF_LATENCY, its remaining budget cannot cover the upstream's
 * recent median time; FF_THROTTLE, the upstream has been refusing (503)
 * and this call falls in the share that client-side throttling turns
 * away: each call is refused with probability (calls - K x accepted) /
 * (calls + 1) over the window. FF_NO: it goes. */
enum { FF_NO = -1, FF_LATENCY = 0, FF_THROTTLE = 1 };
static int fail_fast(pool *pl, uint64_t deadline, uint64_t now, uint64_t margin)
{
    uint64_t need = sl__admit_need(&pl->lat, now);   /* 0 once stale (1 s without an answer) */
    if (need && deadline && deadline - now < margin + need)
        return FF_LATENCY;
    /* an upstream that refused nothing for a window is not refusing: the
     * counts may still say so for a while (at a low call rate, the few
     * calls let through cannot outweigh them), and would keep turning most
     * calls away from an upstream that serves again */
    if (!pl->ff_last_503 || now - pl->ff_last_503 >= FF_WINDOW_NS)
        return FF_NO;
    ff_roll(pl, now);
    if (pl->ff_req < FF_MIN_CALLS || pl->ff_req <= FF_K * pl->ff_acc)
        return FF_NO;
    /* xorshift64: a per-pool stream, no lock, no libc state */
    uint64_t x = pl->rng ? pl->rng : 0x9e3779b97f4a7c15u ^ (uint64_t)(uintptr_t)pl;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    pl->rng = x;
    uint64_t num = pl->ff_req - FF_K * (uint64_t)pl->ff_acc, den = (uint64_t)pl->ff_req + 1;
    if (x % den >= num)
        return FF_NO;
    pl->ff_req++;   /* a call the caller made, refused: it counts as one */
    return FF_THROTTLE;
}

/* An attempt has its result: try again, or wake the task. `wrote`: some
 * of the request may have reached the callee. */
static void finish_attempt(priv *pv, int rc, bool wrote)
{
    if (pv->done)
        return;
    pv->reached |= wrote;
    pool *pl = pv->pool;
    count(pl, rc);
    observe_attempt(pv, rc);
    judge(pl, pv->rep, pv->probe, rc);
    pv->probe = false;
    pl->reps[pv->rep].outstanding--;
    if (rc < 0 && retry(pv, rc, wrote))
        return;
    pv->done = true;
    if (rc == 0)
        learn(pl, pv);
    span_end(pv, rc);
    if (pv->task)
        sl_task_unpark(pv->task, rc);
}

static void finish(priv *pv, int rc) { finish_attempt(pv, rc, true); }

/* Takes w out of the wait queue (if it is there), in O(1). */
static void unqueue(pool *pl, priv *w)
{
    if (w->queued) {
        SL_LIST_REMOVE(&pl->wq, w, qlink);
        pl->nwait--;
    }
    w->queued = false;
}

/* The first call waiting for a connection that one of replica `rep` can
 * serve, taken out of the queue: a keyed or pinned call waits for its own
 * replica. */
static priv *next_waiter(pool *pl, int rep)
{
    priv *w = pl->wq.head;
    while (w && (w->keyed || w->pinned) && w->rep != rep)
        w = w->qlink.next;
    if (w)
        unqueue(pl, w);
    return w;
}

/* A connection is free again: give it to a waiting call, or keep it idle. */
static void conn_release(cconn *c)
{
    pool *pl = c->pool;
    c->call = NULL;
    c->idle_since = sl_now_ns();
    priv *w = next_waiter(pl, c->rep);
    if (w) {
        if (w->probe && w->rep != c->rep) {   /* it goes elsewhere: no probe */
            pl->reps[w->rep].probing = false;
            w->probe = false;
        }
        w->rep = c->rep;
        pl->reps[c->rep].outstanding++;
        c->next = pl->reps[c->rep].idle;
        pl->reps[c->rep].idle = c;
        start_on(w, c->rep);
        return;
    }
    c->next = pl->reps[c->rep].idle;
    pl->reps[c->rep].idle = c;
}

/* Frees it; its slot is free for the next connection. */
static void conn_drop(cconn *c)
{
    pool *pl = c->pool;
    if (c->rev)
        event_free(c->rev);
    if (c->bev)
        bufferevent_free(c->bev);
    sl_http_parser_fini(&c->p);
    pl->reps[c->rep].nconns--;
    free(c);
}

static void conn_close(cconn *c)
{
    pool *pl = c->pool;
    int rep = c->rep;
    conn_drop(c);
    /* a waiting call can have the slot */
    priv *w = next_waiter(pl, rep);
    if (w) {
        pl->reps[w->rep].outstanding++;
        start_on(w, w->rep);
    }
}

static void unlink_idle(cconn *c)
{
    cconn **pp = &c->pool->reps[c->rep].idle;
    while (*pp && *pp != c)
        pp = &(*pp)->next;
    if (*pp)
        *pp = c->next;
}

/* ---- the connection's callbacks ---------------------------------------------------- */

static void copy_headers(priv *pv, const sl_http_msg *m)
{
    size_t need = 0;
    for (uint32_t i = 0; i < m->nheaders; i++)
        need += m->headers[i].name.len + m->headers[i].value.len + 2;
    pv->hbuf = malloc(need ? need : 1);
    pv->hdrs = calloc(m->nheaders ? m->nheaders : 1, sizeof *pv->hdrs);
    if (!pv->hbuf || !pv->hdrs)
        return;
    char *p = pv->hbuf;
    for (uint32_t i = 0; i < m->nheaders; i++) {
        const sl_http_header *h = &m->headers[i];
        memcpy(p, h->name.ptr, h->name.len);
        p[h->name.len] = '\0';
        pv->hdrs[i].name = (sl_http_str){ p, h->name.len };
        p += h->name.len + 1;
        memcpy(p, h->value.ptr, h->value.len);
        p[h->value.len] = '\0';
        pv->hdrs[i].value = (sl_http_str){ p, h->value.len };
        p += h->value.len + 1;
    }
    pv->nhdrs = m->nheaders;
}

static int append_body(sl_http_resp *call, sl_http_str piece)
{
    char *b = realloc(call->body, call->body_len + piece.len + 1);
    if (!b)
        return -ENOMEM;
    memcpy(b + call->body_len, piece.ptr, piece.len);
    call->body = b;
    call->body_len += piece.len;
    b[call->body_len] = '\0';
    return 0;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    cconn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    priv *pv = c->call;
    if (!pv) {   /* bytes on an idle connection: not HTTP we asked for */
        unlink_idle(c);
        conn_close(c);
        return;
    }
    pv->got_bytes = true;   /* too late to try again */
    bool pending = false;
    for (;;) {
        size_t len = evbuffer_get_contiguous_space(in);
        if (!len && !pending)
            return;
        const char *data = len ? (const char *)evbuffer_pullup(in, (ev_ssize_t)len) : "";
        size_t used = 0;
        sl_http_str body = { 0 };
        int ev = sl_http_parser_feed(&c->p, data, len, &used, &body);
        if (ev == SL_HTTP_EV_BODY && append_body(pv->call, body) < 0)
            ev = -ENOMEM;
        if (used)
            evbuffer_drain(in, used);
        pending = ev == SL_HTTP_EV_HEAD || ev == SL_HTTP_EV_BODY;
        if (ev == SL_HTTP_EV_NEED_MORE && !len)
            return;
        /* An interim 1xx (100 Continue, 103 Early Hints) is not the answer:
         * its head and its end are skipped and reading goes on, or the
         * answer would be left in the buffer for the next call on this
         * connection. 101 switches protocols, which we never ask for. */
        bool interim = c->p.msg.status / 100 == 1;
        if (ev == SL_HTTP_EV_HEAD && c->p.msg.status == 101)
            ev = SL_HTTP_E_SYNTAX;
        if (ev == SL_HTTP_EV_HEAD) {
            if (interim)
                continue;
            pv->call->status = c->p.msg.status;
            copy_headers(pv, &c->p.msg);
        } else if (ev == SL_HTTP_EV_DONE && interim) {
            continue;
        } else if (ev == SL_HTTP_EV_DONE) {
            bool keep = c->p.msg.keep_alive;
            pv->conn = NULL;
            finish(pv, 0);
            if (keep) {
                sl_http_parser_reset(&c->p);
                conn_release(c);
            } else {
                conn_close(c);
            }
            return;
        } else if (ev < 0) {
            pv->conn = NULL;
            finish(pv, ev == -ENOMEM ? -ENOMEM : -EPROTO);
            conn_close(c);
            return;
        }
    }
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    cconn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        c->connected = true;
        return;
    }
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    int err = EVUTIL_SOCKET_ERROR();
    priv *pv = c->call;
    if (!pv) {   /* an idle connection the server closed */
        unlink_idle(c);
        conn_close(c);
        return;
    }
    pv->conn = NULL;
    int rc = !c->connected && (what & BEV_EVENT_ERROR) && err == ECONNREFUSED ? -ECONNREFUSED : -ECONNRESET;
    if (what & BEV_EVENT_EOF && sl_http_parser_finish(&c->p) == SL_HTTP_EV_DONE && pv->call->status)
        rc = 0;   /* a body read until close */
    /* the request is still whole in the output buffer: not a byte left */
    bool wrote = pv->got_bytes || evbuffer_get_length(bufferevent_get_output(c->bev)) < pv->sent;
    finish_attempt(pv, rc, wrote);
    conn_close(c);
}

/* What one recv of an answer may take (level-triggered: more waiting is
 * read on the next turn). */
#define CONN_READ_MAX 16384

/* Reads an answer with one recv, then hands it to the input buffer (a
 * chain the size of what came, not of what might). The bufferevent's
 * reading asked the socket how much waited (ioctl FIONREAD) before each
 * readv: one syscall more per answer, three per order over the chain
 * (issue 14). EOF and errors go where the bufferevent sent them
 * (conn_event), errno still the socket's. */
static void conn_readable(evutil_socket_t fd, short what, void *arg)
{
    cconn *c = arg;
    (void)what;
    char buf[CONN_READ_MAX];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
        if (evbuffer_add(bufferevent_get_input(c->bev), buf, (size_t)n) < 0) {
            errno = ENOMEM;
            conn_event(c->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, c);
            return;
        }
        conn_read(c->bev, c);
        return;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    conn_event(c->bev, BEV_EVENT_READING | (n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR), c);
}

/* ---- starting a call --------------------------------------------------------------- */

static cconn *conn_new(pool *pl, int rep)
{
    cconn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (sl_http_parser_init(&c->p, SL_HTTP_RESPONSE, &(sl_http_limits){ .max_body = 64u << 20 }) < 0) {
        free(c);
        return NULL;
    }
    c->pool = pl;
    c->rep = rep;
    c->bev = bufferevent_socket_new(sl_reactor_base(pl->r), -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        sl_http_parser_fini(&c->p);
        free(c);
        return NULL;
    }
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    const rep_pool *r = &pl->reps[rep];
    pl->reps[rep].nconns++;
    pl->st.connects++;
    if (bufferevent_socket_connect(c->bev, (const struct sockaddr *)&r->sa, (int)r->salen) < 0) {
        /* refused at once (a closed port on loopback can be) */
        bufferevent_free(c->bev);
        c->bev = NULL;
        sl_http_parser_fini(&c->p);
        pl->reps[rep].nconns--;
        free(c);
        return NULL;
    }
    int fd = bufferevent_getfd(c->bev), one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    /* the bufferevent connects and writes (EV_WRITE is on from its start);
     * reading is ours, without its FIONREAD per read */
    c->rev = event_new(sl_reactor_base(pl->r), fd, EV_READ | EV_PERSIST, conn_readable, c);
    if (!c->rev || event_add(c->rev, NULL) < 0) {
        if (c->rev)
            event_free(c->rev);
        bufferevent_free(c->bev);
        sl_http_parser_fini(&c->p);
        pl->reps[rep].nconns--;
        free(c);
        return NULL;
    }
    return c;
}

/* The request's bytes after its head: pv->req, kept whole while another
 * attempt may follow (retries on), else taken; *n its length. */
static const char *request_rest(priv *pv, size_t *n)
{
    *n = evbuffer_get_length(pv->req);
    return *n ? (const char *)evbuffer_pullup(pv->req, -1) : "";
}

/* Writes the request: the head is made for each attempt (the replica's
 * Host, the budget left now); the rest is kept while another attempt may
 * follow.
 *
 * On a connected connection with nothing waiting to go out, the request
 * goes to the socket at once, head and rest in one sendmsg, and only what
 * the socket did not take goes to the bufferevent. Through the bufferevent
 * every call cost two epoll_ctl (its write event added, then deleted once
 * the output drained) and a loop turn before the bytes left; a syscall
 * costs ~1.2 µs of CPU on the machines this was measured on, and the
 * chain makes three calls per order (issue 14, docs/net.md "Where the CPU
 * of an order goes"). */
static void send_request(priv *pv, cconn *c)
{
    const sl_http_upstream *up = pv->pool->up;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    char timeout[SL_GRPC_TIMEOUT_MAX + 16] = "";
    if (pv->deadline) {
        /* what is left now, less the margin (at least 1 ms: a retry is
         * only made with more than that left) */
        uint64_t now = sl_now_ns(), margin = (uint64_t)up->o.margin_ms * SL_NS_PER_MS;
        uint64_t left = pv->deadline > now + margin + SL_NS_PER_MS ? pv->deadline - now - margin : SL_NS_PER_MS;
        memcpy(timeout, "grpc-timeout: ", 14);
        sl_grpc_timeout_format(left, timeout + 14);
        strcat(timeout, "\r\n");
    }
    const char *hosthdr = up->targets[pv->pool->reps[c->rep].target].hosthdr;
    bool keep = pv->retryable && pv->tries < up->o.retries;
    char head[1024];
    int hn = -1;
    if (c->connected && evbuffer_get_length(out) == 0)
        hn = snprintf(head, sizeof head, "%.*sHost: %s\r\ntraceparent: %s\r\n%s%s%s%s", (int)pv->line_len,
                      pv->line, hosthdr, pv->tp, pv->ts ? "tracestate: " : "", pv->ts ? pv->ts : "",
                      pv->ts ? "\r\n" : "", timeout);
    if (hn >= 0 && (size_t)hn < sizeof head) {
        size_t rn;
        const char *rest = request_rest(pv, &rn);
        struct iovec iov[2] = { { head, (size_t)hn }, { (void *)rest, rn } };
        struct msghdr mh = { .msg_iov = iov, .msg_iovlen = rn ? 2 : 1 };
        ssize_t done = sendmsg(bufferevent_getfd(c->bev), &mh, MSG_NOSIGNAL);
        /* an error is left to the bufferevent: it meets it writing what is
         * left (all of it) and reports it as before (conn_event) */
        size_t sent = done > 0 ? (size_t)done : 0;
        if (sent < (size_t)hn)
            evbuffer_add(out, head + sent, (size_t)hn - sent);
        size_t skip = sent > (size_t)hn ? sent - (size_t)hn : 0;
        if (skip < rn)
            evbuffer_add(out, rest + skip, rn - skip);
        if (!keep)
            evbuffer_drain(pv->req, rn);
        pv->sent = (size_t)hn + rn;   /* the whole request: what is still in out was not written */
        return;
    }
    evbuffer_add_printf(out, "%.*sHost: %s\r\ntraceparent: %s\r\n%s%s%s%s", (int)pv->line_len, pv->line,
                        hosthdr, pv->tp, pv->ts ? "tracestate: " : "",
                        pv->ts ? pv->ts : "", pv->ts ? "\r\n" : "", timeout);
    if (keep)
        evbuffer_add(out, evbuffer_pullup(pv->req, -1), evbuffer_get_length(pv->req));
    else
        evbuffer_add_buffer(out, pv->req);
    pv->sent = evbuffer_get_length(out);
}

/* The most recently used idle connection of `rep`, taken off the list, or
 * NULL. One idle past idle_timeout_ms is closed instead (see
 * sl_http_upstream_opts.idle_timeout_ms), and so are those behind it: the
 * list is most recently used first, so they have been idle longer. Closed
 * without handing their slots to waiting calls: a replica with idle
 * connections has none waiting, and the caller takes a slot now. */
static cconn *take_idle(pool *pl, int rep, uint64_t now)
{
    rep_pool *rp = &pl->reps[rep];
    cconn *c = rp->idle;
    if (c && now > c->idle_since && now - c->idle_since >= (uint64_t)pl->up->o.idle_timeout_ms * SL_NS_PER_MS) {
        rp->idle = NULL;
        while (c) {
            cconn *next = c->next;
            conn_drop(c);
            pl->st.expired++;
            c = next;
        }
        return NULL;
    }
    if (c)
        rp->idle = c->next;
    return c;
}

/* Sends pv on an idle connection of `rep`, or a new one. */
static void start_on(priv *pv, int rep)
{
    pool *pl = pv->pool;
    pv->t_attempt = sl_now_ns();
    cconn *c = take_idle(pl, rep, pv->t_attempt);
    if (c) {
        pl->st.reused++;
    } else if (!(c = conn_new(pl, rep))) {
        finish_attempt(pv, -ECONNREFUSED, false);
        return;
    }
    c->call = pv;
    pv->conn = c;
    pv->rep = rep;
    if (pv->head_request)
        sl_http_parser_expect_head_response(&c->p);
    send_request(pv, c);
}

/* The task's deadline or cancel ended the wait: close the connection, so
 * the callee sees the caller go. */
static void on_abort(sl_task *t, void *obj, int err)
{
    priv *pv = obj;
    (void)t;
    if (pv->done) {
        pv->task = NULL;
        return;
    }
    pv->done = true;
    span_end(pv, err);
    pv->task = NULL;
    count(pv->pool, err);
    pool *pl = pv->pool;
    if (pv->queued) {
        unqueue(pl, pv);
        if (pv->probe)
            pl->reps[pv->rep].probing = false;
        return;
    }
    pl->reps[pv->rep].outstanding--;
    observe_attempt(pv, err);
    /* silence until the deadline counts against the replica */
    judge(pl, pv->rep, pv->probe, pv->conn && err == -ETIMEDOUT ? -ETIMEDOUT : -ECANCELED);
    if (pv->conn) {
        cconn *c = pv->conn;
        /* aborted on its connection: reached unless the whole request
         * still sits in the output buffer (say, while connecting) */
        pv->reached |= pv->got_bytes || evbuffer_get_length(bufferevent_get_output(c->bev)) < pv->sent;
        pv->conn = NULL;
        c->call = NULL;
        conn_close(c);
    } else {
        pv->reached = true;   /* between attempts: not known, so assumed */
    }
}

typedef struct pick_arg {
    pool *pl;
    int avoid;
} pick_arg;

static bool in_rotation(void *arg, int r)
{
    const pick_arg *a = arg;
    return r != a->avoid && !a->pl->reps[r].out_until && !a->pl->reps[r].gone;
}

/* The replica for a keyed attempt: the key's owner among all replicas if
 * it is in rotation, or out with its ejection run out (then it is probed);
 * else the best-scored one in rotation other than `avoid` (the one that
 * just failed), which is where the owner's keys go while it is out; else
 * `avoid` itself; with none in rotation (panic), the owner. */
static int pick_key(pool *pl, uint64_t key, int avoid, bool *probe)
{
    *probe = false;
    int owner = sl__rendezvous_pick(key, pl->ids, pl->nreps, is_live, pl);
    if (owner < 0)   /* none left (out of memory for the new ones): any */
        owner = sl__rendezvous_pick(key, pl->ids, pl->nreps, NULL, NULL);
    rep_pool *op = &pl->reps[owner];
    if (owner != avoid && (!op->out_until || (!op->probing && op->out_until <= sl_now_ns()))) {
        *probe = op->out_until != 0;
        return owner;
    }
    int r = sl__rendezvous_pick(key, pl->ids, pl->nreps, in_rotation, &(pick_arg){ pl, avoid });
    if (r < 0 && avoid >= 0 && !pl->reps[avoid].out_until && !pl->reps[avoid].gone)
        r = avoid;
    return r < 0 ? owner : r;
}

/* The replica for an attempt: by key for a keyed call (pick_key); else
 * one whose ejection ran out, to probe it; else the one in rotation with
 * the fewest calls under way (round robin among equals), other than
 * `avoid` (the one that just failed) when there is a choice; with none in
 * rotation (cannot happen: panic), any. */
static int pick(pool *pl, const priv *pv, int avoid, bool *probe)
{
    if (pv->keyed)
        return pick_key(pl, pv->key_hash, avoid, probe);
    int n = pl->nreps, best = -1, fallback = -1;
    uint32_t least = UINT32_MAX;
    uint64_t now = 0;
    *probe = false;
    if (avoid < 0)   /* a retry leaves the turn order alone */
        pl->rr++;
    for (int k = 0; k < n; k++) {
        int r = (int)((pl->rr + (uint32_t)k) % (uint32_t)n);
        rep_pool *rp = &pl->reps[r];
        if (rp->gone)
            continue;
        if (rp->out_until) {
            if (!rp->probing && rp->out_until <= (now ? now : (now = sl_now_ns()))) {
                *probe = true;
                return r;
            }
            continue;
        }
        if (r == avoid) {
            fallback = r;
        } else if (rp->outstanding < least) {
            least = rp->outstanding;
            best = r;
        }
    }
    if (best < 0)
        best = fallback;
    for (int r = 0; best < 0 && r < n; r++)   /* panic: everyone */
        if (!pl->reps[r].gone && pl->reps[r].outstanding < least) {
            least = pl->reps[r].outstanding;
            best = r;
        }
    return best < 0 ? 0 : best;
}

static bool idempotent(const char *m)
{
    return !strcmp(m, "GET") || !strcmp(m, "HEAD") || !strcmp(m, "PUT") || !strcmp(m, "DELETE") ||
           !strcmp(m, "OPTIONS");
}

static const char *method_token(const char *m)
{
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return NULL;
    return *m ? m : NULL;
}

bool sl__upstream_would_refuse(sl_http_upstream *up, sl_reactor *r, uint64_t deadline, uint64_t now)
{
    if (up->o.no_fail_fast)
        return false;
    pool *pl = get_pool(up, r);
    return pl && fail_fast(pl, deadline, now, (uint64_t)up->o.margin_ms * SL_NS_PER_MS) != FF_NO;
}

int sl_http_call(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *method,
                 const char *path, const char *body, size_t body_len)
{
    return sl_http_call_key(t, call, up, method, path, body, body_len, NULL, 0);
}

int sl_http_call_key(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *method,
                     const char *path, const char *body, size_t body_len, const char *key, size_t key_len)
{
    return sl_http_call_flags(t, call, up, method, path, body, body_len, key, key_len, 0);
}

/* The live replica of pl whose address is `addr` ("127.0.0.1:8082"), or -1. */
static int rep_find(pool *pl, const char *addr)
{
    char name[SL_ADDR_STR_MAX];
    for (int r = 0; r < pl->nreps; r++) {
        if (pl->reps[r].gone)
            continue;
        sl__sockaddr_format((const struct sockaddr *)&pl->reps[r].sa, name, sizeof name);
        if (!strcmp(name, addr))
            return r;
    }
    return -1;
}

int sl_http_upstream_replicas(sl_http_upstream *up, sl_http_replica *out, size_t max)
{
    if (!up || (max && !out))
        return -EINVAL;
    sl_reactor *r = sl_reactor_current();
    if (!r || sl_reactor_id(r) < 0 || sl_reactor_id(r) >= up->nreactors)
        return -EPERM;   /* each reactor has its own view: ask on one */
    pool *pl = get_pool(up, r);
    if (!pl)
        return -ENOMEM;
    int n = 0;
    for (int i = 0; i < pl->nreps; i++) {
        if (pl->reps[i].gone)
            continue;
        if ((size_t)n < max)
            sl__sockaddr_format((const struct sockaddr *)&pl->reps[i].sa, out[n].addr, sizeof out[n].addr);
        n++;
    }
    return n;
}

/* A call: by load (key NULL, replica NULL), by key, or to one replica. */
static int call_start(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *replica,
                      const char *method, const char *path, const char *body, size_t body_len, const char *key,
                      size_t key_len, unsigned flags)
{
    memset(call, 0, sizeof *call);
    if (!up || !method_token(method) || !path || path[0] != '/' || strpbrk(path, " \r\n") || (body_len && !body) ||
        (key_len && !key) || (flags & ~SL_HTTP_CALL_UNDO))
        return -EINVAL;
    int rc = sl_task_cancelled(t);
    if (rc)
        return rc;
    pool *pl = get_pool(up, sl_task_reactor(t));
    if (!pl)
        return -ENOMEM;
    int pin = -1;
    if (replica && (pin = rep_find(pl, replica)) < 0)
        return -ENOENT;
    pl->st.calls++;
    uint64_t deadline = sl_task_deadline(t), now = sl_now_ns();
    if (pl->next_resolve && pl->next_resolve <= now)
        resolve_due(pl, now);
    uint32_t cap = up->o.retry_budget_cap * 1000;
    pl->tokens = pl->tokens + up->o.retry_budget_pct * 10 < cap ? pl->tokens + up->o.retry_budget_pct * 10 : cap;
    /* the budget: what the caller has left, less a margin; none left, no call */
    uint64_t margin = (uint64_t)up->o.margin_ms * SL_NS_PER_MS;
    if (deadline && deadline <= now + margin + SL_NS_PER_MS) {
        pl->st.timeouts++;
        return -ETIMEDOUT;
    }
    int ff = up->o.no_fail_fast || (flags & SL_HTTP_CALL_UNDO) ? FF_NO : fail_fast(pl, deadline, now, margin);
    if (ff != FF_NO) {
        pl->st.busy++;
        pl->st.failfast++;
        if (up->ff_series[ff])
            sl_series_add(up->ff_series[ff], 1);
        return -EBUSY;
    }
    /* the caller's trace with a new span (or a fresh trace), and its tracestate */
    sl__call_span span;
    size_t ts_len;
    const char *ts = sl__trace_call_begin(up->o.tracer, sl_task_ctx(t), &span, &ts_len);
    size_t line_len = strlen(method) + strlen(path) + 12;   /* "M P HTTP/1.1\r\n" */
    priv *pv = calloc(1, sizeof *pv + line_len + 1 + (ts ? ts_len + 1 : 0));
    if (!pv || !(pv->req = evbuffer_new())) {
        free(pv);
        return -ENOMEM;
    }
    sl_traceparent_format(&span.tp, pv->tp);
    span.deadline = deadline;
    pv->span = span;
    if (ts)
        pv->ts = memcpy(pv->line + line_len + 1, ts, ts_len + 1);
    snprintf(pv->line, line_len + 1, "%s %s HTTP/1.1\r\n", method, path);
    pv->line_len = line_len;
    pv->deadline = deadline;
    pv->t0 = now;
    pv->call = call;
    pv->task = t;
    pv->pool = pl;
    pv->head_request = !strcmp(method, "HEAD");
    pv->retryable = up->o.retries > 0 && pin < 0;   /* a pinned call has nowhere else to go */
    pv->pinned = pin >= 0;
    pv->keyed = key != NULL && pin < 0;
    pv->undo = flags & SL_HTTP_CALL_UNDO;
    pv->key_hash = key ? sl__hash_bytes(key, key_len) : 0;
    pv->idempotent = idempotent(method);
    call->priv_ = pv;
    snprintf(pv->what, sizeof pv->what, "HTTP %s %s", method, path);
    bool probe = false;
    int rep = pin >= 0 ? pin : pick(pl, pv, -1, &probe);   /* pinned: even while it is ejected */
    if (body_len || strcmp(method, "GET"))
        evbuffer_add_printf(pv->req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    evbuffer_add(pv->req, "\r\n", 2);
    if (body_len)
        evbuffer_add(pv->req, body, body_len);

    rep_pool *rp = &pl->reps[rep];
    pv->rep = rep;
    if (!rp->idle && rp->nconns >= up->o.max_conns) {
        if (pl->nwait >= up->o.max_waiting) {   /* backpressure: no unbounded queue */
            pl->st.busy++;
            pv->done = true;
            span_end(pv, -EBUSY);
            return -EBUSY;
        }
        rc = sl_task_park_as(t, pv, on_abort, pv->what);
        if (rc != SL_PENDING) {
            pv->done = true;
            return rc;
        }
        pv->queued = true;
        SL_LIST_PUSH_BACK(&pl->wq, pv, qlink);
        pl->nwait++;
        return SL_PENDING;
    }
    rc = sl_task_park_as(t, pv, on_abort, pv->what);
    if (rc != SL_PENDING) {
        pv->done = true;
        return rc;
    }
    rp->outstanding++;
    pv->probe = probe;
    rp->probing |= probe;
    start_on(pv, rep);
    return SL_PENDING;   /* even if it already failed: the result comes on resume */
}

int sl_http_call_flags(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *method,
                       const char *path, const char *body, size_t body_len, const char *key, size_t key_len,
                       unsigned flags)
{
    return call_start(t, call, up, NULL, method, path, body, body_len, key, key_len, flags);
}

int sl_http_call_to(sl_task *t, sl_http_resp *call, sl_http_upstream *up, const char *replica, const char *method,
                    const char *path, const char *body, size_t body_len, unsigned flags)
{
    if (!replica) {
        memset(call, 0, sizeof *call);
        return -EINVAL;
    }
    return call_start(t, call, up, replica, method, path, body, body_len, NULL, 0, flags);
}

const char *sl_http_resp_header(const sl_http_resp *call, const char *name, size_t *len)
{
    priv *pv = call->priv_;
    size_t nl = strlen(name);
    for (uint32_t i = 0; pv && i < pv->nhdrs; i++)
        if (sl_http_str_ieq(pv->hdrs[i].name, name, nl)) {
            if (len)
                *len = pv->hdrs[i].value.len;
            return pv->hdrs[i].value.ptr;
        }
    return NULL;
}

bool sl_http_call_reached(const sl_http_resp *call)
{
    /* no priv: refused before anything was made (budget, fail-fast,
     * arguments); a call still under way may reach it any moment */
    const priv *pv = call ? call->priv_ : NULL;
    return pv && (pv->reached || !pv->done);
}

int sl_http_resp_cause(const sl_http_resp *call, sl_cause_info *out)
{
    size_t len;
    const char *v = call && out ? sl_http_resp_header(call, SL_CAUSE_HDR, &len) : NULL;
    if (!v)
        return call && out ? -ENOENT : -EINVAL;
    return sl_cause_hdr_parse(v, len, out);
}

void sl_http_call_end(sl_http_resp *call)
{
    priv *pv = call->priv_;
    if (pv) {
        if (!pv->done)   /* still under way (the caller stopped waiting): abort */
            on_abort(pv->task, pv, -ECANCELED);
        evbuffer_free(pv->req);
        free(pv->hbuf);
        free(pv->hdrs);
        free(pv);
    }
    free(call->body);
    memset(call, 0, sizeof *call);
}
