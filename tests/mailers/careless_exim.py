#!/usr/bin/python3
"""Exim 4 as an SMTP client configured the careless way (issue 11).

    careless_exim.py EXIM PORT starttls MESSAGE_FILE

Like gnutls_exim.py (same private setup, same exit codes), but TLS is not required
(no hosts_require_tls), the default tls_tempfail_tryclear stays (after a failed TLS
attempt Exim reconnects and goes on in clear), AUTH is tried whatever the transport
(hosts_try_auth) and hosts_try_fastopen keeps its default: Exim on Linux connects with
TCP Fast Open (sendto with MSG_FASTOPEN), not connect().
"""
import sys

import gnutls_exim

gnutls_exim.CONFIG = gnutls_exim.CONFIG.replace(
    "  hosts_require_tls = *\n  hosts_require_auth = *\n", "  hosts_try_auth = *\n")
assert "hosts_require" not in gnutls_exim.CONFIG

if __name__ == "__main__":
    sys.exit(gnutls_exim.main())
