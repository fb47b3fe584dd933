"""smtpout-send as a smarthost client against real servers (issue 15):
SMTP AUTH, implicit TLS, client certificates, BDAT and DSN.

aiosmtpd (tests/servers/aiosmtpd-sink.py) takes PLAIN and LOGIN after
STARTTLS or under implicit TLS and logs every attempt; it offers neither
CHUNKING nor DSN, so DATA is used there and DSN parameters are left out.
Postfix's smtpd with Dovecot SASL (tests/servers/dovecot.py; root and
dovecot-core) takes PLAIN, LOGIN and SCRAM-SHA-256, over STARTTLS or in
wrapper mode (implicit TLS), asks for client certificates, offers CHUNKING
and DSN, and keeps a held message's DSN parameters in its queue file
(postcat).  The rules checked are docs/relay.md's: credentials never in
clear, by default only over a verified certificate, failures deferred
with the server's text, the password in no output.
"""
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
import dovecot  # noqa: E402
import postfix  # noqa: E402
from test_send_postfix import tricky_megabyte  # noqa: E402
from testlib import (EX_OK, EX_TEMPFAIL, EX_USAGE, PYTHON,  # noqa: E402
                     SOURCE, ServerProcess, TempDirTest, canonical, cert,
                     certs, main, send)

EX_NOINPUT = 66
USER, PASSWORD, WRONG = "alice", "wonder land", "wonderland"
MSG = b"Subject: relayed\n\nhello\n.a line with a dot\n"


def secret_forms(password):
    """The password and the base64 forms it could leak as."""
    return [password, base64.b64encode(password.encode()).decode(),
            base64.b64encode(("\0%s\0%s" % (USER, password)).encode())
            .decode()]


class RelayTest(TempDirTest):
    def password_file(self, password=PASSWORD, mode=0o600):
        path = self.path("password")
        with open(path, "w") as f:
            f.write(password + "\n")
        os.chmod(path, mode)
        return path

    def relay(self, port, *extra, password=PASSWORD, data=MSG,
              to=("a@test.example",)):
        """smtpout-send with credentials through 127.0.0.1:port; returns
        (exit status, JSON, stderr) and checks the password is in none of
        the output."""
        args = ["--server", "127.0.0.1:%d" % port,
                "--mx-name", "mx.test.example",
                "--ca-file", os.path.join(certs(), "ca.pem"),
                "--from", "s@test.example", "--verbose",
                "--data", self.write("msg", data)]
        for t in to:
            args += ["--to", t]
        if password is not None:
            args += ["--auth-user", USER,
                     "--auth-password-file", self.password_file(password)]
        rc, doc, err = send(args + list(extra))
        out = json.dumps(doc) + err
        for form in secret_forms(password or PASSWORD):
            self.assertNotIn(form, out)
        return rc, doc, err

    def via_relay(self, port, *keys, password=PASSWORD, data=MSG,
                  to=("a@test.example",), args=()):
        """smtpout-send --relay r, [relay "r"] at 127.0.0.1:port with the
        password file and `keys`; returns (exit status, JSON, stderr) and
        checks the password is in none of the output."""
        lines = ['[relay "r"]', "host = 127.0.0.1", "port = %d" % port]
        if password is not None:
            lines += ["auth-username = %s" % USER,
                      "auth-password-file = %s"
                      % self.password_file(password)]
        config = self.write("relay.ini", "\n".join(lines + list(keys))
                            + "\n", "w")
        argv = ["--relay", "r", "--config", config,
                "--from", "s@test.example", "--verbose",
                "--data", self.write("msg", data)]
        for t in to:
            argv += ["--to", t]
        rc, doc, err = send(argv + list(args))
        out = json.dumps(doc) + err
        for form in secret_forms(password or PASSWORD):
            self.assertNotIn(form, out)
        return rc, doc, err

    def assert_deferred(self, doc, enhanced, fragment):
        (r,) = doc["recipients"]
        self.assertEqual(r["status"], "deferred")
        self.assertEqual(r["enhanced"], enhanced)
        self.assertIn(fragment, r["text"])


class AiosmtpdRelayTest(RelayTest):
    def sink(self, *extra, kind="valid", spool="spool"):
        users = self.write("users", "%s:%s\n" % (USER, PASSWORD), "w")
        chain, key = cert(kind)
        self.spooldir = self.spool(spool)
        return ServerProcess([PYTHON, os.path.join(
            SOURCE, "tests", "servers", "aiosmtpd-sink.py"),
            "--spool", self.spooldir, "--tls-cert", chain, "--tls-key", key,
            "--auth-users", users] + list(extra))

    def auth_log(self):
        path = os.path.join(self.spooldir, "auth.log")
        if not os.path.exists(path):
            return []
        with open(path) as f:
            return [json.loads(line) for line in f]

    def stored(self):
        with open(os.path.join(self.spooldir, "1.json")) as f:
            return json.load(f)

    def test_plain_and_login_over_starttls_deliver(self):
        for mech in ("PLAIN", "LOGIN"):
            with self.subTest(mech), \
                    self.sink("--auth-required", spool=mech) as srv:
                rc, doc, err = self.relay(srv.port, "--auth-mech", mech)
                self.assertEqual(rc, EX_OK, err)
                (a,) = doc["attempts"]
                self.assertEqual(a["auth"], {"outcome": "ok",
                                             "mechanism": mech,
                                             "username": USER})
                # Traced redacted: the command, never a response.
                self.assertIn("C: AUTH PLAIN ****\n" if mech == "PLAIN"
                              else "C: AUTH LOGIN\nS: 334 ", err)
                self.assertEqual(doc["policy"]["starttls"], "require")
                self.assertEqual(doc["policy"]["source"]["starttls"],
                                 "auth")
                self.assertEqual([(e["mechanism"], e["success"], e["tls"])
                                  for e in self.auth_log()],
                                 [(mech, True, True)])
                self.assertEqual(self.stored()["auth_user"], USER)

    def test_implicit_tls(self):
        with self.sink("--implicit-tls", "--auth-required") as srv:
            rc, doc, err = self.relay(srv.port, "--implicit-tls")
            self.assertEqual(rc, EX_OK, err)
        (a,) = doc["attempts"]
        self.assertTrue(a["tls"]["implicit"])
        self.assertTrue(a["tls"]["verified"])
        self.assertNotIn("STARTTLS", err.split("S: 220")[0])
        self.assertIn("starting implicit TLS", err)
        self.assertEqual(self.auth_log()[0]["tls"], True)

    def test_wrong_password_is_deferred_with_the_535_text(self):
        with self.sink() as srv:
            rc, doc, err = self.relay(srv.port, password=WRONG)
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assert_deferred(doc, "4.7.8", "535")
        self.assertEqual(doc["attempts"][0]["auth"]["outcome"], "failed")
        self.assertEqual(len(doc["attempts"]), 1)
        self.assertIn("refused AUTH", doc["attempts"][0]["error"])
        self.assertEqual([e["success"] for e in self.auth_log()], [False])
        self.assertFalse(os.path.exists(os.path.join(self.spooldir,
                                                     "1.json")))

    def test_auth_offered_in_clear_is_never_used(self):
        # A server that offers AUTH without STARTTLS: no AUTH, no MAIL.
        users = self.write("users", "%s:%s\n" % (USER, PASSWORD), "w")
        self.spooldir = self.spool()
        with ServerProcess([PYTHON, os.path.join(
                SOURCE, "tests", "servers", "aiosmtpd-sink.py"),
                "--spool", self.spooldir, "--auth-users", users,
                "--auth-cleartext"]) as srv:
            rc, doc, err = self.relay(srv.port)
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assert_deferred(doc, "4.7.4", "never sent in clear")
        self.assertIn("S: 250-AUTH", err)
        self.assertNotIn("C: AUTH", err)
        self.assertNotIn("C: MAIL", err)
        self.assertEqual(doc["attempts"][0]["auth"]["outcome"], "no-tls")
        self.assertEqual(self.auth_log(), [])

    def test_unverified_certificate_gets_no_auth_unless_any(self):
        with self.sink(kind="untrusted") as srv:
            rc, doc, err = self.relay(srv.port, "--allow-invalid-certs")
            self.assertEqual(rc, EX_TEMPFAIL, err)
            self.assert_deferred(doc, "4.7.5", "did not verify")
            self.assertEqual(doc["attempts"][0]["auth"]["outcome"],
                             "unverified")
            self.assertNotIn("C: AUTH", err)
            self.assertEqual(self.auth_log(), [])
            rc, doc, err = self.relay(srv.port, "--allow-invalid-certs",
                                      "--auth-tls", "any")
            self.assertEqual(rc, EX_OK, err)
            self.assertFalse(doc["attempts"][0]["tls"]["verified"])
            self.assertEqual([e["success"] for e in self.auth_log()], [True])

    # The relay's own section (--relay): an address, so no name for the
    # certificate to verify: auth-tls = any and allow-invalid-certs say
    # that is accepted.
    ANY = ("auth-tls = any", "allow-invalid-certs = true")

    def test_relay_section_implicit_tls_with_auth(self):
        with self.sink("--implicit-tls", "--auth-required") as srv:
            rc, doc, err = self.via_relay(srv.port, "implicit-tls = true",
                                          "auth-mechanisms = PLAIN",
                                          *self.ANY)
            self.assertEqual(rc, EX_OK, err)
        self.assertEqual(doc["relay"], "r")
        (a,) = doc["attempts"]
        self.assertTrue(a["tls"]["implicit"])
        self.assertEqual(a["smtp_auth"], {"outcome": "ok",
                                          "mechanism": "PLAIN"})
        self.assertNotIn("STARTTLS", err.split("S: 220")[0])
        self.assertEqual([(e["mechanism"], e["success"], e["tls"])
                          for e in self.auth_log()], [("PLAIN", True, True)])
        self.assertEqual(self.stored()["auth_user"], USER)

    def test_relay_section_starttls_with_auth(self):
        with self.sink("--auth-required") as srv:
            rc, doc, err = self.via_relay(srv.port, "auth-mechanisms = LOGIN",
                                          *self.ANY)
            self.assertEqual(rc, EX_OK, err)
        (a,) = doc["attempts"]
        self.assertFalse(a["tls"]["implicit"])
        self.assertEqual(a["smtp_auth"]["mechanism"], "LOGIN")
        self.assertIn("C: STARTTLS", err)
        self.assertLess(err.index("C: STARTTLS"), err.index("C: AUTH LOGIN"))
        self.assertEqual([(e["mechanism"], e["success"], e["tls"])
                          for e in self.auth_log()], [("LOGIN", True, True)])

    def test_relay_section_auth_rules(self):
        # auth-tls = verified (the default): an unverified certificate
        # carries no password, even where allow-invalid-certs lets it
        # carry mail.
        with self.sink() as srv:
            rc, doc, err = self.via_relay(srv.port,
                                          "allow-invalid-certs = true")
            self.assertEqual(rc, EX_TEMPFAIL, err)
            # Deferred by the route (its one host failed), with the
            # session's reason.
            self.assert_deferred(doc, "4.4.2", "did not verify")
            self.assertEqual(doc["policy"]["starttls"], "require")
            self.assertEqual(doc["attempts"][0]["smtp_auth"]["outcome"],
                             "unverified")
            self.assertNotIn("C: AUTH", err)
            self.assertNotIn("C: MAIL", err)
        self.assertEqual(self.auth_log(), [])
        # AUTH offered without STARTTLS: never used, no fallback.
        users = self.write("users", "%s:%s\n" % (USER, PASSWORD), "w")
        self.spooldir = self.spool("clear")
        with ServerProcess([PYTHON, os.path.join(
                SOURCE, "tests", "servers", "aiosmtpd-sink.py"),
                "--spool", self.spooldir, "--auth-users", users,
                "--auth-cleartext"]) as srv:
            rc, doc, err = self.via_relay(srv.port, *self.ANY)
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assert_deferred(doc, "4.7.5", "never sent in clear")
        self.assertNotIn("C: AUTH", err)
        self.assertEqual(len(doc["attempts"]), 1)
        self.assertEqual(self.auth_log(), [])
        # A wrong password: deferred with the 535 text.
        with self.sink(spool="wrong") as srv:
            rc, doc, err = self.via_relay(srv.port, *self.ANY,
                                          password=WRONG)
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assert_deferred(doc, "4.4.2", "535")
        self.assertEqual(doc["attempts"][0]["smtp_auth"]["outcome"],
                         "failed")

    def test_relay_usage_errors(self):
        with self.sink() as srv:
            for extra in (["--auth-user", USER], ["--implicit-tls"],
                          ["--starttls", "require"]):
                rc, _, err = self.via_relay(srv.port, args=extra)
                self.assertEqual(rc, EX_USAGE, err)
                self.assertIn("relay's section sets them", err)
            rc, _, err = send(["--relay", "r", "--from", "s@test.example",
                               "--to", "a@test.example", "--data",
                               self.write("m", MSG)])
            self.assertEqual(rc, EX_USAGE, err)
            config = self.write("other.ini", '[relay "x"]\nhost = '
                                "127.0.0.1\n", "w")
            rc, _, err = send(["--relay", "r", "--config", config,
                               "--from", "s@test.example",
                               "--to", "a@test.example", "--data",
                               self.write("m", MSG)])
            self.assertEqual(rc, EX_USAGE, err)
            self.assertIn('no [relay "r"]', err)
            # A password file others may read: the configuration refuses
            # it at load.
            path = self.password_file(mode=0o640)
            config = self.write("open.ini", '[relay "r"]\nhost = 127.0.0.1'
                                "\nauth-username = u\n"
                                "auth-password-file = %s\n" % path, "w")
            rc, _, err = send(["--relay", "r", "--config", config,
                               "--from", "s@test.example",
                               "--to", "a@test.example", "--data",
                               self.write("m", MSG)])
            self.assertEqual(rc, 78, err)
            self.assertIn("auth-password-file", err)
        self.assertEqual(self.auth_log(), [])

    def test_dsn_left_out_for_a_server_without_dsn(self):
        with self.sink() as srv:
            rc, doc, err = self.relay(
                srv.port, "--notify", "SUCCESS,FAILURE", "--ret", "HDRS",
                "--envid", "ID1", password=None,
                to=("a@test.example",))
        self.assertEqual(rc, EX_OK, err)
        self.assertIn("C: MAIL FROM:<s@test.example>", err)
        self.assertNotIn("RET=", err)
        self.assertNotIn("NOTIFY=", err)
        self.assertIn("does not offer DSN", err)
        (r,) = doc["recipients"]
        self.assertEqual(r["dsn"], {"notify": "SUCCESS,FAILURE",
                                    "sent": False, "action": "relayed"})

    def test_usage_errors(self):
        with self.sink() as srv:
            rc, _, err = self.relay(srv.port, "--starttls", "disable")
            self.assertEqual(rc, EX_USAGE, err)
            self.assertIn("never sent in clear", err)
            path = self.password_file(mode=0o644)
            rc, _, err = send(["--server", "127.0.0.1:%d" % srv.port,
                               "--from", "s@test.example",
                               "--to", "a@test.example", "--data",
                               self.write("m", MSG), "--auth-user", USER,
                               "--auth-password-file", path])
            self.assertEqual(rc, EX_NOINPUT, err)
            self.assertIn("chmod 600", err)
            rc, _, err = self.relay(srv.port, "--auth-mech", "CRAM-MD5")
            self.assertEqual(rc, EX_USAGE, err)
            rc, _, err = self.relay(srv.port, "--notify", "NEVER,SUCCESS")
            self.assertEqual(rc, EX_USAGE, err)
            rc, _, err = self.relay(srv.port, "--to", "b@test.example",
                                    "--orcpt", "rfc822;x@test.example")
            self.assertEqual(rc, EX_USAGE, err)
        self.assertEqual(self.auth_log(), [])


@unittest.skipUnless(postfix.available() and dovecot.available(),
                     "needs root, Postfix and Dovecot (dovecot-core)")
class PostfixRelayTest(RelayTest):
    """Postfix's smtpd with Dovecot SASL; one Dovecot for the class."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpout-relay-")
        os.chmod(cls.tmp, 0o755)
        cls.dovecot = dovecot.Dovecot(os.path.join(cls.tmp, "dovecot"),
                                      {USER: PASSWORD}).start()

    @classmethod
    def tearDownClass(cls):
        cls.dovecot.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def postfix(self, *main_cf, dv=None, **kw):
        kw.setdefault("tls", cert("valid"))
        return postfix.Postfix(self.path("pf"), main_cf=(
            dv or self.dovecot).postfix_main_cf() + list(main_cf), **kw)

    def test_each_mechanism_over_starttls(self):
        mechs = ["PLAIN", "LOGIN"]
        if self.scram_built():
            mechs.insert(0, "SCRAM-SHA-256")
        with self.postfix() as pf:
            for mech in mechs:
                with self.subTest(mech):
                    rc, doc, err = self.relay(pf.port, "--auth-mech", mech)
                    self.assertEqual(rc, EX_OK, err)
                    self.assertEqual(doc["attempts"][0]["auth"]["mechanism"],
                                     mech)
            pf.messages(len(mechs))
            log = pf.log()
        for mech in mechs:
            self.assertRegex(log, r"sasl_method=%s, sasl_username=%s" % (
                mech, USER))
        self.assertNotIn(PASSWORD, log)
        self.assertNotIn(PASSWORD, self.dovecot.log())

    def test_default_list_prefers_scram(self):
        if not self.scram_built():
            self.skipTest("smtpout built without GNU SASL")
        with self.postfix() as pf:
            rc, doc, err = self.relay(pf.port)
            self.assertEqual(rc, EX_OK, err)
        self.assertEqual(doc["attempts"][0]["auth"]["mechanism"],
                         "SCRAM-SHA-256")

    def test_implicit_tls_wrappermode(self):
        mechs = ["PLAIN", "LOGIN"]
        if self.scram_built():
            mechs.insert(0, "SCRAM-SHA-256")
        with self.postfix(wrappermode=True) as pf:
            for mech in mechs:
                with self.subTest(mech):
                    rc, doc, err = self.relay(pf.port, "--implicit-tls",
                                              "--auth-mech", mech)
                    self.assertEqual(rc, EX_OK, err)
                    self.assertTrue(doc["attempts"][0]["tls"]["implicit"])
                    self.assertEqual(
                        doc["attempts"][0]["auth"]["mechanism"], mech)
            pf.messages(len(mechs))
            sessions = pf.sessions()
            log = pf.log()
        self.assertEqual(len(sessions), len(mechs))
        for s in sessions:
            self.assertNotIn("starttls", s)
            self.assertEqual(s["auth"], 1)
        for mech in mechs:
            self.assertRegex(log, r"sasl_method=%s, sasl_username=%s" % (
                mech, USER))

    ANY = ("auth-tls = any", "allow-invalid-certs = true")

    def test_relay_section_implicit_tls_wrappermode(self):
        with self.postfix(wrappermode=True) as pf:
            rc, doc, err = self.via_relay(pf.port, "implicit-tls = true",
                                          "auth-mechanisms = PLAIN",
                                          *self.ANY)
            self.assertEqual(rc, EX_OK, err)
            pf.messages(1)
            sessions = pf.sessions()
            log = pf.log()
        (a,) = doc["attempts"]
        self.assertTrue(a["tls"]["implicit"])
        self.assertEqual(a["smtp_auth"]["outcome"], "ok")
        self.assertNotIn("starttls", sessions[-1])
        self.assertEqual(sessions[-1]["auth"], 1)
        self.assertRegex(log, r"sasl_method=PLAIN, sasl_username=%s" % USER)

    def test_relay_section_starttls_submission(self):
        mech = "SCRAM-SHA-256" if self.scram_built() else "LOGIN"
        with self.postfix() as pf:
            rc, doc, err = self.via_relay(pf.port,
                                          "auth-mechanisms = %s" % mech,
                                          *self.ANY)
            self.assertEqual(rc, EX_OK, err)
            pf.messages(1)
            log = pf.log()
        self.assertEqual(doc["attempts"][0]["smtp_auth"]["mechanism"], mech)
        self.assertIn("C: STARTTLS", err)
        self.assertRegex(log, r"sasl_method=%s, sasl_username=%s" % (
            mech, USER))

    def test_relay_section_client_certificate_seen_by_postfix(self):
        chain, key = cert("valid")
        ca = os.path.join(certs(), "ca.pem")
        with self.postfix("smtpd_tls_ask_ccert = yes",
                          "smtpd_tls_CAfile = %s" % ca) as pf:
            rc, doc, err = self.via_relay(
                pf.port, "client-cert = %s" % chain,
                "client-key = %s" % key, "allow-invalid-certs = true",
                password=None)
            self.assertEqual(rc, EX_OK, err)
            pf.messages(1)
            tls_lines = [line for line in pf.log().splitlines()
                         if "TLS connection established from" in line]
        self.assertTrue(doc["attempts"][0]["tls"]["client_certificate"])
        self.assertEqual(len(tls_lines), 1, tls_lines)
        self.assertIn("client-signature", tls_lines[0])

    def test_wrong_password_is_deferred_with_the_535_text(self):
        with self.postfix() as pf:
            rc, doc, err = self.relay(pf.port, "--auth-mech", "LOGIN",
                                      password=WRONG)
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assert_deferred(doc, "4.7.8", "535")
        self.assertIn("authentication failed", doc["recipients"][0]["text"])

    def test_huge_scram_iteration_count_is_refused(self):
        if not self.scram_built():
            self.skipTest("smtpout built without GNU SASL")
        tmp = tempfile.mkdtemp(prefix="smtpout-relay-", dir=self.tmp)
        os.chmod(tmp, 0o755)
        with dovecot.Dovecot(os.path.join(tmp, "dovecot"), {USER: PASSWORD},
                             scram_iterations=200000) as dv, \
                self.postfix(dv=dv) as pf:
            rc, doc, err = self.relay(pf.port, "--auth-mech",
                                      "SCRAM-SHA-256")
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assert_deferred(doc, "4.7.0", "200000 is over the limit")
        self.assertEqual(doc["attempts"][0]["auth"]["outcome"], "error")
        self.assertIn("C: *\n", err)

    def test_client_certificate_seen_by_postfix(self):
        chain, key = cert("valid")
        ca = os.path.join(certs(), "ca.pem")
        with self.postfix("smtpd_tls_ask_ccert = yes",
                          "smtpd_tls_CAfile = %s" % ca) as pf:
            rc, doc, err = self.relay(pf.port, "--client-cert", chain,
                                      "--client-key", key, password=None)
            self.assertEqual(rc, EX_OK, err)
            rc2, doc2, err2 = self.relay(pf.port, password=None)
            self.assertEqual(rc2, EX_OK, err2)
            pf.messages(2)
            tls_lines = [line for line in pf.log().splitlines()
                         if "TLS connection established from" in line]
        self.assertTrue(doc["attempts"][0]["tls"]["client_certificate"])
        self.assertFalse(doc2["attempts"][0]["tls"]["client_certificate"])
        self.assertEqual(len(tls_lines), 2, tls_lines)
        self.assertIn("client-signature", tls_lines[0])
        self.assertNotIn("client-signature", tls_lines[1])

    def test_bdat_stores_the_message_byte_exact(self):
        data = tricky_megabyte()
        with self.postfix() as pf:
            rc, doc, err = self.relay(pf.port, data=data,
                                      to=("a@test.example",
                                          "c@test.example"))
            self.assertEqual(rc, EX_OK, err)
            stored = pf.messages(2)
            sessions = pf.sessions()
        want = canonical(data).replace(b"\r\n", b"\n")
        for _, content in stored:
            self.assertEqual(content, want)
        self.assertIn("C: BDAT ", err)
        self.assertRegex(err, r"C: BDAT \d+ LAST\n")
        self.assertNotIn("C: DATA", err)
        self.assertGreater(sessions[-1]["bdat"], 16)
        self.assertNotIn("data", sessions[-1])
        for size in (int(n) for n in re.findall(r"C: BDAT (\d+)", err)):
            self.assertLessEqual(size, 65536)

    def test_no_chunking_uses_data(self):
        with self.postfix() as pf:
            rc, doc, err = self.relay(pf.port, "--no-chunking",
                                      password=None)
            self.assertEqual(rc, EX_OK, err)
            (_, content), = pf.messages(1)
        self.assertIn("C: DATA", err)
        self.assertNotIn("C: BDAT", err)
        self.assertEqual(content, MSG)

    def test_dsn_parameters_reach_the_queue_file(self):
        with self.postfix(rejects=[("held@test.example", "HOLD")]) as pf:
            rc, doc, err = self.relay(
                pf.port, "--notify", "SUCCESS,DELAY", "--ret", "HDRS",
                "--envid", "env id+1", password=None,
                to=("held@test.example",))
            self.assertEqual(rc, EX_OK, err)
            (queued,) = pf.postcat("hold")
        self.assertIn("C: MAIL FROM:<s@test.example> SIZE=", err)
        self.assertIn("RET=HDRS ENVID=env+20id+2B1", err)
        self.assertIn("named_attribute: envelope_id=env id+1", queued)
        # Postfix's flags: HDRS is 2; SUCCESS (2) + DELAY (8).
        self.assertIn("named_attribute: ret_flags=2", queued)
        self.assertIn("named_attribute: notify_flags=10", queued)
        (r,) = doc["recipients"]
        self.assertEqual(r["dsn"], {"notify": "SUCCESS,DELAY", "sent": True,
                                    "action": "none"})

    def test_orcpt_reaches_the_queue_file(self):
        with self.postfix(rejects=[("held@test.example", "HOLD")]) as pf:
            rc, doc, err = self.relay(
                pf.port, "--orcpt", "rfc822;Orig+Name@test.example",
                "--to", "held@test.example", password=None, to=())
            self.assertEqual(rc, EX_OK, err)
            (queued,) = pf.postcat("hold")
        self.assertIn("ORCPT=rfc822;Orig+2BName@test.example", err)
        self.assertIn("dsn_orig_rcpt=rfc822;Orig+Name@test.example", queued)

    @staticmethod
    def scram_built():
        sasl_pipe = os.path.join(os.environ.get("SMTPOUT_BUILD", "build"),
                                 "tests", "sasl-pipe")
        p = subprocess.run([sasl_pipe, "SCRAM-SHA-256", USER],
                           input="x\n", capture_output=True, text=True,
                           timeout=30)
        return p.returncode != 64


if __name__ == "__main__":
    main()
