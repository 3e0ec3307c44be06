/* addr.h: HOST:PORT as the user writes it, and socket addresses as the
 * user reads them. Private to net/ (the services' options use it too).
 *
 * HOST is a numeric IPv4 address, an IPv6 address in brackets
 * ("[::1]:8081", "[::]:8081"), "localhost" (127.0.0.1, always: a name
 * that could also mean ::1 would make a test's address depend on the
 * machine) or a DNS name (RFC 1123: letters, digits and hyphens in dotted
 * labels of at most 63, 253 in all, the last one not all digits so that
 * "10.0.0.300" is a bad address rather than a name). */
#ifndef SL_ADDR_H
#define SL_ADDR_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SL_HOST_MAX 254        /* a DNS name's 253 and the NUL */
#define SL_ADDR_STR_MAX 56     /* "[" INET6_ADDRSTRLEN "]:65535" */

typedef struct sl_hostport {
    char host[SL_HOST_MAX];    /* as written, without brackets */
    uint16_t port;
    bool is_name;              /* else sa holds the literal address and the port */
    struct sockaddr_storage sa;
    socklen_t salen;
} sl_hostport;

/* Parses len bytes of "HOST:PORT". Port 0 is accepted only if zero_port_ok.
 * Returns 0, or -EINVAL with *why (never NULL then) saying what is wrong:
 * "no :PORT", "bad port", "bad IPv6 address", "bad host". */
int sl__hostport_parse(sl_hostport *hp, const char *s, size_t len, bool zero_port_ok, const char **why);

/* An address and a port as a sockaddr (AF_INET or AF_INET6); returns its length. */
socklen_t sl__sockaddr_make(struct sockaddr_storage *ss, int family, const void *addr, uint16_t port);

/* "1.2.3.4:80" or "[::1]:80" into buf (SL_ADDR_STR_MAX bytes); "?" for
 * another family. */
void sl__sockaddr_format(const struct sockaddr *sa, char *buf, size_t n);

/* 127.0.0.0/8, ::1, or ::ffff:127.0.0.0/104 (IPv4 loopback on a dual-stack socket). */
bool sl__sockaddr_loopback(const struct sockaddr *sa);
#endif
