"""The Python ctypes binding (examples/python/smtpout) against a real
server (Debian's aiosmtpd): send() with mixed results, STARTTLS verified
with a CA file and refused with the wrong one, a policy rule from a config
file, the low-level Session in a selectors loop and in asyncio, and
exceptions raised in callbacks reaching the caller."""
import gc
import io
import os
import re
import selectors
import socket
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (PYTHON, SOURCE, FaultServer, TempDirTest,  # noqa
                     aiosmtpd, canonical, main, make_test_ca, spool_messages)

PYDIR = os.path.join(SOURCE, "examples", "python")
sys.path.insert(0, PYDIR)
import smtpout  # noqa: E402
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
                self.assertEqual(s1.error, 0, s1.error_text)
                self.assertEqual(s2.error, 0, s2.error_text)
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
            self.assertEqual(s.error, smtpout.Error.CALLBACK_FAILURE)
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


class DocsExamplesTest(TempDirTest):
    """The standalone programs of docs/python.md (the python blocks that
    start with "import") run as written, with policy.ini from the page's
    ini block, against a STARTTLS server whose certificate ca.pem
    verifies; only the port 2525 is replaced."""

    def blocks(self, lang):
        with open(os.path.join(SOURCE, "docs", "python.md")) as f:
            doc = f.read()
        return re.findall(r"^```%s\n(.*?)^```" % lang, doc, re.M | re.S)

    def run_example(self, code, port):
        code = code.replace("2525", str(port))
        env = dict(os.environ, PYTHONPATH=PYDIR)
        return subprocess.run([PYTHON, "-c", code], cwd=self.tmp, env=env,
                              capture_output=True, timeout=120)

    def test_standalone_examples_deliver_over_verified_tls(self):
        programs = [b for b in self.blocks("python") if b.startswith("import")]
        self.assertGreaterEqual(len(programs), 3)
        ini, = self.blocks("ini")
        self.write("policy.ini", ini.encode())
        certs = make_test_ca(self.path("certs"))
        self.write("ca.pem", open(certs["ca"], "rb").read())
        ran = 0
        spool = self.spool()
        with aiosmtpd(spool, tls=(certs["cert"], certs["key"])) as srv:
            for code in programs:
                p = self.run_example(code, srv.port)
                out = p.stdout.decode()
                self.assertEqual(p.returncode, 0, code + p.stderr.decode())
                self.assertNotRegex(out, "deferred|bounced", out)
                self.assertRegex(out, r"verified|True True \{\}", out)
                if "Config.load_file" in code:
                    self.assertIn("starttls = require decided by "
                                  "policy.ini:7", out)
                ran += 1
        msgs = spool_messages(spool)
        self.assertGreaterEqual(ran, 2)
        self.assertEqual(len(msgs), ran)
        self.assertTrue(all(meta["tls"] for meta, _ in msgs))


if __name__ == "__main__":
    main()
