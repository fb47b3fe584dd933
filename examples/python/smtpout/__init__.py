"""smtpout: policy-driven outbound SMTP delivery, from Python.

A ctypes binding of the smtpout C library (libsmtpout.so.0).  Two levels:

  send(server, mx_name, sender, recipients, message, config=...)
      blocking, one call, a result per recipient and the TLS outcome;

  Session(mx_host, config, ...)
      the sans-I/O session for your own selectors or asyncio loop.

Config loads the INI policy file; errors raise ConfigError with
"FILE:LINE: message" texts.  See docs/python.md.

The library is found through the environment variable SMTPOUT_LIBRARY (a
path), then ctypes.util.find_library("smtpout"), then "libsmtpout.so.0".
"""
from ._lib import lib as _clib
from ._types import (NO_EXPIRY, Cap, Knob, MessageFlag, Result, StartTLS,
                     Status, Timeout, TLSInfo, TLSOutcome, Trace,
                     starttls_name, status_name)
from .config import Config, Policy
from .deliver import Attempt, Delivery, SendResult, send
from .errors import (BadAddress, BadName, ConfigError, Error, InvalidArgument,
                     InvalidState, PolicyConflict, SmtpoutError, strerror)
from .session import Session, address_check, now_ms

__all__ = [
    "send", "SendResult", "Attempt", "Delivery",
    "Session", "now_ms", "address_check",
    "Config", "Policy",
    "Result", "TLSInfo", "Status", "StartTLS", "TLSOutcome", "Timeout",
    "Knob", "Trace", "Cap", "MessageFlag", "NO_EXPIRY",
    "status_name", "starttls_name", "library_version",
    "SmtpoutError", "InvalidArgument", "InvalidState", "BadName",
    "BadAddress", "PolicyConflict", "ConfigError", "Error", "strerror",
]


def library_version():
    """The C library's version string, e.g. "0.1.0"."""
    return _clib.smtpout_version().decode()
