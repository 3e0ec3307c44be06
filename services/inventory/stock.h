/* stock.h: inventory-svc's --stock ITEM=N,... list (pure; unit-tested). */
#ifndef INV_STOCK_H
#define INV_STOCK_H
#include <stddef.h>
#include <stdint.h>

#define INV_ITEM_MAX 64

typedef struct inv_item {
    char name[INV_ITEM_MAX];
    int64_t count;
} inv_item;

/* Parses "sku-1=100,sku-2=5" (NULL: sku-1 ... sku-10 x 1,000,000) into a
 * new array (*out, free it) of *n items. Names are 1-63 bytes of
 * [A-Za-z0-9._:-], counts 0..10^15, no name twice. Returns 0, -ENOMEM, or
 * -EINVAL with a one-line reason in err. */
int inv_stock_parse(const char *s, inv_item **out, size_t *n, char *err, size_t errlen);

#endif
