/* svc_fault.c: parsing and matching of faults; see svc_fault.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "svc_fault.h"

static int bad(char *err, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, len, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static int one_key(svc_fault *f, const char *key, json_t *v, char *err, size_t errlen)
{
    if (!strcmp(key, "delay_ms")) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > SVC_FAULT_MAX_DELAY_MS)
            return bad(err, errlen, "delay_ms must be an integer 0..%d", SVC_FAULT_MAX_DELAY_MS);
        f->delay_ms = (uint32_t)json_integer_value(v);
    } else if (!strcmp(key, "hang") || !strcmp(key, "hold") || !strcmp(key, "reset")) {
        if (!json_is_boolean(v))
            return bad(err, errlen, "%s must be true or false", key);
        *(!strcmp(key, "hang") ? &f->hang : !strcmp(key, "hold") ? &f->hold : &f->reset) = json_is_true(v);
    } else if (!strcmp(key, "error_rate")) {
        if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 1)
            return bad(err, errlen, "error_rate must be a number 0..1");
        f->error_rate = json_number_value(v);
    } else if (!strcmp(key, "path") && json_is_null(v)) {
        f->path[0] = '\0';     /* as svc_fault_json shows "every route" */
    } else if (!strcmp(key, "path")) {
        const char *p = json_string_value(v);
        if (!p || p[0] != '/' || strlen(p) >= sizeof f->path)
            return bad(err, errlen, "path must be a string starting with '/', shorter than %zu bytes",
                       sizeof f->path);
        strcpy(f->path, p);
    } else {
        return bad(err, errlen, "unknown key '%s' (delay_ms, hang, hold, error_rate, reset, path)", key);
    }
    return 0;
}

int svc_fault_parse(const char *body, size_t len, svc_fault *f, char *err, size_t errlen)
{
    *f = (svc_fault){ 0 };
    json_t *root = json_loadb(body, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return bad(err, errlen, "the body must be a JSON object");
    }
    const char *key;
    json_t *v;
    int rc = 0;
    json_object_foreach(root, key, v) {
        if ((rc = one_key(f, key, v, err, errlen)) < 0)
            break;
    }
    json_decref(root);
    if (rc < 0)
        return rc;
    f->on = f->delay_ms || f->hang || f->hold || f->reset || f->error_rate > 0;
    if (!f->on)
        return bad(err, errlen, "no fault given (delay_ms, hang, hold, error_rate or reset)");
    return 0;
}

bool svc_fault_applies(const svc_fault *f, const char *path, size_t len, const char *route)
{
    if (!f->on)
        return false;
    if (!f->path[0])
        return true;
    return (strlen(f->path) == len && !memcmp(f->path, path, len)) || (route && !strcmp(f->path, route));
}

json_t *svc_fault_json(const svc_fault *f)
{
    if (!f->on)
        return json_null();
    return json_pack("{s:i, s:b, s:b, s:f, s:b, s:s?}", "delay_ms", (int)f->delay_ms, "hang", f->hang,
                     "hold", f->hold, "error_rate", f->error_rate, "reset", f->reset, "path", f->path[0] ? f->path : NULL);
}
