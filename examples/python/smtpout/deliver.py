"""The high-level, blocking send(): one message, one server, one call, in
the spirit of smtplib.SMTP.sendmail() — but with a result for every
recipient and the TLS outcome of every connection instead of exceptions
for server replies.  Built on smtpout_delivery (include/smtpout/deliver.h),
which connects, applies the TLS policy, and makes the plaintext fallback
the policy permits.
"""
import ctypes
import dataclasses
import itertools
import os
import weakref
from typing import Dict, List, Optional, Tuple

from ._lib import ON_TRACE, DeliveryP, lib
from ._types import (MessageFlag, Result, StartTLS, Status, Timeout, TLSInfo,
                     Trace, text)
from .config import Config, Policy, _encode
from .errors import check

__all__ = ["send", "Delivery", "SendResult", "Attempt"]


@dataclasses.dataclass(frozen=True)
class Attempt:
    """One connection the delivery made."""
    address: str                 # "IP:PORT"
    plaintext_fallback: bool     # the retry without STARTTLS
    tls: TLSInfo
    error: Optional[str]         # what ended it badly, or None


@dataclasses.dataclass(frozen=True)
class SendResult:
    """What send() did.  .recipients has one Result per recipient, in the
    order given; .attempts one Attempt per connection."""
    recipients: List[Result]
    attempts: List[Attempt]
    policy: Optional[Policy]

    @property
    def tls(self) -> Optional[TLSInfo]:
        """The TLS outcome of the last connection (None if none was
        made)."""
        return self.attempts[-1].tls if self.attempts else None

    def by_address(self) -> Dict[str, Result]:
        return {r.recipient: r for r in self.recipients}

    def _with(self, status):
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
#
# Workaround: libsmtpout 0.1.0 passes the smtpout_delivery pointer, not the
# user_data given to smtpout_delivery_set_trace(), to the trace callback.
# Each Delivery is therefore registered under both its key and the address
# of its C object, so the lookup works with and without the fix.
_deliveries = weakref.WeakValueDictionary()
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


def _split_server(server):
    if isinstance(server, tuple):
        return server[0], int(server[1])
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else 25
    host, sep, port = server.rpartition(":")
    if not sep or ":" in host:
        return server, 25
    return host, int(port)


class Delivery:
    """The blocking delivery driver, one setter per option (send() is the
    one-call form).  Not reusable: run() once, then read the results."""

    def __init__(self, config=None):
        self._ptr = DeliveryP()
        check(lib.smtpout_delivery_new(ctypes.byref(self._ptr), config))
        self._finalizer = weakref.finalize(self, lib.smtpout_delivery_free,
                                           self._ptr)
        self._body = None  # smtpout_delivery_set_body does not copy
        self._trace = None
        self._pending = None
        self._key = next(_keys)
        self._nrcpt = 0

    def close(self):
        if self._ptr is not None:
            _deliveries.pop(self._key, None)
        self._finalizer()
        self._ptr = None
        self._body = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_server(self, host, port=25):
        check(lib.smtpout_delivery_set_server(self._ptr, _encode(host),
                                              int(port)))

    def set_mx_name(self, name):
        check(lib.smtpout_delivery_set_mx_name(self._ptr, _encode(name)))

    def set_helo_name(self, name):
        check(lib.smtpout_delivery_set_helo_name(self._ptr, _encode(name)))

    def set_ca_file(self, path):
        check(lib.smtpout_delivery_set_ca_file(self._ptr, _encode(path)))

    def set_tls_policy(self, starttls, allow_invalid_certs=False):
        check(lib.smtpout_delivery_set_tls_policy(
            self._ptr, int(StartTLS(starttls)), int(bool(allow_invalid_certs))))

    def set_timeout(self, which, ms):
        """Timeout `which` (a Timeout) in milliseconds, for this delivery
        only."""
        check(lib.smtpout_delivery_set_timeout(self._ptr, int(Timeout(which)),
                                               int(ms)))

    def set_sender(self, sender):
        check(lib.smtpout_delivery_set_sender(self._ptr, _encode(sender)))

    def add_recipient(self, recipient):
        check(lib.smtpout_delivery_add_recipient(self._ptr,
                                                 _encode(recipient)))
        self._nrcpt += 1

    def set_body(self, data):
        """The message, bytes-like or str (UTF-8).  Sets 8BITMIME when it
        has 8-bit data."""
        if isinstance(data, str):
            data = data.encode("utf-8")
        data = bytes(data)
        # The library keeps the pointer until run() returns: hold the
        # buffer for the life of this object.
        self._body = (ctypes.c_uint8 * len(data)).from_buffer_copy(data) \
            if data else None
        check(lib.smtpout_delivery_set_body(self._ptr, self._body, len(data)))
        if not data.isascii():
            self.set_flags(MessageFlag.EIGHTBITMIME)

    def set_body_fd(self, fd):
        """The message from a regular file (read with pread(), not
        closed).  Sets 8BITMIME when it has 8-bit data."""
        if hasattr(fd, "fileno"):
            fd = fd.fileno()
        check(lib.smtpout_delivery_set_body_fd(self._ptr, fd))
        # One pass over the file, in chunks: the same check set_body()
        # makes on bytes, without holding the message in memory.
        off = 0
        while True:
            chunk = os.pread(fd, 1 << 20, off)
            if not chunk:
                break
            if not chunk.isascii():
                self.set_flags(MessageFlag.EIGHTBITMIME)
                break
            off += len(chunk)

    def set_flags(self, flags):
        check(lib.smtpout_delivery_set_flags(self._ptr, int(flags)))

    def set_trace(self, fn):
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
            rcpts.append(Result._from_c(r) if r else None)
        attempts = []
        for i in range(lib.smtpout_delivery_attempt_count(d)):
            a = lib.smtpout_delivery_attempt(d, i)
            attempts.append(Attempt(
                address=text(lib.smtpout_attempt_address(a)),
                plaintext_fallback=bool(
                    lib.smtpout_attempt_plaintext_fallback(a)),
                tls=TLSInfo._from_c(lib.smtpout_attempt_tls_info(a)),
                error=text(lib.smtpout_attempt_error(a))))
        p = lib.smtpout_delivery_policy(d)
        return SendResult(recipients=rcpts, attempts=attempts,
                          policy=Policy._from_c(p) if p else None)


def send(server, mx_name, sender, recipients, message, config=None,
         ca_file=None, helo=None, starttls=None, allow_invalid_certs=None,
         trace=None, timeout=None) -> SendResult:
    """Delivers `message` from `sender` to `recipients` through `server`.

    server      "host", "host:port", "[v6]:port" or (host, port)
    mx_name     the MX host name: policy lookup, SNI, certificate check
                (None: the server host)
    message     bytes or str (handed over raw: line ends are
                canonicalised and dots stuffed by the library), or a
                regular file object
    config      a Config, the path of an INI file, or None (defaults)
    ca_file     trust anchors instead of the configuration's
    starttls    a StartTLS mode (or "require"...) fixed instead of the
                configuration's policy; allow_invalid_certs goes with it
    trace       fn(direction, line) for the protocol trace
    timeout     seconds: bounds the connect and every wait for a reply (each
                phase on its own, as the configuration's timeouts do), or
                None for the configuration's

    Returns a SendResult.  Server replies and TLS failures are results, not
    exceptions; bad arguments raise (BadAddress for an unusable sender,
    ConfigError for an invalid config file).
    """
    if isinstance(recipients, (str, bytes)):
        recipients = [recipients]
    own_config = None
    if isinstance(config, (str, bytes)) or hasattr(config, "__fspath__"):
        config = own_config = Config.load_file(config)
    try:
        with Delivery(config) as d:
            host, port = _split_server(server)
            d.set_server(host, port)
            if mx_name:
                d.set_mx_name(mx_name)
            if helo:
                d.set_helo_name(helo)
            if ca_file:
                d.set_ca_file(ca_file)
            if starttls is not None:
                if isinstance(starttls, str):
                    starttls = StartTLS[starttls.upper()]
                d.set_tls_policy(starttls, bool(allow_invalid_certs))
            elif allow_invalid_certs is not None:
                raise ValueError("allow_invalid_certs needs starttls "
                                 "(or set it in the configuration)")
            d.set_sender(sender)
            for r in recipients:
                d.add_recipient(r)
            if hasattr(message, "fileno"):
                d.set_body_fd(message)
            else:
                d.set_body(message)
            if trace is not None:
                d.set_trace(trace)
            if timeout is not None:
                for which in Timeout:
                    d.set_timeout(which, max(1, int(timeout * 1000)))
            return d.run()
    finally:
        if own_config is not None:
            own_config.close()
