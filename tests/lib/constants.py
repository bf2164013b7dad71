"""Test credentials, the test message and the scenario table (tests/HARNESS.md)."""

USER = "sguser"
PASSWORD = "Sg-S3cret-Pa55"
FROM = "sender@example.com"
TO = "rcpt@example.com"
SUBJECT = "smtpguard test"

# The body has lines that need dot-stuffing and UTF-8 beyond ASCII; CRLF line ends.
BODY = ("Hello from the smtpguard tests.\r\n"
        ".a line that starts with a dot\r\n"
        "..and one that starts with two\r\n"
        "Non-ASCII: Gr\u00fc\u00dfe, na\u00efve caf\u00e9, \u65e5\u672c\u8a9e\r\n"
        "The end.\r\n").encode("utf-8")

MESSAGE = (f"From: <{FROM}>\r\n"
           f"To: <{TO}>\r\n"
           f"Subject: {SUBJECT}\r\n"
           "Message-ID: <smtpguard-test@example.com>\r\n"
           "MIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Transfer-Encoding: 8bit\r\n"
           "\r\n").encode("ascii") + BODY

# scenario -> (certificate name in `certs`, server `tls` variant)
SCENARIOS = {
    "good": ("good", "modern"),
    "selfsigned": ("selfsigned", "modern"),
    "wronghost": ("wronghost", "modern"),
    "expired": ("expired", "modern"),
    "unknownca": ("unknownca", "modern"),
    "old": ("good", "old"),
    "weak": ("good", "weak"),
}
HOSTILE = [name for name in SCENARIOS if name != "good"]
