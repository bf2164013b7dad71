/* The process's identity, captured when the library loads.
 *
 * What can change later is copied in the constructor, before main runs: the
 * command name (prctl(PR_SET_NAME) rewrites it, and Perl's `$0 = ...` does so),
 * the file name execve was given (AT_EXECFN: the script for a "#!" script) and
 * the first operand of the command line (the script of `perl FILE`), because
 * argv memory is rewritten too. That is one prctl and two short copies: a
 * few hundred instructions per exec. What cannot change (the executable behind
 * /proc/self/exe) is read at the first use, from a log line or the policy load. */
#include <limits.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auxv.h"
#include "ident.h"
#include "policy.h"
#include "rawsys.h"

static char comm[17];
static const char *execfn;        /* what execve was given (AT_EXECFN, above environ) */
static char execfn_cwd[SG_PATH_MAX]; /* the working directory, when execfn is relative */
static char operand[SG_PATH_MAX]; /* argv's first operand, made absolute */
static char exe[PATH_MAX] SG_TABLE;
static char script[PATH_MAX] SG_TABLE;
static struct sg_ident ident = {comm, exe, script};
static pthread_once_t once = PTHREAD_ONCE_INIT;

/* Plain loops, not strlen/memcpy: each libc call's first use costs a lazy PLT
 * binding (~700 instructions), and this runs at every exec. */
static size_t length(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

/* src made absolute against the working directory at load. */
static void absolute(char *dst, const char *src)
{
    size_t n = 0, len;
    if (!src || !*src)
        return;
    if (src[0] != '/') {
        if (!getcwd(dst, SG_PATH_MAX - 2))
            return;
        n = length(dst);
        dst[n++] = '/';
    }
    len = length(src);
    if (n + len >= SG_PATH_MAX) {
        dst[0] = '\0';
        return;
    }
    for (size_t i = 0; i <= len; i++)
        dst[n + i] = src[i];
}

/* Options that take the program text instead of a file: no script then
 * (perl -e/-E and clusters like -we, python -c/-m, sh -c, ruby -e, node -e).
 * An option with a value glued on (-I/lib, --opt=x) is only skipped. */
static int inline_code(const char *opt)
{
    if (opt[1] == '-' || strpbrk(opt, "/=."))
        return 0;
    return strpbrk(opt + 1, "ceEm") != NULL;
}

static void capture_operand(int argc, char **argv)
{
    for (int i = 1; i < argc && argv[i]; i++) {
        if (argv[i][0] != '-') {
            absolute(operand, argv[i]);
            return;
        }
        if (inline_code(argv[i]) || !strcmp(argv[i], "--") || !argv[i][1])
            return; /* code on the command line, or the script on stdin ("-") */
    }
}

/* perl, perl5.36, python3.11, sh, bash, ...: trailing version digits ignored. */
static int is_interpreter(const char *path)
{
    /* Arrays, not pointers: no relocation per name at every exec. */
    static const char names[][8] = {"perl", "python", "ruby", "php", "sh", "bash",
                                    "dash", "zsh", "ksh", "mksh", "node", "nodejs",
                                    "lua", "tclsh", "wish", "awk", "gawk", ""};
    const char *base = path, *p = path;
    for (; *p; p++) /* one pass, no strlen: see length() */
        if (*p == '/')
            base = p + 1;
    size_t n = (size_t)(p - base);
    while (n && ((base[n - 1] >= '0' && base[n - 1] <= '9') || base[n - 1] == '.'))
        n--;
    for (int i = 0; names[i][0]; i++) {
        size_t k = 0;
        while (k < n && names[i][k] == base[k])
            k++;
        if (k == n && !names[i][k])
            return 1;
    }
    return 0;
}

/* AT_EXECFN: from the vector auxv.c found (getauxval's first call would cost
 * a lazy binding, ~800 instructions, at every exec). */
static const char *exec_file(void)
{
    unsigned long v;
    return sg_auxval(AT_EXECFN, &v) ? (const char *)v : NULL;
}

/* glibc passes argc, argv and envp to a library's constructors. */
__attribute__((constructor)) static void ident_capture(int argc, char **argv)
{
    if (sg_raw_get_name(comm) != 0) /* raw: no lazy binding at every exec */
        comm[0] = '\0';
    /* AT_EXECFN lies above the environment strings, beyond what a process title
     * rewrite (argv and environ) touches: keep the pointer; only a relative one
     * needs the working directory of now. */
    execfn = exec_file();
    if (execfn && execfn[0] != '/' && !getcwd(execfn_cwd, sizeof execfn_cwd))
        execfn = NULL;
    /* Only an interpreter's operand can be its script (and only then a relative
     * one costs a getcwd): `cat FILE` pays nothing. */
    if (argc > 1 && argv && is_interpreter(comm))
        capture_operand(argc, argv);
}

static int is_regular(const char *path)
{
    struct stat st;
    return path[0] && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static void resolve(void)
{
    ssize_t n = sg_sys_readlink("/proc/self/exe", exe, sizeof exe - 1); /* raw: no binding */
    exe[n > 0 ? n : 0] = '\0';
    if (!comm[0]) /* loaded without our constructor having run (dlopen from a constructor) */
        prctl(PR_GET_NAME, comm);
    /* Only an interpreter runs a script: any other program pays no realpath
     * (a readlink per path component) at its first log line. */
    if (!is_interpreter(exe))
        return;
    char real[PATH_MAX], given[PATH_MAX];
    if (execfn && execfn[0] != '/')
        snprintf(given, sizeof given, "%s/%s", execfn_cwd, execfn);
    else
        snprintf(given, sizeof given, "%s", execfn ? execfn : "");
    /* A "#!" script: execve was given the script, the kernel ran the interpreter. */
    if (given[0] && realpath(given, real) && strcmp(real, exe) != 0 && is_regular(real))
        snprintf(script, sizeof script, "%s", real);
    else if (is_regular(operand) && realpath(operand, real))
        snprintf(script, sizeof script, "%s", real);
}

const struct sg_ident *sg_ident(void)
{
    pthread_once(&once, resolve);
    return &ident;
}
