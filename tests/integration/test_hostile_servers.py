"""smtpout-send against hostile servers (tests/faultsrv), with every
timeout of [queue.outbound.timeouts] set to 2 seconds: replies that never
end, a line that never ends, replies dripped a byte at a time, a stall and
a close at every phase (after the final dot too), NUL and 8-bit bytes in
replies, invalid codes, multi-line replies whose codes disagree, and
unsolicited replies; some of them over TLS.

Every case checks the same things:
- the run ends by itself, within a bound derived from the timeouts (a
  generous safety margin: the point is "bounded", not speed), and well
  before a dripped reply could have finished;
- smtpout-send's own peak resident memory (wait4) stays under 64 MB;
- exactly one result per recipient, with the expected status and exit
  status (75 whenever anything is deferred);
- nothing is reported delivered that the server did not store, and a
  message the server stored but whose reply was lost is flagged
  possibly_delivered;
- every result's code and enhanced code agree with its status (2
  delivered, 4 deferred, 5 bounced: a 250 during the data is no delivery);
- every command the server received is one of the client's own, with the
  client's own addresses: nothing the server sent was echoed back.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testlib  # noqa: E402
from testlib import (EX_OK, EX_TEMPFAIL, FaultServer,  # noqa: E402
                     TempDirTest, by_address, cert, certs, main, send)

T = 2  # seconds: every timeout of the configuration
RCPTS = ["a@test.example", "b@test.example"]
SENDER = "s@client.example"
RSS_LIMIT_KB = 64 * 1024
# A run waits for at most a few replies in turn, each bounded by T; under
# valgrind every step is much slower.  Either way this is a safety net.
MARGIN = 10 * (4 if testlib.VALGRIND else 1)

# Each command line the client may send, with its own names and addresses.
ALLOWED = [re.compile(p) for p in (
    r"(EHLO|HELO) [a-z0-9.-]+$",
    r"STARTTLS$",
    r"MAIL FROM:<(%s)?>( SIZE=\d+| BODY=8BITMIME| SMTPUTF8)*$"
    % re.escape(SENDER),
    r"RCPT TO:<(%s)>$" % "|".join(re.escape(r) for r in RCPTS),
    r"DATA$", r"RSET$", r"QUIT$", r"NOOP$",
    r"\. \(end of data: \d+ bytes of content, \d+ on the wire\)$",
)]
COMMAND = re.compile(r"^[\d.]+ #\d+ C> (?:\((?:ignored|discarded)\) )?"
                     r"\[(?:plain|tls)\] (.*)$", re.M)

PHASES = ["greeting", "ehlo", "mail", "rcpt", "data", "eod"]
BODY = b"Subject: hostile\r\n\r\nline one\r\n.line with a dot\r\n"


class HostileServerTest(TempDirTest):
    def run_case(self, args, expect, rc, possibly=False, tls=False,
                 max_elapsed=None, violations_ok=False, body=BODY):
        """Delivers BODY to RCPTS through a faultsrv started with `args`
        and checks everything the module docstring lists.  `expect` is
        the status every recipient must end with."""
        work = self.spool("run%d" % len(os.listdir(self.tmp)))
        cfg = os.path.join(work, "smtpout.ini")
        with open(cfg, "w") as f:
            f.write('[queue.outbound.tls]\nstarttls = "%s"\n\n'
                    "[queue.outbound.timeouts]\n" % (
                        "require" if tls else "optional"))
            for key in ("connect", "greeting", "tls", "ehlo", "mail-from",
                        "rcpt-to", "data"):
                f.write("%s = %ds\n" % (key, T))
        data = os.path.join(work, "msg")
        with open(data, "wb") as f:
            f.write(body)
        srv = FaultServer(work, list(args), tls=cert("valid") if tls else None)
        try:
            argv = ["--server", "127.0.0.1:%d" % srv.port,
                    "--mx-name", "mx.test.example", "--config", cfg,
                    "--from", SENDER, "--data", data]
            if tls:
                argv += ["--ca-file", os.path.join(certs(), "ca.pem")]
            for r in RCPTS:
                argv += ["--to", r]
            got_rc, doc, err = send(argv, timeout=120)
            run = testlib.last_run
        finally:
            log = srv.finish()
        msgs = srv.messages()
        what = "%s\n--- stderr:\n%s\n--- server log:\n%s" % (doc, err,
                                                              log[-3000:])

        # Bounded in time and memory.
        bound = max_elapsed if max_elapsed is not None else 3 * T
        self.assertLess(run.elapsed, bound + MARGIN, what)
        if not testlib.VALGRIND:  # valgrind's own memory would count
            self.assertLess(run.maxrss_kb, RSS_LIMIT_KB, what)
        record_rss(run)
        print("# %s: smtpout-send max RSS %d kB, %.2f s" % (
            self.id().rsplit(".", 1)[-1], run.maxrss_kb, run.elapsed),
            flush=True)

        # Exactly one result per recipient, as expected.
        self.assertIsNotNone(doc, what)
        self.assertEqual([r["address"] for r in doc["recipients"]], RCPTS,
                         what)
        for r in doc["recipients"]:
            self.assertEqual(r["status"], expect, what)
            self.assertEqual(r["possibly_delivered"], possibly, what)
            check_codes(self, r, what)
        self.assertEqual(got_rc, rc, what)

        # Nothing delivered that the server did not store; whatever it
        # stored is either delivered or flagged possibly delivered.
        stored = {a for meta, _ in msgs for a in meta["rcpt_to"]}
        for r in doc["recipients"]:
            if r["status"] == "delivered":
                self.assertIn(r["address"], stored, what)
            elif r["address"] in stored:
                self.assertTrue(r["possibly_delivered"], what)
        for _, content in msgs:
            self.assertEqual(content, body, what)

        # Only the client's own commands reached the server.
        for c in COMMAND.findall(log):
            self.assertTrue(any(p.match(c) for p in ALLOWED),
                            "unexpected command %r\n%s" % (c, what))
        if not violations_ok:
            self.assertNotIn("! violation", log, what)
        return doc, log


def check_codes(test, r, what):
    """A result's code (when there is one) and enhanced code (when not
    empty) are of its status's class."""
    klass = {"delivered": "2", "deferred": "4", "bounced": "5"}[r["status"]]
    if r["code"] is not None:
        test.assertEqual(str(r["code"])[0], klass, what)
    if r["enhanced"]:
        test.assertEqual(r["enhanced"][0], klass, what)


# Peak RSS over every run of this module, printed as a TAP comment.
_peak = {"kb": 0, "elapsed": 0.0}


def record_rss(run):
    _peak["kb"] = max(_peak["kb"], run.maxrss_kb)
    _peak["elapsed"] = max(_peak["elapsed"], run.elapsed)


def case(name, *a, **kw):
    def test(self):
        self.run_case(*a, **kw)
    test.__name__ = "test_" + name
    setattr(HostileServerTest, test.__name__, test)


DEFERRED = dict(expect="deferred", rc=EX_TEMPFAIL)
LOST_DOT = dict(expect="deferred", rc=EX_TEMPFAIL, possibly=True)
DELIVERED = dict(expect="delivered", rc=EX_OK)


def after_dot(phase, lost=LOST_DOT, other=DEFERRED):
    return lost if phase == "eod" else other


# A stall at each phase: the phase's timeout ends the wait.  After the
# final dot the message may have arrived: deferred, possibly delivered.
# A stalled QUIT changes nothing: the results were final.
for p in PHASES:
    case("stall_at_%s" % p, ["--stall", p], **after_dot(p))
case("stall_at_quit", ["--stall", "quit"], **DELIVERED)
case("stall_at_helo", ["--ehlo-reply", "500 5.5.1 no EHLO", "--stall", "helo"],
     **DEFERRED)
case("stall_at_starttls", ["--stall", "starttls"], tls=True, **DEFERRED)
case("stall_at_ehlo_after_tls", ["--stall", "ehlo@tls"], tls=True,
     **DEFERRED)

# A close at each phase (FIN, and a TCP reset after the dot).
for p in PHASES:
    case("close_at_%s" % p, ["--close", p], **after_dot(p))
case("reset_at_eod", ["--close", "eod", "--drop-mode", "rst"], **LOST_DOT)
case("close_at_quit", ["--close", "quit"], **DELIVERED)
case("close_at_starttls", ["--close", "starttls"], tls=True, **DEFERRED)
# Abandoned after 10 bytes of content: a small message has been written
# whole by then (the server may have read the dot: possibly delivered); a
# large one is cut while the client still writes it (never delivered).
case("close_in_the_middle_of_small_data", ["--drop-in-data", "10"],
     **LOST_DOT)
case("close_in_the_middle_of_large_data", ["--drop-in-data", "10"],
     body=b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 4096,
     **DEFERRED)

# A server that refuses the whole session is skipped, never bounces (as
# Postfix's smtp_skip_5xx_greeting): deferred with only one address.  A
# 421 to the final dot is an answer: deferred, not possibly delivered.
case("greeting_554", ["--greeting", "554 5.7.1 no service here"],
     **DEFERRED)
case("ehlo_and_helo_550", ["--ehlo-reply", "550 5.7.1 not you",
                           "--reply", "helo=550 5.7.1 not you either"],
     **DEFERRED)
case("421_at_eod", ["--eod-reply", "421 4.3.2 shutting down"], **DEFERRED)

# Replies that never end: a multi-line reply (the 100-line limit), and one
# line (the 2048-byte limit), at each phase; they are fed faster than the
# timeout, so the limits, not the clock, end them.
for p in PHASES:
    case("endless_multiline_at_%s" % p, ["--endless-multiline", p, "--pace",
                                         "1"], **after_dot(p))
    case("endless_line_at_%s" % p, ["--endless-line", p, "--pace", "1"],
         **after_dot(p))

# A reply dripped one byte a second takes 25 s (end of data) to 2 min
# (EHLO) to arrive whole: the 2 s timeout bounds the whole reply, not the
# gap between bytes, so the run ends long before.
case("dripped_greeting", ["--drip", "greeting:1000"], max_elapsed=T + 1,
     **DEFERRED)
case("dripped_ehlo", ["--drip", "ehlo:1000"], max_elapsed=T + 1, **DEFERRED)
case("dripped_end_of_data_reply", ["--drip", "eod:1000"], max_elapsed=T + 1,
     **LOST_DOT)
# A reply dripped quickly enough still counts.
case("dripped_but_within_the_timeout", ["--drip", "ehlo:2"], **DELIVERED)

# NUL and 8-bit bytes in the text of every reply: the codes are valid, so
# the replies count; the text is kept printable (checked below).
case("nul_and_8bit_in_every_reply", ["--nul"], **DELIVERED)

# Invalid codes, at each phase.
for code in ["600", "099", "25O", "2500"]:
    for p in PHASES:
        case("code_%s_at_%s" % (code, p), ["--bad-code", "%s:%s" % (p, code)],
             **after_dot(p))

# Multi-line replies whose codes disagree, at each phase.
for p in PHASES:
    case("codes_disagree_at_%s" % p, ["--disagree=%s" % p], **after_dot(p))

# Unsolicited replies, in the same write as a real one: they answer
# nothing the client has sent yet.  After the reply to the dot the message
# is already delivered: only the QUIT is cut short.
for p in PHASES[:-1]:
    case("unsolicited_after_%s" % p, ["--unsolicited=%s" % p], **DEFERRED)
case("unsolicited_after_eod", ["--unsolicited=eod"], **DELIVERED)

# The same faults inside TLS (starttls = require).
case("tls_stall_at_eod", ["--stall", "eod@tls"], tls=True, **LOST_DOT)
case("tls_endless_multiline_at_ehlo", ["--endless-multiline", "ehlo@tls",
                                       "--pace", "1"], tls=True, **DEFERRED)
case("tls_dripped_mail_reply", ["--drip", "mail@tls:1000"], tls=True,
     max_elapsed=2 * T, **DEFERRED)
case("tls_bad_code_at_rcpt", ["--bad-code", "rcpt@tls:25O"], tls=True,
     **DEFERRED)
case("tls_close_at_data", ["--close", "data@tls"], tls=True, **DEFERRED)


def test_nul_and_8bit_never_reach_the_report_raw(self):
    doc, log = self.run_case(["--eod-reply",
                              r"250 2.0.0 ok \0 \xff\x80\xc3\xa9 \x1b[2J"],
                             **DELIVERED)
    for r in doc["recipients"]:
        text = r["text"]
        self.assertTrue(all(0x20 <= ord(ch) < 0x7f for ch in text), text)
        self.assertIn("ok", text)


HostileServerTest.test_nul_and_8bit_never_reach_the_report_raw = \
    test_nul_and_8bit_never_reach_the_report_raw


HOSTS_NAME = "mx.two.test"
# Two loopback addresses of one name: other tests use 127.0.0.1.
FIRST, SECOND = "127.0.0.2", "127.0.0.3"
MOUNT_HOSTS = ["unshare", "-m", "sh", "-c",
               'mount --bind "$0" /etc/hosts && exec "$@"']


class NextAddressTest(TempDirTest):
    """A server that refuses the session (5xx greeting, 5xx to EHLO and
    HELO) or answers the end of data with 421 is left for the next address
    of the same name, which delivers.  The name resolves to two loopback
    addresses through a private /etc/hosts, bind-mounted in a mount
    namespace of smtpout-send's own (unshare -m: needs root; skipped
    without)."""

    def setUp(self):
        super().setUp()
        self.hosts = self.write("hosts", ("%s %s\n%s %s\n" % (
            FIRST, HOSTS_NAME, SECOND, HOSTS_NAME)).encode())
        try:
            r = subprocess.run(MOUNT_HOSTS + [self.hosts, "getent", "ahosts",
                                              HOSTS_NAME],
                               capture_output=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            self.skipTest("unshare -m: %s" % e)
        if r.returncode != 0:
            self.skipTest("cannot mount a private /etc/hosts (unshare -m, "
                          "needs root): %s" % r.stderr.decode().strip())
        order = [line.split()[0] for line in r.stdout.decode().splitlines()
                 if "STREAM" in line]
        self.assertEqual(order, [FIRST, SECOND])

    def deliver(self, first_args, second_args=()):
        work = self.spool("run%d" % len(os.listdir(self.tmp)))
        cfg = os.path.join(work, "smtpout.ini")
        with open(cfg, "w") as f:
            f.write("[queue.outbound.timeouts]\n")
            for key in ("connect", "greeting", "tls", "ehlo", "mail-from",
                        "rcpt-to", "data"):
                f.write("%s = %ds\n" % (key, T))
        data = os.path.join(work, "msg")
        with open(data, "wb") as f:
            f.write(BODY)
        first = FaultServer(self.spool(os.path.join(work, "first")),
                            ["--listen", "%s:0" % FIRST] + list(first_args))
        try:
            second = FaultServer(
                self.spool(os.path.join(work, "second")),
                ["--listen", "%s:%d" % (SECOND, first.port)] +
                list(second_args))
        except Exception:
            first.stop()
            raise
        try:
            argv = ["--server", "%s:%d" % (HOSTS_NAME, first.port),
                    "--mx-name", "mx.test.example", "--config", cfg,
                    "--from", SENDER, "--data", data]
            for r in RCPTS:
                argv += ["--to", r]
            rc, doc, err = send(argv, wrap=MOUNT_HOSTS + [self.hosts])
        finally:
            logs = (first.finish(), second.finish())
        what = "%s\n--- stderr:\n%s\n--- logs:\n%s\n%s" % (
            doc, err, logs[0][-2000:], logs[1][-2000:])
        self.assertIsNotNone(doc, what)
        for r in doc["recipients"]:
            check_codes(self, r, what)
        return (rc, doc, what, first.port, first.messages(),
                second.messages())

    def assert_second_delivers(self, first_args, error):
        rc, doc, what, port, first, second = self.deliver(first_args)
        self.assertEqual(rc, EX_OK, what)
        a = doc["attempts"]
        self.assertEqual([x["address"] for x in a],
                         ["%s:%d" % (FIRST, port), "%s:%d" % (SECOND, port)],
                         what)
        self.assertIn(error, a[0]["error"], what)
        self.assertIsNone(a[1]["error"], what)
        for r in doc["recipients"]:
            self.assertEqual(r["status"], "delivered", what)
        self.assertEqual(first, [], what)
        self.assertEqual(len(second), 1, what)
        self.assertEqual(sorted(second[0][0]["rcpt_to"]), sorted(RCPTS), what)

    def test_5xx_greeting_goes_to_the_next_address(self):
        self.assert_second_delivers(
            ["--greeting", "554 5.7.1 no service here"],
            "554 no service here")

    def test_5xx_to_ehlo_and_helo_goes_to_the_next_address(self):
        self.assert_second_delivers(
            ["--ehlo-reply", "550 5.7.1 not you",
             "--reply", "helo=550 5.7.1 not you either"],
            "550 not you either")

    def test_421_to_end_of_data_goes_to_the_next_address(self):
        self.assert_second_delivers(
            ["--eod-reply", "421 4.3.2 shutting down"],
            "421 shutting down")

    def test_every_address_refusing_defers(self):
        refuse = ["--greeting", "554 5.7.1 no service here"]
        rc, doc, what, port, first, second = self.deliver(refuse, refuse)
        self.assertEqual(rc, EX_TEMPFAIL, what)
        self.assertEqual(len(doc["attempts"]), 2, what)
        for r in by_address(doc).values():
            self.assertEqual(r["status"], "deferred", what)
            self.assertIsNone(r["code"], what)
            self.assertEqual(r["enhanced"], "4.7.1", what)
            self.assertIn("554 no service here", r["text"], what)
            self.assertFalse(r["possibly_delivered"], what)
        self.assertEqual(first + second, [], what)


class ZSummary(TempDirTest):
    def test_print_peak_rss_and_time(self):
        # Runs last (alphabetical order): reports what the cases measured.
        self.assertGreater(_peak["kb"], 0)
        print("# smtpout-send peak RSS over all hostile servers: %d kB "
              "(%.1f MB); longest run %.1f s%s" % (
                  _peak["kb"], _peak["kb"] / 1024, _peak["elapsed"],
                  " (under valgrind)" if testlib.VALGRIND else
                  " (sanitizer build)" if testlib.SANITIZED else ""),
              flush=True)


if __name__ == "__main__":
    main()
