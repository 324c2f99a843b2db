"""The city line through the FXO port, with real peers: the core (`pbx run`) and the analog
gateway (`python -m appliance.lines.gateway`) as processes in a private network namespace, a
baresip phone registered as extension 101, and the simulated board (a pty) whose FXO port's
ALSA file-backed PCM is the line: the test plays the exchange, writing what the line sends
(caller ID, dial tone, busy tone, the far party's voice) into the port's capture file just
ahead of where the gateway reads it, and reading what the box sends to the line from its
playback file.

The office (RU, city code 495) has IP trunk `city-line` whose server is the gateway (its FXO
socket, 127.0.0.1:5071), its DID +7 495 123-45-67 rings 101, and route `city` (9 + a national
number) goes out by it. Calls in: FSK (or DTMF) caller ID, then a ring; 101 rings with that
caller, answers, and both sides hear each other; the far end hangs up by a loop-current
drop, a polarity reversal or the busy tone, each test one. Calls out: 101 dials 9 8 495
111-22-33; the line is seized, the test gives dial tone, decodes the DTMF the box dials (by
its own Goertzel decoder), and both sides talk; 101's BYE releases the line. Without dial
tone the call fails with 503, and a call 101 abandons (CANCEL) releases the line too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from appliance.lines import protocol as p
from appliance.lines.boards import load_profile, shipped_profiles
from appliance.lines.callerid import CallerIdMessage, CallerIdStandard, callerid_signal
from appliance.lines.gateway import READY
from appliance.lines.sim import SimAudioPort, SimBoard, write_asoundrc
from appliance.lines.tones import plan_for
from appliance.store import dids, ports, routes, settings, trunks
from appliance.store.db import open_db
from tests.conftest import CoreProcess
from tests.interop.baresip import Baresip, BaresipAccount, BaresipAudio
from tests.interop.netns import NetNamespace
from tests.interop.tones import dominant_frequency, read_wav, tone_seconds

PASSWORD = "Kq7vT9pLm2"
DID = "+74951234567"
CALLER, CALLER_NAME = "84997654321", "Ivanov"
"""The PSTN caller as the Russian exchange sends it (national format) and the name."""
CITY = "84951112233"
"""The number 101 dials after the route's 9; the line hears it dialled as it is."""
PHONE_TONE, LINE_TONE = 440.0, 1000.0
"""What 101's microphone (ausine) and the far party on the line say."""
FXO = 3
"""The FXO port of the simulated board (ports 1 and 2 are FXS and not configured here)."""
RATE = 8000
AHEAD_S = 0.2
"""How far ahead of the gateway's read position the exchange writes into the line."""
LINE_SECONDS = 150
TIMEOUT = 20.0


def sine(hz: float, seconds: float, amplitude: float = 8000.0) -> npt.NDArray[np.int16]:
    n = np.arange(round(seconds * RATE))
    return np.round(amplitude * np.sin(2 * np.pi * hz * n / RATE)).astype(np.int16)


def until(check: Callable[[], bool], timeout: float = TIMEOUT, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


DTMF_LOW, DTMF_HIGH = (697, 770, 852, 941), (1209, 1336, 1477, 1633)
KEYS = ("123A", "456B", "789C", "*0#D")


def decode_dtmf(pcm: npt.NDArray[np.int16]) -> str:
    """The DTMF digits in `pcm`, by Goertzel power at the eight DTMF frequencies over 20 ms
    blocks: a digit is two or more blocks whose strongest row and column tone carry most of
    the block's power (an independent check of the box's dialler)."""
    block = 160
    n = np.arange(block)
    freqs = np.array(DTMF_LOW + DTMF_HIGH, dtype=np.float64)
    basis = np.exp(-2j * np.pi * np.outer(n, freqs) / RATE)
    digits, run, last = "", 0, ""
    for start in range(0, len(pcm) - block + 1, block):
        x = pcm[start : start + block].astype(np.float64)
        power = np.abs(x @ basis) ** 2
        total = float(x @ x) * block / 2
        low, high = int(np.argmax(power[:4])), int(np.argmax(power[4:]))
        key = ""
        if total > 1e9 and power[low] + power[4 + high] > 0.6 * total:
            key = KEYS[low][high]
        if key and key == last:
            run += 1
            if run == 2:
                digits += key
        else:
            run = 1 if key else 0
        last = key
    return digits


@dataclass
class Line:
    """The exchange's side of the city line: the FXO port's capture file (what the line says
    to the box) and playback file (what the box says to the line), and the board's line."""

    board: SimBoard
    infile: Path
    outfile: Path

    def position(self) -> int:
        """Bytes the gateway has moved each way so far (it reads and writes a frame a tick)."""
        return self.outfile.stat().st_size if self.outfile.exists() else 0

    def say(self, pcm: npt.NDArray[np.int16]) -> tuple[int, int]:
        """Put `pcm` on the line from just ahead of now; return its byte span."""
        start = self.position() + round(AHEAD_S * RATE) * 2
        data = pcm.astype("<i2").tobytes()
        fd = os.open(self.infile, os.O_WRONLY)
        try:
            os.pwrite(fd, data, start)
        finally:
            os.close(fd)
        return start, start + len(data)

    def wait_passed(self, end: int, timeout: float = TIMEOUT) -> None:
        until(lambda: self.position() >= end, timeout, f"the gateway to read byte {end}")

    def heard(self, start: int, end: int) -> npt.NDArray[np.int16]:
        return np.frombuffer(self.outfile.read_bytes()[start:end], "<i2")

    def seized(self) -> bool:
        with self.board.changed:
            return FXO in self.board.seized

    def wait_seized(self, seized: bool = True, timeout: float = TIMEOUT) -> None:
        assert self.board.wait_for(lambda: (FXO in self.board.seized) is seized, timeout), (
            "the line was not seized" if seized else "the line was not released"
        )

    def commands(self) -> list[type[p.Message]]:
        with self.board.changed:
            return [type(c) for c in self.board.commands if getattr(c, "port", 0) == FXO]


class GatewayProcess:
    """`python -m appliance.lines.gateway` in the namespace, its output in a file."""

    def __init__(self, netns: NetNamespace, data: Path, device: Path, asoundrc: Path) -> None:
        self.log = data.parent / "gateway.log"
        self._out = self.log.open("w")
        argv = [sys.executable, "-m", "appliance.lines.gateway", "--data", str(data),
                "--board", "sim", "--core", f"{netns.host}:5060", "--sip", "127.0.0.1:5070",
                "--device", str(device)]  # fmt: skip
        self.proc = netns.popen(
            argv, stdout=self._out, stderr=subprocess.STDOUT,
            env={**os.environ, "ALSA_CONFIG_PATH": str(asoundrc), "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        until(lambda: READY in self.log.read_text() or self.proc.poll() is not None, 30,
              "the gateway to start")  # fmt: skip
        assert self.proc.poll() is None, self.log.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@dataclass
class Office:
    core: CoreProcess
    gateway: GatewayProcess
    line: Line
    phone: Baresip
    netns: NetNamespace


def configure(data: Path, caller_id: str) -> None:
    db = open_db(data)
    try:
        settings.set_value(db, "office.country", "RU")
        settings.set_value(db, "office.area_code", "495")
        from appliance.store import extensions

        extensions.add(db, "101", "Alice", password=PASSWORD)
        trunks.add(db, "city-line", kind="ip", server="127.0.0.1:5071", codecs="PCMU")
        dids.add(db, DID, "extension:101", "City line", "city-line")
        routes.add(db, "city", ["9|8XXXXXXXXXX"], ["city-line"])
        ports.set_port(db, FXO, "fxo", trunk="city-line", caller_id=caller_id)
    finally:
        db.conn.close()


@pytest.fixture
def office_factory(
    core_factory: type[CoreProcess], tmp_path: Path
) -> Iterator[Callable[[str], Office]]:
    stack: list[Callable[[], object]] = []

    def make(caller_id: str = "etsi-fsk") -> Office:
        netns = NetNamespace()
        netns.start()
        stack.append(netns.stop)
        data = tmp_path / "var"
        configure(data, caller_id)
        profile = load_profile(shipped_profiles()["sim"])
        audio = []
        for port in profile.ports:
            infile = tmp_path / f"{port.pcm}.in.raw"
            infile.write_bytes(bytes(RATE * 2 * LINE_SECONDS))
            audio.append(SimAudioPort(port.pcm, infile, tmp_path / f"{port.pcm}.out.raw"))
        asoundrc = write_asoundrc(tmp_path / "asoundrc", audio)
        board = SimBoard(tmp_path / "ttySIM", [p.FXS, p.FXS, p.FXO])
        board.start()
        stack.append(board.stop)
        core = core_factory(data=data, sip=f"{netns.host}:5060", netns_pid=netns.pid)
        core.start()
        gateway = GatewayProcess(netns, data, tmp_path / "ttySIM", asoundrc)
        stack.append(gateway.stop)
        snd = tmp_path / "snd"
        snd.mkdir()
        account = BaresipAccount("101", netns.host, 5060, PASSWORD,
                                 params={"audio_codecs": "PCMU", "answermode": "auto"})  # fmt: skip
        phone = Baresip(
            netns, tmp_path / "101", account, listen=f"{netns.host}:5080",
            audio=BaresipAudio(source=f"ausine,{int(PHONE_TONE)}", snd_path=snd), sip_trace=True,
        )  # fmt: skip
        phone.start()
        stack.append(phone.stop)
        phone.wait_registered(timeout=15)
        line = Line(board, audio[FXO - 1].infile, audio[FXO - 1].outfile)
        until(lambda: line.position() > 0, 10, "the gateway's audio clock")
        return Office(core, gateway, line, phone, netns)

    yield make
    for stop in reversed(stack):
        stop()


def decoded(phone: Baresip) -> Path:
    assert phone.audio is not None and phone.audio.snd_path is not None
    files = sorted(phone.audio.snd_path.glob("*-dec.wav"))
    assert len(files) == 1, files
    return files[0]


def talk(office: Office) -> None:
    """Both ways at once: the far party speaks on the line while 101's sine plays; the box
    must carry each to the other side (checked by dominant frequency)."""
    line = office.line
    start, end = line.say(sine(LINE_TONE, 4.0))
    line.wait_passed(end)
    heard = line.heard(start + 8000, end)  # past the first half second
    assert abs(dominant_frequency(heard.astype(np.float64), RATE) - PHONE_TONE) <= 10
    assert np.sqrt(np.mean(heard.astype(np.float64) ** 2)) > 300  # not just a trace of it


def phone_heard_line(office: Office) -> None:
    heard = read_wav(decoded(office.phone))
    assert abs(dominant_frequency(heard.samples, heard.rate) - LINE_TONE) <= 10
    assert tone_seconds(heard, LINE_TONE) >= 2.0


def ring_in(office: Office, standard: CallerIdStandard) -> None:
    """The exchange calls: caller ID (before the first ring, or after it for Bell 202) and
    the ring; the box seizes the line and 101 rings with the caller, answering by itself."""
    line, board = office.line, office.line.board
    signal = callerid_signal(standard, CallerIdMessage.of(CALLER, CALLER_NAME))
    if standard is CallerIdStandard.BELL202:
        board.line_ring(FXO, True)
        _, end = line.say(np.zeros(RATE, np.int16))  # 1 s of ring: nothing heard
        line.wait_passed(end)
        board.line_ring(FXO, False)
        _, end = line.say(np.concatenate([np.zeros(RATE // 2, np.int16), signal]))
    else:
        _, end = line.say(signal)
        line.wait_passed(end + RATE)  # the quiet after it, then the first ring
        board.line_ring(FXO, True)
    line.wait_seized()
    # The core writes the caller in the office's form: +7 499 765-43-21.
    office.phone.wait_for(r"answering call on line \d+ from sip:\+74997654321@", TIMEOUT)
    office.phone.wait_for(r"Call established", timeout=TIMEOUT)
    if standard is not CallerIdStandard.DTMF:  # DTMF caller ID carries no name
        invite = office.phone.log_path.read_text(errors="replace")  # the core adds the DID's label
        froms = [x for x in invite.splitlines() if x.startswith("From:") and "+74997654321@" in x]
        assert froms and all(CALLER_NAME in x for x in froms), froms
        assert not any('\\"' in x or '""' in x for x in froms), froms  # quoted once, not twice
    board.line_ring(FXO, False)


@pytest.mark.parametrize("supervision", ["loopdrop", "reversal", "busy"])
def test_a_call_in_rings_101_with_the_caller_and_ends_by_line_supervision(
    office_factory: Callable[[str], Office], supervision: str
) -> None:
    office = office_factory("etsi-fsk")
    ring_in(office, CallerIdStandard.ETSI_FSK)
    talk(office)
    line = office.line
    mark = office.phone.mark()
    if supervision == "loopdrop":
        line.board.loop_drop(FXO, 600)
    elif supervision == "reversal":
        line.board.polarity_reversal(FXO)
    else:
        line.say(plan_for("RU").tone("busy").pcm(4.0))
    line.wait_seized(False, timeout=10)
    office.phone.wait_for(r"terminated|session closed", timeout=TIMEOUT, since=mark)
    office.phone.stop()
    phone_heard_line(office)
    assert line.commands()[-1] is p.Release


@pytest.mark.parametrize("standard", [CallerIdStandard.DTMF, CallerIdStandard.BELL202])
def test_dtmf_and_bell202_caller_id_reach_101(
    office_factory: Callable[[str], Office], standard: CallerIdStandard
) -> None:
    office = office_factory(standard.value)
    ring_in(office, standard)
    mark = office.phone.mark()
    office.line.board.loop_drop(FXO)
    office.line.wait_seized(False, timeout=10)
    office.phone.wait_for(r"terminated|session closed", timeout=TIMEOUT, since=mark)


def test_a_call_in_the_core_refuses_releases_the_line(
    office_factory: Callable[[str], Office],
) -> None:
    office = office_factory("etsi-fsk")
    office.phone.stop()  # 101 unregisters: the core cannot ring it
    line = office.line
    line.board.line_ring(FXO, True)
    until(lambda: line.commands()[-2:] == [p.Seize, p.Release], TIMEOUT, "seize, then release")
    assert not line.seized()
    gateway_log = office.gateway.log.read_text()
    assert "core refused: 480" in gateway_log or "core refused" in gateway_log, gateway_log


def test_a_call_out_seizes_waits_for_dial_tone_dials_and_talks(
    office_factory: Callable[[str], Office],
) -> None:
    office = office_factory("etsi-fsk")
    line, phone = office.line, office.phone
    phone.command(f"/dial 9{CITY}")
    line.wait_seized()
    mark = line.position()
    _, end = line.say(plan_for("RU").tone("dial").pcm(3.0))
    # The box dials once it recognised the dial tone: DTMF on the line within ~2.5 s of it.
    line.wait_passed(end + 3 * RATE * 2)
    dialled = line.heard(mark, line.position())
    assert decode_dtmf(dialled) == CITY
    phone.wait_for(r"Call established", timeout=TIMEOUT)
    talk(office)
    mark_lines = phone.mark()
    phone.command("/hangup")
    phone.wait_for(r"terminated|session closed", timeout=TIMEOUT, since=mark_lines)
    line.wait_seized(False, timeout=10)
    phone.stop()
    phone_heard_line(office)


def test_no_dial_tone_fails_the_call_with_503_and_releases_the_line(
    office_factory: Callable[[str], Office],
) -> None:
    office = office_factory("etsi-fsk")
    line, phone = office.line, office.phone
    phone.command(f"/dial 9{CITY}")
    line.wait_seized()
    # The dial-tone timeout (5 s) passes with a silent line; the core passes the 503 on.
    phone.wait_for(r"session closed: 503 Service Unavailable", timeout=TIMEOUT)
    line.wait_seized(False, timeout=5)
    assert line.commands()[-2:] == [p.Seize, p.Release]


def test_a_call_abandoned_before_dial_tone_releases_the_line(
    office_factory: Callable[[str], Office],
) -> None:
    office = office_factory("etsi-fsk")
    line, phone = office.line, office.phone
    phone.command(f"/dial 9{CITY}")
    line.wait_seized()
    phone.command("/hangup")  # before any answer: a CANCEL
    line.wait_seized(False, timeout=10)
    assert line.commands()[-2:] == [p.Seize, p.Release]
