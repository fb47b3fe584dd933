"""The high-level, blocking send(): one message, one server, one call, in
the spirit of smtplib.SMTP.sendmail() — but with a result for every
recipient and the TLS outcome of every connection instead of exceptions
for server replies.  Built on smtpout_delivery (include/smtpout/deliver.h),
which connects, applies the TLS policy, and makes the plaintext fallback
the policy permits.
"""
from __future__ import annotations

import ctypes
import dataclasses
import itertools
import weakref
from typing import Any, Dict, List, Optional, Tuple, Union

from ._lib import ON_TRACE, DeliveryP, lib
from ._message import Message, MessageArg
from ._options import (ConfigArg, Options, Server, TraceFn, auth_tuple,
                       client_pair, recipient_list, set_auth,
                       timeout_ms)
from ._strings import StrOrBytes, StrPath, encode
from ._dsn import dsn_request
from ._types import (AuthOutcome, Result, StartTLS, Status, Timeout, TLSInfo,
                     Trace, text)
from .config import Config, Policy
from .errors import Error, check, describe

__all__ = ["send", "Delivery", "SendResult", "Attempt"]


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One connection the delivery made."""
    address: str                 # "IP:PORT"
    plaintext_fallback: bool     # the retry without STARTTLS
    tls: TLSInfo
    error: Optional[str]         # what ended it badly, or None
    # SMTP AUTH on this connection (AuthOutcome.NONE without
    # credentials), and the mechanism used or tried.
    auth_outcome: AuthOutcome = AuthOutcome.NONE
    auth_mechanism: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SendResult:
    """What send() did.  .recipients has one Result per recipient, in the
    order given; .attempts one Attempt per connection."""
    recipients: List[Result]
    attempts: List[Attempt]
    policy: Policy

    @property
    def tls(self) -> TLSInfo:
        """The TLS outcome of the last connection (outcome "none" when
        none was made)."""
        return self.attempts[-1].tls if self.attempts \
            else TLSInfo._no_connection()

    def by_address(self) -> Dict[str, Result]:
        return {r.recipient: r for r in self.recipients}

    def _with(self, status: Status) -> List[str]:
        return [r.recipient for r in self.recipients if r.status == status]

    @property
    def delivered(self) -> List[str]:
        return self._with(Status.DELIVERED)

    @property
    def deferred(self) -> List[str]:
        return self._with(Status.DEFERRED)

    @property
    def bounced(self) -> List[str]:
        return self._with(Status.BOUNCED)

    @property
    def all_delivered(self) -> bool:
        return all(r.status == Status.DELIVERED for r in self.recipients)

    @property
    def refused(self) -> Dict[str, Tuple[int, str]]:
        """Like smtplib's sendmail() return value: {recipient: (code,
        text)} for every recipient not delivered (code 0 when the library
        decided without a reply)."""
        return {r.recipient: (r.code, r.text) for r in self.recipients
                if r.status != Status.DELIVERED}


# The trace trampoline, module-level like the session's (alive as long as
# the module); user_data is a key into _deliveries.
_deliveries: "weakref.WeakValueDictionary[int, Delivery]" = \
    weakref.WeakValueDictionary()
_keys = itertools.count(1)


@ON_TRACE
def _c_trace(sp, direction, line, length, user_data):
    d = _deliveries.get(user_data or 0)
    if d is None or d._trace is None:
        return
    try:
        d._trace(Trace(direction), ctypes.string_at(line, length))
    except BaseException as e:
        if d._pending is None:
            d._pending = e


class Delivery:
    """The blocking delivery driver, one setter per option (send() is the
    one-call form).  Not reusable: run() once, then read the results."""

    def __init__(self, config: Optional[Config] = None):
        self._ptr: Any = DeliveryP()
        check(lib.smtpout_delivery_new(ctypes.byref(self._ptr), config))
        self._finalizer = weakref.finalize(self, lib.smtpout_delivery_free,
                                           self._ptr)
        self._body: Any = None  # smtpout_delivery_set_body does not copy
        self._trace: Optional[TraceFn] = None
        self._pending: Optional[BaseException] = None
        self._key = next(_keys)
        self._recipients: List[StrOrBytes] = []

    def close(self) -> None:
        if self._ptr is not None:
            _deliveries.pop(self._key, None)
        self._finalizer()
        self._ptr = None
        self._body = None

    def __enter__(self) -> "Delivery":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def set_server(self, host: StrOrBytes, port: int = 25) -> None:
        if not 0 < int(port) < 65536:
            check(Error.INVALID_ARGUMENT, describe(
                "port", port, "not in 1..65535"), argument="port", value=port)
        check(lib.smtpout_delivery_set_server(
            self._ptr, encode(host, "server", "name"), int(port)),
            describe("server", host, "empty"), argument="server", value=host)

    def set_relay(self, label: Optional[str]) -> None:
        """Delivers through [relay "label"] of the configuration (None: the
        one [queue.outbound] relay names): its host, port, implicit TLS,
        AUTH and client certificate (docs/relay.md)."""
        check(lib.smtpout_delivery_set_relay(
            self._ptr, None if label is None else encode(label, "relay",
                                                         "label")),
            describe("relay", label, "no such [relay] in the configuration"),
            argument="relay", value=label)

    def set_mx_name(self, name: StrOrBytes) -> None:
        check(lib.smtpout_delivery_set_mx_name(
            self._ptr, encode(name, "mx_name", "name")))

    def set_helo_name(self, name: StrOrBytes) -> None:
        check(lib.smtpout_delivery_set_helo_name(
            self._ptr, encode(name, "helo", "name")),
            describe("helo", name),
            argument="helo", value=name)

    def set_ca_file(self, path: StrPath) -> None:
        check(lib.smtpout_delivery_set_ca_file(
            self._ptr, encode(path, "ca_file", "path")))

    def set_tls_policy(self, starttls: Any,
                       allow_invalid_certs: bool = False) -> None:
        check(lib.smtpout_delivery_set_tls_policy(
            self._ptr, int(StartTLS.parse(starttls, "starttls")),
            int(bool(allow_invalid_certs))))

    def set_timeout(self, which: Any, ms: int) -> None:
        """Timeout `which` (a Timeout or its name) in milliseconds, for
        this delivery only."""
        which = Timeout.parse(which, "timeout")
        check(lib.smtpout_delivery_set_timeout(
            self._ptr, int(which), timeout_ms(ms / 1000.0, str(which))))

    def set_sender(self, sender: StrOrBytes) -> None:
        check(lib.smtpout_delivery_set_sender(
            self._ptr, encode(sender, "sender", "address")),
            describe("sender", sender), argument="sender", value=sender)

    def add_recipient(self, recipient: StrOrBytes) -> None:
        check(lib.smtpout_delivery_add_recipient(
            self._ptr, encode(recipient, "recipient", "address")))
        self._recipients.append(recipient)

    def set_body(self, data: Any) -> None:
        """The message, bytes-like or str (UTF-8).  The library scans it
        for its size on the wire and the flags it needs."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        data = bytes(data)
        # The library keeps the pointer until run() returns: hold the
        # buffer for the life of this object.
        self._body = (ctypes.c_uint8 * len(data)).from_buffer_copy(data) \
            if data else None
        check(lib.smtpout_delivery_set_body(self._ptr, self._body, len(data)))

    def set_body_fd(self, fd: Any) -> None:
        """The message from a regular file (read with pread() from offset
        0, not closed): a descriptor or a file object.  The library scans
        it for its size on the wire and the flags it needs."""
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        check(lib.smtpout_delivery_set_body_fd(self._ptr, fd),
              describe("fd", fd, "not an open regular file"),
              argument="fd", value=fd)
        self._body = None

    def set_message(self, message: Union[MessageArg, Message]) -> None:
        """The message as send() takes it: bytes, str, or a file object
        (a regular file is read with pread(); anything else is read to its
        end now)."""
        m = message if isinstance(message, Message) else Message(message)
        if m.fd is not None:
            check(lib.smtpout_delivery_set_body_fd(self._ptr, m.fd))
        else:
            self.set_body(m.data)

    def set_flags(self, flags: int) -> None:
        check(lib.smtpout_delivery_set_flags(self._ptr, int(flags)))

    def set_auth(self, user: StrOrBytes, password: StrOrBytes,
                 mechanisms: Optional[str] = None,
                 tls_any: bool = False) -> None:
        """SMTP AUTH on every connection, only ever over TLS
        (smtpout_delivery_set_auth()).  `mechanisms` like "SCRAM-SHA-256
        PLAIN" (None: the default list); `tls_any` also over a certificate
        that did not verify."""
        set_auth(lib.smtpout_delivery_set_auth, self._ptr,
                 (user, password, mechanisms, tls_any))

    def set_implicit_tls(self, enable: bool = True) -> None:
        """TLS before the greeting (RFC 8314, port 465)."""
        check(lib.smtpout_delivery_set_implicit_tls(self._ptr,
                                                    1 if enable else 0))

    def set_client_cert(self, cert: StrPath, key: StrPath) -> None:
        """The client certificate (PEM chain) and its key, presented when
        a server asks; read now to check them."""
        check(lib.smtpout_delivery_set_client_cert(
            self._ptr, encode(cert, "client_cert", "path"),
            encode(key, "client_cert", "path")),
            describe("client_cert", (cert, key), "unreadable, not PEM, or a "
                     "key that is not the certificate's"),
            argument="client_cert", value=(cert, key))

    def set_chunking(self, enable: bool) -> None:
        """False: DATA even where the server offers CHUNKING (BDAT)."""
        check(lib.smtpout_delivery_set_chunking(self._ptr,
                                                1 if enable else 0))

    def set_dsn(self, notify: Any = None, ret: Any = None,
                envid: Optional[str] = None, orcpt: Any = None) -> None:
        """Delivery status notifications (RFC 3461) for the recipients
        added so far: `notify` for each of them, `orcpt` a list aligned
        with them or a dict {recipient: "rfc822;address"}."""
        dsn = dsn_request(self._recipients, notify, ret, envid, orcpt)
        check(lib.smtpout_delivery_set_dsn(self._ptr,
                                           dsn.ptr if dsn else None))
        if dsn is not None:
            dsn.close()  # copied

    def set_trace(self, fn: Optional[TraceFn]) -> None:
        """fn(direction: Trace, line: bytes) for each protocol line."""
        self._trace = fn
        if fn is None:
            check(lib.smtpout_delivery_set_trace(self._ptr, None, None))
        else:
            _deliveries[self._key] = self
            check(lib.smtpout_delivery_set_trace(self._ptr, _c_trace,
                                                 self._key))

    def run(self) -> SendResult:
        """Delivers (blocking; other Python threads keep running: ctypes
        releases the GIL) and returns the results.  An exception raised by
        the trace callback is raised here, after the delivery ended."""
        rv = lib.smtpout_delivery_run(self._ptr)
        exc, self._pending = self._pending, None
        if exc is not None:
            raise exc
        check(rv)
        return self.results()

    def results(self) -> SendResult:
        d = self._ptr
        rcpts = []
        for i in range(lib.smtpout_delivery_recipient_count(d)):
            r = lib.smtpout_delivery_result(d, i)
            # Every result says where it belongs: recipient i of message
            # 1, also for those the delivery decided without a session.
            # (The library gives every recipient a result.)
            rcpts.append(dataclasses.replace(Result._from_c(r), message_id=1,
                                             index=i))
        attempts = []
        for i in range(lib.smtpout_delivery_attempt_count(d)):
            a = lib.smtpout_delivery_attempt(d, i)
            attempts.append(Attempt(
                address=text(lib.smtpout_attempt_address(a)) or "",
                plaintext_fallback=bool(
                    lib.smtpout_attempt_plaintext_fallback(a)),
                tls=TLSInfo._from_c(lib.smtpout_attempt_tls_info(a)),
                error=text(lib.smtpout_attempt_error(a)),
                auth_outcome=AuthOutcome(
                    lib.smtpout_attempt_auth_outcome(a)),
                auth_mechanism=text(lib.smtpout_attempt_auth_mechanism(a))))
        p = lib.smtpout_delivery_policy(d)
        if not p:
            check(Error.INVALID_STATE, "no results before run()")
        return SendResult(recipients=rcpts, attempts=attempts,
                          policy=Policy._from_c(p))


def send(server: Optional[Server], mx_name: Optional[str],
         sender: StrOrBytes,
         recipients: Any, message: MessageArg, config: ConfigArg = None,
         ca_file: Optional[StrPath] = None, helo: Optional[str] = None,
         starttls: Any = None, allow_invalid_certs: Optional[bool] = None,
         trace: Optional[TraceFn] = None,
         timeout: Optional[float] = None,
         auth_user: Optional[StrOrBytes] = None,
         auth_password: Optional[StrOrBytes] = None,
         auth_mech: Optional[str] = None, auth_tls_any: bool = False,
         implicit_tls: bool = False,
         client_cert: Optional[StrPath] = None,
         client_key: Optional[StrPath] = None,
         notify: Any = None, ret: Any = None, envid: Optional[str] = None,
         orcpt: Any = None, chunking: bool = True,
         relay: Optional[str] = None) -> SendResult:
    """Delivers `message` from `sender` to `recipients` through `server`.

    server      "host", "host:port", "[v6]:port" or (host, port); None
                with relay
    mx_name     the MX host name: policy lookup, SNI, certificate check
                (None: the server host)
    message     bytes or str (handed over raw: line ends are
                canonicalised and dots stuffed by the library), or a file
                object: a regular file is read with pread() from its
                start; any other (io.BytesIO, a pipe) is read to its end
    config      a Config, the path of an INI file, or None (defaults)
    ca_file     trust anchors instead of the configuration's
    starttls    "disable", "optional" or "require" (or a StartTLS) fixed
                instead of the configuration's policy; allow_invalid_certs
                goes with it
    trace       fn(direction, line) for the protocol trace
    timeout     seconds: bounds the connect and every wait for a reply (each
                phase on its own, as the configuration's timeouts do), or
                None for the configuration's
    auth_user, auth_password   SMTP AUTH, only ever over TLS, by default
                only over a verified certificate (auth_tls_any: any);
                auth_mech the mechanisms allowed ("SCRAM-SHA-256 PLAIN")
    implicit_tls  TLS before the greeting (RFC 8314, port 465)
    client_cert, client_key    PEM files presented when the server asks
    notify, ret, envid, orcpt  delivery status notifications (RFC 3461):
                notify ("SUCCESS,DELAY", "NEVER" or a Notify) for every
                recipient, ret ("FULL", "HDRS"), envid, orcpt a list
                aligned with the recipients or {recipient: "rfc822;addr"}
    chunking    False: DATA even where the server offers BDAT
    relay       instead of server: the label of a [relay "label"] section
                of config, which says the host, port, implicit TLS, AUTH
                (its auth-password-file), client certificate and TLS knobs;
                mx_name, starttls, allow_invalid_certs, auth_*,
                implicit_tls and client_* do not go with it

    Returns a SendResult.  Server replies and TLS failures are results, not
    exceptions; bad arguments raise, naming the argument and its value
    (BadAddress for an unusable sender, BadName for a bad host name,
    InvalidArgument, ConfigError for an invalid config file).
    """
    recipients = recipient_list(recipients)
    if relay is not None:
        given = [name for name, value in (
            ("server", server), ("mx_name", mx_name),
            ("starttls", starttls), ("allow_invalid_certs",
                                     allow_invalid_certs),
            ("auth_user", auth_user), ("auth_password", auth_password),
            ("auth_mech", auth_mech), ("client_cert", client_cert),
            ("client_key", client_key)) if value is not None]
        given += ["auth_tls_any"] * auth_tls_any + \
            ["implicit_tls"] * implicit_tls
        if given or config is None:
            what = given[0] if given else "config"
            check(Error.INVALID_ARGUMENT, describe(
                "relay", relay, "needs config, and %s does not go with it: "
                "the relay's section sets it" % what if given else
                "needs config (the [relay] section)"),
                argument=what, value=relay)
    elif server is None:
        raise TypeError("send() needs a server, or relay=")
    opts = Options(server, mx_name, config, ca_file, helo, starttls,
                   allow_invalid_certs, trace, timeout,
                   auth_tuple(auth_user, auth_password, auth_mech,
                              auth_tls_any),
                   implicit_tls, client_pair(client_cert, client_key),
                   chunking)
    try:
        msg = Message(message)
        with Delivery(opts.config) as d:
            if relay is not None:
                d.set_relay(relay)
            else:
                d.set_server(opts.host, opts.port)
                d.set_mx_name(opts.mx)
            if helo is not None:
                d.set_helo_name(helo)
            if ca_file is not None:
                d.set_ca_file(ca_file)
            if opts.starttls is not None:
                d.set_tls_policy(opts.starttls, opts.allow_invalid_certs)
            d.set_sender(sender)
            for r in recipients:
                d.add_recipient(r)
            d.set_message(msg)
            if opts.auth is not None:
                d.set_auth(*opts.auth)
            if opts.implicit_tls:
                d.set_implicit_tls()
            if opts.client_cert is not None:
                d.set_client_cert(*opts.client_cert)
            if not opts.chunking:
                d.set_chunking(False)
            d.set_dsn(notify, ret, envid, orcpt)
            if trace is not None:
                d.set_trace(trace)
            for which, ms in opts.timeouts.items():
                check(lib.smtpout_delivery_set_timeout(d._ptr, int(which),
                                                       ms))
            return d.run()
    finally:
        opts.close()
