/* svc_store.c: SQLite with a writer thread per database and group
 * commit; reads through the runtime's offload pool; see svc_store.h.
 *
 * The writer is a thread of the store's own. Reactors append write steps
 * to its queue (a mutex-guarded list: three stores under an uncontended
 * lock, and it makes cancel-while-queued exact) and wake it, when it
 * sleeps, once at the end of the turn that queued them; it takes
 * everything queued at once, runs it as one transaction (a savepoint per
 * step), commits, and answers each reactor with ONE
 * message carrying the results of all that reactor's steps of the batch.
 * So a step costs at most two thread switches (reactor -> writer ->
 * reactor), and under load fewer: a batch of N steps from one reactor
 * costs one wake-up each way. The earlier design made the pool's workers
 * take turns as the writer: a step went reactor -> worker (futex) ->
 * writer-worker (condvar) -> worker -> reactor, ~4 switches, and the
 * workers polled with sched_yield between them (issue 16's profile: ~40%
 * of the chain's CPU in the kernel switching threads). */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "svc.h"
#include "svc_store.h"
#include "svc_walvfs.h"

#define READERS 16            /* read connections (at most one per pool thread) */
#define STMTS 32              /* cached statements per connection, at first: it grows */
#define BUSY_MS 5000          /* a reader waiting for a checkpoint's lock, at most */
#define CKPT_PAGES 1000       /* the WAL's size (pages) that calls for a checkpoint */
#define FINISH_FRAMES 1000    /* at most this many past the checkpointer's pass: the writer finishes */

struct svc_conn {
    sqlite3 *db;
    struct svc_conn_stmt_ { const char *sql; sqlite3_stmt *s; } *cache;
    int n, cap;
    bool busy;                /* a reader in use (under the store's mutex) */
};

/* A step on its way. A write's lives: on its reactor (made, parked on),
 * in the writer's queue (under st->mu), in the writer's batch (the writer
 * thread's only), in the reply home (a message), and on its reactor again,
 * which frees it. A read's goes through the offload pool instead. */

typedef struct svc_dbreq {
    struct svc_dbreq *next;   /* the writer's queue; then its batch and reply */
    sl_msg msg;               /* the reply home, when this step heads its reactor's group */
    svc_store *st;
    const svc_dbstep *step;
    sl_reactor *home;
    sl_task *task;            /* home's only: the waiting task, NULL once it gave up */
    svc_conn *conn;           /* a read's connection while it runs (under mu) */
    int rc;
    size_t io_size;
    alignas(16) unsigned char io[];
} svc_dbreq;

#define WQ_MAX 4096           /* write steps queued at most: then -EBUSY */

struct svc_store {
    pthread_mutex_t mu;
    pthread_cond_t cv;        /* readers waiting for a connection */
    /* the writer thread's queue, under mu */
    svc_dbreq *head, *tail;
    size_t nq;
    bool w_idle;              /* the writer sleeps (on w_seq) */
    bool w_stop;              /* svc_store_stop: drain the queue, then end */
    bool w_started, w_joined;
    /* The writer's sleep: a futex word, bumped by whoever wakes it. A
     * condition variable cost four futex calls a sleep (glibc: the signal
     * woke both of its group words, and the writer, relocking the mutex
     * as contended, woke it at its unlock for nobody): two here. */
    _Atomic uint32_t w_seq;
    pthread_t w_th;
    svc_conn w;
    svc_conn r[READERS];
    int nr;
    bool memory;
    /* the checkpointer: a thread of its own copies the WAL into the
     * database (and fsyncs both), so that no commit waits for that */
    svc_conn ck;
    pthread_t ck_th;
    bool ck_started, ck_stop, ck_due;
    pthread_cond_t ck_cv;
    _Atomic uint64_t checkpoints, ck_caught_up, wal_restarts, w_checkpoints;
    int wal_last;             /* the WAL's frames after the last commit (the writer's) */
    /* The WAL begins anew (wal_hook) only when the writer begins a
     * transaction with it all copied. wal_cycle counts the beginnings;
     * ck_mark is the checkpointer's last pass, (cycle << 32) | frames
     * copied; w_finish tells the writer to copy the rest itself, between
     * two batches (writer_main). */
    _Atomic uint32_t wal_cycle;
    _Atomic uint64_t ck_mark, ck_passes;
    bool w_finish;            /* the writer's */
    uint64_t w_finish_mark;   /* the writer's: the ck_mark it finishes after */
    uint64_t w_finished;      /* the writer's: the ck_mark it last finished after */
    uint64_t ck_asked;        /* the writer's: ck_passes when it last asked for a pass (+ 1) */
    _Atomic uint64_t commits, steps, reads, failed, batch_max, replies, wakeups;
    unsigned test_delay_ms;   /* SVC_TEST_STORE_DELAY_MS: a slow disk, for the tests */
    char path[];
};

/* The stores whose sleeping writers this reactor thread owes a wake-up
 * for the steps its turn has queued so far (a reactor is one thread). */
#define OWED_MAX 8
static _Thread_local struct {
    svc_store *st[OWED_MAX];
    int n;
} owed;

int64_t svc_conn_now(void)
{
    return (int64_t)time(NULL);
}

sqlite3 *svc_conn_db(svc_conn *c) { return c->db; }

sqlite3_stmt *svc_conn_stmt(svc_conn *c, const char *sql)
{
    for (int i = 0; i < c->n; i++)
        if (c->cache[i].sql == sql) {
            sqlite3_stmt *s = c->cache[i].s;
            sqlite3_reset(s);
            sqlite3_clear_bindings(s);
            return s;
        }
    /* Every statement prepared is in the cache, which finalizes it at
     * conn_close: the caller never finalizes. The cache grows rather than
     * evicting: its keys are string literals, so their number is fixed by
     * the program's text (the services use ~40), and a statement evicted
     * while a step still holds it (a SELECT being walked while an INSERT
     * is prepared) would be finalized under the step's feet. (A statement
     * past a fixed cache, prepared anew each call and never finalized,
     * was a leak per call: issue leaks, test_svc_store's
     * test_many_statements.) */
    if (c->n == c->cap) {
        int cap = c->cap ? 2 * c->cap : STMTS;
        struct svc_conn_stmt_ *more = realloc(c->cache, (size_t)cap * sizeof *more);
        if (!more)
            return NULL;   /* out of memory; nothing prepared, nothing to free */
        c->cache = more;
        c->cap = cap;
    }
    sqlite3_stmt *s = NULL;
    if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL) != SQLITE_OK)
        return NULL;
    c->cache[c->n++] = (struct svc_conn_stmt_){ sql, s };
    return s;
}

sqlite3_stmt *svc_conn_prepare(svc_conn *c, const char *sql, int *rc)
{
    sqlite3_stmt *s = svc_conn_stmt(c, sql);
    if (!s && (*rc = svc_conn_done(c, sqlite3_errcode(c->db))) == 0)
        *rc = -EIO;
    return s;
}

int svc_conn_done(svc_conn *c, int rc)
{
    (void)c;
    switch (rc & 0xff) {
    case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return 0;
    case SQLITE_FULL: return -ENOSPC;
    case SQLITE_NOMEM: return -ENOMEM;
    case SQLITE_BUSY: case SQLITE_LOCKED: return -EBUSY;
    case SQLITE_READONLY: return -EROFS;
    case SQLITE_INTERRUPT: return -EINTR;
    case SQLITE_CONSTRAINT: return -EEXIST;
    default: return -EIO;
    }
}

/* Ends every statement the step left on a row: an active statement keeps
 * its connection's read transaction, hence an old snapshot, open (and
 * holds back checkpoints). */
static void conn_idle(svc_conn *c)
{
    for (int i = 0; i < c->n; i++)
        sqlite3_reset(c->cache[i].s);
}

static int exec(svc_conn *c, const char *sql)
{
    sqlite3_stmt *s = svc_conn_stmt(c, sql);
    return s ? svc_conn_done(c, sqlite3_step(s)) : svc_conn_done(c, sqlite3_errcode(c->db));
}

int svc_conn_outbox_add(svc_conn *c, const char *path, const char *body, const char *key, int64_t *seq)
{
    sqlite3_stmt *s = svc_conn_stmt(c, "INSERT INTO outbox(path, body, key) VALUES (?1, ?2, ?3)");
    if (!s)
        return svc_conn_done(c, sqlite3_errcode(c->db));
    sqlite3_bind_text(s, 1, path, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, body, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, key, -1, SQLITE_STATIC);
    int rc = svc_conn_done(c, sqlite3_step(s));
    if (rc == 0)
        *seq = sqlite3_last_insert_rowid(c->db);
    return rc;
}

static void *writer_main(void *arg);
static void writer_signal(svc_store *st);

/* ---- opening -------------------------------------------------------------------------- */

static void conn_close(svc_conn *c)
{
    for (int i = 0; i < c->n; i++)
        sqlite3_finalize(c->cache[i].s);
    free(c->cache);
    c->cache = NULL;
    c->n = c->cap = 0;
    sqlite3_close_v2(c->db);
    c->db = NULL;
}

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

static const char outbox_schema[] =
    "CREATE TABLE IF NOT EXISTS outbox(seq INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, "
    "body TEXT NOT NULL, key TEXT NOT NULL);";

static int conn_open(svc_store *st, svc_conn *c, bool writer, bool sync_full, char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    /* a file: through the VFS that writes a commit's WAL frames with one
     * pwrite, not two per page (svc_walvfs.h) */
    if (!st->memory && svc_walvfs_register() < 0)
        return fail(err, errlen, "%s: cannot register the %s VFS", st->path, SVC_WALVFS);
    int rc = sqlite3_open_v2(st->path, &c->db, flags, st->memory ? NULL : SVC_WALVFS);
    char *msg = NULL;
    if (rc != SQLITE_OK)
        return fail(err, errlen, "%s: %s", st->path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    sqlite3_busy_timeout(c->db, BUSY_MS);
    sqlite3_extended_result_codes(c->db, 0);
    if (st->memory)
        return 0;
    char sql[160];
    /* journal_mode answers the mode in force: anything but "wal" is a failure */
    sqlite3_stmt *s = NULL;
    rc = sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW &&
        strcmp((const char *)sqlite3_column_text(s, 0), "wal") != 0)
        rc = SQLITE_CANTOPEN;
    sqlite3_finalize(s);
    if (rc != SQLITE_ROW)
        return fail(err, errlen, "%s: %s", st->path,
                    rc == SQLITE_CANTOPEN && writer ? "cannot use WAL mode"
                    : (rc & 0xff) == SQLITE_BUSY    ? "database is locked: another process has it open "
                                                      "(one process per data directory)"
                                                    : sqlite3_errmsg(c->db));
    /* memory: the writer's page cache is SQLite's default (2 MiB), the
     * readers' and the checkpointer's 512 KiB each: at most ~11 MiB of
     * cache however large the database grows */
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%s;%s", sync_full ? "FULL" : "NORMAL",
             writer ? "" : "PRAGMA cache_size=-512;");
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        fail(err, errlen, "%s: %s", st->path, msg ? msg : "synchronous");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

/* After each commit (on the writer): wake the checkpointer when the WAL
 * has grown past CKPT_PAGES. The writer's own automatic checkpoint is off:
 * it would run in the commit, holding up every step of the next batch for
 * a copy and two fsyncs. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    svc_store *st = arg;
    (void)db;
    (void)name;
    if (pages < st->wal_last) {   /* this commit began the WAL anew */
        atomic_fetch_add_explicit(&st->wal_restarts, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&st->wal_cycle, 1, memory_order_relaxed);
    }
    st->wal_last = pages;
    if (pages < CKPT_PAGES)
        return SQLITE_OK;
    /* A PASSIVE checkpoint under steady writes rarely lets the WAL begin
     * anew: that needs the writer to begin a transaction after a pass
     * that copied it all, with no commit in between, and a pass lasts two
     * fsyncs (a millisecond or more) while the writer commits every few
     * hundred microseconds. So the checkpointer, asked again at every
     * commit, copied the few frames each commit added, again and again:
     * with the chain's services on one CPU, 0.03-0.06 checkpoints per
     * order and 10-14 us of the checkpointer's CPU per order with
     * --threads 2 (issue 17). Now the checkpointer is asked once, for the
     * bulk, and once its pass is over the writer copies what came
     * meanwhile itself, before its next batch (writer_main): one short
     * stall per WAL, after which its next transaction begins the WAL
     * anew. Only if that pass fell more than FINISH_FRAMES behind is the
     * checkpointer asked again. (Asking it once per 1000 pages, with
     * nobody finishing, was tried in issue 16: 10x fewer checkpoints, but
     * the WAL grew to 190 MB in a 5 s chain bench, and orders/s fell.) */
    uint64_t passes = atomic_load_explicit(&st->ck_passes, memory_order_acquire);
    uint64_t m = atomic_load_explicit(&st->ck_mark, memory_order_acquire);
    uint32_t done = (uint32_t)m;
    /* once per pass of the checkpointer's: if the WAL does not begin
     * anew after the writer's pass (a reader held it), the next try
     * starts with a pass of the checkpointer's again, not with a stall of
     * the writer's per batch */
    if ((uint32_t)(m >> 32) == atomic_load_explicit(&st->wal_cycle, memory_order_relaxed) && done &&
        (uint32_t)pages - done <= FINISH_FRAMES && m != st->w_finished) {
        st->w_finish = true;
        st->w_finish_mark = m;
        return SQLITE_OK;
    }
    if (passes + 1 == st->ck_asked)
        return SQLITE_OK;   /* asked already, and no pass has ended since */
    st->ck_asked = passes + 1;   /* + 1: 0 is "never asked" */
    pthread_mutex_lock(&st->mu);
    if (!st->ck_due) {
        st->ck_due = true;
        pthread_cond_signal(&st->ck_cv);
    }
    pthread_mutex_unlock(&st->mu);
    return SQLITE_OK;
}

static void *checkpointer(void *arg)
{
    svc_store *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->ck_due && !st->ck_stop)
            pthread_cond_wait(&st->ck_cv, &st->mu);
        if (st->ck_stop)
            break;
        st->ck_due = false;
        pthread_mutex_unlock(&st->mu);
        /* PASSIVE: copies what no reader needs, never waits for the writer */
        int log = -1, done = -1;
        /* read before the pass: a pass that the WAL's new beginning
         * overtakes is then of the old cycle, and wal_hook ignores it */
        uint32_t cycle = atomic_load_explicit(&st->wal_cycle, memory_order_relaxed);
        sqlite3_wal_checkpoint_v2(st->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        atomic_fetch_add(&st->checkpoints, 1);
        if (log >= 0 && done == log)   /* copied to the WAL's end as it was then */
            atomic_fetch_add_explicit(&st->ck_caught_up, 1, memory_order_relaxed);
        if (done > 0)
            atomic_store_explicit(&st->ck_mark, (uint64_t)cycle << 32 | (uint32_t)done, memory_order_release);
        atomic_fetch_add_explicit(&st->ck_passes, 1, memory_order_release);   /* after the mark: wal_hook */
        pthread_mutex_lock(&st->mu);
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* The data directory: made if missing (its parent must exist). */
static int data_dir(const char *dir, char *err, size_t errlen)
{
    struct stat sb;
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return fail(err, errlen, "--data %s: cannot create the directory: %s", dir, strerror(errno));
    if (stat(dir, &sb) < 0)
        return fail(err, errlen, "--data %s: %s", dir, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return fail(err, errlen, "--data %s: not a directory", dir);
    return 0;
}

int svc_store_open(svc_store **out, const char *dir, const char *file, const char *schema, bool sync_full,
                   char *err, size_t errlen)
{
    bool memory = !strcmp(dir, ":memory:");
    *out = NULL;
    if (!memory && data_dir(dir, err, errlen) < 0)
        return -1;
    size_t plen = strlen(dir) + strlen(file) + 2;
    svc_store *st = calloc(1, sizeof *st + plen);
    if (!st)
        return fail(err, errlen, "out of memory");
    if (memory)
        strcpy(st->path, ":memory:");
    else
        snprintf(st->path, plen, "%s/%s", dir, file);
    st->memory = memory;
    /* tests make the store slow on purpose (a budget that ends while a
     * step is being written); not a SLUICE_ flag: no deployment wants it */
    const char *delay = getenv("SVC_TEST_STORE_DELAY_MS");
    st->test_delay_ms = delay ? (unsigned)strtoul(delay, NULL, 10) % 60001 : 0;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    pthread_cond_init(&st->ck_cv, NULL);
    char *msg = NULL;
    if (conn_open(st, &st->w, true, sync_full, err, errlen) < 0)
        goto failed;
    if (sqlite3_exec(st->w.db, outbox_schema, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(st->w.db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        fail(err, errlen, "--data %s: %s: %s", dir, st->path, msg ? msg : sqlite3_errmsg(st->w.db));
        sqlite3_free(msg);
        goto failed;
    }
    /* an in-memory database is one connection's: reads go through the writer */
    st->nr = memory ? 0 : READERS;
    for (int i = 0; i < st->nr; i++)
        if (conn_open(st, &st->r[i], false, sync_full, err, errlen) < 0)
            goto failed;
    if (!memory) {
        if (conn_open(st, &st->ck, false, sync_full, err, errlen) < 0)
            goto failed;
        sqlite3_wal_autocheckpoint(st->w.db, 0);
        sqlite3_wal_hook(st->w.db, wal_hook, st);
        if (pthread_create(&st->ck_th, NULL, checkpointer, st) != 0) {
            fail(err, errlen, "%s: cannot start the checkpointer thread", st->path);
            goto failed;
        }
        pthread_setname_np(st->ck_th, "store-ckpt");   /* perf and top tell the threads apart */
        st->ck_started = true;
    }
    /* signals stay the program's own threads' (as the offload pool's) */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    int trc = pthread_create(&st->w_th, NULL, writer_main, st);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (trc != 0) {
        fail(err, errlen, "%s: cannot start the writer thread", st->path);
        goto failed;
    }
    st->w_started = true;
    pthread_setname_np(st->w_th, "store-writer");
    *out = st;
    return 0;
failed:
    svc_store_free(st);
    return -1;
}

void svc_store_stop(svc_store *st)
{
    if (!st || !st->w_started || st->w_joined)
        return;
    pthread_mutex_lock(&st->mu);
    st->w_stop = true;
    pthread_mutex_unlock(&st->mu);
    writer_signal(st);
    pthread_join(st->w_th, NULL);
    st->w_joined = true;   /* w_stop stays: svc_db_start refuses from now on */
}

void svc_store_free(svc_store *st)
{
    if (!st)
        return;
    svc_store_stop(st);
    /* a wake this thread still owes it (a turn that queued a step and
     * freed the store, against svc_store_free's rule) must not touch it */
    for (int i = 0; i < owed.n; i++)
        if (owed.st[i] == st)
            owed.st[i--] = owed.st[--owed.n];
    /* steps left queued at the stop: never run, their tasks gone with the
     * runtime (write_abort let go of them) */
    for (svc_dbreq *q = st->head, *next; q; q = next) {
        next = q->next;
        free(q);
    }
    st->head = st->tail = NULL;
    if (st->ck_started) {
        pthread_mutex_lock(&st->mu);
        st->ck_stop = true;
        pthread_cond_signal(&st->ck_cv);
        pthread_mutex_unlock(&st->mu);
        pthread_join(st->ck_th, NULL);
    }
    if (st->ck.db)
        conn_close(&st->ck);
    for (int i = 0; i < READERS; i++)
        if (st->r[i].db)
            conn_close(&st->r[i]);
    if (st->w.db)
        conn_close(&st->w);
    pthread_mutex_destroy(&st->mu);
    pthread_cond_destroy(&st->cv);
    pthread_cond_destroy(&st->ck_cv);
    free(st);
}

const char *svc_store_path(const svc_store *st) { return st->path; }

void svc_store_stats_get(svc_store *st, svc_store_stats *o)
{
    *o = (svc_store_stats){ .commits = atomic_load(&st->commits), .steps = atomic_load(&st->steps),
                            .reads = atomic_load(&st->reads), .failed = atomic_load(&st->failed),
                            .batch_max = atomic_load(&st->batch_max),
                            .checkpoints = atomic_load(&st->checkpoints),
                            .checkpoints_caught_up = atomic_load(&st->ck_caught_up),
                            .wal_restarts = atomic_load(&st->wal_restarts),
                            .writer_checkpoints = atomic_load(&st->w_checkpoints),
                            .replies = atomic_load(&st->replies), .wakeups = atomic_load(&st->wakeups) };
    svc_walvfs_counts(&o->wal_frames, &o->wal_writes);
    pthread_mutex_lock(&st->mu);
    o->queued = st->nq;
    o->asleep = st->w_idle;
    pthread_mutex_unlock(&st->mu);
}

/* ---- the writer thread ---------------------------------------------------------------- */

/* One batch: every step under its own savepoint, one commit. */
static void commit_batch(svc_store *st, svc_dbreq *batch)
{
    if (st->test_delay_ms)
        nanosleep(&(struct timespec){ .tv_sec = st->test_delay_ms / 1000,
                                      .tv_nsec = (long)(st->test_delay_ms % 1000) * 1000000 }, NULL);
    svc_conn *c = &st->w;
    uint64_t n = 0, bad = 0;
    int rc = exec(c, "BEGIN IMMEDIATE");
    for (svc_dbreq *q = batch; q; q = q->next) {
        n++;
        if (rc < 0) {
            q->rc = rc;
            continue;
        }
        if ((q->rc = exec(c, "SAVEPOINT step")) == 0) {
            q->rc = q->step->fn(c, q->io);
            conn_idle(c);
            if (q->rc == -ETIMEDOUT || q->rc == -ECANCELED)   /* reserved for "the caller gave up" */
                q->rc = -EIO;
            if (q->rc < 0)
                exec(c, "ROLLBACK TO step");
            exec(c, "RELEASE step");
        }
    }
    if (rc == 0 && (rc = exec(c, "COMMIT")) < 0)
        exec(c, "ROLLBACK");
    for (svc_dbreq *q = batch; q; q = q->next) {
        if (rc < 0)
            q->rc = rc;   /* nothing of the batch is durable */
        bad += q->rc < 0;
    }
    if (rc == 0)
        atomic_fetch_add(&st->commits, 1);
    atomic_fetch_add(&st->steps, n - bad);
    atomic_fetch_add(&st->failed, bad);
    uint64_t m = atomic_load(&st->batch_max);
    while (n > m && !atomic_compare_exchange_weak(&st->batch_max, &m, n))
        ;
}

/* On the home reactor: the results of one batch's steps of this reactor.
 * Each waiting task resumes with its step's result; a step whose task gave
 * up while it ran is dropped here (step->drop frees what it put in io). */
static void reply_home(void *arg)
{
    for (svc_dbreq *q = arg, *next; q; q = next) {
        next = q->next;
        if (q->task) {
            q->next = NULL;
            sl_task_unpark(q->task, q->rc);   /* q is the task's again (svc_db_end) */
        } else {
            if (q->rc >= 0 && q->step->drop)
                q->step->drop(q->io);
            free(q);
        }
    }
}

/* Answers a committed batch: one message per home reactor, carrying all
 * of that reactor's steps (a chain through ->next, the first one's msg).
 * The first post to a sleeping reactor writes its eventfd; the others find
 * it awake. After posting, the steps are their reactors': not touched. */
#define GROUPS 16

static void reply_batch(svc_store *st, svc_dbreq *batch)
{
    while (batch) {
        svc_dbreq *first[GROUPS], *last[GROUPS], *rest = NULL, **rest_end = &rest;
        int ng = 0;
        for (svc_dbreq *q = batch, *next; q; q = next) {
            next = q->next;
            q->next = NULL;
            int g = 0;
            while (g < ng && first[g]->home != q->home)
                g++;
            if (g == ng && ng == GROUPS) {   /* more reactors than groups: next round */
                *rest_end = q;
                rest_end = &q->next;
                continue;
            }
            if (g == ng) {
                first[ng] = last[ng] = q;
                ng++;
            } else {
                last[g]->next = q;
                last[g] = q;
            }
        }
        for (int g = 0; g < ng; g++) {
            /* counted first: whoever sees a result sees it counted */
            atomic_fetch_add_explicit(&st->replies, 1, memory_order_relaxed);
            sl_reactor_post_mem(first[g]->home, &first[g]->msg, reply_home, first[g]);
        }
        batch = rest;
    }
}

static void *writer_main(void *arg)
{
    svc_store *st = arg;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        while (!st->head && !st->w_stop) {
            st->w_idle = true;
            /* read under mu: a waker sets w_idle false under it and then
             * bumps w_seq, so a wake that comes before the wait below
             * makes it return at once (the word moved) */
            uint32_t seq = atomic_load(&st->w_seq);
            pthread_mutex_unlock(&st->mu);
            syscall(SYS_futex, &st->w_seq, FUTEX_WAIT_PRIVATE, seq, NULL, NULL, 0);
            /* Woken: let whatever else is ready on this CPU run first
             * (the other reactors, woken by the same burst of requests,
             * queue their steps meanwhile), then take the batch. On a CPU
             * of its own the writer finds nobody else ready and goes on at
             * once (a syscall, ~1 us). On a shared CPU, taking the batch
             * at once committed one reactor's turn alone: with the chain's
             * services on one CPU (bench/chain-cost.py --cpus 0) a commit
             * took 5 steps on average and each service's reactors were
             * woken by 0.3-0.5 replies per order; with the yield, 27 steps
             * and 0.07-0.15, and the CPU per order fell by a fifth to a
             * quarter with one reactor and with two (issue 17, docs/
             * services.md). A reactor's turn end wakes the writer (not its
             * first step) for the same reason. */
            sched_yield();
            pthread_mutex_lock(&st->mu);
            st->w_idle = false;
        }
        if (st->w_stop)
            break;   /* what is queued stays, unrun (svc_store_free frees it) */
        svc_dbreq *batch = st->head;
        st->head = st->tail = NULL;
        st->nq = 0;
        pthread_mutex_unlock(&st->mu);
        commit_batch(st, batch);
        reply_batch(st, batch);
        pthread_mutex_lock(&st->mu);
        if (st->w_finish) {
            /* the last frames past the checkpointer's pass (wal_hook),
             * after the replies: the next batch waits for it, this one
             * does not. Not while a reader is in a transaction: the WAL
             * could not begin anew under it. Busy (the checkpointer is in
             * a pass), or a reader in: the next commit decides again. */
            st->w_finish = false;
            bool reading = false;
            for (int i = 0; i < st->nr; i++)
                reading |= st->r[i].busy;
            if (!reading) {
                pthread_mutex_unlock(&st->mu);
                if (sqlite3_wal_checkpoint_v2(st->w.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) ==
                    SQLITE_OK) {
                    st->w_finished = st->w_finish_mark;
                    atomic_fetch_add_explicit(&st->w_checkpoints, 1, memory_order_relaxed);
                }
                pthread_mutex_lock(&st->mu);
            }
        }
    }
    pthread_mutex_unlock(&st->mu);
    return NULL;
}

/* The task gave up (deadline, cancel, or freed at shutdown), on its
 * reactor. The write step still happens, queued or already in the
 * writer's batch, and its result, once home, is dropped (step->drop). Not
 * taken off the queue: the caller may already have said what the step
 * does (order-svc's 504 names the order whose row is being written, and
 * its undo, queued behind it, expects the row), and the pool this replaced
 * ran a write once a worker had it, which was at once. The step is no
 * longer the task's: h->req is cleared here, so svc_db_end leaves it alone
 * whatever error the wait ended with. (The wait's object is h, in the
 * task's state, alive until this has run.) */
static void write_abort(sl_task *t, void *obj, int err)
{
    svc_db *h = obj;
    svc_dbreq *q = h->req;
    (void)t;
    (void)err;
    h->req = NULL;
    q->task = NULL;
}

/* Ends the writer's futex wait (or the one it is about to begin). */
static void writer_signal(svc_store *st)
{
    atomic_fetch_add(&st->w_seq, 1);
    syscall(SYS_futex, &st->w_seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Wakes the writer if it sleeps. Signalled after the unlock: signalled
 * under it, the writer (on the same core as the reactor when the process
 * is pinned) woke only to block on the mutex the reactor still held, a
 * second switch and two more futex calls per wake-up. The writer rechecks
 * st->head under the mutex, so a signal that comes late is never lost. */
static void writer_wake(svc_store *st)
{
    pthread_mutex_lock(&st->mu);
    bool wake = st->w_idle;
    st->w_idle = false;
    pthread_mutex_unlock(&st->mu);
    if (wake) {
        atomic_fetch_add_explicit(&st->wakeups, 1, memory_order_relaxed);
        writer_signal(st);
    }
}

static void wake_owed(sl_reactor *r)
{
    (void)r;
    int n = owed.n;
    owed.n = 0;
    for (int i = 0; i < n; i++)
        writer_wake(owed.st[i]);
}

/* A step was queued while the writer slept: wake it when this reactor's
 * turn ends (sl_reactor_at_turn_end), not now. Every step the turn queues
 * then goes in one batch, one wake-up and one commit; woken at the first
 * step, the writer took it alone, and on a core shared with the reactor
 * (the chain pinned to one CPU) it preempted the reactor at once: two
 * switches and a commit per one or two steps under overload (issue 14).
 * The wait this adds is the rest of the turn, which the step's reply could
 * not have beaten on a shared core: the reactor runs it only after the
 * turn. A turn asking for nothing else ends as its task parks, so a lone
 * step commits as soon as before. Wakes at once when the hook cannot be
 * had (no reactor's turn, its slots full, OWED_MAX stores owed). */
static void wake_at_turn_end(svc_store *st)
{
    for (int i = 0; i < owed.n; i++)
        if (owed.st[i] == st)
            return;   /* owed already: this turn's end wakes it */
    sl_reactor *r = sl_reactor_current();
    if (owed.n < OWED_MAX && r && sl_reactor_at_turn_end(r, wake_owed) == 0) {
        owed.st[owed.n++] = st;
        return;
    }
    writer_wake(st);
}

/* Queues a write step (h->req) for the writer and parks t on it. */
static int write_start(sl_task *t, svc_db *h)
{
    svc_dbreq *q = h->req;
    svc_store *st = q->st;
    q->home = sl_reactor_current();
    q->task = t;
    pthread_mutex_lock(&st->mu);
    if (st->nq >= WQ_MAX || st->w_stop || !st->w_started) {
        pthread_mutex_unlock(&st->mu);
        return -EBUSY;
    }
    /* park first, under the lock: the writer cannot answer before it */
    int rc = sl_task_park_as(t, h, write_abort, q->step->name);
    if (rc != SL_PENDING && rc != -ETIMEDOUT && rc != sl_task_cancelled(t)) {
        pthread_mutex_unlock(&st->mu);
        return rc;   /* nothing queued (-ENOMEM) */
    }
    if (rc != SL_PENDING) {
        /* The task had given up already (its deadline passed, or it was
         * cancelled): the step is written all the same, as if it had given
         * up a moment later (write_abort). Its caller cannot tell the two
         * apart: both are "-ETIMEDOUT: it may be written", and it answers
         * and undoes accordingly (order-svc's 504 names the order, whose
         * FAILED step it queues next). Refusing here left an order named
         * in a 504 that never existed. */
        q->task = NULL;
        h->req = NULL;   /* the writer's now */
    }
    q->next = NULL;
    if (st->tail)
        st->tail->next = q;
    else
        st->head = q;
    st->tail = q;
    st->nq++;
    bool idle = st->w_idle;
    pthread_mutex_unlock(&st->mu);
    if (idle)
        wake_at_turn_end(st);
    return rc;
}

static int read_work(svc_dbreq *q)
{
    svc_store *st = q->st;
    svc_conn *c = NULL;
    pthread_mutex_lock(&st->mu);
    for (;;) {
        for (int i = 0; i < st->nr && !c; i++)
            if (!st->r[i].busy)
                c = &st->r[i];
        if (c)
            break;
        pthread_cond_wait(&st->cv, &st->mu);
    }
    c->busy = true;
    q->conn = c;
    pthread_mutex_unlock(&st->mu);
    int rc = q->step->fn(c, q->io);
    conn_idle(c);
    if (rc == -ETIMEDOUT || rc == -ECANCELED)
        rc = -EIO;
    pthread_mutex_lock(&st->mu);
    q->conn = NULL;
    c->busy = false;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
    atomic_fetch_add(&st->reads, 1);
    return rc;
}

static int step_work(void *arg)
{
    return read_work(arg);
}

/* The task gave up while a read runs: stop it (a write is left to finish:
 * interrupting the writer would fail every step of its batch). */
static void step_interrupt(void *arg)
{
    svc_dbreq *q = arg;
    svc_store *st = q->st;
    pthread_mutex_lock(&st->mu);
    if (q->conn)
        sqlite3_interrupt(q->conn->db);
    pthread_mutex_unlock(&st->mu);
}

static void step_abandon(void *arg, int result)
{
    svc_dbreq *q = arg;
    if (result >= 0 && q->step->drop)
        q->step->drop(q->io);
    free(q);
}

/* ---- on the reactor ----------------------------------------------------------------- */

static svc_dbreq *req_new(svc_store *st, const svc_dbstep *step, const void *io, size_t io_size)
{
    svc_dbreq *q = malloc(sizeof *q + io_size);
    if (q) {
        *q = (svc_dbreq){ .st = st, .step = step, .io_size = io_size };
        memcpy(q->io, io, io_size);
    }
    return q;
}

int svc_db_start(sl_task *t, svc_db *h, svc_store *st, const svc_dbstep *step, void *io, size_t io_size)
{
    if (!t || sl_task_current() != t)   /* only the running task may park itself */
        return -EINVAL;
    h->req = req_new(st, step, io, io_size);
    if (!h->req)
        return -ENOMEM;
    int rc;
    if (step->write || st->memory)   /* an in-memory database has one connection: the writer's */
        rc = write_start(t, h);
    else
        rc = sl_offload(t, step_work, h->req, &(sl_offload_opts){ .name = step->name, .interrupt = step_interrupt,
                                                                   .abandon = step_abandon });
    if (rc != SL_PENDING) {   /* nothing queued: the request is still ours */
        free(h->req);
        h->req = NULL;
    }
    return rc;
}

int svc_db_end(svc_db *h, void *io, int rc)
{
    svc_dbreq *q = h->req;
    h->req = NULL;
    /* gave up: a write's q is the writer's (write_abort cleared h->req;
     * its reply frees it), a read's the pool's (step_abandon) */
    if (!q || rc == -ETIMEDOUT || rc == -ECANCELED)
        return rc;
    memcpy(io, q->io, q->io_size);
    free(q);
    return rc;
}

/* ---- detached steps ------------------------------------------------------------------ */

typedef struct detached {
    svc_store *st;
    const svc_dbstep *step;
    void (*then)(void *io, int rc);
    svc_db h;
    int rc;
    size_t io_size;
    alignas(16) unsigned char io[];
} detached;

static int detached_task(sl_task *t, void *arg)
{
    detached *d = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, d->rc, svc_db_start(t, &d->h, d->st, d->step, d->io, d->io_size));
    d->rc = svc_db_end(&d->h, d->io, d->rc);
    if (d->rc < 0)
        sl_report(sl_reactor_current(), "%s: %s failed: %s (recovery at the next start settles it)",
                  svc_here()->s->prog->name, d->step->name, strerror(-d->rc));
    if (d->then)
        d->then(d->io, d->rc);
    SL_END(t);
}

int svc_db_detach(sl_ctx *ctx, svc_store *st, const svc_dbstep *step, const void *io, size_t io_size,
                  void (*then)(void *io, int rc))
{
    detached *d = malloc(sizeof *d + io_size);
    if (!d)
        return -ENOMEM;
    *d = (detached){ .st = st, .step = step, .then = then, .io_size = io_size };
    memcpy(d->io, io, io_size);
    int rc = svc_spawn_bg(ctx, detached_task, d, step->name, free);
    if (rc < 0)
        free(d);
    return rc;
}

/* ---- before the runtime runs ------------------------------------------------------------ */

int svc_store_exec_now(svc_store *st, int (*fn)(svc_conn *c, void *arg), void *arg)
{
    svc_conn *c = &st->w;
    int rc = exec(c, "BEGIN IMMEDIATE");
    if (rc < 0)
        return rc;
    int res = fn(c, arg);
    conn_idle(c);
    if (res < 0) {
        exec(c, "ROLLBACK");
        return res;
    }
    if ((rc = exec(c, "COMMIT")) < 0) {
        exec(c, "ROLLBACK");
        return rc;
    }
    return res;
}
