"""The MTA-STS part of the test lab: certificates for policy hosts and the
HTTPS policy server (tests/servers/sts-https.py)."""
import json
import os
import subprocess

import testlib


def _certtool(*args):
    subprocess.run(["certtool"] + list(args), check=True,
                   capture_output=True)


def leaf(outdir, name, issuer, dns_names):
    """A TLS server certificate for `dns_names` issued by ISSUER of
    `outdir` (ISSUER.pem, ISSUER.key): returns (chain, key)."""
    return _leaf(outdir, name, issuer, dns_names)


def _leaf(outdir, name, issuer, dns_names):
    """NAME.pem, NAME.key, NAME-chain.pem: a TLS server leaf for
    `dns_names`, signed by ISSUER (ca or other-ca of mkcerts.sh)."""
    key = os.path.join(outdir, name + ".key")
    pem = os.path.join(outdir, name + ".pem")
    tmpl = os.path.join(outdir, "." + name + ".tmpl")
    _certtool("--generate-privkey", "--key-type", "ecdsa", "--curve",
              "secp256r1", "--outfile", key)
    with open(tmpl, "w") as f:
        f.write('cn = "%s"\n' % dns_names[0])
        for n in dns_names:
            f.write('dns_name = "%s"\n' % n)
        f.write("tls_www_server\nsigning_key\nexpiration_days = 30\n")
    _certtool("--generate-certificate", "--load-privkey", key,
              "--load-ca-certificate", os.path.join(outdir, issuer + ".pem"),
              "--load-ca-privkey", os.path.join(outdir, issuer + ".key"),
              "--template", tmpl, "--outfile", pem)
    os.unlink(tmpl)
    chain = os.path.join(outdir, name + "-chain.pem")
    with open(chain, "w") as out:
        for p in (pem, os.path.join(outdir, issuer + ".pem")):
            with open(p) as f:
                out.write(f.read())
    return chain, key


def sts_pki(outdir, dns_names):
    """The test CAs (tests/certs/mkcerts.sh) and, for the policy hosts
    `dns_names`: "sts" (signed by the trusted CA), "sts-untrusted"
    (the same names, signed by the CA clients do not trust), and
    mkcerts.sh's "wrongname" (trusted, for other.test.example only).
    Returns {"ca": path, "sts": (chain, key), ...}."""
    testlib.make_test_ca(outdir)
    return {
        "ca": os.path.join(outdir, "ca.pem"),
        "sts": _leaf(outdir, "sts", "ca", dns_names),
        "sts-untrusted": _leaf(outdir, "sts-untrusted", "other-ca",
                               dns_names),
        "wrongname": (os.path.join(outdir, "wrongname-chain.pem"),
                      os.path.join(outdir, "wrongname.key")),
    }


class StsHttps(testlib.ServerProcess):
    """tests/servers/sts-https.py on 127.0.0.1, a free port."""

    def __init__(self, workdir, hosts, cert, bind="127.0.0.1", port=0):
        self.hosts_path = os.path.join(workdir, "sts-hosts.json")
        self.log_path = os.path.join(workdir, "sts-fetches.log")
        self.set_hosts(hosts)
        super().__init__([testlib.PYTHON,
                          os.path.join(testlib.SOURCE, "tests", "servers",
                                       "sts-https.py"),
                          "--hosts", self.hosts_path, "--cert", cert[0],
                          "--key", cert[1], "--log", self.log_path,
                          "--bind", bind, "--port", str(port)])

    def set_hosts(self, hosts):
        """Replaces the answers (the server reads the file again)."""
        tmp = self.hosts_path + ".new"
        with open(tmp, "w") as f:
            json.dump(hosts, f)
        os.replace(tmp, self.hosts_path)

    def fetches(self, host=None):
        """The requests logged so far (of `host` only, when given)."""
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path) as f:
            out = [json.loads(line) for line in f]
        return [r for r in out if host is None or r["host"] == host]
