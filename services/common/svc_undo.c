/* svc_undo.c: the outbox of undo calls; see svc_undo.h.
 *
 * One task per entry rather than one queue drained by a worker: an entry
 * waits on its own backoff timer and its own call, so a callee that hangs
 * on one undo does not hold up the others, and /debug/tasks names each. The
 * counters are process-wide atomics: entries are posted and end on every
 * reactor, and the bound is the process's memory, not a reactor's. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "svc_store.h"
#include "svc_metrics.h"
#include "svc_undo.h"

static struct {
    atomic_long pending, posted, completed, attempts, refused, abandoned;
    long limit;               /* set before the reactors run */
} U = { .limit = SVC_UNDO_MAX };

typedef struct undo {
    svc *s;
    char path[32];
    char body[SVC_UNDO_BODY_MAX];
    size_t len;
    char name[96];            /* the task's name: lives as long as the task */
    char key[48];             /* the order id: names the task */
    int attempts, rounds, status, rc;
    bool acked;
    int64_t seq;              /* its outbox row (0: none) */
    svc_db db;
    uint64_t backoff_ms, deadline;
    sl_http_resp resp;
    /* every replica must acknowledge (svc_undo.h, "Every replica") */
    sl_http_replica *reps;    /* this round's list of the upstream's replicas */
    int nreps, i, missing;
    sl_http_replica *done;    /* those that acknowledged, in any round */
    int ndone, capdone;
} undo;

void svc_undo_set_limit(uint32_t max) { U.limit = max ? (long)max : SVC_UNDO_MAX; }

bool svc_undo_full(void) { return atomic_load(&U.pending) >= U.limit; }

long svc_undo_pending(void) { return atomic_load(&U.pending); }

/* Acknowledged: done, or the callee never had it (and now never will). */
static bool acked(int status) { return status == 200 || status == 404; }

/* The next sleep: uniform in [b/2, b], then b doubles up to the cap. */
static uint64_t next_backoff(undo *u)
{
    uint64_t b = u->backoff_ms, half = b / 2;
    uint64_t ms = half + svc_rand(svc_here()) % (b - half + 1);
    u->backoff_ms = b * 2 > SVC_UNDO_CAP_MS ? SVC_UNDO_CAP_MS : b * 2;
    return ms;
}

static int outbox_del(svc_conn *c, void *io)
{
    int rc;
    sqlite3_stmt *s = svc_conn_prepare(c, "DELETE FROM outbox WHERE seq = ?1", &rc);
    if (!s)
        return rc;
    sqlite3_bind_int64(s, 1, *(int64_t *)io);
    return svc_conn_done(c, sqlite3_step(s));
}

static const svc_dbstep outbox_del_step = { "outbox entry acknowledged", outbox_del, .write = true };

/* Whether `addr` acknowledged already. */
static bool done_has(const undo *u, const char *addr)
{
    for (int k = 0; k < u->ndone; k++)
        if (!strcmp(u->done[k].addr, addr))
            return true;
    return false;
}

/* Records that `addr` acknowledged; false when out of memory (it is
 * asked again next round: harmless, undos are idempotent). */
static bool done_add(undo *u, const char *addr)
{
    if (u->ndone == u->capdone) {
        int cap = u->capdone ? u->capdone * 2 : 2;
        sl_http_replica *d = realloc(u->done, (size_t)cap * sizeof *d);
        if (!d)
            return false;
        u->done = d;
        u->capdone = cap;
    }
    u->done[u->ndone++] = u->reps[u->i];
    return true;
}

/* This round's list: the replicas the reactor knows now. */
static int list_replicas(undo *u)
{
    int n = sl_http_upstream_replicas(u->s->up, NULL, 0);
    if (n <= 0)
        return n;
    sl_http_replica *r = realloc(u->reps, (size_t)n * sizeof *r);
    if (!r)
        return -ENOMEM;
    u->reps = r;
    int m = sl_http_upstream_replicas(u->s->up, u->reps, (size_t)n);
    return m < 0 ? m : (m < n ? m : n);
}

static int undo_task(sl_task *t, void *arg)
{
    undo *u = arg;
    SL_BEGIN(t);
    for (;;) {
        /* a round: every replica listed now that has not acknowledged yet
         * is asked once, one after the other */
        u->nreps = list_replicas(u);
        u->missing = u->nreps <= 0;   /* no list (no memory): not done */
        if (u->rounds++ > 0)
            svc_metrics_undo("retried", 0);
        for (u->i = 0; u->i < u->nreps; u->i++) {
            if (done_has(u, u->reps[u->i].addr))
                continue;
            /* each attempt has a budget of its own; the task has none */
            u->deadline = sl_ctx_narrow(t, SVC_UNDO_CALL_MS);
            /* an undo is never refused by fail-fast: the callee admits it
             * on its undo lane, however many of its orders it sheds */
            SL_AWAIT(t, u->rc, sl_http_call_to(t, &u->resp, u->s->up, u->reps[u->i].addr, "POST", u->path,
                                               u->body, u->len, SL_HTTP_CALL_UNDO));
            sl_task_set_deadline(t, u->deadline);
            u->status = svc_upstream_status(u->rc, &u->resp);
            sl_http_call_end(&u->resp);
            u->attempts++;
            atomic_fetch_add(&U.attempts, 1);
            if (sl_task_cancelled(t))   /* shutdown: undo_free reports it */
                SL_RETURN(t, 0);
            if (u->rc == -ENOENT)       /* retired by a lookup meanwhile: not waited for */
                continue;
            if (!acked(u->status) || !done_add(u, u->reps[u->i].addr))
                u->missing++;
        }
        if (!u->missing) {
            u->acked = true;
            break;
        }
        SL_AWAIT(t, u->rc, sl_sleep(t, next_backoff(u) * SL_NS_PER_MS));
        if (u->rc < 0)
            SL_RETURN(t, 0);
    }
    /* acknowledged by all: the row goes (if this fails, or the service
     * stops first, the next start posts it again: undos are idempotent) */
    if (u->seq && u->s->store) {
        SVC_DB(t, u->rc, &u->db, u->s->store, &outbox_del_step, &u->seq);
        (void)u->rc;
    }
    SL_END(t);
}

static void undo_free(void *arg)
{
    undo *u = arg;
    sl_http_call_end(&u->resp);
    free(u->reps);
    free(u->done);
    atomic_fetch_sub(&U.pending, 1);
    svc_metrics_undo(u->acked ? "completed" : "abandoned", -1);
    if (u->acked) {
        atomic_fetch_add(&U.completed, 1);
    } else {
        atomic_fetch_add(&U.abandoned, 1);
        sl_log(SL_LOG_WARN,
               "%s: shutdown: undo POST %s %s still pending after %d attempts (last answer %d; "
               "acknowledged by %d replicas)",
               u->s->prog->name, u->path, u->body, u->attempts, u->status, u->ndone);
    }
    free(u);
}

static int undo_spawn(svc *s, sl_ctx *base, const char *path, const char *body, size_t len, const char *key,
                      int64_t seq)
{
    if (!s->up || !key || len >= SVC_UNDO_BODY_MAX || strlen(path) >= sizeof ((undo *)0)->path ||
        strlen(key) >= sizeof ((undo *)0)->key)
        return -EINVAL;
    atomic_fetch_add(&U.pending, 1);   /* no room check: see svc_undo.h, "Bounded" */
    undo *u = calloc(1, sizeof *u);
    sl_ctx *ctx = NULL;
    int rc = !u || !base ? -ENOMEM : sl_ctx_without_cancel(&ctx, base);
    if (rc == 0) {
        u->s = s;
        u->seq = seq;
        strcpy(u->path, path);
        memcpy(u->body, body, len);
        u->len = len;
        u->backoff_ms = SVC_UNDO_BACKOFF_MS;
        strcpy(u->key, key);
        snprintf(u->name, sizeof u->name, "undo POST %s %s", path, key);
        rc = svc_spawn_bg(ctx, undo_task, u, u->name, undo_free);
    }
    sl_ctx_unref(ctx);
    if (rc < 0) {
        atomic_fetch_sub(&U.pending, 1);
        atomic_fetch_add(&U.refused, 1);
        svc_metrics_undo("refused", 0);
        free(u);
        return rc;
    }
    atomic_fetch_add(&U.posted, 1);
    svc_metrics_undo("posted", 1);
    return 0;
}

int svc_undo_post(svc_job *job, const char *path, const char *body, size_t len, const char *key, int64_t seq)
{
    return undo_spawn(job->s, svc_job_link_ctx(job), path, body, len, key, seq);
}

int svc_undo_post_bg(svc *s, const char *path, const char *body, size_t len, const char *key, int64_t seq)
{
    sl_ctx *base = NULL;
    sl_traceparent tp;
    sl_traceparent_new(&tp);   /* a trace of its own, as a request would have */
    int rc = sl_ctx_with_trace(&base, sl_ctx_background(), &tp);
    if (rc == 0)
        rc = undo_spawn(s, base, path, body, len, key, seq);
    sl_ctx_unref(base);
    return rc;
}

/* ---- resumed at start ---------------------------------------------------------------- */

typedef struct resumed {
    struct resumed *next;
    int64_t seq;
    char path[32], key[48];
    char body[SVC_UNDO_BODY_MAX];
} resumed;

typedef struct resume_list {
    resumed *head;
    svc *s;
} resume_list;

static int outbox_load(svc_conn *c, void *arg)
{
    resume_list *l = arg;
    int rc;
    sqlite3_stmt *s = svc_conn_prepare(c, "SELECT seq, path, body, key FROM outbox ORDER BY seq DESC", &rc);
    if (!s)
        return rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        resumed *r = calloc(1, sizeof *r);
        if (!r)
            return -ENOMEM;
        r->seq = sqlite3_column_int64(s, 0);
        snprintf(r->path, sizeof r->path, "%s", (const char *)sqlite3_column_text(s, 1));
        snprintf(r->body, sizeof r->body, "%s", (const char *)sqlite3_column_text(s, 2));
        snprintf(r->key, sizeof r->key, "%s", (const char *)sqlite3_column_text(s, 3));
        r->next = l->head;
        l->head = r;
    }
    return svc_conn_done(c, rc);
}

/* On reactor 0, once it runs: every row becomes a pending entry again. */
static void resume_on_reactor(void *arg)
{
    resume_list *l = arg;
    for (resumed *r = l->head, *next; r; r = next) {
        next = r->next;
        int rc = svc_undo_post_bg(l->s, r->path, r->body, strlen(r->body), r->key, r->seq);
        if (rc < 0)
            sl_log(SL_LOG_ERROR, "%s: cannot resume undo POST %s %s: %s (the next start retries it)",
                   l->s->prog->name, r->path, r->body, strerror(-rc));
        free(r);
    }
    free(l);
}

int svc_undo_resume(svc *s, long *n)
{
    resume_list *l = calloc(1, sizeof *l);
    *n = 0;
    if (!l)
        return -ENOMEM;
    l->s = s;
    int rc = svc_store_exec_now(s->store, outbox_load, l);
    for (resumed *r = l->head; r; r = r->next)
        (*n)++;
    if (rc == 0 && (rc = sl_reactor_post(s->shards[0].r, resume_on_reactor, l)) == 0)
        return 0;
    while (l->head) {
        resumed *r = l->head;
        l->head = r->next;
        free(r);
    }
    free(l);
    return rc;
}

/* ---- GET /debug/compensations ------------------------------------------------------ */

static int undo_stats(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    (void)t;
    json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "pending", (json_int_t)atomic_load(&U.pending),
                          "posted", (json_int_t)atomic_load(&U.posted), "completed",
                          (json_int_t)atomic_load(&U.completed), "attempts", (json_int_t)atomic_load(&U.attempts),
                          "refused", (json_int_t)atomic_load(&U.refused), "abandoned",
                          (json_int_t)atomic_load(&U.abandoned), "limit", (json_int_t)U.limit);
    return o ? sl_http_reply_json(req, 200, o) : -ENOMEM;
}

int svc_undo_route(svc *s)
{
    int rc = sl_http_route(s->srv, "GET", "/debug/compensations", undo_stats, 0, NULL);
    return rc < 0 ? rc : sl_http_route_set(s->srv, "GET", "/debug/compensations",
                                           &(sl_http_route_opts){ .lane = SL_HTTP_LANE_CONTROL });
}
