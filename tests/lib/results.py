"""Outcomes of the mailer tests, merged into build/mailer-table.md.

The controlling pytest process makes a folder for its run, build/results/<run>/
(so that pytest sessions running at once do not mix), and tells its xdist workers;
each process appends JSON lines to <run>/<worker>.jsonl; the controller merges them
at the end and removes the folder.
"""
import json
import os
import shutil
import time
import uuid
from pathlib import Path

from .constants import SCENARIOS
from .runner import BUILD

RESULTS = BUILD / "results"
TABLE = BUILD / "mailer-table.md"


run_dir = None   # this run's folder; set by new_run() or use_run()


def new_run():
    """Start a run (controller): a fresh folder; folders of runs that died long ago go."""
    global run_dir
    RESULTS.mkdir(parents=True, exist_ok=True)
    for old in RESULTS.iterdir():
        if old.is_dir() and time.time() - old.stat().st_mtime > 6 * 3600:
            shutil.rmtree(old, ignore_errors=True)
    run_dir = RESULTS / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    return str(run_dir)


def use_run(path):
    """Join the controller's run (xdist worker)."""
    global run_dir
    run_dir = Path(path) if path else None


def record(**row):
    """row: mailer, mode, scenario, run ("baseline" or "shim"), outcome."""
    if run_dir is None:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(run_dir / f"{worker}.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")


def outcome(server, returncode, scenario):
    """What a delivery attempt did, as seen by the server."""
    if server.credentials() or server.transactions():
        if scenario != "good":
            return "leaked"
        return "delivered" if returncode == 0 and server.messages() else "failed"
    return "refused" if returncode != 0 else "refused (exit 0)"


def merge():
    """Write the table of this run (controller), if it ran mailer tests; remove the run."""
    rows = []
    for f in sorted(run_dir.glob("*.jsonl")) if run_dir else []:
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    if run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    if not rows:
        return None
    cells = {(r["mailer"], r["mode"], r["scenario"], r["run"]): r["outcome"] for r in rows}
    scenarios = [s for s in SCENARIOS if any(r["scenario"] == s for r in rows)]
    lines = ["# Careless mailers with and without smtpguard", "",
             "Each cell: without the shim / with the shim. `leaked`: a hostile server got "
             "the credentials or a transaction; `refused`: it got neither; `own`: the "
             "mailer refuses this by itself; `delivered`: the good server got the message; "
             "`failed`: it did not; `-`: not run.", "",
             "| mailer | mode | " + " | ".join(scenarios) + " |",
             "|---|---|" + "---|" * len(scenarios)]
    for mailer, mode in sorted({(r["mailer"], r["mode"]) for r in rows}):
        row = [" / ".join(cells.get((mailer, mode, s, run), "-") for run in ("baseline", "shim"))
               for s in scenarios]
        lines.append(f"| {mailer} | {mode} | " + " | ".join(row) + " |")
    tmp = TABLE.with_name(f".{TABLE.name}.{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(TABLE)
    return TABLE
