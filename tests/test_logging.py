"""Log lines an administrator can trust: no password from a rewritten process title, no
line forged by a name holding a newline, never a line written to the SMTP socket, syslog
with the identity smtpguard (the program's own openlog identity untouched), one line per
plaintext decision, and a word on the terminal for an interactive user."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lib.constants import FROM, PASSWORD, TO, USER
from lib import devlog
from lib.runner import CLIENTS, REPO, describe

FORGED = "smtpguard: forged[1]: accepted TLS to evil.example[192.0.2.1]:25"
TITLE = f"sendmail --user {USER} --password {PASSWORD}\n{FORGED}"
HEAD = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z smtpguard: \S+\[\d+\]: ")

PERL = f"""#!/usr/bin/perl
# Sets its process title to its command line, as sendemail-like scripts do.
use strict; use warnings; use Net::SMTP;
my ($host, $port) = @ARGV;
$0 = {json.dumps(TITLE)};
open(my $c, '<', "/proc/self/cmdline"); local $/; print <$c>;
my $smtp = Net::SMTP->new($host, Port => $port, Timeout => 10) or die "connect: $@";
$smtp->starttls(SSL_verify_mode => 0) or die "starttls: " . $smtp->message;
$smtp->auth('{USER}', '{PASSWORD}') or die "auth";
$smtp->mail('{FROM}'); $smtp->to('{TO}'); $smtp->quit();
"""

SYSLOG_CLIENT = f"""
import smtplib, ssl, sys, syslog
syslog.openlog("myprog", syslog.LOG_PID, syslog.LOG_USER)
try:
    c = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10)
    c.starttls(context=ssl._create_unverified_context())
    c.login({USER!r}, {PASSWORD!r})
except Exception as e:
    print("refused:", e)
syslog.syslog(syslog.LOG_INFO, "after the smtp session")
"""

PLAIN_CLIENT = f"""
import os, smtplib, sys
c = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10)
if len(sys.argv) > 3:       # make descriptor 2 the SMTP socket, as some daemons do
    os.dup2(c.sock.fileno(), 2)
try:
    c.login({USER!r}, {PASSWORD!r})
except Exception as e:
    pass
try:
    c.sendmail({FROM!r}, [{TO!r}], b"Subject: x\\r\\n\\r\\nbody\\r\\n")
    print("sent")
except Exception as e:
    print("refused:", type(e).__name__)
"""


def perl_script(tmp_path):
    path = tmp_path / "title.pl"
    path.write_text(PERL)
    path.chmod(0o755)
    return path


def check_lines(log, fmt, events):
    """Every line is one well-formed line of the format: none forged, no secret."""
    assert PASSWORD not in log and USER not in log, log
    lines = log.splitlines()
    assert len(lines) == events, log
    for line in lines:
        if fmt == "json":
            row = json.loads(line)
            assert row["schema"] == 1 and row["pid"] > 0 and row["uid"] == os.getuid(), row
            assert row["exe"].startswith("/") and row["time"].endswith("Z"), row
        else:
            assert HEAD.match(line), line
            assert re.search(r" program=\S+ uid=\d+ exe=/\S+", line), line
    assert not any(line.startswith("smtpguard: forged") for line in lines), log
    if fmt == "text":
        assert FORGED not in log, log
    return lines


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_perl_process_title_with_password_never_logged(fmt, smtp_server, shim, run, tmp_path):
    server = smtp_server("selfsigned")
    env = shim([server.port], extra=f"log_format = {fmt}")
    script = perl_script(tmp_path)
    res = run(["/usr/bin/perl", script, server.host, server.port], env, timeout=30)
    # The hazard is real: the program's own title holds the password.
    assert PASSWORD in res.stdout, describe(res)
    assert server.credentials() == [], describe(res)
    lines = check_lines(env.log(), fmt, 1)
    if fmt == "json":
        row = json.loads(lines[0])
        assert row["program"] == "perl" and row["exe"].startswith("/usr/bin/perl"), row
        assert row["script"] == str(script.resolve()), row
        assert row["verdict"] == "refused" and row["check"] == "chain", row
    else:
        assert f"script={script.resolve()}" in lines[0], lines


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_program_named_with_a_newline_forges_no_line(fmt, smtp_server, shim, run, tmp_path):
    server = smtp_server("selfsigned")
    env = shim([server.port], extra=f"log_format = {fmt}")
    prog = tmp_path / f"x\n{FORGED}"
    shutil.copy(CLIENTS / "careless", prog)
    res = run([prog, "verify_none", "localhost", server.port, "starttls"], env)
    assert res.returncode != 0 and server.credentials() == [], describe(res)
    lines = check_lines(env.log(), fmt, 1)
    if fmt == "json":
        assert json.loads(lines[0])["exe"] == str(prog), lines
    else:
        assert "x\\x0asmtpguard:" in lines[0], lines


def in_namespace(tmp_path, kind, cmd, env):
    """Run cmd with a private /dev/log (or journald socket); the recorded result."""
    return devlog.record(tmp_path, kind, cmd, env)


SYSLOG_LINE = re.compile(r"^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d smtpguard\[(\d+)\]: (.*)$",
                         re.S)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_syslog_datagrams_are_smtpguards_own(fmt, smtp_server, shim, tmp_path):
    server = smtp_server("selfsigned")
    env = shim([server.port], extra=f"log_format = {fmt}")
    Path(env.policy_path).write_text(Path(env.policy_path).read_text().replace(
        f"log = file:{env.log_path}", "log = syslog"))
    script = perl_script(tmp_path)
    got = in_namespace(tmp_path, "syslog", ["/usr/bin/perl", script, server.host, server.port], env)
    assert server.credentials() == [], got
    (dgram,) = got["datagrams"]
    m = SYSLOG_LINE.match(dgram)
    assert m, dgram
    pri, msg = int(m.group(1)), m.group(3)
    assert pri >> 3 == 2 and pri & 7 == 4, dgram         # mail facility, warning
    assert PASSWORD not in dgram and "\n" not in dgram, dgram
    if fmt == "json":
        row = json.loads(msg)
        assert row["program"] == "perl" and row["verdict"] == "refused", row
    else:
        assert msg.startswith("refused TLS to localhost[127.0.0.1]") or "refused TLS" in msg, msg
        assert " program=perl " in msg and " exe=/usr/bin/perl" in msg, msg


def test_program_openlog_identity_is_unchanged(smtp_server, shim, tmp_path):
    server = smtp_server("selfsigned")
    env = shim([server.port])
    Path(env.policy_path).write_text(Path(env.policy_path).read_text().replace(
        f"log = file:{env.log_path}", "log = syslog"))
    client = tmp_path / "client.py"
    client.write_text(SYSLOG_CLIENT)
    got = in_namespace(tmp_path, "syslog", [sys.executable, client, server.host, server.port], env)
    assert server.credentials() == [], got
    ours = [d for d in got["datagrams"] if "smtpguard[" in d]
    theirs = [d for d in got["datagrams"] if "after the smtp session" in d]
    assert len(ours) == 1 and " program=python3" in ours[0], got
    assert len(theirs) == 1 and re.search(r"myprog\[\d+\]: after the smtp session", theirs[0]), got
    assert int(theirs[0][1:theirs[0].index(">")]) >> 3 == 1, theirs   # still LOG_USER


def test_journald_native_socket_gets_fields(smtp_server, shim, tmp_path):
    server = smtp_server("selfsigned")
    env = shim([server.port])
    Path(env.policy_path).write_text(Path(env.policy_path).read_text().replace(
        f"log = file:{env.log_path}", "log = syslog"))
    script = perl_script(tmp_path)
    got = in_namespace(tmp_path, "journal", ["/usr/bin/perl", script, server.host, server.port], env)
    (dgram,) = got["datagrams"]
    fields = dict(line.split("=", 1) for line in dgram.splitlines())
    assert fields["SYSLOG_IDENTIFIER"] == "smtpguard" and fields["SYSLOG_FACILITY"] == "2", fields
    assert fields["PRIORITY"] == "4" and fields["SMTPGUARD_PROGRAM"] == "perl", fields
    assert fields["SMTPGUARD_CHECK"] == "chain" and fields["SMTPGUARD_VERDICT"] == "refused", fields
    assert fields["SMTPGUARD_PORT"] == str(server.port), fields
    assert PASSWORD not in dgram, dgram


def test_no_log_socket_refusal_goes_to_stderr(smtp_server, shim, tmp_path):
    server = smtp_server("selfsigned")
    env = shim([server.port])
    Path(env.policy_path).write_text(Path(env.policy_path).read_text().replace(
        f"log = file:{env.log_path}", "log = syslog"))
    client = tmp_path / "client.py"
    client.write_text(SYSLOG_CLIENT)
    got = in_namespace(tmp_path, "none", [sys.executable, client, server.host, server.port], env)
    assert server.credentials() == [], got
    assert re.search(r"smtpguard: python3\[\d+\]: refused TLS", got["stderr"]), got


def test_audit_plaintext_session_logs_one_line(smtp_server, shim, baseline, run, tmp_path):
    server = smtp_server("good", mode="plain")
    client = tmp_path / "plain.py"
    client.write_text(PLAIN_CLIENT)
    res = run([sys.executable, client, server.host, server.port], baseline())
    assert "sent" in res.stdout and len(server.transactions()) == 1, describe(res)
    env = shim([server.port], mode="audit")
    res = run([sys.executable, client, server.host, server.port], env)
    assert "sent" in res.stdout and len(server.transactions()) == 2, describe(res)
    lines = env.log().splitlines()
    assert len(lines) == 1 and "audit: would refuse plaintext" in lines[0], lines


def test_no_line_to_stderr_when_it_is_the_smtp_socket(smtp_server, shim, run, tmp_path):
    server = smtp_server("good", mode="plain")
    client = tmp_path / "plain.py"
    client.write_text(PLAIN_CLIENT)
    env = shim([server.port], extra="")
    Path(env.policy_path).write_text(Path(env.policy_path).read_text().replace(
        f"log = file:{env.log_path}", "log = stderr"))
    res = run([sys.executable, client, server.host, server.port], env)   # stderr a pipe
    assert "refused" in res.stdout and "smtpguard: " in res.stderr, describe(res)
    res = run([sys.executable, client, server.host, server.port, "fd2"], env)
    assert "refused" in res.stdout, describe(res)
    verbs = [v for s in server.sessions for v, _ in s.commands]
    assert not any("SMTPGUARD" in v.upper() for v in verbs), verbs
    assert server.credentials() == [] and server.transactions() == [], server.sessions


def test_terminal_user_sees_why(smtp_server, shim, tmp_path):
    server = smtp_server("good", mode="plain")
    client = tmp_path / "plain.py"
    client.write_text(PLAIN_CLIENT)
    env = shim([server.port])
    master, slave = os.openpty()
    try:
        proc = subprocess.run([sys.executable, str(client), server.host, str(server.port)],
                              env=env, stdout=subprocess.PIPE, stderr=slave, text=True,
                              timeout=30)
        os.close(slave)
        said = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            said += chunk
    finally:
        os.close(master)
    assert "refused" in proc.stdout and server.credentials() == [], proc.stdout
    text = said.decode(errors="replace")
    assert re.search(r"smtpguard: python3\[\d+\]: refused plaintext to .*: plaintext: AUTH", text), text
    assert text.count("smtpguard:") == 1, text
    assert len(env.log().splitlines()) == 1, env.log()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_syslog_newline_program_forges_nothing(fmt, smtp_server, shim, tmp_path):
    server = smtp_server("selfsigned")
    env = shim([server.port], extra=f"log_format = {fmt}")
    Path(env.policy_path).write_text(Path(env.policy_path).read_text().replace(
        f"log = file:{env.log_path}", "log = syslog"))
    prog = tmp_path / f"x\n{FORGED}"
    shutil.copy(CLIENTS / "careless", prog)
    got = in_namespace(tmp_path, "syslog", [prog, "verify_none", "localhost", server.port,
                                             "starttls"], env)
    assert server.credentials() == [], got
    (dgram,) = got["datagrams"]
    m = SYSLOG_LINE.match(dgram)
    assert m and "\n" not in dgram, dgram
    if fmt == "json":
        row = json.loads(m.group(3))
        assert row["exe"] == str(prog) and row["verdict"] == "refused", row
    else:
        assert FORGED not in dgram and "exe=" in dgram, dgram
