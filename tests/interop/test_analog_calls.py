"""Analog handsets on the simulated board's FXS ports call, and are called by, a real baresip
phone through a real core (`pbx run`), driven the way a person uses a handset.

Everything runs inside a private network namespace (baresip refuses loopback): the core on
10.99.0.1:5060, baresip phones on 5080 and 5100, and the gateway (`appliance.lines.gateway`,
the production code of `pbx-lines`) on 5090, its event loop in a thread of this test that
entered the namespace. The board is `SimBoard` over a pty; each port's audio is an ALSA
file-backed PCM whose capture side is a FIFO fed by a `SimMicrophone` (the handset's
microphone, at the wall clock's pace) and whose playback side is a file (the earpiece), read
here and judged by frequency, cadence and an independent FSK decoder.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from appliance.lines import protocol as p
from appliance.lines.boards import BoardProfile, load_profile, shipped_profiles
from appliance.lines.fxs import (
    LED_FAULT,
    LED_IDLE,
    LED_IN_CALL,
    LED_OFF_HOOK,
    LED_RINGING,
    STATUS_REGISTERED,
    FxsPort,
    State,
)
from appliance.lines.gateway import Gateway
from appliance.lines.link import LinkState
from appliance.lines.sim import SimAudioPort, SimBoard, SimMicrophone, write_asoundrc
from appliance.lines.tones import ToneKind, plan_for
from appliance.store import extensions, ports, settings
from appliance.store.db import open_db
from tests.conftest import CoreProcess
from tests.interop.baresip import Baresip, BaresipAccount, BaresipAudio
from tests.interop.call_records import wait_cdrs
from tests.interop.netns import NetNamespace
from tests.interop.tones import dominant_frequency, read_wav, tone_seconds
from tests.lines.test_callerid import parse_independently, receive_bytes

RATE = 8000
PASSWORDS = {"101": "Kq7vT9pLm2", "102": "Zr4wX8nQa6"}
NAMES = {"101": "Alice", "102": "Bob"}
PHONE_PORTS = {"101": 5080, "102": 5100}
TONES = {"101": 1200, "102": 660}
"""What the phones send: far from the RU tones (425 Hz), so a tone is told from a voice."""
HANDSET_HZ = 1000
SECOND_HANDSET_HZ = 700
GATEWAY_SIP = 5090
COUNTRY = "RU"
DTMF = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209),
    "5": (770, 1336), "6": (770, 1477), "7": (852, 1209), "8": (852, 1336),
    "9": (852, 1477), "0": (941, 1336), "*": (941, 1209), "#": (941, 1477),
}  # fmt: skip


# --- audio, made and judged ------------------------------------------------------------------


def sine(hz: float, seconds: float, amplitude: float = 8000.0) -> bytes:
    t = np.arange(int(RATE * seconds)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def dtmf_digits(digits: str, on: float = 0.1, off: float = 0.1) -> bytes:
    """DTMF as a handset's keypad sends it: each digit `on` seconds, then `off` of silence,
    both tones at about -10 dBm0."""
    t = np.arange(int(RATE * on)) / RATE
    out = b""
    for digit in digits:
        low, high = DTMF[digit]
        tone = 5000 * np.sin(2 * np.pi * low * t) + 5000 * np.sin(2 * np.pi * high * t)
        out += tone.astype("<i2").tobytes() + bytes(int(RATE * off) * 2)
    return out


def samples(pcm: bytes) -> npt.NDArray[np.float64]:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def on_off(pcm: bytes, block: float = 0.02, threshold: float = 300.0) -> list[bool]:
    """Per 20 ms block, whether a tone is there (RMS above `threshold`)."""
    x = samples(pcm)
    n = int(RATE * block)
    return [
        float(np.sqrt(np.mean(x[i : i + n] ** 2))) > threshold for i in range(0, len(x) - n + 1, n)
    ]


def tone_flags(pcm: bytes, hz: float, block: float = 0.02) -> list[bool]:
    """Per 20 ms block, whether the tone `hz` is what it mostly holds (FFT bins are 50 Hz)."""
    x = samples(pcm)
    n = int(RATE * block)
    flags = []
    for i in range(0, len(x) - n + 1, n):
        part = x[i : i + n]
        loud = float(np.sqrt(np.mean(part**2))) > 300.0
        flags.append(loud and abs(dominant_frequency(part, RATE) - hz) <= 60)
    return flags


def runs(flags: list[bool], block: float = 0.02) -> list[tuple[bool, float]]:
    """`flags` as (on, seconds) runs."""
    out: list[tuple[bool, float]] = []
    for flag in flags:
        if out and out[-1][0] == flag:
            out[-1] = (flag, out[-1][1] + block)
        else:
            out.append((flag, block))
    return out


class Earpiece:
    """What the port played to its handset: the playback file, read from a mark on."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    async def record(self, seconds: float, since: int | None = None) -> bytes:
        """`seconds` of what the earpiece got from `since` (default: now) on."""
        start = self.mark() if since is None else since
        size = int(RATE * seconds) * 2
        ok = await until(lambda: self.mark() - start >= size, seconds + 5)
        assert ok, f"the port played only {self.mark() - start} of {size} bytes"
        with self.path.open("rb") as f:
            f.seek(start)
            return f.read(size)


def last_led_is(office: Office, led: p.Led) -> bool:
    leds = office.leds(led.led)
    return bool(leds) and leds[-1] == led


async def until(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `check` until it holds or `timeout` passes (a bounded wait on a state)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return bool(check())


# --- the office ------------------------------------------------------------------------------


@dataclass
class Office:
    ns: NetNamespace
    core: CoreProcess
    profile: BoardProfile
    board: SimBoard
    tty: Path
    mics: dict[int, SimMicrophone]
    earpieces: dict[int, Earpiece]
    workdir: Path
    port_numbers: dict[int, str]

    def phone(self, number: str, **params: str) -> Baresip:
        """A baresip registered as `number`, sending its own tone, recording what it hears."""
        account = BaresipAccount(
            number, self.ns.host, 5060, PASSWORDS[number],
            params={"audio_codecs": "PCMU", **params},
        )  # fmt: skip
        snd = self.workdir / number / "snd"
        snd.mkdir(parents=True)
        audio = BaresipAudio(source=f"ausine,{TONES[number]}", snd_path=snd)
        return Baresip(
            self.ns, self.workdir / number, account,
            listen=f"{self.ns.host}:{PHONE_PORTS[number]}", audio=audio, sip_trace=True,
        )  # fmt: skip

    def gateway(self) -> Gateway:
        return Gateway(
            self.core.data, self.profile, (self.ns.host, 5060),
            sip=(self.ns.host, GATEWAY_SIP), device=str(self.tty), rtp=(30000, 30200),
        )  # fmt: skip

    def leds(self, led: int) -> list[p.Led]:
        with self.board.changed:
            return [c for c in self.board.commands if isinstance(c, p.Led) and c.led == led]

    def commands(self, kind: type[p.Message], port: int) -> list[Any]:
        with self.board.changed:
            return [
                c for c in self.board.commands
                if isinstance(c, kind) and getattr(c, "port", None) == port
            ]  # fmt: skip


@pytest.fixture
def netns() -> Iterator[NetNamespace]:
    with NetNamespace() as ns:
        yield ns


@pytest.fixture
def office(
    core_factory: type[CoreProcess],
    netns: NetNamespace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Office]:
    data = tmp_path / "var"
    db = open_db(data)
    settings.set_value(db, "office.country", COUNTRY)
    for number, password in PASSWORDS.items():
        extensions.add(db, number, NAMES[number], password)
    configured = {row.port: row.extension for row in ports.demo_ports(db) if row.kind == "fxs"}
    db.conn.close()
    core = core_factory(data=data, sip=f"{netns.host}:5060", netns_pid=netns.pid)
    core.start()
    profile = load_profile(shipped_profiles()["sim"])
    mics: dict[int, SimMicrophone] = {}
    earpieces: dict[int, Earpiece] = {}
    audio = []
    for port in profile.ports:
        mic = SimMicrophone(tmp_path / f"{port.pcm}.mic")
        outfile = tmp_path / f"{port.pcm}.out.raw"
        audio.append(SimAudioPort(port.pcm, mic.fifo, outfile))
        mics[port.number], earpieces[port.number] = mic, Earpiece(outfile)
        mic.start()
    monkeypatch.setenv("ALSA_CONFIG_PATH", str(write_asoundrc(tmp_path / "asoundrc", audio)))
    tty = tmp_path / "ttySIM"
    board = SimBoard(tty, [p.FXS, p.FXS, p.FXO])
    board.start()
    try:
        yield Office(netns, core, profile, board, tty, mics, earpieces, tmp_path, configured)
    finally:
        board.stop()
        for mic in mics.values():
            mic.stop()


def in_netns(ns: NetNamespace, scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run `scenario()` on an event loop inside the namespace; re-raise its failure here."""
    ns.call(lambda: asyncio.run(scenario()), timeout=300)


async def started(office: Office) -> Gateway:
    """A running gateway whose board link is up and every FXS port registered."""
    gateway = office.gateway()
    await gateway.start()
    assert await gateway.link.wait_state(LinkState.UP, 10)
    assert await until(lambda: all(f.registered for f in gateway.fxs.values()), 15), [
        f.status() for f in gateway.fxs.values()
    ]
    assert await until(lambda: STATUS_REGISTERED.command(0) in office.leds(0), 5)
    return gateway


async def wait_line(phone: Baresip, pattern: str, timeout: float = 20.0) -> None:
    await asyncio.to_thread(phone.wait_for, pattern, timeout=timeout)


async def state(port: FxsPort, wanted: State, timeout: float = 10.0) -> None:
    assert await until(lambda: port.state is wanted, timeout), (
        f"port {port.number} is {port.state} ({port.last_event}), not {wanted}"
    )


def decoded_wav(phone: Baresip) -> Path:
    assert phone.audio is not None and phone.audio.snd_path is not None
    files = sorted(phone.audio.snd_path.glob("*-dec.wav"))
    assert len(files) == 1, f"expected one decoded recording, found {files}"
    return files[0]


# --- the scenarios ---------------------------------------------------------------------------


async def hear_dial_tone(office: Office, port: FxsPort) -> None:
    """Lift the handset: the country's dial tone, its frequency and its cadence (RU: steady)."""
    ear = office.earpieces[port.number]
    mark = ear.mark()
    office.board.offhook(port.number)
    await state(port, State.DIALTONE)
    assert await until(lambda: LED_OFF_HOOK.command(port.number) in office.leds(port.number))
    heard = await ear.record(1.5, mark)
    flags = on_off(heard)
    first = flags.index(True)  # the tone starts once the off-hook event arrived
    tone = heard[first * 320 :]
    assert len(tone) >= 16000, "less than a second of dial tone"
    plan = plan_for(COUNTRY).tone(ToneKind.DIAL)
    hz = dominant_frequency(samples(tone[:16000]), RATE)
    assert abs(hz - plan.frequencies[0]) <= 5, f"dial tone at {hz:.0f} Hz"
    assert all(on_off(tone[:16000])), runs(on_off(tone[:16000]))  # steady, no break


async def call_and_talk(office: Office, gateway: Gateway, dial: Callable[[], None]) -> None:
    """Off-hook, dial 101 by `dial()`, 101 rings and answers, both sides hear each other,
    the handset is put down; the CDR records it."""
    port = gateway.fxs[1]
    ear = office.earpieces[1]
    with office.phone("101") as alice:
        await asyncio.to_thread(alice.wait_registered, 15)
        await hear_dial_tone(office, port)
        dial()
        await wait_line(alice, r"Incoming call from: .*sip:201@")
        assert port.digits == "101"
        await state(port, State.RINGBACK)
        # Ringback by the country's cadence (RU: 0.8 s of 425 Hz, 3.2 s quiet): in five
        # seconds, whole runs between the cut ends.
        ringback = await ear.record(5.0)
        plan = plan_for(COUNTRY).tone(ToneKind.RINGBACK)
        whole = runs(on_off(ringback))[1:-1]
        assert (True, plan.cadence[0]) in [(on, round(s, 1)) for on, s in whole], whole
        assert any(not on and abs(s - plan.cadence[1]) <= 0.1 for on, s in whole), whole
        hz = dominant_frequency(samples(ringback), RATE)
        assert abs(hz - plan.frequencies[0]) <= 5, f"ringback at {hz:.0f} Hz"
        alice.command("/accept")
        await state(port, State.IN_CALL)
        assert await until(lambda: LED_IN_CALL.command(1) in office.leds(1))
        office.mics[1].say(sine(HANDSET_HZ, 5.0))
        await asyncio.sleep(1.0)  # the conversation itself, not a synchronisation
        heard = await ear.record(3.0)
        hz = dominant_frequency(samples(heard), RATE)
        assert abs(hz - TONES["101"]) <= 10, f"the handset heard {hz:.0f} Hz"
        office.board.onhook(1)
        await state(port, State.IDLE)
        assert await until(lambda: office.leds(1)[-1] == LED_IDLE.command(1))
        await wait_line(alice, r"Call with sip:201@\S+ terminated", 15)
    heard_by_alice = read_wav(decoded_wav(alice))
    hz = dominant_frequency(heard_by_alice.samples, heard_by_alice.rate)
    assert abs(hz - HANDSET_HZ) <= 10, f"101 heard {hz:.0f} Hz"
    rows = wait_cdrs(office.core.data, lambda rows: len(rows) >= 1, what="the call's CDR")
    row = rows[-1]
    assert row["caller"] == "201" and row["dialled"] == "101", row
    assert row["answered_by"] == "101" and row["disposition"] == "answered", row
    assert row["hangup_side"] == "caller", row


def test_dtmf_dialled_call_to_a_baresip_phone(office: Office) -> None:
    async def scenario() -> None:
        gateway = await started(office)
        try:

            def dial() -> None:
                office.mics[1].say(dtmf_digits("101"))

            await call_and_talk(office, gateway, dial)
        finally:
            await gateway.stop()

    in_netns(office.ns, scenario)


def test_pulse_dialled_call_to_a_baresip_phone(office: Office) -> None:
    async def scenario() -> None:
        gateway = await started(office)
        try:
            await call_and_talk(office, gateway, lambda: office.board.pulse(1, "101"))
        finally:
            await gateway.stop()

    in_netns(office.ns, scenario)


def test_a_baresip_phone_calls_the_handset_with_caller_id(office: Office) -> None:
    """101 (Alice) dials 201: the board is told to ring port 1 with the RU cadence, and
    before the first ring the port played ETSI caller ID (DT-AS alert, then V.23 FSK) that
    an independent decoder reads as 101, Alice. The handset answers; they talk; 101 hangs
    up."""

    async def scenario() -> None:
        gateway = await started(office)
        port, ear = gateway.fxs[1], office.earpieces[1]
        try:
            with office.phone("101") as alice:
                await asyncio.to_thread(alice.wait_registered, 15)
                mark = ear.mark()
                alice.command("/dial 201")
                await state(port, State.RINGING)
                rang = await asyncio.to_thread(
                    office.board.wait_for, lambda: 1 in office.board.ringing, 10
                )
                at_ring = ear.mark()  # what the handset had heard when the bell started
                assert rang, office.board.commands
                ring = plan_for(COUNTRY).ring
                assert office.commands(p.Ring, 1) == [
                    p.Ring(1, ((round(ring[0] * 1000), round(ring[1] * 1000)),))
                ]
                assert await until(lambda: LED_RINGING.command(1) in office.leds(1))
                with ear.path.open("rb") as f:
                    f.seek(mark)
                    before_ring = np.frombuffer(f.read(at_ring - mark), dtype="<i2")
                with np.errstate(divide="ignore"):  # the silence around it has no crossings
                    frame = receive_bytes(before_ring, 1300.0, 2100.0)
                fields = parse_independently(frame)
                assert fields["type"] == 0x80 and fields["checksum_ok"] is True, fields
                assert (fields["number"], fields["name"]) == ("101", "Alice"), fields
                office.board.offhook(1)
                await state(port, State.IN_CALL)
                await wait_line(alice, r"Call established: sip:201@")
                office.mics[1].say(sine(HANDSET_HZ, 4.0))
                await asyncio.sleep(1.0)  # the conversation itself, not a synchronisation
                heard = await ear.record(2.0)
                hz = dominant_frequency(samples(heard), RATE)
                assert abs(hz - TONES["101"]) <= 10, f"the handset heard {hz:.0f} Hz"
                alice.command("/hangup")
                await wait_line(alice, r"Call with sip:201@\S+ terminated", 15)
                await state(port, State.CONGESTION)
                office.board.onhook(1)
                await state(port, State.IDLE)
            heard_by_alice = read_wav(decoded_wav(alice))
            hz = dominant_frequency(heard_by_alice.samples, heard_by_alice.rate)
            assert abs(hz - HANDSET_HZ) <= 10, f"101 heard {hz:.0f} Hz"
        finally:
            await gateway.stop()

    in_netns(office.ns, scenario)
    rows = wait_cdrs(office.core.data, lambda rows: len(rows) >= 1, what="the call's CDR")
    assert rows[-1]["caller"] == "101" and rows[-1]["answered_by"] == "201", rows[-1]


def test_handset_left_off_hook_gets_congestion_then_howler_then_silence(office: Office) -> None:
    """201 calls 101, which answers and hangs up; the handset stays off hook: the RU
    congestion tone (425 Hz, 0.2/0.2 s), then the howler, then silence (the port's timers
    shortened from 30 s and 60 s)."""

    async def scenario() -> None:
        gateway = await started(office)
        port, ear = gateway.fxs[1], office.earpieces[1]
        port.howler_after_s, port.howler_for_s = 2.5, 2.5
        plan = plan_for(COUNTRY)
        try:
            with office.phone("101", answermode="auto") as alice:
                await asyncio.to_thread(alice.wait_registered, 15)
                await hear_dial_tone(office, port)
                office.board.pulse(1, "101")
                await wait_line(alice, r"Call established: sip:201@")
                await state(port, State.IN_CALL)
                alice.command("/hangup")
                await state(port, State.CONGESTION)
                congestion = await ear.record(2.0)
                tone = plan.tone(ToneKind.CONGESTION)
                settled = congestion[4800:]  # from 0.3 s on: past the call's last audio
                whole = [(on, round(s, 1)) for on, s in runs(on_off(settled))[1:-1]]
                assert whole and set(whole) == {(True, tone.cadence[0]), (False, tone.cadence[1])}
                hz = dominant_frequency(samples(congestion), RATE)
                assert abs(hz - tone.frequencies[0]) <= 5, f"congestion at {hz:.0f} Hz"
                await state(port, State.HOWLER, 5)
                howler = await ear.record(1.5)
                heard = set(top_frequencies(howler[1600:], 4))
                assert heard == set(plan.tone(ToneKind.HOWLER).frequencies), heard
                assert np.abs(samples(howler[1600:])).max() > 8000  # loud
                await state(port, State.SILENT, 5)
                quiet = await ear.record(1.0)
                assert np.abs(samples(quiet[1600:])).max() < 50, "not silent"
                assert office.leds(1)[-1] == LED_OFF_HOOK.command(1)  # still off hook
                office.board.onhook(1)
                await state(port, State.IDLE)
        finally:
            await gateway.stop()

    in_netns(office.ns, scenario)


def top_frequencies(pcm: bytes, count: int) -> list[float]:
    """The `count` strongest spectral peaks (10 Hz bins, peaks at least 50 Hz apart)."""
    x = samples(pcm)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=RATE))
    found: list[float] = []
    for index in np.argsort(spectrum)[::-1]:
        hz = float(index)
        if all(abs(hz - other) >= 50 for other in found):
            found.append(round(hz / 10) * 10)
        if len(found) == count:
            break
    return found


def test_link_cut_and_restored_while_idle_and_in_a_call(office: Office) -> None:
    """The board's serial link is cut and restored, first with both handsets idle, then
    while 201 talks to 202 and the IP phones 101 and 102 talk through the core: the ports
    are faulty while it is down and back after it without a restart of anything, the analog
    call's audio never stops, and the IP phones' call is untouched. A fault the board
    reports on one port shows on that port's LED until the board reports the line again."""

    async def scenario() -> None:
        gateway = await started(office)
        one, two = gateway.fxs[1], gateway.fxs[2]
        board = office.board
        try:
            board.cut()
            await state(one, State.FAULT)
            await state(two, State.FAULT)
            assert gateway.link.state is LinkState.DOWN
            board.restore()
            assert await gateway.link.wait_state(LinkState.UP, 10)
            await state(one, State.IDLE)
            await state(two, State.IDLE)

            board.fault(2, 3, "ring overload")
            await state(two, State.FAULT)
            assert await until(lambda: office.leds(2)[-1] == LED_FAULT.command(2))
            board.onhook(2)
            await state(two, State.IDLE)
            assert await until(lambda: office.leds(2)[-1] == LED_IDLE.command(2))

            with (
                office.phone("101") as alice,
                office.phone("102", answermode="auto") as bob,
            ):
                await asyncio.to_thread(alice.wait_registered, 15)
                await asyncio.to_thread(bob.wait_registered, 15)
                alice.command("/dial 102")
                await wait_line(alice, r"Call established: sip:102@")
                # 201 calls 202 (caller ID and ringing as any call), 202 answers.
                await hear_dial_tone(office, one)
                board.pulse(1, "202")
                await state(two, State.RINGING)
                assert await asyncio.to_thread(board.wait_for, lambda: 2 in board.ringing, 10)
                board.offhook(2)
                await state(two, State.IN_CALL)
                await state(one, State.IN_CALL)
                office.mics[1].say(sine(HANDSET_HZ, 12.0))
                office.mics[2].say(sine(SECOND_HANDSET_HZ, 12.0))
                await asyncio.sleep(0.5)  # the conversation itself, not a synchronisation
                mark_one, mark_two = office.earpieces[1].mark(), office.earpieces[2].mark()
                board.cut()
                await state(one, State.FAULT)
                await state(two, State.FAULT)
                await asyncio.sleep(2.0)  # the board stays unplugged for a while
                board.restore()
                assert await gateway.link.wait_state(LinkState.UP, 10)
                await state(one, State.IN_CALL)
                await state(two, State.IN_CALL)
                for port in (1, 2):  # the board is told its LEDs again
                    assert await until(partial(last_led_is, office, LED_IN_CALL.command(port)))
                # Through the cut and after it, each handset heard the other all the time.
                for number, mark, expected in (
                    (1, mark_one, SECOND_HANDSET_HZ), (2, mark_two, HANDSET_HZ),
                ):  # fmt: skip
                    heard = await office.earpieces[number].record(4.0, mark)
                    for at in range(4000, len(heard) - 3200, 3200):  # every 200 ms
                        hz = dominant_frequency(samples(heard[at : at + 3200]), RATE)
                        assert abs(hz - expected) <= 10, (number, at / 16000, hz)
                board.onhook(1)
                await state(one, State.IDLE)
                await state(two, State.CONGESTION)
                board.onhook(2)
                await state(two, State.IDLE)
                assert not any("terminated" in line for line in alice.lines), "IP call cut"
                alice.command("/hangup")
                await wait_line(alice, r"Call with sip:102@\S+ terminated", 15)
        finally:
            await gateway.stop()

    in_netns(office.ns, scenario)


def test_hook_flash_transfers_the_call_to_another_extension(office: Office) -> None:
    """201 calls 101 (Alice); a hook flash holds her and gives the RU recall dial tone (a
    stutter, then 425 Hz); 201 dials 102 (Bob), talks to him, and puts the handset down: the
    port hands Alice to Bob (REFER with Replaces), the core joins them, and they hear each
    other."""

    async def scenario() -> None:
        gateway = await started(office)
        port, ear = gateway.fxs[1], office.earpieces[1]
        plan = plan_for(COUNTRY)
        try:
            with (
                office.phone("101", answermode="auto") as alice,
                office.phone("102", answermode="auto") as bob,
            ):
                await asyncio.to_thread(alice.wait_registered, 15)
                await asyncio.to_thread(bob.wait_registered, 15)
                await hear_dial_tone(office, port)
                office.board.pulse(1, "101")
                await wait_line(alice, r"Call established: sip:201@")
                await state(port, State.IN_CALL)
                mark = ear.mark()
                office.board.flash(1, 250)
                await state(port, State.DIALTONE)
                recall = await ear.record(1.5, mark)
                tone = plan.tone(ToneKind.RECALL_DIAL)
                flags = tone_flags(recall, tone.frequencies[0])  # not Alice's voice
                # The stutter's bursts after the first (which the switch from the call's
                # audio may blur), then the steady tone.
                stutter = [(on, round(s, 1)) for on, s in runs(flags[flags.index(True) :])]
                steady = next(i for i, (on, s) in enumerate(stutter) if on and s >= 0.5)
                bursts = stutter[2:steady]
                assert all(s == tone.intro[0] for _, s in bursts), stutter
                assert sum(on for on, _ in bursts) >= len(tone.intro) // 2 - 1, stutter
                hz = dominant_frequency(samples(recall), RATE)
                assert abs(hz - tone.frequencies[0]) <= 5, f"recall dial tone at {hz:.0f} Hz"
                office.board.pulse(1, "102")
                await wait_line(bob, r"Call established: sip:201@")
                await state(port, State.IN_CALL)
                office.mics[1].say(sine(HANDSET_HZ, 2.0))
                heard = await ear.record(1.5)
                hz = dominant_frequency(samples(heard), RATE)
                assert abs(hz - TONES["102"]) <= 10, f"the handset heard {hz:.0f} Hz from Bob"
                office.board.onhook(1)
                await state(port, State.IDLE)
                assert await until(lambda: not port.has_dialogs(), 10), port.status()
                await asyncio.sleep(3.0)  # Alice and Bob talk, not a synchronisation
                assert not any("terminated" in line for line in alice.lines), "Alice cut off"
                alice.command("/hangup")
                await wait_line(bob, r"Call with sip:\S+ terminated", 15)
            for phone, other in ((alice, "102"), (bob, "101")):
                heard_wav = read_wav(decoded_wav(phone))
                seconds = tone_seconds(heard_wav, TONES[other])
                assert seconds >= 2.0, f"{phone.accounts[0].user} heard {other} {seconds:.1f} s"
        finally:
            await gateway.stop()

    in_netns(office.ns, scenario)
