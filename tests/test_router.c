/* test_router.c: patterns, captures, 404 and 405 with Allow, bad patterns. */
#include "testutil.h"
#include "sl_router.h"

static int h1, h2, h3, h4;

static int match(sl_router *r, const char *method, const char *path, sl_route_match *m, char *allow)
{
    return sl_router_match(r, method, strlen(method), path, strlen(path), m, allow, 64);
}

static void test_routes(void **s)
{
    (void)s;
    sl_router *r;
    sl_route_match m;
    char allow[64];
    size_t len;
    assert_int_equal(sl_router_new(&r), 0);
    assert_int_equal(sl_router_add(r, "POST", "/orders", &h1, NULL), 0);
    assert_int_equal(sl_router_add(r, "GET", "/orders/{id}", &h2, "arg"), 0);
    assert_int_equal(sl_router_add(r, "POST", "/orders/{id}/paid", &h3, NULL), 0);
    assert_int_equal(sl_router_add(r, "GET", "/orders/stats", &h4, NULL), 0);
    assert_int_equal(sl_router_add(r, "GET", "/", &h4, NULL), 0);

    assert_int_equal(match(r, "POST", "/orders", &m, allow), 0);
    assert_ptr_equal(m.handler, &h1);
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(r, "GET", "/orders/o-17?verbose=1", &m, allow), 0);
    assert_ptr_equal(m.handler, &h2);
    assert_string_equal(m.arg, "arg");
    assert_string_equal(m.pattern, "/orders/{id}");
    const char *id = sl_route_param_get(&m, "id", &len);
    assert_non_null(id);
    assert_int_equal(len, 4);
    assert_memory_equal(id, "o-17", 4);
    assert_null(sl_route_param_get(&m, "nope", &len));
    /* a literal segment wins over a capture */
    assert_int_equal(match(r, "GET", "/orders/stats", &m, allow), 0);
    assert_ptr_equal(m.handler, &h4);
    assert_int_equal(match(r, "POST", "/orders/o-1/paid", &m, allow), 0);
    assert_ptr_equal(m.handler, &h3);
    assert_memory_equal(sl_route_param_get(&m, "id", &len), "o-1", 3);
    /* HEAD matches GET */
    assert_int_equal(match(r, "HEAD", "/orders/o-1", &m, allow), 0);
    assert_ptr_equal(m.handler, &h2);
    assert_int_equal(match(r, "GET", "/", &m, allow), 0);
    /* 404 */
    assert_int_equal(match(r, "GET", "/nothing", &m, allow), -ENOENT);
    assert_int_equal(match(r, "GET", "/orders/o-1/paid/more", &m, allow), -ENOENT);
    assert_int_equal(match(r, "GET", "/orders//paid", &m, allow), -ENOENT);   /* empty capture */
    assert_int_equal(match(r, "GET", "", &m, allow), -ENOENT);
    assert_int_equal(match(r, "GET", "orders", &m, allow), -ENOENT);
    /* 405 with Allow */
    assert_int_equal(match(r, "DELETE", "/orders", &m, allow), -EOPNOTSUPP);
    assert_string_equal(allow, "POST");
    assert_int_equal(match(r, "PUT", "/orders/x", &m, allow), -EOPNOTSUPP);
    assert_string_equal(allow, "GET");
    assert_int_equal(match(r, "DELETE", "/orders/stats", &m, allow), -EOPNOTSUPP);
    assert_string_equal(allow, "GET");                       /* not "GET, GET" */
    sl_router_free(r);
}

static void test_bad_patterns(void **s)
{
    (void)s;
    sl_router *r;
    assert_int_equal(sl_router_new(&r), 0);
    assert_int_equal(sl_router_add(r, "GET", "orders", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, "get", "/orders", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, "", "/orders", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, "GET", "/orders/{}", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, "GET", "/orders/{id", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, "GET", "/orders/x{id}", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, "GET", "/a//b", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, NULL, "/x", &h1, NULL), -EINVAL);
    assert_int_equal(sl_router_add(r, "GET", "/orders/{id}", &h1, NULL), 0);
    assert_int_equal(sl_router_add(r, "GET", "/orders/{id}", &h2, NULL), -EEXIST);
    assert_int_equal(sl_router_add(r, "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}", &h1, NULL), 0);
    sl_route_match m;
    assert_int_equal(sl_router_match(r, "GET", 3, "/1/2/3/4/5/6/7/8", 16, &m, NULL, 0), 0);
    assert_int_equal(m.nparams, 8);
    assert_memory_equal(m.params[7].value, "8", 1);
    sl_router_free(r);
    sl_router_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
