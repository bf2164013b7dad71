"""The memo of signature checks nettle accepted (shim/nettle_memo.c, issue 15).

The shim's verdict verifies a GnuTLS peer's chain again, in the same process, on
the same bytes as a program that verifies the server itself; the memo answers the
second check with what nettle itself answered for exactly those bytes. Shown here:
with the library preloaded, nettle_ecdsa_verify and nettle_rsa_pkcs1_verify as
libgnutls calls them (the C client tests/clients/nettle_memo.c) give exactly the
answers they give without it, for a valid check, its repetition (then answered by
the memo: many times faster) and every near miss of a remembered check; a refusal
is never remembered; before the process has had an SMTP connection the memo is not
used at all. Through libgnutls, in one process, a corrupted and a forged
leaf after the good one; end to end, GnuTLS clients meet a chain signed by the
wrong key and a leaf whose signature is corrupted.
"""
import re
import socket
import subprocess
from pathlib import Path

import pytest

from lib.certs import LEAF, Cert, _openssl
from lib.gnutls_mailers import careless
from lib.runner import CLIENTS

MEMO = CLIENTS / "nettle_memo"
CHECKS = {
    "valid": 1, "valid_again": 1, "digest_byte": 0, "digest_len": 0, "r_changed": 0,
    "s_changed": 0, "r_negated": 0, "swapped": 0, "other_key": 0, "invalid": 0,
    "invalid_again": 0, "long_digest": 1, "long_again": 1, "child_valid": 1, "child_bad": 0,
}
RSA_CHECKS = {
    "valid": 1, "valid_again": 1, "digest_byte": 0, "digest_len": 0, "s_changed": 0,
    "other_key": 0, "e_changed": 0, "invalid": 0, "invalid_again": 0, "child_valid": 1,
    "child_bad": 0,
}
EXPECTED = {**{f"{curve} {name}": result for curve in ("P-256", "P-384", "P-521")
               for name, result in CHECKS.items()},
            **{f"RSA-2048 {name}": result for name, result in RSA_CHECKS.items()},
            "threads wrong": 0}   # 4 threads checking at once


def answers(run, env, gate=None):
    """{"CURVE NAME": result} and {"speedup"|"rsa_speedup": how much faster a
    repeated check ran than a first one}; with gate, after an SMTP connection to
    that port (the memo's gate: shim/smtp_seen.h)."""
    res = run([str(MEMO), *(("--smtp", str(gate)) if gate else ())], env, timeout=60)
    assert res.returncode == 0, res.stderr
    got, speedup = {}, {}
    for line in res.stdout.splitlines():
        if line.startswith("threads_wrong "):
            got["threads wrong"] = int(line.split()[1])
        elif "speedup " in line:
            name, value = line.split()
            speedup[name] = float(value)
        else:
            curve, name, result = line.split()
            got[f"{curve} {name}"] = int(result)
    return got, speedup


@pytest.fixture
def gate():
    """A listening TCP port on loopback: the client's SMTP connection, when the
    policy lists it (nothing is ever said on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield s.getsockname()[1]


@pytest.fixture
def memo_env(shim, build, gate):
    if not MEMO.exists():
        pytest.fail(f"{MEMO} is not built: {build.stderr[-2000:]}", pytrace=False)
    return shim([gate])


def test_nettle_answers_without_the_library(run, baseline, memo_env, gate):
    """The client's expectations are nettle's own: no memo, no speedup."""
    got, speedup = answers(run, baseline(), gate)
    assert got == EXPECTED
    assert speedup.keys() == {"speedup", "rsa_speedup"}, speedup
    assert all(v < 3 for v in speedup.values()), speedup


def test_memo_answers_as_nettle_does(run, memo_env, gate):
    """After an SMTP connection, ECDSA (3 curves) and RSA PKCS#1: (1) valid, and
    valid again from the memo; (2) every near miss of a remembered check refused;
    (3) an invalid signature refused twice; larger than an entry: nettle's own
    answer; a forked child keeps the entries and the refusals."""
    got, speedup = answers(run, memo_env, gate)
    wrong = {k: (v, EXPECTED.get(k)) for k, v in got.items() if EXPECTED.get(k) != v}
    assert not wrong and got.keys() == EXPECTED.keys(), wrong
    # a hit costs a comparison: ECDSA ~200x, RSA-2048 ~40x faster than nettle
    assert speedup["speedup"] > 10 and speedup["rsa_speedup"] > 4, \
        f"a repeated check was not answered by the memo: {speedup}"


def test_memo_unused_before_any_smtp_connection(run, memo_env):
    """The same process without its SMTP connection: nettle's answers, and every
    repetition computed again (no speedup): the memo is not reached."""
    got, speedup = answers(run, memo_env)
    assert got == EXPECTED
    assert all(v < 3 for v in speedup.values()), speedup


# ---- end to end: GnuTLS clients, the shim's own verdict ---------------------------

def _ski(cert):
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext",
                          "subjectKeyIdentifier"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return re.search(r"([0-9A-F]{2}(?::[0-9A-F]{2})+)", out).group(1)


def _subject(cert):
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-subject",
                          "-nameopt", "compat"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return out.strip().removeprefix("subject=")


def _key(d, name, algo="EC"):
    key = str(d / f"{name}.key")
    opt = "ec_paramgen_curve:P-256" if algo == "EC" else "rsa_keygen_bits:2048"
    _openssl("genpkey", "-algorithm", algo, "-pkeyopt", opt, "-out", key, cwd=d)
    return key


def _ca(d, name, subject, algo, ski="hash"):
    key, cert = _key(d, name, algo), str(d / f"{name}.pem")
    _openssl("req", "-x509", "-new", "-key", key, "-out", cert, "-days", "365",
             "-subj", subject, "-config", "/dev/null",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", f"subjectKeyIdentifier={ski}", cwd=d)
    return cert, key


def _leaf(d, name, ca):
    """A leaf for the good names (EC key) signed by ca = (cert, key)."""
    key, csr, cert = _key(d, name), str(d / f"{name}.csr"), str(d / f"{name}.pem")
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=localhost",
             "-config", "/dev/null", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text(LEAF.format(names="DNS:localhost,IP:127.0.0.1"))
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", "4711",
             "-days", "30", "-extfile", str(ext), "-extensions", "leaf", "-out", cert, cwd=d)
    return Cert(cert, key)


def _forged_by(d, ca_cert, algo="EC"):
    """A leaf for the good names whose issuer claims to be ca_cert, by name and key
    identifier, signed with another key: only the signature check tells."""
    impostor = _ca(d, "impostor", _subject(ca_cert), algo, ski=_ski(ca_cert))
    return _leaf(d, "forged", impostor)


def _corrupted_copy(d, leaf):
    """leaf with the last byte of its issuer's signature changed."""
    der = d / "leaf.der"
    _openssl("x509", "-in", leaf.cert, "-outform", "DER", "-out", str(der), cwd=d)
    raw = bytearray(der.read_bytes())
    raw[-1] ^= 0x01
    der.write_bytes(bytes(raw))
    pem = str(d / "corrupted.pem")
    _openssl("x509", "-inform", "DER", "-in", str(der), "-out", pem, cwd=d)
    return Cert(pem, leaf.key)


def _forged(d, certs):
    return _forged_by(d, certs.ca)


def _corrupted(d, certs):
    return _corrupted_copy(d, certs.good)


BAD = {"forged": _forged, "corrupted": _corrupted}


@pytest.mark.parametrize("side", ["baseline", "shim"])
@pytest.mark.parametrize("algo", ["EC", "RSA"])
def test_gnutls_refuses_a_near_miss_of_a_remembered_check(algo, side, tmp_path, certs, run,
                                                          baseline, memo_env, gate):
    """In one process, through libgnutls: a good leaf verified (its CA's signature,
    ECDSA or RSA PKCS#1, remembered under the shim), then the same leaf with a
    corrupted signature (the same digest and CA key), one signed by another key
    under the CA's name, the good again."""
    if algo == "EC":
        ca, good = certs.ca, certs.good
    else:
        ca_pair = _ca(tmp_path, "rsa-ca", "/CN=smtpguard RSA test CA", "RSA")
        ca, good = ca_pair[0], _leaf(tmp_path, "rsa-good", ca_pair)
    order = [good.cert, _corrupted_copy(tmp_path, good).cert,
             _forged_by(tmp_path, ca, algo).cert, good.cert]
    res = run([str(MEMO), "--smtp", str(gate), "x509", ca, *order],
              memo_env if side == "shim" else baseline(),
              timeout=60)
    assert res.returncode == 0, res.stderr
    status = [int(line.rsplit(" ", 1)[1]) for line in res.stdout.splitlines()]
    assert len(status) == 4, res.stdout
    assert status[0] == status[3] == 0, res.stdout
    # GNUTLS_CERT_INVALID | GNUTLS_CERT_SIGNATURE_FAILURE: the signature check refused
    assert status[1] == status[2] == 0x2 | 0x800, res.stdout


@pytest.mark.parametrize("style", ["no_verify", "good"])
@pytest.mark.parametrize("side", ["baseline", "shim"])
@pytest.mark.parametrize("bad", sorted(BAD))
def test_bad_signature_refused(bad, side, style, tmp_path, certs, smtp_server, run,
                               message_file, baseline, shim):
    server = smtp_server(BAD[bad](tmp_path, certs), "starttls")
    env = baseline() if side == "baseline" else shim([server.port])
    env["SG_CA_FILE"] = certs.ca
    cmd = careless(style).build(server.port, "starttls", message_file)
    res = run(cmd.argv, env, timeout=60)
    server.wait_idle(5.0)
    why = f"{res.returncode}\n{res.stderr[-2000:]}\n{env.log()}\n{server.sessions}"
    if side == "baseline" and style == "no_verify":   # the careless client leaks
        assert server.credentials(), why
        assert len(server.transactions()) == 1, why
        return
    assert server.credentials() == [] and server.transactions() == [], why
    assert res.returncode != 0, why
    if side == "shim":
        assert "refused TLS" in env.log(), why
    if side == "shim" and style == "no_verify":   # the shim's own check, at the signature
        assert "signature in the certificate is invalid" in env.log(), why


@pytest.mark.parametrize("style", ["no_verify", "good"])
def test_good_server_delivers(style, certs, smtp_server, run, message_file, shim):
    server = smtp_server("good", "starttls")
    env = shim([server.port])
    env["SG_CA_FILE"] = certs.ca
    cmd = careless(style).build(server.port, "starttls", message_file)
    res = run(cmd.argv, env, timeout=60)
    server.wait_idle(5.0)
    why = f"{res.returncode}\n{res.stderr[-2000:]}\n{env.log()}\n{server.sessions}"
    assert res.returncode == 0, why
    (message,) = server.messages()
    assert message == Path(message_file).read_bytes(), why
