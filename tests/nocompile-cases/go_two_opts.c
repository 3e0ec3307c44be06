/* sl_go given an extra argument (its options are one pointer, or NULL).
 * expect: exactly one argument */
#include <sluice/sluice.h>

static int step(sl_task *t, void *st) { (void)t; (void)st; return 0; }

int use(sl_ctx *ctx, int *st);
int use(sl_ctx *ctx, int *st)
{
    sl_task *t = NULL;
#ifdef SL_WRONG
    return sl_go(ctx, step, st, &t, NULL, NULL);
#else
    return sl_go(ctx, step, st, &t, NULL);
#endif
}
