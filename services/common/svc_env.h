/* svc_env.h: every flag of a program also from the environment (the
 * twelve-factor way: a container sets variables, not command lines).
 *
 * SLUICE_<FLAG>, the flag's name upper-cased with '-' as '_', stands for
 * --<flag>: SLUICE_THREADS=4 is --threads 4, SLUICE_TIMEOUT_MS=800 is
 * --timeout-ms 800. A flag without a value (--admin) is given by 1, true,
 * yes or on, and left out by 0, false, no, off or an empty value. A flag
 * on the command line wins over its variable: the variables' flags are
 * put first and the programs' parsers keep the last value of a flag.
 * SLUICE_ variables that name no flag of the program are ignored (the
 * library reads some itself: SLUICE_HOSTS, SLUICE_RESOLV_CONF).
 *
 * Pure but for getenv/environ: the program's parser is asked, one flag at
 * a time, through `check`, so a bad value is reported with the variable's
 * name. */
#ifndef SVC_ENV_H
#define SVC_ENV_H
#include <stdbool.h>
#include <stddef.h>

/* Parses argv (argv[0] the program, then the one flag and maybe its value)
 * into scratch state; returns 0, or < 0 with a message in err that
 * contains "unknown option" and the flag when there is no such flag. */
typedef int (*svc_env_check)(int argc, char **argv, char *err, size_t errlen, void *arg);

/* Builds into *out (argc in *outc) argv[0], the flags from SLUICE_
 * variables of `env` (NULL: environ), then argv[1..]. The result is one
 * allocation: free(*out). Returns 0, -ENOMEM, or -EINVAL with
 * "PROG: SLUICE_X=VALUE: why" in err (a value the flag does not take). */
int svc_env_argv(const char *prog, int argc, char **argv, char **env, svc_env_check check, void *arg,
                 char ***out, int *outc, char *err, size_t errlen);

#endif
