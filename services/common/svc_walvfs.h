/* svc_walvfs.h: an SQLite VFS that writes a transaction's WAL frames
 * with one pwrite (issue 14).
 *
 * SQLite's unix VFS writes each WAL frame with two pwrite64 calls (its
 * 24-byte header, then its page), so a commit that dirties k pages costs
 * 2k syscalls, at ~1.2 us each on the VM the chain is measured on. This VFS
 * ("sluice-wal") passes everything to the default VFS and only holds a
 * WAL file's appended frames in memory until the frame that ends the
 * transaction (a commit frame's page), then writes them all with one
 * pwrite64. So a commit of k pages costs one syscall.
 *
 * Durability is unchanged: the commit's frames reach the kernel inside the
 * commit, before SQLite publishes the transaction in the WAL index (the
 * write of the commit frame's page is the one that writes them, and an
 * error there fails the commit as before); an fsync (--sync full) writes
 * what is held first. Anything else done to the WAL file (a read, a
 * truncate, a sync, its size, a write that does not extend the frames
 * held) writes what is held first, and a write that follows a read (SQLite
 * rewriting a frame's checksum in place) goes straight to the file. As a
 * last guard, the database file's memory barrier and lock calls (made just
 * before the WAL index names new frames) write what the connection's WAL
 * still holds.
 *
 * It wraps SQLite's "unix-excl" VFS, not the default "unix": the first
 * connection to read the database takes its file lock exclusively for the
 * whole process, so every connection of the process (the store's writer,
 * readers and checkpointer) shares the database and another process
 * cannot open it (SQLITE_BUSY, "database is locked", after the busy
 * timeout: never two processes writing one database). In exchange the
 * WAL's locks are the process's own: the wal-index is in the heap (no
 * -shm file) and a transaction takes no fcntl lock (the default VFS: ~4
 * per commit). A crash releases the lock with the process; the next start
 * rebuilds the index from the WAL.
 *
 * Register once before opening (idempotent, thread-safe); open with
 * sqlite3_open_v2(..., SVC_WALVFS). */
#ifndef SVC_WALVFS_H
#define SVC_WALVFS_H

#include <stdint.h>

#define SVC_WALVFS "sluice-wal"

/* Registers the VFS (not as the default). Returns 0, or -ENOMEM / -ENOENT
 * (no "unix-excl" VFS to wrap). */
int svc_walvfs_register(void);

/* The process's WAL frames written through this VFS (pages, one header
 * each) and the write syscalls they took, since it started (GET
 * /debug/store: wal_frames, wal_writes). */
void svc_walvfs_counts(uint64_t *frames, uint64_t *writes);

/* Tests only: every sync of a database file (not a WAL: with --sync
 * normal only a checkpoint syncs the database) sleeps `ms` first, as a
 * slow disk's fsync would take (0: none, the default). */
void svc_walvfs_test_sync_delay(unsigned ms);

#endif
