"""[program PATH] sections: per-executable and per-script mode, smtp_ports,
require_tls and unverified_tls, matched by the executable (/proc/self/exe) or an interpreter's script;
every other program keeps the global policy."""
import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from lib.constants import FROM, PASSWORD, TO, USER
from lib.runner import BUILD, CLIENTS, describe, run

PY_MAILER = f"""#!{sys.executable}
import smtplib, ssl, sys
c = smtplib.SMTP(sys.argv[1], int(sys.argv[2]), timeout=10)
if sys.argv[3] == "starttls":
    c.starttls(context=ssl._create_unverified_context())
c.login({USER!r}, {PASSWORD!r})
c.sendmail({FROM!r}, [{TO!r}], b"Subject: x\\r\\n\\r\\nbody\\r\\n")
c.quit()
print("sent")
"""


def mailer(tmp_path, name="mailer.py"):
    path = tmp_path / name
    path.write_text(PY_MAILER)
    path.chmod(0o755)
    return path


def careless(tmp_path):
    """A copy of the careless C client at a path of its own."""
    path = tmp_path / "careless-copy"
    shutil.copy(CLIENTS / "careless", path)
    return path


def leaked(server):
    return (USER, PASSWORD, True) in server.credentials() or \
        (USER, PASSWORD, False) in server.credentials()


def log_rows(env):
    return [json.loads(line) for line in env.log().splitlines()]


def test_mode_by_executable(smtp_server, shim, tmp_path):
    server = smtp_server("selfsigned")
    prog = careless(tmp_path)
    argv = [prog, "verify_none", "localhost", server.port, "starttls"]
    env = shim([server.port], extra="log_format = json")
    res = run(argv, env)
    assert res.returncode != 0 and not leaked(server), describe(res)   # enforced
    env = shim([server.port], extra=f"log_format = json\n[program {prog}]\nmode = audit\n")
    res = run(argv, env)
    assert res.returncode == 0 and leaked(server), describe(res)       # its section: audit
    row = log_rows(env)[-1]
    assert row["verdict"] == "audit: would refuse" and f"[program {prog}]" in row["rule"], row
    other = mailer(tmp_path)                                           # others: enforced
    before = len(server.credentials())
    res = run([sys.executable, other, server.host, server.port, "starttls"], env)
    assert res.returncode != 0 and len(server.credentials()) == before, describe(res)


# shebang-relative: execve is given "./NAME" (AT_EXECFN, read at load from the
# auxiliary vector, is relative: the working directory of then makes it whole).
@pytest.mark.parametrize("how", ["interpreter", "shebang", "shebang-relative"])
def test_mode_by_script(how, smtp_server, shim, tmp_path):
    server = smtp_server("selfsigned")
    script, twin = mailer(tmp_path), mailer(tmp_path, "twin.py")
    env = shim([server.port], extra=f"log_format = json\n[program {script}]\nmode = audit\n")
    cwd = tmp_path if how == "shebang-relative" else None

    def argv(path):
        tail = [server.host, server.port, "starttls"]
        if how == "shebang-relative":
            return [f"./{Path(path).name}", *tail]
        return [sys.executable, path, *tail] if how == "interpreter" else [path, *tail]

    res = run(argv(twin), env, cwd=cwd)               # the same code elsewhere: enforced
    assert res.returncode != 0 and not leaked(server), describe(res)
    res = run(argv(script), env, cwd=cwd)
    assert res.returncode == 0 and leaked(server), describe(res)
    row = log_rows(env)[-1]
    assert row["script"] == str(script) and row["verdict"] == "audit: would refuse", row


def test_script_section_beats_interpreter_section(smtp_server, shim, tmp_path):
    server = smtp_server("selfsigned")
    script = mailer(tmp_path)
    # The interpreter named through its symbolic link (/usr/bin/python3 -> python3.x).
    env = shim([server.port], extra=f"[program /usr/bin/python3]\nmode = audit\n"
                                     f"[program {script}]\nmode = enforce\n")
    res = run(["/usr/bin/python3", script, server.host, server.port, "starttls"], env)
    assert res.returncode != 0 and not leaked(server), describe(res)
    res = run(["/usr/bin/python3", mailer(tmp_path, "other.py"), server.host, server.port,
               "starttls"], env)
    assert res.returncode == 0 and leaked(server), describe(res)


def test_smtp_ports(smtp_server, shim, tmp_path):
    """The MTA case: port-25-like delivery left to the program, its other ports guarded."""
    server = smtp_server("selfsigned")
    prog = careless(tmp_path)
    argv = [prog, "verify_none", "localhost", server.port, "starttls"]
    env = shim([server.port, 587], extra=f"[program {prog}]\nsmtp_ports = 587\n")
    res = run(argv, env)
    assert res.returncode == 0 and leaked(server) and env.log() == "", describe(res)
    res = run([CLIENTS / "careless", "verify_none", "localhost", server.port, "starttls"], env)
    assert res.returncode != 0, describe(res)                          # others: guarded


def test_require_tls(smtp_server, shim, tmp_path):
    server = smtp_server("good", mode="plain")
    script = mailer(tmp_path)
    argv = [sys.executable, script, server.host, server.port, "plain"]
    env = shim([server.port])
    res = run(argv, env)
    assert res.returncode != 0 and server.credentials() == [], describe(res)
    env = shim([server.port], extra=f"[program {script}]\nrequire_tls = no\n")
    res = run(argv, env)
    assert res.returncode == 0 and server.credentials() == [(USER, PASSWORD, False)], \
        describe(res)


CHECKER = BUILD / "smtpguard-policy"


@pytest.mark.parametrize("text,words", [
    ("[program bin/x]\nmode = audit\n", "absolute path"),
    ("[program]\n", "needs a path"),
    ("[program /bin/x]\nverify_name = a.example\n", "cannot be set in a [program"),
    ("[program /bin/x]\nmin_protocol = TLSv1.3\n", "cannot be set in a [program"),
    ("[program /bin/x]\n[program /bin/x]\n", "duplicate section"),
])
def test_bad_program_sections(tmp_path, text, words):
    path = tmp_path / "p.conf"
    path.write_text(text)
    res = run([CHECKER, path], os.environ)
    assert res.returncode == 1 and words in res.stderr, describe(res)


def test_checker_shows_the_program_section(tmp_path):
    path = tmp_path / "p.conf"
    script = mailer(tmp_path)
    path.write_text("smtp_ports = 25 587\n[program /usr/bin/python3]\nmode = audit\n"
                    f"[program {script}]\nsmtp_ports = 587\nrequire_tls = no\n")
    res = run([CHECKER, "--program", "/usr/bin/python3", "--match", "h", "192.0.2.1", 25, path],
              os.environ)
    got = dict(line.split(" = ", 1) for line in res.stdout.splitlines())
    assert got["program"] == "2" and got["mode"] == "audit" and got["smtp_port"] == "yes", got
    res = run([CHECKER, "--program", sys.executable, "--script", script, "--match", "h",
               "192.0.2.1", 25, path], os.environ)
    got = dict(line.split(" = ", 1) for line in res.stdout.splitlines())
    assert got["program"] == "4" and got["smtp_port"] == "no" and got["require_tls"] == "no", got
    assert got["mode"] == "enforce", got
    res = run([CHECKER, path], os.environ)
    assert f"[program {script}]\nsmtp_ports = 587\nrequire_tls = no\n" in res.stdout, res.stdout


def test_unverified_tls(smtp_server, shim, tmp_path):
    """TLS 1.3 from a library no hook reaches (OpenSSL linked in statically): refused
    by default, let through for the program whose section allows it, refused for any
    other program."""
    server = smtp_server("good", "starttls", "modern")
    prog = tmp_path / "static-copy"
    shutil.copy(CLIENTS / "careless_static", prog)
    argv = [prog, "seclevel0", "localhost", server.port, "starttls"]
    env = shim([server.port])
    res = run(argv, env)
    assert res.returncode != 0 and server.credentials() == [], describe(res)
    env = shim([server.port], extra=f"[program {prog}]\nunverified_tls = allow\n")
    res = run(argv, env)
    assert res.returncode == 0 and len(server.messages()) == 1, describe(res) + env.log()
    assert "verify=unverified" in env.log(), env.log()
    res = run([CLIENTS / "careless_static", "seclevel0", "localhost", server.port,
               "starttls"], env)
    assert res.returncode != 0 and len(server.messages()) == 1, describe(res)


@pytest.mark.parametrize("port,smtp", [(25, "no"), (2048, "yes"), (40000, "yes"),
                                       (65535, "yes")])
def test_program_ports_keep_implicit_and_proxy_ports(tmp_path, port, smtp):
    """A section's smtp_ports replace the global list for that program, and the
    implicit TLS and proxy ports stay watched (a tunnel through the proxy would
    otherwise carry its SMTP unjudged)."""
    path = tmp_path / "p.conf"
    path.write_text("smtp_ports = 25\nimplicit_tls_ports = 2048\nproxy_ports = 40000\n"
                    "[program /bin/true]\nsmtp_ports = 65535\n")
    res = run([CHECKER, "--program", "/bin/true", "--match", "h", "192.0.2.1", port, path],
              os.environ)
    got = dict(line.split(" = ", 1) for line in res.stdout.splitlines())
    assert got["smtp_port"] == smtp, got
