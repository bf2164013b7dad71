"""What a process that sends one message pays the loader for the library (issue 15).

The library is linked with -z lazy (the Makefile says why): each function it
calls through its PLT is bound at its first call, in every process, for some
800 instructions and a cold symbol lookup. Its own files, log and identity
are read with raw system calls (shim/rawsys.h) and its own interposers are
called directly (REAL, hidden aliases), so the library never calls one of
its own exported names through its PLT: such a call would bind the library
to itself and then look up the real function as well. The loader's own
record of the bindings (LD_DEBUG=bindings) shows it, for a verified
STARTTLS message through OpenSSL and through GnuTLS.
"""
import re

import pytest

from lib import sanitize
from lib.constants import MESSAGE
from lib.runner import CLIENTS

SELF = re.compile(r"binding file (\S*libsmtpguard\.so) \[\d+\] to (\S*libsmtpguard\.so) "
                  r"\[\d+\]: normal symbol `([^']+)'")
ANY = re.compile(r"binding file \S*libsmtpguard\.so \[\d+\] to \S+ \[\d+\]: normal symbol `([^']+)'")


@pytest.mark.parametrize("client", ["careless", "careless_gnutls"])
def test_library_never_binds_to_itself(client, smtp_server, shim, run, certs, tmp_path):
    if sanitize.ENABLED:
        pytest.skip("the sanitizer runtimes interpose the same names")
    server = smtp_server()
    env = shim([server.port])
    env["SG_CA_FILE"] = str(certs.ca)
    env["LD_DEBUG"] = "bindings"
    env["LD_DEBUG_OUTPUT"] = str(tmp_path / "bindings")
    res = run([str(CLIENTS / client), "good", "localhost", str(server.port), "starttls"], env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert server.messages() == [MESSAGE]
    lines = "".join(p.read_text(errors="replace")
                    for p in tmp_path.glob("bindings*")).splitlines()
    names = [m.group(1) for m in map(ANY.search, lines) if m]
    assert "connect" in names, "no binding by the library recorded: LD_DEBUG not honoured?"
    own = sorted({m.group(3) for m in map(SELF.search, lines) if m})
    assert not own, f"the library calls its own interposers by name: {own}"
