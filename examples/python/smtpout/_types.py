"""Enumerations and the plain-Python snapshots of results and TLS
outcomes.

The C result and TLS-info objects are borrowed (a result is valid only
during its callback), so the binding copies them at once into these frozen
dataclasses, which the caller may keep as long as it likes.

The enumerations are IntEnums (their values are the C library's) that
print as the library names them: str(Status.DELIVERED) is "delivered",
str(TLSOutcome.NOT_OFFERED) "not-offered", and a name is accepted wherever
a value is (StartTLS("require")).
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Optional, Type, TypeVar

from ._lib import lib
from .errors import Error, describe, error_for

E = TypeVar("E", bound="NamedEnum")


class NamedEnum(enum.IntEnum):
    """An IntEnum that prints, formats and parses as its library name:
    the member name in lower case with "-" for "_"."""

    def __str__(self) -> str:
        return self.name.lower().replace("_", "-")

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, str):
            key = value.strip().upper().replace("-", "_")
            return cls.__members__.get(key)
        return None

    @classmethod
    def parse(cls: Type[E], value: Any, argument: str) -> E:
        """`value` (a member, its number or its name) as a member, or
        InvalidArgument naming the argument, the value and every accepted
        name."""
        try:
            return cls(value)
        except ValueError:
            pass
        raise error_for(Error.INVALID_ARGUMENT, describe(
            argument, value, "not one of %s" % ", ".join(
                str(m) for m in cls)), argument=argument, value=value)


class StartTLS(NamedEnum):
    """enum smtpout_starttls: the `starttls` knob."""
    DISABLE = 0
    OPTIONAL = 1
    REQUIRE = 2


class Status(NamedEnum):
    """enum smtpout_status: a recipient's final status."""
    DELIVERED = 1
    DEFERRED = 2
    BOUNCED = 3


class TLSOutcome(NamedEnum):
    """enum smtpout_tls_outcome."""
    NONE = 0
    DISABLED = 1
    NOT_OFFERED = 2
    REFUSED = 3
    HANDSHAKE_FAILED = 4
    OK = 5


class CloseReason(NamedEnum):
    """enum smtpout_close_reason: why a session's connection ended
    (Session.close_reason); NONE while it runs and after a clean QUIT."""
    NONE = 0
    PROTOCOL = 1
    TIMEOUT = 2
    CONNECTION_CLOSED = 3
    SERVICE_UNAVAILABLE = 4
    TLS = 5
    TLS_POLICY = 6
    TLS_SETUP = 7
    CONTENT = 8
    CALLBACK_FAILURE = 9
    ABORTED = 10
    LOCAL = 11
    AUTH = 12


class AuthOutcome(NamedEnum):
    """enum smtpout_auth_outcome: what happened to SMTP AUTH on a
    connection with credentials."""
    NONE = 0
    OK = 1
    NO_TLS = 2
    UNVERIFIED = 3
    NOT_OFFERED = 4
    FAILED = 5
    ERROR = 6


class DSNAction(NamedEnum):
    """enum smtpout_dsn_action: the notice the host owes the sender for a
    result (RFC 3461 6.2)."""
    NONE = 0
    FAILED = 1
    RELAYED = 2


class Ret(NamedEnum):
    """enum smtpout_dsn_ret: what a failure notice returns."""
    NONE = 0
    FULL = 1
    HDRS = 2


class Notify(enum.IntFlag):
    """SMTPOUT_DSN_NOTIFY_* bits: when the sender wants a notice (NEVER
    alone).  Notify.parse("SUCCESS,DELAY") reads --notify's form."""
    NONE = 0
    SUCCESS = 0x1
    FAILURE = 0x2
    DELAY = 0x4
    NEVER = 0x8

    @classmethod
    def parse(cls, value: Any, argument: str = "notify") -> "Notify":
        bits: Optional[Notify] = None
        if isinstance(value, str):
            bits = cls.NONE
            for word in value.split(","):
                member = cls.__members__.get(word.strip().upper())
                if member is None or not member or (bits & member):
                    bits = None
                    break
                bits |= member
        elif isinstance(value, int):
            bits = cls(value) if 0 <= value <= 0xF else None
        if bits is None or (bits & cls.NEVER and bits != cls.NEVER):
            raise error_for(Error.INVALID_ARGUMENT, describe(
                argument, value, "not SUCCESS, FAILURE and DELAY "
                "(comma-separated), or NEVER alone"),
                argument=argument, value=value)
        return bits

    def __str__(self) -> str:
        return ",".join(str(m.name) for m in (Notify.NEVER, Notify.SUCCESS,
                                              Notify.FAILURE, Notify.DELAY)
                        if self & m)


class Timeout(NamedEnum):
    """enum smtpout_timeout: the phases a timeout applies to (named as
    the keys of [queue.outbound.timeouts])."""
    CONNECT = 0
    GREETING = 1
    TLS = 2
    EHLO = 3
    MAIL_FROM = 4
    RCPT_TO = 5
    DATA = 6


class Knob(NamedEnum):
    """enum smtpout_knob."""
    STARTTLS = 0
    ALLOW_INVALID_CERTS = 1


class Trace(NamedEnum):
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
    REQUIRETLS = 0x0200


class MessageFlag(enum.IntFlag):
    """SMTPOUT_MESSAGE_* flags of Session.submit()."""
    NONE = 0
    EIGHTBITMIME = 0x1
    SMTPUTF8 = 0x2
    NO_7BIT_CONVERSION = 0x4
    REQUIRETLS = 0x8


NO_EXPIRY = 2**64 - 1


def text(b: Optional[bytes]) -> Optional[str]:
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
    # Deferred for the connection or the server as a whole, and not
    # possibly delivered: another address may take it now
    # (smtpout_result_try_another_address()).
    try_another_address: bool = False
    # RFC 3461: the NOTIFY asked for, whether the DSN parameters went to
    # the server, and the notice the host owes the sender.
    dsn_notify: "Notify" = Notify.NONE
    dsn_sent: bool = False
    dsn_action: "DSNAction" = DSNAction.NONE

    @property
    def delivered(self) -> bool:
        return self.status == Status.DELIVERED

    @classmethod
    def _from_c(cls, r: Any) -> "Result":
        return cls(recipient=lib.smtpout_result_recipient(r).decode(
                       "utf-8", "surrogateescape"),
                   status=Status(lib.smtpout_result_status(r)),
                   code=lib.smtpout_result_code(r),
                   enhanced=text(lib.smtpout_result_enhanced(r)) or "",
                   text=text(lib.smtpout_result_text(r)) or "",
                   possibly_delivered=bool(
                       lib.smtpout_result_possibly_delivered(r)),
                   message_id=lib.smtpout_result_message_id(r),
                   index=lib.smtpout_result_recipient_index(r),
                   try_another_address=bool(
                       lib.smtpout_result_try_another_address(r)),
                   dsn_notify=Notify(lib.smtpout_result_dsn_notify(r)),
                   dsn_sent=bool(lib.smtpout_result_dsn_sent(r)),
                   dsn_action=DSNAction(lib.smtpout_result_dsn_action(r)))


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
    # Why TLS did not come up (the refusal, the handshake failure), or
    # None (smtpout_tls_info_failure()).
    failure: Optional[str] = None
    implicit: bool = False            # TLS before the greeting (RFC 8314)
    client_certificate: bool = False  # asked for, and presented

    @property
    def outcome_name(self) -> str:
        """"none", "disabled", "not-offered", "refused",
        "handshake-failed" or "ok" (also str(outcome))."""
        return str(self.outcome)

    @classmethod
    def _no_connection(cls, plaintext_fallback: bool = False) -> "TLSInfo":
        """The TLS outcome of an attempt that never connected."""
        return cls(outcome=TLSOutcome.NONE, used=False, version=None,
                   cipher=None, verified=False, verify_error=None,
                   tlsrpt_result=None, fallback_permitted=False,
                   plaintext_fallback=plaintext_fallback)

    @classmethod
    def _from_c(cls, i: Any) -> "TLSInfo":
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
                   resumed=bool(lib.smtpout_tls_info_resumed(i)),
                   failure=text(lib.smtpout_tls_info_failure(i)),
                   implicit=bool(lib.smtpout_tls_info_implicit(i)),
                   client_certificate=bool(
                       lib.smtpout_tls_info_client_certificate(i)))


def status_name(status: int) -> Optional[str]:
    """The library's name of a status ("delivered"), None if unknown."""
    return text(lib.smtpout_status_name(int(status)))


def starttls_name(mode: int) -> Optional[str]:
    """The library's name of a starttls mode ("require"), None if
    unknown."""
    return text(lib.smtpout_starttls_name(int(mode)))
