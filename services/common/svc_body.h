/* svc_body.h: the JSON request bodies of the demo services' business
 * routes, parsed by one pure function (bytes in, a struct or a reason out;
 * no I/O, no reply), so that the unit tests and the fuzzer reach it without
 * a server.
 *
 *   POST /orders   {"item","qty","amount_cents"}                    order-svc
 *   POST /reserve  {"order_id","item","qty"} (+ "amount_cents")     inventory-svc
 *   POST /release  {"order_id"} (+ "item")                          inventory-svc
 *   POST /charge   {"order_id","amount_cents"}                      payment-svc
 *   POST /void, /lookup ... {"order_id"}                            payment-svc
 *
 * The handler names the fields it needs and the ones it allows; the parser
 * checks each against its rule and answers with the first that breaks, in
 * the order order_id, item, qty, amount_cents. Keys the route does not use
 * are ignored (a caller may send more than a callee reads); a key given
 * twice is refused (which of the two counts would be the parser's whim). */
#ifndef SVC_BODY_H
#define SVC_BODY_H
#include <stddef.h>
#include <stdint.h>

#define SVC_BODY_ID_MAX 24    /* an order id: 1-23 key bytes (svc_key_valid) */
#define SVC_BODY_ITEM_MAX 64  /* an item: 1-63 key bytes */

/* The fields, as bits of `need` and `allow`. */
enum {
    SVC_BODY_ORDER_ID = 1 << 0,
    SVC_BODY_ITEM = 1 << 1,
    SVC_BODY_QTY = 1 << 2,     /* an integer >= 1 */
    SVC_BODY_AMOUNT = 1 << 3,  /* "amount_cents", an integer >= 0 */
};

typedef struct svc_body {
    unsigned has;                      /* the SVC_BODY_* fields present */
    char order_id[SVC_BODY_ID_MAX];    /* "" when absent */
    char item[SVC_BODY_ITEM_MAX];      /* "" when absent */
    int64_t qty;                       /* 0 when absent */
    int64_t amount_cents;              /* 0 when absent */
} svc_body;

/* Parses body (len bytes, not NUL-terminated; NULL with len 0 is an empty
 * body) into *out: the fields in `need` must be present, those in `allow`
 * may be (a field in need counts as allowed), any other key is ignored.
 * Returns 0, or -EINVAL with *out zeroed and a one-line reason in err
 * (errlen > 0; truncated to fit): not JSON (jansson's reason and position,
 * also when it ran out of memory), not an object, a key twice, a needed
 * field missing, or a field of the wrong type or out of its range. */
int svc_body_parse(const char *body, size_t len, unsigned need, unsigned allow, svc_body *out, char *err,
                   size_t errlen);

#endif
