"""Audio sources for players: prompts from sound files, sequences of them, call-progress tones,
silence, and hold music. A source yields 20 ms frames of 16-bit little-endian mono PCM at its
`rate` (8 or 16 kHz) until it ends.

Prompts are decoded once (soundfile, imported on first use so a plain relayed call never loads
it) and kept in an LRU cache bounded by total bytes; a hundred callers hearing the same menu
share one decoded copy. Long files (hold music) are streamed in blocks instead.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from appliance.media.errors import MediaError

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13 (audioop-lts replaces it)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

logger = logging.getLogger(__name__)

__all__ = [
    "Source",
    "TonePlan",
    "frame_bytes",
    "loop",
    "prompt",
    "sequence",
    "silence",
    "stream",
    "tones",
]

CACHE_BYTES = 32 * 1024 * 1024
"""Decoded prompts kept at most (bytes of PCM): the whole of a typical IVR's prompts."""


def frame_bytes(rate: int) -> int:
    """Bytes in one 20 ms frame of 16-bit mono PCM at `rate`."""
    return rate // 50 * 2


class Source(Protocol):
    """20 ms frames of PCM at `rate`; None once it has ended."""

    rate: int

    def read(self) -> bytes | None: ...


def _target_rate(rate: int) -> int:
    return 16000 if rate >= 16000 else 8000


class _Pcm:
    """A source over PCM already in memory (a cached prompt, a tone burst)."""

    def __init__(self, pcm: bytes, rate: int) -> None:
        self.rate = rate
        self._pcm = memoryview(pcm)
        self._pos = 0
        self._step = frame_bytes(rate)

    def read(self) -> bytes | None:
        if self._pos >= len(self._pcm):
            return None
        frame = bytes(self._pcm[self._pos : self._pos + self._step])
        self._pos += self._step
        if len(frame) < self._step:
            frame += bytes(self._step - len(frame))  # the last frame, padded with silence
        return frame


class _Cache:
    """Decoded prompts by (path, size, mtime), least recently used dropped beyond `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._items: collections.OrderedDict[tuple[str, int, int], tuple[bytes, int]] = (
            collections.OrderedDict()
        )
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> tuple[bytes, int] | None:
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: tuple[str, int, int], item: tuple[bytes, int]) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = item
            self.size += len(item[0])
            while self.size > self.limit and len(self._items) > 1:
                _, (pcm, _) = self._items.popitem(last=False)
                self.size -= len(pcm)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.size = 0


CACHE = _Cache(CACHE_BYTES)


def _to_pcm(data: Any, rate: int) -> tuple[bytes, int]:
    """soundfile's int16 frames (any channels, any rate) to mono PCM at 8 or 16 kHz."""
    if data.ndim > 1:  # mono-mix: the mean of the channels
        data = data.mean(axis=1).astype("<i2")
    pcm = data.astype("<i2").tobytes()
    target = _target_rate(rate)
    if rate != target:
        pcm, _ = audioop.ratecv(pcm, 2, 1, rate, target, None)
    return pcm, target


def _decode(path: Path) -> tuple[bytes, int]:
    import soundfile

    try:
        data, rate = soundfile.read(str(path), dtype="int16", always_2d=False)
    except (RuntimeError, TypeError, ValueError) as exc:  # LibsndfileError is a RuntimeError
        raise MediaError(f"cannot read sound file {path}: {exc}") from exc
    return _to_pcm(data, int(rate))


def prompt(path: str | Path) -> Source:
    """The sound file at `path` (WAV, FLAC, OGG...), mono-mixed, at 8 kHz (or 16 kHz when the
    file is wideband). Decoded once, then served from the cache. Raises MediaError for a file
    that is missing or cannot be decoded."""
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise MediaError(f"sound file {path} cannot be opened: {exc.strerror}") from exc
    key = (str(path), st.st_size, st.st_mtime_ns)
    item = CACHE.get(key)
    if item is None:
        item = _decode(path)
        CACHE.put(key, item)
    return _Pcm(*item)


class _Sequence:
    """Sources one after another, each opened when the one before it ends. The rate is the
    first source's; a later one at another rate is resampled to it."""

    def __init__(self, items: Iterable[Source | str | Path]) -> None:
        self._items: Iterator[Source | str | Path] = iter(items)
        self._current: Source | None = self._next()
        self.rate = self._current.rate if self._current is not None else 8000
        self._state: Any = None

    def _next(self) -> Source | None:
        item = next(self._items, None)
        if item is None:
            return None
        return prompt(item) if isinstance(item, str | Path) else item

    def read(self) -> bytes | None:
        for _ in range(1000):  # bounded: a run of empty sources
            current = self._current
            if current is None:
                return None
            frame = current.read()
            if frame is not None:
                if current.rate != self.rate:
                    frame, self._state = audioop.ratecv(
                        frame, 2, 1, current.rate, self.rate, self._state
                    )
                    frame = frame[: frame_bytes(self.rate)].ljust(frame_bytes(self.rate), b"\0")
                return frame
            self._current = self._next()
            self._state = None
        return None


def sequence(items: Iterable[Source | str | Path]) -> Source:
    """`items` one after another (paths become prompts), each opened lazily when reached."""
    return _Sequence(items)


@dataclass(frozen=True)
class TonePlan:
    """A call-progress tone: segments of (frequencies, duration in ms), () for silence, a
    duration of 0 for "forever". Russian dial tone: `TonePlan((((425,), 0),))`; ringback:
    `TonePlan((((425,), 800), ((), 3200)))`."""

    segments: tuple[tuple[tuple[float, ...], int], ...]
    repeat: bool = True
    level_dbm0: float = -13.0


class _Tones:
    def __init__(self, plan: TonePlan, rate: int) -> None:
        if rate not in (8000, 16000):
            raise MediaError(f"tones at {rate} Hz: only 8000 and 16000")
        self.rate = rate
        self._plan = plan
        # 0 dBm0 is a sine of peak 3.17 dB below full scale (ITU-T G.711); split between tones
        peak = 32768 * 10 ** ((plan.level_dbm0 - 3.17) / 20)
        self._amp = peak
        self._segment = 0
        self._left = self._frames(0)
        self._n = 0

    def _frames(self, index: int) -> int:
        duration = self._plan.segments[index][1]
        return -1 if duration == 0 else max(1, duration // 20)

    def read(self) -> bytes | None:
        segments = self._plan.segments
        if not segments:
            return None
        for _ in range(len(segments) + 1):
            if self._left != 0:
                break
            self._segment += 1
            if self._segment >= len(segments):
                if not self._plan.repeat:
                    return None
                self._segment = 0
            self._left = self._frames(self._segment)
        self._left -= 1 if self._left > 0 else 0
        freqs = segments[self._segment][0]
        count = self.rate // 50
        if not freqs:
            self._n += count
            return bytes(2 * count)
        amp = self._amp / len(freqs)
        rate, n0 = self.rate, self._n
        samples = [
            round(amp * sum(math.sin(2 * math.pi * f * (n0 + i) / rate) for f in freqs))
            for i in range(count)
        ]
        self._n += count
        import array

        return array.array("h", samples).tobytes()


def tones(plan: TonePlan, rate: int = 8000) -> Source:
    """The tone `plan` describes, generated frame by frame (phase continuous)."""
    return _Tones(plan, rate)


def silence(ms: int, rate: int = 8000) -> Source:
    """`ms` milliseconds of silence (rounded up to whole frames)."""
    return _Pcm(bytes(frame_bytes(rate) * max(0, math.ceil(ms / 20))), rate)


class _Loop:
    def __init__(self, make: Callable[[], Source]) -> None:
        self._make = make
        self._current = make()
        self.rate = self._current.rate

    def read(self) -> bytes | None:
        frame = self._current.read()
        if frame is None:
            self._current = self._make()
            frame = self._current.read()  # an empty source twice in a row ends the loop
        return frame


def loop(make: Callable[[], Source]) -> Source:
    """Hold music: `make()` played again each time it ends, until the player is stopped."""
    return _Loop(make)


class _Stream:
    """A long file read a block (a second) at a time, never cached whole."""

    BLOCK_SECONDS = 1

    def __init__(self, path: Path) -> None:
        import soundfile

        try:
            self._file = soundfile.SoundFile(str(path))
        except (OSError, RuntimeError, TypeError) as exc:
            raise MediaError(f"cannot read sound file {path}: {exc}") from exc
        self._in_rate = int(self._file.samplerate)
        self.rate = _target_rate(self._in_rate)
        self._buf = b""
        self._state: Any = None
        self._ended = False

    def read(self) -> bytes | None:
        step = frame_bytes(self.rate)
        if len(self._buf) < step and not self._ended:
            data = self._file.read(self._in_rate * self.BLOCK_SECONDS, dtype="int16")
            if len(data) == 0:
                self._ended = True
                self._file.close()
            else:
                if data.ndim > 1:
                    data = data.mean(axis=1).astype("<i2")
                pcm = data.astype("<i2").tobytes()
                if self._in_rate != self.rate:
                    pcm, self._state = audioop.ratecv(
                        pcm, 2, 1, self._in_rate, self.rate, self._state
                    )
                self._buf += pcm
        if not self._buf:
            return None
        frame, self._buf = self._buf[:step], self._buf[step:]
        return frame.ljust(step, b"\0")


def stream(path: str | Path) -> Source:
    """A long sound file (hold music) decoded block by block as it plays."""
    return _Stream(Path(path))
