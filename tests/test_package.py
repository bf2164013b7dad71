"""The Debian package (make deb: debian/, scripts/build-deb): its files, lintian, and
its life on a system: install (the trust index prepared, refreshed by the hook after
update-ca-certificates), enable, a careless mailer refused by a hostile server and
delivering to a good one, upgrade while enabled, disable, remove, purge. And make
install / make uninstall on such a system.

The system is a throwaway one: a mount namespace with overlays over /etc, /usr and /var
(lib/sysroot.py SystemOverlay), where dpkg installs for real, with its own database and
its own /etc/ld.so.preload. The machine's own stay as they were (checked).
"""
import fcntl
import hashlib
import json
import os
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from lib.constants import PASSWORD, USER
from lib.runner import CLIENTS, REPO, baseline_env, describe, policy_text, run
from lib import sanitize
from lib.sysroot import SystemOverlay, unavailable

TOOLS = ("dpkg-buildpackage", "dh", "lintian", "dpkg-architecture")
MISSING = [t for t in TOOLS if not shutil.which(t)]
pytestmark = [
    pytest.mark.skipif(bool(MISSING), reason=f"packaging tools missing: {MISSING}"),
    pytest.mark.skipif(sanitize.ENABLED, reason="the package is the release build"),
]
needs_namespaces = pytest.mark.skipif(unavailable() is not None, reason=str(unavailable()))

VERSION = (REPO / "VERSION").read_text().strip()
UPGRADE = VERSION + "+test1"          # a rebuilt package, the version bumped
CARELESS = CLIENTS / "careless"


def arch(var):
    return subprocess.run(["dpkg-architecture", f"-q{var}"], capture_output=True, text=True,
                          check=True).stdout.strip()


MULTIARCH = arch("DEB_HOST_MULTIARCH") if not MISSING else "?"
LIBDIR = f"/usr/lib/{MULTIARCH}/smtpguard"
LIB = f"{LIBDIR}/libsmtpguard.so"
HOOK = "/etc/ca-certificates/update.d/smtpguard"
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
CACHE = "/var/cache/smtpguard"
FILES = {   # the package's files (directories aside), with their modes
    "etc/smtpguard/policy.conf": 0o644,
    HOOK.lstrip("/"): 0o755,
    f"usr/lib/{MULTIARCH}/smtpguard/smtpguard-trust-index": 0o755,
    f"usr/lib/{MULTIARCH}/smtpguard/libsmtpguard.so": 0o644,
    f"usr/lib/{MULTIARCH}/smtpguard/libsmtpguard.so.sha256": 0o644,
    f"usr/lib/{MULTIARCH}/smtpguard/smtpguard-report": 0o755,
    f"usr/lib/{MULTIARCH}/smtpguard/smtpguard-probe": 0o755,
    "usr/bin/smtpguard-policy": 0o755,
    "usr/sbin/smtpguard": 0o755,
    "usr/share/man/man1/smtpguard-policy.1.gz": 0o644,
    "usr/share/man/man5/smtpguard.conf.5.gz": 0o644,
    "usr/share/man/man8/smtpguard.8.gz": 0o644,
    "usr/share/doc/smtpguard/changelog.gz": 0o644,
    "usr/share/doc/smtpguard/copyright": 0o644,
}


def ok(res):
    assert res.returncode == 0, describe(res)
    return res


@pytest.fixture(scope="session")
def debs(tmp_path_factory):
    """The package of this tree and a rebuilt one (UPGRADE): built once per test session,
    whichever xdist worker comes first (a lock in the session's temporary directory)."""
    base = tmp_path_factory.getbasetemp()     # xdist: one per worker, in the session's
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    out = base / "debs"
    out.mkdir(exist_ok=True)
    built = {}
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for version in (VERSION, UPGRADE):
            dest = out / version
            deb = dest / f"smtpguard_{version}_{arch('DEB_HOST_ARCH')}.deb"
            if not deb.exists():
                cmd = [REPO / "scripts" / "build-deb", dest]
                res = run(cmd + ([version] if version != VERSION else []), baseline_env(),
                          timeout=300)
                assert res.returncode == 0 and deb.exists(), describe(res)
            built[version] = deb
    return built


def contents(deb):
    """{path: mode} of the regular files in a .deb."""
    res = subprocess.run(f"dpkg-deb --fsys-tarfile '{deb}' | tar -tvf -", shell=True,
                         capture_output=True, text=True, timeout=60, check=True)
    files = {}
    for line in res.stdout.splitlines():
        perms, *_, name = line.split()
        if perms.startswith("-"):
            files[name.removeprefix("./")] = int(_mode(perms), 8)
    return files


def _mode(perms):
    bits = "".join("0" if c == "-" else "1" for c in perms[1:10])
    return oct(int(bits, 2))[2:]


def test_package_files_version_and_lintian(debs, tmp_path):
    deb = debs[VERSION]
    assert contents(deb) == FILES
    version = ok(run(["dpkg-deb", "-f", deb, "Version"], baseline_env())).stdout.strip()
    assert version == VERSION
    ok(run(["dpkg-deb", "-e", deb, tmp_path / "control"], baseline_env()))
    assert sorted((tmp_path / "control" / "conffiles").read_text().split()) == \
        [HOOK, "/etc/smtpguard/policy.conf"]
    prerm = (tmp_path / "control" / "prerm").read_text()
    assert f"LIB={LIB}\n" in prerm, prerm
    assert not (tmp_path / "control" / "postinst").exists() or \
        "enable" not in (tmp_path / "control" / "postinst").read_text()

    root = tmp_path / "x"
    ok(run(["dpkg-deb", "-x", deb, root], baseline_env()))
    hook = (root / HOOK.lstrip("/")).read_text()
    assert f"INDEXER={LIBDIR}/smtpguard-trust-index\n" in hook, hook
    res = ok(run([root / "usr/sbin/smtpguard", "--version"], baseline_env()))
    assert res.stdout == f"smtpguard {VERSION}\n", describe(res)
    lib = root / LIB.lstrip("/")
    recorded = (lib.parent / "libsmtpguard.so.sha256").read_text().split()
    assert recorded == [hashlib.sha256(lib.read_bytes()).hexdigest(), "libsmtpguard.so"]
    sections = ok(run(["readelf", "-S", lib], baseline_env())).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections, "not stripped"
    dynamic = ok(run(["readelf", "-d", root / "usr/bin/smtpguard-policy"], baseline_env()))
    assert "BIND_NOW" in dynamic.stdout, "LDFLAGS of dpkg-buildflags not used"

    dbgsym = deb.with_name(deb.name.replace("smtpguard_", "smtpguard-dbgsym_"))
    debug = [f for f in contents(dbgsym) if f.startswith("usr/lib/debug/.build-id/")]
    assert len([f for f in debug if f.endswith(".debug")]) == 3, debug   # library, checker, indexer

    res = run(["lintian", "--fail-on", "error,warning", deb], baseline_env(), timeout=120)
    assert res.returncode == 0, describe(res)
    tags = [line for line in res.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], describe(res)


def test_changelog_must_match_the_version_file(tmp_path):
    """One version, in VERSION: build-deb refuses a debian/changelog that says another."""
    src = tmp_path / "src"
    shutil.copytree(REPO / "debian", src / "debian")
    shutil.copytree(REPO / "scripts", src / "scripts")
    (src / "VERSION").write_text("99.0\n")
    res = run([src / "scripts" / "build-deb", tmp_path / "out"], baseline_env())
    assert res.returncode == 1 and f"debian/changelog says {VERSION}, VERSION says 99.0" \
        in res.stderr, describe(res)


# ---- the package's life in a throwaway system -----------------------------------------

# Runs $2... in the background, every /bin/true it starts checked, while dpkg -i $1 runs:
# the preloaded library must be loadable at every moment of the upgrade.
_UPGRADE = r'''
deb=$1 dir=$2 lib=$3
: > "$dir/errors"; n=0
( while [ ! -e "$dir/stop" ] && [ $n -lt 100000 ]; do
      [ -f "$lib" ] || echo "$lib missing" >> "$dir/errors"
      /bin/true 2>> "$dir/errors" || echo "true failed: $?" >> "$dir/errors"
      n=$((n + 1)); echo $n > "$dir/count"
  done ) &
sleep 0.2
dpkg --force-confold -i "$deb"; rc=$?
sleep 0.2; touch "$dir/stop"; wait
exit $rc
'''


class System:
    def __init__(self, base):
        self.overlay = SystemOverlay(base)
        ok(self.run(["rm", "-f", "/var/lib/man-db/auto-update"]))   # no mandb: faster

    def run(self, cmd, timeout=120):
        return self.overlay.run(cmd, baseline_env(), timeout=timeout)

    def preload(self):
        path = self.overlay.path("ld.so.preload")
        return path.read_text() if path.exists() else None

    def installed(self):
        res = self.run(["dpkg-query", "-W", "-f", "${Status} ${Version}", "smtpguard"])
        return res.stdout if res.returncode == 0 else None

    def status(self):
        res = self.run(["smtpguard", "status", "--json"])
        return res.returncode, json.loads(res.stdout)


# Runs $1 (sh), then `smtpguard status --json`, in one namespace: the index records the
# bundle's device number, which is the overlay's, and that can change between mounts.
_THEN_STATUS = 'sh -c "$1" >&2 || exit 99; exec ${2:-smtpguard} status --json'


def status_after(system, script, command=""):
    res = system.run(["sh", "-c", _THEN_STATUS, "sh", script, command], timeout=240)
    assert res.returncode in (0, 1), describe(res)
    return json.loads(res.stdout)


def index_of(system, bundle=BUNDLE):
    """The index file for bundle in the system's /var/cache/smtpguard, read directly:
    (size of the bundle it describes, its path, number of certificates)."""
    cache = system.overlay.base / "var" / CACHE.removeprefix("/var/")
    found = []
    for f in sorted(cache.glob("trust-*.idx")) if cache.exists() else []:
        data = f.read_bytes()
        _, _, _, size, _, _, count, plen = struct.unpack_from("=8s5Q2I", data)
        path = data[56:56 + plen].decode()
        if path == bundle:
            found.append((size, path, count))
    return found


def assert_index_matches(system, state):
    """status says current, and the index file describes the bundle as it is."""
    assert (state["ca_file"], state["trust_index"]) == (BUNDLE, "current"), state
    assert state["trust_index_file"].startswith(f"{CACHE}/trust-"), state
    text = ok(system.run(["cat", BUNDLE])).stdout
    assert index_of(system) == [(len(text.encode()), BUNDLE,
                                 text.count("-----BEGIN CERTIFICATE-----"))]


def real_state():
    path = Path("/etc/ld.so.preload")
    res = subprocess.run(["dpkg-query", "-W", "smtpguard"], capture_output=True, text=True)
    return (path.read_bytes() if path.exists() else None), res.returncode, Path(LIB).exists()


def mail(system, server, log):
    res = system.run([CARELESS, "verify_none", "localhost", server.port, "starttls"],
                     timeout=60)
    return res, f"{describe(res)}\n--- log\n{log.read_text() if log.exists() else ''}"


def assert_guarded(system, hostile, good, log):
    """The careless client, with nothing but /etc/ld.so.preload: refused by the hostile
    server (nothing sent), delivering to the good one."""
    before = (len(hostile.sessions), len(good.transactions()), len(hostile.credentials()),
              len(hostile.transactions()))
    res, why = mail(system, hostile, log)
    assert res.returncode == 2 and len(hostile.credentials()) == before[2], why
    assert len(hostile.transactions()) == before[3] and len(hostile.sessions) > before[0], why
    assert "refused" in log.read_text(), why
    res, why = mail(system, good, log)
    assert res.returncode == 0 and len(good.transactions()) == before[1] + 1, why
    assert set(good.credentials()) == {(USER, PASSWORD, True)}, why


@needs_namespaces
def test_install_enable_upgrade_disable_remove_purge(debs, smtp_server, certs, tmp_path):
    before = real_state()
    system = System(tmp_path / "sys")
    hostile, good = smtp_server("selfsigned"), smtp_server("good")
    log = tmp_path / "smtpguard.log"

    # The careless client leaks to the hostile server without the package.
    res, why = mail(system, hostile, log)
    assert res.returncode == 0 and hostile.credentials() == [(USER, PASSWORD, True)], why

    # Install: everything in place, nothing enabled; the postinst prepared the index.
    assert_index_matches(system, status_after(system, f"dpkg -i '{debs[VERSION]}'"))
    assert system.installed() == f"install ok installed {VERSION}"
    assert system.preload() is None, "installing enabled the preload"
    assert ok(system.run(["smtpguard", "--version"])).stdout == f"smtpguard {VERSION}\n"
    assert ok(system.run(["sh", "-c", "command -v smtpguard-policy"])).stdout == \
        "/usr/bin/smtpguard-policy\n"
    ok(system.run(["smtpguard-policy", "/etc/smtpguard/policy.conf"]))
    ok(system.run(["smtpguard", "policy-check"]))
    for sub in ("report", "probe"):                  # programs beside the library
        assert ok(system.run(["smtpguard", sub, "--help"])).stdout.startswith("usage: ")
    code, state = system.status()
    assert code == 1 and state["enabled"] is False and state["library"] == LIB, state
    assert state["library_state"] == "ok" and state["sha256"] == state["installed_sha256"]

    # The bundle changes: the index no longer matches (processes would parse the bundle
    # themselves); the hook refreshes it. update-ca-certificates runs the hook.
    state = status_after(system, f"cat '{certs.ca2}' >> {BUNDLE}")
    assert state["trust_index"] == "stale", state
    assert "each process parses the bundle itself; run: " in state["trust_index_note"], state
    assert_index_matches(system, status_after(system, HOOK))
    added = "/usr/local/share/ca-certificates/smtpguard-test.crt"
    state = status_after(system, f"mkdir -p {os.path.dirname(added)} && cp '{certs.ca}' "
                                 f"{added} && update-ca-certificates")
    assert_index_matches(system, state)
    pem = Path(certs.ca).read_text().split("-----")[2].strip()
    assert pem in ok(system.run(["cat", BUNDLE])).stdout, "update-ca-certificates ignored it"

    # The administrator's policy (the conffile, edited), then enable.
    system.overlay.write("smtpguard/policy.conf",
                         policy_text([hostile.port, good.port], ca=certs.ca, log=log))
    res = ok(system.run(["smtpguard", "enable"]))
    assert "ENFORCE mode" in res.stdout, describe(res)
    assert system.preload() == f"{LIB}\n"
    code, state = system.status()
    assert code == 0 and state["enabled"] is True and state["problems"] == [], state
    assert_guarded(system, hostile, good, log)

    # Upgrade while enabled: the library replaced atomically, still enabled, still
    # guarding; the administrator's policy kept.
    marks = tmp_path / "upgrade"
    marks.mkdir()
    res = ok(system.run(["sh", "-c", _UPGRADE, "sh", debs[UPGRADE], marks, LIB], timeout=240))
    assert (marks / "errors").read_text() == "", describe(res)
    assert int((marks / "count").read_text()) > 1, "no program ran during the upgrade"
    assert system.installed() == f"install ok installed {UPGRADE}"
    assert system.preload() == f"{LIB}\n"
    assert ok(system.run(["smtpguard", "--version"])).stdout == f"smtpguard {UPGRADE}\n"
    assert f"{good.port}" in system.overlay.path("smtpguard/policy.conf").read_text()
    code, state = system.status()
    assert code == 0 and state["library_state"] == "ok" and state["problems"] == [], state
    assert state["sha256"] == state["installed_sha256"]
    assert_guarded(system, hostile, good, log)

    # Disable: the careless client leaks again.
    ok(system.run(["smtpguard", "disable"]))
    assert system.preload() is None
    assert system.status()[0] == 1
    res, why = mail(system, hostile, log)
    assert res.returncode == 0 and hostile.credentials()[-1] == (USER, PASSWORD, True), why

    # Remove while enabled: the prerm disables first; programs start cleanly after.
    ok(system.run(["smtpguard", "enable"]))
    assert system.preload() == f"{LIB}\n"
    res = ok(system.run(["dpkg", "-r", "smtpguard"]))
    assert system.preload() is None, describe(res)
    assert system.installed() == f"deinstall ok config-files {UPGRADE}"
    for gone in ("/usr/sbin/smtpguard", LIB, "/usr/bin/smtpguard-policy"):
        assert system.run(["test", "-e", gone]).returncode == 1, gone
    assert ok(system.run(["/bin/true"])).stderr == ""
    assert system.overlay.path("smtpguard/policy.conf").exists()   # a conffile: kept
    ok(system.run([HOOK]))                      # kept too, and harmless without its tool

    # Purge: the policy goes too, and the index.
    assert index_of(system)
    ok(system.run(["dpkg", "-P", "smtpguard"]))
    assert system.installed() is None
    for gone in ("/etc/smtpguard", HOOK, CACHE):
        assert system.run(["test", "-e", gone]).returncode == 1, gone

    assert real_state() == before, "the machine's own system changed"


@needs_namespaces
def test_make_install_prepares_the_index_and_uninstall_removes_it(tmp_path):
    """make install without DESTDIR, on a system: the tool and the hook in place, the
    index prepared; make uninstall takes them away with the index."""
    before = real_state()
    system = System(tmp_path / "sys")
    make = (f"make -s -C '{REPO}' PREFIX=/usr/local -o build/libsmtpguard.so "
            "-o build/smtpguard-policy -o build/smtpguard-trust-index")  # never rebuilt here
    state = status_after(system, f"{make} install", "/usr/local/sbin/smtpguard")
    assert_index_matches(system, state)
    hook = ok(system.run(["cat", HOOK])).stdout
    assert "INDEXER=/usr/local/lib/smtpguard/smtpguard-trust-index\n" in hook, hook
    ok(system.run(["sh", "-c", f"{make} uninstall"]))
    for gone in (HOOK, CACHE, "/usr/local/lib/smtpguard", "/usr/local/sbin/smtpguard"):
        assert system.run(["test", "-e", gone]).returncode == 1, gone
    assert real_state() == before, "the machine's own system changed"
