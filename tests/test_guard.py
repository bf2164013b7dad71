"""The plaintext SMTP guard against careless C clients (tests/clients/plainguard.c).

Each STYLE of the client writes SMTP before TLS in its own way (one byte per
write, writev or sendmsg with the verb split, stdio, a pipelined STARTTLS, the
implicit-TLS port, a forked child, threads). With the shim every attempt to send
AUTH/MAIL in plaintext is refused before it leaves: the server records neither
credentials nor a transaction, only the EHLO before. Without the shim the same
client hands both over in plaintext (the baseline: the test can fail). Non-SMTP
descriptors (a reused socket number, socketpairs, pipes) are never touched, and
audit mode, `require_tls = no` and ports outside the policy let the dialogue
through.
"""
import base64
import re
import shutil
import socket

import pytest

from lib import sanitize

from lib.constants import FROM, PASSWORD, TO, USER
from lib.runner import CLIENTS, describe

CLIENT = CLIENTS / "plainguard"
HOST = "localhost"   # a name, as a mailer would be configured

# The client's exit codes (see the head of plainguard.c).
DONE, ERROR, TLS_FAILED, REFUSED = 0, 1, 2, 3

BODY = b"Subject: plainguard\r\n\r\nhello\r\n"           # the message it sends
FAKE_SMTP = b"MAIL FROM:<x@y>\r\nAUTH PLAIN secret\r\n"  # what fd_reuse writes to files
AUTH_B64 = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
REUSES = ("close", "dup2", "fclose", "fclose_early")
THREADS = 16
LOCAL_TRIPS = 3      # local round trips per thread
# What the server parsed before the client tried AUTH (or MAIL): nothing secret.
ONLY_EHLO = [("EHLO", False)]

DIALOGUE = ("byte_at_a_time", "writev_split", "sendmsg", "fdopen_fprintf")
# (style, ARG): "noauth" skips AUTH, so MAIL is the first command to refuse.
LEAKY = ([(s, a) for s in DIALOGUE for a in (None, "noauth")] +
         [("fork_child", None), ("fdopen_early", None)])

CASES = [pytest.param(c, id=f"{c[0]}-{c[1]}" if c[1] else c[0]) for c in LEAKY]


@pytest.fixture
def plainguard(run):
    """plainguard(style, server, env, arg=None, wrap=()) -> CompletedProcess."""
    if not CLIENT.exists():
        pytest.fail(f"{CLIENT} is missing: run `make clients`", pytrace=False)

    def _run(style, server, env, arg=None, wrap=()):
        cmd = [*wrap, CLIENT, style, HOST, server.port] + ([arg] if arg is not None else [])
        # the client bounds itself (alarm 30 s): give it time to say why
        return run(cmd, env, timeout=40)
    return _run


def report(res, server, env=None):
    server.wait_idle(5.0)
    text = describe(res) + f"\n--- server sessions\n{server.sessions!r}"
    if env is not None and hasattr(env, "log"):
        text += f"\n--- shim log\n{env.log()}"
    return text


def assert_refused(res, server, env, commands=ONLY_EHLO):
    """The client saw its write refused; the server got nothing secret, and each
    session parsed exactly `commands`. The log says why without the secret."""
    why = report(res, server, env)
    assert res.returncode == REFUSED, why
    assert "write refused: Permission denied" in res.stdout, why
    assert server.credentials() == [], why
    assert server.transactions() == [], why
    assert server.messages() == [], why
    assert server.sessions and all(s.commands == commands for s in server.sessions), why
    log = env.log()
    assert PASSWORD not in log and AUTH_B64.decode() not in log, why


def assert_plain_delivery(res, server, auth=True):
    """The whole dialogue went through in plaintext: credentials and message."""
    why = report(res, server)
    assert res.returncode == DONE, why
    assert server.credentials() == ([(USER, PASSWORD, False)] if auth else []), why
    (session,) = server.transactions()
    assert not session.tls and session.mail_from == FROM and session.rcpt_to == [TO], why
    assert server.messages() == [BODY], why


def shim_for(shim, server, **kw):
    return shim([server.port], **kw)


# ---- the dialogue written in careless ways ----------------------------------------

@pytest.mark.parametrize("case", CASES)
def test_plaintext_refused(case, smtp_server, shim, plainguard):
    """With the shim: the first AUTH (or MAIL) write fails with EACCES, the server
    parsed only the EHLO. byte_at_a_time gets the letters of the verb out (a verb
    is known at the following space); the line never completes."""
    style, arg = case
    server = smtp_server()
    env = shim_for(shim, server)
    assert_refused(plainguard(style, server, env, arg), server, env)


@pytest.mark.parametrize("case", CASES)
def test_plaintext_baseline_leaks(case, smtp_server, baseline, plainguard):
    """Without the shim the same client hands credentials and message over in
    plaintext."""
    style, arg = case
    server = smtp_server()
    res = plainguard(style, server, baseline(), arg)
    assert_plain_delivery(res, server, auth=arg != "noauth")


@pytest.mark.parametrize("guarded", [True, False], ids=["shim", "baseline"])
def test_pipelined_starttls(guarded, smtp_server, shim, baseline, plainguard):
    """"STARTTLS\\r\\nAUTH PLAIN ...\\r\\n" in one write: with the shim the whole write
    is refused (not even STARTTLS leaves); without it the AUTH line reaches the
    server in plaintext, pipelined after STARTTLS."""
    server = smtp_server()
    env = shim_for(shim, server) if guarded else baseline()
    res = plainguard("pipelined_starttls", server, env)
    if guarded:
        assert_refused(res, server, env)
        assert all(s.plaintext_after_starttls == b"" for s in server.sessions)
    else:
        why = report(res, server)
        assert res.returncode == DONE, why
        (session,) = server.sessions
        assert ("STARTTLS", False) in session.commands, why
        assert b"AUTH PLAIN " + AUTH_B64 in session.plaintext_after_starttls, why


# The server's handshake error when the connection ended before any byte came.
EOF_ERRORS = ("SSLZeroReturnError", "SSLEOFError")


@pytest.mark.parametrize("guarded", [True, False], ids=["shim", "baseline"])
def test_implicit_port_plaintext(guarded, smtp_server, shim, baseline, plainguard):
    """"EHLO x" in plaintext to an implicit-TLS port: with the shim the write fails and
    the server's handshake sees end of file, no byte; without it the server's
    handshake reads the plaintext (a protocol error, not end of file)."""
    server = smtp_server(mode="implicit")
    env = shim([server.port], implicit=[server.port]) if guarded else baseline()
    res = plainguard("implicit_plain", server, env)
    why = report(res, server, env if guarded else None)
    (session,) = server.sessions
    assert session.commands == [] and not session.tls and session.tls_error, why
    if guarded:
        assert_refused(res, server, env, commands=[])
        assert session.tls_error.startswith(EOF_ERRORS), why
    else:
        assert res.returncode == DONE, why
        assert not session.tls_error.startswith(EOF_ERRORS), why


# ---- descriptors that are not SMTP sockets -----------------------------------------

@pytest.mark.parametrize("guarded", [True, False], ids=["shim", "baseline"])
def test_fd_reuse_untouched(guarded, smtp_server, shim, baseline, plainguard, tmp_path):
    """An SMTP socket's number reused by a regular file (after close, under dup2,
    after fclose of an fdopen stream made after or before connect): SMTP-looking
    lines written to it arrive byte for byte, with or without the shim."""
    server = smtp_server()
    env = shim_for(shim, server) if guarded else baseline()
    prefix = tmp_path / "reused"
    res = plainguard("fd_reuse", server, env, str(prefix))
    why = report(res, server, env if guarded else None)
    assert res.returncode == DONE, why
    for variant in REUSES:
        assert (tmp_path / f"reused.{variant}").read_bytes() == FAKE_SMTP, (variant, why)
    server.wait_sessions(len(REUSES))
    assert len(server.sessions) == len(REUSES), why
    assert all(s.commands == [] for s in server.sessions), why


def thread_counts(stdout):
    m = re.search(r"smtp refused (\d+), smtp through (\d+), smtp errors (\d+); "
                  r"local round trips (\d+)/(\d+)", stdout)
    assert m, stdout
    return dict(zip(("refused", "through", "errors", "local", "trips"), map(int, m.groups())))


@pytest.mark.parametrize("guarded", [True, False], ids=["shim", "baseline"])
def test_threads(guarded, smtp_server, shim, baseline, plainguard):
    """THREADS threads at once, each an AUTH attempt on its own SMTP socket and SMTP-
    looking lines over its own socketpairs and pipe. With the shim every AUTH is
    refused; with or without it every local byte comes back unchanged."""
    server = smtp_server()
    env = shim_for(shim, server) if guarded else baseline()
    res = plainguard("threads", server, env, str(THREADS))
    why = report(res, server, env if guarded else None)
    counts = thread_counts(res.stdout)
    assert counts["local"] == counts["trips"] == LOCAL_TRIPS * THREADS, why
    assert len(server.sessions) == THREADS, why
    if guarded:
        assert res.returncode == DONE and counts["refused"] == THREADS, why
        assert server.credentials() == [], why
        assert all(s.commands == ONLY_EHLO for s in server.sessions), why
    else:
        assert res.returncode == ERROR and counts["through"] == THREADS, why
        assert server.credentials() == [(USER, PASSWORD, False)] * THREADS, why


# ---- what the guard lets through ------------------------------------------------

@pytest.mark.parametrize("mode,extra", [("audit", ""), ("enforce", "require_tls = no")],
                         ids=["audit", "require_tls_no"])
@pytest.mark.parametrize("style", ["byte_at_a_time", "fdopen_fprintf"])
def test_let_through(style, mode, extra, smtp_server, shim, plainguard):
    """audit mode (it only logs) and require_tls = no let the plaintext dialogue
    through: the server gets the credentials and the message."""
    server = smtp_server()
    env = shim_for(shim, server, mode=mode, extra=extra)
    assert_plain_delivery(plainguard(style, server, env), server)
    log = env.log()
    assert PASSWORD not in log and AUTH_B64.decode() not in log, log
    if mode == "audit":
        assert "AUTH" in log, log   # audit says what it would have refused


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("style", DIALOGUE)
def test_port_outside_policy(style, smtp_server, shim, plainguard):
    """A plaintext-only SMTP server on a port the policy does not name stays usable:
    the whole plaintext dialogue delivers under the shim."""
    server = smtp_server(mode="plain")
    env = shim([free_port()])
    assert_plain_delivery(plainguard(style, server, env), server)


@pytest.mark.parametrize("cert", ["good", "selfsigned"])
@pytest.mark.parametrize("guarded", [True, False], ids=["shim", "baseline"])
def test_starttls_then_tls(guarded, cert, smtp_server, shim, baseline, plainguard):
    """The correct flow (STARTTLS, handshake, then AUTH over TLS) delivers to the good
    server with or without the shim. The client verifies nothing (VERIFY_NONE): alone
    it also delivers to a self-signed server; the shim verifies against the policy
    CA and refuses the handshake (exit 2) before AUTH."""
    server = smtp_server(cert=cert)
    env = shim_for(shim, server) if guarded else baseline()
    res = plainguard("starttls_then_tls", server, env)
    why = report(res, server, env if guarded else None)
    if guarded and cert == "selfsigned":
        assert res.returncode == TLS_FAILED, why
        assert server.credentials() == [] and server.transactions() == [], why
        return
    assert res.returncode == DONE and "delivered over TLS" in res.stdout, why
    assert server.credentials() == [(USER, PASSWORD, True)], why
    (session,) = server.transactions()
    assert session.tls and session.commands[:2] == [("EHLO", False), ("STARTTLS", False)], why
    assert server.messages() == [BODY], why


# ---- under valgrind ----------------------------------------------------------------

VALGRIND = shutil.which("valgrind")


@pytest.mark.skipif(VALGRIND is None, reason="valgrind is not installed")
@pytest.mark.skipif(sanitize.ENABLED, reason="valgrind cannot run ASan-built programs")
@pytest.mark.parametrize("style,expect", [("byte_at_a_time", REFUSED),
                                          ("fdopen_fprintf", REFUSED),
                                          ("threads", DONE)])
def test_valgrind(style, expect, smtp_server, shim, plainguard):
    """Under valgrind (memcheck, the shim preloaded through the environment) the
    guard still refuses, and valgrind finds no error (exit code 1 otherwise)."""
    server = smtp_server()
    env = shim_for(shim, server)
    wrap = (VALGRIND, "--error-exitcode=1", "-q", "--leak-check=full")
    res = plainguard(style, server, env, wrap=wrap)
    why = report(res, server, env)
    assert res.returncode == expect, why
    assert "==" not in res.stderr, why   # valgrind's own reports
    assert server.credentials() == [] and server.transactions() == [], why
