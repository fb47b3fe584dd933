#!/usr/bin/python3
"""The latency lab's server: a Postfix smtpd from tests/servers/postfix.py
(PIPELINING, CHUNKING, STARTTLS with the given certificate), run inside the
lab's server namespace by tests/bench/latency-lab.sh.

    lab-postfix.py ROOT CERT KEY

Prints "PORT <n>" once Postfix listens (on 127.0.0.1 of the namespace it
runs in), stops it on SIGTERM, and then prints smtpd's per-connection
command counters, one "SESSION ..." line per connection (e.g. "SESSION
ehlo=2 starttls=1 mail=1 rcpt=1 data=1 quit=1 commands=7")."""
import os
import re
import signal
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import postfix  # noqa: E402


def main():
    root, cert, key = sys.argv[1:4]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    # Further arguments are main.cf lines ("smtpd_tls_session_cache_timeout
    # = 0": no session tickets).
    pf = postfix.Postfix(root, tls=(cert, key), main_cf=sys.argv[4:])
    pf.start()
    try:
        print("PORT %d" % pf.port, flush=True)
        while True:
            signal.pause()
    finally:
        log = pf.log()
        pf.stop()
        for counters in re.findall(
                r"smtpd\[\d+\]: disconnect from \S+ (.*)", log):
            if "commands=0/0" not in counters:
                print("SESSION " + counters, flush=True)


if __name__ == "__main__":
    main()
