"""The manual pages of the installed tools (made from docs/tools.md by
docs/man.py): each one renders with groff and man without a warning, has
the sections a page needs, and names every option its tool's --help
lists."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import BUILD, TempDirTest, main  # noqa: E402

TOOLS = {
    "smtpout-send": os.path.join(BUILD, "examples", "tools", "smtpout-send"),
    "smtpout-policy": os.path.join(BUILD, "examples", "tools",
                                   "smtpout-policy"),
    "smtpout-tlsrpt": os.path.join(BUILD, "examples", "tools",
                                   "smtpout-tlsrpt"),
    "smtpout-bench": os.path.join(BUILD, "examples", "bench",
                                  "smtpout-bench"),
}
# An option word: "--name", or "-x" on its own.
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*|-[a-zA-Z])(?![\w-])")


def page(tool):
    return os.path.join(BUILD, "docs", tool + ".1")


def render(path, width="80"):
    """The page as plain text (no SGR, no overstrike), and groff's
    warnings (-ww: all of them)."""
    r = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-rLL=%sn" % width,
                        "-P-cbou", path], capture_output=True, text=True,
                       timeout=60)
    return r


class ManPagesTest(TempDirTest):
    def test_pages_render_without_warnings(self):
        for tool in TOOLS:
            with self.subTest(tool=tool):
                r = render(page(tool))
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")

    def test_man_reads_each_page(self):
        for tool in TOOLS:
            with self.subTest(tool=tool):
                r = subprocess.run(["man", "-l", page(tool)],
                                   capture_output=True, text=True,
                                   env=dict(os.environ, MANWIDTH="80",
                                            MANPAGER="cat", PAGER="cat"),
                                   timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(r.stderr, "")
                self.assertIn(tool.upper() + "(1)", r.stdout)

    def test_each_page_has_its_sections_and_no_markdown(self):
        for tool in TOOLS:
            with self.subTest(tool=tool):
                out = render(page(tool)).stdout
                for heading in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS",
                                "SEE ALSO"):
                    self.assertRegex(out, r"(?m)^%s$" % heading)
                self.assertRegex(out, r"(?m)^       %s +- +\S" % tool)
                # Markdown left over, or a word hyphenated (U+2010).
                for leftover in ("`", "](", "**", "<!--", "\u2010"):
                    self.assertNotIn(leftover, out)
                others = [t for t in TOOLS if t != tool]
                for other in others:
                    self.assertIn(other + "(1)", out)

    def test_each_page_names_every_option_of_help(self):
        for tool, exe in TOOLS.items():
            with self.subTest(tool=tool):
                r = subprocess.run([exe, "--help"], capture_output=True,
                                   text=True, timeout=60)
                self.assertEqual(r.returncode, 0, r.stderr)
                options = set(OPTION.findall(r.stdout))
                self.assertGreater(len(options), 3, r.stdout)
                shown = set(OPTION.findall(render(page(tool)).stdout))
                self.assertEqual(options - shown, set())

    def test_the_generator_refuses_markdown_it_cannot_render(self):
        man_py = os.path.join(os.environ.get("SMTPOUT_SOURCE", "."), "docs",
                              "man.py")
        head = "## smtpout-x\n\n<!-- man: x -->\n\nDoes x.\n\n```\nx\n```\n\n"
        for bad in ("| a | b | c |\n|---|---|---|\n| 1 | 2 | 3 |\n",
                    "#### deep heading\n", "```\nunterminated\n"):
            with self.subTest(bad=bad):
                src = self.write("t.md", head + bad, mode="w")
                r = subprocess.run(["/usr/bin/python3", man_py, src,
                                    "smtpout-x", "0", self.path("x.1")],
                                   capture_output=True, text=True,
                                   timeout=60)
                self.assertEqual(r.returncode, 65, r.stderr)
        src = self.write("t.md", head, mode="w")
        r = subprocess.run(["/usr/bin/python3", man_py, src, "smtpout-x",
                            "0", self.path("x.1")], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    main()
