"""The smtpguard command as an administrator meets it (scripts/smtpguard): --version,
--help of every subcommand, usage errors, enable's policy check, status (checksum,
damage, log destination, trust index, --json, exit codes), check (not found, --root, interpreters
and version-manager shims), policy-check --match.

Like tests/test_deploy.py, the machine's own /etc is never touched: --root DIR, or a
private /etc in a mount namespace (lib/sysroot.py).
"""
import hashlib
import json
import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from lib.runner import BUILD, CLIENTS, LIB, REPO, baseline_env, describe, policy_text, run
from lib import sanitize
from lib.sysroot import EtcOverlay, unavailable

SMTPGUARD = REPO / "scripts" / "smtpguard"
VERSION = (REPO / "VERSION").read_text().strip()
SUBCOMMANDS = ("enable", "disable", "status", "check", "policy-check")
INSTALLED = "/usr/lib/smtpguard/libsmtpguard.so"     # where a --root holds its library
INDEXER = LIB.parent / "smtpguard-trust-index"       # beside the library, as installed

pytestmark = pytest.mark.skipif(sanitize.ENABLED, reason="smtpguard deploys the release build")
needs_namespaces = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))


def smtpguard(*args, env=None):
    return run([SMTPGUARD, *args], env or baseline_env(), timeout=60)


def ok(res):
    assert res.returncode == 0, describe(res)
    return res


# ---- version, help, usage errors ---------------------------------------------------------

def test_version_is_the_version_file():
    assert ok(smtpguard("--version")).stdout == f"smtpguard {VERSION}\n"


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_every_subcommand_has_help(sub):
    for args in ((sub, "--help"), (sub, "-h"), ("help", sub)):
        res = ok(smtpguard(*args))
        assert res.stdout.startswith(f"usage: smtpguard {sub} "), describe(res)
        assert "Exit status:" in res.stdout and res.stderr == "", describe(res)


def test_help_and_run_help():
    for args in (("--help",), ("help",), ("help", "--help")):
        res = ok(smtpguard(*args))
        assert res.stdout.startswith("usage: smtpguard [--policy FILE]"), describe(res)
        assert all(f"smtpguard {sub}" in res.stdout for sub in SUBCOMMANDS), describe(res)


def test_check_help_is_help_not_a_program():
    res = ok(smtpguard("check", "--help"))
    assert "--help: not covered" not in res.stdout and "--root DIR" in res.stdout, describe(res)


@pytest.mark.parametrize("args", [("disabel",), ("stauts", "--json"), ("help", "nosuch")])
def test_unknown_subcommand_is_a_usage_error(args):
    res = smtpguard(*args)
    assert res.returncode == 2, describe(res)
    assert "usage: smtpguard" in res.stderr and "not found" not in res.stderr, describe(res)


def test_a_program_still_runs_under_the_library(tmp_path):
    """The usage error for a mistyped subcommand leaves running programs alone."""
    res = ok(smtpguard("--audit", "sh", "-c", 'echo "$LD_PRELOAD"'))
    assert res.stdout.split()[0] == str(LIB), describe(res)
    assert ok(smtpguard("--", "true")).stdout == ""


# ---- enable checks the policy --------------------------------------------------------------

@pytest.fixture
def root(tmp_path):
    """A system root: /usr/lib/smtpguard/libsmtpguard.so (a copy of the build) with its
    recorded checksum, as make install and the package leave it."""
    root = tmp_path / "root"
    (root / "etc" / "smtpguard").mkdir(parents=True)
    lib = root / INSTALLED.lstrip("/")
    lib.parent.mkdir(parents=True)
    shutil.copy(LIB, lib)
    digest = hashlib.sha256(lib.read_bytes()).hexdigest()
    (lib.parent / "libsmtpguard.so.sha256").write_text(f"{digest}  libsmtpguard.so\n")
    return root


def enable(root):
    return smtpguard("enable", "--root", root, "--library", INSTALLED)


def test_enable_refuses_a_broken_policy(root):
    policy = root / "etc/smtpguard/policy.conf"
    policy.write_text("mode = enforce\nsmtp_ports = 25 nonsense\n")
    res = enable(root)
    assert res.returncode == 1, describe(res)
    assert "the policy is broken" in res.stderr and f"{policy}:2:" in res.stderr, describe(res)
    assert not (root / "etc/ld.so.preload").exists()
    policy.write_text("mode = enforce\nsmtp_ports = 25\n")   # fixed: now it enables
    ok(enable(root))
    assert (root / "etc/ld.so.preload").read_text() == f"{INSTALLED}\n"


@pytest.mark.parametrize("mode,says", [
    ("enforce", "ENFORCE mode: SMTP connections that fail a check are REFUSED"),
    ("audit", "audit mode: nothing is refused"),
    ("off", "mode off: SMTP connections are left alone"),
])
def test_enable_says_which_mode_the_policy_is_in(root, mode, says):
    (root / "etc/smtpguard/policy.conf").write_text(f"mode = {mode}\n")
    res = ok(enable(root))
    assert f"mode = {mode}" in res.stdout and says in res.stdout, describe(res)


def test_enable_with_no_policy_says_the_defaults_enforce(root):
    res = ok(enable(root))
    assert "is absent: built-in defaults apply, mode = enforce" in res.stdout, describe(res)
    assert "ENFORCE mode" in res.stdout, describe(res)


# ---- status ------------------------------------------------------------------------------

def status(root, *args):
    res = smtpguard("status", "--root", root, *args)
    return res, res.stdout.splitlines()


def status_json(root):
    res = smtpguard("status", "--root", root, "--json")
    state = json.loads(res.stdout)
    assert state["exit"] == res.returncode, describe(res)
    return res.returncode, state


def enabled_root(root, log):
    (root / "etc/smtpguard/policy.conf").write_text(policy_text([2525], log=log))
    ok(enable(root))
    return root


def test_status_reports_the_checksum_and_a_working_log_file(root, tmp_path):
    log = tmp_path / "sg.log"          # inside the root: ROOT/tmp.../sg.log
    (root / str(log.parent).lstrip("/")).mkdir(parents=True)
    enabled_root(root, log)
    res, lines = status(root)
    assert res.returncode == 0, describe(res)
    digest = hashlib.sha256(LIB.read_bytes()).hexdigest()
    assert f"build: sha256 {digest}, {LIB.stat().st_size} bytes" in res.stdout, describe(res)
    assert "installed: sha256 matches the one recorded at install" in lines, describe(res)
    assert f"log: file:{log} -> {root}{log} (works)" in lines, describe(res)
    code, state = status_json(root)
    assert code == 0 and state["enabled"] is True and state["library"] == INSTALLED, state
    assert state["sha256"] == state["installed_sha256"] == digest, state
    assert (state["library_state"], state["log_state"], state["problems"]) == ("ok", "ok", [])
    assert state["mode"] == "enforce" and state["version"] == VERSION, state


@pytest.mark.parametrize("damage", ["truncated", "other-bytes"])
def test_status_detects_a_damaged_library(root, tmp_path, damage):
    enabled_root(root, tmp_path / "sg.log")
    lib = root / INSTALLED.lstrip("/")
    data = lib.read_bytes()
    if damage == "truncated":
        lib.write_bytes(data[:len(data) // 2])
    else:                               # same size, a changed byte: only the checksum knows
        lib.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    res, lines = status(root)
    assert res.returncode == 2, describe(res)
    assert f"library: {INSTALLED} (DAMAGED)" in lines, describe(res)
    assert "installed: sha256" in res.stdout and "DIFFERS" in res.stdout, describe(res)
    code, state = status_json(root)
    assert code == 2 and state["library_state"] == "damaged" and state["problems"], state


def test_status_reports_a_log_destination_that_does_not_work(root, tmp_path):
    enabled_root(root, "/nonexistent-dir/smtpguard.log")
    res, lines = status(root)
    assert res.returncode == 0, describe(res)        # a warning: the shim still enforces
    assert any(line.startswith("log: file:/nonexistent-dir/smtpguard.log") and
               "NOT WORKING" in line for line in lines), describe(res)
    code, state = status_json(root)
    assert state["log_state"] == "broken" and state["warnings"], state


def test_status_syslog_without_a_socket_loses_log_lines(root):
    (root / "etc/smtpguard/policy.conf").write_text("mode = enforce\nlog = syslog\n")
    ok(enable(root))
    code, state = status_json(root)
    assert (code, state["log"], state["log_state"]) == (0, "syslog", "broken"), state
    assert "dev/log" in state["warnings"][0], state


def test_status_syslog_socket_listening_or_left_behind(root):
    """A socket file nobody listens on (a syslog daemon that is gone) loses log lines;
    one that a process has bound works. Nothing is sent to it."""
    (root / "etc/smtpguard/policy.conf").write_text("mode = enforce\nlog = syslog\n")
    ok(enable(root))
    (root / "dev").mkdir()
    path = root / "dev/log"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(path))
    try:
        code, state = status_json(root)
        assert (code, state["log_state"], state["log_target"]) == (0, "ok", str(path)), state
        assert state["warnings"] == [], state
        listener.settimeout(0)
        with pytest.raises(BlockingIOError):     # status sent nothing to it
            listener.recv(100)
    finally:
        listener.close()                    # the file stays, nobody listens
    code, state = status_json(root)
    assert (state["log_state"], state["log_target"]) == ("broken", str(path)), state
    assert "nothing listens on" in state["warnings"][0], state


def test_status_exit_codes(root):
    code, state = status_json(root)                         # not enabled
    assert code == 1 and state["enabled"] is False, state
    (root / "etc/smtpguard/policy.conf").write_text("mode = nonsense\n")
    (root / "etc/ld.so.preload").write_text(f"{INSTALLED}\n")
    code, state = status_json(root)                         # enabled, policy broken
    assert code == 2 and state["policy_state"] == "broken", state
    (root / "etc/smtpguard/policy.conf").unlink()
    code, state = status_json(root)                         # absent: the defaults apply
    assert code == 0 and state["policy_state"] == "absent", state
    (root / INSTALLED.lstrip("/")).unlink()
    code, state = status_json(root)                         # the library gone
    assert code == 2 and state["library_state"] == "missing", state


def test_status_says_whether_the_trust_index_is_current(certs, tmp_path):
    """The index smtpguard-trust-index prepares for the policy's ca_file: missing, then
    current once the tool ran, stale when the bundle changed (a process would parse it
    itself: status says how to fix it), current again; a bundle the index cannot describe
    is said so. Slower, never wrong: neither a problem nor a warning."""
    bundle, cache, policy = tmp_path / "bundle.pem", tmp_path / "cache", tmp_path / "p.conf"
    bundle.write_bytes(Path(certs.ca).read_bytes() + Path(certs.ca2).read_bytes())
    policy.write_text(policy_text([2525], ca=bundle, log=tmp_path / "sg.log"))
    env = dict(baseline_env(), SMTPGUARD_POLICY=str(policy), SMTPGUARD_TRUST_CACHE=str(cache))

    def state(want):
        res = smtpguard("status", "--json", env=env)
        got = json.loads(res.stdout)
        assert (res.returncode, got["ca_file"], got["trust_index"]) == (1, str(bundle), want), got
        assert got["problems"] == got["warnings"] == [], got
        return got, smtpguard("status", env=env).stdout.splitlines()

    fix = f"each process parses the bundle itself; run: {INDEXER} {bundle} "
    got, lines = state("missing")
    assert got["trust_index_note"].startswith(fix), got
    assert any(line.startswith(f"trust index: for {bundle}: MISSING: {fix}") for line in lines)
    ok(run([INDEXER, bundle], env))                       # as the hook does
    got, lines = state("current")
    assert Path(got["trust_index_file"]).parent == cache and "trust_index_note" not in got, got
    assert f"trust index: {got['trust_index_file']} (current, for {bundle})" in lines, lines
    bundle.write_bytes(Path(certs.ca).read_bytes())      # a trust-store update
    got, lines = state("stale")
    assert any(line.startswith(f"trust index: for {bundle}: STALE: {fix}") for line in lines)
    ok(run([INDEXER, bundle], env))
    state("current")
    bundle.write_bytes(Path(certs.ca).read_bytes() + b"-----BEGIN PRIVATE KEY-----\n")
    got, _ = state("unindexable")
    assert got["trust_index_note"] == f"{bundle} cannot be indexed: each process parses it whole"


def test_status_root_looks_for_the_bundle_and_index_inside_it(root, certs):
    code, state = status_json(root)
    assert state["trust_index"] == "unreadable", state     # no bundle in the root
    bundle = root / "etc/ssl/certs/ca-certificates.crt"
    bundle.parent.mkdir(parents=True)
    shutil.copy(certs.ca, bundle)
    code, state = status_json(root)
    assert state["trust_index"] == "missing", state
    assert state["trust_index_file"].startswith(f"{root}/var/cache/smtpguard/trust-"), state


@needs_namespaces
def test_status_with_the_library_gone_still_sees_the_policy(tmp_path):
    """Every program then prints the loader's complaint on stderr, the checker too: the
    policy is judged by exit status and existence, never by stderr text."""
    lib = tmp_path / "lib" / LIB.name
    lib.parent.mkdir()
    shutil.copy(LIB, lib)
    etc = EtcOverlay(tmp_path / "sys")
    etc.write("smtpguard/policy.conf", "mode = audit\n")
    ok(etc.run([SMTPGUARD, "enable", "--library", lib], baseline_env(), timeout=60))
    lib.unlink()
    res = etc.run([SMTPGUARD, "status"], baseline_env(), timeout=60)
    assert "cannot be preloaded" in res.stderr, describe(res)
    assert res.returncode == 2 and f"library: {lib} (MISSING)" in res.stdout, describe(res)
    assert "policy: /etc/smtpguard/policy.conf (valid)" in res.stdout, describe(res)
    assert "absent" not in res.stdout and "mode: audit" in res.stdout, describe(res)


# ---- check ---------------------------------------------------------------------------------

def test_check_not_found_has_its_own_exit_code():
    res = smtpguard("check", "no-such-program-here")
    assert res.returncode == 3, describe(res)
    assert res.stdout == "no-such-program-here: not covered: not found\n", describe(res)
    res = smtpguard("check", "sh")
    assert res.returncode == 0, describe(res)   # found and covered: 0, not 3


def test_check_root_looks_inside_the_root(tmp_path):
    root = tmp_path / "img"
    (root / "usr/bin").mkdir(parents=True)
    shutil.copy(CLIENTS / "careless", root / "usr/bin/mailer-in-image")
    res = ok(smtpguard("check", "--root", root, "mailer-in-image"))
    assert res.stdout.startswith(f"{root}/usr/bin/mailer-in-image: covered: "), describe(res)
    assert "OpenSSL 3" in res.stdout, describe(res)
    res = smtpguard("check", "mailer-in-image")      # not on this system
    assert res.returncode == 3, describe(res)
    (root / "bin").symlink_to("usr/bin")          # an absolute link resolved inside root
    (root / "usr/bin/mailer").symlink_to("/bin/mailer-in-image")
    res = ok(smtpguard("check", "--root", root, "/usr/bin/mailer"))
    assert res.stdout.startswith(f"{root}/bin/mailer-in-image: covered"), describe(res)


@pytest.mark.parametrize("interpreter,module", [
    ("/usr/bin/python3", "its _ssl module: OpenSSL 3"),
    ("/usr/bin/perl", "its Net::SSLeay: OpenSSL 3"),
    ("/usr/bin/ruby", "its openssl.so: OpenSSL 3"),
])
def test_check_interpreters_report_the_tls_module(tmp_path, interpreter, module):
    if not Path(interpreter).exists():
        pytest.skip(f"{interpreter} is not installed")
    script = tmp_path / "mailer"
    script.write_text(f"#!/usr/bin/env {Path(interpreter).name}\n")
    script.chmod(0o755)
    for program in (interpreter, script):
        res = ok(smtpguard("check", program))
        assert module in res.stdout and "cannot do TLS" not in res.stdout, describe(res)


def test_check_follows_a_version_manager_shim(tmp_path):
    """A pyenv/rbenv-like shim: 'exec MANAGER exec NAME'; the manager says which program
    it runs (MANAGER which NAME), with the variables the shim exports."""
    manager = tmp_path / "bin" / "fakeenv"
    manager.parent.mkdir()
    manager.write_text('#!/bin/sh\n[ "$1" = which ] && [ "$FAKEENV_ROOT" = /opt/fake ] && '
                       'exec printf "%s\\n" /usr/bin/python3\nexit 1\n')
    manager.chmod(0o755)
    shim = tmp_path / "shims" / "python3"
    shim.parent.mkdir()
    shim.write_text(f'#!/usr/bin/env bash\nset -e\nexport FAKEENV_ROOT="/opt/fake"\n'
                    f'exec "{manager}" exec "python3" "$@"\n')
    shim.chmod(0o755)
    res = ok(smtpguard("check", shim))
    assert "fakeenv shim: runs /usr/bin/python3" in res.stdout, describe(res)
    assert "its _ssl module: OpenSSL 3" in res.stdout, describe(res)
    manager.write_text("#!/bin/sh\nexit 1\n")        # the manager cannot say: not covered
    res = smtpguard("check", shim)
    assert res.returncode == 1 and "cannot say which python3" in res.stdout, describe(res)


# ---- policy-check --match -----------------------------------------------------------------

def test_policy_check_match(tmp_path):
    policy = tmp_path / "policy.conf"
    policy.write_text("smtp_ports = 25 587\n[destination mail.example.com]\nmode = audit\n")
    res = ok(smtpguard("policy-check", "--match", "mail.example.com", "192.0.2.1", "587",
                       policy))
    assert "section = 2\n" in res.stdout and "mode = audit\n" in res.stdout, describe(res)
    res = ok(smtpguard("policy-check", "--match", "mail.example.com", "192.0.2.1", "443",
                       policy))
    assert res.stdout.endswith("note = port 443: not an SMTP port: untouched\n"), describe(res)
    assert "smtp_port = no\n" in res.stdout, describe(res)
    res = ok(smtpguard("policy-check", "--help"))
    assert "--match HOST ADDR PORT" in res.stdout, describe(res)


# ---- the installed command (make install) --------------------------------------------------

def test_installed_command_knows_its_version_and_checker(tmp_path):
    dest = tmp_path / "dest"
    res = run(["make", "-s", "install", f"DESTDIR={dest}", "PREFIX=/usr"], baseline_env(),
              timeout=300, cwd=REPO)
    ok(res)
    command = dest / "usr/sbin/smtpguard"
    assert ok(run([command, "--version"], baseline_env())).stdout == f"smtpguard {VERSION}\n"
    text = command.read_text()
    assert "CHECKER_PATH='/usr/bin/smtpguard-policy'" in text
    assert "LIBDIR='/usr/lib/smtpguard'" in text
    man = (dest / "usr/share/man/man8/smtpguard.8").read_text()
    assert man.startswith('.TH SMTPGUARD 8 "') and f'"smtpguard {VERSION}"' in man
    assert stat.S_IMODE(os.stat(command).st_mode) == 0o755 and BUILD.exists()
    # The trust index's tool beside the library, and the ca-certificates hook naming it.
    tool, hook = dest / "usr/lib/smtpguard/smtpguard-trust-index", \
        dest / "etc/ca-certificates/update.d/smtpguard"
    assert stat.S_IMODE(os.stat(tool).st_mode) == stat.S_IMODE(os.stat(hook).st_mode) == 0o755
    assert "INDEXER=/usr/lib/smtpguard/smtpguard-trust-index\n" in hook.read_text()
    assert not (dest / "var/cache/smtpguard").exists(), "indexed at build time (DESTDIR)"
    (dest / "var/cache/smtpguard").mkdir(parents=True)
    ok(run(["make", "-s", "uninstall", f"DESTDIR={dest}", "PREFIX=/usr"], baseline_env(),
           timeout=300, cwd=REPO))
    for gone in (tool, hook, command, dest / "var/cache/smtpguard"):
        assert not gone.exists(), gone


def test_disable_library_removes_that_entry_alone(tmp_path):
    """The package's prerm: its own library out of /etc/ld.so.preload, another
    installation's entry (make install) and other preloads kept."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    preload = root / "etc/ld.so.preload"
    preload.write_text("/usr/lib/site/libfirst.so\n/usr/local/lib/smtpguard/libsmtpguard.so\n"
                       f"{INSTALLED}\n")
    ok(smtpguard("disable", "--root", root, "--library", INSTALLED))
    assert preload.read_text().split() == ["/usr/lib/site/libfirst.so",
                                           "/usr/local/lib/smtpguard/libsmtpguard.so"]
    ok(smtpguard("disable", "--root", root))           # without --library: every entry
    assert preload.read_text().split() == ["/usr/lib/site/libfirst.so"]
