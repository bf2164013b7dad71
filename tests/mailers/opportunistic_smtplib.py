"""An opportunistic mailer: Python smtplib calling starttls() only when offered.

usage: opportunistic_smtplib.py HOST PORT USER PASSWORD FROM TO MESSAGE_FILE

This is the pattern of countless scripts: encryption when the server offers it,
plaintext otherwise, the password either way. Exit 0 only when the message was accepted.
"""
import smtplib
import sys


def main(host, port, user, password, sender, rcpt, path):
    with open(path, "rb") as f:
        message = f.read()
    with smtplib.SMTP(host, int(port), timeout=20) as client:
        client.ehlo_or_helo_if_needed()
        if client.has_extn("starttls"):
            client.starttls()   # smtplib's default: no certificate verification
        client.login(user, password)
        client.sendmail(sender, [rcpt], message)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
