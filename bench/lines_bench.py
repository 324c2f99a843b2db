"""The analog gateway (`pbx-lines`): CPU per active port and the latency it adds between a
port's ALSA audio and RTP (`bench/lines --help`).

Two parts. **DSP**, in this process: per 20 ms frame of a port, in-band DTMF detection on the
handset's (or the line's) audio, a call-progress tone generated towards it, the hook decoder
polled, and on an FXO port the dial/busy tone detector; caller ID is costed per call (V.23 FSK
generated for FXS, decoded for FXO). The input is noise at speech level with DTMF digits in
it, which makes the detector run every check.

**Gateway**, the real processes: a `pbx run` core, and `python -m appliance.lines.gateway`
(the argv `pbx lines run` builds) on the simulated board profile (2 FXS + 1 FXO). The board is
the `SimBoard` that `python -m appliance.lines.sim` runs, here in this process, so that the
bench can speak into each port's microphone: every port's capture is an ALSA file-backed PCM
whose infile is a FIFO this process feeds 20 ms frames at the wall clock's pace, a few frames
ahead (a FIFO read blocks the gateway when it runs dry) and never more than a sound card's
buffer ahead (frames the gateway fails to read in time are dropped and counted, as a card
overruns); every port's playback is a file. Far
phones are sipp (signalling) registered to the core with this process's RTP sockets
(`tests/interop/rtp_endpoint.py`) as their media. Port 1 (extension 201) dials 101 by in-band
DTMF; 102 calls port 2 (202), which gets ETSI FSK caller ID before its first ring and is
picked up. The gateway's CPU (utime + stime of the process, /proc/PID/stat) is read over
windows: all ports idle (on hook), both FXS ports hearing dial tone (DTMF detection on every
frame), both in calls with audio both ways (noise from the handsets, a tone from the phones).
The gateway is pinned to one CPU, everything else to the others.

Latency: a 20 ms tone burst goes into a port's microphone and is timed from the moment the
gateway read it from ALSA (the FIFO's fill level, polled every millisecond, drops by that
frame) to the RTP packet carrying it leaving the gateway (tcpdump on `lo`) and arriving at the
far phone's socket; and the reverse, a burst in a far phone's RTP, from the packet reaching the
gateway to the gateway writing it to the port's ALSA playback (the file PCM writes each frame
to its file a fixed number of periods after it was written, measured here before the run, so
the write is timed by the file growing by the frame that many periods earlier). What a real
sound card adds around this (waiting for the period, the playback queue) cannot be measured
with file PCMs; the output says so. Nothing is asserted: figures are printed, and written as
JSON with --json. Bars (issue 12): 2 % of one core per active port, 40 ms added one way.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from appliance.lines.callerid import V23, CallerIdMessage, decode_fsk, fsk_callerid
from appliance.lines.pulse import HookDecoder
from appliance.lines.sim import SimAudioPort, SimBoard, write_asoundrc
from appliance.lines.tones import ToneDetector, ToneGenerator, plan_for
from appliance.media.dtmf import InbandDtmfDetector, dtmf_tone
from bench.register_bench import BenchError

if TYPE_CHECKING:
    from bench.pcap import Datagram
    from tests.interop.sipp import BackgroundSipp

FRAME = 160
FRAME_S = 0.020
FRAME_BYTES = 2 * FRAME
BAR_PCT = 2.0
BAR_MS = 40.0
ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- DSP, in this process


def line_audio(seconds: float, seed: int) -> bytes:
    """Noise at about -20 dBm0 with a DTMF digit every second."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 1500, int(seconds * 8000))
    for second in range(int(seconds)):
        tone = np.frombuffer(dtmf_tone("5", 80), dtype="<i2")
        at = second * 8000 + 2000
        samples[at : at + len(tone)] = tone
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def per_frame(kind: str, frames: int, audio: bytes) -> float:
    """CPU seconds per frame of one port of `kind` (fxs or fxo)."""
    plan = plan_for("RU")
    detector = InbandDtmfDetector()
    generator = ToneGenerator(plan.tone("ringback"))
    hook = HookDecoder(plan.flash, plan.pulse)
    progress = ToneDetector(plan) if kind == "fxo" else None
    hook.hook(False, 0.0)
    chunk = 2 * FRAME
    count = len(audio) // chunk
    started = time.process_time()
    for n in range(frames):
        at = (n % count) * chunk
        frame = audio[at : at + chunk]
        detector.feed(frame)
        generator.frame(FRAME)
        hook.poll(n * 20.0)
        if progress is not None:
            progress.feed(frame)
    return (time.process_time() - started) / frames


def callerid_ms(calls: int) -> dict[str, float]:
    """CPU milliseconds to generate and to decode one V.23 caller-ID transmission."""
    message = CallerIdMessage.of("89161234567", "Ivanov Ivan", dt.datetime(2026, 12, 3, 20, 50))
    started = time.process_time()
    for _ in range(calls):
        pcm = fsk_callerid(message, V23)
    generated = time.process_time() - started
    started = time.process_time()
    for _ in range(calls):
        decode_fsk(pcm, V23)
    decoded = time.process_time() - started
    return {"generate_ms": round(1000 * generated / calls, 3),
            "decode_ms": round(1000 * decoded / calls, 3)}  # fmt: skip


def dsp_figures(frames: int, quick: bool) -> tuple[list[dict[str, Any]], dict[str, float]]:
    audio = line_audio(30.0, seed=1)
    ports = []
    print("DSP per 20 ms frame, in this process:")
    for kind in ("fxs", "fxo"):
        per_frame(kind, 50, audio)  # warm up numpy
        cpu = per_frame(kind, frames, audio)
        pct = 100 * cpu / FRAME_S
        ports.append(
            {
                "kind": kind,
                "frames": frames,
                "us_per_frame": round(1e6 * cpu, 1),
                "core_pct_per_port": round(pct, 3),
                "within_bar": pct <= BAR_PCT,
            }
        )
        print(f"  {kind}: {1e6 * cpu:7.1f} µs CPU per 20 ms frame = {pct:.2f} % of one core per "
              f"active port (bar {BAR_PCT} %)")  # fmt: skip
    cid = callerid_ms(5 if quick else 50)
    print(f"  caller ID (V.23, number + name): {cid['generate_ms']} ms to generate, "
          f"{cid['decode_ms']} ms to decode, per call")  # fmt: skip
    return ports, cid


# ---------------------------------------------------------------- audio the bench makes


SILENT_FRAME = bytes(FRAME_BYTES)
BURST_HZ = 1000.0
"""The burst into a microphone; the far phones send theirs at REVERSE_HZ, so that the two
never share a payload on `lo`."""
REVERSE_HZ = 1500.0


def tone_frame(hz: float = BURST_HZ, amplitude: float = 8000.0) -> bytes:
    """One 20 ms frame of a sine, the burst put into a microphone."""
    t = np.arange(FRAME) / 8000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def speech_noise(seconds: float, seed: int) -> bytes:
    """Noise at about -20 dBm0, no digits in it (what a talking handset sends)."""
    rng = np.random.default_rng(seed)
    samples = rng.normal(0, 1500, int(seconds * 8000))
    return np.clip(samples, -32768, 32767).astype("<i2").tobytes()


def dtmf_digits(digits: str) -> bytes:
    """Keypad digits into a microphone: 100 ms each, 100 ms apart."""
    return b"".join(dtmf_tone(d, 100) + bytes(1600) for d in digits)


def loud_pcm(frame: bytes, rms: float = 1000.0) -> bool:
    """Whether 16-bit PCM `frame` holds a burst (not silence)."""
    x = np.frombuffer(frame, dtype="<i2").astype(np.float64)
    return bool(len(x)) and float(np.sqrt(np.mean(x**2))) > rms


def _ulaw_loud_table() -> bytes:
    from appliance.media.codecs import make_decoder

    decoded = np.frombuffer(make_decoder("PCMU").decode(bytes(range(256))), dtype="<i2")
    return bytes(1 if abs(int(v)) > 2000 else 0 for v in decoded)


ULAW_LOUD = _ulaw_loud_table()
"""Per µ-law byte, 1 when it decodes to more than 2000 in magnitude."""


def loud_ulaw(payload: bytes) -> bool:
    """Whether a PCMU payload holds a burst: at least a quarter of its samples loud."""
    return payload.translate(ULAW_LOUD).count(1) >= len(payload) // 4 > 0


def ulaw_frames(pcm: bytes) -> list[bytes]:
    from appliance.media.codecs import make_encoder

    encoded = make_encoder("PCMU").encode(pcm)
    return [encoded[i : i + FRAME] for i in range(0, len(encoded) - FRAME + 1, FRAME)]


def pipe_level(fd: int) -> int:
    """Bytes waiting in the pipe or FIFO `fd` (either end): FIONREAD."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


# ---------------------------------------------------------------- a port's handset


@dataclass
class Burst:
    """One 20 ms burst put into a microphone, and when the gateway took it."""

    frame: bytes
    ahead_bytes: int = -1
    """What waited in the FIFO before it (the simulator's lead, not the gateway's)."""
    written_at: float = 0.0
    unread_at: float = 0.0
    """The last poll that found it still in the FIFO (time.monotonic())."""
    read_at: float = 0.0
    """The first poll that found it gone: the gateway's ALSA read took it in between."""
    end: int = 0
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def read_time(self) -> float:
        """When the gateway read it: the middle of the two polls, ± `read_within`."""
        return (self.unread_at + self.read_at) / 2

    @property
    def read_within(self) -> float:
        return (self.read_at - self.unread_at) / 2


POLL_S = 0.001


class Microphone:
    """A handset's microphone on a port: the FIFO that is the capture PCM's infile, fed 20 ms
    frames at the wall clock's pace `lead` frames ahead of the gateway (its reads would block
    on an empty FIFO). Each frame is the next burst, else the next frame said, else the
    looped background (or silence). Bursts are timed: while one is in the FIFO, its fill
    level is polled every millisecond, and the burst was read when the bytes consumed pass
    its end. Start it before the gateway opens the PCM: opening a FIFO waits for both ends."""

    def __init__(self, fifo: Path, lead: int = 3, periods: int = 4) -> None:
        self.fifo = fifo
        self.lead = lead
        self.capacity = (lead + periods) * FRAME_BYTES
        """What the FIFO may hold: a sound card's capture buffer (the gateway's `periods`)
        holds that much beyond the lead, and past it loses audio (an overrun) instead of
        delaying it. A frame that would go beyond is dropped and counted."""
        self.overruns = 0
        self.written = 0
        self.background = b""
        self._at = 0
        self._said: deque[bytes] = deque()
        self._bursts: deque[Burst] = deque()
        self._pending: list[Burst] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo)
        self._thread = threading.Thread(target=self._run, name=f"mic-{fifo.stem}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def play(self, pcm: bytes) -> None:
        """Loop `pcm` (whole frames) from now on; b"" for silence."""
        with self._lock:
            self.background = pcm[: len(pcm) - len(pcm) % FRAME_BYTES]
            self._at = 0

    def say(self, pcm: bytes) -> None:
        """Queue `pcm` once, padded to whole frames, before the background."""
        pcm += bytes(-len(pcm) % FRAME_BYTES)
        with self._lock:
            self._said.extend(pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES))

    def burst(self, frame: bytes) -> Burst:
        burst = Burst(frame)
        with self._lock:
            self._bursts.append(burst)
        return burst

    def stop(self) -> None:
        self._stop.set()
        try:  # a writer still waiting in open() for the gateway is released by a reader
            fd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK)
        except OSError:
            fd = -1
        self._thread.join(timeout=5)
        if fd >= 0:
            os.close(fd)
        self.fifo.unlink(missing_ok=True)

    def _next(self) -> tuple[bytes, Burst | None]:
        with self._lock:
            if self._bursts:
                burst = self._bursts.popleft()
                return burst.frame, burst
            if self._said:
                return self._said.popleft(), None
            if self.background:
                frame = self.background[self._at : self._at + FRAME_BYTES]
                self._at = (self._at + FRAME_BYTES) % len(self.background)
                return frame, None
        return SILENT_FRAME, None

    def _run(self) -> None:
        try:
            fd = os.open(self.fifo, os.O_WRONLY)
        except OSError:
            return
        try:
            started, count = time.monotonic(), 0
            while not self._stop.is_set():
                frame, burst = self._next()
                level = pipe_level(fd)
                count += 1
                if burst is None and level >= self.capacity:  # the gateway fell behind
                    self.overruns += 1
                    self._pace(fd, started + (count - self.lead) * FRAME_S)
                    continue
                if burst is not None:
                    burst.ahead_bytes = level
                try:
                    os.write(fd, frame)
                except OSError:
                    return  # the gateway closed its end
                self.written += len(frame)
                if burst is not None:
                    burst.written_at, burst.end = time.monotonic(), self.written
                    burst.unread_at = burst.written_at  # a lead of frames is before it
                    self._pending.append(burst)
                self._pace(fd, started + (count - self.lead) * FRAME_S)
        finally:
            os.close(fd)

    def _pace(self, fd: int, due: float) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            if self._pending:
                consumed = self.written - pipe_level(fd)
                for burst in list(self._pending):
                    if consumed < burst.end:
                        burst.unread_at = now
                        continue
                    burst.read_at = now
                    burst.done.set()
                    self._pending.remove(burst)
            if now >= due:
                return
            self._stop.wait(min(due - now, POLL_S) if self._pending else due - now)


class Earpiece:
    """A port's earpiece: the playback PCM's file, each 20 ms frame with the time it was first
    seen there (by `poll`, every millisecond while an `EarpiecePoller` runs)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.frames: list[bytes] = []
        self.times: list[float] = []
        self._file: BinaryIO | None = None
        self._buffer = b""

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def poll(self, now: float) -> None:
        if self._file is None:
            if not self.path.exists():
                return
            self._file = self.path.open("rb")
            self._file.seek(self.size() // FRAME_BYTES * FRAME_BYTES)
        self._buffer += self._file.read()
        while len(self._buffer) >= FRAME_BYTES:
            self.frames.append(self._buffer[:FRAME_BYTES])
            self.times.append(now)
            self._buffer = self._buffer[FRAME_BYTES:]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class EarpiecePoller:
    """Polls earpieces every millisecond in a thread, while in its `with` block."""

    def __init__(self, earpieces: Sequence[Earpiece]) -> None:
        self.earpieces = earpieces
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="earpieces", daemon=True)

    def __enter__(self) -> EarpiecePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for earpiece in self.earpieces:
            earpiece.close()

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            now = time.monotonic()
            for earpiece in self.earpieces:
                earpiece.poll(now)


def written_at(earpiece: Earpiece, index: int, lag: int) -> float | None:
    """When the gateway wrote frame `index` of `earpiece.frames` to the PCM: the file PCM
    puts a frame in its file when the frame `lag` periods later is written, so that is when
    frame `index - lag` appeared. None when that frame was not seen appear."""
    if index - lag < 1:  # frame 0 is what was there when polling started, not a growth
        return None
    return earpiece.times[index - lag]


# ---------------------------------------------------------------- a far phone's media


@dataclass
class FarBurst:
    payload: bytes
    sent_at: float = 0.0
    done: threading.Event = field(default_factory=threading.Event)


class FarPhone:
    """The media of a far phone: an `RtpEndpoint` (tests/interop) records what arrives and
    when; its socket sends a 20 ms PCMU stream from a sender of this bench, which knows to the
    packet when a burst left."""

    def __init__(self) -> None:
        from tests.interop.rtp_endpoint import RtpEndpoint

        self.rtp = RtpEndpoint()
        self.tone: list[bytes] = []
        self.sending_tone = False
        self._bursts: deque[FarBurst] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.rtp.port

    def start(self, remote: tuple[str, int], tone: list[bytes]) -> None:
        self.tone = tone
        self._thread = threading.Thread(target=self._send, args=(remote,), daemon=True)
        self._thread.start()

    def burst(self, payload: bytes) -> FarBurst:
        burst = FarBurst(payload)
        self._bursts.append(burst)
        return burst

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.rtp.close()

    def _send(self, remote: tuple[str, int]) -> None:
        ssrc, seq, ts = struct.unpack("!IHI", os.urandom(10))
        due, n = time.monotonic(), 0
        while not self._stop.is_set():
            burst = self._bursts.popleft() if self._bursts else None
            if burst is not None:
                payload = burst.payload
            elif self.sending_tone and self.tone:
                payload = self.tone[n % len(self.tone)]
            else:
                payload = b"\xff" * FRAME
            header = struct.pack("!BBHII", 0x80, 0x80 if n == 0 else 0, seq, ts, ssrc)
            try:
                self.rtp.sock.sendto(header + payload, remote)
            except OSError:
                return
            if burst is not None:
                burst.sent_at = time.monotonic()
                burst.done.set()
            n, seq, ts = n + 1, (seq + 1) & 0xFFFF, (ts + FRAME) & 0xFFFFFFFF
            due += FRAME_S
            self._stop.wait(max(due - time.monotonic(), 0.0))


# ---------------------------------------------------------------- processes


class Service:
    """A child process of the bench (core, gateway), its output in `log`, optionally pinned
    with taskset (which execs: the same PID); stopped by its PID."""

    def __init__(self, argv: list[str], log: Path, cpu: int | None, env: dict[str, str]) -> None:
        self.log = log
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu), *argv]
        with log.open("wb") as sink:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env={**env, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        self.pid = self.proc.pid

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_line(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.text().splitlines():
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchError(f"{self.log.stem} did not start; its output:\n{self.tail()}")

    def cpu(self) -> float:
        from bench.register_bench import cpu_seconds

        return cpu_seconds(self.pid)

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            return self.proc.wait(timeout=15)


def free_udp_pair() -> int:
    """A UDP port on 127.0.0.1 free together with the next one (the gateway's FXO lines)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
            a.bind(("127.0.0.1", 0))
            port = int(a.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                if port != 5060 and port + 1 != 5060:
                    return port
    raise BenchError("no two free UDP ports in a row on 127.0.0.1")


def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait (bounded) until `check()` holds; BenchError naming `what` if it never does."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


# ---------------------------------------------------------------- the file PCMs themselves


@dataclass(frozen=True)
class Calibration:
    capture_readahead_frames: int
    """Frames an ALSA capture read takes from the FIFO beyond the one it returns."""
    playback_lag_frames: int
    """Periods after a frame is written that the file PCM puts it into its file."""


def calibrate(pcm: str, fifo: Path, outfile: Path) -> Calibration:
    """Measure the file-backed PCM `pcm` (capture from `fifo`, playback to `outfile`) as the
    gateway opens it (`PortAudio`, 20 ms periods): how much a capture read takes from the
    FIFO, and how many writes later a written frame reaches the file."""
    from appliance.lines.audio import PortAudio

    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer that does not wait for the reader
    try:
        for n in range(3):
            os.write(writer, bytes([n + 1]) * FRAME_BYTES)
        with PortAudio(pcm) as audio:
            frame = audio.read_frame()
            if frame != bytes([1]) * FRAME_BYTES:
                got = b"" if frame is None else frame[:4]
                raise BenchError(f"calibration: capture returned {got!r}…, not frame 1")
            readahead = 2 - pipe_level(writer) // FRAME_BYTES
            lag = -1
            for n in range(12):
                audio.write_frame(bytes([n + 1]) * FRAME_BYTES)
                if lag < 0 and outfile.exists() and outfile.stat().st_size:
                    lag = n
            content = outfile.read_bytes() if outfile.exists() else b""
            if lag < 0 or content[:1] != b"\x01":
                raise BenchError(f"calibration: the playback file holds {content[:4]!r}…")
    finally:
        os.close(writer)
        fifo.unlink(missing_ok=True)
    return Calibration(readahead, lag)


# ---------------------------------------------------------------- the gateway part


@dataclass
class Office:
    work: Path
    data: Path
    passwords: dict[str, str]
    gateway_sip: int
    mics: dict[int, Microphone]
    earpieces: dict[int, Earpiece]
    board: SimBoard
    core: Service | None = None
    gateway: Service | None = None
    far: dict[int, FarPhone] = field(default_factory=dict)
    sipps: list[BackgroundSipp] = field(default_factory=list)


def make_data(data: Path, fxo_sip: int) -> dict[str, str]:
    """The office: country RU, far extensions 101 and 102, the demo's ports (1, 2: FXS as 201
    and 202, ETSI FSK caller ID; 3: FXO as trunk city-line, pointed at this gateway)."""
    from appliance.store import extensions, ports, settings, trunks
    from appliance.store.db import open_db

    db = open_db(data)
    try:
        settings.set_value(db, "office.country", "RU")
        passwords = {"101": "Kq7vT9pLm2", "102": "Zr4wX8nQa6"}
        for number, password in passwords.items():
            extensions.add(db, number, f"far phone {number}", password)
        ports.demo_ports(db)
        trunks.update(db, "city-line", server=f"127.0.0.1:{fxo_sip}")
    finally:
        db.conn.close()
    return passwords


def port_states(data: Path) -> dict[int, tuple[str, bool]]:
    from appliance import control

    try:
        status = control.call_at(control.lines_socket_path(data), "status", 2.0)
    except (control.ControlError, OSError, ValueError):
        return {}
    return {int(p["port"]): (str(p.get("state")), bool(p.get("registered")))
            for p in status.get("ports", [])}  # fmt: skip


def cpu_window(office: Office, seconds: float) -> dict[str, Any]:
    """The gateway's CPU over `seconds` of wall time: % of one core (of it system time), and
    its time waiting for a CPU (runnable, not running) in the same window."""
    from bench.register_bench import cpu_times, runqueue_wait

    assert office.gateway is not None
    pid = office.gateway.pid
    (user0, sys0), wait0, t0 = cpu_times(pid), runqueue_wait(pid), time.monotonic()
    time.sleep(seconds)
    (user1, sys1), wait1, t1 = cpu_times(pid), runqueue_wait(pid), time.monotonic()
    wall, cpu = t1 - t0, (user1 - user0) + (sys1 - sys0)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 3),
            "core_pct": round(100 * cpu / wall, 3),
            "sys_pct": round(100 * (sys1 - sys0) / wall, 3),
            "cpu_wait_pct": round(100 * (wait1 - wait0) / wall, 2)}  # fmt: skip


def summary(values: Sequence[float]) -> dict[str, float | int]:
    """Median, min and max of `values` (seconds) in ms."""
    if not values:
        return {"n": 0}
    ms = [1000 * v for v in values]
    return {"n": len(ms), "median_ms": round(statistics.median(ms), 1) + 0.0,  # never -0.0
            "min_ms": round(min(ms), 1) + 0.0, "max_ms": round(max(ms), 1) + 0.0}  # fmt: skip


def start_office(work: Path) -> Office:
    from appliance.lines import protocol as p
    from appliance.lines.boards import load_profile, shipped_profiles

    data = work / "var"
    gateway_sip = free_udp_pair()
    passwords = make_data(data, gateway_sip + 1)
    profile = load_profile(shipped_profiles()["sim"])
    audio, mics, earpieces = [], {}, {}
    for port in profile.ports:
        mic = Microphone(work / f"{port.pcm}.mic")
        outfile = work / f"{port.pcm}.out.raw"
        audio.append(SimAudioPort(port.pcm, mic.fifo, outfile))
        mics[port.number], earpieces[port.number] = mic, Earpiece(outfile)
    calibration_port = SimAudioPort("bench_calibration", work / "cal.mic", work / "cal.out.raw")
    asoundrc = write_asoundrc(work / "asoundrc", [*audio, calibration_port])
    os.environ["ALSA_CONFIG_PATH"] = str(asoundrc)  # before this process opens any PCM
    tty = work / "ttySIM"
    board = SimBoard(tty, [p.FXS, p.FXS, p.FXO])
    return Office(work, data, passwords, gateway_sip, mics, earpieces, board)


def run_gateway_part(args: argparse.Namespace) -> dict[str, Any]:
    from bench.calls_bench import code_version
    from bench.register_bench import busy_cpu_pct

    for tool in ("sipp", "taskset"):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed (Debian: sip-tester, util-linux)")
    cpus = sorted(os.sched_getaffinity(0))
    gateway_cpu = args.gateway_cpu if len(cpus) > 1 else None
    others = [c for c in cpus if c != gateway_cpu] or cpus
    busy = busy_cpu_pct(1.0)
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-lines-"))
    print(f"\nGateway process (pbx-lines): data in {work}; machine {busy:.1f} % busy before "
          f"the run", flush=True)  # fmt: skip
    if busy > 10:
        print(f"warning: the machine is already {busy:.0f} % busy: the gateway shares its CPU",
              flush=True)  # fmt: skip
    os.sched_setaffinity(0, others)  # this process, and every child but the gateway
    office: Office | None = None
    result: dict[str, Any] = {
        "config": {
            "in_call_s": args.duration, "idle_s": args.idle, "bursts": args.bursts,
            "gateway_cpu": gateway_cpu, "other_cpus": others, "country": "RU",
            "board": "sim (2 FXS + 1 FXO)", "code": code_version(),
        },
        "machine_busy_before_pct": round(busy, 1),
    }  # fmt: skip
    try:
        office = start_office(work)
        calibration = calibrate("bench_calibration", work / "cal.mic", work / "cal.out.raw")
        result["calibration"] = calibration.__dict__
        measure_office(office, args, result, calibration, gateway_cpu)
    except AssertionError as exc:  # what the sipp helpers (tests/interop) raise
        raise BenchError(str(exc)[-3000:]) from None
    finally:
        if office is not None:
            stop_office(office)
        os.sched_setaffinity(0, cpus)
        if args.keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def measure_office(
    office: Office,
    args: argparse.Namespace,
    result: dict[str, Any],
    calibration: Calibration,
    gateway_cpu: int | None,
) -> None:
    """Start the core and the gateway, then measure: idle, dial tone, the two calls' set-up,
    both calls up, the bursts; hang up."""
    target = start_services(office, gateway_cpu)
    data = office.data

    # -- idle: every port on hook; the FXO line's caller-ID receiver runs on every frame
    time.sleep(1.0)
    idle = cpu_window(office, args.idle)
    result["idle"] = idle
    print(f"  idle (3 ports on hook): {idle['core_pct']:.2f} % of one core{waited(idle)}",
          flush=True)  # fmt: skip

    # -- dial tone: both FXS handsets lifted, noise in their microphones
    for n in (1, 2):
        office.mics[n].play(speech_noise(10.0, seed=n))
        office.board.offhook(n)
    until(lambda: states_of(data) == ["dialtone", "dialtone"], 10, "dial tone on ports 1, 2")
    dial = cpu_window(office, args.idle)
    dial["per_port_pct"] = round(dial["core_pct"] / 2, 3)
    dial["states_after"] = states_of(data)
    result["dialtone"] = dial
    print(f"  dial tone (ports 1, 2 off hook, DTMF detection on): {dial['core_pct']:.2f} % "
          f"= {dial['per_port_pct']:.2f} % per port{waited(dial)}", flush=True)  # fmt: skip
    if dial["states_after"] != ["dialtone", "dialtone"]:
        print(f"  warning: the ports left dial tone: {dial['states_after']}", flush=True)
    office.board.onhook(2)
    for mic in office.mics.values():
        mic.play(b"")

    result["setups"], result["caller_id_frames_before_ring"] = set_up_calls(office, target, args)

    # -- both FXS ports in calls, audio both ways
    for n, far in office.far.items():
        office.mics[n].play(speech_noise(10.0, seed=10 + n))
        far.sending_tone = True
    time.sleep(1.0)
    got = {n: far.rtp.mark() for n, far in office.far.items()}
    heard = {n: office.earpieces[n].size() for n in office.far}
    missed = {n: office.mics[n].overruns for n in office.far}
    in_call = cpu_window(office, args.duration)
    wall = in_call["wall_s"]
    in_call["per_port_pct"] = round(in_call["core_pct"] / 2, 3)
    in_call["marginal_per_port_pct"] = round((in_call["core_pct"] - idle["core_pct"]) / 2, 3)
    in_call["states_after"] = states_of(data)
    in_call["rtp_packets_per_s_at_far_phones"] = [
        round((far.rtp.mark() - got[n]) / wall, 1) for n, far in office.far.items()]  # fmt: skip
    in_call["earpiece_frames_per_s"] = [
        round((office.earpieces[n].size() - heard[n]) / FRAME_BYTES / wall, 1)
        for n in office.far]  # fmt: skip
    in_call["capture_overruns"] = [office.mics[n].overruns - missed[n] for n in office.far]
    result["in_call"] = in_call
    print(f"  in call (ports 1, 2, audio both ways): {in_call['core_pct']:.2f} % of one core "
          f"= {in_call['per_port_pct']:.2f} % per active port (bar {BAR_PCT} %); "
          f"above idle {in_call['marginal_per_port_pct']:.2f} % per port{waited(in_call)}; "
          f"RTP at the far phones {in_call['rtp_packets_per_s_at_far_phones']} packets/s, "
          f"earpieces {in_call['earpiece_frames_per_s']} frames/s; capture frames the gateway "
          f"did not read in time {in_call['capture_overruns']}", flush=True)  # fmt: skip
    if in_call["states_after"] != ["in-call", "in-call"]:
        print(f"  warning: the calls did not stay up: {in_call['states_after']}", flush=True)

    # -- latency: bursts both ways, in silence
    for n, far in office.far.items():
        office.mics[n].play(b"")
        far.sending_tone = False
    result["latency"] = measure_latency(office, args.bursts, calibration)
    result["capture_overruns_in_run"] = {n: mic.overruns for n, mic in office.mics.items()}

    # -- hang up: the gateway sends BYE; both sipps end their one call
    for n in (1, 2):
        office.board.onhook(n)
    for sipp in office.sipps:
        with contextlib.suppress(AssertionError):
            sipp.wait(timeout=15)
    assert office.gateway is not None
    if office.gateway.proc.poll() is not None:
        raise BenchError("the gateway exited during the run:\n" + office.gateway.tail())


def start_services(office: Office, gateway_cpu: int | None) -> tuple[str, int]:
    """The core (`pbx run`), the board, the handsets' microphones and the gateway (as `pbx
    lines run` starts it), until both FXS ports are registered; the core's SIP address."""
    from appliance.cli_lines import gateway_argv
    from appliance.lines.boards import shipped_profiles
    from bench.register_bench import READY_PREFIX

    work, data = office.work, office.data
    argv = [sys.executable, "-m", "appliance", "--data", str(data), "run", "--sip",
            "127.0.0.1:0", "--tls", "0"]  # fmt: skip
    office.core = core = Service(argv, work / "core.log", None, dict(os.environ))
    line = core.wait_line(READY_PREFIX, 30)
    core_port = int(line[len(READY_PREFIX) :].split(",")[0].rpartition(":")[2])
    for mic in office.mics.values():
        mic.start()
    office.board.start()
    argv = gateway_argv(data, str(shipped_profiles()["sim"]), office.gateway_sip,
                        f"127.0.0.1:{core_port}")  # fmt: skip
    argv += ["--device", str(work / "ttySIM")]
    office.gateway = gateway = Service(argv, work / "gateway.log", gateway_cpu, dict(os.environ))
    gateway.wait_line("pbx-lines: ready on ", 30)

    def registered() -> bool:
        states = port_states(data)
        return all(states.get(n, ("", False)) == ("idle", True) for n in (1, 2))

    until(registered, 30, "ports 1 and 2 to register to the core")
    print(f"  core pid {core.pid} on 127.0.0.1:{core_port}; gateway pid {gateway.pid} "
          f"(CPU {gateway_cpu}) on 127.0.0.1:{office.gateway_sip}; both FXS ports registered",
          flush=True)  # fmt: skip
    return "127.0.0.1", core_port


def set_up_calls(
    office: Office, target: tuple[str, int], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], int]:
    """Port 1 dials 101 by in-band DTMF (sipp answers as 101); 102 calls port 2, which hears
    ETSI FSK caller ID before its first ring and is picked up. Each set-up's gateway CPU, and
    the frames of caller ID port 2's handset heard."""
    from tests.interop.sipp import (
        BackgroundSipp,
        credentials,
        free_media_port,
        free_port,
        run_sipp,
    )

    work, data = office.work, office.data
    assert office.gateway is not None
    gateway = office.gateway
    lifetime = 60 + args.idle * 2 + args.duration + 4 * args.bursts
    far1, far2 = FarPhone(), FarPhone()
    office.far = {1: far1, 2: far2}
    sipp1_port = free_port()
    run = run_sipp("register.xml", target,
                   [["101", credentials("101", office.passwords["101"]), 300]],
                   workdir=work, port=sipp1_port)  # fmt: skip
    if run.returncode != 0:
        raise BenchError("sipp could not register 101:\n" + run.describe()[-2000:])
    uas = BackgroundSipp("pj_uas_answer.xml", target, [["101", "", far1.port, "", 1000]],
                         workdir=work, port=sipp1_port, media_port=free_media_port(),
                         timeout=lifetime)  # fmt: skip
    office.sipps.append(uas)
    uas.start()
    until(lambda: states_of(data)[1] == "idle", 5, "port 2 back on hook")
    cpu0, t0 = gateway.cpu(), time.monotonic()
    office.mics[1].say(dtmf_digits("101"))
    core_media1 = uas.wait_media_port(timeout=15)
    until(lambda: states_of(data)[0] == "in-call", 15, "port 1's call")
    setup1 = {"port": 1, "how": "dialled 101 by in-band DTMF",
              "cpu_ms": round(1000 * (gateway.cpu() - cpu0), 1),
              "wall_s": round(time.monotonic() - t0, 2)}  # fmt: skip
    far1.start(("127.0.0.1", core_media1), ulaw_frames(sine_pcm(1000.0, 1.0)))

    row: list[str | int] = ["102", credentials("102", office.passwords["102"]), far2.port,
                            "202", 1000]  # fmt: skip
    uac = BackgroundSipp("pj_uac_answer.xml", target, [row], workdir=work, port=free_port(),
                         media_port=free_media_port(), timeout=lifetime)  # fmt: skip
    office.sipps.append(uac)
    cpu0, t0, before = gateway.cpu(), time.monotonic(), office.earpieces[2].size()
    uac.start()
    if not office.board.wait_for(lambda: 2 in office.board.ringing, 15):
        raise BenchError("port 2 never rang for 102's call\n" + gateway.tail())
    fsk_frames = loud_frames(office.earpieces[2].path, before, threshold=300.0)
    office.board.offhook(2)
    core_media2 = uac.wait_media_port(timeout=15)
    until(lambda: states_of(data)[1] == "in-call", 15, "port 2's call")
    setup2 = {"port": 2, "how": "called by 102, ETSI FSK caller ID, picked up at the ring",
              "cpu_ms": round(1000 * (gateway.cpu() - cpu0), 1),
              "wall_s": round(time.monotonic() - t0, 2)}  # fmt: skip
    far2.start(("127.0.0.1", core_media2), ulaw_frames(sine_pcm(600.0, 1.0)))
    for s in (setup1, setup2):
        print(f"  set-up, port {s['port']} ({s['how']}): {s['cpu_ms']} ms CPU over "
              f"{s['wall_s']} s", flush=True)  # fmt: skip
    print(f"  port 2's handset heard {fsk_frames} frames (20 ms) of caller-ID FSK before the "
          "ring", flush=True)  # fmt: skip
    return [setup1, setup2], fsk_frames


def states_of(data: Path) -> list[str]:
    """The FXS ports' states, port 1 first ("?" for one the gateway does not report)."""
    states = port_states(data)
    return [states.get(n, ("?", False))[0] for n in (1, 2)]


def waited(window: dict[str, Any]) -> str:
    """The window's system time and, when it matters, its wait for a CPU, as printed."""
    text = f" (of it sys {window['sys_pct']:.2f} %"
    wait = window.get("cpu_wait_pct", 0.0)
    return text + (f"; waited for a CPU {wait:.1f} % of the time)" if wait >= 0.5 else ")")


def loud_frames(path: Path, since: int, threshold: float) -> int:
    """How many 20 ms frames of the file `path` from byte `since` on hold a signal."""
    with path.open("rb") as f:
        f.seek(since - since % FRAME_BYTES)
        data = f.read()
    return sum(loud_pcm(data[i : i + FRAME_BYTES], threshold)
               for i in range(0, len(data) - FRAME_BYTES + 1, FRAME_BYTES))  # fmt: skip


def sine_pcm(hz: float, seconds: float, amplitude: float = 6000.0) -> bytes:
    t = np.arange(int(8000 * seconds)) / 8000
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype("<i2").tobytes()


def measure_latency(office: Office, bursts: int, calibration: Calibration) -> dict[str, Any]:
    """`bursts` bursts per FXS port each way; each timed at the ALSA side, on `lo` (the
    gateway's own packet), and at the far phone."""
    from bench.calls_bench import Capture, Processes, ensure_tcpdump

    work = office.work
    lag = calibration.playback_lag_frames
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    procs = Processes()
    try:
        capture: Capture | None = None
        try:
            # Exactly one 20 ms PCMU packet on Ethernet-framed lo: 14 + 20 + 8 + 12 + 160.
            capture = Capture(procs, ensure_tcpdump(install=False), work / "lo.pcap",
                              "udp and greater 214 and less 214", 256, None,
                              immediate=True)  # fmt: skip
        except BenchError as exc:
            notes.append(f"no capture on lo ({exc}): the gateway's own share is not split out")
        real_minus_mono = time.time() - time.monotonic()
        time.sleep(0.5)  # the jitter buffers drain the tone
        with EarpiecePoller([office.earpieces[n] for n in office.far]):
            time.sleep(0.2)
            for i in range(bursts):
                for n, far in office.far.items():
                    rows.append(burst_to_rtp(office, n, far, i))
                    time.sleep(0.1)
                    rows.append(burst_from_rtp(office, n, far, i, lag))
                    time.sleep(0.1)
        drift = (time.time() - time.monotonic()) - real_minus_mono
        if capture is not None:
            time.sleep(0.3)  # the last packets into the file
            dropped = capture.stop()
            far_ports = {far.port for far in office.far.values()}
            match_capture(rows, capture.datagrams(), real_minus_mono, far_ports)
            if dropped:
                notes.append(f"the capture dropped {dropped} packets")
            if abs(drift) > 0.001:
                notes.append(f"the wall clock moved {1000 * drift:.1f} ms against the "
                             "monotonic one: capture times are off by that")  # fmt: skip
    finally:
        procs.stop_all()
    for row in rows:  # the matching's working values, not figures
        for key in ("payload", "read_at", "sent_at", "written_at"):
            row.pop(key, None)
    fwd = [r for r in rows if r["direction"] == "alsa->rtp"]
    rev = [r for r in rows if r["direction"] == "rtp->alsa"]
    figures: dict[str, Any] = {
        "alsa_to_rtp": {
            "gateway": summary([r["gateway_s"] for r in fwd if r.get("gateway_s") is not None]),
            "to_far_phone": summary([r["far_s"] for r in fwd if r.get("far_s") is not None]),
            "core_relay": summary([r["relay_s"] for r in fwd if r.get("relay_s") is not None]),
            "simulator_lead": summary([r["lead_s"] for r in fwd if r.get("lead_s") is not None]),
            "read_known_within_ms": round(
                1000 * max((r.get("read_within_s", 0.0) for r in fwd), default=0.0), 2
            ),
            "lost": sum(1 for r in fwd if r.get("far_s") is None),
        },
        "rtp_to_alsa": {
            "gateway": summary([r["gateway_s"] for r in rev if r.get("gateway_s") is not None]),
            "from_far_phone": summary([r["far_s"] for r in rev if r.get("far_s") is not None]),
            "core_relay": summary([r["relay_s"] for r in rev if r.get("relay_s") is not None]),
            "lost": sum(1 for r in rev if r.get("far_s") is None),
        },
        "bursts": rows,
        "notes": notes,
    }
    return figures


def burst_to_rtp(office: Office, port: int, far: FarPhone, i: int) -> dict[str, Any]:
    """A burst into port `port`'s microphone, timed to its RTP packet at the far phone."""
    from tests.feed import FeedClosed

    row: dict[str, Any] = {"direction": "alsa->rtp", "port": port, "burst": i}
    mark = far.rtp.mark()
    burst = office.mics[port].burst(tone_frame())
    if not burst.done.wait(2.0):
        row["error"] = "the gateway did not read the burst within 2 s"
        return row
    row["lead_s"] = burst.read_time - burst.written_at
    row["read_at"], row["read_within_s"] = burst.read_time, burst.read_within
    try:
        packet, _, after = far.rtp.packets.wait(lambda p: loud_ulaw(p.payload), 1.0, mark)
    except FeedClosed as exc:
        row["error"] = f"no burst at the far phone: {exc}"
        return row
    row["far_s"] = far.rtp.arrivals[after - 1] - burst.read_time
    row["payload"] = packet.payload.hex()
    return row


def burst_from_rtp(office: Office, port: int, far: FarPhone, i: int, lag: int) -> dict[str, Any]:
    """A burst in the far phone's RTP, timed to the gateway writing it to the earpiece."""
    row: dict[str, Any] = {"direction": "rtp->alsa", "port": port, "burst": i}
    earpiece = office.earpieces[port]
    mark = len(earpiece.frames)
    payload = ulaw_frames(tone_frame(REVERSE_HZ))[0]
    sent = far.burst(payload)
    if not sent.done.wait(1.0):
        row["error"] = "the far phone did not send"
        return row
    row["sent_at"] = sent.sent_at
    row["payload"] = payload.hex()
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        frames = earpiece.frames
        found = next((k for k in range(mark, len(frames)) if loud_pcm(frames[k])), None)
        if found is not None:
            at = written_at(earpiece, found, lag)
            if at is None:
                row["error"] = "the burst's write was not seen"
            else:
                row["far_s"] = at - sent.sent_at
                row["written_at"] = at
            return row
        time.sleep(0.01)
    row["error"] = "no burst in the earpiece within 1.5 s"
    return row


SLACK_S = 0.005
"""How much earlier than a burst's start its packet may be seen: the start is polled (1 ms)."""


def match_capture(
    rows: list[dict[str, Any]],
    datagrams: Sequence[Datagram],
    real_minus_mono: float,
    far_ports: set[int],
) -> None:
    """Add to each burst the time its packet crossed `lo` between gateway and core, from a
    capture (`datagrams`, wall-clock times; `real_minus_mono` converts them): toward the
    core, the first packet after the ALSA read with the payload that reached the far phone,
    neither from nor to a far phone (`far_ports`); toward the gateway, the first packet after
    the far phone's send with the burst's payload, neither from nor to a far phone. Adds
    `gateway_s` (the gateway's own share) and `relay_s` (the core's)."""
    seen = [(d.time - real_minus_mono, d) for d in datagrams if len(d.payload) == 12 + FRAME]
    for row in rows:
        payload = bytes.fromhex(row.get("payload", ""))
        if not payload or "far_s" not in row:
            continue
        forward = row["direction"] == "alsa->rtp"
        start = row["read_at"] if forward else row["sent_at"]
        inner: list[float] = []
        outer: list[float] = []
        for t, d in seen:
            if t < start - SLACK_S or d.payload[12:] != payload:
                continue
            far = d.src[1] in far_ports or d.dst[1] in far_ports
            (outer if far else inner).append(t)
        if not inner:
            continue
        if forward:
            row["gateway_s"] = inner[0] - start
            if outer:
                row["relay_s"] = outer[0] - inner[0]
        else:
            row["gateway_s"] = row["written_at"] - inner[0]
            row["relay_s"] = inner[0] - start


def stop_office(office: Office) -> None:
    for sipp in office.sipps:
        sipp.kill()
    for far in office.far.values():
        far.close()
    if office.gateway is not None:
        office.gateway.stop()
    if office.core is not None:
        office.core.stop()
    with contextlib.suppress(Exception):
        office.board.stop()
    for mic in office.mics.values():
        mic.stop()


def report_latency(latency: dict[str, Any], calibration: dict[str, int]) -> None:
    def fmt(s: dict[str, Any]) -> str:
        if not s.get("n"):
            return "not measured"
        return f"median {s['median_ms']} ms, max {s['max_ms']} ms (n={s['n']})"

    fwd, rev = latency["alsa_to_rtp"], latency["rtp_to_alsa"]
    print("  latency, handset -> far phone (ALSA read of the burst -> its RTP):")
    print(f"    gateway (ALSA read -> packet on lo to the core): {fmt(fwd['gateway'])} "
          f"(bar {BAR_MS:g} ms)")  # fmt: skip
    print(f"    to the far phone's socket (through the core):    {fmt(fwd['to_far_phone'])}")
    print(f"    of it the core's relay:                           {fmt(fwd['core_relay'])}")
    print(f"    not counted, the simulator's FIFO lead:           {fmt(fwd['simulator_lead'])}")
    print(f"    (the ALSA read is timed to ± {fwd['read_known_within_ms']} ms: the FIFO is polled; "
          "about 0 means the frame leaves in the tick that read it)")  # fmt: skip
    print("  latency, far phone -> handset (its RTP -> the gateway's ALSA write):")
    print(f"    gateway (packet on lo from the core -> ALSA write): {fmt(rev['gateway'])} "
          f"(bar {BAR_MS:g} ms)")  # fmt: skip
    print(f"    from the far phone's send (through the core):       {fmt(rev['from_far_phone'])}")
    print(f"    of it the core's relay:                             {fmt(rev['core_relay'])}")
    print(f"  bursts lost: {fwd['lost']} to RTP, {rev['lost']} to ALSA; the file PCM writes a "
          f"frame {calibration['playback_lag_frames']} periods late and capture reads "
          f"{calibration['capture_readahead_frames']} frames ahead (both measured, allowed "
          f"for)")  # fmt: skip
    for note in latency["notes"]:
        print(f"  note: {note}")
    print("  not measurable here: a sound card's own buffering around these (waiting up to "
          "one 20 ms period for the gateway's tick on capture; the playback queue, up to the "
          "gateway's 4 periods)")  # fmt: skip


def bars(gateway: dict[str, Any]) -> dict[str, Any]:
    lat = gateway["latency"]
    one_way = [lat["alsa_to_rtp"]["gateway"], lat["rtp_to_alsa"]["gateway"]]
    return {
        "cpu_per_active_port_pct": gateway["in_call"]["per_port_pct"],
        "cpu_within_bar": gateway["in_call"]["per_port_pct"] <= BAR_PCT,
        "latency_max_ms": [s.get("max_ms") for s in one_way],
        "latency_within_bar": all(s.get("n") and s["max_ms"] <= BAR_MS for s in one_way),
    }


# ---------------------------------------------------------------- the command


def machine_info() -> dict[str, Any]:
    from bench.register_bench import machine_info as base

    return {**base(), "numpy": np.__version__}


def bounded(low: float, high: float, kind: type = float) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        value = kind(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text}: from {low:g} to {high:g}")
        return value

    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--frames", type=int, default=15000, help="DSP: frames per port kind (5 min)"
    )
    parser.add_argument(
        "--duration",
        type=bounded(1, 300),
        default=30.0,
        metavar="S",
        help="gateway: seconds both FXS ports are measured in calls (30)",
    )
    parser.add_argument(
        "--idle",
        type=bounded(1, 120),
        default=10.0,
        metavar="S",
        help="gateway: seconds of the idle and the dial-tone windows (10)",
    )
    parser.add_argument(
        "--bursts",
        type=bounded(1, 50, int),
        default=10,
        metavar="N",
        help="gateway: latency bursts per FXS port and direction (10)",
    )
    parser.add_argument(
        "--gateway-cpu",
        type=int,
        default=0,
        metavar="N",
        help="the CPU the gateway is pinned to (0); the rest run on the others",
    )
    parser.add_argument("--no-gateway", action="store_true", help="the DSP part only")
    parser.add_argument("--keep", action="store_true", help="keep the gateway part's files")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke run: 1000 frames, 3 s in calls, 2 s idle, 2 bursts",
    )
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.duration, args.idle, args.bursts = 1000, 3.0, 2.0, 2
    ports, cid = dsp_figures(args.frames, args.quick)
    figures: dict[str, Any] = {"machine": machine_info(), "ports": ports, "callerid": cid}
    status = 0
    if not args.no_gateway:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on the way out
        try:
            gateway = run_gateway_part(args)
        except BenchError as exc:
            print(f"bench/lines: gateway part failed: {exc}", file=sys.stderr)
            figures["gateway"] = {"error": str(exc)}
            status = 2
        else:
            report_latency(gateway["latency"], gateway["calibration"])
            overruns = gateway["capture_overruns_in_run"]
            print(
                f"  capture frames the gateway did not read in time over the run (its clock "
                f"skipped ticks; a sound card would have lost them), by port: {overruns}"
            )
            gateway["bars"] = bars(gateway)
            figures["gateway"] = gateway
            b = gateway["bars"]
            print(
                f"  bars: CPU per active port {b['cpu_per_active_port_pct']:.2f} % "
                f"({'within' if b['cpu_within_bar'] else 'MISSED'}, {BAR_PCT} %); one-way "
                f"max {b['latency_max_ms']} ms ("
                f"{'within' if b['latency_within_bar'] else 'MISSED'}, {BAR_MS:g} ms)"
            )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return status
