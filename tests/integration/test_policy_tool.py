#!/usr/bin/python3
"""Integration tests for the smtpout-policy tool.

Runs the tool on configuration files written to a scratch directory and
checks its JSON output, its explanations and its exit codes (0, 64, 65,
78) with the FILE:LINE messages of --check.
"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

TOOL = None

# The seed's two snippets, verbatim.
SEED_STARTTLS = '[queue.outbound.tls]\nstarttls = "require"\n'
SEED_CERTS = '[queue.outbound.tls]\nallow-invalid-certs = false\n'

TRICKY = """\
; docs/configuration.md's worked example, plus a map
[queue.outbound.tls]
starttls = "optional"
allow-invalid-certs = false
policy-map = maps/policy.map

[destination "banks"]
domains = bank.example .bank.example
starttls = "require"

[destination "m365"]
mx = *.mail.protection.outlook.com
allow-invalid-certs = true

[destination "legacy"]
domains = legacy.example,
    BÜCHER.example   ; continuation with a comment
mx = mx.legacy.example
starttls = disable
"""

MAP = """\
# big table
big.example            starttls=require
mx:*.hosting.example   starttls=disable allow-invalid-certs=true
"""


class PolicyToolTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="smtpout-policy-")
        self.dir = self.tmp.name

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def run_tool(self, *args):
        # Relative paths, as an operator would type them: sources are
        # reported as given.
        return subprocess.run([TOOL, *args], cwd=self.dir,
                              capture_output=True, text=True, timeout=60)

    def query(self, config, *args):
        r = self.run_tool("--config", config, "--json", *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        doc = json.loads(r.stdout)
        for key in ("starttls", "allow_invalid_certs", "source"):
            self.assertIn(key, doc)
        self.assertIsInstance(doc["allow_invalid_certs"], bool)
        return doc

    def assert_policy(self, doc, starttls, allow, src_starttls, src_allow,
                      rule_starttls=None, rule_allow=None):
        self.assertEqual(doc["starttls"], starttls)
        self.assertIs(doc["allow_invalid_certs"], allow)
        self.assertEqual({k: doc["source"][k] for k in
                          ("starttls", "allow_invalid_certs")},
                         {"starttls": src_starttls,
                          "allow_invalid_certs": src_allow})
        if rule_starttls is not None:
            self.assertEqual(doc["rule"]["starttls"], rule_starttls)
        if rule_allow is not None:
            self.assertEqual(doc["rule"]["allow_invalid_certs"], rule_allow)

    # ---- the seed ----

    def test_seed_starttls_snippet(self):
        self.write("seed1.ini", SEED_STARTTLS)
        doc = self.query("seed1.ini", "--domain", "example.com")
        self.assert_policy(doc, "require", False, "seed1.ini:2", "default",
                           "queue.outbound.tls", "default")

    def test_seed_certs_snippet(self):
        self.write("seed2.ini", SEED_CERTS)
        doc = self.query("seed2.ini", "--domain", "example.com")
        self.assert_policy(doc, "optional", False, "default", "seed2.ini:2")

    def test_seed_snippets_together(self):
        self.write("seed.ini", SEED_STARTTLS + "\n" + SEED_CERTS)
        doc = self.query("seed.ini", "--domain", "example.com",
                         "--mx", "mx.example.com")
        self.assert_policy(doc, "require", False, "seed.ini:2", "seed.ini:5")

    # ---- resolution through the tool ----

    def test_tricky_config_resolutions(self):
        self.write("cfg.ini", TRICKY)
        self.write("maps/policy.map", MAP)
        cases = [
            # (args, starttls, allow, source, source, rule, rule)
            (["--domain", "bank.example"], "require", False, "cfg.ini:9",
             "cfg.ini:4", "banks", "queue.outbound.tls"),
            (["--domain", "a.b.bank.example",
              "--mx", "x.mail.protection.outlook.com"],
             "require", True, "cfg.ini:9", "cfg.ini:13", "banks", "m365"),
            # one label only: a.b.mail... is not covered by *.mail...
            (["--domain", "other.example",
              "--mx", "a.b.mail.protection.outlook.com"],
             "optional", False, "cfg.ini:3", "cfg.ini:4",
             "queue.outbound.tls", "queue.outbound.tls"),
            # exact MX beats the exact domain
            (["--domain", "bank.example", "--mx", "mx.legacy.example"],
             "disable", False, "cfg.ini:19", "cfg.ini:4", "legacy",
             "queue.outbound.tls"),
            (["--domain", "xn--bcher-kva.example"], "disable", False,
             "cfg.ini:19", "cfg.ini:4", "legacy", "queue.outbound.tls"),
            (["--domain", "big.example"], "require", False,
             "maps/policy.map:2", "cfg.ini:4", "map:maps/policy.map:2",
             "queue.outbound.tls"),
            (["--domain", "x.example", "--mx", "a.hosting.example"],
             "disable", True, "maps/policy.map:3", "maps/policy.map:3",
             "map:maps/policy.map:3", "map:maps/policy.map:3"),
        ]
        for args, *want in cases:
            with self.subTest(args=args):
                self.assert_policy(self.query("cfg.ini", *args), *want)

    def test_strictest_of_several_domains(self):
        self.write("cfg.ini", TRICKY)
        self.write("maps/policy.map", MAP)
        doc = self.query("cfg.ini", "--domain", "legacy.example",
                         "--domain", "bank.example",
                         "--mx", "x.mail.protection.outlook.com")
        self.assert_policy(doc, "require", True, "cfg.ini:9", "cfg.ini:13",
                           "banks", "m365")
        self.assertIn("strictest, from recipient domain bank.example",
                      doc["explain"])
        self.assertEqual(doc["domains"], ["legacy.example", "bank.example"])

    def test_dane_knob_with_its_source(self):
        self.write("dane.ini", '[queue.outbound.tls]\n'
                               'dane = disable\n'
                               '[destination "dnssec"]\n'
                               'domains = .dnssec.example\n'
                               'dane = require\n')
        doc = self.query("dane.ini", "--domain", "a.dnssec.example")
        self.assertEqual(doc["dane"], "require")
        self.assertEqual(doc["source"]["dane"], "dane.ini:5")
        self.assertEqual(doc["rule"]["dane"], "dnssec")
        doc = self.query("dane.ini", "--domain", "other.example")
        self.assertEqual(doc["dane"], "disable")
        self.assertEqual(doc["rule"]["dane"], "queue.outbound.tls")
        self.assertIn("dane = disable\n  set by [queue.outbound.tls] at "
                      "dane.ini:2", doc["explain"])

    def test_text_output_explains(self):
        self.write("cfg.ini", TRICKY)
        self.write("maps/policy.map", MAP)
        r = self.run_tool("--config", "cfg.ini", "--domain", "bücher.example")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("recipient domain: bücher.example (as "
                      "xn--bcher-kva.example)", r.stdout)
        self.assertIn('starttls = disable\n  set by [destination "legacy"] '
                      "at cfg.ini:19\n", r.stdout)
        self.assertIn("matched: exact recipient-domain rule", r.stdout)

    # ---- --check and exit codes ----

    def test_check_accepts_a_good_config(self):
        self.write("cfg.ini", TRICKY)
        self.write("maps/policy.map", MAP)
        r = self.run_tool("--config", "cfg.ini", "--check")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr, "")

    def test_check_reports_each_problem_with_its_line(self):
        self.write("bad.ini", '[queue.outbound.tls]\n'
                              'starttls = "requir"\n'
                              '\n'
                              '[destination "x"]\n'
                              'domains = a.example\n'
                              '  a.example\n'
                              'starttls = require\n'
                              'colour = blue\n')
        r = self.run_tool("--config", "bad.ini", "--check")
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stdout, "")
        self.assertEqual(r.stderr.splitlines(), [
            'bad.ini:2: bad value "requir" for starttls '
            '(accepted: optional, require, disable)',
            'bad.ini:6: domain pattern "a.example" is already claimed by '
            '[destination "x"] at bad.ini:5',
            'bad.ini:8: unknown key "colour" in [destination "x"] '
            '(accepted: domains, mx, starttls, allow-invalid-certs, dane, '
            'mta-sts)',
        ])

    def test_check_reports_map_lines(self):
        self.write("cfg.ini", "[queue.outbound.tls]\npolicy-map = p.map\n")
        self.write("p.map", "ok.example starttls=require\n"
                            "\n"
                            "bad.example starttls=maybe\n")
        r = self.run_tool("--config", "cfg.ini", "--check")
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr,
                         'p.map:3: bad value "maybe" for starttls '
                         '(accepted: optional, require, disable)\n')

    def test_query_on_a_bad_config_exits_78(self):
        self.write("bad.ini", "[queue.outbound.tls]\nstarttls = yes\n")
        r = self.run_tool("--config", "bad.ini", "--domain", "x.example")
        self.assertEqual(r.returncode, 78)
        self.assertTrue(r.stderr.startswith("bad.ini:2: bad value"))

    def test_missing_config_exits_78(self):
        r = self.run_tool("--config", "missing.ini", "--check")
        self.assertEqual(r.returncode, 78)
        self.assertEqual(r.stderr, "missing.ini: cannot read: No such file "
                                   "or directory\n")

    def test_bad_usage_exits_64(self):
        self.write("cfg.ini", "")
        cases = [
            ([], "usage:"),
            (["--config", "cfg.ini"], "usage:"),
            (["--domain", "x.example"], "usage:"),
            (["--config", "cfg.ini", "--check", "--domain", "x"], "usage:"),
            (["--config", "cfg.ini", "--bogus"], "usage:"),
            (["--config", "cfg.ini", "--domain", "a", "extra"], "usage:"),
            (["--config", "cfg.ini", "--mx", "a", "--mx", "b"],
             "--mx given twice"),
        ]
        for args, message in cases:
            with self.subTest(args=args):
                r = self.run_tool(*args)
                self.assertEqual(r.returncode, 64)
                self.assertIn(message, r.stderr)

    def test_bad_name_exits_65(self):
        self.write("cfg.ini", "")
        r = self.run_tool("--config", "cfg.ini", "--domain", "good.example",
                          "--domain", "bad..example", "--mx", "☃.net")
        self.assertEqual(r.returncode, 65)
        self.assertEqual(r.stderr.splitlines(), [
            "smtpout-policy: --domain bad..example: not a valid domain name",
            "smtpout-policy: --mx ☃.net: not a valid host name",
        ])

    def test_blank_lines_of_a_map_cost_no_memory(self):
        # 4 MB of blank lines and one entry: the peak RSS (GNU time) is the
        # 4 MB read buffer and the program, not a table sized by the line
        # count (which took about 140 MB here, 1 GB for 20 MB of them).
        with open(os.path.join(self.dir, "blank.map"), "w") as f:
            f.write("\n" * 4000000 + "bank.example starttls=require\n")
        self.write("cfg.ini", "[queue.outbound.tls]\npolicy-map = blank.map\n")
        rss = os.path.join(self.dir, "rss")
        r = subprocess.run(["/usr/bin/time", "-q", "-f", "%M", "-o", rss,
                            TOOL, "--config", "cfg.ini", "--domain",
                            "bank.example", "--json"],
                           cwd=self.dir, capture_output=True, text=True,
                           timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["starttls"], "require")
        with open(rss) as f:
            kib = int(f.read().split()[-1])
        self.assertLess(kib, 64 * 1024, "peak RSS %d KiB" % kib)

    def test_help(self):
        r = self.run_tool("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("--check", r.stdout)
        self.assertIn("-q", r.stdout)

    def test_version(self):
        r = self.run_tool("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^smtpout-policy \d+\.\d+\.\d+\n$")

    # ---- -q: batch queries ----

    def batch(self, config, queries, *args):
        r = subprocess.run([TOOL, "--config", config, "-q", "-", *args],
                           cwd=self.dir, input=queries, capture_output=True,
                           text=True, timeout=120)
        return r, [json.loads(line) for line in r.stdout.splitlines()]

    def test_batch_answers_each_query_as_a_single_query_would(self):
        self.write("cfg.ini", TRICKY)
        self.write("maps/policy.map", MAP)
        queries = [("bank.example", None), ("a.bank.example", "x.example"),
                   ("BÜCHER.example", "mx.legacy.example"),
                   ("big.example", "a.hosting.example"), (None, "x.example"),
                   ("plain.example", None)]
        text = "# comment\n\n"
        for d, mx in queries:
            text += "  %s\t%s \r\n" % (d or "-", mx or "")
        r, docs = self.batch("cfg.ini", text)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(docs), len(queries))
        for (d, mx), got in zip(queries, docs):
            args = (["--domain", d] if d else []) + (["--mx", mx] if mx
                                                      else [])
            want = self.query("cfg.ini", *args)
            del want["explain"]
            self.assertEqual(got, want, (d, mx))

    def test_batch_reports_bad_lines_in_place_and_exits_65(self):
        self.write("cfg.ini", SEED_STARTTLS)
        r, docs = self.batch("cfg.ini", "a.example\nbad..example\n"
                             "b.example ☃.net\na b c\n-\n"
                             + "x" * 5000 + "\nlast.example")
        self.assertEqual(r.returncode, 65)
        self.assertEqual(docs[0]["domains"], ["a.example"])
        self.assertEqual(docs[1], {"query": "bad..example", "error":
                                   "the domain is not a valid domain name"})
        self.assertEqual(docs[2]["error"], "the MX is not a valid host name")
        self.assertEqual(docs[3]["error"], "expected DOMAIN [MX]")
        self.assertIn("needs an MX", docs[4]["error"])
        self.assertEqual(docs[5]["error"], "line too long")
        # The last line needs no newline.
        self.assertEqual(docs[6]["domains"], ["last.example"])
        self.assertEqual(len(docs), 7)

    def test_batch_loads_the_configuration_once(self):
        self.write("cfg.ini", "[queue.outbound.tls]\npolicy-map = p.map\n")
        self.write("p.map", "x.example starttls=require\n")
        trace = os.path.join(self.dir, "trace")
        # LeakSanitizer cannot run under ptrace (a sanitizer build).
        env = dict(os.environ, ASAN_OPTIONS=":".join(
            filter(None, [os.environ.get("ASAN_OPTIONS"), "detect_leaks=0"])))
        r = subprocess.run(["strace", "-f", "-e", "trace=openat", "-o",
                            trace, TOOL, "--config", "cfg.ini", "-q", "-"],
                           cwd=self.dir, capture_output=True, text=True,
                           input="x.example\n" * 200, timeout=120, env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout.splitlines()), 200)
        with open(trace) as f:
            opens = f.read()
        self.assertEqual(opens.count('"cfg.ini"'), 1, opens)
        self.assertEqual(opens.count('p.map"'), 1, opens)

    def test_batch_answers_before_the_input_ends(self):
        # A program that writes one query and waits for its answer (a
        # coprocess) gets it while standard input stays open.
        self.write("cfg.ini", SEED_STARTTLS)
        p = subprocess.Popen([TOOL, "--config", "cfg.ini", "-q", "-"],
                             cwd=self.dir, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        try:
            for name in ("one.example", "two.example"):
                p.stdin.write(name + "\n")
                p.stdin.flush()
                doc = json.loads(p.stdout.readline())
                self.assertEqual(doc["domains"], [name])
        finally:
            p.stdin.close()
            self.assertEqual(p.wait(timeout=60), 0)
            p.stdout.close()

    def test_batch_from_a_file_and_bad_usage(self):
        self.write("cfg.ini", SEED_STARTTLS)
        self.write("q.txt", "a.example\n")
        r = self.run_tool("--config", "cfg.ini", "-q", "q.txt")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["starttls"], "require")
        r = self.run_tool("--config", "cfg.ini", "-q", "missing.txt")
        self.assertEqual(r.returncode, 66)
        self.assertIn("missing.txt", r.stderr)
        for extra in (["--domain", "a.example"], ["--mx", "m.example"],
                      ["--check"]):
            r = self.run_tool("--config", "cfg.ini", "-q", "-", *extra)
            self.assertEqual(r.returncode, 64, extra)


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from testlib import main
    TOOL = os.path.join(os.environ.get("SMTPOUT_BUILD", "build"), "examples",
                        "tools", "smtpout-policy")
    main()
