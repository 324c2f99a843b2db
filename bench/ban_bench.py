"""Cost of a flood from a banned source: datagrams a second the core drops, and its CPU.

A real `pbx run` pinned to one CPU, this process (the flood) to the other. Two floods of the
same OPTIONS datagram, each for `--seconds`, as fast as one Python sender goes (bounded in
count too: `--max-packets`):

1. from a banned address (127.0.0.50, its ban stored before the core starts): dropped before
   parsing, one dict lookup each (the figure issue 13 asks for);
2. from an address that is neither banned nor allowed (127.0.0.51): past its token bucket
   (`security.rate_limit`, 100 a second, bursts of 200) dropped as well, after the bucket's
   arithmetic; the few within the rate are parsed and answered.

Printed per flood: datagrams sent, what the core counted (dropped for the ban, for the rate;
the answers the bench read), the core's CPU % of one core over the flood, and microseconds of
core CPU per datagram it took off its socket. On loopback the kernel's delivery is the
sender's work, so one Python sender offers some 30,000-70,000 datagrams a second, below what
the core could drop: the cost per datagram is the figure that carries over. Traffic stays on
127.0.0.0/8.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.register_bench import Core, cpu_seconds, machine_info

ROOT = Path(__file__).resolve().parent.parent
BANNED, STRANGER = "127.0.0.50", "127.0.0.51"


def options(source: str, port: int, target: tuple[str, int]) -> bytes:
    return (
        f"OPTIONS sip:{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK-bench;rport\r\n"
        f"From: <sip:bench@{source}>;tag=bench\r\nTo: <sip:{target[0]}>\r\n"
        f"Call-ID: ban-bench@{source}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def counters(data: Path) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from appliance import control

    return control.call(data, "counters")


def flood(
    source: str, target: tuple[str, int], seconds: float, max_packets: int, data: Path, pid: int
) -> dict[str, Any]:
    """One flood from `source`; what it cost the core."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    port = sock.getsockname()[1]
    answered = 0
    stop = threading.Event()

    def drain() -> None:
        nonlocal answered
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            answered += 1

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    datagram = options(source, port, target)
    before, cpu0 = counters(data), cpu_seconds(pid)
    sent, start = 0, time.monotonic()
    deadline = start + seconds
    while sent < max_packets:
        for _ in range(200):
            try:
                sock.sendto(datagram, target)
            except (BlockingIOError, ConnectionRefusedError):
                pass
            sent += 1
        if time.monotonic() >= deadline:
            break
    elapsed = time.monotonic() - start
    time.sleep(0.5)  # let the core finish what its socket holds before reading its CPU
    cpu, after = cpu_seconds(pid) - cpu0, counters(data)
    stop.set()
    reader.join(timeout=2)
    sock.close()
    dropped = after["dropped"] - before["dropped"]
    limited = after["rate_limited"] - before["rate_limited"]
    taken = dropped + limited + answered
    return {
        "source": source,
        "sent": sent,
        "seconds": round(elapsed, 2),
        "sent_per_s": round(sent / elapsed),
        "dropped_banned": dropped,
        "dropped_rate_limited": limited,
        "answered": answered,
        "taken_per_s": round(taken / elapsed),
        "core_cpu_s": round(cpu, 3),
        "core_cpu_pct": round(100 * cpu / elapsed, 1),
        "core_us_per_datagram": round(1e6 * cpu / taken, 2) if taken else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each flood")
    parser.add_argument("--max-packets", type=int, default=3_000_000, help="bound per flood")
    parser.add_argument("--quick", action="store_true", help="1 s floods (a smoke run)")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    seconds = 1.0 if args.quick else args.seconds
    pbx = str(Path(sys.executable).parent / "pbx")
    if not Path(pbx).exists():
        pbx = shutil.which("pbx") or pbx
    work = Path(tempfile.mkdtemp(prefix="ban-bench-"))
    print(f"data in {work}")
    data = work / "var"
    sys.path.insert(0, str(ROOT))
    from appliance.store import bans
    from appliance.store.db import open_db

    db = open_db(data)
    now = time.time()
    bans.save(db, bans.Ban(BANNED, "bench", now, now + 3600))
    db.conn.close()
    cpus = sorted(os.sched_getaffinity(0))
    core = Core(pbx, data, work / "core.log", cpus[0] if len(cpus) > 1 else None)
    results: list[dict[str, Any]] = []
    try:
        core.wait_ready(30)
        if len(cpus) > 1:
            os.sched_setaffinity(0, {cpus[1]})
        target = ("127.0.0.1", core.port)
        for source in (BANNED, STRANGER):
            results.append(flood(source, target, seconds, args.max_packets, data, core.pid))
    finally:
        core.stop()
        shutil.rmtree(work, ignore_errors=True)
    for r in results:
        print(
            f"{r['source']:<12} sent {r['sent']:>9,} ({r['sent_per_s']:,}/s); core took"
            f" {r['taken_per_s']:,}/s (banned {r['dropped_banned']:,}, rate-limited"
            f" {r['dropped_rate_limited']:,}, answered {r['answered']:,}); core CPU"
            f" {r['core_cpu_pct']} % = {r['core_us_per_datagram']} µs a datagram"
        )
    figures = {"machine": machine_info(), "floods": results}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0
