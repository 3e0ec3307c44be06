/* svc_walvfs.c: the WAL's frames of a transaction in one pwrite; see
 * svc_walvfs.h.
 *
 * Three kinds of file go through this VFS:
 * - a WAL file (SQLITE_OPEN_WAL): a walfile, which holds appended frames;
 * - a main database file: a dbfile, which passes every call on and, at its
 *   shm barrier and shm lock calls, writes what its connection's WAL holds
 *   (the pair is found by the connection's file name: SQLite derives the
 *   WAL's name from the database's, in one allocation per connection, so
 *   sqlite3_filename_database(wal name) is the very pointer the database
 *   file was opened with);
 * - anything else (temp files, journals): opened by the default VFS into
 *   our object directly (it is at least as large) with its own methods.
 * A connection is used by one thread at a time, so a walfile and its
 * dbfile need no lock of their own; the list of open database files (to
 * pair them) has a mutex. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sqlite3.h>
#include "svc_walvfs.h"

#define HOLD_MAX (1 << 20)   /* bytes held at most: a larger transaction writes in 1 MiB pieces */
#define FRAME_HDR 24         /* a WAL frame's header (then its page) */

typedef struct dbfile dbfile;

typedef struct walfile {
    sqlite3_file base;
    sqlite3_file *sub;        /* the default VFS's file, after this struct */
    dbfile *db;               /* the connection's database file, if found (under list_mu) */
    unsigned char *buf;       /* frames held: the bytes at [off, off + len) */
    size_t len, cap;
    sqlite3_int64 off;
    bool ends_txn;            /* the header just held is a commit frame's: its page ends the transaction */
    bool after_read;          /* the last call was a read */
} walfile;

struct dbfile {
    sqlite3_file base;
    sqlite3_file *sub;
    const char *name;         /* the pointer SQLite opened it with (pairs the WAL) */
    walfile *wal;             /* under list_mu */
    dbfile *next;             /* the list of open database files */
};

static sqlite3_vfs vfs;
static sqlite3_vfs *orig;
static pthread_mutex_t list_mu = PTHREAD_MUTEX_INITIALIZER;
static dbfile *dbs;
static _Atomic uint64_t n_frames, n_writes;   /* svc_walvfs_counts */

static void *after(void *obj, size_t size)
{
    return (unsigned char *)obj + ((size + 15) & ~(size_t)15);
}

/* ---- the WAL file ---------------------------------------------------------------------- */

/* Writes what is held (one pwrite). What is held is dropped either way: a
 * failed write fails the transaction that wrote it, which SQLite rolls
 * back; its frames must not be written later. */
static int wal_flush(walfile *f)
{
    f->ends_txn = false;
    if (!f->len)
        return SQLITE_OK;
    int rc = f->sub->pMethods->xWrite(f->sub, f->buf, (int)f->len, f->off);
    atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
    f->len = 0;
    return rc;
}

static int wal_write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
    walfile *f = (walfile *)file;
    int rc;
    /* a frame header whose "database size after commit" is set: a commit
     * frame's, and the write of its page ends the transaction */
    const unsigned char *h = data;
    bool commit_hdr = amt == FRAME_HDR && (h[4] | h[5] | h[6] | h[7]) != 0;
    bool ends = f->ends_txn, after_read = f->after_read;
    f->after_read = false;
    if (amt == FRAME_HDR)
        atomic_fetch_add_explicit(&n_frames, 1, memory_order_relaxed);
    /* not an append to what is held: write that first */
    if (f->len && (off != f->off + (sqlite3_int64)f->len || f->len + (size_t)amt > HOLD_MAX) &&
        (rc = wal_flush(f)) != SQLITE_OK)
        return rc;
    /* a frame rewritten in place after SQLite read it back (its checksum),
     * or too large to hold: straight to the file, as without this VFS */
    if (after_read || (size_t)amt > HOLD_MAX) {
        if ((rc = wal_flush(f)) == SQLITE_OK)
            rc = f->sub->pMethods->xWrite(f->sub, data, amt, off);
        atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
        f->ends_txn = commit_hdr;
        return rc;
    }
    if (f->len + (size_t)amt > f->cap) {
        size_t cap = f->cap ? f->cap : 64 * 1024;
        while (cap < f->len + (size_t)amt)
            cap *= 2;
        unsigned char *b = realloc(f->buf, cap);
        if (!b) {   /* no memory to hold it: write as the default VFS does */
            if ((rc = wal_flush(f)) == SQLITE_OK)
                rc = f->sub->pMethods->xWrite(f->sub, data, amt, off);
            atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
            f->ends_txn = commit_hdr;
            return rc;
        }
        f->buf = b;
        f->cap = cap;
    }
    if (!f->len)
        f->off = off;
    memcpy(f->buf + f->len, data, (size_t)amt);
    f->len += (size_t)amt;
    if (ends)   /* the commit frame's page: the transaction is all here */
        return wal_flush(f);
    f->ends_txn = commit_hdr;
    return SQLITE_OK;
}

static int wal_read(sqlite3_file *file, void *data, int amt, sqlite3_int64 off)
{
    walfile *f = (walfile *)file;
    int rc = wal_flush(f);
    f->after_read = true;
    return rc != SQLITE_OK ? rc : f->sub->pMethods->xRead(f->sub, data, amt, off);
}

static int wal_close(sqlite3_file *file)
{
    walfile *f = (walfile *)file;
    int rc = wal_flush(f);
    pthread_mutex_lock(&list_mu);
    if (f->db)
        f->db->wal = NULL;
    pthread_mutex_unlock(&list_mu);
    free(f->buf);
    int crc = f->sub->pMethods ? f->sub->pMethods->xClose(f->sub) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : crc;
}

/* Every other call on the WAL: what is held first. */
#define WAL_FLUSHED(call)                                 \
    walfile *f = (walfile *)file;                         \
    f->after_read = false;                                \
    int rc = wal_flush(f);                                \
    return rc != SQLITE_OK ? rc : f->sub->pMethods->call

static int wal_truncate(sqlite3_file *file, sqlite3_int64 size) { WAL_FLUSHED(xTruncate(f->sub, size)); }
static int wal_sync(sqlite3_file *file, int flags) { WAL_FLUSHED(xSync(f->sub, flags)); }
static int wal_size(sqlite3_file *file, sqlite3_int64 *size) { WAL_FLUSHED(xFileSize(f->sub, size)); }
static int wal_fcntl(sqlite3_file *file, int op, void *arg) { WAL_FLUSHED(xFileControl(f->sub, op, arg)); }

static int wal_lock(sqlite3_file *file, int l) { walfile *f = (walfile *)file; return f->sub->pMethods->xLock(f->sub, l); }
static int wal_unlock(sqlite3_file *file, int l) { walfile *f = (walfile *)file; return f->sub->pMethods->xUnlock(f->sub, l); }
static int wal_reserved(sqlite3_file *file, int *out)
{
    walfile *f = (walfile *)file;
    return f->sub->pMethods->xCheckReservedLock(f->sub, out);
}
static int wal_sector(sqlite3_file *file) { walfile *f = (walfile *)file; return f->sub->pMethods->xSectorSize(f->sub); }
static int wal_dev(sqlite3_file *file)
{
    walfile *f = (walfile *)file;
    return f->sub->pMethods->xDeviceCharacteristics(f->sub);
}

/* version 1: SQLite maps no memory and takes no shm lock on a WAL file */
static const sqlite3_io_methods wal_methods = {
    1, wal_close, wal_read, wal_write, wal_truncate, wal_sync, wal_size, wal_lock, wal_unlock, wal_reserved,
    wal_fcntl, wal_sector, wal_dev, NULL, NULL, NULL, NULL, NULL, NULL,
};

/* ---- the database file: passes on, and writes its WAL's frames before the index moves -- */

static int db_wal_flush(dbfile *d)
{
    return d->wal ? wal_flush(d->wal) : SQLITE_OK;   /* d->wal: this connection's thread's */
}

#define SUB(d) ((dbfile *)(d))->sub
#define PASS(call) return SUB(file)->pMethods->call

static int db_close(sqlite3_file *file)
{
    dbfile *d = (dbfile *)file;
    pthread_mutex_lock(&list_mu);
    for (dbfile **p = &dbs; *p; p = &(*p)->next)
        if (*p == d) {
            *p = d->next;
            break;
        }
    if (d->wal)
        d->wal->db = NULL;
    pthread_mutex_unlock(&list_mu);
    return d->sub->pMethods ? d->sub->pMethods->xClose(d->sub) : SQLITE_OK;
}
static int db_read(sqlite3_file *file, void *p, int n, sqlite3_int64 o) { PASS(xRead(SUB(file), p, n, o)); }
static int db_write(sqlite3_file *file, const void *p, int n, sqlite3_int64 o) { PASS(xWrite(SUB(file), p, n, o)); }
static int db_truncate(sqlite3_file *file, sqlite3_int64 s) { PASS(xTruncate(SUB(file), s)); }
static _Atomic unsigned sync_delay_ms;   /* svc_walvfs_test_sync_delay */

static int db_sync(sqlite3_file *file, int fl)
{
    unsigned ms = atomic_load_explicit(&sync_delay_ms, memory_order_relaxed);
    if (ms)
        nanosleep(&(struct timespec){ .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 }, NULL);
    PASS(xSync(SUB(file), fl));
}

void svc_walvfs_test_sync_delay(unsigned ms)
{
    atomic_store_explicit(&sync_delay_ms, ms, memory_order_relaxed);
}
static int db_size(sqlite3_file *file, sqlite3_int64 *s) { PASS(xFileSize(SUB(file), s)); }
static int db_lock(sqlite3_file *file, int l) { PASS(xLock(SUB(file), l)); }
static int db_unlock(sqlite3_file *file, int l) { PASS(xUnlock(SUB(file), l)); }
static int db_reserved(sqlite3_file *file, int *o) { PASS(xCheckReservedLock(SUB(file), o)); }
static int db_fcntl(sqlite3_file *file, int op, void *a) { PASS(xFileControl(SUB(file), op, a)); }
static int db_sector(sqlite3_file *file) { PASS(xSectorSize(SUB(file))); }
static int db_dev(sqlite3_file *file) { PASS(xDeviceCharacteristics(SUB(file))); }
static int db_shm_map(sqlite3_file *file, int pg, int sz, int extend, void volatile **p)
{
    PASS(xShmMap(SUB(file), pg, sz, extend, p));
}
static int db_shm_lock(sqlite3_file *file, int ofs, int n, int flags)
{
    int rc = db_wal_flush((dbfile *)file);
    return rc != SQLITE_OK ? rc : SUB(file)->pMethods->xShmLock(SUB(file), ofs, n, flags);
}
static void db_shm_barrier(sqlite3_file *file)
{
    /* the index is about to name new frames: they must be in the file.
     * Normally nothing is held here (the commit frame's page wrote it); an
     * error here cannot be returned, and the commit's own write reported
     * any. */
    (void)db_wal_flush((dbfile *)file);
    SUB(file)->pMethods->xShmBarrier(SUB(file));
}
static int db_shm_unmap(sqlite3_file *file, int del) { PASS(xShmUnmap(SUB(file), del)); }
static int db_fetch(sqlite3_file *file, sqlite3_int64 o, int n, void **p) { PASS(xFetch(SUB(file), o, n, p)); }
static int db_unfetch(sqlite3_file *file, sqlite3_int64 o, void *p) { PASS(xUnfetch(SUB(file), o, p)); }

static const sqlite3_io_methods db_methods = {
    3, db_close, db_read, db_write, db_truncate, db_sync, db_size, db_lock, db_unlock, db_reserved, db_fcntl,
    db_sector, db_dev, db_shm_map, db_shm_lock, db_shm_barrier, db_shm_unmap, db_fetch, db_unfetch,
};

/* ---- the VFS ------------------------------------------------------------------------- */

static int vfs_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *file, int flags, int *out_flags)
{
    (void)v;
    bool wal = flags & SQLITE_OPEN_WAL, db = flags & SQLITE_OPEN_MAIN_DB;
    if (!name || (!wal && !db))   /* temp files, journals: the default VFS's own object */
        return orig->xOpen(orig, name, file, flags, out_flags);
    size_t head = wal ? sizeof(walfile) : sizeof(dbfile);
    sqlite3_file *sub = after(file, head);
    memset(file, 0, head);
    int rc = orig->xOpen(orig, name, sub, flags, out_flags);
    if (rc != SQLITE_OK) {   /* SQLite calls xClose only if pMethods is set: leave it NULL */
        if (sub->pMethods)
            sub->pMethods->xClose(sub);
        return rc;
    }
    if (wal) {
        walfile *f = (walfile *)file;
        f->sub = sub;
        const char *dbname = sqlite3_filename_database(name);
        pthread_mutex_lock(&list_mu);
        for (dbfile *d = dbs; d; d = d->next)
            if (d->name == dbname && !d->wal) {
                d->wal = f;
                f->db = d;
                break;
            }
        pthread_mutex_unlock(&list_mu);
        file->pMethods = &wal_methods;
    } else {
        dbfile *d = (dbfile *)file;
        d->sub = sub;
        d->name = name;
        pthread_mutex_lock(&list_mu);
        d->next = dbs;
        dbs = d;
        pthread_mutex_unlock(&list_mu);
        file->pMethods = &db_methods;
    }
    return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *v, const char *n, int sync) { (void)v; return orig->xDelete(orig, n, sync); }
static int vfs_access(sqlite3_vfs *v, const char *n, int fl, int *o) { (void)v; return orig->xAccess(orig, n, fl, o); }
static int vfs_full(sqlite3_vfs *v, const char *n, int len, char *o)
{
    (void)v;
    return orig->xFullPathname(orig, n, len, o);
}
static void *vfs_dlopen(sqlite3_vfs *v, const char *n) { (void)v; return orig->xDlOpen(orig, n); }
static void vfs_dlerror(sqlite3_vfs *v, int n, char *m) { (void)v; orig->xDlError(orig, n, m); }
static void (*vfs_dlsym(sqlite3_vfs *v, void *h, const char *s))(void) { (void)v; return orig->xDlSym(orig, h, s); }
static void vfs_dlclose(sqlite3_vfs *v, void *h) { (void)v; orig->xDlClose(orig, h); }
static int vfs_random(sqlite3_vfs *v, int n, char *o) { (void)v; return orig->xRandomness(orig, n, o); }
static int vfs_sleep(sqlite3_vfs *v, int us) { (void)v; return orig->xSleep(orig, us); }
static int vfs_time(sqlite3_vfs *v, double *t) { (void)v; return orig->xCurrentTime(orig, t); }
static int vfs_lasterr(sqlite3_vfs *v, int n, char *m)
{
    (void)v;
    return orig->xGetLastError ? orig->xGetLastError(orig, n, m) : 0;
}
static int vfs_time64(sqlite3_vfs *v, sqlite3_int64 *t) { (void)v; return orig->xCurrentTimeInt64(orig, t); }

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int reg_rc;

static void reg(void)
{
    if (sqlite3_initialize() != SQLITE_OK) {
        reg_rc = -ENOMEM;
        return;
    }
    /* "unix-excl": the unix VFS that takes the database file's lock once,
     * exclusively, for the whole process (another process's open fails:
     * SQLITE_BUSY, "database is locked"), so that the WAL's read and write
     * locks are the process's own, in memory (the wal-index is in the heap,
     * no -shm file): no fcntl per transaction. The readers, the
     * checkpointer and the writer are connections of this one process. */
    if (!(orig = sqlite3_vfs_find("unix-excl")) || orig->iVersion < 2 || !orig->xCurrentTimeInt64) {
        reg_rc = -ENOENT;
        return;
    }
    size_t head = sizeof(walfile) > sizeof(dbfile) ? sizeof(walfile) : sizeof(dbfile);
    vfs = (sqlite3_vfs){
        .iVersion = 2, .szOsFile = (int)(((head + 15) & ~(size_t)15) + (size_t)orig->szOsFile),
        .mxPathname = orig->mxPathname, .zName = SVC_WALVFS, .xOpen = vfs_open, .xDelete = vfs_delete,
        .xAccess = vfs_access, .xFullPathname = vfs_full, .xDlOpen = vfs_dlopen, .xDlError = vfs_dlerror,
        .xDlSym = vfs_dlsym, .xDlClose = vfs_dlclose, .xRandomness = vfs_random, .xSleep = vfs_sleep,
        .xCurrentTime = vfs_time, .xGetLastError = vfs_lasterr, .xCurrentTimeInt64 = vfs_time64,
    };
    reg_rc = sqlite3_vfs_register(&vfs, 0) == SQLITE_OK ? 0 : -ENOMEM;
}

int svc_walvfs_register(void)
{
    pthread_once(&once, reg);
    return reg_rc;
}

void svc_walvfs_counts(uint64_t *frames, uint64_t *writes)
{
    *frames = atomic_load_explicit(&n_frames, memory_order_relaxed);
    *writes = atomic_load_explicit(&n_writes, memory_order_relaxed);
}
