"""Every host acknowledges at once a read that leaves its session with
nothing to send (docs/event-loop.md), so that a server whose next reply
waits for that ACK (Nagle) does not wait for the client's delayed ACK.

The server is tests/servers/nagle-sink.py: like Postfix's smtpd it writes
two TLS 1.3 session tickets right after the handshake and keeps Nagle on,
so its reply to the EHLO sent with the client's Finished is held until the
tickets are acknowledged (40 ms per message against Postfix before the
hosts did this).  Each host runs under strace, and the test reads the
order of its system calls on the connection, never the time: every recv()
that returned data is followed, before the host waits again or reads
again, by a send() (the ACK rides on it), a setsockopt(TCP_QUICKACK), or
the close of a finished connection; and the tickets made at least one
such ACK necessary."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from testlib import (BUILD, PYTHON, SANITIZED, SOURCE,  # noqa: E402
                     ServerProcess, TempDirTest, cert, certs, main)

STRACE = shutil.which("strace")
SINK = os.path.join(SOURCE, "tests", "servers", "nagle-sink.py")
EXAMPLES = os.path.join(BUILD, "examples")
PYDIR = os.path.join(SOURCE, "examples", "python")

SYSCALL = re.compile(r"^(\w+)\((\d+)?(.*)\)\s+=\s+(-?\d+)")
WAITS = ("poll", "ppoll", "epoll_wait", "epoll_pwait", "epoll_pwait2",
         "select", "pselect6")


def strace_works():
    if STRACE is None:
        return False
    return subprocess.run([STRACE, "-o", os.devnull, "true"],
                          capture_output=True).returncode == 0


def check_trace(lines, port):
    """(reads left without an ACK, ACKs asked for, connections) over the
    connections to `port`: a read of data followed by a wait or another
    read, with no send, TCP_QUICKACK or close in between, is late."""
    active = set()   # descriptors connected to the server right now
    pending = None   # the read that still needs an ACK
    late, acks, connections = [], 0, 0
    for line in lines:
        m = SYSCALL.match(line)
        if not m:
            continue
        call, fd, rest, ret = m.group(1), m.group(2), m.group(3), \
            int(m.group(4))
        if call == "connect" and "htons(%d)" % port in rest:
            active.add(fd)
            connections += 1
            continue
        if call in WAITS or (call in ("recvfrom", "read") and fd in active):
            if pending is not None:
                late.append(pending)
                pending = None
        if fd not in active:
            continue
        if call in ("recvfrom", "read") and ret > 0:
            pending = "a read of %d bytes on fd %s" % (ret, fd)
        elif call in ("sendto", "write"):
            pending = None
        elif call == "close":
            pending = None
            active.discard(fd)
        elif call == "setsockopt" and "TCP_QUICKACK, [1]" in rest:
            acks += 1
            pending = None
    return late, acks, connections


@unittest.skipUnless(strace_works(), "needs strace (and ptrace)")
class PromptAck(TempDirTest):
    def setUp(self):
        super().setUp()
        chain, key = cert("valid")
        self.server = ServerProcess([PYTHON, SINK, "--tls-cert", chain,
                                     "--tls-key", key])
        self.addCleanup(self.server.stop)
        self.ca = os.path.join(certs(), "ca.pem")
        self.target = "127.0.0.1:%d" % self.server.port

    def traced(self, argv, data=None, extra_env=None):
        fd, log = tempfile.mkstemp(prefix="smtpout-strace-")
        os.close(fd)
        self.addCleanup(os.unlink, log)
        # LeakSanitizer cannot run under ptrace; the other tests check
        # for leaks.
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") +
                               ":detect_leaks=0").lstrip(":")
        env.update(extra_env or {})
        p = subprocess.run([STRACE, "-qq", "-e", "signal=none", "-e",
                            "trace=connect,recvfrom,read,sendto,write,"
                            "setsockopt,close,%s" % ",".join(WAITS),
                            "-o", log] + argv,
                           input=data, capture_output=True, timeout=120,
                           env=env)
        self.assertEqual(p.returncode, 0, p.stderr.decode(errors="replace")
                         + p.stdout.decode(errors="replace"))
        with open(log, errors="replace") as f:
            return f.read().splitlines()

    def check(self, argv, data=None, extra_env=None, connections=1):
        """Runs the host under strace: no read of data may be left
        unacknowledged while it waits.  The tickets come alone, with
        nothing to answer, when the host reads them before its kernel's
        delayed ACK (40 ms) lets the server's reply follow them; a host
        slowed down (a sanitizer, a loaded machine) may read both at
        once, and then has something to send.  So the run is repeated,
        a few times at most, until one needed the ACK on every
        connection: at least one TCP_QUICKACK each."""
        for _ in range(3):
            lines = self.traced(argv, data, extra_env)
            late, acks, seen = check_trace(lines, self.server.port)
            self.assertEqual(seen, connections, "connections in the trace")
            self.assertEqual(late, [], "data read and left unacknowledged "
                             "while the host waited")
            if acks >= connections:
                return
        self.fail("in 3 runs the tickets never came alone on every "
                  "connection: nothing showed the host acknowledges them")

    def test_deliver_driver_acknowledges_tickets_at_once(self):
        self.check([os.path.join(EXAMPLES, "tools", "smtpout-send"),
                    "--server", self.target,
                    "--mx-name", "mx.test.example",
                    "--ca-file", self.ca, "--from",
                    "s@client.example", "--to", "r@test.example"],
                   data=b"Subject: t\r\n\r\nhello\r\n")

    def test_eventloop_acknowledges_tickets_at_once(self):
        self.check([os.path.join(EXAMPLES, "eventloop"),
                    "--server", self.target,
                    "--mx-name", "mx.test.example",
                    "--ca-file", self.ca, "--starttls", "require",
                    "--from", "s@client.example",
                    "--to", "r@test.example", "--sessions", "1",
                    "--messages-per-session", "2"])

    def test_bench_acknowledges_tickets_at_once(self):
        self.check([os.path.join(EXAMPLES, "bench", "smtpout-bench"), "-q",
                    "-s", "1", "-m", "3", "--starttls", "require",
                    "--ca-file", self.ca,
                    "--mx-name", "mx.test.example",
                    "-f", "s@client.example", "-t", "r@test.example",
                    self.target], connections=3)

    # The Python binding is a host too: Session.receive() (the selectors
    # example) and the asyncio driver (smtpout.aio.send()) read the
    # socket themselves.  It loads this build's library into an
    # uninstrumented interpreter, which a sanitizer build's cannot be.
    def python_host(self, script, *args):
        self.check([PYTHON, os.path.join(PYDIR, script),
                    "--server", self.target,
                    "--mx-name", "mx.test.example",
                    "--ca-file", self.ca,
                    "--from", "s@client.example",
                    "--to", "r@test.example"] + list(args),
                   data=b"Subject: t\r\n\r\nhello\r\n",
                   extra_env={"PYTHONPATH": PYDIR})

    @unittest.skipIf(SANITIZED, "needs a build without sanitizers")
    def test_python_session_receive_acknowledges_tickets_at_once(self):
        self.python_host("selectors_send.py")

    @unittest.skipIf(SANITIZED, "needs a build without sanitizers")
    def test_python_asyncio_driver_acknowledges_tickets_at_once(self):
        self.python_host("asyncio_send.py", "--connections", "1")


if __name__ == "__main__":
    main()
