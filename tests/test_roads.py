"""Every road to an SMTP server goes through the guard (issue 11).

tests/clients/roads.c takes one unusual road per style: a byte path other than write()
(sendfile, splice, vmsplice, pwritev2, sendmmsg, dprintf), a connection made without
connect() (TCP Fast Open, the raw syscall, a socket received over SCM_RIGHTS), or a
dialogue the STARTTLS tracker must follow (pipelining, PIPE_CONNECT, injection).
Each road leaks without the library (so the road is real) and is refused with it:
the server receives nothing of AUTH/MAIL/RCPT/DATA in clear. Against a good server
the same road delivers over verified TLS.
"""
import os
import resource
import sys
import selectors
import shutil
import socket
import threading
import time

import pytest

from lib.hostile import READY, HostileServer, Variant, server_context
from lib.runner import CLIENTS, describe

ROADS = CLIENTS / "roads"
SECRET = {"AUTH", "MAIL", "RCPT", "DATA", "BDAT"}
BYTE_PATHS = ["sendfile", "sendfile64", "splice", "vmsplice", "pwritev2", "sendmmsg", "dprintf",
              "aio"]
CONNECTIONS = ["tfo", "tfo_msg", "raw", "scm", "stale_tfo", "stale_raw", "stale_rawsock"]


def leaked(server):
    """The secret commands the server received in clear."""
    return [(verb, s.peer) for s in server.sessions for verb, tls in s.commands
            if verb in SECRET and not tls]


def roads(run, env, style, server, mode, timeout=30):
    return run([ROADS, style, server.host, server.port, mode], env, timeout=timeout)


@pytest.mark.parametrize("style", ["write"] + BYTE_PATHS + CONNECTIONS)
def test_leaks_without_library(style, smtp_server, run, baseline):
    server = smtp_server(mode="plain")
    res = roads(run, baseline(), style, server, "plain")
    assert res.returncode == 0, describe(res)
    server.wait_idle()
    assert leaked(server), f"the road is not real: {server.sessions}"


@pytest.mark.parametrize("style", ["write"] + BYTE_PATHS + CONNECTIONS)
def test_refused_with_library(style, smtp_server, run, shim):
    server = smtp_server(mode="plain")
    env = shim([server.port])
    res = roads(run, env, style, server, "plain")
    server.wait_idle()
    assert res.returncode != 0, describe(res)
    assert not leaked(server), f"{leaked(server)}\n{describe(res)}"
    assert "refused" in env.log(), env.log()


PY_SENDFILE = """
import socket, sys, tempfile
def reply(f):
    while True:
        line = f.readline()
        if len(line) < 4 or line[3:4] != b"-":
            return line
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
f = s.makefile("rb")
reply(f)
for line in (b"EHLO py.example", b"AUTH PLAIN AHNndXNlcgBTZy1TM2NyZXQtUGE1NQ==",
             b"MAIL FROM:<sender@example.com>", b"RCPT TO:<rcpt@example.com>", b"QUIT"):
    with tempfile.TemporaryFile() as t:
        t.write(line + b"\\r\\n")
        t.seek(0)
        s.sendfile(t)
    print(reply(f))
"""


def test_python_socket_sendfile(smtp_server, run, shim, baseline):
    """Python's socket.sendfile() (os.sendfile underneath) leaks without the library and
    is refused with it."""
    import sys
    server = smtp_server(mode="plain")
    res = run([sys.executable, "-c", PY_SENDFILE, server.port], baseline())
    server.wait_idle()
    assert res.returncode == 0 and leaked(server), describe(res)
    server = smtp_server(mode="plain")
    env = shim([server.port])
    res = run([sys.executable, "-c", PY_SENDFILE, server.port], env)
    server.wait_idle()
    assert res.returncode != 0 and "Permission denied" in res.stderr, describe(res)
    assert not leaked(server), leaked(server)


@pytest.mark.parametrize("style", BYTE_PATHS + CONNECTIONS + ["pipeline", "pipe_connect"])
def test_good_server_delivers(style, smtp_server, run, shim):
    server = smtp_server()
    env = shim([server.port])
    res = roads(run, env, style, server, "starttls")
    assert res.returncode == 0, f"{describe(res)}\n{env.log()}"
    server.wait_idle()
    assert not leaked(server)
    assert [s.tls for s in server.transactions()] == [True]


@pytest.fixture(scope="module")
def mail_cert(certs, tmp_path_factory):
    """A certificate for mail.x.org from the test CA."""
    from pathlib import Path
    from lib.certs import _leaf
    d = Path(certs.dir)
    ca = (d / "ca.cnf", certs.ca, str(d / "ca.key"))
    return _leaf(tmp_path_factory.mktemp("mailcert"), "mail", ca, names="DNS:mail.x.org",
                 cn="mail.x.org")


@pytest.mark.parametrize("style", ["write", "pipeline", "pipe_connect"])
def test_client_hello_is_not_smtp(style, mail_cert, smtp_server, run, shim):
    """A ClientHello whose SNI "mail.x.org" follows its length byte 0x0a is a TLS
    record of a handshake the library drives, never the SMTP line "MAIL"."""
    server = smtp_server(cert=mail_cert)
    env = shim([server.port])
    env["ROADS_SNI"] = "mail.x.org"
    res = roads(run, env, style, server, "starttls")
    assert res.returncode == 0, f"{describe(res)}\n{env.log()}"
    server.wait_idle()
    assert [s.tls for s in server.transactions()] == [True]


@pytest.mark.parametrize("style", ["pipeline", "pipe_connect"] + CONNECTIONS)
def test_selfsigned_refused(style, smtp_server, run, shim, baseline):
    """The careless handshake leaks to a self-signed impostor without the library;
    with it, the handshake on these roads is judged and refused."""
    server = smtp_server(cert="selfsigned")
    res = roads(run, baseline(), style, server, "starttls")
    assert res.returncode == 0 and server.credentials(), describe(res)
    server = smtp_server(cert="selfsigned")
    env = shim([server.port])
    res = roads(run, env, style, server, "starttls")
    server.wait_idle()
    assert res.returncode != 0, describe(res)
    assert not server.credentials() and not server.transactions(), server.sessions


@pytest.fixture
def hostile(certs):
    servers = []

    def start(variant):
        server = HostileServer(variant, lambda name: server_context(certs.get(name)))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


INJECTED = READY + b"250-hostile.test\r\n250 AUTH PLAIN LOGIN\r\n"


@pytest.mark.parametrize("client,style", [("roads", "pipeline"), ("roads", "inject_wait"),
                                          ("roads_fortify", "pipeline"),
                                          ("roads_fortify", "inject_wait"),
                                          ("roads", "recvmmsg")])
def test_injection_refused_when_it_arrives(style, client, hostile, run, shim, baseline):
    """Bytes after the 220 to STARTTLS: without the library the client reads them
    (exit 3); with it the read that brings them fails at once. roads_fortify reads
    with __read_chk (_FORTIFY_SOURCE), which glibc implements with its internal read."""
    variant = Variant(starttls=INJECTED, cert="good", time_limit=8.0)
    server = hostile(variant)
    res = run([CLIENTS / client, style, "127.0.0.1", server.port, "starttls"], baseline())
    assert res.returncode == 3 and "injected" in res.stderr, describe(res)
    server = hostile(variant)
    env = shim([server.port])
    start = time.monotonic()
    res = run([CLIENTS / client, style, "127.0.0.1", server.port, "starttls"], env)
    took = time.monotonic() - start
    assert res.returncode == 1 and "Permission denied" in res.stderr, describe(res)
    assert took < 1.5, f"took {took:.1f} s: the refusal waited for a handshake"
    lines = [line for line in env.log().splitlines() if "refused" in line]
    assert len(lines) == 1 and "injection" in lines[0], env.log()
    assert not server.secrets()


class CountingServer:
    """Holds thousands of plaintext SMTP connections at once (one thread, selectors):
    sends a greeting, answers every line 250 (no STARTTLS), records secret verbs."""

    def __init__(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.secrets, self.accepted = [], 0
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.sock, selectors.EVENT_READ)
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        deadline = time.monotonic() + 60
        while not self.stopping and time.monotonic() < deadline:
            for key, _ in self.sel.select(0.2):
                if key.fileobj is self.sock:
                    self._accept()
                else:
                    self._read(key.fileobj)

    def _accept(self):
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return
        self.accepted += 1
        conn.setblocking(False)
        try:
            conn.send(b"220 counting.test ESMTP\r\n")
        except OSError:
            pass
        self.sel.register(conn, selectors.EVENT_READ)

    def _read(self, conn):
        try:
            data = conn.recv(4096)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(conn)
            conn.close()
            return
        for line in data.split(b"\n"):
            if line.split(b" ")[0].upper().strip() in {v.encode() for v in SECRET}:
                self.secrets.append(line[:20])
        try:
            conn.send(b"250 ok\r\n")
        except OSError:
            pass

    def stop(self):
        self.stopping = True
        self.thread.join(5)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()


def test_2000_connections_none_unguarded(run, shim, baseline):
    """More concurrent SMTP connections than the connection table holds: each is
    guarded or refused, none goes out unguarded."""
    server = CountingServer()
    try:
        env = shim([server.port])
        res = run([ROADS, "many", "127.0.0.1", server.port, 2000], env, timeout=60)
        assert res.returncode == 0, describe(res)
        assert "sent 0 refused 2000 " in res.stdout, describe(res)
        time.sleep(0.5)
        assert not server.secrets, server.secrets[:5]
        assert "too many SMTP connections" in env.log()
    finally:
        server.stop()
    server = CountingServer()
    try:
        res = run([ROADS, "many", "127.0.0.1", server.port, 50], baseline(), timeout=60)
        assert "sent 50 " in res.stdout, describe(res)
        time.sleep(0.5)
        assert server.secrets, "the road is not real"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def exim():
    """Exim 4 unpacked by scripts/fetch-debs (as tests/test_gnutls.py does)."""
    from lib.gnutls_mailers import DEBS, EXIM
    from lib.runner import REPO
    import subprocess
    res = subprocess.run([REPO / "scripts" / "fetch-debs", *DEBS], capture_output=True,
                         text=True, timeout=300)
    if not EXIM.exists():
        pytest.skip(f"exim4 could not be unpacked: {res.stderr[-500:]}")
    if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("exim4's private setup needs `unshare -m`")
    return EXIM


def careless_exim(run, exim, env, server, message_file):
    from lib.mailers import PY
    from lib.runner import REPO
    script = REPO / "tests" / "mailers" / "careless_exim.py"
    return run([PY, script, exim, server.port, "starttls", message_file], env, timeout=90)


@pytest.mark.parametrize("cert,mode", [("selfsigned", "starttls"), ("good", "plain")])
def test_careless_exim(cert, mode, exim, smtp_server, run, shim, baseline, message_file):
    """Careless Exim against an impostor (self-signed) and a server without STARTTLS:
    without the library it delivers (the impostor over unverified TLS, the other in
    clear); with it nothing of AUTH/MAIL/RCPT/DATA reaches either in clear, not even
    after Exim's fallback to clear text (tls_tempfail_tryclear) on a new connection."""
    server = smtp_server(cert=cert, mode=mode)
    res = careless_exim(run, exim, baseline(), server, message_file)
    server.wait_idle()
    assert res.returncode == 0 and server.credentials(), describe(res)
    server = smtp_server(cert=cert, mode=mode)
    env = shim([server.port])
    res = careless_exim(run, exim, env, server, message_file)
    server.wait_idle()
    assert res.returncode != 0, describe(res)
    assert not leaked(server), f"{leaked(server)}\n{describe(res)}\n{env.log()}"
    assert not server.credentials() and not server.transactions(), server.sessions
    assert "refused" in env.log(), env.log()


def test_careless_exim_good_server_delivers(exim, smtp_server, run, shim, message_file):
    server = smtp_server()
    env = shim([server.port])
    res = careless_exim(run, exim, env, server, message_file)
    server.wait_idle()
    assert res.returncode == 0, f"{describe(res)}\n{env.log()}"
    assert [s.tls for s in server.transactions()] == [True]
    assert not leaked(server)


SHELL_ROADS = {
    # cat writes with write() to its standard output, the inherited SMTP socket
    "cat": "cat {auth} >&3",
    # /usr/bin/printf writes through glibc's stdout (an internal write())
    "printf": "/usr/bin/printf 'AUTH PLAIN AHNndXNlcgBTZy1TM2NyZXQtUGE1NQ==\\r\\n' >&3",
}


@pytest.mark.parametrize("road", list(SHELL_ROADS) + ["fd40", "fd80"])
def test_shell_standard_output(road, smtp_server, run, shim, baseline, tmp_path):
    """A shell connects (/dev/tcp) and a child program writes the credentials to the
    socket as its standard output (or, fd40, to descriptor 40, past a gap of closed
    ones; fd80, to descriptor 80 after a run of open ones past the first 64): adopted
    at exec, written through the guard."""
    auth = tmp_path / "auth.txt"
    auth.write_bytes(b"AUTH PLAIN AHNndXNlcgBTZy1TM2NyZXQtUGE1NQ==\r\n")
    for side in ("baseline", "shim"):
        server = smtp_server(mode="plain")
        env = baseline() if side == "baseline" else shim([server.port])
        fd = int(road[2:]) if road.startswith("fd") else 3
        write = (f"{sys.executable} -c 'import os; os.write({fd}, open(\"{auth}\", \"rb\").read())'"
                 if road.startswith("fd") else SHELL_ROADS[road].format(auth=auth))
        fill = ("for i in $(seq 10 79); do eval \"exec $i</dev/null\"; done; "
                if road == "fd80" else "")
        script = (f"{fill}exec {fd}<>/dev/tcp/127.0.0.1/{server.port}; "
                  f"head -c 10 <&{fd} >/dev/null; {write}; sleep 0.3")
        res = run(["bash", "-c", script], env)
        server.wait_idle()
        if side == "baseline":
            assert server.credentials(), f"the road is not real\n{describe(res)}"
        else:
            assert not server.credentials() and not leaked(server), describe(res)
            assert "AUTH before TLS" in env.log(), env.log()


@pytest.fixture
def proxy():
    from lib.proxy import Proxy
    proxies = []

    def start(kind):
        p = Proxy(kind)
        proxies.append(p)
        return p

    yield start
    for p in proxies:
        p.stop()


def curl_via(run, env, proxy, server, message_file, tls):
    """curl sending the test message through a proxy, the careless way: no certificate
    check (-k), STARTTLS only when asked (--ssl-reqd), AUTH PLAIN with the test user."""
    how = (["--proxy", f"socks5h://127.0.0.1:{proxy.port}"] if proxy.kind == "socks5" else
           ["--proxytunnel", "--proxy", f"http://127.0.0.1:{proxy.port}"])
    cmd = ["curl", "-sS", "--max-time", "15", *how, f"smtp://localhost:{server.port}",
           "--mail-from", "sender@example.com", "--mail-rcpt", "rcpt@example.com",
           "--upload-file", message_file, "--user", "sguser:Sg-S3cret-Pa55", "-k",
           "--login-options", "AUTH=PLAIN", *(["--ssl-reqd"] if tls else [])]
    return run(cmd, env, timeout=30)


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_proxy_to_plain_server(kind, proxy, smtp_server, run, shim, baseline, message_file):
    """curl through a SOCKS5 / HTTP CONNECT proxy to a server without STARTTLS: it
    leaks without the library; with the proxy's port in proxy_ports the tunnel is
    followed to the SMTP server and AUTH is refused."""
    server, prox = smtp_server(mode="plain"), proxy(kind)
    res = curl_via(run, baseline(), prox, server, message_file, tls=False)
    server.wait_idle()
    assert res.returncode == 0 and server.credentials(), describe(res)
    server, prox = smtp_server(mode="plain"), proxy(kind)
    env = shim([server.port], extra=f"proxy_ports = {prox.port}")
    res = curl_via(run, env, prox, server, message_file, tls=False)
    server.wait_idle()
    assert res.returncode != 0, describe(res)
    assert prox.destinations == [("localhost", server.port)], prox.destinations
    assert not server.credentials() and not leaked(server), server.sessions
    assert f"localhost[]:{server.port}" in env.log() and "AUTH before TLS" in env.log(), \
        env.log()


@pytest.mark.parametrize("kind", ["socks5", "http"])
def test_proxy_to_impostor_and_good_server(kind, proxy, smtp_server, run, shim, baseline,
                                           message_file):
    """Through the proxy, the TLS of the tunnel is judged like a direct one: a
    self-signed impostor is refused (it gets everything without the library), the
    good server gets the message."""
    server, prox = smtp_server(cert="selfsigned"), proxy(kind)
    res = curl_via(run, baseline(), prox, server, message_file, tls=True)
    server.wait_idle()
    assert res.returncode == 0 and server.credentials(), describe(res)
    server, prox = smtp_server(cert="selfsigned"), proxy(kind)
    env = shim([server.port], extra=f"proxy_ports = {prox.port}")
    res = curl_via(run, env, prox, server, message_file, tls=True)
    server.wait_idle()
    assert res.returncode != 0 and not server.credentials(), describe(res)
    assert "refused TLS to localhost" in env.log(), env.log()
    server, prox = smtp_server(), proxy(kind)
    env = shim([server.port], extra=f"proxy_ports = {prox.port}")
    res = curl_via(run, env, prox, server, message_file, tls=True)
    server.wait_idle()
    assert res.returncode == 0, f"{describe(res)}\n{env.log()}"
    assert [s.tls for s in server.transactions()] == [True] and not leaked(server)


def test_proxy_followed_for_a_program_with_its_own_ports(proxy, smtp_server, run, shim,
                                                         message_file):
    """A [program] section whose smtp_ports replace the global list keeps the
    proxy ports watched, as the global list does: curl, whose section names
    another port, is followed through the SOCKS proxy to the plain server and
    AUTH is refused. (The section's list once replaced the proxy ports too, and
    the tunnel leaked.)"""
    curl = os.path.realpath(shutil.which("curl"))
    server, prox = smtp_server(mode="plain"), proxy("socks5")
    env = shim([server.port], extra=f"proxy_ports = {prox.port}\n"
                                    f"[program {curl}]\nsmtp_ports = {server.port}")
    res = curl_via(run, env, prox, server, message_file, tls=False)
    server.wait_idle()
    assert res.returncode != 0, describe(res)
    assert prox.destinations == [("localhost", server.port)], prox.destinations
    assert not server.credentials() and not leaked(server), server.sessions
    assert "AUTH before TLS" in env.log(), env.log()


def test_proxy_to_other_port_untouched(proxy, run, shim):
    """A tunnel to a port that is not SMTP is let go: its bytes pass unchanged."""
    import http.server
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        prox = proxy("socks5")
        env = shim([25], extra=f"proxy_ports = {prox.port}")
        res = run(["curl", "-sS", "--max-time", "10", "--proxy",
                   f"socks5h://127.0.0.1:{prox.port}",
                   f"http://localhost:{srv.server_address[1]}/"], env)
        assert res.returncode == 0 and "<html" in res.stdout.lower(), describe(res)
        assert "refused" not in env.log(), env.log()
    finally:
        srv.shutdown()


HIGH_FD = int(os.environ.get("SG_TEST_HIGH_FD", "70000"))  # past the shim's table (65536)


def high_fd_possible():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > HIGH_FD:
        return True
    try:  # root with CAP_SYS_RESOURCE may raise it (the client does the same)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, HIGH_FD + 1))
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        return True
    except (ValueError, OSError):
        return False


@pytest.mark.skipif(not high_fd_possible(), reason="the hard descriptor limit cannot pass 65536")
def test_copy_past_the_table_refused(smtp_server, run, shim, baseline):
    """dup2 of an SMTP socket to a number past the descriptor table: the copy was
    untracked, and AUTH/MAIL went out through it in clear."""
    server = smtp_server(mode="plain")
    env = baseline()
    env["ROADS_HIGH_FD"] = str(HIGH_FD)
    res = roads(run, env, "highdup", server, "plain")
    assert res.returncode == 0, describe(res)
    server.wait_idle()
    assert leaked(server), f"the road is not real: {server.sessions}"
    server = smtp_server(mode="plain")
    env = shim([server.port])
    env["ROADS_HIGH_FD"] = str(HIGH_FD)
    res = roads(run, env, "highdup", server, "plain")
    server.wait_idle()
    assert res.returncode != 0, describe(res)
    assert not leaked(server), f"{leaked(server)}\n{describe(res)}"
    assert "too high to guard" in env.log(), env.log()


PY_TRUNC = """
import ctypes, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
peek = s.recv(4096, socket.MSG_PEEK)
while not peek.endswith(b"\\r\\n"):
    peek = s.recv(4096, socket.MSG_PEEK)
if sys.argv[2] == "recv":
    n = libc.recv(s.fileno(), None, ctypes.c_size_t(len(peek)), socket.MSG_TRUNC)
else:  # recvmmsg: one struct mmsghdr, its iovec's base NULL
    class IOV(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
    class MMSG(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint),
                    ("iov", ctypes.POINTER(IOV)), ("iovlen", ctypes.c_size_t),
                    ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int), ("pad", ctypes.c_int),
                    ("len", ctypes.c_uint)]
    iov = IOV(None, len(peek))
    m = MMSG(None, 0, ctypes.pointer(iov), 1, None, 0, 0, 0, 0)
    got = libc.recvmmsg(s.fileno(), ctypes.byref(m), 1, socket.MSG_TRUNC, None)
    n = m.len if got == 1 else -1
assert n == len(peek), (n, ctypes.get_errno())
s.sendall(b"QUIT\\r\\n")
print(s.recv(100).decode().strip())
"""


@pytest.mark.parametrize("call", ["recv", "recvmmsg"])
def test_recv_msg_trunc_discard(call, smtp_server, run, shim, baseline):
    """recv(fd, NULL, n, MSG_TRUNC) on TCP discards n bytes without copying them: the
    guard read the NULL buffer and the program died of SIGSEGV."""
    for with_library in (False, True):
        server = smtp_server(mode="plain")
        env = shim([server.port]) if with_library else baseline()
        res = run([sys.executable, "-c", PY_TRUNC, str(server.port), call], env, timeout=20)
        assert res.returncode == 0 and "221" in res.stdout, describe(res)
