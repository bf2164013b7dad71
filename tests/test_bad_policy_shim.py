"""Malformed and hostile policy files loaded by the shim in a real mailer (curl).

The rows are tests/test_policy.py's table of bad files (the checker's test), each
loaded here by the preloaded shim instead: SMTP fails closed (the server gets not even
a connection), the process's stderr names the documented error ("FILE:LINE: problem"),
a non-SMTP TLS connection under the same policy is untouched, nothing crashes or hangs.

Where a row's content is a broken file, the test server's port is named first in it
(`smtp_ports`, or `implicit_tls_ports` when the row is about `smtp_ports` itself):
a broken file keeps the SMTP ports it named before the error, and every one of them
fails closed. Where the file cannot be read at all (too large, a directory, a FIFO, a
device, a symlink loop, a path under a file, no permission), nothing in it is known,
so the shim falls back to the default smtp_ports (25 465 587 2525) and only those fail
closed: the mailer then aims at 127.0.0.1:2525, which the shim refuses before any
packet leaves, and the test server's port is not involved.
"""
import os
import re
import shutil

import pytest

from lib.constants import FROM, PASSWORD, TO, USER
from lib.httpsserver import BODY, HTTPSServer
from lib.runner import LIB, describe
from test_policy import BAD, world_dir  # noqa: F401 (a fixture: the folder nobody can reach)

DEFAULT_SMTP_PORT = 2525   # in the built-in smtp_ports; refused before connecting
NOBODY = 65534


def curl_smtp(port, message_file):
    return ["curl", "--silent", "--show-error", "--insecure", "--ssl-reqd", "--max-time", "10",
            f"smtp://127.0.0.1:{port}", "--user", f"{USER}:{PASSWORD}", "--mail-from", FROM,
            "--mail-rcpt", TO, "--upload-file", str(message_file)]


def sets(content, key):
    return re.search(rb"^\s*" + key.encode() + rb"\s*=", content, re.M) is not None


def broken_file(content, port):
    """The row's content after lines naming the test port and logging to stderr;
    returns (text, how many lines came first)."""
    key = "implicit_tls_ports" if sets(content, "smtp_ports") else "smtp_ports"
    first = [f"{key} = {port}"] + ([] if sets(content, "log") else ["log = stderr"])
    return ("\n".join(first) + "\n").encode() + content, len(first)


@pytest.fixture
def https_server(certs):
    server = HTTPSServer(certs.selfsigned)
    yield server
    server.stop()


@pytest.fixture
def check(smtp_server, shim, run, message_file, https_server):
    """check(path, expected, port, server=None, wrap=(), message=message_file, lib=None):
    run curl under the shim (or lib instead) with the policy at path, to port; stderr
    must hold expected."""
    def go(path, expected, port, server=None, wrap=(), message=message_file, lib=None):
        env = shim([port])
        if lib is not None:
            env["LD_PRELOAD"] = env["LD_PRELOAD"].replace(str(LIB), str(lib))
        env["SMTPGUARD_POLICY"] = env.policy_path = str(path)
        res = run([*wrap, *curl_smtp(port, message)], env, timeout=30)
        why = describe(res)
        assert res.returncode > 0, why                    # an error, not a signal
        assert expected in res.stderr, why
        if server is not None:
            assert server.sessions == [], f"{why}\n{server.sessions}"
        control = run([*wrap, "curl", "--silent", "--show-error", "--insecure", "--max-time",
                       "10", https_server.url], env, timeout=30)
        assert (control.returncode, control.stdout) == (0, BODY.decode()), describe(control)
    return go


@pytest.mark.parametrize("content,line,message",
                         [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_bad_policy_fails_closed(content, line, message, check, smtp_server, tmp_path):
    if callable(content):   # the file as a whole cannot be read
        path = content(tmp_path)
        check(path, f"{path}: {message}", DEFAULT_SMTP_PORT)
        return
    server = smtp_server("good")
    text, first = broken_file(content, server.port)
    path = tmp_path / "bad.conf"   # not policy.conf: the shim fixture writes that one
    path.write_bytes(text)
    # Line numbers in the message ("first set at line 1") move down as well.
    message = re.sub(r"line (\d+)", lambda m: f"line {int(m[1]) + first}", message)
    check(path, f"{path}:{line + first}: {message}", server.port, server=server)


def test_unreadable_policy_fails_closed(check, world_dir, message_file):
    """chmod 000 does not stop root: curl runs as nobody (setpriv), as in test_policy."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run curl as another user")
    path = world_dir / "policy.conf"
    path.write_text("mode = enforce\n")
    path.chmod(0)
    message = world_dir / "message.eml"
    shutil.copy(message_file, message)
    message.chmod(0o644)
    nobody = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    # A copy of the library nobody can map: the checkout may sit in a 0700 directory.
    lib = world_dir / LIB.name
    shutil.copy2(LIB, lib)
    lib.chmod(0o644)
    check(path, f"{path}: cannot open: Permission denied", DEFAULT_SMTP_PORT, wrap=nobody,
          message=message, lib=lib)
