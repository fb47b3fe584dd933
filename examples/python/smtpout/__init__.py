"""smtpout: policy-driven outbound SMTP delivery, from Python.

A ctypes binding of the smtpout C library (libsmtpout.so.0).  Three levels:

  send(server, mx_name, sender, recipients, message, config=...)
      blocking, one call, a result per recipient and the TLS outcome;
      smtpout.aio.send(...) is the same as a coroutine on asyncio's loop;

  Connection(server, mx_name, ...)
      one connection that sends several messages (smtpout.aio.Connection
      on asyncio);

  Session(mx_host, config, ...)
      the sans-I/O session for your own selectors or event loop.

Config loads the INI policy file; errors raise ConfigError with
"FILE:LINE: message" texts.  See docs/python.md.

The library is found through the environment variable SMTPOUT_LIBRARY (a
path), then beside a `meson install` of this package, then as
"libsmtpout.so.0" through the dynamic linker (ldconfig's cache).
"""
from ._lib import lib as _clib
from ._types import (NO_EXPIRY, AuthOutcome, Cap, CloseReason, DSNAction,
                     Knob, MessageFlag, Notify, Result, Ret, StartTLS, Status,
                     Timeout, TLSInfo, TLSOutcome, Trace, starttls_name,
                     status_name)
from .config import Config, Policy
from .connection import Connection, connect
from .deliver import Attempt, Delivery, SendResult, send
from .errors import (BadAddress, BadName, ConfigError, ConnectError,
                     ConnectionClosed, Error, InvalidArgument, InvalidState,
                     PolicyConflict, ResolveError, SmtpoutError, strerror)
from .session import Session, address_check, now_ms

__version__ = "0.1.0"

__all__ = [
    "send", "SendResult", "Attempt", "Delivery",
    "Connection", "connect",
    "Session", "now_ms", "address_check",
    "Config", "Policy",
    "Result", "TLSInfo", "Status", "StartTLS", "TLSOutcome", "CloseReason",
    "Timeout", "AuthOutcome", "DSNAction", "Notify", "Ret",
    "Knob", "Trace", "Cap", "MessageFlag", "NO_EXPIRY",
    "status_name", "starttls_name", "library_version",
    "SmtpoutError", "InvalidArgument", "InvalidState", "BadName",
    "BadAddress", "PolicyConflict", "ConfigError", "ResolveError",
    "ConnectError", "ConnectionClosed", "Error", "strerror",
]


def library_version() -> str:
    """The C library's version string, e.g. "0.1.0"."""
    return _clib.smtpout_version().decode()
