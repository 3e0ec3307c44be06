/* tmpl.h: request bodies with per-request placeholders.
 *
 *   {{seq}}        the request's sequence number (0, 1, 2, ... over the run)
 *   {{rand:A-B}}   a uniform random integer in [A, B] (0 <= A <= B < 2^63)
 *
 * Every "{{" must open one of these; anything else is an error, so a typo
 * fails at start-up instead of sending literal braces for ten minutes. */
#ifndef LOAD_TMPL_H
#define LOAD_TMPL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { TMPL_LIT, TMPL_SEQ, TMPL_RAND } tmpl_kind;

typedef struct tmpl_part {
    tmpl_kind kind;
    size_t off, len;            /* literal: bytes of the source */
    uint64_t lo, hi;            /* rand */
} tmpl_part;

typedef struct tmpl {
    char *src;
    size_t src_len;
    tmpl_part *part;
    size_t n;
    bool constant;              /* no placeholder: the body is src as is */
    size_t max_len;             /* an upper bound of an expansion */
} tmpl;

/* Parses `len` bytes of `src` (copied). Returns 0, -ENOMEM, or -EINVAL with
 * a message in err (unknown or unterminated placeholder, bad range). */
int tmpl_parse(tmpl *t, const char *src, size_t len, char *err, size_t errlen);
void tmpl_free(tmpl *t);

/* Writes the body for request `seq` into out (at least t->max_len bytes),
 * drawing random numbers from *rng (a non-zero xorshift state). Returns
 * the body's length. */
size_t tmpl_expand(const tmpl *t, uint64_t seq, uint64_t *rng, char *out);

/* Writes v in decimal to out (up to 20 bytes); returns the digits written. */
static inline size_t tmpl_put_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while (v /= 10);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

/* xorshift64*: fast, good enough to vary request bodies. */
static inline uint64_t tmpl_rand(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
