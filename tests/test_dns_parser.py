"""shim/dns.c alone (issue 12): which name each address of a DNS answer belongs to.
The parser is built into a small shared object and called through ctypes with answers
the stub server of tests/lib/dnsserver.py composes, and with hand-made ones for what a
server never sends on its own (unrelated records, a null MX, odd labels)."""
import ctypes
import socket
import struct
import subprocess

import pytest

from lib.dnsserver import DnsServer, encode_name
from lib.runner import REPO

SINK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p)


@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    lib = tmp_path_factory.mktemp("dns") / "dns.so"
    subprocess.run(["cc", "-std=gnu11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror",
                    "-I", REPO / "shim", "-shared", "-fPIC", "-o", lib, REPO / "shim" / "dns.c"],
                   check=True, timeout=60)
    dns = ctypes.CDLL(str(lib))
    dns.sg_dns_answer.argtypes = (ctypes.c_char_p, ctypes.c_size_t, SINK, ctypes.c_void_p)

    def go(msg):
        """-> (return value, [(name, address text)])"""
        got = []

        def sink(_ctx, name, family, addr):
            size = 4 if family == socket.AF_INET else 16
            got.append((name.decode(), socket.inet_ntop(family, ctypes.string_at(addr, size))))
        r = dns.sg_dns_answer(msg, len(msg), SINK(sink), None)
        return r, got
    return go


class Offline(DnsServer):
    """The stub server's answers without a socket."""
    def __init__(self, records):
        self.records = {k.lower().rstrip("."): v for k, v in records.items()}
        self.queries = []


def query(name, qtype):
    return struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0) + encode_name(name) + \
        struct.pack("!HH", qtype, 1)


def rr(name, rtype, rdata):
    return encode_name(name) + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata


def response(qname, qtype, answers=(), additional=()):
    return struct.pack("!HHHHHH", 7, 0x8180, 1, len(answers), 0, len(additional)) + \
        encode_name(qname) + struct.pack("!HH", qtype, 1) + b"".join(answers) + \
        b"".join(additional)


A, CNAME, MX, AAAA = 1, 5, 15, 28
SERVER = Offline({"smtp.good.test": [("A", "192.0.2.1"), ("AAAA", "2001:db8::1")],
                  "mail.test": [("MX", (10, "smtp.good.test")), ("MX", (20, "mx2.test"))],
                  "mx2.test": [("A", "192.0.2.2")],
                  "alias.test": [("CNAME", "smtp.good.test")],
                  "a2.test": [("CNAME", "alias.test")]})


def test_a_and_aaaa_answer_for_the_name_asked(parse):
    assert parse(SERVER._reply(query("Smtp.Good.Test", A))) == (1, [("smtp.good.test",
                                                                      "192.0.2.1")])
    assert parse(SERVER._reply(query("smtp.good.test", AAAA))) == (1, [("smtp.good.test",
                                                                         "2001:db8::1")])


def test_cname_chain_answers_for_the_name_asked(parse):
    """RFC 6125: the reference identifier is the name the program asked for."""
    assert parse(SERVER._reply(query("a2.test", A))) == (1, [("a2.test", "192.0.2.1")])


def test_mx_targets_are_their_own_names(parse):
    r, got = parse(SERVER._reply(query("mail.test", MX)))
    assert sorted(got) == [("mx2.test", "192.0.2.2"), ("smtp.good.test", "192.0.2.1"),
                           ("smtp.good.test", "2001:db8::1")] and r == 3


def test_records_the_question_does_not_lead_to_are_ignored(parse):
    """An additional record for another name (a resolver's or an attacker's) teaches
    nothing: it is no answer to what the program asked."""
    msg = response("smtp.good.test", A,
                   [rr("smtp.good.test", A, bytes([192, 0, 2, 1]))],
                   [rr("attacker.test", A, bytes([192, 0, 2, 1]))])
    assert parse(msg) == (1, [("smtp.good.test", "192.0.2.1")])


def test_null_mx_names_no_host(parse):
    msg = response("mail.test", MX, [rr("mail.test", MX, b"\0\0\0")],
                   [b"\0" + struct.pack("!HHIH", A, 1, 60, 4) + bytes([192, 0, 2, 9])])
    assert parse(msg) == (0, [])


@pytest.mark.parametrize("label", [b"a.b", b"a\0b", b"a\nb"])
def test_a_label_that_reads_as_another_name_is_refused(parse, label):
    qname = bytes([len(label)]) + label + b"\x04test\0"
    msg = struct.pack("!HHHHHH", 7, 0x8180, 1, 1, 0, 0) + qname + struct.pack("!HH", A, 1) + \
        b"\xc0\x0c" + struct.pack("!HHIH", A, 1, 60, 4) + bytes([192, 0, 2, 1])
    assert parse(msg) == (-1, [])


@pytest.mark.parametrize("mangle", ["query", "truncated", "rcode", "pointer-loop"])
def test_malformed_or_failed_answers_teach_nothing(parse, mangle):
    msg = SERVER._reply(query("smtp.good.test", A))
    if mangle == "query":
        msg = msg[:2] + b"\x01\x00" + msg[4:]          # QR bit clear: a question
    elif mangle == "truncated":
        msg = msg[:-1]
    elif mangle == "rcode":
        msg = msg[:3] + b"\x83" + msg[4:]              # NXDOMAIN
    else:
        msg = struct.pack("!HHHHHH", 7, 0x8180, 1, 0, 0, 0) + b"\xc0\x0c" + b"\0\x01\0\x01"
    assert parse(msg) == (-1, [])
