/* tmpl.c: parsing and expanding body placeholders. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "tmpl.h"

#define U64_DIGITS 20

static int add_part(tmpl *t, tmpl_part p)
{
    tmpl_part *np = realloc(t->part, (t->n + 1) * sizeof *np);
    if (!np)
        return -ENOMEM;
    t->part = np;
    t->part[t->n++] = p;
    return 0;
}

/* Parses a decimal number of s[0..len), all of it, below 2^63. */
static bool parse_num(const char *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (!len || len > 19)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v >> 63)
        return false;
    *out = v;
    return true;
}

/* One placeholder's name, between "{{" and "}}". */
static int parse_placeholder(const char *s, size_t len, tmpl_part *p, char *err, size_t errlen)
{
    if (len == 3 && !memcmp(s, "seq", 3)) {
        *p = (tmpl_part){ .kind = TMPL_SEQ };
        return 0;
    }
    if (len > 5 && !memcmp(s, "rand:", 5)) {
        const char *a = s + 5, *dash = memchr(a, '-', len - 5);
        uint64_t lo, hi;
        if (dash && parse_num(a, (size_t)(dash - a), &lo) &&
            parse_num(dash + 1, (size_t)(s + len - dash - 1), &hi)) {
            if (lo > hi) {
                snprintf(err, errlen, "{{%.*s}}: empty range (%" PRIu64 " > %" PRIu64 ")",
                         (int)len, s, lo, hi);
                return -EINVAL;
            }
            *p = (tmpl_part){ .kind = TMPL_RAND, .lo = lo, .hi = hi };
            return 0;
        }
        snprintf(err, errlen, "{{%.*s}}: expected {{rand:A-B}} with decimal A <= B", (int)len, s);
        return -EINVAL;
    }
    snprintf(err, errlen, "unknown placeholder {{%.*s}} (known: {{seq}}, {{rand:A-B}})", (int)len, s);
    return -EINVAL;
}

static int parse_parts(tmpl *t, char *err, size_t errlen)
{
    const char *s = t->src, *end = s + t->src_len, *lit = s;
    for (const char *p = s; p + 1 < end;) {
        if (p[0] != '{' || p[1] != '{') {
            p++;
            continue;
        }
        const char *name = p + 2, *close = NULL;
        for (const char *q = name; q + 1 < end; q++)
            if (q[0] == '}' && q[1] == '}') {
                close = q;
                break;
            }
        if (!close) {
            snprintf(err, errlen, "unterminated placeholder at byte %zu", (size_t)(p - s));
            return -EINVAL;
        }
        tmpl_part ph;
        int rc = parse_placeholder(name, (size_t)(close - name), &ph, err, errlen);
        if (rc < 0)
            return rc;
        if (p > lit && (rc = add_part(t, (tmpl_part){ TMPL_LIT, (size_t)(lit - s), (size_t)(p - lit), 0, 0 })) < 0)
            return rc;
        if ((rc = add_part(t, ph)) < 0)
            return rc;
        lit = p = close + 2;
    }
    if (end > lit)
        return add_part(t, (tmpl_part){ TMPL_LIT, (size_t)(lit - s), (size_t)(end - lit), 0, 0 });
    return 0;
}

int tmpl_parse(tmpl *t, const char *src, size_t len, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (!(t->src = malloc(len + 1)))
        return -ENOMEM;
    memcpy(t->src, src, len);
    t->src[len] = '\0';
    t->src_len = len;
    int rc = parse_parts(t, err, errlen);
    if (rc < 0) {
        tmpl_free(t);
        return rc;
    }
    t->constant = true;
    for (size_t i = 0; i < t->n; i++) {
        t->max_len += t->part[i].kind == TMPL_LIT ? t->part[i].len : U64_DIGITS;
        t->constant &= t->part[i].kind == TMPL_LIT;
    }
    return 0;
}

void tmpl_free(tmpl *t)
{
    free(t->src);
    free(t->part);
    memset(t, 0, sizeof *t);
}

size_t tmpl_expand(const tmpl *t, uint64_t seq, uint64_t *rng, char *out)
{
    size_t len = 0;
    for (size_t i = 0; i < t->n; i++) {
        const tmpl_part *p = &t->part[i];
        switch (p->kind) {
        case TMPL_LIT:
            memcpy(out + len, t->src + p->off, p->len);
            len += p->len;
            break;
        case TMPL_SEQ:
            len += tmpl_put_u64(out + len, seq);
            break;
        case TMPL_RAND: {
            uint64_t span = p->hi - p->lo + 1;   /* hi < 2^63: no wrap */
            len += tmpl_put_u64(out + len, p->lo + tmpl_rand(rng) % span);
            break;
        }
        }
    }
    return len;
}
