/* svc_store.h: a service's durable state, one SQLite database, stepped
 * through the runtime's offload pool (issue 16).
 *
 * Every state step is a function that runs on a worker thread of the
 * runtime's pool (core/sl_offload.h), never on a reactor:
 *
 *     static int open_charge(svc_conn *c, void *arg) {      // on a worker
 *         chg_io *io = arg;
 *         sqlite3_stmt *s = svc_conn_stmt(c, "INSERT INTO charges ...");
 *         ...
 *         return svc_conn_done(c, sqlite3_step(s));
 *     }
 *     static const svc_dbstep open_step = { "charge", open_charge, .write = true };
 *
 *     SVC_DB(t, st->rc, &st->db, &open_step, &st->io);      // in a handler
 *
 * A write step runs inside the writer's transaction. There is one writer
 * connection per database and one writer THREAD (the store's own), with
 * group commit: reactors append their write steps to its queue; it takes
 * everything queued at once into one BEGIN ... COMMIT, each step under a
 * SAVEPOINT of its own (a step that fails is rolled back alone, the
 * others commit), and then answers each reactor with ONE message carrying
 * the results of all that reactor's steps of the batch. So a burst of N
 * steps costs one commit (one WAL append, and with --sync full one fsync)
 * and one wake-up of each reactor, not N. The writer sleeps on a futex
 * word when its queue is empty and is woken at the end of the reactor
 * turn that queued steps while it slept (sl_reactor_at_turn_end): all the
 * steps of a turn go in one batch, and the writer does not preempt the
 * reactor (on a shared core) at the turn's first step. A lone step commits
 * as its task parks and the turn ends (no batching delay at low load). A
 * write step's result is only given once its transaction committed: an
 * answer sent after it never names state a crash can take back (with
 * --sync full, not a power loss either). At most 4096 write steps wait
 * for the writer: then svc_db_start fails with -EBUSY.
 *
 * A read step runs on the runtime's offload pool, on a read connection of
 * its own (WAL: readers do not wait for the writer) and sees every
 * committed step.
 *
 * Statements are prepared once per connection (svc_conn_stmt caches them
 * by the address of their SQL text, a string literal). The cache owns
 * every statement it hands out, holds any number of them (it grows; it
 * never evicts one a step may still hold) and finalizes them when the
 * store is freed: a step never finalizes one.
 *
 * Cancel: the task resumes at once with -ETIMEDOUT or -ECANCELED (or its
 * cancel error) and io is dropped (step->drop frees what the step put in
 * it). A write step still happens once svc_db_start queued it, whether
 * it was still queued or already in the writer's batch: the caller may
 * already have told someone about it (order-svc's 504 names the order
 * whose row is being written), and its undo, queued after it, runs after
 * it (one writer, first come first served). A read still queued never
 * runs (the pool drops it); one that runs is interrupted (sqlite3_interrupt
 * on its own connection). A step function must therefore never return
 * -ETIMEDOUT or -ECANCELED itself: svc_conn_done maps SQLite's codes to
 * -EIO, -ENOSPC, -ENOMEM, -EBUSY, -EROFS, -EINTR.
 *
 * `--data :memory:` keeps the same code on an in-memory database (no file,
 * no fsync; reads are steps of the writer thread too, as an in-memory
 * database has one connection): to compare with.
 *
 * Checkpoints (copying the WAL into the database file, and the fsyncs that
 * go with them) run on a thread of the store's own, when the WAL passes
 * 1000 pages, never in a commit: no step waits for them.
 *
 * The store also holds the outbox of compensations (svc_undo.h): a table
 * `outbox(seq, path, body, key)` every database has. */
#ifndef SVC_STORE_H
#define SVC_STORE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sqlite3.h>
#include "sluice.h"

typedef struct svc_store svc_store;
typedef struct svc_conn svc_conn;

/* A step: a function run on a worker (see above) and how. */
typedef struct svc_dbstep {
    const char *name;                     /* static: /debug/tasks shows the wait */
    int (*fn)(svc_conn *c, void *io);     /* >= 0, or a negative errno (never
                                             -ETIMEDOUT / -ECANCELED) */
    bool write;                           /* in the writer's transaction */
    void (*drop)(void *io);               /* NULL, or frees what fn put in io
                                             when the caller gave up first */
} svc_dbstep;

/* The awaiting task's handle (in its state). */
typedef struct svc_db {
    struct svc_dbreq *req;    /* private */
} svc_db;

/* Opens (creating them as needed) `dir` and the database dir/<file>, in WAL
 * mode with synchronous=NORMAL (sync_full: FULL), and runs `schema` (SQL,
 * CREATE ... IF NOT EXISTS) and the outbox's. dir ":memory:": an in-memory
 * database. Blocking: before the runtime runs. Returns 0, or -1 with one
 * line in err ("--data DIR: ...: why"): not a directory, cannot create,
 * not a database (corrupt), read-only, ... */
int svc_store_open(svc_store **out, const char *dir, const char *file, const char *schema, bool sync_full,
                   char *err, size_t errlen);

/* Stops the writer thread: it finishes the batch it is committing (the
 * replies wait in their reactors' queues: sl_runtime_free runs them) and
 * ends; steps still queued never run (their tasks end at sl_runtime_free;
 * svc_store_free frees them), as after a crash. Blocks for one commit at
 * most. Call it after sl_runtime_run returned and BEFORE
 * sl_runtime_free, so that no reply is posted to a freed reactor;
 * svc_db_start refuses (-EBUSY) from then on. Idempotent; NULL is allowed. */
void svc_store_stop(svc_store *st);

/* Stops the writer (svc_store_stop) and closes the connections. After the
 * runtime stopped (no step running). */
void svc_store_free(svc_store *st);

/* The database's path ("DIR/file", or ":memory:"). */
const char *svc_store_path(const svc_store *st);

/* Runs `step`: a write on the store's writer thread, a read on the pool of
 * t's runtime; io_size bytes of io are copied there and back. t must be
 * the task running on the calling reactor. Returns SL_PENDING (then
 * svc_db_end with the final result), or at once: -EINVAL t is not the
 * running task; -ENOMEM; -EBUSY the writer's queue is full (4096 steps)
 * or the store is stopped (svc_store_stop), or the pool's queue is full (a
 * read); -ETIMEDOUT t's deadline has passed, or the cancel error if t is
 * cancelled: a read then never runs, a WRITE is still queued and written
 * (as for a task that gives up while it waits: "-ETIMEDOUT" always means
 * "it may be written"); a read also sl_offload's other errors. Apart from
 * that case nothing has run when it fails. */
int svc_db_start(sl_task *t, svc_db *h, svc_store *st, const svc_dbstep *step, void *io, size_t io_size);

/* After the wait: copies the worker's io back when it ran to the end, and
 * returns rc (fn's result, or why the wait ended first). */
int svc_db_end(svc_db *h, void *io, int rc);

/* One statement (do { } while (0)), like SVC_ON: safe in an unbraced if. */
#define SVC_DB(t, rc, h, st, step, io)                                                 \
    do {                                                                               \
        SL_AWAIT(t, rc, svc_db_start(t, h, st, step, io, sizeof *(io)));               \
        (rc) = svc_db_end(h, io, rc);                                                  \
    } while (0)

/* Runs a write step that must happen although the caller gave up (an undo:
 * give back, void, mark FAILED): in a background task of the calling
 * shard under `ctx` (a context free of the caller's cancel), not waited
 * for; `then(io)`, if not NULL, runs on this reactor after it succeeded
 * (posts the outbox entry the step inserted). Returns 0 or a negative
 * errno (nothing runs). */
int svc_db_detach(sl_ctx *ctx, svc_store *st, const svc_dbstep *step, const void *io, size_t io_size,
                  void (*then)(void *io, int rc));

/* ---- inside a step function (on a worker) ------------------------------------------- */

/* The statement for `sql` (a string literal: cached by address), reset with
 * its bindings cleared; NULL if it cannot be prepared (or no memory is
 * left for the cache). The cache owns it: never finalize it. */
sqlite3_stmt *svc_conn_stmt(svc_conn *c, const char *sql);

/* The same, or NULL with *rc set to why (svc_conn_done of the connection's
 * error; -EIO when it names none): for a step's early return. */
sqlite3_stmt *svc_conn_prepare(svc_conn *c, const char *sql, int *rc);

/* The connection's handle (sqlite3_changes, sqlite3_last_insert_rowid). */
sqlite3 *svc_conn_db(svc_conn *c);

/* Maps an SQLite result to 0 (SQLITE_OK, _DONE, _ROW) or a negative errno:
 * -EIO, -ENOSPC (full), -ENOMEM, -EBUSY (locked), -EROFS (read-only),
 * -EINTR (interrupted), -EEXIST (a constraint). */
int svc_conn_done(svc_conn *c, int sqlite_rc);

/* Inserts an outbox entry in the step's transaction; its seq in *seq.
 * Returns 0 or a negative errno. */
int svc_conn_outbox_add(svc_conn *c, const char *path, const char *body, const char *key, int64_t *seq);

/* Seconds since the epoch (tombstones' age). */
int64_t svc_conn_now(void);

/* ---- counters (GET /debug/store) ---------------------------------------------------- */

typedef struct svc_store_stats {
    uint64_t commits;         /* transactions committed by the writer */
    uint64_t steps;           /* write steps committed */
    uint64_t reads;           /* read steps run */
    uint64_t failed;          /* steps that failed (their own error or a failed commit) */
    uint64_t batch_max;       /* the most steps in one commit */
    uint64_t checkpoints;     /* WAL checkpoints run (by a thread of the store's own) */
    uint64_t checkpoints_caught_up; /* ... of which copied the WAL to its end (as it was then) */
    uint64_t wal_restarts;    /* commits that began the WAL anew (a checkpoint had copied it all) */
    uint64_t writer_checkpoints; /* checkpoints the writer ran itself, for the last frames */
    uint64_t replies;         /* messages that took results home: one per reactor per batch */
    uint64_t wakeups;         /* times a reactor woke the sleeping writer: one per turn that
                                 queued steps while it slept (at the turn's end) */
    uint64_t queued;          /* write steps waiting for the writer now */
    uint64_t asleep;          /* 1 while the writer sleeps, waiting for a step */
    uint64_t wal_frames;      /* WAL frames (pages) written, by the process (svc_walvfs.h) */
    uint64_t wal_writes;      /* ... and the write syscalls they took */
} svc_store_stats;

void svc_store_stats_get(svc_store *st, svc_store_stats *out);

/* Blocking, before the runtime runs (recovery at start): runs fn(c, arg) in
 * one transaction of the writer. Returns fn's result, or a negative errno
 * if the commit failed. */
int svc_store_exec_now(svc_store *st, int (*fn)(svc_conn *c, void *arg), void *arg);

#endif
