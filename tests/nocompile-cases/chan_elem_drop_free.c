/* elem_drop gets the element in the ring: free does not fit its type (an
 * error by default in GCC >= 14 and clang >= 16; a warning before, which
 * the flag below makes an error here; sl_chan_new refuses a cast free).
 * flags: -Werror=incompatible-pointer-types
 * expect: incompatible */
#include <stdlib.h>
#include <sluice/sluice.h>

static void drop(sl_chan *ch, void *elem) { (void)ch; free(*(char **)elem); }

int use(sl_chan **ch);
int use(sl_chan **ch)
{
#ifdef SL_WRONG
    return sl_chan_new(ch, sizeof(char *), 4, &(sl_chan_opts){ .elem_drop = free });
#else
    return sl_chan_new(ch, sizeof(char *), 4, &(sl_chan_opts){ .elem_drop = drop });
#endif
}
