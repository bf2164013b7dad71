"""The bench table (build/bench.md, and the README's "Cost" section) from the
results run.py collects."""
import os
import platform
import re
import subprocess
from pathlib import Path

from harness import MEMORY, MIB, STUNNEL


def machine():
    def first(cmd, prefix=""):
        """The first line of cmd's output that starts with prefix."""
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return "unknown"
        lines = [ln.strip() for ln in (r.stdout + r.stderr).splitlines()]
        return next((ln for ln in lines if ln.startswith(prefix)), "unknown")
    cpu = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
    return {"cpu": cpu.group(1) if cpu else platform.machine(), "cores": os.cpu_count(),
            "kernel": platform.release(), "openssl": first(["openssl", "version"]),
            "stunnel": first([STUNNEL, "-version"], "stunnel "),
            "valgrind": first(["valgrind", "--version"])}


def fmt_ratio(r):
    return f"{r['ratio']:.3f} ({r['min']:.3f}-{r['max']:.3f})"


def fmt_side(s, scale=1.0, digits=0):
    return (f"{s['median'] * scale:.{digits}f} "
            f"({s['min'] * scale:.{digits}f}-{s['max'] * scale:.{digits}f})")


def fmt_wall(r, side, scale=1.0, digits=0):
    return fmt_side(r[side]["wall"], scale, digits)


def added_wall(r, scale, unit, digits=0):
    return f"{(r['shim']['wall']['median'] - r['base']['wall']['median']) * scale:+.{digits}f} {unit}"


def fastpath_rows(fp):
    for key, what in (("pairs", "write+read on a socketpair, ns per pair"),
                      ("connect", "connect+accept+close, loopback, ns per cycle")):
        r, ir = fp[key], fp[key]["instructions"]
        yield (what, fmt_wall(r, "base"), fmt_wall(r, "shim"), fmt_ratio(r["ratio"]),
               f"{r['ratio_cpu']['ratio']:.3f}",
               f"{added_wall(r, 1, 'ns')}, {ir['added_per_call']:+.1f} instr per interposed call",
               "<= 1.02, <= 25 instr",
               r["ratio"]["ratio"] <= 1.02 and ir["added_per_call"] <= 25)


def exec_rows(ex):
    for key, what, limit in (("true", "fork+exec /bin/true, us", 100),
                             ("python", "fork+exec python3 -c pass, us", None)):
        r = ex[key]
        yield (what, fmt_wall(r, "base", 1e-3), fmt_wall(r, "shim", 1e-3), fmt_ratio(r["ratio"]),
               f"{r['ratio_cpu']['ratio']:.3f}",
               f"{r['added_us']:+.0f} us, {r['instructions']['added']:+,} instr",
               f"<= {limit} us added" if limit else "-",
               r["added_us"] <= limit if limit else None)
    t = ex.get("true_vs_empty")
    if t:
        yield ("/bin/true start, instructions over an empty preload (callgrind)",
               f"empty {t['empty']:,}", f"{t['shim']:,}", f"{t['shim'] / t['empty']:.3f}", "-",
               f"{t['added']:+,} instr", "<= +5,000 instr", t["added"] <= 5000)
    cat = ex["cat"]
    yield ("/bin/cat /dev/null, instructions (callgrind)", f"{cat['base']:,}", f"{cat['shim']:,}",
           f"{cat['shim'] / cat['base']:.3f}", "-", f"{cat['added']:+,} instr", "-", None)
    for key, what in (("idle", "idle process, RSS / Pss / private dirty KiB"),
                      ("idle_after_connect",
                       "idle after one connect, RSS / Pss / private dirty KiB")):
        r = ex[key]
        yield (what, *(" / ".join(f"{r[f][side]['median']:.0f}" for f in MEMORY)
                       for side in ("base", "shim")), "-", "-",
               " / ".join(f"{r[f]['added']:+.0f}" for f in MEMORY) + " KiB",
               "<= 256 KiB", r["rss"]["added"] <= 256)


def smtp_rows(sm):
    s, rate = sm["session"], sm["session"]["sessions_per_s"]
    yield ("SMTP session (STARTTLS, AUTH, 10 KiB), sessions/s", fmt_side(rate["base"]),
           fmt_side(rate["shim"]), fmt_ratio(s["ratio"]) + " time",
           f"{s['ratio_cpu']['ratio']:.3f}",
           f"{added_wall(s, 1e-3, 'us')}, {s['instructions']['added_per_session']:+,.0f} "
           "instr per session", "<= 1.05", s["ratio"]["ratio"] <= 1.05)
    yield ("same via stunnel4 (plaintext client) vs the shim, sessions/s",
           "stunnel " + fmt_side(rate["stunnel"]), fmt_side(rate["shim"]),
           fmt_ratio(s["ratio_stunnel"]) + " time", f"{s['ratio_stunnel_cpu']['ratio']:.3f}",
           f"{(s['shim']['wall']['median'] - s['stunnel']['wall']['median']) / 1e3:+.0f} us",
           "<= 0.80", s["ratio_stunnel"]["ratio"] <= 0.80)
    o = sm["oneshot"]
    for side, what, r, rc in (
            ("shim", "one message per process (exec, session, exit), ms", "ratio", "ratio_cpu"),
            ("shim_bundle", f"same, policy trusts the system bundle ({o['bundle_certs']} CAs), "
             "no index prepared, ms",
             "ratio_bundle", "ratio_bundle_cpu")):
        yield (what, fmt_wall(o, "base", 1e-6, 2), fmt_wall(o, side, 1e-6, 2), fmt_ratio(o[r]),
               f"{o[rc]['ratio']:.3f}",
               f"{(o[side]['wall']['median'] - o['base']['wall']['median']) / 1e3:+.0f} us",
               "-", None)
    clients = sm.get("oneshot_clients", {})
    for label, r in clients.items():
        if label == "bundle_certs":
            continue
        ir = r["instructions"]
        yield (f"one message per process, shipped default trust store ({clients['bundle_certs']}"
               f" CAs, index prepared), {label} client, ms", fmt_wall(r, "base", 1e-6, 2),
               fmt_wall(r, "shim", 1e-6, 2), fmt_ratio(r["ratio"]),
               f"{r['ratio_cpu']['ratio']:.3f}",
               f"{r['added_us']:+.0f} us, {ir['added']:+,} instr",
               "<= +1 ms and <= 1.10, <= +2,000,000 instr",
               r["added_us"] <= 1000 and r["ratio"]["ratio"] <= 1.10 and ir["added"] <= 2_000_000)
    b, c = sm["bulk"], sm["concurrency"]
    yield (f"bulk, one {b['message_bytes'] // MIB} MiB message, MiB/s",
           fmt_side(b["mib_per_s"]["base"]), fmt_side(b["mib_per_s"]["shim"]),
           fmt_ratio(b["ratio"]) + " throughput", f"{b['ratio_cpu']['ratio']:.3f}", "-",
           ">= 0.98", b["ratio"]["ratio"] >= 0.98)
    yield (f"{c['threads']} threads x {c['sessions_per_thread']} sessions, sessions/s",
           fmt_side(c["sessions_per_s"]["base"]), fmt_side(c["sessions_per_s"]["shim"]),
           fmt_ratio(c["ratio"]) + " throughput", f"{c['ratio_cpu']['ratio']:.3f}", "-",
           ">= 0.95", c["ratio"]["ratio"] >= 0.95)


def rows(res):
    """(what, without shim, with shim, ratio, CPU ratio, added, target, met)."""
    sections = (("fastpath", fastpath_rows), ("exec", exec_rows), ("smtp", smtp_rows))
    return [row for key, make in sections if key in res for row in make(res[key])]


def markdown(res, command):
    m, cfg = res["machine"], res["config"]
    head = ("| what | without shim | with shim | ratio shim/baseline (range) | CPU ratio "
            "| added | target | met |\n|---|---|---|---|---|---|---|---|\n")
    body = "".join(
        f"| {' | '.join(r[:7])} | {'-' if r[7] is None else 'yes' if r[7] else 'NO'} |\n"
        for r in rows(res))
    return (f"Measured with `{command}` on {m['cores']} cores ({m['cpu']}, Linux {m['kernel']}, "
            f"{m['openssl'].split(' (')[0]}, {m['stunnel'].split(' on ')[0]}): medians of "
            f"{cfg['rounds']} alternating rounds ({cfg.get('fine_rounds', cfg['rounds'])} "
            "for the fast path, sessions and bulk; min-max in brackets). Ratios are the median "
            "of the rounds' ratios of wall-clock time shim/baseline (the sides alternate "
            "within a round, in the other order every other round), or of throughput where "
            "the row says so; the CPU ratio is the "
            "measured client's CPU time (with stunnel: client plus stunnel), shim/baseline; "
            "instructions are callgrind counts.\n\n" + head + body)
