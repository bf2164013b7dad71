"""make demo: a careless mailer (curl --insecure) against an impostor and a real
server, without and with smtpguard. Everything runs on 127.0.0.1 in a temporary
folder; nothing on the machine is changed."""
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from lib.certs import make_certs  # noqa: E402
from lib.constants import FROM, MESSAGE, PASSWORD, TO, USER  # noqa: E402
from lib.smtpserver import SMTPServer  # noqa: E402


def say(text):
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def curl(port, msgfile, env):
    cmd = ["curl", "--silent", "--show-error", "--insecure", "--ssl-reqd", "--max-time", "20",
           f"smtp://localhost:{port}", "--user", f"{USER}:{PASSWORD}",
           "--mail-from", FROM, "--mail-rcpt", TO, "--upload-file", str(msgfile)]
    print("$ " + " ".join(cmd[:8]) + " --user sguser:***** ...", flush=True)
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    print((res.stdout + res.stderr).strip() or "(curl printed nothing)")
    print(f"curl exit status: {res.returncode}")


def received(server):
    got = server.credentials()
    print(f"the server on port {server.port} received credentials: {got or 'none'}; "
          f"messages: {len(server.messages())}")


def main():
    tmp = Path(tempfile.mkdtemp(prefix="smtpguard-demo-"))
    certs = make_certs(tmp / "certs")
    impostor = SMTPServer(certs.selfsigned, "starttls")
    impostor2 = SMTPServer(certs.selfsigned, "starttls")
    good = SMTPServer(certs.good, "starttls")
    msg = tmp / "message.eml"
    msg.write_bytes(MESSAGE)
    policy = tmp / "policy.conf"
    policy.write_text(f"smtp_ports = {impostor.port} {impostor2.port} {good.port}\n"
                      f"ca_file = {certs.ca}\nlog = stderr\n")
    plain = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "SMTPGUARD_POLICY")}
    guarded = dict(plain, LD_PRELOAD=str(REPO / "build/libsmtpguard.so"),
                   SMTPGUARD_POLICY=str(policy))
    try:
        say("1. Without smtpguard: curl --insecure talks to an impostor (self-signed certificate)")
        curl(impostor.port, msg, plain)
        received(impostor)
        say("2. The same command with LD_PRELOAD=build/libsmtpguard.so: refused before AUTH")
        curl(impostor2.port, msg, guarded)
        received(impostor2)
        say("3. With smtpguard, to the real server (certificate from the trusted CA): delivered")
        curl(good.port, msg, guarded)
        received(good)
        print(f"\npolicy used: {policy}\n" + policy.read_text())
    finally:
        for server in (impostor, impostor2, good):
            server.stop()


if __name__ == "__main__":
    main()
