/* Prints "same" when GnuTLS's default priority enables what NORMAL enables
 * (versions, key exchanges, ciphers, MACs, groups, signatures, in order) and
 * "differs" otherwise, then the system priority file GnuTLS would read. The
 * shim sets the policy's own string for a program that kept the default when
 * no such file exists (shim/gnutls_narrow.c); tests/test_gnutls_priority.py
 * checks that premise on the machine. */
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <string.h>

typedef int (*lister)(gnutls_priority_t, const unsigned int **);

static int same_list(gnutls_priority_t a, gnutls_priority_t b, lister f)
{
    const unsigned *la, *lb;
    int na = f(a, &la), nb = f(b, &lb);
    return na == nb && (na <= 0 || memcmp(la, lb, (size_t)na * sizeof *la) == 0);
}

int main(void)
{
    gnutls_priority_t def, normal;
    const char *err;
    if (gnutls_priority_init(&def, NULL, &err) < 0 ||
        gnutls_priority_init(&normal, "NORMAL", &err) < 0)
        return 2;
    lister lists[] = {gnutls_priority_protocol_list, gnutls_priority_kx_list,
                      gnutls_priority_cipher_list, gnutls_priority_mac_list,
                      gnutls_priority_group_list, gnutls_priority_sign_list};
    int same = 1;
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        same &= same_list(def, normal, lists[i]);
    printf("%s %s\n", same ? "same" : "differs", gnutls_get_system_config_file());
    return 0;
}
