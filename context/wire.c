/* wire.c: grpc-timeout and traceparent, parsed strictly: what a peer sends
 * is either exactly the format or refused, so a malformed header can never
 * be half-understood as some other budget or trace. */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/random.h>
#include "sl_time.h"
#include "sl_wire.h"

/* ---- grpc-timeout ------------------------------------------------------------ */

static const struct { char unit; uint64_t ns; } units[] = {
    { 'n', 1 }, { 'u', 1000 }, { 'm', 1000000 }, { 'S', 1000000000ULL },
    { 'M', 60000000000ULL }, { 'H', 3600000000000ULL },
};

int sl_grpc_timeout_parse(const char *s, size_t len, uint64_t *ns)
{
    if (!s || !ns || len < 2 || len > 9)
        return -EINVAL;
    uint64_t v = 0;
    for (size_t i = 0; i < len - 1; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -EINVAL;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    for (size_t u = 0; u < sizeof units / sizeof *units; u++)
        if (units[u].unit == s[len - 1]) {
            *ns = v > UINT64_MAX / units[u].ns ? UINT64_MAX : v * units[u].ns;
            return 0;
        }
    return -EINVAL;
}

int sl_grpc_timeout_format(uint64_t ns, char *buf)
{
    size_t u = 0;
    while (u + 1 < sizeof units / sizeof *units && ns / units[u].ns > 99999999)
        u++;
    uint64_t v = ns / units[u].ns;
    if (v > 99999999)
        v = 99999999;   /* beyond 99999999 hours: the most that can be said */
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = units[u].unit;
    buf[n + 1] = '\0';
    return n + 1;
}

/* ---- traceparent ------------------------------------------------------------------ */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;   /* uppercase is invalid too */
}

static bool hex_bytes(const char *s, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static bool all_zero(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return false;
    return true;
}

int sl_traceparent_parse(const char *s, size_t len, sl_traceparent *tp)
{
    sl_traceparent t;
    if (!s || !tp || len < SL_TRACEPARENT_LEN || s[2] != '-' || s[35] != '-' || s[52] != '-')
        return -EINVAL;
    if (!hex_bytes(s, &t.version, 1) || t.version == 0xff)
        return -EINVAL;
    if (t.version == 0 ? len != SL_TRACEPARENT_LEN : (len > SL_TRACEPARENT_LEN && s[55] != '-'))
        return -EINVAL;
    if (!hex_bytes(s + 3, t.trace_id, 16) || !hex_bytes(s + 36, t.span_id, 8) ||
        !hex_bytes(s + 53, &t.flags, 1))
        return -EINVAL;
    if (all_zero(t.trace_id, 16) || all_zero(t.span_id, 8))
        return -EINVAL;
    *tp = t;
    return 0;
}

static char *put_hex(char *p, const uint8_t *b, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        *p++ = digits[b[i] >> 4];
        *p++ = digits[b[i] & 15];
    }
    return p;
}

int sl_traceparent_format(const sl_traceparent *tp, char *buf)
{
    uint8_t v = 0;   /* the only layout we write is version 00's */
    char *p = put_hex(buf, &v, 1);
    *p++ = '-';
    p = put_hex(p, tp->trace_id, 16);
    *p++ = '-';
    p = put_hex(p, tp->span_id, 8);
    *p++ = '-';
    p = put_hex(p, &tp->flags, 1);
    *p = '\0';
    return SL_TRACEPARENT_LEN;
}

void sl_trace_id_hex(const sl_traceparent *tp, char *buf)
{
    *put_hex(buf, tp->trace_id, 16) = '\0';
}

/* Ids need to be unique, not secret: a per-thread splitmix64 seeded once
 * from the kernel. */
static uint64_t next_rand(void)
{
    static __thread __attribute__((tls_model("initial-exec"))) uint64_t state;
    static __thread __attribute__((tls_model("initial-exec"))) bool seeded;
    if (!seeded) {
        /* without getrandom (very early boot, old kernels) the clock and
         * this thread's address still make threads and runs differ */
        if (getrandom(&state, sizeof state, GRND_NONBLOCK) != sizeof state)
            state = sl_now_ns() ^ (uint64_t)(uintptr_t)&state * 0x9E3779B97F4A7C15ULL;
        seeded = true;
    }
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* n is 8 or 16 */
static void random_nonzero(uint8_t *p, size_t n)
{
    uint64_t any;
    do {
        any = 0;
        for (size_t i = 0; i < n; i += 8) {
            uint64_t r = next_rand();
            memcpy(p + i, &r, 8);
            any |= r;
        }
    } while (!any);
}

void sl_traceparent_new(sl_traceparent *tp)
{
    tp->version = 0;
    tp->flags = 0;   /* not sampled: W3C's default; a sampler may say otherwise */
    random_nonzero(tp->trace_id, 16);
    random_nonzero(tp->span_id, 8);
}

void sl_traceparent_child(const sl_traceparent *parent, sl_traceparent *child)
{
    *child = *parent;
    child->version = 0;
    random_nonzero(child->span_id, 8);
}

uint64_t sl_traceparent_tag(const sl_traceparent *tp)
{
    uint64_t t = 0;
    for (int i = 8; i < 16; i++)
        t = t << 8 | tp->trace_id[i];
    return t ? t : 1;
}
