"""Hostile servers (tests/lib/hostile.py) against programs under the shim.

Whatever the server does -- reply lines of 1 MiB, multiline replies that never end,
NUL bytes, one byte per TCP segment, a chain of 100 certificates, a TLS alert in the
handshake, a close at each step, no answer at all -- curl and the careless C client
under the shim get an error or their own timeout, and the shim neither crashes (no
signal), nor hangs (the run ends within the client's own timeout and a margin), nor
grows (peak RSS, measured by /usr/bin/time, stays bounded). Where the server is
hostile, it receives no AUTH, MAIL, RCPT or DATA at all; where it is a good server
in disguise (good certificate), the message gets through over TLS, byte for byte.

Also here: the careless client under valgrind with the shim, delivering and refused.
"""
import re

import pytest

from lib import sanitize
from lib.constants import FROM, MESSAGE, PASSWORD, TO, USER
from lib.hostile import MIB, HostileServer, Variant, endless, long_chain, server_context
from lib.runner import CLIENTS, describe

MARGIN = 10          # seconds a run may take beyond the client's own timeout
CURL_TIMEOUT = 8     # curl --max-time
CARELESS_TIMEOUT = 30  # tests/clients/careless.c: alarm(30), polls of 20 s
# Peak RSS of a client under the shim; the ASan runtime maps much more.
RSS_LIMIT_KB = (1024 if sanitize.ENABLED else 96) * 1024

REFUSED, DELIVERED, EITHER, AUTH_OVER_TLS = "refused", "delivered", "either", "auth-over-tls"
BOTH = ("starttls", "implicit")
HUGE = b"220 " + b"x" * MIB + b"\r\n"

# name -> (variant, modes, what the server may get)
VARIANTS = {
    "huge-greeting": (Variant(greeting=HUGE), ("starttls",), REFUSED),
    "huge-starttls-reply": (Variant(starttls=HUGE), ("starttls",), REFUSED),
    "endless-ehlo-reply": (Variant(ehlo=endless(b"250-" + b"x" * 70 + b"\r\n")),
                           ("starttls",), REFUSED),
    "endless-starttls-reply": (Variant(starttls=endless(b"220-" + b"y" * 70 + b"\r\n")),
                               ("starttls",), REFUSED),
    "nul-bytes": (Variant(greeting=b"220 hostile\0test\0\r\n",
                          ehlo=b"250-hostile\0\r\n250-STARTTLS\0\r\n250 AUTH\0PLAIN\r\n",
                          starttls=b"220 \0go\0ahead\r\n"), ("starttls",), REFUSED),
    "byte-per-segment": (Variant(dribble=True, cert="good"), BOTH, DELIVERED),
    "chain-of-100": (Variant(cert="chain100"), BOTH, EITHER),
    "alert-mid-handshake": (Variant(handshake="alert"), BOTH, REFUSED),
    "close-after-greeting": (Variant(close_after="greeting"), ("starttls",), REFUSED),
    "close-after-ehlo": (Variant(close_after="ehlo"), ("starttls",), REFUSED),
    "close-after-starttls-220": (Variant(close_after="starttls"), ("starttls",), REFUSED),
    "close-mid-handshake": (Variant(handshake="close"), BOTH, REFUSED),
    "close-after-auth": (Variant(cert="good", close_after="auth"), BOTH, AUTH_OVER_TLS),
    "never-answers": (Variant(silent=True, time_limit=CARELESS_TIMEOUT + MARGIN), BOTH,
                      REFUSED),
}

CASES = [pytest.param(name, mode, client, id=f"{name}-{mode}-{client}")
         for name, (_, modes, _) in VARIANTS.items() for mode in modes
         for client in ("curl", "careless")]


@pytest.fixture(scope="session")
def contexts(certs, tmp_path_factory):
    """cert name -> server SSLContext; the chain of 100 is made once per session."""
    made = {}

    def get(name):
        if name not in made:
            cert = (long_chain(certs, tmp_path_factory.mktemp("chain100")) if name == "chain100"
                    else certs.get(name))
            made[name] = server_context(cert)
        return made[name]
    return get


@pytest.fixture
def hostile(contexts):
    servers = []

    def start(variant, implicit):
        server = HostileServer(variant, contexts, implicit=implicit)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.stop()


def client_command(client, server, mode, message_file):
    """The client's command and its own timeout."""
    if client == "curl":
        scheme = "smtps" if mode == "implicit" else "smtp"
        return ["curl", "--silent", "--show-error", "--max-time", str(CURL_TIMEOUT),
                "--insecure", "--ssl-reqd", f"{scheme}://localhost:{server.port}",
                "--user", f"{USER}:{PASSWORD}", "--mail-from", FROM, "--mail-rcpt", TO,
                "--upload-file", str(message_file)], CURL_TIMEOUT
    return [CLIENTS / "careless", "verify_none", "localhost", server.port, mode,
            message_file], CARELESS_TIMEOUT


def measured(run, cmd, env, timeout, tmp_path):
    """Run cmd under /usr/bin/time: (CompletedProcess, peak RSS in KiB, killed by a signal)."""
    stats = tmp_path / "time.txt"
    res = run(["/usr/bin/time", "-f", "maxrss_kb=%M", "-o", stats, *cmd], env,
              timeout=timeout + MARGIN, cwd=tmp_path)
    text = stats.read_text()
    rss = int(re.search(r"maxrss_kb=(\d+)", text).group(1))
    return res, rss, re.search(r"terminated by signal (\d+)", text)


@pytest.mark.parametrize("name,mode,client", CASES)
def test_hostile_server(name, mode, client, hostile, shim, run, message_file, tmp_path):
    variant, _, expect = VARIANTS[name]
    server = hostile(variant, implicit=mode == "implicit")
    env = shim([server.port], implicit=[server.port] if mode == "implicit" else ())
    cmd, own_timeout = client_command(client, server, mode, message_file)
    res, rss, signal = measured(run, cmd, env, own_timeout, tmp_path)
    why = f"{describe(res)}\n--- server\n{server!r}\n--- shim log\n{env.log()}"

    assert not signal and res.returncode >= 0, f"killed by signal {signal}\n{why}"
    assert not list(tmp_path.glob("core*")), why
    assert rss < RSS_LIMIT_KB, f"peak RSS {rss} KiB\n{why}"
    secrets = server.secrets()
    if expect == DELIVERED or (expect == EITHER and res.returncode == 0):
        assert res.returncode == 0 and server.messages() == [MESSAGE], why
        assert all(tls for _, tls in secrets), why
    elif expect == AUTH_OVER_TLS:
        assert res.returncode != 0, why
        assert [verb.split(b" ")[0] for verb, tls in secrets if tls] == [b"AUTH"], why
        assert all(tls for _, tls in secrets), why
    else:
        assert res.returncode != 0 and secrets == [], why


# ---- valgrind ------------------------------------------------------------------------

@pytest.mark.skipif(sanitize.ENABLED, reason="valgrind cannot run ASan binaries")
@pytest.mark.parametrize("cert,delivers", [("good", True), ("selfsigned", False)])
def test_careless_client_under_valgrind(cert, delivers, smtp_server, shim, run, message_file):
    """The shim inside the careless client under memcheck: no error, delivering to the
    good server and refusing the self-signed one."""
    server = smtp_server(cert=cert)
    env = shim([server.port])
    res = run(["valgrind", "--error-exitcode=99", "--quiet", "--leak-check=full",
               "--errors-for-leak-kinds=definite", CLIENTS / "careless",
               "verify_none", "localhost", server.port, "starttls", message_file],
              env, timeout=120)
    why = f"{describe(res)}\n--- shim log\n{env.log()}"
    assert res.returncode == (0 if delivers else 2), why
    assert "ERROR SUMMARY" not in res.stderr and "Invalid " not in res.stderr, why
    assert server.messages() == ([MESSAGE] if delivers else []), why
    # The shim really ran inside valgrind (for the refusal, the refusal shows it).
    assert ("accepted TLS" if delivers else "refused TLS") in env.log(), why
