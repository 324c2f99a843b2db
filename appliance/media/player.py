"""Playing a source to a leg's phone: one `Playback` per leg, ticked by the media clock, and the
`Outlet` that encodes the box's own audio into the leg's codec and RTP stream (shared with the
mixer)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.media.codecs import CODECS, Encoder, _Resampler, make_encoder
from appliance.media.errors import MediaError
from appliance.media.sources import Source

if TYPE_CHECKING:
    from appliance.media.engine import MediaLeg

logger = logging.getLogger(__name__)


class Outlet:
    """PCM from the box into one leg's codec: the encoder (and resampler) follow the codec the
    leg has now, made again when a re-INVITE changes it."""

    def __init__(self) -> None:
        self._codec = ""
        self._encoder: Encoder | None = None
        self._resampler: _Resampler | None = None

    def send(self, leg: MediaLeg, pcm: bytes, rate: int) -> None:
        codec = leg.codec
        if codec is None or leg.remote is None:
            return
        want = CODECS[codec.name].sample_rate
        if self._encoder is None or codec.name != self._codec:
            self._codec, self._encoder = codec.name, make_encoder(codec.name)
            self._resampler = None
        if rate != want:
            if self._resampler is None or self._resampler.src_rate != rate:
                self._resampler = _Resampler(rate, want)
            pcm = self._resampler.convert(pcm)
        leg._send_own(self._encoder.encode(pcm), codec.payload_type)


class Playback:
    """`source` played to `leg`'s phone, a frame per tick, until it ends or is stopped."""

    def __init__(
        self, leg: MediaLeg, source: Source, on_done: Callable[[bool], None] | None
    ) -> None:
        self.leg = leg
        self.source = source
        self.on_done = on_done
        self.done = False
        self.frames = 0

    def tick(self, now: float) -> None:
        leg = self.leg
        if leg.codec is None or leg.remote is None:
            return  # nothing to send to yet: the source waits
        try:
            frame = self.source.read()
        except MediaError as exc:  # a prompt of a sequence that cannot be read: stop here
            logger.error("playback to RTP port %d stopped: %s", leg.port, exc)
            self._finish(False)
            return
        if frame is None:
            self._finish(True)
            return
        self.frames += 1
        leg._outlet().send(leg, frame, self.source.rate)

    def stop(self) -> None:
        """Stop playing (on_done(False)); nothing if it already ended."""
        self._finish(False)

    def _finish(self, ended: bool) -> None:
        if self.done:
            return
        self.done = True
        leg = self.leg
        leg.engine.clock.remove(self)
        if leg._playback is self:
            leg._playback = None
            leg._own_audio_changed()
        if self.on_done is not None:
            self.on_done(ended)
