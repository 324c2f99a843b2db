"""Tests of `appliance.lines.audio` over the simulated board's ALSA file-backed PCMs (the
asoundrc `appliance.lines.sim.write_asoundrc` generates): what the port plays arrives in the
board's output file, what it captures is the board's input file, each port its own, checked
by content (dominant frequency and sample identity)."""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance.lines.audio import FRAME_BYTES, AudioError, PortAudio
from appliance.lines.boards import load_profile, shipped_profiles
from appliance.lines.sim import SimAudioPort, write_asoundrc


def tone(freq: float, seconds: float, amplitude: int = 8000) -> bytes:
    count = int(8000 * seconds)
    samples = (round(amplitude * math.sin(2 * math.pi * freq * i / 8000)) for i in range(count))
    return struct.pack(f"<{count}h", *samples)


def dominant(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / 8000)[int(np.argmax(spectrum))])


@pytest.fixture
def ports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[SimAudioPort]]:
    profile = load_profile(shipped_profiles()["sim"])
    sim_ports = []
    for port, freq in zip(profile.ports, (440, 1000, 1850), strict=True):
        infile = tmp_path / f"{port.pcm}.in.raw"
        infile.write_bytes(tone(freq, 2.0))  # the handset's microphone
        sim_ports.append(SimAudioPort(port.pcm, infile, tmp_path / f"{port.pcm}.out.raw"))
    asoundrc = write_asoundrc(tmp_path / "asoundrc", sim_ports)
    # libasound re-reads its configuration when ALSA_CONFIG_PATH changes, at the next open.
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(asoundrc))
    yield sim_ports


def test_played_frames_arrive_in_the_file(ports: list[SimAudioPort]) -> None:
    sent = tone(697, 1.0) + tone(1633, 1.0)
    with PortAudio(ports[1].pcm) as audio:
        for at in range(0, len(sent), FRAME_BYTES):
            assert audio.write_frame(sent[at : at + FRAME_BYTES])
        assert audio.stats.frames_written == 100 and audio.stats.dropped == 0
    heard = ports[1].outfile.read_bytes()
    assert heard == sent
    assert dominant(heard[:16000]) == pytest.approx(697, abs=5)
    assert dominant(heard[16000:]) == pytest.approx(1633, abs=5)
    # The other ports heard nothing.
    assert not ports[0].outfile.exists() or ports[0].outfile.read_bytes() == b""


def test_captured_frames_come_from_the_input_file(ports: list[SimAudioPort]) -> None:
    captured: dict[str, bytes] = {}
    for port in ports:
        with PortAudio(port.pcm) as audio:
            frames = []
            for _ in range(50):  # a gateway tick each; nothing paces the file, so all are there
                frame = audio.read_frame()
                assert frame is not None and len(frame) == FRAME_BYTES
                frames.append(frame)
            captured[port.pcm] = b"".join(frames)
    for port, freq in zip(ports, (440, 1000, 1850), strict=True):
        assert captured[port.pcm] == port.infile.read_bytes()[: 50 * FRAME_BYTES]
        assert dominant(captured[port.pcm]) == pytest.approx(freq, abs=5)


def test_both_directions_at_once(ports: list[SimAudioPort]) -> None:
    # Loop the handset's microphone back to its earpiece, frame by frame, as a gateway
    # tick would move audio to RTP and back.
    with PortAudio(ports[2].pcm) as audio:
        for _ in range(25):
            frame = audio.read_frame()
            assert frame is not None
            assert audio.write_frame(frame)
    assert ports[2].outfile.read_bytes() == ports[2].infile.read_bytes()[: 25 * FRAME_BYTES]


def test_errors(ports: list[SimAudioPort]) -> None:
    with pytest.raises(AudioError, match=r"\Acannot open 'no_such_pcm' for capture: "):
        PortAudio("no_such_pcm")
    with PortAudio(ports[0].pcm) as audio, pytest.raises(ValueError, match="not 100"):
        audio.write_frame(bytes(100))
    assert os.environ["ALSA_CONFIG_PATH"].endswith("asoundrc")
