/* tracestate.c: the W3C tracestate header, validated member by member and
 * kept verbatim when valid, cut by the spec's rule when too long. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include "sl_tracestate.h"

#define MAX_MEMBERS 32

typedef struct member {
    const char *p;       /* trimmed */
    size_t len, klen;
} member;

static bool lcalpha(char c) { return c >= 'a' && c <= 'z'; }
static bool digit(char c) { return c >= '0' && c <= '9'; }
static bool keychar(char c) { return lcalpha(c) || digit(c) || c == '_' || c == '-' || c == '*' || c == '/'; }

/* key: simple-key, or tenant-id "@" system-id */
static bool key_ok(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    if (!at) {
        if (n < 1 || n > 256 || !lcalpha(k[0]))
            return false;
        for (size_t i = 1; i < n; i++)
            if (!keychar(k[i]))
                return false;
        return true;
    }
    size_t tn = (size_t)(at - k), sn = n - tn - 1;
    if (tn < 1 || tn > 241 || !(lcalpha(k[0]) || digit(k[0])) || sn < 1 || sn > 14 || !lcalpha(at[1]))
        return false;
    for (size_t i = 1; i < tn; i++)
        if (!keychar(k[i]))
            return false;
    for (size_t i = 2; i <= sn; i++)
        if (!keychar(at[i]))
            return false;
    return true;
}

/* value: 0*255(chr) nblk-chr; chr is 0x20-0x7e but ',' and '=' */
static bool value_ok(const char *v, size_t n)
{
    if (n < 1 || n > 256 || v[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
            return false;
    return true;
}

static bool ows(char c) { return c == ' ' || c == '\t'; }

int sl_tracestate_parse(const char *s, size_t len, char *out)
{
    if (!out)
        return -EINVAL;
    out[0] = '\0';
    if (!s)
        return -EINVAL;
    member m[MAX_MEMBERS];
    int n = 0;
    size_t i = 0;
    while (i <= len) {
        size_t end = i;
        while (end < len && s[end] != ',')
            end++;
        size_t a = i, b = end;
        while (a < b && ows(s[a]))
            a++;
        while (b > a && ows(s[b - 1]))
            b--;
        if (b > a) {   /* an empty member is allowed and skipped */
            const char *eq = memchr(s + a, '=', b - a);
            if (n == MAX_MEMBERS || !eq)
                return -EINVAL;
            size_t kl = (size_t)(eq - (s + a));
            if (!key_ok(s + a, kl) || !value_ok(eq + 1, b - a - kl - 1))
                return -EINVAL;
            for (int k = 0; k < n; k++)
                if (m[k].klen == kl && !memcmp(m[k].p, s + a, kl))
                    return -EINVAL;   /* keys are unique */
            m[n++] = (member){ s + a, b - a, kl };
        }
        i = end + 1;
    }
    if (!n)
        return 0;
    if (len <= SL_TRACESTATE_MAX) {   /* valid and short enough: verbatim */
        memcpy(out, s, len);
        out[len] = '\0';
        return (int)len;
    }
    /* too long: drop members over 128 bytes, then from the end */
    bool keep[MAX_MEMBERS];
    size_t total = 0;
    int kept = 0;
    for (int k = 0; k < n; k++) {
        keep[k] = m[k].len <= 128;
        if (keep[k]) {
            total += m[k].len + (kept ? 1 : 0);
            kept++;
        }
    }
    for (int k = n - 1; k >= 0 && total > SL_TRACESTATE_MAX; k--)
        if (keep[k]) {
            keep[k] = false;
            kept--;
            total -= m[k].len + (kept ? 1 : 0);
        }
    size_t at = 0;
    for (int k = 0; k < n; k++)
        if (keep[k]) {
            if (at)
                out[at++] = ',';
            memcpy(out + at, m[k].p, m[k].len);
            at += m[k].len;
        }
    out[at] = '\0';
    return (int)at;
}
