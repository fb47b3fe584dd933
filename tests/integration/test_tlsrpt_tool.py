#!/usr/bin/python3
"""Integration tests for the smtpout-tlsrpt tool.

Event files are written by separate processes (tests/tlsrpt-write, which
uses the library's event writer), concurrently, to separate files and to
one shared file; the tool merges them into RFC 8460 reports whose counts
are checked exactly.  Also: corrupt lines, the --domain filter, exit
codes.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import testlib  # noqa: E402

TOOL = os.path.join(testlib.BUILD, "examples", "tools", "smtpout-tlsrpt")
WRITER = os.path.join(testlib.BUILD, "tests", "tlsrpt-write")

DATE = "2024-02-29"
NOON = "1709208000000"  # 2024-02-29T12:00:00Z
NEXT_DAY = "1709251200000"  # 2024-03-01T00:00:00Z
BASE = ["--organization", "Sender Org", "--contact", "tlsrpt@sender.example"]


def writers(*jobs):
    """Starts one tlsrpt-write process per job (all at once) and waits."""
    procs = [subprocess.Popen([WRITER] + list(job)) for job in jobs]
    for p in procs:
        if p.wait(60) != 0:
            raise AssertionError("tlsrpt-write failed: %r" % p.args)


def reports(stdout):
    """{report domain: report}, the domain read from the report-id."""
    out = {}
    for line in stdout.splitlines():
        rep = json.loads(line)
        out[rep["report-id"].split("_")[1]] = rep
    return out


def policy(rep, ptype, domain, strings=True):
    """The one policy entry of that type and domain, with (or without)
    policy strings."""
    found = [p for p in rep["policies"]
             if p["policy"]["policy-type"] == ptype
             and p["policy"]["policy-domain"] == domain
             and ("policy-string" in p["policy"]) == strings]
    assert len(found) == 1, rep
    return found[0]


def details(pol):
    """{(result-type, sending-mta-ip, receiving-mx-hostname): count}"""
    return {(d["result-type"], d.get("sending-mta-ip"),
             d.get("receiving-mx-hostname")): d["failed-session-count"]
            for d in pol["failure-details"]}


class TlsrptToolTest(testlib.TempDirTest):
    def tool(self, *args):
        return subprocess.run([TOOL] + list(args), capture_output=True,
                              text=True, timeout=120)

    def test_report_from_two_processes_has_exact_counts(self):
        a, b = self.path("a.events"), self.path("b.events")
        writers([a, NOON, "192.0.2.1", "sts-ok=40", "sts-expired=3",
                 "sts-nostls=2", "tlsa-invalid=5", "none-ok=7"],
                [b, NOON, "192.0.2.2", "sts-ok=60", "sts-expired=1",
                 "sts-fetch=4", "none-ok=1"])
        r = self.tool("--events", a, "--events", b, "--date", DATE, *BASE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")
        reps = reports(r.stdout)
        self.assertEqual(sorted(reps), ["example.com", "other.example"])
        ex = reps["example.com"]
        self.assertEqual(ex["organization-name"], "Sender Org")
        self.assertEqual(ex["contact-info"], "tlsrpt@sender.example")
        self.assertEqual(ex["report-id"],
                         "2024-02-29_example.com_tlsrpt@sender.example")
        self.assertEqual(ex["date-range"],
                         {"start-datetime": "2024-02-29T00:00:00Z",
                          "end-datetime": "2024-02-29T23:59:59Z"})
        self.assertEqual(len(ex["policies"]), 3)
        sts = policy(ex, "sts", "example.com")
        self.assertEqual(sts["policy"]["mx-host"], ["*.mail.example.com"])
        self.assertEqual(sts["policy"]["policy-string"][1], "mode: enforce")
        self.assertEqual(sts["summary"],
                         {"total-successful-session-count": 100,
                          "total-failure-session-count": 6})
        self.assertEqual(details(sts), {
            ("certificate-expired", "192.0.2.1", "mx1.mail.example.com"): 3,
            ("certificate-expired", "192.0.2.2", "mx1.mail.example.com"): 1,
            ("starttls-not-supported", "192.0.2.1",
             "mx2.mail.example.com"): 2,
        })
        # A fetch failure has no policy strings: a policy of its own.
        fetch = policy(ex, "sts", "example.com", strings=False)
        self.assertEqual(fetch["summary"]["total-failure-session-count"], 4)
        self.assertEqual(details(fetch),
                         {("sts-policy-fetch-error", "192.0.2.2", None): 4})
        tlsa = policy(ex, "tlsa", "mx.hosting.example")
        self.assertNotIn("mx-host", tlsa["policy"])
        self.assertEqual(tlsa["summary"],
                         {"total-successful-session-count": 0,
                          "total-failure-session-count": 5})
        other = policy(reps["other.example"], "no-policy-found",
                       "other.example", strings=False)
        self.assertEqual(other["summary"]["total-successful-session-count"],
                         8)
        self.assertEqual(other["failure-details"], [])
        # The order of the files does not change a byte.
        again = self.tool("--events", b, "--events", a, "--date", DATE,
                          *BASE)
        self.assertEqual(again.stdout, r.stdout)

    def test_two_processes_appending_to_one_file(self):
        shared = self.path("shared.events")
        writers([shared, NOON, "192.0.2.1", "sts-ok=3000", "sts-expired=500"],
                [shared, NOON, "192.0.2.2", "sts-ok=2000", "sts-expired=700"])
        with open(shared, "rb") as f:
            self.assertEqual(f.read().count(b"\n"), 6200)
        r = self.tool("--events", shared, "--date", DATE, "--domain",
                      "EXAMPLE.COM.", *BASE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")  # no line torn by the other writer
        sts = policy(reports(r.stdout)["example.com"], "sts", "example.com")
        self.assertEqual(sts["summary"],
                         {"total-successful-session-count": 5000,
                          "total-failure-session-count": 1200})
        self.assertEqual(details(sts), {
            ("certificate-expired", "192.0.2.1", "mx1.mail.example.com"): 500,
            ("certificate-expired", "192.0.2.2", "mx1.mail.example.com"): 700,
        })

    def test_corrupt_lines_are_skipped_and_counted(self):
        a = self.path("a.events")
        writers([a, NOON, "192.0.2.1", "sts-ok=2", "none-ok=1"])
        with open(a, "ab") as f:
            f.write(b"garbage\n{\"v\":1,\"time\":\n\xff\xfe\x00\n\n")
            f.write(b"x" * 300000 + b"\n")
        writers([a, NOON, "192.0.2.1", "sts-ok=1"],
                [self.path("late.events"), NEXT_DAY, "192.0.2.1", "sts-ok=9"])
        r = self.tool("--events", a, "--events", self.path("late.events"),
                      "--date", DATE, *BASE)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr,
                         "smtpout-tlsrpt: 4 malformed line(s) skipped\n")
        sts = policy(reports(r.stdout)["example.com"], "sts", "example.com")
        self.assertEqual(sts["summary"]["total-successful-session-count"], 3)

    def test_stdin_and_nothing_to_report(self):
        a = self.path("a.events")
        writers([a, NEXT_DAY, "192.0.2.1", "sts-ok=1"])
        with open(a, "rb") as f:
            r = subprocess.run([TOOL, "--events", "-", "--date", DATE] + BASE,
                               stdin=f, capture_output=True, text=True)
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr, "smtpout-tlsrpt: no events for "
                                   "2024-02-29\n")
        r = self.tool("--events", a, "--date", "2024-03-01", "--domain",
                      "nobody.example", *BASE)
        self.assertEqual((r.returncode, r.stdout), (0, ""))

    def test_exit_codes(self):
        a = self.path("a.events")
        writers([a, NOON, "192.0.2.1", "sts-ok=1"])
        cases = [
            (["--events", a, *BASE], 64),                      # no --date
            (["--date", DATE, *BASE], 64),                     # no --events
            (["--events", a, "--date", "2023-02-29", *BASE], 64),
            (["--events", a, "--date", "2024-2-29", *BASE], 64),
            (["--events", a, "--date", "1969-12-31", *BASE], 64),
            (["--events", a, "--date", DATE, *BASE, "extra"], 64),
            (["--events", a, "--date", DATE, "--domain", "bad..name",
              *BASE], 65),
            (["--events", a, "--date", DATE, "--organization", "a\tb",
              "--contact", "c"], 65),
            (["--events", self.path("missing"), "--date", DATE, *BASE], 66),
        ]
        for args, want in cases:
            with self.subTest(args=args):
                r = self.tool(*args)
                self.assertEqual(r.returncode, want, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertTrue(r.stderr.startswith("smtpout-tlsrpt: ") or
                                r.stderr.startswith("usage: "), r.stderr)
        r = self.tool("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--organization", r.stdout)


if __name__ == "__main__":
    testlib.main()
