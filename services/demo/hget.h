/* hget.h: a small blocking HTTP/1.1 client for the demo driver: one request
 * per connection, a deadline for the whole exchange. The driver talks to the
 * services only to set faults and read /metrics, /debug/tasks and state;
 * the load itself comes from sluice-load. */
#ifndef DEMO_HGET_H
#define DEMO_HGET_H
#include <stddef.h>

typedef struct hget_resp {
    int status;      /* HTTP status */
    char *body;      /* NUL-terminated, malloc'd; free with hget_free */
    size_t len;
} hget_resp;

/* Sends `method path` with an optional JSON body to 127.0.0.1:port and reads
 * the answer (Content-Length framed, or until close) within timeout_ms.
 * Returns 0 and fills *r, or -ETIMEDOUT, -ECONNREFUSED, -EPROTO (no valid
 * status line), -ENOMEM, or another -errno of the socket. */
int hget(int port, const char *method, const char *path, const char *body, int timeout_ms, hget_resp *r);

void hget_free(hget_resp *r);

#endif
