/* test_affinity.c: rendezvous hashing, the key-affinity of the client:
 * how keys spread over replicas and which of them move when a replica
 * leaves, comes back or is added. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "rendezvous.h"

#define NKEYS 30000
#define MAXREPS 8

static uint64_t ids[MAXREPS];
static int owner[NKEYS];

static uint64_t key_hash(int k)
{
    char key[32];
    int n = snprintf(key, sizeof key, "order-%d", k);
    return sl__hash_bytes(key, (size_t)n);
}

static void make_ids(int n)
{
    for (int i = 0; i < n; i++) {
        char addr[32];
        int len = snprintf(addr, sizeof addr, "10.0.0.%d:8082", i + 1);
        ids[i] = sl__hash_bytes(addr, (size_t)len);
    }
}

static bool not_out(void *arg, int i) { return !((const bool *)arg)[i]; }

static void test_hash(void **s)
{
    (void)s;
    assert_int_equal(sl__hash_bytes("abc", 3), sl__hash_bytes("abc", 3));
    assert_true(sl__hash_bytes("abc", 3) != sl__hash_bytes("abd", 3));
    assert_true(sl__hash_bytes("", 0) != sl__hash_bytes("\0", 1));   /* the length counts */
    /* one bit of input flips about half the bits of the score */
    int flipped = 0;
    for (int k = 0; k < 1000; k++)
        flipped += __builtin_popcountll(sl__rendezvous_score(key_hash(k), 1) ^ sl__rendezvous_score(key_hash(k), 3));
    assert_in_range(flipped, 1000 * 28, 1000 * 36);
}

/* Each of 3 and of 5 replicas owns about 1/n of 30000 keys. */
static void test_spread(void **s)
{
    (void)s;
    for (int n = 3; n <= 5; n += 2) {
        int per[MAXREPS] = { 0 };
        make_ids(n);
        for (int k = 0; k < NKEYS; k++) {
            int r = sl__rendezvous_pick(key_hash(k), ids, n, NULL, NULL);
            assert_in_range(r, 0, n - 1);
            per[r]++;
        }
        for (int r = 0; r < n; r++) {
            print_message("%d replicas: replica %d owns %d of %d keys\n", n, r, per[r], NKEYS);
            /* 1/n within 5% of it (the binomial's sd is under 1%) */
            assert_in_range(per[r], NKEYS / n * 95 / 100, NKEYS / n * 105 / 100);
        }
    }
}

/* A replica out: only its keys move, spread over the others; back: they
 * all move back. */
static void test_out_and_back(void **s)
{
    (void)s;
    bool out[MAXREPS] = { false };
    int n = 4, moved_to[MAXREPS] = { 0 }, owned = 0;
    make_ids(n);
    for (int k = 0; k < NKEYS; k++)
        owner[k] = sl__rendezvous_pick(key_hash(k), ids, n, not_out, out);
    out[2] = true;
    for (int k = 0; k < NKEYS; k++) {
        int r = sl__rendezvous_pick(key_hash(k), ids, n, not_out, out);
        assert_true(r != 2);
        if (owner[k] != 2)
            assert_int_equal(r, owner[k]);   /* nobody else's key moves */
        else
            moved_to[r]++, owned++;
    }
    for (int r = 0; r < n; r++)
        if (r != 2)   /* replica 2's keys spread over the three others */
            assert_in_range(moved_to[r], owned / 3 * 85 / 100, owned / 3 * 115 / 100);
    out[2] = false;
    for (int k = 0; k < NKEYS; k++)
        assert_int_equal(sl__rendezvous_pick(key_hash(k), ids, n, not_out, out), owner[k]);
    /* every one out: none */
    for (int r = 0; r < n; r++)
        out[r] = true;
    assert_int_equal(sl__rendezvous_pick(key_hash(1), ids, n, not_out, out), -1);
    assert_int_equal(sl__rendezvous_pick(key_hash(1), ids, 0, NULL, NULL), -1);
}

/* A replica added takes about 1/n of the keys, and only keys move to it. */
static void test_added(void **s)
{
    (void)s;
    int moved = 0;
    make_ids(5);
    for (int k = 0; k < NKEYS; k++)
        owner[k] = sl__rendezvous_pick(key_hash(k), ids, 4, NULL, NULL);
    for (int k = 0; k < NKEYS; k++) {
        int r = sl__rendezvous_pick(key_hash(k), ids, 5, NULL, NULL);
        if (r != owner[k]) {
            assert_int_equal(r, 4);
            moved++;
        }
    }
    assert_in_range(moved, NKEYS / 5 * 95 / 100, NKEYS / 5 * 105 / 100);
}

/* Owners follow the addresses, not their order in the list. */
static void test_order_free(void **s)
{
    (void)s;
    uint64_t rev[3];
    make_ids(3);
    for (int i = 0; i < 3; i++)
        rev[i] = ids[2 - i];
    for (int k = 0; k < 1000; k++)
        assert_int_equal(sl__rendezvous_pick(key_hash(k), rev, 3, NULL, NULL),
                         2 - sl__rendezvous_pick(key_hash(k), ids, 3, NULL, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash),
        cmocka_unit_test(test_spread),
        cmocka_unit_test(test_out_and_back),
        cmocka_unit_test(test_added),
        cmocka_unit_test(test_order_free),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
