"""The FXS port driven like a person would, over the simulated board (a pty) and its ALSA
file-backed PCMs: lift the handset, hear the country's dial tone (checked by FFT in what the
port played), dial by pulses and see dial tone stop at the first digit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.lines import protocol as p
from appliance.lines.boards import load_profile, shipped_profiles
from appliance.lines.fxs import State
from appliance.lines.gateway import Gateway
from appliance.lines.sim import SimAudioPort, SimBoard, write_asoundrc
from appliance.store import ports, settings
from appliance.store.db import open_db


def dominant(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


@pytest.fixture
def bench(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, SimBoard]]:
    profile = load_profile(shipped_profiles()["sim"])
    audio = []
    for port in profile.ports:
        infile = tmp_path / f"{port.pcm}.in.raw"
        infile.write_bytes(bytes(8000 * 2 * 60))  # a silent microphone for a minute
        audio.append(SimAudioPort(port.pcm, infile, tmp_path / f"{port.pcm}.out.raw"))
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(write_asoundrc(tmp_path / "asoundrc", audio)))
    db = open_db(tmp_path / "data")
    settings.set_value(db, "office.country", "RU")
    ports.demo_ports(db)
    db.conn.close()
    board = SimBoard(tmp_path / "ttySIM", [p.FXS, p.FXS, p.FXO])
    board.start()
    yield tmp_path, board
    board.stop()


async def _until(check: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        await asyncio.sleep(0.02)
    return False


def test_off_hook_gives_ru_dial_tone_and_a_pulse_digit_stops_it(
    bench: tuple[Path, SimBoard],
) -> None:
    tmp, board = bench
    profile = load_profile(shipped_profiles()["sim"])

    async def scenario() -> None:
        gateway = Gateway(
            tmp / "data",
            profile,
            ("127.0.0.1", 9),
            sip=("127.0.0.1", 0),
            device=str(tmp / "ttySIM"),
        )
        await gateway.start()
        try:
            from appliance.lines.link import LinkState

            assert await gateway.link.wait_state(LinkState.UP, 10)
            port = gateway.fxs[1]
            board.offhook(1)
            assert await _until(lambda: port.state is State.DIALTONE)
            outfile = tmp / f"{profile.ports[0].pcm}.out.raw"
            start = outfile.stat().st_size
            assert await _until(lambda: outfile.stat().st_size - start >= 16000, 5)
            heard = outfile.read_bytes()[start : start + 16000]
            assert dominant(heard) == pytest.approx(425, abs=5)
            assert np.abs(np.frombuffer(heard, "<i2")).max() > 1000  # RU dial tone is steady
            board.pulse(1, "2")
            assert await _until(lambda: port.state is State.DIALLING)
            assert port.digits == "2"
            mark = outfile.stat().st_size
            assert await _until(lambda: outfile.stat().st_size - mark >= 9600, 5)
            # After the PCM's buffered periods (4 x 20 ms) the earpiece is quiet.
            quiet = np.frombuffer(outfile.read_bytes()[mark + 4800 : mark + 9600], "<i2")
            assert np.abs(quiet).max() < 50  # dial tone stopped at the first digit
            board.onhook(1)
            assert await _until(lambda: port.state is State.IDLE)
        finally:
            await gateway.stop()

    asyncio.run(scenario())
