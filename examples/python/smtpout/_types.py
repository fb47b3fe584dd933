"""Enumerations and the plain-Python snapshots of results and TLS
outcomes.

The C result and TLS-info objects are borrowed (a result is valid only
during its callback), so the binding copies them at once into these frozen
dataclasses, which the caller may keep as long as it likes.
"""
import dataclasses
import enum
from typing import Optional

from ._lib import lib


class StartTLS(enum.IntEnum):
    """enum smtpout_starttls: the `starttls` knob."""
    DISABLE = 0
    OPTIONAL = 1
    REQUIRE = 2


class Status(enum.IntEnum):
    """enum smtpout_status: a recipient's final status."""
    DELIVERED = 1
    DEFERRED = 2
    BOUNCED = 3


class TLSOutcome(enum.IntEnum):
    """enum smtpout_tls_outcome."""
    NONE = 0
    DISABLED = 1
    NOT_OFFERED = 2
    REFUSED = 3
    HANDSHAKE_FAILED = 4
    OK = 5


class Timeout(enum.IntEnum):
    """enum smtpout_timeout: the phases a timeout applies to."""
    CONNECT = 0
    GREETING = 1
    TLS = 2
    EHLO = 3
    MAIL_FROM = 4
    RCPT_TO = 5
    DATA = 6


class Knob(enum.IntEnum):
    """enum smtpout_knob."""
    STARTTLS = 0
    ALLOW_INVALID_CERTS = 1


class Trace(enum.IntEnum):
    """enum smtpout_trace: the direction of a trace line."""
    SENT = 0
    RECEIVED = 1
    INFO = 2


class Cap(enum.IntFlag):
    """SMTPOUT_CAP_* bits of Session.capabilities."""
    PIPELINING = 0x0001
    SIZE = 0x0002
    EIGHTBITMIME = 0x0004
    SMTPUTF8 = 0x0008
    ENHANCEDSTATUSCODES = 0x0010
    STARTTLS = 0x0020
    CHUNKING = 0x0040
    DSN = 0x0080
    AUTH = 0x0100


class MessageFlag(enum.IntFlag):
    """SMTPOUT_MESSAGE_* flags of Session.submit()."""
    NONE = 0
    EIGHTBITMIME = 0x1
    SMTPUTF8 = 0x2


NO_EXPIRY = 2**64 - 1


def text(b):
    """A library string (bytes or None) as str.  Server text may hold any
    byte: undecodable ones become U+FFFD rather than an exception."""
    return None if b is None else b.decode("utf-8", "replace")


@dataclasses.dataclass(frozen=True)
class Result:
    """The final result of one recipient."""
    recipient: str
    status: Status
    code: int               # the server's reply code; 0 for a local decision
    enhanced: str           # "4.7.5", or ""
    text: str               # the reply text or the library's explanation
    possibly_delivered: bool
    message_id: int = 0     # the id Session.submit() returned
    index: int = 0          # the recipient's position in its message

    @property
    def delivered(self):
        return self.status == Status.DELIVERED

    @classmethod
    def _from_c(cls, r):
        return cls(recipient=lib.smtpout_result_recipient(r).decode(
                       "utf-8", "surrogateescape"),
                   status=Status(lib.smtpout_result_status(r)),
                   code=lib.smtpout_result_code(r),
                   enhanced=text(lib.smtpout_result_enhanced(r)),
                   text=text(lib.smtpout_result_text(r)),
                   possibly_delivered=bool(
                       lib.smtpout_result_possibly_delivered(r)),
                   message_id=lib.smtpout_result_message_id(r),
                   index=lib.smtpout_result_recipient_index(r))


@dataclasses.dataclass(frozen=True)
class TLSInfo:
    """What happened to STARTTLS on one connection."""
    outcome: TLSOutcome
    used: bool
    version: Optional[str]
    cipher: Optional[str]
    verified: bool
    verify_error: Optional[str]
    tlsrpt_result: Optional[str]
    fallback_permitted: bool
    plaintext_fallback: bool
    resumed: bool = False

    @property
    def outcome_name(self):
        """"none", "disabled", "not-offered", "refused",
        "handshake-failed" or "ok"."""
        return text(lib.smtpout_tls_outcome_name(self.outcome))

    @classmethod
    def _from_c(cls, i):
        return cls(outcome=TLSOutcome(lib.smtpout_tls_info_outcome(i)),
                   used=bool(lib.smtpout_tls_info_used(i)),
                   version=text(lib.smtpout_tls_info_version(i)),
                   cipher=text(lib.smtpout_tls_info_cipher(i)),
                   verified=bool(lib.smtpout_tls_info_verified(i)),
                   verify_error=text(lib.smtpout_tls_info_verify_error(i)),
                   tlsrpt_result=text(lib.smtpout_tls_info_tlsrpt_result(i)),
                   fallback_permitted=bool(
                       lib.smtpout_tls_info_fallback_permitted(i)),
                   plaintext_fallback=bool(
                       lib.smtpout_tls_info_plaintext_fallback(i)),
                   resumed=bool(lib.smtpout_tls_info_resumed(i)))


def status_name(status):
    return text(lib.smtpout_status_name(int(status)))


def starttls_name(mode):
    return text(lib.smtpout_starttls_name(int(mode)))
