"""Length-prefixed frames shared by the harness, the sandbox worker and its runners.

A frame is a 4-byte big-endian length followed by a body; the body is a JSON
header, a newline and an optional raw payload.  Only the standard library is
used: the worker imports this module before it forks runners.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_LEN = struct.Struct("!I")
MAX_CONTROL_FRAME = 1 << 30


class ProtocolError(Exception):
    """A peer sent bytes that are not a valid frame."""


def pack(header: dict[str, Any], payload: bytes = b"") -> bytes:
    """Serialise one frame."""
    body = json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload
    return _LEN.pack(len(body)) + body


def write_all(fd: int, data: bytes) -> None:
    """Write every byte to a file descriptor (pipes may take partial writes)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def split_body(body: bytes) -> tuple[dict[str, Any], bytes]:
    """Split a frame body into its JSON header and raw payload."""
    nl = body.find(b"\n")
    if nl < 0:
        raise ProtocolError("frame without header terminator")
    try:
        header = json.loads(body[:nl])
    except ValueError as exc:
        raise ProtocolError(f"bad frame header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("frame header is not an object")
    return header, body[nl + 1 :]


def read_exact(fd: int, n: int) -> bytes | None:
    """Read exactly ``n`` bytes, or ``None`` at end of file."""
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(fd: int, max_size: int = MAX_CONTROL_FRAME) -> tuple[dict[str, Any], bytes] | None:
    """Blocking read of one frame; ``None`` at end of file."""
    head = read_exact(fd, _LEN.size)
    if head is None:
        return None
    (size,) = _LEN.unpack(head)
    if size > max_size:
        raise ProtocolError(f"frame of {size} bytes exceeds {max_size}")
    body = read_exact(fd, size)
    if body is None:
        return None
    return split_body(body)


class FrameBuffer:
    """Incremental frame parser for non-blocking reads of untrusted streams."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the complete frame bodies now available."""
        self._buf += data
        out = []
        while len(self._buf) >= _LEN.size:
            (size,) = _LEN.unpack_from(self._buf)
            if size > self.max_size:
                raise ProtocolError(f"frame of {size} bytes exceeds {self.max_size}")
            if len(self._buf) < _LEN.size + size:
                break
            out.append(bytes(self._buf[_LEN.size : _LEN.size + size]))
            del self._buf[: _LEN.size + size]
        return out
