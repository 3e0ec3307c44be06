/* resolve.c: hosts file and evdns lookups (see resolve.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <event2/dns.h>
#include <event2/event.h>
#include "addr.h"
#include "list.h"
#include "resolve.h"

const char *sl__resolv_conf_path(const char *resolv_conf)
{
    const char *env = getenv("SLUICE_RESOLV_CONF");
    return resolv_conf ? resolv_conf : env && *env ? env : "/etc/resolv.conf";
}

const char *sl__hosts_path(const char *hosts)
{
    const char *env = getenv("SLUICE_HOSTS");
    return hosts ? hosts : env && *env ? env : "/etc/hosts";
}

static void addrs_add(sl_addrs *out, int family, const void *addr, uint16_t port)
{
    struct sockaddr_storage ss;
    socklen_t len = sl__sockaddr_make(&ss, family, addr, port);
    for (int i = 0; i < out->n; i++)
        if (out->len[i] == len && !memcmp(&out->a[i], &ss, len))
            return;   /* twice in the answers: one replica */
    if (out->n < SL_ADDRS_MAX) {
        out->a[out->n] = ss;
        out->len[out->n++] = len;
    }
}

int sl__hosts_lookup(const char *path, const char *name, uint16_t port, sl_addrs *out)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "re");
    if (!f)
        return -ENOENT;
    char line[1024];
    size_t nlen = strlen(name);
    if (nlen && name[nlen - 1] == '.')   /* "a.svc." is "a.svc" */
        nlen--;
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#'), *save = NULL;
        if (hash)
            *hash = '\0';
        char *addr = strtok_r(line, " \t\r\n", &save);
        if (!addr)
            continue;
        unsigned char a[16];
        int family = inet_pton(AF_INET, addr, a) == 1 ? AF_INET : inet_pton(AF_INET6, addr, a) == 1 ? AF_INET6 : 0;
        if (!family)
            continue;
        for (char *n; (n = strtok_r(NULL, " \t\r\n", &save));)
            if (strlen(n) == nlen && !strncasecmp(n, name, nlen)) {
                addrs_add(out, family, a, port);
                break;
            }
    }
    fclose(f);
    return out->n ? 0 : -ENOENT;
}

typedef struct lookup lookup;

struct sl_dns {
    struct evdns_base *db;
    SL_LIST(lookup) live; /* lookups under way (core/list.h) */
};

struct lookup {
    sl_dns *d;            /* NULL once orphaned by sl__dns_free */
    SL_LINK(lookup) link; /* sl_dns.live, while d is set */
    sl_dns_cb cb;
    void *arg;
    uint16_t port;
    int pending;          /* answers still to come: A and AAAA */
    int err4, err6;       /* evdns's results */
    sl_addrs addrs;
};

static void unlink_lookup(lookup *lk)
{
    if (!lk->d)
        return;
    SL_LIST_REMOVE(&lk->d->live, lk, link);
    lk->d = NULL;
}

sl_dns *sl__dns_new(struct event_base *base, const char *resolv_conf)
{
    sl_dns *d = calloc(1, sizeof *d);
    if (!d || !(d->db = evdns_base_new(base, 0))) {
        free(d);
        return NULL;
    }
    /* everything but libevent's own hosts file handling (we read the
     * hosts file ourselves, once: evdns only consults it for getaddrinfo,
     * which hides the TTL); a missing file leaves evdns its default of a
     * nameserver on 127.0.0.1 */
    evdns_base_resolv_conf_parse(d->db, DNS_OPTIONS_ALL & ~DNS_OPTION_HOSTSFILE, resolv_conf);
    return d;
}

void sl__dns_free(sl_dns *d)
{
    if (!d)
        return;
    /* evdns answers through deferred callbacks, some perhaps scheduled
     * already: a lookup under way cannot be freed here. It is orphaned
     * (no callback of ours runs) and frees itself when evdns has called
     * back for both of its questions, which evdns_base_free(.., 1)
     * guarantees as soon as the event_base runs again. */
    while (d->live.head) {
        lookup *lk = d->live.head;
        unlink_lookup(lk);
        lk->cb = NULL;
    }
    evdns_base_free(d->db, 1);
    free(d);
}

static int rc_of(int err)
{
    switch (err) {
    case DNS_ERR_NONE: return 0;
    case DNS_ERR_NOTEXIST: case DNS_ERR_NODATA: case DNS_ERR_FORMAT: return -ENOENT;
    case DNS_ERR_SHUTDOWN: case DNS_ERR_CANCEL: return -ECANCELED;
    default: return -EAGAIN;
    }
}

static void answered(int result, char type, int count, int ttl, void *addresses, void *arg)
{
    lookup *lk = arg;
    bool v6 = type == DNS_IPv6_AAAA;
    if (v6)
        lk->err6 = result;
    else
        lk->err4 = result;
    if (result == DNS_ERR_NONE && (type == DNS_IPv4_A || type == DNS_IPv6_AAAA)) {
        for (int i = 0; i < count; i++)
            addrs_add(&lk->addrs, v6 ? AF_INET6 : AF_INET, (const char *)addresses + (size_t)i * (v6 ? 16 : 4), lk->port);
        uint32_t t = ttl > 0 ? (uint32_t)ttl : 0;
        if (count > 0 && (lk->addrs.ttl_s == 0 || t < lk->addrs.ttl_s))
            lk->addrs.ttl_s = t ? t : 1;
    }
    if (--lk->pending)
        return;
    if (!lk->cb) {   /* orphaned */
        free(lk);
        return;
    }
    unlink_lookup(lk);
    int rc = 0;
    if (!lk->addrs.n) {
        int r4 = rc_of(lk->err4), r6 = rc_of(lk->err6);
        /* no address: the name does not exist (or has none) only if both
         * say so; else the resolver failed us */
        rc = r4 == -ECANCELED || r6 == -ECANCELED ? -ECANCELED
             : (r4 == 0 || r4 == -ENOENT) && (r6 == 0 || r6 == -ENOENT) ? -ENOENT : -EAGAIN;
    }
    lk->cb(lk->arg, rc, rc ? NULL : &lk->addrs);
    free(lk);
}

int sl__dns_lookup(sl_dns *d, const char *name, uint16_t port, sl_dns_cb cb, void *arg)
{
    lookup *lk = calloc(1, sizeof *lk);
    if (!lk)
        return -ENOMEM;
    lk->cb = cb;
    lk->arg = arg;
    lk->port = port;
    lk->pending = 2;
    lk->d = d;
    SL_LIST_PUSH_FRONT(&d->live, lk, link);
    /* evdns answers from its callbacks only, never within these calls
     * (a failure to start is reported as a callback too) */
    if (!evdns_base_resolve_ipv4(d->db, name, 0, answered, lk)) {
        lk->err4 = DNS_ERR_UNKNOWN;
        lk->pending--;
    }
    if (!evdns_base_resolve_ipv6(d->db, name, 0, answered, lk)) {
        lk->err6 = DNS_ERR_UNKNOWN;
        if (--lk->pending == 0) {
            unlink_lookup(lk);
            free(lk);
            return -ENOMEM;
        }
    }
    return 0;
}

typedef struct now_st {
    int rc;
    bool done;
    sl_addrs *out;
} now_st;

static void now_cb(void *arg, int rc, const sl_addrs *addrs)
{
    now_st *st = arg;
    st->rc = rc;
    st->done = true;
    if (addrs)
        *st->out = *addrs;
}

int sl__resolve_now(const char *name, uint16_t port, const char *resolv_conf, const char *hosts, sl_addrs *out)
{
    int rc = sl__hosts_lookup(sl__hosts_path(hosts), name, port, out);
    if (rc != -ENOENT)
        return rc;
    struct event_base *base = event_base_new();
    sl_dns *d = base ? sl__dns_new(base, sl__resolv_conf_path(resolv_conf)) : NULL;
    now_st st = { .rc = -EAGAIN, .out = out };
    if (d && sl__dns_lookup(d, name, port, now_cb, &st) == 0)
        while (!st.done && event_base_loop(base, EVLOOP_ONCE) == 0)
            ;
    sl__dns_free(d);
    if (base)
        event_base_free(base);
    return st.rc;
}

const char *sl__resolve_strerror(int rc)
{
    switch (rc) {
    case -ENOENT: return "no such name (or no address for it)";
    case -EAGAIN: return "no answer from the resolver (timeout or server failure)";
    case -ECANCELED: return "lookup cancelled";
    case -ENOMEM: return "out of memory";
    default: return "lookup failed";
    }
}
