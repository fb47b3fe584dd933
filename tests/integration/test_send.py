"""smtpout-send against a real SMTP server (Debian's aiosmtpd): the bytes
the server stored equal the canonical form of what was sent, recipients
get their own results, and the exit status follows sysexits."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (EX_CONFIG, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE,  # noqa
                     EX_USAGE, MIXED_ARGS, MIXED_REJECTS,
                     TempDirTest, aiosmtpd, canonical,
                     check_mixed_results, main, send, spool_messages)

TRICKY = (b"Subject: tricky\n\n"
          b".\n..\n.x\nbare LF\nbare CR\rCRLF\r\n"
          b"\n.\n\r\n.\r\n"  # would end DATA early if sent raw
          b"8-bit: \xc3\xa9t\xc3\xa9 \xff\n" + b"y" * 990 + b"\n"
          b"no final newline")


class SendTest(TempDirTest):
    def test_delivers_tricky_body_byte_for_byte(self):
        spool = self.spool()
        body = self.write("msg", TRICKY)
        with aiosmtpd(spool) as srv:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--mx-name", "mx.test.example",
                                 "--from", "s@test.example",
                                 "--to", "a@test.example",
                                 "--to", "b@test.example",
                                 "--data", body])
        self.assertEqual(rc, EX_OK, err)
        msgs = spool_messages(spool)
        self.assertEqual(len(msgs), 1)
        meta, content = msgs[0]
        self.assertEqual(content, canonical(TRICKY))
        self.assertEqual(meta["rcpt_to"], ["a@test.example", "b@test.example"])
        self.assertIn("BODY=8BITMIME", meta["mail_options"])
        self.assertFalse(meta["tls"])
        for r in doc["recipients"]:
            self.assertEqual(r["status"], "delivered")
            self.assertEqual(r["code"], 250)
            self.assertFalse(r["possibly_delivered"])

    def test_mixed_accept_reject_exit_75(self):
        spool = self.spool()
        body = self.write("msg", b"Subject: x\r\n\r\nbody\r\n")
        with aiosmtpd(spool, rejects=MIXED_REJECTS) as srv:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--mx-name", "mx.test.example",
                                 "--data", body] + MIXED_ARGS)
        check_mixed_results(self, rc, doc, err)
        msgs = spool_messages(spool)
        self.assertEqual(len(msgs), 1)
        self.assertEqual(msgs[0][0]["rcpt_to"],
                         ["a@test.example", "c@test.example"])

    def test_only_bounces_exit_69(self):
        spool = self.spool()
        body = self.write("msg", b"x\n")
        with aiosmtpd(spool, rejects=[
                ("bad@test.example", "550 5.1.1 no such user")]) as srv:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--from", "s@test.example",
                                 "--to", "bad@test.example",
                                 "--data", body])
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        self.assertEqual(spool_messages(spool), [])
        self.assertEqual(doc["recipients"][0]["status"], "bounced")

    def test_large_message_from_stdin(self):
        spool = self.spool()
        line = b"0123456789" * 7 + b"\n"
        data = b"Subject: big\n\n" + line * ((12 << 20) // len(line))
        with aiosmtpd(spool) as srv:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--from", "s@test.example",
                                 "--to", "a@test.example", "--data", "-"],
                                data=data)
        self.assertEqual(rc, EX_OK, err)
        meta, content = spool_messages(spool)[0]
        self.assertEqual(content, canonical(data))

    def test_unreachable_server_defers_with_attempt_error(self):
        body = self.write("msg", b"x\n")
        # A port nothing listens on: bind, learn it, close.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        rc, doc, err = send(["--server", "127.0.0.1:%d" % port,
                             "--from", "s@test.example",
                             "--to", "a@test.example", "--data", body])
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertEqual(doc["recipients"][0]["status"], "deferred")
        self.assertEqual(doc["recipients"][0]["enhanced"], "4.4.1")
        self.assertIn("refused", doc["attempts"][0]["error"])

    def test_injection_in_recipient_never_reaches_the_server(self):
        spool = self.spool()
        body = self.write("msg", b"x\n")
        with aiosmtpd(spool) as srv:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--from", "s@test.example",
                                 "--to", "a@test.example\r\nRCPT TO:<evil@x>",
                                 "--to", "ok@test.example",
                                 "--data", body])
        self.assertEqual(rc, EX_UNAVAILABLE, err)
        r = doc["recipients"]
        self.assertEqual(r[0]["status"], "bounced")
        self.assertEqual(r[0]["enhanced"], "5.1.3")
        self.assertEqual(r[1]["status"], "delivered")
        msgs = spool_messages(spool)
        self.assertEqual(msgs[0][0]["rcpt_to"], ["ok@test.example"])

    def test_connect_timeout_from_config_bounds_a_silent_connect(self):
        # A listener whose backlog is full drops SYNs: connect() never
        # completes, and only the configured connect timeout ends it.
        import socket
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(0)
        port = lst.getsockname()[1]
        fillers = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect(("127.0.0.1", port))
            except BlockingIOError:
                pass
            fillers.append(c)
        cfg = self.write("t.ini", "[queue.outbound.timeouts]\nconnect = 1s\n",
                         mode="w")
        try:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % port,
                                 "--config", cfg, "--from", "s@test.example",
                                 "--to", "a@test.example",
                                 "--data", "/dev/null"], timeout=60)
        finally:
            for c in fillers:
                c.close()
            lst.close()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("timed out", doc["attempts"][0]["error"])
        r = doc["recipients"][0]
        self.assertEqual((r["status"], r["enhanced"]), ("deferred", "4.4.1"))

    def test_message_from_a_pipe(self):
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            # --data names a FIFO: not seekable, so it is spooled first.
            fifo = self.path("fifo")
            os.mkfifo(fifo)
            import threading
            t = threading.Thread(target=lambda: open(fifo, "wb").write(
                b"Subject: fifo\n\nvia a pipe\n"))
            t.start()
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--from", "s@test.example",
                                 "--to", "a@test.example", "--data", fifo])
            t.join()
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(spool_messages(spool)[0][1],
                         b"Subject: fifo\r\n\r\nvia a pipe\r\n")

    def test_bad_config_exits_78_naming_file_and_line(self):
        cfg = self.write("bad.ini", "[queue.outbound.tls]\n"
                                    "starttls = \"requir\"\n", mode="w")
        body = self.write("msg", b"x\n")
        rc, doc, err = send(["--server", "127.0.0.1:1", "--config", cfg,
                             "--from", "s@test.example",
                             "--to", "a@test.example", "--data", body])
        self.assertEqual(rc, EX_CONFIG)
        self.assertIsNone(doc)
        self.assertIn(cfg + ":2:", err)
        self.assertIn("requir", err)
        self.assertIn("optional, require, disable", err)

    def test_usage_errors_exit_64(self):
        rc, doc, err = send(["--from", "s@test.example"])
        self.assertEqual(rc, EX_USAGE)
        rc, doc, err = send(["--server", "x:notaport", "--from", "a@b.c",
                             "--to", "d@e.f"])
        self.assertEqual(rc, EX_USAGE)
        rc, doc, err = send(["--server", "127.0.0.1", "--from", "a\r\n@b.c",
                             "--to", "d@e.f", "--data", "/dev/null"])
        self.assertEqual(rc, EX_USAGE)


if __name__ == "__main__":
    main()
