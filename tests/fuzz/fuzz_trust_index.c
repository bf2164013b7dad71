/* The trust-store index (shim/trust_index.c, shim/name_key.c) on any text:
 * a bundle is root's, but the scan must never read out of bounds whatever
 * it holds. Properties: every indexed certificate decodes within its
 * lines, is found again by its subject's name key, and the DER keys of the
 * input itself never crash sg_cert_name_keys. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "name_key.h"
#include "trust_index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t issuer, subject, key;
    size_t total;
    sg_cert_name_keys(data, size, &issuer, &subject, &total);
    sg_name_key(data, size, &key);
    char *pem = malloc(size + 1);
    if (!pem)
        return 0;
    memcpy(pem, data, size);
    struct sg_trust_index *x = sg_trust_index_from_text(pem, size);
    if (!x)
        return 0;
    int n = sg_trust_index_count(x);
    int picked[8];
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        unsigned char *der = sg_trust_index_der_alloc(x, i, &len);
        if (der && sg_cert_name_keys(der, len, &issuer, &subject, &total) == 0) {
            int j = -1, found = 0;
            while ((j = sg_trust_index_find_key(x, subject, j)) >= 0)
                found |= j == i;
            if (!found)
                abort(); /* an indexed certificate must be found by its subject */
            const unsigned char *certs[1] = {der};
            sg_trust_index_select(x, certs, &len, 1, picked, NULL, 8);
        }
        free(der);
    }
    sg_trust_index_free(x);
    return 0;
}
