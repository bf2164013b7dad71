"""What an SMTP connection's ClientHello offers under the shim (shim/ossl_ciphers.c),
recorded by a server that takes the ClientHello after STARTTLS from the careless client
(OpenSSL 3, and OpenSSL 1.1 when `make legacy` built it):

- The program's own TLS 1.2 ciphers and TLS 1.3 suites that the policy allows, in the
  program's order: the program's list (what it offers without the shim) filtered by the
  policy, nothing added, nothing reordered.
- A part (TLS 1.2, TLS 1.3) of which the policy allows none of the program's gets the
  policy's list. The default TLS 1.2 rule ("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL") is then
  applied spelled as the cipher names it selects, which OpenSSL parses ~26,000
  instructions faster (issue 15): it must offer exactly what the rule offers. A program
  whose only TLS 1.2 cipher is AES128-SHA is recorded under the default policy and under
  the same rule written with a trailing separator (which the shim applies as written),
  and the lists are compared; a third policy with another rule shows that the recorded
  list is the policy's."""
import socket
import struct
import threading

import pytest

from lib.runner import CLIENTS
from test_legacy import legacy  # noqa: F401 (a fixture: `make legacy` once)

CLIENT_3 = CLIENTS / "careless"
RULE = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"


def recv_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return data


def read_line(conn):
    line = b""
    while not line.endswith(b"\n"):
        c = conn.recv(1)
        if not c:
            raise EOFError("closed in a command line")
        line += c
    return line


def offered_suites(hello):
    """The cipher suites of a ClientHello record (one record, one message)."""
    assert hello[0] == 0x16 and hello[5] == 0x01, hello[:8].hex()
    body = hello[9:]
    pos = 2 + 32                       # client_version, random
    pos += 1 + body[pos]               # session id
    (n,) = struct.unpack(">H", body[pos:pos + 2])
    return [struct.unpack(">H", body[i:i + 2])[0] for i in range(pos + 2, pos + 2 + n, 2)]


class Recorder:
    """Speaks SMTP up to STARTTLS's 220, keeps the ClientHello, hangs up."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(30)
        self.port = self.sock.getsockname()[1]
        self.hellos = []

    def serve_one(self):
        conn, _ = self.sock.accept()
        with conn:
            conn.settimeout(20)
            conn.sendall(b"220 recorder ESMTP\r\n")
            read_line(conn)                                   # EHLO
            conn.sendall(b"250-recorder\r\n250 STARTTLS\r\n")
            assert read_line(conn).upper().startswith(b"STARTTLS")
            conn.sendall(b"220 go ahead\r\n")
            head = recv_exactly(conn, 5)
            self.hellos.append(head + recv_exactly(conn, struct.unpack(">H", head[3:5])[0]))

    def suites_of(self, client, env, run, message_file):
        t = threading.Thread(target=self.serve_one, daemon=True)
        t.start()
        run([client, "good", "localhost", self.port, "starttls", message_file], env, timeout=40)
        t.join(35)
        assert not t.is_alive() and self.hellos, "no ClientHello recorded"
        return offered_suites(self.hellos.pop())


OPENSSL = [pytest.param("3", id="openssl3"), pytest.param("1.1", id="openssl11")]


def client_for(openssl, request):
    client = CLIENT_3 if openssl == "3" else request.getfixturevalue("legacy") / "careless11"
    assert client.exists(), f"{client} is not built: run `make clients legacy`"
    return client


def recorder_suites(rec, client, env, run, message_file, certs, **own):
    env = dict(env, SG_CA_FILE=str(certs.ca), **own)
    return rec.suites_of(client, env, run, message_file)


@pytest.mark.parametrize("openssl", OPENSSL)
def test_default_rule_offers_the_same_suites_as_names(openssl, request, shim, run, certs,
                                                      message_file):
    client = client_for(openssl, request)
    weak = {"SG_CIPHERS": "AES128-SHA"}   # no TLS 1.2 cipher the policy allows
    rec = Recorder()
    with rec.sock:
        def suites(extra):
            return recorder_suites(rec, client, shim([rec.port], extra=extra), run,
                                   message_file, certs, **weak)

        by_names = suites("")                           # the default: spelled as names
        by_rule = suites(f"ciphers = {RULE}:")          # the rule, applied as written
        other = suites("ciphers = ECDHE+AESGCM")        # another rule: another list
    assert by_names == by_rule, (by_names, by_rule)
    # The policy's list was recorded: forward-secret AEAD suites, ECDSA and RSA,
    # with ChaCha20, not the program's AES128-SHA; the narrower rule drops ChaCha20.
    for suite in (0xC02C, 0xC030, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8):
        assert suite in by_names, hex(suite)
    assert 0x002F not in by_names
    assert 0xCCA9 not in other and 0xC02C in other


# The program's lists: weak and allowed ciphers mixed, in an order that is not the
# policy's; the policy allows two TLS 1.3 suites, in the other order.
OWN = {"SG_CIPHERS": "AES128-SHA:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-SHA384:"
                     "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384",
       "SG_CIPHERSUITES": "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:"
                          "TLS_AES_128_GCM_SHA256"}
SUITES = "ciphersuites = TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384"
ALLOWED = {0x1301, 0x1302,                                  # the policy's two suites
           0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA8, 0xCCA9,  # the default rule's ciphers
           0x00FF}                                          # the renegotiation SCSV


@pytest.mark.parametrize("openssl", OPENSSL)
def test_program_list_filtered_in_program_order(openssl, request, shim, baseline, run, certs,
                                                message_file):
    client = client_for(openssl, request)
    rec = Recorder()
    with rec.sock:
        alone = recorder_suites(rec, client, baseline(), run, message_file, certs, **OWN)
        shimmed = recorder_suites(rec, client, shim([rec.port], extra=SUITES), run,
                                  message_file, certs, **OWN)
        # No TLS 1.3 suite of the program's is allowed: that part is the policy's.
        own13 = dict(OWN, SG_CIPHERSUITES="TLS_CHACHA20_POLY1305_SHA256")
        alone13 = recorder_suites(rec, client, baseline(), run, message_file, certs, **own13)
        shimmed13 = recorder_suites(rec, client, shim([rec.port], extra=SUITES), run,
                                    message_file, certs, **own13)
    assert alone[:5] == [0x1302, 0x1303, 0x1301, 0x002F, 0xCCA8], [hex(s) for s in alone]
    assert shimmed == [s for s in alone if s in ALLOWED], ([hex(s) for s in alone],
                                                          [hex(s) for s in shimmed])
    assert shimmed[:5] == [0x1302, 0x1301, 0xCCA8, 0xC02F, 0xC02C], [hex(s) for s in shimmed]
    assert alone13[0] == 0x1303 and 0x1301 not in alone13
    assert shimmed13 == [0x1301, 0x1302] + shimmed[2:], [hex(s) for s in shimmed13]
