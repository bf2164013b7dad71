"""TLS that no hook reaches, judged on the wire (issue 13, shim/wire*.c).

Two careless programs whose TLS library the shim cannot drive: Java with Jakarta
Mail (JSSE is Java code; accept-all trust, no host check, opportunistic STARTTLS,
every TLS version re-enabled as a careless site does) and tests/clients/careless.c
linked with Debian's static libssl.a/libcrypto.a (build/clients/careless_static).
Without the shim both hand the credentials and the message to every server; with it
the server's handshake is read off the wire: TLS 1.2 chains and names are verified
against the policy's store, versions and ciphers against the policy, and TLS 1.3
(whose certificate is encrypted) is refused unless `unverified_tls = allow`.
A refusal fails the read that carries the server's flight, so not one byte of the
credentials follows: the assertions are on what the servers received.
Hooked programs never reach the wire reader: only its log lines say via=wire.
"""
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from lib.constants import PASSWORD
from lib.runner import CLIENTS, REPO, describe

STATIC = CLIENTS / "careless_static"
JARS = ["/usr/share/java/jakarta-mail.jar", "/usr/share/java/jakarta-activation.jar"]
UNVERIFIED = ("TLS 1.3 by a TLS library smtpguard cannot see into: "
              "the certificate is encrypted on the wire")

# (name, cert, server tls variant, allow TLS 1.3 unverified, check that refuses or None)
CASES = [
    ("good", "good", "tls12", False, None),
    ("selfsigned", "selfsigned", "tls12", False, "chain"),
    ("wronghost", "wronghost", "tls12", False, "hostname"),
    ("expired", "expired", "tls12", False, "chain"),
    ("unknownca", "unknownca", "tls12", False, "chain"),
    ("tls13", "good", "modern", False, "unverified"),
    ("tls13-allowed", "good", "modern", True, None),
    ("tls10", "good", "tls10", False, "protocol"),
    ("tls11", "good", "old", False, "protocol"),
    ("non-aead", "good", "weak", False, "cipher"),
]
CASE_IDS = [c[0] for c in CASES]


def allow_sections(servers):
    """[destination localhost:PORT] unverified_tls = allow for the allowed cases."""
    return "".join(f"\n[destination localhost:{servers[name].port}]\nunverified_tls = allow\n"
                   for name, _, _, allow, _ in CASES if allow)


def log_line(log, port):
    lines = [l for l in log.splitlines() if re.search(rf"\]:{port}\b", l)]
    assert len(lines) == 1, f"expected one log line for port {port}:\n{log}"
    return lines[0]


def assert_outcome(server, name, check, log, allowed=False):
    """check None: delivered, else refused by that check with nothing received."""
    line = log_line(log, server.port)
    assert "via=wire" in line, line
    if check is None:
        assert len(server.messages()) == 1, (name, server.sessions, line)
        assert ": accepted TLS to " in line, line
        assert ("verify=unverified" if allowed else "verify=ok") in line, line
        return
    assert server.credentials() == [], (name, server.sessions, line)
    assert server.transactions() == [] and server.messages() == [], (name, server.sessions)
    assert f"refused TLS to localhost[127.0.0.1]:{server.port}: {check}: " in line, line
    if check == "unverified":
        assert UNVERIFIED in line and "program " in line, line
        assert f"destination localhost:{server.port}" in line, line
        assert f"unverified_tls = allow in [destination localhost:{server.port}]" in line, line


def start_all(smtp_server, mode):
    return {name: smtp_server(cert, mode, tls) for name, cert, tls, _, _ in CASES}


# ---- Java with Jakarta Mail ----------------------------------------------------------

@pytest.fixture(scope="session")
def java_app(tmp_path_factory):
    """CarelessMail compiled once per session; a java.security that re-enables
    every algorithm (a careless site), and the java command line."""
    for tool in ("java", "javac"):
        if not shutil.which(tool):
            pytest.fail(f"{tool} missing: scripts/deps/wire.txt lists openjdk-17-jdk-headless")
    for jar in JARS:
        assert Path(jar).exists(), f"{jar} missing: scripts/deps/wire.txt lists libjakarta-mail-java"
    out = tmp_path_factory.mktemp("java")
    cp = ":".join(JARS)
    subprocess.run(["javac", "-d", str(out), "-cp", cp,
                    str(REPO / "tests" / "java" / "CarelessMail.java")],
                   check=True, capture_output=True, timeout=120)
    security = out / "careless.security"
    security.write_text("jdk.tls.disabledAlgorithms=\n")
    return ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1",
            f"-Djava.security.properties={security}", "-cp", f"{cp}:{out}", "CarelessMail"]


def java_results(res):
    """{port: "ok" | "fail: ..."} from CarelessMail's output."""
    found = dict(re.findall(r"^(\d+) (ok|fail: .*)$", res.stdout, re.M))
    return {int(port): what for port, what in found.items()}


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_java_leaks_without_the_shim(mode, java_app, smtp_server, run, baseline):
    servers = start_all(smtp_server, mode)
    res = run(java_app + [mode] + [str(s.port) for s in servers.values()], baseline(),
              timeout=120)
    results = java_results(res)
    for name, server in servers.items():
        assert results.get(server.port) == "ok", (name, describe(res))
        assert (server.credentials() and server.credentials()[0][1] == PASSWORD
                and len(server.messages()) == 1), (name, server.sessions)


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_java_judged_on_the_wire(mode, java_app, smtp_server, shim, run):
    servers = start_all(smtp_server, mode)
    ports = [s.port for s in servers.values()]
    env = shim(ports, implicit=ports if mode == "implicit" else (),
               extra=allow_sections(servers))
    res = run(java_app + [mode] + [str(p) for p in ports], env, timeout=120)
    results = java_results(res)
    log = env.log()
    for name, _, _, allowed, check in CASES:
        server = servers[name]
        assert results.get(server.port, "").startswith("ok" if check is None else "fail"), \
            (name, describe(res), log)
        assert_outcome(server, name, check, log, allowed)


# ---- a careless C client with OpenSSL linked in --------------------------------------

def static_env(shim, server, allowed, mode, **kw):
    extra = (f"[destination localhost:{server.port}]\nunverified_tls = allow\n"
             if allowed else "")
    return shim([server.port], implicit=[server.port] if mode == "implicit" else (),
                extra=extra, **kw)


def test_static_client_has_no_openssl_symbol_to_hook():
    """What makes it a wire case: the OpenSSL in it is not in its dynamic symbols."""
    dynsym = subprocess.run(["nm", "-D", str(STATIC)], capture_output=True, text=True,
                            timeout=30).stdout
    assert "SSL_connect" not in dynsym and "libssl" not in subprocess.run(
        ["ldd", str(STATIC)], capture_output=True, text=True, timeout=30).stdout


@pytest.mark.parametrize("mode", ["starttls", "implicit"])
@pytest.mark.parametrize("name,cert,tls,allowed,check", CASES, ids=CASE_IDS)
def test_static_client(name, cert, tls, allowed, check, mode, smtp_server, shim, baseline,
                       run):
    leaky = smtp_server(cert, mode, tls)
    res = run([STATIC, "seclevel0", "localhost", leaky.port, mode], baseline())
    assert res.returncode == 0 and len(leaky.messages()) == 1, describe(res)
    assert leaky.credentials()[0][1] == PASSWORD

    server = smtp_server(cert, mode, tls)
    env = static_env(shim, server, allowed, mode)
    res = run([STATIC, "seclevel0", "localhost", server.port, mode], env)
    assert (res.returncode == 0) == (check is None), describe(res) + env.log()
    assert_outcome(server, name, check, env.log(), allowed)


def test_static_client_audit_mode_logs_would_refuse(smtp_server, shim, run):
    server = smtp_server("good", "starttls", "modern")
    env = shim([server.port], mode="audit")
    res = run([STATIC, "verify_none", "localhost", server.port, "starttls"], env)
    assert res.returncode == 0 and len(server.messages()) == 1, describe(res)
    line = log_line(env.log(), server.port)
    assert "audit: would refuse TLS" in line and UNVERIFIED in line and "via=wire" in line


# ---- hooked programs never reach the wire reader -------------------------------------

@pytest.mark.parametrize("tls", ["tls12", "modern"])
@pytest.mark.parametrize("client", [["careless", "verify_none"], ["careless_gnutls", "no_verify"]],
                         ids=["openssl", "gnutls"])
def test_hooked_sessions_are_not_read_on_the_wire(client, tls, smtp_server, shim, run):
    """Dynamically linked careless clients: the OpenSSL or GnuTLS backend judges them
    (verify=ok, also a TLS 1.3 certificate), and no line says via=wire."""
    server = smtp_server("good", "starttls", tls)
    env = shim([server.port])
    res = run([CLIENTS / client[0], client[1], "localhost", server.port, "starttls"], env)
    assert res.returncode == 0 and len(server.messages()) == 1, describe(res)
    line = log_line(env.log(), server.port)
    assert "accepted TLS" in line and "verify=ok" in line, line
    assert "via=" not in line, line


# ---- smtpguard check -----------------------------------------------------------------

WIRE_WORDS = ("TLS inside the program: version, cipher and TLS 1.2 certificates are checked "
              "on the wire; TLS 1.3 certificates cannot be (see unverified_tls)")


@pytest.mark.parametrize("program,what", [("java", "Java VM"),
                                          (str(STATIC), "OpenSSL built into the program")])
def test_check_says_tls_is_judged_on_the_wire(program, what, run, baseline):
    res = run([REPO / "scripts" / "smtpguard", "check", program], baseline())
    assert res.returncode == 1, describe(res)
    path, verdict, why = res.stdout.rstrip("\n").split(": ", 2)
    assert verdict == "partial" and what in why and WIRE_WORDS in why, describe(res)


# ---- the policy key ------------------------------------------------------------------

def test_unverified_tls_policy_key(tmp_path, run, baseline):
    checker = REPO / "build" / "smtpguard-policy"
    good = tmp_path / "good.conf"
    good.write_text("unverified_tls = allow\n[destination mx.example:587]\n"
                    "unverified_tls = refuse\n[destination relay.example]\n")
    res = run([checker, good], baseline())
    assert res.returncode == 0, describe(res)
    assert "\nunverified_tls = allow\n" in res.stdout, res.stdout
    section = res.stdout.split("[destination mx.example:587]\n", 1)[1]
    assert section.startswith("unverified_tls = refuse\n"), res.stdout
    assert "unverified_tls" not in res.stdout.split("[destination relay.example]", 1)[1]
    bad = tmp_path / "bad.conf"
    bad.write_text("unverified_tls = maybe\n")
    res = run([checker, bad], baseline())
    assert res.returncode != 0 and "bad value 'maybe' for unverified_tls: expected refuse or allow" \
        in res.stderr, describe(res)


# ---- records cut across reads, STARTTLS injection ------------------------------------

@pytest.mark.parametrize("cert,check", [("good", None), ("selfsigned", "chain")])
def test_records_cut_across_reads(cert, check, smtp_server, shim, run):
    """Every TLS record reaches the client in 3-byte writes (headers cut in two,
    the certificate across dozens of reads): the same verdict."""
    from lib.fragmenter import Fragmenter
    server = smtp_server(cert, "starttls", "tls12")
    with Fragmenter(server.port, piece=3) as relay:
        env = shim([relay.port])
        res = run([STATIC, "seclevel0", "localhost", relay.port, "starttls"], env)
    assert (res.returncode == 0) == (check is None), describe(res) + env.log()
    line = log_line(env.log(), relay.port)
    assert "via=wire" in line, line
    if check is None:
        assert len(server.messages()) == 1 and "verify=ok" in line, line
    else:
        assert server.credentials() == [] and f": {check}: " in line, line


def test_starttls_injection_before_a_foreign_handshake(smtp_server, shim, run):
    """Bytes after the 220 reply to STARTTLS refuse a handshake no hook drives too
    (the guard's check, before the ClientHello leaves)."""
    from lib.mitm import Proxy
    server = smtp_server("good", "starttls", "tls12")
    with Proxy(server.port, "inject_same") as proxy:
        env = shim([proxy.port])
        res = run([STATIC, "seclevel0", "localhost", proxy.port, "starttls"], env)
        proxy.wait_idle()
    assert res.returncode != 0 and server.credentials() == [], describe(res)
    line = log_line(env.log(), proxy.port)
    assert f"refused plaintext to localhost[127.0.0.1]:{proxy.port}: injection: " in line, line


# ---- a hooked library on a memory BIO: its own verdict comes first -------------------

ASYNCIO_CLIENT = r'''
import asyncio, ssl, sys
async def main(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE   # careless
    r, w = await asyncio.wait_for(asyncio.open_connection(
        "localhost", port, ssl=ctx, server_hostname="localhost"), 10)
    async def reply():
        while True:
            line = await asyncio.wait_for(r.readline(), 10)
            if line[3:4] != b"-":
                return line
    await reply()
    for command in (b"EHLO asyncio.example", b"AUTH PLAIN AHNndXNlcgBTZy1TM2NyZXQtUGE1NQ=="):
        w.write(command + b"\r\n")
        await w.drain()
        await reply()
asyncio.run(main(int(sys.argv[1])))
'''


@pytest.mark.parametrize("cert", ["good", "selfsigned"])
def test_memory_bio_sessions_keep_the_hooked_verdict(cert, smtp_server, shim, baseline, run):
    """Python's asyncio runs OpenSSL on a memory BIO and writes the records itself,
    outside any hooked call. Its session claims its ClientHello by the client random,
    so the hooked backend (which sees the TLS 1.3 certificate) judges it, never the
    wire reader: the good server gets the AUTH, the self-signed one nothing."""
    leaky = smtp_server(cert, "implicit", "modern")
    res = run(["/usr/bin/python3", "-c", ASYNCIO_CLIENT, leaky.port], baseline())
    assert res.returncode == 0 and leaky.credentials(), describe(res)

    server = smtp_server(cert, "implicit", "modern")
    env = shim([server.port], implicit=[server.port])
    res = run(["/usr/bin/python3", "-c", ASYNCIO_CLIENT, server.port], env)
    log = env.log()
    if cert == "good":
        assert res.returncode == 0 and server.credentials(), describe(res) + log
        assert "refused" not in log and "verify=ok" in log and "via=wire" not in log, log
    else:
        assert res.returncode != 0 and server.credentials() == [], describe(res) + log
        assert f"refused TLS to localhost[127.0.0.1]:{server.port}: chain: " in log, log
        assert "via=wire" not in log, log


# ---- TLS 1.2 session resumption: no certificate on the wire --------------------------

RESUME = CLIENTS / "resume_static"


def port_lines(env, port):
    return [l for l in env.log().splitlines() if re.search(rf"\]:{port}\b", l)]


def test_resuming_a_session_verified_on_the_wire(smtp_server, shim, baseline, run):
    """The second session resumes the first: no certificate on the wire, but its
    ticket (or id) came from a handshake the wire verified for this destination."""
    leaky = smtp_server("selfsigned", "implicit", "tls12")
    res = run([RESUME, "localhost", leaky.port], baseline())
    assert res.returncode == 0 and "2 ok reused=1" in res.stdout, describe(res)

    server = smtp_server("good", "implicit", "tls12")
    env = shim([server.port], implicit=[server.port])
    res = run([RESUME, "localhost", server.port], env)
    assert res.returncode == 0 and "2 ok reused=1" in res.stdout, describe(res) + env.log()
    lines = port_lines(env, server.port)
    assert len(lines) == 2 and all("accepted" in l and "via=wire" in l for l in lines), lines
    assert "verify=ok" in lines[0] and "verify=resumed" in lines[1], lines
    assert len(server.credentials()) == 2


@pytest.mark.parametrize("extra", ["", "unverified_tls = allow\n"], ids=["default", "allow"])
def test_resuming_a_session_the_shim_never_saw(extra, smtp_server, shim, baseline, run,
                                              tmp_path):
    """A session established without the shim (saved to a file) and resumed under it:
    nothing on the wire proves the server; unverified_tls decides."""
    server = smtp_server("good", "implicit", "tls12")
    saved = tmp_path / "session.pem"
    res = run([RESUME, "localhost", server.port, "save", saved], baseline())
    assert res.returncode == 0 and len(server.credentials()) == 1, describe(res)

    env = shim([server.port], implicit=[server.port], extra=extra)
    res = run([RESUME, "localhost", server.port, "load", saved], env)
    [line] = port_lines(env, server.port)
    assert "reused=1" in res.stdout, describe(res) + line
    if extra:
        assert res.returncode == 0 and len(server.credentials()) == 2, describe(res)
        assert "accepted" in line and "verify=unverified" in line, line
    else:
        assert res.returncode != 0 and len(server.credentials()) == 1, describe(res)
        assert ": unverified: a TLS 1.2 session resumed by a TLS library" in line, line


# ---- from the audit log to the section that allows it --------------------------------

def test_report_proposes_unverified_tls_and_json_lines_say_via(smtp_server, shim, run,
                                                               baseline):
    """In audit mode, `smtpguard report --sections` turns the TLS 1.3 lines of a program
    the shim cannot see into into `unverified_tls = allow` for that destination; with
    it, enforce mode delivers. JSON lines carry "via":"wire" too."""
    server = smtp_server("good", "starttls", "modern")
    audit = shim([server.port], mode="audit", extra="log_format = json")
    res = run([STATIC, "seclevel0", "localhost", server.port, "starttls"], audit)
    assert res.returncode == 0 and len(server.messages()) == 1, describe(res)
    [line] = [json.loads(l) for l in audit.log().splitlines() if l.startswith("{")]
    assert line["via"] == "wire" and line["check"] == "unverified", line
    sections = run([REPO / "scripts" / "smtpguard-report", "--sections", audit.log_path],
                   baseline()).stdout
    assert f"[destination localhost:{server.port}]" in sections, sections
    assert "unverified_tls = allow" in sections, sections

    assert run([STATIC, "seclevel0", "localhost", server.port, "starttls"],
               shim([server.port])).returncode != 0
    fixed = shim([server.port], extra=sections)
    res = run([STATIC, "seclevel0", "localhost", server.port, "starttls"], fixed)
    assert res.returncode == 0 and len(server.messages()) == 2, describe(res) + fixed.log()


# ---- a ClientHello written a byte at a time by no TLS library the shim knows --------

MAKE_HELLO = r'''
import ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
bio_in, bio_out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(bio_in, bio_out, server_hostname="localhost")
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
sys.stdout.buffer.write(bio_out.read())
'''

SEND_HELLO = r'''
import socket, sys
hello = open(sys.argv[2], "rb").read()
s = socket.create_connection(("localhost", int(sys.argv[1])), timeout=10)
for i in range(len(hello)):
    s.send(hello[i:i + 1])      # the random completes many writes in
try:
    while s.recv(65536):
        pass
    print("read everything")
except OSError as e:
    print("read failed:", e.errno)
'''


@pytest.mark.parametrize("cert,tls,check", [("selfsigned", "tls12", "chain"),
                                            ("good", "modern", "unverified")])
def test_hello_in_one_byte_writes_is_read_on_the_wire(cert, tls, check, smtp_server, shim,
                                                      baseline, run, tmp_path):
    """A ClientHello made elsewhere (no hooked session claims its random) and sent one
    byte per write: the bytes that left before the random told whose it is are read
    too, the SNI is found, and the read that brings the server's flight fails."""
    hello = tmp_path / "hello.bin"
    made = subprocess.run(["/usr/bin/python3", "-c", MAKE_HELLO], env=baseline(),
                          capture_output=True, timeout=30)
    hello.write_bytes(made.stdout)
    assert made.stdout[:1] == b"\x16", made
    server = smtp_server(cert, "implicit", tls)
    env = shim([server.port], implicit=[server.port])
    res = run(["/usr/bin/python3", "-c", SEND_HELLO, server.port, hello], env)
    assert "read failed: 13" in res.stdout, describe(res) + env.log()   # EACCES
    line = log_line(env.log(), server.port)
    assert f"refused TLS to localhost[127.0.0.1]:{server.port}: {check}: " in line, line
    assert "via=wire" in line, line
