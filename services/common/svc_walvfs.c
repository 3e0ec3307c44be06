/* svc_walvfs.c: SQLite's default VFS, except that a WAL frame reaches the
 * file in ONE write, not two; see svc_store.h (svc_walvfs_name).
 *
 * Why: SQLite appends a WAL frame as two writes, its 24-byte header and
 * then its page, each a pwrite64. A commit writes one frame per page it
 * changed, so an order's steps cost the three services ~13.6 pwrite64
 * (issue 14: half of them 24 bytes), and on this VM a syscall costs
 * ~1.2 us of CPU. Here a 24-byte write to a WAL file is held and sent
 * with the write that continues it (the page, which walWriteOneFrame
 * writes next, at the offset right after it) as one pwrite64 of both.
 *
 * Why it changes no guarantee: the bytes reach the file in the same order
 * and before anything else is done with it. A held header is written out
 * before any other call on the file (a read, a sync, a truncate, its
 * size, a lock, the wal-index's shared memory: xShmBarrier comes before
 * a commit is made visible, xSync before it is made durable), and at its
 * close. A crash while a header is held loses it and its page, which a
 * crash between the two writes loses too: a frame is only part of the
 * WAL once a later commit frame's checksums cover it, and recovery stops
 * at the first frame that does not check out.
 *
 * Every other file (the database, temp files) is opened by the default
 * VFS itself, with its own methods: only WAL files go through these. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "svc_store.h"

#define FRAME_HDR 24   /* WAL_FRAME_HDRSIZE in SQLite's wal.c */

typedef struct walfile {
    sqlite3_file base;        /* pMethods = &methods */
    sqlite3_file *real;       /* the default VFS's file, right after this struct */
    unsigned char *buf;       /* the held header, then the frame to write */
    int cap;                  /* buf's size */
    int held;                 /* bytes held in buf (0 or FRAME_HDR) */
    sqlite3_int64 held_at;    /* their offset in the file */
} walfile;

static sqlite3_vfs vfs;
static sqlite3_vfs *dflt;
static sqlite3_io_methods methods;
static _Atomic uint64_t n_writes, n_joined;

static int grow(walfile *f, int n)
{
    if (n <= f->cap)
        return 0;
    unsigned char *b = realloc(f->buf, (size_t)n);
    if (!b)
        return -1;
    f->buf = b;
    f->cap = n;
    return 0;
}

/* Writes out the held header, if any: before anything else touches the file. */
static int flush(walfile *f)
{
    if (!f->held)
        return SQLITE_OK;
    int n = f->held;
    f->held = 0;
    atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
    return f->real->pMethods->xWrite(f->real, f->buf, n, f->held_at);
}

static int w_write(sqlite3_file *p, const void *data, int n, sqlite3_int64 at)
{
    walfile *f = (walfile *)p;
    if (f->held && at == f->held_at + f->held && grow(f, f->held + n) == 0) {
        /* the page that continues the held header: one write of both */
        memcpy(f->buf + f->held, data, (size_t)n);
        int len = f->held + n;
        f->held = 0;
        atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&n_joined, 1, memory_order_relaxed);
        return f->real->pMethods->xWrite(f->real, f->buf, len, f->held_at);
    }
    int rc = flush(f);
    if (rc != SQLITE_OK)
        return rc;
    if (n == FRAME_HDR && grow(f, FRAME_HDR) == 0) {
        /* a frame's header (the WAL's own header is 32 bytes, a page at
         * least 512): held until its page comes */
        memcpy(f->buf, data, FRAME_HDR);
        f->held = FRAME_HDR;
        f->held_at = at;
        return SQLITE_OK;
    }
    atomic_fetch_add_explicit(&n_writes, 1, memory_order_relaxed);
    return f->real->pMethods->xWrite(f->real, data, n, at);
}

static int w_close(sqlite3_file *p)
{
    walfile *f = (walfile *)p;
    int rc = flush(f);
    int rc2 = f->real->pMethods->xClose(f->real);
    free(f->buf);
    f->buf = NULL;
    f->cap = 0;
    return rc != SQLITE_OK ? rc : rc2;
}

/* Every other method: the held header first, then the default VFS's. */
#define REAL(f) (((walfile *)(f))->real)
#define FLUSHED(p)                                      \
    do {                                                \
        int frc_ = flush((walfile *)(p));               \
        if (frc_ != SQLITE_OK)                          \
            return frc_;                                \
    } while (0)

static int w_read(sqlite3_file *p, void *b, int n, sqlite3_int64 at)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xRead(REAL(p), b, n, at);
}
static int w_truncate(sqlite3_file *p, sqlite3_int64 size)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xTruncate(REAL(p), size);
}
static int w_sync(sqlite3_file *p, int flags)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xSync(REAL(p), flags);
}
static int w_size(sqlite3_file *p, sqlite3_int64 *size)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xFileSize(REAL(p), size);
}
static int w_lock(sqlite3_file *p, int l)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xLock(REAL(p), l);
}
static int w_unlock(sqlite3_file *p, int l)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xUnlock(REAL(p), l);
}
static int w_reserved(sqlite3_file *p, int *out)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xCheckReservedLock(REAL(p), out);
}
static int w_fcntl(sqlite3_file *p, int op, void *arg)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xFileControl(REAL(p), op, arg);
}
static int w_sector(sqlite3_file *p) { return REAL(p)->pMethods->xSectorSize(REAL(p)); }
static int w_caps(sqlite3_file *p) { return REAL(p)->pMethods->xDeviceCharacteristics(REAL(p)); }
static int w_shmmap(sqlite3_file *p, int pg, int sz, int extend, void volatile **out)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xShmMap(REAL(p), pg, sz, extend, out);
}
static int w_shmlock(sqlite3_file *p, int off, int n, int flags)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xShmLock(REAL(p), off, n, flags);
}
static void w_shmbarrier(sqlite3_file *p)
{
    /* void: an error here shows at the file's next call, which writes
     * again (flush keeps nothing after a failed write) */
    flush((walfile *)p);
    REAL(p)->pMethods->xShmBarrier(REAL(p));
}
static int w_shmunmap(sqlite3_file *p, int del)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xShmUnmap(REAL(p), del);
}
static int w_fetch(sqlite3_file *p, sqlite3_int64 at, int n, void **out)
{
    FLUSHED(p);
    return REAL(p)->pMethods->xFetch(REAL(p), at, n, out);
}
static int w_unfetch(sqlite3_file *p, sqlite3_int64 at, void *b)
{
    return REAL(p)->pMethods->xUnfetch(REAL(p), at, b);
}

static int w_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *p, int flags, int *out)
{
    (void)v;
    if (!(flags & SQLITE_OPEN_WAL))   /* the default VFS's file, as it is (p has room for it) */
        return dflt->xOpen(dflt, name, p, flags, out);
    walfile *f = (walfile *)p;
    *f = (walfile){ .real = (sqlite3_file *)(f + 1) };
    int rc = dflt->xOpen(dflt, name, f->real, flags, out);
    if (rc != SQLITE_OK) {
        if (f->real->pMethods)
            f->real->pMethods->xClose(f->real);
        p->pMethods = NULL;
        return rc;
    }
    if (f->real->pMethods->iVersion < 3) {   /* ours are version 3's (unix's are) */
        f->real->pMethods->xClose(f->real);
        p->pMethods = NULL;
        return SQLITE_CANTOPEN;
    }
    p->pMethods = &methods;
    return SQLITE_OK;
}

static void once(void)
{
    dflt = sqlite3_vfs_find(NULL);
    if (!dflt || dflt->iVersion < 1)
        return;
    /* everything but opening is the default VFS's own (its functions are
     * given this struct, a copy of its own with the same pAppData) */
    vfs = *dflt;
    vfs.pNext = NULL;
    vfs.zName = "sluice-wal";
    vfs.szOsFile = (int)sizeof(walfile) + dflt->szOsFile;
    vfs.xOpen = w_open;
    methods = (sqlite3_io_methods){
        .iVersion = 3, .xClose = w_close, .xRead = w_read, .xWrite = w_write, .xTruncate = w_truncate,
        .xSync = w_sync, .xFileSize = w_size, .xLock = w_lock, .xUnlock = w_unlock,
        .xCheckReservedLock = w_reserved, .xFileControl = w_fcntl, .xSectorSize = w_sector,
        .xDeviceCharacteristics = w_caps, .xShmMap = w_shmmap, .xShmLock = w_shmlock,
        .xShmBarrier = w_shmbarrier, .xShmUnmap = w_shmunmap, .xFetch = w_fetch, .xUnfetch = w_unfetch,
    };
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK)
        dflt = NULL;
}

const char *svc_walvfs_name(void)
{
    static pthread_once_t o = PTHREAD_ONCE_INIT;
    pthread_once(&o, once);
    return dflt ? vfs.zName : NULL;
}

void svc_walvfs_counts(uint64_t *writes, uint64_t *joined)
{
    *writes = atomic_load(&n_writes);
    *joined = atomic_load(&n_joined);
}
