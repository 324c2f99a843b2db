"""Soak: calls between extensions through `pbx run` at 80 % of the maximum call rate this run
measures, with G.711 RTP both ways, for minutes; then the box must be as it was (issue 13).

The calls are bench/calls' (`calls_bench.py`, whose set-up this reuses): sipp callers
(`uac_call.xml`, 200 extensions, each its own password) → the box → a sipp callee registered
as one extension (`uas_answer.xml`), 407 and digest, 180, 200, ACK, µ-law RTP both ways relayed
by the box for the hold time (5 s), BYE from the caller. The core is pinned to CPU 0, sipp and
tcpdump to CPU 1.

1. **Maximum call rate, measured first**: setup-rate steps of bench/calls (`run_rate`: arrivals
   for `--ramp-step` s, each call held `--hold` s with RTP) at rising rates; the maximum is the
   highest offered rate that passed (under 1 % of its calls failed) and was kept up (KEPT_UP,
   90 %, of it achieved: bench/calls asks 95 % of 15 s steps, and a step of 5 s loses 5 % to a
   quarter of a second of sipp's start); the ramp stops at the first step that did not.
   `--max-rate R` skips the ramp.
2. **Warm-up**: the soak's rate for `--warmup` s (60), then, the box idle again (no call, no
   transaction), its **starting values** are read: RSS, open file descriptors and asyncio tasks
   (the control socket's `counters`). Why after a warm-up: CPython's allocator keeps an arena
   (1 MiB) while any block in it lives, so the first load of a size raises the idle RSS for
   good (measured here: 35 MiB idle before any call, 58-77 MiB idle after 20-30 s at 32
   calls/s, of it 14 MiB free blocks inside arenas, none reclaimed; `malloc_trim` gave back
   3 MiB). What the soak must show is that a load leaves nothing behind, which the warm start
   tells; RSS against the cold idle is printed too (the issue's figure), not judged.
3. **Soak**: sipp offers `--load` (0.8) × that maximum for `--minutes`, as one run; the core
   is sampled every few seconds.
4. **After**: once every call has ended, the box is watched for up to `--settle` s (60) until
   RSS is within RSS_BOUND of its starting value and descriptors and tasks within FD_SLACK and
   TASK_SLACK of theirs. Then the core is stopped (its writer flushes) and the CDRs of the soak
   counted.

Verdict (exit status 1 when one fails): no failed call (sipp's count of failed, unanswered or
never started calls is zero); the CDR rows of the soak equal sipp's successful calls exactly,
each answered with RTP counted both ways; RSS, descriptors and tasks back within their bounds
within `--settle` s; no traceback and no ERROR line in the core's log.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.calls_bench import (
    RATE_HEADER,
    REGISTER_SCENARIO,
    RTP_PORT_MAX,
    RTP_PORT_MIN,
    UAC_SCENARIO,
    UAS_SCENARIO,
    Processes,
    RateStep,
    Setup,
    SippFigures,
    _on_sigterm,
    code_version,
    ensure_tcpdump,
    finish_callers,
    free_media_port,
    open_files_limit,
    rate_row,
    register_callee,
    run_rate,
    start_callee,
    start_callers,
    wait_idle,
    write_audio,
)
from bench.register_bench import (
    BenchError,
    Core,
    busy_cpu_pct,
    cpu_seconds,
    create_extensions,
    free_udp_port,
    machine_info,
    pbx_cli,
    rss_mb,
    runqueue_wait,
)

ROOT = Path(__file__).resolve().parent.parent
LOAD = 0.8
"""The share of the measured maximum the soak offers."""
KEPT_UP = 0.9
"""A ramp step is kept up when this share of its offered rate was achieved."""
RSS_BOUND = 1.10
"""RSS after the load must come back within 10 % of its value at the start of the soak (the
issue's bar: within 10 % of idle within 60 s of the load ending)."""
FD_SLACK = 2
"""Descriptors the core may hold beyond its count at the start (none is expected: every RTP
socket of an ended call is closed; two spare for the control connection being served and
SQLite's journal)."""
TASK_SLACK = 2
"""asyncio tasks beyond the count at the start (the control command being served is one)."""
SAMPLE_EVERY = 5.0
PROGRESS_EVERY = 30.0
DEFAULT_RAMP = (20, 40, 60, 80, 100, 120, 140, 160, 200, 240)


@dataclass
class Sample:
    """The core at one moment: calls up, RSS, open descriptors, asyncio tasks."""

    t: float
    calls: int
    rss_mb: float
    fds: int
    tasks: int


@dataclass
class Verdict:
    failed_calls: bool = False
    cdrs_match: bool = False
    rtp_both_ways: bool = False
    settled: bool = False
    clean_log: bool = False

    @property
    def passed(self) -> bool:
        return all(asdict(self).values())


@dataclass
class Result:
    machine: dict[str, Any]
    config: dict[str, Any]
    ramp: list[RateStep] = field(default_factory=list)
    max_rate: int = 0
    max_rate_source: str = ""
    soak_rate: float = 0.0
    warmup: SippFigures = field(default_factory=SippFigures)
    sipp: SippFigures = field(default_factory=SippFigures)
    achieved_rate: float = 0.0
    peak_calls: int = 0
    core_cpu_pct: float = 0.0
    core_wait_pct: float = 0.0
    """Share of the soak the core was runnable but waiting for a CPU (the machine was busy)."""
    overload_refused: int = 0
    """New requests the core's overload control refused with 503 (from its log)."""
    start: Sample | None = None
    idle_before_ramp: Sample | None = None
    peak: Sample | None = None
    """The highest of each figure during the soak."""
    end_of_load: Sample | None = None
    settled_after_s: float | None = None
    after: Sample | None = None
    settle_trace: list[Sample] = field(default_factory=list)
    cdrs: int = 0
    cdrs_answered: int = 0
    cdrs_without_rtp: int = 0
    rtp_packets: int = 0
    rtp_lost: int = 0
    log_errors: list[str] = field(default_factory=list)
    verdict: Verdict = field(default_factory=Verdict)

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "ramp": [{**asdict(s), "passed": s.passed} for s in self.ramp],
            "passed": self.verdict.passed,
            "failures_pct": self.sipp.failures_pct,
        }


def sample(core: Core, data: Path, t0: float) -> Sample | None:
    from appliance import control

    try:
        counters = control.call(data, "counters", timeout=5.0)
    except (control.ControlError, OSError, ValueError):
        return None
    return Sample(
        round(time.monotonic() - t0, 1), int(counters["calls"]), round(rss_mb(core.pid), 2),
        int(counters["open_fds"]), int(counters["tasks"]),
    )  # fmt: skip


def log_errors(log: Path) -> list[str]:
    """Lines of the core's log that show a fault: tracebacks and ERROR/CRITICAL records."""
    marks = (" ERROR ", " CRITICAL ", "Traceback (most recent call last)", "Exception in thread")
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return [line for line in lines if any(mark in line for mark in marks)]


def overload_refused(log: Path) -> int:
    """Requests the overload control refused (its "overload over: N requests refused" lines)."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return 0
    return sum(int(n) for n in re.findall(r"overload over: (\d+) requests refused", text))


def soak_cdrs(data: Path, since: float) -> tuple[int, int, int, int, int]:
    """(rows, answered, rows without RTP counted both ways, RTP packets, lost) of the CDRs
    whose call started at or after `since`."""
    uri = f"file:{data / 'pbx.sqlite3'}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=10)
    try:
        rows = conn.execute(
            "SELECT disposition, rtp_caller, rtp_callee FROM cdrs WHERE started_at >= ?", [since]
        ).fetchall()
    finally:
        conn.close()
    answered = without = packets = lost = 0
    for disposition, *legs in rows:
        answered += disposition == "answered"
        stats = [json.loads(leg) if leg else {} for leg in legs]
        if not all(int(s.get("packets") or 0) > 0 for s in stats):
            without += 1
        packets += sum(int(s.get("packets") or 0) for s in stats)
        lost += sum(int(s.get("lost") or 0) for s in stats)
    return len(rows), answered, without, packets, lost


def ramp(setup: Setup, args: argparse.Namespace, result: Result) -> int:
    """Rising setup rates until one fails or falls behind; the highest that passed."""
    print(
        f"maximum call rate: setup-rate steps of {args.ramp_step:g} s, calls held"
        f" {args.hold:g} s with RTP (the highest that passed with < 1% failures, kept up):"
    )
    print(RATE_HEADER, flush=True)
    best = 0
    for rate in args.ramp:
        step = run_rate(setup, rate, args.ramp_step, args.hold)
        result.ramp.append(step)
        print(rate_row(step), flush=True)
        if not (step.passed and step.achieved_rate >= KEPT_UP * rate):
            break
        best = rate
    if best == 0:
        raise BenchError(f"no setup rate passed, not even {args.ramp[0]}/s")
    return best


def settle(
    core: Core, data: Path, start: Sample, seconds: float, t0: float, trace: list[Sample]
) -> float | None:
    """Watch the idle box (bounded), every sample into `trace`, until RSS, descriptors and
    tasks are back within their bounds of `start`: the seconds it took, None if never."""
    began = time.monotonic()
    while True:
        current = sample(core, data, t0)
        if current is not None:
            trace.append(current)
            if within(current, start):
                return round(time.monotonic() - began, 1)
        if time.monotonic() - began > seconds:
            return None
        time.sleep(1.0)  # polling the box's state with a deadline (it has no event for it)


def quiet(data: Path, seconds: float) -> bool:
    """Wait (bounded) until the box holds no call and no live transaction."""
    from appliance import control

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            c = control.call(data, "counters", timeout=5.0)
        except (control.ControlError, OSError, ValueError):
            c = {}
        if c and not (c["calls"] or c["server_transactions"] or c["client_transactions"]):
            return True
        time.sleep(0.5)  # polling the box's state with a deadline (it has no event for it)
    return False


def highest(a: Sample, b: Sample) -> Sample:
    """Each figure's maximum of two samples (the time: of the larger RSS)."""
    return Sample(
        a.t if a.rss_mb >= b.rss_mb else b.t, max(a.calls, b.calls), max(a.rss_mb, b.rss_mb),
        max(a.fds, b.fds), max(a.tasks, b.tasks),
    )  # fmt: skip


def within(now: Sample, start: Sample) -> bool:
    return (
        now.rss_mb <= RSS_BOUND * start.rss_mb
        and now.fds <= start.fds + FD_SLACK
        and now.tasks <= start.tasks + TASK_SLACK
    )


def warm_up(setup: Setup, args: argparse.Namespace, result: Result) -> None:
    """The soak's rate for `--warmup` s (see the module's docstring)."""
    rate, duration = result.soak_rate, args.warmup
    count = max(1, round(rate * duration))
    limit = max(100, int(rate * (args.hold + 5) * 3))
    timeout_s = int(duration * 1.5 + args.hold + 120)
    proc, stf = start_callers(
        setup, "warmup", args.hold, f"{rate:.2f}", 1000, count, limit, timeout_s
    )
    result.warmup = finish_callers(setup, proc, stf, count, timeout_s + 15)


def soak(setup: Setup, args: argparse.Namespace, result: Result, t0: float) -> float:
    """Offer the soak rate for `--minutes`; sample the core meanwhile. Returns when the soak's
    calls began (Unix time, for its CDRs)."""
    rate = result.soak_rate
    duration = args.minutes * 60
    count = max(1, round(rate * duration))
    limit = max(100, int(rate * (args.hold + 5) * 3))
    timeout_s = int(duration * 1.5 + args.hold + 120)
    since = time.time()
    cpu0, w0 = cpu_seconds(setup.core.pid), time.monotonic()
    wait0 = runqueue_wait(setup.core.pid)
    proc, stf = start_callers(
        setup, "soak", args.hold, f"{rate:.2f}", 1000, count, limit, timeout_s
    )
    next_progress = time.monotonic() + PROGRESS_EVERY
    peak: Sample | None = None
    deadline = time.monotonic() + timeout_s + 15
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            current = sample(setup.core, setup.data, t0)
            if current is not None:
                result.peak_calls = max(result.peak_calls, current.calls)
                peak = current if peak is None else highest(peak, current)
                if time.monotonic() >= next_progress:
                    next_progress += PROGRESS_EVERY
                    print(
                        f"  {time.monotonic() - w0:5.0f} s: {current.calls} calls up, RSS"
                        f" {current.rss_mb:.1f} MiB, {current.fds} descriptors,"
                        f" {current.tasks} tasks",
                        flush=True,
                    )
            if not setup.core.alive():
                raise BenchError("the core exited during the soak:\n" + setup.core.tail())
            try:
                proc.wait(timeout=SAMPLE_EVERY)
            except subprocess.TimeoutExpired:
                pass
        result.sipp = finish_callers(setup, proc, stf, count, max(1.0, deadline - time.monotonic()))
    except BaseException:
        setup.procs.stop(proc, signal.SIGKILL)
        raise
    wall = time.monotonic() - w0
    result.core_cpu_pct = round(100 * (cpu_seconds(setup.core.pid) - cpu0) / wall, 1)
    result.core_wait_pct = round(100 * (runqueue_wait(setup.core.pid) - wait0) / wall, 1)
    result.achieved_rate = round(result.sipp.created / max(1.0, duration), 2)
    result.peak = peak
    return since


def run(args: argparse.Namespace) -> Result:
    if not 0.1 <= args.minutes <= 600 or not 0 <= args.warmup <= 3600:
        raise BenchError("--minutes must be 0.1-600, --warmup 0-3600 s")
    if not 0 < args.load <= 1 or not 1 <= args.hold <= 600 or not 1 <= args.ramp_step <= 600:
        raise BenchError("--load must be 0-1, --hold 1-600 s, --ramp-step 1-600 s")
    if args.max_rate is not None and not 1 <= args.max_rate <= 1000:
        raise BenchError("--max-rate must be 1-1000 calls/s")
    pbx = args.pbx or str(ROOT / ".venv" / "bin" / "pbx")
    for tool in (pbx, "sipp", *(() if args.no_pin else ("taskset",))):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed")
    for scenario in (UAC_SCENARIO, UAS_SCENARIO, REGISTER_SCENARIO):
        if not scenario.is_file():
            raise BenchError(f"no sipp scenario at {scenario}")
    tcpdump = ensure_tcpdump(not args.no_install)
    core_cpu = None if args.no_pin else args.core_cpu
    sipp_cpu = None if args.no_pin else args.sipp_cpu
    result = Result(
        machine=machine_info(),
        config={
            "minutes": args.minutes, "load": args.load, "hold_s": args.hold,
            "ramp_step_s": args.ramp_step, "ramp": list(args.ramp), "callers": args.callers,
            "core_cpu": core_cpu, "sipp_cpu": sipp_cpu, "rss_bound": RSS_BOUND,
            "fd_slack": FD_SLACK, "task_slack": TASK_SLACK, "settle_s": args.settle,
            "warmup_s": args.warmup, "kept_up": KEPT_UP,
            "codec": "PCMU both legs (relayed)", "transport": "UDP 127.0.0.1",
        },
    )  # fmt: skip
    result.machine["code"] = code_version()
    result.machine["background_busy_pct"] = round(busy_cpu_pct(1.0), 1)
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-soak-"))
    procs = Processes()
    core: Core | None = None
    t0 = time.monotonic()
    since = time.time()
    try:
        data = work / "var"
        pbx_cli(pbx, data, "config", "set", "rtp.port_min", str(RTP_PORT_MIN))
        pbx_cli(pbx, data, "config", "set", "rtp.port_max", str(RTP_PORT_MAX))
        creds = create_extensions(data, args.callers + 1)
        (callee, callee_password), callers = creds[-1], creds[:-1]
        write_audio(work)
        print(f"created {args.callers} caller extensions and callee {callee}; data in {work}")
        core = Core(pbx, data, work / "core.log", core_cpu)
        core.wait_ready(timeout=30)
        result.machine["core_open_files_limit"] = open_files_limit(core.pid)
        uac_port, uas_port = free_udp_port(), free_udp_port()
        while uas_port == uac_port or core.port in (uac_port, uas_port):
            uas_port = free_udp_port()
        taken: set[int] = {core.port, uac_port, uas_port}
        setup = Setup(
            pbx=pbx, work=work, data=data, core=core, procs=procs, tcpdump=tcpdump,
            callers=callers, callee=callee, uac_port=uac_port, uas_port=uas_port,
            uac_media=free_media_port(taken), uas_media=free_media_port(taken),
            sipp_cpu=sipp_cpu,
        )  # fmt: skip
        register_callee(setup, callee_password)
        ramp_bound = len(args.ramp) * int(2 * args.ramp_step + args.hold + 150)
        soak_bound = int((args.minutes * 60 + args.warmup) * 1.5 + 2 * args.hold + 400)
        start_callee(setup, ramp_bound + soak_bound)
        result.idle_before_ramp = sample(core, data, t0)
        print(f"core pid {core.pid} on 127.0.0.1:{core.port}, idle: {result.idle_before_ramp}")
        if args.max_rate is None:
            result.max_rate = ramp(setup, args, result)
            result.max_rate_source = (
                f"measured: highest passing step of a ramp of {args.ramp_step:g} s steps"
            )
        else:
            result.max_rate = args.max_rate
            result.max_rate_source = "given (--max-rate)"
        result.soak_rate = round(args.load * result.max_rate, 2)
        if args.warmup > 0:
            print(f"warm-up: {result.soak_rate:g} calls/s for {args.warmup:g} s", flush=True)
            warm_up(setup, args, result)
        if not quiet(data, 90):
            raise BenchError("calls or transactions still in the box 90 s after the warm-up")
        result.start = sample(core, data, t0)
        if result.start is None:
            raise BenchError("the core does not answer on its control socket")
        print(
            f"\nsoak: {result.soak_rate:g} calls/s ({args.load:.0%} of {result.max_rate}/s,"
            f" {result.max_rate_source}) for {args.minutes:g} min, calls held {args.hold:g} s"
            f" with RTP; at the start: RSS {result.start.rss_mb:.1f} MiB,"
            f" {result.start.fds} descriptors, {result.start.tasks} tasks",
            flush=True,
        )
        since = soak(setup, args, result, t0)
        if wait_idle(setup, 60):
            raise BenchError("calls of the soak were still up 60 s after it")
        result.end_of_load = sample(core, data, t0)
        result.settled_after_s = settle(
            core, data, result.start, args.settle, t0, result.settle_trace
        )
        result.after = result.settle_trace[-1] if result.settle_trace else None
    finally:
        procs.stop_all()
        try:
            if core is not None:
                rc = core.stop()
                if rc not in (0, -signal.SIGTERM):
                    print(f"warning: core exited with status {rc}:\n{core.tail()}", flush=True)
                if result.start is not None:  # the core stopped: its writer wrote everything
                    (result.cdrs, result.cdrs_answered, result.cdrs_without_rtp,
                     result.rtp_packets, result.rtp_lost) = soak_cdrs(data, since)  # fmt: skip
                result.log_errors = log_errors(work / "core.log")[:20]
                result.overload_refused = overload_refused(work / "core.log")
        finally:  # also when the run failed: nothing of it is left behind unless asked
            if args.keep:
                print(f"kept {work}", flush=True)
            else:
                shutil.rmtree(work, ignore_errors=True)
    judge(result)
    return result


def judge(result: Result) -> None:
    s, v = result.sipp, result.verdict
    v.failed_calls = s.count > 0 and s.successful == s.count and s.failed == 0 and not s.timed_out
    v.cdrs_match = result.cdrs == s.successful == result.cdrs_answered
    v.rtp_both_ways = result.cdrs > 0 and result.cdrs_without_rtp == 0
    v.settled = result.settled_after_s is not None
    v.clean_log = not result.log_errors


def report(result: Result) -> None:
    s, v = result.sipp, result.verdict
    start, after, peak = result.start, result.after, result.peak

    def mark(ok: bool) -> str:
        return "ok  " if ok else "FAIL"

    print()
    print(
        f"{mark(v.failed_calls)} calls: {s.count} offered at {result.soak_rate:g}/s"
        f" ({result.achieved_rate:g}/s started), {s.successful} successful, {s.failed} failed,"
        f" {s.count - s.successful} not successful, {s.retransmissions} sipp retransmissions;"
        f" up to {result.peak_calls} calls at once; core CPU {result.core_cpu_pct:g}%, waiting"
        f" for a CPU {result.core_wait_pct:g}%; {result.overload_refused} refused with 503 by"
        " the overload control"
    )
    print(
        f"{mark(v.cdrs_match)} CDRs of the soak: {result.cdrs} ({result.cdrs_answered} answered)"
        f" for {s.successful} successful calls"
    )
    loss = 100 * result.rtp_lost / max(1, result.rtp_packets + result.rtp_lost)
    print(
        f"{mark(v.rtp_both_ways)} RTP: {result.rtp_packets} packets counted by the box,"
        f" {result.rtp_lost} lost ({loss:.3f}%), {result.cdrs_without_rtp} calls without RTP"
        " both ways"
    )
    if start is not None and after is not None:
        when = (
            f"within {result.settled_after_s:g} s"
            if result.settled_after_s is not None
            else "not within the settle time"
        )
        print(
            f"{mark(v.settled)} back {when} of the last call's end: RSS {start.rss_mb:.1f} →"
            f" peak {peak.rss_mb if peak else 0:.1f} → {after.rss_mb:.1f} MiB (bound"
            f" {RSS_BOUND * start.rss_mb:.1f}), descriptors {start.fds} → peak"
            f" {peak.fds if peak else 0} → {after.fds} (bound {start.fds + FD_SLACK}), tasks"
            f" {start.tasks} → {after.tasks} (bound {start.tasks + TASK_SLACK})"
        )
    cold = result.idle_before_ramp
    if cold is not None and after is not None:
        met = "met" if after.rss_mb <= RSS_BOUND * cold.rss_mb else "not met"
        print(
            f"     RSS idle before any call {cold.rss_mb:.1f} MiB, after the warm-up"
            f" {start.rss_mb if start else 0:.1f}, after the soak {after.rss_mb:.1f}: the"
            f" issue's figure (within 10% of idle before any call) {met}; not judged here"
        )
    print(f"{mark(v.clean_log)} core log: {len(result.log_errors)} tracebacks or errors")
    for line in result.log_errors[:5]:
        print(f"       {line}")
    m = result.machine
    print(
        f"maximum call rate {result.max_rate}/s ({result.max_rate_source}); machine:"
        f" {m['cpu_model']}; nproc {m['nproc']}; busy before the run"
        f" {m['background_busy_pct']}%; {m['date']}; code {m['code']}"
    )
    print("soak: " + ("PASSED" if v.passed else "FAILED"))


def parse_rates(text: str) -> list[int]:
    try:
        rates = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}") from None
    if not rates or any(not 1 <= r <= 1000 for r in rates):
        raise argparse.ArgumentTypeError("rates must be 1-1000 calls/s")
    return rates


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/soak", formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
    )  # fmt: skip
    p.add_argument("--minutes", type=float, default=10.0, help="soak length (default 10)")
    p.add_argument("--load", type=float, default=LOAD, help="share of the maximum (default 0.8)")
    p.add_argument("--hold", type=float, default=5.0, help="seconds each call is held (5)")
    p.add_argument("--ramp", type=parse_rates, default=list(DEFAULT_RAMP), metavar="R,R,...",
                   help="setup rates the ramp tries, in order (default "
                   + ",".join(map(str, DEFAULT_RAMP)) + ")")  # fmt: skip
    p.add_argument("--ramp-step", type=float, default=10.0,
                   help="seconds of arrivals per ramp step (default 10)")  # fmt: skip
    p.add_argument("--max-rate", type=int, default=None,
                   help="take this as the maximum call rate instead of measuring it")  # fmt: skip
    p.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="seconds at the soak's rate before the starting values are read (default 60)",
    )
    p.add_argument(
        "--settle",
        type=float,
        default=60.0,
        help="seconds the box may take to come back after the load (default 60)",
    )
    p.add_argument("--callers", type=int, default=200, help="caller extensions (default 200)")
    p.add_argument("--core-cpu", type=int, default=0, help="CPU for the core (default 0)")
    p.add_argument("--sipp-cpu", type=int, default=1, help="CPU for sipp and tcpdump (1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument(
        "--no-install",
        action="store_true",
        help="fail instead of installing tcpdump with apt-get when it is missing",
    )
    p.add_argument("--pbx", default=None, help="the pbx command (default .venv/bin/pbx)")
    p.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write the figures to FILE as JSON")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench/soak: {exc}", file=sys.stderr)
        return 2
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0 if result.verdict.passed else 1


if __name__ == "__main__":
    sys.exit(main())
