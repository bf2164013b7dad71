/* libnoisy.so: loads fine and breaks nothing, but writes to stderr in every program it
 * is preloaded into (a banner). `smtpguard enable` must refuse it: with the library,
 * programs must print exactly what they print without it. */
#include <unistd.h>

__attribute__((constructor)) static void banner(void)
{
    static const char msg[] = "libnoisy: loaded\n";
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0)
        _exit(1);
}
