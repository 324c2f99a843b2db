"""bench/lines: its measuring parts on inputs whose answers are known (the handset's FIFO, the
ALSA file PCMs it calibrates, the capture it matches bursts in). The smoke run of the whole
bench (`bench/lines --quick`, real core and gateway processes) is tests/bench/test_bench_lines.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from appliance.lines.sim import SimAudioPort, write_asoundrc
from bench import pcap
from bench.lines_bench import (
    FRAME_BYTES,
    Earpiece,
    Microphone,
    calibrate,
    loud_pcm,
    loud_ulaw,
    match_capture,
    pipe_level,
    summary,
    tone_frame,
    ulaw_frames,
    written_at,
)

GW, CORE_IN, CORE_OUT, FAR = 30000, 20000, 20002, 40000
"""Ports: the gateway's leg, the core's two legs (toward the gateway, toward the far phone)
and the far phone's socket."""


def test_a_burst_is_timed_when_the_reader_takes_it_out_of_the_fifo(tmp_path: Path) -> None:
    mic = Microphone(tmp_path / "port.mic", lead=2)
    mic.start()
    reader = os.open(mic.fifo, os.O_RDONLY)  # as the capture PCM opens its infile
    try:
        time.sleep(0.1)  # the lead, and a few frames of silence, go in first
        burst = mic.burst(tone_frame())
        took = 0.0
        for _ in range(20):  # read 20 ms frames as the gateway does, until the burst
            frame = b""
            while len(frame) < FRAME_BYTES:
                frame += os.read(reader, FRAME_BYTES - len(frame))
            if frame == burst.frame:
                took = time.monotonic()
                break
            assert frame == bytes(FRAME_BYTES)  # silence before it
            time.sleep(0.02)
        assert took, "the burst never came out of the FIFO"
        assert burst.done.wait(1.0)
        assert burst.written_at <= burst.unread_at <= burst.read_at
        assert abs(burst.read_time - took) < 0.015  # polled every millisecond
        assert 0 <= burst.read_within < 0.015
        assert burst.ahead_bytes % FRAME_BYTES == 0
    finally:
        mic.stop()
        os.close(reader)


def test_a_reader_that_falls_behind_loses_frames_instead_of_gaining_latency(
    tmp_path: Path,
) -> None:
    mic = Microphone(tmp_path / "port.mic", lead=2, periods=1)
    mic.start()
    reader = os.open(mic.fifo, os.O_RDONLY)
    try:
        time.sleep(0.3)  # about 15 frames due, and nobody reads: a sound card would overrun
        assert pipe_level(reader) == mic.capacity == 3 * FRAME_BYTES
        assert mic.overruns >= 5
    finally:
        mic.stop()
        os.close(reader)


def test_calibration_measures_the_file_pcm_as_the_gateway_opens_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = SimAudioPort("bench_cal", tmp_path / "cal.mic", tmp_path / "cal.out.raw")
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(write_asoundrc(tmp_path / "asoundrc", [port])))
    found = calibrate("bench_cal", port.infile, port.outfile)
    # alsa-lib's file plugin reads the infile as asked and writes a frame to its file once
    # the PCM's 4 periods (PortAudio's default) have been written after it.
    assert (found.capture_readahead_frames, found.playback_lag_frames) == (0, 4)
    assert not port.infile.exists()


def test_an_earpiece_frame_is_written_when_the_frame_lag_periods_earlier_appears(
    tmp_path: Path,
) -> None:
    path = tmp_path / "port.out.raw"
    path.write_bytes(bytes(FRAME_BYTES // 2))  # half a frame before polling starts
    earpiece = Earpiece(path)
    earpiece.poll(0.0)
    assert earpiece.frames == []
    with path.open("ab") as f:
        for n in range(8):
            f.write(bytes([n + 1]) * (FRAME_BYTES if n else FRAME_BYTES // 2))
            f.flush()
            earpiece.poll(float(n))
    earpiece.close()
    assert [frame[0] for frame in earpiece.frames] == [0, 2, 3, 4, 5, 6, 7, 8]
    assert earpiece.times == [float(n) for n in range(8)]
    assert written_at(earpiece, 6, 4) == 2.0
    assert written_at(earpiece, 4, 4) is None  # frame 0 was there already: no growth seen


def test_bursts_are_told_from_silence() -> None:
    burst = tone_frame()
    assert loud_pcm(burst) and not loud_pcm(bytes(FRAME_BYTES))
    (payload,) = ulaw_frames(burst)
    assert loud_ulaw(payload) and not loud_ulaw(b"\xff" * 160) and not loud_ulaw(b"")


def datagram(t: float, src: int, dst: int, payload: bytes) -> pcap.Datagram:
    return pcap.Datagram(t, ("127.0.0.1", src), ("127.0.0.1", dst), bytes(12) + payload)


def test_the_capture_splits_the_gateways_share_from_the_cores() -> None:
    burst = ulaw_frames(tone_frame())[0]
    other = ulaw_frames(tone_frame(1500.0))[0]
    offset = 1000.0  # wall clock minus monotonic
    forward = {"direction": "alsa->rtp", "payload": burst.hex(), "read_at": 10.0, "far_s": 0.01}
    reverse = {"direction": "rtp->alsa", "payload": other.hex(), "sent_at": 20.0,
               "written_at": 20.05, "far_s": 0.05}  # fmt: skip
    lost = {"direction": "alsa->rtp", "payload": burst.hex(), "read_at": 30.0}
    captured = [
        datagram(offset + 9.5, GW, CORE_IN, burst),  # an earlier burst: not this one
        datagram(offset + 10.004, GW, CORE_IN, burst),
        datagram(offset + 10.005, CORE_OUT, FAR, burst),
        datagram(offset + 10.006, GW, CORE_IN, other),  # another payload
        datagram(offset + 20.0002, FAR, CORE_OUT, other),
        datagram(offset + 20.0004, CORE_IN, GW, other),
    ]
    match_capture([forward, reverse, lost], captured, offset, {FAR})
    assert forward["gateway_s"] == pytest.approx(0.004, abs=1e-6)
    assert forward["relay_s"] == pytest.approx(0.001, abs=1e-6)
    assert reverse["relay_s"] == pytest.approx(0.0004, abs=1e-6)
    assert reverse["gateway_s"] == pytest.approx(0.0496, abs=1e-6)
    assert "gateway_s" not in lost  # it never reached the far phone: nothing to split


def test_summary_in_milliseconds() -> None:
    assert summary([0.010, 0.030, 0.020]) == {"n": 3, "median_ms": 20.0, "min_ms": 10.0,
                                               "max_ms": 30.0}  # fmt: skip
    assert summary([-0.00001]) == {"n": 1, "median_ms": 0.0, "min_ms": 0.0, "max_ms": 0.0}
    assert summary([]) == {"n": 0}
