/* fuzz_router.c: libFuzzer harness for net/router.c. The input is lines:
 * up to 16 "METHOD PATTERN" routes to add, then, after an empty line,
 * "METHOD PATH" requests to match against them and a fixed set of routes.
 * Checks: add answers only its documented codes; a match's captures point
 * into the path and have their pattern's names; a 405's Allow list is
 * NUL-terminated inside its buffer; a literal pattern that was added
 * matches itself. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sl_router.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static const char *fixed[][2] = {
    { "GET", "/orders/{id}" }, { "POST", "/orders" }, { "GET", "/orders" }, { "DELETE", "/orders/{id}" },
    { "GET", "/orders/{id}/items/{item}" }, { "GET", "/orders/latest" }, { "PUT", "/a/{b}/c" },
    { "GET", "/" }, { "GET", "/debug/tasks" },
};

static void match_one(const sl_router *r, const char *line, size_t len)
{
    const char *sp = memchr(line, ' ', len);
    if (!sp)
        return;
    size_t mlen = (size_t)(sp - line), plen = len - mlen - 1;
    char *path = malloc(plen ? plen : 1);   /* exact size: ASan sees overreads */
    if (!path)
        return;
    memcpy(path, sp + 1, plen);
    sl_route_match m;
    char allow[16];
    memset(allow, 'x', sizeof allow);
    int rc = sl_router_match(r, line, mlen, path, plen, &m, allow, sizeof allow);
    CHECK(rc == 0 || rc == -ENOENT || rc == -EOPNOTSUPP);
    if (rc == -EOPNOTSUPP)
        CHECK(memchr(allow, '\0', sizeof allow) != NULL);
    if (rc == 0) {
        CHECK(m.pattern && m.nparams >= 0 && m.nparams <= SL_ROUTE_MAX_PARAMS);
        for (int i = 0; i < m.nparams; i++) {
            const sl_route_param *p = &m.params[i];
            CHECK(p->value >= path && p->value + p->value_len <= path + plen);
            CHECK(p->name_len > 0 && memmem(m.pattern, strlen(m.pattern), p->name, p->name_len));
            /* a capture's name has no length bound (sl_router.h): a fixed
             * buffer here was the harness's own limit, and a 270-byte name
             * crashed fuzz-smoke */
            char *name = malloc(p->name_len + 1);
            size_t vl;
            CHECK(name != NULL);
            memcpy(name, p->name, p->name_len);
            name[p->name_len] = '\0';
            CHECK(sl_route_param_get(&m, name, &vl) != NULL);
            free(name);
        }
    }
    free(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sl_router *r;
    if (sl_router_new(&r))
        return 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        CHECK(sl_router_add(r, fixed[i][0], fixed[i][1], (void *)(i + 1), NULL) == 0);
    char *text = malloc(size + 1);
    if (!text) {
        sl_router_free(r);
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    char *line = text, *end = text + size;
    int added = 0;
    bool routes = true;
    while (line <= end) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
        line[len] = '\0';
        if (routes && len == 0) {
            routes = false;
        } else if (routes && added < 16) {
            char *sp = strchr(line, ' ');
            if (sp && strlen(line) == len) {    /* no NUL inside */
                *sp = '\0';
                int rc = sl_router_add(r, line, sp + 1, (void *)1, NULL);
                CHECK(rc == 0 || rc == -EINVAL || rc == -EEXIST);
                if (rc == 0 && !strchr(sp + 1, '{') && !strchr(sp + 1, '?')) {
                    sl_route_match m;
                    CHECK(sl_router_match(r, line, strlen(line), sp + 1, strlen(sp + 1), &m, NULL, 0) == 0);
                }
                *sp = ' ';
                added++;
            }
        } else if (!routes) {
            match_one(r, line, len);
        }
        if (!nl)
            break;
        line = nl + 1;
    }
    free(text);
    sl_router_free(r);
    return 0;
}
