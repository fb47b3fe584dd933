"""smtpout-send against a real Postfix smtpd (a private instance on a
loopback port): a 1 MB message full of lines that trip naive clients is
stored byte for byte; 550 and 450 recipients get their own results."""
import os
import random
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
import postfix  # noqa: E402
from testlib import (MIXED_ARGS, MIXED_REJECTS, TempDirTest,  # noqa: E402
                     canonical, check_mixed_results, main, send)


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


@unittest.skipUnless(postfix.available(), "needs root and Postfix")
class PostfixSendTest(TempDirTest):
    def test_megabyte_with_mixed_recipients(self):
        data = tricky_megabyte()
        body = self.write("msg", data)
        with postfix.Postfix(self.path("pf"), rejects=MIXED_REJECTS) as pf:
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


if __name__ == "__main__":
    main()
