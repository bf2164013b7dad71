"""A careless mailer: Python smtplib as most scripts use it.

usage: smtplib_mailer.py starttls|implicit HOST PORT USER PASSWORD FROM TO MESSAGE_FILE

starttls uses smtplib's default starttls() (no certificate verification);
implicit uses SMTP_SSL with ssl._create_unverified_context(). Exit 0 only when the
message was accepted.
"""
import smtplib
import ssl
import sys


def main(mode, host, port, user, password, sender, rcpt, path):
    with open(path, "rb") as f:
        message = f.read()
    if mode == "implicit":
        client = smtplib.SMTP_SSL(host, int(port), timeout=20,
                                  context=ssl._create_unverified_context())
    else:
        client = smtplib.SMTP(host, int(port), timeout=20)
    with client:
        if mode != "implicit":
            client.starttls()
        client.login(user, password)
        client.sendmail(sender, [rcpt], message)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
