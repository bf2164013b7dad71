"""The log's timestamps come from shim/utc.c, not gmtime_r, whose first call
reads /etc/localtime inside the host program (a file open, a read and a
parse in every process that logs). The date must still be gmtime_r's."""
import subprocess

from lib.runner import BUILD


def test_same_date_as_gmtime_r(build):
    res = subprocess.run([BUILD / "clients" / "utc_check"], capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert int(res.stdout.split()[1]) > 800_000, res.stdout
