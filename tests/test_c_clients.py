"""The careless C client (tests/clients/careless.c) with and without the shim.

Each STYLE is one careless way of using OpenSSL 3 (tests/HARNESS.md). Without the
shim the careless styles hand the test credentials and the message to hostile
servers; with the shim every hostile scenario is refused before AUTH, and the good
server still gets the message byte for byte.
"""
import pytest

from lib.constants import FROM, HOSTILE, MESSAGE, PASSWORD, SCENARIOS, TO, USER
from lib.runner import CLIENTS, describe

CLIENT = CLIENTS / "careless"
HOST = "localhost"   # a name, as a mailer would be configured
MODES = ("starttls", "implicit")

STYLES = ("verify_none", "accept_all_cb", "cert_verify_cb", "tls10_max", "seclevel0",
          "no_sni", "nonblocking", "bio_ssl_connect", "implicit_write", "good")
CARELESS = tuple(s for s in STYLES if s != "good")

# Styles on OpenSSL's default protocol floor: TLS 1.0/1.1 need SECLEVEL 0 in
# OpenSSL 3, so they refuse the `old` server by themselves.
DEFAULT_FLOOR = ("verify_none", "accept_all_cb", "cert_verify_cb", "no_sni",
                 "nonblocking", "bio_ssl_connect", "implicit_write")

TLS12_OR_13 = ("TLSv1.2", "TLSv1.3")


def no_baseline_leak(style, scenario):
    """Why STYLE refuses SCENARIO by itself, without the shim (None: it leaks)."""
    if style == "tls10_max" and scenario != "old":
        return "tls10_max offers TLS 1.0/1.1 only; this server speaks TLS >= 1.2"
    if style in DEFAULT_FLOOR and scenario == "old":
        return f"{style} keeps OpenSSL 3's SECLEVEL 1, which rules out TLS 1.0/1.1"
    return None


@pytest.fixture
def deliver(run, certs, message_file):
    """deliver(style, server, mode, env, host=HOST) -> CompletedProcess."""
    if not CLIENT.exists():
        pytest.fail(f"{CLIENT} is missing: run `make clients`", pytrace=False)

    def _deliver(style, server, mode, env, host=HOST):
        env["SG_CA_FILE"] = str(certs.ca)   # read by the `good` style only
        # the client bounds itself (alarm 30 s): give it time to say why
        return run([CLIENT, style, host, server.port, mode, message_file], env, timeout=40)
    return _deliver


def start(smtp_server, scenario, mode):
    cert, tls = SCENARIOS[scenario]
    return smtp_server(cert=cert, mode=mode, tls=tls)


def shim_for(shim, server, mode):
    return shim([server.port], implicit=[server.port] if mode == "implicit" else ())


def report(res, server, env=None):
    text = describe(res) + f"\n--- server sessions\n{server.sessions!r}"
    if env is not None and hasattr(env, "log"):
        text += f"\n--- shim log\n{env.log()}"
    return text


def assert_delivered(res, server, env=None):
    server.wait_idle(5.0)
    why = report(res, server, env)
    assert res.returncode == 0, why
    assert "careless: delivered" in res.stdout, why
    assert server.messages() == [MESSAGE], why
    assert server.credentials() == [(USER, PASSWORD, True)], why
    (session,) = server.transactions()
    assert session.tls and session.mail_from == FROM and session.rcpt_to == [TO], why
    return session


def assert_refused(res, server, env=None):
    server.wait_idle(5.0)
    why = report(res, server, env)
    assert res.returncode != 0, why
    assert "careless: delivered" not in res.stdout, why
    assert server.credentials() == [], why
    assert server.transactions() == [], why
    assert server.messages() == [], why


# ---- with the shim -----------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("style", STYLES)
def test_shim(style, scenario, mode, smtp_server, shim, deliver):
    """With the shim: the good server gets the message byte for byte whatever the
    style; every hostile server gets neither credentials nor a transaction."""
    server = start(smtp_server, scenario, mode)
    env = shim_for(shim, server, mode)
    res = deliver(style, server, mode, env)
    if scenario == "good":
        session = assert_delivered(res, server, env)
        assert session.tls_version in TLS12_OR_13, report(res, server, env)
    else:
        assert_refused(res, server, env)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("style", ["verify_none", "no_sni", "bio_ssl_connect", "good"])
def test_shim_address_literal(style, mode, smtp_server, shim, deliver):
    """HOST given as the address literal 127.0.0.1 (no name for SNI or a host check):
    the good server (IP SAN 127.0.0.1) still gets the message, a self-signed one
    nothing."""
    good = smtp_server(cert="good", mode=mode)
    env = shim_for(shim, good, mode)
    assert_delivered(deliver(style, good, mode, env, host="127.0.0.1"), good, env)
    bad = smtp_server(cert="selfsigned", mode=mode)
    env = shim_for(shim, bad, mode)
    assert_refused(deliver(style, bad, mode, env, host="127.0.0.1"), bad, env)


@pytest.mark.parametrize("mode", MODES)
def test_shim_raises_tls10_max_floor(mode, smtp_server, shim, baseline, deliver):
    """tls10_max caps itself at TLS 1.1 with SSL_OP_NO_TLSv1_2|SSL_OP_NO_TLSv1_3, so
    alone it cannot talk to a modern server; the shim undoes the cap and the floor is
    TLS 1.2."""
    server = smtp_server(cert="good", mode=mode, tls="modern")
    res = deliver("tls10_max", server, mode, baseline())
    assert_refused(res, server)
    assert all(not s.tls for s in server.sessions), report(res, server)

    server = smtp_server(cert="good", mode=mode, tls="modern")
    env = shim_for(shim, server, mode)
    session = assert_delivered(deliver("tls10_max", server, mode, env), server, env)
    assert session.tls_version in TLS12_OR_13, session


@pytest.mark.parametrize("mode", MODES)
def test_shim_seclevel0_strong_cipher(mode, smtp_server, shim, deliver):
    """seclevel0 allows "ALL:@SECLEVEL=0"; with the shim the negotiated cipher is a
    forward-secret AEAD (ECDHE with GCM or ChaCha20-Poly1305) or a TLS 1.3 suite."""
    server = smtp_server(cert="good", mode=mode, tls="modern")
    env = shim_for(shim, server, mode)
    session = assert_delivered(deliver("seclevel0", server, mode, env), server, env)
    c = session.cipher or ""
    strong = c.startswith("TLS_") or (c.startswith("ECDHE-") and
                                      ("-GCM-" in c or "CHACHA20-POLY1305" in c))
    assert strong, f"{session.tls_version} {c}"


# ---- without the shim ----------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
@pytest.mark.parametrize("style", CARELESS)
def test_baseline_leaks(style, scenario, mode, smtp_server, baseline, deliver):
    """Without the shim the careless style delivers to the good server and also hands
    credentials and message to the hostile ones (what the shim is there to stop)."""
    reason = no_baseline_leak(style, scenario)
    server = start(smtp_server, scenario, mode)
    res = deliver(style, server, mode, baseline())
    if reason:
        # Not a leak to stop: check the style really refuses, then skip.
        assert_refused(res, server)
        pytest.skip(f"no leak without the shim: {reason}")
    assert_delivered(res, server)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_baseline_good_style(scenario, mode, smtp_server, baseline, deliver):
    """Sanity of the harness: the correct client delivers to the good server and
    refuses every hostile one on its own."""
    server = start(smtp_server, scenario, mode)
    res = deliver("good", server, mode, baseline())
    if scenario == "good":
        assert_delivered(res, server)
    else:
        assert_refused(res, server)
        assert res.returncode == 2, report(res, server)   # a TLS failure


def test_builtin_message(smtp_server, baseline, run):
    """Without MESSAGE_FILE the client sends its built-in message: constants.MESSAGE."""
    server = smtp_server(cert="good", mode="starttls")
    res = run([CLIENT, "verify_none", HOST, server.port, "starttls"], baseline(), timeout=40)
    assert_delivered(res, server)


@pytest.mark.parametrize("style", CARELESS)
def test_baseline_matrix_is_not_empty(style):
    """Every careless style leaks somewhere without the shim, or it tests nothing."""
    assert any(no_baseline_leak(style, s) is None for s in HOSTILE)


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_refused_object_stays_refused(mode, smtp_server, shim, run, message_file):
    """A program that goes on after the failed handshake gets errors from
    SSL_write/SSL_read too; the server gets nothing."""
    server = smtp_server("selfsigned", mode)
    env = shim([server.port], implicit=[server.port] if mode == "implicit" else ())
    env["SG_IGNORE_FAILURE"] = "1"
    res = run([CLIENT, "verify_none", "localhost", server.port, mode, message_file], env)
    assert res.returncode == 2, describe(res)
    assert "going on anyway" in res.stderr and "refused earlier" in res.stderr, describe(res)
    assert server.credentials() == [] and server.transactions() == [], describe(res)
