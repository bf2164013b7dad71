"""A man in the middle between an SMTP client and the test server (issue 8).

`Proxy(upstream_port, behaviour)` listens on 127.0.0.1 and relays each connection to
the server, following the plaintext dialogue line by line so that it can tamper with it:

- `none`: relays faithfully (a transparent proxy; TLS passes through to the server);
- `strip`: removes STARTTLS from the EHLO reply (continuation marks fixed);
- `reply454` / `reply502`: answers the client's STARTTLS itself, keeps relaying plaintext;
- `no_ehlo`: answers EHLO with 502, so that the client falls back to HELO;
- `inject_same`: appends INJECT to the server's `220` reply to STARTTLS, in the same send;
- `inject_separate`: sends INJECT as a segment of its own, `delay` seconds later (the
  client has begun its handshake by then; its TLS library reads the injected bytes).

Once a `220` reply to STARTTLS has passed, the proxy relays raw bytes both ways. Every
byte the client sent is kept (`from_client`): that transcript is the evidence of what a
client revealed to the man in the middle.
"""
import base64
import binascii
import re
import select
import socket
import threading
import time
from collections import deque

from .constants import BODY, FROM, PASSWORD, TO, USER

BEHAVIOURS = ("none", "strip", "reply454", "reply502", "no_ehlo",
              "inject_same", "inject_separate")
INJECT = b"250-PIPELINING\r\n250 AUTH PLAIN LOGIN\r\n"
LOCAL_REPLIES = {   # behaviour -> (verb it answers itself, the answer)
    "reply454": (b"STARTTLS", b"454 4.7.0 TLS not available\r\n"),
    "reply502": (b"STARTTLS", b"502 5.5.1 command not implemented\r\n"),
    "no_ehlo": (b"EHLO", b"502 5.5.2 unrecognized command\r\n"),
}
TIMEOUT = 10.0     # idle limit of a connection and of every socket operation
LIFETIME = 60.0    # hard limit of a connection
MAX_CONNECTIONS = 20

# What must never be seen in plaintext: name -> bytes (compared case-insensitively).
SECRETS = {
    "password": PASSWORD.encode(),
    "AUTH PLAIN blob": base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()),
    "AUTH PLAIN blob with authzid": base64.b64encode(f"{USER}\0{USER}\0{PASSWORD}".encode()),
    "AUTH LOGIN password": base64.b64encode(PASSWORD.encode()),
    "sender address": FROM.encode(),
    "recipient address": TO.encode(),
    "MAIL FROM": b"MAIL FROM",
    "RCPT TO": b"RCPT TO",
    "message body": BODY.split(b"\r\n")[0],
}
_BASE64_TOKEN = re.compile(rb"[A-Za-z0-9+/]{8,}={0,2}")


def revealed(data):
    """Names of the SECRETS found in data (a transcript or a log), also inside any
    base64 token (whatever its alignment or authorisation identity)."""
    low = data.lower()
    found = [name for name, secret in SECRETS.items() if secret.lower() in low]
    for token in _BASE64_TOKEN.findall(data):
        try:
            decoded = base64.b64decode(token + b"=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            continue
        if PASSWORD.encode() in decoded:
            found.append(f"password in base64 {token[:60]!r}")
    return found


def strip_starttls(lines):
    """An EHLO reply (list of lines with CRLF) without its STARTTLS line, every line
    but the last marked as a continuation."""
    kept = [line for line in lines if line[4:].strip().upper() != b"STARTTLS"]
    return [line[:3] + (b"-" if i < len(kept) - 1 else b" ") + line[4:]
            for i, line in enumerate(kept)]


class _Relay:
    """One client connection and its connection to the server."""

    def __init__(self, proxy, client):
        self.proxy, self.client, self.server = proxy, client, None
        self.behaviour = proxy.behaviour
        self.from_client = bytearray()   # every byte the client sent
        self.to_client = bytearray()     # every byte the client was sent
        self.expect = deque(["greeting"])  # what the server's next replies answer
        self.reply = []                  # lines of the server reply being read
        self.cbuf = self.sbuf = b""
        self.raw = False                 # past STARTTLS: bytes pass untouched
        self.in_data = False             # the client sends a message body
        self.error = None

    def run(self):
        try:
            self.client.settimeout(TIMEOUT)
            self.client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.server = socket.create_connection(self.proxy.upstream, timeout=TIMEOUT)
            self._loop()
        except (OSError, ValueError) as e:
            self.error = f"{type(e).__name__}: {e}"
        finally:
            self.shutdown()
            for sock in (self.client, self.server):
                if sock is not None:
                    sock.close()

    def shutdown(self):
        """End the connection both ways; the relay's thread then closes the sockets."""
        for sock in (self.client, self.server):
            try:
                if sock is not None:
                    sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _loop(self):
        deadline = time.monotonic() + LIFETIME
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.client, self.server], [], [], TIMEOUT)
            if not ready:
                self.error = "idle timeout"
                return
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is self.client:
                    self.from_client += data
                    self._from_client(data)
                else:
                    self._from_server(data)
        self.error = "lifetime exceeded"

    def _to_client(self, data):
        self.to_client += data
        self.client.sendall(data)

    # ---- client -> server ----
    def _from_client(self, data):
        if self.raw:
            return self.server.sendall(data)
        self.cbuf += data
        while not self.raw and b"\n" in self.cbuf:
            line, _, self.cbuf = self.cbuf.partition(b"\n")
            self._client_line(line + b"\n")

    def _client_line(self, line):
        if self.in_data:
            self.in_data = line.rstrip(b"\r\n") != b"."
            if not self.in_data:
                self.expect.append("other")   # the reply to the end of the message
            return self.server.sendall(line)
        verb = line.split(None, 1)[0].upper() if line.strip() else b""
        local = LOCAL_REPLIES.get(self.behaviour)
        if local and verb == local[0]:
            return self._to_client(local[1])
        self.expect.append({b"EHLO": "ehlo", b"STARTTLS": "starttls",
                            b"DATA": "data"}.get(verb, "other"))
        self.server.sendall(line)

    # ---- server -> client ----
    def _from_server(self, data):
        if self.raw:
            return self._to_client(data)
        self.sbuf += data
        while not self.raw and b"\n" in self.sbuf:
            line, _, self.sbuf = self.sbuf.partition(b"\n")
            self.reply.append(line + b"\n")
            if line[3:4] != b"-":
                lines, self.reply = self.reply, []
                self._server_reply(self.expect.popleft() if self.expect else "other", lines)
        if self.raw and self.sbuf:
            self._to_client(self.sbuf)
            self.sbuf = b""

    def _server_reply(self, answers, lines):
        code = lines[-1][:3]
        if answers == "ehlo" and self.behaviour == "strip":
            lines = strip_starttls(lines)
        elif answers == "data" and code == b"354":
            self.in_data = True
        elif answers == "starttls" and code == b"220":
            return self._tls_begins(b"".join(lines))
        self._to_client(b"".join(lines))

    def _tls_begins(self, reply):
        """Relay the 220 to STARTTLS (with an injection, if that is the behaviour);
        from here on bytes pass untouched."""
        if self.behaviour == "inject_same":
            self._to_client(reply + self.proxy.inject)
        elif self.behaviour == "inject_separate":
            self._to_client(reply)
            time.sleep(self.proxy.delay)
            self._to_client(self.proxy.inject)
        else:
            self._to_client(reply)
        self.raw = True
        if self.cbuf:   # the client began TLS before its STARTTLS reached here
            self.server.sendall(self.cbuf)
            self.cbuf = b""


class Proxy:
    """A threaded man in the middle on 127.0.0.1 in front of 127.0.0.1:upstream_port.
    Use as a context manager, or call stop()."""

    def __init__(self, upstream_port, behaviour="none", inject=INJECT, delay=0.2):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.upstream = ("127.0.0.1", upstream_port)
        self.behaviour, self.inject, self.delay = behaviour, inject, delay
        self.relays = []
        self._threads = []
        self._lock = threading.Lock()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.host, self.port = self._sock.getsockname()
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"mitm-{behaviour}-{self.port}")
        self._acceptor.start()

    def __repr__(self):
        return f"<Proxy {self.behaviour} {self.port} -> {self.upstream[1]}>"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    @property
    def from_client(self):
        """Every byte the clients sent, all connections in order."""
        with self._lock:
            return b"".join(bytes(r.from_client) for r in self.relays)

    @property
    def to_client(self):
        with self._lock:
            return b"".join(bytes(r.to_client) for r in self.relays)

    def wait_idle(self, timeout=5.0):
        """Wait until every connection has ended; True when they have."""
        end = time.monotonic() + timeout
        for t in list(self._threads):
            t.join(max(0.0, end - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def stop(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._acceptor.join(5)
        with self._lock:
            relays = list(self.relays)
        for relay in relays:
            relay.shutdown()
        self.wait_idle(5.0)

    def _accept_loop(self):
        while True:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            with self._lock:
                if len(self.relays) >= MAX_CONNECTIONS:
                    client.close()
                    continue
                relay = _Relay(self, client)
                self.relays.append(relay)
            t = threading.Thread(target=relay.run, daemon=True)
            self._threads.append(t)
            t.start()
