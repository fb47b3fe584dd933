#!/usr/bin/python3
"""A sending cluster sharing its state through Redis
(examples/redis-store/): two processes deliver to one MTA-STS domain at the
same time, the policy is fetched once, and one TLS-RPT report counts both
processes' sessions.

The lab is test_domain_lab's (DNS, Postfix listeners, the policy host), on
its own addresses (127.A.B.x, drawn per run), and a real redis-server on a unix socket in
a temporary directory, killed afterwards.  The domain is stsmx.secure.test:
an enforce policy that lists mx-listed (preference 20) and not mx-unlisted
(10), so each delivery records one validation-failure (the unlisted MX,
never contacted) and one success.

Exactly one fetch does not depend on who comes first: the adapter takes a
lease in Redis on a cache miss (SET NX), so the process that misses second
waits for the first one's value instead of fetching (redis-store.h).
"""
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
sys.path.insert(0, HERE)
import test_domain_lab as domainlab  # noqa: E402
import testlib  # noqa: E402

# A loopback /24 drawn per run, as domain-lab's (whose second octet is
# 72..254, so the two never meet): the policy host needs port 443.
NET = os.environ.get("SMTPOUT_REDIS_LAB_NET") or "127.%d.%d." % (
    random.SystemRandom().randint(2, 71), random.SystemRandom().randint(1, 254))
REDIS_SEND = os.path.join(testlib.BUILD, "examples", "redis-store",
                          "smtpout-redis-send")
DOMAIN = "stsmx.secure.test"


def available():
    return (domainlab.available() and os.path.exists(REDIS_SEND)
            and shutil.which("redis-server") is not None)


class Redis:
    """redis-server on a unix socket of its own, nothing saved to disk."""

    def __init__(self, workdir):
        self.socket = os.path.join(workdir, "redis.sock")
        self.log = os.path.join(workdir, "redis.log")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.socket,
             "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
             "--dir", workdir, "--logfile", self.log, "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=domainlab.dnslab._die_with_parent)
        deadline = time.monotonic() + 30  # a safety net, not a measure
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@unittest.skipUnless(available(), "needs the DNS lab, root, redis-server "
                                  "and examples/redis-store (libhiredis-dev)")
class SharedStore(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.lab = domainlab.Lab(NET)
        cls.tmp = tempfile.mkdtemp(prefix="smtpout-redis-")
        try:
            cls.redis = Redis(cls.tmp)
        except BaseException:
            cls.lab.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        cls.lab.stop()
        shutil.rmtree(cls.tmp, True)

    def test_two_processes_fetch_once_and_report_together(self):
        L = self.lab
        # No cache file and no events file: everything goes to Redis.
        cfg = os.path.join(self.tmp, "smtpout.ini")
        with open(cfg, "w") as f:
            f.write("[queue.outbound]\nsmtp-port = %d\n"
                    "[queue.outbound.dns]\nresolver = %s\n"
                    "[queue.outbound.tls]\nca-file = %s\n"
                    "[queue.outbound.mta-sts]\nca-file = %s\n"
                    % (L.port, L.dns.resolver, L.ca, L.ca))
        data = os.path.join(self.tmp, "msg.eml")
        with open(data, "wb") as f:
            f.write(domainlab.MESSAGE)
        where = "unix:" + self.redis.socket
        fetched = len(L.sts.fetches("mta-sts.%s" % DOMAIN))
        procs = [subprocess.Popen(
            [REDIS_SEND, "--redis", where, "--config", cfg, "--domain",
             DOMAIN, "--from", "s@sender.test", "--to",
             "p%d@%s" % (i, DOMAIN), "--data", data],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for i in range(2)]
        outs = []
        for p in procs:
            out, err = p.communicate(timeout=180)
            self.assertEqual(p.returncode, 0, out + err)
            outs.append(out)
        for i, out in enumerate(outs):
            self.assertRegex(out, r"(?m)^delivered p%d@%s 250 " % (i, DOMAIN))
        # One fetch for the two of them: the other used the first one's
        # policy, read from Redis (after waiting for it, or later).
        self.assertEqual(len(L.sts.fetches("mta-sts.%s" % DOMAIN)),
                         fetched + 1)
        # The unlisted MX was never contacted, by either.
        self.assertEqual(domainlab.settled_sessions(L, "unlisted"), [])

        # Both processes' events, from the one list, in one report.
        dump = subprocess.run([REDIS_SEND, "--redis", where, "--events"],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(dump.returncode, 0, dump.stderr)
        lines = dump.stdout.splitlines()
        self.assertEqual(len(lines), 4, lines)
        self.assertEqual(sorted((json.loads(x)["receiving-mx-hostname"],
                                 json.loads(x)["result"]) for x in lines),
                         [("mx-listed.secure.test", "success"),
                          ("mx-listed.secure.test", "success"),
                          ("mx-unlisted.secure.test", "failure"),
                          ("mx-unlisted.secure.test", "failure")])
        day = datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d")
        r = subprocess.run([domainlab.TLSRPT, "--events", "-",
                            "--organization", "smtpout tests", "--contact",
                            "tlsrpt@sender.test", "--date", day, "--domain",
                            DOMAIN], input=dump.stdout,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        report = json.loads(r.stdout)
        self.assertEqual(len(report["policies"]), 1)
        p = report["policies"][0]
        self.assertEqual((p["policy"]["policy-type"],
                          p["policy"]["policy-domain"]), ("sts", DOMAIN))
        self.assertEqual(p["summary"], {"total-successful-session-count": 2,
                                        "total-failure-session-count": 2})
        self.assertEqual([(f["result-type"], f["receiving-mx-hostname"],
                           f["failed-session-count"])
                          for f in p["failure-details"]],
                         [("validation-failure", "mx-unlisted.secure.test",
                           2)])
        # The policy is in Redis, under the library's key, expiring.
        cli = shutil.which("redis-cli")
        if cli:
            ttl = subprocess.run([cli, "-s", self.redis.socket, "PTTL",
                                  "smtpout:sts:%s" % DOMAIN],
                                 capture_output=True, text=True)
            self.assertGreater(int(ttl.stdout), 0)


if __name__ == "__main__":
    testlib.main()
