/* libearly.so: its constructor runs one careless implicit-TLS SMTP session (the careless
 * client's verify_none style, compiled into this library with main renamed) to
 * localhost:$EARLY_PORT. getaddrinfo, connect and SSL_connect therefore all run before
 * the program's main and, when libsmtpguard.so is preloaded, before the shim's own
 * constructor: the loader initialises the program's DT_NEEDED libraries first (the test
 * checks that order with LD_DEBUG=files). The shim must not depend on its constructor. */
#include <stdlib.h>

int careless_main(int argc, char **argv);
int early_status(void);

static int status = -1;

__attribute__((constructor)) static void early_session(void)
{
    char *port = getenv("EARLY_PORT");
    if (!port)
        return;
    char *argv[] = {"early", "verify_none", "localhost", port, "implicit", NULL};
    /* Returns 0 once the server accepted the message; failures exit (1, or 2 for TLS). */
    status = careless_main(5, argv);
}

int early_status(void)
{
    return status;
}
