"""A conference mix: every member hears the sum of the others, its own voice excluded, clipped;
16 kHz inside when any member speaks G.722, else 8 kHz. Ticked by the media clock; each
member's audio comes from its jitter buffer (`MediaLeg.tap`), and while a leg is a member its
relay to a peer is suspended and nothing relayed reaches it. `play` mixes an announcement in.
"""

from __future__ import annotations

import logging
import warnings
from typing import TYPE_CHECKING, Any

from appliance.media.codecs import CODECS
from appliance.media.sources import Source, frame_bytes

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13 (audioop-lts replaces it)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

if TYPE_CHECKING:
    from appliance.media.engine import MediaEngine, MediaLeg
    from appliance.media.jitter import JitterBuffer

logger = logging.getLogger(__name__)


class Mixer:
    """The members of one conference and what each of them hears."""

    def __init__(self, engine: MediaEngine) -> None:
        self.engine = engine
        self.members: dict[MediaLeg, JitterBuffer] = {}
        self.rate = 8000
        self.closed = False
        self._announcement: Source | None = None
        self._state: Any = None

    def _wanted_rate(self) -> int:
        wide = any(
            leg.codec is not None and CODECS[leg.codec.name].sample_rate == 16000
            for leg in self.members
        )
        return 16000 if wide else 8000

    def _retap(self) -> None:
        rate = self._wanted_rate()
        if rate == self.rate:
            return
        self.rate = rate
        for leg, buf in list(self.members.items()):
            leg.untap(buf)
            self.members[leg] = leg.tap(rate)

    def add(self, leg: MediaLeg) -> None:
        """`leg` joins: it hears the others, they hear it."""
        if self.closed or leg.closed or leg in self.members:
            return
        if leg._mixer is not None:
            leg._mixer.remove(leg)
        self.members[leg] = leg.tap(self.rate)
        leg._mixer = self
        leg.relay_suspended = True
        leg._own_audio_changed()
        leg.attach(self)
        self._retap()
        self.engine.clock.add(self)

    def remove(self, leg: MediaLeg) -> None:
        """`leg` leaves: its relay to a peer resumes."""
        buf = self.members.pop(leg, None)
        if buf is None:
            return
        leg.untap(buf)
        leg.detach(self)
        if leg._mixer is self:
            leg._mixer = None
            leg.relay_suspended = False
            leg._own_audio_changed()
            leg._src_ssrc = -1  # relayed audio continues the stream afresh
        if not self.members:
            self.engine.clock.remove(self)
        else:
            self._retap()

    def detach(self, leg: MediaLeg) -> None:
        self.remove(leg)

    def play(self, source: Source) -> None:
        """Mix `source` into what every member hears until it ends (replaces one playing)."""
        self._announcement = source
        self._state = None

    def close(self) -> None:
        """Every member leaves."""
        for leg in list(self.members):
            self.remove(leg)
        self.closed = True

    def tick(self, now: float) -> None:
        rate = self.rate
        step = frame_bytes(rate)
        voices = [(leg, buf.pull()) for leg, buf in self.members.items()]
        extra = self._read_announcement(rate, step)
        for leg, _ in voices:
            if leg._playback is not None:
                continue  # a prompt for this member alone takes the place of the mix
            mix = extra if extra is not None else bytes(step)
            for other, pcm in voices:
                if other is not leg:
                    mix = audioop.add(mix, pcm, 2)  # saturates: clipped, never wrapped
            leg._outlet().send(leg, mix, rate)

    def _read_announcement(self, rate: int, step: int) -> bytes | None:
        source = self._announcement
        if source is None:
            return None
        frame = source.read()
        if frame is None:
            self._announcement = None
            return None
        if source.rate != rate:
            frame, self._state = audioop.ratecv(frame, 2, 1, source.rate, rate, self._state)
        return frame[:step].ljust(step, b"\0")
