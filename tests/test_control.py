"""Controls: what the policy does not name, the shim leaves alone."""
import pytest

from lib.constants import FROM, MESSAGE, TO
from lib.httpsserver import BODY, HTTPSServer
from lib.mailers import PY
from lib.runner import describe

POLICY_PORTS = dict(ports=[25, 465, 587], implicit=[465])   # never the kernel's free ports

FETCHERS = {
    "curl": lambda url: ["curl", "--silent", "--show-error", "--insecure",
                         "--max-time", "20", url],
    "python": lambda url: [PY, "-c", "import ssl, sys, urllib.request as u; sys.stdout.write("
                           "u.urlopen(sys.argv[1], timeout=20, context="
                           "ssl._create_unverified_context()).read().decode())", url],
}


@pytest.fixture
def https_server(certs):
    server = HTTPSServer(certs.selfsigned)
    yield server
    server.stop()


@pytest.mark.parametrize("fetcher", FETCHERS)
def test_tls_to_a_port_not_in_the_policy_is_untouched(https_server, run, shim, baseline,
                                                      fetcher):
    cmd = FETCHERS[fetcher](https_server.url)
    without = run(cmd, baseline())
    assert (without.returncode, without.stdout) == (0, BODY.decode()), describe(without)
    env = shim(**POLICY_PORTS)
    shimmed = run(cmd, env)
    assert (shimmed.returncode, shimmed.stdout, shimmed.stderr) == \
        (without.returncode, without.stdout, without.stderr), describe(shimmed)


@pytest.mark.parametrize("extra", ["", "require_tls = yes"])
def test_plaintext_smtp_on_a_port_not_in_the_policy_stays_usable(
        smtp_server, run, shim, message_file, extra):
    server = smtp_server(mode="plain")
    res = run(["curl", "--silent", "--show-error", "--max-time", "20",
               f"smtp://127.0.0.1:{server.port}", "--mail-from", FROM, "--mail-rcpt", TO,
               "--upload-file", message_file], shim(**POLICY_PORTS, extra=extra))
    assert res.returncode == 0, describe(res)
    assert server.messages() == [MESSAGE]
    assert not server.sessions[0].tls
