/* svc_json.h: the one way the services build JSON text: a flat object,
 * written into a buffer the caller owns.
 *
 *     char buf[256];
 *     svc_json j;
 *     svc_json_init(&j, buf, sizeof buf);
 *     svc_json_str(&j, "order_id", id);
 *     svc_json_int(&j, "qty", qty);
 *     size_t len;
 *     const char *text = svc_json_end(&j, &len);   // {"order_id":"...","qty":3}
 *
 * Every answer, error and request body of the demo services is such an
 * object of strings and integers (a list of them for GET /orders), so a
 * tree (jansson: a malloc per value, and one for the text) is not needed to
 * write one; jansson stays the parser (svc_body.h, upstream answers) and
 * the builder of the admin and debug routes' nested answers, which go
 * through net's sl_http_reply_json.
 * Output is what jansson's JSON_COMPACT writes for the same object: keys in
 * the order added, `"` `\` and control bytes escaped (\n \t ... or \u00XX),
 * UTF-8 kept as is; a byte that is not part of well-formed UTF-8 is written
 * as \uFFFD (jansson refuses such a string). Keys are the caller's
 * literals and are written without escaping.
 *
 * Adding is all or nothing: a value that does not fit leaves the text as it
 * was and marks the builder failed, and svc_json_end then returns NULL. No
 * allocation, not thread-safe (one builder, one thread). */
#ifndef SVC_JSON_H
#define SVC_JSON_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct svc_json {
    char *buf;                /* the caller's */
    size_t cap, len;
    bool failed;              /* something did not fit */
    bool open;                /* a member was written since the last '{' */
} svc_json;

/* Starts an object `{` in buf (cap bytes, cap >= 3 for "{}" and its NUL). */
void svc_json_init(svc_json *j, char *buf, size_t cap);

/* Adds "key":"s" (s NUL-terminated). */
void svc_json_str(svc_json *j, const char *key, const char *s);

/* Adds "key":"s" of n bytes (s need not be NUL-terminated). */
void svc_json_strn(svc_json *j, const char *key, const char *s, size_t n);

/* Adds "key":v. */
void svc_json_int(svc_json *j, const char *key, int64_t v);

/* Closes the object: the text (NUL-terminated, in buf) and its length in
 * *len; NULL (and *len 0) if anything did not fit. */
const char *svc_json_end(svc_json *j, size_t *len);

#endif
