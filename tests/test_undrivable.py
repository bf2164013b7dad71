"""An OpenSSL that lacks a function the policy needs is left to the wire reader,
as it always was (issue 15 made the binding lazy: the entry points and what tells
a session's socket are bound when the library is first seen, the rest at the first
session that may be SMTP, so a missing function is found only then).

The library: a copy of the system's libssl.so.3 whose SSL_CIPHER_get_kx_nid (which
the shim's verdict needs, the careless client never calls, and libssl does not call
through its PLT) is renamed in its dynamic string table. With it, careless's
handshake must run untouched by the OpenSSL backend, not inside it: the wire
verifies the TLS 1.2 server (a good chain is delivered, a self-signed one refused
before AUTH) and the log line says via=wire. The same client with the system's
libssl is judged by the backend (no via=wire)."""
import re
import shutil
from pathlib import Path

import pytest

from lib.runner import CLIENTS, describe

CLIENT = CLIENTS / "careless"
LIBSSL = Path("/usr/lib/x86_64-linux-gnu/libssl.so.3")
NAME, RENAMED = b"SSL_CIPHER_get_kx_nid\0", b"SSL_CIPHER_get_kx_nix\0"


@pytest.fixture
def lacking(tmp_path):
    """A directory with a libssl.so.3 that lacks SSL_CIPHER_get_kx_nid."""
    if not LIBSSL.exists():
        pytest.skip("no /usr/lib/x86_64-linux-gnu/libssl.so.3")
    data = LIBSSL.read_bytes()
    assert data.count(NAME) == 1 and RENAMED not in data
    d = tmp_path / "lacking"
    d.mkdir()
    (d / "libssl.so.3").write_bytes(data.replace(NAME, RENAMED))
    shutil.copymode(LIBSSL, d / "libssl.so.3")
    return d


def line_for(log, port):
    lines = [l for l in log.splitlines() if re.search(rf"\]:{port}\b", l)]
    assert len(lines) == 1, log
    return lines[0]


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
@pytest.mark.parametrize("cert,delivered", [("good", True), ("selfsigned", False)])
def test_library_lacking_a_function_is_judged_on_the_wire(cert, delivered, mode, lacking,
                                                           smtp_server, shim, certs, run,
                                                           message_file):
    server = smtp_server(cert, mode, "tls12")
    env = shim([server.port], implicit=[server.port] if mode == "implicit" else ())
    env["LD_LIBRARY_PATH"] = str(lacking)
    env["SG_CA_FILE"] = str(certs.ca)
    res = run([CLIENT, "verify_none", "localhost", server.port, mode, message_file],
              env, timeout=40)
    line = line_for(env.log(), server.port)
    assert "via=wire" in line, line
    if delivered:
        assert res.returncode == 0 and len(server.messages()) == 1, describe(res) + line
    else:
        assert res.returncode != 0, describe(res)
        assert server.credentials() == [] and server.messages() == [], server.sessions
        assert ": chain: " in line, line


def test_complete_library_is_judged_by_the_backend(smtp_server, shim, certs, run,
                                                   message_file):
    """The control: the system's libssl, the same server, no via=wire."""
    server = smtp_server("good", "starttls", "tls12")
    env = shim([server.port])
    res = run([CLIENT, "verify_none", "localhost", server.port, "starttls", message_file],
              env, timeout=40)
    assert res.returncode == 0 and len(server.messages()) == 1, describe(res)
    line = line_for(env.log(), server.port)
    assert "via=wire" not in line and ": accepted TLS to " in line, line
