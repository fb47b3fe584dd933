#!/usr/bin/python3
"""Delivers one message with the low-level smtpout.Session, driven by a
selectors loop: the pattern to follow when Python owns the sockets.

    selectors_send.py --server HOST:PORT --mx-name NAME --from ADDR
                      --to ADDR [--to ADDR ...] [--ca-file FILE]
                      [--config FILE] < message

Prints one line per recipient and the TLS outcome; exits 0 when every
recipient was delivered, 75 otherwise.
"""
import argparse
import selectors
import socket
import sys

import smtpout


def run(sessions):
    """Runs {socket: Session} until every session is done.  One selector,
    one deadline per session; no threads."""
    sel = selectors.DefaultSelector()
    for sock, s in sessions.items():
        sel.register(sock, selectors.EVENT_READ, s)
    live = dict(sessions)
    while live:
        # Interest follows what each session wants right now.
        for sock, s in live.items():
            events = ((selectors.EVENT_READ if s.want_read else 0) |
                      (selectors.EVENT_WRITE if s.want_write else 0))
            sel.modify(sock, events or selectors.EVENT_READ, s)
        timeouts = [t for t in (s.timeout() for s in live.values())
                    if t is not None]
        ready = sel.select(min(timeouts) if timeouts else None)
        for key, mask in ready:
            s = key.data
            if mask & selectors.EVENT_READ:
                s.receive(key.fileobj)
            # Write at once: a reply usually lets the session send more.
            s.flush(key.fileobj)
        for sock, s in list(live.items()):
            s.handle_expiry()   # a no-op before the deadline
            s.flush(sock)
            if s.is_done:
                sel.unregister(sock)
                sock.close()
                del live[sock]
    sel.close()


def deliver(host, port, mx_name, sender, recipients, body, **session_args):
    """One message over one connection.  Returns the Session (closed) with
    its .results and the TLS outcome in .tls."""
    sock = socket.create_connection((host, port), timeout=30)
    sock.setblocking(False)
    s = smtpout.Session(mx_name, **session_args)
    try:
        s.start()
        s.submit(sender, recipients, body)
        s.quit()
        run({sock: s})
        s.tls = s.tls_info
    finally:
        s.close()
    return s


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server", required=True)
    ap.add_argument("--mx-name")
    ap.add_argument("--from", dest="sender", required=True)
    ap.add_argument("--to", action="append", required=True)
    ap.add_argument("--ca-file")
    ap.add_argument("--config")
    args = ap.parse_args()
    host, _, port = args.server.rpartition(":")
    config = smtpout.Config.load_file(args.config) if args.config else None
    s = deliver(host, int(port), args.mx_name or host, args.sender, args.to,
                sys.stdin.buffer.read(), config=config, ca_file=args.ca_file)
    for r in s.results:
        print("%s %s %d %s %s" % (r.recipient, r.status, r.code,
                                  r.enhanced, r.text))
    print("tls %s verified=%s %s" % (s.tls.outcome, s.tls.verified,
                                     s.tls.verify_error or ""))
    return 0 if all(r.delivered for r in s.results) else 75


if __name__ == "__main__":
    sys.exit(main())
