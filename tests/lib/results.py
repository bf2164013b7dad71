"""Outcomes of the mailer tests, merged into build/mailer-table.md, and of the STARTTLS
stripping tests, merged into build/stripping-table.md (one spec per table in TABLES).

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
from dataclasses import dataclass
from pathlib import Path

from .constants import SCENARIOS
from .mitm import BEHAVIOURS
from .runner import BUILD

RESULTS = BUILD / "results"
TABLE = BUILD / "mailer-table.md"


@dataclass(frozen=True)
class Table:
    """One markdown table: a line per distinct value of the `rows` keys, a column per
    value of the `column` key (in `columns` order), each cell "baseline / shim"."""
    path: Path
    title: str
    legend: str
    rows: tuple
    column: str
    columns: tuple


TABLES = {
    "mailer": Table(
        TABLE, "Careless mailers with and without smtpguard",
        "Each cell: without the shim / with the shim. `leaked`: a hostile server got "
        "the credentials or a transaction; `refused`: it got neither; `own`: the "
        "mailer refuses this by itself; `delivered`: the good server got the message; "
        "`failed`: it did not; `-`: not run.",
        ("mailer", "mode"), "scenario", tuple(SCENARIOS)),
    "stripping": Table(
        BUILD / "stripping-table.md",
        "Opportunistic clients behind a man in the middle, with and without smtpguard",
        "Each cell: without the shim / with the shim. Columns: `direct` to the good "
        "STARTTLS server, `none` through a transparent proxy, then what the proxy does "
        "(tests/lib/mitm.py). `leaked`: the proxy saw the credentials or the mail in "
        "plaintext; `delivered`: the good server got the message over TLS; `failed`: it "
        "did not; `own`: the client stopped by itself, nothing leaked; `refused`: the "
        "shim refused (and logged it), nothing leaked; `desynced`: TLS worked, but the "
        "client took the injected lines for the server's replies and broke off; `-`: "
        "not run.",
        ("client",), "route", ("direct",) + BEHAVIOURS),
}


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


def record(table="mailer", **row):
    """row: the keys of TABLES[table] (mailer: mailer, mode, scenario), run
    ("baseline" or "shim") and outcome."""
    if run_dir is None:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(run_dir / f"{worker}.jsonl", "a") as f:
        f.write(json.dumps({"table": table, **row}) + "\n")


def outcome(server, returncode, scenario):
    """What a delivery attempt did, as seen by the server."""
    if server.credentials() or server.transactions():
        if scenario != "good":
            return "leaked"
        return "delivered" if returncode == 0 and server.messages() else "failed"
    return "refused" if returncode != 0 else "refused (exit 0)"


def merge():
    """Write the tables of this run (controller), those it has rows for; remove the run.
    Returns the path of the mailer table if written, else of another table, else None."""
    rows = []
    for f in sorted(run_dir.glob("*.jsonl")) if run_dir else []:
        rows += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    if run_dir:
        shutil.rmtree(run_dir, ignore_errors=True)
    written = [_write(spec, [r for r in rows if r.get("table", "mailer") == name])
               for name, spec in TABLES.items()]
    return next((path for path in written if path), None)


def _write(spec, rows):
    if not rows:
        return None
    cells = {(tuple(r[k] for k in spec.rows), r[spec.column], r["run"]): r["outcome"]
             for r in rows}
    columns = [c for c in spec.columns if any(r[spec.column] == c for r in rows)]
    lines = [f"# {spec.title}", "", spec.legend, "",
             "| " + " | ".join(spec.rows) + " | " + " | ".join(columns) + " |",
             "|" + "---|" * (len(spec.rows) + len(columns))]
    for key in sorted({tuple(r[k] for k in spec.rows) for r in rows}):
        row = [" / ".join(cells.get((key, c, run), "-") for run in ("baseline", "shim"))
               for c in columns]
        lines.append("| " + " | ".join(key) + " | " + " | ".join(row) + " |")
    tmp = spec.path.with_name(f".{spec.path.name}.{os.getpid()}")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(spec.path)
    return spec.path
