"""smtpout-send against a real Postfix smtpd (a private instance on a
loopback port): a 1 MB message full of lines that trip naive clients is
stored byte for byte; 550 and 450 recipients get their own results; an
LF-only file is announced with its size on the wire; an 8-bit message
reaches a Postfix that does not offer 8BITMIME as 7-bit MIME that decodes
to what was sent."""
import os
import random
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
import postfix  # noqa: E402
from testlib import (EX_OK, MIXED_ARGS, MIXED_REJECTS,  # noqa: E402
                     TempDirTest, canonical, check_mixed_results, main, send)
from test_send_content import MULTIPART8, check_converted  # noqa: E402


def tricky_megabyte():
    rnd = random.Random(7)
    lines = [b".", b"..", b".x", b"bare LF", "8-bit: \u00e9t\u00e9".encode(),
             b"\xff\xfe raw", b"y" * 990, b""]
    out = [b"Subject: a tricky megabyte\n\n"]
    size = 0
    while size < 1 << 20:
        out.append(rnd.choice(lines) + rnd.choice([b"\n", b"\r\n", b"\r"]))
        size += len(out[-1])
    out.append(b"last line without newline")
    return b"".join(out)


@unittest.skipUnless(postfix.available(), "needs root (Postfix's master)")
class PostfixSendTest(TempDirTest):
    def test_megabyte_with_mixed_recipients(self):
        data = tricky_megabyte()
        body = self.write("msg", data)
        with postfix.Postfix(self.path("pf"), rejects=MIXED_REJECTS) as pf:
            # The private copy, never a system postfix (servers/postfix.py).
            self.assertTrue(pf.master().startswith(postfix.root() + "/"),
                            pf.master())
            rc, doc, err = send(["--server", "127.0.0.1:%d" % pf.port,
                                 "--mx-name", "mx.test.example",
                                 "--data", body] + MIXED_ARGS)
            check_mixed_results(self, rc, doc, err)
            stored = pf.messages(2)
        self.assertEqual(sorted(rcpt for rcpt, _ in stored),
                         ["a@test.example", "c@test.example"])
        want = canonical(data).replace(b"\r\n", b"\n")
        for rcpt, content in stored:
            self.assertEqual(content, want)

    def send_one(self, pf, data):
        body = self.write("msg", data)
        return send(["--server", "127.0.0.1:%d" % pf.port,
                     "--mx-name", "mx.test.example", "--verbose",
                     "--from", "s@test.example", "--to", "a@test.example",
                     "--data", body])

    def test_lf_file_is_announced_with_its_size_on_the_wire(self):
        data = b"Subject: lf\n\n" + b"line of text\n" * 1000
        with postfix.Postfix(self.path("pf")) as pf:
            rc, doc, err = self.send_one(pf, data)
            self.assertEqual(rc, EX_OK, err)
            (rcpt, content), = pf.messages(1)
        size = len(canonical(data))
        self.assertEqual(size, len(data) + 1002)
        self.assertIn("C: MAIL FROM:<s@test.example> SIZE=%d\n" % size, err)
        self.assertEqual(content, data)

    def test_8bit_message_reaches_a_7bit_postfix_as_7bit_mime(self):
        with postfix.Postfix(self.path("pf"),
                             discard_ehlo=("8bitmime",)) as pf:
            rc, doc, err = self.send_one(pf, MULTIPART8)
            self.assertEqual(rc, EX_OK, err)
            (rcpt, content), = pf.messages(1)
        self.assertNotIn("8BITMIME", err.split("C: MAIL")[0])
        self.assertIn("C: MAIL FROM:<s@test.example>\n", err)
        self.assertIn("converting message 1 to 7-bit", err)
        # The maildir keeps LF line ends; the message had CRLF on the wire.
        check_converted(self, content.replace(b"\n", b"\r\n"))


if __name__ == "__main__":
    main()
