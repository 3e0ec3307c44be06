/* fuzz_svc_parse.c: libFuzzer harness for the demo services' pure parsers:
 * the /admin/fault body (svc_fault_parse), inventory's --stock list
 * (inv_stock_parse) and the key rules every service applies to ids and
 * items (svc_key_valid, svc_key_copy, svc_shard_of). The first byte picks
 * the parser. Checks: documented return codes only, a reason on every
 * refusal, and what is accepted keeps the documented bounds. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "stock.h"
#include "svc_fault.h"
#include "svc_map.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static void fault(const char *s, size_t len)
{
    svc_fault f;
    char err[128] = "";
    int rc = svc_fault_parse(s, len, &f, err, sizeof err);
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc) {
        CHECK(err[0] != '\0');
        return;
    }
    CHECK(f.on && f.delay_ms <= SVC_FAULT_MAX_DELAY_MS);
    CHECK(f.error_rate >= 0 && f.error_rate <= 1);
    CHECK(memchr(f.path, '\0', sizeof f.path) && (!f.path[0] || f.path[0] == '/'));
    json_t *j = svc_fault_json(&f);
    CHECK(j);
    char *back = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    CHECK(back);
    svc_fault again;
    CHECK(svc_fault_parse(back, strlen(back), &again, err, sizeof err) == 0);
    CHECK(again.on == f.on && again.hang == f.hang && again.reset == f.reset && again.delay_ms == f.delay_ms &&
          !strcmp(again.path, f.path));
    free(back);
}

static void stock(const char *s, size_t len)
{
    char *z = malloc(len + 1), err[128] = "";
    inv_item *items = NULL;
    size_t n = 0;
    CHECK(z);
    memcpy(z, s, len);
    z[len] = '\0';
    int rc = inv_stock_parse(z, &items, &n, err, sizeof err);
    CHECK(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
    if (rc == -EINVAL)
        CHECK(err[0] != '\0');
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t l = strnlen(items[i].name, INV_ITEM_MAX);
        CHECK(l < INV_ITEM_MAX && svc_key_valid(items[i].name, l, INV_ITEM_MAX));
        CHECK(items[i].count >= 0 && items[i].count <= 1000000000000000LL);
        for (size_t k = 0; k < i; k++)
            CHECK(strcmp(items[k].name, items[i].name));
    }
    free(items);
    free(z);
}

static void key(const char *s, size_t len)
{
    char dst[64];
    memset(dst, 'x', sizeof dst);
    int ok = svc_key_valid(s, len, sizeof dst);
    CHECK(ok == 0 || ok == 1);
    CHECK(svc_key_copy(s, len, dst, sizeof dst) == ok);
    if (ok)
        CHECK(len >= 1 && len < sizeof dst && !memcmp(dst, s, len) && dst[len] == '\0');
    else
        CHECK(dst[0] == 'x');
    for (int n = -1; n <= 9; n++) {
        int sh = svc_shard_of(s, len, n);
        CHECK(n <= 1 ? sh == 0 : sh >= 0 && sh < n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len = size - 1;
    char *s = malloc(len ? len : 1);   /* exact size: ASan sees overreads */
    if (!s)
        return 0;
    memcpy(s, data + 1, len);
    switch (data[0] % 3) {
    case 0: fault(s, len); break;
    case 1: stock(s, len); break;
    default: key(s, len); break;
    }
    free(s);
    return 0;
}
