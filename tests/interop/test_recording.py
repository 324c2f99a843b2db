"""Call recording with two real baresip phones (101 sends 440 Hz, 102 sends 1000 Hz) through a
real box whose rules record internal calls: the stored file is stereo, its left channel is the
caller's tone and its right the callee's, its length within 1 s of the CDR's billable seconds,
and its row is in the store. Then `kill -9` of the core in the middle of a recorded call: the
`.part` it leaves decodes up to within 2 s of the kill, and the next start finishes it and
gives it its row."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile

from tests.conftest import CoreProcess
from tests.interop.baresip import Baresip, BaresipAccount, BaresipAudio
from tests.interop.call_records import wait_cdrs
from tests.interop.netns import NetNamespace
from tests.interop.tones import dominant_frequency

PASSWORDS = {"101": "Kq7vT9pLm2", "102": "Zr4wX8nQa6"}
TONES = {"101": 440, "102": 1000}
TALK = 5.0
"""Seconds the phones talk (the conversation itself, not a synchronisation)."""


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    with NetNamespace() as ns:
        yield ns


def start_box(core_factory: type[CoreProcess], netns: NetNamespace, data: Path) -> CoreProcess:
    core = core_factory(data=data, sip=f"{netns.host}:5060", netns_pid=netns.pid)
    core.start()
    for number, password in PASSWORDS.items():
        core.cli("ext", "add", number, "--password", password)
    core.cli("recording", "add-rule", "direction", "internal")
    return core


def phone(netns: NetNamespace, workdir: Path, number: str, port: int, **params: str) -> Baresip:
    account = BaresipAccount(number, netns.host, 5060, PASSWORDS[number],
                             params={"audio_codecs": "PCMU", **params})  # fmt: skip
    workdir.mkdir(parents=True)
    audio = BaresipAudio(source=f"ausine,{TONES[number]}")
    return Baresip(netns, workdir, account, listen=f"{netns.host}:{port}", audio=audio,
                   codecs=["g711.so"])  # fmt: skip


def recording_rows(data: Path) -> list[tuple[str, str, float, int]]:
    conn = sqlite3.connect(data / "pbx.sqlite3")
    try:
        return conn.execute(
            "SELECT call_id, path, seconds, bytes FROM recordings ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


def wait_rows(data: Path, timeout: float = 15.0) -> list[tuple[str, str, float, int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:  # poll with a deadline: the row is written after the file
        rows = recording_rows(data)
        if rows:
            return rows
        time.sleep(0.1)
    raise AssertionError("no recording row was written")


def channel_tones(path: Path) -> tuple[float, float, float]:
    """(dominant Hz of the left channel, of the right, seconds) of the middle of a file."""
    audio, rate = soundfile.read(str(path), dtype="float64", always_2d=True)
    assert audio.shape[1] == 2, f"{path} has {audio.shape[1]} channel(s), not 2"
    seconds = len(audio) / rate
    middle = audio[len(audio) // 4 : len(audio) * 3 // 4]
    return (dominant_frequency(middle[:, 0], rate), dominant_frequency(middle[:, 1], rate),
            seconds)  # fmt: skip


def test_a_recorded_call_is_stereo_caller_left_callee_right(
    core_factory: type[CoreProcess], netns: NetNamespace, tmp_path: Path
) -> None:
    core = start_box(core_factory, netns, tmp_path / "var")
    with (
        phone(netns, tmp_path / "101", "101", 5070) as alice,
        phone(netns, tmp_path / "102", "102", 5080, answermode="auto") as bob,
    ):
        alice.wait_registered(timeout=15)
        bob.wait_registered(timeout=15)
        alice.command("/dial 102")
        alice.wait_for(r"Call established: sip:102@", timeout=20)
        time.sleep(TALK)
        alice.command("/hangup")
        alice.wait_for(r"Call with sip:102@\S+ terminated", timeout=15)

    (cdr,) = wait_cdrs(core.data, lambda rows: len(rows) >= 1, what="the call's CDR")
    ((call_id, rel, seconds, size),) = wait_rows(core.data)
    assert call_id == cdr["id"]
    path = core.data / rel
    assert path.suffix == ".ogg" and path.stat().st_size == size
    assert not list(path.parent.glob("*.part"))
    left, right, length = channel_tones(path)
    assert abs(left - TONES["101"]) <= 15, f"left is {left:.0f} Hz, not the caller's 440"
    assert abs(right - TONES["102"]) <= 15, f"right is {right:.0f} Hz, not the callee's 1000"
    assert abs(length - cdr["billsec"]) <= 1.0, (length, cdr["billsec"])
    assert abs(seconds - length) <= 0.1, (seconds, length)
    info = soundfile.info(str(path))
    assert (info.format, info.subtype, info.samplerate) == ("OGG", "OPUS", 8000)


def test_kill_9_mid_call_leaves_a_file_to_within_2_s(
    core_factory: type[CoreProcess], netns: NetNamespace, tmp_path: Path
) -> None:
    core = start_box(core_factory, netns, tmp_path / "var")
    with (
        phone(netns, tmp_path / "101", "101", 5070) as alice,
        phone(netns, tmp_path / "102", "102", 5080, answermode="auto") as bob,
    ):
        alice.wait_registered(timeout=15)
        bob.wait_registered(timeout=15)
        alice.command("/dial 102")
        alice.wait_for(r"Call established: sip:102@", timeout=20)
        answered = time.time()
        time.sleep(TALK)
        proc = core.proc
        assert proc is not None
        proc.kill()  # SIGKILL, by PID
        killed = time.time()
        proc.wait(timeout=10)
    (part,) = sorted((core.data / "recordings").rglob("*.ogg.part"))
    audio, rate = soundfile.read(str(part), dtype="float64", always_2d=True)
    kept = len(audio) / rate
    assert kept >= (killed - answered) - 2.0 - 0.5, (kept, killed - answered)
    tail = audio[-rate:]  # the last second before the cut still holds both voices
    assert abs(dominant_frequency(tail[:, 0], rate) - TONES["101"]) <= 15
    assert abs(dominant_frequency(tail[:, 1], rate) - TONES["102"]) <= 15

    core.restart()  # crash recovery: the .part becomes a finished file with its row
    ((_call_id, rel, seconds, _size),) = wait_rows(core.data)
    assert rel == part.relative_to(core.data).as_posix().removesuffix(".part")
    assert not part.exists() and (core.data / rel).is_file()
    assert abs(seconds - kept) <= 0.1 and np.isfinite(seconds)


def test_the_feature_code_starts_and_stops_a_recording(
    core_factory: type[CoreProcess], netns: NetNamespace, tmp_path: Path
) -> None:
    core = core_factory(data=tmp_path / "var", sip=f"{netns.host}:5060", netns_pid=netns.pid)
    core.start()
    for number, password in PASSWORDS.items():
        core.cli("ext", "add", number, "--password", password)  # no rule: nothing recorded
    with (
        phone(netns, tmp_path / "101", "101", 5070) as alice,
        phone(netns, tmp_path / "102", "102", 5080, answermode="auto") as bob,
    ):
        alice.wait_registered(timeout=15)
        bob.wait_registered(timeout=15)
        alice.command("/dial 102")
        alice.wait_for(r"Call established: sip:102@", timeout=20)
        time.sleep(1.0)  # talking, not recorded
        assert recording_rows(core.data) == []
        bob.command("*1")  # the callee asks for a recording (RFC 4733 from baresip)
        deadline = time.monotonic() + 10
        while not list((core.data / "recordings").rglob("*.part")):
            assert time.monotonic() < deadline, "the feature code started no recording"
            time.sleep(0.1)
        started = time.monotonic()
        time.sleep(3.0)
        bob.command("*1")  # and stops it
        ((_call_id, rel, seconds, _size),) = wait_rows(core.data)
        stopped = time.monotonic()
        time.sleep(1.0)
        alice.command("/hangup")
        alice.wait_for(r"Call with sip:102@\S+ terminated", timeout=15)
    assert rel.endswith("-1.ogg")
    assert 2.0 <= seconds <= stopped - started + 0.5, (seconds, stopped - started)
    left, right, _length = channel_tones(core.data / rel)
    assert abs(left - TONES["101"]) <= 15 and abs(right - TONES["102"]) <= 15, (left, right)
    assert len(recording_rows(core.data)) == 1  # the call's end made no second one


def correlation_peak(heard: np.ndarray, source: np.ndarray) -> float:
    """The normalised cross-correlation's peak of `source` anywhere in `heard` (1.0: the very
    same samples, scaled)."""
    n = len(heard) + len(source)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(heard, size) * np.conj(np.fft.rfft(source, size)), size)
    window = np.convolve(heard**2, np.ones(len(source)), "full")[len(source) - 1 :]
    energy = np.sqrt(np.maximum(window[: len(heard)], 1e-9) * float(np.sum(source**2)))
    return float(np.max(np.abs(corr[: len(heard)]) / energy))


def test_the_caller_hears_the_consent_announcement(
    core_factory: type[CoreProcess], netns: NetNamespace, tmp_path: Path
) -> None:
    core = core_factory(data=tmp_path / "var", sip=f"{netns.host}:5060", netns_pid=netns.pid)
    core.start()
    for number, password in PASSWORDS.items():
        core.cli("ext", "add", number, "--password", password)
    core.cli("recording", "add-rule", "extension", "102", "--consent")
    announcement = core.data / "prompts/cache/recording-consent-en.wav"
    deadline = time.monotonic() + 30
    while not announcement.is_file():  # spoken once by espeak-ng at start
        assert time.monotonic() < deadline, "the consent announcement was not made"
        time.sleep(0.1)
    snd = tmp_path / "snd"
    snd.mkdir()
    account = BaresipAccount("101", netns.host, 5060, PASSWORDS["101"],
                             params={"audio_codecs": "PCMU"})  # fmt: skip
    (tmp_path / "101").mkdir()
    alice = Baresip(netns, tmp_path / "101", account, listen=f"{netns.host}:5070",
                    audio=BaresipAudio(source="ausine,440", snd_path=snd),
                    codecs=["g711.so"])  # fmt: skip
    with alice, phone(netns, tmp_path / "102", "102", 5080, answermode="auto") as bob:
        alice.wait_registered(timeout=15)
        bob.wait_registered(timeout=15)
        alice.command("/dial 102")
        alice.wait_for(r"Call established: sip:102@", timeout=20)
        time.sleep(TALK)
        alice.command("/hangup")
        alice.wait_for(r"Call with sip:102@\S+ terminated", timeout=15)
    (dec,) = sorted(snd.glob("*-dec.wav"))
    heard, rate = soundfile.read(str(dec), dtype="float64", always_2d=True)
    heard = heard[:, 0]
    spoken, spoken_rate = soundfile.read(str(announcement), dtype="float64", always_2d=True)
    source = spoken[:, 0]
    if spoken_rate == 2 * rate:  # 16 kHz prompt, 8 kHz call: average pairs (a low-pass)
        source = source[: len(source) // 2 * 2].reshape(-1, 2).mean(axis=1)
    assert spoken_rate in (rate, 2 * rate)
    peak = correlation_peak(heard[: rate * 4], source)
    assert peak > 0.6, f"the caller's audio does not hold the announcement (peak {peak:.2f})"
    after = heard[int(rate * (len(source) / rate + 0.5)) :]
    assert abs(dominant_frequency(after, rate) - TONES["102"]) <= 15  # then the callee
    assert len(wait_rows(core.data)) == 1  # and the call is recorded
