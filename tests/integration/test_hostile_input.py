"""smtpout-send given hostile input by its caller, against tests/faultsrv
(2-second timeouts): addresses carrying CR, LF, controls or brackets (SMTP
command injection), paths over 256 octets, invalid UTF-8, non-ASCII
addresses for a server without SMTPUTF8, empty arguments, and names that
could not be sent.  Each is a clear per-recipient result (bounced 5.1.3 or
5.6.7) or a usage error (exit 64) naming the argument, and the server's
log shows that not a byte of it reached the wire: the only commands it
received are the client's own, with the acceptable addresses."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testlib  # noqa: E402
from testlib import (EX_OK, EX_UNAVAILABLE, EX_USAGE,  # noqa: E402
                     FaultServer, TempDirTest, by_address, main, send)

GOOD = "good@test.example"
SENDER = "s@client.example"
T = 2
INJECTIONS = [
    "a@test.example\r\nRCPT TO:<evil@x.example>",
    "a@test.example\nRSET",
    "a@test.example\rQUIT",
    "evil@x.example>\r\nDATA",
    "<evil@x.example",
    "evil@x.example> NOTIFY=NEVER",
    "evil @x.example",
    "evil\t@x.example",
    "evil\x1b[2J@x.example",
    "evil\x7f@x.example",
    "\"evil\r\n\"@x.example",
    # A backslash in a quoted local part hides nothing from the check.
    "\"evil\\>\"@x.example",
    "\"evil\\<\"@x.example",
    "\"evil\\>\r\nRSET\"@x.example",
]
COMMAND = re.compile(r"^[\d.]+ #\d+ C> (?:\((?:ignored|discarded)\) )?"
                     r"\[(?:plain|tls)\] (.*)$", re.M)


class HostileInputTest(TempDirTest):
    def deliver(self, to, sender=SENDER, server_args=(), extra=(),
                expect_connection=True):
        """Runs smtpout-send with recipients `to` against a faultsrv;
        returns (exit status, JSON, stderr, server log, spool)."""
        work = self.spool("run%d" % len(os.listdir(self.tmp)))
        cfg = os.path.join(work, "smtpout.ini")
        with open(cfg, "w") as f:
            f.write("[queue.outbound.timeouts]\n")
            for key in ("connect", "greeting", "tls", "ehlo", "mail-from",
                        "rcpt-to", "data"):
                f.write("%s = %ds\n" % (key, T))
        data = os.path.join(work, "msg")
        with open(data, "wb") as f:
            f.write(b"Subject: x\r\n\r\nbody\r\n")
        srv = FaultServer(work, list(server_args))
        try:
            argv = ["--server", "127.0.0.1:%d" % srv.port, "--config", cfg,
                    "--mx-name", "mx.test.example", "--from", sender,
                    "--data", data] + list(extra)
            for r in to:
                argv += ["--to", r]
            rc, doc, err = send(argv)
        finally:
            log = srv.finish()
        self.assertLess(testlib.last_run.elapsed,
                        3 * T + (40 if testlib.VALGRIND else 10))
        if expect_connection is False:
            self.assertNotIn("* open from", log)
        self.assertNotIn("evil", log)
        self.assertNotIn("! violation", log)
        return rc, doc, err, log, srv.messages()

    def commands(self, log):
        return COMMAND.findall(log)

    def assert_only(self, log, rcpts, sender=SENDER):
        """The server received the client's own commands, with exactly
        these recipients and this sender, nothing else."""
        allowed = re.compile(
            r"(EHLO [a-z0-9.-]+|MAIL FROM:<%s>( SIZE=\d+| SMTPUTF8)*|"
            r"RCPT TO:<(%s)>|DATA|QUIT|RSET|"
            r"\. \(end of data: \d+ bytes of content, \d+ on the wire\))$"
            % (re.escape(sender), "|".join(re.escape(r) for r in rcpts)))
        cmds = self.commands(log)
        for c in cmds:
            self.assertRegex(c, allowed)
        self.assertEqual(sorted(c[9:-1] for c in cmds
                                if c.startswith("RCPT TO:")), sorted(rcpts))

    def test_injecting_recipients_are_bounced_and_never_sent(self):
        rc, doc, err, log, msgs = self.deliver(INJECTIONS + [GOOD])
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        results = doc["recipients"]
        self.assertEqual([r["address"] for r in results], INJECTIONS + [GOOD])
        for r in results[:-1]:
            self.assertEqual(r["status"], "bounced", r)
            self.assertEqual(r["enhanced"], "5.1.3", r)
            self.assertIsNone(r["code"], r)
        self.assertEqual(results[-1]["status"], "delivered")
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0][0]["rcpt_to"], [GOOD])
        self.assert_only(log, [GOOD])

    def test_only_injecting_recipients_open_no_connection(self):
        rc, doc, err, log, msgs = self.deliver(INJECTIONS[:3],
                                               expect_connection=False)
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertEqual(doc["attempts"], [])
        self.assertEqual(msgs, [])

    def test_injecting_sender_is_a_usage_error(self):
        for sender in ["s@client.example\r\nRCPT TO:<evil@x.example>",
                       "s@client.example>\nRSET", "<evil@x.example>"]:
            with self.subTest(sender=sender):
                rc, doc, err, log, msgs = self.deliver(
                    [GOOD], sender=sender, expect_connection=False)
                self.assertEqual(rc, EX_USAGE)
                self.assertIn("bad sender address", err)
                self.assertIsNone(doc)

    def test_names_that_cannot_be_sent_are_usage_errors(self):
        for opt, value, why in [
                ("--helo", "client.example\r\nRCPT TO:<evil@x.example>",
                 "bad --helo name"),
                ("--helo", "", "bad --helo name"),
                ("--mx-name", "mx.test.example\r\nevil", "bad MX name"),
                ("--mx-name", "", "bad MX name")]:
            with self.subTest(option=opt, value=value):
                rc, doc, err, log, msgs = self.deliver(
                    [GOOD], extra=[opt, value], expect_connection=False)
                self.assertEqual(rc, EX_USAGE, err)
                self.assertIn(why, err)

    def test_paths_over_256_octets_are_bounced(self):
        longest = "a" * 244 + "@x.example"   # 254 octets: 256 with <>
        over = "a" * 245 + "@x.example"      # 255 octets
        huge = "a" * 100000 + "@x.example"
        rc, doc, err, log, msgs = self.deliver([over, huge, longest, GOOD])
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        r = by_address(doc)
        for a in (over, huge):
            self.assertEqual(r[a]["status"], "bounced")
            self.assertEqual(r[a]["enhanced"], "5.1.3")
        self.assertEqual(r[longest]["status"], "delivered")
        self.assertEqual(r[GOOD]["status"], "delivered")
        self.assert_only(log, [longest, GOOD])
        # An over-long sender is refused before anything is sent.
        rc, doc, err, log, msgs = self.deliver([GOOD], sender=over,
                                               expect_connection=False)
        self.assertEqual(rc, EX_USAGE)

    def test_non_ascii_without_smtputf8_is_bounced_and_never_sent(self):
        utf8 = "j\u00f6rg@b\u00fccher.example"
        rc, doc, err, log, msgs = self.deliver([utf8, GOOD],
                                               server_args=["--no-smtputf8"])
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        r = by_address(doc)
        self.assertEqual(r[utf8]["status"], "bounced")
        self.assertEqual(r[utf8]["enhanced"], "5.6.7")
        self.assertIn("SMTPUTF8", r[utf8]["text"])
        self.assertEqual(r[GOOD]["status"], "delivered")
        self.assert_only(log, [GOOD])
        self.assertTrue(all(ord(ch) < 0x80 for ch in log), log)
        # A UTF-8 sender: the whole message, and no MAIL at all.
        rc, doc, err, log, msgs = self.deliver(
            [GOOD], sender="s\u00e9@client.example",
            server_args=["--no-smtputf8"])
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertEqual(doc["recipients"][0]["enhanced"], "5.6.7")
        self.assertFalse([c for c in self.commands(log)
                          if c.startswith("MAIL")])
        self.assertEqual(msgs, [])

    def test_non_ascii_with_smtputf8_is_sent(self):
        utf8 = "j\u00f6rg@test.example"
        rc, doc, err, log, msgs = self.deliver([utf8])
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(msgs[0][0]["rcpt_to"], [utf8])
        self.assertIn("SMTPUTF8", msgs[0][0]["mail_params"])

    def test_invalid_utf8_is_bounced(self):
        # Bytes that are not UTF-8 reach smtpout-send through argv as they
        # are (os.fsencode keeps them).
        # (Overlong forms, surrogates and code points past U+10FFFF are
        # refused too: test_injecting_addresses_are_refused_before_queuing
        # in test_hostile_input.c.)
        bad = [os.fsdecode(b) for b in (
            b"evil\xff@x.example",
            b"\"evil\\\xff\"@x.example")]  # escaped by a backslash
        rc, doc, err, log, msgs = self.deliver(bad + [GOOD])
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        for r in doc["recipients"][:-1]:
            self.assertEqual(r["status"], "bounced", r)
            self.assertEqual(r["enhanced"], "5.1.3", r)
        self.assertEqual(doc["recipients"][-1]["status"], "delivered")
        self.assert_only(log, [GOOD])

    def test_json_is_valid_utf8_whatever_the_bytes(self):
        # A surrogate (U+D800), an overlong "/", a code point past
        # U+10FFFF, a 5-byte form: the recipients are reported, as U+FFFD
        # per byte, in JSON a strict parser accepts (testlib.send decodes
        # strictly); the server answers with the same bytes, which the
        # library never passes on raw either.
        bad = [b"evil\xed\xa0\x80@x.example", b"evil\xc0\xaf@x.example",
               b"evil\xf4\x90\x80\x80@x.example",
               b"evil\xf8\x88\x80\x80\x80@x.example"]
        hostile = "\\xed\\xa0\\x80 \\xc0\\xaf \\xf4\\x90\\x80\\x80 \\xff"
        rc, doc, err, log, msgs = self.deliver(
            [os.fsdecode(b) for b in bad] + [GOOD],
            server_args=["--rcpt-reply", GOOD + "=250 2.1.5 " + hostile,
                         "--eod-reply", "250 2.0.0 " + hostile])
        got = [r["address"] for r in doc["recipients"]]
        self.assertEqual(got, ["evil\ufffd\ufffd\ufffd@x.example",
                               "evil\ufffd\ufffd@x.example",
                               "evil\ufffd\ufffd\ufffd\ufffd@x.example",
                               "evil" + "\ufffd" * 5 + "@x.example", GOOD])
        self.assertEqual(doc["recipients"][4]["status"], "delivered")
        self.assertTrue(doc["recipients"][4]["text"].isascii())
        self.assert_only(log, [GOOD])

    def test_empty_arguments(self):
        # An empty recipient is bounced; an empty sender is the null
        # reverse-path <>, which is legitimate.
        rc, doc, err, log, msgs = self.deliver(["", GOOD], sender="")
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertEqual(doc["recipients"][0]["status"], "bounced")
        self.assertEqual(doc["recipients"][1]["status"], "delivered")
        self.assert_only(log, [GOOD], sender="")
        self.assertEqual(msgs[0][0]["mail_from"], "")
        # An empty --server or --data is a usage / input error.
        rc, doc, err = send(["--server", "", "--from", SENDER, "--to", GOOD])
        self.assertEqual(rc, EX_USAGE)
        rc, doc, err = send(["--server", "127.0.0.1:1", "--from", SENDER,
                             "--to", GOOD, "--data", ""])
        self.assertEqual(rc, 66)
        rc, doc, err = send(["--server", "127.0.0.1:0", "--from", SENDER,
                             "--to", GOOD])
        self.assertEqual(rc, EX_USAGE)

    def test_nul_cannot_be_passed_in_an_argument(self):
        # exec() takes C strings: a NUL cannot reach smtpout-send through
        # its arguments at all (the C API tests cover what a NUL does in a
        # C string: it ends it).
        with self.assertRaises(ValueError):
            subprocess.run([testlib.SEND, "--to", "a@x.example\0RSET"])


if __name__ == "__main__":
    main()
