"""Running commands and building the environments with and without the shim."""
import os
import signal
import subprocess
from pathlib import Path

import pytest

from . import sanitize

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
OUT = sanitize.build_dir(BUILD)   # build/asan with SANITIZE=1 (tests/lib/sanitize.py)
LIB = Path(os.environ.get("SMTPGUARD_TEST_LIB") or OUT / "libsmtpguard.so")  # override: test another build
CLIENTS = OUT / "clients"
SHIM_VARS = ("LD_PRELOAD", "SMTPGUARD_POLICY")


def run(cmd, env, input=None, timeout=30, cwd=None):
    """Run cmd (a list), return a text CompletedProcess. On timeout the whole process
    group is killed and the test fails, with what the command had printed."""
    cmd = [str(c) for c in cmd]
    env = sanitize.env_for(cmd, env)   # SANITIZE=1: some programs need the release shim
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, text=True, errors="replace",
                            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        pytest.fail(f"timed out after {timeout} s: {' '.join(cmd)}\n"
                    f"--- stdout\n{out}\n--- stderr\n{err}", pytrace=False)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def describe(res):
    """A CompletedProcess as text, for assertion messages."""
    return (f"$ {' '.join(res.args)}\nexit {res.returncode}\n"
            f"--- stdout\n{res.stdout}\n--- stderr\n{res.stderr}")


class ShimEnv(dict):
    """An environment dict that also tells where the shim's policy and log are."""
    policy_path = None
    log_path = None

    def log(self):
        """The shim's log so far ("" when there is none)."""
        try:
            return Path(self.log_path).read_text(errors="replace")
        except (OSError, TypeError):
            return ""


def baseline_env():
    env = ShimEnv(os.environ)
    for name in SHIM_VARS:
        env.pop(name, None)
    env.update(sanitize.options())
    return env


def policy_text(ports, implicit=(), mode="enforce", extra="", ca=None, log=None):
    lines = [f"mode = {mode}"]
    if ports:
        lines.append("smtp_ports = " + " ".join(str(p) for p in ports))
    if implicit:
        lines.append("implicit_tls_ports = " + " ".join(str(p) for p in implicit))
    if ca:
        lines.append(f"ca_file = {ca}")
    if log:
        lines.append(f"log = file:{log}")
    return "\n".join(lines) + "\n" + (extra.strip("\n") + "\n" if extra else "")


def shim_env(policy_path, log_path, text):
    """Write the policy and return the environment that preloads the shim with it."""
    Path(policy_path).write_text(text)
    env = baseline_env()
    env["LD_PRELOAD"] = sanitize.preload(LIB)
    env["SMTPGUARD_POLICY"] = str(policy_path)
    env.policy_path, env.log_path = str(policy_path), str(log_path)
    return env
