/* The old hook: `.elem_free = free` got the address of the ring's slot and
 * freed it. It is gone; a channel of pointers says .ptr_free = free.
 * expect: elem_free */
#include <stdlib.h>
#include <sluice/sluice.h>

int use(sl_chan **ch);
int use(sl_chan **ch)
{
#ifdef SL_WRONG
    return sl_chan_new(ch, sizeof(char *), 4, &(sl_chan_opts){ .elem_free = free });
#else
    return sl_chan_new(ch, sizeof(char *), 4, &(sl_chan_opts){ .ptr_free = free });
#endif
}
