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
import subprocess

import pytest

from lib.forgery import BAD, check_delivered, check_refused, corrupted_copy, forged_by
from lib.forgery import gate  # noqa: F401 (a fixture)
from lib.forgery import make_ca, make_leaf
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
        ca_pair = make_ca(tmp_path, "rsa-ca", "/CN=smtpguard RSA test CA", "RSA")
        ca, good = ca_pair[0], make_leaf(tmp_path, "rsa-good", ca_pair)
    order = [good.cert, corrupted_copy(tmp_path, good).cert,
             forged_by(tmp_path, ca, algo).cert, good.cert]
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
    why = check_refused(res, server, env, side, leaks=style == "no_verify")
    if side == "shim" and style == "no_verify":   # the shim's own check, at the signature
        assert "signature in the certificate is invalid" in env.log(), why


@pytest.mark.parametrize("style", ["no_verify", "good"])
def test_good_server_delivers(style, certs, smtp_server, run, message_file, shim):
    server = smtp_server("good", "starttls")
    env = shim([server.port])
    env["SG_CA_FILE"] = certs.ca
    cmd = careless(style).build(server.port, "starttls", message_file)
    res = run(cmd.argv, env, timeout=60)
    check_delivered(res, server, env, message_file)


# ---- another nettle in the process ----------------------------------------------

OLD_NETTLE = """
int nettle_ecdsa_verify(const void *a, unsigned long b, const void *c, const void *d)
{ return 42; }
int nettle_rsa_pkcs1_verify(const void *a, unsigned long b, const void *c, const void *d)
{ return 43; }
"""
OLD_CALLER = """
#include <arpa/inet.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>
int nettle_ecdsa_verify(const void *a, unsigned long b, const void *c, const void *d);
int nettle_rsa_pkcs1_verify(const void *a, unsigned long b, const void *c, const void *d);
int main(int argc, char **argv)
{
    /* an SMTP connection first: the shim's memos are open from then on */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return 2;
    if (argc > 2) /* another library of the process uses nettle 3.6+ */
        dlopen("libhogweed.so.6", RTLD_NOW | RTLD_LOCAL);
    static const long curve[64];
    unsigned long limbs[8] = {0};
    const void *point[2] = {curve, limbs}; /* an old nettle's objects */
    printf("ecdsa=%d rsa=%d\\n", nettle_ecdsa_verify(point, 0, 0, 0),
           nettle_rsa_pkcs1_verify(0, 0, 0, 0));
    close(fd);
    return 0;
}
"""


@pytest.mark.parametrize("with_hogweed6", [False, True], ids=["alone", "beside-hogweed6"])
def test_an_older_nettle_is_called_as_it_is(with_hogweed6, tmp_path, run, baseline, shim,
                                            gate):
    """The names are exported unversioned, so an older nettle's references
    (HOGWEED_4) bind to the shim too: each must reach its caller's own nettle,
    never libhogweed.so.6 (another layout) and never a refusal, SMTP or not."""
    (tmp_path / "old.c").write_text(OLD_NETTLE)
    (tmp_path / "old.map").write_text(
        "HOGWEED_4 { global: nettle_ecdsa_verify; nettle_rsa_pkcs1_verify; local: *; };\n")
    (tmp_path / "caller.c").write_text(OLD_CALLER)
    subprocess.run(["cc", "-shared", "-fPIC", "-o", tmp_path / "libhogweed.so.4",
                    "-Wl,-soname,libhogweed.so.4", f"-Wl,--version-script={tmp_path}/old.map",
                    tmp_path / "old.c"], check=True, timeout=60)
    subprocess.run(["cc", "-o", tmp_path / "caller", tmp_path / "caller.c",
                    tmp_path / "libhogweed.so.4", "-ldl"], check=True, timeout=60)
    argv = [str(tmp_path / "caller"), str(gate)] + (["6"] if with_hogweed6 else [])
    for env in (baseline(), shim([gate])):
        env["LD_LIBRARY_PATH"] = str(tmp_path)
        res = run(argv, env, timeout=20)
        assert res.returncode == 0 and res.stdout.strip() == "ecdsa=42 rsa=43", (
            res.returncode, res.stdout, res.stderr)
