/* hello: built with -static for `smtpguard check` (a preload never runs in it), and with
 * a Go build-info section (-DFAKE_GO) as the marker a Go toolchain leaves. */
#include <stdio.h>

#ifdef FAKE_GO
/* What the Go linker writes at the start of .go.buildinfo. */
__attribute__((section(".go.buildinfo"), used))
static const char go_buildinfo[32] = "\xff Go buildinf:\x08\x02";
#endif

int main(void)
{
    puts("hello");
    return 0;
}
