"""What the policy file changes in a preloaded mailer: modes, per-destination trust,
pins, verify_name, JSON logs, and failing closed on a broken file. Each case asserts
what the server received; the log is checked only where logging is the behaviour."""
import base64
import hashlib
import json
import subprocess

import pytest

from lib.constants import BODY, FROM, PASSWORD, TO, USER
from lib.runner import describe


def curl(port, message_file, host="localhost"):
    return ["curl", "--silent", "--show-error", "--insecure", "--ssl-reqd", "--max-time", "20",
            f"smtp://{host}:{port}", "--user", f"{USER}:{PASSWORD}",
            "--mail-from", FROM, "--mail-rcpt", TO, "--upload-file", str(message_file)]


def spki_pin(cert_path):
    der = subprocess.run(
        f"openssl x509 -in '{cert_path}' -noout -pubkey | openssl pkey -pubin -outform der",
        shell=True, capture_output=True, check=True, timeout=30).stdout
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def delivered(server):
    return server.credentials() == [(USER, PASSWORD, True)] and \
        len(server.transactions()) == 1 and BODY in server.messages()[0]


def leaked_nothing(server):
    return server.credentials() == [] and server.transactions() == []


@pytest.fixture
def deliver(smtp_server, shim, run, message_file):
    """deliver(cert, mode="enforce", extra="", host="localhost") -> (server, result, env)"""
    def go(cert, mode="enforce", extra="", host="localhost"):
        server = smtp_server(cert)
        env = shim([server.port], mode=mode, extra=extra.replace("PORT", str(server.port)))
        return server, run(curl(server.port, message_file, host), env), env
    return go


def test_audit_mode_lets_through_and_logs_what_it_would_refuse(deliver):
    server, res, env = deliver("selfsigned", mode="audit")
    assert delivered(server), describe(res)
    assert "would refuse" in env.log() and "chain" in env.log()


def test_off_mode_passes_everything(deliver):
    server, res, env = deliver("selfsigned", mode="off")
    assert delivered(server), describe(res)
    assert env.log() == ""


def test_destination_mode_overrides_global(deliver):
    server, res, _ = deliver("selfsigned", extra="[destination localhost:PORT]\nmode = audit\n")
    assert delivered(server), describe(res)


def test_destination_ca_file_replaces_global_store(deliver, certs):
    extra = f"[destination localhost:PORT]\nca_file = {certs.ca2}\n"
    server, res, _ = deliver("unknownca", extra=extra)
    assert delivered(server), describe(res)
    server, res, _ = deliver("good", extra=extra)
    assert leaked_nothing(server) and res.returncode != 0, describe(res)


def test_pin_matching_the_server_key_delivers(deliver, certs):
    pin = spki_pin(certs.good.cert)
    server, res, _ = deliver("good", extra=f"[destination localhost:PORT]\npin_sha256 = {pin}\n")
    assert delivered(server), describe(res)


def test_pin_of_another_key_refuses_a_trusted_chain(deliver, certs):
    pin = spki_pin(certs.unknownca.cert)
    server, res, env = deliver("good", extra=f"[destination localhost:PORT]\npin_sha256 = {pin}\n")
    assert leaked_nothing(server) and res.returncode != 0, describe(res)


def test_verify_name_names_the_host_for_an_ip_literal(deliver):
    server, res, _ = deliver("wronghost", host="127.0.0.1",
                             extra="[destination 127.0.0.1:PORT]\nverify_name = wrong.example.net\n")
    assert delivered(server), describe(res)


def test_ip_literal_without_a_name_proves_the_address(deliver):
    """curl parses an IP literal itself: no SNI, no resolver call, so no name. The
    address is the identity (issue 12): `good` holds IP:127.0.0.1 and delivers;
    `wronghost` names only a DNS name and is refused, the log saying how to name it."""
    server, res, _ = deliver("good", host="127.0.0.1")
    assert delivered(server), describe(res)
    server, res, env = deliver("wronghost", host="127.0.0.1")
    assert leaked_nothing(server) and res.returncode != 0, describe(res)
    assert "does not match the host name" in res.stderr, describe(res)
    assert "hostname" in env.log() and "verify_name" in env.log(), env.log()


@pytest.mark.parametrize("cert,ok", [("good", True), ("wronghost", False)])
def test_ip_literal_as_verify_name_checks_the_ip_san(deliver, cert, ok):
    server, res, _ = deliver(cert, host="127.0.0.1",
                             extra="[destination 127.0.0.1:PORT]\nverify_name = 127.0.0.1\n")
    assert delivered(server) if ok else leaked_nothing(server), describe(res)


def test_json_log_lines(deliver):
    server, res, env = deliver("good", extra="log_format = json\n")
    assert delivered(server), describe(res)
    lines = [json.loads(line) for line in env.log().splitlines()]
    assert [line["verdict"] for line in lines] == ["accepted"]
    assert lines[0]["port"] == server.port and lines[0]["protocol"].startswith("TLSv1.")
    assert lines[0]["verify"] == "ok"


BAD_POLICIES = {  # a line appended to a good policy -> words of the message
    "unknown-key": ("cipher = HIGH", "unknown key 'cipher'"),
    "bad-value": ("require_tls = maybe", "require_tls"),
    "syntax": ("this is not a setting", "expected 'key = value'"),
    "low-protocol": ("min_protocol = TLSv1.0", "TLSv1.2"),
    "bad-section": ("[relay]", "unknown section"),
}


@pytest.mark.parametrize("kind", BAD_POLICIES)
def test_broken_policy_fails_closed_and_says_where(kind, smtp_server, shim, run, message_file):
    line, words = BAD_POLICIES[kind]
    server = smtp_server("good")
    env = shim([server.port])
    with open(env.policy_path) as f:
        number = len(f.readlines()) + 1
    with open(env.policy_path, "a") as f:
        f.write(line + "\n")
    res = run(curl(server.port, message_file), env)
    assert leaked_nothing(server) and server.sessions == [], describe(res)
    assert res.returncode != 0
    assert f"{env.policy_path}:{number}: " in res.stderr and words in res.stderr, res.stderr


def test_unreadable_trust_store_fails_closed(smtp_server, shim, run, message_file, tmp_path):
    server = smtp_server("good")
    env = shim([server.port], ca=f"{tmp_path}/no-such-bundle.pem")
    res = run(curl(server.port, message_file), env)
    assert leaked_nothing(server) and res.returncode != 0, describe(res)
    assert "trust store cannot be read" in res.stderr
