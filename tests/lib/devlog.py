"""Run a command with a private /dev/log (and optionally journald's socket), inside a
private mount namespace, and record every datagram the command sends there.

usage (as root): SG_OUTER_MNTNS=$(readlink /proc/self/ns/mnt) unshare -m --propagation
                 private /usr/bin/python3 devlog.py OUT.json syslog|journal|none TIMEOUT
                 -- COMMAND ARGS...

/dev is replaced by a tmpfs holding the usual device nodes (made with mknod) and, for
`syslog`, a datagram socket at /dev/log; /run is replaced by a tmpfs, holding journald's
native socket for `journal`. Nothing outside the namespace
changes. OUT.json gets {"rc": exit status, "stdout", "stderr", "datagrams": [text]}.
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import stat
import threading

# name -> (major, minor): made with mknod on the namespace's own tmpfs. Nothing from the
# real /dev is bind-mounted: a bind mount of devtmpfs would let any cleanup reach the
# machine's real device directory.
NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
         "urandom": (1, 9), "tty": (5, 0)}


def mount(*args):
    subprocess.run(["mount", *args], check=True, timeout=10)


def private_dev():
    mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", "/dev")
    for name, (major, minor) in NODES.items():
        os.mknod(f"/dev/{name}", 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    os.symlink("/proc/self/fd", "/dev/fd")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        os.symlink(f"/proc/self/fd/{i}", f"/dev/{name}")


def private_run():
    """A tmpfs on /run (no directory is created outside the namespace)."""
    mount("-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run")
    os.makedirs("/run/systemd/journal")


def collect(sock, out, stop):
    sock.settimeout(0.2)
    while True:   # after stop, until the queue is empty
        try:
            out.append(sock.recv(65536).decode("utf-8", "replace"))
        except socket.timeout:
            if stop.is_set():
                return
        except OSError:
            return


def main():
    out_path, kind, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    cmd = sys.argv[sys.argv.index("--") + 1:]
    outer = os.environ.get("SG_OUTER_MNTNS")
    if not outer or os.readlink("/proc/self/ns/mnt") == outer:
        sys.exit("devlog.py: not in a private mount namespace (run it under unshare -m, "
                 "with SG_OUTER_MNTNS set to the caller's /proc/self/ns/mnt)")
    if True:   # everything below happens inside the private namespace only
        private_dev()
        private_run()
        datagrams, stop, sock = [], threading.Event(), None
        if kind in ("syslog", "journal"):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind("/dev/log" if kind == "syslog" else "/run/systemd/journal/socket")
            os.chmod(sock.getsockname(), 0o666)
        reader = threading.Thread(target=collect, args=(sock, datagrams, stop), daemon=True)
        if sock:
            reader.start()
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                                 timeout=timeout, stdin=subprocess.DEVNULL)
            rc, so, se = res.returncode, res.stdout, res.stderr
        except subprocess.TimeoutExpired as e:
            rc, so, se = -999, str(e.stdout), str(e.stderr)
        if sock:
            stop.set()
            reader.join(2)
        with open(out_path, "w") as f:
            json.dump({"rc": rc, "stdout": so, "stderr": se, "datagrams": datagrams}, f)


if __name__ == "__main__":
    main()


def record(tmp_path, kind, cmd, env, timeout=20):
    """From a test: run cmd (with env) under this script in a private mount namespace;
    returns the recorded dict. Skips the test where that cannot be done (not root)."""
    import pytest   # only when used from a test
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    out = os.path.join(str(tmp_path), f"devlog-{kind}-{len(os.listdir(str(tmp_path)))}.json")
    argv = ["unshare", "-m", "--propagation", "private", sys.executable, __file__,
            out, kind, str(timeout), "--", *map(str, cmd)]
    outer = dict(env, SG_OUTER_MNTNS=os.readlink("/proc/self/ns/mnt"))
    res = subprocess.run(argv, env=outer, capture_output=True, text=True, timeout=timeout + 30)
    assert res.returncode == 0 and os.path.exists(out), f"{argv}\n{res.stdout}\n{res.stderr}"
    with open(out) as f:
        return json.load(f)
