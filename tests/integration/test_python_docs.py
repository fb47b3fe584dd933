"""Every Python block of docs/python.md, and the one of README.md, runs as
written: each is a complete program, run with Debian's Python in a
directory holding ca.pem, the page's policy.ini and examples/policy.ini,
against a fresh aiosmtpd that offers STARTTLS with a certificate for
mx.test.example issued by ca.pem, and after it AUTH for app@example.org
(password s3cret).  The port 2525 is the one placeholder
the pages use (docs/python.md says so): it is replaced with the server's.
Where a page shows what a block prints (a ```text block right after it),
the output must be exactly that.  One TAP line per block."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (PYTHON, SOURCE, TempDirTest, aiosmtpd,  # noqa: E402
                     main, make_test_ca, spool_messages)

PYDIR = os.path.abspath(os.path.join(SOURCE, "examples", "python"))
FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)


def blocks(page):
    """[(language, text, line)] of the fenced blocks of a page."""
    with open(os.path.join(SOURCE, page)) as f:
        doc = f.read()
    return [(m.group(1), m.group(2), doc.count("\n", 0, m.start()) + 1)
            for m in FENCE.finditer(doc)]


def programs(page):
    """[(line, code, expected output or None)]: each python block, with
    the text block that follows it before any other code block."""
    out = []
    found = blocks(page)
    for i, (lang, text, line) in enumerate(found):
        if lang != "python":
            continue
        nxt = found[i + 1] if i + 1 < len(found) else None
        expected = nxt[1] if nxt and nxt[0] == "text" else None
        out.append((line, text, expected))
    return out


class DocsBlocksTest(TempDirTest):
    """Filled in below: one test per block."""

    @classmethod
    def setUpClass(cls):
        cls.certdir = tempfile.mkdtemp(prefix="smtpout-docs-certs-")
        cls.certs = make_test_ca(cls.certdir)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.certdir, ignore_errors=True)

    def setUp(self):
        super().setUp()
        ini = [t for lang, t, _ in blocks("docs/python.md") if lang == "ini"]
        self.assertEqual(len(ini), 1, "docs/python.md has one policy.ini")
        self.write("policy.ini", ini[0].encode())
        shutil.copy(self.certs["ca"], self.path("ca.pem"))
        shutil.copy(os.path.join(SOURCE, "examples", "policy.ini"),
                    self.path("examples", "policy.ini"))

    def run_block(self, code, expected, page, line):
        spool = self.spool()
        users = self.write("users", b"app@example.org:s3cret\n")
        with aiosmtpd(spool, tls=(self.certs["cert"], self.certs["key"]),
                      auth_users=users) as srv:
            env = dict(os.environ, PYTHONPATH=PYDIR)
            p = subprocess.run([PYTHON, "-c",
                                code.replace("2525", str(srv.port))],
                               cwd=self.tmp, env=env, capture_output=True,
                               timeout=120)
        where = "%s:%d\n%s" % (page, line, code)
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, where + p.stderr.decode())
        self.assertEqual(p.stderr, b"", where)
        if expected is not None:
            self.assertEqual(out, expected, where)
        self.assertNotRegex(out, r"\b(deferred|bounced)\b", where)
        # Whatever a block delivered went over verified TLS.
        for meta, _ in spool_messages(spool):
            self.assertTrue(meta["tls"], where)
        return out, spool_messages(spool)


def _add_tests():
    n = 0
    for page in ("docs/python.md", "README.md"):
        for line, code, expected in programs(page):
            n += 1

            def test(self, code=code, expected=expected, page=page,
                     line=line):
                out, msgs = self.run_block(code, expected, page, line)
                if page == "README.md":
                    self.assertEqual(out, "delivered True\n")
                    self.assertEqual(len(msgs), 1)
            name = "test_%02d_%s_line_%d" % (
                n, os.path.splitext(os.path.basename(page))[0].lower(), line)
            setattr(DocsBlocksTest, name, test)
    return n


_COUNT = _add_tests()


class PagesTest(unittest.TestCase):
    def test_the_pages_have_the_blocks_this_test_runs(self):
        # A block whose fence is mistyped would silently go untested.
        self.assertGreaterEqual(len(programs("docs/python.md")), 7)
        self.assertEqual(len(programs("README.md")), 1)
        for page in ("docs/python.md", "README.md"):
            with open(os.path.join(SOURCE, page)) as f:
                fences = f.read().count("```python")
            self.assertEqual(fences, len(programs(page)), page)


if __name__ == "__main__":
    main()
