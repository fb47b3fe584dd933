"""A message as send(), aio.send() and Connection.send() take it: bytes,
str, or a file object; read from its start for every attempt."""
from __future__ import annotations

import io
import os
import stat
from typing import IO, Any, Optional, Union

from ._types import MessageFlag
from .errors import Error, describe, error_for

MessageArg = Union[bytes, bytearray, memoryview, str, IO[bytes], IO[str]]

_CHUNK = 1 << 20


def _regular_fd(f: Any) -> Optional[int]:
    """The descriptor of `f` when it is a regular file that pread() can
    read again from the start, else None (io.BytesIO, pipes, sockets)."""
    try:
        fd = f.fileno()
    except (AttributeError, io.UnsupportedOperation):
        return None
    if not isinstance(fd, int) or fd < 0:
        return None
    try:
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    except OSError:
        return None


def fd_eightbit(fd: int) -> bool:
    """Whether the regular file `fd` holds 8-bit data: in chunks, checked
    in C (bytes.isascii), never the whole file in memory."""
    off = 0
    while True:
        chunk = os.pread(fd, _CHUNK, off)
        if not chunk:
            return False
        if not chunk.isascii():
            return True
        off += len(chunk)


class Message:
    """The body of one message.

    bytes-like and str (UTF-8) are used as they are; a regular file is
    read with pread() from offset 0 (its position does not move, it is not
    closed); any other object with read() — io.BytesIO, a pipe, a
    decompressing reader — is read to its end once, here, since a
    delivery may need it again for another attempt.  `eightbit` says
    whether BODY=8BITMIME is needed.
    """

    def __init__(self, message: Any, argument: str = "message"):
        self.data: Optional[bytes] = None
        self.fd: Optional[int] = None
        if isinstance(message, str):
            self.data = message.encode("utf-8")
        elif isinstance(message, (bytes, bytearray, memoryview)):
            self.data = bytes(memoryview(message).cast("B"))
        elif hasattr(message, "read"):
            self.fd = _regular_fd(message)
            if self.fd is None:
                data = message.read()
                if isinstance(data, str):
                    data = data.encode("utf-8")
                if not isinstance(data, (bytes, bytearray, memoryview)):
                    raise TypeError("%s.read() returned %s, not bytes or str"
                                    % (argument, type(data).__name__))
                self.data = bytes(data)
        else:
            raise TypeError("%s must be bytes, str or a file object, not %s"
                            % (argument, type(message).__name__))
        if self.fd is not None:
            self.size = os.fstat(self.fd).st_size
            self.eightbit = fd_eightbit(self.fd)
        else:
            assert self.data is not None
            self.size = len(self.data)
            self.eightbit = not self.data.isascii()
        self.argument = argument

    @property
    def flags(self) -> MessageFlag:
        return MessageFlag.EIGHTBITMIME if self.eightbit else MessageFlag.NONE

    def source(self) -> Any:
        """What Session.submit() takes, positioned at the start."""
        if self.data is not None:
            return self.data
        return _FileReader(self.fd, self.size, self.argument)


class _FileReader:
    """read(n) over a regular file with pread(), from offset 0."""

    def __init__(self, fd: Optional[int], size: int, argument: str):
        self.fd, self.size, self.off = fd, size, 0
        self.argument = argument

    def read(self, n: int) -> bytes:
        n = min(n, self.size - self.off)
        if n <= 0:
            return b""
        assert self.fd is not None
        chunk = os.pread(self.fd, n, self.off)
        if not chunk:
            # Never end the data early: the SIZE we announced would lie
            # and a truncated message would be delivered.
            raise error_for(Error.IO, describe(
                self.argument, self.fd, "the file shrank while it was read"))
        self.off += len(chunk)
        return chunk
