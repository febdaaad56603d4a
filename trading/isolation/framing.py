"""Messages between a parent and its isolated strategy's child process: length-prefixed frames.

The rules this module keeps (DESIGN.md rules 9 and 12):

* A frame is a 4-byte big-endian length and that many bytes of pickle. Both sides bound a frame
  (:data:`MAX_FRAME`); a longer one is refused before it is read, so a child cannot make its
  parent buffer without end.
* The parent unpickles what its child sends with :func:`loads_plain`: plain data only (str,
  bytes, numbers, bool, None, tuples, lists, dicts, sets and ``decimal.Decimal``). A frame that
  names any other class is a :class:`FrameError`, never code run in the parent. The child trusts
  its parent and unpickles anything (``pickle.loads``).
* Every malformed input — a short frame, a bad length, bytes that do not unpickle — is a
  :class:`FrameError` naming what was wrong; the caller turns it into a failure of that child.
"""

from __future__ import annotations

import io
import pickle
import struct
from collections.abc import Callable

import trio

__all__ = ["MAX_FRAME", "FrameError", "FrameReader", "dumps", "loads_plain", "send_frame"]

MAX_FRAME = 16 * 1024 * 1024
_HEADER = struct.Struct(">I")
_SAFE_GLOBALS = frozenset({("decimal", "Decimal")})


class FrameError(Exception):
    """A frame that is not one: cut short, too long, or not plain pickled data."""


class _PlainUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        if (module, name) in _SAFE_GLOBALS:
            return super().find_class(module, name)
        raise FrameError(f"frame names {module}.{name}; only plain data may cross to the parent")


def loads_plain(data: bytes) -> object:
    """Unpickle plain data only; anything else is a FrameError (nothing is imported or run)."""
    try:
        return _PlainUnpickler(io.BytesIO(data)).load()
    except FrameError:
        raise
    except Exception as exc:
        raise FrameError(f"frame does not unpickle: {type(exc).__name__}: {exc}") from None


def dumps(message: object, limit: int = MAX_FRAME) -> bytes:
    """One frame for ``message``; raises FrameError if it is longer than ``limit``."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    if len(body) > limit:
        raise FrameError(f"message of {len(body)} bytes is over the {limit}-byte frame limit")
    return _HEADER.pack(len(body)) + body


async def send_frame(stream: trio.abc.SendStream, message: object) -> None:
    """Send one message. Cancelling it may leave half a frame: the channel is then unusable, and
    its owner ends the child (both sides treat a cut frame as the end)."""
    await stream.send_all(dumps(message))


class FrameReader:
    """Reads whole frames from a stream; ``loads`` decides what may be unpickled."""

    def __init__(
        self,
        stream: trio.abc.ReceiveStream,
        loads: Callable[[bytes], object],
        *,
        limit: int = MAX_FRAME,
    ) -> None:
        self._stream = stream
        self._loads = loads
        self._limit = limit
        self._buffer = bytearray()

    async def receive(self) -> object:
        """The next message. Raises EOFError at a clean end between frames, FrameError for a
        malformed one. Cancelling it loses nothing: a frame is taken from the buffer only once
        all of it has arrived."""
        await self._fill(_HEADER.size, "frame header")
        (length,) = _HEADER.unpack_from(self._buffer)
        if length > self._limit:
            raise FrameError(f"frame of {length} bytes is over the {self._limit}-byte limit")
        end = _HEADER.size + length
        await self._fill(end, "frame body")
        body = bytes(self._buffer[_HEADER.size : end])
        del self._buffer[:end]
        return self._loads(body)

    async def _fill(self, size: int, what: str) -> None:
        while len(self._buffer) < size:
            chunk = await self._stream.receive_some(max(65536, size - len(self._buffer)))
            if not chunk:
                if not self._buffer:
                    raise EOFError("channel closed")
                raise FrameError(f"channel closed in the middle of a {what}")
            self._buffer += chunk
