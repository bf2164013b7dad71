"""The shim applies the policy's default TLS 1.2 cipher rule
("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL") to an SMTP connection's SSL object
spelled as the cipher names it selects, which OpenSSL parses ~26,000
instructions faster (issue 15). The ClientHello must offer exactly what the rule
offers: a recording server takes the ClientHello after STARTTLS from the careless
client (OpenSSL 3, and OpenSSL 1.1 when `make legacy` built it) under the default
policy and under the same rule written with a trailing separator (which the shim
applies as written), and compares the cipher suite lists. A third policy with
another rule shows that the recorded list is the policy's."""
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


@pytest.mark.parametrize("openssl", ["3", "1.1"], ids=["openssl3", "openssl11"])
def test_default_rule_offers_the_same_suites_as_names(openssl, request, shim, run, certs,
                                                      message_file):
    client = CLIENT_3 if openssl == "3" else request.getfixturevalue("legacy") / "careless11"
    assert client.exists(), f"{client} is not built: run `make clients legacy`"
    rec = Recorder()
    with rec.sock:
        def suites(extra):
            env = shim([rec.port], extra=extra)
            env["SG_CA_FILE"] = str(certs.ca)
            return rec.suites_of(client, env, run, message_file)

        by_names = suites("")                           # the default: spelled as names
        by_rule = suites(f"ciphers = {RULE}:")          # the rule, applied as written
        other = suites("ciphers = ECDHE+AESGCM")        # another rule: another list
    assert by_names == by_rule, (by_names, by_rule)
    # The policy's list was recorded: forward-secret AEAD suites, ECDSA and RSA,
    # with ChaCha20; the narrower rule drops ChaCha20.
    for suite in (0xC02C, 0xC030, 0xC02B, 0xC02F, 0xCCA9, 0xCCA8):
        assert suite in by_names, hex(suite)
    assert 0xCCA9 not in other and 0xC02C in other
