/* mixed11: one process holding OpenSSL 1.1 and OpenSSL 3.
 *
 *   mixed11 MODULE STYLE HOST PORT11 PORT3 starttls|implicit [MESSAGE_FILE]
 *
 * Linked to OpenSSL 1.1, it dlopen()s MODULE (mod3.so, linked to OpenSSL 3,
 * loaded RTLD_LOCAL as a plug-in would be), then runs one careless session
 * through OpenSSL 1.1 to PORT11 and one through OpenSSL 3 to PORT3. Prints
 * "mixed: openssl11 STATUS" and "mixed: openssl3 STATUS" (each the careless
 * client's exit status) and exits 0 only when both delivered. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int careless_session(int argc, char **argv);

static int session(const char *name, int (*run)(int, char **), int argc, char **argv,
                   const char *port)
{
    char *args[6];
    memcpy(args, argv, sizeof(char *) * (size_t)argc);
    args[3] = (char *)port;
    fflush(stdout);
    int status = run(argc, args);
    printf("mixed: %s %d\n", name, status);
    fflush(stdout);
    return status;
}

int main(int argc, char **argv)
{
    if (argc < 7 || argc > 8) {
        fprintf(stderr, "usage: mixed11 MODULE STYLE HOST PORT11 PORT3 MODE [MESSAGE_FILE]\n");
        return 1;
    }
    /* careless argv: careless STYLE HOST PORT MODE [FILE] */
    char *args[6] = {"careless", argv[2], argv[3], NULL, argv[6], argc == 8 ? argv[7] : NULL};
    int n = argc == 8 ? 6 : 5;
    void *mod = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    int (*run3)(int, char **) = mod ? (int (*)(int, char **))dlsym(mod, "careless_session") : NULL;
    if (!run3) {
        fprintf(stderr, "mixed: %s: %s\n", argv[1], dlerror());
        return 1;
    }
    int s11 = session("openssl11", careless_session, n, args, argv[4]);
    int s3 = session("openssl3", run3, n, args, argv[5]);
    return s11 == 0 && s3 == 0 ? 0 : 2;
}
