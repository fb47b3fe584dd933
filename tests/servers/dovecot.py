"""A private Dovecot that only authenticates, for Postfix's smtpd AUTH.

Postfix's smtpd has no SASL of its own: with `smtpd_sasl_type = dovecot` it
asks Dovecot's auth service over a UNIX socket, and offers the mechanisms
Dovecot names.  This instance has its own configuration, run and state
directories and log under a temporary directory, no mail protocols
(`protocols = none`) and one passwd-file of test users; nothing from
/etc/dovecot is read, no system service is touched.  Dovecot's master
must start as root (it runs its auth service as the "dovecot" user that
the dovecot-core package creates): without root, or without dovecot-core,
the tests that need it are skipped.

    with Dovecot(tmpdir, {"alice": "wonderland"}) as dv:
        with Postfix(tmpdir2, tls=(cert, key),
                     main_cf=dv.postfix_main_cf()) as pf:
            ... AUTH PLAIN / LOGIN / SCRAM-SHA-256 at 127.0.0.1:pf.port ...

Passwords are stored as SCRAM-SHA-256 keys (RFC 5802's StoredKey and
ServerKey, Dovecot's "{SCRAM-SHA-256}iterations,salt,StoredKey,ServerKey"
scheme), computed here with the iteration count asked for: Dovecot
announces that count in its SCRAM server-first message, so a test can make
a real server send a hostile one.  Dovecot checks PLAIN and LOGIN
passwords against the same keys.
"""
import base64
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import time

MECHANISMS = ("plain", "login", "scram-sha-256")


def available():
    return os.geteuid() == 0 and shutil.which("dovecot") is not None


def _running(pid):
    """Whether `pid` runs: a daemon's parent is init, which may take
    seconds to reap it, and a zombie has stopped."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def scram_sha256_entry(password, iterations, salt=None):
    """Dovecot's {SCRAM-SHA-256} password entry for `password`."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt,
                                 iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return "{SCRAM-SHA-256}%d,%s,%s,%s" % (iterations, b64(salt),
                                          b64(stored_key), b64(server_key))


class Dovecot:
    def __init__(self, root, users, mechanisms=MECHANISMS,
                 scram_iterations=4096):
        self.root = root
        self.users = dict(users)
        self.mechanisms = mechanisms
        self.scram_iterations = scram_iterations
        # Postfix's smtpd (running as Postfix's mail_owner) connects here.
        self.socket = os.path.join(root, "sock", "auth")
        self.pid = None

    def _path(self, *parts):
        return os.path.join(self.root, *parts)

    def start(self):
        for d in ("run", "state", "sock"):
            os.makedirs(self._path(d), exist_ok=True)
        os.chmod(self._path("sock"), 0o755)
        with open(self._path("users"), "w") as f:
            for user, password in self.users.items():
                f.write("%s:%s\n" % (user, scram_sha256_entry(
                    password, self.scram_iterations)))
        # Dovecot's auth process reads the users file as "dovecot".
        os.chmod(self._path("users"), 0o644)
        conf = """\
protocols = none
base_dir = {run}
state_dir = {state}
log_path = {log}
ssl = no
# smtpd allows AUTH only after STARTTLS (smtpd_tls_auth_only): it, not
# Dovecot, sees the TLS layer.
disable_plaintext_auth = no
auth_mechanisms = {mechs}
# Which user authenticated with which mechanism, never a password.
auth_verbose = yes
auth_verbose_passwords = no
# Tests try wrong passwords on purpose: answer them at once.
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home=/nonexistent
}}
service auth {{
  unix_listener {socket} {{
    mode = 0666
  }}
}}
""".format(run=self._path("run"), state=self._path("state"),
           log=self._path("dovecot.log"), mechs=" ".join(self.mechanisms),
           users=self._path("users"), socket=self.socket)
        with open(self._path("dovecot.conf"), "w") as f:
            f.write(conf)
        # Into a file, not a pipe: the daemon keeps the descriptors it
        # was started with, and a pipe would never see its end.
        with open(self._path("start.log"), "w+") as out:
            rc = subprocess.run(["dovecot", "-c", self._path("dovecot.conf")],
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT).returncode
            out.seek(0)
            if rc != 0:
                raise RuntimeError("dovecot start failed: %s%s" % (
                    out.read(), self.log()))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with open(self._path("run", "master.pid")) as f:
                    self.pid = int(f.read().split()[0])
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.socket)
                s.close()
                return self
            except (OSError, ValueError):
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("dovecot did not listen on %s: %s" % (
            self.socket, self.log()))

    def stop(self):
        """Stops the master and its children (the master leads their
        process group) and waits for the master.  Dovecot's auth process
        lingers about five seconds after SIGTERM, and the master waits for
        it: after two seconds the group gets SIGKILL.  Nothing of this
        instance outlives it."""
        if self.pid is None:
            return
        for sig, wait in ((signal.SIGTERM, 2), (signal.SIGKILL, 30)):
            try:
                os.killpg(self.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and _running(self.pid):
                time.sleep(0.05)
            if not _running(self.pid):
                break
        self.pid = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            with open(self._path("dovecot.log"), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def postfix_main_cf(self):
        """The main.cf lines that make a Postfix smtpd offer AUTH through
        this Dovecot, only after STARTTLS, with every mechanism Dovecot
        has (plaintext ones included: they run under TLS)."""
        return [
            "smtpd_sasl_auth_enable = yes",
            "smtpd_sasl_type = dovecot",
            "smtpd_sasl_path = %s" % self.socket,
            "smtpd_tls_auth_only = yes",
            "smtpd_sasl_security_options = noanonymous",
            "smtpd_sasl_tls_security_options = noanonymous",
            # "sasl_method=PLAIN, sasl_username=alice" in the log.
            "smtpd_sasl_authenticated_header = no",
        ]
