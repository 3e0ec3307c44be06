/* proc.h: the programs the demo starts, and stops by pid. */
#ifndef DEMO_PROC_H
#define DEMO_PROC_H
#include <stdbool.h>
#include <sys/types.h>

typedef struct proc {
    pid_t pid;
    int out;          /* read end of its stdout, or -1 */
} proc;

/* The environment the programs get (NULL: this process's environ). */
extern char **proc_env;

/* Starts argv[0] with argv and proc_env; its stdout goes to a pipe (proc.out), its stderr
 * to `errlog` (appended; NULL: /dev/null). Returns 0 or -errno. */
int proc_start(proc *p, char *const argv[], const char *errlog);

/* Reads one line of the program's stdout into buf within timeout_ms.
 * Returns its length, -ETIMEDOUT, or -EPIPE (the program closed stdout or
 * exited first). */
int proc_read_line(proc *p, char *buf, size_t size, int timeout_ms);

/* Sends SIGTERM and waits up to grace_ms for the exit; then SIGKILL.
 * Returns the exit status (0..255), 128+signal when it died of a signal,
 * or -1 when it had to be killed. */
int proc_stop(proc *p, int grace_ms);

/* The program's resident set size in KiB (from /proc), or -1. */
long proc_rss_kib(const proc *p);

/* A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it). */
int free_port(void);

#endif
