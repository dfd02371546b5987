"""Frames shared by the harness, the sandbox worker and its runners.

A frame is ``!II`` (header length, payload length), a JSON header and a raw
payload.  Payloads (encoded outputs, sometimes hundreds of megabytes) are
read straight into their own buffer and written with ``writev``, so relaying
one through the worker costs no extra copies.  Only the standard library is
used: the worker imports this module before it forks runners.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEAD = struct.Struct("!II")
MAX_HEADER = 1 << 24
MAX_CONTROL_PAYLOAD = 1 << 31


class ProtocolError(Exception):
    """A peer sent bytes that are not a valid frame."""


def write_frame(fd: int, header: dict[str, Any], *payload: bytes | bytearray | memoryview) -> None:
    """Write one frame whose payload is the concatenation of ``payload`` (all of it)."""
    head = json.dumps(header, separators=(",", ":")).encode()
    size = sum(len(p) for p in payload)
    parts = [memoryview(_HEAD.pack(len(head), size) + head)]
    parts += [memoryview(p).cast("B") for p in payload if len(p)]
    while parts:
        n = os.writev(fd, parts[:1024])  # IOV_MAX
        while parts and n >= len(parts[0]):
            n -= len(parts[0])
            parts.pop(0)
        if parts and n:
            parts[0] = parts[0][n:]


def _read_into(fd: int, buf: bytearray) -> bool:
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = os.readv(fd, [view[got:]])
        if n == 0:
            return False
        got += n
    return True


def _parse_header(raw: bytes | bytearray) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"bad frame header: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("frame header is not an object")
    return header


def read_frame(fd: int, max_payload: int = MAX_CONTROL_PAYLOAD) -> tuple[dict[str, Any], bytearray] | None:
    """Blocking read of one frame; ``None`` at end of file."""
    head = bytearray(_HEAD.size)
    if not _read_into(fd, head):
        return None
    hlen, plen = _HEAD.unpack(head)
    if hlen > MAX_HEADER or plen > max_payload:
        raise ProtocolError(f"frame of {hlen}+{plen} bytes exceeds the limit")
    header = bytearray(hlen)
    payload = bytearray(plen)
    if not _read_into(fd, header) or not _read_into(fd, payload):
        return None
    return _parse_header(header), payload


class Sender:
    """What a worker proxy (a local worker's pipes, a Ray actor) offers beside its own ``send``."""

    def send(self, header: dict[str, Any], payload: Any = b"") -> None:
        """One frame for the worker; OSError when it is gone."""
        raise NotImplementedError

    def try_send(self, header: dict[str, Any]) -> None:
        """A control frame (abort, a new end) that may find the worker gone: its loss shows where it is read."""
        try:
            self.send(header)
        except OSError:
            pass


class FrameReader:
    """Incremental frame parser for a non-blocking, untrusted stream."""

    def __init__(self, max_payload: int) -> None:
        self.max_payload = max_payload
        self._head = bytearray()
        self._header: dict[str, Any] | None = None
        self._hlen = -1
        self._plen = 0
        self._payload: bytearray | None = None
        self._got = 0

    def _header_done(self) -> bool:
        """Advance past a complete length prefix and header; True when a payload starts."""
        if self._hlen < 0 and len(self._head) >= _HEAD.size:
            self._hlen, self._plen = _HEAD.unpack_from(self._head)
            if self._hlen > MAX_HEADER or self._plen > self.max_payload:
                raise ProtocolError(f"frame of {self._plen} bytes exceeds {self.max_payload}")
        if self._hlen >= 0 and len(self._head) == _HEAD.size + self._hlen:
            self._header = _parse_header(self._head[_HEAD.size :])
            self._payload = bytearray(self._plen)
            self._got = 0
            self._hlen = -1
            return True
        return False

    def read_from(self, fd: int) -> tuple[list[tuple[dict[str, Any], bytearray]], bool]:
        """Read what is available; returns complete frames and whether the stream ended."""
        frames: list[tuple[dict[str, Any], bytearray]] = []
        while True:
            try:
                if self._payload is not None:
                    if self._got < len(self._payload):
                        n = os.readv(fd, [memoryview(self._payload)[self._got :]])
                        if n == 0:
                            return frames, True
                        self._got += n
                    if self._got == len(self._payload):
                        assert self._header is not None
                        frames.append((self._header, self._payload))
                        self._header, self._payload, self._head = None, None, bytearray()
                    continue
                if self._header_done():
                    continue
                need = (_HEAD.size if self._hlen < 0 else _HEAD.size + self._hlen) - len(self._head)
                chunk = os.read(fd, need)
                if not chunk:
                    return frames, True
                self._head += chunk
            except BlockingIOError:
                return frames, False
