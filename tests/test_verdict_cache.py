"""One process, several sessions: a chain that passed is not verified again
for a minute, but the cache never lets another chain, another host name or a
hostile server through. The cache serves from a process's second verdict on
(the first neither asks nor fills it): the first server is visited twice
before the other one, so that its verdict is kept when the other is judged."""
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
    res = run(["/usr/bin/python3", "-c", SCRIPT, "localhost", first.port, "localhost",
               first.port, host, other.port, "localhost", first.port], env)
    lines = res.stdout.split("\n")
    assert lines[0] == lines[1] == lines[3] == "ok", describe(res)
    assert (lines[2] == "ok") == ok, describe(res)
    assert first.credentials() == [(USER, PASSWORD, True)] * 3
    assert other.credentials() == ([(USER, PASSWORD, True)] if ok else []), describe(res)
