/* sl_spawn_on has no `out`: given sl_spawn's argument shape, the old macro
 * compiled `(&t, &opts)` as a comma expression and never set t.
 * expect: exactly one argument */
#include <sluice/sluice.h>

static int step(sl_task *t, void *st) { (void)t; (void)st; return 0; }

int use(sl_reactor *r, int *st);
int use(sl_reactor *r, int *st)
{
    sl_spawn_opts opts = { .name = "x" };
#ifdef SL_WRONG
    sl_task *t = NULL;
    return sl_spawn_on(r, step, st, &t, &opts);
#else
    return sl_spawn_on(r, step, st, &opts);
#endif
}
