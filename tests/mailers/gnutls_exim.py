#!/usr/bin/python3
"""Exim 4 as an SMTP client, carelessly, from a private temporary setup.

    gnutls_exim.py EXIM PORT starttls|implicit MESSAGE_FILE

Delivers MESSAGE_FILE from sender@example.com to rcpt@example.com through the
smarthost localhost:PORT with the test credentials (AUTH PLAIN), TLS required
(STARTTLS, or TLS on connect for implicit) but the certificate not verified
(tls_verify_certificates unset). With SG_EXIM_DNS=ADDR (tests/test_identity.py) it
routes as a real MTA does instead: a dnslookup router finds the MX host of the
recipient's domain (SG_EXIM_TO, an address at a test domain) through the resolver at
ADDR port 53 (a private /etc/resolv.conf), with no SNI set. EXIM is an exim4 binary that is not installed
(scripts/fetch-debs). Exit 0 when exim delivered the message, 75 when it deferred
it, 1 otherwise; exim's log goes to stderr.

Nothing of the machine changes: the configuration, spool and logs live in a
temporary folder. The Debian binary insists on a user "Debian-exim", which it
becomes for remote deliveries: that user exists only in a private mount namespace
(unshare -m) where copies of /etc/passwd and /etc/group name it. Because the
delivery runs as that user, the smtpguard policy named by SMTPGUARD_POLICY (if any)
is handed over as a copy it can read: its ca_file and log paths point into the
temporary folder, and the log is appended to the original log afterwards. So are the exim binary and the
preloaded libraries (copies in the temporary folder, which anybody may enter): the
checkout may be in a directory that user cannot enter (a home directory of mode 0700,
a `mktemp -d` folder), and exim re-executes itself as that user.
"""
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FROM, TO = "sender@example.com", "rcpt@example.com"
USER, PASSWORD = "sguser", "Sg-S3cret-Pa55"
TEMPFAIL = 75

CONFIG = """\
exim_path = {exim}
spool_directory = {work}/spool
log_file_path = {work}/%slog
primary_hostname = careless.example
keep_environment = LD_PRELOAD : SMTPGUARD_POLICY
message_logs = false

begin routers
{router}
begin transports
remote_smtp:
  driver = smtp
  port = {port}
  allow_localhost
  hosts_require_tls = *
  hosts_require_auth = *
  tls_verify_certificates =
  {implicit}

begin retry
* * F,1m,1m

begin authenticators
plain:
  driver = plaintext
  public_name = PLAIN
  client_send = ^{user}^{password}
"""


def free_id(taken):
    return next(n for n in range(64100, 65000) if n not in taken)


def exim_identity(work):
    """Copies of /etc/passwd and /etc/group naming Debian-exim; returns (uid, gid)."""
    uid = free_id({p.pw_uid for p in pwd.getpwall()})
    gid = uid
    passwd, group = work / "passwd", work / "group"
    passwd.write_text(Path("/etc/passwd").read_text() +
                      f"Debian-exim:x:{uid}:{gid}:exim:{work}:/usr/sbin/nologin\n")
    group.write_text(Path("/etc/group").read_text() + f"Debian-exim:x:{gid}:\n")
    return uid, gid


def hand_over_policy(work):
    """A copy of the shim's policy that the exim user can read; returns the original
    log path (or None)."""
    original = os.environ.get("SMTPGUARD_POLICY")
    if not original:
        return None
    log = None
    lines = []
    for n, line in enumerate(Path(original).read_text().splitlines()):
        m = re.match(r"\s*(ca_file|log)\s*=\s*(.*?)\s*$", line)
        if m and m.group(1) == "ca_file":
            copy = work / f"ca-{n}.pem"
            shutil.copyfile(m.group(2), copy)
            line = f"ca_file = {copy}"
        elif m and m.group(2).startswith("file:"):
            log = m.group(2)[len("file:"):]
            line = f"log = file:{work}/smtpguard.log"
        lines.append(line)
    policy = work / "policy.conf"
    policy.write_text("\n".join(lines) + "\n")
    (work / "smtpguard.log").touch()
    os.chmod(work / "smtpguard.log", 0o666)
    os.environ["SMTPGUARD_POLICY"] = str(policy)
    return log


SMARTHOST = """\
smarthost:
  driver = manualroute
  route_list = * localhost byname
  self = send
  transport = remote_smtp
  no_more
"""

DNSLOOKUP = """\
dnslookup:
  driver = dnslookup
  self = send
  transport = remote_smtp
  no_more
"""


def hand_over_binaries(exim, work):
    """Copies of EXIM and of the LD_PRELOAD libraries in WORK (mode 0755), where the exim
    user can execute and map them whatever the checkout's directory allows; returns
    the exim copy. LD_PRELOAD names the copies."""
    copy = work / "exim4"
    shutil.copy2(exim, copy)
    os.chmod(copy, 0o755)
    preload = []
    for n, lib in enumerate(os.environ.get("LD_PRELOAD", "").replace(":", " ").split()):
        into = work / f"preload-{n}"
        into.mkdir(mode=0o755)
        shutil.copy2(lib, into / Path(lib).name)
        os.chmod(into / Path(lib).name, 0o644)
        preload.append(str(into / Path(lib).name))
    if preload:
        os.environ["LD_PRELOAD"] = " ".join(preload)
    return copy


def run_exim(exim, work, message, to=TO):
    mounts = ("mount --bind \"$1\" /etc/passwd && mount --bind \"$2\" /etc/group && "
              "shift 2 && exec \"$@\"")
    resolv = work / "resolv.conf"   # SG_EXIM_DNS: the test resolver
    if resolv.exists():
        mounts = "mount --bind \"$1\" /etc/resolv.conf && shift && " + mounts
    cmd = ["unshare", "-m", "--", "sh", "-c", mounts, "sh",
           *([resolv] if resolv.exists() else []), work / "passwd", work / "group",
           exim, "-C", work / "exim.conf", "-odf", "-oi", "-f", FROM, to]
    with open(message, "rb") as stdin:
        return subprocess.run([str(c) for c in cmd], stdin=stdin, timeout=60).returncode


def main():
    exim, port, mode, message = sys.argv[1:5]
    work = Path(tempfile.mkdtemp(prefix="sg-exim-"))
    try:
        os.chmod(work, 0o755)
        uid, gid = exim_identity(work)
        (work / "spool").mkdir()
        for path in (work, work / "spool"):   # exim writes its logs as that user
            os.chown(path, uid, gid)
        log = hand_over_policy(work)
        exim = hand_over_binaries(exim, work)
        implicit = "protocol = smtps" if mode == "implicit" else ""
        dns = os.environ.get("SG_EXIM_DNS")
        to = os.environ.get("SG_EXIM_TO", TO) if dns else TO
        if dns:
            (work / "resolv.conf").write_text(f"nameserver {dns}\noptions attempts:1 timeout:5\n")
        (work / "exim.conf").write_text(CONFIG.format(
            exim=exim, work=work, port=port, implicit=implicit, user=USER,
            password=PASSWORD, router=DNSLOOKUP if dns else SMARTHOST))
        code = run_exim(exim, work, message, to)
        mainlog = (work / "mainlog").read_text() if (work / "mainlog").exists() else ""
        sys.stderr.write(mainlog)
        if log:
            with open(log, "a") as f:
                f.write((work / "smtpguard.log").read_text())
        if code:
            return 1
        if re.search(rf" => {re.escape(to)} ", mainlog):
            return 0
        return TEMPFAIL if re.search(rf" == {re.escape(to)} ", mainlog) else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
