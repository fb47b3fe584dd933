"""Shared helpers for the integration tests (run with Debian's
/usr/bin/python3).  They start real servers on loopback, run the tools the
build produced, and read what the servers stored.

Environment (set by meson):
  SMTPOUT_BUILD   the build directory
  SMTPOUT_SOURCE  the source directory
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

BUILD = os.environ.get("SMTPOUT_BUILD", "build")
SOURCE = os.environ.get("SMTPOUT_SOURCE", ".")
PYTHON = "/usr/bin/python3"
SEND = os.path.join(BUILD, "examples", "smtpout-send")

EX_OK, EX_USAGE, EX_UNAVAILABLE, EX_TEMPFAIL, EX_CONFIG = 0, 64, 69, 75, 78


def canonical(body: bytes) -> bytes:
    """What a server must store for `body`: every line end CRLF, a final
    CRLF when the last line has none (dot-stuffing undone by the server)."""
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", body)
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


class ServerProcess:
    """A server child that prints "PORT <n>" when it listens."""

    def __init__(self, argv, cwd=None, env=None, startup=20):
        self.argv = argv
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, cwd=cwd,
                                     env=env)
        self.port = None
        deadline = time.monotonic() + startup
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.match(rb"PORT (\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.stop()
            raise RuntimeError("server did not start: %r: %s" % (
                argv, self.proc.stderr.read().decode(errors="replace")))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def aiosmtpd(spool, rejects=(), tls=None, smtputf8=False,
             tls_max_version=None):
    argv = [PYTHON, os.path.join(SOURCE, "tests", "servers",
                                 "aiosmtpd-sink.py"), "--spool", spool]
    if tls_max_version:
        argv += ["--tls-max-version", tls_max_version]
    for addr, reply in rejects:
        argv += ["--reject", "%s=%s" % (addr, reply)]
    if tls:
        argv += ["--tls-cert", tls[0], "--tls-key", tls[1]]
    if smtputf8:
        argv.append("--smtputf8")
    return ServerProcess(argv)


CERTTOOL = shutil.which("certtool") or "/usr/bin/certtool"


def _certtool(args, template=None, cwd=None):
    argv = [CERTTOOL, "--no-text"] + list(args)
    if template is not None:
        tmpl = os.path.join(cwd, ".template")
        with open(tmpl, "w") as f:
            f.write(template)
        argv += ["--template", tmpl]
    try:
        subprocess.run(argv, cwd=cwd, check=True, capture_output=True,
                       timeout=60)
    finally:
        if template is not None:
            os.unlink(tmpl)


def make_test_ca(outdir, server_name="mx.test.example", label="test"):
    """Makes a test CA and a server certificate signed by it, with certtool
    and ECDSA keys (fast), in `outdir`.  Returns a dict of paths: "ca"
    (ca.pem), "cert" and "key" (valid.pem, valid.key, for `server_name`).

    The file names are those of tests/certs/mkcerts.sh, so callers keep
    working when this is switched to that script.  Nothing is committed:
    every run makes fresh keys.  Call it twice with distinct directories for
    a CA that did not sign the server's certificate."""
    os.makedirs(outdir, exist_ok=True)
    for key in ("ca.key", "valid.key"):
        _certtool(["--generate-privkey", "--key-type", "ecdsa",
                   "--outfile", key], cwd=outdir)
    _certtool(["--generate-self-signed", "--load-privkey", "ca.key",
               "--outfile", "ca.pem"],
              template='cn = "smtpout %s CA"\nca\ncert_signing_key\n'
                       "expiration_days = 30\n" % label, cwd=outdir)
    _certtool(["--generate-certificate", "--load-privkey", "valid.key",
               "--load-ca-certificate", "ca.pem",
               "--load-ca-privkey", "ca.key", "--outfile", "valid.pem"],
              template='cn = "%s"\ndns_name = "%s"\ntls_www_server\n'
                       "signing_key\nexpiration_days = 30\n"
                       % (server_name, server_name), cwd=outdir)
    return {"ca": os.path.join(outdir, "ca.pem"),
            "cert": os.path.join(outdir, "valid.pem"),
            "key": os.path.join(outdir, "valid.key")}


SMTP_SINK = "/usr/sbin/smtp-sink"


class SmtpSink:
    """Postfix's smtp-sink on a loopback port, dumping every message it
    receives into its own file under `dumpdir` (-d), so a test can count
    and check them.  smtp-sink is C and handles thousands of concurrent
    sessions; -m raises its default cap of 256.  As root it must drop
    privileges (-u nobody), so the dump directory is world-writable."""

    def __init__(self, dumpdir, max_sessions=2048, extra=()):
        os.makedirs(dumpdir, exist_ok=True)
        self.dumpdir = dumpdir
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        argv = [SMTP_SINK, "-m", str(max_sessions)]
        if os.geteuid() == 0:
            os.chmod(dumpdir, 0o1777)
            argv += ["-u", "nobody"]
        argv += list(extra) + ["-d", os.path.join(dumpdir, "msg."),
                               "127.0.0.1:%d" % self.port, "4096"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20  # a safety net, not a measurement
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("smtp-sink exited: %s" %
                                   self.proc.stderr.read().decode())
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("smtp-sink did not start")

    def messages(self):
        """[(headers dict of lists, raw bytes)] of every dumped message."""
        out = []
        for name in os.listdir(self.dumpdir):
            with open(os.path.join(self.dumpdir, name), "rb") as f:
                raw = f.read()
            head = raw.split(b"\n\n", 1)[0].decode("utf-8", "replace")
            hdrs = {}
            for line in head.splitlines():
                if line[:1] in (" ", "\t") or ":" not in line:
                    continue
                k, v = line.split(":", 1)
                hdrs.setdefault(k.lower(), []).append(v.strip())
            out.append((hdrs, raw))
        return out

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stderr.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def spool_messages(spool):
    """[(meta dict, content bytes)] in arrival order."""
    out = []
    names = sorted((f for f in os.listdir(spool) if f.endswith(".json")),
                   key=lambda f: int(f.split(".")[0]))
    for name in names:
        base = os.path.join(spool, name[:-5])
        with open(base + ".json") as f:
            meta = json.load(f)
        with open(base + ".eml", "rb") as f:
            out.append((meta, f.read()))
    return out


def send(args, data=None, timeout=120):
    """Runs smtpout-send --json; returns (exit status, parsed JSON or None,
    stderr)."""
    argv = [SEND] + list(args)
    if "--json" not in argv:
        argv.append("--json")
    p = subprocess.run(argv, input=data, capture_output=True,
                       timeout=timeout)
    doc = None
    if p.stdout.strip():
        doc = json.loads(p.stdout)
    return p.returncode, doc, p.stderr.decode(errors="replace")


def by_address(doc):
    return {r["address"]: r for r in doc["recipients"]}


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="smtpout-test-")
        # Servers that drop privileges (Postfix) must reach their files.
        os.chmod(self.tmp, 0o755)

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, *parts):
        p = os.path.join(self.tmp, *parts)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def write(self, name, data, mode="wb"):
        p = self.path(name)
        with open(p, mode) as f:
            f.write(data)
        return p

    def spool(self, name="spool"):
        p = os.path.join(self.tmp, name)
        os.makedirs(p, exist_ok=True)
        return p


class _TapResult(unittest.TestResult):
    """Reports each test as a TAP line, so meson counts test cases."""

    def __init__(self):
        super().__init__()
        self.n = 0

    def _line(self, ok, test, extra=""):
        self.n += 1
        print("%s %d - %s%s" % ("ok" if ok else "not ok", self.n,
                                test.id().split(".", 1)[-1], extra),
              flush=True)

    def _diag(self, text):
        for line in text.splitlines():
            print("# " + line, flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test)
        self._diag(self.failures[-1][1])

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test)
        self._diag(self.errors[-1][1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, " # SKIP " + reason)


def main():
    """Runs the calling module's tests, printing TAP."""
    import __main__
    suite = unittest.defaultTestLoader.loadTestsFromModule(__main__)
    print("1..%d" % suite.countTestCases(), flush=True)
    result = _TapResult()
    suite.run(result)
    raise SystemExit(0 if result.wasSuccessful() else 1)
