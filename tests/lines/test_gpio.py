"""Tests of `appliance.lines.gpio` against the fake `gpiod` backend (no GPIO chip exists
here): chips found by label among several, lines by name with their polarity, LED patterns
over an injected clock, and the reset button's 10 s hold."""

from __future__ import annotations

import select
from pathlib import Path

import gpiod
import pytest

from appliance.lines.boards import GpioLine, load_profile, shipped_profiles
from appliance.lines.gpio import (
    BLINK_SLOW,
    GPIOD,
    OFF,
    ON,
    ButtonEvent,
    FakeGpiod,
    GpiodApi,
    GpioError,
    GpioLines,
    LedPattern,
    Leds,
    ResetButton,
    SlicRinger,
    find_chip,
)

PI = "pinctrl-bcm2711"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fake(tmp_path: Path) -> FakeGpiod:
    api = FakeGpiod(tmp_path)
    # Chip numbers in the order a Pi 4 with an I/O expander might enumerate them: the label
    # is what tells them apart.
    api.add_chip("gpiochip0", "raspberrypi-exp-gpio", [f"EXP{i}" for i in range(8)])
    api.add_chip("gpiochip1", PI, [f"GPIO{i}" for i in range(58)])
    (tmp_path / "gpiochip9").touch()  # a node that is not a GPIO chip
    return api


def test_the_real_module_fits_the_seam(tmp_path: Path) -> None:
    # mypy checks the real backend against `GpiodApi`; here it runs: no chip in this machine.
    assert GPIOD.Chip is gpiod.Chip and GPIOD.LineSettings is gpiod.LineSettings
    (tmp_path / "gpiochip0").touch()
    assert not GPIOD.is_gpiochip_device(str(tmp_path / "gpiochip0"))
    with pytest.raises(
        GpioError, match=r"\Ano GPIO chip labelled 'pinctrl-bcm2711' \(found: none\)\Z"
    ):
        find_chip(GPIOD, PI, tmp_path)
    fake_api: GpiodApi = FakeGpiod(tmp_path)
    assert fake_api.is_gpiochip_device(str(tmp_path / "gpiochip0")) is False


def test_chips_by_label(fake: FakeGpiod, tmp_path: Path) -> None:
    assert find_chip(fake, PI, tmp_path) == str(tmp_path / "gpiochip1")
    assert find_chip(fake, "raspberrypi-exp-gpio", tmp_path) == str(tmp_path / "gpiochip0")
    with pytest.raises(GpioError, match=r"no GPIO chip labelled 'pinctrl-rp1' \(found: "):
        find_chip(fake, "pinctrl-rp1", tmp_path)


def test_lines_by_name_with_polarity(fake: FakeGpiod, tmp_path: Path) -> None:
    led = GpioLine(PI, "GPIO17")
    button = GpioLine(PI, "GPIO27", active_low=True)
    lines = GpioLines(fake, {"status": led}, {"reset": button}, dev=tmp_path)
    assert fake.level(PI, "GPIO17") is False
    lines.set("status", True)
    assert fake.level(PI, "GPIO17") is True
    fake.drive(PI, "GPIO27", True)  # pulled up: not pressed
    assert lines.get("reset") is False
    fake.drive(PI, "GPIO27", False)  # pressed to ground
    assert lines.get("reset") is True
    # The lines are held: a second driver cannot have them.
    with pytest.raises(GpioError, match="lines of chip 'pinctrl-bcm2711' are busy"):
        GpioLines(fake, {"status": led}, {}, dev=tmp_path)
    lines.close()
    GpioLines(fake, {"status": led}, {}, dev=tmp_path).close()
    with pytest.raises(GpioError, match="no line 'GPIO99' on chip 'pinctrl-bcm2711'"):
        GpioLines(fake, {"x": GpioLine(PI, "GPIO99")}, {}, dev=tmp_path)


def test_profile_lines_open(fake: FakeGpiod, tmp_path: Path) -> None:
    profile = load_profile(shipped_profiles()["gpio-ag1171"])
    outputs = {f"led{p.number}": p.led for p in profile.ports if p.led}
    assert profile.status_led is not None and profile.reset_button is not None
    outputs["status"] = profile.status_led
    lines = GpioLines(fake, outputs, {"reset": profile.reset_button}, dev=tmp_path)
    lines.set("led2", True)
    assert fake.level(PI, "GPIO6") and not fake.level(PI, "GPIO5")
    lines.close()


def test_led_patterns(fake: FakeGpiod, tmp_path: Path) -> None:
    clock = Clock()
    lines = GpioLines(fake, {"port1": GpioLine(PI, "GPIO5")}, {}, dev=tmp_path)
    leds = Leds(lines, ["port1"], clock)
    chip = fake.chips[str(tmp_path / "gpiochip1")]
    assert fake.level(PI, "GPIO5") is False
    leds.set("port1", ON)
    assert fake.level(PI, "GPIO5") is True
    # Blinking 500/500 from a 20 ms clock: sample two seconds of it.
    leds.set("port1", BLINK_SLOW)
    seen = []
    for _ in range(100):
        leds.update()
        seen.append(fake.level(PI, "GPIO5"))
        clock.now += 0.02
    assert seen == ([True] * 25 + [False] * 25) * 2
    before = len(chip.writes)
    leds.set("port1", BLINK_SLOW)  # the same pattern: no restart, no write
    assert len(chip.writes) == before
    # A short flash of 100 ms every 2 s.
    leds.set("port1", LedPattern(True, 100, 1900))
    levels = []
    for _ in range(200):
        levels.append(fake.level(PI, "GPIO5"))
        clock.now += 0.02
        leds.update()
    assert levels == ([True] * 5 + [False] * 95) * 2
    leds.set("port1", OFF)
    assert fake.level(PI, "GPIO5") is False
    # Only changes are written: 2 writes per blink period plus the steady states.
    assert len(chip.writes) - before == 1 + 4 + 1


def test_button_hold_of_ten_seconds(fake: FakeGpiod, tmp_path: Path) -> None:
    clock = Clock()
    lines = GpioLines(fake, {}, {"reset": GpioLine(PI, "GPIO27", active_low=True)}, dev=tmp_path)
    button = ResetButton(lines, "reset", clock=clock)
    fake.drive(PI, "GPIO27", True)
    assert button.poll() is None
    # A short press.
    fake.drive(PI, "GPIO27", False)
    assert button.poll() is None
    clock.now += 0.5
    fake.drive(PI, "GPIO27", True)
    assert button.poll() is ButtonEvent.PRESSED
    # A bounce shorter than the debounce time is nothing.
    fake.drive(PI, "GPIO27", False)
    button.poll()
    clock.now += 0.01
    fake.drive(PI, "GPIO27", True)
    assert button.poll() is None
    # Held: nothing until 10 s, HELD once at 10 s, nothing at release.
    fake.drive(PI, "GPIO27", False)
    events = []
    for _ in range(600):  # 12 s polled every 20 ms
        events.append(button.poll())
        clock.now += 0.02
    held_at = events.index(ButtonEvent.HELD)
    assert held_at == 500
    assert [e for e in events if e is not None] == [ButtonEvent.HELD]
    fake.drive(PI, "GPIO27", True)
    assert button.poll() is None
    # 9.9 s is not a hold.
    fake.drive(PI, "GPIO27", False)
    button.poll()
    clock.now += 9.9
    assert button.poll() is None
    fake.drive(PI, "GPIO27", True)
    assert button.poll() is ButtonEvent.PRESSED


def test_hook_edges_with_kernel_timestamps(fake: FakeGpiod, tmp_path: Path) -> None:
    profile = load_profile(shipped_profiles()["gpio-ag1171"])
    slic = profile.ports[0].slic
    assert slic is not None
    lines = GpioLines(fake, {}, {"hook1": slic.shk}, edges=["hook1"], dev=tmp_path)
    (fd,) = lines.fds()
    assert lines.edges() == []
    # Off hook, then the digit 2 dialled at 10 pps (60 ms break, 40 ms make), from t = 5 s.
    fake.drive(PI, "GPIO24", True, at_s=5.0)
    t = 5.5
    for _ in range(2):
        fake.drive(PI, "GPIO24", False, at_s=t)
        fake.drive(PI, "GPIO24", True, at_s=t + 0.060)
        t += 0.100
    assert select.select([fd], [], [], 0)[0] == [fd]  # readable: an event loop would wake
    edges = lines.edges()
    assert [(e.key, e.active) for e in edges] == [("hook1", True)] + [
        ("hook1", False),
        ("hook1", True),
    ] * 2
    assert [round(e.at_ms, 3) for e in edges] == [5000.0, 5500.0, 5560.0, 5600.0, 5660.0]
    assert select.select([fd], [], [], 0)[0] == []
    assert lines.edges() == []
    lines.close()
    with pytest.raises(ValueError, match="edges on lines that are not inputs"):
        GpioLines(fake, {}, {}, edges=["hook1"], dev=tmp_path)


def test_slic_ringing_cadence(fake: FakeGpiod, tmp_path: Path) -> None:
    clock = Clock()
    profile = load_profile(shipped_profiles()["gpio-ag1171"])
    slic = profile.ports[0].slic
    assert slic is not None
    lines = GpioLines(fake, {"rm": slic.rm, "fr": slic.fr}, {}, dev=tmp_path)
    ringer = SlicRinger(lines, "rm", "fr", clock=clock)
    assert not fake.level(PI, "GPIO22") and not fake.level(PI, "GPIO23")
    # The RU cadence, 0.8 s on, 3.2 s off, sampled by a 20 ms tick over two periods.
    ringer.ring(((800, 3200),))
    rm, fr = [], []
    for _ in range(400):
        rm.append(fake.level(PI, "GPIO22"))
        fr.append(fake.level(PI, "GPIO23"))
        clock.now += 0.02
        ringer.tick()
    assert rm == ([True] * 40 + [False] * 160) * 2
    # 25 Hz: F/R changes every 20 ms within a burst (one full cycle per 40 ms) and rests
    # at the line's polarity between bursts.
    burst = fr[:40]
    assert burst == [False, True] * 20
    assert fr[40:200] == [False] * 160
    ringer.stop()
    assert not fake.level(PI, "GPIO22") and not ringer.ringing
    ringer.polarity(True)
    assert fake.level(PI, "GPIO23")
    with pytest.raises(ValueError, match="cadence"):
        ringer.ring(())
