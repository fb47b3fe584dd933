"""The Python package as a user installs it, with nothing of the build
tree in the environment:

- `pip install ./examples/python` into a fresh venv, offline (in a network
  namespace with no interface up, when we may make one): the in-tree
  build backend needs nothing from an index;
- that package finds an installed libsmtpout.so.0 through ldconfig's cache
  with no environment variable: the library is installed (meson install
  into a DESTDIR) and, in a private mount namespace, the DESTDIR's
  /usr/local is mounted over /usr/local and a cache made by ldconfig over
  /etc/ld.so.cache — `meson install && ldconfig` without touching the
  machine;
- `meson install` with -Dpython=true puts the package where Debian's
  Python finds it, and that package loads the library installed with it;
- SMTPOUT_LIBRARY still overrides.

Each then delivers a message with send() and aio.send()."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import (PYTHON, SOURCE, TempDirTest, aiosmtpd,  # noqa: E402
                     main, spool_messages)

SOURCE_ABS = os.path.abspath(SOURCE)
PYDIR = os.path.join(SOURCE_ABS, "examples", "python")
PREFIX = "/usr/local"

# Run by each installed copy: where it came from, which library it
# loaded, and what two deliveries gave.
CLIENT = r'''
import asyncio, json, os, sys
import smtpout, smtpout.aio
port = int(sys.argv[1])
message = b"Subject: installed\r\n\r\nHello.\r\n"
r1 = smtpout.send(("127.0.0.1", port), None, "s@test.example",
                  ["a@test.example"], message)
r2 = asyncio.run(smtpout.aio.send(("127.0.0.1", port), None,
                                  "s@test.example", ["b@test.example"],
                                  message))
print(json.dumps({
    "package": smtpout.__file__,
    "library": [l.split()[-1] for l in open("/proc/self/maps")
                if "libsmtpout" in l][0],
    "environment": sorted(k for k in os.environ if "SMTPOUT" in k or
                          k.startswith("LD_") or k == "PYTHONPATH"),
    "status": [str(r1.recipients[0].status), str(r2.recipients[0].status)],
    "version": [smtpout.__version__, smtpout.library_version()],
}))
'''


def project_version():
    with open(os.path.join(SOURCE_ABS, "meson.build")) as f:
        import re
        return re.search(r"version: '([^']+)'", f.read()).group(1)


def can_unshare():
    try:
        return subprocess.run(["unshare", "-m", "-n", "true"],
                              capture_output=True).returncode == 0
    except OSError:
        return False


class InstallTest(unittest.TestCase):
    """One venv, one installed tree, shared by the tests."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smtpout-install-")
        os.chmod(cls.tmp, 0o755)
        cls.venv = os.path.join(cls.tmp, "venv")
        subprocess.run([PYTHON, "-m", "venv", cls.venv], check=True,
                       capture_output=True)
        cls.src_before = cls.listing()
        pip = [os.path.join(cls.venv, "bin", "pip"), "install", "--no-index",
               "--no-cache-dir", "--disable-pip-version-check", PYDIR]
        cls.offline = can_unshare()
        if cls.offline:
            pip = ["unshare", "-n"] + pip  # no network at all
        cls.pip = subprocess.run(pip, capture_output=True, cwd=cls.tmp,
                                 env=dict(os.environ, PIP_NO_INDEX="1"))
        cls.site = subprocess.run(
            [os.path.join(cls.venv, "bin", "python"), "-c",
             "import sysconfig; print(sysconfig.get_path('purelib'))"],
            capture_output=True, check=True).stdout.decode().strip()
        cls.installed = None  # the DESTDIR of the meson install, made once

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @staticmethod
    def listing():
        out = []
        for root, dirs, files in os.walk(PYDIR):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            out += [os.path.join(root, f) for f in files]
        return sorted(out)

    def meson_install(self):
        """A build of this tree with -Dpython=true, installed under
        /usr/local into a DESTDIR; returns the DESTDIR."""
        cls = type(self)
        if cls.installed is None:
            build = os.path.join(cls.tmp, "build")
            dest = os.path.join(cls.tmp, "dest")
            for argv in (["meson", "setup", build, SOURCE_ABS,
                          "--prefix", PREFIX, "-Dpython=true",
                          "-Dpython-interpreter=" + PYTHON, "-Dtests=false"],
                         ["ninja", "-C", build],
                         ["meson", "install", "-C", build, "--no-rebuild",
                          "--quiet", "--destdir", dest]):
                p = subprocess.run(argv, capture_output=True)
                self.assertEqual(p.returncode, 0, "%s\n%s%s" % (
                    " ".join(argv), p.stdout.decode(), p.stderr.decode()))
            cls.installed = dest
        return cls.installed

    def libdir(self, dest):
        found = [root for root, _, files in os.walk(dest)
                 if "libsmtpout.so.0" in files]
        self.assertEqual(len(found), 1, found)
        return found[0][len(dest):]

    def deliver(self, argv, env=None, namespace_setup=None):
        """Runs CLIENT with `argv` (an interpreter) against a fresh
        server, with only PATH in the environment plus `env`; inside a
        private mount namespace after `namespace_setup` (shell) if
        given.  Returns the client's report."""
        client = os.path.join(self.tmp, "client.py")
        with open(client, "w") as f:
            f.write(CLIENT)
        spool = tempfile.mkdtemp(dir=self.tmp)
        with aiosmtpd(spool) as srv:
            cmd = argv + [client, str(srv.port)]
            full_env = {"PATH": "/usr/bin:/bin"}
            full_env.update(env or {})
            if namespace_setup is not None:
                script = namespace_setup + '\nexec env -i %s "$@"' % " ".join(
                    "%s=%s" % kv for kv in full_env.items())
                cmd = ["unshare", "-m", "bash", "-ec", script, "-"] + cmd
                full_env = dict(os.environ)
            p = subprocess.run(cmd, capture_output=True, env=full_env,
                               cwd="/", timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        report = json.loads(p.stdout)
        self.assertEqual(report["status"], ["delivered", "delivered"])
        self.assertEqual(len(spool_messages(spool)), 2)
        self.assertEqual(report["version"], [project_version()] * 2)
        return report

    def overlay(self, dest):
        """Shell lines that make DESTDIR/usr/local the /usr/local of a
        private mount namespace, with ldconfig's cache made for it."""
        cache = os.path.join(self.tmp, "ld.so.cache")
        return ("mount --bind %s%s %s\n"
                "ldconfig -X -C %s\n"
                "mount --bind %s /etc/ld.so.cache\n" % (
                    dest, PREFIX, PREFIX, cache, cache))

    # -- the tests -----------------------------------------------------

    def test_pip_installs_offline_into_a_venv(self):
        p = self.pip
        self.assertEqual(p.returncode, 0, p.stdout.decode() +
                         p.stderr.decode())
        self.assertIn("Successfully installed smtpout-" + project_version(),
                      p.stdout.decode())
        pkg = os.path.join(self.site, "smtpout")
        src = sorted(f for f in os.listdir(os.path.join(PYDIR, "smtpout"))
                     if f.endswith(".py") or f == "py.typed")
        got = sorted(f for f in os.listdir(pkg) if f != "__pycache__")
        self.assertEqual(got, src)
        self.assertIn("py.typed", got)
        # Building wrote nothing into the source tree.
        self.assertEqual(self.listing(), self.src_before)
        if not self.offline:
            self.skipTest("installed with --no-index only: cannot make a "
                          "network namespace here")

    def test_meson_installs_the_package_beside_the_library(self):
        dest = self.meson_install()
        site = [d for d in json.loads(subprocess.run(
            [PYTHON, "-c", "import json, site; "
             "print(json.dumps(site.getsitepackages()))"],
            capture_output=True, check=True).stdout)
            if d.startswith(PREFIX + "/")]
        pkgs = [d for d in site if os.path.isdir(dest + d + "/smtpout")]
        self.assertEqual(len(pkgs), 1, (site, "not where %s looks" % PYTHON))
        pkg = dest + pkgs[0] + "/smtpout"
        src = sorted(f for f in os.listdir(os.path.join(PYDIR, "smtpout"))
                     if f.endswith(".py") or f == "py.typed")
        self.assertEqual(sorted(f for f in os.listdir(pkg)
                                if f != "__pycache__"),
                         sorted(src + ["_installed.py"]))
        with open(pkg + "/_installed.py") as f:
            self.assertIn('LIBDIR = "%s"' % self.libdir(dest), f.read())

    def test_installed_library_found_through_ldconfig(self):
        self.assertEqual(self.pip.returncode, 0)
        if not can_unshare():
            self.skipTest("needs a private mount namespace (root)")
        dest = self.meson_install()
        report = self.deliver([os.path.join(self.venv, "bin", "python")],
                              namespace_setup=self.overlay(dest))
        self.assertEqual(report["environment"], [])
        self.assertTrue(report["package"].startswith(self.site))
        self.assertEqual(report["library"], os.path.join(
            self.libdir(dest), "libsmtpout.so.%s" % project_version()))

    def test_meson_installed_package_loads_its_own_library(self):
        if not can_unshare():
            self.skipTest("needs a private mount namespace (root)")
        dest = self.meson_install()
        # Without the ldconfig cache: the package's record finds it.
        setup = "mount --bind %s%s %s\n" % (dest, PREFIX, PREFIX)
        report = self.deliver([PYTHON], namespace_setup=setup)
        self.assertEqual(report["environment"], [])
        self.assertTrue(report["package"].startswith(PREFIX + "/lib/"))
        self.assertEqual(report["library"], os.path.join(
            self.libdir(dest), "libsmtpout.so.%s" % project_version()))

    def test_library_found_by_its_soname_on_the_linker_path(self):
        # No root needed: LD_LIBRARY_PATH is the dynamic linker's search,
        # not the binding's variable.
        self.assertEqual(self.pip.returncode, 0)
        dest = self.meson_install()
        libdir = dest + self.libdir(dest)
        report = self.deliver([os.path.join(self.venv, "bin", "python")],
                              env={"LD_LIBRARY_PATH": libdir})
        self.assertEqual(report["library"], os.path.join(
            libdir, "libsmtpout.so.%s" % project_version()))

    def test_smtpout_library_overrides(self):
        self.assertEqual(self.pip.returncode, 0)
        lib = os.environ["SMTPOUT_LIBRARY"]
        report = self.deliver([os.path.join(self.venv, "bin", "python")],
                              env={"SMTPOUT_LIBRARY": lib})
        self.assertEqual(report["library"], os.path.realpath(lib))
        bad = subprocess.run(
            [os.path.join(self.venv, "bin", "python"), "-c",
             "import smtpout"], capture_output=True,
            env={"PATH": "/usr/bin:/bin",
                 "SMTPOUT_LIBRARY": os.path.join(self.tmp, "nonexistent.so")})
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("nonexistent.so", bad.stderr.decode())

    def test_library_missing_says_what_to_do(self):
        self.assertEqual(self.pip.returncode, 0)
        p = subprocess.run([os.path.join(self.venv, "bin", "python"), "-c",
                            "import smtpout"], capture_output=True,
                           env={"PATH": "/usr/bin:/bin"}, cwd="/")
        if p.returncode == 0:
            self.skipTest("libsmtpout.so.0 is installed on this machine")
        err = p.stderr.decode()
        self.assertIn("ImportError: cannot load the smtpout C library", err)
        self.assertIn("SMTPOUT_LIBRARY", err)


class TypesTest(TempDirTest):
    """A type checker reads the installed package's hints (py.typed): the
    documentation's programs check clean, a wrong call does not."""

    def test_type_checker_reads_the_installed_hints(self):
        mypy = shutil.which("mypy")
        if mypy is None:
            self.skipTest("mypy is not installed")
        venv = self.path("venv")
        subprocess.run([PYTHON, "-m", "venv", venv], check=True,
                       capture_output=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install",
                        "--no-index", "--disable-pip-version-check", PYDIR],
                       check=True, capture_output=True)
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from test_python_docs import programs
        files = []
        for page in ("docs/python.md", "README.md"):
            for line, code, _ in programs(page):
                files.append(self.write("block_%d_%d.py" % (len(files),
                                                            line),
                                        code.encode()))
        self.assertGreaterEqual(len(files), 8)
        wrong = self.write("wrong.py", b"import smtpout\n"
                           b"r = smtpout.send('h', None, 's@x', ['r@x'], b'x')\n"
                           b"r.tls.verified + ''\n"
                           b"smtpout.Config().timeout(object())\n")

        def check(paths):
            return subprocess.run(
                [mypy, "--python-executable", os.path.join(venv, "bin",
                                                           "python"),
                 "--no-incremental", "--cache-dir", self.path("cache")] +
                paths, capture_output=True, cwd=self.tmp, env=dict(
                    os.environ, MYPYPATH=""))
        ok = check(files)
        self.assertEqual(ok.returncode, 0, ok.stdout.decode())
        bad = check([wrong]).stdout.decode()
        self.assertIn('Unsupported operand types for + ("bool" and "str")',
                      bad)
        self.assertIn('"timeout" of "Config" has incompatible type', bad)


class BackendTest(TempDirTest):
    """The in-tree build backend, called as pip calls it."""

    def backend(self, code):
        env = dict(os.environ, PYTHONPATH=os.path.join(PYDIR,
                                                       "build-backend"))
        p = subprocess.run([PYTHON, "-c", "import smtpout_build as b\n" +
                            code], capture_output=True, env=env,
                           cwd=self.tmp)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return p.stdout.decode().strip()

    def test_wheel_and_sdist_are_complete_and_reproducible(self):
        import zipfile
        import tarfile
        names = []
        for n in range(2):
            out = self.path("out%d" % n)
            os.makedirs(out)
            whl = self.backend("print(b.build_wheel(%r))" % out)
            sdist = self.backend("print(b.build_sdist(%r))" % out)
            names.append((whl, sdist))
            with open(os.path.join(out, whl), "rb") as f:
                if n == 0:
                    first = f.read()
                else:
                    self.assertEqual(f.read(), first)  # reproducible
        self.assertEqual(names[0], ("smtpout-%s-py3-none-any.whl" %
                                    project_version(),
                                    "smtpout-%s.tar.gz" % project_version()))
        with zipfile.ZipFile(self.path("out0", names[0][0])) as z:
            files = z.namelist()
            record = z.read("smtpout-%s.dist-info/RECORD" %
                            project_version()).decode()
        self.assertIn("smtpout/py.typed", files)
        self.assertIn("smtpout/aio.py", files)
        for name in files:
            self.assertIn(name + ",", record)
        with tarfile.open(self.path("out0", names[0][1])) as t:
            members = t.getnames()
        self.assertIn("smtpout-%s/build-backend/smtpout_build.py" %
                      project_version(), members)
        self.assertIn("smtpout-%s/PKG-INFO" % project_version(), members)

    def test_pyproject_reader_without_tomllib_agrees(self):
        # Pythons before 3.11 have no tomllib: the backend's own reader
        # must read the same [project] strings.
        got = json.loads(self.backend(
            "import json, tomllib\n"
            "p = tomllib.load(open(b.ROOT + '/pyproject.toml', 'rb'))\n"
            "flat = {k: v for k, v in p['project'].items()"
            " if isinstance(v, str)}\n"
            "print(json.dumps([flat, b._read_project_table("
            "b.ROOT + '/pyproject.toml')]))"))
        self.assertEqual(got[0], got[1])
        self.assertEqual(got[0]["name"], "smtpout")


if __name__ == "__main__":
    main()
