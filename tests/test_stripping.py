"""STARTTLS stripping and response injection (issue 8): opportunistic clients behind a
man in the middle (tests/lib/mitm.py), without and with the shim.

Without the shim the genuinely opportunistic clients hand the credentials and the mail
to the proxy in plaintext; with it nothing of them leaves the client, whatever the proxy
does, and the good server still gets the message byte for byte, directly or through a
transparent proxy. The proxy's record of every byte the client sent is the evidence.
The outcomes go to build/stripping-table.md.
"""
import json
import os
import socket
from dataclasses import dataclass
from typing import Callable

import pytest

from lib import results
from lib.constants import FROM, MESSAGE, PASSWORD, TO, USER
from lib.mailers import Command
from lib.mitm import BEHAVIOURS, INJECT, LOCAL_REPLIES, Proxy, revealed
from lib.runner import REPO, describe

HOST = "localhost"
PY = "/usr/bin/python3"
MAILERS = REPO / "tests" / "mailers"
ROUTES = ("direct",) + BEHAVIOURS      # direct: no proxy at all
CLEAN = ("direct", "none")             # nobody tampers: the message must arrive
INJECTING = ("inject_same", "inject_separate")


@dataclass(frozen=True)
class Client:
    name: str
    build: Callable            # (port, msgfile, tmp_path) -> Command
    leaks: frozenset           # routes where it leaks without the shim
    trailer: bytes = b""       # what the client adds after the message by itself


def _swaks(flag):
    def build(port, msgfile, tmp_path):
        return Command(["swaks", "--server", HOST, "--port", port, flag, "--timeout", "20",
                        "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
                        "--from", FROM, "--to", TO, "--data", f"@{msgfile}"])
    return build


def _curl(port, msgfile, tmp_path):
    # --ssl: "try TLS, revert to a non-secure connection if the server does not support it"
    return Command(["curl", "--silent", "--show-error", "--ssl", "--insecure",
                    "--max-time", "20", f"smtp://{HOST}:{port}", "--user", f"{USER}:{PASSWORD}",
                    "--mail-from", FROM, "--mail-rcpt", TO, "--upload-file", msgfile])


def _script(interpreter, name):
    def build(port, msgfile, tmp_path):
        return Command([interpreter, MAILERS / name, HOST, port, USER, PASSWORD, FROM, TO,
                        msgfile])
    return build


def _msmtp(port, msgfile, tmp_path):
    config = tmp_path / f"msmtprc-{port}"
    config.write_text(f"account default\nhost {HOST}\nport {port}\nfrom {FROM}\n"
                      f"auth plain\nuser {USER}\npassword {PASSWORD}\n"
                      "tls on\ntls_starttls on\ntls_certcheck off\n"
                      "set_date_header off\ntimeout 20\n")
    os.chmod(config, 0o600)   # msmtp refuses a password file others can read
    return Command(["msmtp", "-C", config, "--", TO], input=MESSAGE.decode("utf-8"))


CLIENTS = [
    # --tls-optional goes on in plaintext whenever TLS does not happen, for any reason:
    # also on the same connection after injected bytes broke its handshake
    Client("swaks-tls-optional", _swaks("--tls-optional"),
           frozenset({"strip", "reply454", "reply502", "inject_separate"}), trailer=b"\r\n"),
    # --tls-optional-strict only when STARTTLS is not advertised
    Client("swaks-tls-optional-strict", _swaks("--tls-optional-strict"),
           frozenset({"strip"}), trailer=b"\r\n"),
    # curl also falls back from EHLO to HELO, and then sends the mail without AUTH
    Client("curl-ssl", _curl, frozenset({"strip", "reply454", "reply502", "no_ehlo"})),
    Client("python-smtplib", _script(PY, "opportunistic_smtplib.py"), frozenset({"strip"})),
    Client("perl-net-smtp", _script("perl", "opportunistic_netsmtp.pl"), frozenset({"strip"})),
    # tls on + tls_starttls on: msmtp insists on STARTTLS (not opportunistic); GnuTLS
    Client("msmtp", _msmtp, frozenset()),
    # asyncio: SSLObject over memory BIOs, bound to its socket by its ClientHello; it
    # insists on STARTTLS
    Client("python-asyncio", lambda port, msgfile, tmp_path: Command(
        [PY, REPO / "tests" / "clients" / "asyncio_smtp.py", HOST, port, "starttls",
         msgfile]), frozenset()),
]
CASES = [pytest.param(c, route, id=f"{c.name}-{route}") for c in CLIENTS for route in ROUTES]


def _clip(data, keep=1500):
    return repr(data) if len(data) <= 2 * keep else f"{data[:keep]!r} ... {data[-keep:]!r}"


@dataclass
class Attempt:
    res: object
    server: object
    proxy: object
    env: object

    def evidence(self):
        """What the man in the middle (or the server, in plaintext) got."""
        seen = revealed(self.proxy.from_client) if self.proxy else []
        seen += [f"server: AUTH of {user} in plaintext"
                 for user, _, tls in self.server.credentials() if not tls]
        seen += [f"server: MAIL from {s.mail_from} in plaintext"
                 for s in self.server.transactions() if ("MAIL", False) in s.commands]
        return seen

    def report(self):
        text = describe(self.res) + f"\n--- server sessions\n{self.server.sessions!r}"
        if self.proxy:
            text += f"\n--- client -> proxy\n{_clip(self.proxy.from_client)}"
            text += f"\n--- proxy -> client\n{_clip(self.proxy.to_client)}"
        if hasattr(self.env, "log"):
            text += f"\n--- shim log\n{self.env.log()}"
        return text


@pytest.fixture
def attempt(smtp_server, run, message_file, tmp_path):
    """attempt(client, route, env_for) -> Attempt; env_for(port) gives the client's
    environment for the port it connects to (the proxy's, or the server's if direct)."""
    proxies = []

    def go(client, route, env_for):
        server = smtp_server("good", "starttls")
        proxy = None
        if route != "direct":
            proxy = Proxy(server.port, route)
            proxies.append(proxy)
        port = proxy.port if proxy else server.port
        env = env_for(port)
        cmd = client.build(port, message_file, tmp_path)
        res = run(cmd.argv, env, input=cmd.input, timeout=40)
        server.wait_idle(5.0)
        if proxy:
            proxy.wait_idle(5.0)
        return Attempt(res, server, proxy, env)

    yield go
    for proxy in proxies:
        proxy.stop()


def outcome(a, run):
    """The table cell of an attempt."""
    if a.evidence():
        return "leaked"
    if a.res.returncode == 0 and a.server.messages():
        return "delivered"
    if any(s.tls and any(tls for _, tls in s.commands) for s in a.server.sessions):
        return "desynced"   # TLS and commands over it, yet the client broke off
    if a.res.returncode == 0:
        return "no leak, exit 0"
    if run == "shim" and "refused" in a.env.log():
        return "refused"
    return "own"


def assert_delivered(a, client):
    why = a.report()
    assert a.res.returncode == 0, why
    assert a.evidence() == [], why
    assert a.server.credentials() == [(USER, PASSWORD, True)], why
    (session,) = a.server.transactions()
    assert session.tls and session.mail_from == FROM and session.rcpt_to == [TO], why
    assert a.server.messages() == [MESSAGE + client.trailer], why


def assert_log_clean(env):
    """The shim's log holds none of the credentials, addresses or message bytes."""
    log = env.log().encode()
    assert revealed(log) == [], f"the shim's log {env.log_path} reveals:\n{env.log()}"


@pytest.mark.parametrize("client,route", CASES)
def test_without_shim(client, route, attempt, baseline):
    a = attempt(client, route, lambda port: baseline())
    results.record("stripping", client=client.name, route=route, run="baseline",
                   outcome=outcome(a, "baseline"))
    if route in CLEAN:
        return assert_delivered(a, client)
    if route in client.leaks:
        assert a.evidence(), f"{client.name} was expected to leak\n{a.report()}"
        return
    assert a.evidence() == [], f"{client.name} is listed as not leaking\n{a.report()}"
    said = (a.res.stderr.strip().splitlines() or [""])[-1]
    pytest.skip(f"no leak to show: {client.name} under {route} ends "
                f"{outcome(a, 'baseline')} (exit {a.res.returncode}: {said[:150]})")


@pytest.mark.parametrize("client,route", CASES)
def test_with_shim(client, route, attempt, shim):
    a = attempt(client, route, lambda port: shim([port]))
    results.record("stripping", client=client.name, route=route, run="shim",
                   outcome=outcome(a, "shim"))
    assert_log_clean(a.env)
    if route in CLEAN:
        return assert_delivered(a, client)
    why = a.report()
    assert a.evidence() == [], why
    assert a.server.credentials() == [], why
    assert a.server.transactions() == [], why
    assert a.res.returncode != 0, why
    if route in INJECTING:   # the handshake was refused: no TLS session came about
        assert not any(s.tls for s in a.server.sessions), why


STRIPPED = [c for c in CLIENTS if "strip" in c.leaks]
LOG_CASES = [pytest.param(c, mode, fmt, id=f"{c.name}-{mode}-{fmt}")
             for c in STRIPPED for mode in ("enforce", "audit") for fmt in ("text", "json")]


@pytest.mark.parametrize("client,mode,fmt", LOG_CASES)
def test_log_never_holds_secrets(client, mode, fmt, attempt, shim):
    """Behind a stripping proxy the shim decides on AUTH and MAIL: in audit mode it lets
    them through (the server gets the credentials in plaintext), and in neither mode
    may its log hold the credentials, the addresses or the message."""
    a = attempt(client, "strip", lambda port: shim([port], mode=mode,
                                                   extra=f"log_format = {fmt}"))
    why = a.report()
    lines = a.env.log().splitlines()
    assert lines, f"the shim logged nothing: nothing was tested\n{why}"
    if fmt == "json":
        assert all(isinstance(json.loads(line), dict) for line in lines), why
    assert_log_clean(a.env)
    plaintext = [(USER, PASSWORD, False)] if mode == "audit" else []
    assert a.server.credentials() == plaintext, why


READY = b"220 Ready to start TLS\r\n"
# behaviour -> what a client that sends STARTTLS anyway receives, recv by recv
STARTTLS_ANSWER = {
    "none": [READY], "strip": [READY], "no_ehlo": [READY],
    "reply454": [LOCAL_REPLIES["reply454"][1]], "reply502": [LOCAL_REPLIES["reply502"][1]],
    "inject_same": [READY + INJECT], "inject_separate": [READY, INJECT],
}


def _reply(sock):
    """One whole SMTP reply."""
    data = b""
    while not any(line[3:4] == b" " for line in data.split(b"\r\n")):
        chunk = sock.recv(4096)
        assert chunk, f"connection closed after {data!r}"
        data += chunk
    return data


@pytest.mark.parametrize("behaviour", BEHAVIOURS)
def test_proxy_tampers_as_told(behaviour, smtp_server):
    """The man in the middle itself, driven by hand: what it does to EHLO and STARTTLS."""
    server = smtp_server("good", "starttls")
    sent = b"EHLO proxy.test\r\n"
    with Proxy(server.port, behaviour) as proxy, \
            socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        assert _reply(sock).startswith(b"220 ")
        sock.sendall(sent)
        ehlo = _reply(sock)
        if behaviour == "no_ehlo":
            assert ehlo == LOCAL_REPLIES["no_ehlo"][1]
            sock.sendall(b"HELO proxy.test\r\n")
            sent += b"HELO proxy.test\r\n"
            assert _reply(sock) == b"250 localhost\r\n"
        else:
            lines = ehlo.splitlines()
            assert all(line.startswith(b"250-") for line in lines[:-1]), ehlo
            assert lines[-1].startswith(b"250 ") and len(lines) >= 4, ehlo
            assert (b"250-STARTTLS" in lines) == (behaviour != "strip"), ehlo
        sock.sendall(b"STARTTLS\r\n")
        sent += b"STARTTLS\r\n"
        assert [sock.recv(4096) for _ in STARTTLS_ANSWER[behaviour]] == STARTTLS_ANSWER[behaviour]
        if behaviour in ("reply454", "reply502"):   # plaintext relaying goes on
            sock.sendall(b"NOOP\r\n")
            sent += b"NOOP\r\n"
            assert _reply(sock) == b"250 2.0.0 Ok\r\n"
    proxy.wait_idle(5.0)
    assert proxy.from_client == sent
    server.wait_idle(5.0)
    (session,) = server.sessions
    relayed = STARTTLS_ANSWER[behaviour][0].startswith(READY)
    assert (("STARTTLS", False) in session.commands) == relayed, session
