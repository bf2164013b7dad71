/* Included first in every file of the library (the Makefile's -include).
 * These libc functions are bound by their first version, GLIBC_2.2.5, which
 * glibc keeps for ever and which names the very same code as the newer
 * default (GLIBC_2.34 since dlsym and pthread_once moved into libc, 2.3.2
 * for __register_atfork behind pthread_atfork): every glibc version a
 * library needs costs a check against libc's list at every exec, about 450
 * instructions, SMTP or not (issue 15; tests/test_build.py keeps the list). */
#ifndef SG_LIBC_COMPAT_H
#define SG_LIBC_COMPAT_H
#if defined(__linux__) && defined(__x86_64__) && !defined(SG_NO_COMPAT)
__asm__(".symver dlsym,dlsym@GLIBC_2.2.5");
__asm__(".symver dlopen,dlopen@GLIBC_2.2.5");
__asm__(".symver dladdr,dladdr@GLIBC_2.2.5");
__asm__(".symver dlvsym,dlvsym@GLIBC_2.2.5");
__asm__(".symver pthread_once,pthread_once@GLIBC_2.2.5");
/* glibc's own pthread_atfork of that version registers the handlers for
 * libc, not for this library: they are never removed, and the library is
 * never unmapped (-z nodelete) either. */
__asm__(".symver pthread_atfork,pthread_atfork@GLIBC_2.2.5");
#endif
#endif
