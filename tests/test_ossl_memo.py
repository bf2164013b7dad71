"""The memo of certificate signatures OpenSSL accepted (shim/ossl_memo.c, issue 15).

The shim's verdict verifies an OpenSSL peer's chain again, in the same process, on
the same bytes as a program that verifies the server itself; the memo answers the
second X509_verify with what X509_verify itself answered for exactly the same
certificate bytes and key. Shown here with the C client tests/clients/ossl_memo.c
(X509_verify called by the program, and by libcrypto inside X509_verify_cert),
built against OpenSSL 3 and against Debian 11's OpenSSL 1.1 (`make legacy`):
with the library preloaded the answers are exactly OpenSSL's own, for a valid
check, its repetition (answered by the memo once the process has had an SMTP
connection: many times faster), a changed signature byte, a leaf signed by an
impostor under the CA's name, another key, a key object whose EC point the program
changed in place after its check (the memo compares what it checked: an OpenSSL 3 EC
key by a private copy, an OpenSSL 1.1 one by its point's coordinates), in a forked
child; a refusal is never remembered; before any SMTP connection the memo is not used at all. End to end, the
OpenSSL 3 careless client meets a leaf whose signature is corrupted and one signed by
the wrong key.
"""
import pytest

from lib.forgery import BAD, check_delivered, check_refused, corrupted_copy, forged_by
from lib.forgery import gate  # noqa: F401 (a fixture)
from lib.forgery import make_ca, make_leaf
from lib.runner import CLIENTS
from test_legacy import legacy  # noqa: F401 (a fixture: `make legacy` once)

MEMO = CLIENTS / "ossl_memo"   # and build/legacy/ossl_memo11, against OpenSSL 1.1
CARELESS = CLIENTS / "careless"
EXPECTED = {
    "valid": 1, "valid_again": 1, "sig_byte": 0, "sig_byte_again": 0, "forged": 0,
    "forged_again": 0, "other_key": 0, "valid_last": 1, "key_fresh": 1, "key_changed": 0,
    "store_good": 1,
    "store_sig_byte": 0, "store_forged": 0, "store_good_again": 1, "child_valid": 1,
    "child_bad": 0, "threads_wrong": 0,
}


@pytest.fixture(params=["3", "1.1"], ids=["openssl3", "openssl1.1"])
def client(request):
    """The client built against OpenSSL 3, or against Debian 11's 1.1."""
    if request.param == "1.1":
        return request.getfixturevalue("legacy") / "ossl_memo11"
    return MEMO


@pytest.fixture(params=["EC", "RSA"])
def chain(request, tmp_path):
    """The client's files: CA, good leaf, the leaf with a signature byte changed,
    a leaf under the CA's name signed by an impostor, another CA."""
    algo = request.param
    ca = make_ca(tmp_path, "ca", "/CN=smtpguard memo test CA", algo)
    good = make_leaf(tmp_path, "good", ca)
    other = make_ca(tmp_path, "other", "/CN=smtpguard memo other CA", algo)
    return [ca[0], good.cert, corrupted_copy(tmp_path, good).cert,
            forged_by(tmp_path, ca[0], algo).cert, other[0]]


def answers(run, env, port, files, client):
    if not client.exists():
        pytest.fail(f"{client} is not built: run `make clients legacy`", pytrace=False)
    res = run([str(client), str(port), *files], env, timeout=60)
    assert res.returncode == 0, res.stderr
    got = dict(line.split() for line in res.stdout.splitlines())
    speedup = float(got.pop("speedup"))
    return {k: int(v) for k, v in got.items()}, speedup


def test_openssl_answers_without_the_library(run, baseline, gate, chain, client):
    """The client's expectations are OpenSSL's own: no memo, no speedup."""
    got, speedup = answers(run, baseline(), gate, chain, client)
    assert got == EXPECTED
    assert speedup < 3, speedup


def test_memo_answers_as_openssl_does(run, shim, gate, chain, client):
    """After an SMTP connection: valid, and valid again from the memo; every near
    miss of the remembered check (signature byte, TBS signed by an impostor under
    the same issuer name, another key, the checked key object changed in place)
    refused, twice; through X509_verify_cert
    too; a forked child keeps the entry and the refusals; 4 threads at once."""
    env = shim([gate])
    got, speedup = answers(run, env, gate, chain, client)
    wrong = {k: (v, EXPECTED.get(k)) for k, v in got.items() if EXPECTED.get(k) != v}
    assert not wrong and got.keys() == EXPECTED.keys(), wrong
    # a hit costs two encodings and a comparison: ~10x faster (P-256, RSA-2048)
    assert speedup > 3, f"a repeated check was not answered by the memo: {speedup}"


def test_memo_unused_before_any_smtp_connection(run, shim, gate, chain, client):
    """The same process without its SMTP connection: OpenSSL's answers, and every
    repetition computed again (no speedup): the memo is not reached."""
    env = shim([gate])
    got, speedup = answers(run, env, 0, chain, client)
    assert got == EXPECTED
    assert speedup < 3, speedup


# ---- end to end: the OpenSSL 3 careless client, the shim's own verdict ----------

@pytest.mark.parametrize("style", ["verify_none", "good"])
@pytest.mark.parametrize("side", ["baseline", "shim"])
@pytest.mark.parametrize("bad", sorted(BAD))
def test_bad_signature_refused(bad, side, style, tmp_path, certs, smtp_server, run,
                               message_file, baseline, shim):
    server = smtp_server(BAD[bad](tmp_path, certs), "starttls")
    env = baseline() if side == "baseline" else shim([server.port])
    env["SG_CA_FILE"] = certs.ca
    res = run([str(CARELESS), style, "localhost", server.port, "starttls", message_file],
              env, timeout=40)
    check_refused(res, server, env, side, leaks=style == "verify_none")


@pytest.mark.parametrize("style", ["verify_none", "good"])
def test_good_server_delivers(style, certs, smtp_server, run, message_file, shim):
    server = smtp_server("good", "starttls")
    env = shim([server.port])
    env["SG_CA_FILE"] = certs.ca
    res = run([str(CARELESS), style, "localhost", server.port, "starttls", message_file],
              env, timeout=40)
    check_delivered(res, server, env, message_file)
