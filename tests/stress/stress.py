#!/usr/bin/python3
"""The stress run: build/stress/load (32 threads mixing SMTP sessions with non-SMTP
descriptors, see load.c) under the shim, against build/stress/stressd servers: a good
SMTP server (the test CA's certificate), two hostile ones (a self-signed certificate;
plaintext injected after the 220 reply to STARTTLS) and an echo server on a port the
policy does not name.

Pass: every message to the good server delivered exactly once and byte for byte
(stressd checks the bytes, the ids are compared here), every hostile session refused
(and no AUTH, MAIL, RCPT or DATA at a hostile server), every non-SMTP byte back
unchanged, as many descriptors open at the end as at the start, no crash, no
sanitizer report. `make stress` runs 20,000 sessions; tests/test_stress.py fewer.

    tests/stress/stress.py [--sessions N] [--threads N]
"""
import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # tests/, for lib
from lib import sanitize                                           # noqa: E402
from lib.certs import make_certs                                   # noqa: E402
from lib.runner import OUT, baseline_env, policy_text, shim_env    # noqa: E402

BIN = OUT / "stress"
THREADS = 32


def parse_counts(line):
    return {k: int(v) for k, v in re.findall(r"(\w+)=(-?\d+)", line)}


class Server:
    """A stressd process: it says its port, and its counts when stdin closes."""

    def __init__(self, *args):
        self.args = args
        self.proc = subprocess.Popen([BIN / "stressd", *args], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True, env=baseline_env())
        first = self.proc.stdout.readline()
        if not first.startswith("port "):
            self.proc.kill()
            raise RuntimeError(f"stressd {args} did not start: {self.proc.stderr.read()}")
        self.port = int(first.split()[1])

    def finish(self, timeout=60):
        """(counts, {message id: deliveries}, returncode, stderr)"""
        try:
            out, err = self.proc.communicate("", timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        lines = out.splitlines()
        counts = parse_counts(lines[0]) if lines else {}
        ids = {int(i): int(n) for i, n in (l.split()[1:] for l in lines[1:] if l.startswith("id "))}
        return counts, ids, self.proc.returncode, err


@dataclass
class Result:
    load: dict
    load_rc: int
    load_err: str
    delivered_ids: list
    servers: dict = field(default_factory=dict)   # name -> (counts, ids, rc, stderr)
    reports: dict = field(default_factory=dict)   # sanitizer reports
    seconds: float = 0.0

    def problems(self, reports=True):
        """What failed, in words (empty: the run passed). reports=False leaves the
        sanitizer reports to the caller (pytest checks them for the whole session)."""
        p, load = [], self.load
        if self.load_rc != 0:
            p.insert(0, f"load exited {self.load_rc}: {self.load_err[-2000:]}")
            return p + [f"sanitizer reports: {list(self.reports)}"] * bool(self.reports)
        for key in ("good_failed", "hostile_accepted", "nonsmtp_failed", "fork_failed", "errors"):
            if load.get(key, -1) != 0:
                p.append(f"{key}={load.get(key)}")
        if load.get("delivered") != load.get("good") or load.get("refused") != load.get("hostile"):
            p.append(f"delivered/good {load.get('delivered')}/{load.get('good')}, "
                     f"refused/hostile {load.get('refused')}/{load.get('hostile')}")
        if load.get("fd_start") != load.get("fd_end"):
            p.append(f"descriptors: {load.get('fd_start')} at start, {load.get('fd_end')} at end")
        good, ids = self.servers["good"][0], self.servers["good"][1]
        if sorted(ids) != self.delivered_ids or any(n != 1 for n in ids.values()):
            extra = sorted(set(ids) - set(self.delivered_ids))[:10]
            missing = sorted(set(self.delivered_ids) - set(ids))[:10]
            twice = sorted(i for i, n in ids.items() if n != 1)[:10]
            p.append(f"good server ids: extra {extra}, missing {missing}, not once {twice}")
        if good.get("corrupt") != 0:
            p.append(f"good server: {good.get('corrupt')} messages not byte for byte")
        hostile_sessions = 0
        for name in ("selfsigned", "inject"):
            counts = self.servers[name][0]
            hostile_sessions += counts.get("sessions", 0)
            if counts.get("secrets") != 0 or counts.get("delivered") != 0:
                p.append(f"hostile server {name} received secrets: {counts}")
        if hostile_sessions != load.get("hostile"):
            p.append(f"hostile servers saw {hostile_sessions} sessions, load {load.get('hostile')}")
        for name, (counts, _, rc, err) in self.servers.items():
            if rc != 0 or counts.get("active") != 0:
                p.append(f"server {name} exited {rc} with {counts}: {err[-1000:]}")
        if reports and self.reports:
            p.append(f"sanitizer reports: {list(self.reports)}")
        return p

    def figures(self):
        load = self.load
        rate = load.get("good", 0) / self.seconds if self.seconds else 0
        return (f"sessions={load.get('good', 0) + load.get('hostile', 0)} good={load.get('good')} "
                f"delivered={load.get('delivered')} hostile={load.get('hostile')} "
                f"refused={load.get('refused')} nonsmtp_bytes={load.get('nonsmtp_bytes')} "
                f"forks={load.get('forks')} fds={load.get('fd_start')}->{load.get('fd_end')} "
                f"seconds={self.seconds:.1f} ({rate:.0f} good sessions/s)")


def run(sessions, workdir, certs, threads=THREADS, timeout=None):
    """One stress run in workdir (which must exist); returns a Result."""
    workdir = Path(workdir)
    timeout = timeout or 120 + sessions * (0.06 if sanitize.ENABLED else 0.02)
    servers = {"good": Server("smtp", certs.good.cert, certs.good.key),
               "selfsigned": Server("smtp", certs.selfsigned.cert, certs.selfsigned.key),
               "inject": Server("smtp", certs.good.cert, certs.good.key, "inject"),
               "echo": Server("echo")}
    smtp = [servers[n].port for n in ("good", "selfsigned", "inject")]
    env = shim_env(workdir / "policy.conf", workdir / "smtpguard.log",
                   policy_text(smtp, ca=certs.ca, log=workdir / "smtpguard.log"))
    cmd = [BIN / "load", sessions, threads, workdir, servers["good"].port,
           servers["echo"].port, *smtp[1:]]
    start = time.monotonic()
    try:
        load = subprocess.run([str(c) for c in cmd], env=sanitize.env_for(cmd, env),
                              capture_output=True, text=True, timeout=timeout)
        rc, out, err = load.returncode, load.stdout, load.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or "", f"no end after {timeout} s"
    seconds = time.monotonic() - start
    ids_file = workdir / "delivered.ids"
    ids = sorted(int(x) for x in ids_file.read_text().split()) if ids_file.exists() else []
    result = Result(parse_counts(out), rc, str(err), ids, seconds=seconds)
    result.servers = {name: server.finish() for name, server in servers.items()}
    result.reports = sanitize.reports()
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sg-stress-") as tmp:
        tmp = Path(tmp)
        if sanitize.ENABLED:
            sanitize.os.environ[sanitize.RUN_VAR] = str(tmp / "reports")
        certs = make_certs(tmp / "certs")
        (tmp / "work").mkdir()
        result = run(args.sessions, tmp / "work", certs, threads=args.threads)
    print(f"stress: {result.figures()}")
    for problem in result.problems():
        print(f"stress: FAIL: {problem}")
    return 1 if result.problems() else 0


if __name__ == "__main__":
    sys.exit(main())
