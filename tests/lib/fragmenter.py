"""A transparent TCP relay that cuts what it forwards into small pieces (tests/test_wire.py).

`Fragmenter(upstream_port, piece=5)` listens on 127.0.0.1 and forwards each connection to
127.0.0.1:upstream_port, both ways, in writes of at most `piece` bytes with TCP_NODELAY and
a short pause between them, so that the client's reads see TLS records cut across reads
(and headers cut in two) rather than one flight per read. Bounded: 10 s idle, 20 connections.
"""
import select
import socket
import threading
import time

TIMEOUT = 10.0
MAX_CONNECTIONS = 20


class Fragmenter:
    def __init__(self, upstream_port, piece=5, pause=0.0005):
        self.upstream = ("127.0.0.1", upstream_port)
        self.piece, self.pause = piece, pause
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.host, self.port = self._sock.getsockname()
        self._threads = []
        self._acceptor = threading.Thread(target=self._accept_loop, daemon=True)
        self._acceptor.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._acceptor.join(5)
        for t in self._threads:
            t.join(5)

    def _accept_loop(self):
        while len(self._threads) < MAX_CONNECTIONS:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            t = threading.Thread(target=self._relay, args=(client,), daemon=True)
            self._threads.append(t)
            t.start()

    def _send_cut(self, sock, data):
        for i in range(0, len(data), self.piece):
            sock.sendall(data[i:i + self.piece])
            time.sleep(self.pause)

    def _relay(self, client):
        try:
            server = socket.create_connection(self.upstream, timeout=TIMEOUT)
        except OSError:
            client.close()
            return
        for s in (client, server):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = {client: server, server: client}
        try:
            while True:
                ready, _, _ = select.select([client, server], [], [], TIMEOUT)
                if not ready:
                    return
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    self._send_cut(peer[s], data)
        except OSError:
            return
        finally:
            client.close()
            server.close()
