/* test_list.c: core/list.h, the one intrusive list: its contract, one rule
 * per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "list.h"

typedef struct item {
    int v;
    SL_LINK(struct item) a;   /* two links: one element on two lists */
    SL_LINK(struct item) b;
} item;

typedef SL_LIST(item) item_list;

/* The values of l by link a, head to tail, walked both ways: the backward
 * walk must be the forward one reversed (prev links agree with next). */
static void expect(const item_list *l, const char *want)
{
    char fwd[16] = { 0 }, back[16] = { 0 };
    int n = 0;
    const item *x;
    SL_LIST_FOREACH(x, l, a)
        fwd[n++] = (char)('0' + x->v);
    assert_string_equal(fwd, want);
    int k = n;
    for (x = l->tail; x; x = x->a.prev)
        back[--k] = (char)('0' + x->v);
    assert_int_equal(k, 0);
    assert_string_equal(back, want);
    assert_true((l->head == NULL) == (n == 0));
    assert_true((l->tail == NULL) == (n == 0));
}

static void fill(item_list *l, item *it, int n)
{
    for (int i = 0; i < n; i++) {
        it[i].v = i;
        SL_LIST_PUSH_BACK(l, &it[i], a);
    }
}

static void test_zeroed_is_empty(void **s)
{
    (void)s;
    item_list l = { 0 };
    item x = { 0 };
    assert_true(SL_LIST_EMPTY(&l));
    assert_false(SL_LIST_LINKED(&l, &x, a));
    expect(&l, "");
}

static void test_push_back_keeps_order(void **s)
{
    (void)s;
    item_list l = { 0 };
    item it[4];
    fill(&l, it, 4);
    expect(&l, "0123");
}

static void test_push_front_reverses(void **s)
{
    (void)s;
    item_list l = { 0 };
    item it[3];
    for (int i = 0; i < 3; i++) {
        it[i].v = i;
        SL_LIST_PUSH_FRONT(&l, &it[i], a);
    }
    expect(&l, "210");
}

static void test_remove_head_middle_tail(void **s)
{
    (void)s;
    item_list l = { 0 };
    item it[5];
    fill(&l, it, 5);
    SL_LIST_REMOVE(&l, &it[2], a);
    expect(&l, "0134");
    SL_LIST_REMOVE(&l, &it[0], a);
    expect(&l, "134");
    SL_LIST_REMOVE(&l, &it[4], a);
    expect(&l, "13");
    SL_LIST_REMOVE(&l, &it[1], a);
    SL_LIST_REMOVE(&l, &it[3], a);
    expect(&l, "");
}

static void test_remove_unlinks(void **s)
{
    (void)s;
    item_list l = { 0 };
    item it[3];
    fill(&l, it, 3);
    assert_true(SL_LIST_LINKED(&l, &it[0], a));   /* the head: prev is NULL */
    assert_true(SL_LIST_LINKED(&l, &it[1], a));
    SL_LIST_REMOVE(&l, &it[1], a);
    assert_false(SL_LIST_LINKED(&l, &it[1], a));
    assert_null(it[1].a.prev);
    assert_null(it[1].a.next);
    /* and it can go back on */
    SL_LIST_PUSH_BACK(&l, &it[1], a);
    expect(&l, "021");
}

static void test_two_links_are_two_lists(void **s)
{
    (void)s;
    item_list la = { 0 }, lb = { 0 };
    item it[3];
    fill(&la, it, 3);
    for (int i = 2; i >= 0; i--)
        SL_LIST_PUSH_BACK(&lb, &it[i], b);
    SL_LIST_REMOVE(&lb, &it[1], b);   /* off b only */
    expect(&la, "012");
    assert_ptr_equal(lb.head, &it[2]);
    assert_ptr_equal(lb.head->b.next, &it[0]);
    assert_ptr_equal(lb.tail, &it[0]);
    assert_true(SL_LIST_LINKED(&la, &it[1], a));
    assert_false(SL_LIST_LINKED(&lb, &it[1], b));
}

static void test_foreach_safe_may_remove(void **s)
{
    (void)s;
    item_list l = { 0 };
    item it[6], *x, *next;
    fill(&l, it, 6);
    SL_LIST_FOREACH_SAFE(x, &l, a, next)
        if (x->v % 2)
            SL_LIST_REMOVE(&l, x, a);
    expect(&l, "024");
    SL_LIST_FOREACH_SAFE(x, &l, a, next)
        SL_LIST_REMOVE(&l, x, a);
    expect(&l, "");
}

/* sl_wq: the waiter queue is the same list plus a count. */
static void test_wq_fifo_and_count(void **s)
{
    (void)s;
    sl_wq q = { 0 };
    sl_waiter w[3];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 3; i++)
        sl_wq_push(&q, &w[i]);
    assert_int_equal(q.n, 3);
    assert_true(sl_wq_has(&q, &w[0]));
    sl_wq_remove(&q, &w[1]);
    assert_false(sl_wq_has(&q, &w[1]));
    assert_int_equal(q.n, 2);
    assert_ptr_equal(sl_wq_pop(&q), &w[0]);
    assert_ptr_equal(sl_wq_pop(&q), &w[2]);
    assert_null(sl_wq_pop(&q));
    assert_int_equal(q.n, 0);
    assert_null(q.head);
    assert_null(q.tail);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zeroed_is_empty),
        cmocka_unit_test(test_push_back_keeps_order),
        cmocka_unit_test(test_push_front_reverses),
        cmocka_unit_test(test_remove_head_middle_tail),
        cmocka_unit_test(test_remove_unlinks),
        cmocka_unit_test(test_two_links_are_two_lists),
        cmocka_unit_test(test_foreach_safe_may_remove),
        cmocka_unit_test(test_wq_fifo_and_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
