/* wire.c: grpc-timeout and traceparent, parsed strictly: what a peer sends
 * is either exactly the format or refused, so a malformed header can never
 * be half-understood as some other budget or trace. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
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

/* ---- sluice-cause ---------------------------------------------------------------- */

static const char *const wire_causes[SL_WC_COUNT] = {
    "", "deadline", "caller-deadline", "disconnect", "shutdown", "overloaded", "upstream", "loop", "canceled",
};

const char *sl_wire_cause_name(sl_wire_cause c)
{
    return (unsigned)c < SL_WC_COUNT ? wire_causes[c] : "";
}

sl_wire_cause sl_wire_cause_of(sl_cause c)
{
    switch (c) {
    case SL_CAUSE_NONE: return SL_WC_NONE;
    case SL_CAUSE_DEADLINE: return SL_WC_DEADLINE;
    case SL_CAUSE_CALLER_DEADLINE: return SL_WC_CALLER_DEADLINE;
    case SL_CAUSE_DISCONNECT: return SL_WC_DISCONNECT;
    case SL_CAUSE_SHUTDOWN: return SL_WC_SHUTDOWN;
    case SL_CAUSE_UPSTREAM: return SL_WC_UPSTREAM;
    case SL_CAUSE_DEADLOCK: return SL_WC_LOOP;
    default: return SL_WC_CANCELED;
    }
}

static bool hop_ch(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-' ||
           c == '[' || c == ']';
}

static bool key_ch(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

int sl_cause_hdr_parse(const char *s, size_t len, sl_cause_info *out)
{
    if (!s || !out || len >= SL_CAUSE_HDR_MAX || len < 3 || memcmp(s, "v1;", 3))
        return -EINVAL;
    sl_cause_info ci = { .left_ms = -1 };
    bool seen_cause = false, seen_hop = false, seen_left = false;
    for (size_t i = 3; i <= len;) {
        size_t k = i;
        while (k < len && key_ch(s[k]))
            k++;
        if (k == i || k == len || s[k] != '=')
            return -EINVAL;
        size_t v = k + 1, e = v;
        while (e < len && s[e] != ';')
            e++;
        size_t kl = k - i, vl = e - v;
        const char *key = s + i, *val = s + v;
        if (vl == 0)
            return -EINVAL;
        if (kl == 5 && !memcmp(key, "cause", 5)) {
            int c = SL_WC_COUNT;
            for (int w = 1; w < SL_WC_COUNT; w++)
                if (strlen(wire_causes[w]) == vl && !memcmp(wire_causes[w], val, vl))
                    c = w;
            if (seen_cause || c == SL_WC_COUNT)
                return -EINVAL;
            ci.cause = (sl_wire_cause)c;
            seen_cause = true;
        } else if (kl == 3 && !memcmp(key, "hop", 3)) {
            if (seen_hop || vl >= SL_CAUSE_HOP_MAX)
                return -EINVAL;
            for (size_t j = 0; j < vl; j++)
                if (!hop_ch(val[j]))
                    return -EINVAL;
            memcpy(ci.hop, val, vl);
            ci.hop[vl] = '\0';
            seen_hop = true;
        } else if (kl == 7 && !memcmp(key, "left-ms", 7)) {
            if (seen_left || vl > 8)
                return -EINVAL;
            int64_t n = 0;
            for (size_t j = 0; j < vl; j++) {
                if (val[j] < '0' || val[j] > '9')
                    return -EINVAL;
                n = n * 10 + (val[j] - '0');
            }
            ci.left_ms = n;
            seen_left = true;
        } else {   /* a key of a later v1: its value must still be plain */
            for (size_t j = 0; j < vl; j++)
                if (!hop_ch(val[j]))
                    return -EINVAL;
        }
        i = e + 1;   /* past the ';' (or past the end: done) */
        if (e == len)
            break;
    }
    if (!seen_cause || !seen_hop)
        return -EINVAL;
    *out = ci;
    return 0;
}

int sl_cause_hdr_format(const sl_cause_info *ci, char *buf)
{
    if (!ci || !buf || ci->cause <= SL_WC_NONE || ci->cause >= SL_WC_COUNT || ci->left_ms > 99999999)
        return -EINVAL;
    size_t hl = strnlen(ci->hop, SL_CAUSE_HOP_MAX);
    if (hl == 0 || hl >= SL_CAUSE_HOP_MAX)
        return -EINVAL;
    for (size_t j = 0; j < hl; j++)
        if (!hop_ch(ci->hop[j]))
            return -EINVAL;
    /* "v1;cause=" 9 + 15 + ";hop=" 5 + 47 + ";left-ms=" 9 + 8 = 93 < 128 */
    int n = ci->left_ms >= 0
                ? snprintf(buf, SL_CAUSE_HDR_MAX, "v1;cause=%s;hop=%s;left-ms=%lld", wire_causes[ci->cause], ci->hop,
                           (long long)ci->left_ms)
                : snprintf(buf, SL_CAUSE_HDR_MAX, "v1;cause=%s;hop=%s", wire_causes[ci->cause], ci->hop);
    return n;
}

char *sl_cause_info_text(const sl_cause_info *ci, char *buf, size_t n)
{
    if (!n)
        return buf;
    if (ci->left_ms >= 0)
        snprintf(buf, n, "%s at %s (called with %lld ms)", sl_wire_cause_name(ci->cause), ci->hop,
                 (long long)ci->left_ms);
    else
        snprintf(buf, n, "%s at %s", sl_wire_cause_name(ci->cause), ci->hop);
    return buf;
}
