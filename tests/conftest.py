"""Fixtures of the test harness: see tests/HARNESS.md."""
import fcntl
import subprocess
from pathlib import Path

import pytest

from lib import results
from lib.certs import make_certs
from lib.constants import MESSAGE
from lib.runner import BUILD, LIB, REPO, baseline_env, policy_text, run as run_cmd, shim_env
from lib.smtpserver import SMTPServer

_TABLE = pytest.StashKey[Path]()


def _controller(config):
    return not hasattr(config, "workerinput")


def pytest_configure(config):
    if _controller(config):
        results.new_run()
    else:
        results.use_run(config.workerinput.get("smtpguard_results"))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node):
    """xdist: tell each worker where this run's results go."""
    node.workerinput["smtpguard_results"] = str(results.run_dir)


def pytest_sessionfinish(session):
    if _controller(session.config):
        table = results.merge()
        if table:
            session.config.stash[_TABLE] = table


def pytest_terminal_summary(terminalreporter, config):
    table = config.stash.get(_TABLE, None)
    if table:
        terminalreporter.write_line(f"mailer table: {table}")


@pytest.fixture(scope="session", autouse=True)
def build():
    """`make -s -k all clients` once; xdist workers take turns on a lock file.
    Returns the CompletedProcess (the shim fixture reports it when the library is missing)."""
    BUILD.mkdir(exist_ok=True)
    with open(BUILD / ".make.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.run(["make", "-s", "-k", "all", "clients"], cwd=REPO,
                              capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def smtp_server(certs):
    """Factory: smtp_server(cert="good", mode="starttls", tls="modern") -> SMTPServer.
    cert is a name of `certs` or a Cert."""
    servers = []

    def start(cert="good", mode="starttls", tls="modern"):
        if isinstance(cert, str):
            cert = certs.get(cert)
        server = SMTPServer(cert, mode, tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def run():
    """run(cmd, env, input=None, timeout=30) -> CompletedProcess (text)."""
    return run_cmd


@pytest.fixture
def baseline():
    """baseline() -> the environment without the shim."""
    return baseline_env


@pytest.fixture
def shim(tmp_path, certs, build):
    """Factory: shim(ports, implicit=(), mode="enforce", extra="", ca=None) -> env dict
    with LD_PRELOAD and SMTPGUARD_POLICY; .log_path and .policy_path attributes.
    Fails the test when build/libsmtpguard.so was not built."""
    count = []

    def make(ports, implicit=(), mode="enforce", extra="", ca=None):
        if not LIB.exists():
            said = (build.stdout + build.stderr)[-3000:]
            pytest.fail(f"{LIB} is not built; make said:\n{said}", pytrace=False)
        count.append(1)
        suffix = "" if len(count) == 1 else f"-{len(count)}"
        log = tmp_path / "smtpguard.log"
        text = policy_text(ports, implicit, mode, extra, ca or certs.ca, log)
        return shim_env(tmp_path / f"policy{suffix}.conf", log, text)

    return make


@pytest.fixture
def message_file(tmp_path):
    """constants.MESSAGE in a file."""
    path = tmp_path / "message.eml"
    path.write_bytes(MESSAGE)
    return path
