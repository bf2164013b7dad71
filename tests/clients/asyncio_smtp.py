"""asyncio_smtp: a careless SMTP client on Python's asyncio, whose TLS is an
SSLObject over memory BIOs (no descriptor given to OpenSSL).

    asyncio_smtp.py HOST PORT starttls|implicit MESSAGE_FILE

implicit: asyncio.open_connection(..., ssl=ctx); starttls: plaintext greeting,
EHLO (STARTTLS must be offered), STARTTLS, then StreamWriter.start_tls
(loop.start_tls). The context
verifies nothing (CERT_NONE, no host check); SNI is HOST. Then EHLO, AUTH PLAIN
with the test credentials, MAIL, RCPT, DATA of MESSAGE_FILE, QUIT. Prints
"asyncio_smtp: delivered" and exits 0 only when the server took the message;
the run is bounded by a 20 s timeout.
"""
import asyncio
import base64
import ssl
import sys

USER, PASSWORD = "sguser", "Sg-S3cret-Pa55"
FROM, TO = "sender@example.com", "rcpt@example.com"


async def reply(reader, lines=None):
    for _ in range(100):
        line = await reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        if lines is not None:
            lines.append(line[4:].strip().upper())
        if line[3:4] != b"-":
            return int(line[:3])
    raise ConnectionError("endless reply")


async def command(reader, writer, line, want, lines=None):
    writer.write(line.encode() + b"\r\n")
    await writer.drain()
    code = await reply(reader, lines)
    if code != want:
        raise ConnectionError(f"{line.split()[0]}: got {code}, wanted {want}")


def stuffed(message):
    lines = message.split(b"\r\n")
    return b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines)


async def session(host, port, mode, message):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if mode == "implicit":
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx,
                                                       server_hostname=host)
    else:
        reader, writer = await asyncio.open_connection(host, port)
    if await reply(reader) != 220:
        raise ConnectionError("no greeting")
    if mode == "starttls":
        offered = []
        await command(reader, writer, "EHLO asyncio.example", 250, offered)
        if b"STARTTLS" not in offered:
            raise ConnectionError("the server offers no STARTTLS")
        await command(reader, writer, "STARTTLS", 220)
        await writer.start_tls(ctx, server_hostname=host)
    auth = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    await command(reader, writer, "EHLO asyncio.example", 250)
    await command(reader, writer, f"AUTH PLAIN {auth}", 235)
    await command(reader, writer, f"MAIL FROM:<{FROM}>", 250)
    await command(reader, writer, f"RCPT TO:<{TO}>", 250)
    await command(reader, writer, "DATA", 354)
    writer.write(stuffed(message))
    await command(reader, writer, ".", 250)
    writer.write(b"QUIT\r\n")
    await writer.drain()
    writer.close()


def main():
    host, port, mode, path = sys.argv[1:5]
    with open(path, "rb") as f:
        message = f.read()
    try:
        asyncio.run(asyncio.wait_for(session(host, int(port), mode, message), 20))
    except (OSError, ssl.SSLError, ConnectionError, asyncio.TimeoutError) as e:
        print(f"asyncio_smtp: failed: {type(e).__name__}: {e}")
        return 1
    print("asyncio_smtp: delivered")
    return 0


if __name__ == "__main__":
    sys.exit(main())
