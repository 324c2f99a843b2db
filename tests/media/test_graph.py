"""The media graph at leg level over real UDP sockets on loopback: playing prompts and tones to
a phone, collecting digits (RFC 4733, SIP INFO, in-band), recording two legs to a stereo file
and mixing a conference. A tiny RTP peer in the test sends paced audio and decodes what it
gets; audio is judged by its content (dominant frequency, correlation with the source)."""

from __future__ import annotations

import asyncio
import itertools
import struct
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile

from appliance.media import sources
from appliance.media.codecs import make_decoder, make_encoder
from appliance.media.dtmf import TelephoneEvent, dtmf_tone
from appliance.media.engine import Codec, MediaEngine, MediaLeg
from appliance.media.recorder import RecordingResult, recover

HOST = "127.0.0.1"
WAIT = 5.0
PCMU = Codec("PCMU", 0, 101)
SOUNDS = Path("/usr/share/asterisk/sounds")


class Peer(asyncio.DatagramProtocol):
    """A phone's RTP port: keeps every packet that arrives; sends paced 20 ms frames."""

    def __init__(self) -> None:
        self.packets: list[bytes] = []
        self.arrived = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None
        self.seq = 1000
        self.ts = 50_000
        self.ssrc = 0x5EED

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)
        self.arrived.set()

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])

    def packet(self, payload: bytes, pt: int = 0, marker: bool = False, ts: int | None = None,
               seq: int | None = None) -> bytes:  # fmt: skip
        if seq is None:
            self.seq = (self.seq + 1) & 0xFFFF
            seq = self.seq
        stamp = self.ts if ts is None else ts
        head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | pt, seq, stamp, self.ssrc)
        return head + payload

    def send(self, data: bytes, leg: MediaLeg) -> None:
        assert self.transport is not None
        self.transport.sendto(data, (HOST, leg.port))

    async def stream(self, leg: MediaLeg, payloads: list[bytes], pt: int = 0) -> None:
        """Send `payloads` a packet per 20 ms (paced by absolute deadlines)."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        for i, payload in enumerate(payloads):
            self.send(self.packet(payload, pt), leg)
            self.ts = (self.ts + 160) & 0xFFFFFFFF
            await asyncio.sleep(max(0.0, start + 0.02 * (i + 1) - loop.time()))

    async def wait_for(self, count: int, timeout: float = WAIT) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.packets) < count:
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"{len(self.packets)} of {count} packets arrived"
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except TimeoutError:
                pass

    def audio(self, codec: str = "PCMU", pt: int = 0) -> bytes:
        decoder = make_decoder(codec)
        return b"".join(decoder.decode(p[12:]) for p in self.packets if p[1] & 0x7F == pt)

    def close(self) -> None:
        assert self.transport is not None
        self.transport.close()


async def peer() -> Peer:
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_datagram_endpoint(Peer, local_addr=(HOST, 0))
    return protocol


def with_engine(test: Callable[[MediaEngine], Awaitable[None]]) -> Callable[[], None]:
    def run() -> None:
        async def body() -> None:
            engine = MediaEngine(HOST, 43000, 43200)
            engine.start()
            try:
                await test(engine)
            finally:
                engine.close()

        asyncio.run(body())

    run.__name__ = test.__name__
    return run


async def leg_with_peer(engine: MediaEngine, codec: Codec = PCMU) -> tuple[MediaLeg, Peer]:
    leg, p = engine.open_leg(), await peer()
    leg.set_remote(HOST, p.port)
    leg.set_codec(codec)
    return leg, p


def dominant(pcm: bytes, rate: int = 8000) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[:5] = 0
    return float(np.argmax(spectrum) * rate / len(x))


def sine(freq: float, seconds: float, rate: int = 8000, amp: float = 8000) -> bytes:
    n = np.arange(int(seconds * rate))
    return (amp * np.sin(2 * np.pi * freq * n / rate)).astype("<i2").tobytes()


def ulaw_frames(pcm: bytes) -> list[bytes]:
    enc = make_encoder("PCMU")
    return [enc.encode(pcm[i : i + 320]) for i in range(0, len(pcm) - 319, 320)]


async def until(check: Callable[[], bool], timeout: float = WAIT) -> None:
    """Poll `check` every 10 ms until it holds, failing at the deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
def sweep_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s prompt made by sox: a 1 kHz tone, stereo, 16 kHz (mixed and resampled on load)."""
    path = tmp_path_factory.mktemp("prompts") / "tone.wav"
    subprocess.run(["sox", "-n", "-r", "16000", "-c", "2", "-b", "16", str(path), "synth", "1",
                    "sine", "1000", "vol", "0.5"], check=True)  # fmt: skip
    return path


# -- playing -------------------------------------------------------------------------------


@with_engine
async def test_a_prompt_reaches_the_phone_in_its_codec_and_ends(engine: MediaEngine) -> None:
    leg, p = await leg_with_peer(engine)
    done: list[bool] = []
    wav = SOUNDS / "en_US_f_Allison/digits/5.wav"
    source = sources.prompt(wav)
    leg.play(source, done.append)
    await until(lambda: bool(done))
    assert done == [True]
    data, rate = soundfile.read(str(wav), dtype="int16")
    assert rate == 8000
    got = np.frombuffer(p.audio(), dtype="<i2").astype(float)
    ref = data.astype(float)
    assert abs(len(got) - len(ref)) <= 160 * 3, (len(got), len(ref))
    n = min(len(got), len(ref))
    corr = np.dot(got[:n], ref[:n]) / (np.linalg.norm(got[:n]) * np.linalg.norm(ref[:n]))
    assert corr > 0.95, corr  # the very prompt, through µ-law, in order, nothing missing
    heads = [struct.unpack_from("!BBHII", pk) for pk in p.packets]
    assert heads[0][1] & 0x80 and not any(h[1] & 0x80 for h in heads[1:])
    assert {h[4] for h in heads} == {leg.ssrc}
    assert all((b[2] - a[2]) & 0xFFFF == 1 for a, b in itertools.pairwise(heads))
    assert all((b[3] - a[3]) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(heads))
    p.close()


@with_engine
async def test_wideband_stereo_prompt_to_a_g722_phone(
    engine: MediaEngine,
) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "tone.wav"
        subprocess.run(["sox", "-n", "-r", "44100", "-c", "2", "-b", "16", str(path), "synth",
                        "0.6", "sine", "5000", "vol", "0.5"], check=True)  # fmt: skip
        leg, p = await leg_with_peer(engine, Codec("G722", 9))
        done: list[bool] = []
        leg.play(sources.prompt(path), done.append)
        await until(lambda: bool(done))
    audio = p.audio("G722", 9)
    assert abs(len(audio) / 2 / 16000 - 0.6) < 0.06
    assert abs(dominant(audio[3200:], 16000) - 5000) < 20  # above 4 kHz: wideband all the way
    p.close()


@with_engine
async def test_playback_replaces_the_peers_audio_and_the_other_way_still_relays(
    engine: MediaEngine,
) -> None:
    a, pa = await leg_with_peer(engine)
    b, pb = await leg_with_peer(engine)
    a.connect(b)
    done: list[bool] = []
    playback = a.play(sources.tones(sources.TonePlan((((425,), 0),))), done.append)
    talk = sine(1000, 1.0)
    await asyncio.gather(pb.stream(b, ulaw_frames(talk)), pa.stream(a, ulaw_frames(sine(700, 1))))
    playback.stop()
    playback.stop()
    assert done == [False] and playback.done
    assert abs(dominant(pa.audio()) - 425) < 10  # A heard the tone, not B's 1 kHz
    assert abs(dominant(pb.audio()) - 700) < 10  # B still hears A
    # the tone stopped: B's voice reaches A again, in A's one stream
    before = len(pa.packets)
    await pb.stream(b, ulaw_frames(talk[:8000]))
    await pa.wait_for(before + 20)
    assert abs(dominant(b"".join(make_decoder("PCMU").decode(x[12:]) for x in pa.packets[before:]))
               - 1000) < 10  # fmt: skip
    assert {struct.unpack_from("!I", x, 8)[0] for x in pa.packets} == {a.ssrc}
    for p in (pa, pb):
        p.close()


@with_engine
async def test_a_new_play_stops_the_last_and_closing_the_leg_stops_it(engine: MediaEngine) -> None:
    leg, p = await leg_with_peer(engine)
    first: list[bool] = []
    second: list[bool] = []
    leg.play(sources.tones(sources.TonePlan((((425,), 0),))), first.append)
    leg.play(sources.loop(lambda: sources.silence(100)), second.append)
    assert first == [False]
    leg.close()
    assert second == [False]
    assert len(engine.clock) == 0 and not engine.clock.running
    p.close()


@with_engine
async def test_play_waits_for_a_remote_and_a_codec(engine: MediaEngine) -> None:
    leg, p = engine.open_leg(), await peer()
    done: list[bool] = []
    source = sources.sequence([sources.silence(40), sources.tones(
        sources.TonePlan((((1000,), 200),), repeat=False))])  # fmt: skip
    leg.play(source, done.append)
    await asyncio.sleep(0.1)  # ticks pass with no codec: the source must not be consumed
    assert not done and not p.packets
    leg.set_remote(HOST, p.port)
    leg.set_codec(PCMU)
    await until(lambda: bool(done))
    audio = p.audio()
    assert len(audio) == 2 * 8000 * 240 // 1000
    assert abs(dominant(audio[640:]) - 1000) < 10
    p.close()


# -- collecting digits ------------------------------------------------------------------------


def event_packets(p: Peer, digit: str, ts: int) -> list[bytes]:
    code = "0123456789*#ABCD".index(digit)
    out = [p.packet(bytes(TelephoneEvent(code, False, 10, 160 * i)), 101, i == 1, ts)
           for i in range(1, 4)]  # fmt: skip
    out += [p.packet(bytes(TelephoneEvent(code, True, 10, 640)), 101, False, ts)] * 3
    return out


@with_engine
async def test_rfc4733_digits_barge_in_and_are_not_relayed(engine: MediaEngine) -> None:
    a, pa = await leg_with_peer(engine)
    b, pb = await leg_with_peer(engine)
    a.connect(b)
    played: list[bool] = []
    result: list[tuple[str, str]] = []
    a.play(sources.loop(lambda: sources.tones(sources.TonePlan((((425,), 1000),), False))),
           played.append)  # fmt: skip
    a.collect(lambda d, r: result.append((d, r)), max_digits=4)
    for n, digit in enumerate("12#"):
        for pk in event_packets(pa, digit, 9000 + 1000 * n):
            pa.send(pk, a)
        await asyncio.sleep(0.03)  # pacing between key presses
        if n == 0:
            await until(lambda: bool(played))
    await until(lambda: bool(result))
    assert played == [False]  # the first digit stopped the prompt
    assert result == [("12", "terminator")]
    assert not [x for x in pb.packets if x[1] & 0x7F == 101]  # B's phone heard no event
    for p in (pa, pb):
        p.close()


@with_engine
async def test_sip_info_digits_reach_the_collector_else_the_peer(engine: MediaEngine) -> None:
    a, pa = await leg_with_peer(engine)
    b, pb = await leg_with_peer(engine)
    a.connect(b)
    seen: list[str] = []
    a.on_dtmf = lambda leg, d: seen.append(d)
    result: list[tuple[str, str]] = []
    a.collect(lambda d, r: result.append((d, r)), max_digits=2)
    a.dtmf_received("4")
    a.dtmf_received("2")
    assert result == [("42", "max")] and not seen
    a.dtmf_received("7", 100)  # no collector now: observed, and sent to B as RFC 4733 events
    assert seen == ["7"]
    await pb.wait_for(7)
    events = [TelephoneEvent.parse(x[12:]) for x in pb.packets if x[1] & 0x7F == 101]
    assert {e.event for e in events} == {7} and events[-1].end
    assert [e.end for e in events].count(True) == 3
    for p in (pa, pb):
        p.close()


@with_engine
async def test_inband_digits_and_timeouts(engine: MediaEngine) -> None:
    leg, p = await leg_with_peer(engine)
    result: list[tuple[str, str]] = []
    leg.collect(lambda d, r: result.append((d, r)), max_digits=5, inter_timeout=0.3)
    tone = b"".join(dtmf_tone(d, 80) + bytes(2 * 8 * 80) for d in "93")
    await p.stream(leg, ulaw_frames(tone))
    started = time.monotonic()
    await until(lambda: bool(result))
    assert result == [("93", "timeout")]
    assert 0.15 < time.monotonic() - started < 0.6
    assert leg.on_audio is None  # the collector is gone: nothing is decoded any more
    nothing: list[tuple[str, str]] = []
    leg.collect(lambda d, r: nothing.append((d, r)), first_timeout=0.1)
    await until(lambda: bool(nothing))
    assert nothing == [("", "timeout")]
    p.close()


# -- recording ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["wav", "opus", "flac"])
def test_a_recording_holds_each_phone_on_its_own_channel(tmp_path: Path, fmt: str) -> None:
    @with_engine
    async def run(engine: MediaEngine) -> None:
        a, pa = await leg_with_peer(engine)
        b, pb = await leg_with_peer(engine, Codec("G722", 9))
        a.connect(b)
        closed: list[RecordingResult] = []
        path = tmp_path / f"call.{fmt}"
        rec = engine.record(path, a, b, fmt=fmt, on_closed=closed.append)
        left = sine(440, 2.0)
        g722 = make_encoder("G722")
        wide = sine(1000, 2.0, 16000)
        right = [g722.encode(wide[i : i + 640]) for i in range(0, len(wide), 640)]
        await asyncio.gather(pa.stream(a, ulaw_frames(left)), pb.stream(b, right, pt=9))
        assert (path.with_name(path.name + ".part")).exists()
        rec.stop()
        rec.stop()
        await until(lambda: bool(closed))
        assert closed[0].path == path and path.exists() and closed[0].bytes == path.stat().st_size
        assert 1.9 < closed[0].seconds < 2.3
        assert a.on_audio is None and b.on_audio is None  # stopped: nothing decoded
        data, rate = soundfile.read(str(path), dtype="int16")
        assert rate == 8000 and data.shape[1] == 2
        mid = data[len(data) // 4 : 3 * len(data) // 4]
        assert abs(dominant(mid[:, 0].tobytes()) - 440) < 10
        assert abs(dominant(mid[:, 1].tobytes()) - 1000) < 10
        for ch in (0, 1):  # no bleed: the other channel's tone is far weaker
            x = mid[:, ch].astype(float)
            assert np.sqrt(np.mean(x**2)) > 2000
        if fmt == "wav":  # lossless: the left channel IS the µ-law-decoded source
            src = np.frombuffer(make_decoder("PCMU").decode(b"".join(ulaw_frames(left))), "<i2")
            x = data[:, 0].astype(float)
            lags = [float(np.dot(x[k : k + 8000], src[2000:10000])) for k in range(0, 4000, 1)]
            best = int(np.argmax(lags))
            seg = x[best : best + 8000]
            corr = lags[best] / (np.linalg.norm(seg) * np.linalg.norm(src[2000:10000]))
            assert corr > 0.999, corr
        for p in (pa, pb):
            p.close()

    run()


@with_engine
async def test_reordered_and_lost_packets_in_a_recording(engine: MediaEngine) -> None:
    import tempfile

    leg, p = await leg_with_peer(engine)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "r.wav"
        closed: list[RecordingResult] = []
        rec = engine.record(path, leg, None, fmt="wav", on_closed=closed.append)
        n = np.arange(8000)
        chirp = (8000 * np.sin(2 * np.pi * (300 + 1200 * n / 8000) * n / 8000)).astype("<i2")
        frames = ulaw_frames(chirp.tobytes())  # no two frames alike: order shows
        loop = asyncio.get_running_loop()
        start = loop.time()
        order = list(range(len(frames)))
        for i in range(10, 40, 4):  # swap neighbours: reordered within the buffer's delay
            order[i], order[i + 1] = order[i + 1], order[i]
        lost = {45}
        for sent, i in enumerate(order):
            if i not in lost:
                p.send(p.packet(frames[i], seq=(2000 + i) & 0xFFFF, ts=160 * i), leg)
            await asyncio.sleep(max(0.0, start + 0.02 * (sent + 1) - loop.time()))
        tap = leg._taps[0]
        await until(lambda: not tap._frames)  # the buffer played out (its delay is 60-100 ms)
        rec.stop()
        await until(lambda: bool(closed))
        data, _ = soundfile.read(str(path), dtype="int16")
    src = np.frombuffer(make_decoder("PCMU").decode(b"".join(frames)), "<i2").astype(float)
    x = data[:, 0].astype(float)
    ref = src[: 40 * 160]  # the reordered part, before the lost packet
    start_at = int(np.argmax(np.abs(x) > 100))
    lags = [float(np.dot(x[k : k + len(ref)], ref)) for k in range(max(0, start_at - 20),
                                                                  start_at + 20)]  # fmt: skip
    k = max(0, start_at - 20) + int(np.argmax(lags))
    got = x[k : k + len(ref)]
    corr = float(np.dot(got, ref)) / (np.linalg.norm(got) * np.linalg.norm(ref))
    assert corr > 0.99, corr  # played out in order, not as received
    assert not data[:, 1].any()  # no right leg: a silent channel


def test_recover_makes_a_truncated_part_a_playable_file(tmp_path: Path) -> None:
    part = tmp_path / "x-1.opus.part"
    n = np.arange(8000 * 5)
    stereo = np.stack([(8000 * np.sin(2 * np.pi * 440 * n / 8000)).astype("<i2")] * 2, 1)
    with soundfile.SoundFile(str(part), "w", 8000, 2, format="OGG", subtype="OPUS") as f:
        f.write(stereo)
    raw = part.read_bytes()
    part.write_bytes(raw[: len(raw) * 2 // 3])  # a crash in mid-write
    finished = recover(part)
    assert finished == tmp_path / "x-1.opus" and not part.exists()
    data, _ = soundfile.read(str(finished), dtype="int16")
    assert len(data) > 8000 * 2
    assert abs(dominant(data[:8000, 0].tobytes()) - 440) < 10


# -- mixing ---------------------------------------------------------------------------------


@with_engine
async def test_each_member_hears_the_others_but_not_itself(engine: MediaEngine) -> None:
    legs = [await leg_with_peer(engine, c) for c in (PCMU, PCMU, Codec("G722", 9))]
    mixer = engine.mixer()
    for leg, _ in legs:
        mixer.add(leg)
    assert mixer.rate == 16000
    tones_hz = (440, 1000, 2200)
    g722 = make_encoder("G722")
    wide = sine(2200, 1.5, 16000, 6000)
    payloads = [ulaw_frames(sine(440, 1.5)), ulaw_frames(sine(1000, 1.5)),
                [g722.encode(wide[i : i + 640]) for i in range(0, len(wide), 640)]]  # fmt: skip
    await asyncio.gather(*(p.stream(leg, pl, pt=leg.codec.payload_type if leg.codec else 0)
                           for (leg, p), pl in zip(legs, payloads, strict=True)))  # fmt: skip
    mixer.close()
    for i, (leg, p) in enumerate(legs):
        codec = leg.codec
        assert codec is not None
        rate = 16000 if codec.name == "G722" else 8000
        audio = p.audio(codec.name, codec.payload_type)
        x = np.frombuffer(audio, "<i2").astype(float)[rate // 4 :]
        spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))

        def level(hz: float, spectrum: np.ndarray = spectrum, n: int = len(x),
                  rate: int = rate) -> float:  # fmt: skip
            k = round(hz * n / rate)
            return float(spectrum[k - 3 : k + 4].max())

        others = [level(f) for j, f in enumerate(tones_hz) if j != i]
        own = level(tones_hz[i])
        assert min(others) > 30 * own, (i, others, own)
        assert leg.relay_suspended is False and leg.own_audio is False
    for _, p in legs:
        p.close()


@with_engine
async def test_a_member_is_not_relayed_and_an_announcement_is_mixed_in(engine: MediaEngine) -> None:
    a, pa = await leg_with_peer(engine)
    b, pb = await leg_with_peer(engine)
    a.connect(b)
    mixer = engine.mixer()
    mixer.add(a)
    mixer.play(sources.tones(sources.TonePlan((((600,), 600),), repeat=False)))
    await pa.stream(a, ulaw_frames(sine(1000, 0.6)))
    await pa.wait_for(25)
    assert not pb.packets  # A's voice goes to the mix, not to its peer
    assert abs(dominant(pa.audio()) - 600) < 10  # A hears the announcement (and not itself)
    mixer.remove(a)
    await pa.stream(a, ulaw_frames(sine(1000, 0.4)))
    await pb.wait_for(10)
    assert abs(dominant(pb.audio()) - 1000) < 10
    for p in (pa, pb):
        p.close()


def test_clock_is_idle_without_users() -> None:
    async def body() -> None:
        engine = MediaEngine(HOST, 43000, 43200)
        leg, p = await leg_with_peer(engine)
        assert not engine.clock.running
        leg.close()
        assert not engine.clock.running
        p.close()
        engine.close()

    asyncio.run(body())


CRASHING_BOX = """
import asyncio, math, socket, struct, sys, audioop
from pathlib import Path
from appliance.media.engine import Codec, MediaEngine

async def main() -> None:
    engine = MediaEngine("127.0.0.1", 43300, 43400)
    leg = engine.open_leg()
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    leg.set_remote("127.0.0.1", phone.getsockname()[1])
    leg.set_codec(Codec("PCMU", 0))
    rec = engine.record(Path(sys.argv[1]), leg, None, fmt="opus")
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(100_000):
        pcm = struct.pack("<160h", *(int(8000 * math.sin(2 * math.pi * 440 * (160 * i + n) / 8000))
                                     for n in range(160)))
        head = struct.pack("!BBHII", 0x80, 0, i & 0xFFFF, 160 * i, 7)
        phone.sendto(head + audioop.lin2ulaw(pcm, 2), ("127.0.0.1", leg.port))
        if i % 25 == 0:
            print(engine.clock.ticks, flush=True)
        await asyncio.sleep(max(0.0, start + 0.02 * (i + 1) - loop.time()))

asyncio.run(main())
"""


def test_a_recording_killed_by_sigkill_is_recovered_to_within_two_seconds(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import sys

    path = tmp_path / "crash-1.opus"
    proc = subprocess.Popen(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", CRASHING_BOX, str(path)],
        stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2],
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        ticks = 0
        for _ in range(1000):  # bounded: a line every 0.5 s
            line = proc.stdout.readline()
            assert line, "the box died on its own"
            ticks = int(line)
            if ticks >= 250:  # 5 s recorded
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    part = path.with_name(path.name + ".part")
    assert part.exists() and not path.exists()
    finished = recover(part)
    data, rate = soundfile.read(str(finished), dtype="int16")
    seconds = len(data) / rate
    assert ticks * 0.02 - 2.0 <= seconds <= ticks * 0.02 + 0.5, (seconds, ticks)
    assert abs(dominant(data[rate : 2 * rate, 0].tobytes()) - 440) < 10


@with_engine
async def test_an_unreadable_prompt_in_a_sequence_ends_the_playback(engine: MediaEngine) -> None:
    a, pa = await leg_with_peer(engine)
    b, pb = await leg_with_peer(engine)
    a.connect(b)
    done: list[bool] = []
    a.play(sources.sequence([sources.silence(40), "/nonexistent/prompt.wav"]), done.append)
    await until(lambda: bool(done))
    assert done == [False] and not a.own_audio
    await pb.stream(b, ulaw_frames(sine(1000, 0.3)))  # and B's voice reaches A again
    await pa.wait_for(10)
    p_audio = b"".join(make_decoder("PCMU").decode(x[12:]) for x in pa.packets[2:])
    assert abs(dominant(p_audio) - 1000) < 10
    for p in (pa, pb):
        p.close()
