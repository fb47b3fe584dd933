"""One SMTP connection that sends several messages: smtpout.Connection
(blocking, a selectors loop) and the pieces smtpout.aio shares with it.

    with smtpout.Connection("127.0.0.1:2525", "mx.test.example") as conn:
        for message in messages:
            result = conn.send("sender@example.org", ["b@test.example"],
                               message)

A Link is one Session over one connected non-blocking socket: it moves
bytes between them and keeps each message's results.  The drivers (the
selectors loop here, the asyncio one in aio.py) only decide when to call
it.
"""
from __future__ import annotations

import dataclasses
import errno
import os
import selectors
import socket
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ._message import Message, MessageArg
from ._options import ConfigArg, Options, Server, TraceFn, recipient_list
from ._strings import StrOrBytes, StrPath, encode
from ._types import (AuthOutcome, Cap, Result, StartTLS, Status, TLSInfo,
                     starttls_name)
from .config import Config, Policy
from .deliver import Attempt, SendResult
from .errors import BadName, Error, check, describe, error_for
from .session import Session, ack_if_idle, address_check, now_ms

__all__ = ["Connection", "connect"]

_BAD_SYNTAX = ("5.1.3", "bad recipient address syntax")


def format_address(family: int, sockaddr: Tuple[Any, ...]) -> str:
    """"IP:PORT", or "[IPv6]:PORT", as smtpout_attempt_address() says."""
    if family == socket.AF_INET6:
        return "[%s]:%d" % (sockaddr[0], sockaddr[1])
    return "%s:%d" % (sockaddr[0], sockaddr[1])


def as_text(address: StrOrBytes) -> str:
    return address if isinstance(address, str) \
        else address.decode("utf-8", "surrogateescape")


def local_result(address: StrOrBytes, status: Status, enhanced: str,
                 text: str, index: int,
                 try_another_address: bool = False) -> Result:
    """A result decided without a server reply (message 1, like the
    results of send()); `try_another_address` when it says nothing about
    the recipient (a connection that failed), as the C driver's do."""
    return Result(recipient=as_text(address), status=status, code=0,
                  enhanced=enhanced, text=text, possibly_delivered=False,
                  message_id=1, index=index,
                  try_another_address=try_another_address)


def check_sender(sender: StrOrBytes) -> None:
    """What smtpout_delivery_set_sender() checks: "" is the null
    sender."""
    encode(sender, "sender", "address")
    if sender and not address_check(sender):
        check(Error.BAD_ADDRESS, describe("sender", sender),
              argument="sender", value=sender)


def resolve_policy(config: Config, recipients: Sequence[StrOrBytes],
                   mx: StrOrBytes, starttls: Optional[StartTLS] = None,
                   allow_invalid_certs: bool = False,
                   auth: bool = False) -> Policy:
    """The policy send() reports, which is the one its sessions enforce (as
    smtpout_delivery_policy() says it): the one fixed by `starttls`, else
    the strictest over the recipients' domains through `mx`, where a
    domain that is no valid name matches no domain rule and counts as the
    MX alone; with credentials (`auth`), optional becomes require."""
    p = _resolve_policy(config, recipients, mx, starttls,
                        allow_invalid_certs)
    if not auth or p.starttls != StartTLS.OPTIONAL:
        return p
    return dataclasses.replace(
        p, starttls=StartTLS.REQUIRE,
        source=dict(p.source, starttls="auth"),
        rule=dict(p.rule, starttls="smtpout_delivery_set_auth"),
        explain=p.explain + "starttls = require\n  AUTH credentials are "
        "never sent in clear: they make optional require\n")


def _resolve_policy(config: Config, recipients: Sequence[StrOrBytes],
                    mx: StrOrBytes, starttls: Optional[StartTLS],
                    allow_invalid_certs: bool) -> Policy:
    if starttls is not None:
        return fixed_policy(starttls, allow_invalid_certs)
    domains = [as_text(r).rpartition("@")[2] for r in recipients]
    try:
        return config.policy(domains, mx)
    except BadName as e:
        if e.argument != "domain":
            raise
    good = [d for d in domains if config_takes_domain(config, d)]
    bad = [d for d in domains if d not in good]
    alone = config.policy([], mx)
    if not good:
        return alone
    both = config.policy(good, mx)
    # Knob by knob, the stricter of the two, with its source and rule.
    strict_tls = both.starttls >= alone.starttls
    strict_certs = not both.allow_invalid_certs or alone.allow_invalid_certs
    pick = {"starttls": both if strict_tls else alone,
            "allow_invalid_certs": both if strict_certs else alone}
    return Policy(
        starttls=pick["starttls"].starttls,
        allow_invalid_certs=pick["allow_invalid_certs"].allow_invalid_certs,
        source={k: p.source[k] for k, p in pick.items()},
        rule={k: p.rule[k] for k, p in pick.items()},
        explain=both.explain + "recipient domains that are not valid names "
        "(%s) match no domain rule and count as the MX alone:\n%s"
        % (", ".join(bad), alone.explain))


def config_takes_domain(config: Config, domain: str) -> bool:
    try:
        config.policy([domain])
        return True
    except BadName:
        return False


def fixed_policy(starttls: StartTLS, allow_invalid_certs: bool) -> Policy:
    """What smtpout_delivery_policy() reports for a policy the host fixed
    with smtpout_delivery_set_tls_policy()."""
    what = "smtpout_delivery_set_tls_policy"
    values = [("starttls", starttls_name(starttls)),
              ("allow-invalid-certs",
               "true" if allow_invalid_certs else "false")]
    return Policy(
        starttls=StartTLS(starttls),
        allow_invalid_certs=bool(allow_invalid_certs),
        source={"starttls": "host", "allow_invalid_certs": "host"},
        rule={"starttls": what, "allow_invalid_certs": what},
        explain="".join("%s = %s\n  fixed by the host (%s); no rule was "
                        "consulted\n" % (k, v, what) for k, v in values)
        + "".join("%s = optional\n  built-in default (the host fixed the "
                  "TLS policy; no rule was consulted)\n" % k
                  for k in ("dane", "mta-sts")))


def connect_error(host: str, errors: List[str]) -> Exception:
    return error_for(Error.CONNECT, "; ".join(errors) or host,
                     argument="server", value=host)


def connect_failure_text(address: str, err: Optional[int]) -> str:
    return "connect to %s: %s" % (address,
                                  os.strerror(err or errno.ECONNREFUSED))


class Link:
    """One Session over one connected, non-blocking socket.

    readable(), flush() and expire() are what a loop calls when the socket
    is readable, writable, or the session's expiry has come.  An exception
    a callback raised (the trace, the body's read()) is kept in .exc, the
    first one only, and the session goes on: the driver raises it once the
    message or the delivery is over, so that it never leaves a connection
    half-driven.
    """

    def __init__(self, sock: socket.socket, address: str, opts: Options,
                 plaintext_fallback: bool = False):
        self.sock = sock
        self.address = address
        self.exc: Optional[BaseException] = None
        self.results: Dict[int, List[Optional[Result]]] = {}
        self.done: set = set()
        self.tls: Optional[TLSInfo] = None
        self.error: Optional[str] = None
        self.auth_outcome = AuthOutcome.NONE
        self.auth_mechanism: Optional[str] = None
        self.session = Session(opts.mx, plaintext_fallback=plaintext_fallback,
                               on_result=self._on_result,
                               on_message_done=self.done.add,
                               on_trace=opts.trace, **opts.session_args())

    def _on_result(self, r: Result) -> None:
        slots = self.results.setdefault(r.message_id, [])
        while len(slots) <= r.index:
            slots.append(None)
        slots[r.index] = r

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as e:  # noqa: BLE001 - kept for the driver
            if self.exc is None:
                self.exc = e
            return None

    def submit(self, sender: StrOrBytes, recipients: Sequence[StrOrBytes],
               msg: Message, dsn: Optional[Dict[str, Any]] = None) -> int:
        """Queues `msg`; `dsn` holds Session.submit()'s notify, ret,
        envid and orcpt (orcpt aligned with `recipients`)."""
        mid = self.session.submit(sender, recipients, msg.source(),
                                  size=msg.wire_size, flags=msg.flags,
                                  **(dsn or {}))
        self.results.setdefault(mid, [None] * len(recipients))
        return mid

    def message_over(self, mid: int) -> bool:
        return mid in self.done or self.session.is_done

    def readable(self, now: int) -> None:
        try:
            data = self.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if data:
            self._call(self.session.feed, data, now)
            ack_if_idle(self.session, self.sock)
        else:
            self._call(self.session.feed_eof, now)

    def flush(self, now: int) -> None:
        """Writes what the session has until the socket is full."""
        s = self.session
        while not s.is_done and s.want_write:
            data = self._call(s.peek_output, now)
            if not data:
                return
            try:
                n = self.sock.send(data)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._call(s.feed_eof, now)
                return
            self._call(s.consume_output, n, now)
            if n < len(data):
                return

    def expire(self, now: int) -> None:
        self._call(self.session.handle_expiry, now)

    def finish(self, now: int) -> None:
        """Ends the session (undecided recipients deferred), keeps its TLS
        outcome and error, frees it and closes the socket.  Idempotent."""
        s = self.session
        if not s.closed:
            if not s.is_done:
                self._call(s.abort, now)
            self.tls = s.tls_info
            self.error = s.close_text or None
            self.auth_outcome = s.auth_outcome
            self.auth_mechanism = s.auth_mechanism
            s.close()
        self.sock.close()

    def attempt(self, plaintext_fallback: bool = False) -> Attempt:
        s = self.session
        tls = s.tls_info if not s.closed else self.tls
        error = (s.close_text or None) if not s.closed else self.error
        assert tls is not None
        return Attempt(address=self.address,
                       plaintext_fallback=plaintext_fallback, tls=tls,
                       error=error,
                       auth_outcome=s.auth_outcome if not s.closed
                       else self.auth_outcome,
                       auth_mechanism=s.auth_mechanism if not s.closed
                       else self.auth_mechanism)


def run_until(link: Link, over: Callable[[], bool],
              block: bool = True) -> None:
    """The blocking driver: a selectors loop over one Link until over()
    or the session is done, waking for the session's expiry.  With block
    false, one pass over what is ready now."""
    sel = selectors.DefaultSelector()
    try:
        sel.register(link.sock, selectors.EVENT_READ)
        s = link.session
        link.flush(now_ms())
        while not s.is_done and (not block or not over()):
            events = ((selectors.EVENT_READ if s.want_read else 0) |
                      (selectors.EVENT_WRITE if s.want_write else 0))
            timeout = s.timeout() if block else 0
            if events:
                sel.modify(link.sock, events)
                ready = sel.select(timeout)
            else:
                # Only a deadline to wait for (a body that said "no data
                # now" waits for resume_body(), which only its owner can
                # call: nothing to wait for is the end).
                ready = []
                if timeout is None:
                    break
                time.sleep(timeout)
            now = now_ms()
            for _, mask in ready:
                if mask & selectors.EVENT_READ:
                    link.readable(now)
            link.flush(now)
            link.expire(now_ms())
            link.flush(now_ms())
            if not block:
                break
    finally:
        sel.close()


class _Envelope:
    """One message handed to a Connection: the recipients the session
    takes, and the local results of those it cannot."""

    def __init__(self, sender: StrOrBytes, recipients: Any,
                 message: MessageArg):
        check_sender(sender)
        self.sender = sender
        self.recipients = recipient_list(recipients)
        self.msg = Message(message)
        self.local: Dict[int, Result] = {}
        self.sent: List[int] = []  # positions handed to the session
        for i, r in enumerate(self.recipients):
            if address_check(r):
                self.sent.append(i)
            else:
                self.local[i] = local_result(r, Status.BOUNCED,
                                             *_BAD_SYNTAX, index=i)


class _ConnectionCore:
    """What the blocking and the asyncio Connection share."""

    _link: Optional[Link]

    def __init__(self, opts: Options):
        self._opts = opts
        self._link = None
        self._tls: Optional[TLSInfo] = None
        self._error: Optional[str] = None
        self._address: Optional[str] = None

    def _live_link(self) -> Link:
        link = self._link
        if link is None or link.session.closed:
            raise error_for(Error.CONNECTION_CLOSED, "the connection is "
                            "closed")
        if link.session.is_done:
            raise error_for(Error.CONNECTION_CLOSED, "the connection to %s "
                            "is over: %s" % (link.address,
                                             link.session.close_text or
                                             "QUIT"))
        return link

    def _submit(self, env: _Envelope) -> Optional[int]:
        if not env.sent:
            return None
        link = self._live_link()
        return link.submit(env.sender, [env.recipients[i] for i in env.sent],
                           env.msg)

    def _result(self, env: _Envelope, mid: Optional[int]) -> SendResult:
        link = self._link
        assert link is not None
        slots: List[Optional[Result]] = [None] * len(env.recipients)
        for i, r in env.local.items():
            slots[i] = dataclasses.replace(r, message_id=mid or 0)
        got = link.results.get(mid, []) if mid is not None else []
        for k, i in enumerate(env.sent):
            got_k = got[k] if k < len(got) else None
            slots[i] = dataclasses.replace(got_k, index=i) \
                if got_k is not None else local_result(env.recipients[i], Status.DEFERRED,
                                  "4.3.0", "no result: the session ended",
                                  index=i)
        if mid is not None:
            link.results.pop(mid, None)
        exc, link.exc = link.exc, None
        if exc is not None:
            raise exc
        policy = resolve_policy(self._opts.shared_config(),
                                [env.recipients[i] for i in env.sent],
                                self._opts.mx, self._opts.starttls,
                                self._opts.allow_invalid_certs)
        return SendResult(recipients=slots,  # type: ignore[arg-type]
                          attempts=[link.attempt()], policy=policy)

    def _finished(self, now: int) -> None:
        link = self._link
        if link is not None:
            link.finish(now)
            self._tls, self._error = link.tls, link.error
        self._opts.close()

    # -- state -----------------------------------------------------------

    @property
    def address(self) -> Optional[str]:
        """"IP:PORT" of the server, once connected."""
        return self._address

    @property
    def tls(self) -> TLSInfo:
        """The TLS outcome (outcome "none" until STARTTLS is decided)."""
        link = self._link
        if link is not None and not link.session.closed:
            return link.session.tls_info
        return self._tls or TLSInfo._no_connection()

    @property
    def capabilities(self) -> Cap:
        link = self._link
        if link is None or link.session.closed:
            return Cap(0)
        return link.session.capabilities

    @property
    def error(self) -> Optional[str]:
        """What ended the connection badly, or None."""
        link = self._link
        if link is not None and not link.session.closed:
            return link.session.close_text or None
        return self._error

    @property
    def closed(self) -> bool:
        """True once the SMTP session is over (QUIT, or a failure)."""
        link = self._link
        return link is None or link.session.closed or link.session.is_done


class Connection(_ConnectionCore):
    """One SMTP connection to `server` that sends any number of messages
    in turn, blocking; the arguments are send()'s.

        with smtpout.Connection("127.0.0.1:2525", "mx.test.example",
                                ca_file="ca.pem") as conn:
            r1 = conn.send("s@example.org", ["a@test.example"], message1)
            r2 = conn.send("s@example.org", ["b@test.example"], message2)

    The constructor connects (to the first address of `server` that
    accepts: ResolveError or ConnectError otherwise); the end of the with
    block sends QUIT (or, on an exception, drops the connection).  The TLS
    policy is fixed by the first message: its recipients' domains and the
    MX name, as for send(); a later message that needs a stricter one
    raises PolicyConflict (send it over a new connection).  There is no
    plaintext fallback: when .tls.fallback_permitted, a new connection
    with starttls="disable" may deliver what this one could not.
    """

    def __init__(self, server: Server, mx_name: Optional[str] = None, *,
                 config: ConfigArg = None, ca_file: Optional[StrPath] = None,
                 helo: Optional[str] = None, starttls: Any = None,
                 allow_invalid_certs: Optional[bool] = None,
                 trace: Optional[TraceFn] = None,
                 timeout: Optional[float] = None):
        opts = Options(server, mx_name, config, ca_file, helo, starttls,
                       allow_invalid_certs, trace, timeout)
        super().__init__(opts)
        self._driven = False
        try:
            self._link = self._connect()
        except BaseException:
            opts.close()
            raise
        self._address = self._link.address

    def _connect(self) -> Link:
        opts = self._opts
        opts.check_names()
        try:
            infos = socket.getaddrinfo(opts.host, opts.port,
                                       type=socket.SOCK_STREAM,
                                       flags=socket.AI_NUMERICSERV)
        except socket.gaierror as e:
            raise error_for(Error.RESOLVE, "cannot resolve %s: %s" % (
                opts.host, e.strerror), argument="server",
                value=opts.host) from None
        errors = []
        for family, type_, proto, _, sockaddr in infos:
            address = format_address(family, sockaddr)
            sock = socket.socket(family, type_, proto)
            try:
                sock.settimeout(opts.connect_timeout_s())
                sock.connect(sockaddr)
                sock.setblocking(False)
                link = Link(sock, address, opts)
                link.session.start()
                return link
            except socket.timeout:
                sock.close()
                errors.append(connect_failure_text(address, errno.ETIMEDOUT))
            except OSError as e:
                sock.close()
                errors.append(connect_failure_text(address, e.errno))
            except BaseException:
                sock.close()
                raise
        raise connect_error(opts.host, errors)

    def send(self, sender: StrOrBytes, recipients: Any,
             message: MessageArg) -> SendResult:
        """Sends one message over this connection and returns its
        SendResult (attempts: this connection).  Recipients the library
        cannot send to are bounced (5.1.3) without reaching the server, as
        with send().  ConnectionClosed when the connection is already
        over."""
        env = _Envelope(sender, recipients, message)
        link = self._live_link()
        if self._driven:
            # Notice a server that closed the idle connection before
            # handing it a message.
            run_until(link, lambda: True, block=False)
            self._live_link()
        mid = self._submit(env)
        self._driven = True
        if mid is not None:
            sent: int = mid
            run_until(link, lambda: link.message_over(sent))
        return self._result(env, mid)

    def close(self) -> None:
        """QUIT, once every message is done; then the socket is closed.
        Idempotent."""
        link = self._link
        if link is not None and not link.session.closed:
            try:
                if not link.session.is_done:
                    link.session.quit()
                    run_until(link, lambda: False)
            finally:
                self._finished(now_ms())

    def abort(self) -> None:
        """Drops the connection now: messages in flight are deferred."""
        self._finished(now_ms())

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def connect(server: Server, mx_name: Optional[str] = None,
            **kwargs: Any) -> Connection:
    """Connection(server, mx_name, ...): see Connection."""
    return Connection(server, mx_name, **kwargs)
