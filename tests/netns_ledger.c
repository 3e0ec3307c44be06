/* netns_ledger.c: the ledger walk of tests/netns.sh, run inside the load
 * generator's network namespace, where the services are reached at their
 * namespace addresses (not 127.0.0.1, so tests/svcutil.h does not fit).
 *
 *   netns_ledger --order A:P [--order A:P ...] --payment A:P
 *                --inventory A:P [--inventory A:P ...] --items N --stock S
 *
 * Each A:P is an IPv4 address and a port. Every inventory replica was
 * seeded with S of each of sku-1..sku-N. The walk:
 *  1. waits (bounded) until no compensation is pending at any order and
 *     inventory process (the gauge sluice_svc_compensations_pending of
 *     GET /metrics: /debug/compensations answers loopback clients only);
 *  2. reads every order (GET /orders at each order process) and, for each,
 *     its reservation at EVERY inventory replica and its charge: a PAID
 *     order has exactly one RESERVED reservation over the replicas and a
 *     CHARGED charge of its amount; a FAILED one no RESERVED reservation on
 *     any replica and no CHARGED charge. Anything else is a disagreement;
 *  3. checks the stock summed over the replicas: N * S * replicas minus the
 *     PAID quantities, exactly, per item.
 * Prints one summary line ("ledger: ...") and the first disagreements.
 * Exit 0: the books balance; 1: they do not; 2: bad usage or a service
 * that does not answer. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

enum { MAX_PEERS = 8, MAX_ITEMS = 16, IO_MS = 10000, SETTLE_MS = 30000 };

typedef struct peer {
    struct sockaddr_in sa;
    char name[64];
} peer;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static bool peer_parse(peer *p, const char *s)
{
    const char *colon = strrchr(s, ':');
    char host[48];
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return false;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    memset(p, 0, sizeof *p);
    p->sa.sin_family = AF_INET;
    p->sa.sin_port = htons((uint16_t)port);
    snprintf(p->name, sizeof p->name, "%s", s);
    return !*end && port > 0 && port < 65536 && inet_pton(AF_INET, host, &p->sa.sin_addr) == 1;
}

/* GET path (HTTP/1.0: the server closes after the answer, no chunking).
 * Returns the status (0: no answer within IO_MS) and the body into *text
 * (malloc'ed, the caller frees; NULL without an answer). */
static int get_text(const peer *p, const char *path, char **text)
{
    *text = NULL;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    char req[512], *buf = NULL;
    size_t len = 0, cap = 0;
    int status = 0, n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: ledger\r\n\r\n", path);
    uint64_t end = now_ms() + IO_MS;
    if (connect(fd, (const struct sockaddr *)&p->sa, sizeof p->sa) < 0 || write(fd, req, (size_t)n) != n)
        goto out;
    for (;;) {
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        uint64_t t = now_ms();
        if (t >= end || poll(&pf, 1, (int)(end - t)) <= 0)
            goto out;   /* no whole answer in time */
        if (len + 65536 > cap) {
            char *nb = realloc(buf, cap = cap ? cap * 2 : 1 << 20);
            if (!nb)
                goto out;
            buf = nb;
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !body) {
        status = 0;
    } else {
        memmove(buf, body + 4, len - (size_t)(body + 4 - buf) + 1);
        *text = buf;
        buf = NULL;
    }
out:
    close(fd);
    free(buf);
    return status;
}

/* get_text, the body as JSON (NULL if it is not JSON) into *doc. */
static int get(const peer *p, const char *path, json_t **doc)
{
    char *text;
    int status = get_text(p, path, &text);
    *doc = text ? json_loads(text, 0, NULL) : NULL;
    free(text);
    return status;
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The sum of the gauge sluice_svc_compensations_pending in p's /metrics
 * (/debug/compensations answers loopback clients only); -1 on failure. */
static long pending_of(const peer *p)
{
    static const char name[] = "sluice_svc_compensations_pending";
    char *text;
    long sum = -1;
    if (get_text(p, "/metrics", &text) == 200) {
        sum = 0;
        for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
            if (!strncmp(line, name, sizeof name - 1) && (line[sizeof name - 1] == ' ' || line[sizeof name - 1] == '{')) {
                const char *sp = strchr(line, ' ');
                if (line[sizeof name - 1] == '{')
                    sp = strchr(strchr(line, '}') ? strchr(line, '}') : line, ' ');
                sum += sp ? atol(sp + 1) : 0;
            }
    }
    free(text);
    return sum;
}

/* Waits until no compensation is pending at p. */
static bool settled(const peer *p)
{
    uint64_t end = now_ms() + SETTLE_MS;
    for (;;) {
        long pending = pending_of(p);
        if (pending == 0)
            return true;
        if (now_ms() >= end) {
            fprintf(stderr, "netns_ledger: %s: %ld compensations still pending after %d ms (-1: no /metrics)\n",
                    p->name, pending, SETTLE_MS);
            return false;
        }
        poll(NULL, 0, 50);
    }
}

int main(int argc, char **argv)
{
    peer orders[MAX_PEERS], invs[MAX_PEERS], pay;
    int norders = 0, ninvs = 0, items = 0;
    long stock = -1;
    bool have_pay = false;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        bool ok = true;
        if (!strcmp(k, "--order") && norders < MAX_PEERS)
            ok = peer_parse(&orders[norders++], v);
        else if (!strcmp(k, "--inventory") && ninvs < MAX_PEERS)
            ok = peer_parse(&invs[ninvs++], v);
        else if (!strcmp(k, "--payment"))
            ok = have_pay = peer_parse(&pay, v);
        else if (!strcmp(k, "--items"))
            ok = (items = atoi(v)) > 0 && items <= MAX_ITEMS;
        else if (!strcmp(k, "--stock"))
            ok = (stock = atol(v)) >= 0;
        else
            ok = false;
        if (!ok) {
            fprintf(stderr, "netns_ledger: bad argument %s %s\n", k, v);
            return 2;
        }
    }
    if (argc % 2 == 0 || !norders || !ninvs || !have_pay || !items || stock < 0) {
        fprintf(stderr, "usage: netns_ledger --order A:P... --payment A:P --inventory A:P... --items N --stock S\n");
        return 2;
    }
    for (int i = 0; i < norders; i++)
        if (!settled(&orders[i]))
            return 2;
    for (int i = 0; i < ninvs; i++)
        if (!settled(&invs[i]))
            return 2;

    long taken[MAX_ITEMS + 1] = { 0 };
    int walked = 0, paid = 0, failed = 0, bad = 0;
    for (int o = 0; o < norders; o++) {
        json_t *list, *ord;
        if (get(&orders[o], "/orders", &list) != 200 || !json_is_array(json_object_get(list, "orders"))) {
            fprintf(stderr, "netns_ledger: GET /orders at %s failed\n", orders[o].name);
            return 2;
        }
        size_t i;
        json_array_foreach(json_object_get(list, "orders"), i, ord) {
            const char *id = jstr(ord, "order_id"), *st = jstr(ord, "status"), *item = jstr(ord, "item");
            long qty = (long)json_integer_value(json_object_get(ord, "qty"));
            long amount = (long)json_integer_value(json_object_get(ord, "amount_cents"));
            char path[160], where[256] = "";
            int reserved = 0, records = 0;
            size_t wl = 0;
            walked++;
            for (int r = 0; r < ninvs; r++) {
                json_t *doc;
                snprintf(path, sizeof path, "/reservations/%s", id);
                int s = get(&invs[r], path, &doc);
                if (s != 200 && s != 404) {
                    fprintf(stderr, "netns_ledger: GET %s at %s: %d\n", path, invs[r].name, s);
                    return 2;
                }
                if (s == 200) {
                    records++;
                    reserved += !strcmp(jstr(doc, "status"), "RESERVED");
                    wl += (size_t)snprintf(where + wl, sizeof where - wl, " %s@%s", jstr(doc, "status"),
                                           invs[r].name);
                    if (wl >= sizeof where)
                        wl = sizeof where - 1;
                }
                json_decref(doc);
            }
            json_t *ch;
            snprintf(path, sizeof path, "/charges/%s", id);
            int cs = get(&pay, path, &ch);
            if (cs != 200 && cs != 404) {
                fprintf(stderr, "netns_ledger: GET %s: %d\n", path, cs);
                return 2;
            }
            const char *charge = cs == 200 ? jstr(ch, "status") : "(none)";
            long camount = cs == 200 ? (long)json_integer_value(json_object_get(ch, "amount_cents")) : -1;
            bool is_paid = !strcmp(st, "PAID") && reserved == 1 && !strcmp(charge, "CHARGED") && camount == amount;
            bool is_failed = !strcmp(st, "FAILED") && reserved == 0 && strcmp(charge, "CHARGED") != 0;
            int k = strncmp(item, "sku-", 4) ? 0 : atoi(item + 4);
            if (is_paid && k >= 1 && k <= items) {
                taken[k] += qty;
                paid++;
            } else if (is_failed) {
                failed++;
            } else if (bad++ < 10) {
                fprintf(stderr, "disagrees: order %s %s %s x%ld at %s; reservations (%d):%s; charge %s %ld\n", id,
                        st, item, qty, orders[o].name, records, where, charge, camount);
            }
            json_decref(ch);
        }
        json_decref(list);
    }
    int stock_bad = 0;
    for (int k = 1; k <= items; k++) {
        long sum = 0;
        char path[64];
        snprintf(path, sizeof path, "/stock/sku-%d", k);
        for (int r = 0; r < ninvs; r++) {
            json_t *doc;
            if (get(&invs[r], path, &doc) != 200 || !json_is_integer(json_object_get(doc, "available"))) {
                fprintf(stderr, "netns_ledger: GET %s at %s failed\n", path, invs[r].name);
                return 2;
            }
            sum += (long)json_integer_value(json_object_get(doc, "available"));
            json_decref(doc);
        }
        long want = stock * ninvs - taken[k];
        if (sum != want) {
            fprintf(stderr, "stock: sku-%d is %ld over %d replicas, want %ld (%ld taken by PAID orders)\n", k, sum,
                    ninvs, want, taken[k]);
            stock_bad++;
        }
    }
    printf("ledger: %d orders walked over %d order process(es), %d paid, %d failed, %d disagreements, %d items with "
           "wrong stock\n",
           walked, norders, paid, failed, bad, stock_bad);
    return bad || stock_bad || !walked ? 1 : 0;
}
