"""gnutls_x509_rdn_get2, gnutls_x509_crt_get_authority_key_id,
gnutls_x509_crt_get_subject_key_id, gnutls_x509_crt_get_activation_time,
gnutls_x509_crt_get_expiration_time, gnutls_x509_crt_get_basic_constraints,
gnutls_x509_crt_get_key_usage and gnutls_x509_crt_get_extension_info answered
again by the shim from what GnuTLS answered for the same bytes
(shim/gnutls_memo.c, issue 15): both verifications of a chain, the program's
and the shim's, ask them the same questions. The answers must be GnuTLS's own
for every input: names and their strings under both flag values, a name cut
short by a byte (a prefix of a remembered name), each key identifier with room
enough, with one byte of room, with no buffer, of a certificate without one,
of a modified (re-encoded) copy, and of certificates sharing a name; the
validity bounds (UTCTime and GeneralizedTime) of each; basic
constraints and key usage present (critical or not, with a path length) and
absent, each output NULL in turn, outputs starting from other values; each
extension's OID and criticality with room, exact room, a byte short, no
buffer, past the last one."""
import subprocess

import pytest

from lib.forgery import gate  # noqa: F401 (a fixture)
from lib.certs import _openssl
from lib.constants import PASSWORD, USER
from lib.forgery import check_refused, make_ca, make_key, make_leaf, printable_ca
from lib.forgery import subject_of
from lib.runner import CLIENTS, describe

CHECK = CLIENTS / "gnutls_memo_check"


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("memo")
    ca = make_ca(d, "ca", "/CN=smtpguard memo CA/O=Example, Inc.", "EC")
    other = make_ca(d, "other", "/CN=smtpguard memo CA/O=Example, Inc.", "EC")
    return [make_leaf(d, "leaf", ca).cert, ca[0], other[0], make_leaf(d, "leaf2", other).cert,
            printable_ca(d, "bare", "/CN=smtpguard memo CA/O=Example, Inc."), path_ca(d)]


def path_ca(d):
    """A CA whose basic constraints (with a path length) and key usage are not
    critical, valid until after 2049 (a GeneralizedTime)."""
    key, cert = make_key(d, "path"), str(d / "path.pem")
    _openssl("req", "-x509", "-new", "-key", key, "-out", cert, "-days", "20000",
             "-subj", "/CN=smtpguard memo path CA", "-config", "/dev/null",
             "-addext", "basicConstraints=CA:TRUE,pathlen:2",
             "-addext", "keyUsage=keyCertSign,digitalSignature", cwd=d)
    return cert


def answers(run, env, files, gate=None):
    res = run([str(CHECK), *(("--smtp", str(gate)) if gate else ()), *files], env, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[-1].startswith("speedup "), res.stdout[-500:]
    return lines[:-1], float(lines[-1].split()[1])


@pytest.fixture(scope="module")
def expected(cert_files, request):
    """GnuTLS's own answers, without the library (run as the tests run it)."""
    res = subprocess.run([str(CHECK), *cert_files], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()[:-1]
    assert len(lines) == 2 * 3 * len(cert_files)
    return lines


def test_gnutls_answers(run, baseline, cert_files, expected, gate):
    lines, speedup = answers(run, baseline(), cert_files, gate)
    assert lines == expected
    # names differ, keys are found and not, buffers are short: the cases are there
    text = "\n".join(lines)
    for case in ("aki=0/20/0:", "aki=-56/", "aki_short=-51/20", "short/0=-", "subject/1=",
                 "ski=0/20/0:", "ski=-56/", "ski_short=-51/20", "ski_null=-51/20",
                 "bc=1/1/1/-1", "bc=1/0/1/2", "bc=0/1/0/", "bc=-56/", "ku=0/6/1", "ku=0/132/0",
                 "ku=-56/", "ext0=0/9/1:2.5.29.19:120", "ext2=0/9/0:2.5.29.37:120",
                 "exact=0/9:2.5.29.19:120", "short=-51/10/1:xxxx", "null=-51/10", "ext0=-56/",
                 "ext6=-56/"):
        assert case in text, case
    bounds = [int(w.split("=")[1]) for w in text.split() if w.startswith(("not_before=",
                                                                          "not_after="))]
    assert len(bounds) == 2 * len(lines) and max(bounds) > 2524608000, bounds  # 2050
    # the modified copies' expiry, changed after the first round (gnutls_memo_check.c)
    changed = [line for line in lines if line.startswith("1 ") and
               ("not_after=2000000000" in line or "not_after=2600000000" in line)]
    assert len(changed) == len(cert_files), changed
    assert speedup < 3, speedup


def test_shim_answers_as_gnutls_and_from_its_memo(run, shim, cert_files, expected, gate):
    lines, speedup = answers(run, shim([gate]), cert_files, gate)
    assert [(a, b) for a, b in zip(lines, expected) if a != b] == []
    assert lines == expected
    # a repeated name and key identifier cost a comparison: ~10x faster
    assert speedup > 3, f"repeated calls were not answered by the memo: {speedup}"


def test_gnutls_answers_before_any_smtp_connection(run, shim, cert_files, expected, gate):
    lines, speedup = answers(run, shim([gate]), cert_files)
    assert lines == expected
    assert speedup < 3, speedup


# ---- the verdicts with the memo filled by the program's own verification ----

CARELESS = CLIENTS / "careless_gnutls"


@pytest.mark.parametrize("side", ("baseline", "shim"))
@pytest.mark.parametrize("cert,decoy", [("good", "ca"), ("unknownca", "ca2"),
                                        ("wronghost", "ca"), ("expired", "ca")])
def test_verdicts_after_the_program_verified(cert, decoy, side, certs, smtp_server, run,
                                             baseline, shim, message_file):
    """The program verifies the server against its own trust (for the unknown
    CA's server: that very CA, so its verification succeeds and the memo holds
    GnuTLS's answers for the leaf and that CA), ignores its result and mails.
    Without the library the bad servers get the credentials and message; with
    it the shim's own verdict, asking GnuTLS the same questions, still refuses
    them, and the good server gets the message."""
    server = smtp_server(cert, "starttls")
    env = baseline() if side == "baseline" else shim([server.port])
    env["SG_DECOY"] = str(getattr(certs, decoy))
    res = run([str(CARELESS), "decoy", "localhost", str(server.port), "starttls",
               str(message_file)], env, timeout=60)
    if cert == "good" or side == "baseline":
        server.wait_idle(5.0)
        assert server.credentials() == [(USER, PASSWORD, True)], describe(res)
        assert len(server.transactions()) == 1 and res.returncode == 0, describe(res)
    else:
        check_refused(res, server, env, side, leaks=True)


def intermediate_of(d, root):
    """A CA for /CN=smtpguard memo intermediate, signed by root = (cert, key)."""
    key, csr, cert = make_key(d, "inter"), str(d / "inter.csr"), str(d / "inter.pem")
    _openssl("req", "-new", "-key", key, "-out", csr, "-subj", "/CN=smtpguard memo intermediate",
             "-config", "/dev/null", cwd=d)
    (d / "inter.ext").write_text("basicConstraints=critical,CA:TRUE\n"
                                 "keyUsage=critical,keyCertSign,cRLSign\n"
                                 "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    _openssl("x509", "-req", "-in", csr, "-CA", root[0], "-CAkey", root[1], "-set_serial",
             "4712", "-days", "30", "-extfile", str(d / "inter.ext"), "-out", cert, cwd=d)
    return cert, key


@pytest.mark.parametrize("side", ("baseline", "shim"))
def test_missing_intermediate_after_the_program_verified(side, tmp_path, smtp_server, run,
                                                         baseline, shim, message_file):
    """The server sends its leaf without the intermediate that links it to the
    policy's root. The program trusts that intermediate itself and verifies
    (GnuTLS parses the leaf twice and copies the intermediate during the
    handshake), ignores its result and mails: without the library the server
    gets the message; with it the policy's store lacks the link and the shim
    refuses."""
    root = make_ca(tmp_path, "root", "/CN=smtpguard memo root", "EC")
    inter = intermediate_of(tmp_path, root)
    assert subject_of(inter[0]) != subject_of(root[0])
    server = smtp_server(make_leaf(tmp_path, "ileaf", inter), "starttls")
    env = baseline() if side == "baseline" else shim([server.port], ca=root[0])
    env["SG_DECOY"] = inter[0]
    res = run([str(CARELESS), "decoy", "localhost", str(server.port), "starttls",
               str(message_file)], env, timeout=60)
    check_refused(res, server, env, side, leaks=True)
