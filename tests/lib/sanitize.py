"""ASan+UBSan runs: `make test SANITIZE=1` (tests/fuzz/fuzz.mk).

The shim and the C test clients are built into build/asan with the sanitizers. A
program under test gets the ASan runtime preloaded before the shim (gcc's ASan must
come first in the list of loaded libraries), and reports go to files in this run's
report folder instead of stderr, so that a report in any process -- also one whose
test only looked at the exit status -- is found. Loaded as a pytest plugin (-p), this
module fails the session when any report was written.
"""
import os
import shutil
import subprocess
from pathlib import Path

ENABLED = os.environ.get("SANITIZE") == "1"
REPO = Path(__file__).resolve().parents[2]
REPORTS = REPO / "build" / "asan" / "reports"
RUN_VAR = "SMTPGUARD_SANITIZER_REPORTS"   # this run's folder, for the xdist workers
# Leaks: the host programs (curl, perl, python) are not ours and exit with live heap.
ASAN = "detect_leaks=0:abort_on_error=1:allocator_may_return_null=0:log_path={}"
UBSAN = "print_stacktrace=1:halt_on_error=1:log_path={}"

_runtime = None


def build_dir(build):
    """Where make put the shim and the clients (build or build/asan)."""
    return build / "asan" if ENABLED else build


def runtime():
    """The ASan runtime gcc links against (libasan.so.N), for LD_PRELOAD."""
    global _runtime
    if _runtime is None:
        name = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True,
                              text=True, check=True, timeout=30).stdout.strip()
        _runtime = str(Path(name).resolve())
    return _runtime


def reports_dir():
    return Path(os.environ.get(RUN_VAR) or REPORTS / "unchecked")


def preload(lib):
    """The LD_PRELOAD value that loads lib."""
    return f"{runtime()}:{lib}" if ENABLED else str(lib)


def env_for(cmd, env):
    """The environment to run cmd in. gcc's ASan runtime cannot be preloaded into a
    program that loads libp11-kit at start (curl, GnuTLS mailers): p11-kit's constructor
    calls newlocale(), whose malloc starts ASan's lazy initialisation inside glibc's
    locale lock; ASan's dlerror() then takes and releases that lock again, and the next
    setlocale() hangs (clang's runtime too; cf. percona-server PS-8964). Such a program
    gets the release build of the shim; every other one the sanitized build."""
    preload = env.get("LD_PRELOAD", "") if ENABLED else ""
    if not preload.startswith(runtime() + ":") or not any(map(_cannot_take_asan, cmd)):
        return env
    release = str(REPO / "build" / "libsmtpguard.so")
    libs = [release if lib.endswith("/asan/libsmtpguard.so") else lib
            for lib in preload.split(":")[1:]]
    return dict(env, LD_PRELOAD=":".join(libs))


_verdicts = {}


def _cannot_take_asan(arg):
    """arg is a program that loads libp11-kit at start and has no ASan of its own (one
    built with -fsanitize=address starts ASan before any constructor runs)."""
    path = shutil.which(str(arg)) if "/" not in str(arg) else str(arg)
    if not path or not os.path.isfile(path):
        return False
    if path not in _verdicts:
        res = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        _verdicts[path] = "libp11-kit" in res.stdout and "libasan" not in res.stdout
    return _verdicts[path]


def options():
    """Sanitizer options for a program under test (nothing unless enabled)."""
    if not ENABLED:
        return {}
    folder = reports_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "report"
    return {"ASAN_OPTIONS": ASAN.format(log), "UBSAN_OPTIONS": UBSAN.format(log)}


def reports():
    """Report files written so far in this run: {path: text}."""
    folder = reports_dir()
    files = sorted(folder.glob("report*")) if folder.is_dir() else []
    return {str(f): f.read_text(errors="replace") for f in files}


# ---- the pytest plugin (controller process only; xdist workers inherit RUN_VAR) ----

def _controller(config):
    return not hasattr(config, "workerinput")


def pytest_configure(config):
    if ENABLED and _controller(config):
        folder = REPORTS / f"run-{os.getpid()}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        os.environ[RUN_VAR] = str(folder)


def pytest_sessionfinish(session, exitstatus):
    if ENABLED and _controller(session.config) and reports():
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter, config):
    if not (ENABLED and _controller(config)):
        return
    found = reports()
    terminalreporter.write_sep("=", f"sanitizer reports: {len(found)} in {reports_dir()}")
    for path, text in found.items():
        terminalreporter.write_line(f"--- {path}\n{text[:4000]}")
