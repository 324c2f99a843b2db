"""Durability benchmark: what `synchronous=FULL` costs a commit, and how fast `pbx run` comes back.

Three parts, over a temporary data directory (`--dir`: on the box, the data partition):

* Commit latency: one CDR insert per transaction (what the writer thread does at a call's
  end) and one binding upsert per transaction (a REGISTER's group commit at its smallest),
  through the store's own functions on an `open_db` connection, COMMITS times each with
  `synchronous=FULL` (the appliance's setting) and with NORMAL, while a thread checkpoints the
  WAL every second as the core's does. Median, 99th percentile and the mean, in ms.
* Start-up: `pbx run` started as a test starts it (`python -m appliance`), from the spawn to
  its READY line, STARTS times, over a configured office (EXTENSIONS extensions).
* Recovery: the same start over a database that a core killed during LIVE calls left (rows in
  the live-call checkpoint), which the start closes as `interrupted` before READY.

Prints the figures and, with --json FILE, writes them there. Everything stays on loopback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.store import cdrs, extensions, live_calls, registrations
from appliance.store.database import Database
from appliance.store.db import Checkpointer, open_db
from bench.register_bench import machine_info

ROOT = Path(__file__).resolve().parent.parent
READY = "pbx-core: SIP on udp+tcp "
PASSWORD = "Kq7vT9pLm2"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(seconds: list[float]) -> dict[str, float]:
    ms = [1000 * s for s in seconds]
    return {"median_ms": round(statistics.median(ms), 3), "p99_ms": round(percentile(ms, 0.99), 3),
            "mean_ms": round(statistics.fmean(ms), 3)}  # fmt: skip


def record(call_id: str) -> cdrs.Cdr:
    now = time.time()
    return cdrs.Cdr(
        id=call_id, started_at=now - 60, ended_at=now, caller="101", dialled="102",
        disposition="answered", hangup_side="caller", hangup_cause="BYE", answered_at=now - 58,
        answered_by="102", codec_caller="PCMU", codec_callee="PCMU",
        rtp_caller={"packets": 3000, "lost": 0, "jitter_ms": 0.4},
        rtp_callee={"packets": 3000, "lost": 0, "jitter_ms": 0.3},
    )  # fmt: skip


def binding(n: int) -> registrations.Registration:
    now = time.time()
    return registrations.Registration(
        str(100 + n % 50), "k", "<sip:p@127.0.0.1:5062>", now + 3600, uuid.uuid4().hex, n, None,
        "UDP", "UDP 127.0.0.1:5062", "bench", now,
    )  # fmt: skip


def timed(commits: int, write: Callable[[int], None]) -> list[float]:
    times = []
    for n in range(commits):
        t0 = time.perf_counter()
        write(n)
        times.append(time.perf_counter() - t0)
    return times


def time_writes(db: Database, commits: int) -> dict[str, dict[str, float]]:
    def insert(_n: int) -> None:
        cdrs.write(db, [record(uuid.uuid4().hex)])

    def upsert(n: int) -> None:
        registrations.write(db, [binding(n)], [])

    return {"cdr_insert": summary(timed(commits, insert)),
            "binding_upsert": summary(timed(commits, upsert))}  # fmt: skip


def commit_latency(work: Path, commits: int) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for mode in ("FULL", "NORMAL"):
        data = work / f"commit-{mode.lower()}"
        db = open_db(data)
        db.execute(f"PRAGMA synchronous={mode}")
        checkpointer = Checkpointer(data)
        checkpointer.start(db)
        try:
            figures[mode] = time_writes(db, commits)
        finally:
            checkpointer.stop()
            db.conn.close()
    return figures


def office(data: Path, count: int) -> Database:
    db = open_db(data)
    for n in range(count):
        extensions.add(db, str(1000 + n), f"Desk {n}", password=PASSWORD)
    return db


def start_to_ready(data: Path) -> float:
    """Seconds from spawning `pbx run` to its READY line; the core is then stopped."""
    argv = [sys.executable, "-m", "appliance", "--data", str(data), "run", "--sip", "127.0.0.1:0"]
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)  # fmt: skip
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith(READY):
                return time.monotonic() - t0
        raise RuntimeError(f"pbx run exited with {proc.wait()} before READY")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def leave_live_calls(db: Database, count: int) -> None:
    """What a core killed during `count` answered calls leaves in the checkpoint."""
    now = time.time()
    live = [
        cdrs.Cdr(id=uuid.uuid4().hex, started_at=now - 30, ended_at=0.0, caller="1000",
                 dialled="1001", disposition="interrupted", hangup_side="system",
                 hangup_cause=live_calls.INTERRUPTED_CAUSE, answered_at=now - 28,
                 answered_by="1001", codec_caller="PCMU", codec_callee="PCMU")
        for _ in range(count)
    ]  # fmt: skip
    live_calls.save(db, now, live, [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commits", type=int, default=500, help="commits timed per mode")
    parser.add_argument("--starts", type=int, default=10, help="starts of pbx run timed")
    parser.add_argument("--extensions", type=int, default=100, help="extensions configured")
    parser.add_argument("--live", type=int, default=100, help="calls left live for recovery")
    parser.add_argument(
        "--dir",
        type=Path,
        help="where the data goes (default: the temporary "
        "directory; fsync costs what that file system makes it cost, nothing on "
        "a tmpfs: on the box, give a directory on the data partition)",
    )
    parser.add_argument("--quick", action="store_true", help="a short run (smoke test)")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    args = parser.parse_args(argv)
    if args.quick:
        args.commits, args.starts, args.extensions, args.live = 50, 2, 10, 10
    work = Path(tempfile.mkdtemp(prefix="pbx-durability-", dir=args.dir))
    print(f"data in {work}")
    try:
        figures: dict[str, Any] = {"machine": machine_info()}
        figures["commit"] = commit_latency(work, args.commits)
        for mode, kinds in figures["commit"].items():
            for kind, s in kinds.items():
                print(f"commit {mode:6} {kind:14} median {s['median_ms']:.3f} ms, "
                      f"p99 {s['p99_ms']:.3f} ms, mean {s['mean_ms']:.3f} ms")  # fmt: skip
        data = work / "office"
        office(data, args.extensions).conn.close()
        starts = [start_to_ready(data) for _ in range(args.starts)]
        figures["start_to_ready"] = summary(starts)
        print(f"pbx run to READY ({args.extensions} extensions): median "
              f"{figures['start_to_ready']['median_ms']:.0f} ms, worst "
              f"{1000 * max(starts):.0f} ms of {len(starts)}")  # fmt: skip
        recoveries = []
        for _ in range(args.starts):
            db = open_db(data)
            leave_live_calls(db, args.live)
            db.conn.close()
            recoveries.append(start_to_ready(data))
            db = open_db(data)
            left = live_calls.count(db)
            db.conn.close()
            if left:
                raise RuntimeError(f"the start left {left} live calls unclosed")
        figures["recovery_to_ready"] = {**summary(recoveries), "live_calls": args.live}
        print(f"pbx run to READY closing {args.live} interrupted calls: median "
              f"{figures['recovery_to_ready']['median_ms']:.0f} ms, worst "
              f"{1000 * max(recoveries):.0f} ms")  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0
