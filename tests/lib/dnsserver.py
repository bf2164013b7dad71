"""A tiny stub DNS server for the identity tests: UDP (and TCP, RFC 1035 4.2.2
framing) on a loopback address, answers from a fixed table. Enough of RFC 1035 for A,
AAAA, CNAME (followed within the table, as a recursive resolver would) and MX (with
the targets' addresses in the additional section). By default on 127.0.0.1 and a port
the kernel picks; `port=53` (a program's own resolver is recognised by that port) needs
root and takes a random 127.x.y.z so that parallel tests do not collide."""
import ipaddress
import random
import socket
import struct
import threading

TYPES = {"A": 1, "CNAME": 5, "MX": 15, "AAAA": 28}


def encode_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def read_name(msg, off):
    labels = []
    while msg[off]:
        n = msg[off]
        labels.append(msg[off + 1:off + 1 + n].decode())
        off += 1 + n
    return ".".join(labels), off + 1


class DnsServer:
    """records: {name: [("A", "127.0.0.1"), ("MX", (10, "mx.test")), ("CNAME", "x.test")]}"""

    def __init__(self, records, port=0):
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}
        self.queries = []
        for _ in range(20):   # a free loopback address for port 53
            host = "127.0.0.1" if not port else \
                f"127.{random.randint(1, 254)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                self.sock.bind((host, port))
                self.tcp.bind((host, self.sock.getsockname()[1]))
                break
            except OSError:
                self.sock.close()
                self.tcp.close()
        else:
            raise OSError(f"no free loopback address for a DNS server on port {port}")
        self.tcp.listen(8)
        self.sock.settimeout(0.2)
        self.tcp.settimeout(0.2)
        self.host, self.port = self.sock.getsockname()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._tcp_thread = threading.Thread(target=self._serve_tcp, daemon=True)
        self._tcp_thread.start()

    def _rr(self, name, rtype, value):
        if rtype == "A":
            rdata = ipaddress.IPv4Address(value).packed
        elif rtype == "AAAA":
            rdata = ipaddress.IPv6Address(value).packed
        elif rtype == "CNAME":
            rdata = encode_name(value)
        else:
            rdata = struct.pack("!H", value[0]) + encode_name(value[1])
        return encode_name(name) + struct.pack("!HHIH", TYPES[rtype], 1, 60, len(rdata)) + rdata

    def _answer(self, qname, qtype):
        answers, additional, name = [], [], qname
        for _ in range(8):   # a CNAME chain, bounded
            recs = self.records.get(name, [])
            cname = [v for t, v in recs if t == "CNAME"]
            if cname and qtype != TYPES["CNAME"]:
                answers.append(self._rr(name, "CNAME", cname[0]))
                name = cname[0].lower().rstrip(".")
                continue
            for t, v in recs:
                if TYPES[t] == qtype:
                    answers.append(self._rr(name, t, v))
                    if t == "MX":
                        for t2, v2 in self.records.get(v[1].lower().rstrip("."), []):
                            if t2 in ("A", "AAAA"):
                                additional.append(self._rr(v[1], t2, v2))
            break
        return answers, additional, name in self.records

    def _reply(self, msg):
        """The answer to one query message, or None when it cannot be read."""
        try:
            qname, off = read_name(msg, 12)
            qtype = struct.unpack("!H", msg[off:off + 2])[0]
        except (IndexError, UnicodeDecodeError, struct.error):
            return None
        self.queries.append((qname, qtype))
        answers, additional, known = self._answer(qname.lower(), qtype)
        flags = 0x8180 | (0 if known else 3)   # response, RD, RA; NXDOMAIN if unknown
        header = struct.pack("!HHHHHH", struct.unpack("!H", msg[:2])[0], flags, 1,
                             len(answers), 0, len(additional))
        question = msg[12:off + 4]
        return header + question + b"".join(answers) + b"".join(additional)

    def _serve(self):
        while not self._stop.is_set():
            try:
                msg, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._reply(msg)
            if reply:
                self.sock.sendto(reply, peer)

    def _serve_tcp(self):
        while not self._stop.is_set():
            try:
                conn, _ = self.tcp.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    head = conn.recv(2, socket.MSG_WAITALL)
                    msg = conn.recv(struct.unpack("!H", head)[0], socket.MSG_WAITALL)
                    reply = self._reply(msg)
                    if reply:
                        conn.sendall(struct.pack("!H", len(reply)) + reply)
                except (OSError, struct.error):
                    pass

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self._tcp_thread.join(timeout=5)
        self.sock.close()
        self.tcp.close()
