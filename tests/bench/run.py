#!/usr/bin/python3
"""`make bench`: what libsmtpguard.so costs, as ratios measured in one run.

Every comparison runs its sides alternately (A B, B A, ...) for several rounds,
after one small warm-up run of each side, and reports each side's median,
min and max and the median of the per-round ratios shim / baseline with
their range, for wall-clock time and for CPU time. Instruction counts from
`valgrind --tool=callgrind` back the figures a noisy machine would blur.

The programs are build/bench/bin/* (tests/bench/*.c). The shim is preloaded
only into the measured program, never into the server or stunnel. Writes
build/bench.json (every figure and every run) and build/bench.md (the table).

    tests/bench/run.py [--quick | --smoke] [--rounds N] [--out DIR]
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

from harness import (BIN, BUILD, EMPTY, INDEXER, KIB, LIB, MEMORY, MIB, NAME,
                     WORK, BenchError, alternate, alternate_pairs, oneshot_clients, run_prog,
                     clean_env, fastpath, instructions, make_certs, make_sides, memory,
                     missing_files, per_unit, process_cpu_ns, rate, ratio, shim_checked,
                     smtp_client, smtpd, spawn, spawn_pairs, stunnel, summary, Tally, bundle_with,
                     write_policy)
from report import machine, markdown

# The fast path, sessions and bulk: 20 short rounds rather than 5 long ones
# (the same work, bulk's message aside), so that the sides alternate within the
# machine's slower drifts; a round of either side takes a fraction of a second.
FULL = dict(rounds=5, fine_rounds=20, pairs=500_000, connects=5_000, execs=2000, pyexecs=50,
            mem_rounds=5, sessions=75, message=10 * KIB, bulk=50 * MIB,
            threads=8, thread_sessions=100, oneshots=50,
            cg_pairs=(20_000, 100_000), cg_connect=(2_000, 10_000), cg_sessions=(10, 30))
QUICK = dict(FULL, rounds=2, fine_rounds=2, pairs=200_000, connects=2_000, execs=200, pyexecs=5,
             mem_rounds=2, sessions=30, bulk=5 * MIB, thread_sessions=10, oneshots=10,
             cg_pairs=(2_000, 10_000), cg_connect=(200, 1_000), cg_sessions=(2, 4))
SMOKE = dict(QUICK, rounds=1, fine_rounds=1, pairs=1_000, connects=100, execs=5, pyexecs=1, mem_rounds=1,
             sessions=3, bulk=MIB, threads=2, thread_sessions=2, oneshots=2,
             cg_pairs=(100, 200), cg_connect=(20, 40), cg_sessions=(1, 2))


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def timed(report, wall="ns"):
    return {"wall": report[wall], "cpu": report["cpu_ns"]}


def warm(n):
    return max(n // 10, 1)


def both(sides, fn):
    """The two sides of a comparison: fn(count, env) without and with the shim."""
    return {"base": lambda k: fn(k, sides.base), "shim": lambda k: fn(k, sides.shim)}


def per_side(sides, fn, **extra):
    """{side: fn(env)} without and with the shim; extra: more environment."""
    return {side: fn(dict(getattr(sides, side), **extra)) for side in ("base", "shim")}


def bench_fastpath(cfg, sides):
    out = {}
    # A connect cycle makes four interposed calls: socket() (it marks an Internet
    # stream socket, issue 11), connect() and two close(); accept() is not interposed.
    for op, n, calls, what in (("pairs", cfg["pairs"], 2, "write+read pair"),
                               ("connect", cfg["connects"], 4, "connect+accept+close cycle")):
        log(f"fast path: {n} x {what}, {cfg['fine_rounds']} rounds")
        res = alternate(cfg["fine_rounds"], both(sides, lambda k, env, op=op:
                                            timed(fastpath(op, k, env))), n, warm(n))
        log(f"fast path: callgrind, {cfg['cg_' + op]} x {what}")
        ir = per_side(sides, lambda env, op=op: per_unit(
            lambda k: [BIN / "fastpath", op, k], env, cfg["cg_" + op]))
        added = ir["shim"] - ir["base"]
        out[op] = {"unit": f"ns per {what}", "count": n, "interposed_calls": calls, **res,
                   "ratio": ratio(res), "ratio_cpu": ratio(res, "cpu"),
                   "instructions": {**ir, "added_per_op": added,
                                    "added_per_call": added / calls}}
    return out


def bench_exec(cfg, sides):
    out = {}
    # Python's start-up differs from run to run by its hash seed: fixed, the
    # instruction counts are exact.
    seed = {"PYTHONHASHSEED": "0"}
    for key, n, argv in (("true", cfg["execs"], ["/bin/true"]),
                         ("python", cfg["pyexecs"], ["/usr/bin/python3", "-c", "pass"])):
        log(f"process start: {n} x {' '.join(argv)}, {cfg['rounds']} rounds")
        res = alternate(cfg["rounds"], {
            "base": lambda k, a=argv: timed(spawn(k, "", a, sides.spawner)),
            "shim": lambda k, a=argv: timed(spawn(k, LIB, a, sides.spawner))}, n, warm(n))
        ir = per_side(sides, lambda env, a=argv: instructions(a, env), **seed)
        out[key] = {"unit": "ns per fork+exec+wait", "count": n, **res,
                    "ratio": ratio(res), "ratio_cpu": ratio(res, "cpu"),
                    "added_us": (res["shim"]["wall"]["median"] -
                                 res["base"]["wall"]["median"]) / 1000,
                    "instructions": {**ir, "added": ir["shim"] - ir["base"]}}
    # What the loader and our constructors add to a program that never touches
    # SMTP, over preloading an empty library (the loader's cost of any preload).
    ir = {"empty": instructions(["/bin/true"], dict(sides.base, LD_PRELOAD=str(EMPTY))),
          "shim": instructions(["/bin/true"], dict(sides.base, LD_PRELOAD=str(LIB)))}
    out["true_vs_empty"] = {"unit": "instructions of /bin/true", **ir,
                            "added": ir["shim"] - ir["empty"]}
    # /bin/true calls no interposed function; cat does (open, read, close),
    # so it also pays for binding the real functions.
    ir = per_side(sides, lambda env: instructions(["/bin/cat", "/dev/null"], env), **seed)
    out["cat"] = {"unit": "instructions of /bin/cat /dev/null", **ir,
                  "added": ir["shim"] - ir["base"]}
    os.sync()  # a freshly built library's pages would count as private dirty
    for key, args in (("idle", []), ("idle_after_connect", ["connect"])):
        log(f"memory: {key}, {cfg['mem_rounds']} rounds")
        runs = {"base": [], "shim": []}
        for _ in range(cfg["mem_rounds"]):
            for side in runs:
                runs[side].append(memory(args, getattr(sides, side)))
        out[key] = {"unit": "KiB"}
        for field in MEMORY:
            s = {side: summary([r[field] for r in v]) for side, v in runs.items()}
            out[key][field] = {**s, "added": s["shim"]["median"] - s["base"]["median"]}
    return out


def bench_smtp(cfg, sides, ca, port, work):
    """Against the bench server at port, which the policy names."""
    size, t = cfg["message"], cfg["threads"]

    def session(k, env, threads=1, nbytes=size):
        if env is sides.base:
            return timed(smtp_client("starttls", port, ca, k, threads, nbytes, env))
        return timed(shim_checked(sides.shim_log, lambda: smtp_client(
            "starttls", port, ca, k, threads, nbytes, env), k * threads))

    out, n = {}, cfg["sessions"]
    log(f"SMTP sessions: {n} sequential, direct / shim / stunnel, {cfg['fine_rounds']} rounds")
    with stunnel(port, ca, sides.base, work) as proxy:
        def via_stunnel(k):
            before = process_cpu_ns(proxy.proc.pid)
            r = smtp_client("plain", proxy.port, ca, k, 1, size, sides.base)
            return {"wall": r["ns"], "cpu": r["cpu_ns"] + process_cpu_ns(proxy.proc.pid) - before}
        res = alternate(cfg["fine_rounds"], {**both(sides, session), "stunnel": via_stunnel},
                        n, warm(n))
    log(f"SMTP sessions: callgrind, {cfg['cg_sessions']} sessions")
    ir = per_side(sides, lambda env: per_unit(
        lambda k: [BIN / "smtpc", "starttls", port, ca, NAME, k, 1, size], env,
        cfg["cg_sessions"]))
    Tally.delivered += 2 * sum(cfg["cg_sessions"])  # the callgrind runs' sessions
    out["session"] = {"unit": "ns per session", "count": n, "message_bytes": size, **res,
                      "ratio": ratio(res), "ratio_cpu": ratio(res, "cpu"),
                      "ratio_stunnel": ratio(res, den="stunnel"),
                      "ratio_stunnel_cpu": ratio(res, "cpu", den="stunnel"),
                      "sessions_per_s": {k: rate(v) for k, v in res.items()},
                      "instructions": {**ir, "added_per_session": ir["shim"] - ir["base"]}}

    bulk = cfg["bulk"]
    log(f"bulk: one session with a {bulk // MIB} MiB message, {cfg['fine_rounds']} rounds")
    res = alternate(cfg["fine_rounds"], both(sides, lambda b, env: session(1, env, nbytes=b)),
                    bulk, max(bulk // 10, MIB))
    out["bulk"] = {"unit": "ns per byte", "message_bytes": bulk, **res,
                   "mib_per_s": {k: rate(v, 1 / MIB) for k, v in res.items()},
                   "ratio": ratio(res, num="base", den="shim"), "ratio_cpu": ratio(res, "cpu")}

    out["oneshot"] = bench_oneshot(cfg, sides, ca, port, work)
    out["oneshot_clients"] = bench_oneshot_clients(cfg, sides, ca, port, work)

    k = cfg["thread_sessions"]
    log(f"concurrency: {t} threads x {k} sessions, {cfg['rounds']} rounds")
    res = alternate(cfg["rounds"], both(sides, lambda m, env: session(m, env, threads=t)),
                    k, warm(k))
    out["concurrency"] = {"unit": f"ns per {t} sessions", "threads": t,
                          "sessions_per_thread": k, **res,
                          "sessions_per_s": {s: rate(v, t) for s, v in res.items()},
                          "ratio": ratio(res, num="base", den="shim"),
                          "ratio_cpu": ratio(res, "cpu")}
    return out


SECTIONS = {"fastpath": lambda cfg, sides, *_: bench_fastpath(cfg, sides),
            "exec": lambda cfg, sides, *_: bench_exec(cfg, sides),
            "smtp": bench_smtp}


def bench_oneshot(cfg, sides, ca, port, work):
    """A process per message, as `mail` from cron: exec, one session, exit.
    The shim's work per process (policy, trust store, binding) shows here.
    shim_bundle trusts the system bundle plus the test CA, as a deployment
    of the shipped policy would (its ca_file is the system bundle)."""
    n = cfg["oneshots"]
    bundle = bundle_with(ca, work)
    bundle_policy, _ = write_policy(work, port, bundle, "policy-bundle.conf")
    argv = [BIN / "smtpc", "starttls", port, ca, NAME, 1, 1, cfg["message"]]

    def processes(k, preload="", policy=sides.policy):
        env = dict(sides.spawner, SMTPGUARD_POLICY=str(policy))
        if not preload:
            return timed(spawn(k, preload, argv, env))
        return shim_checked(sides.shim_log, lambda: timed(spawn(k, preload, argv, env)), k)

    log(f"one-shot: {n} processes of one session each, {cfg['rounds']} rounds")
    res = alternate(cfg["rounds"], {"base": processes,
                                    "shim": lambda k: processes(k, LIB),
                                    "shim_bundle": lambda k: processes(k, LIB, bundle_policy)},
                    n, warm(n))
    Tally.delivered += 3 * (n * cfg["rounds"] + warm(n))  # spawn runs smtpc itself
    return {"unit": "ns per process (exec, one session, exit)", "count": n,
            "bundle_certs": bundle.read_text().count("BEGIN CERTIFICATE"), **res,
            "ratio": ratio(res), "ratio_cpu": ratio(res, "cpu"),
            "ratio_bundle": ratio(res, num="shim_bundle"),
            "ratio_bundle_cpu": ratio(res, "cpu", num="shim_bundle")}


def bench_oneshot_clients(cfg, sides, ca, port, work):
    """One message per process with the shipped default trust store: the
    policy's ca_file is the system bundle (plus the bench CA, which signs the
    server), for an OpenSSL 3, an OpenSSL 1.1 and a GnuTLS client. Each
    process execs, verifies the server itself, sends 10 KiB and exits. The
    bundle's index is prepared as the package's hook prepares the system
    bundle's (the row above measures a process that scans it itself)."""
    n = cfg["oneshots"]
    bundle = bundle_with(ca, work)
    policy, _ = write_policy(work, port, bundle, "policy-bundle.conf")
    cache = work / "trust-cache"
    run_prog([INDEXER, "-d", cache, bundle], clean_env())
    message = work / "message.eml"
    line = "x" * 76 + "\r\n"
    message.write_text("From: <sender@example.com>\r\nTo: <rcpt@example.com>\r\n"
                       "Subject: one-shot\r\n\r\n" + line * (cfg["message"] // len(line)))
    out = {}
    for label, client in oneshot_clients():
        argv = [client, "good", NAME, port, "starttls", message]
        env = dict(sides.spawner, SMTPGUARD_POLICY=str(policy), SG_CA_FILE=str(ca),
                   SMTPGUARD_TRUST_CACHE=str(cache))

        def pairs(k, argv=argv, env=env):
            return shim_checked(sides.shim_log, lambda: spawn_pairs(k, LIB, argv, env), k)

        # Each round alternates the two sides process by process: rows whose
        # target is a few percent would otherwise measure the machine's drift.
        rounds, k = 8 * cfg["rounds"], max(n // 4, 1)
        log(f"one-shot, {label}: {rounds} rounds of {k} processes a side, alternating")
        res = alternate_pairs(rounds, pairs, k, warm(n))
        log(f"one-shot, {label}: callgrind")
        base_env = dict(sides.base, SG_CA_FILE=str(ca))
        ir = {"base": instructions(argv, base_env),
              "shim": instructions(argv, dict(base_env, LD_PRELOAD=str(LIB),
                                              SMTPGUARD_POLICY=str(policy),
                                              SMTPGUARD_TRUST_CACHE=str(cache)))}
        Tally.delivered += 2 * (k * rounds + warm(n) + 1)
        out[label] = {"unit": "ns per process (exec, one session, exit)", "count": k,
                      "rounds": rounds, "alternation": "per process",
                      "client": str(client), **res, "ratio": ratio(res),
                      "ratio_cpu": ratio(res, "cpu"),
                      "added_us": (res["shim"]["wall"]["median"] -
                                   res["base"]["wall"]["median"]) / 1000,
                      "instructions": {**ir, "added": ir["shim"] - ir["base"]}}
    out["bundle_certs"] = bundle.read_text().count("BEGIN CERTIFICATE")
    return out


def run(cfg, out_dir, work, command, only=tuple(SECTIONS)):
    started = time.monotonic()
    work.mkdir(parents=True, exist_ok=True)
    certs = make_certs(work / "certs")
    res = {"config": cfg, "machine": machine()}
    # One server for the whole run: its port is the policy's SMTP port, and
    # no loopback listener of the fast-path benchmark can take it.
    with smtpd(certs, clean_env()) as server:
        policy, shim_log = write_policy(work, server.port, certs["ca"])
        shim_log.unlink(missing_ok=True)
        sides = make_sides(policy, shim_log)
        for name in only:
            res[name] = SECTIONS[name](cfg, sides, certs["ca"], server.port, work)
    res["server"], res["delivered"] = server.stats, Tally.delivered
    res["seconds"] = time.monotonic() - started
    table = markdown(res, command)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(res, indent=1, default=str))
    (out_dir / "bench.md").write_text(table)
    print(table)
    log(f"bench: {res['seconds']:.0f} s; wrote {out_dir / 'bench.json'} and "
        f"{out_dir / 'bench.md'}")
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small counts, 2 rounds")
    ap.add_argument("--smoke", action="store_true", help="tiny counts, 1 round (tests)")
    ap.add_argument("--rounds", type=int, help="rounds per comparison")
    ap.add_argument("--out", type=Path, default=BUILD, help="where bench.json/.md go")
    ap.add_argument("--only", default=",".join(SECTIONS),
                    help="comma-separated sections to run (default: all of %(default)s)")
    ap.add_argument("--work", type=Path, default=WORK,
                    help="certificates, policy and logs (default build/bench)")
    args = ap.parse_args()
    cfg = dict(SMOKE if args.smoke else QUICK if args.quick else FULL)
    if args.rounds:
        cfg["rounds"], cfg["fine_rounds"] = args.rounds, 4 * args.rounds
    only = [s for s in args.only.split(",") if s]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        sys.exit(f"bench: unknown section(s) {', '.join(sorted(unknown))}")
    missing = missing_files()
    if missing:
        sys.exit(f"bench: missing {', '.join(map(str, missing))}: run `make bench`")
    command = "make bench-quick" if args.quick else "make bench"
    try:
        run(cfg, args.out, args.work, command, only)
    except BenchError as e:
        sys.exit(f"bench: {e}")


if __name__ == "__main__":
    main()
