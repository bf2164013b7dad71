"""TLS sessions without a descriptor are bound to their own socket (issue 11, item 4).

A memory-BIO OpenSSL session (Python asyncio's SSLObject, Node.js) or a GnuTLS session
with push/pull functions gives the TLS library no descriptor. The shim binds such a
session to the socket that carried its ClientHello, by the client random, whichever
thread moves the bytes: a handshake run on another thread than the socket I/O is
judged, and two sessions on one thread each get their own verdict.

Each client leaks the credentials and the message to the self-signed server without
the shim (the road is real), is refused with it with nothing received, and delivers
to the good server with it.
"""
import socket

import pytest

from lib.constants import FROM, MESSAGE, PASSWORD, TO, USER
from lib.runner import CLIENTS, REPO, describe

HOST = "localhost"
MODES = ("starttls", "implicit")
PYTHON = "/usr/bin/python3"
ASYNCIO = REPO / "tests" / "clients" / "asyncio_smtp.py"


def command(client, server, mode, message_file):
    if client == "membio":
        return [CLIENTS / "membio", "thread", HOST, server.port, mode, message_file]
    if client == "pushpull_gnutls":
        return [CLIENTS / "pushpull_gnutls", HOST, server.port, mode, message_file]
    if client == "pushpull_gnutls-memory":
        return [CLIENTS / "pushpull_gnutls", "memory", HOST, server.port, mode, message_file]
    return [PYTHON, ASYNCIO, HOST, server.port, mode, message_file]


CLIENT_NAMES = ("membio", "pushpull_gnutls", "pushpull_gnutls-memory", "asyncio")


def report(res, servers, env=None):
    text = describe(res)
    for s in servers:
        text += f"\n--- server {s.port} sessions\n{s.sessions!r}"
    if env is not None and hasattr(env, "log"):
        text += f"\n--- shim log\n{env.log()}"
    return text


def delivered(server, why):
    server.wait_idle(5.0)
    assert server.messages() == [MESSAGE], why
    assert server.credentials() == [(USER, PASSWORD, True)], why
    (session,) = server.transactions()
    assert session.tls and session.mail_from == FROM and session.rcpt_to == [TO], why


def nothing(server, why):
    server.wait_idle(5.0)
    assert server.credentials() == [], why
    assert server.transactions() == [], why
    assert server.messages() == [], why


def policy(shim, servers, mode, extra=""):
    ports = [s.port for s in servers]
    return shim(ports, implicit=ports if mode == "implicit" else (), extra=extra)


@pytest.fixture
def need():
    def check(client):
        program = CLIENTS / client.split("-")[0]
        if client != "asyncio" and not program.exists():
            pytest.fail(f"{program} is missing: run `make clients`", pytrace=False)
    return check


# ---- one session, its handshake on another thread (or asyncio's memory BIO) ---------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_baseline_leaks(client, mode, smtp_server, baseline, run, message_file, need):
    """Without the shim the careless client hands everything to the self-signed server."""
    need(client)
    server = smtp_server(cert="selfsigned", mode=mode)
    res = run(command(client, server, mode, message_file), baseline(), timeout=40)
    why = report(res, [server])
    assert res.returncode == 0 and "delivered" in res.stdout, why
    delivered(server, why)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_shim_refuses_selfsigned(client, mode, smtp_server, shim, run, message_file, need):
    """With the shim the session is judged against its own socket: refused, the
    self-signed server receives neither credentials nor mail."""
    need(client)
    server = smtp_server(cert="selfsigned", mode=mode)
    env = policy(shim, [server], mode)
    res = run(command(client, server, mode, message_file), env, timeout=40)
    why = report(res, [server], env)
    assert res.returncode != 0 and "delivered" not in res.stdout, why
    nothing(server, why)
    assert f":{server.port}" in env.log() and "refused" in env.log(), why


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_shim_good_delivers(client, mode, smtp_server, shim, run, message_file, need):
    """With the shim the good server gets the message byte for byte."""
    need(client)
    server = smtp_server(cert="good", mode=mode)
    env = policy(shim, [server], mode)
    res = run(command(client, server, mode, message_file), env, timeout=40)
    why = report(res, [server], env)
    assert res.returncode == 0 and "delivered" in res.stdout, why
    delivered(server, why)


# ---- two memory-BIO sessions on one thread -------------------------------------------

def two(run, env, a, b, mode, message_file):
    return run([CLIENTS / "membio", "two", HOST, a.port, b.port, mode, message_file], env,
               timeout=40)


@pytest.mark.parametrize("mode", MODES)
def test_two_sessions_baseline(mode, smtp_server, baseline, run, message_file, need):
    """Without the shim both sessions deliver, the self-signed server's included."""
    need("membio")
    good, bad = smtp_server(cert="good", mode=mode), smtp_server(cert="selfsigned", mode=mode)
    res = two(run, baseline(), good, bad, mode, message_file)
    why = report(res, [good, bad])
    assert res.returncode == 0, why
    delivered(good, why)
    delivered(bad, why)


@pytest.mark.parametrize("good_first", [True, False], ids=["good-first", "hostile-first"])
@pytest.mark.parametrize("off", [False, True], ids=["enforce", "good-mode-off"])
@pytest.mark.parametrize("mode", MODES)
def test_two_sessions_own_verdicts(mode, off, good_first, smtp_server, shim, run,
                                   message_file, need):
    """Two sessions on one thread, both ClientHellos out before either handshake ends:
    each gets its own verdict. The good server delivers, the self-signed one gets
    nothing, also when the good destination is `mode = off` (the hostile session must
    not be let through unchecked with it)."""
    need("membio")
    good, bad = smtp_server(cert="good", mode=mode), smtp_server(cert="selfsigned", mode=mode)
    extra = f"[destination 127.0.0.1:{good.port}]\nmode = off\n" if off else ""
    env = policy(shim, [good, bad], mode, extra)
    a, b = (good, bad) if good_first else (bad, good)
    res = two(run, env, a, b, mode, message_file)
    why = report(res, [good, bad], env)
    name_good, name_bad = ("A", "B") if good_first else ("B", "A")
    assert f"membio: {name_good}: delivered" in res.stdout, why
    assert f"membio: {name_bad}: failed" in res.stdout, why
    delivered(good, why)
    nothing(bad, why)
    log = env.log()
    assert f":{bad.port}" in log and "refused" in log, why
    refused_good = [line for line in log.splitlines()
                    if f":{good.port}" in line and "refused" in line]
    assert not refused_good, why


@pytest.mark.parametrize("smtp_first", [True, False], ids=["smtp-first", "other-first"])
@pytest.mark.parametrize("mode", MODES)
def test_non_smtp_session_untouched(mode, smtp_first, smtp_server, shim, run, message_file,
                                    need):
    """Two memory-BIO sessions on one thread, one to an SMTP port of the policy (the good
    server), one to a port the policy does not name (a self-signed server standing for
    any other TLS service): the shim judges the first and leaves the second alone."""
    need("membio")
    good, other = smtp_server(cert="good", mode=mode), smtp_server(cert="selfsigned", mode=mode)
    env = policy(shim, [good], mode)
    a, b = (good, other) if smtp_first else (other, good)
    res = two(run, env, a, b, mode, message_file)
    why = report(res, [good, other], env)
    assert res.returncode == 0, why
    delivered(good, why)
    delivered(other, why)
    assert f":{other.port}" not in env.log(), why


# ---- how the ClientHello travels -------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_hello_in_many_writes(mode, smtp_server, shim, baseline, run, message_file, need):
    """The I/O thread sends the records one byte per send(): the ClientHello reaches
    the socket in hundreds of writes. Without the shim the self-signed server gets
    everything; with it the random is still read and the session bound: the
    self-signed server gets nothing, the good one the message."""
    need("membio")
    bad = smtp_server(cert="selfsigned", mode=mode)
    env = baseline()
    env["MEMBIO_CHUNK"] = "1"
    res = run(command("membio", bad, mode, message_file), env, timeout=40)
    delivered(bad, report(res, [bad]))

    bad = smtp_server(cert="selfsigned", mode=mode)
    env = policy(shim, [bad], mode)
    env["MEMBIO_CHUNK"] = "1"
    res = run(command("membio", bad, mode, message_file), env, timeout=40)
    why = report(res, [bad], env)
    assert res.returncode != 0, why
    nothing(bad, why)

    good = smtp_server(cert="good", mode=mode)
    env = policy(shim, [good], mode)
    env["MEMBIO_CHUNK"] = "1"
    res = run(command("membio", good, mode, message_file), env, timeout=40)
    why = report(res, [good], env)
    assert res.returncode == 0, why
    delivered(good, why)


@pytest.mark.parametrize("cert", ["selfsigned", "good"])
@pytest.mark.parametrize("mode", MODES)
def test_unseen_hello_refused(mode, cert, smtp_server, shim, baseline, run, message_file,
                              need):
    """The records go out by the raw sendto system call, which no preload sees: no SMTP
    socket carries the session's ClientHello while the SMTP connection waits for one.
    Without the shim the server gets everything; with it, in enforce mode, the finished
    handshake is refused with a log line that says the socket could not be told, and
    the server gets nothing (the good one too: fail closed)."""
    need("membio")
    server = smtp_server(cert=cert, mode=mode)
    env = baseline()
    env["MEMBIO_RAW"] = "1"
    res = run(command("membio", server, mode, message_file), env, timeout=40)
    delivered(server, report(res, [server]))

    server = smtp_server(cert=cert, mode=mode)
    env = policy(shim, [server], mode)
    env["MEMBIO_RAW"] = "1"
    res = run(command("membio", server, mode, message_file), env, timeout=40)
    why = report(res, [server], env)
    assert res.returncode != 0, why
    nothing(server, why)
    lines = [line for line in env.log().splitlines() if f":{server.port}" in line]
    assert any("refused" in line and "binding" in line for line in lines), why


# ---- out of capacity -------------------------------------------------------------------

MANY, LAST = 264, 4   # more handshakes under way at once than the shim's 256 claims


@pytest.fixture
def sink():
    """sink() -> port of a new listener that accepts nothing: connections complete in
    its backlog (one run's worth) and what is sent to them stays there."""
    socks = []

    def make():
        s = socket.socket()
        socks.append(s)
        s.bind(("127.0.0.1", 0))
        s.listen(MANY + 16)
        return s.getsockname()[1]
    yield make
    for s in socks:
        s.close()


def test_out_of_capacity_refused(smtp_server, shim, baseline, run, message_file, need, sink):
    """264 memory-BIO sessions on one thread send their ClientHellos (260 to a
    listener that takes no part), then the last 4 finish and deliver while the others
    wait. Without the shim the self-signed server gets those 4 messages; with it the
    sessions beyond what the shim can tell apart are refused (fail closed, a log line
    says why) and the server gets nothing."""
    need("membio")
    mode = "implicit"

    def cmd(server, sink_port):
        return [CLIENTS / "membio", "many", str(MANY), str(LAST), HOST, str(sink_port),
                server.port, mode, message_file]
    server = smtp_server(cert="selfsigned", mode=mode)
    res = run(cmd(server, sink()), baseline(), timeout=60)
    why = report(res, [server])
    assert res.returncode == 0, why
    server.wait_idle(5.0)
    assert server.credentials() == [(USER, PASSWORD, True)] * LAST, why

    server = smtp_server(cert="selfsigned", mode=mode)
    port = sink()
    env = shim([server.port, port], implicit=[server.port, port])
    res = run(cmd(server, port), env, timeout=60)
    why = report(res, [server], env)
    assert res.returncode != 0 and "delivered" not in res.stdout, why
    nothing(server, why)
    assert "more TLS handshakes under way at once" in env.log(), why


@pytest.mark.parametrize("client", CLIENT_NAMES)
def test_audit_logs_the_bound_socket(client, smtp_server, shim, run, message_file, need):
    """In audit mode a session without a descriptor is judged against its own socket
    too: the self-signed server gets the message (audit lets it through) and the log
    says what enforce would have refused, naming that server's port."""
    need(client)
    mode = "starttls"
    server = smtp_server(cert="selfsigned", mode=mode)
    env = shim([server.port], mode="audit")
    res = run(command(client, server, mode, message_file), env, timeout=40)
    why = report(res, [server], env)
    assert res.returncode == 0, why
    delivered(server, why)
    assert any(f":{server.port}" in line and "would refuse" in line
               for line in env.log().splitlines()), why


# ---- a ClientHello made before the SMTP socket exists ------------------------------

HELLO_FIRST = REPO / "tests" / "clients" / "hello_first.py"


@pytest.mark.parametrize("lib", ["openssl", "gnutls"])
@pytest.mark.parametrize("cert,ok", [("selfsigned", False), ("good", True)])
def test_hello_made_before_the_socket_is_judged(lib, cert, ok, smtp_server, shim, baseline,
                                                run, message_file):
    """The program's first handshake step (the ClientHello into a memory BIO, or a
    GnuTLS push function's buffer) runs while the process has no SMTP connection yet;
    then it connects to port 465 and sends it. The session must still be bound to
    that socket and judged."""
    if lib == "openssl":
        cmd = [PYTHON, HELLO_FIRST, HOST, None, message_file]
    else:
        cmd = [CLIENTS / "pushpull_gnutls", "memory", HOST, None, "implicit", message_file]
    for side in ("baseline", "shim") if not ok else ("shim",):
        server = smtp_server(cert, mode="implicit")
        env = baseline() if side == "baseline" else policy(shim, [server], "implicit")
        env["PUSHPULL_HELLO_FIRST"] = "1"
        cmd[3] = server.port  # the port, in both commands
        res = run(cmd, env)
        if side == "baseline":
            delivered(server, report(res, [server]))
    if ok:
        assert res.returncode == 0, report(res, [server], env)
        delivered(server, report(res, [server], env))
    else:
        assert res.returncode != 0, report(res, [server], env)
        nothing(server, report(res, [server], env))
        assert "refused TLS" in env.log(), env.log()
