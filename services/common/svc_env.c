/* svc_env.c: flags from SLUICE_ variables; see svc_env.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "svc_env.h"

extern char **environ;

#define MAX_ENV_FLAGS 64
#define FLAG_MAX 64

typedef struct env_flag {
    char flag[FLAG_MAX];   /* "--timeout-ms" */
    const char *value;     /* NULL: a flag without a value */
} env_flag;

static bool word_in(const char *v, const char *const *words)
{
    for (; *words; words++)
        if (!strcasecmp(v, *words))
            return true;
    return false;
}

/* Whether the parser rejected the flag itself (not its value). */
static bool unknown(const char *err, const char *flag)
{
    const char *u = strstr(err, "unknown option");
    return u && strstr(u, flag);
}

/* One variable NAME=VALUE (NAME after "SLUICE_"): 1 and *f filled if it is
 * a flag of the program, 0 if not, -EINVAL with err if its value is bad. */
static int one(const char *prog, const char *name, size_t nlen, const char *value, svc_env_check check,
               void *arg, env_flag *f, char *err, size_t errlen)
{
    static const char *const yes[] = { "1", "true", "yes", "on", NULL };
    static const char *const no[] = { "0", "false", "no", "off", "", NULL };
    if (!nlen || nlen + 3 > FLAG_MAX)
        return 0;
    f->flag[0] = f->flag[1] = '-';
    for (size_t i = 0; i < nlen; i++) {
        char c = name[i];
        if (!isupper((unsigned char)c) && !isdigit((unsigned char)c) && c != '_')
            return 0;   /* SLUICE_x: not ours */
        f->flag[2 + i] = c == '_' ? '-' : (char)tolower((unsigned char)c);
    }
    f->flag[2 + nlen] = '\0';
    char why[256];
    char *a1[] = { (char *)prog, f->flag, NULL };
    if (check(2, a1, why, sizeof why, arg) == 0) {   /* a flag without a value */
        if (word_in(value, yes)) {
            f->value = NULL;
            return 1;
        }
        if (word_in(value, no))
            return 0;
        snprintf(err, errlen, "%s: SLUICE_%.*s='%s': %s takes no value: say 1/true/yes/on or 0/false/no/off",
                 prog, (int)nlen, name, value, f->flag);
        return -EINVAL;
    }
    char *a2[] = { (char *)prog, f->flag, (char *)value, NULL };
    if (check(3, a2, why, sizeof why, arg) == 0) {
        f->value = value;
        return 1;
    }
    if (unknown(why, f->flag))
        return 0;
    size_t pl = strlen(prog);
    const char *w = !strncmp(why, prog, pl) && !strncmp(why + pl, ": ", 2) ? why + pl + 2 : why;
    snprintf(err, errlen, "%s: SLUICE_%.*s='%s': %s", prog, (int)nlen, name, value, w);
    return -EINVAL;
}

int svc_env_argv(const char *prog, int argc, char **argv, char **env, svc_env_check check, void *arg,
                 char ***out, int *outc, char *err, size_t errlen)
{
    env_flag flags[MAX_ENV_FLAGS];
    int n = 0;
    for (char **e = env ? env : environ; e && *e && n < MAX_ENV_FLAGS; e++) {
        if (strncmp(*e, "SLUICE_", 7))
            continue;
        const char *eq = strchr(*e, '=');
        if (!eq)
            continue;
        int rc = one(prog, *e + 7, (size_t)(eq - *e - 7), eq + 1, check, arg, &flags[n], err, errlen);
        if (rc < 0)
            return rc;
        n += rc;
    }
    /* one block: the pointers, then the flags' names */
    size_t count = (size_t)argc + 2 * (size_t)n + 1;
    char **v = malloc(count * sizeof *v + (size_t)n * FLAG_MAX);
    if (!v)
        return -ENOMEM;
    char *names = (char *)(v + count);
    int k = 0;
    v[k++] = argc > 0 ? argv[0] : (char *)prog;
    for (int i = 0; i < n; i++) {
        memcpy(names + (size_t)i * FLAG_MAX, flags[i].flag, FLAG_MAX);
        v[k++] = names + (size_t)i * FLAG_MAX;
        if (flags[i].value)
            v[k++] = (char *)flags[i].value;
    }
    for (int i = 1; i < argc; i++)
        v[k++] = argv[i];
    v[k] = NULL;
    *out = v;
    *outc = k;
    return 0;
}
