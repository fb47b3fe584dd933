"""The TLS policy against real servers nobody here wrote: Debian's aiosmtpd
(Python ssl / OpenSSL) and Postfix smtpd, each presenting a valid,
expired, wrong-name or self-signed certificate for mx.test.example, plus a
Postfix without STARTTLS; optional and require, with allow-invalid-certs
false and true, written as the seed writes them.  The server's own record
(aiosmtpd's spool, Postfix's smtpd counters and Received header) says
whether the message arrived and over TLS."""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
import postfix  # noqa: E402
from testlib import (EX_OK, EX_TEMPFAIL, TempDirTest, aiosmtpd,  # noqa
                     cert, certs, main, send, spool_messages)

BAD = {"valid": None, "expired": "certificate-expired",
       "wrongname": "certificate-host-mismatch",
       "selfsigned": "certificate-not-trusted"}


def expectation(kind, mode, allow):
    """(status, TLS used, verified, TLS-RPT result, arrives over TLS)."""
    if kind == "no-starttls":
        if mode == "optional":
            return "delivered", False, False, "starttls-not-supported", False
        return "deferred", False, False, "starttls-not-supported", None
    bad = BAD[kind]
    if bad is None or allow:
        return "delivered", True, bad is None, bad, True
    return "deferred", True, False, bad, None


class RealServerTls(TempDirTest):
    def policy(self, mode, allow):
        return self.write("p-%s-%s.ini" % (mode, allow),
                          '[queue.outbound.tls]\nstarttls = "%s"\n'
                          "allow-invalid-certs = %s\n"
                          % (mode, "true" if allow else "false"), mode="w")

    def deliver(self, port, mode, allow, tag):
        body = self.write("m-" + tag, b"Subject: " + tag.encode() +
                          b"\r\n\r\nhello\r\n")
        return send(["--server", "127.0.0.1:%d" % port,
                     "--mx-name", "mx.test.example",
                     "--config", self.policy(mode, allow),
                     "--ca-file", os.path.join(certs(), "ca.pem"),
                     "--from", "s@client.example", "--to", "r@test.example",
                     "--data", body])

    def check_client(self, kind, mode, allow, rc, doc, err):
        status, used, verified, tlsrpt, _ = expectation(kind, mode, allow)
        msg = "%s %s allow=%s: %s %s" % (kind, mode, allow, doc, err)
        r = doc["recipients"][0]
        a = doc["attempts"][0]
        self.assertEqual(r["status"], status, msg)
        self.assertEqual(rc, EX_OK if status == "delivered" else EX_TEMPFAIL,
                         msg)
        self.assertEqual(a["tls"]["used"], used, msg)
        self.assertEqual(a["tls"]["verified"], verified, msg)
        self.assertEqual(a["tls"]["tlsrpt_result"], tlsrpt, msg)
        self.assertEqual(len(doc["attempts"]), 1, msg)
        if status == "deferred":
            self.assertEqual(r["enhanced"],
                             "4.7.4" if kind == "no-starttls" else "4.7.5",
                             msg)

    def cases(self, kinds):
        for kind in kinds:
            for mode in ("optional", "require"):
                for allow in (False, True):
                    yield kind, mode, allow

    def test_aiosmtpd(self):
        for kind in BAD:
            spool = self.spool("aio-" + kind)
            with aiosmtpd(spool, tls=cert(kind)) as srv:
                arrived = 0
                for _, mode, allow in self.cases([kind]):
                    with self.subTest(kind=kind, mode=mode, allow=allow):
                        rc, doc, err = self.deliver(
                            srv.port, mode, allow,
                            "%s-%s-%s" % (kind, mode, allow))
                        self.check_client(kind, mode, allow, rc, doc, err)
                        want = expectation(kind, mode, allow)
                        msgs = spool_messages(spool)
                        if want[4] is None:
                            self.assertEqual(len(msgs), arrived)
                        else:
                            arrived += 1
                            self.assertEqual(len(msgs), arrived)
                            self.assertEqual(msgs[-1][0]["tls"], want[4])

    @unittest.skipUnless(postfix.available(), "needs root (Postfix's master)")
    def test_postfix(self):
        for kind in list(BAD) + ["no-starttls"]:
            tls = None if kind == "no-starttls" else cert(kind)
            with postfix.Postfix(self.path("pf-" + kind), tls=tls) as pf:
                self.assertTrue(pf.master().startswith(postfix.root() + "/"))
                n = 0
                arrived = 0
                for _, mode, allow in self.cases([kind]):
                    with self.subTest(kind=kind, mode=mode, allow=allow):
                        rc, doc, err = self.deliver(
                            pf.port, mode, allow,
                            "%s-%s-%s" % (kind, mode, allow))
                        n += 1
                        self.check_client(kind, mode, allow, rc, doc, err)
                        s = pf.sessions(n)[n - 1]
                        want = expectation(kind, mode, allow)
                        if want[1]:
                            self.assertEqual(s.get("starttls"), 1, s)
                        else:
                            self.assertNotIn("starttls", s)
                        if want[4] is None:
                            # No transaction at all, not even in clear.
                            self.assertNotIn("mail", s)
                        else:
                            # Postfix offers CHUNKING: BDAT, not DATA.
                            self.assertEqual(s.get("bdat"), 1, s)
                            self.assertNotIn("data", s)
                            arrived += 1
                            self.assertEqual(len(pf.messages(arrived)),
                                             arrived)
                # Every message that arrived over TLS says so in its
                # Received header; the others came in clear.
                withs = pf.received_with()
                self.assertEqual(len(withs), arrived)
                tls_expected = sum(1 for _, m, a in self.cases([kind])
                                   if expectation(kind, m, a)[4] is True)
                self.assertEqual(withs.count("ESMTPS"), tls_expected, withs)
                self.assertEqual(withs.count("ESMTP"),
                                 arrived - tls_expected, withs)


if __name__ == "__main__":
    main()
