"""Hostile SMTP servers for the robustness tests (tests/test_hostile.py).

A HostileServer speaks a scripted SMTP dialogue (STARTTLS or implicit TLS) in which a
Variant makes one thing hostile: a reply line of 1 MiB, a multiline reply that never
ends, NUL bytes, every byte in its own TCP segment, a chain of 100 certificates, a TLS
alert in the middle of the handshake, a close at some step, or no answer at all. TLS
runs over memory BIOs so that the handshake bytes can be cut up too. The server
records every command line and whether it came over TLS: a leak is an AUTH, MAIL,
RCPT, DATA or BDAT line it received. Each connection ends after its time limit.
"""
import itertools
import socket
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .certs import Cert

MIB = 1024 * 1024
MAX_LINE = 64 * 1024
SECRET_VERBS = {"AUTH", "MAIL", "RCPT", "DATA", "BDAT"}
EHLO = b"250-hostile.test\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n"
EHLO_TLS = b"250-hostile.test\r\n250 AUTH PLAIN LOGIN\r\n"
READY = b"220 2.0.0 Ready to start TLS\r\n"
ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])  # fatal handshake_failure


def endless(line):
    """A reply that never ends: line forever (the server's time limit stops it)."""
    return lambda: itertools.repeat(line)


@dataclass(frozen=True)
class Variant:
    """What is hostile. A reply is bytes, or a callable giving an iterable of chunks."""
    greeting: object = b"220 hostile.test ESMTP\r\n"
    ehlo: object = EHLO
    starttls: object = READY
    handshake: str = "tls"            # tls | alert | close (after the ClientHello)
    close_after: Optional[str] = None  # greeting | ehlo | starttls | auth
    silent: bool = False              # never answers
    dribble: bool = False             # one byte per TCP segment, TLS included
    cert: str = "selfsigned"          # a name of `certs`, or "chain100"
    time_limit: float = 10.0


class _Closed(Exception):
    """The peer went away, or the time limit passed."""


class Conn:
    """One connection: line I/O over plain TCP or TLS on memory BIOs."""

    def __init__(self, sock, dribble, deadline):
        self.sock, self.dribble, self.deadline = sock, dribble, deadline
        self.tls = None                    # ssl.SSLObject once TLS is up
        self.incoming = self.outgoing = None
        self.buf = b""
        if dribble:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _left(self):
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Closed("time limit")
        return left

    def _raw_send(self, data):
        step = 1 if self.dribble else len(data)
        for i in range(0, len(data), step or 1):
            self.sock.settimeout(self._left())
            self.sock.sendall(data[i:i + step])
            if self.dribble:
                time.sleep(0.0002)

    def _raw_recv(self):
        self.sock.settimeout(self._left())
        data = self.sock.recv(65536)
        if not data:
            raise _Closed("closed by the client")
        return data

    def _flush(self):
        data = self.outgoing.read()
        if data:
            self._raw_send(data)

    def send(self, reply):
        """reply: bytes, or a callable giving chunks (sent until the time limit)."""
        chunks = reply() if callable(reply) else [reply]
        for chunk in chunks:
            if self.tls:
                self.tls.write(chunk)
                self._flush()
            else:
                self._raw_send(chunk)

    def _fill(self):
        if not self.tls:
            self.buf += self._raw_recv()
            return
        while True:
            try:
                self.buf += self.tls.read(65536)
                return
            except ssl.SSLWantReadError:
                self.incoming.write(self._raw_recv())
            except (ssl.SSLError, ssl.SSLZeroReturnError) as e:
                raise _Closed(f"TLS: {e}")

    def readline(self):
        while b"\n" not in self.buf:
            if len(self.buf) > MAX_LINE:
                raise _Closed("line too long")
            self._fill()
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def client_hello(self):
        """Wait for the first bytes of the client's handshake."""
        self.buf = self.buf or self._raw_recv()

    def start_tls(self, ctx):
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.incoming.write(self.buf)   # a pipelined ClientHello
        self.buf = b""
        while True:
            try:
                self.tls.do_handshake()
                self._flush()
                return
            except ssl.SSLWantReadError:
                self._flush()
                self.incoming.write(self._raw_recv())
            except ssl.SSLError as e:
                self._flush()   # the alert, if any
                raise _Closed(f"handshake: {e}")

    def hold(self):
        """Read and discard until the client leaves or the time limit passes."""
        while True:
            self._raw_recv()


@dataclass
class Session:
    lines: list = field(default_factory=list)   # (line bytes, over TLS)
    messages: list = field(default_factory=list)
    tls: bool = False
    end: str = ""

    def __repr__(self):
        lines = [(line[:60], tls) for line, tls in self.lines[:20]]
        return f"<Session tls={self.tls} end={self.end!r} lines={lines}>"

    def secrets(self):
        """Command lines that carry credentials or mail, with their TLS flag."""
        return [(line, tls) for line, tls in self.lines
                if line.split(b" ", 1)[0].upper().decode("ascii", "replace") in SECRET_VERBS]


class HostileServer:
    def __init__(self, variant, contexts, implicit=False):
        """contexts: cert name -> ssl.SSLContext (see contexts())."""
        self.variant, self.implicit = variant, implicit
        self.ctx = contexts(variant.cert)
        self.sessions, self._threads, self._socks = [], [], []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.host, self.port = self._sock.getsockname()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def __repr__(self):
        return f"<HostileServer port={self.port} implicit={self.implicit} sessions={self.sessions}>"

    def _accept(self):
        while True:
            try:
                sock, _ = self._sock.accept()
            except OSError:
                return
            session = Session()
            with self._lock:
                self.sessions.append(session)
                self._socks.append(sock)
            t = threading.Thread(target=self._serve, args=(sock, session), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock, session):
        v = self.variant
        conn = Conn(sock, v.dribble, time.monotonic() + v.time_limit)
        try:
            if v.silent:
                conn.hold()
            if self.implicit:
                self._handshake(conn, session)
            self._dialogue(conn, session)
        except (_Closed, OSError) as e:
            session.end = str(e)
        finally:
            _shut(sock)
            sock.close()

    def _handshake(self, conn, session):
        conn.client_hello()
        if self.variant.handshake == "alert":
            conn.send(ALERT)
            raise _Closed("alert sent")
        if self.variant.handshake == "close":
            raise _Closed("closed mid-handshake")
        conn.start_tls(self.ctx)
        session.tls = True

    def _dialogue(self, conn, session):
        v = self.variant
        conn.send(v.greeting)
        if v.close_after == "greeting":
            return
        while True:
            line = conn.readline()
            session.lines.append((line, session.tls))
            verb = line.split(b" ", 1)[0].upper()
            if verb in (b"EHLO", b"HELO"):
                conn.send(EHLO_TLS if session.tls else v.ehlo)
                if v.close_after == "ehlo":
                    return
            elif verb == b"STARTTLS" and not session.tls:
                conn.send(v.starttls)
                if v.close_after == "starttls":
                    return
                self._handshake(conn, session)
            elif verb == b"AUTH":
                if v.close_after == "auth":
                    return
                if line.upper() in (b"AUTH PLAIN", b"AUTH LOGIN"):
                    conn.send(b"334 \r\n")
                    session.lines.append((conn.readline(), session.tls))
                conn.send(b"235 2.7.0 Authenticated\r\n")
            elif verb == b"DATA":
                conn.send(b"354 Go ahead\r\n")
                session.messages.append(self._message(conn))
                conn.send(b"250 2.0.0 Queued\r\n")
            elif verb == b"QUIT":
                conn.send(b"221 2.0.0 Bye\r\n")
                return
            else:
                conn.send(b"250 2.0.0 Ok\r\n")

    @staticmethod
    def _message(conn):
        lines = []
        while (line := conn.readline()) != b".":
            lines.append(line[1:] if line.startswith(b".") else line)
        return b"".join(line + b"\r\n" for line in lines)

    def secrets(self):
        """Every AUTH, MAIL, RCPT, DATA or BDAT line received: (line, over TLS)."""
        return [s for session in self.sessions for s in session.secrets()]

    def messages(self):
        return [m for session in self.sessions for m in session.messages]

    def stop(self):
        _shut(self._sock)   # wakes the blocked accept()
        self._sock.close()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)
        for t in [self._acceptor, *self._threads]:
            t.join(5)


def _shut(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# ---- certificates ----

def long_chain(certs, directory, length=100):
    """A Cert for localhost whose chain has `length` certificates: the leaf and
    length - 1 intermediates down from the test CA (which the policies trust)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    ext = d / "ext.cnf"
    ext.write_text("[ca]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign\n"
                   "[leaf]\nbasicConstraints = critical, CA:FALSE\n"
                   "subjectAltName = DNS:localhost, IP:127.0.0.1\nextendedKeyUsage = serverAuth\n")
    issuer_cert, issuer_key = Path(certs.ca), Path(certs.dir) / "ca.key"
    pems = []
    for i in range(length):
        leaf = i == length - 1
        key, cert = d / f"c{i}.key", d / f"c{i}.pem"
        _openssl(d, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", key, "-out", d / "req.csr", "-config", "/dev/null",
                 "-subj", "/CN=localhost" if leaf else f"/CN=smtpguard chain {i}")
        _openssl(d, "x509", "-req", "-in", d / "req.csr", "-CA", issuer_cert,
                 "-CAkey", issuer_key, "-set_serial", str(1000 + i), "-days", "30",
                 "-extfile", ext, "-extensions", "leaf" if leaf else "ca", "-out", cert)
        pems.append(cert.read_text())
        issuer_cert, issuer_key = cert, key
    chain = d / "chain.pem"
    chain.write_text("".join(reversed(pems)))   # leaf first
    return Cert(str(chain), str(d / f"c{length - 1}.key"))


def _openssl(cwd, *args):
    res = subprocess.run(["openssl", *map(str, args)], cwd=cwd, capture_output=True,
                         text=True, timeout=60)
    if res.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed:\n{res.stderr}")


def server_context(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.cert, cert.key)
    return ctx
