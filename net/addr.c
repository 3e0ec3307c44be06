/* addr.c: HOST:PORT parsing and socket address formatting (see addr.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include "addr.h"

static bool name_ok(const char *h, size_t len)
{
    if (len > 1 && h[len - 1] == '.')   /* an absolute name: "a.svc." */
        len--;
    if (len == 0 || len > 253)
        return false;
    size_t label = 0;
    bool digits_only = true;
    for (size_t i = 0; i <= len; i++) {
        char ch = i < len ? h[i] : '.';
        if (ch == '.') {
            /* an empty label (".." or a leading dot), one too long, or
             * one that starts or ends with a hyphen */
            if (label == 0 || label > 63 || h[i - 1] == '-' || h[i - label] == '-')
                return false;
            if (i < len) {
                label = 0;
                digits_only = true;
            }
            continue;
        }
        bool digit = ch >= '0' && ch <= '9';
        if (!digit && ch != '-' && !((ch | 0x20) >= 'a' && (ch | 0x20) <= 'z'))
            return false;
        digits_only &= digit;
        label++;
    }
    return !digits_only;   /* "10.0.0.300": a bad address, not a name */
}

socklen_t sl__sockaddr_make(struct sockaddr_storage *ss, int family, const void *addr, uint16_t port)
{
    memset(ss, 0, sizeof *ss);
    if (family == AF_INET6) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(port);
        memcpy(&s6->sin6_addr, addr, sizeof s6->sin6_addr);
        return sizeof *s6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    s4->sin_family = AF_INET;
    s4->sin_port = htons(port);
    memcpy(&s4->sin_addr, addr, sizeof s4->sin_addr);
    return sizeof *s4;
}

int sl__hostport_parse(sl_hostport *hp, const char *s, size_t len, bool zero_port_ok, const char **why)
{
    static const char *unused;
    const char **w = why ? why : &unused;
    memset(hp, 0, sizeof *hp);
    const char *colon = NULL, *host = s;
    size_t hlen;
    bool bracket = len && s[0] == '[';
    if (bracket) {
        const char *close = memchr(s, ']', len);
        if (!close) {
            *w = "bad IPv6 address";
            return -EINVAL;
        }
        host = s + 1;
        hlen = (size_t)(close - host);
        if (close + 1 == s + len || close[1] != ':') {
            *w = "no :PORT";
            return -EINVAL;
        }
        colon = close + 1;
    } else {
        for (size_t i = len; i-- > 0;)
            if (s[i] == ':') {
                colon = s + i;
                break;
            }
        if (!colon) {
            *w = "no :PORT";
            return -EINVAL;
        }
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen)) {   /* an IPv6 address needs its brackets */
            *w = "bad host (an IPv6 address goes in brackets: [::1]:PORT)";
            return -EINVAL;
        }
    }
    /* the port: 1-5 digits, 1..65535 (0 where allowed) */
    size_t plen = (size_t)(s + len - colon - 1);
    unsigned long port = 0;
    for (size_t i = 0; i < plen; i++) {
        char ch = colon[1 + i];
        if (ch < '0' || ch > '9' || port > 65535) {
            port = 65536;
            break;
        }
        port = port * 10 + (unsigned long)(ch - '0');
    }
    if (plen == 0 || port > 65535 || (port == 0 && !zero_port_ok)) {
        *w = "bad port";
        return -EINVAL;
    }
    hp->port = (uint16_t)port;
    if (hlen == 0 || hlen >= sizeof hp->host) {
        *w = "bad host";
        return -EINVAL;
    }
    memcpy(hp->host, host, hlen);
    hp->host[hlen] = '\0';
    unsigned char a[16];
    if (bracket) {
        if (inet_pton(AF_INET6, hp->host, a) != 1) {
            *w = "bad IPv6 address";
            return -EINVAL;
        }
        hp->salen = sl__sockaddr_make(&hp->sa, AF_INET6, a, hp->port);
        return 0;
    }
    if (!strcmp(hp->host, "localhost"))
        strcpy(hp->host, "127.0.0.1");
    if (inet_pton(AF_INET, hp->host, a) == 1) {
        hp->salen = sl__sockaddr_make(&hp->sa, AF_INET, a, hp->port);
        return 0;
    }
    if (!name_ok(hp->host, hlen)) {
        *w = "bad host";
        return -EINVAL;
    }
    hp->is_name = true;
    return 0;
}

void sl__sockaddr_format(const struct sockaddr *sa, char *buf, size_t n)
{
    char ip[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
        snprintf(buf, n, "%s:%u", ip, ntohs(s4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
        snprintf(buf, n, "[%s]:%u", ip, ntohs(s6->sin6_port));
    } else {
        snprintf(buf, n, "?");
    }
}

bool sl__sockaddr_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family != AF_INET6)
        return false;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}
