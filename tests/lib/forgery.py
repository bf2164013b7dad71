"""Certificates whose signature is wrong in the two ways a memo of signature checks
could miss (tests/test_nettle_memo.py, tests/test_ossl_memo.py): a corrupted
signature byte, and a leaf that names the real CA as its issuer (subject and key
identifier) but is signed by an impostor's key; the SMTP connection that opens the
memos (shim/smtp_seen.h); and what an end-to-end run against them must show.
"""
import re
import socket
import subprocess
from pathlib import Path

import pytest

from lib.certs import LEAF, Cert, _openssl


@pytest.fixture
def gate():
    """A listening TCP port on loopback: a client's SMTP connection, when the
    policy lists it (nothing is ever said on it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(4)
        yield s.getsockname()[1]


def ski_of(cert):
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-ext",
                          "subjectKeyIdentifier"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return re.search(r"([0-9A-F]{2}(?::[0-9A-F]{2})+)", out).group(1)


def subject_of(cert):
    out = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-subject",
                          "-nameopt", "compat"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return out.strip().removeprefix("subject=")


def make_key(d, name, algo="EC"):
    key = str(d / f"{name}.key")
    opt = "ec_paramgen_curve:P-256" if algo == "EC" else "rsa_keygen_bits:2048"
    _openssl("genpkey", "-algorithm", algo, "-pkeyopt", opt, "-out", key, cwd=d)
    return key


def make_ca(d, name, subject, algo, ski="hash"):
    key, cert = make_key(d, name, algo), str(d / f"{name}.pem")
    _openssl("req", "-x509", "-new", "-key", key, "-out", cert, "-days", "365",
             "-subj", subject, "-config", "/dev/null",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", f"subjectKeyIdentifier={ski}", cwd=d)
    return cert, key


def printable_ca(d, name, subject):
    """A self-signed certificate whose subject is a PrintableString (where
    make_ca's are UTF8String) and which has no extensions at all."""
    cnf = d / f"{name}.cnf"
    cnf.write_text("[req]\ndistinguished_name = dn\nstring_mask = nombstr\n[dn]\n")
    key, cert = make_key(d, name), str(d / f"{name}.pem")
    _openssl("req", "-x509", "-new", "-key", key, "-out", cert, "-days", "30", "-subj", subject,
             "-config", str(cnf), cwd=d)
    return cert


def make_leaf(d, name, ca):
    """A leaf for the good names (EC key) signed by ca = (cert, key)."""
    key, csr, cert = make_key(d, name), str(d / f"{name}.csr"), str(d / f"{name}.pem")
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=localhost",
             "-config", "/dev/null", cwd=d)
    ext = d / f"{name}.ext"
    ext.write_text(LEAF.format(names="DNS:localhost,IP:127.0.0.1"))
    _openssl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial", "4711",
             "-days", "30", "-extfile", str(ext), "-extensions", "leaf", "-out", cert, cwd=d)
    return Cert(cert, key)


def forged_by(d, ca_cert, algo="EC"):
    """A leaf for the good names whose issuer claims to be ca_cert, by name and key
    identifier, signed with another key: only the signature check tells."""
    impostor = make_ca(d, "impostor", subject_of(ca_cert), algo, ski=ski_of(ca_cert))
    return make_leaf(d, "forged", impostor)


def corrupted_copy(d, leaf):
    """leaf with the last byte of its issuer's signature changed."""
    der = d / "leaf.der"
    _openssl("x509", "-in", leaf.cert, "-outform", "DER", "-out", str(der), cwd=d)
    raw = bytearray(der.read_bytes())
    raw[-1] ^= 0x01
    der.write_bytes(bytes(raw))
    pem = str(d / "corrupted.pem")
    _openssl("x509", "-inform", "DER", "-in", str(der), "-out", pem, cwd=d)
    return Cert(pem, leaf.key)


BAD = {"forged": lambda d, certs: forged_by(d, certs.ca),
       "corrupted": lambda d, certs: corrupted_copy(d, certs.good)}


def check_refused(res, server, env, side, leaks):
    """A run against a bad-signature server: without the library a client that
    does not verify (leaks) hands over credentials and the message; everything
    else delivers nothing and fails, and the library says it refused TLS."""
    server.wait_idle(5.0)
    why = f"{res.returncode}\n{res.stderr[-2000:]}\n{env.log()}\n{server.sessions}"
    if side == "baseline" and leaks:
        assert server.credentials(), why
        assert len(server.transactions()) == 1, why
        return why
    assert server.credentials() == [] and server.transactions() == [], why
    assert res.returncode != 0, why
    if side == "shim":
        assert "refused TLS" in env.log(), why
    return why


def check_delivered(res, server, env, message_file):
    server.wait_idle(5.0)
    why = f"{res.returncode}\n{res.stderr[-2000:]}\n{env.log()}\n{server.sessions}"
    assert res.returncode == 0, why
    (message,) = server.messages()
    assert message == Path(message_file).read_bytes(), why
