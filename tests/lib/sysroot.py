"""A private /etc for tests: commands run in a new mount namespace where an overlay is
mounted over /etc, so that /etc/ld.so.preload and /etc/smtpguard/policy.conf can be
written there without touching the machine's own.

Why an overlay and not a bind mount over /etc/ld.so.preload: a bind mount needs the file
(and /etc/smtpguard) to exist on the machine, and `smtpguard enable` replaces the file by
rename(2), which fails on a mount point. The overlay's upper directory (UPPER) receives
every change; files put into UPPER beforehand (UPPER/smtpguard/policy.conf) appear in
/etc. Each command gets its own namespace (which ends with it) and its own work
directory; the mount happens before the command starts, so the mount itself never runs
under the preload. Needs root (CAP_SYS_ADMIN) and overlayfs.
"""
import os
import shutil
import tempfile
from pathlib import Path

from .runner import run

# $1 upper, $2 work, then the command.
_MOUNT = ('mount -t overlay smtpguard-etc -o "lowerdir=/etc,upperdir=$1,workdir=$2,'
          'index=off" /etc && shift 2 && exec "$@"')


def unavailable():
    """Why private /etc namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "needs root (mount namespaces, overlayfs, setuid files)"
    if not shutil.which("unshare"):
        return "needs unshare (util-linux)"
    return None


class EtcOverlay:
    def __init__(self, base):
        self.base = Path(base)
        self.upper = self.base / "etc-upper"
        self.upper.mkdir(parents=True)

    def argv(self, cmd):
        work = tempfile.mkdtemp(dir=self.base, prefix="etc-work-")
        return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", _MOUNT,
                "sh", str(self.upper), work, *map(str, cmd)]

    def run(self, cmd, env, input=None, timeout=30, cwd=None):
        """runner.run of cmd with the private /etc."""
        return run(self.argv(cmd), env, input=input, timeout=timeout, cwd=cwd)

    def path(self, name):
        """Where /etc/NAME lives in the upper directory."""
        return self.upper / name

    def write(self, name, text, mode=0o644):
        """Put /etc/NAME into the private /etc, owned by the caller (root)."""
        path = self.path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.parent.chmod(0o755)
        path.write_text(text)
        path.chmod(mode)
        return path


# $1 the base directory, $2 a fresh work directory, $3 the directories, then the command.
_MOUNT_ALL = ('for d in $3; do mkdir -p "$2/$d" && mount -t overlay "smtpguard-$d" -o '
              '"lowerdir=/$d,upperdir=$1/$d,workdir=$2/$d,index=off" "/$d" || exit 125; '
              'done; shift 3 && exec "$@"')


class SystemOverlay(EtcOverlay):
    """Like EtcOverlay, with /usr and /var overlaid as well: a throwaway copy of the
    system in which packages can be installed, upgraded and purged with dpkg (its
    database is in /var/lib/dpkg) while the machine's own files stay as they are.
    BASE/DIR receives the changes to /DIR; path(NAME) is /etc/NAME there."""
    DIRS = ("usr", "var", "etc")   # /etc last: its ld.so.preload may name a file in /usr

    def __init__(self, base):
        super().__init__(base)
        self.upper = self.base / "etc"
        for d in self.DIRS:
            (self.base / d).mkdir(exist_ok=True)

    def argv(self, cmd):
        work = tempfile.mkdtemp(dir=self.base, prefix="work-")
        return ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
                _MOUNT_ALL, "sh", str(self.base), work, " ".join(self.DIRS), *map(str, cmd)]
