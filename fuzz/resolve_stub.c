/* resolve_stub.c: the name lookup of net/resolve.c, stubbed for the
 * fuzz_load_opts harness. sluice-load looks a URL's name up at start
 * (blocking, through evdns); a fuzzed name would wait for a name server
 * that is not there, so every input holding a name took seconds and
 * libFuzzer called it a hang. The lookup is not what this harness fuzzes:
 * "fuzz.test" resolves to 127.0.0.1 (so the request is still built), any
 * other name is not found. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include "resolve.h"

int sl__resolve_now(const char *name, uint16_t port, const char *resolv_conf, const char *hosts, sl_addrs *out)
{
    (void)resolv_conf;
    (void)hosts;
    if (strcmp(name, "fuzz.test"))
        return -ENOENT;
    struct sockaddr_in *sa = (struct sockaddr_in *)&out->a[0];
    memset(out, 0, sizeof *out);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(port);
    sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    out->len[0] = sizeof *sa;
    out->n = 1;
    return 0;
}

const char *sl__resolve_strerror(int rc)
{
    return rc == -ENOENT ? "no such name (fuzz stub)" : "lookup failed (fuzz stub)";
}
