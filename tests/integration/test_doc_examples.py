"""The documentation's examples stay true: every smtpout-policy command in
docs/configuration.md and docs/tools.md is run and prints what the page
shows; every C block of README.md and docs/ that is a complete program
compiles and runs (the README's delivers a message); every program in
examples/ compiles with a plain `cc -std=c11`, as docs/building.md says;
docs/building.md lists every program `meson install` installs."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (BUILD, PYTHON, SANITIZED, SOURCE, TempDirTest,  # noqa
                     main)

TOOLS_DIRS = [os.path.join(BUILD, "examples", "tools"),
              os.path.join(BUILD, "examples", "bench")]


def read_doc(name):
    with open(os.path.join(SOURCE, name), encoding="utf-8") as f:
        return f.read()


def fenced_blocks(md):
    """[(language, text, line number)] of every fenced block."""
    out = []
    for m in re.finditer(r"^```(\w*)\n(.*?)^```$", md, re.S | re.M):
        out.append((m.group(1), m.group(2), md[:m.start()].count("\n") + 1))
    return out


def console_commands(md):
    """[(command, expected output lines, line)] of the "$ " commands of the
    console blocks; a command may continue over lines ending in "\\"."""
    out = []
    for lang, text, line in fenced_blocks(md):
        if lang not in ("console", ""):
            continue
        lines = text.splitlines()
        i = 0
        while i < len(lines):
            if not lines[i].startswith("$ "):
                i += 1
                continue
            cmd = lines[i][2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1] + " " + lines[i].strip()
            i += 1
            expected = []
            while i < len(lines) and not lines[i].startswith("$ "):
                expected.append(lines[i])
                i += 1
            out.append((cmd, expected, line))
    return out


def json_matches(want, got):
    """`want` as the page shows it, where the string "..." stands for any
    value and a "...": "..." member for any further members."""
    if want == "...":
        return True
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return False
        rest = want.get("...") == "..."
        keys = [k for k in want if k != "..."]
        if not rest and set(keys) != set(got):
            return False
        return all(k in got and json_matches(want[k], got[k]) for k in keys)
    if isinstance(want, list):
        return (isinstance(got, list) and len(want) == len(got) and
                all(json_matches(w, g) for w, g in zip(want, got)))
    return want == got


class WorkedExamplesTest(TempDirTest):
    def run_page(self, doc, cwd, at_least):
        env = dict(os.environ,
                   PATH=os.pathsep.join(TOOLS_DIRS + [os.environ["PATH"]]))
        ran = 0
        for cmd, expected, line in console_commands(read_doc(doc)):
            if not re.match(r"(smtpout-policy|printf [^|]*\| *smtpout-policy)"
                            r" ", cmd):
                continue  # needs a live server or event files
            ran += 1
            with self.subTest(doc="%s:%d" % (doc, line), cmd=cmd):
                r = subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env,
                                   capture_output=True, text=True, timeout=60)
                # A batch showing an unanswered query exits 65 (tools.md).
                shows_error = any('"error": ' in e for e in expected)
                self.assertEqual(r.returncode, 65 if shows_error else 0,
                                 r.stderr)
                if expected and expected[0].startswith("{"):
                    self.check_json(expected, r.stdout)
                else:
                    self.assertEqual(r.stdout.splitlines(), expected)
        self.assertGreaterEqual(ran, at_least, "commands run in " + doc)

    def check_json(self, expected, stdout):
        got = [json.loads(line) for line in stdout.splitlines()]
        # One object per output line, or one object wrapped over lines.
        try:
            want = [json.loads(line) for line in expected]
        except ValueError:
            want = [json.loads(" ".join(expected))]
        self.assertEqual(len(got), len(want))
        for w, g in zip(want, got):
            self.assertTrue(json_matches(w, g), "\n%s\n%s" % (w, g))

    def test_configuration_md(self):
        # The worked examples use the files of "A complete example".
        md = read_doc("docs/configuration.md")
        part = md[md.index("## A complete example"):]
        blocks = fenced_blocks(part)
        ini = next(t for lang, t, _ in blocks if lang == "ini")
        mapfile = next(t for lang, t, _ in blocks if lang == "")
        self.write("smtpout.ini", ini, mode="w")
        self.write("tls-policy.map", mapfile, mode="w")
        self.run_page("docs/configuration.md", self.tmp, 3)

    def test_tools_md(self):
        self.run_page("docs/tools.md", SOURCE, 2)


class CProgramsTest(TempDirTest):
    def compile(self, source, name):
        # A program built with plain flags cannot link a sanitizer build's
        # library (its runtime lives in instrumented executables).
        if SANITIZED:
            self.skipTest("needs a build without sanitizers")
        path = self.write(name + ".c", source, mode="w")
        exe = os.path.join(self.tmp, name)
        lib = os.path.join(BUILD, "lib")
        r = subprocess.run(["cc", "-std=c11", "-Wall", "-Wextra", "-Werror",
                            "-I", os.path.join(SOURCE, "include"), path,
                            "-o", exe, "-L", lib, "-lsmtpout",
                            "-Wl,-rpath," + lib],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        return exe

    def test_readme_example_is_deliver_one_c(self):
        readme = [t for lang, t, _ in fenced_blocks(read_doc("README.md"))
                  if lang == "c"]
        self.assertEqual(len(readme), 1)
        with open(os.path.join(SOURCE, "examples", "deliver-one.c")) as f:
            first, rest = f.read().split("\n", 1)
        self.assertTrue(first.startswith("/*"))
        self.assertEqual(readme[0], rest)

    def test_every_complete_c_program_builds_and_runs(self):
        docs = ["README.md"] + sorted(
            "docs/" + f for f in os.listdir(os.path.join(SOURCE, "docs"))
            if f.endswith(".md"))
        n = 0
        for doc in docs:
            for lang, text, line in fenced_blocks(read_doc(doc)):
                if lang != "c" or not re.search(r"\bint main\(", text):
                    continue
                n += 1
                with self.subTest(doc="%s:%d" % (doc, line)):
                    exe = self.compile(text, "prog%d" % n)
                    # Without arguments: a usage line and 64, never a
                    # read of what is not there.
                    r = subprocess.run([exe], capture_output=True,
                                       text=True, timeout=60)
                    self.assertEqual(r.returncode, 64, r.stderr)
                    self.assertIn("usage:", r.stderr)
                    self.assertEqual(r.stdout, "")
        self.assertGreaterEqual(n, 1)

    def test_readme_example_delivers_a_message(self):
        """Run as the README says, against a server on port 25 of a
        network namespace of its own (other tests may hold loopback
        ports; root only)."""
        if shutil.which("unshare") is None or subprocess.run(
                ["unshare", "-n", "true"], capture_output=True).returncode:
            self.skipTest("needs unshare -n (root)")
        block = [t for lang, t, _ in fenced_blocks(read_doc("README.md"))
                 if lang == "c"][0]
        exe = self.compile(block, "readme")
        spool = self.spool()
        script = r"""
ip link set lo up || { echo "cannot bring up lo (ip, iproute2)" >&2; exit 70; }
"$PY" "$SINK" --spool "$SPOOL" --port 25 > "$TMP/sink.out" 2>&1 &
sink=$!
for _ in $(seq 200); do grep -q PORT "$TMP/sink.out" && break; sleep 0.05; done
"$EXE" "$POLICY" 127.0.0.1 sender@example.org rcpt@plain.example
rc=$?
kill $sink
wait $sink 2>/dev/null
exit $rc
"""
        env = dict(os.environ, PY=PYTHON, SPOOL=spool, TMP=self.tmp, EXE=exe,
                   SINK=os.path.join(SOURCE, "tests", "servers",
                                     "aiosmtpd-sink.py"),
                   POLICY=os.path.join(SOURCE, "examples", "policy.ini"))
        r = subprocess.run(["unshare", "-n", "bash", "-c", script], env=env,
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^rcpt@plain\.example: delivered 250 ")
        self.assertEqual(len(os.listdir(spool)), 2)  # .json and .eml

    def test_examples_compile_with_plain_c11(self):
        """docs/building.md: `cc -std=c11 prog.c ...`, no project flags."""
        n = 0
        folders = ["examples", "examples/tools", "examples/bench"]
        # The Redis store example needs hiredis (tests/deps.sh installs it).
        if os.path.exists("/usr/include/hiredis/hiredis.h"):
            folders.append("examples/redis-store")
        for folder in folders:
            for f in sorted(os.listdir(os.path.join(SOURCE, folder))):
                if not f.endswith(".c"):
                    continue
                n += 1
                with self.subTest(file=folder + "/" + f):
                    r = subprocess.run(
                        ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror",
                         "-I", os.path.join(SOURCE, "include"), "-c", "-o",
                         os.devnull, os.path.join(SOURCE, folder, f)],
                        capture_output=True, text=True, timeout=120)
                    self.assertEqual(r.returncode, 0, r.stderr)
        self.assertGreaterEqual(n, 6)


class InstalledFilesTest(TempDirTest):
    def test_building_md_lists_every_installed_program(self):
        r = subprocess.run(["meson", "introspect", BUILD, "--installed"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        installed = json.loads(r.stdout).values()
        programs = sorted(os.path.basename(p) for p in installed
                          if "/bin/" in p)
        pages = sorted(os.path.basename(p) for p in installed
                       if "/man1/" in p)
        self.assertIn("smtpout-send", programs)
        self.assertEqual(pages, sorted(p + ".1" for p in programs))
        building = read_doc("docs/building.md")
        row = next(line for line in building.splitlines()
                   if line.startswith("| `BINDIR/"))
        listed = sorted(re.findall(r"`(?:BINDIR/)?(smtpout-[a-z]+)`", row))
        self.assertEqual(listed, programs)


if __name__ == "__main__":
    main()
