"""The AUTH servers the smarthost tests will run against (issue 15), and
smtpout's AUTH client (lib/sasl.c, through tests/sasl-pipe) against them.

aiosmtpd with an authenticator (tests/servers/aiosmtpd-sink.py) offers
PLAIN and LOGIN after STARTTLS or under implicit TLS; Postfix's smtpd with
Dovecot SASL (tests/servers/dovecot.py) offers PLAIN, LOGIN and
SCRAM-SHA-256 after STARTTLS.  Each must accept the right password (235)
and refuse a wrong one (535), for clients nobody here wrote (Python's
smtplib, swaks, and a SCRAM-SHA-256 client written below from RFC 5802
that checks the server's signature) and for smtpout's own.  A Dovecot
whose stored keys have 200000 iterations is a real server announcing a
count over smtpout's cap: the client refuses it before deriving a key.
The session does not use the AUTH client yet (docs/relay.md).
"""
import base64
import hashlib
import hmac
import json
import os
import shutil
import smtplib
import ssl
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "servers"))
import dovecot  # noqa: E402
import postfix  # noqa: E402
from testlib import (BUILD, PYTHON, SOURCE, ServerProcess,  # noqa: E402
                     TempDirTest, cert, certs, main)

SASL_PIPE = os.path.join(BUILD, "tests", "sasl-pipe")
USER, PASSWORD, WRONG = "alice", "wonder land", "wonderland"


def tls_context():
    return ssl.create_default_context(
        cafile=os.path.join(certs(), "ca.pem"))


class ScramSha256:
    """An RFC 5802 / RFC 7677 SCRAM-SHA-256 client as smtplib's
    authobject.  `verified` is True once the server signature checked;
    `iterations` is the count the server announced."""

    def __init__(self, user, password):
        self.user, self.password = user, password
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.verified = False
        self.iterations = None
        self.step = 0

    def __call__(self, challenge=None):
        self.step += 1
        if self.step == 1:
            self.first_bare = "n=%s,r=%s" % (self.user, self.nonce)
            return "n,," + self.first_bare
        if self.step == 2:
            server_first = challenge.decode()
            attrs = dict(a.split("=", 1) for a in server_first.split(","))
            assert attrs["r"].startswith(self.nonce), server_first
            self.iterations = int(attrs["i"])
            salted = hashlib.pbkdf2_hmac(
                "sha256", self.password.encode(),
                base64.b64decode(attrs["s"]), self.iterations)
            final_wo_proof = "c=biws,r=" + attrs["r"]
            auth_message = ",".join((self.first_bare, server_first,
                                     final_wo_proof)).encode()
            client_key = hmac.new(salted, b"Client Key",
                                  hashlib.sha256).digest()
            stored_key = hashlib.sha256(client_key).digest()
            signature = hmac.new(stored_key, auth_message,
                                 hashlib.sha256).digest()
            proof = bytes(a ^ b for a, b in zip(client_key, signature))
            server_key = hmac.new(salted, b"Server Key",
                                  hashlib.sha256).digest()
            self.server_signature = hmac.new(server_key, auth_message,
                                             hashlib.sha256).digest()
            return "%s,p=%s" % (final_wo_proof,
                                base64.b64encode(proof).decode())
        # server-final: v=signature, or e=error
        server_final = challenge.decode()
        if server_final.startswith("v="):
            self.verified = (base64.b64decode(server_final[2:]) ==
                             self.server_signature)
        return ""


def smtpout_auth(smtp, mechanism, user, password, iter_max=None):
    """Runs smtpout's AUTH client over `smtp`'s connection.  Returns
    (the DONE line, the TRACE lines, the ERROR lines).  The client must
    exit 0 after "DONE ok", 1 after any other, and print nothing on
    stderr (in a sanitizer build, a report would land there)."""
    argv = [SASL_PIPE, mechanism, user]
    if iter_max:
        argv.append(str(iter_max))
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    p.stdin.write(password + "\n")
    p.stdin.flush()
    done, traces, errors = None, [], []
    try:
        for out in p.stdout:
            kind, _, rest = out.rstrip("\n").partition(" ")
            if kind == "SEND":
                smtp.send(rest + "\r\n")
                code, msg = smtp.getreply()
                p.stdin.write("%d %s\n" % (
                    code, msg.decode(errors="replace").replace("\n", " ")))
                p.stdin.flush()
            elif kind == "TRACE":
                traces.append(rest)
            elif kind == "ERROR":
                errors.append(rest)
            elif kind == "DONE":
                done = rest
    finally:
        p.stdin.close()
        p.wait(30)
    stderr = p.stderr.read()
    p.stdout.close()
    p.stderr.close()
    if stderr or p.returncode != (0 if done == "ok" else 1):
        raise AssertionError("sasl-pipe exited %d after %r: %s" % (
            p.returncode, done, stderr))
    return done, traces, errors


class AuthChecks:
    """What every AUTH server must do, whoever the client."""

    def auth_code(self, smtp, mechanism, password):
        """smtplib's AUTH with `mechanism`: the final reply code."""
        smtp.user, smtp.password = USER, password
        method = {"PLAIN": smtp.auth_plain, "LOGIN": smtp.auth_login}
        if mechanism == "SCRAM-SHA-256":
            method[mechanism] = ScramSha256(USER, password)
        try:
            code, _ = smtp.auth(mechanism, method[mechanism])
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        return code, method[mechanism]

    def check_right_and_wrong(self, connect, mechanism):
        with connect() as smtp:
            code, _ = self.auth_code(smtp, mechanism, WRONG)
            self.assertEqual(code, 535)
        with connect() as smtp:
            code, obj = self.auth_code(smtp, mechanism, PASSWORD)
            self.assertEqual(code, 235)
            if mechanism == "SCRAM-SHA-256":
                self.assertTrue(obj.verified, "server signature")

    def check_smtpout_client(self, connect, mechanism):
        with connect() as smtp:
            done, traces, errors = smtpout_auth(smtp, mechanism, USER,
                                                PASSWORD)
            self.assertEqual(done, "ok", errors)
            self.assertEqual(errors, [])
            self.assertTrue(traces[0].startswith("AUTH " + mechanism))
            for t in traces[1:]:
                self.assertIn(t, ("****", ""))
        with connect() as smtp:
            done, traces, errors = smtpout_auth(smtp, mechanism, USER, WRONG)
            self.assertTrue(done.startswith("refused 535"), done)
        for t in traces:
            self.assertNotIn(WRONG, t)
            self.assertNotIn(base64.b64encode(WRONG.encode()).decode(), t)


class AiosmtpdAuthTest(TempDirTest, AuthChecks):
    def sink(self, *extra):
        users = self.write("users", "%s:%s\n# comment\nbob:builder\n" % (
            USER, PASSWORD), "w")
        chain, key = cert("valid")
        self.spooldir = self.spool()
        return ServerProcess([PYTHON, os.path.join(
            SOURCE, "tests", "servers", "aiosmtpd-sink.py"),
            "--spool", self.spooldir, "--tls-cert", chain, "--tls-key", key,
            "--auth-users", users] + list(extra))

    def starttls(self, port):
        def connect():
            smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
            smtp.ehlo("client.test.example")
            smtp.starttls(context=tls_context())
            smtp.ehlo("client.test.example")
            return smtp
        return connect

    def auth_log(self):
        with open(os.path.join(self.spooldir, "auth.log")) as f:
            return [json.loads(line) for line in f]

    def test_auth_is_offered_and_accepted_only_after_starttls(self):
        with self.sink() as srv:
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as smtp:
                smtp.ehlo("client.test.example")
                self.assertFalse(smtp.has_extn("auth"))
                code, msg = smtp.docmd("AUTH", "PLAIN AGFsaWNlAHg=")
                self.assertEqual(code, 538, msg)
            with self.starttls(srv.port)() as smtp:
                self.assertEqual(smtp.esmtp_features["auth"].split(),
                                 ["LOGIN", "PLAIN"])

    def test_plain_and_login_accept_the_password_and_refuse_a_wrong_one(self):
        with self.sink() as srv:
            for mechanism in ("PLAIN", "LOGIN"):
                with self.subTest(mechanism):
                    self.check_right_and_wrong(self.starttls(srv.port),
                                               mechanism)
        log = self.auth_log()
        self.assertEqual([(e["mechanism"], e["user"], e["success"], e["tls"])
                          for e in log],
                         [("PLAIN", USER, False, True),
                          ("PLAIN", USER, True, True),
                          ("LOGIN", USER, False, True),
                          ("LOGIN", USER, True, True)])
        with open(os.path.join(self.spooldir, "auth.log")) as f:
            self.assertNotIn(PASSWORD, f.read())

    def test_smtpout_client_plain_and_login(self):
        with self.sink() as srv:
            for mechanism in ("PLAIN", "LOGIN"):
                with self.subTest(mechanism):
                    self.check_smtpout_client(self.starttls(srv.port),
                                              mechanism)
        self.assertEqual([e["success"] for e in self.auth_log()],
                         [True, False, True, False])

    def test_implicit_tls(self):
        with self.sink("--implicit-tls") as srv:
            def connect():
                smtp = smtplib.SMTP_SSL("127.0.0.1", srv.port, timeout=30,
                                        context=tls_context())
                smtp.ehlo("client.test.example")
                self.assertFalse(smtp.has_extn("starttls"))
                return smtp
            self.check_right_and_wrong(connect, "PLAIN")
            self.check_smtpout_client(connect, "LOGIN")
        self.assertTrue(all(e["tls"] for e in self.auth_log()))

    def test_auth_required_records_the_user_with_the_message(self):
        with self.sink("--auth-required") as srv:
            with self.starttls(srv.port)() as smtp:
                code, _ = smtp.docmd("MAIL", "FROM:<a@test.example>")
                self.assertEqual(code, 530)
                self.assertEqual(self.auth_code(smtp, "PLAIN", PASSWORD)[0],
                                 235)
                smtp.sendmail("a@test.example", ["b@test.example"],
                              b"Subject: t\r\n\r\nbody\r\n")
        with open(os.path.join(self.spooldir, "1.json")) as f:
            meta = json.load(f)
        self.assertEqual(meta["auth_user"], USER)
        self.assertTrue(meta["tls"])

    def test_cleartext_server_offers_auth_without_tls(self):
        # A wrongly configured server, for the tests that smtpout never
        # sends credentials in clear: it offers and takes AUTH in clear.
        with self.sink("--auth-cleartext") as srv:
            with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as smtp:
                smtp.ehlo("client.test.example")
                self.assertTrue(smtp.has_extn("auth"))
                self.assertTrue(smtp.has_extn("starttls"))
                self.assertEqual(self.auth_code(smtp, "PLAIN", PASSWORD)[0],
                                 235)
        self.assertEqual(self.auth_log()[0]["tls"], False)

    @unittest.skipUnless(shutil.which("swaks"), "needs swaks")
    def test_swaks_authenticates(self):
        with self.sink() as srv:
            base = ["swaks", "--server", "127.0.0.1:%d" % srv.port, "--tls",
                    "--tls-ca-path", os.path.join(certs(), "ca.pem"),
                    "--auth", "LOGIN", "--auth-user", USER,
                    "--quit-after", "AUTH"]
            ok = subprocess.run(base + ["--auth-password", PASSWORD],
                                capture_output=True, text=True, timeout=60)
            self.assertEqual(ok.returncode, 0, ok.stdout + ok.stderr)
            self.assertIn("235 ", ok.stdout)
            bad = subprocess.run(base + ["--auth-password", WRONG],
                                 capture_output=True, text=True, timeout=60)
            self.assertNotEqual(bad.returncode, 0)
            self.assertIn("535 ", bad.stdout)


@unittest.skipUnless(postfix.available() and dovecot.available(),
                     "needs root, Postfix and Dovecot (dovecot-core)")
class PostfixDovecotAuthTest(unittest.TestCase, AuthChecks):
    """One Postfix with Dovecot SASL for the class (starting them takes
    about a second)."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpout-auth-")
        os.chmod(cls.tmp, 0o755)
        cls.dovecot = dovecot.Dovecot(os.path.join(cls.tmp, "dovecot"),
                                      {USER: PASSWORD}).start()
        try:
            cls.postfix = postfix.Postfix(
                os.path.join(cls.tmp, "postfix"), tls=cert("valid"),
                main_cf=cls.dovecot.postfix_main_cf()).start()
        except Exception:
            cls.dovecot.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.postfix.stop()
        cls.dovecot.stop()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def connect(self, port=None):
        smtp = smtplib.SMTP("127.0.0.1", port or self.postfix.port,
                            timeout=30)
        smtp.ehlo("client.test.example")
        smtp.starttls(context=tls_context())
        smtp.ehlo("client.test.example")
        return smtp

    def test_auth_is_offered_only_after_starttls(self):
        with smtplib.SMTP("127.0.0.1", self.postfix.port, timeout=30) as smtp:
            smtp.ehlo("client.test.example")
            self.assertFalse(smtp.has_extn("auth"))
        with self.connect() as smtp:
            self.assertEqual(sorted(smtp.esmtp_features["auth"].split()),
                             ["LOGIN", "PLAIN", "SCRAM-SHA-256"])

    def test_each_mechanism_accepts_the_password_and_refuses_a_wrong_one(
            self):
        for mechanism in ("PLAIN", "LOGIN", "SCRAM-SHA-256"):
            with self.subTest(mechanism):
                self.check_right_and_wrong(self.connect, mechanism)

    def test_smtpout_client_each_mechanism(self):
        for mechanism in ("SCRAM-SHA-256", "PLAIN", "LOGIN"):
            with self.subTest(mechanism):
                if mechanism == "SCRAM-SHA-256" and not self.scram_built():
                    self.skipTest("smtpout built without GNU SASL")
                self.check_smtpout_client(self.connect, mechanism)

    def test_postfix_logs_the_mechanism_and_user(self):
        # smtpd names them in the line of the queued message.
        with self.connect() as smtp:
            self.assertEqual(self.auth_code(smtp, "SCRAM-SHA-256",
                                            PASSWORD)[0], 235)
            smtp.sendmail("a@test.example", ["b@test.example"],
                          b"Subject: t\r\n\r\nbody\r\n")
        self.postfix.messages(1)
        self.assertRegex(self.postfix.log(),
                         r"client=\S+, sasl_method=SCRAM-SHA-256, "
                         r"sasl_username=alice")
        self.assertNotIn(PASSWORD, self.postfix.log())
        self.assertNotIn(PASSWORD, self.dovecot.log())

    @staticmethod
    def scram_built():
        p = subprocess.run([SASL_PIPE, "SCRAM-SHA-256", USER],
                           input="x\n", capture_output=True, text=True,
                           timeout=30)
        return p.returncode != 64

    def test_huge_iteration_count_is_refused_by_smtpout_client(self):
        if not self.scram_built():
            self.skipTest("smtpout built without GNU SASL")
        tmp = tempfile.mkdtemp(prefix="smtpout-auth-", dir=self.tmp)
        os.chmod(tmp, 0o755)
        with dovecot.Dovecot(os.path.join(tmp, "dovecot"), {USER: PASSWORD},
                             scram_iterations=200000) as dv, \
                postfix.Postfix(os.path.join(tmp, "postfix"),
                                tls=cert("valid"),
                                main_cf=dv.postfix_main_cf()) as pf:
            # The server really announces 200000 (and a client that
            # accepts it authenticates).
            with self.connect(pf.port) as smtp:
                code, scram = self.auth_code(smtp, "SCRAM-SHA-256",
                                             PASSWORD)
                self.assertEqual((code, scram.iterations), (235, 200000))
            # smtpout's client cancels before deriving a key; Postfix
            # answers the "*" with 501.
            with self.connect(pf.port) as smtp:
                done, traces, errors = smtpout_auth(smtp, "SCRAM-SHA-256",
                                                    USER, PASSWORD)
            self.assertEqual(len(errors), 1)
            self.assertIn("200000 is over the limit of 100000", errors[0])
            self.assertEqual(traces[-1], "*")
            self.assertTrue(done.startswith("refused 501"), done)


if __name__ == "__main__":
    main()
