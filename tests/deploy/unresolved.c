/* libunresolved.so: linked with -z now, it needs a symbol nobody defines, so the loader
 * kills every program it is preloaded into. `smtpguard enable` must refuse it. */
int smtpguard_test_no_such_symbol(void);
int smtpguard_test_unresolved(void);

int smtpguard_test_unresolved(void)
{
    return smtpguard_test_no_such_symbol();
}
