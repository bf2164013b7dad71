/* The roads client built with _FORTIFY_SOURCE=2, as distributions build their
 * programs: read() becomes __read_chk, dprintf() __dprintf_chk. */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#include "roads.c"
