"""Building a make target from a test: xdist workers take turns on the harness's make
lock (tests/conftest.py uses the same file), and a failure fails the test with what
make said."""
import fcntl
import subprocess

import pytest

from .runner import BUILD, REPO


def make(*targets, timeout=600):
    BUILD.mkdir(exist_ok=True)
    with open(BUILD / ".make.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = subprocess.run(["make", "-s", *targets], cwd=REPO, capture_output=True,
                             text=True, timeout=timeout)
    if res.returncode != 0:
        pytest.fail(f"make {' '.join(targets)} failed:\n{res.stdout}{res.stderr}",
                    pytrace=False)
