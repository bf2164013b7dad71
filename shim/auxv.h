/* The kernel's auxiliary vector (AT_SECURE, AT_EXECFN), read without
 * getauxval: linking it would make every process check one more glibc
 * version at exec (GLIBC_2.16; libc_compat.h). */
#ifndef SG_AUXV_H
#define SG_AUXV_H

/* 1 and *value when the vector has type; 0 when it has not or cannot be read
 * (a caller asking AT_SECURE then acts as for a privileged program). */
int sg_auxval(unsigned long type, unsigned long *value);

#endif
