/* Names and classes of what the wire reader saw: versions and cipher suites
 * by their IANA numbers, with OpenSSL's names for the log. */
#include <stdio.h>

#include "wire.h"

static const struct {
    unsigned short id;
    unsigned char fs_aead;
    char name[30]; /* in place, not pointers: nothing to relocate at load */
} suites[] = {
    {0x1301, 1, "TLS_AES_128_GCM_SHA256"},
    {0x1302, 1, "TLS_AES_256_GCM_SHA384"},
    {0x1303, 1, "TLS_CHACHA20_POLY1305_SHA256"},
    {0x1304, 1, "TLS_AES_128_CCM_SHA256"},
    {0x1305, 1, "TLS_AES_128_CCM_8_SHA256"},
    {0xC02B, 1, "ECDHE-ECDSA-AES128-GCM-SHA256"},
    {0xC02C, 1, "ECDHE-ECDSA-AES256-GCM-SHA384"},
    {0xC02F, 1, "ECDHE-RSA-AES128-GCM-SHA256"},
    {0xC030, 1, "ECDHE-RSA-AES256-GCM-SHA384"},
    {0xCCA8, 1, "ECDHE-RSA-CHACHA20-POLY1305"},
    {0xCCA9, 1, "ECDHE-ECDSA-CHACHA20-POLY1305"},
    {0xCCAA, 1, "DHE-RSA-CHACHA20-POLY1305"},
    {0x009E, 1, "DHE-RSA-AES128-GCM-SHA256"},
    {0x009F, 1, "DHE-RSA-AES256-GCM-SHA384"},
    {0xC0AC, 1, "ECDHE-ECDSA-AES128-CCM"},
    {0xC0AD, 1, "ECDHE-ECDSA-AES256-CCM"},
    {0xC09E, 1, "DHE-RSA-AES128-CCM"},
    {0xC09F, 1, "DHE-RSA-AES256-CCM"},
    {0x009C, 0, "AES128-GCM-SHA256"},
    {0x009D, 0, "AES256-GCM-SHA384"},
    {0x002F, 0, "AES128-SHA"},
    {0x0035, 0, "AES256-SHA"},
    {0x003C, 0, "AES128-SHA256"},
    {0x003D, 0, "AES256-SHA256"},
    {0x000A, 0, "DES-CBC3-SHA"},
    {0x0005, 0, "RC4-SHA"},
    {0xC009, 0, "ECDHE-ECDSA-AES128-SHA"},
    {0xC00A, 0, "ECDHE-ECDSA-AES256-SHA"},
    {0xC013, 0, "ECDHE-RSA-AES128-SHA"},
    {0xC014, 0, "ECDHE-RSA-AES256-SHA"},
    {0xC027, 0, "ECDHE-RSA-AES128-SHA256"},
    {0xC028, 0, "ECDHE-RSA-AES256-SHA384"},
    {0x0033, 0, "DHE-RSA-AES128-SHA"},
    {0x0039, 0, "DHE-RSA-AES256-SHA"},
};
#define NSUITES (sizeof suites / sizeof suites[0])

const char *sg_wire_version_name(int version)
{
    switch (version) {
    case 0x0304: return "TLSv1.3";
    case 0x0303: return "TLSv1.2";
    case 0x0302: return "TLSv1.1";
    case 0x0301: return "TLSv1";
    case 0x0300: return "SSLv3";
    default: return "unknown";
    }
}

const char *sg_wire_cipher_name(int cipher, char *buf, size_t len)
{
    for (size_t i = 0; i < NSUITES; i++)
        if (suites[i].id == cipher)
            return suites[i].name;
    snprintf(buf, len, "0x%04X", (unsigned)cipher & 0xffff);
    return buf;
}

int sg_wire_fs_aead(int cipher)
{
    for (size_t i = 0; i < NSUITES; i++)
        if (suites[i].id == cipher)
            return suites[i].fs_aead;
    return 0;
}
