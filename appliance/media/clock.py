"""The media clock: one loop timer on absolute 20 ms boundaries that ticks every registered
`Ticker` (players, recorders, mixers, DTMF senders, collectors' timeouts).

One timer for the whole engine, not one `call_later` per packet: a hundred prompts cost one
timer event per 20 ms, not a hundred. The timer is scheduled with `call_at` on the boundary
after the last one (start + n x 20 ms), so lateness never accumulates into drift; a tick that
comes late by more than a frame catches up by ticking again at once (bounded), so frames are
never lost, only delivered in a burst. With no ticker registered the clock is idle.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

logger = logging.getLogger(__name__)

FRAME = 0.02
"""Seconds per tick: one 20 ms frame."""

MAX_CATCH_UP = 5
"""Ticks run back to back at most when the loop was late (100 ms); older ones are skipped."""


class Ticker(Protocol):
    """Something run on every 20 ms boundary while registered."""

    def tick(self, now: float) -> None: ...


class MediaClock:
    """One timer ticking every registered `Ticker`, idle while none is."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop
        self._tickers: dict[int, Ticker] = {}
        self._handle: asyncio.TimerHandle | None = None
        self._next = 0.0
        self.ticks = 0
        """Ticks run since the clock was made (for tests and the bench)."""

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        return self._loop

    @property
    def running(self) -> bool:
        return self._handle is not None

    def __len__(self) -> int:
        return len(self._tickers)

    def add(self, ticker: Ticker) -> None:
        """Tick `ticker` from the next 20 ms boundary on (adding it twice is adding it once)."""
        self._tickers[id(ticker)] = ticker
        if self._handle is None:
            loop = self.loop
            self._next = loop.time() + FRAME
            self._handle = loop.call_at(self._next, self._run)

    def remove(self, ticker: Ticker) -> None:
        """Stop ticking `ticker` (idempotent); the timer stops with the last one."""
        self._tickers.pop(id(ticker), None)
        if not self._tickers and self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _run(self) -> None:
        loop = self.loop
        now = loop.time()
        behind = int((now - self._next) / FRAME)
        if behind >= MAX_CATCH_UP:  # the loop stalled: skip what cannot be caught up
            self._next += FRAME * (behind - MAX_CATCH_UP + 1)
            behind = MAX_CATCH_UP - 1
        for _ in range(behind + 1):
            self.ticks += 1
            for ticker in list(self._tickers.values()):
                try:
                    ticker.tick(self._next)
                except Exception:  # one broken ticker must not silence every call
                    logger.exception("media ticker %r failed; removed", ticker)
                    self._tickers.pop(id(ticker), None)
            self._next += FRAME
            if not self._tickers:
                break
        if self._tickers:
            self._handle = loop.call_at(self._next, self._run)
        else:
            self._handle = None
