"""What a message needs from the server, against a real one (Debian's
aiosmtpd): SIZE= is the size on the wire (RFC 1870), an 8-bit message is
converted to 7-bit for a server without 8BITMIME and decodes to what was
sent (RFC 6152), UTF-8 header fields need SMTPUTF8 (RFC 6531, 6532)."""
import email
import email.policy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (EX_OK, EX_UNAVAILABLE, TempDirTest, aiosmtpd,  # noqa
                     canonical, main, send, spool_messages)

# An 8-bit multipart message with LF line ends, as a file on disk has them.
TEXT_PART = ("caf\u00e9 = cr\u00e8me  \n.leading dot\n"
             + "\u00e9" * 60 + " long line\nlast").encode()
BINARY_PART = b"\x89PNG\r\n\x1a\n\x00\xff\xfe bare CR\r and LF\n end"
NESTED_PART = "nested \u00fcml\u00e4ut".encode()
MULTIPART8 = (b"From: s@test.example\n"
              b"Subject: 8-bit parts\n"
              b"MIME-Version: 1.0\n"
              b"Content-Type: multipart/mixed;\n"
              b" boundary=\"=_b1\"\n"
              b"Content-Transfer-Encoding: 8bit\n"
              b"\n"
              b"--=_b1\n"
              b"Content-Type: text/plain; charset=utf-8\n"
              b"Content-Transfer-Encoding: 8bit\n"
              b"\n" + TEXT_PART + b"\n"
              b"--=_b1\n"
              b"Content-Type: application/octet-stream\n"
              b"Content-Transfer-Encoding: binary\n"
              b"\n" + BINARY_PART + b"\n"
              b"--=_b1\n"
              b"Content-Type: message/rfc822\n"
              b"\n"
              b"Subject: inner\n"
              b"Content-Type: text/plain; charset=utf-8\n"
              b"Content-Transfer-Encoding: 8bit\n"
              b"\n" + NESTED_PART + b"\n"
              b"--=_b1\n"
              b"Content-Type: text/plain\n"
              b"\n"
              b"7-bit = untouched  \n"
              b"--=_b1--\n")

PLAIN8 = "Subject: plain\n\ncaf\u00e9 au lait = 1 \n.\n".encode()


def crlf(b):
    return b.replace(b"\n", b"\r\n")


def check_converted(test, stored):
    """`stored` (MULTIPART8 as a server kept it) is 7-bit and decodes to
    what was sent: the text parts as their canonical (CRLF) text, the
    binary part byte for byte."""
    test.assertFalse(any(c >= 0x80 for c in stored), stored[:200])
    msg = email.message_from_bytes(stored, policy=email.policy.compat32)
    test.assertEqual(msg["Content-Transfer-Encoding"], "7bit")
    parts = msg.get_payload()
    test.assertEqual(len(parts), 4)
    text, binary, nested, plain = parts
    test.assertEqual(text["Content-Transfer-Encoding"], "quoted-printable")
    test.assertEqual(text.get_payload(decode=True), crlf(TEXT_PART))
    test.assertEqual(binary["Content-Transfer-Encoding"], "base64")
    test.assertEqual(binary.get_payload(decode=True), BINARY_PART)
    test.assertEqual(nested["Content-Transfer-Encoding"], None)
    inner = nested.get_payload()[0]
    test.assertEqual(inner["Content-Transfer-Encoding"], "quoted-printable")
    test.assertEqual(inner.get_payload(decode=True), NESTED_PART)
    test.assertEqual(plain.get_payload(), "7-bit = untouched  ")


class ContentTest(TempDirTest):
    def deliver(self, data, spool, extra=(), **server):
        body = self.write("msg", data)
        with aiosmtpd(spool, **server) as srv:
            return send(["--server", "127.0.0.1:%d" % srv.port,
                         "--mx-name", "mx.test.example",
                         "--from", "s@test.example", "--to", "a@test.example",
                         "--data", body] + list(extra))

    # -- SIZE= (RFC 1870) ----------------------------------------------

    def test_size_of_an_lf_file_is_declared_as_sent(self):
        spool = self.spool()
        data = b"Subject: lf\n\n" + b"a line of text\n" * 100
        rc, doc, err = self.deliver(data, spool)
        self.assertEqual(rc, EX_OK, err)
        (meta, content), = spool_messages(spool)
        # One CRLF per line: the file's size plus one octet per line.
        self.assertEqual(len(content), len(data) + 102)
        self.assertIn("SIZE=%d" % len(content), meta["mail_options"])

    def test_message_over_the_limit_once_canonical_never_leaves(self):
        # Under the limit as a file, over it on the wire: refused before
        # MAIL, not sent whole and refused 552 at the end.
        data = b"Subject: lf\n\n" + b"x" * 60 + b"\n" * 500
        on_wire = len(canonical(data))
        spool = self.spool()
        rc, doc, err = self.deliver(data, spool, size=on_wire - 1)
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        r = doc["recipients"][0]
        self.assertEqual((r["status"], r["code"], r["enhanced"]),
                         ("bounced", None, "5.3.4"))
        self.assertIn("message size %d exceeds" % on_wire, r["text"])
        self.assertEqual(spool_messages(spool), [])
        # A limit of exactly that size takes it.
        spool = self.spool("exact")
        rc, doc, err = self.deliver(data, spool, size=on_wire)
        self.assertEqual(rc, EX_OK, err)
        (meta, content), = spool_messages(spool)
        self.assertIn("SIZE=%d" % on_wire, meta["mail_options"])

    # -- 8-bit data and 8BITMIME (RFC 6152) ------------------------------

    def test_8bit_message_is_converted_for_a_server_without_8bitmime(self):
        spool = self.spool()
        rc, doc, err = self.deliver(MULTIPART8, spool, eightbitmime=False)
        self.assertEqual(rc, EX_OK, err)
        (meta, stored), = spool_messages(spool)
        # No BODY=8BITMIME (not offered), no SIZE= (unknown once converted).
        self.assertEqual(meta["mail_options"], [])
        check_converted(self, stored)

    def test_message_without_mime_headers_is_converted_too(self):
        spool = self.spool()
        rc, doc, err = self.deliver(PLAIN8, spool, eightbitmime=False)
        self.assertEqual(rc, EX_OK, err)
        (meta, stored), = spool_messages(spool)
        self.assertFalse(any(c >= 0x80 for c in stored))
        msg = email.message_from_bytes(stored, policy=email.policy.compat32)
        self.assertEqual(msg["MIME-Version"], "1.0")
        self.assertEqual(msg.get_payload(decode=True),
                         crlf(PLAIN8.split(b"\n\n", 1)[1]))

    def test_8bit_message_goes_as_it_is_with_8bitmime(self):
        spool = self.spool()
        rc, doc, err = self.deliver(MULTIPART8, spool)
        self.assertEqual(rc, EX_OK, err)
        (meta, stored), = spool_messages(spool)
        self.assertEqual(stored, canonical(MULTIPART8))
        self.assertIn("BODY=8BITMIME", meta["mail_options"])

    def test_unconvertible_8bit_message_is_bounced_5_6_3(self):
        # 8-bit data in a part that says it is 7bit: nothing can carry it.
        data = (b"Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n"
                b"--b\nContent-Type: text/plain\n\ncaf\xc3\xa9\n--b--\n")
        spool = self.spool()
        rc, doc, err = self.deliver(data, spool, eightbitmime=False)
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        r = doc["recipients"][0]
        self.assertEqual((r["status"], r["code"], r["enhanced"]),
                         ("bounced", None, "5.6.3"))
        self.assertEqual(spool_messages(spool), [])

    # -- UTF-8 header fields (RFC 6531, 6532) ----------------------------

    def test_utf8_header_is_sent_with_smtputf8(self):
        data = "Subject: caf\u00e9\n\nbody\n".encode()
        spool = self.spool()
        rc, doc, err = self.deliver(data, spool, smtputf8=True)
        self.assertEqual(rc, EX_OK, err)
        (meta, stored), = spool_messages(spool)
        self.assertIn("SMTPUTF8", meta["mail_options"])
        self.assertEqual(stored, canonical(data))

    def test_utf8_header_is_bounced_5_6_7_without_smtputf8(self):
        data = "Subject: caf\u00e9\n\nbody\n".encode()
        spool = self.spool()
        rc, doc, err = self.deliver(data, spool)
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        r = doc["recipients"][0]
        self.assertEqual((r["status"], r["enhanced"]), ("bounced", "5.6.7"))
        self.assertEqual(spool_messages(spool), [])

    def test_smtputf8_option_requires_it_for_an_ascii_message(self):
        data = b"Subject: ascii\n\nbody\n"
        spool = self.spool()
        rc, doc, err = self.deliver(data, spool, ["--smtputf8"])
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertEqual(doc["recipients"][0]["enhanced"], "5.6.7")
        spool = self.spool("utf8")
        rc, doc, err = self.deliver(data, spool, ["--smtputf8"],
                                    smtputf8=True)
        self.assertEqual(rc, EX_OK, err)
        (meta, stored), = spool_messages(spool)
        self.assertIn("SMTPUTF8", meta["mail_options"])


if __name__ == "__main__":
    main()
