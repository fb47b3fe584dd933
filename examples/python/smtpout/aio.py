"""smtpout on asyncio: the sans-I/O sessions driven by the running loop
itself (loop.add_reader/add_writer on the socket, loop.call_at for the
session's deadline, loop.getaddrinfo for the server's name): no thread per
message, any number of deliveries at once.

    result = await smtpout.aio.send("127.0.0.1:2525", "mx.test.example",
                                    "sender@example.org", ["b@test.example"],
                                    message, ca_file="ca.pem")

    async with smtpout.aio.Connection("127.0.0.1:2525",
                                      "mx.test.example") as conn:
        r1 = await conn.send("sender@example.org", ["a@test.example"], m1)
        r2 = await conn.send("sender@example.org", ["b@test.example"], m2)

send() takes the arguments of smtpout.send() and returns the same
SendResult; it connects to each address of the server in turn and makes
the plaintext fallback the policy permits, as the C delivery driver does.
The session's clock is the loop's (loop.time(), in milliseconds).
Cancelling a task drops its connection at once (the C session is freed,
the socket closed).
"""
from __future__ import annotations

import asyncio
import dataclasses
import errno
import os
import socket
from typing import Any, Callable, Dict, List, Optional, Tuple

from ._message import Message, MessageArg
from ._dsn import dsn_action, dsn_request
from ._options import (ConfigArg, Options, Server, TraceFn, auth_tuple,
                       client_pair, recipient_list)
from ._strings import StrOrBytes, StrPath
from ._types import Notify, Result, Status, TLSInfo
from .connection import (_BAD_SYNTAX, Link, _ConnectionCore, _Envelope,
                         check_sender, connect_error, connect_failure_text,
                         as_text, format_address, local_result,
                         resolve_policy)
from .deliver import Attempt, SendResult
from .errors import Error, SmtpoutError, error_for
from .session import address_check

__all__ = ["send", "Connection", "connect"]


class _Driver:
    """Runs one Link on the loop: a reader while the session wants to
    read, a writer while it has bytes to write, one call_at timer on its
    expiry.  wait(over) returns once over() or the session is done."""

    def __init__(self, loop: asyncio.AbstractEventLoop, link: Link):
        self.loop = loop
        self.link = link
        self.fd = link.sock.fileno()
        self.reading = self.writing = False
        self.timer: Optional[asyncio.TimerHandle] = None
        self.armed: Optional[int] = None
        self.waiters: List[Tuple[Callable[[], bool], asyncio.Future]] = []

    def now(self) -> int:
        return int(self.loop.time() * 1000)

    def _on_readable(self) -> None:
        now = self.now()
        self.link.readable(now)
        self.link.flush(now)  # a reply usually lets the session send more
        self.update()

    def _on_writable(self) -> None:
        self.link.flush(self.now())
        self.update()

    def _on_expiry(self) -> None:
        # call_at may fire a hair early (the loop's clock resolution):
        # the deadline it was armed for has come.
        now = max(self.now(), self.armed or 0)
        self.timer = self.armed = None
        self.link.expire(now)
        self.link.flush(now)
        self.update()

    def update(self) -> None:
        """Follows what the session wants now, and wakes the waiters whose
        condition holds."""
        s = self.link.session
        done = s.closed or s.is_done
        want_read = not done and s.want_read
        want_write = not done and s.want_write
        if want_read != self.reading:
            if want_read:
                self.loop.add_reader(self.fd, self._on_readable)
            else:
                self.loop.remove_reader(self.fd)
            self.reading = want_read
        if want_write != self.writing:
            if want_write:
                self.loop.add_writer(self.fd, self._on_writable)
            else:
                self.loop.remove_writer(self.fd)
            self.writing = want_write
        expiry = None if done else s.expiry
        if expiry != self.armed:
            if self.timer is not None:
                self.timer.cancel()
            self.timer = None if expiry is None else \
                self.loop.call_at(expiry / 1000.0, self._on_expiry)
            self.armed = expiry
        for over, fut in self.waiters:
            if not fut.done() and (done or over()):
                fut.set_result(None)

    async def wait(self, over: Callable[[], bool]) -> None:
        self.update()
        s = self.link.session
        if s.closed or s.is_done or over():
            return
        fut = self.loop.create_future()
        entry = (over, fut)
        self.waiters.append(entry)
        try:
            await fut
        finally:
            self.waiters.remove(entry)

    def stop(self) -> None:
        if self.reading:
            self.loop.remove_reader(self.fd)
        if self.writing:
            self.loop.remove_writer(self.fd)
        if self.timer is not None:
            self.timer.cancel()
        self.reading = self.writing = False
        self.timer = self.armed = None


async def _open_socket(loop: asyncio.AbstractEventLoop, family: int,
                       type_: int, proto: int, sockaddr: Any,
                       timeout: float) -> Tuple[Optional[socket.socket], int]:
    """A connected non-blocking socket, or (None, errno)."""
    sock = socket.socket(family, type_, proto)
    sock.setblocking(False)
    # Not asyncio.wait_for(): up to Python 3.11 it loses a cancellation
    # that comes as the connect completes, leaving the task running.
    connecting = asyncio.ensure_future(loop.sock_connect(sock, sockaddr))
    try:
        await asyncio.wait({connecting}, timeout=timeout)
        if not connecting.done():
            connecting.cancel()
            await asyncio.wait({connecting})
            sock.close()
            return None, errno.ETIMEDOUT
        exc = connecting.exception()
        if exc is None:
            return sock, 0
        sock.close()
        if isinstance(exc, OSError):
            return None, exc.errno or errno.ECONNREFUSED
        raise exc
    except BaseException:
        connecting.cancel()
        sock.close()
        raise


async def _resolve(loop: asyncio.AbstractEventLoop, host: str,
                   port: int) -> List[Any]:
    return await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                  flags=socket.AI_NUMERICSERV)


class _Delivery:
    """send(): what smtpout_delivery_run() does, on the loop."""

    def __init__(self, opts: Options, sender: StrOrBytes,
                 recipients: List[StrOrBytes], msg: Message,
                 dsn: Optional[Dict[str, Any]] = None):
        self.opts, self.sender, self.recipients, self.msg = \
            opts, sender, recipients, msg
        # notify, ret, envid; orcpt aligned with the recipients.
        self.dsn = dsn or {}
        n = len(recipients)
        self.slots: List[Optional[Result]] = [None] * n
        self.attempts: List[Attempt] = []
        self.exc: Optional[BaseException] = None

    def wants_retry(self, i: int) -> bool:
        """Never tried, or its last result lets another address take it
        (smtpout_result_try_another_address(), as the C driver asks)."""
        r = self.slots[i]
        return r is None or r.try_another_address

    def decide(self, i: int, status: Status, enhanced: str, text: str,
               try_another_address: bool) -> None:
        r = local_result(self.recipients[i], status, enhanced, text, i,
                         try_another_address)
        notify = self.dsn.get("notify")
        if notify is not None:
            r = dataclasses.replace(r, dsn_notify=Notify.parse(notify))
        self.slots[i] = dataclasses.replace(
            r, dsn_action=dsn_action(r.status, r.dsn_notify, False))

    async def run(self) -> SendResult:
        loop = asyncio.get_running_loop()
        opts = self.opts
        for i, address in enumerate(self.recipients):
            if not address_check(address):
                self.decide(i, Status.BOUNCED, *_BAD_SYNTAX, False)
        policy = resolve_policy(
            opts.shared_config(),
            [a for i, a in enumerate(self.recipients) if self.slots[i] is None],
            opts.mx, opts.starttls, opts.allow_invalid_certs,
            auth=opts.auth is not None)
        try:
            infos = await _resolve(loop, opts.host, opts.port)
        except socket.gaierror as e:
            text = "cannot resolve %s: %s" % (opts.host, e.strerror)
            self.attempts.append(Attempt(opts.host, False,
                                         TLSInfo._no_connection(), text))
            for i in range(len(self.recipients)):
                if self.wants_retry(i):
                    self.decide(i, Status.DEFERRED, "4.4.4", text, True)
            infos = []
        for family, type_, proto, _, sockaddr in infos:
            if not any(self.wants_retry(i)
                       for i in range(len(self.recipients))):
                break
            if await self.attempt(loop, family, type_, proto, sockaddr,
                                  False):
                # Once, on a new connection to the same address, without
                # STARTTLS: never on the connection whose handshake failed.
                await self.attempt(loop, family, type_, proto, sockaddr,
                                   True)
        for i, r in enumerate(self.slots):
            if r is None:
                self.decide(i, Status.DEFERRED, "4.3.0",
                            "no connection attempt could be made", True)
        if self.exc is not None:
            raise self.exc
        return SendResult(recipients=self.slots,  # type: ignore[arg-type]
                          attempts=self.attempts, policy=policy)

    async def attempt(self, loop: asyncio.AbstractEventLoop, family: int,
                      type_: int, proto: int, sockaddr: Any,
                      fallback: bool) -> bool:
        """One connection to one address; True when the policy permits
        the plaintext fallback after it."""
        address = format_address(family, sockaddr)
        todo = [i for i in range(len(self.recipients)) if self.wants_retry(i)]
        if not todo:
            return False
        sock, err = await _open_socket(loop, family, type_, proto, sockaddr,
                                       self.opts.connect_timeout_s())
        if sock is None:
            text = connect_failure_text(address, err)
            self.attempts.append(Attempt(address, fallback,
                                         TLSInfo._no_connection(fallback),
                                         text))
            for i in todo:
                self.decide(i, Status.DEFERRED, "4.4.1", text, True)
            return False
        try:
            link = Link(sock, address, self.opts, plaintext_fallback=fallback)
        except SmtpoutError as e:
            sock.close()
            if e.code != Error.TLS_SETUP:
                raise
            # The session's own trust anchors could not be read: a local
            # problem no other address would fix (as the C driver says).
            text = "TLS setup failed: cannot use the CA file %s" % (
                os.fsdecode(self.opts.ca_file),) if self.opts.ca_file \
                else "TLS setup failed: cannot use the client certificate"

            self.attempts.append(Attempt(address, fallback,
                                         TLSInfo._no_connection(fallback),
                                         text))
            for i in todo:
                self.decide(i, Status.DEFERRED, "4.7.0", text, False)
            return False
        driver = _Driver(loop, link)
        try:
            dsn = dict(self.dsn)
            if dsn.get("orcpt") is not None:
                dsn["orcpt"] = [dsn["orcpt"][i] for i in todo]
            mid = link.submit(self.sender, [self.recipients[i] for i in todo],
                              self.msg, dsn)
            link.session.quit()
            link.session.start(driver.now())
            await driver.wait(lambda: False)
        finally:
            driver.stop()
            link.finish(driver.now())
        got = link.results.get(mid, [])
        for k, i in enumerate(todo):
            r = got[k] if k < len(got) else None
            if r is None:
                self.decide(i, Status.DEFERRED, "4.3.0",
                            "no result: the session ended", True)
                continue
            self.slots[i] = dataclasses.replace(r, message_id=1, index=i)
        if self.exc is None:
            self.exc = link.exc
        assert link.tls is not None
        self.attempts.append(Attempt(address, fallback, link.tls, link.error,
                                     link.auth_outcome, link.auth_mechanism))
        return link.tls.fallback_permitted


async def send(server: Server, mx_name: Optional[str], sender: StrOrBytes,
               recipients: Any, message: MessageArg,
               config: ConfigArg = None, ca_file: Optional[StrPath] = None,
               helo: Optional[str] = None, starttls: Any = None,
               allow_invalid_certs: Optional[bool] = None,
               trace: Optional[TraceFn] = None,
               timeout: Optional[float] = None,
               auth_user: Optional[StrOrBytes] = None,
               auth_password: Optional[StrOrBytes] = None,
               auth_mech: Optional[str] = None, auth_tls_any: bool = False,
               implicit_tls: bool = False,
               client_cert: Optional[StrPath] = None,
               client_key: Optional[StrPath] = None,
               notify: Any = None, ret: Any = None,
               envid: Optional[str] = None, orcpt: Any = None,
               chunking: bool = True) -> SendResult:
    """smtpout.send() as a coroutine on the running loop: the same
    arguments, the same SendResult, the same exceptions for bad arguments
    (raised before any connection).  An exception the trace callback
    raises is raised once the delivery is over."""
    recipients = recipient_list(recipients)
    opts = Options(server, mx_name, config, ca_file, helo, starttls,
                   allow_invalid_certs, trace, timeout,
                   auth_tuple(auth_user, auth_password, auth_mech,
                              auth_tls_any),
                   implicit_tls, client_pair(client_cert, client_key),
                   chunking)
    try:
        check_sender(sender)
        opts.check_names()
        msg = Message(message)
        # Checked now, as send() checks them, before any connection.
        dsn_request(recipients, notify, ret, envid, orcpt)
        if isinstance(orcpt, dict):
            where = {as_text(r): i for i, r in enumerate(recipients)}
            aligned: List[Any] = [None] * len(recipients)
            for r, v in orcpt.items():
                aligned[where[as_text(r)]] = v
            orcpt = aligned
        dsn = dict(notify=notify, ret=ret, envid=envid,
                   orcpt=list(orcpt) if orcpt is not None else None)
        return await _Delivery(opts, sender, recipients, msg, dsn).run()
    finally:
        opts.close()


class Connection(_ConnectionCore):
    """smtpout.Connection on the running loop: one SMTP connection that
    sends several messages in turn.

        async with smtpout.aio.Connection(server, mx_name, ...) as conn:
            result = await conn.send(sender, recipients, message)

    The arguments are send()'s; `async with` (or `await conn.open()`)
    connects, its end sends QUIT (or drops the connection on an
    exception).  Between messages the loop keeps reading the socket, so
    a server that closes an idle connection is noticed at once (.closed).
    """

    def __init__(self, server: Server, mx_name: Optional[str] = None, *,
                 config: ConfigArg = None, ca_file: Optional[StrPath] = None,
                 helo: Optional[str] = None, starttls: Any = None,
                 allow_invalid_certs: Optional[bool] = None,
                 trace: Optional[TraceFn] = None,
                 timeout: Optional[float] = None):
        super().__init__(Options(server, mx_name, config, ca_file, helo,
                                 starttls, allow_invalid_certs, trace,
                                 timeout))
        self._driver: Optional[_Driver] = None
        self._lock: Optional[asyncio.Lock] = None

    async def open(self) -> "Connection":
        """Connects to the first address of the server that accepts
        (ResolveError, ConnectError otherwise).  The SMTP dialogue starts
        with the first message, whose recipients decide the TLS policy."""
        if self._link is not None:
            return self
        loop = asyncio.get_running_loop()
        opts = self._opts
        try:
            opts.check_names()
            try:
                infos = await _resolve(loop, opts.host, opts.port)
            except socket.gaierror as e:
                raise error_for(Error.RESOLVE, "cannot resolve %s: %s" % (
                    opts.host, e.strerror), argument="server",
                    value=opts.host) from None
            errors = []
            for family, type_, proto, _, sockaddr in infos:
                address = format_address(family, sockaddr)
                sock, err = await _open_socket(loop, family, type_, proto,
                                               sockaddr,
                                               opts.connect_timeout_s())
                if sock is None:
                    errors.append(connect_failure_text(address, err))
                    continue
                try:
                    link = Link(sock, address, opts)
                except BaseException:
                    sock.close()
                    raise
                self._link, self._address = link, address
                self._driver = _Driver(loop, link)
                self._lock = asyncio.Lock()
                link.session.start(self._driver.now())
                return self
            raise connect_error(opts.host, errors)
        except BaseException:
            self._finished(int(loop.time() * 1000))
            raise

    async def send(self, sender: StrOrBytes, recipients: Any,
                   message: MessageArg) -> SendResult:
        """Sends one message over this connection (messages sent at once
        from several tasks go in turn) and returns its SendResult.
        ConnectionClosed when the connection is over."""
        env = _Envelope(sender, recipients, message)
        if self._driver is None or self._lock is None:
            raise error_for(Error.CONNECTION_CLOSED, "not connected: use "
                            "async with, or await open() first")
        driver = self._driver
        async with self._lock:
            mid = self._submit(env)
            if mid is not None:
                link, sent = driver.link, mid
                await driver.wait(lambda: link.message_over(sent))
            return self._result(env, mid)

    async def close(self) -> None:
        """QUIT once the messages are done, then the socket is closed.
        Idempotent."""
        driver = self._driver
        if driver is None:
            self._finished(0)
            return
        try:
            s = driver.link.session
            if not s.closed and not s.is_done:
                s.quit()
                await driver.wait(lambda: False)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drops the connection now: messages in flight are deferred."""
        driver = self._driver
        if driver is not None:
            driver.stop()
            self._finished(driver.now())
        else:
            self._finished(0)

    async def __aenter__(self) -> "Connection":
        return await self.open()

    async def __aexit__(self, exc_type: Any, *exc: object) -> None:
        if exc_type is None:
            await self.close()
        else:
            self.abort()


async def connect(server: Server, mx_name: Optional[str] = None,
                  **kwargs: Any) -> Connection:
    """An open Connection (await conn.close() when done)."""
    return await Connection(server, mx_name, **kwargs).open()
