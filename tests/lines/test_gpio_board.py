"""Tests of `appliance.lines.gpio_board` over the fake `gpiod` backend: a handset on an
Ag1171 port as the gateway sees it (protocol events from timestamped hook edges, ringing on
the SLIC's lines with ring trip, LEDs), behind the same interface as the serial link."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from appliance.lines import protocol as p
from appliance.lines.boards import load_profile, shipped_profiles
from appliance.lines.gpio import FakeGpiod
from appliance.lines.gpio_board import GpioBoard
from appliance.lines.link import CommandRejected, LinkState
from appliance.lines.tones import FlashWindow

PI = "pinctrl-bcm2711"
FLASH = FlashWindow(80.0, 300.0)


def fake_pi(tmp_path: Path) -> FakeGpiod:
    api = FakeGpiod(tmp_path)
    api.add_chip("gpiochip0", PI, [f"GPIO{i}" for i in range(58)])
    return api


def test_a_handset_on_port_one(tmp_path: Path) -> None:
    api = fake_pi(tmp_path)
    events: list[p.Message] = []

    async def until(count: int) -> None:
        deadline = time.monotonic() + 3
        while len(events) < count:
            assert time.monotonic() < deadline, events
            await asyncio.sleep(0.01)

    async def main() -> None:
        board = GpioBoard(
            load_profile(shipped_profiles()["gpio-ag1171"]),
            flash=FLASH,
            on_event=events.append,
            api=api,
            dev=tmp_path,
        )
        await board.start()
        assert await board.wait_state(LinkState.UP, 2)
        assert board.capabilities == p.Capabilities(1, "gpio-ag1171", "gpio", (p.FXS, p.FXS))

        # Ringing with the RU cadence; the SLIC's RM goes high and F/R toggles.
        await board.send(p.Ring(1, ((800, 3200),)))
        assert api.level(PI, "GPIO22")
        toggles = 0
        last = api.level(PI, "GPIO23")
        deadline = time.monotonic() + 0.4
        while time.monotonic() < deadline:
            await asyncio.sleep(0.005)
            now = api.level(PI, "GPIO23")
            toggles += now != last
            last = now
        assert toggles >= 8  # 25 Hz toggled every 20 ms tick: ~20 in 0.4 s, allowing for load

        # The handset is lifted (SHK high): ring trip, OffHook.
        start = time.monotonic()
        api.drive(PI, "GPIO24", True, at_s=start)
        await until(1)
        assert events == [p.OffHook(1)]
        await asyncio.sleep(0.05)
        assert not api.level(PI, "GPIO22")

        # Pulse-dialled "3" at 10 pps (60 ms break, 40 ms make), stamped in the past so the
        # decoder sees exact timing, then a 200 ms flash and a hang-up.
        t = start + 0.5
        for _ in range(3):
            api.drive(PI, "GPIO24", False, at_s=t)
            api.drive(PI, "GPIO24", True, at_s=t + 0.060)
            t += 0.100
        await until(2)
        assert events[1] == p.PulseDigit(1, 3)
        t = time.monotonic()
        api.drive(PI, "GPIO24", False, at_s=t)
        api.drive(PI, "GPIO24", True, at_s=t + 0.200)
        await until(3)
        assert events[2] == p.Flash(1, 200)
        api.drive(PI, "GPIO24", False)
        await until(4)
        assert events[3] == p.OnHook(1)

        # LEDs and refusals, as a serial board would answer.
        await board.send(p.Led(2, p.LedMode.ON))
        assert api.level(PI, "GPIO6")
        await board.send(p.Led(p.STATUS_LED, p.LedMode.BLINK, 500, 500))
        assert api.level(PI, "GPIO17")
        with pytest.raises(CommandRejected, match="Seize refused: WRONG_KIND"):
            await board.send(p.Seize(1))
        with pytest.raises(CommandRejected, match="Ring refused: BAD_PORT"):
            await board.send(p.Ring(3, ((1000, 4000),)))
        await board.send(p.Reset())
        assert not api.level(PI, "GPIO6")
        await board.stop()
        assert board.state == LinkState.DOWN
        assert events[4:] == []

    asyncio.run(main())


def test_lines_held_elsewhere_leave_it_down(tmp_path: Path) -> None:
    api = fake_pi(tmp_path)
    profile = load_profile(shipped_profiles()["gpio-ag1171"])

    async def main() -> None:
        first = GpioBoard(profile, flash=FLASH, on_event=lambda m: None, api=api, dev=tmp_path)
        await first.start()
        assert await first.wait_state(LinkState.UP, 2)
        second = GpioBoard(
            profile, flash=FLASH, on_event=lambda m: None, api=api, dev=tmp_path, retry_s=0.05
        )
        await second.start()
        assert not await second.wait_state(LinkState.UP, 0.3)
        await first.stop()
        assert await second.wait_state(LinkState.UP, 2)  # retried, and got them
        await second.stop()

    asyncio.run(main())
