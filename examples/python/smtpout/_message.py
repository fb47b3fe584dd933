"""A message as send(), aio.send() and Connection.send() take it: bytes,
str, or a file object; read from its start for every attempt."""
from __future__ import annotations

import ctypes
import io
import os
import stat
from typing import IO, Any, Iterable, Optional, Tuple, Union

from ._lib import MessageScanP, lib
from ._types import MessageFlag
from .errors import Error, check, describe, error_for

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


def scan(chunks: Iterable[bytes]) -> Tuple[int, MessageFlag]:
    """(size on the wire, flags) of a body given in chunks: the library's
    scan (smtpout_message_scan, include/smtpout/message.h)."""
    sc = MessageScanP()
    check(lib.smtpout_message_scan_new(ctypes.byref(sc)))
    try:
        for chunk in chunks:
            buf = (ctypes.c_uint8 * len(chunk)).from_buffer_copy(chunk)
            check(lib.smtpout_message_scan_update(sc, buf, len(chunk)))
        size, flags = ctypes.c_uint64(), ctypes.c_uint32()
        check(lib.smtpout_message_scan_end(sc, ctypes.byref(size),
                                           ctypes.byref(flags)))
        return size.value, MessageFlag(flags.value)
    finally:
        lib.smtpout_message_scan_free(sc)


def _fd_chunks(fd: int) -> Iterable[bytes]:
    """A regular file in chunks, never whole in memory."""
    off = 0
    while True:
        chunk = os.pread(fd, _CHUNK, off)
        if not chunk:
            return
        yield chunk
        off += len(chunk)


class Message:
    """The body of one message.

    bytes-like and str (UTF-8) are used as they are; a regular file is
    read with pread() from offset 0 (its position does not move, it is not
    closed); any other object with read() — io.BytesIO, a pipe, a
    decompressing reader — is read to its end once, here, since a
    delivery may need it again for another attempt.  `wire_size` and
    `flags` are what Session.submit() needs, from the library's scan of
    the body (made once, when first asked).
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
        else:
            assert self.data is not None
            self.size = len(self.data)
        self.argument = argument
        self._scan: Optional[Tuple[int, MessageFlag]] = None

    def _scanned(self) -> Tuple[int, MessageFlag]:
        if self._scan is None:
            self._scan = scan(_fd_chunks(self.fd) if self.fd is not None
                              else [self.data] if self.data else [])
        return self._scan

    @property
    def wire_size(self) -> int:
        """The size on the wire (RFC 1870: every line end a CRLF)."""
        return self._scanned()[0]

    @property
    def flags(self) -> MessageFlag:
        """8BITMIME, SMTPUTF8 and NO_7BIT_CONVERSION, as the body needs."""
        return self._scanned()[1]

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
