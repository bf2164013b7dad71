"""A program's own cipher choice survives the shim: the policy restricts it, never widens
it (shim/ossl_ciphers.c). The careless client (OpenSSL 3, and OpenSSL 1.1 from `make
legacy`) with SG_CIPHERS / SG_CIPHERSUITES narrows its own TLS 1.2 list or TLS 1.3 suites:

- against a server that offers only another cipher the policy allows, the program alone
  refuses the handshake, and so it does under the shim: the server gets no AUTH, no MAIL
  (a shim that replaced the program's list with the policy's handed both over);
- against a server that accepts the program's cipher, the message is delivered over it.

A program whose list holds no cipher the policy allows (AES128-SHA only, a SECLEVEL=0 list
of weak ones, a TLS 1.3 suite the policy leaves out) gets the policy's list for that part
and delivers over a policy cipher, where alone it would have used its weak one or failed.

TLS 1.3 servers offering one suite are stunnel4 in front of a plaintext test server
(Python's ssl cannot restrict a server's TLS 1.3 suites); the policy makes stunnel's port an
implicit-TLS port, and what the plaintext server behind it received is what the TLS
server received."""
import subprocess
import time
from contextlib import contextmanager

import pytest

from lib.constants import MESSAGE
from lib.runner import CLIENTS, describe
from test_legacy import legacy, openssl_client  # noqa: F401 (legacy: a fixture)

STUNNEL = "/usr/bin/stunnel4"
OPENSSL = [pytest.param("3", id="openssl3"), pytest.param("1.1", id="openssl11")]
POLICY_SUITES = {"TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256",
                 "TLS_AES_128_GCM_SHA256"}
POLICY_TLS12 = {"ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
                "ECDHE-RSA-CHACHA20-POLY1305"}   # the test certificate is RSA


@pytest.fixture
def careless(request):
    return openssl_client(request, "careless")


def tls12_server(smtp_server, ciphers):
    """STARTTLS, TLS 1.2 only, these ciphers only."""
    server = smtp_server(tls="tls12")
    server.ctx.set_ciphers(ciphers)
    return server


def listening(port):
    """Is a TCP socket listening on 127.0.0.1:port? Read from /proc, so that asking
    opens no connection (stunnel would relay it)."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        return any(line.split()[1] == want and line.split()[3] == "0A"
                   for line in f.readlines()[1:])


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def tls13_front(certs, backend, suite, workdir):
    """stunnel4: implicit TLS 1.3 with one suite on a free port, relaying to the
    plaintext server backend. Yields the port."""
    for attempt in range(3):
        port = free_port()
        conf = workdir / f"stunnel-{attempt}.conf"
        conf.write_text(f"foreground = yes\npid =\noutput = {workdir}/stunnel.log\n"
                        f"debug = 5\n[smtps]\naccept = 127.0.0.1:{port}\n"
                        f"connect = 127.0.0.1:{backend.port}\ncert = {certs.good.cert}\n"
                        f"key = {certs.good.key}\nsslVersionMin = TLSv1.3\n"
                        f"ciphersuites = {suite}\n")
        proc = subprocess.Popen([STUNNEL, str(conf)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            deadline = time.monotonic() + 10
            while proc.poll() is None and time.monotonic() < deadline and not listening(port):
                time.sleep(0.05)
            if proc.poll() is None and listening(port):
                yield port
                return
        finally:
            proc.kill()
            proc.wait(10)
    pytest.fail(f"stunnel did not start: {(workdir / 'stunnel.log').read_text()[-2000:]}")


def session(client, port, mode, env, run, **own):
    env = dict(env, **own)
    return run([client, "verify_none", "localhost", port, mode], env, timeout=40)


def received_nothing(server):
    return not server.credentials() and not server.transactions() and not server.messages()


def delivered(res, server):
    return res.returncode == 0 and server.messages() == [MESSAGE]


@pytest.mark.parametrize("openssl", OPENSSL)
def test_narrowed_tls12_list_stays_narrow(openssl, careless, smtp_server, shim, baseline, run):
    client, own = careless(openssl), {"SG_CIPHERS": "ECDHE-RSA-AES256-GCM-SHA384"}
    other = tls12_server(smtp_server, "ECDHE-RSA-AES128-GCM-SHA256")
    env = shim([other.port])
    alone = session(client, other.port, "starttls", baseline(), run, **own)
    assert alone.returncode != 0 and received_nothing(other), describe(alone)
    res = session(client, other.port, "starttls", env, run, **own)
    assert res.returncode != 0, describe(res)
    assert received_nothing(other), (other.sessions, describe(res))

    same = tls12_server(smtp_server, "ECDHE-RSA-AES256-GCM-SHA384")
    res = session(client, same.port, "starttls", shim([same.port]), run, **own)
    assert delivered(res, same), (same.sessions, describe(res))
    assert [s.cipher for s in same.transactions()] == ["ECDHE-RSA-AES256-GCM-SHA384"]


@pytest.mark.parametrize("openssl", OPENSSL)
def test_narrowed_tls13_suites_stay_narrow(openssl, careless, smtp_server, shim, baseline,
                                           run, certs, tmp_path):
    client, own = careless(openssl), {"SG_CIPHERSUITES": "TLS_AES_256_GCM_SHA384"}
    backend = smtp_server(mode="plain")
    with tls13_front(certs, backend, "TLS_CHACHA20_POLY1305_SHA256", tmp_path) as port:
        alone = session(client, port, "implicit", baseline(), run, **own)
        assert alone.returncode != 0 and received_nothing(backend), describe(alone)
        res = session(client, port, "implicit", shim([port], implicit=[port]), run, **own)
        assert res.returncode != 0, describe(res)
        assert received_nothing(backend), (backend.sessions, describe(res))

    with tls13_front(certs, backend, "TLS_AES_256_GCM_SHA384", tmp_path) as port:
        env = shim([port], implicit=[port])
        res = session(client, port, "implicit", env, run, **own)
        assert delivered(res, backend), (backend.sessions, describe(res))
        assert "TLS_AES_256_GCM_SHA384" in env.log(), env.log()


WEAK = [pytest.param({"SG_CIPHERS": "AES128-SHA"}, id="tls12-aes128-sha"),
        pytest.param({"SG_CIPHERS": "AES128-SHA:DES-CBC3-SHA:@SECLEVEL=0"}, id="tls12-seclevel0"),
        pytest.param({"SG_CIPHERSUITES": "TLS_AES_128_CCM_SHA256"}, id="tls13-ccm")]


@pytest.mark.parametrize("own", WEAK)
@pytest.mark.parametrize("openssl", OPENSSL)
def test_no_allowed_cipher_gets_the_policy_list(openssl, own, careless, smtp_server, shim,
                                                baseline, run):
    client = careless(openssl)
    if "SG_CIPHERS" in own:   # the server would take the program's weak cipher too
        server = tls12_server(smtp_server, "AES128-SHA:ECDHE-RSA-AES128-GCM-SHA256:@SECLEVEL=0")
        alone = session(client, server.port, "starttls", baseline(), run, **own)
        assert delivered(alone, server), describe(alone)
        assert server.transactions()[-1].cipher == "AES128-SHA"   # what the program alone uses
        allowed = POLICY_TLS12
    else:                     # TLS 1.3 on the server's side: no CCM suite
        server = smtp_server()
        allowed = POLICY_SUITES
    res = session(client, server.port, "starttls", shim([server.port]), run, **own)
    assert res.returncode == 0, describe(res)
    last = server.transactions()[-1]
    assert last.complete and last.messages == [MESSAGE] and last.cipher in allowed, last


def seccb_lines(res):
    assert res.returncode == 0, describe(res)
    return [line.split() for line in res.stdout.splitlines()]


def test_program_callbacks_are_chained_until_the_table_is_full(smtp_server, shim, baseline,
                                                              run):
    """build/clients/seccb gives each of 12 SSLs a security callback of its own and
    narrows its TLS 1.2 list to ECDHE-RSA-AES256-GCM-SHA384; the server prefers
    ECDHE-RSA-AES128-GCM-SHA256. The shim chains its callback to each program
    callback (which OpenSSL still asks) for the first 8 distinct ones, a table per
    process; past those it falls back to replacing the program's list with the
    policy's (documented), and the server's preference wins."""
    server = smtp_server(mode="implicit", tls="tls12")
    server.ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
    cmd = [CLIENTS / "seccb", "distinct", "localhost", server.port, 12]
    alone = seccb_lines(run(cmd, baseline()))
    assert [(w[3], w[5]) for w in alone] == [("ECDHE-RSA-AES256-GCM-SHA384", "no")] * 12, alone
    got = seccb_lines(run(cmd, shim([server.port], implicit=[server.port])))
    assert [(w[3], w[5]) for w in got] == \
        [("ECDHE-RSA-AES256-GCM-SHA384", "yes")] * 8 + \
        [("ECDHE-RSA-AES128-GCM-SHA256", "no")] * 4, got
    assert all(int(w[7]) > 0 for w in got), got    # the program's callbacks were asked


def test_second_handshake_of_one_ssl_is_not_wrapped_again(smtp_server, shim, run):
    """One SSL, two sessions (SSL_clear between): the second handshake keeps the
    callback the first one chained, and the program's narrow list."""
    server = smtp_server(mode="implicit", tls="tls12")
    server.ctx.set_ciphers("ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
    got = seccb_lines(run([CLIENTS / "seccb", "reuse", "localhost", server.port],
                          shim([server.port], implicit=[server.port])))
    assert got[-1] == ["same_callback", "yes"], got
    assert [(w[3], w[5]) for w in got[:2]] == [("ECDHE-RSA-AES256-GCM-SHA384", "yes")] * 2, got
    assert int(got[1][7]) > int(got[0][7]) > 0, got


def test_program_that_drops_the_filter_gets_no_suite_the_policy_refuses(careless, smtp_server,
                                                                        shim, baseline, run,
                                                                        certs, tmp_path):
    """The program's info callback puts an allow-all security callback on the SSL as its
    handshake starts, in place of the shim's filter. Its own suites name one the policy
    allows and TLS_AES_128_CCM_SHA256, the only one the server speaks: without the shim
    it delivers over CCM; with it the verdict refuses the suite the policy's
    `ciphersuites` does not name, whatever callback the program left."""
    client = careless("3")
    own = {"SG_CIPHERSUITES": "TLS_AES_128_CCM_SHA256:TLS_AES_256_GCM_SHA384",
           "SG_RESET_SECCB": "1"}
    backend = smtp_server(mode="plain")
    with tls13_front(certs, backend, "TLS_AES_128_CCM_SHA256", tmp_path) as port:
        alone = session(client, port, "implicit", baseline(), run, **own)
        assert delivered(alone, backend), (backend.sessions, describe(alone))
        env = shim([port], implicit=[port])
        res = session(client, port, "implicit", env, run, **own)
        assert res.returncode != 0, describe(res)
        assert backend.messages() == [MESSAGE] and len(backend.credentials()) == 1, \
            (backend.sessions, describe(res))
        assert "TLS_AES_128_CCM_SHA256" in env.log() and "refused" in env.log(), env.log()
