"""smtpout-bench keeps working (a smoke run well under a second per case,
against tests/faultsrv: nothing here measures anything), and TLS session
resumption behaves: tickets are used once, only after a verified
certificate, and only when asked for."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (BUILD, FaultServer, TempDirTest, cert,  # noqa: E402
                     certs, main)

BENCH = os.path.join(BUILD, "examples", "bench", "smtpout-bench")
MX = "mx.test.example"


def result(out):
    """The RESULT line of smtpout-bench as a dict of ints and floats."""
    m = re.search(r"^RESULT (.*)$", out, re.M)
    if m is None:
        return {}
    return {k: float(v) if "." in v else int(v)
            for k, v in (kv.split("=") for kv in m.group(1).split())}


class BenchTest(TempDirTest):
    def run_bench(self, args, server_args=(), kind=None, tls_args=True):
        """Runs smtpout-bench against a fresh faultsrv; returns (exit
        status, stdout, server log, spooled messages)."""
        work = self.spool("run%d" % len(os.listdir(self.tmp)))
        srv = FaultServer(work, server_args, tls=cert(kind) if kind else None)
        argv = [BENCH, "-M", "client.example", "-f", "s@client.example",
                "-t", "r@test.example"]
        if kind and tls_args:
            argv += ["--starttls", "require", "--mx-name", MX,
                     "--ca-file", os.path.join(certs(), "ca.pem")]
        try:
            p = subprocess.run(argv + list(args) +
                               ["127.0.0.1:%d" % srv.port],
                               capture_output=True, text=True, timeout=60)
        finally:
            log = srv.finish()
        return p.returncode, p.stdout + p.stderr, log, srv.messages()

    def test_plaintext_messages_arrive_as_smtp_source_shapes_them(self):
        rc, out, log, msgs = self.run_bench(["-s", "2", "-m", "20"])
        self.assertEqual(rc, 0, out)
        self.assertEqual(result(out)["ok_rcpts"], 20, out)
        self.assertEqual(len(msgs), 20)
        # A new connection per message without -d.
        self.assertEqual(log.count("* open from"), 20)
        meta, body = msgs[0]
        self.assertEqual(meta["rcpt_to"], ["r@test.example"])
        self.assertRegex(body, rb"^From: <s@client.example>\r\nTo: "
                               rb"<r@test.example>\r\nDate: .*\r\n"
                               rb"Message-Id: <.*@client.example>\r\n\r\n"
                               rb"La de da de da 1.\r\n")
        self.assertNotIn("! violation", log)

    def test_reuse_keeps_one_connection_per_session(self):
        rc, out, log, msgs = self.run_bench(
            ["-s", "2", "-m", "20", "-d", "-l", "1000", "-r", "3"])
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(msgs), 20)
        self.assertEqual(log.count("* open from"), 2)
        # -r numbers recipients, and -l sends smtp-source's payload.
        self.assertEqual(len(msgs[0][0]["rcpt_to"]), 3)
        self.assertRegex(msgs[0][0]["rcpt_to"][0], r"^r\d+@test.example$")
        self.assertIn(b"\r\n0" + b"X" * 77 + b"\r\n1", msgs[0][1])
        self.assertNotIn("! violation", log)

    def test_refused_messages_make_it_fail(self):
        rc, out, log, msgs = self.run_bench(
            ["-s", "1", "-m", "3"],
            ["--rcpt-reply", "r@test.example=550 5.1.1 no"])
        self.assertEqual(rc, 1, out)
        self.assertEqual(result(out)["failed_rcpts"], 3, out)
        self.assertEqual(msgs, [])

    def test_starttls_verified(self):
        rc, out, log, msgs = self.run_bench(["-s", "2", "-m", "10"],
                                            kind="valid")
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(msgs), 10)
        self.assertTrue(all(m[0]["tls"] for m in msgs))
        self.assertNotRegex(log, r"C> \[plain\] MAIL")

    def test_idle_sessions_are_measured_and_quit(self):
        rc, out, log, msgs = self.run_bench(["--idle", "-s", "20"])
        self.assertEqual(rc, 0, out)
        self.assertEqual(result(out)["idle_sessions"], 20, out)
        self.assertEqual(log.count("C> [plain] QUIT"), 20)
        rc, out, log, msgs = self.run_bench(["--idle=used", "-s", "5"])
        self.assertEqual(rc, 0, out)
        self.assertEqual(result(out)["idle_sessions"], 5, out)
        self.assertEqual(len(msgs), 5)

    # -- TLS session resumption ------------------------------------------

    def test_resumption_uses_tickets_of_verified_sessions(self):
        rc, out, log, msgs = self.run_bench(["-s", "1", "-m", "5", "--resume"],
                                            ["--tickets"], kind="valid")
        self.assertEqual(rc, 0, out)
        r = result(out)
        self.assertEqual((r["tls"], r["resumed"]), (5, 4), out)
        self.assertEqual(len(re.findall(r"handshake ok: .* resumed$", log,
                                        re.M)), 4, log)
        self.assertTrue(all(m[0]["tls"] for m in msgs))

    def test_no_resumption_unless_asked(self):
        rc, out, log, msgs = self.run_bench(["-s", "1", "-m", "3"],
                                            ["--tickets"], kind="valid")
        self.assertEqual(rc, 0, out)
        self.assertEqual(result(out)["resumed"], 0, out)
        self.assertNotIn(" resumed", log)

    def test_unverified_session_leaves_no_ticket(self):
        # Delivered (invalid certificates allowed), but a certificate that
        # did not verify must not seed resumption.
        rc, out, log, msgs = self.run_bench(
            ["-s", "1", "-m", "3", "--resume", "--starttls", "require",
             "--allow-invalid-certs", "--mx-name", MX,
             "--ca-file", os.path.join(certs(), "ca.pem")],
            ["--tickets"], kind="wrongname", tls_args=False)
        self.assertEqual(rc, 0, out)
        self.assertEqual(len(msgs), 3)
        self.assertEqual(result(out)["resumed"], 0, out)
        self.assertNotIn(" resumed", log)

    def test_refused_certificate_is_refused_on_every_connection(self):
        rc, out, log, msgs = self.run_bench(
            ["-s", "1", "-m", "3", "--resume"], ["--tickets"],
            kind="untrusted")
        self.assertEqual(rc, 1, out)
        self.assertEqual(msgs, [])
        self.assertEqual(result(out)["resumed"], 0, out)
        self.assertNotRegex(log, r"C> \[(plain|tls)\] MAIL")


if __name__ == "__main__":
    main()
