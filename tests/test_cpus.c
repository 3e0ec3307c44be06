/* test_cpus.c: the CPUs a process may use (sl_cpus_usable, core/cpus.c):
 * the cgroup v2 quota read from a fake tree, and the affinity mask. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "internal.h"

static char dir[64];

static void put(const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int quota(void)
{
    char pc[128], root[128];
    snprintf(pc, sizeof pc, "%s/cgroup", dir);
    snprintf(root, sizeof root, "%s/fs", dir);
    return sl__cpus_quota(pc, root);
}

static void test_quota_from_cpu_max(void **s)
{
    (void)s;
    snprintf(dir, sizeof dir, "/tmp/sl-cpus-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char p[128];
    snprintf(p, sizeof p, "%s/fs", dir), mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/fs/a", dir), mkdir(p, 0700);
    snprintf(p, sizeof p, "%s/fs/a/b", dir), mkdir(p, 0700);
    assert_int_equal(quota(), 0);                      /* no /proc/self/cgroup */
    put("cgroup", "12:cpu,cpuacct:/x\n");              /* cgroup v1 only */
    assert_int_equal(quota(), 0);
    put("cgroup", "0::/a/b\n");
    assert_int_equal(quota(), 0);                      /* no cpu.max anywhere */
    put("fs/a/b/cpu.max", "max 100000\n");
    assert_int_equal(quota(), 0);                      /* no limit */
    put("fs/a/b/cpu.max", "150000 100000\n");
    assert_int_equal(quota(), 2);                      /* 1.5 CPUs: rounded up */
    put("fs/a/b/cpu.max", "50000 100000\n");
    assert_int_equal(quota(), 1);
    put("fs/a/b/cpu.max", "400000 100000\n");
    put("fs/a/cpu.max", "300000 100000\n");
    assert_int_equal(quota(), 3);                      /* the parent's is smaller */
    put("fs/a/b/cpu.max", "garbage\n");
    assert_int_equal(quota(), 3);                      /* unreadable: ignored */
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

/* The affinity mask (what taskset sets) bounds the default reactors. */
static void test_affinity(void **s)
{
    (void)s;
    cpu_set_t old, one;
    assert_int_equal(sched_getaffinity(0, sizeof old, &old), 0);
    int first = 0;
    while (!CPU_ISSET(first, &old))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(sched_setaffinity(0, sizeof one, &one), 0);
    assert_int_equal(sl_cpus_usable(), 1);
    sl_runtime *rt;
    assert_int_equal(sl_runtime_new(&rt, NULL), 0);
    assert_int_equal(sl_runtime_threads(rt), 1);
    assert_int_equal(sl_runtime_free(rt), 0);
    assert_int_equal(sched_setaffinity(0, sizeof old, &old), 0);
    int n = sl_cpus_usable();
    assert_true(n >= 1 && n <= CPU_COUNT(&old));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quota_from_cpu_max),
        cmocka_unit_test(test_affinity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
