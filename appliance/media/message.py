"""A message recording: what one leg's phone sends, mono, until silence, a length limit or a
stop (the caller's `#`, a hang-up): the answering machine's half of voicemail.

Ticked by the media clock like the call recorder (`appliance.media.recorder`), and written by
the same writer thread: mono Ogg/Opus to `path + ".part"`, flushed every second (a crash or a
power cut loses at most that), fsynced and renamed to `path` on stop. Silence is a frame whose
RMS is under `SILENCE_RMS`; the silence at the end (what made it stop) is left out of the file,
so a message does not end in five seconds of nothing; nor does it start with the silence
before the caller begins to speak.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.media.errors import MediaError
from appliance.media.recorder import WRITER, RecordingResult
from appliance.store.files import publish

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13 (audioop-lts replaces it)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

if TYPE_CHECKING:
    from appliance.media.engine import MediaEngine, MediaLeg
    from appliance.media.jitter import JitterBuffer
    from appliance.media.oggopus import OggOpusWriter

logger = logging.getLogger(__name__)

RATE = 8000
FRAMES_PER_SECOND = 50
SILENCE_RMS = 300
"""A 20 ms frame quieter than this (of 32767) is silence: line noise and comfort noise are
below it, speech well above (-40 dBFS)."""


class _MonoFile:
    """What the writer thread holds for one message (touched only on that thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.opus: OggOpusWriter | None = None
        self.samples = 0

    def open(self) -> None:
        from appliance.media.oggopus import OggOpusWriter

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.opus = OggOpusWriter(self.part, RATE, 1)

    def write(self, pcm: bytes) -> None:
        if self.opus is not None:
            self.opus.write(pcm)
            self.opus.flush()
            self.samples += len(pcm) // 2

    def close(self) -> RecordingResult:
        if self.opus is not None:
            self.opus.close()
            self.opus = None
            publish(self.part, self.path)
        size = self.path.stat().st_size if self.path.exists() else 0
        return RecordingResult(self.path, self.samples / RATE, size)


class MessageRecording:
    """Records `leg`'s phone into `path`; `on_stopped(reason)` on the loop when it stops by
    itself ("silence", "max"), then `on_closed(result)` once the file is on disk, whatever
    stopped it."""

    def __init__(
        self,
        engine: MediaEngine,
        leg: MediaLeg,
        path: Path,
        *,
        max_seconds: float,
        silence_seconds: float,
        on_stopped: Callable[[str], None] | None = None,
        on_closed: Callable[[RecordingResult], None] | None = None,
    ) -> None:
        if leg.closed:
            raise MediaError("the leg to record has closed")
        self.engine = engine
        self.leg = leg
        self.path = path
        self.on_stopped = on_stopped
        self.on_closed = on_closed
        self.stopped = False
        self.reason = ""
        self._loop = engine.loop
        self._file = _MonoFile(path)
        self._max_frames = int(max_seconds * FRAMES_PER_SECOND)
        self._silence_frames = max(int(silence_seconds * FRAMES_PER_SECOND), 1)
        self._frames = 0
        self._pending: list[bytes] = []
        self._quiet: list[bytes] = []
        """The silent frames since the last sound: written only if sound follows."""
        self._quiet_run = 0
        self._heard = False
        self._buf: JitterBuffer | None = leg.tap(RATE)
        leg.attach(self)
        WRITER.submit(self._file.open)
        engine.clock.add(self)

    def detach(self, leg: MediaLeg) -> None:
        """The leg closed (the caller hung up): the message ends here, kept."""
        self.stop("hangup")

    def tick(self, now: float) -> None:
        buf = self._buf
        if buf is None:
            return
        pcm = buf.pull()
        self._frames += 1
        if audioop.rms(pcm, 2) < SILENCE_RMS:
            self._quiet_run += 1
            if self._heard:  # (the silence before the caller speaks is left out)
                self._quiet.append(pcm)
            if self._quiet_run >= self._silence_frames:
                self._stop_by("silence")
                return
        else:
            self._heard, self._quiet_run = True, 0
            if self._quiet:
                self._pending.extend(self._quiet)
                self._quiet = []
            self._pending.append(pcm)
        if len(self._pending) >= FRAMES_PER_SECOND:
            self._flush()
        if self._frames >= self._max_frames:
            self._stop_by("max")

    def _stop_by(self, reason: str) -> None:
        self.stop(reason)
        if self.on_stopped is not None:
            self.on_stopped(reason)

    def _flush(self) -> None:
        if self._pending:
            pcm = b"".join(self._pending)
            self._pending = []
            file = self._file
            WRITER.submit(lambda: file.write(pcm))

    def stop(self, reason: str = "stopped") -> None:
        """Finish the file (the trailing silence left out); `on_closed` follows on the loop."""
        if self.stopped:
            return
        self.stopped = True
        self.reason = reason
        self.engine.clock.remove(self)
        if self._buf is not None:
            self.leg.untap(self._buf)
            self._buf = None
        self.leg.detach(self)
        self._quiet = []
        self._flush()
        file, loop, on_closed = self._file, self._loop, self.on_closed

        def close() -> None:
            result = file.close()
            if on_closed is not None and not loop.is_closed():
                loop.call_soon_threadsafe(on_closed, result)

        WRITER.submit(close)
