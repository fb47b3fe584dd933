#!/usr/bin/python3
"""Measures one benchmark client run for tests/bench/run.sh.

Every mode prints one line

    RESULT messages=N wall=SECONDS cpu=SECONDS [tls=N resumed=N]

where cpu is user + system time of the client alone:

  run N CMD...         runs CMD once (it sends N messages); wall and CPU come
                       from wait4(), so every client is measured the same way
                       (smtpout-bench, smtp-source, tls-floor).
  spawn N FILE CMD...  runs CMD N times in a row with FILE on standard input
                       (msmtp, swaks: one process per message, as they are
                       used); CPU is the sum over the N processes.
  smtplib N HOST PORT CA MX [reuse] [--plain] [--from A] [--to B]
                       Python's smtplib: a new connection per message with
                       starttls() verifying against CA and the name MX (or
                       one connection for all with "reuse"; no STARTTLS
                       with --plain); the envelope is foo@vm to foo@vm
                       unless --from/--to say otherwise; CPU is the loop's
                       own, interpreter start-up excluded.

Exits non-zero when the client failed.
"""
import os
import re
import resource
import smtplib
import ssl
import subprocess
import sys
import time

# The message smtpout-bench and tls-floor send (smtp-source's shape).
MESSAGE = ("From: <foo@vm>\r\nTo: <foo@vm>\r\n"
           "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
           "Message-Id: <0001.0002.0003@vm>\r\n\r\n"
           "La de da de da 1.\r\nLa de da de da 2.\r\n"
           "La de da de da 3.\r\nLa de da de da 4.\r\n")


def report(n, wall, cpu, extra=""):
    print("RESULT messages=%d wall=%.4f cpu=%.4f%s" % (n, wall, cpu, extra),
          flush=True)


def run(n, cmd):
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    out = proc.stdout.read().decode(errors="replace")
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit("%s exited %d" % (cmd[0], proc.returncode))
    # smtpout-bench says how many TLS sessions it had and resumed.
    extra = "".join(" " + m for m in
                    re.findall(r"\b(?:tls|resumed)=\d+", out))
    report(n, wall, ru.ru_utime + ru.ru_stime, extra)


def spawn(n, path, cmd):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    for _ in range(n):
        with open(path, "rb") as f:
            rc = subprocess.call(cmd, stdin=f, stdout=subprocess.DEVNULL)
        if rc != 0:
            sys.exit("%s exited %d" % (cmd[0], rc))
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    report(n, wall, cpu)


def smtplib_loop(n, host, port, ca, mx, reuse, plain=False, sender="foo@vm",
                 rcpt="foo@vm"):
    ctx = None if plain else ssl.create_default_context(cafile=ca)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    sent = 0
    while sent < n:
        s = smtplib.SMTP(host, port, local_hostname="vm")
        s.ehlo()
        if not plain:
            # starttls() checks the certificate against self._host: make it
            # the MX name, as smtpout and the other clients do.
            s._host = mx
            s.starttls(context=ctx)
            s.ehlo()
        while True:
            refused = s.sendmail(sender, [rcpt], MESSAGE)
            if refused:
                sys.exit("smtplib: refused %r" % refused)
            sent += 1
            if not reuse or sent >= n:
                break
        s.quit()
    wall = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    report(n, wall, cpu)


def main(argv):
    mode, n = argv[1], int(argv[2])
    if mode == "run":
        run(n, argv[3:])
    elif mode == "spawn":
        spawn(n, argv[3], argv[4:])
    elif mode == "smtplib":
        rest = argv[7:]
        opts = {}
        for flag, key in (("--from", "sender"), ("--to", "rcpt")):
            if flag in rest:
                i = rest.index(flag)
                opts[key] = rest[i + 1]
                del rest[i:i + 2]
        smtplib_loop(n, argv[3], int(argv[4]), argv[5], argv[6],
                     "reuse" in rest, plain="--plain" in rest, **opts)
    else:
        sys.exit("unknown mode " + mode)


if __name__ == "__main__":
    main(sys.argv)
