"""A client that sets TLS up, then chroots into an empty folder and drops to
nobody before it connects (as Postfix's smtp client does) is still judged
against the policy and its trust store: the shim reads both before chroot,
also the anchors of a bundle with a prepared index (read from the file only
when a chain names them otherwise: after the chroot that path names nothing)."""
import os
import subprocess

import pytest

from lib.constants import BODY, PASSWORD, USER
from lib.runner import CLIENTS, OUT, describe

NOBODY = "65534"


@pytest.mark.parametrize("prepared", [False, True])
@pytest.mark.parametrize("cert,ok", [("good", True), ("selfsigned", False)])
def test_policy_and_store_survive_chroot(cert, ok, prepared, smtp_server, shim, run,
                                         message_file, certs, tmp_path):
    jail = tmp_path / "jail"
    jail.mkdir()
    server = smtp_server(cert)
    env = shim([server.port])
    if prepared:
        cache = tmp_path / "cache"
        made = subprocess.run([OUT / "smtpguard-trust-index", "-d", cache, certs.ca],
                              capture_output=True, text=True, timeout=30)
        assert made.returncode == 0, made.stderr
        env["SMTPGUARD_TRUST_CACHE"] = str(cache)
    env["SG_CHROOT"], env["SG_SETUID"] = str(jail), NOBODY
    message = jail / "message.eml"  # read before the chroot, by its outside path
    message.write_bytes(message_file.read_bytes())
    res = run([CLIENTS / "careless", "verify_none", "127.0.0.1", server.port, "starttls",
               message], env)
    if ok:
        assert res.returncode == 0, describe(res)
        assert server.credentials() == [(USER, PASSWORD, True)] and BODY in server.messages()[0]
    else:
        assert res.returncode != 0, describe(res)
        assert server.credentials() == [] and server.transactions() == [], describe(res)
    assert os.listdir(jail) == ["message.eml"]
