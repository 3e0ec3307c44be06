/* stock.c: the --stock list; see stock.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stock.h"
#include "svc_map.h"

#define COUNT_MAX 1000000000000000LL

static int one(const char *s, size_t len, inv_item *it, char *err, size_t errlen)
{
    const char *eq = memchr(s, '=', len);
    if (!eq || !svc_key_valid(s, (size_t)(eq - s), INV_ITEM_MAX)) {
        snprintf(err, errlen, "--stock: want ITEM=N with ITEM 1-63 of [A-Za-z0-9._:-], not '%.*s'", (int)len, s);
        return -EINVAL;
    }
    long long v = 0;
    const char *p = eq + 1, *end = s + len;
    if (p == end)
        v = -1;
    for (; p < end && v >= 0; p++)
        v = (*p >= '0' && *p <= '9' && v <= COUNT_MAX / 10) ? v * 10 + (*p - '0') : -1;
    if (v < 0 || v > COUNT_MAX) {
        snprintf(err, errlen, "--stock: the count of '%.*s' must be 0..%lld", (int)(eq - s), s, COUNT_MAX);
        return -EINVAL;
    }
    memcpy(it->name, s, (size_t)(eq - s));
    it->name[eq - s] = '\0';
    it->count = v;
    return 0;
}

int inv_stock_parse(const char *s, inv_item **out, size_t *n, char *err, size_t errlen)
{
    char dflt[256] = "";
    if (!s) {
        for (int i = 1; i <= 10; i++)
            snprintf(dflt + strlen(dflt), sizeof dflt - strlen(dflt), "%ssku-%d=1000000", i > 1 ? "," : "", i);
        s = dflt;
    }
    size_t cap = 1;
    for (const char *p = s; *p; p++)
        cap += *p == ',';
    inv_item *items = calloc(cap, sizeof *items);
    if (!items)
        return -ENOMEM;
    size_t k = 0;
    for (const char *p = s;; k++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int rc = one(p, len, &items[k], err, errlen);
        for (size_t j = 0; rc == 0 && j < k; j++)
            if (!strcmp(items[j].name, items[k].name)) {
                snprintf(err, errlen, "--stock: item '%s' given twice", items[k].name);
                rc = -EINVAL;
            }
        if (rc < 0) {
            free(items);
            return rc;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    *out = items;
    *n = k + 1;
    return 0;
}
