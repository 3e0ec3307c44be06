/* sl_chan_new with two arguments where the options go.
 * expect: exactly one argument */
#include <sluice/sluice.h>

int use(sl_chan **ch);
int use(sl_chan **ch)
{
    sl_chan_opts o = { .name = "c" };
#ifdef SL_WRONG
    return sl_chan_new(ch, sizeof(int), 4, &o, &o);
#else
    return sl_chan_new(ch, sizeof(int), 4, &o);
#endif
}
