#!/usr/bin/python3
"""A real SMTP server for the integration tests: Debian's aiosmtpd.

Listens on 127.0.0.1 (an ephemeral port unless --port is given), prints
"PORT <n>" once it accepts connections, and stores every accepted message:
SPOOL/<n>.eml holds the message data exactly as aiosmtpd handed it over
(dot-unstuffed, CRLF line ends), SPOOL/<n>.json the envelope and whether
the message came over TLS.  Recipients can be refused with chosen replies.

    aiosmtpd-sink.py --spool DIR [--port N] [--tls-cert F --tls-key F]
                     [--tls-max-version TLSv1_1] [--reject ADDR=REPLY ...]
                     [--smtputf8] [--no-8bitmime] [--size N]

--tls-max-version caps the server's TLS version; below TLS 1.2 the
handshake with smtpout (TLS 1.2 and 1.3 only) fails: a real handshake
failure, for the plaintext-fallback paths.  --no-8bitmime leaves 8BITMIME
out of the EHLO reply (a 7-bit server); --size N is the SIZE limit, which
aiosmtpd checks against SIZE= and against the data it receives (default
256 MiB).
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, spool, rejects):
        self.spool = spool
        self.rejects = rejects
        self.count = 0

    async def handle_RCPT(self, server, session, envelope, address, options):
        reply = self.rejects.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        base = os.path.join(self.spool, str(self.count))
        with open(base + ".eml", "wb") as f:
            f.write(envelope.original_content)
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_to": envelope.rcpt_tos,
            "mail_options": envelope.mail_options,
            "tls": server._tls_protocol is not None,
            "size": len(envelope.original_content),
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 OK queued as %d" % self.count


class SevenBitSink(Sink):
    """A sink that does not offer 8BITMIME."""

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        return [r for r in responses if r[4:].upper() != "8BITMIME"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spool", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-max-version")
    ap.add_argument("--reject", action="append", default=[])
    ap.add_argument("--smtputf8", action="store_true")
    ap.add_argument("--no-8bitmime", action="store_true")
    ap.add_argument("--size", type=int, default=256 << 20)
    args = ap.parse_args()

    rejects = {}
    for r in args.reject:
        addr, reply = r.split("=", 1)
        rejects[addr.lower()] = reply
    ctx = None
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        if args.tls_max_version:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = ssl.TLSVersion[args.tls_max_version]

    handler = (SevenBitSink if args.no_8bitmime else Sink)(args.spool,
                                                           rejects)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(handler, hostname="sink.test.example",
                    tls_context=ctx, data_size_limit=args.size,
                    enable_SMTPUTF8=args.smtputf8, loop=loop)

    server = loop.run_until_complete(
        loop.create_server(factory, "127.0.0.1", args.port))
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
