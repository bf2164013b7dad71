"""Off-the-shelf mailers, each used the careless way: no certificate verification.

Each entry builds the command line for one delivery of constants.MESSAGE (or, for
mailers that compose the message themselves, of constants.BODY) to localhost:PORT,
in mode starttls or implicit, with the test credentials.
"""
from dataclasses import dataclass
from typing import Callable, Optional

from .constants import BODY, FROM, PASSWORD, SUBJECT, TO, USER
from .runner import REPO

PY = "/usr/bin/python3"
HOST = "localhost"   # a name, so that a host name is known to the TLS layer


@dataclass(frozen=True)
class Command:
    argv: list
    input: Optional[str] = None   # standard input (text)


@dataclass(frozen=True)
class Mailer:
    name: str
    build: Callable   # (port, mode, message_file) -> Command
    modes: tuple = ("starttls", "implicit")
    # Scenarios the mailer refuses by itself, without the shim: OpenSSL 3 at its default
    # security level (1) or above does not negotiate TLS 1.0 or 1.1 at all.
    refuses: frozenset = frozenset({"old"})


def _smtplib(port, mode, msgfile):
    script = REPO / "tests" / "mailers" / "smtplib_mailer.py"
    return Command([PY, script, mode, HOST, port, USER, PASSWORD, FROM, TO, msgfile])


def _swaks(port, mode, msgfile):
    tls = "--tls-on-connect" if mode == "implicit" else "--tls"
    return Command(["swaks", "--server", HOST, "--port", port, tls, "--timeout", "20",
                    "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
                    "--from", FROM, "--to", TO, "--data", f"@{msgfile}"])


def _curl(port, mode, msgfile):
    scheme = "smtps" if mode == "implicit" else "smtp"
    return Command(["curl", "--silent", "--show-error", "--insecure", "--ssl-reqd",
                    "--max-time", "20", f"{scheme}://{HOST}:{port}",
                    "--user", f"{USER}:{PASSWORD}", "--login-options", "AUTH=PLAIN",
                    "--mail-from", FROM, "--mail-rcpt", TO, "--upload-file", msgfile])


def _snail(port, mode, msgfile):
    scheme = "smtps" if mode == "implicit" else "smtp"
    starttls = [] if mode == "implicit" else ["-Ssmtp-use-starttls"]
    return Command(["s-nail", "-:/", "-Sv15-compat", "-Sttycharset=utf-8",
                    "-Smime-encoding=8bit", "-Ssendwait", "-Snosave",
                    f"-Smta={scheme}://{USER}:{PASSWORD}@{HOST}:{port}", *starttls,
                    "-Stls-verify=ignore", "-Ssmtp-auth=plain",
                    "-r", FROM, "-s", SUBJECT, "-.", TO],
                   input=BODY.decode("utf-8").replace("\r\n", "\n"))


MAILERS = [
    Mailer("smtplib", _smtplib),
    Mailer("swaks", _swaks),
    Mailer("curl", _curl),
    Mailer("s-nail", _snail),
]
