"""examples/eventloop against real servers: 1,000 concurrent sessions into
Postfix's smtp-sink with every message checked on the server side, STARTTLS
with verification into aiosmtpd, the wrong CA, the host's plaintext
fallback after a real handshake failure, and an unanswered greeting."""
import collections
import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (BUILD, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE,  # noqa: E402
                     FaultServer, SmtpSink, TempDirTest, aiosmtpd, main,
                     make_test_ca, spool_messages)

EVENTLOOP = os.path.join(BUILD, "examples", "eventloop")


def eventloop(args, timeout=300):
    """Runs the example; returns (exit status, summary dict, stderr)."""
    p = subprocess.run([EVENTLOOP] + list(args), capture_output=True,
                       timeout=timeout)
    out = p.stdout.decode()
    summary = {k: int(v) for k, v in re.findall(r"([a-z-]+) (\d+)", out)}
    return p.returncode, summary, p.stderr.decode(errors="replace")


class EventLoopTest(TempDirTest):
    def test_thousand_concurrent_sessions_every_message_arrives_once(self):
        sessions, per_session = 1000, 2
        with SmtpSink(self.path("dump")) as sink:
            rc, summary, err = eventloop([
                "--server", "127.0.0.1:%d" % sink.port,
                "--mx-name", "mx.test.example",
                "--from", "s@test.example",
                "--to", "a@test.example", "--to", "b@test.example",
                "--sessions", str(sessions),
                "--messages-per-session", str(per_session)])
            msgs = sink.messages()
        self.assertEqual(rc, EX_OK, err[-3000:])
        # A measurement, not a criterion: how many sessions overlapped.
        print("# peak %d concurrent sessions" % summary["peak"])
        self.assertEqual(summary["sessions"], sessions)
        self.assertEqual(summary["connections"], sessions)
        self.assertEqual(summary["delivered"], sessions * per_session * 2)
        self.assertEqual(summary["deferred"], 0)
        # The server's side: each (session, message) exactly once, with
        # both recipients.
        seen = collections.Counter()
        for hdrs, _ in msgs:
            self.assertEqual(hdrs["x-rcpt-args"],
                             ["<a@test.example>", "<b@test.example>"])
            seen[hdrs["subject"][0]] += 1
        expected = {"eventloop session %d message %d" % (s, m)
                    for s in range(sessions) for m in range(per_session)}
        self.assertEqual(set(seen), expected)
        self.assertEqual(set(seen.values()), {1})

    def test_starttls_require_with_ca_file_verifies_every_session(self):
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"])) as srv:
            rc, summary, err = eventloop([
                "--server", "127.0.0.1:%d" % srv.port,
                "--mx-name", "mx.test.example", "--ca-file", certs["ca"],
                "--starttls", "require",
                "--from", "s@test.example", "--to", "a@test.example",
                "--sessions", "40", "--messages-per-session", "2"])
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(summary["tls"], 40)
        self.assertEqual(summary["verified"], 40)
        msgs = spool_messages(spool)
        self.assertEqual(len(msgs), 80)
        self.assertTrue(all(meta["tls"] for meta, _ in msgs))
        # Each declared its size on the wire: the body's last filler line
        # is cut short and sent with a CRLF, so not the --size given.
        for meta, content in msgs:
            self.assertEqual(meta["mail_options"], ["SIZE=%d" % len(content)])

    def test_wrong_ca_defers_without_delivering(self):
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"])) as srv:
            rc, summary, err = eventloop([
                "--server", "127.0.0.1:%d" % srv.port,
                "--mx-name", "mx.test.example", "--ca-file", certs["other_ca"],
                "--from", "s@test.example", "--to", "a@test.example",
                "--sessions", "5"])
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertEqual(summary["deferred"], 5)
        self.assertEqual(summary["verified"], 0)
        self.assertEqual(summary["fallbacks"], 0)  # never for a certificate
        self.assertIn("4.7.5 server certificate not verified", err)
        self.assertEqual(spool_messages(spool), [])

    def test_handshake_failure_retries_in_plaintext_on_new_connection(self):
        # The server caps TLS at 1.1, smtpout speaks 1.2 and 1.3: a real
        # handshake failure, after which an optional policy permits the
        # host's plaintext retry.
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"]),
                      tls_max_version="TLSv1_1") as srv:
            rc, summary, err = eventloop([
                "--server", "127.0.0.1:%d" % srv.port,
                "--mx-name", "mx.test.example",
                "--from", "s@test.example", "--to", "a@test.example",
                "--sessions", "4"])
            rc2, summary2, err2 = eventloop([
                "--server", "127.0.0.1:%d" % srv.port,
                "--mx-name", "mx.test.example", "--starttls", "require",
                "--from", "s@test.example", "--to", "a@test.example",
                "--sessions", "2"])
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(summary["fallbacks"], 4)
        self.assertEqual(summary["connections"], 8)
        self.assertEqual(summary["delivered"], 4)
        # Under require: deferred, never plaintext.
        self.assertEqual(rc2, EX_TEMPFAIL, err2)
        self.assertEqual(summary2["fallbacks"], 0)
        self.assertEqual(summary2["deferred"], 2)
        msgs = spool_messages(spool)
        self.assertEqual(len(msgs), 4)
        self.assertFalse(any(meta["tls"] for meta, _ in msgs))

    def test_unanswered_greeting_times_out_through_the_timer_heap(self):
        # A listener that never accepts: the kernel completes the TCP
        # handshake, nobody ever greets.  Only the session's expiry can end
        # these sessions.
        lsock = socket.socket()
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(64)
        try:
            rc, summary, err = eventloop([
                "--server", "127.0.0.1:%d" % lsock.getsockname()[1],
                "--from", "s@test.example", "--to", "a@test.example",
                "--sessions", "10", "--timeout", "200"])
        finally:
            lsock.close()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertEqual(summary["deferred"], 10)
        self.assertIn("4.4.2 timed out waiting for the reply to greeting",
                      err)

    def test_what_a_connection_could_not_deliver_goes_to_the_next_address(
            self):
        """The host decides from each result
        (smtpout_result_try_another_address()): a recipient the first
        server deferred with a 421 goes to the next address; one it
        refused in reply to its own RCPT does not."""
        for d in ("first", "second"):
            os.makedirs(self.path(d))
        first = FaultServer(self.path("first"), [
            "--rcpt-reply", "b@test.example=550 5.1.1 no such user",
            "--data-reply", "421 4.3.2 going down"])
        second = FaultServer(self.path("second"))
        try:
            rc, summary, err = eventloop([
                "--server", "127.0.0.1:%d" % first.port,
                "--server", "127.0.0.1:%d" % second.port,
                "--mx-name", "mx.test.example", "--starttls", "disable",
                "--from", "s@test.example",
                "--to", "a@test.example", "--to", "b@test.example",
                "--sessions", "3", "--verbose"])
            got = second.messages()
        finally:
            first.stop()
            second.stop()
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertEqual(summary["connections"], 6)
        self.assertEqual(summary["next-address"], 3)
        self.assertEqual(summary["delivered"], 3)
        self.assertEqual(summary["bounced"], 3)
        self.assertEqual(summary["deferred"], 0)
        self.assertEqual(len(got), 3)
        for meta, _ in got:
            self.assertEqual(meta["rcpt_to"], ["a@test.example"])
        self.assertIn("(trying the next address)", err)
        self.assertEqual(first.messages(), [])

    def test_refused_connections_defer_every_recipient(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        rc, summary, err = eventloop([
            "--server", "127.0.0.1:%d" % port,
            "--from", "s@test.example", "--to", "a@test.example",
            "--sessions", "3", "--messages-per-session", "2"])
        self.assertEqual(rc, EX_TEMPFAIL)
        self.assertEqual(summary["connect-failed"], 3)
        self.assertEqual(summary["deferred"], 6)
        self.assertIn("Connection refused", err)

    def test_config_rule_requires_starttls_for_every_session(self):
        cfg = self.write("policy.ini", b'[destination "test"]\n'
                                       b"domains = test.example\n"
                                       b'starttls = "require"\n')
        with SmtpSink(self.path("dump")) as sink:  # smtp-sink has no TLS
            rc, summary, err = eventloop([
                "--server", "127.0.0.1:%d" % sink.port, "--config", cfg,
                "--mx-name", "mx.test.example", "--from", "s@other.example",
                "--to", "a@test.example", "--sessions", "20"])
            msgs = sink.messages()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertEqual(summary["deferred"], 20)
        self.assertIn("4.7.4 TLS is required, but was not offered", err)
        self.assertEqual(msgs, [])

    def test_bad_config_exit_78_names_file_and_line(self):
        cfg = self.write("bad.ini", b"[queue.outbound.tls]\n"
                                    b'starttls = "requir"\n')
        rc, _, err = eventloop(["--config", cfg, "--server", "127.0.0.1:1",
                                "--from", "s@test.example",
                                "--to", "a@test.example"])
        self.assertEqual(rc, 78)
        self.assertIn(cfg + ":2:", err)

    def test_usage_error_exit_64(self):
        rc, _, err = eventloop(["--sessions", "2"])
        self.assertEqual(rc, 64)
        self.assertIn("usage:", err)


if __name__ == "__main__":
    main()
