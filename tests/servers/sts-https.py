#!/usr/bin/python3
"""An HTTPS server for MTA-STS policies (RFC 8461 section 3.3), for tests.

    sts-https.py --hosts HOSTS.json --cert CHAIN.pem --key KEY.pem
                 [--log FETCHES.log] [--bind 127.0.0.1] [--port 0]

Answers GET /.well-known/mta-sts.txt by the Host header, as HOSTS.json
says for that host; prints "PORT <n>" once it listens (port 0: a free
one).  HOSTS.json maps a host name to how it answers:

    {"mta-sts.good.test": {
        "policy": "version: STSv1\\nmode: enforce\\n...",  body text
        "status": 200,                 HTTP status (default 200)
        "content_type": "text/plain",  null: no Content-Type header
        "size": 70000,                 pad the body with "x" to this size
        "chunked": false,              Transfer-Encoding: chunked
        "location": "https://...",     a Location header (for 3xx)
        "stall": false,                read the request, never answer
        "cert": "F.pem", "key": "K.pem"  the certificate for this name
                                         (SNI; default: --cert/--key)
    }}

The file is read again whenever it changes, so a test can change a policy
between two fetches.  Each request is appended to the --log file as one
JSON line {"host", "sni", "path", "status"} before it is answered, so a
test can count fetches ("no refetch").  A host not in the file gets 404,
a path other than the policy's 404.  TLS 1.2 or later only.

Runs with Debian's /usr/bin/python3 (http.server and ssl, nothing else).
"""
import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

POLICY_PATH = "/.well-known/mta-sts.txt"


class Hosts:
    """HOSTS.json, read again when its modification time changes."""

    def __init__(self, path):
        self.path = path
        self.stamp = None
        self.hosts = {}
        self.lock = threading.Lock()

    def get(self):
        with self.lock:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self.stamp:
                with open(self.path) as f:
                    self.hosts = {k.lower().rstrip("."): v
                                  for k, v in json.load(f).items()}
                self.stamp = stamp
            return self.hosts


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sts-https"

    def log_message(self, fmt, *args):
        pass  # the fetch log is the record

    def record(self, host, status):
        line = json.dumps({"host": host, "sni": self.connection.sni,
                           "path": self.path, "status": status})
        with self.server.log_lock:
            if self.server.log_path:
                with open(self.server.log_path, "a") as f:
                    f.write(line + "\n")

    def do_GET(self):
        host = (self.headers.get("Host") or "").lower()
        if host.startswith("["):
            host = host.split("]")[0] + "]"
        else:
            host = host.split(":")[0]
        host = host.rstrip(".")
        conf = self.server.hosts.get().get(host)
        if conf is None or self.path != POLICY_PATH:
            self.record(host, 404)
            self.answer(404, "text/plain", b"not found\n", None, False)
            return
        status = int(conf.get("status", 200))
        self.record(host, None if conf.get("stall") else status)
        if conf.get("stall"):
            self.stall()
            return
        body = conf.get("policy", "").encode()
        size = conf.get("size")
        if size is not None and size > len(body):
            body += b"x" * (size - len(body))
        self.answer(status, conf.get("content_type", "text/plain"), body,
                    conf.get("location"), bool(conf.get("chunked")))

    def answer(self, status, ctype, body, location, chunked):
        self.send_response(status)
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        if location:
            self.send_header("Location", location)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        if not chunked:
            self.wfile.write(body)
            return
        for i in range(0, len(body), 4096):
            piece = body[i:i + 4096]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def stall(self):
        """Never answers: waits until the client gives up (or a minute)."""
        self.close_connection = True
        self.connection.settimeout(1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if not self.connection.recv(1):
                    return
            except socket.timeout:
                continue
            except OSError:
                return


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, hosts, default_ctx, log_path):
        self.hosts = hosts
        self.default_ctx = default_ctx
        self.log_path = log_path
        self.log_lock = threading.Lock()
        self.contexts = {}
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, Handler)

    def context_for(self, cert, key):
        """A server context per certificate, made once."""
        if (cert, key) not in self.contexts:
            self.contexts[(cert, key)] = make_context(cert, key)
        return self.contexts[(cert, key)]

    def sni(self, sslobj, name, _ctx):
        sslobj.sni = name
        conf = self.hosts.get().get((name or "").lower())
        if conf and conf.get("cert"):
            sslobj.context = self.context_for(conf["cert"], conf["key"])

    def finish_request(self, request, client_address):
        # The TLS handshake runs in the connection's thread: a client that
        # refuses the certificate or never speaks cannot stop the others.
        request.settimeout(30)
        try:
            tls = self.default_ctx.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError):
            return
        if not hasattr(tls, "sni"):
            tls.sni = None  # the client sent no server name
        try:
            super().finish_request(tls, client_address)
        except (OSError, ssl.SSLError):
            pass
        finally:
            try:
                tls.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        pass  # a client hanging up is not a server error


def make_context(cert, key):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    return ctx


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hosts", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--log")
    ap.add_argument("--bind", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    hosts = Hosts(args.hosts)
    hosts.get()  # a broken file fails now, not at the first fetch
    ctx = make_context(args.cert, args.key)
    server = Server((args.bind, args.port), hosts, ctx, args.log)
    ctx.sni_callback = server.sni
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("PORT %d" % server.server_address[1], flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
