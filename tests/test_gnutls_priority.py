"""Under GnuTLS the policy narrows the program's own priority, never widens it
(shim/gnutls_prio.c, gnutls_narrow.c): a program that limits itself to one
TLS 1.2 cipher or to TLS 1.3 still refuses a server that offers only what it
left out, under the shim as without it; a program whose priority allows only
weak things still delivers, over TLS 1.2 or newer with a forward-secret AEAD
cipher (the policy's own string).

The program is build/clients/careless_gnutls no_verify with env SG_PRIORITY (its
priority string) set the ways a program can (SG_PRIORITY_API: direct, a
priority cache, a cache kept and used by an earlier session, freed (a server's
way: GnuTLS then drops a reference itself), appended to GnuTLS's default). Each case asserts what the
server received; a server's TLS 1.2 cipher list names each cipher for both key
types (the test certificate's decides)."""
from pathlib import Path

import pytest

from lib.constants import FROM, MESSAGE, PASSWORD, TO, USER
from lib.runner import CLIENTS, describe

CLIENT = CLIENTS / "careless_gnutls"
ONE_CIPHER = "NORMAL:-VERS-ALL:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM"
TLS13_ONLY = "NORMAL:-VERS-ALL:+VERS-TLS1.3"
APIS = ("direct", "cache", "shared", "append")


def priority_env(env, priority, api="direct"):
    env = dict(env)
    if api == "append":   # appended to GnuTLS's default, which is NORMAL here
        priority = priority.removeprefix("NORMAL:")
    env.update(SG_PRIORITY=priority, SG_PRIORITY_API=api)
    return env


def both(*ciphers):
    """OpenSSL names of ciphers for ECDSA and RSA keys."""
    return ":".join(f"ECDHE-{key}-{c}" for c in ciphers for key in ("ECDSA", "RSA"))


def server_with(smtp_server, tls, ciphers=None):
    server = smtp_server(tls=tls)
    if ciphers:   # the context wraps each connection at STARTTLS
        server.ctx.set_ciphers(ciphers)
    return server


def send(run, server, env, message_file):
    return run([CLIENT, "no_verify", "localhost", server.port, "starttls", message_file], env)


def assert_nothing_received(server, res):
    assert res.returncode != 0, describe(res)
    assert server.credentials() == [] and server.transactions() == [], describe(res)
    assert server.messages() == []


def assert_delivered(server, res):
    assert res.returncode == 0, describe(res)
    assert server.credentials() == [(USER, PASSWORD, True)]
    assert server.messages() == [MESSAGE]
    return server.sessions[-1]


@pytest.fixture
def side(shim, baseline):
    """side(name, port, extra="") -> the environment without or with the shim."""
    def make(name, port, extra=""):
        return baseline() if name == "baseline" else shim([port], extra=extra)
    return make


# The program limits itself to AES-128-GCM on TLS 1.2; the server offers another
# cipher the policy allows. Before: the shim set its own string and ChaCha20 passed.
@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("where", ("baseline", "shim"))
def test_one_cipher_program_refuses_a_server_without_it(where, api, smtp_server, side, run,
                                                         message_file):
    server = server_with(smtp_server, "tls12", both("CHACHA20-POLY1305"))
    env = priority_env(side(where, server.port), ONE_CIPHER, api)
    assert_nothing_received(server, send(run, server, env, message_file))


@pytest.mark.parametrize("api", APIS)
def test_one_cipher_program_delivers_with_its_cipher(api, smtp_server, side, run, message_file):
    server = server_with(smtp_server, "tls12", both("AES128-GCM-SHA256", "CHACHA20-POLY1305"))
    env = priority_env(side("shim", server.port), ONE_CIPHER, api)
    session = assert_delivered(server, send(run, server, env, message_file))
    assert session.cipher.endswith("-AES128-GCM-SHA256"), session


@pytest.mark.parametrize("where", ("baseline", "shim"))
def test_tls13_only_program_refuses_a_tls12_server(where, smtp_server, side, run, message_file):
    server = smtp_server(tls="tls12")
    env = priority_env(side(where, server.port), TLS13_ONLY)
    assert_nothing_received(server, send(run, server, env, message_file))


def test_tls13_only_program_delivers_to_a_tls13_server(smtp_server, side, run, message_file):
    server = smtp_server(tls="modern")
    env = priority_env(side("shim", server.port), TLS13_ONLY)
    session = assert_delivered(server, send(run, server, env, message_file))
    assert session.tls_version == "TLSv1.3", session


# The program's order and choice among allowed ciphers stays: ChaCha20 alone
# (TLS 1.3), where the policy's string would put AES-256-GCM first.
@pytest.mark.parametrize("api", APIS)
def test_program_keeps_its_cipher_among_the_allowed(api, smtp_server, side, run, message_file):
    server = smtp_server(tls="modern")
    env = priority_env(side("shim", server.port), "NORMAL:-CIPHER-ALL:+CHACHA20-POLY1305", api)
    session = assert_delivered(server, send(run, server, env, message_file))
    assert "CHACHA20" in session.cipher, session


# Priorities that allow nothing the policy does: the policy's own string, as before.
WEAK_ONLY = {
    "tls10": "NORMAL:-VERS-ALL:+VERS-TLS1.0",
    "cbc": "NORMAL:-CIPHER-ALL:+AES-128-CBC:+AES-256-CBC",
    "rsa_kx": "NORMAL:-VERS-TLS1.3:-KX-ALL:+RSA",
}


@pytest.mark.parametrize("weak", WEAK_ONLY)
def test_weak_only_program_delivers_with_the_policys_ciphers(weak, smtp_server, side, run,
                                                              message_file):
    server = smtp_server(tls="tls12")
    env = priority_env(side("shim", server.port), WEAK_ONLY[weak])
    session = assert_delivered(server, send(run, server, env, message_file))
    assert session.tls_version == "TLSv1.2", session
    assert session.cipher.startswith("ECDHE-") and ("GCM" in session.cipher or
                                                    "CHACHA20" in session.cipher), session


def test_cbc_only_program_uses_cbc_without_the_shim(smtp_server, side, run, message_file):
    """The baseline half of the case above: alone, the program takes CBC."""
    server = smtp_server(tls="tls12")
    env = priority_env(side("baseline", server.port), WEAK_ONLY["cbc"])
    session = assert_delivered(server, send(run, server, env, message_file))
    assert "GCM" not in session.cipher and "CHACHA20" not in session.cipher, session


# min_protocol = TLSv1.3: a TLS 1.2-only program keeps nothing, so it gets the
# policy's TLS 1.3 string; a program limited to ChaCha20 keeps it.
def test_tls13_policy_over_a_tls12_only_program(smtp_server, side, run, message_file):
    server = smtp_server(tls="modern")
    env = priority_env(side("shim", server.port, "min_protocol = TLSv1.3"), ONE_CIPHER)
    session = assert_delivered(server, send(run, server, env, message_file))
    assert session.tls_version == "TLSv1.3", session


def test_tls13_policy_keeps_the_programs_cipher(smtp_server, side, run, message_file):
    server = smtp_server(tls="modern")
    env = priority_env(side("shim", server.port, "min_protocol = TLSv1.3"),
                       "NORMAL:-CIPHER-ALL:+CHACHA20-POLY1305")
    session = assert_delivered(server, send(run, server, env, message_file))
    assert session.tls_version == "TLSv1.3" and "CHACHA20" in session.cipher, session


# A real program: msmtp's tls_priorities (Debian's msmtp, GnuTLS; scripts/deps/gnutls.txt).


def msmtp(run, server, env, tmp_path, message_file, priorities):
    config = tmp_path / f"msmtprc-{server.port}"
    config.write_text(f"account default\nhost localhost\nport {server.port}\nfrom {FROM}\n"
                      f"auth plain\nuser {USER}\npassword {PASSWORD}\ntls on\n"
                      "tls_starttls on\ntls_certcheck off\nset_date_header off\ntimeout 20\n"
                      f"tls_priorities {priorities}\n")
    config.chmod(0o600)   # msmtp refuses a password file others can read
    return run(["/usr/bin/msmtp", "-C", config, "--", TO], env,
               input=message_file.read_bytes().decode("utf-8"))


@pytest.mark.parametrize("where", ("baseline", "shim"))
def test_msmtp_limited_to_tls13_refuses_a_tls12_server(where, smtp_server, side, run, tmp_path,
                                                        message_file):
    server = smtp_server(tls="tls12")
    res = msmtp(run, server, side(where, server.port), tmp_path, message_file, TLS13_ONLY)
    assert_nothing_received(server, res)


def test_msmtp_limited_to_tls13_delivers_to_a_tls13_server(smtp_server, side, run, tmp_path,
                                                            message_file):
    server = smtp_server(tls="modern")
    res = msmtp(run, server, side("shim", server.port), tmp_path, message_file, TLS13_ONLY)
    assert_delivered(server, res)
    assert server.sessions[-1].tls_version == "TLSv1.3"


def test_default_priority_is_normal_without_a_system_file(run):
    """The premise of the shim's shortcut for a program that kept GnuTLS's
    default priority (gnutls_narrow.c default_is_normal): with no system
    priority file, GnuTLS's default enables exactly what NORMAL enables, so
    NORMAL narrowed by the policy, the policy's own string, is that program's
    priority narrowed. A GnuTLS built with another default fails here."""
    res = run([CLIENTS / "gnutls_default_prio"], {})
    assert res.returncode == 0, describe(res)
    verdict, sysfile = res.stdout.split()
    if Path(sysfile).exists():
        pytest.skip(f"{sysfile} exists: the shim narrows the default as any priority")
    assert verdict == "same", res.stdout


def test_audit_predicts_the_refusal_of_a_suite_the_policy_leaves_out(run, smtp_server, shim,
                                                                      certs, tmp_path):
    """GnuTLS's default priority offers TLS 1.3's AES-128-CCM, which the policy's leaves
    out; the server speaks only that suite. In enforce mode the narrowed offer has no
    suite in common with it: refused, nothing received. In audit mode nothing is
    narrowed and the handshake uses CCM: the log must say what enforce would do, "would
    refuse" (forward-secret AEAD alone called it accepted), and the message goes."""
    from test_cipher_choice import tls13_front
    backend = smtp_server(mode="plain")
    with tls13_front(certs, backend, "TLS_AES_128_CCM_SHA256", tmp_path) as port:
        argv = [CLIENT, "no_verify", "localhost", port, "implicit"]
        enforce = shim([port], implicit=[port])
        res = run(argv, enforce, timeout=40)
        assert res.returncode != 0 and backend.credentials() == [], describe(res)
        audit = shim([port], implicit=[port], mode="audit")
        res = run(argv, audit, timeout=40)
        assert res.returncode == 0 and backend.messages() == [MESSAGE], describe(res)
        assert "AES-128-CCM" in audit.log() and "audit: would refuse" in audit.log(), \
            audit.log()
