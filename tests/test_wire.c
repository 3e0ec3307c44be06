/* test_wire.c: grpc-timeout and traceparent, every malformed form rejected,
 * every valid one round-tripped; a context's budget and trace on the wire. */
#include "testutil.h"
#include "sl_wire.h"
#include "ctx_internal.h"   /* sl__ctx_inject_failure */

static void test_grpc_timeout_valid(void **s)
{
    (void)s;
    static const struct { const char *in; uint64_t ns; } ok[] = {
        { "1n", 1 }, { "250m", 250 * SL_NS_PER_MS }, { "3S", 3 * SL_NS_PER_S },
        { "2M", 120 * SL_NS_PER_S }, { "1H", 3600 * SL_NS_PER_S }, { "99999999u", 99999999000ULL },
        { "0m", 0 }, { "00000010m", 10 * SL_NS_PER_MS }, { "99999999H", UINT64_MAX },
        { "12345678M", 12345678ULL * 60 * SL_NS_PER_S }, { "7u", 7000 }, { "99999999n", 99999999 },
        { "100S", 100 * SL_NS_PER_S },
    };
    char buf[SL_GRPC_TIMEOUT_MAX];
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        uint64_t ns = 7, back = 9;
        assert_int_equal(sl_grpc_timeout_parse(ok[i].in, strlen(ok[i].in), &ns), 0);
        assert_true(ns == ok[i].ns);
        /* round trip: the value survives formatting (saturated ones excepted) */
        int n = sl_grpc_timeout_format(ns, buf);
        assert_int_equal(sl_grpc_timeout_parse(buf, (size_t)n, &back), 0);
        assert_true(back == ns || ns == UINT64_MAX);
    }
    /* no NUL is needed: the length decides */
    uint64_t ns = 0;
    assert_int_equal(sl_grpc_timeout_parse("250mXYZ", 4, &ns), 0);
    assert_true(ns == 250 * SL_NS_PER_MS);
    /* formatting: the finest unit that fits in 8 digits, rounded down,
     * and what is formatted parses back to no more than it was */
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
    static const struct { const char *s; size_t len; } bad[] = {
        { "", 0 }, { "m", 1 }, { "1", 1 }, { "10", 2 }, { "123456789m", 10 }, { "-1m", 3 },
        { "+1m", 3 }, { " 1m", 3 }, { "1m ", 3 }, { "1 m", 3 }, { "1x", 2 }, { "1s", 2 },
        { "1h", 2 }, { "1K", 2 }, { "1.5S", 4 }, { "0x10m", 5 }, { "1mm", 3 }, { "1Sm", 3 },
        { "1\0m", 3 } /* an embedded NUL */, { "\xef\xbc\x91m", 4 } /* a full-width 1 */,
        { "9999999999n", 11 }, { "m1", 2 }, { "1U", 2 }, { "1N", 2 }, { "1ms", 3 }, { "1e3m", 4 },
        { "1,000m", 6 }, { "\t1m", 3 }, { "1m\r\n", 4 }, { "000000000m", 10 }, { "1_0m", 4 },
        { "1/2S", 4 }, { "1\xb5", 2 } /* a Latin-1 micro sign */, { "1m", 1 } /* cut short */,
        { "1m", 0 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        uint64_t ns = 42;
        if (sl_grpc_timeout_parse(bad[i].s, bad[i].len, &ns) != -EINVAL)
            fail_msg("accepted grpc-timeout case %zu", i);
        assert_int_equal(ns, 42);   /* untouched */
    }
    assert_true(sizeof bad / sizeof *bad >= 30);
    uint64_t ns;
    assert_int_equal(sl_grpc_timeout_parse(NULL, 2, &ns), -EINVAL);
    assert_int_equal(sl_grpc_timeout_parse("1m", 2, NULL), -EINVAL);
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
    char out[56];
    assert_int_equal(sl_traceparent_parse(v1, strlen(v1), &tp), 0);
    assert_int_equal(tp.version, 1);
    sl_traceparent_format(&tp, out);
    assert_string_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    const char *v2 = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";   /* exactly 55 */
    assert_int_equal(sl_traceparent_parse(v2, strlen(v2), &tp), 0);
    assert_int_equal(tp.version, 0xcc);
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
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-g1",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        sl_traceparent tp = { .flags = 0x77 };
        if (sl_traceparent_parse(bad[i], strlen(bad[i]), &tp) != -EINVAL)
            fail_msg("accepted: '%s'", bad[i]);
        assert_int_equal(tp.flags, 0x77);   /* untouched */
    }
    assert_true(sizeof bad / sizeof *bad >= 30);
    sl_traceparent tp;
    assert_int_equal(sl_traceparent_parse(NULL, 55, &tp), -EINVAL);
    assert_int_equal(sl_traceparent_parse(TP_OK, 55, NULL), -EINVAL);
    assert_int_equal(sl_traceparent_parse(TP_OK, 54, &tp), -EINVAL);   /* cut short */
}

static void test_traceparent_new_and_child(void **s)
{
    (void)s;
    sl_traceparent a, b, c;
    char buf[56];
    sl_traceparent_new(&a);
    sl_traceparent_new(&b);
    assert_memory_not_equal(a.trace_id, b.trace_id, 16);
    assert_int_equal(a.flags, 0);   /* not sampled: the spec's default (issue 23) */
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

/* ---- a context on the wire --------------------------------------------------------- */

static sl_runtime *rt;

static int ctx_wire_main(sl_task *t, void *arg)
{
    sl_ctx *c, *d, *tr;
    char buf[SL_GRPC_TIMEOUT_MAX];
    uint64_t ns;
    sl_traceparent tp, out;
    (void)t;
    (void)arg;
    /* outgoing budget: remaining minus the margin, in the finest unit */
    assert_int_equal(sl_ctx_grpc_timeout(sl_ctx_background(), 10, buf), 0);   /* no header */
    assert_string_equal(buf, "");
    assert_int_equal(sl_ctx_with_timeout(&c, sl_ctx_background(), 1000), 0);
    int n = sl_ctx_grpc_timeout(c, 100, buf);
    assert_true(n > 0);
    assert_int_equal(buf[n - 1], 'u');
    assert_int_equal(sl_grpc_timeout_parse(buf, (size_t)n, &ns), 0);
    assert_true(ns <= 900 * SL_NS_PER_MS && ns > 400 * SL_NS_PER_MS);   /* loose below: stalls */
    assert_int_equal(sl_ctx_grpc_timeout(c, 1000, buf), -ETIMEDOUT);   /* nothing left: don't send */
    assert_int_equal(sl_ctx_grpc_timeout(c, UINT64_MAX, buf), -ETIMEDOUT);
    assert_int_equal(sl_ctx_grpc_timeout(NULL, 0, buf), -EINVAL);
    assert_int_equal(sl_ctx_grpc_timeout(c, 0, NULL), -EINVAL);
    sl_ctx_cancel(c, SL_CAUSE_DISCONNECT);
    assert_int_equal(sl_ctx_grpc_timeout(c, 0, buf), -ECANCELED);
    sl_ctx_unref(c);
    /* incoming: the header's budget, capped by ours */
    uint64_t now = sl_now_ns();
    assert_int_equal(sl_ctx_with_grpc_timeout(&c, sl_ctx_background(), "250m", 4, 1000), 0);
    assert_true(sl_ctx_deadline(c) >= now + 250 * SL_NS_PER_MS);
    assert_true(sl_ctx_deadline(c) <= sl_now_ns() + 250 * SL_NS_PER_MS);
    sl_ctx_unref(c);
    now = sl_now_ns();
    assert_int_equal(sl_ctx_with_grpc_timeout(&c, sl_ctx_background(), "10S", 3, 300), 0);
    assert_true(sl_ctx_deadline(c) >= now + 300 * SL_NS_PER_MS);               /* capped */
    assert_true(sl_ctx_deadline(c) <= sl_now_ns() + 300 * SL_NS_PER_MS);
    sl_ctx_unref(c);
    assert_int_equal(sl_ctx_with_grpc_timeout(&c, sl_ctx_background(), "10S", 3, 0), 0);   /* no cap */
    assert_true(sl_ctx_deadline(c) > sl_now_ns() + 9 * SL_NS_PER_S);
    sl_ctx_unref(c);
    assert_int_equal(sl_ctx_with_grpc_timeout(&c, sl_ctx_background(), NULL, 0, 200), 0);   /* no header */
    assert_true(sl_ctx_deadline(c) <= sl_now_ns() + 200 * SL_NS_PER_MS);
    sl_ctx_unref(c);
    assert_int_equal(sl_ctx_with_grpc_timeout(&c, sl_ctx_background(), NULL, 0, 0), 0);
    assert_int_equal(sl_ctx_deadline(c), 0);
    sl_ctx_unref(c);
    assert_int_equal(sl_ctx_with_grpc_timeout(&c, sl_ctx_background(), "0m", 2, 1000), 0);
    assert_int_equal(sl_ctx_err(c), -ETIMEDOUT);                                /* spent already */
    const char *why;
    assert_int_equal(sl_ctx_cause(c, &why), SL_CAUSE_CALLER_DEADLINE);        /* the caller's budget */
    assert_string_equal(why, "caller's deadline");
    sl_ctx_unref(c);
    /* the cap was the budget that counted: a deadline of our own */
    assert_int_equal(sl_ctx_with_grpc_timeout(&c, sl_ctx_background(), "5S", 2, 1), 0);
    assert_int_equal(sl_ctx_with_grpc_timeout(&d, c, "0m", 2, 0), 0);   /* a child: the header's is earlier */
    assert_int_equal(sl_ctx_cause(d, NULL), SL_CAUSE_CALLER_DEADLINE);
    sl_ctx_unref(d);
    assert_int_equal(sl_ctx_with_grpc_timeout(&d, c, "5S", 2, 0), 0);   /* the parent's is earlier: not marked */
    assert_int_equal(sl_ctx_deadline_is_callers(d), -EINVAL);
    sl_ctx_unref(d);
    sl_ctx_unref(c);
    /* marking: only a deadline of its own, only one not ended otherwise */
    assert_int_equal(sl_ctx_deadline_is_callers(NULL), -EINVAL);
    assert_int_equal(sl_ctx_deadline_is_callers(sl_ctx_background()), -EINVAL);
    assert_int_equal(sl_ctx_with_cancel(&c, sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_deadline_is_callers(c), -EINVAL);                   /* no deadline */
    assert_int_equal(sl_ctx_with_deadline(&d, c, sl_now_ns() + SL_NS_PER_S), 0);
    assert_int_equal(sl_ctx_deadline_is_callers(d), 0);
    assert_int_equal(sl_ctx_cancel(c, SL_CAUSE_DISCONNECT), 0);
    assert_int_equal(sl_ctx_cause(d, NULL), SL_CAUSE_DISCONNECT);              /* another end: kept */
    assert_int_equal(sl_ctx_deadline_is_callers(d), -EINVAL);
    sl_ctx_unref(d);
    sl_ctx_unref(c);
    assert_int_equal(sl_ctx_with_timeout(&c, sl_ctx_background(), 1000), 0);
    assert_int_equal(sl_ctx_with_cancel(&d, c), 0);
    assert_int_equal(sl_ctx_deadline_is_callers(d), -EINVAL);                   /* only its parent's */
    sl_ctx_unref(d);
    assert_int_equal(sl_ctx_cancel(c, SL_CAUSE_CALLER_DEADLINE), 0);           /* by hand: still a timeout */
    assert_int_equal(sl_ctx_err(c), -ETIMEDOUT);
    sl_ctx_unref(c);
    d = NULL;
    assert_int_equal(sl_ctx_with_grpc_timeout(&d, sl_ctx_background(), "25 m", 4, 1000), -EINVAL);
    assert_null(d);
    /* the trace as a value: found from descendants, tagged, continued per call */
    sl_traceparent_new(&tp);
    assert_null(sl_ctx_trace(sl_ctx_background()));
    assert_int_equal(sl_ctx_trace_tag(sl_ctx_background()), 0);
    assert_int_equal(sl_ctx_with_timeout(&c, sl_ctx_background(), 1000), 0);
    assert_int_equal(sl_ctx_with_trace(&tr, c, &tp), 0);
    assert_int_equal(sl_ctx_with_cancel(&d, tr), 0);
    assert_memory_equal(sl_ctx_trace(d)->trace_id, tp.trace_id, 16);
    assert_true(sl_ctx_trace_tag(d) == sl_traceparent_tag(&tp));
    assert_true(sl_ctx_trace_tag(d) != 0);
    sl_ctx_outgoing_trace(d, &out);
    assert_memory_equal(out.trace_id, tp.trace_id, 16);           /* same trace */
    assert_memory_not_equal(out.span_id, tp.span_id, 8);          /* a span of its own */
    sl_ctx_outgoing_trace(c, &out);                               /* no trace here: a fresh one */
    assert_memory_not_equal(out.trace_id, tp.trace_id, 16);
    assert_int_equal(sl_ctx_with_trace(&d, tr, NULL), -EINVAL);
    sl__ctx_inject_failure(0);
    assert_int_equal(sl_ctx_with_trace(&d, tr, &tp), -ENOMEM);
    sl_ctx_unref(d);
    sl_ctx_unref(tr);
    sl_ctx_unref(c);
    sl_runtime_stop(rt);
    return 0;
}

static void test_ctx_on_the_wire(void **s)
{
    (void)s;
    long before = sl_ctx_live_count();
    rt = rt_new(1, NULL);
    assert_int_equal(rt_run(rt, ctx_wire_main, NULL), 0);
    assert_int_equal(sl_ctx_live_count(), before);
}

/* sl_ctx_with_trace_deadline: one context that carries the trace and has
 * the deadline, as the two it replaces did; the trace is stored before the
 * timer in the same allocation (ASan checks that neither overlaps). */
typedef struct {
    sl_ctx *p, *c, *under, *v, *late;
    sl_chan *ch;
    sl_after a;
    sl_traceparent tp;
    int n, rc;
    uint64_t made;
} td_state;

static void td_wake(sl_ctx *ctx, void *arg)
{
    int one = 1;
    (void)ctx;
    assert_int_equal(sl_chan_try_send(NULL, arg, &one), 0);
}
static const char td_key;

static int trace_deadline_main(sl_task *t, void *arg)
{
    td_state *m = arg;
    SL_BEGIN(t);
    sl_traceparent_new(&m->tp);
    assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 60000), 0);
    assert_int_equal(sl_ctx_with_value(&m->v, m->p, &td_key, &m->n, NULL), 0);
    m->made = sl_now_ns();
    assert_int_equal(sl_ctx_with_trace_deadline(&m->c, m->v, &m->tp, m->made + 30 * SL_NS_PER_MS), 0);
    assert_true(sl_ctx_deadline(m->c) == m->made + 30 * SL_NS_PER_MS);   /* its own, earlier */
    assert_memory_equal(sl_ctx_trace(m->c)->trace_id, m->tp.trace_id, 16);
    assert_ptr_equal(sl_ctx_value(m->c, &td_key), &m->n);                 /* values above it still found */
    assert_int_equal(sl_ctx_with_cancel(&m->under, m->c), 0);
    assert_memory_equal(sl_ctx_trace(m->under)->span_id, m->tp.span_id, 8);
    /* a later deadline than the parent's: the parent's */
    assert_int_equal(sl_ctx_with_trace_deadline(&m->late, m->c, &m->tp, m->made + 10 * SL_NS_PER_S), 0);
    assert_true(sl_ctx_deadline(m->late) == sl_ctx_deadline(m->c));
    sl_ctx_unref(m->late);
    assert_int_equal(sl_ctx_with_trace_deadline(&m->late, m->c, &m->tp, 0), 0);   /* 0: the parent's */
    assert_true(sl_ctx_deadline(m->late) == sl_ctx_deadline(m->c));
    sl_ctx_unref(m->late);
    /* its timer ends it, and its child, never early */
    assert_int_equal(sl_chan_new(&m->ch, sizeof(int), 1, NULL), 0);
    assert_int_equal(sl_ctx_after(m->c, &m->a, td_wake, m->ch), 0);
    SL_AWAIT(t, m->rc, sl_chan_recv(t, m->ch, &m->n));
    assert_int_equal(m->rc, 0);
    assert_int_equal(sl_chan_free(t, m->ch), 0);
    assert_true(sl_now_ns() >= m->made + 30 * SL_NS_PER_MS);
    assert_int_equal(sl_ctx_err(m->c), -ETIMEDOUT);
    assert_int_equal(sl_ctx_cause(m->under, NULL), SL_CAUSE_DEADLINE);
    assert_int_equal(sl_ctx_err(m->p), 0);                                  /* the parent runs on */
    assert_memory_equal(sl_ctx_trace(m->c)->trace_id, m->tp.trace_id, 16);  /* the trace outlives the end */
    sl_ctx_unref(m->under);
    sl_ctx_unref(m->c);
    /* a deadline already past: born ended, still carrying the trace */
    assert_int_equal(sl_ctx_with_trace_deadline(&m->c, m->p, &m->tp, sl_now_ns() - 1), 0);
    assert_int_equal(sl_ctx_err(m->c), -ETIMEDOUT);
    assert_memory_equal(sl_ctx_trace(m->c)->trace_id, m->tp.trace_id, 16);
    sl_ctx_unref(m->c);
    /* cancelling the parent ends it */
    assert_int_equal(sl_ctx_with_trace_deadline(&m->c, m->p, &m->tp, sl_deadline_ms(5000)), 0);
    assert_int_equal(sl_ctx_cancel(m->p, SL_CAUSE_DISCONNECT), 0);
    assert_int_equal(sl_ctx_cause(m->c, NULL), SL_CAUSE_DISCONNECT);
    sl_ctx_unref(m->c);
    /* errors leave *out untouched */
    m->c = NULL;
    assert_int_equal(sl_ctx_with_trace_deadline(&m->c, m->v, NULL, 0), -EINVAL);
    assert_int_equal(sl_ctx_with_trace_deadline(NULL, m->v, &m->tp, 0), -EINVAL);
    assert_int_equal(sl_ctx_with_trace_deadline(&m->c, NULL, &m->tp, 0), -EINVAL);
    sl_ctx_unref(m->p);
    assert_int_equal(sl_ctx_with_timeout(&m->p, sl_ctx_background(), 60000), 0);
    sl__ctx_inject_failure(0);   /* the allocation */
    assert_int_equal(sl_ctx_with_trace_deadline(&m->c, m->p, &m->tp, sl_deadline_ms(1000)), -ENOMEM);
    sl__ctx_inject_failure(1);   /* the timer */
    assert_int_equal(sl_ctx_with_trace_deadline(&m->c, m->p, &m->tp, sl_deadline_ms(1000)), -ENOMEM);
    sl__ctx_inject_failure(-1);
    assert_null(m->c);
    sl_ctx_unref(m->v);
    sl_ctx_unref(m->p);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_trace_deadline_ctx(void **s)
{
    (void)s;
    static td_state m;
    long before = sl_ctx_live_count();
    rt = rt_new(1, NULL);
    assert_int_equal(rt_run(rt, trace_deadline_main, &m), 0);
    assert_int_equal(sl_ctx_live_count(), before);
}

/* ids are unique across many draws and across threads' generators */
static void test_ids_unique(void **s)
{
    (void)s;
    enum { N = 4096 };
    static uint64_t tags[N];
    sl_traceparent tp;
    for (int i = 0; i < N; i++) {
        sl_traceparent_new(&tp);
        tags[i] = sl_traceparent_tag(&tp);
        assert_true(tags[i] != 0);
    }
    qsort(tags, N, sizeof *tags, cmp_u64);
    for (int i = 1; i < N; i++)
        assert_true(tags[i] != tags[i - 1]);
    sl_traceparent z = { 0 };
    z.trace_id[0] = 1;   /* low 64 bits all zero: the tag is still not 0 */
    assert_true(sl_traceparent_tag(&z) == 1);
}

/* sluice-cause: what parses formats back the same; anything else is refused whole */
static void test_cause_header(void **s)
{
    (void)s;
    sl_cause_info ci;
    char buf[SL_CAUSE_HDR_MAX], text[160];
    const char *v = "v1;cause=caller-deadline;hop=payment-svc;left-ms=180";
    assert_int_equal(sl_cause_hdr_parse(v, strlen(v), &ci), 0);
    assert_int_equal(ci.cause, SL_WC_CALLER_DEADLINE);
    assert_string_equal(ci.hop, "payment-svc");
    assert_int_equal(ci.left_ms, 180);
    assert_int_equal(sl_cause_hdr_format(&ci, buf), (int)strlen(v));
    assert_string_equal(buf, v);
    assert_string_equal(sl_cause_info_text(&ci, text, sizeof text), "caller-deadline at payment-svc (called with 180 ms)");
    /* left-ms is optional; keys in any order; an unknown key of the same syntax is skipped */
    v = "v1;hop=[::1]:8081;future-key=x.y;cause=loop";
    assert_int_equal(sl_cause_hdr_parse(v, strlen(v), &ci), 0);
    assert_int_equal(ci.cause, SL_WC_LOOP);
    assert_string_equal(ci.hop, "[::1]:8081");
    assert_int_equal(ci.left_ms, -1);
    assert_int_equal(sl_cause_hdr_format(&ci, buf), (int)strlen("v1;cause=loop;hop=[::1]:8081"));
    assert_string_equal(buf, "v1;cause=loop;hop=[::1]:8081");
    assert_string_equal(sl_cause_info_text(&ci, text, sizeof text), "loop at [::1]:8081");
    for (int c = SL_WC_DEADLINE; c < SL_WC_COUNT; c++) {
        sl_cause_info in = { .cause = (sl_wire_cause)c, .hop = "h", .left_ms = 99999999 }, back;
        int n = sl_cause_hdr_format(&in, buf);
        assert_true(n > 0 && n < SL_CAUSE_HDR_MAX);
        assert_int_equal(sl_cause_hdr_parse(buf, (size_t)n, &back), 0);
        assert_true(back.cause == in.cause && !strcmp(back.hop, "h") && back.left_ms == 99999999);
        assert_true(sl_wire_cause_name((sl_wire_cause)c)[0] != '\0');
    }
    /* the longest: a 47-byte hop and 8 digits fit well inside the bound */
    sl_cause_info big = { .cause = SL_WC_CALLER_DEADLINE, .left_ms = 99999999 };
    memset(big.hop, 'a', SL_CAUSE_HOP_MAX - 1);
    assert_true(sl_cause_hdr_format(&big, buf) > 0);
    assert_int_equal(sl_cause_hdr_parse(buf, strlen(buf), &ci), 0);
    static const char *bad[] = {
        "", "v1", "v1;", "v2;cause=deadline;hop=a", "V1;cause=deadline;hop=a", "v1;cause=Deadline;hop=a",
        "v1;cause=deadline;hop=A", "v1;cause=deadline", "v1;hop=a", "v1;cause=late;hop=a",
        "v1;cause=deadline;hop=a;", "v1;cause=deadline;;hop=a", "v1;cause=deadline;hop=", "v1;cause=;hop=a",
        "v1;cause=deadline;hop=a;left-ms=", "v1;cause=deadline;hop=a;left-ms=123456789",
        "v1;cause=deadline;hop=a;left-ms=-1", "v1;cause=deadline;hop=a;left-ms=+1", "v1;cause=deadline;hop=a;left-ms= 1",
        "v1;cause=deadline;hop=a b", "v1;cause=deadline;hop=a,b", "v1;cause=deadline;hop=a\r\nx: y",
        "v1;cause=deadline;cause=loop;hop=a", "v1;cause=deadline;hop=a;hop=b", "v1;cause=deadline;hop=a;left-ms=1;left-ms=2",
        "v1;cause=deadline;hop=a;x", "v1;cause=deadline;hop=a;=x", "v1;cause=deadline;hop=a;X=1",
        "v1;cause=deadline;hop=a;k=\"q\"", " v1;cause=deadline;hop=a", "v1 ;cause=deadline;hop=a",
        "v1;cause=deadline;hop=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",   /* a 48-byte hop */
        /* oversized: 128 bytes or more, however well-formed */
        "v1;cause=deadline;hop=a;k1=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        memset(&ci, 0x5a, sizeof ci);
        if (sl_cause_hdr_parse(bad[i], strlen(bad[i]), &ci) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
        assert_int_equal(ci.left_ms, 0x5a5a5a5a5a5a5a5aLL);   /* untouched */
    }
    assert_true(strlen(bad[sizeof bad / sizeof *bad - 1]) >= SL_CAUSE_HDR_MAX);
    v = "v1;cause=deadline;hop=a";
    assert_int_equal(sl_cause_hdr_parse(v, strlen(v) - 1, &ci), -EINVAL);   /* cut short: hop= empty */
    assert_int_equal(sl_cause_hdr_parse(NULL, 3, &ci), -EINVAL);
    assert_int_equal(sl_cause_hdr_parse(v, strlen(v), NULL), -EINVAL);
    /* format refuses what would not parse back, writing nothing */
    static const sl_cause_info nofmt[] = {
        { .cause = SL_WC_NONE, .hop = "a" }, { .cause = SL_WC_COUNT, .hop = "a" }, { .cause = SL_WC_DEADLINE },
        { .cause = SL_WC_DEADLINE, .hop = "A" }, { .cause = SL_WC_DEADLINE, .hop = "a;b" },
        { .cause = SL_WC_DEADLINE, .hop = "a", .left_ms = 100000000 },
    };
    for (size_t i = 0; i < sizeof nofmt / sizeof *nofmt; i++) {
        strcpy(buf, "untouched");
        assert_int_equal(sl_cause_hdr_format(&nofmt[i], buf), -EINVAL);
        assert_string_equal(buf, "untouched");
    }
    assert_int_equal(sl_cause_hdr_format(NULL, buf), -EINVAL);
    /* a context's cause on the wire */
    assert_int_equal(sl_wire_cause_of(SL_CAUSE_NONE), SL_WC_NONE);
    assert_int_equal(sl_wire_cause_of(SL_CAUSE_DEADLINE), SL_WC_DEADLINE);
    assert_int_equal(sl_wire_cause_of(SL_CAUSE_CALLER_DEADLINE), SL_WC_CALLER_DEADLINE);
    assert_int_equal(sl_wire_cause_of(SL_CAUSE_DISCONNECT), SL_WC_DISCONNECT);
    assert_int_equal(sl_wire_cause_of(SL_CAUSE_SHUTDOWN), SL_WC_SHUTDOWN);
    assert_int_equal(sl_wire_cause_of(SL_CAUSE_UPSTREAM), SL_WC_UPSTREAM);
    assert_int_equal(sl_wire_cause_of(SL_CAUSE_DEADLOCK), SL_WC_LOOP);
    assert_int_equal(sl_wire_cause_of(SL_CAUSE_CANCELED), SL_WC_CANCELED);
    assert_string_equal(sl_wire_cause_name(SL_WC_COUNT), "");
    assert_string_equal(sl_wire_cause_name(SL_WC_NONE), "");
    assert_string_equal(sl_cause_text(SL_CAUSE_CALLER_DEADLINE), "caller's deadline");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grpc_timeout_valid),
        cmocka_unit_test(test_grpc_timeout_malformed),
        cmocka_unit_test(test_traceparent_valid),
        cmocka_unit_test(test_traceparent_malformed),
        cmocka_unit_test(test_traceparent_new_and_child),
        cmocka_unit_test(test_ctx_on_the_wire),
        cmocka_unit_test(test_trace_deadline_ctx),
        cmocka_unit_test(test_ids_unique),
        cmocka_unit_test(test_cause_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
