/* cpus.c: how many CPUs this process may use (sl_runtime.h). A container
 * sees every CPU of its host in sysconf(_SC_NPROCESSORS_ONLN); what it may
 * use is narrower: its affinity mask (taskset, cpusets) and its cgroup v2
 * CPU quota (docker --cpus, a Kubernetes CPU limit). One reactor per CPU
 * beyond those only adds threads that take turns. */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "internal.h"
#include "sl_runtime.h"

int sl__cpus_quota(const char *proc_cgroup, const char *root)
{
    /* cgroup v2: the line "0::/path" of /proc/self/cgroup */
    FILE *f = fopen(proc_cgroup, "r");
    if (!f)
        return 0;
    char line[4096], path[4096 + 64];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        if (!strncmp(line, "0::", 3)) {
            line[strcspn(line, "\n")] = '\0';
            found = true;
        }
    fclose(f);
    if (!found)
        return 0;
    /* the quota of this cgroup or of any cgroup above it: the smallest */
    int best = 0;
    char *cg = line + 3;
    for (;;) {
        snprintf(path, sizeof path, "%s%s/cpu.max", root, cg);
        if ((f = fopen(path, "r"))) {
            char quota[32];
            long long period = 0;
            if (fscanf(f, "%31s %lld", quota, &period) == 2 && strcmp(quota, "max") && period > 0) {
                long long q = atoll(quota);
                int n = q > 0 ? (int)((q + period - 1) / period) : 0;   /* rounded up */
                if (n > 0 && (!best || n < best))
                    best = n;
            }
            fclose(f);
        }
        char *slash = strrchr(cg, '/');
        if (!slash || (slash == cg && !cg[1]))
            break;
        if (slash == cg)
            cg[1] = '\0';   /* "/x" -> "/" */
        else
            *slash = '\0';
    }
    return best;
}

int sl_cpus_usable(void)
{
    int n = (int)sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        n = CPU_COUNT(&set);
    int q = sl__cpus_quota("/proc/self/cgroup", "/sys/fs/cgroup");
    if (q > 0 && q < n)
        n = q;
    return n < 1 ? 1 : n;
}
