/* test_wire.c: grpc-timeout and traceparent, every malformed form rejected,
 * every valid one round-tripped. */
#include "testutil.h"
#include "sl_wire.h"

static void test_grpc_timeout_valid(void **s)
{
    (void)s;
    static const struct { const char *in; uint64_t ns; } ok[] = {
        { "1n", 1 }, { "250m", 250 * SL_NS_PER_MS }, { "3S", 3 * SL_NS_PER_S },
        { "2M", 120 * SL_NS_PER_S }, { "1H", 3600 * SL_NS_PER_S }, { "99999999u", 99999999000ULL },
        { "0m", 0 }, { "00000010m", 10 * SL_NS_PER_MS }, { "99999999H", UINT64_MAX },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t ns = 7;
        assert_int_equal(sl_grpc_timeout_parse(ok[i].in, strlen(ok[i].in), &ns), 0);
        assert_true(ns == ok[i].ns);
    }
    /* formatting: the finest unit that fits in 8 digits, rounded down,
     * and what is formatted parses back to no more than it was */
    char buf[SL_GRPC_TIMEOUT_MAX];
    static const struct { uint64_t ns; const char *out; } fmt[] = {
        { 0, "0n" }, { 99999999, "99999999n" }, { 100000000, "100000u" },
        { 250 * SL_NS_PER_MS, "250000u" }, { 3 * SL_NS_PER_S, "3000000u" },
        { 100 * SL_NS_PER_S, "100000m" }, { 100000 * SL_NS_PER_S, "100000S" },
        { 123456789012ULL, "123456m" }, { UINT64_MAX, "5124095H" },
    };
    for (size_t i = 0; i < sizeof fmt / sizeof *fmt; i++) {
        int n = sl_grpc_timeout_format(fmt[i].ns, buf);
        assert_string_equal(buf, fmt[i].out);
        assert_int_equal(n, (int)strlen(fmt[i].out));
        uint64_t back;
        assert_int_equal(sl_grpc_timeout_parse(buf, (size_t)n, &back), 0);
        assert_true(back <= fmt[i].ns);
        assert_true(fmt[i].ns - back < fmt[i].ns / 1000 + 1000 || fmt[i].ns == UINT64_MAX);
    }
}

static void test_grpc_timeout_malformed(void **s)
{
    (void)s;
    static const char *bad[] = {
        "", "m", "1", "10", "123456789m", "-1m", "+1m", " 1m", "1m ", "1 m", "1x", "1s",
        "1h", "1K", "1.5S", "0x10m", "1mm", "1Sm", "\x31\x00m", "１m", "9999999999n", "m1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t ns = 42;
        size_t len = strlen(bad[i]);
        if (!strcmp(bad[i], "\x31"))
            len = 3;   /* an embedded NUL */
        assert_int_equal(sl_grpc_timeout_parse(bad[i], len, &ns), -EINVAL);
        assert_int_equal(ns, 42);   /* untouched */
    }
}

#define TP_OK "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_traceparent_valid(void **s)
{
    (void)s;
    static const char *ok[] = {
        TP_OK,
        "00-00000000000000000000000000000001-0000000000000001-00",
        "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-ff",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        sl_traceparent tp;
        char buf[56];
        assert_int_equal(sl_traceparent_parse(ok[i], strlen(ok[i]), &tp), 0);
        assert_int_equal(sl_traceparent_format(&tp, buf), 55);
        assert_string_equal(buf, ok[i]);
    }
    /* a later version may carry more after a dash; it is written back as 00 */
    const char *v1 = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
    sl_traceparent tp;
    assert_int_equal(sl_traceparent_parse(v1, strlen(v1), &tp), 0);
    assert_int_equal(tp.version, 1);
    char hex[33];
    sl_trace_id_hex(&tp, hex);
    assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_true(sl_traceparent_tag(&tp) == 0xa3ce929d0e0e4736ULL);
}

static void test_traceparent_malformed(void **s)
{
    (void)s;
    static const char *bad[] = {
        "",
        "00",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",             /* no flags */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",           /* short flags */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",         /* 00 must be exactly 55 */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-011",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",          /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",          /* zero trace-id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",          /* zero parent-id */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",          /* uppercase */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0F",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",          /* separators */
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",          /* shifted dash */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-701",
        "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",          /* not hex */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
        "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01 ",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",          /* later version: '-' needed */
        "00--4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736--0f067aa0ba902b7-01",
        "-0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7--1",
        "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "000-bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sl_traceparent tp = { .flags = 0x77 };
        if (sl_traceparent_parse(bad[i], strlen(bad[i]), &tp) != -EINVAL)
            fail_msg("accepted: '%s'", bad[i]);
        assert_int_equal(tp.flags, 0x77);   /* untouched */
    }
    assert_true(sizeof bad / sizeof *bad >= 30);
}

static void test_traceparent_new_and_child(void **s)
{
    (void)s;
    sl_traceparent a, b, c;
    char buf[56];
    sl_traceparent_new(&a);
    sl_traceparent_new(&b);
    assert_memory_not_equal(a.trace_id, b.trace_id, 16);
    assert_int_equal(a.flags, 1);
    sl_traceparent_format(&a, buf);
    sl_traceparent back;
    assert_int_equal(sl_traceparent_parse(buf, 55, &back), 0);   /* a fresh one is valid */
    assert_memory_equal(back.trace_id, a.trace_id, 16);
    sl_traceparent_child(&a, &c);
    assert_memory_equal(c.trace_id, a.trace_id, 16);             /* same trace */
    assert_memory_not_equal(c.span_id, a.span_id, 8);            /* new span */
    assert_true(sl_traceparent_tag(&c) == sl_traceparent_tag(&a));
    assert_true(sl_traceparent_tag(&a) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpc_timeout_valid),
        cmocka_unit_test(test_grpc_timeout_malformed),
        cmocka_unit_test(test_traceparent_valid),
        cmocka_unit_test(test_traceparent_malformed),
        cmocka_unit_test(test_traceparent_new_and_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
