"""A relaying proxy for the tests: SOCKS5 (no authentication or user/password,
RFC 1928/1929) or HTTP CONNECT, on 127.0.0.1. It records each destination it was
asked for and relays bytes both ways until either side closes (time-limited)."""
import select
import socket
import struct
import threading

TIME_LIMIT = 20.0


class Proxy:
    def __init__(self, kind="socks5"):
        self.kind = kind
        self.destinations = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.5)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise OSError("closed")
            data += chunk
        return data

    def _socks5(self, conn):
        _, nmethods = self._read(conn, 2)
        methods = self._read(conn, nmethods)
        if 2 in methods and 0 not in methods:
            conn.sendall(b"\x05\x02")
            _, ulen = self._read(conn, 2)
            self._read(conn, ulen)
            (plen,) = self._read(conn, 1)
            self._read(conn, plen)
            conn.sendall(b"\x01\x00")
        else:
            conn.sendall(b"\x05\x00")
        _, cmd, _, atyp = self._read(conn, 4)
        if atyp == 1:
            host = socket.inet_ntoa(self._read(conn, 4))
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, self._read(conn, 16))
        else:
            host = self._read(conn, self._read(conn, 1)[0]).decode()
        (port,) = struct.unpack("!H", self._read(conn, 2))
        self.destinations.append((host, port))
        up = socket.create_connection((host, port), timeout=5)
        conn.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", 0))
        return up

    def _http(self, conn):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = conn.recv(1)
            if not chunk:
                raise OSError("closed")
            head += chunk
        target = head.split(b" ")[1].decode()
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        self.destinations.append((host, int(port)))
        up = socket.create_connection((host, int(port)), timeout=5)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        return up

    def _serve(self, conn):
        up = None
        try:
            conn.settimeout(5)
            up = self._socks5(conn) if self.kind == "socks5" else self._http(conn)
            self._relay(conn, up)
        except OSError:
            pass
        finally:
            for s in (conn, up):
                if s is not None:
                    s.close()

    @staticmethod
    def _relay(a, b):
        import time
        deadline = time.monotonic() + TIME_LIMIT
        while time.monotonic() < deadline:
            ready, _, _ = select.select([a, b], [], [], 0.5)
            for s in ready:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)

    def stop(self):
        self.stopping = True
        self.sock.close()
        self.thread.join(2)
