#!/usr/bin/python3
"""The MTA-STS policy server of the test lab (tests/servers/sts-https.py),
checked with curl: the client everybody knows, pointed at the server with
--connect-to as the library's fetcher will be.

Each host answers as configured (policy, status, Content-Type, size,
chunked, redirect, certificate), and every fetch is logged, so later
tests can assert that a policy was, or was not, fetched again.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stslab  # noqa: E402
import testlib  # noqa: E402

POLICY = "version: STSv1\nmode: enforce\nmx: mail.good.test\nmax_age: 86400\n"
HOSTS = ["mta-sts.good.test", "mta-sts.html.test", "mta-sts.gone.test",
         "mta-sts.moved.test", "mta-sts.big.test", "mta-sts.chunked.test",
         "mta-sts.wrong.test", "mta-sts.untrusted.test"]


class StsHttpsTest(testlib.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls.pkidir = tempfile.mkdtemp(prefix="smtpout-sts-pki-")
        cls.pki = stslab.sts_pki(cls.pkidir, HOSTS)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.pkidir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        self.server = stslab.StsHttps(self.tmp, {
            "mta-sts.good.test": {"policy": POLICY},
            "mta-sts.html.test": {"policy": POLICY,
                                  "content_type": "text/html"},
            "mta-sts.gone.test": {"policy": POLICY, "status": 404},
            "mta-sts.moved.test": {
                "status": 301,
                "location": "https://mta-sts.good.test/.well-known/"
                            "mta-sts.txt"},
            "mta-sts.big.test": {"policy": POLICY, "size": 70000},
            "mta-sts.chunked.test": {"policy": POLICY, "size": 70000,
                                     "chunked": True},
            "mta-sts.wrong.test": {"policy": POLICY,
                                   "cert": self.pki["wrongname"][0],
                                   "key": self.pki["wrongname"][1]},
            "mta-sts.untrusted.test": {"policy": POLICY,
                                       "cert": self.pki["sts-untrusted"][0],
                                       "key": self.pki["sts-untrusted"][1]},
        }, self.pki["sts"])

    def tearDown(self):
        self.server.stop()
        super().tearDown()

    def curl(self, host, *extra):
        """(exit status, headers, body) of curl fetching HOST's policy
        from the server, never from DNS."""
        hdrs = os.path.join(self.tmp, "headers")
        r = subprocess.run(
            ["curl", "--silent", "--show-error", "--cacert", self.pki["ca"],
             "--proto", "=https", "--max-redirs", "0", "--noproxy", "*",
             "--connect-to", "%s:443:127.0.0.1:%d" % (host, self.server.port),
             "--dump-header", hdrs, "--output", "-"] + list(extra) +
            ["https://%s/.well-known/mta-sts.txt" % host],
            capture_output=True, timeout=60)
        headers = ""
        if os.path.exists(hdrs):
            with open(hdrs) as f:
                headers = f.read().lower()
            os.unlink(hdrs)
        return r.returncode, headers, r.stdout

    def test_serves_the_policy_of_each_host_and_logs_every_fetch(self):
        rc, headers, body = self.curl("mta-sts.good.test")
        self.assertEqual(rc, 0)
        self.assertIn("http/1.1 200", headers)
        self.assertIn("content-type: text/plain", headers)
        self.assertEqual(body, POLICY.encode())
        self.assertEqual(self.curl("mta-sts.good.test")[0], 0)
        self.assertEqual(self.server.fetches(), [
            {"host": "mta-sts.good.test", "sni": "mta-sts.good.test",
             "path": "/.well-known/mta-sts.txt", "status": 200}] * 2)

    def test_status_content_type_and_redirect_as_configured(self):
        rc, headers, _ = self.curl("mta-sts.html.test")
        self.assertEqual(rc, 0)
        self.assertIn("content-type: text/html", headers)
        rc, headers, body = self.curl("mta-sts.gone.test")
        self.assertIn("http/1.1 404", headers)
        self.assertEqual(body, POLICY.encode())
        rc, headers, _ = self.curl("mta-sts.moved.test")
        self.assertIn("http/1.1 301", headers)
        self.assertIn("location: https://mta-sts.good.test/", headers)
        self.assertEqual(len(self.server.fetches("mta-sts.good.test")), 0)

    def test_sizes_static_and_chunked(self):
        rc, headers, body = self.curl("mta-sts.big.test")
        self.assertIn("content-length: 70000", headers)
        self.assertEqual(len(body), 70000)
        self.assertTrue(body.startswith(POLICY.encode()))
        rc, headers, body = self.curl("mta-sts.chunked.test")
        self.assertEqual(rc, 0)
        self.assertIn("transfer-encoding: chunked", headers)
        self.assertNotIn("content-length", headers)
        self.assertEqual(len(body), 70000)

    def test_certificate_chosen_by_server_name(self):
        # 60: the peer certificate cannot be authenticated.
        self.assertEqual(self.curl("mta-sts.wrong.test")[0], 60)
        self.assertEqual(self.curl("mta-sts.untrusted.test")[0], 60)
        self.assertEqual(self.curl("mta-sts.good.test")[0], 0)
        # Refused during the handshake: never got to ask.
        self.assertEqual([f["host"] for f in self.server.fetches()],
                         ["mta-sts.good.test"])

    def test_answers_change_with_the_hosts_file(self):
        self.assertEqual(self.curl("mta-sts.good.test")[2], POLICY.encode())
        new = POLICY.replace("enforce", "testing")
        self.server.set_hosts({"mta-sts.good.test": {"policy": new}})
        self.assertEqual(self.curl("mta-sts.good.test")[2], new.encode())
        rc, headers, _ = self.curl("mta-sts.html.test")
        self.assertIn("http/1.1 404", headers)  # no longer configured
        self.assertEqual([f["status"] for f in self.server.fetches()],
                         [200, 200, 404])


if __name__ == "__main__":
    testlib.main()
