/* The careless client (tests/clients/careless.c, unchanged) as a function that
 * returns its exit status instead of ending the process, so that one process
 * can run a session through each OpenSSL it holds (mixed.c). Built into the
 * 1.1-linked mixed11 and into mod3.so, linked to OpenSSL 3. */
#include <setjmp.h>
#include <stdlib.h>

static jmp_buf session_end;
static int session_status;

static _Noreturn void session_exit(int status)
{
    session_status = status;
    longjmp(session_end, 1);
}

#define exit session_exit
#define main careless_main
int careless_main(int argc, char **argv);
#include "../clients/careless.c"
#undef main
#undef exit

/* careless STYLE HOST PORT MODE [MESSAGE_FILE] as one call. */
__attribute__((visibility("default"))) int careless_session(int argc, char **argv)
{
    if (setjmp(session_end))
        return session_status;
    return careless_main(argc, argv);
}
