"""The media clock on a real event loop: ticks on absolute 20 ms boundaries without drift,
catches up after a stall, idles when nothing is registered, survives a failing ticker."""

from __future__ import annotations

import asyncio
import time

from appliance.media.clock import FRAME, MediaClock


class Recorder:
    def __init__(self, clock: MediaClock, count: int) -> None:
        self.clock, self.count = clock, count
        self.stamps: list[float] = []
        self.wall: list[float] = []
        self.done = asyncio.get_running_loop().create_future()

    def tick(self, now: float) -> None:
        self.stamps.append(now)
        self.wall.append(time.monotonic())
        if len(self.stamps) == self.count:
            self.clock.remove(self)
            self.done.set_result(None)


def test_ticks_on_absolute_boundaries_without_drift() -> None:
    async def body() -> None:
        clock = MediaClock()
        rec = Recorder(clock, 100)
        start = time.monotonic()
        clock.add(rec)
        clock.add(rec)  # twice is once
        await asyncio.wait_for(rec.done, 5)
        steps = [b - a for a, b in zip(rec.stamps, rec.stamps[1:], strict=False)]
        assert all(abs(s - FRAME) < 1e-9 for s in steps)  # the boundaries themselves
        elapsed = rec.wall[-1] - start
        assert abs(elapsed - 100 * FRAME) < 0.03  # 2 s of ticks took 2 s: no drift
        assert not clock.running and len(clock) == 0  # idle with nobody registered

    asyncio.run(body())


def test_a_stalled_loop_is_caught_up_and_a_failing_ticker_is_dropped() -> None:
    async def body() -> None:
        clock = MediaClock()
        rec = Recorder(clock, 30)

        class Broken:
            def tick(self, now: float) -> None:
                raise ValueError("boom")

        class Staller:
            calls = 0

            def tick(self, now: float) -> None:
                self.calls += 1
                if self.calls == 5:
                    time.sleep(0.07)  # the loop is blocked for 3.5 frames (a stall, on purpose)

        broken, staller = Broken(), Staller()
        clock.add(broken)
        clock.add(staller)
        start = time.monotonic()
        clock.add(rec)
        await asyncio.wait_for(rec.done, 5)
        clock.remove(staller)
        assert len(clock) == 0
        assert rec.count == len(rec.stamps) == 30
        # all 30 ticks were delivered by the time 30 frames had passed (a burst after the stall)
        assert rec.wall[-1] - start < 30 * FRAME + 0.03
        burst = [b - a for a, b in zip(rec.wall, rec.wall[1:], strict=False)]
        assert sum(1 for g in burst if g < 0.005) >= 2

    asyncio.run(body())
