#!/usr/bin/python3
"""Delivers messages with the low-level smtpout.Session inside asyncio: an
asyncio.Protocol feeds the session and writes what it asks for; a timer
handle follows the session's deadline.

    asyncio_send.py --server HOST:PORT --mx-name NAME --from ADDR
                    --to ADDR [--to ADDR ...] [--ca-file FILE]
                    [--config FILE] [--connections N] < message

Opens N connections at once (default 1), one message each; prints one
line per recipient; exits 0 when every recipient was delivered, else 75.
"""
import argparse
import asyncio
import sys

import smtpout


class SessionProtocol(asyncio.Protocol):
    """Runs one smtpout.Session over an asyncio transport.  The session's
    clock is the loop's (loop.time(), in milliseconds)."""

    def __init__(self, session):
        self.session = session
        self.done = asyncio.get_running_loop().create_future()
        self.transport = None
        self.timer = None
        self.paused = False

    @staticmethod
    def now():
        return int(asyncio.get_running_loop().time() * 1000)

    # asyncio callbacks --------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self.session.start(self.now())
        self.pump()

    def data_received(self, data):
        self.session.feed(data, self.now())
        self.pump()

    def eof_received(self):
        self.session.feed_eof(self.now())
        self.pump()
        return False

    def connection_lost(self, exc):
        if not self.session.is_done:
            self.session.feed_eof(self.now())
        self.finish()

    def pause_writing(self):
        # The transport's buffer is full: stop pulling output (and with it
        # the message body) from the session until it drains.
        self.paused = True

    def resume_writing(self):
        self.paused = False
        self.pump()

    # driving the session ------------------------------------------------

    def pump(self):
        """Moves output to the transport, re-arms the timer, and closes
        the connection once the session is done."""
        try:
            while not self.paused and self.session.want_write:
                data = self.session.peek_output(self.now())
                if not data:
                    break
                # The transport buffers everything it is given.
                self.transport.write(data)
                self.session.consume_output(len(data), self.now())
            if self.session.is_done:
                self.transport.close()
                self.finish()
                return
            self.arm_timer()
        except BaseException as e:  # a callback's exception, re-raised
            self.transport.abort()
            if not self.done.done():
                self.done.set_exception(e)

    def arm_timer(self):
        if self.timer:
            self.timer.cancel()
        expiry = self.session.expiry
        if expiry is not None:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_at(expiry / 1000.0, self.expired)

    def expired(self):
        self.timer = None
        self.session.handle_expiry(self.now())
        self.pump()

    def finish(self):
        if self.timer:
            self.timer.cancel()
            self.timer = None
        if not self.done.done():
            self.done.set_result(self.session)


async def deliver(host, port, mx_name, sender, recipients, body,
                  **session_args):
    """One message over one connection; returns (results, TLSInfo)."""
    loop = asyncio.get_running_loop()
    with smtpout.Session(mx_name, **session_args) as s:
        s.submit(sender, recipients, body)
        s.quit()
        _, proto = await loop.create_connection(
            lambda: SessionProtocol(s), host, port)
        await proto.done
        return list(s.results), s.tls_info


async def main_async(args, body):
    host, _, port = args.server.rpartition(":")
    config = smtpout.Config.load_file(args.config) if args.config else None
    jobs = [deliver(host, int(port), args.mx_name or host, args.sender,
                    args.to, body, config=config, ca_file=args.ca_file)
            for _ in range(args.connections)]
    return await asyncio.gather(*jobs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--mx-name")
    ap.add_argument("--from", dest="sender", required=True)
    ap.add_argument("--to", action="append", required=True)
    ap.add_argument("--ca-file")
    ap.add_argument("--config")
    ap.add_argument("--connections", type=int, default=1)
    args = ap.parse_args()
    outcomes = asyncio.run(main_async(args, sys.stdin.buffer.read()))
    ok = True
    for results, tls in outcomes:
        for r in results:
            ok &= r.delivered
            print("%s %s %d %s %s" % (r.recipient, r.status.name.lower(),
                                      r.code, r.enhanced, r.text))
        print("tls %s verified=%s" % (tls.outcome_name, tls.verified))
    return 0 if ok else 75


if __name__ == "__main__":
    sys.exit(main())
