"""The gateway on boards whose LEDs or ports are on the host's GPIO (the fake `gpiod` backend,
the one part that cannot exist here), with real ALSA file-backed PCMs and a real core:

- the direct-GPIO profile (two Ag1171 SLICs): both ports register to the core, the status LED
  blinks until they have and is lit steadily once they are, a handset lifted (SHK high) gets
  the RU dial tone in its earpiece and its port LED lit;
- a serial board whose status LED is on the host's GPIO (the microcontroller profile's wiring,
  here on the simulated board): the gateway blinks it itself while the ports are not
  registered, even though the board knows nothing of it;
- the reset button on the host's GPIO (active low, as wired): held for its hold time it files
  one factory reset on the appliance (`PBX_FACTORY_RESET_UNIT` standing for the image's
  unit), a shorter press files nothing, and off the appliance a hold files nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from appliance import factory_reset
from appliance.lines import protocol as p
from appliance.lines.boards import BoardProfile, GpioLine, load_profile, shipped_profiles
from appliance.lines.fxs import State
from appliance.lines.gateway import Gateway
from appliance.lines.gpio import FakeGpiod
from appliance.lines.link import LinkState
from appliance.lines.sim import SimAudioPort, SimBoard, write_asoundrc
from appliance.store import ports, settings
from appliance.store.db import open_db
from tests.conftest import CoreProcess

PI = "pinctrl-bcm2711"
STATUS = "GPIO17"
RESET = "GPIO27"


def fake_pi(tmp_path: Path) -> FakeGpiod:
    api = FakeGpiod(tmp_path)
    api.add_chip("gpiochip0", PI, [f"GPIO{i}" for i in range(58)])
    return api


def file_pcms(profile: BoardProfile, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> BoardProfile:
    """`profile` with each port's PCM an ALSA file-backed device (a silent microphone)."""
    audio, changed = [], []
    for port in profile.ports:
        name = f"port{port.number}"
        infile = tmp / f"{name}.in.raw"
        infile.write_bytes(bytes(8000 * 2 * 60))
        audio.append(SimAudioPort(name, infile, tmp / f"{name}.out.raw"))
        changed.append(dataclasses.replace(port, pcm=name))
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(write_asoundrc(tmp / "asoundrc", audio)))
    return dataclasses.replace(profile, ports=tuple(changed))


def office(data: Path) -> None:
    db = open_db(data)
    try:
        settings.set_value(db, "office.country", "RU")
        ports.demo_ports(db)  # FXS 1-2 as 201-202 (the GPIO profile has no port 3: unused)
    finally:
        db.conn.close()


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def levels(api: FakeGpiod, line: str, seconds: float) -> set[bool]:
    """The levels `line` showed over `seconds`, sampled every 10 ms."""
    seen = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.add(api.level(PI, line))
        await asyncio.sleep(0.01)
    return seen


def dominant(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


def test_a_direct_gpio_board_registers_lights_its_leds_and_gives_dial_tone(
    tmp_path: Path, core_factory: type[CoreProcess], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "var"
    office(data)
    core = core_factory(data=data)
    core.start()
    profile = file_pcms(load_profile(shipped_profiles()["gpio-ag1171"]), tmp_path, monkeypatch)
    api = fake_pi(tmp_path)

    async def scenario() -> None:
        gateway = Gateway(
            data, profile, (core.host, core.port), sip=("127.0.0.1", 0), gpio=api,
            gpio_dev=tmp_path,
        )  # fmt: skip
        await gateway.start()
        try:
            assert await gateway.link.wait_state(LinkState.UP, 5)
            await until(lambda: all(port.registered for port in gateway.fxs.values()))
            assert sorted(gateway.fxs) == [1, 2]
            await until(lambda: api.level(PI, STATUS))
            assert await levels(api, STATUS, 1.2) == {True}  # steady: every port registered

            api.drive(PI, "GPIO24", True)  # port 1's SHK: the handset is lifted
            port = gateway.fxs[1]
            await until(lambda: port.state is State.DIALTONE)
            await until(lambda: api.level(PI, "GPIO5"))  # its LED: off hook, lit
            assert not api.level(PI, "GPIO6")  # port 2 idle
            earpiece = tmp_path / "port1.out.raw"
            start = earpiece.stat().st_size
            await until(lambda: earpiece.stat().st_size - start >= 16000)
            heard = earpiece.read_bytes()[start : start + 16000]
            assert dominant(heard) == pytest.approx(425, abs=5)  # RU dial tone
            api.drive(PI, "GPIO24", False)
            await until(lambda: port.state is State.IDLE)
            await until(lambda: not api.level(PI, "GPIO5"))
        finally:
            await gateway.stop()

    asyncio.run(scenario())


def sim_gateway(data: Path, profile: BoardProfile, tmp: Path, api: FakeGpiod) -> Gateway:
    """The gateway on the simulated board at `tmp/ttySIM`, its host GPIO the fake `api`; no
    core answers at 127.0.0.1:9."""
    return Gateway(
        data, profile, ("127.0.0.1", 9), sip=("127.0.0.1", 0), fxo_sip=("127.0.0.1", 0),
        device=str(tmp / "ttySIM"), gpio=api, gpio_dev=tmp,
    )  # fmt: skip


def test_a_serial_boards_status_led_on_the_host_blinks_while_unregistered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "var"
    office(data)
    sim = load_profile(shipped_profiles()["sim"])
    profile = dataclasses.replace(
        file_pcms(sim, tmp_path, monkeypatch), status_led=GpioLine(PI, STATUS)
    )
    api = fake_pi(tmp_path)
    board = SimBoard(tmp_path / "ttySIM", [p.FXS, p.FXS, p.FXO])
    board.start()

    async def scenario() -> None:
        gateway = sim_gateway(data, profile, tmp_path, api)
        await gateway.start()
        try:
            assert await gateway.link.wait_state(LinkState.UP, 5)
            # Nothing answers at 127.0.0.1:9: a short flash each second (100 ms of 1000).
            seen = await levels(api, STATUS, 2.5)
            assert seen == {True, False}
            assert not any(port.registered for port in gateway.fxs.values())
        finally:
            await gateway.stop()

    try:
        asyncio.run(scenario())
    finally:
        board.stop()


@pytest.mark.parametrize("appliance", [True, False])
def test_the_reset_button_held_files_a_factory_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, appliance: bool
) -> None:
    data = tmp_path / "var"
    office(data)
    unit = tmp_path / "pbx-factory-reset.path"
    if appliance:
        unit.write_text("[Path]\n")
    monkeypatch.setenv("PBX_FACTORY_RESET_UNIT", str(unit))
    sim = load_profile(shipped_profiles()["sim"])
    profile = dataclasses.replace(
        file_pcms(sim, tmp_path, monkeypatch), reset_button=GpioLine(PI, RESET, active_low=True)
    )
    api = fake_pi(tmp_path)
    api.drive(PI, RESET, True)  # the pull-up: not pressed
    board = SimBoard(tmp_path / "ttySIM", [p.FXS, p.FXS, p.FXO])
    board.start()

    async def scenario() -> None:
        gateway = sim_gateway(data, profile, tmp_path, api)
        assert gateway.reset_button is not None
        gateway.reset_button.hold_s = 0.5  # (10 s on a box: a test need not wait that long)
        await gateway.start()
        try:
            assert await gateway.link.wait_state(LinkState.UP, 5)
            api.drive(PI, RESET, False)  # pressed...
            await asyncio.sleep(0.2)  # ... and let go before the hold time: a brush
            api.drive(PI, RESET, True)
            await asyncio.sleep(0.3)
            assert not factory_reset.pending(data)
            api.drive(PI, RESET, False)  # held
            if appliance:
                await until(lambda: factory_reset.pending(data), 5)
                assert (data / factory_reset.REQUEST).read_text() == "the reset button\n"
            else:
                await asyncio.sleep(1.0)  # (nothing to wait for: nothing must happen)
                assert not factory_reset.pending(data)
            api.drive(PI, RESET, True)
        finally:
            await gateway.stop()

    try:
        asyncio.run(scenario())
    finally:
        board.stop()
