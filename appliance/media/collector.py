"""Collecting the digits a caller presses (an IVR menu, a PIN): one `Collector` per leg, fed by
`MediaLeg.dtmf_received` whatever brought the digit (RFC 4733, SIP INFO, in-band tones).
Its timeouts are one `call_later` per collector, moved on at each digit, never one per packet."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.media.engine import MediaLeg


class Collector:
    """Digits until `max_digits`, the terminator, or a timeout; then on_done(digits, reason)."""

    def __init__(
        self,
        leg: MediaLeg,
        on_done: Callable[[str, str], None],
        *,
        max_digits: int = 1,
        first_timeout: float = 5.0,
        inter_timeout: float = 3.0,
        terminator: str | None = "#",
        stop_playback: bool = True,
    ) -> None:
        self.leg = leg
        self.on_done = on_done
        self.max_digits = max(1, max_digits)
        self.inter_timeout = inter_timeout
        self.terminator = terminator
        self.stop_playback = stop_playback
        self.digits = ""
        self.done = False
        self._timer: asyncio.TimerHandle | None = leg.engine.loop.call_later(
            first_timeout, self._timeout
        )

    def digit(self, digit: str) -> None:
        if self.done:
            return
        if self.stop_playback and self.leg._playback is not None:
            self.leg._playback.stop()  # barge-in
        if self.terminator is not None and digit == self.terminator:
            self._finish("terminator")
            return
        self.digits += digit
        if len(self.digits) >= self.max_digits:
            self._finish("max")
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.leg.engine.loop.call_later(self.inter_timeout, self._timeout)

    def _timeout(self) -> None:
        self._timer = None
        self._finish("timeout")

    def cancel(self) -> None:
        """Stop collecting; on_done is not called."""
        self._detach()

    def _detach(self) -> bool:
        if self.done:
            return False
        self.done = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.leg._collector is self:
            self.leg._collector = None
            self.leg._update_listening()
        return True

    def _finish(self, reason: str) -> None:
        if self._detach():
            self.on_done(self.digits, reason)
