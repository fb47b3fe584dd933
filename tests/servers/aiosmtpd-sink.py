#!/usr/bin/python3
"""A real SMTP server for the integration tests: Debian's aiosmtpd.

Listens on 127.0.0.1 (an ephemeral port unless --port is given), prints
"PORT <n>" once it accepts connections, and stores every accepted message:
SPOOL/<n>.eml holds the message data exactly as aiosmtpd handed it over
(dot-unstuffed, CRLF line ends), SPOOL/<n>.json the envelope and whether
the message came over TLS.  Recipients can be refused with chosen replies.

    aiosmtpd-sink.py --spool DIR [--host ADDR] [--port N]
                     [--tls-cert F --tls-key F]
                     [--tls-max-version TLSv1_1] [--reject ADDR=REPLY ...]
                     [--smtputf8] [--no-8bitmime] [--size N]
                     [--implicit-tls] [--requiretls]
                     [--auth-users FILE [--auth-required]
                      [--auth-cleartext]]

--host is the address to listen on (default 127.0.0.1): the DNS lab gives
each MX host its own loopback address.

--tls-max-version caps the server's TLS version; below TLS 1.2 the
handshake with smtpout (TLS 1.2 and 1.3 only) fails: a real handshake
failure, for the plaintext-fallback paths.  --no-8bitmime leaves 8BITMIME
out of the EHLO reply (a 7-bit server); --size N is the SIZE limit, which
aiosmtpd checks against SIZE= and against the data it receives (default
256 MiB).

--implicit-tls speaks TLS from the first byte (RFC 8314 "submissions",
port 465 style) with --tls-cert/--tls-key, and offers no STARTTLS.

--requiretls offers REQUIRETLS (RFC 8689) in the EHLO reply after
STARTTLS, never before it, and accepts MAIL FROM:<...> REQUIRETLS (which
aiosmtpd alone refuses as an unknown parameter).  Every MAIL command is
appended to SPOOL/mail.log as one JSON object: the sender, whether it
carried REQUIRETLS, whether it came over TLS; a stored message's
SPOOL/<n>.json has "requiretls" too.

--auth-users offers AUTH PLAIN and LOGIN (aiosmtpd's own mechanisms),
checked against FILE, one "user:password" per line.  As aiosmtpd does by
default, AUTH is offered and accepted only over TLS (STARTTLS or implicit),
unless --auth-cleartext makes this a server that takes credentials in
clear (the tests that smtpout never sends them so).  --auth-required
refuses MAIL before AUTH (530).  Every AUTH attempt is appended to
SPOOL/auth.log as one JSON object: mechanism, user, success and whether
it came over TLS, never the password; a stored message's SPOOL/<n>.json
has "auth_user", the user its session authenticated as (or null).
"""
import argparse
import asyncio
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult


def is_tls(server, implicit):
    return implicit or server._tls_protocol is not None


class Authenticator:
    """Checks PLAIN/LOGIN credentials against the users file and logs
    every attempt (never the password)."""

    def __init__(self, users_file, spool, implicit):
        self.users = {}
        with open(users_file, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\n")
                if line and not line.startswith("#"):
                    user, password = line.split(":", 1)
                    self.users[user.encode()] = password.encode()
        self.log = os.path.join(spool, "auth.log")
        self.implicit = implicit

    def __call__(self, server, session, envelope, mechanism, auth_data):
        user, password = auth_data.login, auth_data.password
        ok = self.users.get(user) == password
        with open(self.log, "a") as f:
            f.write(json.dumps({
                "mechanism": mechanism,
                "user": user.decode(errors="replace"),
                "success": ok,
                "tls": is_tls(server, self.implicit),
            }) + "\n")
        if ok:
            return AuthResult(success=True, auth_data=auth_data)
        # smtp_AUTH answers "535 5.7.8 Authentication credentials invalid".
        return AuthResult(success=False, handled=False)


class Sink:
    def __init__(self, spool, rejects, implicit=False):
        self.spool = spool
        self.rejects = rejects
        self.implicit = implicit
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
            "tls": is_tls(server, self.implicit),
            "size": len(envelope.original_content),
            "auth_user": (session.login_data.decode(errors="replace")
                          if session.authenticated and session.login_data
                          else None),
            "requiretls": getattr(envelope, "requiretls", False),
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(meta, f)
        os.rename(base + ".json.tmp", base + ".json")
        return "250 2.0.0 OK queued as %d" % self.count


class RequireTlsSMTP(SMTP):
    """aiosmtpd with RFC 8689 REQUIRETLS: the EHLO keyword after TLS only,
    the MAIL parameter taken off before aiosmtpd checks the others, and
    every MAIL logged."""

    def __init__(self, *args, spool=None, implicit=False, **kw):
        super().__init__(*args, **kw)
        self.mail_log = os.path.join(spool, "mail.log")
        self.implicit = implicit

    async def smtp_EHLO(self, arg):
        # aiosmtpd writes its EHLO reply itself: wrap push() to put the
        # keyword before the last line, only on a TLS connection.
        if not is_tls(self, self.implicit):
            return await super().smtp_EHLO(arg)
        push = self.push

        async def push_with_requiretls(status):
            if status.startswith("250 "):
                await push("250-REQUIRETLS")
            await push(status)

        self.push = push_with_requiretls
        try:
            return await super().smtp_EHLO(arg)
        finally:
            self.push = push

    async def smtp_MAIL(self, arg):
        words = (arg or "").split(" ")
        requiretls = any(w.upper() == "REQUIRETLS" for w in words[1:])
        if requiretls:
            arg = " ".join([words[0]] + [w for w in words[1:]
                                         if w.upper() != "REQUIRETLS"])
        with open(self.mail_log, "a") as f:
            f.write(json.dumps({"mail": arg, "requiretls": requiretls,
                                "tls": is_tls(self, self.implicit)}) + "\n")
        if requiretls and not is_tls(self, self.implicit):
            # RFC 8689 section 4.1: only over TLS.
            await self.push("530 5.7.10 REQUIRETLS needs TLS")
            return
        await super().smtp_MAIL(arg)
        if requiretls and self.envelope.mail_from is not None:
            self.envelope.requiretls = True


class SevenBitSink(Sink):
    """A sink that does not offer 8BITMIME."""

    async def handle_EHLO(self, server, session, envelope, hostname,
                          responses):
        session.host_name = hostname
        return [r for r in responses if r[4:].upper() != "8BITMIME"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spool", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--requiretls", action="store_true")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-max-version")
    ap.add_argument("--reject", action="append", default=[])
    ap.add_argument("--smtputf8", action="store_true")
    ap.add_argument("--no-8bitmime", action="store_true")
    ap.add_argument("--size", type=int, default=256 << 20)
    ap.add_argument("--implicit-tls", action="store_true")
    ap.add_argument("--auth-users")
    ap.add_argument("--auth-required", action="store_true")
    ap.add_argument("--auth-cleartext", action="store_true")
    args = ap.parse_args()
    if args.implicit_tls and not args.tls_cert:
        ap.error("--implicit-tls needs --tls-cert and --tls-key")
    if (args.auth_required or args.auth_cleartext) and not args.auth_users:
        ap.error("--auth-required and --auth-cleartext need --auth-users")

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

    handler = (SevenBitSink if args.no_8bitmime else Sink)(
        args.spool, rejects, args.implicit_tls)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    auth = {}
    if args.auth_users:
        auth = dict(
            authenticator=Authenticator(args.auth_users, args.spool,
                                        args.implicit_tls),
            auth_required=args.auth_required,
            # aiosmtpd knows TLS only from its own STARTTLS: under
            # implicit TLS every connection is TLS already.
            auth_require_tls=not (args.auth_cleartext or args.implicit_tls))

    extra = {}
    cls = SMTP
    if args.requiretls:
        cls = RequireTlsSMTP
        extra = dict(spool=args.spool, implicit=args.implicit_tls)

    def factory():
        return cls(handler, hostname="sink.test.example",
                   tls_context=None if args.implicit_tls else ctx,
                   data_size_limit=args.size,
                   enable_SMTPUTF8=args.smtputf8, loop=loop, **auth, **extra)

    server = loop.run_until_complete(
        loop.create_server(factory, args.host, args.port,
                           ssl=ctx if args.implicit_tls else None))
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    try:
        loop.run_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
