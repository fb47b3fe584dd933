#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

The seeds are small, readable and committed; run this again after changing
it (python3 tests/fuzz/mkseeds.py).  A session seed is the 4-byte header
fuzz-session.c describes, then a server transcript; a mime7bit seed the
2-byte chunk seed fuzz-mime7bit.c describes, then a message body."""
import base64
import os

import dnsseeds
import routeseeds

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")

# Header byte 0: bits 0-1 starttls (0 disable, 1 optional, 2 require),
# bit 2 allow-invalid, bit 3 plaintext fallback, bit 4 policy through the
# API, bit 5 null sender, bit 6 UTF-8 recipient, bit 7 SIZE.
DISABLE, OPTIONAL, REQUIRE = 0x10, 0x11, 0x12


def hdr(policy, msgs=1, rcpts=1, ip=False, timeout=5, seed=0x1234):
    b1 = (msgs - 1) | ((rcpts - 1) << 2) | (0x10 if ip else 0) | (timeout << 5)
    return bytes([policy, b1, seed >> 8, seed & 0xFF])


GREET = b"220 mx.test.example ESMTP\r\n"
EHLO = b"250 mx.test.example\r\n"
EHLO_PIPE = (b"250-mx.test.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
             b"250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n")
EHLO_TLS = b"250-mx.test.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
EHLO_CHUNK = (b"250-mx.test.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n"
              b"250 CHUNKING\r\n")
EHLO_DSN = b"250-mx.test.example\r\n250-PIPELINING\r\n250-DSN\r\n250 SIZE\r\n"
EHLO_TLS_AUTH = (b"250-mx.test.example\r\n250-PIPELINING\r\n"
                 b"250-AUTH PLAIN LOGIN\r\n250 STARTTLS\r\n")
EHLO_AUTH = (b"250-mx.test.example\r\n250-PIPELINING\r\n250-CHUNKING\r\n"
             b"250-DSN\r\n250 AUTH PLAIN LOGIN XOAUTH2\r\n")
HELLO = b"<server-hello>"
OK = b"250 2.0.0 ok\r\n"
GO = b"354 go ahead\r\n"
BYE = b"221 2.0.0 bye\r\n"

SESSION = {
    "plain-one": hdr(DISABLE) + GREET + EHLO + OK + OK + GO + OK + BYE,
    "pipelined-two-rcpts": hdr(DISABLE, rcpts=2) + GREET + EHLO_PIPE
    + OK + OK + b"550 5.1.1 no such user\r\n" + GO + OK + BYE,
    "pipelined-three-msgs": hdr(DISABLE, msgs=3, rcpts=2, seed=0x0101)
    + GREET + EHLO_PIPE + (OK * 3 + GO + OK) * 3 + BYE,
    "two-msgs-rset": hdr(DISABLE, msgs=2) + GREET + EHLO
    + b"550 5.7.1 no\r\n" + OK + OK + OK + GO + OK + BYE,
    "starttls-refused": hdr(OPTIONAL) + GREET + EHLO_TLS
    + b"454 4.7.0 not now\r\n" + OK + OK + GO + OK + BYE,
    "starttls-handshake-garbage": hdr(OPTIONAL) + GREET + EHLO_TLS
    + b"220 2.0.0 go\r\n" + b"\x16\x03\x03\x00\x05hello",
    "starttls-injection": hdr(REQUIRE) + GREET + EHLO_TLS
    + b"220 2.0.0 go\r\n250-fake\r\n250 AUTH PLAIN\r\n",
    "require-not-offered": hdr(REQUIRE, rcpts=2) + GREET + EHLO + BYE,
    "helo-fallback": hdr(DISABLE) + GREET + b"502 5.5.2 no EHLO\r\n"
    + b"250 hi\r\n" + OK + OK + GO + OK + BYE,
    "greeting-554": hdr(DISABLE, rcpts=3) + b"554 5.3.2 go away\r\n" + BYE,
    "421-mid": hdr(DISABLE, rcpts=2) + GREET + EHLO + OK
    + b"421 4.3.2 shutting down\r\n",
    "multiline-disagree": hdr(DISABLE) + GREET
    + b"250-mx\r\n550 disagreeing code\r\n",
    "bad-codes": hdr(DISABLE) + GREET + EHLO + b"25O ok\r\n600 x\r\n",
    "nul-8bit": hdr(DISABLE) + b"220 mx [nul:\x00] [8bit:\xff\x80\xc3\xa9]\r\n"
    + EHLO + OK + OK + GO + b"250 ok \x00\xff\r\n" + BYE,
    "long-line": hdr(DISABLE) + GREET + b"250 " + b"x" * 2100 + b"\r\n",
    "many-lines": hdr(DISABLE) + GREET + b"250-line\r\n" * 110,
    "size-limit": hdr(0x90) + GREET + b"250-mx\r\n250 SIZE 10\r\n" + BYE,
    "smtputf8": hdr(0x50, rcpts=2) + GREET + EHLO_PIPE + OK * 3 + GO + OK
    + BYE,
    "utf8-not-offered": hdr(0x50, rcpts=2) + GREET + EHLO + OK + OK + GO
    + OK + BYE,
    "unsolicited": hdr(DISABLE) + GREET + b"250 2.0.0 unsolicited\r\n"
    + EHLO + OK + OK + GO + OK + OK + BYE,
    "bare-lf": hdr(DISABLE, ip=True) + b"220 mx\n250 mx\n250 ok\n250 ok\n"
    b"354 go\n250 ok\n221 bye\n",
    "dot-refused": hdr(DISABLE, rcpts=2) + GREET + EHLO + OK + OK + OK + GO
    + b"451 4.3.0 try later\r\n" + BYE,
    "config-policy": hdr(0x01, msgs=2, rcpts=3) + GREET + EHLO_TLS
    + b"220 go\r\n",
    # Sessions made for a hop (byte 2, bits 5-7: 5 DANE, 6 ENCRYPT, 7 DANE
    # with REQUIRETLS): TLS is mandatory, whatever the knobs say.  The rest
    # of each seed picks a schedule that reaches the decision named.
    "dane-not-offered": hdr(DISABLE, msgs=2, seed=0xA000) + GREET + EHLO
    + OK + OK + GO + OK + BYE,
    "dane-refused": hdr(OPTIONAL, seed=0xA143) + GREET + EHLO_TLS
    + b"554 5.7.0 no TLS here\r\n" + OK + OK + GO + OK + BYE,
    "dane-handshake": hdr(0x14, seed=0xA24C) + GREET + EHLO_TLS
    + b"220 2.0.0 go\r\n" + b"\x16\x03\x03\x00\x05hello",
    "dane-fallback": hdr(0x19, seed=0xA143) + GREET + EHLO_TLS + BYE,
    "encrypt-not-offered": hdr(OPTIONAL, seed=0xC0EE) + GREET + EHLO + BYE,
    "requiretls-hop": hdr(OPTIONAL, msgs=2, seed=0xE055) + GREET
    + b"250-mx\r\n250-REQUIRETLS\r\n250 STARTTLS\r\n" + b"220 go\r\n",
    # BDAT (a server offering CHUNKING): the whole body as one LAST chunk
    # in the flight of MAIL and RCPT; a refused one; without PIPELINING.
    "bdat-one": hdr(DISABLE, rcpts=2) + GREET + EHLO_CHUNK + OK * 3 + OK
    + BYE,
    "bdat-refused": hdr(DISABLE, msgs=2) + GREET + EHLO_CHUNK + OK + OK
    + b"452 4.3.1 no room\r\n" + OK * 3 + OK + BYE,
    "bdat-no-pipelining": hdr(DISABLE) + GREET
    + b"250-mx\r\n250 CHUNKING\r\n" + OK + OK + OK + BYE,
    "dsn-offered": hdr(0x90, rcpts=2, seed=0x0203) + GREET + EHLO_DSN
    + OK * 3 + GO + OK + BYE,
    # The smarthost mode (seed bit 15: the scripted TLS backend and
    # credentials): STARTTLS, the scripted server flight, AUTH.
    "auth-plain": hdr(REQUIRE, seed=0x8001) + GREET + EHLO_TLS_AUTH
    + b"220 go\r\n" + HELLO + EHLO_AUTH + b"235 2.7.0 ok\r\n" + OK * 3
    + BYE,
    "auth-login-535": hdr(REQUIRE, seed=0x8102) + GREET + EHLO_TLS_AUTH
    + b"220 go\r\n" + HELLO + b"250-mx\r\n250 AUTH LOGIN\r\n"
    + b"334 VXNlcm5hbWU6\r\n334 UGFzc3dvcmQ6\r\n"
    + b"535 5.7.8 bad credentials\r\n" + BYE,
    "auth-bad-challenge": hdr(REQUIRE, seed=0x8203) + GREET + EHLO_TLS_AUTH
    + b"220 go\r\n" + HELLO + b"250 AUTH=LOGIN\r\n"
    + b"334 !!not base64\r\n501 5.7.0 cancelled\r\n" + BYE,
    # Found by the fuzzer: a message flagged 8-bit, converted for a server
    # offering CHUNKING without 8BITMIME, its data in the first flight.
    "bdat-7bit-conversion": base64.b64decode(
        "EKESNDIyMCBteC50ZXN0LmV4YW1wbGUgRVNN5Sbl5eXl5eXl5eXl5eXl5eXl5eXl"
        "5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eUNCjI1MC1teC50ZXN0LmV4YW1wbGUN"
        "CjI1MC1QSVBFTElOSU5HDQoyNTAtU0laRSAxMDAwDQoyNTAgQ0hVTktJTkcKNDUz"
        "IDQuMy4xIG5rDAo0NTIgNC4zLjEgblNUQVJUVExTMjUwIDIuMCBvaw0KMjUwIDIu"
        "MC4wIG9rLjAuMCBvaw32zc3O383Rzy4xIFx5ZQ0K"),
    "auth-in-clear": hdr(OPTIONAL, seed=0x8304) + GREET
    + b"250-mx\r\n250 AUTH PLAIN\r\n" + BYE,
}

CONFIG = {
    "full": b"""[queue.outbound]
hostname = mta1.example.org

[queue.outbound.tls]
starttls = "optional"
allow-invalid-certs = false
priority = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

[queue.outbound.timeouts]
connect = 30s
greeting = 2s
tls = 1500ms
ehlo = 5m
mail-from = 1h
rcpt-to = 2s
data = 1d

[destination "banks"]
domains = bank.example .bank.example
starttls = "require"

[destination "m365"]
mx = *.mail.protection.outlook.com
allow-invalid-certs = false

[destination "idn"]
domains = b\xc3\xbccher.example xn--bcher-kva.test
mx = [192.0.2.25]
starttls = disable
bank.example
""",
    "errors": b"""[queue.outbound.tls]
starttls = requir
bogus = 1
 [indented]
[destination ""]
domains = *.x.example
[destination "dup"]
domains = a.example
[destination "dup2"]
domains = a.example
""",
    "long-line": b"[destination \"long\"]\ndomains = " + b"a" * 250
    + b".example\nstarttls = require\n",
    "minimal": b"[queue.outbound.tls]\nstarttls = disable\nx.example\n",
}

POLICY_MAP = {
    "doc-example": b"""# comment lines start with "#"; blank lines are ignored
bank.example            starttls=require
.bank.example           starttls=require allow-invalid-certs=false
mx:mx1.example.net      starttls=disable
mx:*.mail.example.net   allow-invalid-certs=true   # trailing comment
mx:.hosting.example     starttls="require"
mx:[192.0.2.25]         starttls=disable
""",
    "errors": b"""a.example starttls = require
b.example starttls=requir
c.example
a.example starttls=disable
*.x.example starttls=require
d.example bogus=1 starttls=require
e.example starttls=require starttls=disable
f.ex\x00ample starttls=require
""",
    "idn": b"b\xc3\xbccher.example starttls='require'\r\n"
    b"xn--mller-kva.example\tallow-invalid-certs=true\r\n"
    b"MIXED.Case.Example starttls=optional\n",
    "crlf-tabs": b"\tx.example\t starttls=disable\t\r\n\r\n#\n   \n",
}

NAMES = {
    "ascii": b"MX1.Example.COM.",
    "idn": b"b\xc3\xbccher.example",
    "alabel": b"xn--bcher-kva.example",
    "sharp-s": b"stra\xc3\x9fe.example",
    "fullwidth-dot": b"mx\xe3\x80\x82example",
    "ipv4": b"192.0.2.1",
    "ipv6-literal": b"[IPv6:2001:db8::1]",
    "bad-hyphen": b"-bad-.example",
    "crlf": b"mx.example\r\nMAIL FROM:<x@y>",
    "long-label": b"a" * 64 + b".example",
    "empty-label": b"a..example",
    "underscore": b"_dmarc.example",
}

# MTA-STS (fuzz-sts.c tries each input as a policy, TXT records one per
# line, a cache entry and a fetched body): postfix-mta-sts-resolver's
# policies, TXT records and entries as lib/sts.c writes them.
GOOD_POLICY = b"version: STSv1\nmode: enforce\nmx: mail.loc\nmax_age: 86400"
STS = {
    "policy-good": GOOD_POLICY,
    "policy-crlf-wildcards": b"version: STSv1\r\nmode: testing\r\n"
    b"mx: *.mail.example.com\r\nmx: mx.b\xc3\xbccher.example\r\n"
    b"max_age: 604800\r\nx-ext: some value\r\n",
    "policy-none": b"version: STSv1\nmode: none\nmax_age: 86400",
    "policy-no-mx": b"version: STSv1\nmode: enforce\nmax_age: 86400",
    "policy-max-age-xxx": b"version: STSv1\nmode: enforce\nmx: mail.loc\n"
    b"max_age: xxx",
    "policy-max-age-over": b"version: STSv1\nmode: enforce\nmx: mail.loc\n"
    b"max_age: 31557601",
    "policy-mode-doubt": b"version: STSv1\nmode: doubt\nmx: mail.loc\n"
    b"max_age: 86400",
    "policy-repeated": b"version: STSv1\nmode: testing\nmode: enforce\n"
    b"max_age: 1\nmax_age: 2\nmx: a.example\nmx: a.example\n",
    "policy-blank-line": b"version: STSv1\n\nmode: none\nmax_age: 1\n",
    "txt-records": b"v=spf1 -all\nv=STSv1;id=20180907T090909;\n"
    b"id=20180907T090909; v=STSv1;\nv=STSv12;id=1;\n",
    "txt-one": b"v=STSv1; id=20160831085700Z; ext=x",
    "cache-entry": b"v=1; id=fz2; fetched=1700000000000; "
    b"expires=1700086400000\n" + GOOD_POLICY,
    "cache-entry-retry": b"v=1; id=abc; fetched=1700000000000; "
    b"expires=1700086400000; retry-id=fz2; retry-until=1700000300000; "
    b"retry-failure=sts-webpki-invalid\n" + GOOD_POLICY,
    "cache-negative": b"v=1; fetched=1700000000000; expires=1700000300000; "
    b"retry-id=fz2; retry-until=1700000300000; "
    b"retry-failure=sts-policy-fetch-error\n",
}

# TLS-RPT (fuzz-tlsrpt.c reads each line as an event, feeds the whole to a
# report builder, and tries the input as a _smtp._tls record).
EV_OK = (b'{"v":1,"time":3600000,"policy-type":"sts","policy-string":'
         b'["version: STSv1","mode: enforce","mx: *.mail.example.com",'
         b'"max_age: 86400"],"policy-domain":"example.com",'
         b'"mx-host":["*.mail.example.com"],"result":"success",'
         b'"sending-mta-ip":"192.0.2.10",'
         b'"receiving-mx-hostname":"mx1.mail.example.com",'
         b'"receiving-ip":"198.51.100.7"}\n')
EV_FAIL = (b'{"v":1,"time":7200000,"report-domain":"example.com",'
           b'"report-record":"v=TLSRPTv1; rua=mailto:r@example.com",'
           b'"policy-type":"tlsa","policy-string":["3 1 1 ABCDEF"],'
           b'"policy-domain":"mx.hosting.example","result":"failure",'
           b'"result-type":"tlsa-invalid","sending-mta-ip":"2001:db8::1",'
           b'"receiving-mx-hostname":"mx.hosting.example",'
           b'"receiving-mx-helo":"mx \\"quoted\\" \\u00e9\\ud83d\\ude00",'
           b'"receiving-ip":"2001:db8::25",'
           b'"additional-information":"https://example.com/why",'
           b'"failure-reason-code":"X509_V_ERR"}\n')
EV_NONE = (b'{"v":1,"time":1,"policy-type":"no-policy-found",'
           b'"policy-domain":"other.example","result":"failure",'
           b'"result-type":"starttls-not-supported","future":[1,"a",null]}\n')
TLSRPT = {
    "events": EV_OK + EV_FAIL + EV_NONE + EV_OK,
    "events-crlf-bad": EV_OK.replace(b"\n", b"\r\n") + b"not json\n\n"
    + b'{"v":1,"time":\n' + EV_NONE[:-1],
    "events-other-day": EV_OK.replace(b"3600000", b"86400000"),
    "record": b"v=TLSRPTv1; rua=mailto:tlsrpt@example.com,"
    b"https://reports.example.com/v1",
    "record-ext": b"v=TLSRPTv1 ;ext=1; rua=MAILTO:a%2Cb@example.com;",
}

# fuzz-sasl: header byte (mechanism in bits 0-2: 0 PLAIN, 1 LOGIN,
# 2 XOAUTH2, 3 SCRAM-SHA-256, 4 SCRAM-SHA-256-PLUS; 0x08 raw 334 text;
# 0x10 long password; 0x20 a 235 at the end), then challenges, each ended
# by a newline.  In the harness-encoded mode "@N" is the client's SCRAM nonce
# and "@V" the correct server signature.
PLAIN, LOGIN, XOAUTH2, SCRAM, SCRAM_PLUS = range(5)
RAW, LONG, OK235 = 0x08, 0x10, 0x20
SFIRST = b"r=@NsrvNonce,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=16"


def sasl(flags, *challenges):
    return bytes([flags]) + b"".join(c + b"\n" for c in challenges)


SASL = {
    "plain-ok": bytes([PLAIN | OK235]),
    "plain-extra-challenge": sasl(PLAIN | OK235, b""),
    "plain-long-ir": sasl(PLAIN | LONG | OK235, b""),
    "plain-long-ir-not-empty": sasl(PLAIN | LONG, b"go on"),
    "login-ok": sasl(LOGIN | OK235, b"Username:", b"Password:"),
    "login-raw": sasl(LOGIN | RAW | OK235, b"VXNlcm5hbWU6", b"UGFzc3dvcmQ6"),
    "login-extra": sasl(LOGIN, b"Username:", b"Password:", b"More:"),
    "login-early-235": sasl(LOGIN | OK235, b"Username:"),
    "login-bad-base64": sasl(LOGIN | RAW, b"VXNlcm5hbWU6=", b"V X"),
    "login-over-long": sasl(LOGIN | RAW, b"QUFB" * 400),
    "xoauth2-ok": bytes([XOAUTH2 | OK235]),
    "xoauth2-error": sasl(XOAUTH2, b'{"status":"401","schemes":"bearer",'
                          b'"scope":"https://mail.google.com/"}'),
    "xoauth2-echo": sasl(XOAUTH2, b'{"token":"Sekr1t-Pencil"}', b"again"),
    "xoauth2-long": sasl(XOAUTH2 | LONG | OK235, b"", b"{}"),
    "scram-ok": sasl(SCRAM | OK235, SFIRST, b"v=@V"),
    "scram-plus-ok": sasl(SCRAM_PLUS | OK235, SFIRST, b"v=@V"),
    "scram-forged": sasl(SCRAM | OK235, SFIRST,
                         b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
    "scram-no-final": sasl(SCRAM | OK235, SFIRST),
    "scram-e": sasl(SCRAM | OK235, SFIRST, b"e=invalid-proof"),
    "scram-huge-i": sasl(SCRAM, b"r=@Nx,s=W22ZaJ0SNY7soEsUEjb6gQ==,"
                         b"i=4294967295"),
    "scram-small-i": sasl(SCRAM, b"r=@Nx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=0"),
    "scram-m": sasl(SCRAM, b"m=ext,r=@Nx,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=8"),
    "scram-nul": sasl(SCRAM, b"r=@Nx\x00,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=8"),
    "scram-wrong-nonce": sasl(SCRAM, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTC,"
                              b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=8"),
    "scram-bad-salt": sasl(SCRAM, b"r=@Nx,s=***,i=8"),
    "scram-extensions": sasl(SCRAM | OK235, SFIRST + b",x=ext", b"v=@V,y=z"),
    "scram-after-final": sasl(SCRAM | OK235, SFIRST, b"v=@V", b"v=@V"),
}


MIME_MULTIPART = b"""From: a@example
MIME-Version: 1.0
Content-Type: multipart/mixed;
 boundary="=_b1"
Content-Transfer-Encoding: 8bit

preamble
--=_b1
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

caf\xc3\xa9 = ol\xc3\xa9\t
.
--=_b1
Content-Type: application/octet-stream
Content-Transfer-Encoding: binary

\x00\xff\r\n\x89PNG\r
--=_b1
Content-Type: message/rfc822

Subject: inner
Content-Type: multipart/alternative; boundary=in

--in
Content-Transfer-Encoding: 8bit

\xe9
--in--
--=_b1--
epilogue
"""

MIME7BIT = {
    "plain-8bit": b"\x01\x02Subject: hi\n\nH\xc3\xa9llo = world  \n.dot\nend",
    "multipart": b"\x00\x07" + MIME_MULTIPART,
    "multipart-crlf": b"\x00\x03" + MIME_MULTIPART.replace(b"\n", b"\r\n"),
    "digest": b"\x10\x01Content-Type: multipart/digest; boundary=d\n\n--d\n\n"
    b"Content-Transfer-Encoding: 8bit\n\n\xe9\n--d--\n",
    "folded": b"\x20\x02Content-Type: multipart/mixed;\r\n\tcharset=x;\r\n"
    b"  boundary=\r\n   \"=_split (x) y_=\"\r\nContent-Transfer-Encoding:\r\n"
    b" 8bit (c)\r\n\r\n--=_split (x) y_=\r\nContent-Transfer-Encoding: 8bit"
    b"\r\n\r\n\xc3\xa9\r\n--=_split (x) y_=--\r\n",
    "utf8-header": b"\x00\x01Subject: caf\xc3\xa9\n\nbody\n",
    "7bit-part": b"\x00\x05Content-Type: multipart/mixed; boundary=b\n\n--b\n"
    b"Content-Transfer-Encoding: quoted-printable\n\n=E9\xe9\n--b--\n",
    "long-line": b"\x00\x09X-Long: " + b"h" * 1500 + b"\n\n" + b"\xe9" * 1500
    + b"\n",
    "no-header": b"\x00\x04caf\xc3\xa9 au lait\r\n.\r\n",
}


def write(target, seeds):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


def main():
    write("session", SESSION)
    write("config", CONFIG)
    write("policy-map", POLICY_MAP)
    write("names", NAMES)
    dns = dnsseeds.seeds()
    write("dns", dns)
    with open(os.path.join(HERE, "dns.dict"), "w") as f:
        f.write(dnsseeds.DICT)
    write("sts", STS)
    write("tlsrpt", TLSRPT)
    write("mime7bit", MIME7BIT)
    write("sasl", SASL)
    route = routeseeds.seeds()
    write("route", route)
    total = sum(len(s) for s in (SESSION, CONFIG, POLICY_MAP, NAMES, dns, STS,
                                 TLSRPT, MIME7BIT, SASL, route))
    print("%d seeds written under %s" % (total, CORPUS))


if __name__ == "__main__":
    main()
