/* fuzz_svc_body.c: libFuzzer harness for svc_body_parse, the JSON bodies of
 * the demo services' business routes (POST /orders, /reserve, /release,
 * /charge ...). Byte 0: its low 4 bits the fields needed, its high 4 bits
 * the fields allowed (SVC_BODY_*); the rest is the body. Checks: documented
 * return codes only; a refusal has a reason and leaves the struct zeroed;
 * an answer has every needed field, no field not allowed, each within its
 * rule; and what was accepted, written back as JSON, parses the same. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "svc_body.h"
#include "svc_map.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static void check_zero(const svc_body *b)
{
    CHECK(b->has == 0 && !b->order_id[0] && !b->item[0] && b->qty == 0 && b->amount_cents == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned need = data[0] & 15, allow = data[0] >> 4;
    size_t len = size - 1;
    char *s = malloc(len ? len : 1);   /* exact size: ASan sees overreads */
    if (!s)
        return 0;
    memcpy(s, data + 1, len);
    svc_body b;
    char err[160] = "";
    int rc = svc_body_parse(s, len, need, allow, &b, err, sizeof err);
    free(s);
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc) {
        CHECK(err[0] != '\0');
        check_zero(&b);
        return 0;
    }
    CHECK((b.has & need) == need && (b.has & ~(need | allow)) == 0);
    CHECK((b.has & SVC_BODY_ORDER_ID) ? svc_key_valid(b.order_id, strlen(b.order_id), SVC_BODY_ID_MAX) : !b.order_id[0]);
    CHECK((b.has & SVC_BODY_ITEM) ? svc_key_valid(b.item, strlen(b.item), SVC_BODY_ITEM_MAX) : !b.item[0]);
    CHECK((b.has & SVC_BODY_QTY) ? b.qty >= 1 : b.qty == 0);
    CHECK((b.has & SVC_BODY_AMOUNT) ? b.amount_cents >= 0 : b.amount_cents == 0);
    json_t *j = json_object();
    CHECK(j);
    if (b.has & SVC_BODY_ORDER_ID)
        json_object_set_new(j, "order_id", json_string(b.order_id));
    if (b.has & SVC_BODY_ITEM)
        json_object_set_new(j, "item", json_string(b.item));
    if (b.has & SVC_BODY_QTY)
        json_object_set_new(j, "qty", json_integer(b.qty));
    if (b.has & SVC_BODY_AMOUNT)
        json_object_set_new(j, "amount_cents", json_integer(b.amount_cents));
    char *back = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    CHECK(back);
    svc_body again;
    CHECK(svc_body_parse(back, strlen(back), need, allow, &again, err, sizeof err) == 0);
    CHECK(again.has == b.has && !strcmp(again.order_id, b.order_id) && !strcmp(again.item, b.item) &&
          again.qty == b.qty && again.amount_cents == b.amount_cents);
    free(back);
    return 0;
}
