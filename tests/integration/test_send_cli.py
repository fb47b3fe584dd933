"""smtpout-send as an operator's tool (docs/tools.md): --starttls and
--allow-invalid-certs without a configuration, --timeout and the 30 s
default, --version, no message from a terminal, the human output and its
colours, --ca-file checked up front, and --probe."""
import datetime
import hashlib
import json
import os
import pty
import re
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (BUILD, EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE,  # noqa
                     EX_USAGE, TempDirTest, aiosmtpd, cert, certs, main,
                     run_send, send, spool_messages)

EX_NOINPUT = 66
POLICY = os.path.join(BUILD, "examples", "tools", "smtpout-policy")
BASE = ["--from", "s@test.example", "--to", "a@test.example"]
PHASES = ["connect", "greeting", "tls", "ehlo", "mail-from", "rcpt-to",
          "data"]


def free_port():
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def text(run):
    return run.stdout.decode("utf-8", "strict")


def timeouts_line(stderr):
    """{phase: (duration, source)} from --verbose's "-- timeouts:" line."""
    m = re.search(r"^-- timeouts: (.*)$", stderr, re.M)
    assert m, stderr
    out = {}
    for part in m.group(1).split(", "):
        pm = re.fullmatch(r"(\S+) (\S+) \((.*)\)", part)
        assert pm, part
        out[pm.group(1)] = (pm.group(2), pm.group(3))
    return out


def run_on_pty(args, stdin_tty=False, stdout_tty=False, env=None, data=None):
    """Runs smtpout-send with standard input and/or output on a
    pseudo-terminal; returns (Run, what it wrote to the terminal)."""
    master, slave = pty.openpty()
    try:
        run = run_send(args, data=data, timeout=60, env=env,
                       stdin=slave if stdin_tty else None,
                       stdout=slave if stdout_tty else None)
    finally:
        os.close(slave)
    seen = b""
    while stdout_tty:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer is gone
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    return run, seen.decode("utf-8", "replace")


class OptionsTest(TempDirTest):
    def test_version_prints_the_library_version(self):
        run = run_send(["--version"])
        self.assertEqual(run.rc, EX_OK)
        self.assertRegex(text(run), r"^smtpout-send \d+\.\d+\.\d+\n$")

    def test_help_lists_every_option(self):
        run = run_send(["--help"])
        self.assertEqual(run.rc, EX_OK)
        for opt in ("--server", "--mx-name", "--from", "--to", "--data",
                    "--probe", "--config", "--starttls",
                    "--allow-invalid-certs", "--ca-file", "--timeout",
                    "--helo", "--smtputf8", "--json", "--verbose",
                    "--version", "--help"):
            self.assertIn(opt, text(run))

    def test_no_data_from_a_terminal_is_a_usage_error_at_once(self):
        # Nothing is ever typed: the tool must not wait for it.
        run, _ = run_on_pty(["--server", "127.0.0.1:%d" % free_port()] +
                            BASE, stdin_tty=True)
        self.assertEqual(run.rc, EX_USAGE)
        err = run.stderr.decode()
        self.assertIn("no message", err)
        self.assertIn("--data", err)

    def test_no_data_from_a_pipe_reads_it(self):
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port] +
                                BASE, data=b"Subject: piped\n\nhi\n")
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(spool_messages(spool)[0][1],
                         b"Subject: piped\r\n\r\nhi\r\n")

    def test_bad_starttls_value_is_a_usage_error(self):
        rc, doc, err = send(["--server", "127.0.0.1:1", "--starttls",
                             "requir", "--data", "/dev/null"] + BASE)
        self.assertEqual(rc, EX_USAGE)
        self.assertIn("optional, require, disable", err)

    def test_missing_ca_file_is_named_before_connecting(self):
        missing = self.path("no", "such-ca.pem")
        rc, doc, err = send(["--server", "127.0.0.1:%d" % free_port(),
                             "--ca-file", missing, "--data", "/dev/null"] +
                            BASE)
        self.assertEqual(rc, EX_NOINPUT)
        self.assertIsNone(doc)
        self.assertIn(missing, err)
        self.assertIn("No such file or directory", err)

    def test_a_directory_as_ca_file_is_refused(self):
        rc, doc, err = send(["--server", "127.0.0.1:1", "--ca-file",
                             self.tmp, "--data", "/dev/null"] + BASE)
        self.assertEqual(rc, EX_NOINPUT)
        self.assertIn("not a regular file", err)


class PolicyOptionsTest(TempDirTest):
    def test_starttls_require_without_a_config_defers_a_plain_server(self):
        spool = self.spool()
        with aiosmtpd(spool) as srv:  # no STARTTLS offered
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--starttls", "require",
                                 "--data", "/dev/null"] + BASE)
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertEqual(doc["policy"]["starttls"], "require")
        self.assertEqual(doc["policy"]["source"]["starttls"], "--starttls")
        self.assertEqual(doc["policy"]["source"]["allow_invalid_certs"],
                         "default")
        self.assertEqual(doc["recipients"][0]["enhanced"], "4.7.4")
        self.assertEqual(spool_messages(spool), [])

    def test_starttls_disable_sends_in_clear_to_a_tls_server(self):
        spool = self.spool()
        with aiosmtpd(spool, tls=cert("valid")) as srv:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--starttls", "disable",
                                 "--data", "/dev/null"] + BASE)
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(doc["attempts"][0]["starttls"], "disabled")
        self.assertFalse(spool_messages(spool)[0][0]["tls"])

    def test_allow_invalid_certs_delivers_over_unverified_tls(self):
        spool = self.spool()
        with aiosmtpd(spool, tls=cert("expired")) as srv:
            args = ["--server", "127.0.0.1:%d" % srv.port,
                    "--mx-name", "mx.test.example",
                    "--ca-file", os.path.join(certs(), "ca.pem"),
                    "--starttls", "require", "--data", "/dev/null"] + BASE
            rc, doc, err = send(args)
            self.assertEqual(rc, EX_TEMPFAIL, err)
            rc, doc, err = send(args + ["--allow-invalid-certs"])
        self.assertEqual(rc, EX_OK, err)
        tls = doc["attempts"][0]["tls"]
        self.assertTrue(tls["used"])
        self.assertFalse(tls["verified"])
        self.assertIn("expired", tls["verify_error"])
        self.assertEqual(doc["policy"]["source"],
                         {"starttls": "--starttls",
                          "allow_invalid_certs": "--allow-invalid-certs"})
        self.assertEqual(len(spool_messages(spool)), 1)

    def test_starttls_option_leaves_the_other_knob_to_the_config(self):
        cfg = self.write("p.ini", "[queue.outbound.tls]\n"
                                  "allow-invalid-certs = true\n", mode="w")
        spool = self.spool()
        with aiosmtpd(spool, tls=cert("expired")) as srv:
            rc, doc, err = send(["--server", "127.0.0.1:%d" % srv.port,
                                 "--mx-name", "mx.test.example",
                                 "--config", cfg, "--starttls", "require",
                                 "--data", "/dev/null"] + BASE)
        self.assertEqual(rc, EX_OK, err)
        self.assertEqual(doc["policy"], {
            "starttls": "require", "allow_invalid_certs": True,
            "source": {"starttls": "--starttls",
                       "allow_invalid_certs": cfg + ":2"}})


class TimeoutTest(TempDirTest):
    def verbose_timeouts(self, *args):
        rc, doc, err = send(["--server", "127.0.0.1:%d" % free_port(),
                             "--verbose", "--data", "/dev/null"] + BASE +
                            list(args))
        return timeouts_line(err)

    def test_every_phase_defaults_to_30s_without_config_or_option(self):
        t = self.verbose_timeouts()
        self.assertEqual(sorted(t), sorted(PHASES))
        for phase in PHASES:
            self.assertEqual(t[phase], ("30s", "smtpout-send default"))

    def test_configured_phases_keep_their_value_the_rest_get_30s(self):
        cfg = self.write("t.ini", "[queue.outbound.timeouts]\n"
                                  "data = 15m\nconnect = 5m\n", mode="w")
        t = self.verbose_timeouts("--config", cfg)
        self.assertEqual(t["data"], ("15m", cfg + ":2"))
        # Set to the library default: still the operator's choice.
        self.assertEqual(t["connect"], ("5m", cfg + ":3"))
        for phase in ("greeting", "tls", "ehlo", "mail-from", "rcpt-to"):
            self.assertEqual(t[phase], ("30s", "smtpout-send default"))

    def test_timeout_option_overrides_config_and_default(self):
        cfg = self.write("t.ini", "[queue.outbound.timeouts]\ndata = 15m\n",
                         mode="w")
        t = self.verbose_timeouts("--config", cfg, "--timeout", "1500ms")
        for phase in PHASES:
            self.assertEqual(t[phase], ("1500ms", "--timeout"))

    def test_timeout_bounds_a_silent_greeting(self):
        # The kernel completes the connection; nobody ever greets.
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(8)
        try:
            rc, doc, err = send(["--server", "127.0.0.1:%d"
                                 % lst.getsockname()[1], "--timeout", "1s",
                                 "--data", "/dev/null"] + BASE, timeout=60)
        finally:
            lst.close()
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertIn("timed out", doc["attempts"][0]["error"])
        self.assertIn("greeting", doc["attempts"][0]["error"])

    def test_duration_syntax_is_the_configurations(self):
        """--timeout X and "connect = X" in a configuration accept the same
        strings, with the same value, and refuse the others for the same
        reason."""
        for value in ("30s", "1500ms", "5m", "1h", "2d", "007s", "49d",
                      "4294967295ms", "0s", "30", "s", "1.5s", "-1s", "30S",
                      "1x", "50d", "4294967296ms", "99999999999s", "30 s"):
            with self.subTest(value=value):
                cfg = self.write("d.ini", "[queue.outbound.timeouts]\n"
                                          "connect = %s\n" % value, mode="w")
                check = subprocess.run([POLICY, "--config", cfg, "--check"],
                                       capture_output=True, text=True,
                                       timeout=60)
                rc, doc, err = send(["--server", "127.0.0.1:%d"
                                     % free_port(), "--verbose",
                                     "--timeout", value,
                                     "--data", "/dev/null"] + BASE)
                if check.returncode == 0:
                    self.assertNotEqual(rc, EX_USAGE, err)
                    t_cli = timeouts_line(err)["connect"][0]
                    rc2, doc2, err2 = send([
                        "--server", "127.0.0.1:%d" % free_port(),
                        "--verbose", "--config", cfg, "--data", "/dev/null"] +
                        BASE)
                    self.assertEqual(timeouts_line(err2)["connect"][0],
                                     t_cli)
                else:
                    self.assertEqual(check.returncode, 78)
                    self.assertEqual(rc, EX_USAGE)
                    why_cfg = re.search(r"for connect: (.*)$",
                                        check.stderr, re.M).group(1)
                    why_cli = re.search(r"bad --timeout \".*\": (.*)$", err,
                                        re.M).group(1)
                    self.assertEqual(why_cli, why_cfg)


class HumanOutputTest(TempDirTest):
    REJECTS = [("bad@test.example", "550 5.1.1 no such user"),
               ("busy@test.example", "450 4.2.1 try later")]
    ARGS = ["--from", "s@test.example", "--to", "a@test.example",
            "--to", "bad@test.example", "--to", "busy@test.example"]

    def test_one_line_per_recipient_with_status_codes_and_text(self):
        spool = self.spool()
        with aiosmtpd(spool, rejects=self.REJECTS,
                      tls=cert("valid")) as srv:
            run = run_send(["--server", "127.0.0.1:%d" % srv.port,
                            "--mx-name", "mx.test.example",
                            "--ca-file", os.path.join(certs(), "ca.pem"),
                            "--data", "/dev/null"] + self.ARGS)
        out = text(run)
        self.assertEqual(run.rc, EX_TEMPFAIL, run.stderr)
        self.assertNotIn("\x1b[", out)  # not a terminal: no colour
        lines = out.splitlines()
        self.assertEqual(lines[0], "policy     starttls = optional (default),"
                                   " allow-invalid-certs = false (default)")
        self.assertRegex(lines[1], r"^tls        127\.0\.0\.1:%d  TLS1\.[23] "
                         r"\S+, certificate verified$" % srv.port)
        self.assertRegex(lines[2], r"^delivered  a@test\.example +250 "
                                   r"2\.\d\.\d +\S")
        self.assertRegex(lines[3], r"^bounced    bad@test\.example +550 "
                                   r"5\.1\.1 +no such user$")
        self.assertRegex(lines[4], r"^deferred   busy@test\.example +450 "
                                   r"4\.2\.1 +try later$")
        self.assertEqual(lines[5], "1 delivered, 1 deferred, 1 bounced")
        # The recipient column is aligned.
        col = {line.index(" 250 ") if " 250 " in line else
               line.index(" 550 ") if " 550 " in line else
               line.index(" 450 ") for line in lines[2:5]}
        self.assertEqual(len(col), 1)

    def test_a_local_decision_shows_no_reply_code(self):
        run = run_send(["--server", "127.0.0.1:%d" % free_port(),
                        "--data", "/dev/null"] + BASE)
        self.assertEqual(run.rc, EX_TEMPFAIL)
        lines = text(run).splitlines()
        self.assertRegex(lines[1], r"^tls        127\.0\.0\.1:\d+  no TLS: "
                                   r"the connection ended first - connect to")
        self.assertRegex(lines[2], r"^deferred   a@test\.example  --- "
                                   r"4\.4\.1 +connect to 127\.0\.0\.1:\d+: ")
        self.assertEqual(len(lines), 3)  # no counts for one recipient

    def test_control_characters_in_an_address_are_escaped(self):
        run = run_send(["--server", "127.0.0.1:%d" % free_port(),
                        "--from", "s@test.example",
                        "--to", "a@test.example\r\nRCPT TO:<evil@x>\x1b[2J",
                        "--data", "/dev/null"])
        out = text(run)
        self.assertIn(r"a@test.example\x0D\x0ARCPT TO:<evil@x>\x1B[2J", out)
        self.assertNotIn("\r", out)
        self.assertNotIn("\x1b", out)

    def test_colour_on_a_terminal_only_without_no_color(self):
        spool = self.spool()
        env = dict(os.environ, TERM="xterm")
        env.pop("NO_COLOR", None)
        with aiosmtpd(spool, rejects=self.REJECTS) as srv:
            args = ["--server", "127.0.0.1:%d" % srv.port,
                    "--data", "/dev/null"] + self.ARGS
            run, tty = run_on_pty(args, stdout_tty=True, env=env)
            self.assertEqual(run.rc, EX_TEMPFAIL)
            self.assertIn("\x1b[32mdelivered", tty)
            self.assertIn("\x1b[31mbounced", tty)
            self.assertIn("\x1b[33mdeferred", tty)
            for extra in ({"NO_COLOR": "1"}, {"TERM": "dumb"}):
                run, tty = run_on_pty(args, stdout_tty=True,
                                      env=dict(env, **extra))
                self.assertIn("delivered", tty)
                self.assertNotIn("\x1b", tty, extra)
            # NO_COLOR set but empty does not count (no-color.org).
            run, tty = run_on_pty(args, stdout_tty=True,
                                  env=dict(env, NO_COLOR=""))
            self.assertIn("\x1b[32m", tty)

    def test_json_is_never_coloured(self):
        env = dict(os.environ, TERM="xterm")
        env.pop("NO_COLOR", None)
        run, tty = run_on_pty(["--server", "127.0.0.1:%d" % free_port(),
                               "--json", "--data", "/dev/null"] + BASE,
                              stdout_tty=True, env=env)
        self.assertNotIn("\x1b", tty)
        json.loads(tty)


def pem_blocks(path):
    with open(path) as f:
        pem = f.read()
    return re.findall(r"-----BEGIN CERTIFICATE-----.*?"
                      r"-----END CERTIFICATE-----\n?", pem, re.S)


class ProbeTest(TempDirTest):
    def probe(self, srv, *args):
        return send(["--probe", "--server", "127.0.0.1:%d" % srv.port,
                     "--mx-name", "mx.test.example"] + list(args))

    def test_probe_shows_each_certificate_and_sends_no_mail(self):
        chain, key = cert("valid")
        spool = self.spool()
        with aiosmtpd(spool, tls=(chain, key)) as srv:
            rc, doc, err = self.probe(
                srv, "--ca-file", os.path.join(certs(), "ca.pem"),
                "--verbose")
        self.assertEqual(rc, EX_OK, err)
        self.assertIsNone(doc["error"])
        self.assertEqual(doc["address"], "127.0.0.1:%d" % srv.port)
        self.assertEqual(doc["starttls"], "ok")
        self.assertTrue(doc["greeting"].startswith("220 "))
        self.assertIn("STARTTLS", doc["ehlo"])
        self.assertIsNotNone(doc["ehlo_tls"])
        tls = doc["tls"]
        self.assertTrue(tls["used"] and tls["verified"])
        blocks = pem_blocks(chain)
        self.assertEqual(len(tls["certificates"]), len(blocks))
        for got, pem in zip(tls["certificates"], blocks):
            der = ssl.PEM_cert_to_DER_cert(pem)
            self.assertEqual(got["sha256"], hashlib.sha256(der).hexdigest())
        leaf = tls["certificates"][0]
        self.assertEqual(leaf["subject"], "CN=mx.test.example")
        self.assertIn("CN=smtpout test ca", leaf["issuer"])
        decoded = ssl._ssl._test_decode_cert(chain)  # the first certificate
        want = datetime.datetime.fromtimestamp(
            ssl.cert_time_to_seconds(decoded["notAfter"]),
            datetime.timezone.utc)
        self.assertEqual(leaf["not_after"], want.strftime("%Y-%m-%dT%H:%M:%SZ"))
        # The session quit without a transaction.
        self.assertIn("C: STARTTLS", err)
        self.assertIn("C: QUIT", err)
        self.assertNotIn("C: MAIL", err)
        self.assertEqual(spool_messages(spool), [])

    def test_probe_reports_an_expired_certificate_and_fails(self):
        spool = self.spool()
        ca = os.path.join(certs(), "ca.pem")
        with aiosmtpd(spool, tls=cert("expired")) as srv:
            rc, doc, err = self.probe(srv, "--ca-file", ca)
            self.assertEqual(rc, EX_TEMPFAIL, err)
            self.assertFalse(doc["tls"]["verified"])
            self.assertIn("expired", doc["tls"]["verify_error"])
            self.assertEqual(doc["tls"]["tlsrpt_result"],
                             "certificate-expired")
            self.assertIn("not verified", doc["error"])
            self.assertEqual(len(doc["tls"]["certificates"]), 2)
            rc, doc, err = self.probe(srv, "--ca-file", ca,
                                      "--allow-invalid-certs")
        self.assertEqual(rc, EX_OK, err)
        self.assertFalse(doc["tls"]["verified"])
        self.assertEqual(doc["policy"]["source"]["allow_invalid_certs"],
                         "--allow-invalid-certs")

    def test_probe_require_without_starttls_fails_naming_the_policy(self):
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            rc, doc, err = self.probe(srv, "--starttls", "require")
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertEqual(doc["starttls"], "not-offered")
        self.assertFalse(doc["tls"]["used"])
        self.assertEqual(doc["tls"]["certificates"], [])
        self.assertIn("TLS is required", doc["error"])
        self.assertEqual(doc["policy"]["source"]["starttls"], "--starttls")

    def test_probe_policy_comes_from_the_recipients_domains(self):
        cfg = self.write("p.ini", "[destination \"strict\"]\n"
                                  "domains = strict.example\n"
                                  "starttls = require\n", mode="w")
        spool = self.spool()
        with aiosmtpd(spool) as srv:
            rc, doc, err = self.probe(srv, "--config", cfg)
            self.assertEqual(rc, EX_OK, err)
            self.assertEqual(doc["policy"]["starttls"], "optional")
            rc, doc, err = self.probe(srv, "--config", cfg,
                                      "--to", "x@strict.example")
        self.assertEqual(rc, EX_TEMPFAIL, err)
        self.assertEqual(doc["policy"]["source"]["starttls"], cfg + ":3")
        self.assertEqual(spool_messages(spool), [])

    def test_probe_of_a_closed_port_fails(self):
        port = free_port()
        rc, doc, err = send(["--probe", "--server", "127.0.0.1:%d" % port])
        self.assertEqual(rc, EX_TEMPFAIL)
        self.assertIn("connect to 127.0.0.1:%d" % port, doc["error"])
        self.assertEqual(doc["starttls"], "none")

    def test_probe_text_output(self):
        spool = self.spool()
        with aiosmtpd(spool, tls=cert("valid")) as srv:
            run = run_send(["--probe", "--server", "127.0.0.1:%d" % srv.port,
                            "--mx-name", "mx.test.example",
                            "--ca-file", os.path.join(certs(), "ca.pem")])
        out = text(run)
        self.assertEqual(run.rc, EX_OK, run.stderr)
        for label in ("server", "policy", "greeting", "ehlo", "ehlo (tls)",
                      "starttls", "tls", "certificate", "verified",
                      "result"):
            self.assertRegex(out, r"(?m)^%s +\S" % re.escape(label))
        self.assertRegex(out, r"(?m)^certificate 0 subject   "
                              r"CN=mx\.test\.example$")
        self.assertRegex(out, r"(?m)^ +sha256    [0-9a-f]{64}$")
        self.assertRegex(out, r"(?m)^verified    yes")

    def test_probe_takes_no_message_options(self):
        for extra in (["--from", "a@b.example"], ["--data", "/dev/null"],
                      ["--smtputf8"]):
            rc, doc, err = send(["--probe", "--server", "127.0.0.1:1"] +
                                extra)
            self.assertEqual(rc, EX_USAGE, extra)
            self.assertIn("--probe", err)


if __name__ == "__main__":
    main()
