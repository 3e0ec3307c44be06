/* proc.c: see proc.h. */
#include "proc.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

char **proc_env;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int proc_start(proc *p, char *const argv[], const char *errlog)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    int err = open(errlog ? errlog : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        return -e;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        close(err);
        return -e;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        dup2(err, STDERR_FILENO);
        execve(argv[0], argv, proc_env ? proc_env : environ);
        fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fds[1]);
    close(err);
    p->pid = pid;
    p->out = fds[0];
    return 0;
}

int proc_read_line(proc *p, char *buf, size_t size, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    size_t len = 0;
    while (len + 1 < size) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pf = { .fd = p->out, .events = POLLIN };
        int n = poll(&pf, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -ETIMEDOUT;
        char c;
        ssize_t r = read(p->out, &c, 1);   /* byte by byte: we must not read past the line */
        if (r <= 0)
            return -EPIPE;
        if (c == '\n')
            break;
        buf[len++] = c;
    }
    buf[len] = '\0';
    return (int)len;
}

int proc_stop(proc *p, int grace_ms)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    long long deadline = now_ms() + grace_ms;
    int st, rc = -1;
    for (;;) {
        pid_t w = waitpid(p->pid, &st, WNOHANG);
        if (w == p->pid) {
            rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            break;
        }
        if (now_ms() >= deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, &st, 0);
            break;
        }
        struct timespec ts = { 0, 10 * 1000 * 1000 };   /* polling a child's exit: nothing to wait on */
        nanosleep(&ts, NULL);
    }
    if (p->out >= 0)
        close(p->out);
    p->out = -1;
    p->pid = 0;
    return rc;
}

long proc_rss_kib(const proc *p)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)p->pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 && getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}
