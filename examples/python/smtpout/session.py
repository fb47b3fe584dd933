"""The low-level, sans-I/O session: one SMTP connection whose socket, loop
and clock belong to the caller (a selectors loop, asyncio, anything).

    s = Session("mx.example.net", config, on_result=print)
    s.start()
    s.submit("a@example.org", ["b@example.net"], b"Subject: hi\\r\\n\\r\\nhi\\r\\n")
    s.quit()
    while not s.is_done:
        wait until the socket is readable (s.want_read), writable
        (s.want_write), or s.timeout() seconds pass; then
        s.receive(sock) / s.flush(sock) / s.handle_expiry()
    s.close()

Callbacks run synchronously inside the calls that feed the session (start,
feed, feed_eof, peek_output, consume_output, handle_expiry, abort, and
submit/quit): never on another thread.  An exception raised by a callback
is caught at the C boundary, kept, and raised again from the Session method
that was running when the library returns: the connection is dropped when
the body callback fails, and the other callbacks' exceptions leave the
session running.  A callback may call submit(), quit() and the getters; the
I/O methods and close() raise InvalidState inside a callback.
"""
from __future__ import annotations

import ctypes
import itertools
import socket
import time
import weakref
from typing import (Any, Callable, Dict, List, Optional, Sequence, Tuple,
                    Union)

from ._lib import (ON_MESSAGE_DONE, ON_RESULT, ON_TLS, ON_TRACE, READ_BODY,
                   CallbacksP, SessionP, lib)
from ._dsn import dsn_request
from ._message import scan
from ._options import set_auth, timeout_ms
from ._strings import StrOrBytes, StrPath, encode
from ._types import (NO_EXPIRY, AuthOutcome, Cap, CloseReason, MessageFlag,
                     Result, StartTLS, Timeout, TLSInfo, Trace, text)
from .config import Config
from .errors import Error, InvalidState, check, describe

__all__ = ["Session", "now_ms", "ack_if_idle"]


def now_ms() -> int:
    """Milliseconds on the monotonic clock: the default `now` of every
    Session call.  Any monotonic millisecond clock works, if it is the same
    one for every call on a session."""
    return time.monotonic_ns() // 1_000_000


def _host_name() -> Optional[bytes]:
    """This machine's name, for EHLO (the session never asks the system:
    the host says, and this binding is a host), or None."""
    try:
        name = socket.gethostname()
    except OSError:
        return None
    return name.encode("utf-8", "surrogateescape") \
        if name and "\0" not in name else None


def ack_if_idle(session: "Session", sock: Any) -> None:
    """Acknowledges at once what a read just fed the session when it left
    the session with nothing to send (docs/event-loop.md): the kernel would
    hold the ACK back (40 ms on Linux once a connection looks interactive)
    for a reply that is not coming, and a server whose next small write
    waits for it (Nagle) would wait with it.  Postfix writes its TLS 1.3
    session tickets so.  With something to send, the ACK rides on it."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is None or session.want_write or session.is_done:
        return
    try:
        sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
    except (OSError, AttributeError):
        pass  # not a TCP socket: nothing to acknowledge


# ---------------------------------------------------------------------
# Dispatch from C.  The C callbacks are module-level CFUNCTYPE objects,
# created once and alive as long as this module, so no session can ever
# outlive the function pointers it holds.  The session's user_data is a
# small integer key into _sessions (never a Python object pointer); the
# registry holds weak references so that an unclosed Session can still be
# garbage-collected (its finalizer frees the C session).

_sessions: "weakref.WeakValueDictionary[int, Session]" = \
    weakref.WeakValueDictionary()
_keys = itertools.count(1)


def _session_of(user_data):
    return _sessions.get(user_data or 0)


@READ_BODY
def _c_read_body(sp, message_id, buf, buflen, nread, eof, user_data):
    s = _session_of(user_data)
    if s is None:
        return Error.CALLBACK_FAILURE
    return s._read_body(message_id, buf, buflen, nread, eof)


@ON_RESULT
def _c_on_result(sp, rp, user_data):
    s = _session_of(user_data)
    if s is not None:
        s._call(s._on_result_c, rp)


@ON_MESSAGE_DONE
def _c_on_message_done(sp, message_id, user_data):
    s = _session_of(user_data)
    if s is not None:
        s._call(s._on_message_done_c, message_id)


@ON_TLS
def _c_on_tls(sp, ip, user_data):
    s = _session_of(user_data)
    if s is not None:
        s._call(s._on_tls_c, ip)


@ON_TRACE
def _c_on_trace(sp, direction, line, length, user_data):
    s = _session_of(user_data)
    if s is not None:
        s._call(s._on_trace_c, direction, line, length)


def _make_callbacks(trace):
    """A C callbacks object with the trampolines; sessions copy it, so the
    caller frees it right after smtpout_session_new()."""
    cbs = CallbacksP()
    check(lib.smtpout_callbacks_new(ctypes.byref(cbs)))
    lib.smtpout_callbacks_set_read_body(cbs, _c_read_body)
    lib.smtpout_callbacks_set_on_result(cbs, _c_on_result)
    lib.smtpout_callbacks_set_on_message_done(cbs, _c_on_message_done)
    lib.smtpout_callbacks_set_on_tls(cbs, _c_on_tls)
    if trace:
        # Only when asked: tracing makes the library format every line.
        lib.smtpout_callbacks_set_on_trace(cbs, _c_on_trace)
    return cbs


class _Body:
    """A message body source: bytes-like, or a binary file object whose
    read(n) returns bytes, b"" at the end, or None when no data is
    available now (a non-blocking stream)."""

    def __init__(self, body: Any):
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.data: Optional[memoryview]
        self.stream: Any
        if isinstance(body, (bytes, bytearray, memoryview)):
            self.data = memoryview(body).cast("B")
            self.stream = None
        elif hasattr(body, "read"):
            self.data = None
            self.stream = body
        else:
            raise TypeError("body must be bytes-like, str, or a binary "
                        "file object")
        self.off = 0

    def scan(self) -> Tuple[int, MessageFlag]:
        """(size on the wire, flags) of a bytes body, from the library's
        scan; (0, NONE) for a stream, which cannot be read twice."""
        if self.data is None:
            return 0, MessageFlag.NONE
        return scan([self.data.tobytes()])

    def read(self, n: int) -> Any:
        if self.data is not None:
            chunk = self.data[self.off:self.off + n]
            self.off += len(chunk)
            return chunk, self.off == len(self.data)
        chunk = self.stream.read(n)
        if chunk is None:
            return None, False
        return chunk, len(chunk) == 0


class Session:
    """One SMTP connection to the MX host `mx_host` (the name checked
    against the server's certificate and used as SNI).

    Keyword arguments:
      config            a Config (default: built-in defaults)
      helo              the EHLO name (default: the config's, else this
                        machine's name when it is a valid domain name,
                        else "localhost")
      ca_file           trust anchors for this session only
      starttls          StartTLS mode fixed instead of resolved from config
      allow_invalid_certs   with `starttls`: accept invalid certificates
      plaintext_fallback    this session is the retry without STARTTLS
      timeouts          {Timeout.X: milliseconds}
      tls_resumption    resume TLS sessions from tickets kept in the config
                        (smtpout_session_set_tls_resumption)
      auth              (user, password) or (user, password, mechanisms,
                        tls_any): SMTP AUTH, only ever over TLS
                        (smtpout_session_set_auth; mechanisms like
                        "SCRAM-SHA-256 PLAIN", None for the default list)
      implicit_tls      TLS before the greeting (RFC 8314, port 465)
      client_cert       (certificate file, key file), PEM, read now
      chunking          False: DATA even where BDAT is offered
      on_result(result)           each recipient's final Result
      on_message_done(message_id) every recipient of a message is final
      on_tls(tls_info)            the TLS outcome, once
      on_trace(direction, line)   protocol trace (Trace, bytes)

    Results are also collected in .results, in the order they came.
    """

    def __init__(self, mx_host: StrOrBytes, config: Optional[Config] = None,
                 *, helo: Optional[StrOrBytes] = None,
                 ca_file: Optional[StrPath] = None, starttls: Any = None,
                 allow_invalid_certs: bool = False,
                 plaintext_fallback: bool = False,
                 timeouts: Optional[Dict[Any, int]] = None,
                 tls_resumption: bool = False,
                 auth: Optional[Sequence[Any]] = None,
                 implicit_tls: bool = False,
                 client_cert: Optional[Tuple[StrPath, StrPath]] = None,
                 chunking: bool = True,
                 on_result: Optional[Callable[[Result], None]] = None,
                 on_message_done: Optional[Callable[[int], None]] = None,
                 on_tls: Optional[Callable[[TLSInfo], None]] = None,
                 on_trace: Optional[Callable[[Trace, bytes], None]] = None):
        self.on_result = on_result
        self.on_message_done = on_message_done
        self.on_tls = on_tls
        self.on_trace = on_trace
        self.results: List[Result] = []
        self._bodies: Dict[int, _Body] = {}
        self._done_early: set = set()
        self._in_callback = 0
        self._pending: Optional[BaseException] = None
        self._key = next(_keys)
        self._ptr: Any = None

        # Checked before anything is made, so that nothing leaks.
        mx = encode(mx_host, "mx_host", "name")
        starttls = None if starttls is None \
            else StartTLS.parse(starttls, "starttls")
        timeouts = {Timeout.parse(which, "timeouts"):
                    timeout_ms(ms / 1000.0, "timeouts[%s]" % which)
                    for which, ms in (timeouts or {}).items()}
        cbs = _make_callbacks(on_trace is not None)
        ptr = SessionP()
        try:
            # The library takes its own reference to the config.
            check(lib.smtpout_session_new(ctypes.byref(ptr), mx, config, cbs,
                                          self._key),
                  describe("mx_host", mx_host), argument="mx_host", value=mx_host)
        finally:
            lib.smtpout_callbacks_free(cbs)
        self._ptr = ptr
        self._finalizer = weakref.finalize(self, lib.smtpout_session_free,
                                           ptr)
        _sessions[self._key] = self
        try:
            if helo is not None:
                check(lib.smtpout_session_set_helo_name(
                    ptr, encode(helo, "helo", "name")),
                    describe("helo", helo), argument="helo", value=helo)
            elif lib.smtpout_config_helo_name(config) is None:
                # Without a name the session says "localhost": tell it
                # this machine's, as the C delivery driver does.  One the
                # library refuses (not a domain name) leaves "localhost".
                name = _host_name()
                if name is not None:
                    lib.smtpout_session_set_helo_name(ptr, name)
            if ca_file is not None:
                check(lib.smtpout_session_set_ca_file(
                    ptr, encode(ca_file, "ca_file", "path")))
            if starttls is not None:
                check(lib.smtpout_session_set_tls_policy(
                    ptr, int(starttls), int(bool(allow_invalid_certs))))
            if plaintext_fallback:
                check(lib.smtpout_session_set_plaintext_fallback(ptr))
            if tls_resumption:
                check(lib.smtpout_session_set_tls_resumption(ptr, 1))
            if implicit_tls:
                check(lib.smtpout_session_set_implicit_tls(ptr, 1))
            if auth is not None:
                set_auth(lib.smtpout_session_set_auth, ptr, auth)
            if client_cert is not None:
                cert, key = client_cert
                check(lib.smtpout_session_set_client_cert(
                    ptr, encode(cert, "client_cert", "path"),
                    encode(key, "client_cert", "path")),
                    describe("client_cert", client_cert, "unreadable, not "
                             "PEM, or a key that is not the certificate's"),
                    argument="client_cert", value=client_cert)
            if not chunking:
                check(lib.smtpout_session_set_chunking(ptr, 0))
            for which, ms in timeouts.items():
                check(lib.smtpout_session_set_timeout(ptr, int(which), ms))
        except BaseException:
            self.close()
            raise

    # -- lifetime ------------------------------------------------------

    def close(self) -> None:
        """Frees the C session (idempotent).  Recipients without a result
        get none: call abort() first to have them reported."""
        if self._in_callback:
            raise InvalidState(Error.INVALID_STATE,
                               "close() from inside a callback")
        if self._ptr is not None:
            _sessions.pop(self._key, None)
            self._finalizer()
            self._ptr = None
            self._bodies.clear()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._ptr is None

    # -- calls into C --------------------------------------------------

    def _p(self) -> Any:
        if self._ptr is None:
            raise InvalidState(Error.INVALID_STATE, "the session is closed")
        return self._ptr

    def _io(self, name: str) -> Any:
        if self._in_callback:
            raise InvalidState(Error.INVALID_STATE,
                               "%s() from inside a callback" % name)
        return self._p()

    def _reraise(self) -> None:
        """Raises the first exception a callback raised during the C call
        that just returned."""
        exc, self._pending = self._pending, None
        if exc is not None:
            raise exc

    def _after(self, rv: int) -> int:
        self._reraise()
        return check(rv)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Runs a Python callback for C, keeping any exception for
        _reraise() (ctypes would only print it)."""
        self._in_callback += 1
        try:
            return fn(*args)
        except BaseException as e:
            if self._pending is None:
                self._pending = e
            return None
        finally:
            self._in_callback -= 1

    # -- C callbacks ---------------------------------------------------

    def _read_body(self, message_id, buf, buflen, nread, eof):
        self._in_callback += 1
        try:
            body = self._bodies.get(message_id)
            if body is None:
                return Error.CALLBACK_FAILURE
            chunk, end = body.read(buflen)
            if chunk is None:
                return Error.WOULDBLOCK
            n = len(chunk)
            if n > buflen:
                raise ValueError("body read() returned more than asked")
            if n:
                ctypes.memmove(buf, bytes(chunk), n)
            nread[0] = n
            eof[0] = 1 if end else 0
            return 0
        except BaseException as e:
            # The library drops the connection without ending the data:
            # nothing is delivered, the recipients are deferred.
            if self._pending is None:
                self._pending = e
            return Error.CALLBACK_FAILURE
        finally:
            self._in_callback -= 1

    def _on_result_c(self, rp):
        r = Result._from_c(rp)
        self.results.append(r)
        if self.on_result:
            self.on_result(r)

    def _on_message_done_c(self, message_id):
        if self._bodies.pop(message_id, None) is None:
            self._done_early.add(message_id)  # inside submit(): see there
        if self.on_message_done:
            self.on_message_done(message_id)

    def _on_tls_c(self, ip):
        if self.on_tls:
            self.on_tls(TLSInfo._from_c(ip))

    def _on_trace_c(self, direction, line, length):
        if self.on_trace:
            self.on_trace(Trace(direction), ctypes.string_at(line, length))

    # -- the envelope --------------------------------------------------

    def submit(self, sender: StrOrBytes,
               recipients: Union[StrOrBytes, Sequence[StrOrBytes]],
               body: Any, *, size: Optional[int] = None,
               flags: Optional[int] = None, notify: Any = None,
               ret: Any = None, envid: Optional[str] = None,
               orcpt: Any = None) -> int:
        """Queues a message and returns its id.  `body` is bytes-like, str
        (UTF-8), or a binary file object (see _Body); it is handed over raw
        and the library canonicalises line ends and dot-stuffs it.  For a
        bytes body, `size` and `flags` default to what the library's scan
        of it says (the size on the wire; 8BITMIME, SMTPUTF8,
        NO_7BIT_CONVERSION as needed); a stream must pass its own flags if
        it is not 7-bit.  `notify` (a Notify or "SUCCESS,DELAY"), `ret`,
        `envid` and `orcpt` (a list aligned with the recipients, or a dict
        {recipient: "rfc822;address"}) ask for delivery status
        notifications (RFC 3461; sent where the server offers DSN).
        Allowed before start(), during the session, and from callbacks."""
        src = _Body(body)
        if isinstance(recipients, (str, bytes)):
            recipients = [recipients]
        snd = encode(sender, "sender", "address")
        enc = [encode(r, "recipient", "address") for r in recipients]
        arr = (ctypes.c_char_p * max(len(enc), 1))(*enc)
        if flags is None or size is None:
            scan_size, scan_flags = src.scan()
            flags = scan_flags if flags is None else flags
            size = scan_size if size is None else size
        dsn = dsn_request(recipients, notify, ret, envid, orcpt)
        rv = lib.smtpout_session_submit_dsn(self._p(), snd, arr, len(enc),
                                            int(size), int(flags),
                                            dsn.ptr if dsn else None)
        if dsn is not None:
            dsn.close()  # the session copied it
        if rv > 0 and rv not in self._done_early:
            self._bodies[rv] = src
        self._done_early.discard(rv)
        if not self._in_callback:
            self._reraise()
        if rv == Error.BAD_ADDRESS:
            _raise_bad_address(sender, recipients)
        if rv == Error.INVALID_ARGUMENT and not enc:
            check(rv, "no recipients")
        return check(rv)

    def quit(self) -> None:
        """No more messages: QUIT once the queued ones are done."""
        rv = lib.smtpout_session_quit(self._p())
        if not self._in_callback:
            self._reraise()
        check(rv)

    # -- I/O -----------------------------------------------------------

    def start(self, now: Optional[int] = None) -> None:
        """The TCP connection is established: wait for the greeting."""
        p = self._io("start")
        self._after(lib.smtpout_session_start(
            p, now_ms() if now is None else now))

    def feed(self, data: bytes, now: Optional[int] = None) -> None:
        """Bytes received from the server (all are consumed)."""
        p = self._io("feed")
        n = len(data)
        buf = (ctypes.c_uint8 * n).from_buffer_copy(data) if n else None
        self._after(lib.smtpout_session_feed(
            p, buf, n, now_ms() if now is None else now))

    def feed_eof(self, now: Optional[int] = None) -> None:
        """The server closed the connection, or reading/writing failed."""
        p = self._io("feed_eof")
        self._after(lib.smtpout_session_feed_eof(
            p, now_ms() if now is None else now))

    def peek_output(self, now: Optional[int] = None) -> bytes:
        """The bytes to write next (a copy; b"" when there are none).
        Call consume_output() right after writing some of them."""
        p = self._io("peek_output")
        data = ctypes.POINTER(ctypes.c_uint8)()
        length = ctypes.c_size_t()
        self._after(lib.smtpout_session_peek_output(
            p, ctypes.byref(data), ctypes.byref(length),
            now_ms() if now is None else now))
        return ctypes.string_at(data, length.value) if length.value else b""

    def consume_output(self, n: int, now: Optional[int] = None) -> None:
        """The first `n` bytes of the last peek_output() were written."""
        p = self._io("consume_output")
        self._after(lib.smtpout_session_consume_output(
            p, n, now_ms() if now is None else now))

    def handle_expiry(self, now: Optional[int] = None) -> None:
        """Call when `now` reached .expiry (harmless earlier)."""
        p = self._io("handle_expiry")
        self._after(lib.smtpout_session_handle_expiry(
            p, now_ms() if now is None else now))

    def abort(self, now: Optional[int] = None) -> None:
        """Ends the session at once; undecided recipients are deferred."""
        p = self._io("abort")
        self._after(lib.smtpout_session_abort(
            p, now_ms() if now is None else now))

    def resume_body(self) -> None:
        """A body stream that returned None has data again."""
        check(lib.smtpout_session_resume_body(self._p()))

    # -- socket helpers built on the calls above -------------------------

    def receive(self, sock: Any, now: Optional[int] = None,
                bufsize: int = 65536) -> int:
        """Reads once from a non-blocking socket and feeds the session:
        end of file or a socket error become feed_eof().  A read that
        leaves the session with nothing to send is acknowledged at once
        (TCP_QUICKACK, see ack_if_idle()).  Returns the number of bytes
        fed (0 also when the read would block)."""
        try:
            data = sock.recv(bufsize)
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self.feed_eof(now)
            return 0
        if data:
            self.feed(data, now)
            ack_if_idle(self, sock)
        else:
            self.feed_eof(now)
        return len(data)

    def flush(self, sock: Any, now: Optional[int] = None) -> int:
        """Writes what the session has to send to a non-blocking socket
        until it has nothing more or the socket is full.  A write error
        becomes feed_eof().  Returns the number of bytes written."""
        total = 0
        while self.want_write:
            data = self.peek_output(now)
            if not data:
                break
            try:
                n = sock.send(data)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.feed_eof(now)
                break
            self.consume_output(n, now)
            total += n
            if n < len(data):
                break
        return total

    # -- state ---------------------------------------------------------

    @property
    def want_read(self) -> bool:
        return bool(lib.smtpout_session_want_read(self._p()))

    @property
    def want_write(self) -> bool:
        return bool(lib.smtpout_session_want_write(self._p()))

    @property
    def expiry(self) -> Optional[int]:
        """The next deadline (ms, same clock as `now`), or None."""
        e = lib.smtpout_session_expiry(self._p())
        return None if e == NO_EXPIRY else e

    def timeout(self, now: Optional[int] = None) -> Optional[float]:
        """Seconds until .expiry (0 when passed), or None: the timeout to
        give selectors/poll."""
        e = self.expiry
        if e is None:
            return None
        now = now_ms() if now is None else now
        return max(0, e - now) / 1000.0

    @property
    def is_done(self) -> bool:
        """Over, with nothing left to write: close the socket."""
        return bool(lib.smtpout_session_is_done(self._p()))

    @property
    def close_reason(self) -> CloseReason:
        """Why the connection ended: CloseReason.NONE while it runs and
        after a clean QUIT (smtpout_session_close_reason())."""
        return CloseReason(lib.smtpout_session_close_reason(self._p()))

    @property
    def close_text(self) -> str:
        """What ended the connection, in words; "" when nothing did."""
        return text(lib.smtpout_session_close_text(self._p())) or ""

    @property
    def tls_info(self) -> TLSInfo:
        return TLSInfo._from_c(lib.smtpout_session_tls_info(self._p()))

    @property
    def capabilities(self) -> Cap:
        return Cap(lib.smtpout_session_capabilities(self._p()))

    @property
    def auth_outcome(self) -> AuthOutcome:
        """What happened to SMTP AUTH (AuthOutcome.NONE without
        credentials)."""
        return AuthOutcome(lib.smtpout_session_auth_outcome(self._p()))

    @property
    def auth_mechanism(self) -> Optional[str]:
        """The SASL mechanism AUTH used or tried, or None."""
        return text(lib.smtpout_session_auth_mechanism(self._p()))

    @property
    def policy_starttls(self) -> StartTLS:
        return StartTLS(lib.smtpout_session_policy_starttls(self._p()))

    @property
    def policy_allow_invalid_certs(self) -> bool:
        return bool(lib.smtpout_session_policy_allow_invalid_certs(
            self._p()))


def address_check(address: StrOrBytes) -> bool:
    """True when `address` can go into MAIL FROM/RCPT TO safely (an
    address with a NUL character raises BadAddress)."""
    return lib.smtpout_address_check(
        encode(address, "address", "address")) == 0


def _raise_bad_address(sender: StrOrBytes,
                       recipients: Sequence[StrOrBytes]) -> None:
    """The library refused the envelope: say which address."""
    bad = [("recipient", r) for r in recipients if not address_check(r)]
    if sender and not address_check(sender):
        bad.insert(0, ("sender", sender))
    argument, value = bad[0] if bad else ("envelope", None)
    check(Error.BAD_ADDRESS,
          describe(argument, value),
          argument=argument, value=value)
