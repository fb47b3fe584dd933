"""Shared helpers for the integration tests (run with Debian's
/usr/bin/python3).  They start real servers on loopback, run the tools the
build produced, and read what the servers stored.

Environment (set by meson):
  SMTPOUT_BUILD     the build directory
  SMTPOUT_SOURCE    the source directory
  SMTPOUT_SANITIZE  the build's b_sanitize ("none", "address,undefined")
  SMTPOUT_VALGRIND  "1": run smtpout-send under valgrind memcheck, and fail
                    the test on any error or leak it reports (meson test
                    --setup valgrind; tests/run.sh does)
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "servers"))
import postfix  # noqa: E402

BUILD = os.environ.get("SMTPOUT_BUILD", "build")
SOURCE = os.environ.get("SMTPOUT_SOURCE", ".")
PYTHON = "/usr/bin/python3"
SEND = os.path.join(BUILD, "examples", "tools", "smtpout-send")

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
            self.proc.kill()
            err = self.proc.stderr.read().decode(errors="replace")
            self.stop()
            raise RuntimeError("server did not start: %r: %s" % (argv, err))

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
             tls_max_version=None, eightbitmime=True, size=None,
             auth_users=None):
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
    if not eightbitmime:
        argv.append("--no-8bitmime")
    if size is not None:
        argv += ["--size", str(size)]
    if auth_users is not None:
        argv += ["--auth-users", auth_users]  # a "user:password" file
    return ServerProcess(argv)


FAULTSRV = os.path.join(BUILD, "tests", "faultsrv")
MKCERTS = os.path.join(SOURCE, "tests", "certs", "mkcerts.sh")

_certs_dir = None


def certs():
    """The test PKI (tests/certs/mkcerts.sh), made once per test process:
    ca.pem, other-ca.pem, and NAME.pem / NAME-chain.pem / NAME.key for
    valid, expired, wrongname, untrusted, selfsigned, wildcard."""
    global _certs_dir
    if _certs_dir is None:
        d = tempfile.mkdtemp(prefix="smtpout-certs-")
        os.chmod(d, 0o755)
        subprocess.run(["bash", MKCERTS, d], check=True,
                       capture_output=True)
        import atexit
        atexit.register(shutil.rmtree, d, True)
        _certs_dir = d
    return _certs_dir


def cert(kind):
    """(chain file, key file) of a server certificate kind."""
    d = certs()
    chain = os.path.join(d, kind + "-chain.pem")
    if not os.path.exists(chain):
        chain = os.path.join(d, kind + ".pem")
    return chain, os.path.join(d, kind + ".key")


class FaultServer(ServerProcess):
    """tests/faultsrv with a spool and a log (tests/servers/faultsrv.md)."""

    def __init__(self, workdir, args=(), tls=None):
        self.spool = os.path.join(workdir, "spool")
        self.logfile = os.path.join(workdir, "faultsrv.log")
        argv = [FAULTSRV, "--spool", self.spool, "--log", self.logfile]
        if tls:
            argv += ["--cert", tls[0], "--key", tls[1]]
        super().__init__(argv + list(args))

    def finish(self):
        """Stops the server (it flushes its log) and returns the log."""
        self.stop()
        with open(self.logfile, errors="replace") as f:
            return f.read()

    def messages(self):
        return spool_messages(self.spool) if os.path.isdir(self.spool) \
            else []


def make_test_ca(outdir):
    """The test PKI (tests/certs/mkcerts.sh) in `outdir`, fresh keys every
    call.  Returns the paths most tests need: "ca" (ca.pem), "cert" and
    "key" (valid-chain.pem and valid.key, for mx.test.example) and
    "other_ca" (a CA that signed nothing the servers present)."""
    os.makedirs(outdir, exist_ok=True)
    subprocess.run(["bash", MKCERTS, outdir], check=True,
                   capture_output=True)
    return {"ca": os.path.join(outdir, "ca.pem"),
            "cert": os.path.join(outdir, "valid-chain.pem"),
            "key": os.path.join(outdir, "valid.key"),
            "other_ca": os.path.join(outdir, "other-ca.pem")}


class SmtpSink:
    """Postfix's smtp-sink (the private copy, tests/servers/postfix.py) on
    a loopback port, dumping every message it receives into its own file
    under `dumpdir` (-d), so a test can count and check them.  smtp-sink is
    C and handles thousands of concurrent sessions; -m raises its default
    cap of 256.  As root it must drop privileges (-u nobody), so the dump
    directory is world-writable."""

    def __init__(self, dumpdir, max_sessions=2048, extra=()):
        os.makedirs(dumpdir, exist_ok=True)
        self.dumpdir = dumpdir
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        argv = [postfix.program("smtp-sink"), "-m", str(max_sessions)]
        if os.geteuid() == 0:
            os.chmod(dumpdir, 0o1777)
            argv += ["-u", "nobody"]
        argv += list(extra) + ["-d", os.path.join(dumpdir, "msg."),
                               "127.0.0.1:%d" % self.port, "4096"]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE,
                                     env=postfix.environment())
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


SANITIZED = os.environ.get("SMTPOUT_SANITIZE", "none") not in ("", "none")
VALGRIND = os.environ.get("SMTPOUT_VALGRIND") == "1"
VALGRIND_ERROR = 99  # valgrind's exit status when it found an error or leak
VALGRIND_ARGV = ["valgrind", "--leak-check=full",
                 "--show-leak-kinds=definite,indirect,possible",
                 "--errors-for-leak-kinds=definite,indirect,possible",
                 "--error-exitcode=%d" % VALGRIND_ERROR, "--num-callers=30"]


class Run:
    """One finished process: exit status, output, its own peak resident
    memory (kB, from wait4) and wall time (s)."""

    def __init__(self, rc, stdout, stderr, maxrss_kb, elapsed):
        self.rc, self.stdout, self.stderr = rc, stdout, stderr
        self.maxrss_kb, self.elapsed = maxrss_kb, elapsed


GNU_TIME = "/usr/bin/time"


def run_measured(argv, data=None, timeout=120):
    """Runs argv to completion and measures it.  The peak RSS is the one
    GNU time reports for its child: the child of a process forked from
    Python inherits the high-water mark of Python's own memory (exec keeps
    it), and wait4() here would report that instead.  Past `timeout`
    seconds the child is killed and subprocess.TimeoutExpired raised (a
    safety net: tests assert their own, tighter, bounds)."""
    rss_file = None
    if os.access(GNU_TIME, os.X_OK):
        fd, rss_file = tempfile.mkstemp(prefix="smtpout-rss-")
        os.close(fd)
        argv = [GNU_TIME, "-q", "-f", "%M", "-o", rss_file, "--"] + argv
    try:
        run = _run(argv, data, timeout)
        if rss_file:
            with open(rss_file) as f:
                lines = f.read().split()
            if lines and lines[-1].isdigit():
                run.maxrss_kb = int(lines[-1])
        return run
    finally:
        if rss_file:
            os.unlink(rss_file)


def _run(argv, data, timeout, env=None, stdin=None, stdout=None):
    start = time.monotonic()
    if stdin is None:
        stdin = subprocess.PIPE if data is not None else subprocess.DEVNULL
    p = subprocess.Popen(argv, stdin=stdin,
                         stdout=subprocess.PIPE if stdout is None else stdout,
                         stderr=subprocess.PIPE, env=env)
    out = {"stdout": b""}

    def drain(name, f):
        out[name] = f.read()
        f.close()

    readers = [threading.Thread(target=drain, args=(n, f))
               for n, f in (("stdout", p.stdout), ("stderr", p.stderr))
               if f is not None]
    for t in readers:
        t.start()
    killed = []
    timer = threading.Timer(timeout, lambda: (killed.append(1), p.kill()))
    timer.start()
    if data is not None and p.stdin is not None:
        try:
            p.stdin.write(data)
        except BrokenPipeError:
            pass
        p.stdin.close()
    _, status, ru = os.wait4(p.pid, 0)
    timer.cancel()
    elapsed = time.monotonic() - start
    p.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait
    for t in readers:
        t.join()
    if killed:
        raise subprocess.TimeoutExpired(argv, timeout, out.get("stdout"),
                                        out.get("stderr"))
    return Run(p.returncode, out["stdout"], out["stderr"], ru.ru_maxrss,
               elapsed)


class ValgrindError(AssertionError):
    pass


# The last smtpout-send run of this process (for memory and time checks).
last_run = None


def run_send(args, data=None, timeout=120, wrap=(), env=None, stdin=None,
             stdout=None):
    """Runs smtpout-send with `args` as given (no --json added) and returns
    its Run.  testlib.last_run keeps it.  Under SMTPOUT_VALGRIND=1 it runs
    under memcheck and raises ValgrindError on any error or leak.  `wrap`
    is an argv prefix that runs it inside another program (which must exec
    its arguments), e.g. unshare; `env`, `stdin` and `stdout` (file
    descriptors, such as a pseudo-terminal's) are passed on."""
    global last_run
    argv = [SEND] + list(args)
    vg_log = None
    if VALGRIND:
        fd, vg_log = tempfile.mkstemp(prefix="smtpout-valgrind-",
                                      suffix=".log")
        os.close(fd)
        argv = VALGRIND_ARGV + ["--log-file=" + vg_log] + argv
        timeout *= 5
    argv = list(wrap) + argv
    try:
        if env is None and stdin is None and stdout is None:
            run = run_measured(argv, data, timeout)
        else:
            run = _run(argv, data, timeout, env=env, stdin=stdin,
                       stdout=stdout)
        if vg_log:
            with open(vg_log, errors="replace") as f:
                report = f.read()
            if (run.rc == VALGRIND_ERROR or
                    "ERROR SUMMARY: 0 errors" not in report):
                raise ValgrindError("valgrind found errors in %s:\n%s"
                                    % (" ".join(args), report))
    finally:
        if vg_log:
            os.unlink(vg_log)
    last_run = run
    return run


def send(args, data=None, timeout=120, wrap=()):
    """Runs smtpout-send --json; returns (exit status, parsed JSON or None,
    stderr).  As run_send() otherwise."""
    args = list(args)
    if "--json" not in args:
        args.append("--json")
    run = run_send(args, data, timeout, wrap)
    doc = None
    if run.stdout.strip():
        # Strict UTF-8 first: json.loads(bytes) would let surrogates pass.
        doc = json.loads(run.stdout.decode("utf-8", "strict"))
    return run.rc, doc, run.stderr.decode(errors="replace")


def by_address(doc):
    return {r["address"]: r for r in doc["recipients"]}


# One message to four recipients, two of which the server refuses: the
# scenario run against each real server.
MIXED_REJECTS = [("bad@test.example", "550 5.1.1 no such user"),
                 ("busy@test.example", "450 4.2.1 try later")]
MIXED_ARGS = ["--from", "s@test.example", "--to", "a@test.example",
              "--to", "bad@test.example", "--to", "busy@test.example",
              "--to", "c@test.example"]


def check_mixed_results(test, rc, doc, err):
    """The outcome MIXED_REJECTS must give: a and c delivered, bad bounced
    with its 550, busy deferred with its 450, exit 75."""
    test.assertEqual(rc, EX_TEMPFAIL, err)
    r = by_address(doc)
    test.assertEqual(r["a@test.example"]["status"], "delivered")
    test.assertEqual(r["c@test.example"]["status"], "delivered")
    test.assertEqual(r["bad@test.example"]["status"], "bounced")
    test.assertEqual(r["bad@test.example"]["code"], 550)
    test.assertEqual(r["bad@test.example"]["enhanced"], "5.1.1")
    test.assertEqual(r["busy@test.example"]["status"], "deferred")
    test.assertEqual(r["busy@test.example"]["code"], 450)


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
        self._reported = False
        self._current = None

    def _line(self, ok, test, extra=""):
        if self._reported:
            return  # one TAP line per test, whatever failed in it
        self._reported = True
        self.n += 1
        print("%s %d - %s%s" % ("ok" if ok else "not ok", self.n,
                                test.id().split(".", 1)[-1], extra),
              flush=True)

    def _diag(self, text):
        for line in text.splitlines():
            print("# " + line, flush=True)

    def startTest(self, test):
        super().startTest(test)
        self._sub_failures = []
        self._reported = False
        self._current = test

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._sub_failures.append(
                (subtest, self._exc_info_to_string(err, test)))

    def stopTest(self, test):
        # A test whose subtests failed gets no addSuccess call: report it
        # here (unless addFailure already did), with every failed subtest.
        if self._sub_failures:
            self._line(False, test)
            for subtest, text in self._sub_failures:
                self._diag(subtest.id())
                self._diag(text)
        super().stopTest(test)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test)
        self._diag(self.failures[-1][1])

    def addError(self, test, err):
        super().addError(test, err)
        if test is not self._current:
            self._reported = False  # setUpClass and the like: its own line
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
