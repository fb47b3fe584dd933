#!/bin/bash
# faultsrv-selftest.sh FAULTSRV MKCERTS -- check that the fault server and the
# test PKI do what the integration tests rely on, with clients nobody here
# wrote: swaks, gnutls-cli, certtool and Python's smtplib/ssl (OpenSSL).
#
# Every check prints "ok" or "FAIL" with what it saw; the script exits 1 if
# any failed.  Nothing is decided by timing: servers run with --max-conns and
# are waited for, clients read until EOF.  Timeouts (timeout(1), socket
# timeouts, the grace a server gets to exit once its client is done) are
# only safety nets against a hung server or a client that never connected.
#
# A client that cannot do what a check asks (swaks without its TLS module,
# a tool missing) fails the whole script at once, in one line, before any
# server starts.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: $0 FAULTSRV MKCERTS" >&2
    exit 64
fi
FAULTSRV=$1
MKCERTS=$2
PYTHON=/usr/bin/python3
# The client the library will use by default (lib/config_int.h): TLS 1.2 and
# 1.3 only, X25519 first.  (This Debian's plain NORMAL still allows TLS 1.0.)
DEFAULT_PRIORITY=NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:+GROUP-SECP521R1:+GROUP-X448:+GROUP-FFDHE2048:+GROUP-FFDHE3072:+GROUP-FFDHE4096:+GROUP-FFDHE6144:+GROUP-FFDHE8192

# ---- the clients can do what is asked of them -----------------------------

# missing WHAT INSTALL: the one line that ends the script.
missing() {
    echo "FAIL - $1 (install $2; tests/deps.sh lists it)"
    echo "# 0 passed, 1 failed"
    exit 1
}
for tool in swaks:swaks gnutls-cli:gnutls-bin certtool:gnutls-bin \
            openssl:openssl; do
    command -v "${tool%%:*}" >/dev/null || missing "no ${tool%%:*}" "${tool#*:}"
done
# swaks speaks STARTTLS only with Net::SSLeay, a mere Recommends of the
# package: without it every swaks --tls check would fail, each after its
# server waited for a client that never came.
swaks --support 2>&1 | grep -q '^=== TLS supported' ||
    missing "swaks cannot do TLS: $(swaks --support 2>&1 | grep TLS | head -1)" \
        libnet-ssleay-perl
"$PYTHON" -c 'import smtplib, ssl' 2>/dev/null ||
    missing "$PYTHON lacks smtplib or ssl" python3

tmp=$(mktemp -d /tmp/faultsrv-selftest.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

passed=0
failed=0
ok() {
    echo "ok   - $1"
    passed=$((passed + 1))
}
not_ok() {
    echo "FAIL - $1"
    failed=$((failed + 1))
}
# show TEXT: indent evidence under a failed check.
show() {
    printf '%s\n' "$1" | sed 's/^/     | /' | head -40
}

# check DESC CMD...: one check that passes when CMD succeeds.
check() {
    local desc=$1 out
    shift
    if out=$("$@" 2>&1); then
        ok "$desc"
    else
        not_ok "$desc"
        show "$out"
    fi
}

# ---- the server --------------------------------------------------------------

# start NAME ARGS...: run faultsrv with a log and a spool in a new directory
# $tmp/N-NAME.XXXXXX.  Sets $dir, $port, $server_pid.  The directory is
# made unique by mktemp: `check` runs start in a subshell, where the count
# does not persist, and a reused directory would hand the PORT line of an
# earlier server to the next client.
servers=0
start() {
    local name=$1
    shift
    servers=$((servers + 1))
    dir=$(mktemp -d "$tmp/$servers-$name.XXXXXX")
    # There before the server opens it: reading it must never fail (set -e),
    # however late the background job gets to its redirections.
    : >"$dir/stdout"
    timeout 60 "$FAULTSRV" --log "$dir/log" --spool "$dir/spool" "$@" \
        >"$dir/stdout" 2>"$dir/stderr" &
    server_pid=$!
    port=
    # Wait for the PORT line; the loop ends early if the server dies.
    for _ in $(seq 200); do
        port=$(sed -n 's/^PORT \([0-9]*\)$/\1/p' "$dir/stdout")
        [ -n "$port" ] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    if [ -z "$port" ]; then
        not_ok "$name: faultsrv $* started"
        show "$(cat "$dir/stderr")"
        exit 1
    fi
}

# finish: wait for the server, which exits by itself after --max-conns
# once its clients are done, as they are when this runs.  A server still
# running a few seconds later waits for a connection its client never made
# (the client failed first): it is stopped and that is the failure, instead
# of a wait for timeout(1).
finish() {
    local rc=0
    for _ in $(seq 200); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$server_pid" 2>/dev/null; then
        not_ok "server of $(basename "$dir") still waits for a client after 10 s; stopped"
        kill "$server_pid" 2>/dev/null || true
    fi
    wait "$server_pid" || rc=$?
    server_pid=
    if [ $rc -ne 0 ]; then
        not_ok "server of $(basename "$dir") exited with status $rc"
        show "$(tail -20 "$dir/log")"
    fi
    # The server writes nothing to stderr unless something is wrong (this
    # also catches sanitizer reports in an ASan/UBSan build).
    if [ -s "$dir/stderr" ]; then
        not_ok "server of $(basename "$dir") wrote to stderr"
        show "$(cat "$dir/stderr")"
    fi
}

# Assertions on the current server's log and spool.
log_has() {
    grep -qF -- "$1" "$dir/log" || { echo "log lacks: $1"; tail -25 "$dir/log"; return 1; }
}
log_lacks() {
    ! grep -F -- "$1" "$dir/log" || { echo "log has: $1"; return 1; }
}
spool_count() {
    find "$dir/spool" -name '*.json' | wc -l
}
spool_is_empty() {
    [ "$(spool_count)" -eq 0 ] || { echo "spool has:"; ls "$dir/spool"; return 1; }
}
# json_is N EXPR: Python expression EXPR about message N's metadata j is true.
json_is() {
    "$PYTHON" - "$dir/spool/$1.json" "$2" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
if not eval(sys.argv[2]):
    sys.exit("%s is false for %s" % (sys.argv[2], json.dumps(j)))
EOF
}

# hex PRINTF-FORMAT: the bytes printf makes of it, in hex.
hex() {
    printf "$1" | od -An -tx1 | tr -d ' \n'
}

# py SCENARIO ARGS...: run a scenario of the Python client against $port.
py() {
    PORT=$port CERTS=$certs SPOOL=$dir/spool "$PYTHON" "$tmp/client.py" "$@"
}

# ---- the Python client -----------------------------------------------------------

cat >"$tmp/client.py" <<'EOF'
import os, smtplib, socket, ssl, sys, threading, time

PORT = int(os.environ["PORT"])
CERTS = os.environ["CERTS"]
SPOOL = os.environ["SPOOL"]
SAFETY = 20     # seconds; a safety net against a hung server, never a verdict


def fail(msg):
    print(msg)
    sys.exit(1)


def expect(cond, msg):
    if not cond:
        fail(msg)


def tls_context():
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.pem"))
    return ctx


class Raw:
    """A byte-exact SMTP client: sends what it is told, shows what it got."""

    def __init__(self):
        self.s = socket.create_connection(("127.0.0.1", PORT), timeout=SAFETY)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data)

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                fail("EOF while reading a reply line; buffered %r" % self.buf)
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, want=None):
        """Reads one (multi-line) reply; checks its first line's code."""
        lines = [self.line()]
        while lines[-1][3:4] == b"-":
            lines.append(self.line())
        if want is not None and not lines[0].startswith(want):
            fail("wanted %r, got %r" % (want, lines))
        return lines

    def rest(self):
        """Everything until the server closes (or resets) the connection."""
        data, self.buf = self.buf, b""
        try:
            while True:
                d = self.s.recv(65536)
                if not d:
                    return data
                data += d
        except ConnectionResetError:
            return data

    def starttls(self, hostname="mx.test.example"):
        expect(self.buf == b"", "bytes after the 220: %r" % self.buf)
        self.s = tls_context().wrap_socket(self.s, server_hostname=hostname)


MSG = (b"From: a@client.example\r\nTo: x@test.example\r\nSubject: selftest\r\n\r\n"
       b"line one\r\n.a line that starts with a dot\r\n..two dots\r\n.\r\nend\r\n")
# ...and as it goes on the wire, dot-stuffed, with the terminator.
WIRE = MSG.replace(b"\r\n.", b"\r\n..") + b".\r\n"

STEPS = [("greeting", None, b"220"),
         ("ehlo", b"EHLO client.example\r\n", b"250"),
         ("mail", b"MAIL FROM:<a@client.example>\r\n", b"250"),
         ("rcpt", b"RCPT TO:<x@test.example>\r\n", b"250"),
         ("data", b"DATA\r\n", b"354"),
         ("eod", WIRE, b"250"),
         ("quit", b"QUIT\r\n", b"221")]
STARTTLS_STEPS = STEPS[:2] + [("starttls", b"STARTTLS\r\n", b"220")]


def phase(mode, ph):
    """--stall PH: nothing comes back once the client shuts its side.
    --close PH: the server closes by itself, answering nothing."""
    r = Raw()
    for name, cmd, code in STARTTLS_STEPS if ph == "starttls" else STEPS:
        if cmd:
            r.send(cmd)
        if name == ph:
            if mode == "stall":
                r.s.shutdown(socket.SHUT_WR)
            rest = r.rest()
            expect(rest == b"", "at %s the server answered %r" % (ph, rest))
            print("no reply at %s, then EOF" % ph)
            return
        r.reply(code)
    fail("no phase " + ph)


def stall_after_tls():
    """--stall ehlo@tls: the EHLO in clear is answered, the one over TLS not."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    r.send(b"STARTTLS\r\n")
    r.reply(b"220")
    r.starttls()
    r.send(b"EHLO client.example\r\n")
    r.s.shutdown(socket.SHUT_WR)
    rest = r.rest()
    expect(rest == b"", "the EHLO over TLS was answered: %r" % rest)


def deliver(tls, sender="a@client.example", rcpts="x@test.example", refused=""):
    """Delivers MSG with smtplib; REFUSED lists recipients that must fail."""
    rcpts = rcpts.split(",")
    c = smtplib.SMTP("127.0.0.1", PORT, timeout=SAFETY)
    if tls == "tls":
        c.starttls(context=tls_context())       # verifies against ca.pem (IP SAN)
    bad = c.sendmail(sender, rcpts, MSG)
    c.quit()
    want = set(refused.split(",")) - {""}
    expect(set(bad) == want, "refused %r, wanted %r" % (bad, want))


def content():
    """The spooled .eml is MSG exactly: dot-unstuffed, CRLF, no terminator."""
    deliver("plain")
    got = open(os.path.join(SPOOL, "1.eml"), "rb").read()
    expect(got == MSG, "spooled %r\nwanted  %r" % (got, MSG))


def bare_lf():
    """Content with a bare LF and a bare CR is kept as sent."""
    r = Raw()
    for name, cmd, code in STEPS[:5]:
        if cmd:
            r.send(cmd)
        r.reply(code)
    r.send(b"a\nb\rc\r\n.\r\n")
    r.reply(b"250")
    got = open(os.path.join(SPOOL, "1.eml"), "rb").read()
    expect(got == b"a\nb\rc\r\n", "spooled %r" % got)


def sni():
    """A STARTTLS session with SNI; the spool records it."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    r.send(b"STARTTLS\r\n")
    r.reply(b"220")
    r.starttls("mx.test.example")
    for name, cmd, code in STEPS[1:]:
        r.send(cmd)
        r.reply(code)


def inject():
    """The injected bytes come in the same segment as the 220: one recv()
    returns both, as in the response-injection attack."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    r.send(b"STARTTLS\r\n")
    expect(r.buf == b"", "bytes before STARTTLS was answered: %r" % r.buf)
    got = r.s.recv(65536)
    want = b"220 2.0.0 Ready to start TLS\r\n250-fake\r\n250 AUTH PLAIN\r\n"
    expect(got == want, "one recv() got %r\nwanted %r" % (got, want))


def starttls_refused(reply):
    """STARTTLS gets REPLY; after a 4xx/5xx the session goes on in clear,
    after a 421 the server closes, garbage is sent verbatim."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    r.send(b"STARTTLS\r\n")
    got = r.line()
    expect(got == reply.encode(), "STARTTLS answered %r, wanted %r" % (got, reply))
    if reply.startswith("421"):
        rest = r.rest()
        expect(rest == b"", "after 421 the server sent %r" % rest)
        return
    r.send(b"MAIL FROM:<a@client.example>\r\n")
    r.reply(b"250")


def pipelined_starttls():
    """A MAIL pipelined behind STARTTLS is discarded, never executed."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    r.send(b"STARTTLS\r\nMAIL FROM:<injected@client.example>\r\n")
    r.reply(b"220")
    r.starttls()
    r.send(b"EHLO client.example\r\n")
    ehlo = r.reply(b"250")
    expect(not any(b"STARTTLS" in l for l in ehlo), "STARTTLS offered over TLS: %r" % ehlo)
    # Had the MAIL been executed, this would be a nested MAIL (503).
    r.send(b"MAIL FROM:<a@client.example>\r\n")
    r.reply(b"250")


def bdat():
    """--chunking: CHUNKING offered; two chunks, the second LAST, pipelined
    with MAIL, RCPT and QUIT; the content spooled as it was sent (a line
    starting with a dot is not unstuffed); a chunk without recipients read
    and refused."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    ehlo = r.reply(b"250")
    expect(b"250-CHUNKING" in ehlo or b"250 CHUNKING" in ehlo,
           "no CHUNKING: %r" % ehlo)
    one, two = b"Subject: c\r\n\r\n.dot", b" stays\r\n..two\r\n"
    r.send(b"MAIL FROM:<a@client.example>\r\nRCPT TO:<b@test.example>\r\n"
           b"BDAT %d\r\n%sBDAT %d LAST\r\n%s" % (len(one), one, len(two), two))
    r.reply(b"250")
    r.reply(b"250")
    r.reply(b"250")
    r.reply(b"250")
    got = open(os.path.join(SPOOL, "1.eml"), "rb").read()
    expect(got == one + two, "spooled %r" % got)
    r.send(b"MAIL FROM:<a@client.example>\r\nRCPT TO:<nobody@test.example>"
           b"\r\nBDAT 5 LAST\r\nhelloQUIT\r\n")
    r.reply(b"250")
    r.reply()
    r.reply(b"554")
    r.reply(b"221")


def early_clienthello():
    """A client that sends its ClientHello before the dripped 220 is whole."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    r.send(b"STARTTLS\r\n")
    expect(r.s.recv(1) == b"2", "no 220")
    r.s = tls_context().wrap_socket(r.s, server_hostname="mx.test.example",
                                    do_handshake_on_connect=False)
    try:
        r.s.do_handshake()      # fails: the rest of the 220 is not TLS
    except (ssl.SSLError, OSError) as e:
        print("client saw %r" % e)


def reoffer():
    """--reoffer-starttls: STARTTLS advertised again, and refused with 503."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    r.send(b"STARTTLS\r\n")
    r.reply(b"220")
    r.starttls()
    r.send(b"EHLO client.example\r\n")
    ehlo = r.reply(b"250")
    expect(any(l.endswith(b"STARTTLS") for l in ehlo), "not re-offered: %r" % ehlo)
    r.send(b"STARTTLS\r\n")
    r.reply(b"503")


def drop(mode, transport):
    """--drop-in-data: the message never completes, and the connection ends
    the way --drop-mode says.  Over TLS, Python is told not to hide a missing
    close_notify; it cannot tell a reset from an EOF there, so "rst" is
    checked in plaintext."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    if transport == "tls":
        r.send(b"STARTTLS\r\n")
        r.reply(b"220")
        ctx = tls_context()
        # Debian's Python 3.11.2 sets this by default, which makes an EOF
        # without close_notify look like a clean close.
        ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
        r.s = ctx.wrap_socket(r.s, server_hostname="mx.test.example",
                              suppress_ragged_eofs=False)
        r.send(b"EHLO client.example\r\n")
        r.reply(b"250")
    for name, cmd, code in STEPS[2:5]:
        r.send(cmd)
        r.reply(code)
    try:
        r.send(b"x" * 100000 + b"\r\n.\r\n")
        got = r.s.recv(65536)
        e = None
    except (OSError, ssl.SSLError) as err:
        e = err
    print("client saw %r" % (e if e is not None else got))
    if mode == "close" and transport == "tls":
        expect(isinstance(e, ssl.SSLError) and "UNEXPECTED_EOF" in str(e).upper(),
               "wanted an EOF without close_notify")
    elif mode == "close":
        expect(e is None and got == b"", "wanted EOF")
    elif mode == "alert":
        expect(isinstance(e, ssl.SSLError) and "ALERT_INTERNAL_ERROR" in str(e),
               "wanted a fatal internal_error alert")
    elif mode == "rst" and transport == "plain":
        expect(isinstance(e, ConnectionResetError), "wanted a reset")
    else:
        expect(e is not None or got == b"", "the connection went on")


def endless(kind, pid=None):
    """An endless reply: 1 MiB of it, and it never ends.  With the server's
    PID, its peak resident size must stay small: the reply is generated as it
    drains, never accumulated."""
    r = Raw()
    if kind == "multiline":
        r.reply(b"220")
        r.send(b"EHLO client.example\r\n")
    data = b""
    while len(data) < 1 << 20:
        d = r.s.recv(65536)
        expect(d, "EOF after %d bytes" % len(data))
        data += d
    if kind == "multiline":
        lines = data.split(b"\r\n")[:-1]
        expect(all(l.startswith(b"250-") for l in lines), "a line ends the reply")
        print("%d lines, all 250-" % len(lines))
    else:
        expect(data.startswith(b"220 ") and b"\n" not in data, "the line ended")
        print("one line of %d bytes so far" % len(data))
    if pid is not None:
        status = open("/proc/%s/status" % pid).read()
        hwm = int(status.split("VmHWM:")[1].split()[0])
        print("server VmHWM %d kB" % hwm)
        expect(hwm < 16384, "the server grew to %d kB" % hwm)


def drip(ms):
    """--drip greeting:MS: the greeting arrives whole, and no faster than one
    byte per MS (a lower bound, which load cannot break)."""
    r = Raw()
    t0 = time.monotonic()
    data, recvs = b"", 0
    while not data.endswith(b"\r\n"):
        data += r.s.recv(65536)
        recvs += 1
    took = time.monotonic() - t0
    expect(data == b"220 mx.test.example ESMTP faultsrv\r\n", "got %r" % data)
    expect(took >= (len(data) - 1) * int(ms) / 1000 * 0.99, "too fast: %.3fs" % took)
    print("%d bytes in %d recv() calls over %.2fs" % (len(data), recvs, took))


def first_bytes(want_hex):
    """What the server sends before the client says anything, up to the
    length of the wanted bytes."""
    want = bytes.fromhex(want_hex)
    r = Raw()
    data = b""
    while len(data) < len(want):
        d = r.s.recv(65536)
        if not d:
            break
        data += d
    expect(data == want, "got %r\nwanted %r" % (data, want))


def reply_to(cmd, want_hex):
    """The exact bytes answering CMD after EHLO (and MAIL, for RCPT)."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    if cmd.startswith("RCPT"):
        r.send(b"MAIL FROM:<a@client.example>\r\n")
        r.reply(b"250")
    r.send(cmd.encode() + b"\r\n")
    want = bytes.fromhex(want_hex)
    data = r.buf
    while len(data) < len(want):
        data += r.s.recv(65536)
    expect(data == want, "got %r\nwanted %r" % (data, want))


def ehlo_lines(*want):
    """The EHLO reply, line by line."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    got = [l.decode() for l in r.reply()]
    expect(got == list(want), "got %r\nwanted %r" % (got, list(want)))


def toggles():
    """--no-enhanced --size 1000: codes without x.y.z, SIZE enforced."""
    r = Raw()
    r.reply(b"220")
    r.send(b"EHLO client.example\r\n")
    r.reply(b"250")
    r.send(b"MAIL FROM:<a@client.example> SIZE=2000\r\n")
    got = r.reply()
    expect(got == [b"552 Message size exceeds fixed limit"], "got %r" % got)
    r.send(b"MAIL FROM:<a@client.example> SIZE=999\r\n")
    got = r.reply()
    expect(got == [b"250 Ok"], "got %r" % got)


def overlong():
    """A command line over the limit gets 500; the session goes on."""
    r = Raw()
    r.reply(b"220")
    r.send(b"NOOP " + b"x" * 5000 + b"\r\n")
    r.reply(b"500 5.5.2")
    r.send(b"NOOP\r\n")
    r.reply(b"250")


def concurrent(n):
    """N STARTTLS deliveries at once, each verified against ca.pem."""
    errors = []

    def one(i):
        try:
            c = smtplib.SMTP("127.0.0.1", PORT, timeout=SAFETY)
            c.starttls(context=tls_context())
            c.sendmail("a@client.example", ["r%d@test.example" % i], MSG)
            c.quit()
        except Exception as e:      # reported below
            errors.append("%d: %r" % (i, e))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(int(n))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    expect(not errors, "\n".join(errors))


globals()[sys.argv[1]](*sys.argv[2:])
EOF

# ---- the checks ------------------------------------------------------------------

certs=$tmp/certs
echo "# generating certificates"
check "mkcerts.sh generates the test PKI" "$MKCERTS" "$certs"
for f in ca.pem ca.key other-ca.pem valid.pem valid.key valid-chain.pem expired.pem \
         wrongname.pem untrusted.pem selfsigned.pem wildcard.pem muststaple-chain.pem \
         short-ca.pem shortlived.pem valid-ocsp-good.der valid-ocsp-revoked.der \
         muststaple-ocsp-good.der; do
    [ -s "$certs/$f" ] || not_ok "$f exists"
done
check "keys are readable by their owner only" \
    bash -c "[ -z \"\$(find '$certs' -name '*.key' ! -perm 600)\" ]"

# verify KIND HOST EXPECTED-TEXT: certtool's verdict on KIND's chain for HOST.
verify() {
    local out rc=0
    out=$(certtool --verify --load-ca-certificate "$certs/ca.pem" \
        --infile "$certs/$1-chain.pem" --verify-hostname "$2" 2>&1) || rc=$?
    if ! grep -qF -- "$3" <<<"$out"; then
        echo "certtool says:"
        echo "$out" | tail -3
        return 1
    fi
    # certtool exits 0 only when the chain verified.
    if [ "$3" = "Verified." ]; then [ $rc -eq 0 ]; else [ $rc -ne 0 ]; fi
}
echo "# the certificates are what they claim (certtool --verify against ca.pem)"
check "valid verifies for mx.test.example" verify valid mx.test.example "Verified."
check "valid verifies for 127.0.0.1" verify valid 127.0.0.1 "Verified."
check "expired fails as expired" verify expired mx.test.example "uses expired certificate"
check "expired fails only for its dates" bash -c \
    "certtool -i --infile '$certs/expired.pem' | grep -q 'Not After: .* 2002'"
check "wrongname fails on the name" verify wrongname mx.test.example "does not match"
check "wrongname verifies for other.test.example" verify wrongname other.test.example "Verified."
check "untrusted fails on its issuer" verify untrusted mx.test.example "issuer is unknown"
check "selfsigned fails on its issuer" verify selfsigned mx.test.example "issuer is unknown"
check "wildcard verifies for mx.test.example" verify wildcard mx.test.example "Verified."
check "wildcard fails for a.b.test.example" verify wildcard a.b.test.example "does not match"
check "wildcard fails for test.example" verify wildcard test.example "does not match"
check "muststaple carries the TLS feature status_request" bash -c \
    "certtool -i --infile '$certs/muststaple.pem' | grep -q 'OCSP Status Request(5)'"
check "shortlived verifies against short-ca" bash -c \
    "certtool --verify --load-ca-certificate '$certs/short-ca.pem' \
        --infile '$certs/shortlived-chain.pem' --verify-hostname mx.test.example >/dev/null"
# not_after FILE: a certificate's notAfter, in seconds.
not_after() {
    date -d "$(certtool -i --infile "$1" | sed -n 's/.*Not After: //p')" +%s
}
check "short-ca expires before the leaf it signed" bash -c \
    "[ $(not_after "$certs/short-ca.pem") -lt $(not_after "$certs/shortlived.pem") ]"
# ocsp_says FILE STATUS: ocsptool verifies the response against ca.pem and
# reads its certificate status.
ocsp_says() {
    ocsptool -e --load-signer "$certs/ca.pem" -S "$certs/$1" 2>&1 | grep -q "Success" &&
        ocsptool -j -S "$certs/$1" | grep -q "Certificate Status: $2"
}
check "the OCSP responses verify, good and revoked" bash -c \
    "$(declare -f ocsp_says); certs='$certs'; ocsp_says valid-ocsp-good.der good &&
     ocsp_says valid-ocsp-revoked.der revoked && ocsp_says muststaple-ocsp-good.der good"

tls_args=(--cert "$certs/valid-chain.pem" --key "$certs/valid.key")

echo "# plaintext delivery (swaks)"
start plain --max-conns 1 "${tls_args[@]}"
check "swaks delivers without TLS" swaks --server "127.0.0.1:$port" --from a@client.example \
    --to x@test.example --helo client.example
finish
check "the message is spooled with tls false" json_is 1 \
    '(j["tls"] is False and j["tls_version"] is None and j["connection"] == 1
      and j["mail_from"] == "a@client.example" and j["rcpt_to"] == ["x@test.example"])'
check "the log marks its commands plaintext" log_has "C> [plain] MAIL FROM:<a@client.example>"

echo "# STARTTLS delivery with the valid certificate (swaks, verifying)"
start starttls --max-conns 1 "${tls_args[@]}"
check "swaks delivers over verified STARTTLS" swaks --server "127.0.0.1:$port" \
    --from a@client.example --to x@test.example --helo client.example \
    --tls --tls-verify --tls-ca-path "$certs/ca.pem" --tls-sni mx.test.example
finish
check "the message is spooled with tls true and the SNI" json_is 1 \
    'j["tls"] is True and j["tls_version"].startswith("TLS1.") and j["sni"] == "mx.test.example"'
check "no MAIL FROM arrived in plaintext" log_lacks "C> [plain] MAIL"
check "swaks waited for the 220 before its ClientHello" log_lacks "! violation"
check "MAIL FROM arrived over TLS" log_has "C> [tls] MAIL FROM:<a@client.example>"
check "the handshake is logged" log_has "* tls handshake ok"

echo "# message content (smtplib)"
start content --max-conns 1
check ".eml is the message dot-unstuffed, CRLF, without the terminator" py content
finish
check "size counts the content" json_is 1 'j["size"] == 127'
start barelf --max-conns 1
check "bare LF and bare CR are kept as content" py bare_lf
finish
check "and counted in the metadata" json_is 1 'j["bare_lf"] == 1 and j["bare_cr"] == 1'
check "and logged as a violation" log_has "content has 1 bare LF and 1 bare CR"

echo "# SNI and the TLS version (Python ssl)"
start sni --max-conns 1 "${tls_args[@]}"
check "a raw STARTTLS session with SNI delivers" py sni
finish
check "the spool records SNI mx.test.example" json_is 1 'j["sni"] == "mx.test.example"'

echo "# each certificate kind, served: gnutls-cli verifies against ca.pem"
# served KIND EXPECTED: gnutls-cli's verdict on a server presenting KIND.
served() {
    local kind=$1 want=$2 out rc=0
    start "cert-$kind" --max-conns 1 --cert "$certs/$kind-chain.pem" --key "$certs/$kind.key"
    out=$(timeout 30 gnutls-cli --starttls-proto=smtp --port "$port" \
        --x509cafile "$certs/ca.pem" --verify-hostname mx.test.example \
        --priority "$DEFAULT_PRIORITY" 127.0.0.1 </dev/null 2>&1) || rc=$?
    finish
    if ! grep -qF -- "$want" <<<"$out"; then
        echo "gnutls-cli (exit $rc) says:"
        echo "$out" | grep -E "Status|rror|\*\*\*" | head -5
        return 1
    fi
    if [ "$want" = "The certificate is trusted." ]; then [ $rc -eq 0 ]; else [ $rc -ne 0 ]; fi
}
check "valid: trusted" served valid "The certificate is trusted."
check "wildcard: trusted for mx.test.example" served wildcard "The certificate is trusted."
check "expired: rejected as expired" served expired "uses expired certificate"
check "wrongname: rejected on the name" served wrongname "does not match the expected"
check "untrusted: rejected on the issuer" served untrusted "issuer is unknown"
check "selfsigned: rejected on the issuer" served selfsigned "issuer is unknown"

echo "# OCSP stapling (--ocsp-response): gnutls-cli checks the staple"
# stapled KIND STAPLE|none EXPECTED: gnutls-cli's verdict on KIND's chain
# served with that staple.
stapled() {
    local kind=$1 staple=$2 want=$3 out rc=0 ocsp=()
    [ "$staple" != none ] && ocsp=(--ocsp-response "$certs/$staple")
    start "ocsp-$kind-$staple" --max-conns 1 --cert "$certs/$kind-chain.pem" \
        --key "$certs/$kind.key" "${ocsp[@]}"
    out=$(timeout 30 gnutls-cli --starttls-proto=smtp --port "$port" \
        --x509cafile "$certs/ca.pem" --verify-hostname mx.test.example \
        --priority "$DEFAULT_PRIORITY" 127.0.0.1 </dev/null 2>&1) || rc=$?
    finish
    if ! grep -qF -- "$want" <<<"$out"; then
        echo "gnutls-cli (exit $rc) says:"
        echo "$out" | grep -E "Status|OCSP|rror|\*\*\*" | head -5
        return 1
    fi
}
check "valid with a good staple: trusted" stapled valid valid-ocsp-good.der \
    "The certificate is trusted."
check "valid with a revoked staple: revoked" stapled valid valid-ocsp-revoked.der \
    "The certificate chain is revoked."
check "muststaple without a staple: refused" stapled muststaple none \
    "the OCSP status is missing"
check "muststaple with its staple: trusted" stapled muststaple muststaple-ocsp-good.der \
    "The certificate is trusted."

echo "# --handshake modes against a default client ($DEFAULT_PRIORITY)"
# handshake MODE PRIORITY EXPECTED: gnutls-cli's output for that mode.
handshake() {
    local out rc=0
    start "handshake-$1" --max-conns 1 "${tls_args[@]}" --handshake "$1"
    out=$(timeout 30 gnutls-cli --starttls-proto=smtp --port "$port" \
        --x509cafile "$certs/ca.pem" --verify-hostname mx.test.example \
        --priority "$2" 127.0.0.1 </dev/null 2>&1) || rc=$?
    finish
    if ! grep -qF -- "$3" <<<"$out"; then
        echo "gnutls-cli (exit $rc) says:"
        echo "$out" | grep -E "Description|rror|\*\*\*|alert" | head -5
        return 1
    fi
    if [ "${3#- Description}" != "$3" ]; then [ $rc -eq 0 ]; else [ $rc -ne 0 ]; fi
}
check "tls10: the default client fails" handshake tls10 "$DEFAULT_PRIORITY" \
    "illegal or unsupported version"
check "tls10: a client allowing 1.0 negotiates TLS1.0" handshake tls10 \
    NORMAL:+VERS-TLS1.0 "- Description: (TLS1.0-"
check "tls12: negotiates TLS1.2" handshake tls12 "$DEFAULT_PRIORITY" "- Description: (TLS1.2-"
check "nocipher: the default client fails" handshake nocipher "$DEFAULT_PRIORITY" \
    "Handshake failed"
check "nocipher: even plain NORMAL fails" handshake nocipher NORMAL "Handshake failed"
check "alert: the client receives a fatal alert" handshake alert "$DEFAULT_PRIORITY" \
    "Received alert [40]"
check "close: the connection ends in the handshake" handshake close "$DEFAULT_PRIORITY" \
    "non-properly terminated"
check "garbage: the client sees a non-TLS packet" handshake garbage "$DEFAULT_PRIORITY" \
    "unexpected TLS packet"

echo "# STARTTLS faults"
start inject --max-conns 1 "${tls_args[@]}" --inject '250-fake\r\n250 AUTH PLAIN\r\n'
check "--inject: one recv() returns the 220 and the injected lines" py inject
finish
check "--inject is logged" log_has "* fault: inject 26 bytes after the 220"

start no-starttls --max-conns 2 "${tls_args[@]}" --no-starttls
check "--no-starttls: STARTTLS not advertised" py ehlo_lines \
    "250-mx.test.example Hello client.example" 250-PIPELINING "250-SIZE 10485760" \
    250-8BITMIME 250-ENHANCEDSTATUSCODES "250 SMTPUTF8"
check "--no-starttls: swaks --tls gives up" bash -c "! swaks --server 127.0.0.1:$port \
    --to x@test.example --tls --quit-after RCPT"
finish
check "--no-starttls: nothing delivered" spool_is_empty

for reply in "454 4.7.0 not now" "501 5.5.4 syntax" "354 go on" "hello" "421 4.3.2 bye"; do
    start "starttls-reply-${reply%% *}" --max-conns 1 "${tls_args[@]}" --starttls-reply "$reply"
    check "--starttls-reply '$reply'" py starttls_refused "$reply"
    finish
done

start pipelined --max-conns 1 "${tls_args[@]}"
check "a MAIL pipelined behind STARTTLS is discarded" py pipelined_starttls
finish
check "the violation is logged" log_has "bytes pipelined behind STARTTLS, discarded"
check "the pipelined MAIL never ran" log_lacks "C> [plain] MAIL"

start early --max-conns 1 "${tls_args[@]}" --drip starttls:20
check "a ClientHello sent before the (dripped) 220 is complete..." py early_clienthello
finish
check "... is logged as a violation" log_has "bytes sent before the 220 to STARTTLS was complete"

start fake-nocert --max-conns 1 --handshake alert
check "--handshake alert needs no certificate" py ehlo_lines \
    "250-mx.test.example Hello client.example" 250-PIPELINING "250-SIZE 10485760" \
    250-8BITMIME 250-ENHANCEDSTATUSCODES 250-SMTPUTF8 "250 STARTTLS"
finish

start reoffer --max-conns 1 "${tls_args[@]}" --reoffer-starttls
check "--reoffer-starttls: re-advertised, second STARTTLS gets 503" py reoffer
finish
check "the second STARTTLS is logged as a violation" log_has "violation [tls] STARTTLS over TLS"

for drop in close@tls alert@tls rst@tls close@plain rst@plain; do
    mode=${drop%@*}
    transport=${drop#*@}
    start "drop-$mode-$transport" --max-conns 1 "${tls_args[@]}" \
        --drop-in-data "1000@$transport" --drop-mode "$mode"
    check "--drop-in-data 1000@$transport --drop-mode $mode" py drop "$mode" "$transport"
    finish
    check "  nothing spooled" spool_is_empty
    check "  logged" log_has "abandon connection in message data ($mode)"
done

echo "# scripted replies"
start rcpt-reply --max-conns 1 --rcpt-reply 'bad@test.example=550 5.1.1 no such user'
check "--rcpt-reply refuses that recipient only" py deliver plain a@client.example \
    x@test.example,bad@test.example bad@test.example
finish
check "only the accepted recipient is spooled" json_is 1 'j["rcpt_to"] == ["x@test.example"]'

start ehlo-reply --max-conns 1 --ehlo-reply '502 5.5.1 no'
check "--ehlo-reply 502: smtplib falls back to HELO and delivers" py deliver plain
finish
check "the message came after HELO" json_is 1 'j["helo"] is not None'
check "HELO is logged" log_has "C> [plain] helo "

start eod-reply --max-conns 1 --eod-reply '451 4.3.0 try later'
check "--eod-reply 451: the message is refused" bash -c "! PORT=$port CERTS=$certs \
    SPOOL=$dir/spool $PYTHON $tmp/client.py deliver plain"
finish
check "--eod-reply 451: nothing spooled" spool_is_empty

start multiline --max-conns 1 --greeting '220-first\r\n220 second'
check "--greeting with \\r\\n: a multi-line greeting" py first_bytes \
    "$(hex '220-first\r\n220 second\r\n')"
finish

start toggles --max-conns 2 --no-pipelining --no-8bitmime --no-smtputf8 --no-enhanced \
    --size 1000 --ext 'AUTH PLAIN' --ext 'tls:REQUIRETLS'
check "toggles: the EHLO reply" py ehlo_lines "250-mx.test.example Hello client.example" \
    "250-SIZE 1000" "250 AUTH PLAIN"
check "toggles: no enhanced codes, SIZE enforced" py toggles
finish

start bdat --max-conns 1 --chunking --rcpt-reply 'nobody@test.example=550 5.1.1 no'
check "--chunking: BDAT chunks, LAST, content as sent, a chunk refused" py bdat
finish

start overlong --max-conns 1
check "an over-long command line gets 500 and the session goes on" py overlong
finish

echo "# hostile replies"
start nul --max-conns 1 --nul=greeting
check "--nul: NUL and 8-bit bytes in the greeting" py first_bytes \
    "$(hex '220 mx.test.example ESMTP faultsrv [nul:\0] [8bit:\377\200\303\251]\r\n')"
finish
start bad-code --max-conns 1 --bad-code rcpt:25O
check "--bad-code rcpt:25O" py reply_to "RCPT TO:<x@test.example>" "$(hex '25O 2.1.5 Ok\r\n')"
finish
start bad-code2 --max-conns 1 --bad-code noop:2500
check "--bad-code noop:2500" py reply_to NOOP "$(hex '2500 2.0.0 Ok\r\n')"
finish
start disagree --max-conns 1 --disagree=noop
check "--disagree=noop: 250-ok then 550" py reply_to NOOP \
    "$(hex '250-2.0.0 Ok\r\n550 disagreeing code\r\n')"
finish
start unsolicited --max-conns 1 --unsolicited
check "--unsolicited: a reply to nothing after the greeting" py first_bytes \
    "$(hex '220 mx.test.example ESMTP faultsrv\r\n250 2.0.0 unsolicited reply\r\n')"
finish
start drip --max-conns 1 --drip greeting:20
check "--drip greeting:20: the greeting arrives whole, one byte per 20 ms" py drip 20
finish
start endless-ml --max-conns 1 --endless-multiline ehlo --pace 1
# $server_pid is timeout(1)'s; the server is its child.
check "--endless-multiline ehlo: 1 MiB of 250- lines, server VmHWM < 16 MB" \
    py endless multiline "$(pgrep -P "$server_pid")"
finish
start endless-line --max-conns 1 --endless-line greeting --pace 1
check "--endless-line greeting: 1 MiB without a line end" py endless line
finish

echo "# --stall and --close at each phase"
for ph in greeting ehlo starttls mail rcpt data eod quit; do
    start "stall-$ph" --max-conns 1 "${tls_args[@]}" --stall "$ph"
    check "--stall $ph: no reply" py phase stall "$ph"
    finish
    check "--stall $ph: logged" log_has "* fault: stall at $ph"
    [ "$ph" = eod ] && check "--stall eod: nothing spooled" spool_is_empty
done
start stall-tls --max-conns 1 "${tls_args[@]}" --stall ehlo@tls
check "--stall ehlo@tls: only the EHLO over TLS goes unanswered" py stall_after_tls
finish
for ph in greeting ehlo starttls mail rcpt data eod quit; do
    start "close-$ph" --max-conns 1 "${tls_args[@]}" --close "$ph"
    check "--close $ph: the server closes without answering" py phase close "$ph"
    finish
    check "--close $ph: logged" log_has "* fault: abandon connection at $ph (close)"
    [ "$ph" = eod ] && check "--close eod: nothing spooled" spool_is_empty
done

echo "# many connections at once"
start concurrent --max-conns 200 "${tls_args[@]}"
check "200 concurrent STARTTLS deliveries" py concurrent 200
finish
check "200 messages spooled" bash -c "[ \$(find '$dir/spool' -name '*.json' | wc -l) -eq 200 ]"
check "all 200 over TLS" bash -c "! grep -l '\"tls\": false' '$dir/spool'/*.json"

echo "# signals"
start sigterm "${tls_args[@]}"
kill -TERM "$server_pid"
finish
check "SIGTERM: exit 0 with the log flushed" log_has "* exit: 0 connections"

echo "# $passed passed, $failed failed"
[ "$failed" -eq 0 ]
