"""The library's shape: it exports only the interposed names and links no TLS
library, so loading it costs nothing in processes that never send mail."""
import platform
import re
import socket
import subprocess

from lib import sanitize
from lib.runner import CLIENTS, LIB, describe

EXPORTED = {
    "connect", "close", "close_range", "closefrom", "dup", "dup2", "dup3", "fcntl", "fcntl64", "chroot", "fdopen",
    "write", "send", "sendto", "sendmsg", "writev",
    "read", "recv", "recvfrom", "recvmsg", "readv",
    # every byte path and every way to connect (issue 11)
    "socket", "sendfile", "sendfile64", "splice", "pwritev2", "pwritev64v2", "preadv2",
    "preadv64v2", "sendmmsg", "recvmmsg",
    "aio_write", "aio_write64", "lio_listio", "lio_listio64", "dprintf", "vdprintf", "__dprintf_chk", "__vdprintf_chk",
    "__read_chk", "__recv_chk", "__recvfrom_chk", "__read", "__write", "__send", "__connect",
    "getaddrinfo", "freeaddrinfo", "gethostbyname", "gethostbyname2", "gethostbyname_r",
    "gethostbyname2_r",
    # the res_* family, under glibc 2.34's names and the __res_ names older programs call
    *(prefix + name for prefix in ("", "__") for name in
      ("res_query", "res_search", "res_querydomain", "res_nquery", "res_nsearch",
       "res_nquerydomain")),
    "SSL_connect", "SSL_do_handshake", "SSL_write", "SSL_write_ex", "SSL_read", "SSL_read_ex",
    "SSL_peek", "SSL_peek_ex", "gnutls_handshake", "gnutls_strerror",
    "gnutls_server_name_set", "gnutls_deinit",   # a GnuTLS client's own SNI (issue 12)
    # the priority a GnuTLS program chose, which the policy narrows (gnutls_prio.c)
    "gnutls_priority_set_direct", "gnutls_priority_set", "gnutls_set_default_priority",
    "gnutls_set_default_priority_append", "gnutls_priority_init", "gnutls_priority_init2",
    "gnutls_priority_deinit",
    "nettle_ecdsa_verify", "nettle_rsa_pkcs1_verify",   # checks nettle accepted (nettle_memo.c)
    "X509_verify",   # certificate signatures OpenSSL accepted (ossl_memo.c)
    "gnutls_x509_crt_deinit",   # certificates GnuTLS parsed in the handshake (gnutls_keep.c)
    "gnutls_x509_crt_equals",   # a byte comparison (gnutls_equals.c)
    "gnutls_x509_trust_list_get_issuer",  # the anchor lent, not copied (gnutls_lend.c)
    "gnutls_x509_rdn_get2", "gnutls_x509_crt_get_authority_key_id",  # answered again (gnutls_memo.c)
    "gnutls_x509_crt_get_basic_constraints", "gnutls_x509_crt_get_key_usage",  # gnutls_memo.c
    "gnutls_x509_crt_get_extension_info", "gnutls_x509_crt_get_subject_key_id",  # gnutls_memo.c
    "gnutls_x509_crt_get_activation_time", "gnutls_x509_crt_get_expiration_time",  # gnutls_memo.c
}
# A SANITIZE=1 build also needs the sanitizer runtimes.
ALLOWED_NEEDED = re.compile(r"^(libc|libdl|libpthread|libasan|libubsan)\.so\.\d+$"
                            if sanitize.ENABLED else r"^(libc|libdl|libpthread)\.so\.\d+$")


def _out(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=30).stdout


def test_exports_only_the_interposed_names(build):
    names = {line.split()[-1] for line in _out("nm", "-D", "--defined-only", LIB).splitlines()
             if line.strip()}
    assert names == EXPORTED


def test_links_no_tls_library(build):
    needed = re.findall(r"\(NEEDED\).*\[(.+)\]", _out("readelf", "-d", LIB))
    assert needed, "readelf shows no NEEDED entry at all"
    assert all(ALLOWED_NEEDED.match(n) for n in needed), needed


def test_no_undefined_tls_symbols(build):
    undefined = _out("nm", "-D", "--undefined-only", LIB)
    assert not re.search(r"\b(SSL|X509|ERR|gnutls)_\w+", undefined), undefined


# What the loader does for the library at every exec, SMTP or not (issue 15): each
# glibc symbol version named costs a check (~450 instructions), each symbol looked up
# at load a few hundred. shim/libc_versions.c, libc_compat.h, auxv.c and startfiles.c
# say how the list was cut; a new libc call that needs another version belongs there
# (or raw, rawsys.h).
LOAD_VERSIONS = {"GLIBC_2.2.5"}


def test_loader_work_at_exec_stays_small(build):
    if sanitize.ENABLED or platform.machine() != "x86_64":
        return  # the sanitizer runtimes bring their own; the version names are x86-64's
    versions = set(re.findall(r"Name: (GLIBC_[\d.]+)", _out("readelf", "-V", LIB)))
    assert versions <= LOAD_VERSIONS, f"new glibc versions needed: {versions - LOAD_VERSIONS}"
    relocs = _out("readelf", "-r", "-W", LIB)
    load_lookups = [line for line in relocs.splitlines()
                    if re.search(r"R_X86_64_(GLOB_DAT|64)\b", line)]
    assert not load_lookups, "symbol lookups at load (C start files back?): " + "\n".join(load_lookups)
    assert "NODELETE" in _out("readelf", "-d", LIB)  # fork handlers never left dangling


def test_strings_the_loader_compares_start_a_cache_line(build):
    """The needed file name and version, which the loader compares with strcmp
    some 80 times at every exec: glibc's x86-64 strcmp is slower for a string
    within 16 bytes of a 64-byte line's end, about 550 instructions of
    /bin/true's start (the Makefile's DYNSTR_AT)."""
    if sanitize.ENABLED or platform.machine() != "x86_64":
        return
    sec = re.search(r"\.dynstr\s+STRTAB\s+([0-9a-f]+)\s+([0-9a-f]+)\s+([0-9a-f]+)",
                    _out("readelf", "-S", "-W", LIB))
    assert sec, "no .dynstr"
    addr, off, size = (int(x, 16) for x in sec.groups())
    with open(LIB, "rb") as f:
        f.seek(off)
        strs = f.read(size)
    for name in (b"libc.so.6", b"GLIBC_2.2.5"):
        at = strs.find(b"\0" + name + b"\0") + 1
        assert at > 0, name
        assert (addr + at) % 64 <= 48, f"{name} at {addr + at:#x}: {(addr + at) % 64} into its line"


def test_own_memcpy_does_not_call_itself(build):
    """shim/libc_versions.c's memcpy hands over to memmove; a compiler that turned
    that back into memcpy would make it loop forever."""
    body = _out("objdump", "-d", "--no-show-raw-insn", "--disassemble=memcpy", LIB)
    calls = [line for line in body.splitlines() if re.search(r"\b(jmp|call)\b", line)]
    assert calls, body
    assert not any("<memcpy>" in line for line in calls), body
    assert any("memmove" in line for line in calls), body


# What a process that never speaks SMTP maps of the library's text (issue 15):
# the kernel maps file pages 64 KiB around each fault. Everything such a process
# runs lies in the executable segment that holds the PLT (the Makefile's hot.ld):
# every interposer (its fast path), the constructors, policy load and the
# descriptor table; that segment is a mapping of its own of at most 64 KiB, and
# the SMTP and TLS code lies in another, as the unwind tables lie apart from
# the read-only data.
HOT_INTERNAL = {"sg_config", "sg_policy_load", "sg_policy_parse", "sg_real_bind",
                "sg_auxval", "sg_guard_std_streams"}


def test_code_every_process_runs_is_one_small_mapping(build):
    if sanitize.ENABLED:
        return  # the sanitizers' instrumentation makes every function larger
    plt = re.search(r"\]\s+\.plt\s+\S+\s+([0-9a-f]+)", _out("readelf", "-S", "-W", LIB))
    assert plt, "no .plt section"
    plt = int(plt.group(1), 16)
    segments = [(int(f[2], 16), int(f[5], 16), f[-2]) for f in
                (line.split() for line in _out("readelf", "-l", "-W", LIB).splitlines())
                if f and f[0] == "LOAD"]
    hot = [(start, size) for start, size, flags in segments if start <= plt < start + size]
    assert len(hot) == 1 and "E" in [s[2] for s in segments if s[0] == hot[0][0]][0]
    start, size = hot[0]
    assert size <= 64 * 1024, f"the segment of the PLT is {size} bytes"
    assert sum("E" in flags for _, _, flags in segments) == 2, segments
    symbols = {}
    for line in _out("nm", "-S", "--defined-only", LIB).splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2] in "tT":
            symbols[parts[3]] = (int(parts[0], 16), int(parts[1], 16))
    assert EXPORTED - {"__read", "__write", "__send", "__connect"} <= symbols.keys()
    want = EXPORTED | (HOT_INTERNAL if HOT_INTERNAL <= symbols.keys() else set())
    away = {name: hex(symbols[name][0]) for name in want if name in symbols and
            not start <= symbols[name][0] <= sum(symbols[name]) <= start + size}
    assert not away, f"outside the segment of the PLT ({start:#x}+{size:#x}): {away}"
    # The unwind tables, read only when a thread unwinds, apart from .rodata.
    mapping = re.findall(r"^\s+\d\d\s+(.*)$", _out("readelf", "-l", "-W", LIB), re.M)
    rodata = [m.split() for m in mapping if ".rodata" in m.split()]
    assert rodata and ".eh_frame" not in rodata[0], mapping


def test_thread_cancelled_in_interposed_read_unwinds(shim, run):
    """pthread_cancel of a thread blocked in read() on an SMTP socket unwinds
    through the shim's guard: its unwind tables, a mapping apart from .rodata
    (above), are still found."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    res = run([CLIENTS / "cancel_read", port], shim([port]))
    assert res.returncode == 0 and res.stdout.split() == ["cancelled", "cleaned"], describe(res)
