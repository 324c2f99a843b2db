"""Media engine benchmark: CPU-seconds per call-second of the box's media engine for relayed
unrecorded calls, recorded calls, and callers hearing a prompt while pressing digits, with the
recordings' bytes per call-hour and every digit checked (`bench/media --help`).

The box is a child process (`bench/media box ...`) running one `MediaEngine` on uvloop, as
the core does; this process plays the phones: one UDP socket per leg on 127.0.0.1, sending
20 ms µ-law packets of a tone paced on absolute deadlines, reading what the box sends.
Per case and call count, after a warm-up, the box's CPU (utime + stime of all its threads,
/proc) over a measuring window is divided by calls x window. In the prompt case each caller
hears a prompt in a loop and keys a 4-digit code as RFC 4733 events (one press every 300 ms,
callers staggered); the box collects 4 digits at a time and reports them; a digit is missed
when what the box collected differs from what the caller keyed. Nothing is asserted: figures
are printed and, with --json, written as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.register_bench import cpu_seconds

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

HOST = "127.0.0.1"
PROMPT = Path("/usr/share/asterisk/sounds/en_US_f_Allison/vm-intro.wav")
CASES = ("relay", "record", "prompt")
PRESS_GAP = 0.3
"""Seconds between a caller's key presses."""


@dataclass
class Figures:
    case: str
    calls: int
    window_s: float
    cpu_s: float
    cpu_per_call_second: float
    packets_to_phones: int
    digits_keyed: int = 0
    digits_missed: int = 0
    recording_bytes_per_call_hour: float = 0.0
    loop_cpu_per_call_second: float = 0.0
    """The box's event-loop thread alone (the rest is the recordings' writer thread)."""


def loop_cpu_seconds(pid: int) -> float:
    """utime + stime of the main thread (the event loop) of process `pid`, in seconds."""
    text = Path(f"/proc/{pid}/task/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- the box (child process) ------------------------------------------------------------------


async def box(case: str, calls: int, work: Path, port_min: int) -> None:
    from appliance.media import sources
    from appliance.media.engine import Codec, MediaEngine, MediaLeg

    engine = MediaEngine(HOST, port_min, port_min + 4 * calls + 100)
    engine.start()
    loop = asyncio.get_running_loop()
    per_call = 1 if case == "prompt" else 2
    legs = [engine.open_leg() for _ in range(calls * per_call)]
    print(json.dumps({"ports": [leg.port for leg in legs]}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    phones = json.loads(await reader.readline())["phones"]
    for leg, port in zip(legs, phones, strict=True):
        leg.set_remote(HOST, port)
        leg.set_codec(Codec("PCMU", 0, 101))
    recordings: list[Any] = []
    closed: list[Any] = []
    if case in ("relay", "record"):
        for i in range(calls):
            legs[2 * i].connect(legs[2 * i + 1])
            if case == "record":
                path = work / f"call-{i}.opus"
                recordings.append(engine.record(path, legs[2 * i], legs[2 * i + 1],
                                                on_closed=closed.append))  # fmt: skip
    else:

        def menu(i: int, leg: MediaLeg) -> None:
            def done(digits: str, reason: str) -> None:
                print(json.dumps({"caller": i, "digits": digits, "reason": reason}), flush=True)
                menu(i, leg)

            leg.play(sources.loop(lambda: sources.prompt(PROMPT)))
            leg.collect(done, max_digits=4, first_timeout=30, inter_timeout=5, terminator=None)

        for i, leg in enumerate(legs):
            menu(i, leg)
    print(json.dumps({"ready": True}), flush=True)
    await reader.readline()  # "stop"
    for rec in recordings:
        rec.stop()
    deadline = loop.time() + 30
    while len(closed) < len(recordings) and loop.time() < deadline:
        await asyncio.sleep(0.05)
    print(json.dumps({"bytes": sum(r.bytes for r in closed),
                      "seconds": sum(r.seconds for r in closed)}), flush=True)  # fmt: skip
    engine.close()


# -- the phones (this process) ----------------------------------------------------------------


def tone_frames(freq: float) -> list[bytes]:
    import math

    frames = []
    for k in range(50):
        pcm = struct.pack(
            "<160h",
            *(
                round(6000 * math.sin(2 * math.pi * freq * (160 * k + n) / 8000))
                for n in range(160)
            ),
        )
        frames.append(audioop.lin2ulaw(pcm, 2))
    return frames


def event(seq: int, ts: int, ssrc: int, digit: int, end: bool, duration: int,
          marker: bool) -> bytes:  # fmt: skip
    head = struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | 101, seq, ts, ssrc)
    return head + struct.pack("!BBH", digit, (0x80 if end else 0) | 10, duration)


async def run_case(case: str, calls: int, warmup: float, window: float, work: Path,
                   port_min: int) -> Figures:  # fmt: skip
    loop = asyncio.get_running_loop()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve().parent / "media"), "box", case, str(calls),
        str(work), str(port_min), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    socks: list[socket.socket] = []
    try:
        ports = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))["ports"]
        received = [0]

        def drain(sock: socket.socket) -> None:
            for _ in range(64):
                try:
                    sock.recv(2048)
                except BlockingIOError:
                    return
                received[0] += 1

        for _ in ports:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind((HOST, 0))
            sock.setblocking(False)
            loop.add_reader(sock.fileno(), drain, sock)
            socks.append(sock)
        proc.stdin.write((json.dumps({"phones": [s.getsockname()[1] for s in socks]}) + "\n")
                         .encode())  # fmt: skip
        await proc.stdin.drain()
        assert json.loads(await asyncio.wait_for(proc.stdout.readline(), 30)) == {"ready": True}
        results: list[dict[str, Any]] = []

        async def read_results() -> None:
            while line := await proc.stdout.readline():  # type: ignore[union-attr]
                results.append(json.loads(line))

        reader = loop.create_task(read_results())
        frames = tone_frames(440)
        rng = random.Random(7)
        codes = ["".join(rng.choice("0123456789*#") for _ in range(4)) for _ in socks]
        # each caller's presses: (tick, digit); callers staggered over the first second
        press_ticks = PRESS_GAP / 0.02
        plan: dict[int, list[tuple[int, int, int]]] = {}
        if case == "prompt":
            first = int(warmup / 0.02)
            for i, code in enumerate(codes):
                t0 = first + i * 50 // max(1, len(socks))
                for k, ch in enumerate(code):
                    plan.setdefault(t0 + int(k * press_ticks), []).append(
                        (i, "0123456789*#".index(ch), k)
                    )
        ssrc = [0x1000 + i for i in range(len(socks))]
        seq = [0] * len(socks)
        events: list[tuple[int, int, int, int]] = []  # (caller, digit, ts, step)
        total = int((warmup + window) / 0.02) + (int(5 * press_ticks) if case == "prompt" else 0)
        start = loop.time()
        cpu0 = t_cpu0 = main0 = main1 = 0.0
        cpu1: float | None = None
        t_cpu1 = 0.0
        for tick in range(total):
            if tick == int(warmup / 0.02):
                cpu0, t_cpu0 = cpu_seconds(proc.pid), time.monotonic()
                main0 = loop_cpu_seconds(proc.pid)
            if tick == int((warmup + window) / 0.02):
                cpu1, t_cpu1 = cpu_seconds(proc.pid), time.monotonic()
                main1 = loop_cpu_seconds(proc.pid)
            for i, d, _k in plan.pop(tick, []):
                events.append((i, d, 160 * tick, 0))
            active = {e[0]: e for e in events}
            for i, (sock, port) in enumerate(zip(socks, ports, strict=True)):
                seq[i] = (seq[i] + 1) & 0xFFFF
                e = active.get(i)
                if e is not None:
                    _, d, ts, step = e
                    end = step >= 3
                    pkt = event(seq[i], ts, ssrc[i], d, end, 160 * (step + 1), step == 0)
                    for _ in range(3 if end else 1):
                        sock.sendto(pkt, (HOST, port))
                else:
                    head = struct.pack("!BBHII", 0x80, 0, seq[i], 160 * tick, ssrc[i])
                    sock.sendto(head + frames[tick % 50], (HOST, port))
            events = [(i, d, ts, s + 1) for i, d, ts, s in events if s < 3]
            await asyncio.sleep(max(0.0, start + 0.02 * (tick + 1) - loop.time()))
        if cpu1 is None:
            cpu1, t_cpu1 = cpu_seconds(proc.pid), time.monotonic()
            main1 = loop_cpu_seconds(proc.pid)
        deadline = loop.time() + 10
        while case == "prompt" and len(results) < len(socks) and loop.time() < deadline:
            await asyncio.sleep(0.05)
        proc.stdin.write(b"stop\n")
        await proc.stdin.drain()
        await asyncio.wait_for(reader, 60)
        await asyncio.wait_for(proc.wait(), 30)
        cpu = cpu1 - cpu0
        span = t_cpu1 - t_cpu0
        figures = Figures(case, calls, round(span, 2), round(cpu, 3),
                          round(cpu / (calls * span), 5), received[0])  # fmt: skip
        figures.loop_cpu_per_call_second = round((main1 - main0) / (calls * span), 5)
        if case == "prompt":
            got = {r["caller"]: r["digits"] for r in results if "caller" in r}
            figures.digits_keyed = 4 * len(codes)
            figures.digits_missed = sum(
                sum(1 for a, b in zip(code, got.get(i, "").ljust(4), strict=True) if a != b)
                for i, code in enumerate(codes)
            )
        stored = [r for r in results if "bytes" in r]
        if case == "record" and stored and stored[0]["seconds"]:
            figures.recording_bytes_per_call_hour = round(
                stored[0]["bytes"] / stored[0]["seconds"] * 3600
            )
        return figures
    finally:
        for sock in socks:
            loop.remove_reader(sock.fileno())
            sock.close()
        if proc.returncode is None:
            proc.kill()  # our own child, by its handle
            await proc.wait()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["box"]:
        case, calls, work, port_min = argv[1], int(argv[2]), Path(argv[3]), int(argv[4])
        try:  # the loop the core runs on (appliance.pbx.core), when installed
            import uvloop
        except ImportError:
            asyncio.run(box(case, calls, work, port_min))
        else:
            uvloop.run(box(case, calls, work, port_min))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", default="20,50,100", help="call counts, comma-separated")
    parser.add_argument("--cases", default=",".join(CASES), help="of: " + ", ".join(CASES))
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--port-min", type=int, default=46000, help="the box's RTP ports from")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (5 calls, 2 s)")
    parser.add_argument("--json", type=Path, help="write the figures to this file as JSON")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.calls.split(",")]
    warmup, window = args.warmup, args.window
    if args.quick:
        counts, warmup, window = [5], 1.0, 2.0
    work = Path(tempfile.mkdtemp(prefix="bench-media-"))
    print(f"data in {work}", flush=True)
    print(f"machine: {os.cpu_count()} CPUs, {os.uname().release}; prompt {PROMPT.name}")
    out: list[Figures] = []
    try:
        for case in args.cases.split(","):
            for calls in counts:
                fig = asyncio.run(run_case(case, calls, warmup, window, work, args.port_min))
                out.append(fig)
                line = (f"{case:7} {calls:4} calls: {fig.cpu_per_call_second:.5f} CPU-s per "
                        f"call-second ({fig.cpu_s} CPU-s over {fig.window_s} s)")  # fmt: skip
                if case == "prompt":
                    line += f", digits missed {fig.digits_missed} of {fig.digits_keyed}"
                line += f"; event loop {fig.loop_cpu_per_call_second:.5f}"
                if case == "record":
                    line += f", {fig.recording_bytes_per_call_hour / 1e6:.2f} MB per call-hour"
                print(line, flush=True)
                for f in work.iterdir():
                    f.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"cases": [asdict(f) for f in out]}, indent=1))
    return 0
