"""Test certificates, made with the openssl CLI (see tests/HARNESS.md).

`good` has an RSA key (the `weak` server variant needs RSA key exchange);
the CAs and the other leaves use EC P-256 keys, which are fast to make.
"""
import subprocess
from dataclasses import dataclass
from pathlib import Path

NAMES = "DNS:localhost,IP:127.0.0.1"

CONFIG = """\
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
[ ca ]
default_ca = ca_default
[ ca_default ]
database = {db}
new_certs_dir = {dir}
serial = {serial}
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[ any ]
commonName = supplied
[ v3_ca ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
"""

LEAF = """\
[ leaf ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = {names}
"""


@dataclass(frozen=True)
class Cert:
    cert: str
    key: str


@dataclass(frozen=True)
class Certs:
    dir: str
    ca: str          # the test CA certificate: the trust store the policies name
    ca2: str         # the second CA, trusted by no policy
    good: Cert
    selfsigned: Cert
    wronghost: Cert
    expired: Cert
    unknownca: Cert
    goodname: Cert   # SAN DNS:smtp.good.test only (no address), test CA
    attacker: Cert   # SAN DNS:attacker.test only, test CA: valid, for another name

    def get(self, name):
        return getattr(self, name)


def _openssl(*args, cwd):
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True,
                         text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{res.stderr}")


def _key(d, name, rsa=False):
    path = str(d / f"{name}.key")
    algo = (["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"] if rsa else
            ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"])
    _openssl("genpkey", *algo, "-out", path, cwd=d)
    return path


def _ca(d, name, cn):
    """A self-signed CA and its own `openssl ca` database."""
    key = _key(d, name)
    sub = d / f"{name}.db"
    sub.mkdir()
    (sub / "index.txt").write_text("")
    (sub / "serial").write_text("1000\n")
    cnf = d / f"{name}.cnf"
    cnf.write_text(CONFIG.format(db=sub / "index.txt", dir=sub, serial=sub / "serial"))
    cert = str(d / f"{name}.pem")
    _openssl("req", "-config", str(cnf), "-x509", "-new", "-key", key, "-out", cert,
             "-subj", f"/CN={cn}", "-days", "3650", "-extensions", "v3_ca", cwd=d)
    return cnf, cert, key


def _leaf(d, name, ca, names=NAMES, dates=None, rsa=False, cn="localhost"):
    """A leaf certificate signed by ca = (config, cert, key); dates = (start, end)
    as YYYYMMDDHHMMSSZ, default from one day ago for a year."""
    cnf, ca_cert, ca_key = ca
    key = _key(d, name, rsa=rsa)
    csr, cert, ext = d / f"{name}.csr", str(d / f"{name}.pem"), d / f"{name}.ext"
    ext.write_text(LEAF.format(names=names))
    _openssl("req", "-config", str(cnf), "-new", "-key", key, "-out", str(csr),
             "-subj", f"/CN={cn}", cwd=d)
    when = (["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "365"])
    _openssl("ca", "-batch", "-notext", "-config", str(cnf), "-cert", ca_cert,
             "-keyfile", ca_key, "-in", str(csr), "-out", cert, "-extfile", str(ext),
             "-extensions", "leaf", *when, cwd=d)
    return Cert(cert, key)


def _selfsigned(d, name, names=NAMES):
    key = _key(d, name)
    cert = str(d / f"{name}.pem")
    _openssl("req", "-x509", "-new", "-key", key, "-out", cert, "-subj", "/CN=localhost",
             "-days", "365", "-config", "/dev/null",
             "-addext", f"subjectAltName={names}",
             "-addext", "basicConstraints=critical,CA:FALSE",
             "-addext", "extendedKeyUsage=serverAuth", cwd=d)
    return Cert(cert, key)


def make_certs(directory):
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ca = _ca(d, "ca", "smtpguard test CA")
    ca2 = _ca(d, "ca2", "smtpguard unknown CA")
    return Certs(
        dir=str(d), ca=ca[1], ca2=ca2[1],
        good=_leaf(d, "good", ca, rsa=True),
        selfsigned=_selfsigned(d, "selfsigned"),
        wronghost=_leaf(d, "wronghost", ca, names="DNS:wrong.example.net",
                        cn="wrong.example.net"),
        expired=_leaf(d, "expired", ca, dates=("20200101000000Z", "20210101000000Z")),
        unknownca=_leaf(d, "unknownca", ca2),
        goodname=_leaf(d, "goodname", ca, names="DNS:smtp.good.test", cn="smtp.good.test"),
        attacker=_leaf(d, "attacker", ca, names="DNS:attacker.test", cn="attacker.test"),
    )


if __name__ == "__main__":
    import sys
    print(make_certs(sys.argv[1]))
