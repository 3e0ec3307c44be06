/* svc_json.c: flat JSON objects into a caller's buffer (svc_json.h). */
#include <string.h>
#include "svc_json.h"

void svc_json_init(svc_json *j, char *buf, size_t cap)
{
    *j = (svc_json){ .buf = buf, .cap = cap };
    if (cap < 3) {
        j->failed = true;
        if (cap)
            buf[0] = '\0';
        return;
    }
    buf[0] = '{';
    buf[1] = '\0';
    j->len = 1;
}

/* The length of the well-formed UTF-8 sequence at s (n bytes left), or 0
 * (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (c < 0xc2 || c > 0xf4 || n < len)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f) || (c == 0xf0 && s[1] < 0x90) ||
        (c == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

/* Appends n bytes at once, or marks the builder failed. */
static bool put(svc_json *j, const char *s, size_t n)
{
    if (j->failed || j->len + n + 1 > j->cap) {
        j->failed = true;
        return false;
    }
    memcpy(j->buf + j->len, s, n);
    j->len += n;
    j->buf[j->len] = '\0';
    return true;
}

/* `,"key":` */
static bool put_key(svc_json *j, const char *key)
{
    return (!j->open || put(j, ",", 1)) && put(j, "\"", 1) && put(j, key, strlen(key)) && put(j, "\":", 2);
}

static bool put_escaped(svc_json *j, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        size_t run = i;   /* bytes written as they are */
        while (run < n && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i && !put(j, str + i, run - i))
            return false;
        if ((i = run) == n)
            break;
        unsigned c = s[i];
        char esc[8];
        size_t len;
        if (c >= 0x80) {
            if ((len = utf8_len(s + i, n - i)) && !put(j, str + i, len))
                return false;
            if (!len && !put(j, "\\uFFFD", 6))
                return false;
            i += len ? len : 1;
            continue;
        }
        switch (c) {
        case '"': len = 2, memcpy(esc, "\\\"", 2); break;
        case '\\': len = 2, memcpy(esc, "\\\\", 2); break;
        case '\b': len = 2, memcpy(esc, "\\b", 2); break;
        case '\f': len = 2, memcpy(esc, "\\f", 2); break;
        case '\n': len = 2, memcpy(esc, "\\n", 2); break;
        case '\r': len = 2, memcpy(esc, "\\r", 2); break;
        case '\t': len = 2, memcpy(esc, "\\t", 2); break;
        default:   /* \u00XX, upper-case hex as jansson writes it */
            len = 6, memcpy(esc, "\\u00", 4), esc[4] = "0123456789ABCDEF"[c >> 4], esc[5] = "0123456789ABCDEF"[c & 15];
            break;
        }
        if (!put(j, esc, len))
            return false;
        i++;
    }
    return true;
}

/* Runs an add; on failure puts the text back as it was. */
#define ADD(j, expr)                                   \
    do {                                               \
        size_t len0_ = (j)->len;                       \
        bool open0_ = (j)->open;                       \
        if (!(j)->failed && !(expr)) {                 \
            (j)->len = len0_;                          \
            (j)->buf[len0_] = '\0';                    \
            (j)->open = open0_;                        \
        } else if (!(j)->failed) {                     \
            (j)->open = true;                          \
        }                                              \
    } while (0)

void svc_json_strn(svc_json *j, const char *key, const char *s, size_t n)
{
    ADD(j, put_key(j, key) && put(j, "\"", 1) && put_escaped(j, s, n) && put(j, "\"", 1));
}

void svc_json_str(svc_json *j, const char *key, const char *s)
{
    svc_json_strn(j, key, s, strlen(s));
}

void svc_json_int(svc_json *j, const char *key, int64_t v)
{
    /* by hand: snprintf costs ~700 instructions a number, more than the
     * rest of a small answer (bench/handler-instr.py) */
    char num[24];
    char *p = num + sizeof num;
    uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;   /* INT64_MIN too */
    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        *--p = '-';
    ADD(j, put_key(j, key) && put(j, p, (size_t)(num + sizeof num - p)));
}

const char *svc_json_end(svc_json *j, size_t *len)
{
    if (j->failed || !put(j, "}", 1)) {
        *len = 0;
        return NULL;
    }
    *len = j->len;
    j->failed = true;   /* closed: nothing more goes in */
    return j->buf;
}
