"""One analog port's audio through ALSA (pyalsaaudio): 8 kHz signed 16-bit little-endian
mono in 20 ms frames (160 samples), non-blocking both ways.

Nothing here keeps time. The gateway's own 20 ms clock calls `read_frame` and `write_frame`
once per tick: a USB adapter's clock drifts from the RTP side's, and the file-backed PCMs of
the simulated board are not paced at all (a second of audio reads in no time), so the gateway
must be the one clock on either kind of board.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

import alsaaudio

__all__ = ["FRAME_BYTES", "FRAME_SAMPLES", "RATE", "AudioError", "AudioStats", "PortAudio"]

logger = logging.getLogger(__name__)

RATE = 8000
FRAME_SAMPLES = 160
"""20 ms at 8 kHz: one G.711 RTP packet's worth."""
FRAME_BYTES = FRAME_SAMPLES * 2


class AudioError(Exception):
    """The port's PCM cannot be opened or failed beyond recovery."""


@dataclass
class AudioStats:
    frames_read: int = 0
    frames_written: int = 0
    overruns: int = 0
    """Capture fell behind (the gateway did not read in time): audio was lost."""
    dropped: int = 0
    """Playback buffer full: a frame was not written (the gateway ran ahead of the device)."""


class PortAudio:
    """Capture and playback on the ALSA PCM `pcm` of one port (the profile's `ports[].pcm`).
    `periods` of 20 ms is the device buffer: 4 (80 ms) absorbs a late tick without adding
    more than that to the latency."""

    def __init__(self, pcm: str, *, periods: int = 4) -> None:
        self.pcm = pcm
        self.stats = AudioStats()
        self._pending = bytearray()
        self._capture = self._open(alsaaudio.PCM_CAPTURE, periods)
        try:
            self._playback = self._open(alsaaudio.PCM_PLAYBACK, periods)
        except AudioError:
            self._capture.close()
            raise

    def _open(self, kind: int, periods: int) -> alsaaudio.PCM:
        try:
            return alsaaudio.PCM(
                kind,
                alsaaudio.PCM_NONBLOCK,
                device=self.pcm,
                channels=1,
                rate=RATE,
                format=alsaaudio.PCM_FORMAT_S16_LE,
                periodsize=FRAME_SAMPLES,
                periods=periods,
            )
        except alsaaudio.ALSAAudioError as exc:
            direction = "capture" if kind == alsaaudio.PCM_CAPTURE else "playback"
            raise AudioError(f"cannot open {self.pcm!r} for {direction}: {exc}") from None

    def read_frame(self) -> bytes | None:
        """The next 20 ms of the handset's audio, or None when the device has none yet."""
        while len(self._pending) < FRAME_BYTES:
            try:
                length, data = self._capture.read()
            except alsaaudio.ALSAAudioError as exc:
                raise AudioError(f"{self.pcm}: capture failed: {exc}") from None
            if length == -errno.EPIPE:
                self.stats.overruns += 1
                continue  # pyalsaaudio has prepared the device again; read on
            if length <= 0:
                return None
            self._pending += data
        frame = bytes(self._pending[:FRAME_BYTES])
        del self._pending[:FRAME_BYTES]
        self.stats.frames_read += 1
        return frame

    def write_frame(self, frame: bytes) -> bool:
        """Queue 20 ms for the handset; False (and counted) when the device buffer is full."""
        if len(frame) != FRAME_BYTES:
            raise ValueError(f"a frame is {FRAME_BYTES} bytes, not {len(frame)}")
        try:
            written = self._playback.write(frame)
        except alsaaudio.ALSAAudioError as exc:
            raise AudioError(f"{self.pcm}: playback failed: {exc}") from None
        if written != FRAME_SAMPLES:  # 0: no room; a part was never seen with 20 ms periods
            self.stats.dropped += 1
            return False
        self.stats.frames_written += 1
        return True

    def close(self) -> None:
        """Close both directions; playback drains what was queued first."""
        self._playback.close()
        self._capture.close()

    def __enter__(self) -> PortAudio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
