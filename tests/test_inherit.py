"""An SMTP socket handed to another program across exec (a wrapper connects,
then execs the mailer with the descriptor) is still guarded in the new program."""
import base64

import pytest

from lib.constants import PASSWORD, USER
from lib.runner import describe

AUTH = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()

# Connects, says EHLO, then execs a shell that writes AUTH on the inherited fd 3.
WRAPPER = r"""
import os, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
f.readline()
s.sendall(b"EHLO wrapper\r\n")
while not f.readline().startswith(b"250 "):
    pass
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.execv("/bin/sh", ["sh", "-c", 'printf "AUTH PLAIN %s\r\n" "$0" >&3 && sleep 0.3', sys.argv[2]])
"""


@pytest.mark.parametrize("guarded", [True, False], ids=["shim", "baseline"])
def test_inherited_smtp_socket_is_guarded(guarded, smtp_server, shim, baseline, run, tmp_path):
    server = smtp_server()
    env = shim([server.port]) if guarded else baseline()
    res = run(["/usr/bin/python3", "-c", WRAPPER, server.port,
               AUTH], env)
    server.wait_sessions(1)
    if guarded:
        assert res.returncode != 0, describe(res)
        assert server.credentials() == [], describe(res)
        assert [v for v, _ in server.sessions[0].commands] == ["EHLO"], server.sessions
    else:
        assert res.returncode == 0, describe(res)
        assert server.credentials() == [(USER, PASSWORD, False)], describe(res)
