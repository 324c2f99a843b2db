"""Call recording: a stereo file of what two legs receive from their phones (left: the caller's
voice, right: the callee's).

On the loop, each leg's received packets are decoded into a jitter buffer (`MediaLeg.tap`) and
the media clock pulls one frame from each per tick, interleaving them (audioop, cheap). Every
second of stereo PCM is handed to ONE writer thread shared by all recordings, which encodes and
writes it with soundfile to `path + ".part"` and flushes, so a crash leaves a file playable to
within about two seconds of it. On stop the writer closes the file, fsyncs it and renames it to
`path`; `on_closed` then runs on the loop. `recover` makes a `.part` left by a crash a finished
file.
"""

from __future__ import annotations

import logging
import queue
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.media.errors import MediaError
from appliance.store.files import publish

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13 (audioop-lts replaces it)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

if TYPE_CHECKING:
    from appliance.media.engine import MediaEngine, MediaLeg
    from appliance.media.jitter import JitterBuffer
    from appliance.media.oggopus import OggOpusWriter

logger = logging.getLogger(__name__)

__all__ = ["FORMATS", "Recording", "RecordingResult", "recover"]

RATE = 8000
FRAME = RATE // 50 * 2
"""Bytes of one 20 ms mono frame."""
BATCH_FRAMES = 50
"""Frames handed to the writer at once: one second, the bound on what a crash loses."""

FORMATS: dict[str, tuple[str, str]] = {
    "opus": ("OGG", "OPUS"),  # written by appliance.media.oggopus (libsndfile's costs 4x more)
    "flac": ("FLAC", "PCM_16"),
    "wav": ("WAV", "PCM_16"),
}


@dataclass(frozen=True, slots=True)
class RecordingResult:
    """A finished recording: its path, the seconds of audio and the bytes it holds."""

    path: Path
    seconds: float
    bytes: int


class _Writer:
    """The one thread that encodes and writes every recording, fed by a queue of jobs."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="recorder", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except (OSError, RuntimeError, ValueError, MediaError) as exc:  # disk full, codec
                logger.error("recording writer: %s", exc)


WRITER = _Writer()


class _File:
    """What the writer thread holds for one recording (touched only on that thread)."""

    def __init__(self, path: Path, fmt: str) -> None:
        self.path = path
        self.part = path.with_name(path.name + ".part")
        self.fmt = fmt
        self.sf: Any = None
        self.opus: OggOpusWriter | None = None
        self.frames = 0
        self.error: str | None = None

    def open(self) -> None:
        if self.fmt == "opus":
            from appliance.media.oggopus import OggOpusWriter

            try:
                self.opus = OggOpusWriter(self.part, RATE, 2)
            except (OSError, MediaError) as exc:
                self.error = str(exc)
                raise
            return
        import soundfile

        container, subtype = FORMATS[self.fmt]
        try:
            self.sf = soundfile.SoundFile(str(self.part), "w", samplerate=RATE, channels=2,
                                          format=container, subtype=subtype)  # fmt: skip
        except (OSError, RuntimeError) as exc:
            self.error = str(exc)
            raise

    def write(self, pcm: bytes) -> None:
        if self.opus is not None:
            self.opus.write(pcm)
            self.opus.flush()
            self.frames += len(pcm) // 4
            return
        if self.sf is None:
            return
        import numpy as np

        data = np.frombuffer(pcm, dtype="<i2").reshape(-1, 2)
        self.sf.write(data)
        self.sf.flush()
        self.frames += len(data)

    def close(self) -> RecordingResult:
        if self.opus is not None:
            self.opus.close()
            self.opus = None
            publish(self.part, self.path)
        if self.sf is not None:
            self.sf.close()
            self.sf = None
            publish(self.part, self.path)
        size = self.path.stat().st_size if self.path.exists() else 0
        return RecordingResult(self.path, self.frames / RATE, size)


class Recording:
    """A stereo recording of two legs, ticked by the engine's media clock."""

    def __init__(
        self,
        engine: MediaEngine,
        path: Path,
        left: MediaLeg | None,
        right: MediaLeg | None,
        *,
        fmt: str = "opus",
        on_closed: Callable[[RecordingResult], None] | None = None,
    ) -> None:
        if fmt not in FORMATS:
            raise MediaError(f"unknown recording format {fmt!r}: one of {', '.join(FORMATS)}")
        self.engine = engine
        self.path = path
        self.on_closed = on_closed
        self.stopped = False
        self.paused = False
        self._loop = engine.loop
        self._file = _File(path, fmt)
        self._legs: list[MediaLeg | None] = [None, None]
        self._bufs: list[JitterBuffer | None] = [None, None]
        self._pending: list[bytes] = []
        WRITER.submit(self._file.open)
        self.set_legs(left, right)
        engine.clock.add(self)

    def set_legs(self, left: MediaLeg | None, right: MediaLeg | None) -> None:
        """Record these legs from now on (a transfer swapped or replaced one)."""
        for side, leg in enumerate((left, right)):
            old = self._legs[side]
            if old is leg:
                continue
            if old is not None:
                self._untap(side)
            if leg is not None and not leg.closed and not self.stopped:
                self._legs[side] = leg
                self._bufs[side] = leg.tap(RATE)
                leg.attach(self)

    def _untap(self, side: int) -> None:
        leg, buf = self._legs[side], self._bufs[side]
        self._legs[side] = self._bufs[side] = None
        if leg is not None:
            if buf is not None:
                leg.untap(buf)
            if leg not in self._legs:
                leg.detach(self)

    def detach(self, leg: MediaLeg) -> None:
        """`leg` closed: its channel is silent from now on."""
        for side in (0, 1):
            if self._legs[side] is leg:
                self._untap(side)

    def tick(self, now: float) -> None:
        if self.paused:
            return
        left, right = self._bufs
        lpcm = left.pull() if left is not None else bytes(FRAME)
        rpcm = right.pull() if right is not None else bytes(FRAME)
        stereo = audioop.add(audioop.tostereo(lpcm, 2, 1, 0), audioop.tostereo(rpcm, 2, 0, 1), 2)
        self._pending.append(stereo)
        if len(self._pending) >= BATCH_FRAMES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            pcm = b"".join(self._pending)
            self._pending = []
            file = self._file
            WRITER.submit(lambda: file.write(pcm))

    def pause(self) -> None:
        """Stop recording for a while (the file does not hold the pause)."""
        self.paused = True

    def resume(self) -> None:
        self.paused = False

    def stop(self) -> None:
        """Finish the file; on_closed(RecordingResult) runs on the loop once it is on disk."""
        if self.stopped:
            return
        self.stopped = True
        self.engine.clock.remove(self)
        for side in (0, 1):
            self._untap(side)
        self._flush()
        file, loop, on_closed = self._file, self._loop, self.on_closed

        def close() -> None:
            result = file.close()
            if on_closed is not None and not loop.is_closed():
                loop.call_soon_threadsafe(on_closed, result)

        WRITER.submit(close)


def recover(part: Path) -> Path:
    """A `.part` left by a crash made into the finished file next to it (its name without
    `.part`), which is returned. A truncated Ogg, FLAC or WAV stays readable by libsndfile up to
    the last whole block; a file it cannot read raises MediaError and stays where it is."""
    import soundfile

    if part.suffix != ".part":
        raise MediaError(f"{part} is not a recording in progress (.part)")
    try:
        soundfile.info(str(part))
    except (RuntimeError, TypeError) as exc:
        raise MediaError(f"recording {part} cannot be read: {exc}") from exc
    finished = part.with_suffix("")
    publish(part, finished)
    return finished
