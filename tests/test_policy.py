"""The policy parser, through the smtpguard-policy checker (build/smtpguard-policy).

Every malformed or hostile file must be refused with exit status 1 and a message naming
FILE:LINE (FILE: for problems with the file as a whole), and nothing on stdout: a broken
policy makes the shim fail closed, so the checker must never print a policy for one.
"""
import base64
import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHECKER = REPO / "build" / "smtpguard-policy"
POLICIES = REPO / "tests" / "policies"
FILE_MAX = 256 * 1024
LINE_MAX = 4096
FULL_FILE = (b"#" * 1023 + b"\n") * (FILE_MAX // 1024)  # valid, exactly FILE_MAX bytes
PIN = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
PIN2 = "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
NOBODY = 65534


@pytest.fixture(scope="module")
def checker():
    """Build the checker once; the lock keeps parallel (xdist) workers from racing make."""
    (REPO / "build").mkdir(exist_ok=True)
    with open(REPO / "build" / ".policy-test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run(["make", "-s", "build/smtpguard-policy"], cwd=REPO, check=True, timeout=300)
    return CHECKER


def run(checker, *args, env=None, preexec_fn=None):
    """Run the checker with a timeout (a FIFO must not hang it) and without the caller's
    SMTPGUARD_POLICY; sanitizer reports fail the test whatever the exit status."""
    full_env = {k: v for k, v in os.environ.items() if k != "SMTPGUARD_POLICY"}
    full_env.update(env or {})
    full_env.setdefault("ASAN_OPTIONS", "exitcode=99")
    full_env.setdefault("UBSAN_OPTIONS", "halt_on_error=1:exitcode=98:print_stacktrace=1")
    r = subprocess.run([str(checker), *map(str, args)], capture_output=True, text=True,
                       errors="replace", timeout=10, env=full_env, preexec_fn=preexec_fn)
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    return r


def policy_lines(stdout):
    """The effective policy without comments: the checker's header names the source."""
    return [line for line in stdout.splitlines() if not line.startswith("#")]


# ---- Malformed and hostile files ----------------------------------------------------

def sections(n):
    return "".join(f"[destination host{i}.example]\n" for i in range(n)).encode()


def directory(tmp):
    d = tmp / "policy.d"
    d.mkdir()
    return d


def fifo(tmp):
    f = tmp / "policy.fifo"
    os.mkfifo(f)
    return f


def symlink_loop(tmp):
    (tmp / "a.conf").symlink_to(tmp / "b.conf")
    (tmp / "b.conf").symlink_to(tmp / "a.conf")
    return tmp / "a.conf"


def under_a_file(tmp):
    (tmp / "plain").write_text("mode = enforce\n")
    return tmp / "plain" / "policy.conf"


def oversized(tmp):
    # Valid content (comments), one byte over the limit: size alone must be refused.
    f = tmp / "big.conf"
    f.write_bytes(FULL_FILE + b"\n")
    return f


# (id, file content or a function making the path, line or None, message)
BAD = [
    ("unknown-key-guess", b"cipher = ALL\n", 1, "unknown key 'cipher' (did you mean 'ciphers'?)"),
    ("unknown-key", b"mode = enforce\nfrobnicate = 1\n", 2, "unknown key 'frobnicate'"),
    ("key-upper-case", b"MODE = off\n", 1, "unknown key 'MODE' (did you mean 'mode'?)"),
    ("bad-mode", b"mode = strict\n", 1, "bad value 'strict' for mode: expected enforce, audit or off"),
    ("bad-yes-no", b"require_tls = maybe\n", 1, "bad value 'maybe' for require_tls: expected yes or no"),
    ("tls11", b"min_protocol = TLSv1.1\n", 1, "min_protocol TLSv1.1 is below the floor TLSv1.2"),
    ("tls10", b"\n\nmin_protocol = TLSv1.0\n", 3, "min_protocol TLSv1.0 is below the floor TLSv1.2"),
    ("sslv3", b"min_protocol = SSLv3\n", 1, "min_protocol SSLv3 is below the floor TLSv1.2"),
    ("bad-protocol", b"min_protocol = TLSv2\n", 1,
     "bad value 'TLSv2' for min_protocol: expected TLSv1.2 or TLSv1.3"),
    ("missing-equals", b"mode enforce\n", 1, "expected 'key = value'"),
    ("missing-key", b"= enforce\n", 1, "expected 'key = value'"),
    ("missing-value", b"mode =   # nothing\n", 1, "missing value for 'mode'"),
    ("bad-port-word", b"smtp_ports = 25 seventy\n", 1, "bad port 'seventy' in smtp_ports"),
    ("port-zero", b"smtp_ports = 0\n", 1, "bad port '0' in smtp_ports"),
    ("port-too-big", b"smtp_ports = 25,65536\n", 1, "bad port '65536' in smtp_ports"),
    ("port-negative", b"implicit_tls_ports = -465\n", 1, "bad port '-465' in implicit_tls_ports"),
    ("port-overflow", b"smtp_ports = 99999999999999999999999\n", 1, "bad port '99999999999"),
    ("cipher-bad-char", b"ciphers = ALL;rm -rf /\n", 1, "bad character ';' in ciphers"),
    ("suites-space", b"ciphersuites = TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384\n", 1,
     "bad character ' ' in ciphersuites"),
    ("ciphers-too-long", b"ciphers = " + b"A" * 600 + b"\n", 1,
     "value for ciphers is too long (max 511 bytes)"),
    ("relative-ca-file", b"ca_file = certs/ca.pem\n", 1,
     "ca_file must be an absolute path, got 'certs/ca.pem'"),
    ("relative-ca-path", b"ca_path = ./certs\n", 1, "ca_path must be an absolute path, got './certs'"),
    ("bad-log", b"log = /var/log/sg.log\n", 1,
     "bad value '/var/log/sg.log' for log: expected syslog, stderr or file:/absolute/path"),
    ("relative-log-file", b"log = file:sg.log\n", 1, "log file must be an absolute path, got 'sg.log'"),
    ("bad-log-format", b"log_format = xml\n", 1, "bad value 'xml' for log_format: expected text or json"),
    ("unknown-section", b"[foo]\n", 1, "unknown section '[foo]'"),
    ("global-section", b"mode = audit\n[global]\n", 2, "unknown section '[global]'"),
    ("destination-no-host", b"[destination]\n", 1, "[destination] needs a host"),
    ("header-unterminated", b"[destination a.example\n", 1,
     "section header '[destination a.example' does not end with ']'"),
    ("bad-host", b"[destination bad_host!.example]\n", 1, "bad host name 'bad_host!.example'"),
    ("header-port-zero", b"[destination a.example:0]\n", 1, "bad port '0' in section header"),
    ("bad-ipv6", b"[destination [zz::1]:25]\n", 1, "bad IPv6 address 'zz::1'"),
    ("bracketed-name", b"[destination [a.example]:25]\n", 1, "bad IPv6 address 'a.example'"),
    ("section-key-global", b"verify_name = a.example\n", 1,
     "'verify_name' is only valid inside a [destination ...] section"),
    ("pin-global", f"pin_sha256 = {PIN}\n".encode(), 1,
     "'pin_sha256' is only valid inside a [destination ...] section"),
    ("global-key-in-section", b"[destination a.example]\nsmtp_ports = 25\n", 2,
     "'smtp_ports' is a global key: move it above the first [destination ...] section"),
    ("duplicate-key", b"mode = audit\n\nmode = off\n", 3, "duplicate key 'mode' (first set at line 1)"),
    ("duplicate-key-section", b"[destination a.example]\nmode = off\nmode = audit\n", 3,
     "duplicate key 'mode' (first set at line 2)"),
    ("duplicate-section", b"[destination A.example:25]\n[destination a.example.:25]\n", 2,
     "duplicate section: the same destination as line 1"),
    ("duplicate-v6-section", b"[destination ::1]\n[destination 0:0::1]\n", 2,
     "duplicate section: the same destination as line 1"),
    ("pin-not-base64", b"[destination a.example]\npin_sha256 = hello\n", 2,
     "pin_sha256 is not base64 of 32 bytes"),
    ("pin-sha1-length", b"[destination a.example]\npin_sha256 = "
     + base64.b64encode(bytes(20)) + b"\n", 2, "pin_sha256 is not base64 of 32 bytes"),
    ("pin-unpadded", f"[destination a.example]\npin_sha256 = {PIN[:-1]}\n".encode(), 2,
     "pin_sha256 is not base64 of 32 bytes"),
    ("too-many-pins", b"[destination a.example]\n" + f"pin_sha256 = {PIN}\n".encode() * 5, 6,
     "too many pin_sha256 in one section (max 4)"),
    ("too-many-destinations", sections(65), 65, "too many destinations (max 64)"),
    ("huge-line", b"mode = audit\n# " + b"x" * 5000 + b"\n", 2, "line too long (over 4096 bytes)"),
    ("huge-line-no-newline", b"a" * (LINE_MAX + 1), 1, "line too long (over 4096 bytes)"),
    ("nul-byte", b"mode = enforce\nmode\0 = off\n", 2, "binary data (NUL byte)"),
    ("nul-in-comment", b"# harmless?\0\n", 1, "binary data (NUL byte)"),
    ("elf-junk", b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00>\x00", 1,
     "binary data (control character)"),
    ("terminal-escape", b"mode = audit\x1b[2J\n", 1, "binary data (control character)"),
    ("bare-cr", b"mode = audit\rmode = off\n", 1, "binary data (control character)"),
    ("file-too-large", oversized, None, "file too large (over 262144 bytes)"),
    ("directory", directory, None, "not a regular file"),
    ("fifo", fifo, None, "not a regular file"),
    ("device", lambda tmp: Path("/dev/zero"), None, "not a regular file"),
    ("symlink-loop", symlink_loop, None, "cannot open: Too many levels of symbolic links"),
    ("path-under-a-file", under_a_file, None, "cannot open: Not a directory"),
]


@pytest.mark.parametrize("content,line,message", [pytest.param(*row[1:], id=row[0]) for row in BAD])
def test_bad_policy_refused(checker, tmp_path, content, line, message):
    if callable(content):
        path = content(tmp_path)
    else:
        path = tmp_path / "policy.conf"
        path.write_bytes(content)
    r = run(checker, path)
    assert r.returncode == 1, r
    where = f"{path}:{line}: " if line else f"{path}: "
    assert where + message in r.stderr
    assert r.stderr.count("\n") == 1, "one error line"
    assert r.stdout == "", "no policy printed for a broken file"


@pytest.fixture
def world_dir():
    """A directory another user can reach: pytest's tmp_path sits under a 0700 dir."""
    d = Path(tempfile.mkdtemp(prefix="sg-policy-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d)


def test_unreadable_file_refused(checker, world_dir):
    """chmod 000 does not stop root, so as root the checker runs as nobody."""
    path = world_dir / "policy.conf"
    path.write_text("mode = enforce\n")
    path.chmod(0)
    drop = None
    if os.geteuid() == 0:
        # A copy nobody can execute: the checkout may sit in a directory of mode 0700.
        checker = world_dir / CHECKER.name
        shutil.copy2(CHECKER, checker)
        checker.chmod(0o755)

        def drop():
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
    r = run(checker, path, preexec_fn=drop)
    assert r.returncode == 1, r
    assert f"{path}: cannot open: Permission denied" in r.stderr
    assert r.stdout == ""


@pytest.mark.parametrize("mode,owner,trusted", [
    (0o644, 0, True), (0o600, 0, True),
    (0o664, 0, False), (0o646, 0, False), (0o644, NOBODY, False),
])
def test_privileged_needs_root_owned_file(checker, tmp_path, mode, owner, trusted):
    path = tmp_path / "policy.conf"
    path.write_text("mode = off\n")
    path.chmod(mode)
    if owner != os.geteuid():
        if os.geteuid() != 0:
            pytest.skip("needs root to give the file away")
        os.chown(path, owner, -1)
    if os.stat(path).st_uid != 0 and trusted:
        pytest.skip("a trusted file must be owned by root")
    r = run(checker, "--privileged", path)
    if trusted:
        assert r.returncode == 0 and "mode = off" in r.stdout
        return
    # Ignored, not broken: the defaults apply, and the checker says why.
    assert r.returncode == 1
    assert (f"{path}: ignored for a privileged process: not owned by root "
            "or writable by group/others") in r.stderr
    assert "mode = enforce" in r.stdout


# ---- Good files -------------------------------------------------------------------

DEFAULTS = [
    "mode = enforce",
    "smtp_ports = 25 465 587 2525",
    "implicit_tls_ports = 465",
    "min_protocol = TLSv1.2",
    "ciphers = ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL",
    "ciphersuites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
    "ca_file = /etc/ssl/certs/ca-certificates.crt",
    "require_tls = yes",
    "unverified_tls = refuse",
    "log = syslog",
    "log_format = text",
]


def parse(checker, tmp_path, text):
    path = tmp_path / "policy.conf"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    r = run(checker, path)
    assert r.returncode == 0 and r.stderr == "", r
    return policy_lines(r.stdout)


def value(lines, key):
    return next(line.split(" = ", 1)[1] for line in lines if line.startswith(key + " = "))


def test_absent_file_gives_defaults(checker, tmp_path):
    path = tmp_path / "missing.conf"
    r = run(checker, path)
    assert r.returncode == 0
    assert r.stderr == f"{path}: not found, built-in defaults apply\n"
    assert policy_lines(r.stdout) == DEFAULTS
    assert "# ca_path is not set" in r.stdout


def test_environment_names_the_file(checker, tmp_path):
    path = tmp_path / "env.conf"
    path.write_text("mode = audit\n")
    r = run(checker, env={"SMTPGUARD_POLICY": str(path)})
    assert r.returncode == 0 and "mode = audit" in r.stdout
    assert r.stdout.startswith(f"# effective smtpguard policy from {path}\n")


def test_default_conf_round_trip(checker, tmp_path):
    """The shipped default.conf says exactly what the built-in defaults are."""
    shipped = run(checker, REPO / "policy" / "default.conf")
    builtin = run(checker, tmp_path / "missing.conf")
    assert shipped.returncode == 0 and shipped.stderr == ""
    assert policy_lines(shipped.stdout) == policy_lines(builtin.stdout) == DEFAULTS


def test_empty_and_comment_only_files_give_defaults(checker, tmp_path):
    assert parse(checker, tmp_path, "") == DEFAULTS
    assert parse(checker, tmp_path, "# nothing\n\n   \t\n") == DEFAULTS


def test_formatting_tolerated(checker):
    r = run(checker, POLICIES / "formatting.conf")
    assert r.returncode == 0, r
    lines = policy_lines(r.stdout)
    assert value(lines, "mode") == "audit"
    assert value(lines, "smtp_ports") == "25 465 587 2525 10025"
    assert value(lines, "log") == "file:/var/log/smtp#guard.log"
    assert value(lines, "require_tls") == "no"
    assert value(lines, "min_protocol") == "TLSv1.3"
    assert value(lines, "log_format") == "json"


def test_crlf_and_byte_order_mark(checker, tmp_path):
    lines = parse(checker, tmp_path, b"\xef\xbb\xbfmode = audit\r\nlog = stderr\r\n")
    assert value(lines, "mode") == "audit" and value(lines, "log") == "stderr"


def test_ports_replace_defaults(checker, tmp_path):
    lines = parse(checker, tmp_path, "smtp_ports = 25\n")
    # 465 stays an SMTP port only because it is still the implicit TLS port.
    assert value(lines, "smtp_ports") == "25 465"
    assert value(lines, "implicit_tls_ports") == "465"
    lines = parse(checker, tmp_path, "smtp_ports = 25\nimplicit_tls_ports = none\n")
    assert value(lines, "smtp_ports") == "25"
    assert value(lines, "implicit_tls_ports") == "none"


def test_ports_in_every_block(checker, tmp_path):
    """Ports at the edges of the blocks of 2,048 a load tracks, the default set
    replaced, merged with the implicit TLS and proxy ports."""
    lines = parse(checker, tmp_path, "smtp_ports = 2047 4096 63488\n"
                  "implicit_tls_ports = 2048 65535\nproxy_ports = 1 40000\n")
    assert value(lines, "smtp_ports") == "1 2047 2048 4096 40000 63488 65535"
    assert value(lines, "implicit_tls_ports") == "2048 65535"


@pytest.mark.parametrize("text", [
    "smtp_ports = 587\nimplicit_tls_ports = 10465 465\n",
    "implicit_tls_ports = 10465,465\nsmtp_ports = 587\n",  # order does not matter
])
def test_implicit_ports_are_smtp_ports(checker, tmp_path, text):
    lines = parse(checker, tmp_path, text)
    assert value(lines, "smtp_ports") == "465 587 10465"
    assert value(lines, "implicit_tls_ports") == "465 10465"


DESTINATIONS = """\
mode = audit
smtp_ports = 25 465 587 2525
implicit_tls_ports = 465
min_protocol = TLSv1.2
ciphers = ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL
ciphersuites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256
ca_file = /etc/ssl/certs/ca-certificates.crt
ca_path = /etc/ssl/certs
require_tls = yes
unverified_tls = refuse
log = syslog
log_format = text

[destination mail.example.com]
verify_name = mx1.example.com
pin_sha256 = {PIN}
pin_sha256 = {PIN2}

[destination mail.example.com:587]
mode = enforce
ca_file = /etc/smtpguard/corp-ca.pem

[destination 192.0.2.25:25]
mode = off

[destination 2001:db8::25]
ca_file = /etc/smtpguard/v6.pem

[destination [2001:db8::25]:465]
mode = enforce
""".format(PIN=PIN, PIN2=PIN2)


def test_destination_sections(checker):
    r = run(checker, POLICIES / "destinations.conf")
    assert r.returncode == 0, r
    assert "\n".join(policy_lines(r.stdout)) + "\n" == DESTINATIONS


def test_format_reparses_to_itself(checker, tmp_path):
    first = run(checker, POLICIES / "destinations.conf").stdout
    assert parse(checker, tmp_path, first) == policy_lines(first)


def test_limits_inclusive(checker, tmp_path):
    """Exactly at each limit is fine; the bad table covers one past it."""
    line = b"#" * LINE_MAX + b"\n"
    assert parse(checker, tmp_path, line) == DEFAULTS
    assert len(FULL_FILE) == FILE_MAX
    assert parse(checker, tmp_path, FULL_FILE) == DEFAULTS
    pins = "[destination a.example]\n" + f"pin_sha256 = {PIN}\n" * 4
    assert parse(checker, tmp_path, pins).count(f"pin_sha256 = {PIN}") == 4
    assert len([x for x in parse(checker, tmp_path, sections(64)) if x.startswith("[")]) == 64


def test_shipped_examples_parse(checker):
    examples = sorted((REPO / "policy" / "examples").glob("*.conf"))
    assert examples
    for path in examples:
        r = run(checker, path)
        assert r.returncode == 0 and r.stderr == "", (path, r.stderr)


# ---- Matching: which section applies to a connection ------------------------------

MATCH_POLICY = """\
ca_file = /global.pem
[destination mail.example.com]
mode = audit
[destination mail.example.com:587]
mode = off
[destination 192.0.2.1]
verify_name = by-address.example
[destination 192.0.2.1:25]
ca_path = /addr-port
[destination 2001:db8::1]
mode = off
"""


@pytest.mark.parametrize("host,addr,port,section,mode", [
    ("mail.example.com", "198.51.100.9", 25, 2, "audit"),    # host, any port
    ("MAIL.Example.COM.", "198.51.100.9", 587, 4, "off"),    # host and port; case, dot
    ("mail.example.com", "192.0.2.1", 25, 2, "audit"),       # host beats address+port
    ("other.example", "192.0.2.1", 25, 8, "enforce"),        # address and port
    ("other.example", "192.0.2.1", 587, 6, "enforce"),       # address, any port
    ("", "::ffff:192.0.2.1", 465, 6, "enforce"),             # v4-mapped peer
    ("", "2001:DB8:0::1", 25, 10, "off"),                    # canonical v6
    ("other.example", "198.51.100.9", 25, "none", "enforce"),
])
def test_match(checker, tmp_path, host, addr, port, section, mode):
    path = tmp_path / "policy.conf"
    path.write_text(MATCH_POLICY)
    r = run(checker, "--match", host, addr, port, path)
    assert r.returncode == 0, r
    got = dict(line.split(" = ", 1) for line in r.stdout.rstrip("\n").split("\n"))
    assert got["section"] == str(section) and got["mode"] == mode


def test_section_trust_store_replaces_global(checker, tmp_path):
    path = tmp_path / "policy.conf"
    path.write_text(MATCH_POLICY)
    r = run(checker, "--match", "x.example", "192.0.2.1", 25, path)
    assert "ca_file = \n" in r.stdout and "ca_path = /addr-port\n" in r.stdout
    r = run(checker, "--match", "x.example", "192.0.2.1", 587, path)
    assert "section = 6\n" in r.stdout and "ca_file = /global.pem\n" in r.stdout


def test_match_outside_smtp_ports_is_untouched(checker, tmp_path):
    """The library never looks at a port outside smtp_ports, a section or not."""
    path = tmp_path / "policy.conf"
    path.write_text(MATCH_POLICY)
    r = run(checker, "--match", "x.example", "192.0.2.1", 26, path)
    assert r.returncode == 0, r
    got = dict(line.split(" = ", 1) for line in r.stdout.rstrip("\n").split("\n"))
    assert got["smtp_port"] == "no" and got["note"] == "port 26: not an SMTP port: untouched", r
    r = run(checker, "--match", "x.example", "192.0.2.1", 25, path)
    assert "note = " not in r.stdout and "smtp_port = yes\n" in r.stdout, r


def test_usage(checker):
    assert run(checker, "--bogus").returncode == 2
    assert run(checker, "a", "b").returncode == 2
    assert run(checker, "--help").returncode == 0
