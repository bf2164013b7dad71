"""Legacy binaries linked against OpenSSL 1.1 (issue 7), without and with the shim.

`make legacy` (tests/legacy/legacy.mk) fetches Debian 11's libssl1.1, its headers and
two real mailers built for it (curl with libcurl4, s-nail) into build/legacy/root/
(scripts/fetch-legacy, once), and builds the careless client (tests/clients/careless.c,
the same source) against 1.1, plus mixed11: a 1.1 program that dlopen()s mod3.so, a
module linked to OpenSSL 3, and runs one session through each library.

Without the shim the careless programs hand the credentials and the message to every
hostile server; with it the hostile servers get nothing and the good one the message.
When build/legacy cannot be prepared (no route to the Debian mirror) these tests fail.
"""
import fcntl
import re
import subprocess
from dataclasses import dataclass

import pytest

from lib import results
from lib.constants import BODY, FROM, HOSTILE, MESSAGE, PASSWORD, SCENARIOS, TO, USER
from lib.mailers import HOST, MAILERS, Command
from lib.runner import BUILD, CLIENTS, REPO, describe

LEGACY = BUILD / "legacy"
ROOT = LEGACY / "root"
LIBDIR = ROOT / "usr" / "lib" / "x86_64-linux-gnu"
MODES = ("starttls", "implicit")
TLS12_OR_13 = ("TLSv1.2", "TLSv1.3")
STYLES = ("verify_none", "accept_all_cb", "cert_verify_cb", "seclevel0", "nonblocking",
          "bio_ssl_connect", "implicit_write")


@dataclass(frozen=True)
class Program:
    """A program on OpenSSL 1.1: `build(port, mode, message_file) -> Command`.
    exact: the server must get constants.MESSAGE byte for byte (else BODY inside
    a message the program composed itself)."""
    name: str
    build: object
    exact: bool = True


def careless11(style):
    def build(port, mode, msgfile):
        return Command([LEGACY / "careless11", style, HOST, port, mode, msgfile])
    return Program(f"careless11-{style}", build)


def bullseye(mailer_name, exact):
    """A mailer of tests/lib/mailers.py, run as bullseye's binary of the same name."""
    mailer = next(m for m in MAILERS if m.name == mailer_name)

    def build(port, mode, msgfile):
        cmd = mailer.build(port, mode, msgfile)
        return Command([ROOT / "usr" / "bin" / mailer_name, *cmd.argv[1:]], cmd.input)
    return Program(f"{mailer_name}-1.1", build, exact)


MAILERS11 = (bullseye("curl", exact=True), bullseye("s-nail", exact=False))
PROGRAMS = tuple(careless11(s) for s in STYLES) + MAILERS11
CASES = [pytest.param(p, mode, scenario, id=f"{p.name}-{mode}-{scenario}")
         for p in PROGRAMS for mode in MODES for scenario in SCENARIOS]


@pytest.fixture(scope="session")
def legacy(build):
    """`make -s legacy` once (xdist workers take turns); fails every test using it,
    with make's words, when the bullseye packages cannot be had."""
    with open(BUILD / ".legacy.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        res = subprocess.run(["make", "-s", "legacy"], cwd=REPO, capture_output=True,
                             text=True, timeout=600)
    if res.returncode != 0:
        pytest.fail("`make legacy` failed: Debian 11's OpenSSL 1.1 and mailers could not be "
                    "prepared in build/legacy (scripts/fetch-legacy needs the Debian mirror "
                    f"that apt uses):\n{(res.stdout + res.stderr)[-3000:]}", pytrace=False)
    return LEGACY


def openssl_client(request, name):
    """pick(openssl) -> the test client NAME built for OpenSSL "3" (build/clients/NAME)
    or "1.1" (build/legacy/NAME11, `make legacy` once)."""
    def pick(openssl):
        c = CLIENTS / name if openssl == "3" else \
            request.getfixturevalue("legacy") / f"{name}11"
        assert c.exists(), f"{c} is not built: run `make clients legacy`"
        return c
    return pick


def legacy_env(env, certs):
    """env plus the extracted OpenSSL 1.1 and the CA for the `good` style."""
    env["LD_LIBRARY_PATH"] = str(LIBDIR)
    env["SG_CA_FILE"] = str(certs.ca)
    return env


def shim_for(shim, ports, mode):
    return shim(list(ports), implicit=list(ports) if mode == "implicit" else ())


@pytest.fixture
def attempt(legacy, smtp_server, run, certs, message_file):
    """attempt(program, mode, scenario, env_for) -> (server, CompletedProcess, env);
    env_for(server) gives the environment before the OpenSSL 1.1 variables."""
    def go(program, mode, scenario, env_for):
        cert, tls = SCENARIOS[scenario]
        server = smtp_server(cert, mode, tls)
        env = legacy_env(env_for(server), certs)
        cmd = program.build(server.port, mode, message_file)
        res = run(cmd.argv, env, input=cmd.input, timeout=60)
        server.wait_idle(5.0)
        return server, res, env
    return go


def report(res, server, env=None):
    text = describe(res) + f"\n--- server sessions\n{server.sessions!r}"
    if env is not None and hasattr(env, "log"):
        text += f"\n--- shim log\n{env.log()}"
    return text


def assert_delivered(res, server, exact, env=None):
    why = report(res, server, env)
    assert res.returncode == 0, why
    assert server.credentials() == [(USER, PASSWORD, True)], why
    (session,) = server.transactions()
    assert session.tls and session.mail_from == FROM and session.rcpt_to == [TO], why
    (message,) = server.messages()
    assert message == MESSAGE if exact else BODY in message, why
    return session


def assert_refused(res, server, env=None):
    why = report(res, server, env)
    assert res.returncode != 0, why
    assert server.credentials() == [], why
    assert server.transactions() == [], why


def record(name, mode, scenario, run, server, returncode):
    """One cell of the mailer table; without the shim a refusal is the program's own."""
    outcome = results.outcome(server, returncode, scenario)
    if run == "baseline" and outcome.startswith("refused"):
        outcome = "own"
    results.record(mailer=name, mode=mode, scenario=scenario, run=run, outcome=outcome)


@pytest.mark.parametrize("program,mode,scenario", CASES)
def test_baseline_leaks(program, mode, scenario, attempt, baseline):
    """Without the shim: the good server gets the message and every hostile one the
    credentials and a transaction. OpenSSL 1.1 still negotiates TLS 1.0 at its
    default security level, unless the system's openssl.cnf forbids it: then `old`
    must at least be refused without a leak."""
    server, res, _ = attempt(program, mode, scenario, lambda server: baseline())
    record(program.name, mode, scenario, "baseline", server, res.returncode)
    if scenario == "good":
        assert_delivered(res, server, program.exact)
    elif scenario == "old" and not server.credentials():
        assert_refused(res, server)
        pytest.skip(f"{program.name} refuses TLS 1.0/1.1 by itself (system openssl.cnf)")
    else:
        assert server.credentials() == [(USER, PASSWORD, True)], report(res, server)
        assert len(server.transactions()) == 1, report(res, server)


@pytest.mark.parametrize("program,mode,scenario", CASES)
def test_shim(program, mode, scenario, attempt, shim):
    """With the shim: hostile servers get neither credentials nor a transaction, the
    good one the message over TLS >= 1.2; the shim's verdict ran on the 1.1 objects
    (an accepted or refused log line, not a pass-through)."""
    server, res, env = attempt(program, mode, scenario,
                               lambda server: shim_for(shim, [server.port], mode))
    record(program.name, mode, scenario, "shim", server, res.returncode)
    if scenario == "good":
        session = assert_delivered(res, server, program.exact, env)
        assert session.tls_version in TLS12_OR_13, report(res, server, env)
    else:
        assert_refused(res, server, env)
    verdict = "accepted" if scenario == "good" else "refused"
    # the address may be unknown to the log when a connect BIO fails its handshake
    assert re.search(rf"{verdict} TLS to localhost\[[\d.]*\]:{server.port}\b", env.log()), \
        env.log()


def test_programs_use_openssl_1_1(legacy, run, baseline, certs):
    """The programs under test really load the extracted libssl.so.1.1 and no libssl 3."""
    env = legacy_env(baseline(), certs)
    for prog in (LEGACY / "careless11", ROOT / "usr/bin/curl", ROOT / "usr/bin/s-nail"):
        res = run(["ldd", prog], env)
        assert f"libssl.so.1.1 => {LIBDIR}/libssl.so.1.1" in res.stdout, describe(res)
        assert "libssl.so.3" not in res.stdout, describe(res)


# ---- LD_PRELOAD on a 1.1 binary: how the loader binds the shim --------------------------

@pytest.mark.parametrize("program", [careless11("verify_none"), *MAILERS11], ids=lambda p: p.name)
def test_versioned_reference_binds_to_shim(program, attempt, shim):
    """The 1.1 program's reference SSL_connect@OPENSSL_1_1_0 binds to the shim's
    unversioned SSL_connect; the shim then finds SSL_connect in libssl.so.1.1 and
    refuses the self-signed server with OpenSSL 1.1's own words."""
    def env_for(server):
        env = shim_for(shim, [server.port], "starttls")
        env["LD_DEBUG"] = "bindings"
        return env

    server, res, env = attempt(program, "starttls", "selfsigned", env_for)
    assert_refused(res, server, env)
    bindings = res.stderr
    assert re.search(r"to \S*/libsmtpguard\.so \[0\]: normal symbol `SSL_connect' "
                     r"\[OPENSSL_1_1_0\]", bindings), bindings[-5000:]
    # the shim's own look-up (dlsym, no version) lands in the 1.1 library
    assert re.search(rf"to {re.escape(str(LIBDIR))}/libssl\.so\.1\.1 \[0\]: normal symbol "
                     r"`SSL_connect'$", bindings, re.M), bindings[-5000:]
    assert not re.search(r"libssl\.so\.3 \[0\]: normal symbol `SSL_connect'", bindings)
    # 1.1.1 says "self signed", 3.0 "self-signed": the verdict used the 1.1 library
    assert re.search(r"refused TLS to localhost\S*: chain: .*\(self signed certificate",
                     env.log()), env.log()


# ---- one process, OpenSSL 1.1 and 3 ------------------------------------------------------

@pytest.fixture
def mixed(legacy, smtp_server, run, certs, message_file):
    """mixed(scenario, mode, env_for, run_name) -> (servers, CompletedProcess, env):
    mixed11 runs one session through OpenSSL 1.1 to servers["openssl11"] and one
    through the dlopen()ed OpenSSL 3 module to servers["openssl3"]; the outcomes go
    to the mailer table."""
    def go(scenario, mode, env_for, run_name):
        cert, tls = SCENARIOS[scenario]
        servers = {lib: smtp_server(cert, mode, tls) for lib in LIBRARIES}
        ports = [servers[lib].port for lib in LIBRARIES]
        env = legacy_env(env_for(ports), certs)
        res = run([LEGACY / "mixed11", LEGACY / "mod3.so", "verify_none", HOST, *ports, mode,
                   message_file], env, timeout=80)
        for lib, server in servers.items():
            server.wait_idle(5.0)
            record(f"mixed11 ({lib} part)", mode, scenario, run_name, server,
                   statuses(res).get(lib, res.returncode))
        return servers, res, env
    return go


LIBRARIES = ("openssl11", "openssl3")   # mixed11's order of sessions and ports


def statuses(res):
    """{"openssl11": status, "openssl3": status} as mixed11 printed them."""
    return {m[0]: int(m[1]) for m in re.findall(r"^mixed: (openssl\w+) (\d+)$", res.stdout, re.M)}


def mixed_report(res, servers, env=None):
    return report(res, servers["openssl11"], env) + \
        f"\n--- OpenSSL 3 server sessions\n{servers['openssl3'].sessions!r}"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_mixed_process_with_shim(scenario, mode, mixed, shim):
    """Each session is judged by the library that owns its SSL object: hostile
    servers get nothing from either, the good ones the message from both; the
    process ends normally (no crash)."""
    servers, res, env = mixed(scenario, mode, lambda ports: shim_for(shim, ports, mode), "shim")
    why = mixed_report(res, servers, env)
    assert res.returncode in (0, 2), why   # not killed by a signal
    assert set(statuses(res)) == set(LIBRARIES), why
    for lib, server in servers.items():
        if scenario == "good":
            assert statuses(res)[lib] == 0, why
            assert_delivered(res, server, True, env)
        else:
            assert statuses(res)[lib] != 0, why
            assert server.credentials() == [] and server.transactions() == [], why


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_mixed_process_baseline(scenario, mode, mixed, baseline):
    """Without the shim both sessions deliver to the good servers and leak to the
    hostile ones, except that OpenSSL 3 (SECLEVEL 1) will not speak TLS 1.0/1.1."""
    servers, res, _ = mixed(scenario, mode, lambda ports: baseline(), "baseline")
    why = mixed_report(res, servers)
    for lib, server in servers.items():
        if scenario == "old" and lib == "openssl3":
            assert statuses(res)[lib] != 0 and server.credentials() == [], why
        else:
            assert statuses(res)[lib] == 0, why
            assert server.credentials() == [(USER, PASSWORD, True)], why


def test_mixed_process_per_library_words(mixed, shim):
    """Both refusals of the self-signed servers carry the wording of the library
    that verified: "self signed" (1.1.1) for one port, "self-signed" (3) for the other."""
    servers, res, env = mixed("selfsigned", "starttls",
                              lambda ports: shim_for(shim, ports, "starttls"), "shim")
    log = env.log()
    assert re.search(rf":{servers['openssl11'].port}: chain: .*\(self signed certificate", log), log
    assert re.search(rf":{servers['openssl3'].port}: chain: .*\(self-signed certificate", log), log


# ---- stripping: a server that offers no STARTTLS, an opportunistic client ----------------

def opportunistic_curl():
    """bullseye's curl with --ssl (TLS if offered, else plaintext)."""
    curl = MAILERS11[0]

    def build(port, mode, msgfile):
        cmd = curl.build(port, mode, msgfile)
        return Command(["--ssl" if a == "--ssl-reqd" else a for a in cmd.argv])
    return Program("curl-1.1 --ssl", build)


@pytest.mark.parametrize("with_shim", [False, True], ids=["baseline", "shim"])
def test_stripped_starttls(with_shim, legacy, smtp_server, run, certs, message_file,
                           shim, baseline):
    """Without the shim the credentials go out in plaintext; with it (require_tls =
    yes) nothing of AUTH or MAIL leaves."""
    server = smtp_server(mode="plain")
    env = legacy_env(shim([server.port]) if with_shim else baseline(), certs)
    cmd = opportunistic_curl().build(server.port, "starttls", message_file)
    res = run(cmd.argv, env, timeout=60)
    server.wait_idle(5.0)
    if with_shim:
        assert_refused(res, server, env)
    else:
        assert server.credentials() == [(USER, PASSWORD, False)], report(res, server)


# ---- a memory-BIO session on OpenSSL 1.1, its handshake on another thread --------------

@pytest.mark.parametrize("mode", MODES)
def test_memory_bio_on_another_thread(mode, legacy, smtp_server, run, certs, message_file,
                                      shim, baseline):
    """tests/clients/membio.c built against 1.1 (SSL_get_client_random found at run time
    in 1.1 too): the handshake runs on another thread than the socket I/O. Without the
    shim the self-signed server gets everything; with it nothing, and the good server
    gets the message."""
    def attempt(cert, env_for):
        server = smtp_server(cert, mode)
        env = legacy_env(env_for(server), certs)
        res = run([LEGACY / "membio11", "thread", HOST, server.port, mode, message_file],
                  env, timeout=60)
        server.wait_idle(5.0)
        return server, res, env

    server, res, env = attempt("selfsigned", lambda s: baseline())
    assert_delivered(res, server, exact=True)
    server, res, env = attempt("selfsigned", lambda s: shim_for(shim, [s.port], mode))
    assert_refused(res, server, env)
    assert server.messages() == [], report(res, server, env)
    server, res, env = attempt("good", lambda s: shim_for(shim, [s.port], mode))
    assert_delivered(res, server, exact=True, env=env)
