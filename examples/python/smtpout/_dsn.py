"""Delivery status notification requests (RFC 3461) as send(),
aio.send(), Connection.send() and Session.submit() take them: `notify`
for every recipient, `ret`, `envid`, and `orcpt` per recipient; made into
the library's smtpout_dsn, which checks and encodes every value."""
from __future__ import annotations

import ctypes
import weakref
from typing import Any, Optional, Sequence

from ._lib import DsnP, lib
from ._strings import StrOrBytes
from ._types import DSNAction, Notify, Ret, Status
from .errors import Error, check, describe, error_for


def _invalid(argument: str, value: Any, why: str) -> Exception:
    return error_for(Error.INVALID_ARGUMENT, describe(argument, value, why),
                     argument=argument, value=value)


class DSNRequest:
    """An smtpout_dsn for one message of `recipients`, freed with the
    object.  `orcpt` is a list aligned with the recipients (None where
    there is none) or a dict {recipient: "rfc822;address"}."""

    def __init__(self, recipients: Sequence[StrOrBytes], notify: Any = None,
                 ret: Any = None, envid: Optional[str] = None,
                 orcpt: Any = None):
        self.ptr: Any = DsnP()
        check(lib.smtpout_dsn_new(ctypes.byref(self.ptr)))
        self._finalizer = weakref.finalize(self, lib.smtpout_dsn_free,
                                           self.ptr)
        if ret is not None:
            check(lib.smtpout_dsn_set_ret(self.ptr,
                                          int(Ret.parse(ret, "ret"))))
        if envid is not None:
            check(lib.smtpout_dsn_set_envid(self.ptr, _ascii(envid, "envid")),
                  describe("envid", envid, "not 1 to 100 printable ASCII "
                           "characters"), argument="envid", value=envid)
        if notify is not None:
            bits = Notify.parse(notify)
            for i in range(len(recipients)):
                check(lib.smtpout_dsn_set_notify(self.ptr, i, int(bits)))
        for i, value in _orcpts(recipients, orcpt):
            check(lib.smtpout_dsn_set_orcpt(self.ptr, i,
                                            _ascii(value, "orcpt")),
                  describe("orcpt", value, "not TYPE;ADDRESS in printable "
                           "ASCII, at most 500 characters encoded"),
                  argument="orcpt", value=value)

    def close(self) -> None:
        self._finalizer()


def _text(address: StrOrBytes) -> str:
    return address.decode("utf-8", "surrogateescape") \
        if isinstance(address, bytes) else address


def _ascii(value: Any, argument: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError("%s must be a str, not %s"
                        % (argument, type(value).__name__))
    try:
        return value.encode("ascii")
    except UnicodeEncodeError:
        raise _invalid(argument, value, "not ASCII") from None


def _orcpts(recipients: Sequence[StrOrBytes], orcpt: Any):
    """(index, value) of each ORCPT given."""
    if orcpt is None:
        return []
    if isinstance(orcpt, dict):
        index = {_text(r): i for i, r in enumerate(recipients)}
        out = []
        for r, value in orcpt.items():
            i = index.get(_text(r))
            if i is None:
                raise _invalid("orcpt", r, "not one of the recipients")
            out.append((i, value))
        return out
    values = list(orcpt)
    if len(values) != len(recipients):
        raise _invalid("orcpt", orcpt, "not one entry per recipient")
    return [(i, v) for i, v in enumerate(values) if v is not None]


def dsn_request(recipients: Sequence[StrOrBytes], notify: Any = None,
                ret: Any = None, envid: Optional[str] = None,
                orcpt: Any = None) -> Optional[DSNRequest]:
    """A DSNRequest, or None when nothing is asked."""
    if notify is None and ret is None and envid is None and not orcpt:
        return None
    return DSNRequest(recipients, notify, ret, envid, orcpt)


def dsn_action(status: Status, notify: Notify, sent: bool) -> DSNAction:
    """smtpout_result_dsn_action() for a result decided in Python."""
    if status == Status.BOUNCED:
        return DSNAction.FAILED if not notify or notify & Notify.FAILURE \
            else DSNAction.NONE
    if status == Status.DELIVERED and notify & Notify.SUCCESS and not sent:
        return DSNAction.RELAYED
    return DSNAction.NONE
