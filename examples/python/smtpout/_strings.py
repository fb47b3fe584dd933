"""Python strings to the C library's NUL-terminated ones, refusing what C
would silently cut or misread: an embedded NUL ends a C string early, so
"a@example.org\\0@evil.example" would reach the server as
"a@example.org".  Every error names the argument and its value."""
from __future__ import annotations

import os
from typing import Union

from .errors import Error, describe, error_for

StrOrBytes = Union[str, bytes]
StrPath = Union[str, bytes, "os.PathLike[str]", "os.PathLike[bytes]"]

# What a bad value of each kind of argument raises.
_CODES = {"address": Error.BAD_ADDRESS, "name": Error.BAD_NAME,
          "text": Error.INVALID_ARGUMENT, "path": Error.INVALID_ARGUMENT}


def _bad(kind: str, argument: str, value: object, why: str) -> Exception:
    return error_for(_CODES[kind], describe(argument, value, why),
                     argument=argument, value=value)


def encode(value: object, argument: str, kind: str = "text") -> bytes:
    """`value` (str, bytes; os.PathLike too for kind "path") as bytes for
    C.  kind is "address" (raises BadAddress), "name" (BadName), "path" or
    "text" (InvalidArgument)."""
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif isinstance(value, str) or (kind == "path" and
                                    isinstance(value, os.PathLike)):
        try:
            data = os.fsencode(value) if kind == "path" \
                else value.encode("utf-8")  # type: ignore[union-attr]
        except UnicodeEncodeError:
            raise _bad(kind, argument, value,
                       "cannot be encoded as UTF-8") from None
    else:
        raise TypeError("%s must be %s, not %s" % (
            argument, "str, bytes or a path" if kind == "path"
            else "str or bytes", type(value).__name__))
    if b"\0" in data:
        raise _bad(kind, argument, value, "contains a NUL character")
    return data


def encode_opt(value: object, argument: str, kind: str = "text"):
    """encode(), with None passed through (C's NULL)."""
    return None if value is None else encode(value, argument, kind)
