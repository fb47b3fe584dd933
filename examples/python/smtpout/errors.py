"""Library error codes as Python exceptions.

A negative return code from the C library becomes an SmtpoutError (or the
subclass for that code) carrying .code, .name and the library's text.  A
server's reply is never an exception: it is data in a Result.
"""
import enum

from ._lib import lib


class Error(enum.IntEnum):
    """enum smtpout_error (include/smtpout/common.h)."""
    OK = 0
    INVALID_ARGUMENT = -501
    NOMEM = -502
    INVALID_STATE = -503
    WOULDBLOCK = -504
    CALLBACK_FAILURE = -505
    PROTOCOL = -506
    TIMEOUT = -507
    CONNECTION_CLOSED = -508
    SERVICE_UNAVAILABLE = -509
    TLS = -510
    TLS_POLICY = -511
    CONFIG = -512
    BAD_NAME = -513
    BAD_ADDRESS = -514
    POLICY_CONFLICT = -515
    RESOLVE = -516
    CONNECT = -517
    IO = -518
    ABORTED = -519
    TLS_SETUP = -520
    SYNTAX = -521


def strerror(code):
    """The library's description of an error code."""
    return lib.smtpout_strerror(int(code)).decode()


class SmtpoutError(Exception):
    """A library error.  .code is the negative C code, .name its Error
    name (or None for a code this binding does not know)."""

    def __init__(self, code, detail=None):
        self.code = int(code)
        try:
            self.name = Error(self.code).name
        except ValueError:
            self.name = None
        self.detail = detail
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


class ConfigError(SmtpoutError):
    """An invalid configuration.  .errors lists the library's messages, each
    "FILE:LINE: message"; str() of the exception includes them all."""

    def __init__(self, code, text):
        self.errors = [line for line in text.splitlines() if line]
        super().__init__(code, "; ".join(self.errors) or None)


_CLASSES = {
    Error.INVALID_ARGUMENT: InvalidArgument,
    Error.INVALID_STATE: InvalidState,
    Error.BAD_NAME: BadName,
    Error.BAD_ADDRESS: BadAddress,
    Error.POLICY_CONFLICT: PolicyConflict,
    Error.NOMEM: MemoryError,
}


def error_for(code, detail=None):
    cls = _CLASSES.get(code, SmtpoutError)
    if cls is MemoryError:
        return MemoryError(strerror(code))
    return cls(code, detail)


def check(rv, detail=None):
    """Returns rv when it is not negative; raises the matching exception
    otherwise."""
    if rv < 0:
        raise error_for(rv, detail)
    return rv
