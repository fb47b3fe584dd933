#!/usr/bin/python3
"""An ESMTP sink that treats STARTTLS as Postfix's smtpd does, for the
integration tests of how hosts acknowledge what they read.

Python's ssl (OpenSSL) writes two TLS 1.3 session tickets right after the
handshake, as Postfix does, and the socket keeps Nagle's algorithm (no
TCP_NODELAY), as Postfix's does: the reply to an EHLO that arrived with
the client's Finished stays in the server's kernel until the client has
acknowledged the tickets.  Replies to pipelined commands are written
together once no complete command is left to read (Postfix's flush).

Listens on 127.0.0.1 (an ephemeral port), prints "PORT <n>", and accepts
every message; no spool.

    nagle-sink.py --tls-cert CHAIN --tls-key KEY
"""
import argparse
import socket
import ssl
import sys
import threading

EHLO = ("250-nagle-sink.test.example\r\n250-PIPELINING\r\n"
        "250-8BITMIME\r\n%s250 ENHANCEDSTATUSCODES\r\n")


class Conn:
    def __init__(self, sock, ctx):
        self.sock = sock
        self.ctx = ctx
        self.buf = b""
        self.out = []
        self.tls = False

    def line(self):
        """The next complete line, or None after end of file."""
        while b"\r\n" not in self.buf:
            if self.out:
                self.flush()
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, text):
        self.out.append(text.encode())

    def flush(self):
        self.sock.sendall(b"".join(self.out))
        self.out = []

    def data(self):
        while True:
            line = self.line()
            if line is None or line == b".":
                return line

    def run(self):
        self.reply("220 nagle-sink.test.example ESMTP\r\n")
        while True:
            line = self.line()
            if line is None:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                self.reply(EHLO % ("" if self.tls else "250-STARTTLS\r\n"))
            elif verb == b"STAR" and not self.tls:
                self.reply("220 2.0.0 Ready to start TLS\r\n")
                self.flush()
                if self.buf:  # nothing may follow STARTTLS in clear
                    return
                self.sock = self.ctx.wrap_socket(self.sock, server_side=True)
                self.tls = True
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                self.reply("250 2.0.0 Ok\r\n")
            elif verb == b"DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>\r\n")
                if self.data() is None:
                    return
                self.reply("250 2.0.0 Ok: queued\r\n")
            elif verb == b"QUIT":
                self.reply("221 2.0.0 Bye\r\n")
                self.flush()
                return
            else:
                self.reply("502 5.5.2 Error: command not recognized\r\n")


def serve(conn, ctx):
    c = Conn(conn, ctx)
    try:
        c.run()
    except (OSError, ssl.SSLError):
        pass
    finally:
        try:
            c.sock.close()
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tls-cert", required=True)
    ap.add_argument("--tls-key", required=True)
    args = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.tls_cert, args.tls_key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.num_tickets = 2
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(64)
    print("PORT %d" % lsock.getsockname()[1], flush=True)
    while True:
        conn, _ = lsock.accept()
        threading.Thread(target=serve, args=(conn, ctx), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
