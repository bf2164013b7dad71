"""System-wide deployment: the smtpguard command (scripts/smtpguard), /etc/ld.so.preload,
privileged programs, constructor order, make install.

The machine's own /etc is never touched: enable, disable and status act on a temporary
root (--root DIR), and the tests that need the loader to read /etc/ld.so.preload run in a
mount namespace with a private /etc (lib/sysroot.py), where `smtpguard enable` itself
writes it.
"""
import fcntl
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from lib.constants import PASSWORD, SCENARIOS, USER
from lib.httpsserver import HTTPSServer
from lib.mailers import MAILERS, PY
from lib.runner import BUILD, CLIENTS, LIB, REPO, baseline_env, describe, policy_text, run
from lib import sanitize
from lib.sysroot import EtcOverlay, unavailable
from test_legacy import legacy  # noqa: F401 (a fixture)
from test_mailers import assert_delivered

SMTPGUARD = REPO / "scripts" / "smtpguard"
OWN_LIB = BUILD / "libsmtpguard.so"       # what the command in the source tree runs with
DEPLOY = BUILD / "deploy"
CARELESS = CLIENTS / "careless"
OTHERS = "# site preloads\n/usr/lib/site/libfirst.so\n\n/usr/lib/site/libsecond.so # why\n"

# The command preloads one library; an ASan-built one needs the ASan runtime before
# it, which ld.so.preload and `smtpguard run` do not give. Memory safety of the shim
# is what SANITIZE=1 checks, and the rest of the suite does that.
pytestmark = pytest.mark.skipif(sanitize.ENABLED, reason="smtpguard deploys the release build")

needs_namespaces = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))


@pytest.fixture(scope="module")
def helpers(build):
    """The C helpers of tests/deploy (make deploy-helpers), under the harness's make lock."""
    with open(BUILD / ".make.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = subprocess.run(["make", "-s", "deploy-helpers"], cwd=REPO, capture_output=True,
                             text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return DEPLOY


def smtpguard(*args, env=None, cwd=None):
    return run([SMTPGUARD, *args], env or baseline_env(), cwd=cwd)


def ok(res):
    assert res.returncode == 0, describe(res)
    return res


# ---- enable / disable / status on a temporary root ---------------------------------

@pytest.fixture
def root(tmp_path):
    (tmp_path / "root" / "etc").mkdir(parents=True)
    return tmp_path / "root"


def preload_of(root):
    return root / "etc" / "ld.so.preload"


def enable(root, lib=LIB):
    return smtpguard("enable", "--root", root, "--library", lib)


def etc_entries(root):
    """What is in DIR/etc: no temporary file may be left behind."""
    return sorted(p.name for p in (root / "etc").iterdir())


@pytest.mark.parametrize("before", [None, OTHERS], ids=["no-file", "other-entries"])
def test_enable_twice_writes_one_entry_and_disable_restores(root, before):
    preload = preload_of(root)
    if before is not None:
        preload.write_text(before)
        old_inode = preload.stat().st_ino
    ok(enable(root))
    enabled = preload.read_text()
    assert enabled == (before or "") + f"{LIB}\n"
    first = preload.stat()
    assert stat.S_IMODE(first.st_mode) == 0o644 and first.st_uid == os.geteuid()
    if before is not None:
        assert first.st_ino != old_inode, "not replaced by rename"
    again = ok(enable(root))
    assert "already enabled" in again.stdout
    assert preload.read_text() == enabled and preload.stat().st_ino == first.st_ino
    ok(smtpguard("disable", "--root", root))
    if before is None:
        assert not preload.exists()
    else:
        assert preload.read_text() == before
    assert etc_entries(root) == ([] if before is None else ["ld.so.preload"])
    assert "not enabled" in ok(smtpguard("disable", "--root", root)).stdout


def test_disable_removes_entries_of_a_missing_library(root):
    """Only the file is edited: the library named there may be long gone."""
    preload = preload_of(root)
    preload.write_text("/lib/a.so /gone/libsmtpguard.so:/lib/b.so # keep\n"
                       "/old/prefix/lib/smtpguard/libsmtpguard.so\n" + OTHERS)
    res = ok(smtpguard("disable", "--root", root))
    assert "/gone/libsmtpguard.so" in res.stdout
    assert preload.read_text() == "/lib/a.so /lib/b.so # keep\n" + OTHERS


def test_enable_replaces_an_older_installation(root):
    preload_of(root).write_text("/old/prefix/lib/smtpguard/libsmtpguard.so\n" + OTHERS)
    ok(enable(root))
    assert preload_of(root).read_text() == OTHERS + f"{LIB}\n"


def _truncated(tmp):
    (tmp / "truncated.so").write_bytes(LIB.read_bytes()[:8192])
    return tmp / "truncated.so"


def _not_elf(tmp):
    (tmp / "text.so").write_text("this is not a shared library\n" * 100)
    return tmp / "text.so"


def _group_writable(tmp):
    shutil.copy(LIB, tmp / "writable.so")
    (tmp / "writable.so").chmod(0o664)
    return tmp / "writable.so"


BROKEN = {
    "truncated": (_truncated, "exit status 135"),        # SIGBUS in every program
    "not-elf": (_not_elf, "cannot be preloaded"),
    "unresolved-symbol": (lambda tmp: DEPLOY / "libunresolved.so", "exit status 127"),
    "writes-to-stderr": (lambda tmp: DEPLOY / "libnoisy.so", "libnoisy: loaded"),
    "group-writable": (_group_writable, "writable by group or others"),
}


@pytest.mark.parametrize("kind", BROKEN)
def test_enable_refuses_a_library_that_fails_to_load(root, tmp_path, helpers, kind):
    make, why = BROKEN[kind]
    preload = preload_of(root)
    preload.write_text(OTHERS)
    before = preload.stat()
    res = enable(root, make(tmp_path))
    assert res.returncode == 1, describe(res)
    assert "refusing to enable" in res.stderr and why in res.stderr, describe(res)
    after = preload.stat()
    assert preload.read_text() == OTHERS
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert etc_entries(root) == ["ld.so.preload"]


def status_lines(root, env=None):
    res = smtpguard("status", "--root", root, env=env)
    return res.returncode, res.stdout.splitlines(), res


def test_status_says_what_is_enabled_and_which_policy_applies(root):
    code, lines, res = status_lines(root)
    assert code == 1 and lines[0].startswith("enabled: no"), describe(res)
    ok(enable(root))
    policy = root / "etc" / "smtpguard" / "policy.conf"
    policy.parent.mkdir()
    policy.write_text("mode = audit\n")
    code, lines, res = status_lines(root)
    digest = hashlib.sha256(LIB.read_bytes()).hexdigest()
    assert code == 0, describe(res)
    assert lines[:3] == [f"enabled: yes, in {preload_of(root)}", f"library: {LIB}",
                         lines[2]] and digest in lines[2], describe(res)
    assert f"policy: {policy} (valid)" in lines and "mode: audit" in lines, describe(res)

    policy.chmod(0o664)       # a privileged program would not trust it
    code, lines, res = status_lines(root)
    assert any(line.startswith("privileged programs: ignore it") for line in lines), describe(res)

    policy.write_text("mode = audit\nsmtp_ports = none at all\n")
    code, lines, res = status_lines(root)
    assert code == 2 and any(f"{policy}:2:" in line for line in lines), describe(res)


def test_status_notices_a_missing_library(root):
    preload_of(root).write_text("/gone/libsmtpguard.so\n")
    code, lines, res = status_lines(root)
    assert code == 2 and "library: /gone/libsmtpguard.so (MISSING)" in lines, describe(res)


def test_policy_check_prints_the_policy_or_file_and_line(tmp_path):
    policy = tmp_path / "policy.conf"
    policy.write_text("mode = audit\nsmtp_ports = 2525\n")
    res = ok(smtpguard("policy-check", policy))
    lines = res.stdout.splitlines()
    assert "mode = audit" in lines and "smtp_ports = 465 2525" in lines, describe(res)
    policy.write_text("mode = audit\nsmtp_ports = twentyfive\n")
    res = smtpguard("policy-check", policy)
    assert res.returncode == 1 and f"{policy}:2:" in res.stderr and res.stdout == "", describe(res)


# ---- smtpguard COMMAND ---------------------------------------------------------------

def test_run_prepends_the_library_and_sets_policy_and_mode(tmp_path):
    (tmp_path / "policy.conf").write_text("mode = enforce\n")
    env = baseline_env()
    env["LD_PRELOAD"] = "libm.so.6"
    show = ["sh", "-c", 'printf "%s\\n" "$LD_PRELOAD" "$SMTPGUARD_POLICY" "$SMTPGUARD_MODE"; '
                        'grep -c "$0" /proc/self/maps', OWN_LIB]
    res = ok(run([SMTPGUARD, "--policy", "policy.conf", "--audit", "--", SMTPGUARD, "--", *show],
                 env, cwd=tmp_path))
    lines = res.stdout.splitlines()
    assert lines[:3] == [f"{OWN_LIB} libm.so.6", str(tmp_path / "policy.conf"), "audit"], \
        describe(res)
    assert int(lines[3]) > 0, "the library is not mapped"


@pytest.mark.parametrize("audit", [False, True], ids=["enforce", "audit"])
def test_run_puts_the_command_under_the_policy(smtp_server, certs, tmp_path, audit):
    server = smtp_server("selfsigned")
    log = tmp_path / "smtpguard.log"
    (tmp_path / "policy.conf").write_text(policy_text([server.port], ca=certs.ca, log=log))
    res = run([SMTPGUARD, "--policy", tmp_path / "policy.conf", *(["--audit"] * audit),
               CARELESS, "verify_none", "localhost", server.port, "starttls"], baseline_env())
    why = f"{describe(res)}\n--- log\n{log.read_text() if log.exists() else ''}"
    if audit:
        assert res.returncode == 0 and server.credentials() == [(USER, PASSWORD, True)], why
        assert "audit: would refuse" in log.read_text(), why
    else:
        assert res.returncode == 2 and server.credentials() == [], why
        assert server.transactions() == [], why


# ---- the shim coming from /etc/ld.so.preload (private /etc) ---------------------------

def private_etc(base, lib=LIB):
    """A private /etc in which `smtpguard enable` (as root, no --root) was run."""
    etc = EtcOverlay(base)
    ok(etc.run([SMTPGUARD, "enable", "--library", lib], baseline_env(), timeout=60))
    assert etc.path("ld.so.preload").read_text() == f"{lib}\n"
    return etc


@pytest.fixture(scope="module")
def real_etc_untouched():
    """The machine's /etc/ld.so.preload before and after: the same."""
    def state():
        path = Path("/etc/ld.so.preload")
        return path.read_bytes() if path.exists() else None
    before = state()
    yield
    assert state() == before


@pytest.fixture
def etc(tmp_path, real_etc_untouched):
    return private_etc(tmp_path / "sys")


@needs_namespaces
@pytest.mark.parametrize("mailer,scenario",
                         [pytest.param(m, s, id=f"{m.name}-{s}")
                          for m in MAILERS for s in ("good", "selfsigned")])
def test_mailers_are_protected_by_ld_so_preload_alone(etc, smtp_server, certs, message_file,
                                                     tmp_path, mailer, scenario):
    """No LD_PRELOAD, no SMTPGUARD_POLICY: the shim comes from /etc/ld.so.preload and the
    policy from /etc/smtpguard/policy.conf."""
    cert, tls = SCENARIOS[scenario]
    server = smtp_server(cert, "starttls", tls)
    log = tmp_path / "smtpguard.log"
    etc.write("smtpguard/policy.conf", policy_text([server.port], ca=certs.ca, log=log))
    cmd = mailer.build(server.port, "starttls", message_file)
    res = etc.run(cmd.argv, baseline_env(), input=cmd.input, timeout=60)
    if scenario == "good":
        assert_delivered(server, res)
        return
    why = f"{describe(res)}\n--- log\n{log.read_text() if log.exists() else ''}"
    assert server.credentials() == [] and server.transactions() == [], why
    assert res.returncode != 0 and "refused" in log.read_text(), why


@needs_namespaces
def test_disable_when_the_enabled_library_is_gone(tmp_path, real_etc_untouched):
    """The loader then complains in every program, but programs run, and so does
    disable, which only edits the file."""
    lib = tmp_path / "lib" / LIB.name
    lib.parent.mkdir()
    shutil.copy(LIB, lib)
    etc = private_etc(tmp_path / "sys", lib)
    lib.unlink()
    status = etc.run([SMTPGUARD, "status"], baseline_env())
    assert status.returncode == 2 and f"library: {lib} (MISSING)" in status.stdout, \
        describe(status)
    assert "cannot be preloaded" in status.stderr, describe(status)
    ok(etc.run([SMTPGUARD, "disable"], baseline_env()))
    assert not etc.path("ld.so.preload").exists()
    assert ok(etc.run(["true"], baseline_env())).stderr == ""


class Everyday:
    """Inputs of the everyday programs: a data file and an HTTPS server (not SMTP)."""

    def __init__(self, base, https_url):
        self.data = base / "data"
        self.data.mkdir()
        self.file = self.data / "lines.txt"
        self.file.write_text("".join(f"line {i * 7919 % 101}\n" for i in range(200)))
        self.https_url = https_url


GIT_ENV = {"GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1",
           **{f"GIT_{who}_{what}": value for who in ("AUTHOR", "COMMITTER")
              for what, value in (("NAME", "t"), ("EMAIL", "t@example.com"),
                                  ("DATE", "2000-01-01T00:00:00Z"))}}

EVERYDAY = {
    "sh": lambda d: ["sh", "-c", "echo out; echo err >&2; exit 3"],
    "bash": lambda d: ["bash", "-c", "for i in 1 2 3; do echo $((i * i)); done; "
                                     "mapfile -t l < \"$0\"; echo ${#l[@]}; exit 4", d.file],
    "ls": lambda d: ["ls", "-ln", "--time-style=+%s", d.data],
    "cat": lambda d: ["cat", d.file],
    "sort": lambda d: ["sort", "-r", d.file],
    "sha256sum": lambda d: ["sha256sum", d.file],
    "python3": lambda d: [PY, "-c", "import hashlib, json, socket, ssl, threading; print(json."
                          "dumps([ssl.OPENSSL_VERSION, hashlib.sha256(b'x').hexdigest()]))"],
    "perl": lambda d: ["perl", "-MNet::SSLeay", "-e", "print join(',', map { $_ * 2 } 1 .. 5),"
                       " qq{\\n}, Net::SSLeay::SSLeay_version(0), qq{\\n}"],
    "git": lambda d: ["sh", "-c", "git init -q . && echo x > f && git add f && "
                                  "git commit -q -m msg && git rev-parse HEAD && git log"],
    "apt-cache": lambda d: ["apt-cache", "policy", "bash"],
    "curl": lambda d: ["curl", "--silent", "--show-error", "--insecure", "--max-time", "20",
                       d.https_url],
    "threads": lambda d: [DEPLOY / "workload", "threads"],
    "fork-exec": lambda d: [DEPLOY / "workload", "forkexec"],
}


@pytest.fixture(scope="module")
def everyday(tmp_path_factory, certs, helpers, real_etc_untouched):
    """(private /etc with the shipped default policy logging to a file, inputs, log)."""
    if unavailable():
        pytest.skip(unavailable())
    base = tmp_path_factory.mktemp("everyday")
    server = HTTPSServer(certs.selfsigned)
    etc = private_etc(base / "sys")
    log = base / "smtpguard.log"
    default = (REPO / "policy" / "default.conf").read_text()
    assert "\nlog = syslog\n" in default
    etc.write("smtpguard/policy.conf", default.replace("\nlog = syslog\n", f"\nlog = file:{log}\n"))
    yield etc, Everyday(base, server.url), log
    server.stop()


def test_private_etc_preloads_the_shim(everyday):
    etc, _, _ = everyday
    maps = ["grep", "-c", str(LIB), "/proc/self/maps"]
    assert run(maps, baseline_env()).stdout.strip() == "0"
    assert int(etc.run(maps, baseline_env()).stdout) > 0


@needs_namespaces
@pytest.mark.parametrize("name", EVERYDAY)
def test_everyday_programs_behave_the_same_under_ld_so_preload(everyday, tmp_path, name):
    etc, data, log = everyday
    cmd = EVERYDAY[name](data)
    env = baseline_env()
    env.update(GIT_ENV)
    results = []
    for where, runner in (("plain", run), ("preloaded", etc.run)):
        (tmp_path / where).mkdir()
        results.append(runner(cmd, env, timeout=60, cwd=tmp_path / where))
    plain, preloaded = results
    assert (preloaded.returncode, preloaded.stdout, preloaded.stderr) == \
        (plain.returncode, plain.stdout, plain.stderr), \
        f"--- without\n{describe(plain)}\n--- with /etc/ld.so.preload\n{describe(preloaded)}"
    assert plain.stdout or plain.returncode, "the command did nothing: the test proves nothing"
    assert not log.exists() or log.read_text() == "", log.read_text()


# ---- privileged programs -----------------------------------------------------------------

@pytest.fixture
def world_dir():
    """A directory under /tmp that an unprivileged user can enter (pytest's are 0700)."""
    path = Path(tempfile.mkdtemp(dir="/tmp", prefix="smtpguard-deploy-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path)


@needs_namespaces
@pytest.mark.parametrize("client_mode,policy_mode,leaks", [
    pytest.param(0o4755, 0o644, False, id="setuid-enforced-with-root-policy"),
    pytest.param(0o755, 0o644, True, id="control-not-setuid-environment-honoured"),
    pytest.param(0o4755, 0o664, True, id="setuid-group-writable-policy-ignored"),
])
def test_setuid_client_ignores_the_environment(etc, smtp_server, certs, world_dir,
                                               client_mode, policy_mode, leaks):
    """The root policy (/etc/smtpguard/policy.conf) names the server's port, which the
    built-in defaults do not. The environment asks for mode off. A setuid client run by
    nobody must be refused (root policy); the same client without the setuid bit obeys
    the environment (so the environment would have worked); a group-writable root
    policy is ignored by the setuid client: the defaults leave that port alone."""
    server = smtp_server("selfsigned")
    log = world_dir / "root.log"
    etc.write("smtpguard/policy.conf", policy_text([server.port], ca=certs.ca, log=log),
              mode=policy_mode)
    permissive = world_dir / "permissive.conf"
    permissive.write_text(policy_text([server.port], mode="off"))
    permissive.chmod(0o644)
    client = world_dir / "careless"
    shutil.copy(CARELESS, client)
    client.chmod(client_mode)
    env = baseline_env()
    env.update(SMTPGUARD_POLICY=str(permissive), SMTPGUARD_MODE="off")
    res = etc.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                   client, "verify_none", "localhost", server.port, "starttls"], env)
    why = f"{describe(res)}\n--- root policy log\n{log.read_text() if log.exists() else ''}"
    if leaks:
        assert res.returncode == 0 and server.credentials() == [(USER, PASSWORD, True)], why
    else:
        assert server.credentials() == [] and server.transactions() == [], why
        assert res.returncode == 2 and "refused" in log.read_text(), why


# ---- constructor order -------------------------------------------------------------------

@pytest.mark.parametrize("shimmed", [False, True], ids=["without-shim", "with-shim"])
def test_a_constructor_running_before_the_shims_is_enforced(helpers, smtp_server, shim,
                                                            shimmed):
    """libearly.so's constructor resolves, connects and runs SSL_connect to an
    implicit-TLS port before the shim's constructor (LD_DEBUG shows the order)."""
    server = smtp_server("selfsigned", "implicit")
    env = shim([server.port], implicit=[server.port]) if shimmed else baseline_env()
    env.update(EARLY_PORT=str(server.port), LD_DEBUG="files")
    res = run([DEPLOY / "early_main"], env)
    if not shimmed:
        assert res.returncode == 0 and server.credentials() == [(USER, PASSWORD, True)], \
            describe(res)
        return
    inits = [line.rsplit("/", 1)[-1] for line in res.stderr.splitlines()
             if "calling init:" in line]
    # The session ran in libearly.so's initialiser, before the shim's: the
    # shim's comes later, or never when the refusal ends the process there.
    assert "libearly.so" in inits, inits
    assert LIB.name not in inits or inits.index("libearly.so") < inits.index(LIB.name), inits
    why = f"{describe(res)}\n--- shim log\n{env.log()}"
    assert server.credentials() == [] and server.transactions() == [], why
    assert res.returncode == 2, why


# ---- check -----------------------------------------------------------------------------

def _python_script(tmp):
    script = tmp / "mailer.py"
    script.write_text("#!/usr/bin/python3\nimport smtplib\n")
    script.chmod(0o755)
    return script


def _setuid_copy(tmp):
    shutil.copy(CARELESS, tmp / "careless-setuid")
    (tmp / "careless-setuid").chmod(0o4755)
    return tmp / "careless-setuid"


CHECKS = {   # program -> (verdict, reason)
    "openssl-client": (lambda tmp: CARELESS, "covered", "OpenSSL 3 (libssl.so.3)"),
    "static": (lambda tmp: DEPLOY / "static_hello", "not covered", "statically linked"),
    "go": (lambda tmp: DEPLOY / "fake_go", "not covered", "Go program"),
    "gnutls-msmtp": (lambda tmp: shutil.which("msmtp"), "covered", "GnuTLS (libgnutls.so.30)"),
    "openssl-1.1": (lambda tmp: BUILD / "legacy" / "careless11", "covered",
                    "OpenSSL 1.1 (libssl.so.1.1; past its upstream end of life"),
    "python-script": (_python_script, "covered",
                      "script for /usr/bin/python3; its _ssl module: OpenSSL 3"),
    "no-tls": (lambda tmp: DEPLOY / "workload", "covered", "no TLS library"),
    "setuid": (_setuid_copy, "partial", "setuid root: LD_PRELOAD"),
    "setuid-enabled": (_setuid_copy, "covered", "setuid root: protected through"),
}


@pytest.mark.parametrize("kind", CHECKS)
def test_check_tells_whether_a_program_is_covered(root, tmp_path, helpers, kind, request):
    make, verdict, reason = CHECKS[kind]
    if kind == "openssl-1.1":
        request.getfixturevalue("legacy")  # Debian 11's OpenSSL 1.1 (tests/test_legacy.py)
    program = make(tmp_path)
    assert program, f"{kind}: program missing (scripts/deps/deploy.txt)"
    if kind == "setuid-enabled":
        ok(enable(root))
    res = smtpguard("check", "--root", root, program)
    assert res.returncode == (0 if verdict == "covered" else 1), describe(res)
    name, said, why = res.stdout.rstrip("\n").split(": ", 2)
    assert (name, said) == (str(program), verdict) and reason in why, describe(res)


def test_check_takes_several_programs(helpers):
    res = smtpguard("check", CARELESS, "sh", DEPLOY / "static_hello", "no-such-program-here")
    assert res.returncode == 3, describe(res)     # 3: a program was not found
    verdicts = [line.split(": ")[1] for line in res.stdout.splitlines()]
    assert verdicts == ["covered", "covered", "not covered", "not covered"], describe(res)


# ---- make install / uninstall ----------------------------------------------------------

INSTALLED = {
    "usr/local/lib/smtpguard/libsmtpguard.so": 0o644,
    "usr/local/lib/smtpguard/libsmtpguard.so.sha256": 0o644,
    "usr/local/lib/smtpguard/smtpguard-report": 0o755,
    "usr/local/lib/smtpguard/smtpguard-probe": 0o755,
    "usr/local/lib/smtpguard/smtpguard-trust-index": 0o755,
    "etc/ca-certificates/update.d/smtpguard": 0o755,     # runs it after update-ca-certificates
    "usr/local/bin/smtpguard-policy": 0o755,
    "usr/local/share/man/man1/smtpguard-policy.1": 0o644,
    "usr/local/sbin/smtpguard": 0o755,
    "usr/local/share/man/man8/smtpguard.8": 0o644,
    "usr/local/share/man/man5/smtpguard.conf.5": 0o644,
    "etc/smtpguard/policy.conf": 0o644,
}


def make_into(dest, target):
    """make TARGET into DESTDIR with PREFIX=/usr/local; never rebuilds the library under
    the other tests' feet (-o: taken as up to date)."""
    with open(BUILD / ".make.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return run(["make", "-s", "-o", "build/libsmtpguard.so", "-o", "build/smtpguard-policy",
                    "-o", "build/smtpguard-trust-index", target, f"DESTDIR={dest}", "PREFIX=/usr/local"], baseline_env(),
                   timeout=120, cwd=REPO)


def files_under(dest):
    return {str(p.relative_to(dest)): stat.S_IMODE(p.stat().st_mode)
            for p in dest.rglob("*") if p.is_file()}


def test_make_install_and_uninstall(tmp_path):
    dest = tmp_path / "dest"
    ok(make_into(dest, "install"))
    assert files_under(dest) == INSTALLED
    assert (dest / "usr/local/lib/smtpguard/libsmtpguard.so").read_bytes() == OWN_LIB.read_bytes()
    policy = dest / "etc/smtpguard/policy.conf"
    assert policy.read_text() == (REPO / "policy" / "default.conf").read_text()

    policy.write_text("mode = audit\n")
    ok(make_into(dest, "install"))
    assert policy.read_text() == "mode = audit\n", "install replaced the administrator's policy"

    command = dest / "usr/local/sbin/smtpguard"
    assert "@LIBDIR@" not in command.read_text()
    ok(run([command, "enable", "--root", dest], baseline_env(), timeout=60))
    assert (dest / "etc/ld.so.preload").read_text() == "/usr/local/lib/smtpguard/libsmtpguard.so\n"
    refused = make_into(dest, "uninstall")
    assert refused.returncode != 0 and "disable" in refused.stderr, describe(refused)
    assert (dest / "usr/local/lib/smtpguard/libsmtpguard.so").exists()

    ok(run([command, "disable", "--root", dest], baseline_env()))
    ok(make_into(dest, "uninstall"))
    assert files_under(dest) == {"etc/smtpguard/policy.conf": 0o644}
    assert policy.read_text() == "mode = audit\n"
    assert not (dest / "usr/local/lib/smtpguard").exists()
