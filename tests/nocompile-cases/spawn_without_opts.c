/* sl_spawn without its options argument: was a syntax error deep inside
 * sl_task.h, now the options check names what is missing.
 * expect: exactly one argument */
#include <sluice/sluice.h>

static int step(sl_task *t, void *st) { (void)t; (void)st; return 0; }

int use(int *st);
int use(int *st)
{
    sl_task *t = NULL;
#ifdef SL_WRONG
    return sl_spawn(NULL, step, st, &t);
#else
    return sl_spawn(NULL, step, st, &t, &(sl_spawn_opts){ .name = "x", .joinable = true });
#endif
}
