/* svc.c: setting a service up, running it, and ending it cleanly. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "addr.h"
#include "resolve.h"
#include "svc.h"
#include "svc_env.h"
#include "svc_int.h"
#include "svc_map.h"
#include "svc_store.h"
#include "svc_undo.h"

static svc *g_svc;   /* one service per process; read-only once running */

svc_shard *svc_here(void)
{
    sl_reactor *r = sl_reactor_current();
    return r && g_svc ? &g_svc->shards[sl_reactor_id(r)] : NULL;
}

sl_reactor *svc_owner(svc *s, const char *key, size_t len)
{
    return s->shards[svc_shard_of(key, len, s->n)].r;
}

uint64_t svc_rand(svc_shard *sh)
{
    uint64_t x = sh->rng;   /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    sh->rng = x;
    return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t seed(int i)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 16;
    return (x ^ (uint64_t)(i + 1) * 0x9e3779b97f4a7c15ULL) | 1;
}

/* ---- shutdown: the server drained; end the background tasks, then stop ---------- */

static int closer(sl_task *t, void *arg)
{
    svc_shard *sh = arg;
    int rc;
    SL_BEGIN(t);
    SL_AWAIT(t, rc, sl_group_close(t, &sh->bg));
    (void)rc;
    if (atomic_fetch_sub(&sh->s->closing_left, 1) == 1)
        sl_runtime_stop(sh->s->rt);
    SL_END(t);
}

static void close_shard(void *arg)
{
    svc_shard *sh = arg;
    sh->closing = true;
    if (sl_spawn(NULL, closer, sh, NULL, &(sl_spawn_opts){ .name = "svc shutdown" }) < 0 &&
        atomic_fetch_sub(&sh->s->closing_left, 1) == 1)
        sl_runtime_stop(sh->s->rt);
}

static void on_stopped(sl_http_server *srv, void *arg)
{
    svc *s = arg;
    (void)srv;
    atomic_store(&s->closing_left, s->n);
    for (int i = 0; i < s->n; i++)
        if (sl_reactor_post(s->shards[i].r, close_shard, &s->shards[i]) < 0 &&
            atomic_fetch_sub(&s->closing_left, 1) == 1)
            sl_runtime_stop(s->rt);
}

/* ---- setup ------------------------------------------------------------------------ */

static void synopsis(FILE *f, const svc_prog *p)
{
    fprintf(f, "usage: %s [--listen HOST:PORT] [--threads N] [--timeout-ms MS] [--grace-ms MS] [--prestop-ms MS] "
               "[--max-pending N] [--mode safe|guarded|naive] [--admission on|off] [--data DIR|:memory:] [--sync normal|full] [--admin] [--access-log] [--log-format text|json] [--log-buffer BYTES] [--trace FILE.json] "
               "[--otlp-endpoint URL] [--service-name NAME] [--traces-sampler NAME] [--traces-sampler-arg RATIO]%s%s%s",
            p->name, p->upstream_flag ? " [" : "", p->upstream_flag ? p->upstream_flag : "",
            p->upstream_flag ? (p->has_stock ? " URLS] [--stock ITEM=N,...]" : " URLS]") : "");
    if (p->upstream_flag)
        fputs(" [--upstream-max-conns N] [--upstream-max-waiting N] [--upstream-margin-ms MS]", f);
}

static int usage(const svc_prog *p, const char *msg)
{
    fprintf(stderr, "%s (", msg);
    synopsis(stderr, p);
    fputs(")\n", stderr);
    return 2;
}

/* --help: the synopsis and where the flags come from, on stdout. */
static void help(const svc_prog *p)
{
    synopsis(stdout, p);
    printf("\n\nA service of the sluice demo chain (docs/services.md). Every flag may also be\n"
           "given as an environment variable SLUICE_<FLAG> (upper case, '-' as '_':\n"
           "SLUICE_TIMEOUT_MS=800); a flag on the command line wins over its variable.\n"
           "A flag without a value (--admin) is set by 1/true/yes/on. A bad value, on the\n"
           "command line or in a variable, exits 2 naming it. Defaults: --listen %s,\n"
           "--threads the CPUs this process may use (affinity and cgroup quota),\n"
           "--grace-ms %u, --prestop-ms %u (readiness fails first; docs/net.md, Draining).\n"
           "Probes: GET /livez, GET /readyz; GET /metrics.\n"
           "Logs: stderr, one line per event (and per request with --access-log), with\n"
           "a UTC timestamp; --log-format json writes one JSON object per line. A writer\n"
           "thread writes them: when --log-buffer bytes wait, lines are dropped and\n"
           "counted (sluice_log_dropped_total), never holding up a request.\n",
           p->default_listen, SVC_GRACE_MS, SVC_PRESTOP_MS);
}

static int opts_check(int argc, char **argv, char *err, size_t errlen, void *arg)
{
    svc_opts scratch;
    return svc_opts_parse(&scratch, arg, argc, argv, err, errlen);
}

static void close_store(svc *s);

static void release_all(svc *s)
{
    sl_http_server_free(s->srv);
    sl_http_upstream_free(s->up);
    svc_store_stop(s->store);   /* its replies go to reactors that still exist */
    if (s->rt)
        sl_runtime_free(s->rt);
    sl_tracer_free(s->tracer);
    s->tracer = NULL;
    free(s->shards);
    svc_routes_free(s);
    close_store(s);
    s->srv = NULL;
    s->up = NULL;
    s->rt = NULL;
    s->shards = NULL;
}

/* --data: the program's database (svc_store.h); without it a new
 * temporary directory, named on stderr, removed at a clean exit. */
static int open_store(svc *s, char *err, size_t errlen)
{
    const char *name = s->prog->name;
    if (!s->schema)
        return 0;
    const char *dir = s->o.data;
    if (!dir) {
        const char *tmp = getenv("TMPDIR");
        size_t n = strlen(tmp && *tmp ? tmp : "/tmp") + strlen(name) + 16;
        if (!(s->tmp_data = malloc(n)))
            return snprintf(err, errlen, "%s: out of memory", name), 1;
        snprintf(s->tmp_data, n, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", name);
        if (!mkdtemp(s->tmp_data))
            return snprintf(err, errlen, "%s: cannot make a data directory %s: %s", name, s->tmp_data,
                            strerror(errno)), 1;
        dir = s->tmp_data;
        sl_log(SL_LOG_INFO, "%s: data in %s (a new directory, removed at a clean exit; --data DIR keeps it)",
               name, dir);
    }
    char file[64], why[200];
    snprintf(file, sizeof file, "%s.db", name);
    if (svc_store_open(&s->store, dir, file, s->schema, s->o.sync_full, why, sizeof why) < 0)
        return snprintf(err, errlen, "%s: %.200s", name, why), 1;
    return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void close_store(svc *s)
{
    svc_store_free(s->store);
    s->store = NULL;
    if (s->tmp_data)
        nftw(s->tmp_data, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    free(s->tmp_data);
    s->tmp_data = NULL;
}

static int store_stats(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    svc_store_stats st;
    (void)t;
    svc_store_stats_get(g_svc->store, &st);
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "path", svc_store_path(g_svc->store),
                          "commits", (json_int_t)st.commits, "steps", (json_int_t)st.steps, "reads",
                          (json_int_t)st.reads, "failed", (json_int_t)st.failed, "batch_max",
                          (json_int_t)st.batch_max, "checkpoints", (json_int_t)st.checkpoints, "replies",
                          (json_int_t)st.replies, "queued", (json_int_t)st.queued, "wal_frames",
                          (json_int_t)st.wal_frames, "wal_writes", (json_int_t)st.wal_writes, "wakeups",
                          (json_int_t)st.wakeups, "checkpoints_caught_up", (json_int_t)st.checkpoints_caught_up,
                          "wal_restarts", (json_int_t)st.wal_restarts, "writer_checkpoints",
                          (json_int_t)st.writer_checkpoints);
    return o ? sl_http_reply_json(req, 200, o) : -ENOMEM;
}

/* GET /debug/store: the database's counters (svc_store_stats). */
static int svc_store_route(svc *s)
{
    int rc = sl_http_route(s->srv, "GET", "/debug/store", store_stats, 0, NULL);
    return rc < 0 ? rc : sl_http_route_set(s->srv, "GET", "/debug/store",
                                           &(sl_http_route_opts){ .lane = SL_HTTP_LANE_CONTROL });
}

static int make_all(svc *s, char *err, size_t errlen)
{
    const svc_prog *p = s->prog;
    /* the pool runs the database's read steps (svc_store.h), one per read
     * connection at a time; writes go to the store's writer thread */
    int rc = sl_runtime_new(&s->rt, &(sl_runtime_opts){ .threads = s->o.threads, .offload_threads = 16,
                                                         .offload_queue = 4096 });
    if (rc < 0)
        return snprintf(err, errlen, "%s: runtime: %s", p->name, strerror(-rc)), 1;
    s->n = sl_runtime_threads(s->rt);
    if (svc_tracer_make(&s->o, p->name, &s->tracer, err, errlen) < 0)
        return 2;
    sl_http_server_opts so = { .tracer = s->tracer, .listen = s->o.listen, .name = p->name,
                               .timeout_ms = svc_opts_timeout_ms(&s->o),
                               .grace_ms = s->o.grace_ms,
                               .prestop_ms = s->o.prestop_ms ? s->o.prestop_ms : SL_HTTP_PRESTOP_OFF,
                               /* naive is the seed as written, without sluice's guards:
                                  no budgets, so nothing to admit by; and its requests
                                  hang, which an adaptive limit would turn into 503s */
                               .admission = s->o.admission_off || s->o.mode == SVC_NAIVE
                                                ? SL_HTTP_ADMISSION_FIXED : SL_HTTP_ADMISSION_ADAPTIVE,
                               .access_log = s->o.access_log, .on_stopped = on_stopped,
                               .on_stopped_arg = s };
    if ((rc = sl_http_server_new(&s->srv, s->rt, &so)) < 0) {
        /* what is wrong: the address as written (usage: 2), or its name (1) */
        sl_hostport hp;
        const char *why = "bad --listen";
        sl__hostport_parse(&hp, s->o.listen, strlen(s->o.listen), true, &why);
        if (rc == -EINVAL)
            return snprintf(err, errlen, "%s: bad --listen '%s': %s (HOST:PORT, HOST an IPv4 address, [IPv6] or a name)",
                            p->name, s->o.listen, why), 2;
        return snprintf(err, errlen, "%s: --listen: %.120s: %s", p->name, hp.host,
                        rc == -ENOENT || rc == -EAGAIN ? sl__resolve_strerror(rc) : strerror(-rc)), 1;
    }
    if (p->upstream_flag && (rc = sl_http_upstream_new(&s->up, s->rt, s->o.upstream,
                                                        &(sl_http_upstream_opts){ .tracer = s->tracer,
                                                            .max_conns = s->o.up_max_conns,
                                                            .max_waiting = s->o.up_max_waiting,
                                                            .margin_ms = s->o.up_margin_ms })) < 0)
        return snprintf(err, errlen, "%s: %s %s: %s", p->name, rc == -EINVAL ? "bad" : "cannot use", p->upstream_flag,
                        *sl_http_upstream_last_error() ? sl_http_upstream_last_error() : strerror(-rc)),
               rc == -EINVAL ? 2 : 1;
    if ((rc = svc_metrics_setup(s->srv)) < 0)   /* the services' own families (svc_metrics.h) */
        return snprintf(err, errlen, "%s: metrics: %s", p->name, strerror(-rc)), 1;
    /* /metrics reports the calls to it, under the flag's name ("inventory") */
    if (s->up && (rc = sl_http_server_add_upstream(s->srv, p->upstream_flag + 2, s->up)) < 0)
        return snprintf(err, errlen, "%s: upstream metrics: %s", p->name, strerror(-rc)), 1;
    if (!(s->shards = calloc((size_t)s->n, sizeof *s->shards)))
        return snprintf(err, errlen, "%s: out of memory", p->name), 1;
    for (int i = 0; i < s->n; i++) {
        svc_shard *sh = &s->shards[i];
        *sh = (svc_shard){ .s = s, .r = sl_runtime_reactor(s->rt, i), .id = i, .rng = seed(i) };
        sl_group_init(&sh->bg, sh->r);
    }
    svc_undo_set_limit(s->o.max_pending);
    if ((rc = svc_undo_route(s)) < 0)
        return snprintf(err, errlen, "%s: compensation route: %s", p->name, strerror(-rc)), 1;
    if (s->store && (rc = svc_store_route(s)) < 0)
        return snprintf(err, errlen, "%s: store route: %s", p->name, strerror(-rc)), 1;
    if (s->o.admin && (rc = svc_admin_routes(s)) < 0)
        return snprintf(err, errlen, "%s: admin routes: %s", p->name, strerror(-rc)), 1;
    return 0;
}

int svc_setup(svc *s, const svc_prog *p, int argc, char **argv)
{
    char err[256];
    g_svc = s;
    s->prog = p;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            help(p);
            exit(0);
        }
    /* the flags from SLUICE_ variables first: the command line wins. The
     * options keep pointers to the values (argv's and environ's strings),
     * none into the array, which goes at once. */
    char **eargv;
    int eargc;
    int erc = svc_env_argv(p->name, argc, argv, NULL, opts_check, (void *)p, &eargv, &eargc, err, sizeof err);
    if (erc == -ENOMEM)
        return fprintf(stderr, "%s: out of memory\n", p->name), 1;
    if (erc < 0) {
        fprintf(stderr, "%s\n", err);
        return 2;
    }
    erc = svc_opts_parse(&s->o, p, eargc, eargv, err, sizeof err);
    free(eargv);
    if (erc < 0 || (s->check && s->check(s, err, sizeof err) < 0))
        return usage(p, err);
    /* from here on the events (and the access log) go through the sink's
     * writer thread; exit() writes what is buffered (atexit) */
    int rc = sl_log_open(&(sl_log_opts){ .fd = 2, .format = s->o.log_json ? SL_LOG_JSON : SL_LOG_TEXT,
                                         .buffer_bytes = s->o.log_buffer });
    if (rc < 0)
        return fprintf(stderr, "%s: log: %s\n", p->name, strerror(-rc)), 1;
    atexit(sl_log_close);
    rc = open_store(s, err, sizeof err);
    if (rc == 0)
        rc = make_all(s, err, sizeof err);
    if (rc) {
        release_all(s);
        return rc == 2 ? usage(p, err) : (sl_log(SL_LOG_ERROR, "%s", err), rc);
    }
    return 0;
}

/* ---- running ---------------------------------------------------------------------- */

static void teardown(svc *s)
{
    for (int i = 0; s->shards && i < s->n; i++)
        if (s->app_free)
            s->app_free(&s->shards[i]);
    free(s->shards);
    s->shards = NULL;
    svc_routes_free(s);
    close_store(s);
}

/* svc_run could not start: the process ends; its default data directory
 * (nothing was served from it) goes too. */
static int run_failed(svc *s)
{
    if (s->tmp_data)
        nftw(s->tmp_data, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return 1;
}

int svc_run(svc *s)
{
    const char *name = s->prog->name;
    int rc = 0;
    for (int i = 0; i < s->n && rc == 0; i++)
        if (s->app_init)
            rc = s->app_init(&s->shards[i]);
    if (rc < 0) {
        sl_log(SL_LOG_ERROR, "%s: %s", name, strerror(-rc));
        return run_failed(s);
    }
    if (s->store) {   /* recovery: the program's, then the outbox's rows */
        char err[256] = "";
        long n = 0;
        if (s->recover && (rc = s->recover(s, err, sizeof err)) < 0) {
            sl_log(SL_LOG_ERROR, "%s: %s: %s", name, svc_store_path(s->store), *err ? err : strerror(-rc));
            return run_failed(s);
        }
        if ((rc = svc_undo_resume(s, &n)) < 0) {
            sl_log(SL_LOG_ERROR, "%s: %s: reading the outbox: %s", name, svc_store_path(s->store), strerror(-rc));
            return run_failed(s);
        }
        if (n)
            sl_log(SL_LOG_INFO, "%s: resuming %ld compensations of the outbox", name, n);
    }
    /* the pool's threads now, not in the first request's step */
    if (s->store && (rc = sl_offload_start(s->rt)) < 0) {
        sl_log(SL_LOG_ERROR, "%s: worker threads: %s", name, strerror(-rc));
        return run_failed(s);
    }
    if ((rc = sl_http_server_start(s->srv)) < 0 || (rc = sl_http_server_handle_signals(s->srv)) < 0) {
        sl_log(SL_LOG_ERROR, "%s: cannot listen on %s: %s%s", name, s->o.listen, strerror(-rc),
                rc == -EADDRINUSE ? " (another process listens on this port)" : "");
        return run_failed(s);
    }
    if (s->o.trace && (rc = sl_trace_start(s->rt, s->o.trace, 0)) < 0) {
        sl_log(SL_LOG_ERROR, "%s: --trace %s: %s", name, s->o.trace, strerror(-rc));
        return run_failed(s);
    }
    const char *colon = strrchr(s->o.listen, ':');
    printf("listening on %.*s:%d\n", (int)(colon - s->o.listen), s->o.listen, sl_http_server_port(s->srv));
    fflush(stdout);
    sl_log(SL_LOG_INFO, "%s: listening on %.*s:%d (mode %s, %d threads)", name, (int)(colon - s->o.listen),
           s->o.listen, sl_http_server_port(s->srv), svc_mode_name(s->o.mode), s->n);
    sl_runtime_run(s->rt);
    sl_http_server_free(s->srv);
    sl_http_upstream_free(s->up);
    svc_store_stop(s->store);   /* before the reactors its replies go to are freed */
    int leaks = sl_runtime_free(s->rt);
    sl_tracer_free(s->tracer);   /* last: sends what is left */
    s->tracer = NULL;
    teardown(s);
    sl_log(SL_LOG_INFO, "%s: stopped", name);
    return leaks ? 1 : 0;
}

/* ---- the common shard state: one map ------------------------------------------------------ */

int svc_one_map_init(svc_shard *sh)
{
    svc_map *m = calloc(1, sizeof *m);
    if (!m || svc_map_init(m, 1024) < 0) {
        free(m);
        return -ENOMEM;
    }
    sh->app = m;
    return 0;
}

static void node_free(svc_node *n) { free(n); }

void svc_one_map_free(svc_shard *sh)
{
    if (sh->app)
        svc_map_free(sh->app, node_free);
    free(sh->app);
    sh->app = NULL;
}
