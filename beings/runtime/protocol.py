"""Frames between the worker and a sandbox child: a 4-byte big-endian length, then a JSON object.

The worker reads with a deadline and a size cap and trusts nothing it reads: a frame that is too
large, not JSON, not an object, or carries NaN or a number too large for a float is a
``ProtocolError``. The child reads and writes blocking, since its peer is the worker. Messages from
the child (``op``):

- ``ready``: ``{"layers": {name: bool}}``, first, after the layers and before the job;
- ``started``: once it holds its job, before any of the being's code is compiled;
- ``refused``: ``{"reason": "memory"}``, instead of ``started``, when the child could not hold its job;
- ``execution``: ``{"target": str, "args": list, "kwargs": dict}``, answered by a reply;
- ``summon``: ``{"name": str, "source": str|null, "type": str|null, "attributes": dict, "tags": [str]}``;
- ``done``: ``{"ok": true, "result": any, "truncated": bool}`` or
  ``{"ok": false, "error": {"type", "message", "traceback"}, "truncated": bool}``, last;
- ``check``: ``{"layers": {...}, "facts": {...}}``, from a self-test child instead of ``done``.

Replies to requests: ``{"ok": true, "value": any}`` or ``{"ok": false, "error": {"type", "message"}}``.
"""

from __future__ import annotations

import json
import math
import os
import select
import socket
import struct
import time
from typing import Any

HEADER = struct.Struct("!I")
# What a child printed is not framed: it writes it into memory shared with the worker, this header
# (bytes used, truncated) followed by the UTF-8 bytes.
OUTPUT_HEADER = struct.Struct("!II")
# json.dumps with options builds an encoder per call: most of what a small frame costs.
_ENCODER = json.JSONEncoder(allow_nan=False, separators=(",", ":"))


class ProtocolError(Exception):
    """The peer sent something that is not a well-formed frame of the protocol."""


class ChannelClosed(Exception):
    """The peer closed the channel (for a child: it died)."""


class FrameTimeout(Exception):
    """The deadline passed while waiting for the peer."""


def frame_encode(message: Any) -> bytes:
    """One frame; raises TypeError or ValueError if the message is not strict JSON."""
    body = json_dumps(message).encode()
    return HEADER.pack(len(body)) + body


def json_dumps(value: Any, **options: Any) -> str:
    """Compact, strict JSON, ASCII so that no string (a lone surrogate included) can fail to encode."""
    if options:
        return json.dumps(value, allow_nan=False, separators=(",", ":"), **options)
    return _ENCODER.encode(value)


def _reject_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not JSON")


def _finite_float(text: str) -> float:
    # 1e400 is valid JSON that Python reads as infinity, which no JSON encoder (nor jsonb) takes back.
    value = float(text)
    if not math.isfinite(value):
        raise ProtocolError(f"{text[:40]} is not a finite number")
    return value


# Built once, like _ENCODER: json.loads with options builds a decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def frame_decode(body: bytes) -> dict[str, Any]:
    """The object in a frame's body; anything else is a ProtocolError."""
    try:
        message = _DECODER.decode(body.decode())
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ProtocolError(f"a frame is not JSON: {str(error)[:200]}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a frame holds a {type(message).__name__}, not an object")
    return message


class FrameReader:
    """Read frames from a non-blocking socket before a deadline, refusing any larger than max_bytes."""

    def __init__(self, sock: socket.socket, *, max_bytes: int) -> None:
        self.sock = sock
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.poller = select.poll()
        self.poller.register(sock.fileno(), select.POLLIN)
        sock.setblocking(False)

    def read(self, deadline: float) -> tuple[dict[str, Any], int]:
        """The next frame's object and its body size in bytes."""
        self._fill(HEADER.size, deadline)
        (size,) = HEADER.unpack_from(self.buffer)
        if size > self.max_bytes:
            raise ProtocolError(f"a frame of {size} bytes exceeds the limit of {self.max_bytes}")
        self._fill(HEADER.size + size, deadline)
        body = bytes(self.buffer[HEADER.size : HEADER.size + size])
        del self.buffer[: HEADER.size + size]
        return frame_decode(body), size

    def _fill(self, wanted: int, deadline: float) -> None:
        while len(self.buffer) < wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise FrameTimeout
            if not self.poller.poll(remaining * 1000):
                continue
            try:
                chunk = self.sock.recv(max(65536, wanted - len(self.buffer)))
            except BlockingIOError:
                continue
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ChannelClosed
            self.buffer += chunk


def frame_send(sock: socket.socket, frame: bytes, deadline: float) -> None:
    """Write a whole frame to a non-blocking socket before the deadline."""
    view = memoryview(frame)
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLOUT)
    while view:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameTimeout
        if not poller.poll(remaining * 1000):
            continue
        try:
            sent = sock.send(view)
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            raise ChannelClosed from None
        view = view[sent:]


def fd_write(fd: int, data: bytes) -> None:
    """Blocking write of all of data to a file descriptor (the child's side)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fd_read_frame(fd: int) -> Any:
    """Blocking read of one frame from a file descriptor (the child's side, whose peer is the worker)."""
    (size,) = HEADER.unpack(_fd_read_exactly(fd, HEADER.size))
    return json.loads(_fd_read_exactly(fd, size).decode())


def _fd_read_exactly(fd: int, size: int) -> bytes:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise ChannelClosed
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)
