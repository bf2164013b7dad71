"""Off-the-shelf GnuTLS mailers from Debian, each configured the careless way, and the
careless GnuTLS C client (tests/clients/careless_gnutls.c) in each of its styles.

Same contract as lib/mailers.py: `build(port, mode, message_file)` gives the Command of
one delivery to localhost:PORT (starttls or implicit) with the test credentials.
Configuration files go beside the message file (the test's own tmp folder).
"""
import os
from dataclasses import dataclass
from pathlib import Path

from .constants import BODY, FROM, PASSWORD, SUBJECT, TO, USER
from .mailers import HOST, PY, Command, Mailer
from .runner import BUILD, CLIENTS, REPO

DEBS_ROOT = BUILD / "debs" / "root"          # scripts/fetch-debs unpacks here
DEBS = ("ssmtp", "exim4-daemon-light")       # run from there, never installed
SSMTP = DEBS_ROOT / "usr/sbin/ssmtp"
EXIM = DEBS_ROOT / "usr/sbin/exim4"
CARELESS = CLIENTS / "careless_gnutls"
STYLES = ("accept_all", "tls10_priority", "no_verify", "no_sni", "nonblocking", "callbacks",
          "good", "decoy")
# The scenarios a certificate check alone catches (old and weak pass GnuTLS's defaults).
BAD_CERTS = frozenset({"selfsigned", "wronghost", "expired", "unknownca"})


@dataclass(frozen=True)
class GnuMailer(Mailer):
    # GnuTLS's default priorities still allow TLS 1.0 and RSA key exchange.
    refuses: frozenset = frozenset()
    exact: bool = False          # sends the message file untouched (else composes one)
    program: Path = None         # what must exist to run it
    says_why: bool = False       # prints gnutls_strerror of a failed handshake
    probe: tuple = ()            # a command that must succeed on this machine to run it


def accepted_certs(msgfile):
    """The certificates the user once accepted for good ("(a)ccept always"), for mailers
    that keep such a store: the test writes the server's certificate there."""
    return Path(msgfile).parent / "accepted-certs.pem"


def _config(msgfile, name, text, mode=0o600):
    path = Path(msgfile).parent / name
    path.write_text(text)
    os.chmod(path, mode)   # msmtp refuses a password file others can read
    return path


def _message(msgfile):
    return Path(msgfile).read_bytes().decode("utf-8")


def _msmtp(port, mode, msgfile):
    starttls = "off" if mode == "implicit" else "on"
    config = _config(msgfile, f"msmtprc-{port}",
                     f"account default\nhost {HOST}\nport {port}\nfrom {FROM}\n"
                     f"auth plain\nuser {USER}\npassword {PASSWORD}\n"
                     f"tls on\ntls_starttls {starttls}\ntls_certcheck off\n"
                     "set_date_header off\ntimeout 20\n")
    return Command(["msmtp", "-C", config, "--", TO], input=_message(msgfile))


def _ssmtp(port, mode, msgfile):
    tls = "UseTLS=YES" if mode == "implicit" else "UseSTARTTLS=YES"
    config = _config(msgfile, f"ssmtp-{port}.conf",
                     f"mailhub={HOST}:{port}\n{tls}\nAuthUser={USER}\nAuthPass={PASSWORD}\n"
                     "FromLineOverride=YES\nhostname=careless.example\n")
    return Command([SSMTP, "-C", config, "-f", FROM, TO], input=_message(msgfile))


def _mutt(port, mode, msgfile):
    # Batch mode never asks about a certificate: it refuses unless the certificate is
    # one the user accepted for good (certificate_file), the check of names and dates
    # is off and old protocol versions are allowed.
    scheme = "smtps" if mode == "implicit" else "smtp"
    config = _config(msgfile, f"muttrc-{port}",
                     f'set smtp_url="{scheme}://{USER}@{HOST}:{port}/"\n'
                     f'set smtp_pass="{PASSWORD}"\nset smtp_authenticators="plain"\n'
                     "set ssl_starttls=yes\nset ssl_force_tls=yes\n"
                     f'set certificate_file="{accepted_certs(msgfile)}"\n'
                     "set ssl_verify_host=no\nset ssl_verify_dates=no\n"
                     "set ssl_use_tlsv1=yes\nset ssl_use_tlsv1_1=yes\n"
                     f'set from="{FROM}"\nset use_from=yes\nset hostname="careless.example"\n'
                     'set record=""\nset copy=no\nset send_charset="utf-8"\n')
    return Command(["mutt", "-n", "-F", config, "-s", SUBJECT, TO], input=_body())


def _mailutils(port, mode, msgfile):
    # No trust configured: mailutils then does not verify the certificate at all; it
    # uses STARTTLS whenever the server offers it.
    scheme = "smtps" if mode == "implicit" else "smtp"
    url = f"{scheme}://{USER}:{PASSWORD}@{HOST}:{port};auth=PLAIN"
    return Command(["mail.mailutils", "--no-config", "-E", f'set sendmail="{url}"',
                    "-r", FROM, "-s", SUBJECT, TO], input=_body())


def _exim(port, mode, msgfile):
    return Command([PY, REPO / "tests" / "mailers" / "gnutls_exim.py", EXIM, port, mode,
                    msgfile])


def _body():
    """What a user types: constants.BODY with Unix line ends."""
    return BODY.decode("utf-8").replace("\r\n", "\n")


def careless(style):
    def build(port, mode, msgfile):
        return Command([CARELESS, style, HOST, port, mode, msgfile])
    return GnuMailer(f"careless_gnutls {style}", build, exact=True, says_why=True,
                     program=CARELESS, refuses=BAD_CERTS if style == "good" else frozenset())


MAILERS = [
    GnuMailer("msmtp", _msmtp, exact=True, says_why=True, program=Path("/usr/bin/msmtp")),
    GnuMailer("ssmtp", _ssmtp, program=SSMTP),
    GnuMailer("mutt", _mutt, says_why=True, program=Path("/usr/bin/mutt")),
    GnuMailer("mailutils", _mailutils, program=Path("/usr/bin/mail.mailutils")),
    GnuMailer("exim4", _exim, says_why=True, program=EXIM,   # says why in its log
              probe=("unshare", "-m", "true")),
]
CLIENT_MAILERS = [careless(style) for style in STYLES]
