"""The harness tests itself, without the shim: the certificates and server variants are
what tests/HARNESS.md says, the server records exactly what it got, run() never hangs."""
import base64
import smtplib
import socket
import ssl
import time
import warnings

import pytest

from lib.constants import FROM, MESSAGE, PASSWORD, TO, USER
from lib.runner import LIB, SHIM_VARS, policy_text, shim_env
from lib.smtpserver import MAX_LINE

MODES = ["starttls", "implicit"]


def verifying_context(certs):
    return ssl.create_default_context(cafile=certs.ca)


def permissive_context(minimum=ssl.TLSVersion.TLSv1, maximum=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = minimum
        if maximum:
            ctx.maximum_version = maximum
    return ctx


def connect(server, ctx, host="localhost"):
    """An smtplib client over TLS to server (STARTTLS or implicit, as the server is)."""
    if server.mode == "implicit":
        client = smtplib.SMTP_SSL(host, server.port, timeout=10, context=ctx)
    else:
        client = smtplib.SMTP(host, server.port, timeout=10)
        client.starttls(context=ctx)
    client.ehlo()
    return client


@pytest.mark.parametrize("mode", MODES)
def test_verified_delivery_is_byte_for_byte(smtp_server, certs, mode):
    server = smtp_server("good", mode)
    with connect(server, verifying_context(certs)) as client:
        client.login(USER, PASSWORD)
        client.sendmail(FROM, [TO], MESSAGE)
    assert server.messages() == [MESSAGE]
    assert server.credentials() == [(USER, PASSWORD, True)]
    (session,) = server.transactions()
    assert session.tls and session.complete
    assert (session.mail_from, session.rcpt_to, session.data) == (FROM, [TO], MESSAGE)
    assert session.tls_version == "TLSv1.3"
    assert [verb for verb, _ in session.commands][-5:] == ["AUTH", "MAIL", "RCPT", "DATA",
                                                            "QUIT"]
    plaintext = [verb for verb, over_tls in session.commands if not over_tls]
    assert plaintext == (["EHLO", "STARTTLS"] if mode == "starttls" else [])


def test_good_certificate_names_the_address_too(smtp_server, certs):
    server = smtp_server("good", "implicit")
    with connect(server, verifying_context(certs), host="127.0.0.1") as client:
        assert client.noop()[0] == 250


# verify_code: the X509_V_ERR_* a verifying client must see for each bad certificate
REJECTED = {"selfsigned": 18, "wronghost": 62, "expired": 10, "unknownca": 20}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cert", REJECTED)
def test_verifying_client_rejects_bad_certificates(smtp_server, certs, cert, mode):
    server = smtp_server(cert, mode)
    with pytest.raises(ssl.SSLCertVerificationError) as err:
        connect(server, verifying_context(certs))
    assert err.value.verify_code == REJECTED[cert], err.value
    assert server.wait_idle()
    assert server.credentials() == [] and server.transactions() == []
    (session,) = server.sessions
    assert not session.tls and session.tls_error


@pytest.mark.parametrize("tls,version,cipher", [
    ("modern", "TLSv1.3", None),
    ("old", "TLSv1.1", None),
    ("weak", "TLSv1.2", "AES128-GCM-SHA256"),
])
@pytest.mark.parametrize("mode", MODES)
def test_tls_variants_negotiate_what_they_claim(smtp_server, tls, version, cipher, mode):
    server = smtp_server("good", mode, tls)
    with connect(server, permissive_context()) as client:
        assert client.sock.version() == version
        client.login(USER, PASSWORD)
    (session,) = server.sessions
    assert session.tls_version == version
    assert session.cipher == (cipher or session.cipher)
    assert server.credentials() == [(USER, PASSWORD, True)]


def test_old_offers_tls10_and_nothing_from_12(smtp_server):
    server = smtp_server("good", "implicit", "old")
    with connect(server, permissive_context(maximum=ssl.TLSVersion.TLSv1)) as client:
        assert client.sock.version() == "TLSv1"
    with pytest.raises(ssl.SSLError):
        connect(server, permissive_context(minimum=ssl.TLSVersion.TLSv1_2))


def test_weak_offers_only_the_non_forward_secret_cipher(smtp_server):
    server = smtp_server("good", "implicit", "weak")
    ctx = permissive_context()
    ctx.set_ciphers("ECDHE:DHE:@SECLEVEL=0")   # every forward-secret TLS 1.2 suite
    with pytest.raises(ssl.SSLError):
        connect(server, ctx)
    assert not server.sessions[0].tls


AUTH_DIALOGS = {
    "plain-initial": [("AUTH PLAIN " + base64.b64encode(f"\0{USER}\0{PASSWORD}".encode())
                       .decode(), 235)],
    "plain-prompted": [("AUTH PLAIN", 334),
                       (base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(), 235)],
    "login": [("AUTH LOGIN", 334), (base64.b64encode(USER.encode()).decode(), 334),
              (base64.b64encode(PASSWORD.encode()).decode(), 235)],
    "login-initial": [("AUTH LOGIN " + base64.b64encode(USER.encode()).decode(), 334),
                      (base64.b64encode(PASSWORD.encode()).decode(), 235)],
}


@pytest.mark.parametrize("dialog", AUTH_DIALOGS)
def test_auth_mechanisms_are_recorded(smtp_server, certs, dialog):
    server = smtp_server("good", "starttls")
    with connect(server, verifying_context(certs)) as client:
        for line, code in AUTH_DIALOGS[dialog]:
            assert client.docmd(line)[0] == code
    assert server.credentials() == [(USER, PASSWORD, True)]


def test_plaintext_auth_is_recorded_as_such(smtp_server):
    server = smtp_server("good", "starttls")
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        client.ehlo()
        assert client.has_extn("starttls")
        client.login(USER, PASSWORD)
        client.sendmail(FROM, [TO], MESSAGE)
    assert server.credentials() == [(USER, PASSWORD, False)]
    assert [s.tls for s in server.transactions()] == [False]


@pytest.mark.parametrize("mode,offered", [("starttls", True), ("implicit", False),
                                          ("plain", False)])
def test_starttls_is_offered_only_before_tls_in_starttls_mode(smtp_server, mode, offered):
    server = smtp_server("good", mode)
    if mode == "implicit":
        client = smtplib.SMTP_SSL("localhost", server.port, timeout=10,
                                  context=permissive_context())
    else:
        client = smtplib.SMTP("localhost", server.port, timeout=10)
    with client:
        client.ehlo()
        assert client.has_extn("starttls") == offered
        assert client.has_extn("auth")
        if offered:
            client.starttls(context=permissive_context())
            client.ehlo()
            assert not client.has_extn("starttls")
        else:
            assert client.docmd("STARTTLS")[0] in (502, 503)


def test_overlong_line_ends_the_session(smtp_server):
    server = smtp_server("good", "plain")
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.recv(1024)
        sock.sendall(b"NOOP " + b"x" * (MAX_LINE - 5))   # no line end yet, all read
        reply = b""
        while chunk := sock.recv(1024):
            reply += chunk
    assert reply.startswith(b"500")
    assert server.wait_idle() and server.sessions[0].error == "line too long"


def test_run_kills_the_process_group_on_timeout(run, baseline):
    start = time.monotonic()
    with pytest.raises(pytest.fail.Exception, match="timed out"):
        run(["sh", "-c", "sleep 60 & sleep 60"], baseline(), timeout=1)
    assert time.monotonic() - start < 10


def test_run_returns_text_output(run, baseline):
    res = run(["sh", "-c", "cat; echo err >&2; exit 3"], baseline(), input="h\u00e9llo\n")
    assert (res.returncode, res.stdout, res.stderr) == (3, "h\u00e9llo\n", "err\n")


def test_baseline_has_no_shim(baseline, monkeypatch):
    for name in SHIM_VARS:
        monkeypatch.setenv(name, "/nonexistent")
    env = baseline()
    assert not any(name in env for name in SHIM_VARS)
    assert env["PATH"]


def test_shim_env_and_policy(tmp_path):
    text = policy_text([25, 465], [465], "audit", "[destination localhost:25]\nmode = off\n",
                       "/ca.pem", tmp_path / "x.log")
    env = shim_env(tmp_path / "p.conf", tmp_path / "x.log", text)
    assert env["SMTPGUARD_POLICY"] == str(tmp_path / "p.conf") == env.policy_path
    assert env["LD_PRELOAD"].endswith(str(LIB))
    assert env.log_path == str(tmp_path / "x.log") and env.log() == ""
    lines = (tmp_path / "p.conf").read_text().splitlines()
    assert lines == ["mode = audit", "smtp_ports = 25 465", "implicit_tls_ports = 465",
                     "ca_file = /ca.pem", f"log = file:{tmp_path / 'x.log'}",
                     "[destination localhost:25]", "mode = off"]
