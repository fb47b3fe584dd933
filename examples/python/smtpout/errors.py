"""Library error codes as Python exceptions.

A negative return code from the C library becomes an SmtpoutError (or the
subclass for that code) carrying .code, .name and the library's text.  A
server's reply is never an exception: it is data in a Result.

Exceptions about an argument say which one and what was wrong with it:
str(e) is "<the library's text>: <argument> <value>: <why>", and .argument
and .value keep them (None when the library did not say).
"""
from __future__ import annotations

import enum
from typing import Any, Dict, Optional, Type

from ._lib import lib


class Error(enum.IntEnum):
    """enum smtpout_error (include/smtpout/common.h), and three codes of
    this binding's own drivers, from numbers the library retired: RESOLVE,
    CONNECT and CONNECTION_CLOSED (ResolveError, ConnectError,
    ConnectionClosed).  Why a session's connection ended is not an error:
    see CloseReason."""
    OK = 0
    INVALID_ARGUMENT = -501
    NOMEM = -502
    INVALID_STATE = -503
    WOULDBLOCK = -504
    CALLBACK_FAILURE = -505
    CONNECTION_CLOSED = -508
    CONFIG = -512
    BAD_NAME = -513
    BAD_ADDRESS = -514
    POLICY_CONFLICT = -515
    RESOLVE = -516
    CONNECT = -517
    IO = -518
    TLS_SETUP = -520
    SYNTAX = -521

    def __str__(self) -> str:
        return self.name

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)


# The texts of the codes only this binding raises.
_OWN_TEXT: Dict[int, str] = {
    Error.CONNECTION_CLOSED: "connection closed",
    Error.RESOLVE: "name resolution failed",
    Error.CONNECT: "could not connect",
}


def strerror(code: int) -> str:
    """The library's description of an error code (this binding's own for
    RESOLVE, CONNECT and CONNECTION_CLOSED)."""
    return _OWN_TEXT.get(int(code)) or lib.smtpout_strerror(int(code)).decode()


class SmtpoutError(Exception):
    """A library error.  .code is the negative C code, .name its Error
    name (or None for a code this binding does not know)."""

    def __init__(self, code: int, detail: Optional[str] = None, *,
                 argument: Optional[str] = None, value: Any = None):
        self.code = int(code)
        try:
            self.name: Optional[str] = Error(self.code).name
        except ValueError:
            self.name = None
        self.detail = detail
        self.argument = argument
        self.value = value
        text = strerror(self.code)
        if detail:
            text = "%s: %s" % (text, detail)
        super().__init__(text)


class InvalidArgument(SmtpoutError, ValueError):
    pass


class InvalidState(SmtpoutError):
    pass


class BadName(SmtpoutError, ValueError):
    pass


class BadAddress(SmtpoutError, ValueError):
    pass


class PolicyConflict(SmtpoutError):
    pass


class ResolveError(SmtpoutError):
    """connect(): the server's name did not resolve."""


class ConnectError(SmtpoutError):
    """connect(): no address of the server accepted the connection."""


class ConnectionClosed(SmtpoutError):
    """A Connection whose SMTP session is over was asked to send."""


class ConfigError(SmtpoutError):
    """An invalid configuration.  .errors lists the library's messages, each
    "FILE:LINE: message"; str() of the exception includes them all."""

    def __init__(self, code: int, text: str):
        self.errors = [line for line in text.splitlines() if line]
        super().__init__(code, "; ".join(self.errors) or None)


_CLASSES: Dict[int, Type[SmtpoutError]] = {
    Error.INVALID_ARGUMENT: InvalidArgument,
    Error.INVALID_STATE: InvalidState,
    Error.BAD_NAME: BadName,
    Error.BAD_ADDRESS: BadAddress,
    Error.POLICY_CONFLICT: PolicyConflict,
    Error.RESOLVE: ResolveError,
    Error.CONNECT: ConnectError,
    Error.CONNECTION_CLOSED: ConnectionClosed,
}


def error_for(code: int, detail: Optional[str] = None, *,
              argument: Optional[str] = None,
              value: Any = None) -> Exception:
    if code == Error.NOMEM:
        return MemoryError(strerror(code))
    cls = _CLASSES.get(code, SmtpoutError)
    return cls(code, detail, argument=argument, value=value)


def describe(argument: str, value: Any, why: Optional[str] = None) -> str:
    """The detail text that names a bad argument: "recipient
    'a\\x00b@example.org': contains a NUL character" (without `why` when
    the library's own text says it all)."""
    text = "%s %r" % (argument, value)
    return "%s: %s" % (text, why) if why else text


def check(rv: int, detail: Optional[str] = None, *,
          argument: Optional[str] = None, value: Any = None) -> int:
    """Returns rv when it is not negative; raises the matching exception
    otherwise."""
    if rv < 0:
        raise error_for(rv, detail, argument=argument, value=value)
    return rv
