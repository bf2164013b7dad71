"""Trust anchors found on demand (issue 15): the shim indexes the policy's
ca_file and hands a TLS library only the anchors a chain names. The verdicts
must be exactly those of loading the whole bundle (SMTPGUARD_EAGER_TRUST=1
forces that), for OpenSSL and GnuTLS, on good and bad chains; a bundle
changed under a running process keeps the documented behaviour: the next
handshake is judged by the new file; and with a prepared index a process
reads only the anchors a chain names, while the file is the one indexed."""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from lib.certs import Cert
from lib.constants import PASSWORD, USER
from lib.runner import CLIENTS, OUT, describe

INDEXER = OUT / "smtpguard-trust-index"  # built by `make` beside the library

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_EXT = ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
          "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
LEAF_EXT = ("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost\n"
            "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]


def openssl(d, *args):
    res = subprocess.run(["openssl", *map(str, args)], cwd=d, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr


class Maker:
    """Certificates with the openssl CLI: roots, certificates signed by another
    (a CSR from a new or an existing key), chain files and bundles."""

    def __init__(self, d):
        self.d = Path(d)
        self.serial = 4096
        (self.d / "ca.ext").write_text(CA_EXT)
        (self.d / "leaf.ext").write_text(LEAF_EXT)

    def root(self, name, cn):
        openssl(self.d, "req", "-x509", *EC, "-keyout", f"{name}.key", "-out", f"{name}.pem",
                "-subj", f"/CN={cn}", "-days", "30", "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign")
        return name

    def signed(self, name, cn, issuer, leaf=False, key=None, days=("-days", "30")):
        # key: the cross certificate needs no key file of its own (no server uses it)
        """name signed by issuer; key: reuse that certificate's key (a cross-signature)."""
        keyfile = f"{key or name}.key"
        new = ["-key", keyfile] if key else [*EC, "-keyout", keyfile]
        openssl(self.d, "req", "-new", *new, "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        self.serial += 1
        openssl(self.d, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{issuer}.pem",
                "-CAkey", f"{issuer}.key", "-set_serial", self.serial, *days,
                "-extfile", "leaf.ext" if leaf else "ca.ext", "-out", f"{name}.pem")
        return name

    def text(self, name):
        return (self.d / f"{name}.pem").read_text()

    def chain(self, name, *names):
        """A server certificate file: the leaf, then the given certificates."""
        path = self.d / f"chain-{'-'.join((name, *names))}.pem"
        path.write_text("".join(self.text(n) for n in (name, *names)))
        return Cert(str(path), str(self.d / f"{name}.key"))

    def bundle(self, label, *names, system=True):
        """The system bundle (the shipped policy's ca_file) plus the given CAs."""
        path = self.d / f"bundle-{label}.pem"
        head = SYSTEM_BUNDLE.read_text() if system and SYSTEM_BUNDLE.exists() else ""
        path.write_text(head + "".join(self.text(n) for n in names))
        return path


@pytest.fixture(scope="module")
def pki(tmp_path_factory, certs):
    m = Maker(tmp_path_factory.mktemp("lazy"))
    for n in ("ca", "ca2"):
        (m.d / f"{n}.pem").write_text(Path(getattr(certs, n)).read_text())
    m.root("root", "SG Cross Root")
    m.root("old", "SG Old Root")
    m.signed("cross", "SG Cross Root", "old", key="root")   # same subject and key as root
    m.signed("inter", "SG Intermediate", "root")
    m.signed("leaf", "localhost", "inter", leaf=True)
    m.root("dup1", "SG Dup CA")
    m.root("dup2", "SG Dup CA")
    m.root("dup3", "SG Dup CA")
    for n in ("1", "2", "3"):
        m.signed(f"dupleaf{n}", "localhost", f"dup{n}", leaf=True)
    for n in range(MANY):  # more anchors of one name than one chain is handed at once
        m.root(f"many{n}", "SG Many CA")
    m.signed("manyleaf", "localhost", f"many{MANY - 1}", leaf=True)
    return m


MANY = 33


def cases(certs, m):
    """(name, server certificate, bundle, delivered?)."""
    test_ca = m.bundle("testca", "ca")
    return {
        "good": (certs.good, test_ca, True),
        "expired": (certs.expired, test_ca, False),
        "unknown-ca": (certs.unknownca, test_ca, False),
        "wrong-host": (certs.wronghost, test_ca, False),
        "intermediate-missing": (m.chain("leaf"), m.bundle("root", "root"), False),
        "intermediate-sent": (m.chain("leaf", "inter"), m.bundle("root", "root"), True),
        "intermediate-in-bundle": (m.chain("leaf"), m.bundle("inter", "inter", "root"), True),
        # the root before the intermediate in the file: the selection reaches it by a
        # second pass over the index (the intermediate alone is an anchor to GnuTLS)
        "intermediate-in-bundle-after-root": (m.chain("leaf"),
                                              m.bundle("interlast", "root", "inter"), True),
        "cross-signed-root-trusted": (m.chain("leaf", "inter", "cross"),
                                      m.bundle("root", "root"), True),
        "cross-signed-old-root-trusted": (m.chain("leaf", "inter", "cross"),
                                          m.bundle("old", "old"), True),
        "cross-signed-nothing-trusted": (m.chain("leaf", "inter", "cross"),
                                         m.bundle("none", "ca"), False),
        "duplicate-subject-first": (m.chain("dupleaf1"), m.bundle("dup", "dup1", "dup2"), True),
        "duplicate-subject-second": (m.chain("dupleaf2"), m.bundle("dup", "dup1", "dup2"),
                                     True),
        "duplicate-subject-neither": (m.chain("dupleaf3"), m.bundle("dup", "dup1", "dup2"),
                                      False),
        "many-of-one-subject": (m.chain("manyleaf"),
                                m.bundle("many", *(f"many{n}" for n in range(MANY))), True),
    }


CLIENT = {"openssl": ("careless", "verify_none"), "gnutls": ("careless_gnutls", "no_verify")}
CASES = ["good", "expired", "unknown-ca", "wrong-host", "intermediate-missing",
         "intermediate-sent", "intermediate-in-bundle", "intermediate-in-bundle-after-root",
         "cross-signed-root-trusted",
         "cross-signed-old-root-trusted", "cross-signed-nothing-trusted",
         "duplicate-subject-first", "duplicate-subject-second", "duplicate-subject-neither",
         "many-of-one-subject"]


def send(lib, server, env, run):
    prog, style = CLIENT[lib]
    before = len(server.credentials())
    res = run([CLIENTS / prog, style, "localhost", server.port, "starttls"], env)
    return len(server.credentials()) > before, res


def index(bundle, cache):
    res = subprocess.run([INDEXER, "-d", cache, bundle], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode == 0, res.stderr
    return str(cache)


@pytest.mark.parametrize("lib", ["openssl", "gnutls"])
@pytest.mark.parametrize("case", CASES)
def test_lazy_verdict_is_the_eager_verdict(case, lib, pki, certs, smtp_server, shim, baseline,
                                           run, tmp_path):
    """Scanned by the process, prepared by smtpguard-trust-index, or the
    whole bundle parsed: the same verdicts."""
    cert, bundle, good = cases(certs, pki)[case]
    server = smtp_server(cert)
    lazy = shim([server.port], ca=bundle)
    cached = dict(lazy, SMTPGUARD_TRUST_CACHE=index(bundle, tmp_path / "cache"))
    eager = dict(lazy, SMTPGUARD_EAGER_TRUST="1")
    got_lazy, res_lazy = send(lib, server, lazy, run)
    got_cached, res_cached = send(lib, server, cached, run)
    got_eager, res_eager = send(lib, server, eager, run)
    assert got_lazy == got_cached == got_eager == good, (
        describe(res_lazy), describe(res_cached), describe(res_eager), lazy.log())
    if not good:  # the refusal is the shim's: without it the careless client sends
        sent, res = send(lib, server, baseline(), run)
        assert sent, describe(res)
        assert server.credentials()[-1] == (USER, PASSWORD, True)


# Sends one message per line read from stdin ("HOST PORT"), printing ok or fail.
# With SG_TEST_CAFILE the program verifies against that file itself (OpenSSL
# then never sees the policy's store: only the shim's verdict judges by it).
LONG_RUNNING = r"""
import os, smtplib, ssl, sys
cafile = os.environ.get("SG_TEST_CAFILE")
context = ssl.create_default_context(cafile=cafile) if cafile else None
for line in sys.stdin:
    host, port = line.split()
    try:
        s = smtplib.SMTP(host, int(port), timeout=10)
        s.starttls(context=context)
        s.login("sguser", "Sg-S3cret-Pa55")
        s.sendmail("sender@example.com", ["rcpt@example.com"], b"Subject: x\r\n\r\nhi\r\n")
        s.quit()
        print("ok", flush=True)
    except Exception as e:
        print("fail", type(e).__name__, str(e).replace("\n", " "), flush=True)
"""


class Running:
    """LONG_RUNNING under env: session(server) -> "ok" or "fail ..."."""

    def __init__(self, env):
        self.proc = subprocess.Popen(["/usr/bin/python3", "-c", LONG_RUNNING], env=env,
                                     text=True, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def session(self, server):
        self.proc.stdin.write(f"localhost {server.port}\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.mark.parametrize("mode", ["lazy", "eager", "prepared", "verifying"])
def test_bundle_updated_under_a_running_process(mode, pki, certs, smtp_server, shim, tmp_path):
    """Documented (smtpguard.conf(5), ca_file): at each handshake a running
    process compares ca_file with what its store was built from; after an
    update a CA removed from the file no longer counts, though a chain had
    asked for it and its verdict was cached, and a CA added counts. A new process reads the new
    file too. prepared: an index made by smtpguard-trust-index for the old
    file and again for the new one (as the update hook does); verifying: the
    program verifies against its own file, which trusts every CA here, so
    only the shim's verdict (and its cache) can refuse."""
    first = smtp_server("good")                        # test CA
    second = smtp_server("unknownca")                  # ca2: removed from the file later
    third = smtp_server(pki.chain("leaf", "inter"))    # root: added to the file later
    bundle = Path(pki.d / f"live-{mode}.pem")
    bundle.write_text(pki.bundle("live-old", "ca", "ca2").read_text())
    env = shim([first.port, second.port, third.port], ca=bundle)
    if mode == "eager":
        env = dict(env, SMTPGUARD_EAGER_TRUST="1")
    if mode == "prepared":
        env = dict(env, SMTPGUARD_TRUST_CACHE=index(bundle, tmp_path / "cache"))
    if mode == "verifying":
        env = dict(env, SG_TEST_CAFILE=str(pki.bundle("all", "ca", "ca2", "root",
                                                      system=False)))
    with Running(env) as p:
        assert p.session(first) == "ok"
        assert p.session(second) == "ok"  # its verdict is cached (60 s): not after the update
        # Replaced as update-ca-certificates does (a new file renamed over).
        tmp = bundle.with_suffix(".new")
        tmp.write_text(pki.bundle("live-new", "ca", "root").read_text())
        os.utime(tmp, (time.time() + 5, time.time() + 5))
        tmp.rename(bundle)
        if mode == "prepared":
            index(bundle, tmp_path / "cache")
        assert p.session(second).startswith("fail")     # ca2: removed
        assert p.session(third) == "ok"                 # root: added
        assert p.session(first) == "ok"
    assert len(second.credentials()) == 1 and len(third.credentials()) == 1
    assert len(first.credentials()) == 2
    # A new process judges by the new file.
    new = subprocess.run(["/usr/bin/python3", "-c", LONG_RUNNING], env=env, text=True,
                         input=f"localhost {second.port}\nlocalhost {third.port}\n",
                         capture_output=True, timeout=60)
    assert new.stdout.split("\n")[0].startswith("fail"), new.stdout + new.stderr
    assert new.stdout.split("\n")[1] == "ok", new.stdout + new.stderr
    assert len(second.credentials()) == 1 and len(third.credentials()) == 2
    # Without the shim the careless client sends to the server the policy refused.
    base = subprocess.run(["/usr/bin/python3", "-c", LONG_RUNNING], text=True,
                          env={k: v for k, v in env.items() if k != "LD_PRELOAD"},
                          input=f"localhost {second.port}\n", capture_output=True, timeout=60)
    assert base.stdout.strip() == "ok" and len(second.credentials()) == 2, base.stdout


def test_ca_path_updated_under_a_running_process(pki, certs, smtp_server, shim, tmp_path):
    """ca_path: a CA whose hashed link is removed (openssl rehash) no longer
    counts for a running process, though OpenSSL had already loaded it into
    the store; the directory's modification time tells the change."""
    good = smtp_server("good")                  # test CA: ca_file
    other = smtp_server("unknownca")            # ca2: in ca_path, then removed
    hashed = tmp_path / "hashed"
    hashed.mkdir()
    (hashed / "ca2.pem").write_text(pki.text("ca2"))
    openssl(hashed, "rehash", hashed)
    env = shim([good.port, other.port], extra=f"ca_path = {hashed}")
    with Running(env) as p:
        assert p.session(other) == "ok" and p.session(good) == "ok"
        for f in hashed.iterdir():
            f.unlink()
        assert p.session(other).startswith("fail")
        assert p.session(good) == "ok"
    assert len(other.credentials()) == 1 and len(good.credentials()) == 2


def test_past_sixteen_changes_a_changed_file_refuses(pki, certs, smtp_server, shim, tmp_path):
    """Documented bound: a process follows 16 changes of a file. Past them, a
    file replaced by the same bytes (update-ca-certificates replaces the
    bundle at every run) is no change; one whose content differs is not
    followed, so while it differs every handshake is refused with words that
    say to restart (here the change removed the test CA: keeping the old store
    would have let its server pass). A new process follows the file as it is."""
    good = smtp_server("good")
    bundle = tmp_path / "bundle.pem"
    with_ca = pki.bundle("bound", "ca", system=False).read_text()
    bundle.write_text(with_ca)
    env = shim([good.port], ca=bundle)

    def replace(text, n):
        tmp = tmp_path / "bundle.new"
        tmp.write_text(text)
        os.utime(tmp, (time.time() + n, time.time() + n))
        tmp.rename(bundle)

    with Running(env) as p:
        assert p.session(good) == "ok"
        for n in range(1, 17):  # each seen at the next handshake
            replace(with_ca, n)
            assert p.session(good) == "ok", n
        for n in range(17, 20):  # the same bytes again, each time a new file
            replace(with_ca, n)
            assert p.session(good) == "ok", n
        replace(pki.text("ca2"), 20)   # a change of content: the test CA gone
        assert p.session(good).startswith("fail")
        assert p.session(good).startswith("fail")
    assert len(good.credentials()) == 20
    assert "changed more than 16 times while this process ran" in env.log()
    assert "restart the program" in env.log()
    replace(with_ca, 21)
    new = subprocess.run(["/usr/bin/python3", "-c", LONG_RUNNING], env=env, text=True,
                         input=f"localhost {good.port}\n", capture_output=True, timeout=60)
    assert new.stdout.startswith("ok"), new.stdout + new.stderr


def rewrite_in_place(path, edit):
    """edit(bytes) -> bytes of the same length, written into the same inode;
    then the modification time put back to the nanosecond: the file keeps the
    identity a prepared index records, only its bytes differ."""
    st = path.stat()
    data = path.read_bytes()
    new = edit(data)
    assert len(new) == len(data) and new != data
    with open(path, "r+b") as f:
        f.write(new)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = path.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (st.st_ino, st.st_size,
                                                                st.st_mtime_ns)


END_LINE = b"-----END CERTIFICATE-----"


def bytes_read(trace, path):
    """Bytes that read/pread64 calls returned from path, in an `strace -y` log."""
    total = 0
    for line in Path(trace).read_text().splitlines():
        m = re.search(r"\b(?:read|pread64)\((\d+)<([^>]*)>.*\)\s+=\s+(\d+)", line)
        if m and m.group(2) == str(path):
            total += int(m.group(3))
    return total


@pytest.mark.parametrize("lib", ["openssl", "gnutls"])
def test_prepared_index_reads_only_the_anchors_named(lib, pki, smtp_server, shim, run,
                                                     baseline, tmp_path):
    """With a prepared index the process does not read the bundle: it reads
    (strace) less than one certificate's worth of it, and the END lines of
    every other certificate broken in place (identity kept) do not matter,
    where a process that reads the bundle (no index) cannot use it. The
    anchor it does read is checked: its own END line broken, refused."""
    server = smtp_server("good")
    bundle = tmp_path / "bundle.pem"
    test_ca = pki.text("ca").encode()
    bundle.write_bytes(pki.bundle("others", "ca2", "root", "old").read_bytes() + test_ca)
    cache = index(bundle, tmp_path / "cache")
    env = shim([server.port], ca=bundle)
    prepared = dict(env, SMTPGUARD_TRUST_CACHE=cache)
    trace = tmp_path / "strace.log"
    prog, style = CLIENT[lib]
    res = run(["strace", "-f", "-y", "-qq", "-o", trace, "-e", "trace=read,pread64",
               CLIENTS / prog, style, "localhost", server.port, "starttls"], prepared)
    assert len(server.credentials()) == 1, describe(res)
    got = bytes_read(trace, bundle)
    assert 0 < got <= 2 * len(test_ca) < bundle.stat().st_size // 10, got
    keep = len(bundle.read_bytes()) - len(test_ca)   # the test CA: the last certificate
    broken = END_LINE[:-6] + b"X-----"
    rewrite_in_place(bundle, lambda d: d[:keep].replace(END_LINE, broken) + d[keep:])
    got, res = send(lib, server, prepared, run)
    assert got, describe(res) + prepared.log()
    if lib == "openssl":  # (GnuTLS, loading the bundle whole, skips what it cannot read)
        got, res = send(lib, server, dict(env, SMTPGUARD_TRUST_CACHE=str(tmp_path / "no")), run)
        assert not got, describe(res)
    rewrite_in_place(bundle, lambda d: d[:keep] + d[keep:].replace(END_LINE, broken))
    got, res = send(lib, server, prepared, run)
    assert not got, describe(res)
    sent, res = send(lib, server, baseline(), run)  # the refusals are the shim's
    assert sent, describe(res)


def test_prepared_index_is_used_and_only_while_it_matches(pki, certs, smtp_server, shim, run,
                                                          tmp_path):
    """A cache whose keys were tampered with is read (the test CA is no longer
    found: refused, never more trusting), until the bundle changes: then the
    process ignores it and scans the bundle itself."""
    server = smtp_server("good")
    bundle = tmp_path / "bundle.pem"
    bundle.write_text(pki.bundle("cached", "ca").read_text())
    cache = tmp_path / "cache"
    env = dict(shim([server.port], ca=bundle), SMTPGUARD_TRUST_CACHE=index(bundle, cache))
    assert send("openssl", server, env, run)[0]
    (idx,) = cache.iterdir()
    data = bytearray(idx.read_bytes())
    head = 56 + len(str(bundle))              # header, then the bundle's path
    for at in range(head, len(data), 24):     # each entry: subject key, body, end
        data[at:at + 8] = bytes(8)
    idx.write_bytes(bytes(data))
    got, res = send("openssl", server, env, run)
    assert not got, describe(res)
    got, res = send("gnutls", server, env, run)
    assert not got, describe(res)
    bundle.write_text(bundle.read_text())     # the same certificates, a new file
    os.utime(bundle, (time.time() + 10, time.time() + 10))
    for lib in ("openssl", "gnutls"):
        got, res = send(lib, server, env, run)
        assert got, describe(res)
