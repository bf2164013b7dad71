"""The GnuTLS backend (issue 4): careless GnuTLS mailers from Debian (msmtp, ssmtp
through GnuTLS's OpenSSL compatibility library, mutt, mailutils, exim4 as a client)
and the careless GnuTLS C client in each style, against the good and the hostile
servers, without and with the shim; then clients behind a man in the middle that
strips STARTTLS, answers it itself or injects replies (issue 8; msmtp is among the
clients of test_stripping.py already).

Without the shim the hostile servers get the credentials and the mail; with it they
get nothing, the program fails (in smtpguard's words where it prints GnuTLS's), and the
good server gets the message byte for byte. The outcomes go to build/mailer-table.md
and build/stripping-table.md.
"""
import subprocess
from pathlib import Path

import pytest

from lib import results
from lib.constants import BODY, FROM, MESSAGE, PASSWORD, SCENARIOS, TO, USER
from lib.forgery import check_refused, forged_by
from lib.gnutls_mailers import (CARELESS, CLIENT_MAILERS, DEBS, DEBS_ROOT, MAILERS,
                                accepted_certs, careless)
from lib.mitm import Proxy, revealed
from lib.runner import REPO, describe

SIDES = ("baseline", "shim")


def case_id(mailer, *rest):
    return "-".join((mailer.name.replace(" ", "-"),) + rest)


CASES = [pytest.param(m, mode, scenario, side, id=case_id(m, mode, scenario, side))
         for m in MAILERS + CLIENT_MAILERS for mode in m.modes for scenario in SCENARIOS
         for side in SIDES]


@pytest.fixture(scope="session")
def debs():
    """Unpack the mailers that are not installed (scripts/fetch-debs, cached in
    build/debs); returns what fetch-debs said when it failed, else ""."""
    try:
        res = subprocess.run([REPO / "scripts" / "fetch-debs", *DEBS], capture_output=True,
                             text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "scripts/fetch-debs timed out"
    return "" if res.returncode == 0 else res.stderr[-2000:]


def require(mailer, debs):
    """Skip what this machine cannot run; fail when a dependency is missing."""
    if not mailer.program.exists():
        if DEBS_ROOT in mailer.program.parents:
            pytest.skip(f"{mailer.program} could not be unpacked: {debs}")
        pytest.fail(f"{mailer.program} is missing (make clients; scripts/deps/gnutls.txt)",
                    pytrace=False)
    if mailer.probe:
        res = subprocess.run(mailer.probe, capture_output=True, text=True, timeout=10)
        if res.returncode:
            pytest.skip(f"{mailer.name} needs `{' '.join(mailer.probe)}`: {res.stderr[-300:]}")


@pytest.fixture
def prepare(certs, tmp_path, debs):
    """prepare(mailer, env) -> env: the program checked to run here, HOME in the test's
    folder (dead.letter and the like), the test CA for the `good` and `decoy` styles."""
    def go(mailer, env):
        require(mailer, debs)
        env["HOME"] = str(tmp_path)
        env["SG_CA_FILE"] = str(certs.ca)
        env["SG_DECOY"] = str(certs.ca)   # the decoy style's own trust
        return env
    return go


@pytest.fixture
def attempt(smtp_server, run, message_file, certs, prepare, baseline, shim):
    """attempt(mailer, mode, scenario, side) -> (server, CompletedProcess, env)."""
    def go(mailer, mode, scenario, side):
        cert, tls = SCENARIOS[scenario]
        server = smtp_server(cert, mode, tls)
        # mutt: the user once accepted this server's certificate for good
        accepted_certs(message_file).write_bytes(Path(certs.get(cert).cert).read_bytes())
        if side == "baseline":
            env = baseline()
        else:
            env = shim([server.port], implicit=[server.port] if mode == "implicit" else ())
        env = prepare(mailer, env)
        cmd = mailer.build(server.port, mode, message_file)
        res = run(cmd.argv, env, input=cmd.input, timeout=60)
        server.wait_idle(5.0)
        return server, res, env
    return go


def assert_delivered(mailer, server, why):
    """The good server got the message over TLS, byte for byte."""
    assert server.credentials() == [(USER, PASSWORD, True)], why
    (session,) = server.transactions()
    assert session.tls and session.mail_from == FROM and session.rcpt_to == [TO], why
    (message,) = server.messages()
    if mailer.exact:
        assert message == MESSAGE, why
    assert message.endswith(b"\r\n\r\n" + BODY), why


@pytest.mark.parametrize("mailer,mode,scenario,side", CASES)
def test_mailer(mailer, mode, scenario, side, attempt):
    server, res, env = attempt(mailer, mode, scenario, side)
    outcome = results.outcome(server, res.returncode, scenario)
    own = side == "baseline" and scenario in mailer.refuses and outcome.startswith("refused")
    results.record(mailer=mailer.name, mode=mode, scenario=scenario, run=side,
                   outcome="own" if own else outcome)
    why = f"{describe(res)}\n--- shim log\n{env.log()}\n--- sessions\n{server.sessions}"
    if scenario == "good":
        assert res.returncode == 0, why
        return assert_delivered(mailer, server, why)
    if side == "baseline" and scenario not in mailer.refuses:
        assert server.credentials() == [(USER, PASSWORD, True)], why
        assert len(server.transactions()) == 1, why
        return
    assert server.credentials() == [], why
    assert server.transactions() == [], why
    assert res.returncode != 0, why
    if side == "baseline":
        pytest.skip(f"not leaking: {mailer.name} refuses {scenario} by itself")
    assert "refused TLS" in env.log(), why
    if mailer.says_why:   # its gnutls_strerror of the shim's code
        assert "smtpguard: " in res.stderr, why


# ---- STARTTLS stripping and injection (issue 8) ---------------------------------

ROUTES = ("strip", "reply454", "inject_same")
MAILUTILS = next(m for m in MAILERS if m.name == "mailutils")
STRIPPING = [  # (client, the routes where it leaks without the shim)
    (careless("no_verify"), frozenset()),   # always sends STARTTLS, ignores injections
    (MAILUTILS, frozenset({"strip", "reply454"})),   # STARTTLS when offered, if it works
]
MITM_CASES = [pytest.param(m, route, side, leaks, id=case_id(m, route, side))
              for m, leaks in STRIPPING for route in ROUTES for side in SIDES]


def mitm_outcome(seen, res, server, env):
    """The cell of build/stripping-table.md."""
    if seen:
        return "leaked"
    if res.returncode == 0 and server.messages():
        return "delivered"
    return "refused" if "refused" in env.log() else "own"


@pytest.mark.parametrize("mailer,route,side,leaks", MITM_CASES)
def test_man_in_the_middle(mailer, route, side, leaks, smtp_server, message_file, prepare,
                           run, baseline, shim):
    server = smtp_server("good", "starttls")
    with Proxy(server.port, route) as proxy:
        env = prepare(mailer, baseline() if side == "baseline" else shim([proxy.port]))
        cmd = mailer.build(proxy.port, "starttls", message_file)
        res = run(cmd.argv, env, input=cmd.input, timeout=60)
        proxy.wait_idle(5.0)
        server.wait_idle(5.0)
        seen = revealed(proxy.from_client)
        why = (f"{describe(res)}\n--- client -> proxy\n{proxy.from_client[:3000]!r}\n"
               f"--- shim log\n{env.log()}\n--- sessions\n{server.sessions}")
    results.record("stripping", client=mailer.name, route=route, run=side,
                   outcome=mitm_outcome(seen, res, server, env))
    if side == "baseline" and route in leaks:
        assert seen, f"{mailer.name} was expected to leak\n{why}"
        return
    assert seen == [], why
    # What reached the server went over TLS: a client that sends STARTTLS although it
    # was not offered gets TLS end to end, through the proxy, and delivers.
    plain = [verb for s in server.sessions for verb, tls in s.commands
             if not tls and verb not in ("EHLO", "STARTTLS")]
    assert plain == [], why
    for message in server.messages():
        assert res.returncode == 0 and message.endswith(b"\r\n\r\n" + BODY), why
    if side == "shim" and (route in leaks or route == "inject_same"):
        assert res.returncode != 0 and "refused" in env.log(), why
    if side == "shim" and route == "inject_same":   # refused before any TLS
        assert not any(s.tls for s in server.sessions), why


# ---- certificates GnuTLS parsed in the handshake (shim/gnutls_keep.c) -----------

@pytest.mark.parametrize("side", SIDES)
def test_a_kept_impostor_ca_is_not_the_policys_anchor(side, tmp_path, certs, smtp_server, run,
                                                       baseline, shim, message_file):
    """The server's chain ends at an impostor CA with the test CA's name and key
    identifier; the program trusts that impostor and verifies (GnuTLS parses and
    frees a copy of it during the handshake), then ignores its own result. The
    policy's anchor of that name is the real test CA: the copy GnuTLS freed must
    not stand in for it, so the shim refuses and nothing reaches the server."""
    server = smtp_server(forged_by(tmp_path, certs.ca), "starttls")
    env = baseline() if side == "baseline" else shim([server.port])
    env["SG_DECOY"] = str(tmp_path / "impostor.pem")
    res = run([str(CARELESS), "decoy", "localhost", str(server.port), "starttls",
               str(message_file)], env, timeout=60)
    check_refused(res, server, env, side, leaks=True)


@pytest.mark.parametrize("cert", ["good", "unknownca"])
def test_frees_that_skip_the_shim_change_no_verdict(cert, certs, smtp_server, run, shim,
                                                    message_file):
    """A GnuTLS whose internal calls to gnutls_x509_crt_deinit skip the shim (a
    build that bypasses its PLT; here a preload placed before the shim sends
    them straight to libgnutls): the stand-in the shim lends its verification
    for GnuTLS's copy of the anchor is freed by GnuTLS itself, and nothing the
    verification uses is. Freed memory is filled (MALLOC_PERTURB_), so a freed
    anchor would change the verdict: the good server gets the message, the
    unknown CA's gets nothing."""
    bypass = REPO / "build" / "clients" / "libdeinit_bypass.so"
    assert bypass.exists(), f"{bypass}: make clients"
    server = smtp_server(cert, "starttls")
    env = shim([server.port])
    env["LD_PRELOAD"] = f"{bypass} {env['LD_PRELOAD']}"
    env["MALLOC_PERTURB_"] = "165"
    res = run([str(CARELESS), "no_verify", "localhost", str(server.port), "starttls",
               str(message_file)], env, timeout=60)
    if cert == "good":
        assert_delivered(careless("no_verify"), server, f"{describe(res)}\n{env.log()}")
    else:
        check_refused(res, server, env, "shim", leaks=True)
