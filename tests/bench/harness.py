"""The benchmark harness: the programs of build/bench/bin, the server, stunnel,
certificates, the shim's policy, callgrind, and the statistics. Used by
tests/bench/run.py (`make bench`) and tests/test_bench_smoke.py.

Every program reports `key=value` words on stdout; run_prog adds the CPU time
it used (with its children) as cpu_ns, so each measurement has a wall-clock
and a CPU figure: the CPU figure is the steadier one on a shared machine."""
import os
import re
import resource
import select
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
WORK = BUILD / "bench"
BIN = WORK / "bin"
LIB = BUILD / "libsmtpguard.so"
CHECKER = BUILD / "smtpguard-policy"
PROGRAMS = ("fastpath", "spawn", "idle", "smtpd", "smtpc")
STUNNEL = "/usr/bin/stunnel4"
TEMPLATE = Path(__file__).with_name("stunnel.conf.in")
NAME = "localhost"  # the name in the server certificate and the one clients verify
KIB, MIB = 1024, 1024 * 1024
TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes

def parse_kv(text):
    """The key=value words of a program's report, integers where they are."""
    return {k: int(v) if re.fullmatch(r"-?\d+", v) else v
            for k, v in re.findall(r"(\w+)=(\S+)", text)}


def children_cpu_ns():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((r.ru_utime + r.ru_stime) * 1e9)


def run_prog(cmd, env, timeout=280, check=True):
    """Run a program to its end: its report, plus rc, stderr and cpu_ns (the
    CPU time of the program and its children; one program runs at a time)."""
    cmd = [str(c) for c in cmd]
    before = children_cpu_ns()
    try:
        res = subprocess.run(cmd, env=env, capture_output=True, text=True,
                             timeout=timeout, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise BenchError(f"timed out after {timeout} s: {' '.join(cmd)}") from None
    if check and res.returncode != 0:
        raise BenchError(f"exit {res.returncode}: {' '.join(cmd)}\n{res.stderr.strip()}")
    return dict(parse_kv(res.stdout), rc=res.returncode, stderr=res.stderr,
                cpu_ns=children_cpu_ns() - before)


def read_line(proc, timeout):
    """One line of proc's stdout within timeout seconds, else BenchError."""
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else ""
    if not line:
        proc.kill()
        raise BenchError(f"{proc.args[0]} said nothing: {proc.stderr.read()}")
    return line


def process_cpu_ns(pid):
    """CPU time so far of a running process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK_NS


@contextmanager
def stopping(proc, stop=signal.SIGTERM):
    """Stop proc on the way out, by force if it lingers."""
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(stop)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ------------------------------------------------------------ environments

@dataclass
class Sides:
    """The environments a comparison runs in."""
    base: dict     # no shim
    shim: dict     # the shim preloaded, with the bench policy
    spawner: dict  # spawn's own: never preloaded, it names the policy to its children
    policy: Path
    shim_log: Path


def clean_env():
    return {k: v for k, v in os.environ.items()
            if k != "LD_PRELOAD" and not k.startswith("SMTPGUARD_")}


def make_sides(policy, shim_log):
    base = clean_env()
    return Sides(base, dict(base, LD_PRELOAD=str(LIB), SMTPGUARD_POLICY=str(policy)),
                 dict(base, SMTPGUARD_POLICY=str(policy)), Path(policy), Path(shim_log))


INDEXER = BUILD / "smtpguard-trust-index"
EMPTY = BIN / "libempty.so"  # an empty preload library: the loader's own cost
CLIENTS = BUILD / "clients"
# One message per process, as mailers run from cron: the test clients in their
# careful style (they verify the server against SG_CA_FILE themselves).
ONESHOT_CLIENTS = (("OpenSSL 3", CLIENTS / "careless"),
                   ("OpenSSL 1.1", BUILD / "legacy" / "careless11"),
                   ("GnuTLS", CLIENTS / "careless_gnutls"))


LEGACY_CLIENT = ONESHOT_CLIENTS[1][1]  # optional: `make legacy` fetches OpenSSL 1.1


def oneshot_clients():
    """The clients of the one-shot rows that are built (OpenSSL 1.1 may not be)."""
    return [(label, c) for label, c in ONESHOT_CLIENTS if c.exists() or c != LEGACY_CLIENT]


def missing_files():
    return [p for p in (LIB, CHECKER, INDEXER, Path(STUNNEL), EMPTY, *(BIN / p for p in PROGRAMS),
                        *(c for _, c in ONESHOT_CLIENTS if c != LEGACY_CLIENT))
            if not p.exists()]


# ------------------------------------------------- certificates and policy

def openssl(*args, cwd):
    res = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                         timeout=60)
    if res.returncode != 0:
        raise BenchError(f"openssl {' '.join(args)}: {res.stderr}")


def make_certs(d):
    """A CA and a leaf for localhost, EC P-256 (fast to sign and verify)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "30",
            "-subj", "/CN=smtpguard bench CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    openssl("req", "-new", *ec, "-keyout", "leaf.key", "-out", "leaf.csr",
            "-subj", f"/CN={NAME}", cwd=d)
    (d / "leaf.ext").write_text("basicConstraints = critical, CA:FALSE\n"
                                "keyUsage = critical, digitalSignature\n"
                                "extendedKeyUsage = serverAuth\n"
                                f"subjectAltName = DNS:{NAME}\n")
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "30", "-extfile", "leaf.ext", "-out", "leaf.pem",
            cwd=d)
    return {"ca": d / "ca.pem", "cert": d / "leaf.pem", "key": d / "leaf.key"}


# The shipped policy's STARTTLS ports (policy/default.conf; 465 is implicit
# TLS): the bench server takes the first that is free, so that the policy is
# the shipped one but for its trust store and log, and the shim's tables are
# touched where a real mailer's port touches them (a port above 4095 lies on
# other pages of its port tables: ~3 page faults more per process).
SHIPPED_PORTS = (2525, 587, 25)


def write_policy(d, port, ca, name="policy.conf"):
    """The shim's policy: the shipped SMTP ports when the bench server's port is
    one of them, else that port alone; ca the trust store, and the log a file
    (stderr would time the terminal). Returns (policy, log)."""
    d = Path(d)
    log_path, policy = d / "shim.log", d / name
    ports = "" if port in SHIPPED_PORTS else f"smtp_ports = {port}\nimplicit_tls_ports = none\n"
    policy.write_text(f"mode = enforce\n{ports}ca_file = {ca}\nlog = file:{log_path}\n")
    checker = run_prog([CHECKER, policy], clean_env(), check=False)
    if checker["rc"] != 0:
        raise BenchError(f"the bench policy is rejected: {checker['stderr']}")
    return policy, log_path


SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def bundle_with(ca, d):
    """The system's CA bundle plus ca: a trust store of realistic size (the
    shipped policy's ca_file is the system bundle) that trusts the server."""
    bundle = Path(d) / "bundle.pem"
    system = SYSTEM_BUNDLE.read_text() if SYSTEM_BUNDLE.exists() else ""
    bundle.write_text(system + Path(ca).read_text())
    return bundle


def accepted_lines(shim_log):
    try:
        return Path(shim_log).read_text().count(" accepted TLS ")
    except FileNotFoundError:
        return 0


# ------------------------------------------------------ server and proxy

@dataclass
class Smtpd:
    proc: subprocess.Popen
    port: int
    stats: dict = None  # its counters, once it has stopped


@contextmanager
def smtpd(certs, env):
    """The bench SMTP server on 127.0.0.1 (never preloaded), at the first of the
    shipped policy's ports that is free, else where the kernel puts it."""
    free = [p for p in SHIPPED_PORTS if not listening(p)]
    env = dict(env, BENCH_SMTPD_PORT=str(free[0])) if free else env
    proc = subprocess.Popen([str(BIN / "smtpd"), str(certs["cert"]), str(certs["key"])],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    with stopping(proc, stop=signal.SIGKILL):
        server = Smtpd(proc, int(parse_kv(read_line(proc, 10))["port"]))
        yield server
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
        server.stats = parse_kv(out)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """Is something listening on 127.0.0.1:port? Read from /proc, so that
    asking opens no session."""
    want = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in list(f)[1:]]
    return any(r[1] == want and r[3] == "0A" for r in rows)


@dataclass
class Proxy:
    proc: subprocess.Popen
    port: int


def start_stunnel(server_port, ca, env, workdir, name):
    """stunnel4 on a free port: (proc, port), or None if it did not come up
    (another process may take the port between our look and its bind)."""
    port = free_port()
    conf = Path(workdir) / "stunnel.conf"
    conf.write_text(TEMPLATE.read_text().format(
        accept_port=port, server_port=server_port, ca=ca, name=name,
        log=Path(workdir) / "stunnel.log"))
    proc = subprocess.Popen([STUNNEL, str(conf)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
        if listening(port):
            return proc, port
        time.sleep(0.05)
    with stopping(proc):
        return None


@contextmanager
def stunnel(server_port, ca, env, workdir, name=NAME):
    """stunnel4 in client mode in front of the server, with a plaintext port;
    it verifies the server against ca and name."""
    for _ in range(3):
        started = start_stunnel(server_port, ca, env, workdir, name)
        if started:
            break
    else:
        raise BenchError(f"stunnel did not start: see {Path(workdir) / 'stunnel.log'}")
    proc, port = started
    with stopping(proc):
        yield Proxy(proc, port)


# ------------------------------------------------------------ measurements

def fastpath(op, n, env):
    r = run_prog([BIN / "fastpath", op, n], env)
    if r.get("n") != n:
        raise BenchError(f"fastpath {op} ran {r.get('n')} of {n}")
    return r


def spawn(n, preload, argv, env):
    r = run_prog([BIN / "spawn", n, preload, *argv], env)
    if r.get("ok") != n:
        raise BenchError(f"spawn: {r.get('ok')} of {n} children succeeded")
    return r


def spawn_pairs(n, preload, argv, env):
    """n children without the preload and n with it, alternating (spawn.c):
    {"base": {"wall", "cpu"}, "shim": {...}}, each summed over its n."""
    r = run_prog([BIN / "spawn", "--pairs", n, preload, *argv], env)
    if r.get("ok") != n:
        raise BenchError(f"spawn: {r.get('ok')} of {n} pairs succeeded")
    return {side: {"wall": r[f"{side}_ns"], "cpu": r[f"{side}_cpu_ns"]}
            for side in ("base", "shim")}


class Tally:
    """Messages the clients said were accepted, to compare with the server's count."""
    delivered = 0


def smtp_client(mode, port, ca, sessions, threads, size, env, name=NAME, check=True):
    """smtpc's report; with check, every message must have been accepted."""
    r = run_prog([BIN / "smtpc", mode, port, ca, name, sessions, threads, size], env,
                 check=check)
    Tally.delivered += r.get("delivered", 0)
    if check and r.get("delivered") != sessions * threads:
        raise BenchError(f"smtpc delivered {r.get('delivered')} of {sessions * threads}")
    return r


def shim_checked(shim_log, fn, sessions):
    """fn() under the shim, which must log one accepted handshake per session:
    a figure measured with the shim not engaged would be worthless."""
    before = accepted_lines(shim_log)
    value = fn()
    added = accepted_lines(shim_log) - before
    if added != sessions:
        raise BenchError(f"the shim accepted {added} handshakes for {sessions} sessions: "
                         "is it engaged?")
    return value


def memory(args, env):
    """VmRSS, Pss and Private_Dirty (KiB) of build/bench/bin/idle once it is
    ready. Private dirty pages are what each process pays alone; RSS and Pss
    also count the shared pages of libraries."""
    proc = subprocess.Popen([str(BIN / "idle"), *args], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with stopping(proc):
        read_line(proc, 10)
        status = Path(f"/proc/{proc.pid}/status").read_text()
        rollup = Path(f"/proc/{proc.pid}/smaps_rollup").read_text()
        proc.stdin.close()
        if proc.wait(timeout=10) != 0:
            raise BenchError(f"idle exited {proc.returncode}: {proc.stderr.read()}")
    return {"rss": int(re.search(r"VmRSS:\s+(\d+)", status).group(1)),
            "pss": int(re.search(r"^Pss:\s+(\d+)", rollup, re.M).group(1)),
            "dirty": int(re.search(r"^Private_Dirty:\s+(\d+)", rollup, re.M).group(1))}


def instructions(cmd, env):
    """Instructions callgrind counts in one whole run of cmd."""
    with tempfile.TemporaryDirectory(prefix="sg-callgrind-") as d:
        out = Path(d) / "callgrind.out"
        res = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                              *map(str, cmd)], env=env, capture_output=True, text=True,
                             timeout=280)
        if res.returncode != 0:
            raise BenchError(f"callgrind {' '.join(map(str, cmd))}: {res.stderr[-2000:]}")
        m = re.search(r"^(?:summary|totals):\s+(\d+)", out.read_text(), re.M)
    if not m:
        raise BenchError("no instruction total in the callgrind output")
    return int(m.group(1))


def per_unit(make_cmd, env, counts):
    """Instructions per unit of work: two counts, so that start-up and exit
    cancel."""
    small, large = counts
    return (instructions(make_cmd(large), env) - instructions(make_cmd(small), env)) / (
        large - small)


# -------------------------------------------------------------- statistics

METRICS = ("wall", "cpu")
MEMORY = ("rss", "pss", "dirty")


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": values}


def alternate(rounds, sides, n, warm):
    """sides: {name: fn(count) -> {"wall": ns, "cpu": ns}}. One warm-up run of
    each with count warm, then `rounds` rounds of the sides in turn, the order
    reversed every other round (A B, B A, ...: a side gains nothing from always
    running first or second). Returns {name: {metric: summary}} of the values
    divided by n."""
    for fn in sides.values():
        fn(warm)
    runs = {name: [] for name in sides}
    for r in range(rounds):
        order = list(sides.items())
        for name, fn in (order[::-1] if r % 2 else order):
            runs[name].append(fn(n))
    return {name: {m: summary([v[m] / n for v in values]) for m in METRICS}
            for name, values in runs.items()}


def alternate_pairs(rounds, fn, n, warm):
    """fn(count) -> {"base": {"wall", "cpu"}, "shim": {...}} of count pairs
    run alternately. One warm-up call with count warm, then `rounds` calls of
    count n: the result has alternate()'s form."""
    fn(warm)
    runs = {"base": [], "shim": []}
    for _ in range(rounds):
        r = fn(n)
        for side in runs:
            runs[side].append(r[side])
    return {name: {m: summary([v[m] / n for v in values]) for m in METRICS}
            for name, values in runs.items()}


def ratio(result, metric="wall", num="shim", den="base"):
    """The median of the per-round ratios num/den, and their range. The sides
    alternate within a round, so a round's ratio is free of the machine's
    drift between rounds, which a ratio of the two medians is not."""
    a, b = result[num][metric]["runs"], result[den][metric]["runs"]
    paired = [x / y for x, y in zip(a, b)]
    return {"ratio": statistics.median(paired), "min": min(paired), "max": max(paired)}


def rate(side, units_per_op=1.0, scale=1e9):
    """A summary of ns per op turned into ops per second (x units_per_op)."""
    return summary([units_per_op * scale / v for v in side["wall"]["runs"]])
