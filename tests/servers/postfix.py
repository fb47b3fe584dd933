"""A private Postfix instance on a loopback port, for the integration tests.

Postfix here is always the private copy of Debian's package that
postfix-unpack.sh unpacks into the build tree ($SMTPOUT_POSTFIX_DIR, else
$SMTPOUT_BUILD/postfix), never a system postfix, installed or not: every
machine runs the same thing, and nothing here can touch (or needs) the
machine's own mail server.  Each instance has its own configuration, queue
and maildir under a temporary directory, and main.cf points Postfix at the
private tree for everything it would take from its compiled-in paths
(daemon_directory, command_directory, shlib_directory, meta_directory; its
shared libraries through LD_LIBRARY_PATH, which it passes on to the daemons
it starts).  It accepts mail for test.example into one maildir, can refuse
chosen recipients, can offer STARTTLS with a given certificate, and can
leave EHLO keywords out (discard_ehlo=("8bitmime",): a server without
8BITMIME).  Postfix's master must start as root: without root the tests
that need it are skipped.

    with Postfix(tmpdir, tls=("cert.pem", "key.pem")) as pf:
        ... deliver to 127.0.0.1:pf.port ...
        pf.sessions()   # smtpd's per-connection command counters
        pf.messages()   # delivered messages, Postfix's own headers removed

One instance can also listen on several addresses, each its own MX host
with its own certificate (or without STARTTLS) and its own log name, for
the DNS lab (tests/integration/test_domain_lab.py):

    Postfix(tmpdir, domains=["secure.test"], listeners=[
        Listener("mx1", "127.0.71.1", port, tls=("ee-chain.pem", "ee.key")),
        Listener("notls", "127.0.71.5", port)])
    pf.sessions(name="mx1")   # that listener's connections only

program("smtp-sink") and environment() run the private copy's other
programs.
"""
import os
import re
import shutil
import socket
import subprocess
import time

UNPACK = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                      "postfix-unpack.sh")

# The accounts of base-passwd, present on every Debian machine (Postfix's
# own "postfix" and "postdrop" exist only where the package is installed).
# mail_owner must be an unprivileged account of its own; setgid_group only
# labels the queue's public directories (the private postdrop and
# postqueue are not set-gid); default_privs must differ from both.
MAIL_OWNER = "daemon"
SETGID_GROUP = "mail"
DEFAULT_PRIVS = "nobody"

_root = None


def directory():
    """Where the private copy lives (its tree is directory()/root)."""
    return os.environ.get("SMTPOUT_POSTFIX_DIR") or os.path.join(
        os.environ.get("SMTPOUT_BUILD", "build"), "postfix")


def root():
    """The private Postfix tree, unpacked on first use.  Raises
    RuntimeError with postfix-unpack.sh's one-line reason if it cannot be
    (no network for apt, a library missing)."""
    global _root
    if _root is None:
        p = subprocess.run(["bash", UNPACK, directory()],
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr.strip() or "postfix-unpack.sh failed")
        _root = os.path.join(directory(), "root")
    return _root


def program(name):
    """The path of one of the private copy's programs (smtp-sink, ...)."""
    return os.path.join(root(), "usr", "sbin", name)


def environment():
    """The environment to run the private programs in: their shared
    libraries first (their RUNPATH names the system's /usr/lib/postfix)."""
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.path.join(root(), "usr", "lib", "postfix")
    return env


MASTER_CF = """\
{listen}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
postlog   unix-dgram n  -       n       -       1       postlogd
"""

# Headers Postfix's delivery adds in front of the message.
_ADDED = re.compile(rb"(Return-Path|X-Original-To|Delivered-To|Received):")


def available():
    """Whether a Postfix can run here: its master needs root.  Whether the
    private copy can be unpacked is not asked: a test that needs it fails
    with the reason instead of skipping."""
    return os.geteuid() == 0


class Listener:
    """One smtpd listener of an instance: ADDRESS:PORT, its certificate
    (chain, key) or None for no STARTTLS, and `name`, which its log lines
    carry (syslog_name postfix-NAME)."""

    def __init__(self, name, address, port, tls=None):
        self.name = name
        self.address = address
        self.port = port
        self.tls = tls

    def master_line(self):
        opts = ["-o syslog_name=postfix-%s" % self.name]
        if self.tls:
            opts += ["-o smtpd_tls_security_level=may",
                     "-o smtpd_tls_cert_file=%s" % self.tls[0],
                     "-o smtpd_tls_key_file=%s" % self.tls[1]]
        else:
            opts.append("-o smtpd_tls_security_level=none")
        return "%s:%d inet n - n - - smtpd\n  %s" % (
            self.address, self.port, "\n  ".join(opts))


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Postfix:
    def __init__(self, root, tls=None, rejects=(), smtputf8=True,
                 discard_ehlo=(), main_cf=(), listeners=None,
                 domains=("test.example",), wrappermode=False):
        self.root = root
        # Listeners on addresses of their own instead of 127.0.0.1:PORT.
        self.listeners = list(listeners or [])
        self.domains = list(domains)
        self.tls = tls
        # RFC 8314 implicit TLS (smtpd_tls_wrappermode): TLS before the
        # greeting, on the one smtpd port (needs `tls`).
        self.wrappermode = wrappermode
        self.rejects = rejects
        self.smtputf8 = smtputf8
        self.discard_ehlo = discard_ehlo
        # More main.cf lines, last (so they win): e.g. Dovecot SASL
        # (dovecot.py's postfix_main_cf()).
        self.main_cf = list(main_cf)
        self.port = None

    def _write(self, name, text):
        with open(os.path.join(self.root, "etc", name), "w") as f:
            f.write(text)

    def start(self):
        r = self.root
        for d in ("etc", "queue", "data", "mail"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        shutil.chown(os.path.join(r, "data"), MAIL_OWNER)
        os.chmod(os.path.join(r, "mail"), 0o777)
        self.port = _free_port()
        pf = root()
        lib = os.path.join(pf, "usr", "lib", "postfix")
        main = [
            "compatibility_level = 3.6",
            # Everything from the private tree, nothing from /etc/postfix
            # or /usr/lib/postfix.
            "daemon_directory = %s/sbin" % lib,
            "command_directory = %s/usr/sbin" % pf,
            "shlib_directory = %s" % lib,
            "meta_directory = %s/etc/postfix" % pf,
            "import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ "
            "LANG=C LD_LIBRARY_PATH=%s" % lib,
            "export_environment = TZ MAIL_CONFIG LANG LD_LIBRARY_PATH",
            "queue_directory = %s/queue" % r,
            "data_directory = %s/data" % r,
            "mail_owner = %s" % MAIL_OWNER,
            "setgid_group = %s" % SETGID_GROUP,
            "default_privs = %s" % DEFAULT_PRIVS,
            "myhostname = pf.test.example",
            "mydestination =",
            # Postfix refuses an inet_interfaces address no interface
            # has (127.0.71.1 is loopback, but only 127.0.0.1 is lo's):
            # listeners name their addresses in master.cf instead.
            "inet_interfaces = %s" % (
                "loopback-only" if self.listeners else "127.0.0.1"),
            "inet_protocols = ipv4",
            "mynetworks = 127.0.0.0/8",
            "virtual_mailbox_domains = %s" % " ".join(self.domains),
            "virtual_mailbox_base = %s/mail" % r,
            "virtual_mailbox_maps = static:maildir/",
            "virtual_uid_maps = static:65534",
            "virtual_gid_maps = static:65534",
            "virtual_mailbox_limit = 0",
            "message_size_limit = 104857600",
            "smtpd_recipient_restrictions = check_recipient_access "
            "texthash:%s/etc/access, permit_mynetworks, "
            "reject_unauth_destination" % r,
            # Deliver what arrived, byte for byte: no header rewriting.
            "local_header_rewrite_clients =",
            "always_add_missing_headers = no",
            "smtputf8_enable = %s" % ("yes" if self.smtputf8 else "no"),
            "smtpd_discard_ehlo_keywords = %s" % ", ".join(self.discard_ehlo),
            "maillog_file = %s/maillog" % r,
            "maillog_file_prefixes = %s" % r,
            "smtpd_tls_loglevel = 1",
        ]
        if self.tls:
            main += ["smtpd_tls_security_level = may",
                     "smtpd_tls_cert_file = %s" % self.tls[0],
                     "smtpd_tls_key_file = %s" % self.tls[1]]
        else:
            main.append("smtpd_tls_security_level = none")
        main += self.main_cf
        self._write("main.cf", "\n".join(main) + "\n")
        if self.listeners:
            listen = "\n".join(l.master_line() for l in self.listeners)
        else:
            listen = "127.0.0.1:%d inet n - n - - smtpd" % self.port
            if self.wrappermode:
                listen += (" -o smtpd_tls_wrappermode=yes"
                           " -o smtpd_tls_security_level=encrypt")
        self._write("master.cf", MASTER_CF.format(listen=listen))
        self._write("access", "".join("%s %s\n" % (a, reply)
                                      for a, reply in self.rejects))
        p = subprocess.run([program("postfix"), "-c",
                            os.path.join(r, "etc"), "start"],
                           capture_output=True, text=True, env=environment())
        if p.returncode != 0:
            raise RuntimeError("postfix start failed: %s%s%s" % (
                p.stdout, p.stderr, self.log()))
        deadline = time.monotonic() + 30
        where = ([(l.address, l.port) for l in self.listeners]
                 or [("127.0.0.1", self.port)])
        while where and time.monotonic() < deadline:
            try:
                socket.create_connection(where[0], 1).close()
                where.pop(0)
            except OSError:
                time.sleep(0.05)
        if not where:
            return self
        raise RuntimeError("postfix did not listen on %s:%d" % where[0])

    def master(self):
        """The path of the running master's executable (/proc), which
        shows which Postfix this is."""
        with open(os.path.join(self.root, "data", "master.lock")) as f:
            pid = int(f.read().split()[0])
        return os.readlink("/proc/%d/exe" % pid)

    def stop(self):
        subprocess.run([program("postfix"), "-c",
                        os.path.join(self.root, "etc"), "abort"],
                       capture_output=True, env=environment())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log(self):
        try:
            with open(os.path.join(self.root, "maillog"), "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def sessions(self, count=1, timeout=30, name=None):
        """The command counters of smtpd's first `count` finished
        connections, e.g. {"ehlo": 2, "starttls": 1, "mail": 1, "data": 1}.
        A counter "data": "0/1" means one DATA, refused.  With `name`, the
        connections of that Listener only.  count=0 returns at once."""
        deadline = time.monotonic() + timeout
        tag = r"postfix-%s/" % re.escape(name) if name else ""
        while True:
            found = re.findall(tag + r"smtpd\[\d+\]: disconnect from \S+ "
                               r"(.*)", self.log())
            real = [f for f in found if "commands=0/0" not in f]
            if len(real) >= count or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        out = []
        for line in found:
            counters = {}
            for k, v in re.findall(r"(\w+)=(\S+)", line):
                counters[k] = int(v) if v.isdigit() else v
            # start()'s readiness probe connects and says nothing.
            if counters.get("commands") != "0/0":
                out.append(counters)
        return out

    def messages(self, count, timeout=60):
        """[(recipient, content)] for `count` delivered messages, with the
        headers Postfix adds removed and LF line ends (as stored)."""
        new = os.path.join(self.root, "mail", "maildir", "new")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            files = os.listdir(new) if os.path.isdir(new) else []
            if len(files) >= count:
                break
            time.sleep(0.05)
        out = []
        for name in sorted(files):
            with open(os.path.join(new, name), "rb") as f:
                data = f.read()
            rcpt = re.search(rb"^Delivered-To: (\S+)", data, re.M)
            lines = data.split(b"\n")
            i = 0
            while i < len(lines) and _ADDED.match(lines[i]):
                i += 1
                while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                    i += 1
            out.append((rcpt.group(1).decode() if rcpt else None,
                        b"\n".join(lines[i:])))
        return out

    def postcat(self, queue="hold", count=1, timeout=30):
        """postcat's text of each message waiting in `queue` (a recipient
        access HOLD puts one there): its envelope records, the DSN
        parameters smtpd took among them, header and body."""
        d = os.path.join(self.root, "queue", queue)
        deadline = time.monotonic() + timeout
        names = []
        while time.monotonic() < deadline:
            names = sorted(os.listdir(d)) if os.path.isdir(d) else []
            if len(names) >= count:
                break
            time.sleep(0.05)
        out = []
        for name in names:
            p = subprocess.run([program("postcat"), "-c",
                                os.path.join(self.root, "etc"),
                                os.path.join(d, name)],
                               capture_output=True, text=True,
                               env=environment())
            out.append(p.stdout + p.stderr)
        return out

    def received_with(self):
        """The "with" protocol of each delivered message's Received header
        (ESMTP in clear, ESMTPS over TLS)."""
        new = os.path.join(self.root, "mail", "maildir", "new")
        out = []
        for name in sorted(os.listdir(new)) if os.path.isdir(new) else []:
            with open(os.path.join(new, name), "rb") as f:
                m = re.search(rb"with (E?SMTPS?A?)", f.read())
            out.append(m.group(1).decode() if m else None)
        return out
