"""shim/scope_sym.c binds a backend's functions from the libraries' own hash
tables instead of asking dlsym for each name (issue 15: dlsym was ~850
instructions a name, 92 names an OpenSSL). It must give exactly what dlsym
gives, for every name the OpenSSL and GnuTLS backends bind and for the edges (IFUNCs,
data, TLS variables, versioned and missing names): the check program compares
the two, library by library, and fails on any difference. The backend's names are
also looked up with their hash computed when compiling (SG_SCOPE_SYM, scope.h),
which must equal the run-time hash and give what dlsym gives."""
import subprocess
from pathlib import Path

from lib.runner import BUILD

CHECK = BUILD / "clients" / "scope_sym_check"
MULTIARCH = Path("/usr/lib/x86_64-linux-gnu")
LEGACY = BUILD / "legacy" / "root" / "usr" / "lib" / "x86_64-linux-gnu"


def run_check(libs, env=None):
    res = subprocess.run([CHECK, *map(str, libs)], capture_output=True, text=True,
                         timeout=60, env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert len(lines) == len(libs), res.stdout
    return {line.split()[0]: dict(kv.split("=") for kv in line.split()[1:]) for line in lines}


def test_same_as_dlsym_for_system_libraries(build):
    libs = [p for p in (MULTIARCH / "libssl.so.3", MULTIARCH / "libcrypto.so.3",
                        MULTIARCH / "libgnutls.so.30", MULTIARCH / "libgnutls-openssl.so.27",
                        MULTIARCH / "libc.so.6") if p.exists()]
    assert MULTIARCH / "libssl.so.3" in libs
    out = run_check(libs)
    for lib, r in out.items():
        assert r["names"] == r["same"], (lib, r)
        assert r["hashed"] == r["hashed_same"] and int(r["hashed"]) > 80, (lib, r)
    # libssl's own tables were searched (not all handed to dlsym): the test
    # exercises the lookup, not only its fallback.
    assert int(out[str(MULTIARCH / "libssl.so.3")]["searched"]) >= 2
    # libgnutls has more needed libraries than fit: its own names come from
    # its table, the rest from those that fit, then dlsym.
    assert int(out[str(MULTIARCH / "libgnutls.so.30")]["searched"]) >= 2


def test_same_as_dlsym_for_openssl_1_1():
    lib = LEGACY / "libssl.so.1.1"
    if not lib.exists():
        import pytest
        pytest.skip("no build/legacy (make legacy): tests/test_legacy.py says why")
    out = run_check([lib], env={"LD_LIBRARY_PATH": str(LEGACY)})
    r = out[str(lib)]
    assert r["names"] == r["same"] and int(r["searched"]) >= 2, r
    assert r["hashed"] == r["hashed_same"], r
