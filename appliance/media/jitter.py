"""A small jitter buffer for legs whose audio the box itself listens to (recordings, mixers):
decoded 20 ms frames keyed by RTP sequence number, pulled one per clock tick.

It waits for `min_frames` (60 ms) before playing out, reorders what arrives within that
delay, conceals a lost frame by repeating the last one once and then with silence, and bounds
the delay at `max_frames` (100 ms) by dropping the oldest frames when a burst arrives. After a
long gap (hold, silence suppression) it buffers again from the next packet.
"""

from __future__ import annotations

from appliance.media.codecs import _Resampler
from appliance.media.sources import frame_bytes

REBUFFER_MISSES = 10
"""Ticks in a row with nothing buffered before the buffer starts over (200 ms)."""


class JitterBuffer:
    """Decoded frames of one leg's received stream, at `rate` (resampled when pushed)."""

    def __init__(self, rate: int = 8000, min_frames: int = 3, max_frames: int = 5) -> None:
        self.rate = rate
        self.min_frames = min_frames
        self.max_frames = max_frames
        self._frames: dict[int, bytes] = {}
        self._next = 0
        self._started = False
        self._last: bytes | None = None
        self._misses = 0
        self._resampler: _Resampler | None = None
        self._step = frame_bytes(rate)
        self.late = 0
        self.concealed = 0

    def push(self, seq: int, pcm: bytes, rate: int) -> None:
        """One decoded packet (`pcm` at `rate`) with its RTP sequence number."""
        if rate != self.rate:
            if self._resampler is None or self._resampler.src_rate != rate:
                self._resampler = _Resampler(rate, self.rate)
            pcm = self._resampler.convert(pcm)
        if len(pcm) != self._step:
            pcm = pcm[: self._step].ljust(self._step, b"\0")
        if self._started:
            ahead = (seq - self._next) & 0xFFFF
            if ahead >= 0x8000:
                self.late += 1  # behind the play-out point: too late to be heard
                return
            if ahead >= self.max_frames:  # a burst: keep the delay bounded
                new_next = (seq - self.max_frames + 1) & 0xFFFF
                for key in list(self._frames):
                    if (key - new_next) & 0xFFFF >= 0x8000:
                        del self._frames[key]
                self._next = new_next
        self._frames[seq] = pcm

    def pull(self) -> bytes:
        """The next 20 ms frame to hear (silence before the buffer has filled)."""
        frames = self._frames
        if not self._started:
            if len(frames) < self.min_frames:
                return bytes(self._step)
            self._started = True
            ref = next(iter(frames))  # the oldest, seen from any frame within half the range
            self._next = min(frames, key=lambda k: (k - ref + 0x8000) & 0xFFFF)
        frame = frames.pop(self._next, None)
        self._next = (self._next + 1) & 0xFFFF
        if frame is not None:
            self._last, self._misses = frame, 0
            return frame
        self._misses += 1
        if not frames and self._misses >= REBUFFER_MISSES:
            self._started, self._last = False, None
        self.concealed += 1
        if self._misses == 1 and self._last is not None:
            return self._last  # one lost packet: repeat the last one
        return bytes(self._step)
