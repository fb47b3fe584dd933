"""STARTTLS faults and the rules under docs/policy.md's table, with real
GnuTLS handshakes against tests/faultsrv: every kind of handshake failure,
response injection, odd STARTTLS replies, STARTTLS re-offered over TLS,
TLS dropped in the middle of DATA, capabilities that vanish after TLS, SNI
and the certificate name."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE,  # noqa: E402
                     EX_USAGE, FaultServer, TempDirTest, cert, certs, main,
                     send)


class TlsFaultTest(TempDirTest):
    def deliver(self, args, mode="optional", allow=False, mx="mx.test.example",
                kind="valid", rcpt="r@test.example", body=None, tls=True):
        """Runs one delivery against a faultsrv with `args`; returns
        (exit status, JSON, server log, spooled messages)."""
        work = self.spool("run%d" % len(os.listdir(self.tmp)))
        cfg = os.path.join(work, "policy.ini")
        with open(cfg, "w") as f:
            f.write('[queue.outbound.tls]\nstarttls = "%s"\n'
                    "allow-invalid-certs = %s\n"
                    % (mode, "true" if allow else "false"))
        data = os.path.join(work, "msg")
        with open(data, "wb") as f:
            f.write(body or b"Subject: t\r\n\r\nbody\r\n")
        srv = FaultServer(work, args, tls=cert(kind) if tls else None)
        try:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--mx-name", mx, "--config", cfg,
                                 "--ca-file", os.path.join(certs(), "ca.pem"),
                                 "--from", "s@client.example",
                                 "--to", rcpt, "--data", data])
        finally:
            log = srv.finish()
        self.assertIsNotNone(doc, err)
        return rc, doc, log, srv.messages()

    # -- every way a handshake fails --------------------------------------

    def test_handshake_failures_fall_back_only_under_optional(self):
        for how in ["alert", "close", "garbage", "tls10", "nocipher"]:
            with self.subTest(handshake=how, mode="optional"):
                rc, doc, log, msgs = self.deliver(["--handshake", how])
                self.assertEqual(rc, EX_OK, (doc, log))
                a = doc["attempts"]
                self.assertEqual(len(a), 2, doc)
                self.assertEqual(a[0]["starttls"], "handshake-failed")
                self.assertEqual(a[0]["tls"]["tlsrpt_result"],
                                 "validation-failure")
                # No certificate was judged: the reason is the attempt's
                # error, and verify_error stays null.
                self.assertIsNone(a[0]["tls"]["verify_error"])
                self.assertIn("TLS handshake with host", a[0]["error"])
                self.assertFalse(a[0]["plaintext_fallback"])
                self.assertTrue(a[1]["plaintext_fallback"])
                self.assertEqual(a[1]["starttls"], "disabled")
                self.assertEqual(len(msgs), 1)
                self.assertFalse(msgs[0][0]["tls"])
                # The broken connection was never reused in clear: the
                # plaintext transaction came on connection #2.
                self.assertRegex(log, r"#2 C> \[plain\] MAIL")
                self.assertNotRegex(log, r"#1 C> \[plain\] MAIL")
            with self.subTest(handshake=how, mode="require"):
                rc, doc, log, msgs = self.deliver(["--handshake", how],
                                                  mode="require", allow=True)
                self.assertEqual(rc, EX_TEMPFAIL)
                self.assertEqual(len(doc["attempts"]), 1)
                self.assertEqual(doc["recipients"][0]["enhanced"], "4.7.5")
                self.assertEqual(msgs, [])
                self.assertNotRegex(log, r"C> \[\w+\] MAIL")

    def test_tls12_only_server_is_fine(self):
        rc, doc, log, msgs = self.deliver(["--handshake", "tls12"],
                                          mode="require")
        self.assertEqual(rc, EX_OK, log)
        self.assertEqual(doc["attempts"][0]["tls"]["version"], "TLS1.2")
        self.assertTrue(doc["attempts"][0]["tls"]["verified"])

    def test_server_without_the_key_share_group_retries_the_hello(self):
        # smtpout sends one key share (X25519); a TLS 1.3 server that only
        # takes other groups asks again with a HelloRetryRequest, which
        # costs a round trip and nothing else.
        for group in ["SECP256R1", "SECP384R1", "FFDHE2048"]:
            with self.subTest(group=group):
                rc, doc, log, msgs = self.deliver(
                    ["--priority", "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
                     "-GROUP-ALL:+GROUP-" + group], mode="require")
                self.assertEqual(rc, EX_OK, (doc, log))
                tls = doc["attempts"][0]["tls"]
                self.assertEqual(tls["version"], "TLS1.3")
                self.assertTrue(tls["verified"])
                self.assertEqual(len(msgs), 1)
                self.assertTrue(msgs[0][0]["tls"])

    # -- response injection ------------------------------------------------

    def test_injected_replies_after_220_abort_without_fallback(self):
        for mode in ["optional", "require"]:
            with self.subTest(mode=mode):
                rc, doc, log, msgs = self.deliver(
                    ["--inject", r"250-evil.example\r\n250 AUTH PLAIN\r\n"],
                    mode=mode, allow=True)
                self.assertEqual(rc, EX_TEMPFAIL)
                self.assertEqual(len(doc["attempts"]), 1)
                a = doc["attempts"][0]
                self.assertIn("injection", a["error"])
                # TLS failed after the go-ahead: RFC 8460's general type.
                self.assertEqual(a["starttls"], "handshake-failed")
                self.assertEqual(a["tls"]["tlsrpt_result"],
                                 "validation-failure")
                self.assertEqual(doc["recipients"][0]["status"], "deferred")
                self.assertEqual(msgs, [])
                self.assertNotRegex(log, r"C> \[\w+\] (MAIL|AUTH|EHLO evil)")

    # -- replies to STARTTLS -----------------------------------------------

    def test_starttls_421_defers_in_every_mode(self):
        for mode in ["optional", "require"]:
            with self.subTest(mode=mode):
                rc, doc, log, msgs = self.deliver(
                    ["--starttls-reply", "421 4.3.2 shutting down"],
                    mode=mode)
                r = doc["recipients"][0]
                self.assertEqual((r["status"], r["code"]), ("deferred", 421))
                self.assertEqual(msgs, [])
                a = doc["attempts"][0]
                self.assertEqual(a["starttls"], "refused")
                self.assertEqual(a["tls"]["tlsrpt_result"],
                                 "starttls-not-supported")

    def test_starttls_odd_replies_are_never_a_go_ahead(self):
        for reply in ["354 go on", "250 fine", "hello", "221 bye"]:
            for mode in ["optional", "require"]:
                with self.subTest(reply=reply, mode=mode):
                    rc, doc, log, msgs = self.deliver(
                        ["--starttls-reply", reply], mode=mode)
                    self.assertEqual(doc["recipients"][0]["status"],
                                     "deferred")
                    self.assertEqual(len(doc["attempts"]), 1)
                    a = doc["attempts"][0]
                    self.assertFalse(a["tls"]["used"])
                    # The server did not start TLS (RFC 8460 4.3.1).
                    self.assertEqual(a["starttls"], "refused")
                    self.assertEqual(a["tls"]["tlsrpt_result"],
                                     "starttls-not-supported")
                    self.assertEqual(msgs, [])
                    self.assertNotRegex(log, r"C> \[\w+\] MAIL")

    def test_starttls_501_continues_in_clear_only_when_optional(self):
        rc, doc, log, msgs = self.deliver(
            ["--starttls-reply", "501 5.5.4 syntax error"])
        self.assertEqual(rc, EX_OK)
        self.assertEqual(doc["attempts"][0]["starttls"], "refused")
        self.assertFalse(msgs[0][0]["tls"])
        rc, doc, log, msgs = self.deliver(
            ["--starttls-reply", "501 5.5.4 syntax error"], mode="require")
        self.assertEqual(rc, EX_TEMPFAIL)
        r = doc["recipients"][0]
        self.assertEqual((r["status"], r["enhanced"]), ("deferred", "4.7.4"))
        self.assertIn("501", r["text"])

    # -- after the handshake ------------------------------------------------

    def test_starttls_offered_again_after_tls_is_ignored(self):
        rc, doc, log, msgs = self.deliver(["--reoffer-starttls"],
                                          mode="require")
        self.assertEqual(rc, EX_OK, log)
        self.assertTrue(msgs[0][0]["tls"])
        self.assertNotIn("STARTTLS over TLS", log)
        self.assertEqual(log.count("C> [plain] STARTTLS"), 1)

    def test_capabilities_learned_in_clear_are_forgotten(self):
        # SMTPUTF8 is offered only in clear.  Over TLS the client must not
        # use it: the UTF-8 recipient is bounced locally (5.6.7) instead of
        # being sent with an extension the server no longer offers.
        rc, doc, log, msgs = self.deliver(
            ["--no-smtputf8", "--ext", "plain:SMTPUTF8"], mode="require",
            rcpt="j\u00f6rg@test.example")
        self.assertEqual(rc, EX_UNAVAILABLE, log)
        r = doc["recipients"][0]
        self.assertEqual((r["status"], r["enhanced"]), ("bounced", "5.6.7"))
        self.assertNotIn("! violation", log)
        self.assertEqual(log.count("EHLO"), 2)

    def test_tls_dropped_in_the_middle_of_data(self):
        # Larger than any socket buffer, so the end of data cannot have
        # left the client when the server dropped the connection (with a
        # small message the whole of it, dot included, may already sit in
        # the kernel: then "possibly delivered" is the honest answer).
        body = b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 16000
        for how in ["close", "alert", "rst"]:
            with self.subTest(drop=how):
                rc, doc, log, msgs = self.deliver(
                    ["--drop-in-data", "1000@tls", "--drop-mode", how,
                     "--size", "0"],
                    mode="require", body=body)
                self.assertEqual(rc, EX_TEMPFAIL)
                r = doc["recipients"][0]
                self.assertEqual(r["status"], "deferred")
                self.assertFalse(r["possibly_delivered"])
                self.assertEqual(len(doc["attempts"]), 1)
                self.assertEqual(msgs, [])
                # Nothing went on in clear after TLS broke.
                self.assertNotRegex(log, r"C> \[plain\] (MAIL|RCPT|DATA)")

    # -- names ---------------------------------------------------------------

    def test_sni_and_verification_use_the_normalised_mx_name(self):
        rc, doc, log, msgs = self.deliver([], mode="require",
                                          mx="MX.Test.Example.")
        self.assertEqual(rc, EX_OK, log)
        self.assertTrue(doc["attempts"][0]["tls"]["verified"])
        self.assertEqual(msgs[0][0]["sni"], "mx.test.example")

    def test_idn_mx_name_is_sent_as_a_labels(self):
        rc, doc, log, msgs = self.deliver([], mode="require", allow=True,
                                          mx="mx.b\u00fccher.example")
        self.assertEqual(rc, EX_OK, log)
        self.assertEqual(msgs[0][0]["sni"], "mx.xn--bcher-kva.example")
        t = doc["attempts"][0]["tls"]
        self.assertFalse(t["verified"])
        self.assertEqual(t["tlsrpt_result"], "certificate-host-mismatch")

    def test_ip_literal_mx_gets_no_sni_and_never_verifies(self):
        # valid.pem carries IP 127.0.0.1 too: an IP literal must still not
        # verify, with or without a root dot, and send no SNI.
        for mx in ("127.0.0.1", "127.0.0.1.", "::1."):
            rc, doc, log, msgs = self.deliver([], mode="require",
                                              allow=False, mx=mx)
            self.assertEqual(rc, EX_TEMPFAIL, mx)
            t = doc["attempts"][0]["tls"]
            self.assertTrue(t["used"], mx)
            self.assertFalse(t["verified"], mx)
            self.assertEqual(t["tlsrpt_result"], "certificate-host-mismatch",
                             mx)
            self.assertIn("IP literal", t["verify_error"], mx)
            rc, doc, log, msgs = self.deliver([], mode="require", allow=True,
                                              mx=mx)
            self.assertEqual(rc, EX_OK, log)
            self.assertIsNone(msgs[0][0]["sni"], mx)

    def test_numeric_mx_name_is_refused(self):
        # "127.1" is 127.0.0.1 to a resolver: neither an IP literal nor a
        # host name to send as SNI and verify.
        for mx in ("127.1", "0x7f.0.0.1", "2130706433", "[127.0.0.1]."):
            rc, doc, err = send(["--server", "127.0.0.1:1", "--mx-name", mx,
                                 "--from", "s@c.example",
                                 "--to", "r@test.example",
                                 "--data", self.write("m", b"x\n")])
            self.assertEqual(rc, EX_USAGE, (mx, err))
            self.assertIn("bad MX name", err)

    def test_reported_policy_is_the_enforced_one(self):
        # One recipient domain is not a valid host name: it matches no
        # domain rule, but the other recipient's rule still applies, in
        # the session and in the JSON alike.
        cfg = self.write("p.ini", (
            b'[queue.outbound.tls]\nstarttls = "optional"\n'
            b'[destination "t"]\ndomains = test.example\n'
            b'starttls = "require"\n'
            b'[destination "m"]\nmx = *.example.net\nstarttls = "require"\n'
            b'[destination "o"]\ndomains = other.example\n'
            b'starttls = "disable"\n'))
        data = self.write("m", b"x\n")
        cases = [  # (recipients, MX, policy reported and enforced)
            (["r@test.example", "x@bad_domain.example"], "mx.test.example",
             ("require", "p.ini:5")),
            (["x@bad_domain.example", "r@test.example"], "mx.test.example",
             ("require", "p.ini:5")),
            (["x@bad_domain.example"], "mx.test.example",
             ("optional", "p.ini:2")),
            # other.example alone would be disable; the bad domain gets the
            # MX wildcard rule, and the strictest applies.
            (["r@other.example", "x@bad_domain.example"], "mx1.example.net",
             ("require", "p.ini:8")),
            (["r@other.example"], "mx1.example.net", ("disable", "p.ini:11")),
        ]
        for rcpts, mx, (starttls, source) in cases:
            work = self.spool("pol%d" % len(os.listdir(self.tmp)))
            srv = FaultServer(work, ["--no-starttls"])
            argv = ["--server", "127.0.0.1:%d" % srv.port, "--mx-name", mx,
                    "--config", cfg, "--from", "s@c.example", "--data", data]
            for r in rcpts:
                argv += ["--to", r]
            try:
                rc, doc, err = send(argv)
            finally:
                srv.finish()
            what = (rcpts, mx, doc)
            self.assertEqual(doc["policy"]["starttls"], starttls, what)
            self.assertTrue(doc["policy"]["source"]["starttls"]
                            .endswith(source), what)
            # What the session did: require defers without STARTTLS.
            if starttls == "require":
                self.assertEqual(rc, EX_TEMPFAIL, what)
                self.assertEqual({r["enhanced"] for r in doc["recipients"]},
                                 {"4.7.4"}, what)
                self.assertEqual(srv.messages(), [], what)
            else:
                self.assertEqual(rc, EX_OK, what)
                self.assertEqual(len(srv.messages()), 1, what)

    def test_wildcard_certificate_matches_one_label(self):
        rc, doc, log, msgs = self.deliver([], mode="require",
                                          kind="wildcard")
        self.assertEqual(rc, EX_OK, log)
        self.assertTrue(doc["attempts"][0]["tls"]["verified"])
        rc, doc, log, msgs = self.deliver([], mode="require",
                                          kind="wildcard",
                                          mx="a.mx.test.example")
        self.assertEqual(rc, EX_TEMPFAIL)
        self.assertEqual(doc["attempts"][0]["tls"]["tlsrpt_result"],
                         "certificate-host-mismatch")

    def test_untrusted_chain_with_wrong_ca_file(self):
        # The right certificate, checked against the other CA.
        work = self.spool("wrongca")
        srv = FaultServer(work, [], tls=cert("valid"))
        data = self.write("m", b"x\n")
        try:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--mx-name", "mx.test.example",
                                 "--ca-file",
                                 os.path.join(certs(), "other-ca.pem"),
                                 "--from", "s@c.example",
                                 "--to", "r@test.example", "--data", data])
        finally:
            srv.finish()
        self.assertEqual(rc, EX_TEMPFAIL)
        self.assertEqual(doc["attempts"][0]["tls"]["tlsrpt_result"],
                         "certificate-not-trusted")
        self.assertEqual(srv.messages(), [])


if __name__ == "__main__":
    main()
