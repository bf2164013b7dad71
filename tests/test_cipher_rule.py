"""The shim answers the policy's default TLS 1.2 rule ("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL")
with a predicate on each cipher (shim/ossl_ciphers.c) inside the security callback it chains
on an SMTP connection's SSL, instead of OpenSSL's rule parser. The predicate must select
exactly what the rule selects, for every cipher the build knows, in OpenSSL 3 and 1.1:
build/clients/cipher_rule (tests/HARNESS.md) makes an SMTP handshake under the shim, then asks
the SSL's callback, at security level 0 (where OpenSSL's own callback refuses nothing), about
every cipher of "ALL:COMPLEMENTOFALL" and compares with the list the rule string builds.
TLS 1.3 suites are allowed by name, from the policy's ciphersuites.

Without the shim (or with a shim that chains no callback) the callback allows every cipher:
the comparison fails, so it can fail."""
import pytest

from lib.runner import describe
from test_legacy import legacy, openssl_client  # noqa: F401 (legacy: a fixture)

RULE = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL"
DEFAULT_SUITES = {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                  "TLS_AES_128_GCM_SHA256"}
# What the rule selects in both builds (a check that the rule side is what it says).
RULE_NAMES = {"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
              "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
              "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"}
OPENSSL = [pytest.param("3", id="openssl3"), pytest.param("1.1", id="openssl11")]


def answers(res):
    """The client's report: {wrapped, known, allowed, rule, suites: {name: bool}, disagree}."""
    assert res.returncode == 0, describe(res)
    out = {"allowed": set(), "rule": set(), "suites": {}, "disagree": [], "known": 0}
    for line in res.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "wrapped":
            out["wrapped"] = rest == "yes"
        elif word == "known":
            out["known"] = int(rest)
        elif word in ("allowed", "rule"):
            out[word].add(rest)
        elif word == "suite":
            name, verdict = rest.split()
            out["suites"][name] = verdict == "yes"
        elif word == "ops":
            out["disagree"].append(rest)
    return out


@pytest.fixture
def client(request):
    return openssl_client(request, "cipher_rule")


def ask(client, server, env, run):
    return answers(run([client, "localhost", server.port, RULE], env, timeout=40))


@pytest.mark.parametrize("openssl", OPENSSL)
def test_predicate_selects_what_the_rule_selects(openssl, client, smtp_server, shim, baseline,
                                                 run):
    c = client(openssl)
    server = smtp_server(mode="implicit")
    got = ask(c, server, shim([server.port], implicit=[server.port]), run)
    assert got["wrapped"] and not got["disagree"], got
    assert got["known"] >= 40, got          # every cipher the build knows was asked about
    assert got["rule"] >= RULE_NAMES, got
    assert got["allowed"] == got["rule"], (sorted(got["allowed"] - got["rule"]),
                                           sorted(got["rule"] - got["allowed"]))
    assert {n for n, yes in got["suites"].items() if yes} == DEFAULT_SUITES, got["suites"]
    assert "TLS_AES_128_CCM_SHA256" in got["suites"], got["suites"]   # asked, refused

    # Without the shim the SSL's callback is OpenSSL's own: at level 0 it allows all.
    alone = ask(c, server, baseline(), run)
    assert not alone["wrapped"] and len(alone["allowed"]) == alone["known"] == got["known"]


@pytest.mark.parametrize("openssl", OPENSSL)
def test_suites_by_name_and_another_rule_is_not_judged(openssl, client, smtp_server, shim, run):
    """ciphersuites names the suites allowed; a ciphers rule other than the default
    replaces the program's TLS 1.2 list instead (only OpenSSL's parser knows what it
    selects): the callback then refuses no TLS 1.2 cipher, so that it cannot refuse
    one the rule selects (DHE here)."""
    c = client(openssl)
    server = smtp_server(mode="implicit")
    env = shim([server.port], implicit=[server.port],
               extra="ciphers = ECDHE+AESGCM:DHE+AESGCM\n"
                     "ciphersuites = TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256")
    got = ask(c, server, env, run)
    assert got["wrapped"] and not got["disagree"], got
    assert {n for n, yes in got["suites"].items() if yes} == \
        {"TLS_CHACHA20_POLY1305_SHA256", "TLS_AES_128_GCM_SHA256"}, got["suites"]
    assert len(got["allowed"]) == got["known"], got
