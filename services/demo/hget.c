/* hget.c: see hget.h. Deliberately simple: blocking socket, poll for the
 * deadline, Connection: close so the end of the answer is never ambiguous. */
#include "hget.h"
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `ev` or the deadline passes. */
static int wait_fd(int fd, short ev, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = { .fd = fd, .events = ev };
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return -errno;
    }
}

static int send_all(int fd, const char *s, size_t len, long long deadline)
{
    while (len) {
        int rc = wait_fd(fd, POLLOUT, deadline);
        if (rc < 0)
            return rc;
        ssize_t n = send(fd, s, len, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
            return -errno;
        if (n > 0) {
            s += n;
            len -= (size_t)n;
        }
    }
    return 0;
}

/* Reads until the peer closes (we asked for Connection: close). */
static int recv_all(int fd, char **out, size_t *outlen, long long deadline)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        int rc = wait_fd(fd, POLLIN, deadline);
        if (rc < 0) {
            free(buf);
            return rc;
        }
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t n = recv(fd, buf + len, cap - len - 1, 0);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            int e = errno;
            free(buf);
            return -e;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    *out = buf;
    *outlen = len;
    return 0;
}

int hget(int port, const char *method, const char *path, const char *body, int timeout_ms, hget_resp *r)
{
    long long deadline = now_ms() + timeout_ms;
    memset(r, 0, sizeof *r);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int rc = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS)
        rc = -errno;
    if (!rc && !(rc = wait_fd(fd, POLLOUT, deadline))) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        rc = -err;
    }
    char head[512];
    size_t blen = body ? strlen(body) : 0;
    int hl = snprintf(head, sizeof head,
                      "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n", method, path, blen);
    if (!rc && (hl < 0 || (size_t)hl >= sizeof head))
        rc = -EINVAL;
    if (!rc)
        rc = send_all(fd, head, (size_t)hl, deadline);
    if (!rc && blen)
        rc = send_all(fd, body, blen, deadline);
    char *raw = NULL;
    size_t rawlen = 0;
    if (!rc)
        rc = recv_all(fd, &raw, &rawlen, deadline);
    close(fd);
    if (rc < 0)
        return rc;
    char *sep = strstr(raw, "\r\n\r\n");
    if (strncmp(raw, "HTTP/1.1 ", 9) || !sep) {
        free(raw);
        return -EPROTO;
    }
    r->status = atoi(raw + 9);
    size_t off = (size_t)(sep + 4 - raw);
    r->len = rawlen - off;
    memmove(raw, raw + off, r->len + 1);
    r->body = raw;
    return 0;
}

void hget_free(hget_resp *r)
{
    free(r->body);
    r->body = NULL;
}
