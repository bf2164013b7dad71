"""One process, several sessions: a chain that passed is not verified again
for a minute, but the cache never lets another chain, another host name or a
hostile server through."""
import pytest

from lib.constants import PASSWORD, USER
from lib.runner import describe

# Sends one message per (host, port) argument pair in one process; prints ok/fail per session.
SCRIPT = r"""
import smtplib, sys
args = sys.argv[1:]
for host, port in zip(args[::2], args[1::2]):
    try:
        s = smtplib.SMTP(host, int(port), timeout=10)
        s.starttls()
        s.login("sguser", "Sg-S3cret-Pa55")
        s.sendmail("sender@example.com", ["rcpt@example.com"], b"Subject: x\r\n\r\nhi\r\n")
        s.quit()
        print("ok")
    except Exception as e:
        print("fail", type(e).__name__, e)
"""


@pytest.mark.parametrize("second,host,ok", [
    ("good", "localhost", True),
    ("selfsigned", "localhost", False),
    ("good", "127.0.0.1", True),        # the IP SAN: another name, judged on its own
    ("wronghost", "localhost", False),
])
def test_second_session_judged_on_its_own(second, host, ok, smtp_server, shim, run):
    first = smtp_server("good")
    other = smtp_server(second)
    env = shim([first.port, other.port])
    res = run(["/usr/bin/python3", "-c", SCRIPT, "localhost", first.port, host, other.port,
               "localhost", first.port], env)
    assert res.stdout.split("\n")[0] == "ok", describe(res)
    assert res.stdout.split("\n")[2] == "ok", describe(res)
    assert (res.stdout.split("\n")[1] == "ok") == ok, describe(res)
    assert first.credentials() == [(USER, PASSWORD, True)] * 2
    assert other.credentials() == ([(USER, PASSWORD, True)] if ok else []), describe(res)
