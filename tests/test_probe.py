"""smtpguard probe HOST:PORT prints the library's own verdict for a server, and why,
with exit status 0 (accept) or 1 (refuse)."""
import json
import sys

import pytest

from lib.runner import REPO, baseline_env, describe, run

PROBE = REPO / "scripts" / "smtpguard-probe"

CASES = [  # scenario (cert, tls) -> verdict, failed check
    ("good", "modern", "accept", None),
    ("selfsigned", "modern", "refuse", "chain"),
    ("wronghost", "modern", "refuse", "hostname"),
    ("expired", "modern", "refuse", "chain"),
    ("good", "old", "refuse", "protocol"),
]


def policy(tmp_path, certs, extra=""):
    path = tmp_path / "policy.conf"
    path.write_text(f"mode = enforce\nca_file = {certs.ca}\n{extra}")
    return path


@pytest.mark.parametrize("cert,tls,verdict,check", CASES, ids=[c[0] + "-" + c[1] for c in CASES])
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_probe_verdict(cert, tls, verdict, check, mode, smtp_server, certs, tmp_path):
    server = smtp_server(cert, mode, tls)
    path = policy(tmp_path, certs)
    target = f"localhost:{server.port}"
    flag = ["--implicit"] if mode == "implicit" else []
    res = run([sys.executable, PROBE, target, "--policy", path, "--json", *flag], baseline_env())
    assert res.returncode == (0 if verdict == "accept" else 1), describe(res)
    got = json.loads(res.stdout)
    assert got["verdict"] == verdict and got["check"] == check, got
    assert got["name_checked"] == "localhost" and got["chain"], got
    assert server.credentials() == [] and server.transactions() == [], server.sessions
    if tls == "old":
        assert got["protocol"] in ("TLSv1", "TLSv1.1"), got
    else:
        assert got["protocol"] in ("TLSv1.2", "TLSv1.3") and got["cipher"], got
    text = run([sys.executable, PROBE, target, "--policy", path, *flag], baseline_env())
    assert text.returncode == res.returncode, describe(text)
    assert f"verdict: {verdict}" in text.stdout and "subject:" in text.stdout, text.stdout
    assert "matching section:" in text.stdout, text.stdout


def test_probe_tries_a_draft_policy(smtp_server, certs, tmp_path):
    """--policy FILE: a section trusting the self-signed certificate turns refuse to accept."""
    server = smtp_server("selfsigned")
    target = f"localhost:{server.port}"
    res = run([sys.executable, PROBE, target, "--policy", policy(tmp_path, certs)], baseline_env())
    assert res.returncode == 1, describe(res)
    draft = policy(tmp_path, certs, f"[destination localhost:{server.port}]\n"
                                     f"ca_file = {certs.selfsigned.cert}\n")
    res = run([sys.executable, PROBE, target, "--policy", draft], baseline_env())
    assert res.returncode == 0 and "matching section: line 3" in res.stdout, describe(res)
    assert f"policy rule: {draft}:3 [destination localhost:{server.port}]" in res.stdout, res.stdout


def test_probe_without_a_server(tmp_path, certs):
    res = run([sys.executable, PROBE, "127.0.0.1:1", "--policy", policy(tmp_path, certs),
               "--timeout", "5"], baseline_env())
    assert res.returncode == 2 and "cannot tell" in res.stdout, describe(res)


def test_the_command_dispatches_report_and_probe():
    for sub in ("report", "probe"):
        res = run([REPO / "scripts" / "smtpguard", sub, "--help"], baseline_env())
        assert res.returncode == 0 and f"smtpguard {sub}" in res.stdout, describe(res)
