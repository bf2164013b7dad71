"""gnutls_x509_crt_equals answered by the shim as a byte comparison
(shim/gnutls_equals.c, issue 15): GnuTLS renders two differing subjects as
strings before it compares the certificates' DER, in every chain verification,
the program's and the shim's. The answers must be GnuTLS's own for every pair:
the same certificate parsed twice, a re-encoded (modified) copy, different
certificates, certificates that share a subject (another key; the same name
encoded as PrintableString instead of UTF8String, which GnuTLS's string
comparison takes for the same name)."""

import pytest

from lib.forgery import gate  # noqa: F401 (a fixture)
from lib.forgery import make_ca, make_leaf, printable_ca
from lib.runner import CLIENTS

CHECK = CLIENTS / "crt_equals"


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("equals")
    ca = make_ca(d, "ca", "/CN=smtpguard equals CA", "EC")
    other = make_ca(d, "other", "/CN=smtpguard equals CA", "EC")   # the same name, another key
    return [ca[0], other[0], make_leaf(d, "leaf", ca).cert, make_leaf(d, "leaf2", ca).cert,
            printable_ca(d, "twin", "/CN=smtpguard equals CA")]


def answers(run, env, files, gate=None):
    res = run([str(CHECK), *(("--smtp", str(gate)) if gate else ()), *files], env, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    pairs = {tuple(map(int, line.split()[:2])): int(line.split()[2]) for line in lines[:-1]}
    assert lines[-1].startswith("dn_strings "), res.stdout[-500:]
    return pairs, int(lines[-1].split()[1])


def expected(files):
    """Objects 3f, 3f+1 (parsed) and 3f+2 (modified) are file f: equal exactly
    when they come from the same file."""
    n = 3 * len(files)
    return {(i, j): int(i // 3 == j // 3) for i in range(n) for j in range(n)}


def test_gnutls_answers(run, baseline, cert_files, gate):
    pairs, dn_strings = answers(run, baseline(), cert_files, gate)
    assert pairs == expected(cert_files)
    assert dn_strings > 0   # GnuTLS compares differing subjects as strings


def test_shim_answers_as_gnutls_without_rendering_names(run, shim, cert_files, gate):
    pairs, dn_strings = answers(run, shim([gate]), cert_files, gate)
    assert pairs == expected(cert_files)
    assert dn_strings == 0   # the shim answered: no name rendered


def test_gnutls_answers_before_any_smtp_connection(run, shim, cert_files, gate):
    pairs, dn_strings = answers(run, shim([gate]), cert_files)
    assert pairs == expected(cert_files)
    assert dn_strings > 0
