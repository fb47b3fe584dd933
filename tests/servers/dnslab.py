#!/usr/bin/python3
"""The DNS lab: DNSSEC-signed zones on nsd behind a validating unbound, on
loopback, for the route/DANE tests (wave2-design section 7).

    with DnsLab(tmpdir) as lab:
        lab.resolver        # "127.0.0.1:PORT": the validating unbound
        lab.anchor          # the trust anchor (DS of "test.") as a file
        lab.client_config   # an unbound.conf for libunbound clients
                            # (the local-zone line; the anchor apart)
        lab.pki             # tests/certs/mkdane.sh's output
        lab.query("mx1.secure.test", "A")   # -> Answer (rcode, flags, ...)

Zones (everything under the RFC 6761 name "test."):

  test.           signed; the trust anchor; delegates the three below
  secure.test.    signed, DS in test.:
                    @ MX 10 mx1, MX 20 mx2
                    mx1  A, DANE-EE "3 1 1" of the self-signed leaf "ee"
                    mx2  A, DANE-TA "2 1 1" of the CA ("mx2" chain)
                    mxalias CNAME mx1        alias CNAME secure.test.
                    cnamemx MX 10 mxalias    (an MX name that is a CNAME)
                    pkix  MX 10 mxpkix; mxpkix A, TLSA "1 1 1" only
                          (PKIX-EE: no usable record for SMTP)
                    nullmx  MX 0 .           implicit  A only (no MX)
                    dual A + AAAA            _mta-sts, _smtp._tls TXT
                    mta-sts A (the MTA-STS policy host)
                    big  16 TXT records: over 1232 octets, so the
                         answer comes truncated over UDP, whole over TCP
  insecure.test.  unsigned (no DS: insecure), MX mx, TLSA that a client
                  must ignore
  bogus.test.     signed, but test. holds the DS of another key: every
                  answer below it is bogus (SERVFAIL, EDE 9)

TLSA records are published for every port in `ports` (_25._tcp and
_2525._tcp by default).  Addresses come from `addresses` (host label ->
list of addresses).  `extra_records` adds zone-file lines to a zone
(zone name -> list of lines, signed with the rest); tlsa_records() writes
TLSA lines for the lab's ports.  Keys, certificates and signatures are made fresh in
`workdir` every time; nothing here is secret or committed.

Both daemons listen on ports picked at start (other tests run at the same
time), die with the process that started them (PR_SET_PDEATHSIG), and are
stopped by stop()/the context manager.  Run it alone to keep a lab up:

    /usr/bin/python3 tests/servers/dnslab.py DIR
    -> prints "RESOLVER 127.0.0.1:PORT" and "ANCHOR DIR/anchor.ds", runs
       until interrupted
"""
import ctypes
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MKDANE = os.path.join(HERE, "..", "certs", "mkdane.sh")

TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16,
         "AAAA": 28, "DS": 43, "RRSIG": 46, "DNSKEY": 48, "TLSA": 52}

DEFAULT_ADDRESSES = {
    "mx1": ["127.0.0.1"],
    "mx2": ["127.0.0.1"],
    "implicit": ["127.0.0.1"],
    "dual": ["127.0.0.1", "::1"],
    "mxpkix": ["127.0.0.1"],
    "insecure-mx": ["127.0.0.1"],
    "bogus-mx": ["127.0.0.1"],
    "mta-sts": ["127.0.0.1"],
}


def available():
    """The lab needs nsd, unbound, ldns-keygen/ldns-signzone, certtool and
    danetool."""
    return all(shutil.which(t) for t in (
        "nsd", "unbound", "ldns-keygen", "ldns-signzone", "certtool",
        "danetool"))


def _die_with_parent():
    # prctl(PR_SET_PDEATHSIG, SIGTERM): a crashed test leaves no daemon.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def _free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (DNS needs both)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            t.close()
            u.close()
        return port
    raise RuntimeError("no free port")


# ---- a minimal DNS client, for readiness checks and tests ----

def encode_query(qname, qtype, qid, do=True, cd=False):
    q = struct.pack(">HBBHHHH", qid, 0x01, 0x20 | (0x10 if cd else 0), 1, 0,
                    0, 1)
    for label in qname.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    q += b"\0" + struct.pack(">HH", TYPES[qtype], 1)
    q += b"\0" + struct.pack(">HHIH", 41, 1232, 0x8000 if do else 0, 0)
    return q


class Answer:
    """What tests look at in a response: rcode, AD/TC and the raw
    packet (the C tools parse the rest)."""

    def __init__(self, packet):
        self.packet = packet
        (self.id, f1, f2, self.qdcount, self.ancount, self.nscount,
         self.arcount) = struct.unpack(">HBBHHHH", packet[:12])
        self.tc = bool(f1 & 0x02)
        self.aa = bool(f1 & 0x04)
        self.ad = bool(f2 & 0x20)
        self.rcode = f2 & 0x0F

    def __repr__(self):
        return "Answer(rcode=%d ad=%s an=%d)" % (self.rcode, self.ad,
                                                self.ancount)


def query(server, port, qname, qtype, timeout=5.0, do=True, cd=False):
    """One UDP query; returns an Answer or raises OSError/socket.timeout."""
    qid = random.randrange(65536)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.connect((server, port))
        s.send(encode_query(qname, qtype, qid, do, cd))
        while True:
            pkt = s.recv(65535)
            if len(pkt) >= 12 and struct.unpack(">H", pkt[:2])[0] == qid:
                return Answer(pkt)
    finally:
        s.close()


# ---- the lab ----

class DnsLab:
    def __init__(self, workdir, ports=(25, 2525), addresses=None, pki=None,
                 ede=True, extra_records=None):
        self.dir = os.path.abspath(workdir)
        # A dict, or a function of the lab returning one (called once the
        # PKI exists, for records that carry TLSA data).
        self.extra_records = extra_records or {}
        # unbound's RFC 8914 extended errors on SERVFAIL (tests turn them
        # off to see a client tell bogus without them).
        self.ede = ede
        self.ports = tuple(ports)
        self.addresses = dict(DEFAULT_ADDRESSES)
        self.addresses.update(addresses or {})
        self.pki = pki
        self.nsd = self.unbound = None
        self.port = self.nsd_port = None
        self.resolver = None
        self.anchor = os.path.join(self.dir, "anchor.ds")
        self.client_config = os.path.join(self.dir, "client.conf")
        self.keys = {}

    # -- zones --

    def _run(self, argv, cwd=None):
        p = subprocess.run(argv, cwd=cwd or self.zones, capture_output=True,
                           text=True)
        if p.returncode != 0:
            raise RuntimeError("%s failed: %s%s" % (argv[0], p.stdout,
                                                    p.stderr))
        return p.stdout

    def _keygen(self, zone):
        base = self._run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k",
                          zone]).strip()
        with open(os.path.join(self.zones, base + ".ds")) as f:
            ds = f.read().strip()
        return base, ds

    def tlsa(self, cert, usage, selector, mtype):
        """The association data of NAME.tlsa (mkdane.sh) for U S M."""
        with open(os.path.join(self.pki, cert + ".tlsa")) as f:
            for line in f:
                u, s, m, data = line.split()
                if (int(s), int(m)) == (selector, mtype):
                    return "%d %d %d %s" % (usage, selector, mtype, data)
        raise KeyError((cert, selector, mtype))

    def _addr_records(self, label, key):
        out = []
        for a in self.addresses.get(key, []):
            out.append("%s A %s" % (label, a) if ":" not in a
                       else "%s AAAA %s" % (label, a))
        return out

    def _tlsa_records(self, label, rdata):
        return ["_%d._tcp.%s TLSA %s" % (p, label, rdata)
                for p in self.ports]

    def tlsa_records(self, label, cert, usage, selector=1, mtype=1):
        """Zone lines publishing the TLSA record U S M of `cert` (a name
        of mkdane.sh's PKI) for host `label`, at every port of the lab."""
        return self._tlsa_records(label,
                                  self.tlsa(cert, usage, selector, mtype))

    def _write_zone(self, zone, records):
        head = ["$ORIGIN %s." % zone, "$TTL 300",
                "@ SOA ns.test. hostmaster.%s. 1 3600 600 86400 300" % zone,
                "@ NS ns.test."]
        path = os.path.join(self.zones, zone + ".zone")
        with open(path, "w") as f:
            f.write("\n".join(head + records) + "\n")
        return path

    def _sign(self, zone, path, key):
        # NSEC3 with no extra iterations (RFC 9276).
        self._run(["ldns-signzone", "-n", "-t", "0", "-f", path + ".signed",
                   path, key])
        return path + ".signed"

    def _make_zones(self):
        os.makedirs(self.zones, exist_ok=True)
        if self.pki is None:
            self.pki = os.path.join(self.dir, "pki")
            subprocess.run(["bash", MKDANE, self.pki], check=True,
                           capture_output=True)
        ee = self.tlsa("ee", 3, 1, 1)
        ta = self.tlsa("ca", 2, 1, 1)
        pkix_ee = self.tlsa("ee", 1, 1, 1)
        secure = (
            ["@ MX 10 mx1", "@ MX 20 mx2"]
            + self._addr_records("mx1", "mx1") + self._tlsa_records("mx1", ee)
            + self._addr_records("mx2", "mx2") + self._tlsa_records("mx2", ta)
            + ["mxalias CNAME mx1", "alias CNAME secure.test.",
               "cnamemx MX 10 mxalias", "nullmx MX 0 .",
               "pkix MX 10 mxpkix"]
            + self._addr_records("mxpkix", "mxpkix")
            + self._tlsa_records("mxpkix", pkix_ee)
            + self._addr_records("implicit", "implicit")
            + self._addr_records("dual", "dual")
            + self._addr_records("mta-sts", "mta-sts")
            + ['_mta-sts TXT "v=STSv1; id=20240101T000000;"',
               '_smtp._tls TXT "v=TLSRPTv1; " "rua=mailto:tlsrpt@secure.test"']
            + ['big TXT "%02d %s"' % (i, "x" * 200) for i in range(16)])
        insecure = (["@ MX 10 mx"] + self._addr_records("mx", "insecure-mx")
                    + self._tlsa_records("mx", ee))
        bogus = (["@ MX 10 mx"] + self._addr_records("mx", "bogus-mx")
                 + self._tlsa_records("mx", ee))
        extra = self.extra_records
        if callable(extra):
            # Records that need the PKI (TLSA data) are made once it exists.
            extra = extra(self)
        secure += extra.get("secure.test", [])
        insecure += extra.get("insecure.test", [])
        bogus += extra.get("bogus.test", [])
        files = {}
        sec_key, sec_ds = self._keygen("secure.test")
        bog_key, _ = self._keygen("bogus.test")
        # bogus.test's parent publishes the DS of a key bogus.test never
        # signs with.
        _, decoy_ds = self._keygen("bogus.test")
        files["secure.test"] = self._sign(
            "secure.test", self._write_zone("secure.test", secure), sec_key)
        files["bogus.test"] = self._sign(
            "bogus.test", self._write_zone("bogus.test", bogus), bog_key)
        files["insecure.test"] = self._write_zone("insecure.test", insecure)
        test_key, test_ds = self._keygen("test")
        top = ["ns A 127.0.0.1",
               "secure NS ns.test.", "insecure NS ns.test.",
               "bogus NS ns.test.", sec_ds, decoy_ds]
        files["test"] = self._sign("test", self._write_zone("test", top),
                                   test_key)
        with open(self.anchor, "w") as f:
            f.write(test_ds + "\n")
        return files

    # -- daemons --

    def _start_nsd(self, files):
        self.nsd_port = _free_port()
        conf = os.path.join(self.dir, "nsd.conf")
        lines = ["server:",
                 '  ip-address: 127.0.0.1@%d' % self.nsd_port,
                 '  username: ""',
                 '  chroot: ""',
                 '  database: ""',
                 "  zonesdir: %s" % self.zones,
                 "  zonelistfile: %s/zone.list" % self.dir,
                 "  xfrdfile: %s/xfrd.state" % self.dir,
                 "  xfrdir: %s" % self.dir,
                 "  pidfile: %s/nsd.pid" % self.dir,
                 "  logfile: %s/nsd.log" % self.dir,
                 "  server-count: 1",
                 "  do-ip6: no",
                 "remote-control:",
                 "  control-enable: no"]
        for zone, path in files.items():
            lines += ["zone:", "  name: %s" % zone, "  zonefile: %s" % path]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        log = open(os.path.join(self.dir, "nsd.out"), "w")
        self.nsd = subprocess.Popen(["nsd", "-d", "-c", conf], stdout=log,
                                    stderr=subprocess.STDOUT,
                                    preexec_fn=_die_with_parent)
        log.close()
        self._wait(self.nsd, self.nsd_port, "test", "SOA", "nsd")

    def _start_unbound(self):
        self.port = _free_port()
        conf = os.path.join(self.dir, "unbound.conf")
        stubs = []
        # Every zone of the lab goes to nsd: the delegations name
        # ns.test, whose address has no port.
        for zone in ("test", "secure.test", "insecure.test", "bogus.test"):
            stubs += ["stub-zone:", '  name: "%s."' % zone,
                      "  stub-addr: 127.0.0.1@%d" % self.nsd_port]
        lines = ["server:",
                 "  interface: 127.0.0.1@%d" % self.port,
                 "  port: %d" % self.port,
                 "  do-ip6: no",
                 "  do-daemonize: no",
                 '  username: ""',
                 '  chroot: ""',
                 "  directory: %s" % self.dir,
                 '  pidfile: "%s/unbound.pid"' % self.dir,
                 "  use-syslog: no",
                 "  num-threads: 1",
                 "  so-reuseport: no",
                 "  do-not-query-localhost: no",
                 # unbound refuses RFC 6761 "test." by default: every
                 # answer was NXDOMAIN until this line (wave2-design 7).
                 '  local-zone: "test." nodefault',
                 "  trust-anchor-file: %s" % self.anchor,
                 "  ede: %s" % ("yes" if self.ede else "no"),
                 "  val-log-level: 2",
                 "  qname-minimisation: no",
                 "  access-control: 127.0.0.0/8 allow",
                 "remote-control:",
                 "  control-enable: no"] + stubs
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        log = open(os.path.join(self.dir, "unbound.log"), "w")
        self.unbound = subprocess.Popen(["unbound", "-d", "-c", conf],
                                        stdout=log, stderr=subprocess.STDOUT,
                                        preexec_fn=_die_with_parent)
        log.close()
        self._wait(self.unbound, self.port, "secure.test", "SOA", "unbound")
        self.resolver = "127.0.0.1:%d" % self.port
        # For libunbound (in-process validation) pointed at this lab; the
        # trust anchor is given apart (self.anchor), so that a test can
        # give another.
        with open(self.client_config, "w") as f:
            f.write('server:\n  local-zone: "test." nodefault\n'
                    "  do-not-query-localhost: no\n")

    def _wait(self, proc, port, qname, qtype, what):
        deadline = time.monotonic() + 30  # a safety net, not a measure
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("%s exited: %s" % (what, self._log(what)))
            try:
                a = query("127.0.0.1", port, qname, qtype, timeout=0.5)
                if a.rcode == 0:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("%s did not answer: %s" % (what, self._log(what)))

    def _log(self, what):
        name = "nsd.out" if what == "nsd" else "unbound.log"
        try:
            with open(os.path.join(self.dir, name)) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def start(self):
        os.makedirs(self.dir, exist_ok=True)
        self.zones = os.path.join(self.dir, "zones")
        files = self._make_zones()
        # A port another test took between the probe and the bind: retry.
        for attempt in range(5):
            try:
                self._start_nsd(files)
                self._start_unbound()
                return self
            except RuntimeError:
                self.stop()
                if attempt == 4:
                    raise
        return self

    def stop(self):
        for attr in ("unbound", "nsd"):
            p = getattr(self, attr)
            if p is None:
                continue
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
            setattr(self, attr, None)

    def query(self, qname, qtype, **kw):
        return query("127.0.0.1", self.port, qname, qtype, **kw)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def main():
    if len(sys.argv) != 2:
        print("usage: dnslab.py DIR", file=sys.stderr)
        return 64
    lab = DnsLab(sys.argv[1]).start()
    print("RESOLVER %s" % lab.resolver)
    print("ANCHOR %s" % lab.anchor)
    print("CLIENT-CONFIG %s" % lab.client_config)
    sys.stdout.flush()
    try:
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        signal.pause()
    except KeyboardInterrupt:
        pass
    finally:
        lab.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
