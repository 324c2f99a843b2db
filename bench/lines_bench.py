"""CPU of the analog signal processing per active port, in the 20 ms frames a port handles
(`bench/lines --help`). Partial: the gateway's own clock, ALSA and RTP are not in it yet.

For each frame of a port: in-band DTMF detection on the audio from the handset (or the line),
a call-progress tone generated towards it, the hook decoder polled; an FXO port also runs the
dial/busy tone detector. Caller ID is costed per call: V.23 FSK generated (FXS) and decoded
(FXO). The input is white noise at speech level with DTMF digits in it, which makes the
detector run every check. CPU is the process's time over the run; the bar is 2 % of one core
per active port. Nothing is asserted here: the figures are printed, and written as JSON with
--json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from appliance.lines.callerid import V23, CallerIdMessage, decode_fsk, fsk_callerid
from appliance.lines.pulse import HookDecoder
from appliance.lines.tones import ToneDetector, ToneGenerator, plan_for
from appliance.media.dtmf import InbandDtmfDetector, dtmf_tone

FRAME = 160
FRAME_S = 0.020
BAR_PCT = 2.0


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


def machine_info() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "nproc": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=15000, help="frames per port kind (5 min)")
    parser.add_argument("--quick", action="store_true", help="1000 frames (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    frames = 1000 if args.quick else args.frames
    audio = line_audio(30.0, seed=1)
    ports = []
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
        print(f"{kind}: {1e6 * cpu:7.1f} µs CPU per 20 ms frame = {pct:.2f} % of one core per "
              f"active port (bar {BAR_PCT} %)")  # fmt: skip
    cid = callerid_ms(5 if args.quick else 50)
    print(f"caller ID (V.23, number + name): {cid['generate_ms']} ms to generate, "
          f"{cid['decode_ms']} ms to decode, per call")  # fmt: skip
    figures = {"machine": machine_info(), "ports": ports, "callerid": cid}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0
