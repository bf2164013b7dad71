/* A key for an X.509 Name that never tells two names apart that a TLS
 * library would take for the same, computed from DER without a TLS
 * library: it finds a trust anchor by subject without parsing every
 * certificate of a bundle. Equal keys do not prove equal names (the
 * library still compares them); different keys prove different names. */
#ifndef SG_NAME_KEY_H
#define SG_NAME_KEY_H

#include <stddef.h>
#include <stdint.h>

/* The key of the Name whose DER (the SEQUENCE, tag included) is der[0..len).
 * Returns 0 and sets *key, or -1 when it is not a well-formed Name. */
int sg_name_key(const unsigned char *der, size_t len, uint64_t *key);

/* Issuer and subject Name keys of a certificate from the start of its DER
 * (at least up to the end of the subject). Returns 0, -1 when malformed or
 * 1 when more bytes are needed; *total is the whole certificate's length. */
int sg_cert_name_keys(const unsigned char *der, size_t len, uint64_t *issuer,
                      uint64_t *subject, size_t *total);

#endif
