/* resolve.h: names to addresses, for upstreams and listeners. Private to
 * net/.
 *
 * A name is looked up first in a hosts file (the same format as
 * /etc/hosts), read when the upstream or listener is made, then in DNS
 * with libevent's evdns (A and AAAA at once), whose answers carry a TTL.
 * Where: opts, else the environment (SLUICE_RESOLV_CONF, SLUICE_HOSTS),
 * else /etc/resolv.conf and /etc/hosts; a test points both at files of its
 * own and needs no real DNS. */
#ifndef SL_RESOLVE_H
#define SL_RESOLVE_H
#include <stdint.h>
#include <sys/socket.h>

struct event_base;

#define SL_ADDRS_MAX 32    /* addresses kept per name (a headless Service's replicas) */

typedef struct sl_addrs {
    int n;
    uint32_t ttl_s;        /* how long the answer holds; 0 for a hosts file's (forever) */
    struct sockaddr_storage a[SL_ADDRS_MAX];
    socklen_t len[SL_ADDRS_MAX];
} sl_addrs;

/* The files to use: `resolv_conf`/`hosts` if not NULL, else the
 * environment's, else the system's. */
const char *sl__resolv_conf_path(const char *resolv_conf);
const char *sl__hosts_path(const char *hosts);

/* Looks `name` up in a hosts file (blocking: a small local file, read
 * before any reactor runs or once per upstream). Every address of every
 * line naming it, with `port`. Returns 0, -ENOENT (not in the file; a
 * missing file is an empty one), -ENOMEM. */
int sl__hosts_lookup(const char *path, const char *name, uint16_t port, sl_addrs *out);

/* A DNS resolver on one event_base (one per reactor: its sockets and
 * timers live on that reactor; nothing is shared). */
typedef struct sl_dns sl_dns;

/* Reads resolv_conf (nameservers, search, options timeout:/attempts:).
 * Returns NULL when out of memory. */
sl_dns *sl__dns_new(struct event_base *base, const char *resolv_conf);

/* Frees it. The callbacks of lookups under way never run (their memory is
 * freed once the event_base has run again: free it before the base's
 * last turn, or with no lookup under way, not to leak it). */
void sl__dns_free(sl_dns *d);

/* Called once per lookup, on the base's thread: rc 0 and the addresses
 * (A and AAAA; ttl_s the least TTL of the two answers), or -ENOENT (no such
 * name, or no address), -EAGAIN (no answer: timeout or server failure).
 * `addrs` is valid during the call. */
typedef void (*sl_dns_cb)(void *arg, int rc, const sl_addrs *addrs);

/* Starts looking `name` up; cb runs later, never from within this call.
 * Returns 0, -ENOMEM. */
int sl__dns_lookup(sl_dns *d, const char *name, uint16_t port, sl_dns_cb cb, void *arg);

/* The whole lookup of a name (hosts file, then DNS) now, blocking the
 * caller until the answer or the resolver's own timeout: for start-up,
 * before the reactors run. Returns what sl_dns_cb would get. */
int sl__resolve_now(const char *name, uint16_t port, const char *resolv_conf, const char *hosts, sl_addrs *out);

/* Why a lookup failed, for messages. */
const char *sl__resolve_strerror(int rc);
#endif
