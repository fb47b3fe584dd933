#!/usr/bin/python3
"""Delivers one message over N connections at once with smtpout.aio.send():
one thread, asyncio's loop driving every session (see docs/python.md).

    asyncio_send.py --server HOST:PORT --mx-name NAME --from ADDR
                    --to ADDR [--to ADDR ...] [--ca-file FILE]
                    [--config FILE] [--connections N] < message

Prints one line per recipient and connection; exits 0 when every
recipient was delivered, else 75.
"""
import argparse
import asyncio
import sys

import smtpout
import smtpout.aio


async def main_async(args, message):
    jobs = [smtpout.aio.send(args.server, args.mx_name, args.sender, args.to,
                             message, config=args.config,
                             ca_file=args.ca_file)
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
    results = asyncio.run(main_async(args, sys.stdin.buffer.read()))
    for res in results:
        for r in res.recipients:
            print(r.recipient, r.status, r.code, r.enhanced, r.text)
        print("tls %s verified=%s" % (res.tls.outcome, res.tls.verified))
    return 0 if all(res.all_delivered for res in results) else 75


if __name__ == "__main__":
    sys.exit(main())
