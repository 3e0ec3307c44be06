/* svc_body.c: the business routes' JSON bodies; see svc_body.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "svc_body.h"
#include "svc_map.h"

static int bad(svc_body *out, char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    *out = (svc_body){ 0 };
    return -EINVAL;
}

/* A key field: a JSON string that is a usable key (svc_key_valid). */
static int key_field(json_t *v, char *dst, size_t max)
{
    return json_is_string(v) && svc_key_copy(json_string_value(v), json_string_length(v), dst, max);
}

static int int_field(json_t *v, int64_t min, int64_t *dst)
{
    if (!json_is_integer(v) || json_integer_value(v) < min)
        return 0;
    *dst = json_integer_value(v);
    return 1;
}

int svc_body_parse(const char *body, size_t len, unsigned need, unsigned allow, svc_body *out, char *err,
                   size_t errlen)
{
    static const struct {
        unsigned bit;
        const char *name, *want;
    } fields[] = {
        { SVC_BODY_ORDER_ID, "order_id", "a string of 1-23 bytes of [A-Za-z0-9._:-]" },
        { SVC_BODY_ITEM, "item", "a string of 1-63 bytes of [A-Za-z0-9._:-]" },
        { SVC_BODY_QTY, "qty", "an integer >= 1" },
        { SVC_BODY_AMOUNT, "amount_cents", "an integer >= 0" },
    };
    *out = (svc_body){ 0 };
    json_error_t je;
    /* jansson refuses a NULL buffer even of length 0: an empty body is "" */
    json_t *root = json_loadb(body ? body : "", body ? len : 0, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return bad(out, err, errlen, "not JSON: %s (at byte %d)", je.text, je.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return bad(out, err, errlen, "the body must be a JSON object");
    }
    allow |= need;
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        unsigned bit = fields[i].bit;
        json_t *v = (allow & bit) ? json_object_get(root, fields[i].name) : NULL;
        if (!v) {
            if (!(need & bit))
                continue;
            json_decref(root);
            return bad(out, err, errlen, "%s: missing (want %s)", fields[i].name, fields[i].want);
        }
        int ok;
        switch (bit) {
        case SVC_BODY_ORDER_ID: ok = key_field(v, out->order_id, sizeof out->order_id); break;
        case SVC_BODY_ITEM: ok = key_field(v, out->item, sizeof out->item); break;
        case SVC_BODY_QTY: ok = int_field(v, 1, &out->qty); break;
        default: ok = int_field(v, 0, &out->amount_cents); break;
        }
        if (!ok) {
            json_decref(root);
            return bad(out, err, errlen, "%s: want %s", fields[i].name, fields[i].want);
        }
        out->has |= bit;
    }
    json_decref(root);
    return 0;
}
