"""A smaller stress run in `make test` (tests/stress/stress.py; `make stress` runs
20,000 sessions): 32 threads of SMTP sessions to a good and two hostile servers under
the shim, mixed with non-SMTP sockets, pipes, files, descriptor reuse and forks."""
import pytest

from lib.maketarget import make
from stress.stress import run

SESSIONS = 2000


@pytest.fixture(scope="module")
def stress_bins():
    make("stress-bins")


def test_stress(stress_bins, certs, tmp_path):
    result = run(SESSIONS, tmp_path, certs)
    # Sanitizer reports are checked for the whole session (tests/lib/sanitize.py).
    assert result.problems(reports=False) == [], result.figures()
    load = result.load
    assert load["good"] + load["hostile"] == SESSIONS and load["hostile"] > 0, result.figures()
    assert load["forks"] > 0 and load["nonsmtp_bytes"] > 0, result.figures()
