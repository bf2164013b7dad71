"""Smoke test of the benchmarks (tests/bench, `make bench`): every benchmark
program runs with tiny counts and does what it reports, the client refuses a
server it cannot verify, and the runner goes end to end. Nothing here looks
at time: benchmarks are not tests."""
import fcntl
import json
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from bench import harness as h

SIZE = 2000  # bytes of each test message
SIDES = ("base", "shim")


@pytest.fixture(scope="module")
def bench_bins():
    """`make bench-bins`, taking turns with conftest's build on its lock file."""
    with open(h.BUILD / ".make.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = subprocess.run(["make", "-s", "bench-bins"], cwd=h.ROOT, capture_output=True,
                             text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert not h.missing_files()


@pytest.fixture(scope="module")
def bench_certs(bench_bins, tmp_path_factory):
    return h.make_certs(tmp_path_factory.mktemp("bench-certs"))


@dataclass
class Setup:
    server: h.Smtpd
    sides: h.Sides
    ca: str


@pytest.fixture
def serving(bench_certs, tmp_path):
    """serving() -> context of a Setup: the bench server, the environments
    (the policy names the server's port) and the CA. server.stats is filled
    when the context ends."""
    @contextmanager
    def start():
        with h.smtpd(bench_certs, h.clean_env()) as server:
            policy, log = h.write_policy(tmp_path, server.port, bench_certs["ca"])
            yield Setup(server, h.make_sides(policy, log), str(bench_certs["ca"]))
    return start


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("op", ("pairs", "connect"))
def test_fastpath_completes_every_call(serving, op, side):
    with serving() as s:
        r = h.fastpath(op, 200, getattr(s.sides, side))
    assert r["rc"] == 0 and r["n"] == 200 and r["ns"] > 0


@pytest.mark.parametrize("preload", ("", str(h.LIB)))
def test_spawn_counts_children_that_succeed(serving, preload):
    with serving() as s:
        ok = h.spawn(3, preload, ["/bin/true"], s.sides.spawner)
        bad = h.run_prog([h.BIN / "spawn", 2, preload, "/bin/false"], s.sides.spawner,
                         check=False)
    assert ok["ok"] == 3
    assert bad["rc"] == 1 and bad["ok"] == 0


@pytest.mark.parametrize("args", ([], ["connect"]))
@pytest.mark.parametrize("side", SIDES)
def test_idle_memory_is_readable(serving, side, args):
    with serving() as s:
        mem = h.memory(args, getattr(s.sides, side))
    assert mem["rss"] > 0 and mem["pss"] > 0


def deliver(s, route, sessions, threads, size, workdir, ca=None, name=h.NAME, check=True):
    """smtpc over route: direct or shim (STARTTLS to the server), or stunnel
    (plaintext to stunnel, which does STARTTLS); ca and name: what the TLS
    client verifies the server against."""
    ca = ca or s.ca
    if route == "stunnel":
        with h.stunnel(s.server.port, ca, s.sides.base, workdir, name=name) as proxy:
            return h.smtp_client("plain", proxy.port, "-", sessions, threads, size,
                                 s.sides.base, check=check)
    env = s.sides.shim if route == "shim" else s.sides.base
    return h.smtp_client("starttls", s.server.port, ca, sessions, threads, size, env,
                         name=name, check=check)


@pytest.mark.parametrize("sessions, threads, size", ((3, 1, SIZE), (2, 3, SIZE), (1, 1, h.MIB)))
@pytest.mark.parametrize("route", ("direct", "shim", "stunnel"))
def test_sessions_deliver_every_message(serving, tmp_path, route, sessions, threads, size):
    with serving() as s:
        r = deliver(s, route, sessions, threads, size, tmp_path)
    total = sessions * threads
    assert r["delivered"] == total and r["bytes"] == size
    assert s.server.stats == {"sessions": total, "messages": total, "bytes": total * size,
                              "tls": total}
    # the shim was really in the path, and only where it should be
    assert h.accepted_lines(s.sides.shim_log) == (total if route == "shim" else 0)


@pytest.mark.parametrize("name, ca", (("wrong.example", "ca"), ("localhost", "cert")))
@pytest.mark.parametrize("route", ("direct", "stunnel"))
def test_baselines_refuse_a_server_they_cannot_verify(serving, bench_certs, tmp_path, route,
                                                      name, ca):
    """Both baselines verify like careful clients: with a wrong host name, or a
    trust store without the server's CA, no message is sent."""
    with serving() as s:
        r = deliver(s, route, 1, 1, SIZE, tmp_path, ca=bench_certs[ca], name=name, check=False)
    assert r["rc"] == 1 and r["delivered"] == 0
    if route == "direct":
        assert "certificate verify failed" in r["stderr"]
    assert s.server.stats["messages"] == 0 and s.server.stats["tls"] == 0


def test_runner_writes_every_figure(bench_bins, tmp_path):
    res = subprocess.run([sys.executable, h.ROOT / "tests/bench/run.py", "--smoke",
                          "--out", tmp_path, "--work", tmp_path / "work"],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    assert set(data["fastpath"]) == {"pairs", "connect"}
    assert set(data["exec"]) == {"true", "python", "cat", "idle", "idle_after_connect",
                                 "true_vs_empty"}
    assert set(data["smtp"]) == {"session", "bulk", "oneshot", "oneshot_clients", "concurrency"}
    clients = {"OpenSSL 3", "GnuTLS"} | ({"OpenSSL 1.1"} if h.LEGACY_CLIENT.exists() else set())
    assert set(data["smtp"]["oneshot_clients"]) == clients | {"bundle_certs"}
    # every message a client reported accepted reached the server, and no other
    assert data["server"]["messages"] == data["delivered"] > 0
    table = (tmp_path / "bench.md").read_text()
    assert "| SMTP session" in table
    for client in clients:
        assert "shipped default trust store (" in table and f"{client} client" in table
