"""A threaded test SMTP server that records what it receives (tests/HARNESS.md).

It accepts any credentials and any message, so a leak is visible: the tests
assert on the Session objects it records, never on its replies.
"""
import base64
import socket
import ssl
import threading
import time
import warnings

MAX_LINE = 64 * 1024
MAX_MESSAGE = 64 * 1024 * 1024
MAX_SESSIONS = 20
TIMEOUT = 10.0
HOSTNAME = "localhost"


class Session:
    """What one connection did."""

    def __init__(self, peer):
        self.peer = peer
        self.tls = False           # a TLS handshake completed
        self.tls_version = None    # e.g. "TLSv1.3"
        self.cipher = None         # e.g. "TLS_AES_256_GCM_SHA384"
        self.tls_error = None      # why a handshake failed
        self.commands = []         # (verb, over_tls)
        self.auth = []             # (user, password, over_tls)
        self.mail_from = None
        self.rcpt_to = []
        self.data = None           # the last DATA payload
        self.complete = False      # a DATA was accepted
        self.messages = []         # every accepted DATA payload
        self.plaintext_after_starttls = b""  # bytes pipelined after STARTTLS (discarded)
        self.error = None          # why the session ended, when not by QUIT
        self.in_transaction = False  # MAIL given, not yet ended by DATA or a reset

    def __repr__(self):
        return (f"<Session tls={self.tls} {self.tls_version} {self.cipher} "
                f"tls_error={self.tls_error!r} commands={self.commands} auth={self.auth} "
                f"complete={self.complete} error={self.error!r}>")


class _End(Exception):
    """The session is over."""


class _Lines:
    """Line I/O over a plain or TLS socket, bounded by MAX_LINE."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send(self, *lines):
        self.sock.sendall(b"".join(line.encode() + b"\r\n" for line in lines))

    def reply(self, code, *texts):
        texts = texts or ("",)
        self.send(*(f"{code}{'-' if i < len(texts) - 1 else ' '}{t}"
                    for i, t in enumerate(texts)))

    def readline(self):
        while True:
            i = self.buf.find(b"\n")
            if i >= 0 and i < MAX_LINE:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                return line
            if len(self.buf) >= MAX_LINE:
                self.reply(500, "5.5.6 Line too long")
                raise _End("line too long")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise _End("connection closed by client")
            self.buf += chunk


def make_context(cert, tls="modern"):
    """Server context for a Cert and a variant: modern, tls12 (TLS 1.2 only), tls10 (TLS 1.0 only), old or weak."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert.cert, cert.key)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        if tls == "modern":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        elif tls == "old":
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        elif tls == "tls10":
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = ssl.TLSVersion.TLSv1
        elif tls == "tls12":
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        elif tls == "weak":
            ctx.set_ciphers("AES128-GCM-SHA256")
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            raise ValueError(f"unknown tls variant {tls!r}")
    return ctx


def _b64(text):
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


class SMTPServer:
    """mode: starttls, implicit or plain; cert: a certs.Cert (not needed for plain)."""

    def __init__(self, cert=None, mode="starttls", tls="modern"):
        if mode not in ("starttls", "implicit", "plain"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode, self.tls_variant = mode, tls
        self.ctx = None if mode == "plain" else make_context(cert, tls)
        self.host = "127.0.0.1"
        self.sessions = []
        self._cond = threading.Condition()
        self._active = {}          # Session -> its current socket
        self._threads = []
        self._stopping = False
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((self.host, 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True,
                                          name=f"smtp-accept-{self.port}")
        self._acceptor.start()

    def __repr__(self):
        return f"<SMTPServer {self.mode}/{self.tls_variant} {self.host}:{self.port}>"

    # ---- what was received ----
    def wait_idle(self, timeout=5.0):
        """Wait until no session is running; True when idle."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._active, timeout)

    def wait_sessions(self, count, timeout=5.0):
        """Wait until count connections were accepted and all are over (the
        kernel may still hold a connection the accept loop has not taken)."""
        deadline = time.monotonic() + timeout
        while len(self.sessions) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.wait_idle(max(0.1, deadline - time.monotonic()))

    def credentials(self):
        self.wait_idle(2.0)
        return [a for s in list(self.sessions) for a in s.auth]

    def transactions(self):
        self.wait_idle(2.0)
        return [s for s in list(self.sessions) if any(v == "MAIL" for v, _ in s.commands)]

    def messages(self):
        self.wait_idle(2.0)
        return [m for s in list(self.sessions) for m in s.messages]

    # ---- life cycle ----
    def stop(self):
        with self._cond:
            self._stopping = True
            socks = list(self._active.values())
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._acceptor.join(5)
        for t in self._threads:
            t.join(5)

    def _accept_loop(self):
        while True:
            try:
                sock, peer = self._sock.accept()
            except OSError:
                return
            with self._cond:
                if self._stopping:
                    sock.close()
                    return
                busy = len(self._active) >= MAX_SESSIONS
                if not busy:
                    session = Session(peer)
                    self.sessions.append(session)
                    self._active[session] = sock
            if busy:
                try:
                    sock.sendall(b"421 4.7.0 Too many sessions\r\n")
                finally:
                    sock.close()
                continue
            t = threading.Thread(target=self._serve, args=(sock, session), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock, s):
        try:
            sock.settimeout(TIMEOUT)
            if self.mode == "implicit":
                sock = self._handshake(sock, s)
            self._dialog(_Lines(sock), s)
        except _End as e:
            s.error = str(e) or None
        except (OSError, ValueError, UnicodeError) as e:
            s.error = f"{type(e).__name__}: {e}"
        finally:
            with self._cond:
                current = self._active.get(s, sock)   # the TLS socket after a handshake
            try:
                current.close()
            except OSError:
                pass
            with self._cond:
                del self._active[s]
                self._cond.notify_all()

    def _handshake(self, sock, s):
        try:
            tls = self.ctx.wrap_socket(sock, server_side=True)
        except (ssl.SSLError, OSError) as e:
            s.tls_error = f"{type(e).__name__}: {e}"
            raise _End("TLS handshake failed")
        s.tls, s.tls_version, s.cipher = True, tls.version(), tls.cipher()[0]
        with self._cond:
            self._active[s] = tls
        return tls

    # ---- the protocol ----
    def _dialog(self, io, s):
        io.reply(220, f"{HOSTNAME} ESMTP smtpguard-test")
        while True:
            line = io.readline().rstrip(b"\r\n").decode("utf-8", "replace")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            s.commands.append((verb, s.tls))
            handler = self._HANDLERS.get(verb)
            if handler is None:
                io.reply(500, "5.5.2 Command unrecognized")
            elif handler(self, io, s, arg.strip()) == "quit":
                return

    def _ehlo(self, io, s, arg):
        s.in_transaction = False
        ext = ["8BITMIME", f"SIZE {MAX_MESSAGE}"]
        if self.mode == "starttls" and not s.tls:
            ext.append("STARTTLS")
        ext.append("AUTH PLAIN LOGIN")
        io.reply(250, f"{HOSTNAME} greets {arg or 'you'}", *ext)

    def _helo(self, io, s, arg):
        s.in_transaction = False
        io.reply(250, HOSTNAME)

    def _starttls(self, io, s, arg):
        if self.mode != "starttls":
            return io.reply(502, "5.5.1 STARTTLS not offered")
        if s.tls:
            return io.reply(503, "5.5.1 TLS already active")
        io.reply(220, "Ready to start TLS")
        s.plaintext_after_starttls, io.buf = io.buf, b""
        io.sock = self._handshake(io.sock, s)
        s.in_transaction = False

    def _auth(self, io, s, arg):
        mech, _, initial = arg.partition(" ")
        mech = mech.upper()
        if mech not in ("PLAIN", "LOGIN"):
            return io.reply(504, "5.5.4 Unrecognized authentication type")

        def ask(prompt):
            io.reply(334, prompt)
            answer = io.readline().strip()
            return None if answer == b"*" else _b64(answer)

        if mech == "PLAIN":
            blob = _b64(initial) if initial else ask("")
            parts = blob.split(b"\0") if blob is not None else []
            if len(parts) != 3:
                return io.reply(501, "5.5.2 Cannot decode AUTH PLAIN")
            user, password = parts[1], parts[2]
        else:
            user = _b64(initial) if initial else ask("VXNlcm5hbWU6")
            password = ask("UGFzc3dvcmQ6") if user is not None else None
            if user is None or password is None:
                return io.reply(501, "5.5.2 Cannot decode AUTH LOGIN")
        s.auth.append((user.decode("utf-8", "replace"), password.decode("utf-8", "replace"),
                       s.tls))
        io.reply(235, "2.7.0 Authentication successful")

    @staticmethod
    def _address(arg, prefix):
        if not arg.upper().startswith(prefix):
            return None
        addr = arg[len(prefix):].strip().split(" ")[0]
        return addr[1:-1] if addr.startswith("<") and addr.endswith(">") else addr

    def _mail(self, io, s, arg):
        addr = self._address(arg, "FROM:")
        if addr is None:
            return io.reply(501, "5.5.4 Syntax: MAIL FROM:<address>")
        s.mail_from, s.rcpt_to, s.in_transaction = addr, [], True
        io.reply(250, "2.1.0 Ok")

    def _rcpt(self, io, s, arg):
        addr = self._address(arg, "TO:")
        if addr is None:
            return io.reply(501, "5.5.4 Syntax: RCPT TO:<address>")
        if not s.in_transaction:
            return io.reply(503, "5.5.1 Need MAIL first")
        s.rcpt_to.append(addr)
        io.reply(250, "2.1.5 Ok")

    def _data(self, io, s, arg):
        if not s.in_transaction or not s.rcpt_to:
            return io.reply(503, "5.5.1 Need MAIL and RCPT first")
        io.reply(354, "End data with <CR><LF>.<CR><LF>")
        chunks, size = [], 0
        while True:
            line = io.readline()
            if line in (b".\r\n", b".\n"):
                break
            if line.startswith(b"."):
                line = line[1:]
            size += len(line)
            if size <= MAX_MESSAGE:
                chunks.append(line)
        if size > MAX_MESSAGE:
            return io.reply(552, "5.3.4 Message too big")
        s.data = b"".join(chunks)
        s.messages.append(s.data)
        s.complete = True
        s.in_transaction = False
        io.reply(250, "2.0.0 Ok: queued")

    def _rset(self, io, s, arg):
        s.in_transaction = False
        io.reply(250, "2.0.0 Ok")

    def _noop(self, io, s, arg):
        io.reply(250, "2.0.0 Ok")

    def _quit(self, io, s, arg):
        io.reply(221, "2.0.0 Bye")
        return "quit"

    _HANDLERS = {"EHLO": _ehlo, "HELO": _helo, "STARTTLS": _starttls, "AUTH": _auth,
                 "MAIL": _mail, "RCPT": _rcpt, "DATA": _data, "RSET": _rset,
                 "NOOP": _noop, "QUIT": _quit}
