"""The Python ctypes binding (examples/python/smtpout) against a real
server (Debian's aiosmtpd): send() with mixed results, STARTTLS verified
with a CA file and refused with the wrong one, a policy rule from a config
file, the low-level Session in a selectors loop, smtpout.aio and the
Connections, arguments refused with errors that name them, and exceptions
raised in callbacks reaching the caller."""
import asyncio
import dataclasses
import gc
import gzip
import io
import os
import re
import selectors
import socket
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (PYTHON, SOURCE, FaultServer, ServerProcess,  # noqa
                     TempDirTest, aiosmtpd, canonical, main, make_test_ca,
                     spool_messages)

PYDIR = os.path.join(SOURCE, "examples", "python")
sys.path.insert(0, PYDIR)
import smtpout  # noqa: E402
import smtpout.aio  # noqa: E402
from smtpout import Status, TLSOutcome  # noqa: E402

BODY = b"Subject: from python\n\nline one\n.dot line\nh\xc3\xa9 8-bit\n"


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setblocking(False)
    return sock


def drive(pairs):
    """A selectors loop over [(socket, Session)] until every session is
    done: the pattern docs/python.md shows."""
    sel = selectors.DefaultSelector()
    live = {}
    for sock, s in pairs:
        sel.register(sock, selectors.EVENT_READ, s)
        live[sock] = s
    while live:
        for sock, s in live.items():
            ev = ((selectors.EVENT_READ if s.want_read else 0) |
                  (selectors.EVENT_WRITE if s.want_write else 0))
            sel.modify(sock, ev or selectors.EVENT_READ, s)
        timeouts = [t for t in (s.timeout() for s in live.values())
                    if t is not None]
        for key, mask in sel.select(min(timeouts) if timeouts else None):
            if mask & selectors.EVENT_READ:
                key.data.receive(key.fileobj)
            key.data.flush(key.fileobj)
        for sock, s in list(live.items()):
            s.handle_expiry()
            s.flush(sock)
            if s.is_done:
                sel.unregister(sock)
                sock.close()
                del live[sock]
    sel.close()


class BindingTest(unittest.TestCase):
    def test_library_comes_from_SMTPOUT_LIBRARY(self):
        self.assertEqual(smtpout._lib.lib._name,
                         os.environ["SMTPOUT_LIBRARY"])
        self.assertRegex(smtpout.library_version(), r"^\d+\.\d+\.\d+$")

    def test_every_exported_function_has_a_prototype(self):
        with open(os.path.join(SOURCE, "lib", "smtpout.map")) as f:
            exported = set(re.findall(r"^\s+(smtpout_\w+);", f.read(), re.M))
        self.assertTrue(exported)
        self.assertEqual(set(smtpout._lib.PROTOTYPES), exported)
        for name in exported:
            fn = getattr(smtpout._lib.lib, name)
            self.assertIsNotNone(fn.argtypes, name)

    def test_error_codes_map_to_exceptions(self):
        with self.assertRaises(smtpout.BadAddress) as cm:
            smtpout.Session("mx.test.example").submit(
                "ok@test.example", ["bad\r\n@test.example"], b"x")
        self.assertEqual(cm.exception.code, smtpout.Error.BAD_ADDRESS)
        self.assertEqual(cm.exception.name, "BAD_ADDRESS")
        with self.assertRaises(smtpout.BadName):
            smtpout.Session("")
        self.assertFalse(smtpout.address_check("a\n@b.example"))
        self.assertTrue(smtpout.address_check("a@b.example"))

    def test_a_route_runs_through_ctypes_alone(self):
        """The route needs no C callbacks: requests, answers and hops are
        plain calls (the high-level binding does not wrap routes yet)."""
        import ctypes
        import struct
        lib = smtpout._lib.lib
        r = smtpout._lib.RouteP()
        self.assertEqual(lib.smtpout_route_new(ctypes.byref(r), None,
                                               b"nowhere.example", 0, 0,
                                               1700000000000), 0)
        q = smtpout._lib.RequestP()
        self.assertEqual(lib.smtpout_route_want(r), 1)  # WANT_REQUEST
        self.assertEqual(lib.smtpout_route_next_request(r, ctypes.byref(q),
                                                        0), 1)
        self.assertEqual(lib.smtpout_request_qname(q), b"nowhere.example.")
        self.assertEqual(lib.smtpout_request_qtype(q), 15)
        # NXDOMAIN, as a resolver would hand it over (dnspython's wire
        # form would do as well).
        qname = b"".join(bytes([len(x)]) + x
                         for x in b"nowhere.example".split(b".")) + b"\0"
        packet = (struct.pack(">HBBHHHH", 7, 0x81, 0x83, 1, 0, 0, 0)
                  + qname + struct.pack(">HH", 15, 1))
        self.assertEqual(lib.smtpout_route_dns_answer(
            r, lib.smtpout_request_id(q), 0, packet, len(packet), 0), 0)
        self.assertEqual(lib.smtpout_route_want(r), 4)  # DONE
        self.assertEqual(lib.smtpout_route_status(r), Status.BOUNCED)
        self.assertEqual(lib.smtpout_route_enhanced(r), b"5.1.2")
        lib.smtpout_route_free(r)
        # An address literal: one hop, no DNS.
        self.assertEqual(lib.smtpout_route_new(ctypes.byref(r), None,
                                               b"[192.0.2.1]", 0, 0, 0), 0)
        h = smtpout._lib.HopP()
        self.assertEqual(lib.smtpout_route_next_hop(r, ctypes.byref(h), 0), 1)
        self.assertEqual(lib.smtpout_hop_address(h), b"192.0.2.1")
        self.assertEqual(lib.smtpout_hop_port(h), 25)
        self.assertEqual(lib.smtpout_hop_tlsa_count(h), 0)
        self.assertEqual(lib.smtpout_route_hop_done(r, h, 1, b"refused", 0),
                         0)
        self.assertEqual(lib.smtpout_route_text(r),
                         b"connect to 192.0.2.1[192.0.2.1]:25: refused")
        lib.smtpout_route_free(r)

    def test_config_defaults_and_policy(self):
        with smtpout.Config() as cfg:
            self.assertEqual(cfg.timeout(smtpout.Timeout.DATA), 600000)
            self.assertIn("TLS1.3", cfg.tls_priority)
            p = cfg.policy(["test.example"], "mx.test.example")
        self.assertEqual(p.starttls, smtpout.StartTLS.OPTIONAL)
        self.assertFalse(p.allow_invalid_certs)
        self.assertEqual(p.source["starttls"], "default")


class SendTest(TempDirTest):
    def test_send_mixed_results_like_sendmail(self):
        spool = self.spool()
        with aiosmtpd(spool, rejects=[
                ("bad@test.example", "550 5.1.1 no such user"),
                ("busy@test.example", "451 4.3.0 try later")]) as srv:
            res = smtpout.send("127.0.0.1:%d" % srv.port, "mx.test.example",
                               "s@test.example",
                               ["a@test.example", "bad@test.example",
                                "busy@test.example"], BODY)
        by = res.by_address()
        self.assertEqual(by["a@test.example"].status, Status.DELIVERED)
        self.assertEqual(by["a@test.example"].code, 250)
        self.assertEqual(by["bad@test.example"].status, Status.BOUNCED)
        self.assertEqual(by["bad@test.example"].enhanced, "5.1.1")
        self.assertEqual(by["busy@test.example"].status, Status.DEFERRED)
        self.assertEqual(res.refused, {
            "bad@test.example": (550, "no such user"),
            "busy@test.example": (451, "try later")})
        self.assertEqual(res.delivered, ["a@test.example"])
        self.assertFalse(res.all_delivered)
        # No STARTTLS offered: optional goes on in plaintext and says so.
        self.assertEqual(res.tls.outcome, TLSOutcome.NOT_OFFERED)
        self.assertEqual(res.tls.tlsrpt_result, "starttls-not-supported")
        (meta, content), = spool_messages(spool)
        self.assertEqual(content, canonical(BODY))
        self.assertIn("BODY=8BITMIME", meta["mail_options"])
        self.assertEqual(meta["rcpt_to"], ["a@test.example"])

    def test_starttls_verified_with_ca_file(self):
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"])) as srv:
            res = smtpout.send(("127.0.0.1", srv.port), "mx.test.example",
                               "s@test.example", "a@test.example", BODY,
                               ca_file=certs["ca"])
        self.assertTrue(res.all_delivered, res.recipients)
        self.assertEqual(res.tls.outcome, TLSOutcome.OK)
        self.assertTrue(res.tls.used)
        self.assertTrue(res.tls.verified)
        self.assertIn(res.tls.version, ("TLS1.2", "TLS1.3"))
        self.assertIsNone(res.tls.verify_error)
        self.assertTrue(spool_messages(spool)[0][0]["tls"])

    def test_verified_chain_is_bound_to_its_name(self):
        # One configuration, so one cache of verified chains, and one
        # server presenting one chain: verifying it for mx.test.example
        # must not make it verify for a name it does not carry, before or
        # after; a failure is not remembered either.
        certs = make_test_ca(self.path("certs"))
        cfg = self.write("tls.ini", ('[queue.outbound.tls]\n'
                                     'starttls = "require"\n'
                                     'ca-file = %s\n' % certs["ca"]).encode())
        spool = self.spool()
        names = ["mx.test.example", "other.test.example", "mx.test.example",
                 "other.test.example", "MX.test.example."]
        with smtpout.Config.load_file(cfg) as config, \
                aiosmtpd(spool, tls=(certs["cert"], certs["key"])) as srv:
            results = [smtpout.send("127.0.0.1:%d" % srv.port, name,
                                    "s@test.example", ["a@test.example"],
                                    BODY, config=config)
                       for name in names]
        for name, res in zip(names, results):
            r, = res.recipients
            if name.lower().rstrip(".") == "mx.test.example":
                self.assertEqual(r.status, Status.DELIVERED, (name, r))
                self.assertTrue(res.tls.verified, name)
            else:
                self.assertEqual((r.status, r.enhanced),
                                 (Status.DEFERRED, "4.7.5"), (name, r))
                self.assertFalse(res.tls.verified, name)
                self.assertEqual(res.tls.tlsrpt_result,
                                 "certificate-host-mismatch", name)
        self.assertEqual(len(spool_messages(spool)), 3)

    def test_staple_is_checked_after_a_verified_chain(self):
        # One configuration, so one cache of verified chains; faultsrv
        # staples OCSP responses (mkcerts.sh signs them).  A chain that
        # verified earlier must not vouch for the same chain with a
        # "revoked" staple, nor for a must-staple chain without its staple.
        certs = make_test_ca(self.path("certs"))
        d = os.path.dirname(certs["ca"])
        cfg = self.write("tls.ini", ('[queue.outbound.tls]\n'
                                     'starttls = "require"\n'
                                     'ca-file = %s\n' % certs["ca"]).encode())
        cases = [  # (certificate, staple, verified?)
            ("valid", None, True),
            ("valid", "valid-ocsp-revoked.der", False),
            ("valid", "valid-ocsp-good.der", True),
            ("muststaple", "muststaple-ocsp-good.der", True),
            ("muststaple", None, False),
        ]
        with smtpout.Config.load_file(cfg) as config:
            for kind, staple, ok in cases:
                args = ["--max-conns", "1"]
                if staple:
                    args += ["--ocsp-response", os.path.join(d, staple)]
                srv = FaultServer(self.spool("srv-%s-%s" % (kind, staple)),
                                  args,
                                  tls=(os.path.join(d, kind + "-chain.pem"),
                                       os.path.join(d, kind + ".key")))
                try:
                    res = smtpout.send("127.0.0.1:%d" % srv.port,
                                       "mx.test.example", "s@test.example",
                                       ["a@test.example"], BODY,
                                       config=config)
                finally:
                    srv.finish()
                r, = res.recipients
                what = (kind, staple, r, res.tls.verify_error)
                self.assertEqual(res.tls.verified, ok, what)
                if ok:
                    self.assertEqual(r.status, Status.DELIVERED, what)
                    self.assertEqual(len(srv.messages()), 1, what)
                else:
                    self.assertEqual((r.status, r.enhanced),
                                     (Status.DEFERRED, "4.7.5"), what)
                    self.assertEqual(srv.messages(), [], what)
                    self.assertFalse(res.tls.verify_error.endswith(" "),
                                     what)

    def test_wrong_ca_defers_4_7_5_and_never_falls_back(self):
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"])) as srv:
            res = smtpout.send("127.0.0.1:%d" % srv.port, "mx.test.example",
                               "s@test.example", ["a@test.example"], BODY,
                               ca_file=certs["other_ca"])
        r, = res.recipients
        self.assertEqual(r.status, Status.DEFERRED)
        self.assertEqual(r.enhanced, "4.7.5")
        self.assertIn("certificate not verified", r.text)
        self.assertFalse(res.tls.verified)
        self.assertTrue(res.tls.used)
        self.assertEqual(res.tls.tlsrpt_result, "certificate-not-trusted")
        self.assertEqual(len(res.attempts), 1)
        self.assertFalse(res.tls.fallback_permitted)
        self.assertEqual(spool_messages(spool), [])

    def test_fixed_require_policy_defers_4_7_4_without_starttls(self):
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            res = smtpout.send("127.0.0.1:%d" % srv.port, "mx.test.example",
                               "s@test.example", ["a@test.example"], BODY,
                               starttls="require")
        r, = res.recipients
        self.assertEqual((r.status, r.enhanced), (Status.DEFERRED, "4.7.4"))
        self.assertIn("TLS is required", r.text)
        self.assertEqual(spool_messages(spool), [])
        # The policy reported is the one enforced: the host's, not the
        # (default, optional) configuration's.
        self.assertEqual(res.policy.starttls, smtpout.StartTLS.REQUIRE)
        self.assertEqual(res.policy.source["starttls"], "host")

    def test_rule_from_config_file_requires_starttls_for_a_domain(self):
        cfg = self.write("policy.ini", b'''\
[queue.outbound.tls]
starttls = "optional"

[destination "test"]
domains = test.example
starttls = "require"
''')
        certs = make_test_ca(self.path("certs"))
        plain, tls = self.spool("plain"), self.spool("tls")
        with aiosmtpd(plain) as srv:
            res = smtpout.send("127.0.0.1:%d" % srv.port, "mx.test.example",
                               "s@other.example", ["a@test.example"], BODY,
                               config=cfg)
        r, = res.recipients
        self.assertEqual((r.status, r.enhanced), (Status.DEFERRED, "4.7.4"))
        self.assertEqual(res.policy.starttls, smtpout.StartTLS.REQUIRE)
        self.assertEqual(res.policy.source["starttls"], cfg + ":6")
        self.assertEqual(spool_messages(plain), [])
        with smtpout.Config.load_file(cfg) as config, \
                aiosmtpd(tls, tls=(certs["cert"], certs["key"])) as srv:
            res = smtpout.send("127.0.0.1:%d" % srv.port, "mx.test.example",
                               "s@other.example", ["a@test.example"], BODY,
                               config=config, ca_file=certs["ca"])
        self.assertTrue(res.all_delivered, res.recipients)
        self.assertTrue(res.tls.verified)
        self.assertTrue(spool_messages(tls)[0][0]["tls"])

    def test_config_error_names_file_and_line(self):
        cfg = self.write("bad.ini", b'[queue.outbound.tls]\n'
                                    b'starttls = "requir"\n')
        with self.assertRaises(smtpout.ConfigError) as cm:
            smtpout.Config.load_file(cfg)
        self.assertIn(cfg + ":2:", str(cm.exception))
        self.assertTrue(cm.exception.errors[0].startswith(cfg + ":2:"))

    def test_exception_in_trace_callback_reaches_the_caller(self):
        spool = self.spool()

        def trace(direction, line):
            if line.startswith(b"DATA"):
                raise KeyError("from trace")
        with aiosmtpd(spool) as srv:
            with self.assertRaises(KeyError):
                smtpout.send("127.0.0.1:%d" % srv.port, None,
                             "s@test.example", ["a@test.example"], BODY,
                             trace=trace)
        # The delivery itself finished before the exception was raised.
        self.assertEqual(len(spool_messages(spool)), 1)

    def test_timeout_bounds_every_wait(self):
        # The server never greets: only send(timeout=...) ends the wait.
        work = self.spool("stall")
        srv = FaultServer(work, ["--stall", "greeting"])
        try:
            res = smtpout.send("127.0.0.1:%d" % srv.port, "mx.test.example",
                               "s@test.example", ["a@test.example"], BODY,
                               timeout=1)
        finally:
            srv.finish()
        r, = res.recipients
        self.assertEqual(r.status, Status.DEFERRED)
        self.assertEqual(r.enhanced, "4.4.2")
        self.assertIn("timed out waiting for the reply to greeting",
                      res.attempts[0].error)

    def test_trace_gets_its_own_user_data(self):
        lines = []
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            smtpout.send("127.0.0.1:%d" % srv.port, None, "s@test.example",
                         ["a@test.example"], BODY,
                         trace=lambda d, line: lines.append((d, line)))
        self.assertIn((smtpout.Trace.SENT, b"DATA"), lines)
        self.assertTrue(any(d == smtpout.Trace.RECEIVED and
                            line.startswith(b"220 ") for d, line in lines))

    def test_body_from_a_regular_file(self):
        spool = self.spool()
        path = self.write("msg.eml", BODY * 1000)
        with aiosmtpd(spool) as srv, open(path, "rb") as f:
            res = smtpout.send("127.0.0.1:%d" % srv.port, None,
                               "s@test.example", ["a@test.example"], f)
        self.assertTrue(res.all_delivered)
        meta, content = spool_messages(spool)[0]
        self.assertEqual(content, canonical(BODY * 1000))
        self.assertIn("BODY=8BITMIME", meta["mail_options"])


class SessionTest(TempDirTest):
    def test_sessions_in_one_selectors_loop_plain_and_tls(self):
        certs = make_test_ca(self.path("certs"))
        plain, secure = self.spool("plain"), self.spool("tls")
        events = {"tls": [], "done": [], "trace": []}
        with aiosmtpd(plain) as p, \
                aiosmtpd(secure, tls=(certs["cert"], certs["key"])) as t:
            s1 = smtpout.Session("mx.test.example")
            s2 = smtpout.Session(
                "mx.test.example", ca_file=certs["ca"],
                starttls=smtpout.StartTLS.REQUIRE,
                on_tls=events["tls"].append,
                on_message_done=events["done"].append,
                on_trace=lambda d, line: events["trace"].append((d, line)))
            with s1, s2:
                for s in (s1, s2):
                    s.start()
                ids = [s1.submit("s@test.example", ["a@test.example"], BODY),
                       s2.submit("s@test.example", ["b@test.example"], BODY),
                       s2.submit("s@test.example", ["c@test.example"],
                                 io.BytesIO(BODY * 50))]
                for s in (s1, s2):
                    s.quit()
                drive([(connect(p.port), s1), (connect(t.port), s2)])
                self.assertEqual(s1.close_reason, smtpout.CloseReason.NONE,
                                 s1.close_text)
                self.assertEqual(s2.close_reason, smtpout.CloseReason.NONE,
                                 s2.close_text)
                # The EHLO after TLS: capabilities learned in clear are
                # gone, and STARTTLS is not offered again.
                self.assertTrue(s2.capabilities & smtpout.Cap.EIGHTBITMIME)
                self.assertFalse(s2.capabilities & smtpout.Cap.STARTTLS)
                r1, r2 = list(s1.results), list(s2.results)
        self.assertEqual([r.status for r in r1], [Status.DELIVERED])
        self.assertEqual([(r.recipient, r.status, r.message_id)
                          for r in r2],
                         [("b@test.example", Status.DELIVERED, ids[1]),
                          ("c@test.example", Status.DELIVERED, ids[2])])
        tls, = events["tls"]
        self.assertEqual(tls.outcome_name, "ok")
        self.assertTrue(tls.verified)
        self.assertEqual(events["done"], ids[1:])
        sent = [line for d, line in events["trace"]
                if d == smtpout.Trace.SENT]
        self.assertIn(b"STARTTLS", sent)
        self.assertEqual(len(spool_messages(plain)), 1)
        msgs = spool_messages(secure)
        self.assertEqual([m[1] for m in msgs],
                         [canonical(BODY), canonical(BODY * 50)])
        self.assertTrue(all(m[0]["tls"] for m in msgs))

    def test_submit_takes_size_and_flags_from_the_librarys_scan(self):
        # BODY is LF-only and 8-bit: to a server without 8BITMIME it is
        # converted; an ASCII one is announced with its size on the wire.
        ascii_body = b"Subject: ascii\n\nline\n" * 10
        spool = self.spool()
        with aiosmtpd(spool, eightbitmime=False) as srv:
            with smtpout.Session("mx.test.example") as s:
                s.start()
                s.submit("s@test.example", ["a@test.example"], BODY)
                s.submit("s@test.example", ["a@test.example"], ascii_body)
                s.quit()
                drive([(connect(srv.port), s)])
                self.assertEqual([r.status for r in s.results],
                                 [Status.DELIVERED] * 2)
        (meta1, eight), (meta2, ascii_stored) = spool_messages(spool)
        self.assertEqual(meta1["mail_options"], [])  # converted: no SIZE=
        self.assertTrue(eight.isascii())
        self.assertIn(b"Content-Transfer-Encoding: quoted-printable\r\n",
                      eight)
        self.assertIn(b"h=C3=A9 8-bit\r\n", eight)
        self.assertEqual(ascii_stored, canonical(ascii_body))
        self.assertEqual(meta2["mail_options"],
                         ["SIZE=%d" % len(canonical(ascii_body))])

    def test_exception_in_on_result_propagates_and_session_continues(self):
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            def boom(result):
                raise ValueError("on_result failed for " + result.recipient)
            s = smtpout.Session("mx.test.example", on_result=boom)
            s.start()
            s.submit("s@test.example", ["a@test.example"], BODY)
            s.quit()
            sock = connect(srv.port)
            raised = []
            while not s.is_done:
                try:
                    drive([(sock, s)])
                except ValueError as e:
                    raised.append(str(e))
            s.close()
        self.assertEqual(raised, ["on_result failed for a@test.example"])
        # The result was still recorded, and the session ended cleanly.
        self.assertEqual([r.status for r in s.results], [Status.DELIVERED])
        self.assertEqual(len(spool_messages(spool)), 1)

    def test_exception_in_body_callback_drops_the_connection(self):
        class Broken(io.RawIOBase):
            def readable(self):
                return True

            def read(self, n=-1):
                raise OSError("disk on fire")
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            s = smtpout.Session("mx.test.example")
            s.start()
            s.submit("s@test.example", ["a@test.example"], Broken())
            s.quit()
            with self.assertRaisesRegex(OSError, "disk on fire"):
                drive([(connect(srv.port), s)])
            self.assertTrue(s.is_done)
            self.assertEqual(s.close_reason,
                             smtpout.CloseReason.CALLBACK_FAILURE)
            r, = s.results
            s.close()
        self.assertEqual((r.status, r.enhanced), (Status.DEFERRED, "4.3.0"))
        self.assertEqual(spool_messages(spool), [])

    def test_callbacks_may_submit_but_not_do_io(self):
        spool = self.spool()
        errors = []
        with aiosmtpd(spool) as srv:
            s = None

            def on_done(message_id):
                try:
                    s.feed(b"250 ok\r\n")
                except smtpout.InvalidState as e:
                    errors.append(e)
                if message_id == 1:
                    s.submit("s@test.example", ["late@test.example"], BODY)
                    s.quit()
            s = smtpout.Session("mx.test.example", on_message_done=on_done)
            with s:
                s.start()
                s.submit("s@test.example", ["a@test.example"], BODY)
                drive([(connect(srv.port), s)])
                results = [(r.recipient, r.status) for r in s.results]
        self.assertEqual(len(errors), 2)
        self.assertIn("inside a callback", str(errors[0]))
        self.assertEqual(results, [("a@test.example", Status.DELIVERED),
                                   ("late@test.example", Status.DELIVERED)])
        self.assertEqual(len(spool_messages(spool)), 2)

    def test_nonblocking_body_waits_for_resume(self):
        class Trickle:
            """Returns None (no data now) every other call."""
            def __init__(self, data):
                self.data, self.off, self.ready = data, 0, False

            def read(self, n):
                self.ready = not self.ready
                if not self.ready:
                    return None
                chunk = self.data[self.off:self.off + min(n, 1000)]
                self.off += len(chunk)
                return chunk
        spool = self.spool()
        body = BODY * 100
        src = Trickle(body)
        with aiosmtpd(spool) as srv:
            with smtpout.Session("mx.test.example") as s:
                s.start()
                s.submit("s@test.example", ["a@test.example"], src,
                         size=len(body))
                s.quit()
                sock = connect(srv.port)
                sel = selectors.DefaultSelector()
                sel.register(sock, selectors.EVENT_READ)
                resumes = 0
                while not s.is_done:
                    if not s.want_write and not src.ready:
                        s.resume_body()  # the host's "data is back" signal
                        resumes += 1
                    ev = selectors.EVENT_READ | (
                        selectors.EVENT_WRITE if s.want_write else 0)
                    sel.modify(sock, ev)
                    for key, mask in sel.select(s.timeout()):
                        if mask & selectors.EVENT_READ:
                            s.receive(sock)
                    s.flush(sock)
                    s.handle_expiry()
                sel.close()
                sock.close()
                self.assertEqual([r.status for r in s.results],
                                 [Status.DELIVERED])
        self.assertGreater(resumes, 1)
        self.assertEqual(spool_messages(spool)[0][1], canonical(body))

    def test_callbacks_stay_alive_with_the_session_only(self):
        spool = self.spool()
        seen = []
        with aiosmtpd(spool) as srv:
            s = smtpout.Session("mx.test.example",
                                on_result=lambda r: seen.append(r.status))
            s.start()
            s.submit("s@test.example", ["a@test.example"], bytes(BODY))
            s.quit()
            gc.collect()  # nothing but the session holds the lambda
            drive([(connect(srv.port), s)])
            s.close()
        self.assertEqual(seen, [Status.DELIVERED])

    def test_close_is_idempotent_and_gc_frees_unclosed_sessions(self):
        s = smtpout.Session("mx.test.example")
        s.close()
        s.close()
        with self.assertRaises(smtpout.InvalidState):
            s.start()
        s2 = smtpout.Session("mx.test.example")
        fin = s2._finalizer
        del s2
        gc.collect()
        self.assertFalse(fin.alive)


def queued_as_any(res):
    """A SendResult with the server's "queued as N" numbers blanked, so
    that two deliveries of the same message compare equal."""
    return dataclasses.replace(res, recipients=[
        dataclasses.replace(r, text=re.sub(r"queued as \d+", "queued as N",
                                           r.text))
        for r in res.recipients])


def open_fds():
    return len(os.listdir("/proc/self/fd"))


class OneMessageServer:
    """A minimal SMTP server on loopback that accepts one message on one
    connection, then closes it without waiting for QUIT: an idle
    connection the server ends."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.sock.accept()
        # Both closed at the end: the file holds the socket open too.
        with conn, conn.makefile("rb") as f:
            conn.sendall(b"220 one.test.example ESMTP\r\n")
            for line in f:
                verb = line[:4].upper()
                if verb == b"DATA":
                    conn.sendall(b"354 go on\r\n")
                    for data in f:
                        if data == b".\r\n":
                            break
                    conn.sendall(b"250 2.0.0 OK the one message\r\n")
                    return  # and close: the next message finds it gone
                if verb == b"QUIT":
                    conn.sendall(b"221 bye\r\n")
                    return
                conn.sendall(b"250 one.test.example\r\n" if verb in
                             (b"EHLO", b"HELO") else b"250 2.0.0 OK\r\n")

    def close(self):
        self.sock.close()
        self.thread.join(10)


class NamesAndErrorsTest(unittest.TestCase):
    """Enumerations print as the library names them; a bad argument
    raises an exception that names it, before any connection."""

    def test_enums_print_their_library_names(self):
        self.assertEqual(str(Status.DELIVERED), "delivered")
        self.assertEqual("%s %s" % (Status.BOUNCED, True), "bounced True")
        self.assertEqual(f"{TLSOutcome.NOT_OFFERED:>12}", " not-offered")
        for s in Status:
            self.assertEqual(str(s), smtpout.status_name(s))
        for m in smtpout.StartTLS:
            self.assertEqual(str(m), smtpout.starttls_name(m))
        for o in TLSOutcome:
            self.assertEqual(str(o), smtpout._lib.lib.smtpout_tls_outcome_name(
                o).decode())
        for c in smtpout.CloseReason:
            self.assertEqual(str(c), smtpout._lib.lib.smtpout_close_reason_name(
                c).decode())
        self.assertEqual(str(smtpout.Timeout.MAIL_FROM), "mail-from")
        # Still the C values, and names are accepted where values are.
        self.assertEqual(Status.DELIVERED, 1)
        self.assertIs(smtpout.StartTLS("require"), smtpout.StartTLS.REQUIRE)
        self.assertIs(smtpout.StartTLS("REQUIRE"), smtpout.StartTLS.REQUIRE)
        self.assertIs(smtpout.Timeout("rcpt-to"), smtpout.Timeout.RCPT_TO)

    def test_misspelt_starttls_names_the_value_and_the_choices(self):
        for call in (lambda: smtpout.send("127.0.0.1:1", None, "s@x.example",
                                          ["a@x.example"], b"x",
                                          starttls="requir"),
                     lambda: smtpout.Session("mx.test.example",
                                             starttls="requir"),
                     lambda: smtpout.Connection("127.0.0.1:1",
                                                starttls="requir"),
                     lambda: asyncio.run(smtpout.aio.send(
                         "127.0.0.1:1", None, "s@x.example", ["a@x.example"],
                         b"x", starttls="requir"))):
            with self.assertRaises(ValueError) as cm:
                call()
            e = cm.exception
            self.assertIsInstance(e, smtpout.InvalidArgument)
            self.assertIn("starttls 'requir'", str(e))
            self.assertIn("disable, optional, require", str(e))
            self.assertEqual((e.argument, e.value), ("starttls", "requir"))

    def test_bad_address_says_which(self):
        with self.assertRaises(smtpout.BadAddress) as cm:
            smtpout.Session("mx.test.example").submit(
                "ok@test.example", ["fine@test.example", "bad\r\n@x.example"],
                b"x")
        self.assertIn("recipient 'bad\\r\\n@x.example'", str(cm.exception))
        self.assertEqual(cm.exception.value, "bad\r\n@x.example")
        for call in (smtpout.send, lambda *a: asyncio.run(
                smtpout.aio.send(*a))):
            with self.assertRaises(smtpout.BadAddress) as cm:
                call("127.0.0.1:1", None, "bad sender@x.example",
                     ["a@x.example"], b"x")
            self.assertIn("sender 'bad sender@x.example'", str(cm.exception))

    def test_embedded_nul_is_refused_and_named(self):
        nul = "a@test.example\0@evil.example"
        cases = {
            "recipient": lambda: smtpout.send("127.0.0.1:1", None,
                                              "s@test.example", [nul], b"x"),
            "sender": lambda: smtpout.send("127.0.0.1:1", None, nul,
                                           ["a@test.example"], b"x"),
            "mx_name": lambda: smtpout.send("127.0.0.1:1", "mx\0.example",
                                            "s@test.example",
                                            ["a@test.example"], b"x"),
            "helo": lambda: smtpout.Session("mx.test.example",
                                            helo="h\0.example"),
            "ca_file": lambda: smtpout.Session("mx.test.example",
                                               ca_file="ca\0.pem"),
            "configuration text": lambda: smtpout.Config.load_string(
                "[queue.outbound.tls]\0"),
            "address": lambda: smtpout.address_check(nul),
            "domain": lambda: smtpout.Config().policy(["x\0.example"]),
        }
        for argument, call in cases.items():
            with self.subTest(argument), self.assertRaises(ValueError) as cm:
                call()
            self.assertIn("NUL", str(cm.exception))
            self.assertEqual(cm.exception.argument, argument)
        with self.assertRaises(smtpout.BadAddress):
            asyncio.run(smtpout.aio.send("127.0.0.1:1", None,
                                         "s@test.example", [nul], b"x"))

    def test_bad_names_and_values_are_named(self):
        with self.assertRaisesRegex(smtpout.BadName, "helo 'bad name'"):
            smtpout.send("127.0.0.1:1", None, "s@x.example", ["a@x.example"],
                         b"x", helo="bad name")
        with self.assertRaisesRegex(smtpout.BadName, "helo 'bad name'"):
            asyncio.run(smtpout.aio.send("127.0.0.1:1", None, "s@x.example",
                                         ["a@x.example"], b"x",
                                         helo="bad name"))
        with self.assertRaisesRegex(smtpout.InvalidArgument,
                                    "server '127.0.0.1:99999'.*1..65535"):
            smtpout.send("127.0.0.1:99999", None, "s@x.example",
                         ["a@x.example"], b"x")
        with self.assertRaisesRegex(smtpout.InvalidArgument, "timeout -1"):
            smtpout.send("127.0.0.1:1", None, "s@x.example", ["a@x.example"],
                         b"x", timeout=-1)
        with self.assertRaisesRegex(smtpout.BadName, "domain 'a b'"):
            smtpout.Config().policy(["ok.example", "a b"])
        with self.assertRaisesRegex(TypeError, "message must be bytes"):
            smtpout.send("127.0.0.1:1", None, "s@x.example", ["a@x.example"],
                         12)

    def test_connect_errors_name_the_server(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]  # nobody listens there
        with self.assertRaises(smtpout.ConnectError) as cm:
            smtpout.Connection("127.0.0.1:%d" % port)
        self.assertIn("connect to 127.0.0.1:%d: Connection refused" % port,
                      str(cm.exception))
        with self.assertRaises(smtpout.ConnectError):
            asyncio.run(smtpout.aio.connect("127.0.0.1:%d" % port))
        with self.assertRaisesRegex(smtpout.ResolveError,
                                    "cannot resolve nosuch.invalid"):
            smtpout.Connection("nosuch.invalid")


class BodyTest(TempDirTest):
    """Bodies from file-like objects, with or without a descriptor."""

    def test_file_likes_without_fileno_are_delivered(self):
        spool = self.spool()
        rfd, wfd = os.pipe()
        os.write(wfd, BODY)
        os.close(wfd)
        bodies = [io.BytesIO(BODY), io.StringIO(BODY.decode()),
                  gzip.GzipFile(fileobj=io.BytesIO(gzip.compress(BODY))),
                  os.fdopen(rfd, "rb")]
        with aiosmtpd(spool) as srv:
            for body in bodies:
                res = smtpout.send("127.0.0.1:%d" % srv.port, None,
                                   "s@test.example", ["a@test.example"],
                                   body)
                self.assertTrue(res.all_delivered, (body, res.recipients))
            res = asyncio.run(smtpout.aio.send(
                "127.0.0.1:%d" % srv.port, None, "s@test.example",
                ["a@test.example"], io.BytesIO(BODY)))
            self.assertTrue(res.all_delivered, res.recipients)
        bodies[-1].close()
        msgs = spool_messages(spool)
        self.assertEqual(len(msgs), 5)
        for meta, content in msgs:
            self.assertEqual(content, canonical(BODY))
            self.assertIn("BODY=8BITMIME", meta["mail_options"])

    def test_regular_file_is_read_from_its_start_by_every_driver(self):
        spool = self.spool()
        path = self.write("msg.eml", BODY * 100)
        with aiosmtpd(spool) as srv, open(path, "rb") as f:
            f.seek(10)  # pread from 0: the position does not matter
            server = "127.0.0.1:%d" % srv.port
            smtpout.send(server, None, "s@test.example", ["a@test.example"],
                         f)
            asyncio.run(smtpout.aio.send(server, None, "s@test.example",
                                         ["a@test.example"], f))
            with smtpout.Connection(server) as conn:
                conn.send("s@test.example", ["a@test.example"], f)
            self.assertEqual(f.tell(), 10)
        msgs = spool_messages(spool)
        self.assertEqual([m[1] for m in msgs], [canonical(BODY * 100)] * 3)
        self.assertTrue(all("BODY=8BITMIME" in m[0]["mail_options"]
                            for m in msgs))


class AsyncSendTest(TempDirTest):
    """smtpout.aio.send() on the loop gives what smtpout.send() gives, in
    every situation both can meet."""

    def both(self, *args, **kwargs):
        """(send(), aio.send()) of the same delivery."""
        sync = smtpout.send(*args, **kwargs)
        aio = asyncio.run(smtpout.aio.send(*args, **kwargs))
        return sync, aio

    def assertSame(self, sync, aio):
        self.assertEqual(queued_as_any(aio), queued_as_any(sync))

    def test_mixed_results_are_those_of_send(self):
        spool = self.spool()
        with aiosmtpd(spool, rejects=[
                ("bad@test.example", "550 5.1.1 no such user"),
                ("busy@test.example", "451 4.3.0 try later")]) as srv:
            sync, aio = self.both(
                "127.0.0.1:%d" % srv.port, "mx.test.example",
                "s@test.example", ["a@test.example", "bad@test.example",
                                   "busy@test.example", "bad syntax"], BODY)
        self.assertSame(sync, aio)
        self.assertEqual([str(r.status) for r in aio.recipients],
                         ["delivered", "bounced", "deferred", "bounced"])
        self.assertEqual(aio.recipients[3].enhanced, "5.1.3")
        self.assertEqual([m[1] for m in spool_messages(spool)],
                         [canonical(BODY)] * 2)

    def test_tls_outcomes_are_those_of_send(self):
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"])) as srv:
            server = "127.0.0.1:%d" % srv.port
            for kwargs in ({"ca_file": certs["ca"]},
                           {"ca_file": certs["other_ca"]},
                           {"ca_file": certs["other_ca"],
                            "starttls": "require",
                            "allow_invalid_certs": True}):
                with self.subTest(**kwargs):
                    sync, aio = self.both(server, "mx.test.example",
                                          "s@test.example",
                                          ["a@test.example"], BODY, **kwargs)
                    self.assertSame(sync, aio)
        self.assertEqual(len(spool_messages(spool)), 4)

    def test_require_without_starttls_and_config_rules(self):
        cfg = self.write("policy.ini", b'[destination "t"]\n'
                                       b'domains = test.example\n'
                                       b'starttls = "require"\n')
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            sync, aio = self.both("127.0.0.1:%d" % srv.port,
                                  "mx.test.example", "s@x.example",
                                  ["a@test.example"], BODY, config=cfg)
        self.assertSame(sync, aio)
        self.assertEqual(aio.recipients[0].enhanced, "4.7.4")
        self.assertEqual(aio.policy.source["starttls"], cfg + ":3")
        self.assertEqual(spool_messages(spool), [])

    def test_policy_is_the_enforced_one_with_an_unusable_domain(self):
        # x@bad_domain.example's domain is no host name: it matches no
        # domain rule, a@test.example's rule still applies (issue 11 item
        # 14).  Both drivers enforce require and report it, with the rule's
        # line, and a fixed policy is reported as the host's.
        cfg = self.write("policy.ini", b'[destination "t"]\n'
                                       b'domains = test.example\n'
                                       b'starttls = "require"\n')
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            for rcpts in (["a@test.example", "x@bad_domain.example"],
                          ["x@bad_domain.example", "a@test.example"]):
                with self.subTest(rcpts=rcpts):
                    sync, aio = self.both("127.0.0.1:%d" % srv.port,
                                          "mx.test.example", "s@x.example",
                                          rcpts, BODY, config=cfg)
                    for res in (sync, aio):
                        self.assertEqual({r.enhanced for r in res.recipients},
                                         {"4.7.4"})
                        self.assertEqual(res.policy.starttls,
                                         smtpout.StartTLS.REQUIRE)
                        self.assertEqual(res.policy.source["starttls"],
                                         cfg + ":3")
            sync, aio = self.both("127.0.0.1:%d" % srv.port,
                                  "mx.test.example", "s@x.example",
                                  ["a@test.example"], BODY, config=cfg,
                                  starttls="optional")
        self.assertSame(sync, aio)
        self.assertEqual(aio.policy.starttls, smtpout.StartTLS.OPTIONAL)
        self.assertEqual(aio.policy.source["starttls"], "host")
        self.assertEqual(len(spool_messages(spool)), 2)  # sync and aio

    def test_plaintext_fallback_after_a_failed_handshake(self):
        # TLS 1.1 at most: smtpout's handshake fails; under "optional" the
        # policy permits one retry without STARTTLS, on a new connection.
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"]),
                      tls_max_version="TLSv1_1") as srv:
            sync, aio = self.both("127.0.0.1:%d" % srv.port,
                                  "mx.test.example", "s@test.example",
                                  ["a@test.example"], BODY,
                                  ca_file=certs["ca"])
        self.assertSame(sync, aio)
        self.assertEqual([a.plaintext_fallback for a in aio.attempts],
                         [False, True])
        self.assertEqual(aio.attempts[0].tls.outcome,
                         TLSOutcome.HANDSHAKE_FAILED)
        self.assertTrue(aio.all_delivered)
        self.assertEqual(len(spool_messages(spool)), 2)

    def test_unreachable_and_unresolvable_servers(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        for server in ("127.0.0.1:%d" % port, "nosuch.invalid:25",
                       "localhost:%d" % port):
            with self.subTest(server):
                sync, aio = self.both(server, "mx.test.example",
                                      "s@test.example", ["a@test.example"],
                                      BODY)
                self.assertSame(sync, aio)
                self.assertEqual(aio.recipients[0].status, Status.DEFERRED)

    def test_timeout_honours_the_sessions_expiry(self):
        # The server never greets: only the timeout (a call_at timer on
        # the session's expiry) ends the wait.
        srv = FaultServer(self.spool("stall"), ["--stall", "greeting"])
        try:
            sync, aio = self.both("127.0.0.1:%d" % srv.port,
                                  "mx.test.example", "s@test.example",
                                  ["a@test.example"], BODY, timeout=0.5)
        finally:
            srv.finish()
        self.assertSame(sync, aio)
        self.assertEqual(aio.recipients[0].enhanced, "4.4.2")
        self.assertIn("timed out waiting for the reply to greeting",
                      aio.attempts[0].error)

    def test_many_deliveries_at_once_on_one_loop(self):
        spool = self.spool()
        lines = []

        async def main(port):
            return await asyncio.gather(*[
                smtpout.aio.send(("127.0.0.1", port), None, "s@test.example",
                                 ["r%d@test.example" % i], BODY,
                                 trace=lambda d, line: lines.append(line))
                for i in range(20)])
        with aiosmtpd(spool) as srv:
            results = asyncio.run(main(srv.port))
        self.assertTrue(all(r.all_delivered for r in results))
        self.assertEqual(sorted(r.recipients[0].recipient for r in results),
                         sorted("r%d@test.example" % i for i in range(20)))
        self.assertEqual(len(spool_messages(spool)), 20)
        self.assertEqual(lines.count(b"QUIT"), 20)

    def test_trace_exception_is_raised_after_the_delivery(self):
        spool = self.spool()

        def trace(direction, line):
            if line.startswith(b"DATA"):
                raise KeyError("from trace")
        with aiosmtpd(spool) as srv:
            with self.assertRaises(KeyError):
                asyncio.run(smtpout.aio.send("127.0.0.1:%d" % srv.port, None,
                                             "s@test.example",
                                             ["a@test.example"], BODY,
                                             trace=trace))
        self.assertEqual(len(spool_messages(spool)), 1)

    def test_cancelled_delivery_frees_its_connection(self):
        # A server that accepts, then greets or not; cancelled while it
        # connects, and while the session waits for a reply.
        listener = socket.create_server(("127.0.0.1", 0))
        listener.setblocking(False)
        before = open_fds()

        async def cancel(greet):
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(smtpout.aio.send(
                listener.getsockname(), None, "s@test.example",
                ["a@test.example"], BODY))
            conn, _ = await loop.sock_accept(listener)
            if greet:
                await loop.sock_sendall(conn, b"220 hello\r\n")
                ehlo = await loop.sock_recv(conn, 100)
                self.assertTrue(ehlo.startswith(b"EHLO "), ehlo)
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            # Nothing of it is left on the loop (only the loop's own
            # self-pipe is registered), and the server reads end of file.
            registered = len(getattr(loop, "_selector").get_map())
            eof = await loop.sock_recv(conn, 100)
            conn.close()
            return registered, eof
        try:
            for greet in (False, True):
                registered, eof = asyncio.run(
                    asyncio.wait_for(cancel(greet), 60))
                self.assertEqual((registered, eof), (1, b""), greet)
        finally:
            listener.close()
        self.assertEqual(open_fds(), before - 1)  # the listener


class SmarthostTest(TempDirTest):
    """send() and aio.send() with the smarthost options (docs/relay.md):
    AUTH over STARTTLS and implicit TLS against aiosmtpd, a wrong password
    deferred, a client certificate, DSN left out for a server without it;
    both give the same results."""

    USER, PASSWORD = "alice", "wonder land"

    def setUp(self):
        super().setUp()
        self.certs = make_test_ca(self.path("certs"))

    def sink(self, *extra):
        users = self.write("users", "%s:%s\n" % (self.USER, self.PASSWORD),
                           "w")
        self.spooldir = self.spool("spool%d" % len(os.listdir(self.tmp)))
        return ServerProcess([PYTHON, os.path.join(
            SOURCE, "tests", "servers", "aiosmtpd-sink.py"),
            "--spool", self.spooldir, "--tls-cert", self.certs["cert"],
            "--tls-key", self.certs["key"], "--auth-users", users,
            "--auth-required"] + list(extra))

    def both(self, port, **kwargs):
        args = ("127.0.0.1:%d" % port, "mx.test.example", "s@test.example",
                ["a@test.example"], BODY)
        kwargs.setdefault("ca_file", self.certs["ca"])
        sync = smtpout.send(*args, **kwargs)
        aio = asyncio.run(smtpout.aio.send(*args, **kwargs))
        return sync, aio

    def test_auth_over_starttls_and_implicit_tls(self):
        for implicit in (False, True):
            with self.subTest(implicit=implicit), \
                    self.sink(*(["--implicit-tls"] if implicit else [])) \
                    as srv:
                trace = []
                sync, aio = self.both(
                    srv.port, auth_user=self.USER,
                    auth_password=self.PASSWORD, auth_mech="LOGIN PLAIN",
                    implicit_tls=implicit,
                    trace=lambda d, line: trace.append(line))
            for res in (sync, aio):
                self.assertTrue(res.all_delivered, res.recipients)
                (a,) = res.attempts
                self.assertEqual(a.auth_outcome, smtpout.AuthOutcome.OK)
                self.assertEqual(a.auth_mechanism, "LOGIN")
                self.assertEqual(a.tls.implicit, implicit)
                self.assertEqual(res.policy.starttls, smtpout.StartTLS.REQUIRE)
                self.assertEqual(res.policy.source["starttls"], "auth")
            self.assertFalse([t for t in trace
                              if self.PASSWORD.encode() in t])
            self.assertIn(b"AUTH LOGIN", trace)

    def test_wrong_password_is_deferred(self):
        with self.sink() as srv:
            sync, aio = self.both(srv.port, auth_user=self.USER,
                                  auth_password="wrong")
        for res in (sync, aio):
            (r,) = res.recipients
            self.assertEqual(r.status, Status.DEFERRED)
            self.assertEqual(r.enhanced, "4.7.8")
            self.assertIn("535", r.text)
            self.assertEqual(res.attempts[0].auth_outcome,
                             smtpout.AuthOutcome.FAILED)
        self.assertSame(sync, aio)

    def test_client_certificate_is_read_and_offered(self):
        with self.sink() as srv:
            sync, aio = self.both(srv.port, auth_user=self.USER,
                                  auth_password=self.PASSWORD,
                                  client_cert=self.certs["cert"],
                                  client_key=self.certs["key"])
        self.assertTrue(sync.all_delivered and aio.all_delivered)
        with self.assertRaises(smtpout.SmtpoutError) as cm:
            smtpout.send("127.0.0.1:1", None, "s@test.example",
                         "a@test.example", BODY,
                         client_cert=self.certs["cert"],
                         client_key=self.certs["ca"])
        self.assertEqual(cm.exception.code, smtpout.Error.TLS_SETUP)

    def test_dsn_left_out_and_reported(self):
        with self.sink() as srv:
            sync, aio = self.both(srv.port, auth_user=self.USER,
                                  auth_password=self.PASSWORD,
                                  notify="SUCCESS,FAILURE", ret="HDRS",
                                  envid="E1",
                                  orcpt={"a@test.example":
                                         "rfc822;o@test.example"},
                                  chunking=False)
        for res in (sync, aio):
            (r,) = res.recipients
            self.assertTrue(r.delivered)
            self.assertEqual(r.dsn_notify, smtpout.Notify.SUCCESS |
                             smtpout.Notify.FAILURE)
            self.assertFalse(r.dsn_sent)
            self.assertEqual(r.dsn_action, smtpout.DSNAction.RELAYED)
        self.assertSame(sync, aio)

    def test_relay_section(self):
        # send(relay=...): the host, port, implicit TLS and AUTH from the
        # configuration's section; the address has no name to verify.
        pw = self.write("pw", self.PASSWORD + "\n", "w")
        os.chmod(pw, 0o600)
        with self.sink("--implicit-tls") as srv:
            config = self.write("relay.ini", (
                '[relay "sub"]\nhost = 127.0.0.1\nport = %d\n'
                "implicit-tls = true\nauth-username = %s\n"
                "auth-password-file = %s\nauth-tls = any\n"
                "allow-invalid-certs = true\nauth-mechanisms = PLAIN\n")
                % (srv.port, self.USER, pw), "w")
            res = smtpout.send(None, None, "s@test.example",
                               ["a@test.example", "b@elsewhere.example"],
                               BODY, config=config, relay="sub")
        self.assertTrue(res.all_delivered, res.recipients)
        (a,) = res.attempts
        self.assertEqual(a.auth_outcome, smtpout.AuthOutcome.OK)
        self.assertEqual(a.auth_mechanism, "PLAIN")
        self.assertTrue(a.tls.implicit)
        for kwargs, argument in ((dict(), "config"),
                                 (dict(config=config, implicit_tls=True),
                                  "implicit_tls"),
                                 (dict(config=config, auth_user="u",
                                       auth_password="p"), "auth_user")):
            with self.assertRaises(smtpout.InvalidArgument) as cm:
                smtpout.send(None, None, "s@test.example", "a@test.example",
                             BODY, relay="sub", **kwargs)
            self.assertEqual(cm.exception.argument, argument)
        with self.assertRaises(smtpout.InvalidArgument) as cm:
            smtpout.send(None, None, "s@test.example", "a@test.example",
                         BODY, relay="nosuch", config=config)
        self.assertEqual(cm.exception.argument, "relay")

    def test_bad_options_are_named(self):
        cases = [
            (dict(auth_user="u"), "auth_password"),
            (dict(auth_mech="PLAIN"), "auth_mech"),
            (dict(auth_user="u", auth_password="p", auth_mech="NOSUCH"),
             "auth_mech"),
            (dict(auth_user="u", auth_password="p", starttls="disable"),
             "starttls"),
            (dict(notify="NEVER,DELAY"), "notify"),
            (dict(ret="ALL"), "ret"),
            (dict(envid="x" * 101), "envid"),
            (dict(orcpt=["no-type"]), "orcpt"),
            (dict(client_cert="c.pem"), "client_key"),
        ]
        for kwargs, argument in cases:
            for send in (smtpout.send,
                         lambda *a, **k: asyncio.run(smtpout.aio.send(*a,
                                                                      **k))):
                with self.subTest(kwargs=kwargs), \
                        self.assertRaises(smtpout.InvalidArgument) as cm:
                    send("127.0.0.1:1", None, "s@test.example",
                         "a@test.example", BODY, **kwargs)
                self.assertEqual(cm.exception.argument, argument)
                self.assertNotIn("wonder", str(cm.exception))

    def assertSame(self, sync, aio):
        self.assertEqual(queued_as_any(aio), queued_as_any(sync))


class ConnectionTest(TempDirTest):
    """Several messages over one connection, blocking and on asyncio."""

    def check_one_connection(self, trace_lines, spool, n):
        sent = [line for d, line in trace_lines if d == smtpout.Trace.SENT]
        starttls = sent.count(b"STARTTLS")
        self.assertLessEqual(starttls, 1)
        # One EHLO, and one more after STARTTLS: one connection.
        self.assertEqual(sum(line.startswith(b"EHLO") for line in sent),
                         1 + starttls)
        self.assertEqual(sum(line.startswith(b"MAIL FROM") for line in sent),
                         n)
        self.assertEqual(sent[-1], b"QUIT")
        self.assertEqual(len(spool_messages(spool)), n)

    def test_blocking_connection_sends_several_messages(self):
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        lines = []
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"]),
                      rejects=[("bad@test.example", "550 5.1.1 no")]) as srv:
            with smtpout.Connection(
                    "127.0.0.1:%d" % srv.port, "mx.test.example",
                    ca_file=certs["ca"], starttls="require",
                    trace=lambda d, line: lines.append((d, line))) as conn:
                results = [conn.send("s@test.example",
                                     ["a%d@test.example" % i,
                                      "bad@test.example"], BODY)
                           for i in range(3)]
                self.assertFalse(conn.closed)
                self.assertEqual(conn.address, "127.0.0.1:%d" % srv.port)
            self.assertTrue(conn.closed)
            self.assertIsNone(conn.error)
            self.assertTrue(conn.tls.verified)
            with self.assertRaises(smtpout.ConnectionClosed):
                conn.send("s@test.example", ["a@test.example"], BODY)
        for i, res in enumerate(results):
            self.assertEqual([str(r.status) for r in res.recipients],
                             ["delivered", "bounced"])
            self.assertEqual(res.recipients[0].message_id, i + 1)
            self.assertTrue(res.tls.verified)
        self.check_one_connection(lines, spool, 3)
        self.assertTrue(all(m[0]["tls"] for m in spool_messages(spool)))

    def test_asyncio_connection_sends_several_messages(self):
        spool = self.spool()
        lines = []

        async def main(port):
            async with smtpout.aio.Connection(
                    ("127.0.0.1", port), "mx.test.example",
                    trace=lambda d, line: lines.append((d, line))) as conn:
                # Two tasks at once: the messages go in turn.
                results = await asyncio.gather(*[
                    conn.send("s@test.example", ["a%d@test.example" % i],
                              io.BytesIO(BODY)) for i in range(4)])
            return conn, results
        with aiosmtpd(spool) as srv:
            conn, results = asyncio.run(main(srv.port))
        self.assertTrue(conn.closed)
        self.assertEqual(sorted(r.recipients[0].recipient for r in results),
                         ["a%d@test.example" % i for i in range(4)])
        self.assertTrue(all(r.all_delivered for r in results))
        self.check_one_connection(lines, spool, 4)

    def test_policy_conflict_leaves_the_connection_usable(self):
        cfg = self.write("policy.ini", b'[destination "t"]\n'
                                       b'domains = secure.example\n'
                                       b'starttls = "require"\n')
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            with smtpout.Connection("127.0.0.1:%d" % srv.port,
                                    "mx.test.example", config=cfg) as conn:
                first = conn.send("s@x.example", ["a@test.example"], BODY)
                with self.assertRaises(smtpout.PolicyConflict):
                    conn.send("s@x.example", ["b@secure.example"], BODY)
                last = conn.send("s@x.example", ["c@test.example"], BODY)
        self.assertTrue(first.all_delivered and last.all_delivered)
        self.assertEqual([m[0]["rcpt_to"] for m in spool_messages(spool)],
                         [["a@test.example"], ["c@test.example"]])

    def test_a_connection_the_server_closed_refuses_the_next_message(self):
        srv = OneMessageServer()
        try:
            with smtpout.Connection("127.0.0.1:%d" % srv.port,
                                    timeout=60) as conn:
                first = conn.send("s@x.example", ["a@test.example"], BODY)
                srv.thread.join(10)  # the server has closed its side
                with self.assertRaisesRegex(smtpout.ConnectionClosed,
                                            "is over"):
                    conn.send("s@x.example", ["b@test.example"], BODY)
        finally:
            srv.close()
        self.assertTrue(first.all_delivered)
        self.assertEqual(first.recipients[0].text, "OK the one message")

    def test_asyncio_connection_notices_an_idle_close(self):
        srv = OneMessageServer()

        async def main():
            async with smtpout.aio.Connection(
                    "127.0.0.1:%d" % srv.port, timeout=60) as conn:
                first = await conn.send("s@x.example", ["a@test.example"],
                                        BODY)
                # The loop keeps reading the idle connection.
                while not conn.closed:
                    await asyncio.sleep(0.01)
                with self.assertRaises(smtpout.ConnectionClosed):
                    await conn.send("s@x.example", ["b@test.example"], BODY)
            return first
        try:
            first = asyncio.run(asyncio.wait_for(main(), 60))
        finally:
            srv.close()
        self.assertTrue(first.all_delivered)


class ExampleScriptsTest(TempDirTest):
    def run_script(self, name, args, data):
        env = dict(os.environ, PYTHONPATH=PYDIR)
        return subprocess.run([PYTHON, os.path.join(PYDIR, name)] + args,
                              input=data, capture_output=True, env=env,
                              timeout=120)

    def test_asyncio_example_delivers_over_verified_tls(self):
        certs = make_test_ca(self.path("certs"))
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"])) as srv:
            p = self.run_script("asyncio_send.py", [
                "--server", "127.0.0.1:%d" % srv.port,
                "--mx-name", "mx.test.example", "--ca-file", certs["ca"],
                "--from", "s@test.example", "--to", "a@test.example",
                "--connections", "10"], BODY)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        out = p.stdout.decode()
        self.assertEqual(out.count("a@test.example delivered 250"), 10)
        self.assertEqual(out.count("tls ok verified=True"), 10)
        msgs = spool_messages(spool)
        self.assertEqual(len(msgs), 10)
        self.assertTrue(all(m[0]["tls"] for m in msgs))

    def test_selectors_example_reports_each_recipient(self):
        spool = self.spool()
        with aiosmtpd(spool, rejects=[
                ("bad@test.example", "550 5.1.1 no")]) as srv:
            p = self.run_script("selectors_send.py", [
                "--server", "127.0.0.1:%d" % srv.port,
                "--from", "s@test.example", "--to", "a@test.example",
                "--to", "bad@test.example"], BODY)
        self.assertEqual(p.returncode, 75, p.stderr.decode())
        out = p.stdout.decode()
        self.assertIn("a@test.example delivered 250", out)
        self.assertIn("bad@test.example bounced 550 5.1.1", out)
        self.assertIn("tls not-offered", out)


if __name__ == "__main__":
    main()
