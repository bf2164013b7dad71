"""The key of the OpenSSL verdict cache (shim/ossl_verdict.c fingerprint, issue 15).

A process that sends several messages has its chain's verdict kept for a minute, under
a SHA-256 of the presented certificates (their DER bytes), from its second verdict on
(the first neither asks nor fills the cache: a one-message process computes no
fingerprint). Shown with one Python process (its ssl module: OpenSSL 3) that verifies
against a file trusting every CA here, so that only the shim's verdict judges by the
policy's store: a good server twice (the second verdict kept), then a server under the
same name whose chain the policy does not trust (another CA): refused, not answered by
the kept verdict (a constant fingerprint would let it through); then the good server
again. Without the library the untrusted server receives the credentials.
"""
import pytest

from test_trust_lazy import Running, pki  # noqa: F401 (pki: a fixture)


@pytest.mark.parametrize("side", ["baseline", "shim"])
def test_kept_verdict_answers_only_its_own_chain(side, pki, smtp_server, shim, baseline):
    good = smtp_server("good")          # the test CA: in the policy's store
    other = smtp_server("unknownca")    # ca2: not in it
    program_trusts = pki.bundle("fp-program", "ca", "ca2", system=False)
    env = (baseline() if side == "baseline"
           else shim([good.port, other.port], ca=pki.bundle("fp-policy", "ca", system=False)))
    env = dict(env, SG_TEST_CAFILE=str(program_trusts))
    with Running(env) as p:
        assert p.session(good) == "ok"  # the process's first verdict: not kept
        assert p.session(good) == "ok"  # kept
        second = p.session(other)
        assert p.session(good) == "ok"
    if side == "baseline":
        assert second == "ok" and len(other.credentials()) == 1
    else:
        assert second.startswith("fail"), second
        assert other.credentials() == []
    assert len(good.credentials()) == 3
