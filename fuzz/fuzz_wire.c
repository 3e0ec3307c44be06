/* fuzz_wire.c: libFuzzer harness for context/wire.c: grpc-timeout,
 * traceparent and sluice-cause. The first byte picks the codec (mod 3: 0
 * grpc-timeout, 1 traceparent, 2 sluice-cause), the rest is a header value.
 * What parses must format back to a value that parses to the same thing
 * (grpc-timeout: never to a larger budget); what does not parse leaves the
 * output untouched. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sl_wire.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c); abort(); } } while (0)

static void grpc_timeout(const char *s, size_t len)
{
    uint64_t ns = 42, back = 0;
    char buf[SL_GRPC_TIMEOUT_MAX];
    int rc = sl_grpc_timeout_parse(s, len, &ns);
    if (rc) {
        CHECK(rc == -EINVAL && ns == 42);
        return;
    }
    CHECK(len >= 2 && len <= 9);
    int n = sl_grpc_timeout_format(ns, buf);
    CHECK(n >= 2 && n <= 9 && (size_t)n == strlen(buf));
    CHECK(sl_grpc_timeout_parse(buf, (size_t)n, &back) == 0);
    CHECK(back <= ns);                  /* rounding down only */
    uint64_t again;                     /* and formatting is stable */
    char buf2[SL_GRPC_TIMEOUT_MAX];
    CHECK(sl_grpc_timeout_format(back, buf2) == n && !strcmp(buf, buf2));
    CHECK(sl_grpc_timeout_parse(buf2, (size_t)n, &again) == 0 && again == back);
}

static void traceparent(const char *s, size_t len)
{
    sl_traceparent tp, back;
    memset(&tp, 0xa5, sizeof tp);
    sl_traceparent untouched = tp;
    char buf[SL_TRACEPARENT_LEN + 1], hex[33];
    int rc = sl_traceparent_parse(s, len, &tp);
    if (rc) {
        CHECK(rc == -EINVAL && !memcmp(&tp, &untouched, sizeof tp));
        return;
    }
    CHECK(len >= SL_TRACEPARENT_LEN);
    CHECK(sl_traceparent_format(&tp, buf) == SL_TRACEPARENT_LEN && strlen(buf) == SL_TRACEPARENT_LEN);
    CHECK(sl_traceparent_parse(buf, SL_TRACEPARENT_LEN, &back) == 0);
    CHECK(back.version == 0 && back.flags == tp.flags);
    CHECK(!memcmp(back.trace_id, tp.trace_id, 16) && !memcmp(back.span_id, tp.span_id, 8));
    if (tp.version == 0)    /* version 00 is exactly what was sent */
        CHECK(len == SL_TRACEPARENT_LEN && !memcmp(buf, s, len));
    sl_trace_id_hex(&tp, hex);
    CHECK(strlen(hex) == 32 && !memcmp(hex, buf + 3, 32));
    CHECK(sl_traceparent_tag(&tp) != 0);
}

static void cause(const char *s, size_t len)
{
    sl_cause_info ci, back;
    memset(&ci, 0xa5, sizeof ci);
    sl_cause_info untouched = ci;
    char buf[SL_CAUSE_HDR_MAX], text[SL_CAUSE_HDR_MAX + 64];
    int rc = sl_cause_hdr_parse(s, len, &ci);
    if (rc) {
        CHECK(rc == -EINVAL && !memcmp(&ci, &untouched, sizeof ci));
        return;
    }
    CHECK(len < SL_CAUSE_HDR_MAX && !memcmp(s, "v1;", 3));
    CHECK(ci.cause > SL_WC_NONE && ci.cause < SL_WC_COUNT && ci.hop[0] && strlen(ci.hop) < SL_CAUSE_HOP_MAX);
    CHECK(ci.left_ms >= -1 && ci.left_ms <= 99999999);
    int n = sl_cause_hdr_format(&ci, buf);   /* canonical: known keys only, in order */
    CHECK(n > 0 && (size_t)n == strlen(buf) && (size_t)n <= len);
    CHECK(sl_cause_hdr_parse(buf, (size_t)n, &back) == 0);
    CHECK(back.cause == ci.cause && !strcmp(back.hop, ci.hop) && back.left_ms == ci.left_ms);
    CHECK(strlen(sl_cause_info_text(&ci, text, sizeof text)) < sizeof text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    /* an exact-size copy: ASan sees a read past the value */
    size_t len = size - 1;
    char *s = malloc(len ? len : 1);
    if (!s)
        return 0;
    memcpy(s, data + 1, len);
    switch (data[0] % 3) {
    case 0: grpc_timeout(s, len); break;
    case 1: traceparent(s, len); break;
    default: cause(s, len); break;
    }
    free(s);
    return 0;
}
