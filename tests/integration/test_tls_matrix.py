"""The TLS policy contract (docs/policy.md), cell by
cell, with real GnuTLS handshakes against tests/faultsrv:

  {valid, expired, wrong name, untrusted CA, self-signed, no STARTTLS,
   STARTTLS refused, handshake failure}
  x {disable, optional, require} x {allow-invalid-certs true, false}

Each cell is checked from both sides: what smtpout-send reports (status,
TLS used, verified, TLS-RPT result, plaintext fallback) and what the
server saw (did the message arrive, over TLS, and was any command sent in
clear where the policy forbids it).  The policy comes from a config file
written as the seed writes it."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (EX_OK, EX_TEMPFAIL, FaultServer, TempDirTest,  # noqa
                     cert, certs, main, send)

CERT_KINDS = {
    # kind: TLS-RPT result when the certificate is judged invalid
    "valid": None,
    "expired": "certificate-expired",
    "wrongname": "certificate-host-mismatch",
    "untrusted": "certificate-not-trusted",
    "selfsigned": "certificate-not-trusted",
}
SERVER_KINDS = list(CERT_KINDS) + ["no-starttls", "refused", "handshake"]
MODES = ["disable", "optional", "require"]


def seed_config(mode, allow):
    return ('[queue.outbound.tls]\nstarttls = "%s"\n'
            "allow-invalid-certs = %s\n" % (mode, "true" if allow else "false"))


def server_args(kind):
    if kind in CERT_KINDS:
        return cert(kind), []
    if kind == "no-starttls":
        return cert("valid"), ["--no-starttls"]
    if kind == "refused":
        return cert("valid"), ["--starttls-reply", "454 4.7.0 TLS not available"]
    return cert("valid"), ["--handshake", "alert"]


def expected(kind, mode, allow):
    """What docs/policy.md says, as the fields the test checks."""
    plain = {"status": "delivered", "used": False, "verified": False,
             "arrived": True, "arrived_tls": False, "fallback": False}
    if mode == "disable":
        return dict(plain, outcome="disabled", tlsrpt=None)
    if kind == "no-starttls" or kind == "refused":
        outcome = "not-offered" if kind == "no-starttls" else "refused"
        if mode == "optional":
            return dict(plain, outcome=outcome,
                        tlsrpt="starttls-not-supported")
        return {"status": "deferred", "enhanced": "4.7.4", "used": False,
                "verified": False, "arrived": False, "outcome": outcome,
                "tlsrpt": "starttls-not-supported", "fallback": False}
    if kind == "handshake":
        if mode == "optional":
            # Deferred on the first connection, delivered in clear on a
            # second one: the plaintext fallback.
            return dict(plain, outcome="handshake-failed",
                        tlsrpt="validation-failure", fallback=True)
        return {"status": "deferred", "enhanced": "4.7.5", "used": False,
                "verified": False, "arrived": False,
                "outcome": "handshake-failed", "tlsrpt": "validation-failure",
                "fallback": False}
    bad = CERT_KINDS[kind]
    if bad is None or allow:
        return {"status": "delivered", "used": True, "verified": bad is None,
                "arrived": True, "arrived_tls": True, "outcome": "ok",
                "tlsrpt": bad, "fallback": False}
    return {"status": "deferred", "enhanced": "4.7.5", "used": True,
            "verified": False, "arrived": False, "outcome": "ok",
            "tlsrpt": bad, "fallback": False}


class TlsMatrixTest(TempDirTest):
    def run_cell(self, kind, mode, allow):
        cell = "%s/%s/allow=%s" % (kind, mode, allow)
        work = self.path(cell.replace("/", "_"), "x")
        work = os.path.dirname(work)
        tls, extra = server_args(kind)
        cfg = os.path.join(work, "policy.ini")
        with open(cfg, "w") as f:
            f.write(seed_config(mode, allow))
        body = os.path.join(work, "msg")
        with open(body, "wb") as f:
            f.write(b"Subject: %s\r\n\r\nbody\r\n" % cell.encode())
        srv = FaultServer(work, extra, tls=tls)
        try:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--mx-name", "mx.test.example",
                                 "--config", cfg,
                                 "--ca-file", os.path.join(certs(), "ca.pem"),
                                 "--from", "s@client.example",
                                 "--to", "r@test.example", "--data", body])
        finally:
            log = srv.finish()
        want = expected(kind, mode, allow)
        msg = "%s: %s\n%s\nserver log:\n%s" % (cell, doc, err, log)
        r = doc["recipients"][0]
        first = doc["attempts"][0]
        last = doc["attempts"][-1]

        # The client's side.
        self.assertEqual(r["status"], want["status"], msg)
        self.assertEqual(rc, EX_OK if want["status"] == "delivered"
                         else EX_TEMPFAIL, msg)
        if "enhanced" in want:
            self.assertEqual(r["enhanced"], want["enhanced"], msg)
        self.assertEqual(first["starttls"], want["outcome"], msg)
        self.assertEqual(first["tls"]["used"], want["used"], msg)
        self.assertEqual(first["tls"]["verified"], want["verified"], msg)
        self.assertEqual(first["tls"]["tlsrpt_result"], want["tlsrpt"], msg)
        if want["used"] and not want["verified"]:
            self.assertTrue(first["tls"]["verify_error"], msg)
        else:
            # Only a certificate that was judged and failed has one.
            self.assertIsNone(first["tls"]["verify_error"], msg)
        if want["used"]:
            self.assertIn(first["tls"]["version"], ("TLS1.2", "TLS1.3"), msg)
        self.assertEqual(len(doc["attempts"]), 2 if want["fallback"] else 1,
                         msg)
        self.assertEqual(last["plaintext_fallback"], want["fallback"], msg)
        self.assertFalse(first["plaintext_fallback"], msg)

        # The server's side.
        arrived = srv.messages()
        self.assertEqual(len(arrived), 1 if want["arrived"] else 0, msg)
        if want["arrived"]:
            self.assertEqual(arrived[0][0]["tls"], want["arrived_tls"], msg)
            if want["arrived_tls"]:
                self.assertEqual(arrived[0][0]["sni"], "mx.test.example", msg)
        # Never a command in clear where the policy forbids it, and never
        # a transaction at all when the certificate was refused.
        if mode == "require":
            self.assertNotRegex(log, r"C> \[plain\] (MAIL|RCPT|DATA)", msg)
        if not want["arrived"]:
            self.assertNotRegex(log, r"C> \[\w+\] MAIL", msg)
        if mode == "disable":
            self.assertNotIn("STARTTLS", re.sub(r"S> .*", "", log), msg)
        self.assertNotIn("! violation", log, msg)


def _make(kind, mode, allow):
    def test(self):
        self.run_cell(kind, mode, allow)
    test.__name__ = "test_%s_%s_allow_%s" % (kind.replace("-", "_"), mode,
                                             str(allow).lower())
    return test


for _kind in SERVER_KINDS:
    for _mode in MODES:
        for _allow in (False, True):
            _t = _make(_kind, _mode, _allow)
            setattr(TlsMatrixTest, _t.__name__, _t)


if __name__ == "__main__":
    main()
