/* opts.h: sluice-load's command line. */
#ifndef LOAD_OPTS_H
#define LOAD_OPTS_H
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "tmpl.h"

#define LOAD_CLOSED_CONNS 10     /* closed loop, like wrk */
#define LOAD_OPEN_CAP 256        /* open loop: connections opened at most */

typedef struct load_opts {
    const char *url;
    struct sockaddr_storage addr; /* from the URL (a name: its first address at start) */
    socklen_t addr_len;
    const char *url_why;         /* what load_url_parse found wrong */
    char host[280];              /* "HOST:PORT" for the Host header, as written */
    char *path;                  /* request-target, "/" at least */
    const char *method;          /* default GET, POST with a body */
    double rate;                 /* requests/s; 0: closed loop */
    int connections;             /* closed loop: C; open loop: the cap */
    int threads;
    double duration_s, warmup_s;
    uint32_t timeout_ms;
    bool deadline_header;        /* send grpc-timeout */
    bool trace;                  /* a fresh traceparent per request */
    char **headers;              /* "Name: value" lines, as given */
    size_t nheaders;
    bool has_body, user_ctype;
    tmpl body;
    bool json, quiet;
    const char *report;          /* HTML file */
} load_opts;

/* Parses argv. Returns 0, 2 (bad usage: the message is in err), or 1
 * (cannot run: a URL that is no http://IPv4|localhost[:PORT][/path], an
 * unreadable body file). On 2 and 1 the options are freed. --help prints
 * the usage on stdout and returns -1. */
int load_opts_parse(load_opts *o, int argc, char **argv, char *err, size_t errlen);
void load_opts_free(load_opts *o);

/* Parses an URL into o->addr, o->host and o->path; HOST is an IPv4
 * address, [IPv6], localhost or a name, looked up now (blocking: at start;
 * the hosts file, then DNS; see sl_client.h). Returns 0, -EINVAL (bad URL),
 * -ENOENT (no such name), -EAGAIN (no answer from the resolver), -ENOMEM;
 * o->url_why says what is wrong. */
int load_url_parse(load_opts *o, const char *url);

/* The part of every request that the options fix: request line, Host,
 * the --header lines and the Content-Type a body implies, each line ending
 * in CRLF (the per-request headers, the blank line and the body follow).
 * Returns a malloc'd string (*len bytes, NUL-terminated) or NULL (ENOMEM). */
char *load_request_prefix(const load_opts *o, size_t *len);

void load_usage(FILE *f);

#endif
