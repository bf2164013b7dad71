"""hello_first: a careless implicit-TLS SMTP client whose TLS is an SSLObject over
memory BIOs, and which makes its ClientHello BEFORE it connects the socket (as a
client that sends the ClientHello with the SYN, or prepares its TLS ahead, does).

    hello_first.py HOST PORT MESSAGE_FILE

No verification (CERT_NONE, no host check); SNI is HOST. AUTH PLAIN with the test
credentials, MAIL, RCPT, DATA of MESSAGE_FILE, QUIT. Prints "hello_first: delivered"
and exits 0 only when the server took the message; bounded by a 20 s alarm.
"""
import base64
import signal
import socket
import ssl
import sys

USER, PASSWORD = "sguser", "Sg-S3cret-Pa55"
FROM, TO = "sender@example.com", "rcpt@example.com"


class Tls:
    def __init__(self, host):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=host)
        self.sock = None
        self.buf = b""

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def feed(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.inc.write(data)

    def step(self, call, *args):
        while True:
            try:
                r = call(*args)
                self.flush()
                return r
            except ssl.SSLWantReadError:
                self.flush()
                self.feed()

    def send(self, data):
        self.step(self.obj.write, data)

    def line(self):
        while b"\n" not in self.buf:
            self.buf += self.step(self.obj.read, 65536)
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def reply(self):
        for _ in range(100):
            line = self.line()
            if line[3:4] != b"-":
                return int(line[:3])
        raise ConnectionError("endless reply")

    def command(self, text, want):
        self.send(text.encode() + b"\r\n")
        code = self.reply()
        if code != want:
            raise ConnectionError(f"{text.split()[0]}: got {code}, wanted {want}")


def stuffed(message):
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def session(host, port, message):
    tls = Tls(host)
    try:
        tls.obj.do_handshake()  # the ClientHello, into the memory BIO
    except ssl.SSLWantReadError:
        pass
    tls.sock = socket.create_connection((host, port), timeout=20)
    tls.flush()
    tls.step(tls.obj.do_handshake)
    if tls.reply() != 220:
        raise ConnectionError("no greeting")
    auth = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    tls.command("EHLO hello-first.example", 250)
    tls.command(f"AUTH PLAIN {auth}", 235)
    tls.command(f"MAIL FROM:<{FROM}>", 250)
    tls.command(f"RCPT TO:<{TO}>", 250)
    tls.command("DATA", 354)
    tls.send(stuffed(message))
    tls.command(".", 250)
    tls.send(b"QUIT\r\n")
    tls.sock.close()


def main():
    host, port, path = sys.argv[1:4]
    signal.alarm(20)
    with open(path, "rb") as f:
        message = f.read()
    try:
        session(host, int(port), message)
    except (OSError, ssl.SSLError, ConnectionError) as e:
        print(f"hello_first: failed: {type(e).__name__}: {e}")
        return 1
    print("hello_first: delivered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
