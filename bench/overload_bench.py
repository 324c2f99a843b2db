"""Overload benchmark: the box's maximum REGISTER and call rates, then a REGISTER flood at three
times the maximum while a call set up before it talks, and the core's memory before, at the
peak and after.

1. Maximum REGISTER rate: sipp registrations with digest at rising rates (`bench/register`'s
   steps); the highest rate a step achieved with < 1 % failures.
2. Maximum call rate: `bench/calls`' setup-rate steps (a sipp caller, a registered sipp callee,
   RTP both ways); the highest achieved with < 1 % of calls failed.
3. One call set up and held, RTP both ways (sipp streams µ-law), captured on `lo`.
4. The flood: `--factor` (3) times the maximum REGISTER rate for `--flood` (20) seconds,
   bounded in count. Printed: the rate of 200s while sipp was sending (bar: >= 90 % of the
   maximum), the rate of 503s, what else failed, and the largest gap in the RTP the box relayed
   to each side of the call (bar: no gap > 200 ms), next to the largest gap in what the phones
   sent it (their sipp shares a CPU with the flood's).
5. RSS of the core: idle before any load, the peak (sampled every 0.2 s), and every second for
   `--after` (60) seconds after the flood (bar: back within 10 % of idle within 60 s).

The core is pinned to one CPU, sipp and tcpdump to the other; traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import calls_bench, pcap
from bench.register_bench import (
    BenchError,
    Core,
    SippSetup,
    Step,
    _epoch,
    busy_cpu_pct,
    create_extensions,
    free_udp_port,
    machine_info,
    pbx_cli,
    rss_mb,
    run_step,
    write_injection,
)

ROOT = Path(__file__).resolve().parent.parent
REGISTER_SCENARIO = ROOT / "tests" / "interop" / "sipp" / "register.xml"
DEFAULT_REGISTER_RATES = (500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 5000)
DEFAULT_CALL_RATES = (20, 40, 60, 80, 100)
QUICK_REGISTER_RATES = (200, 400)
QUICK_CALL_RATES = (5,)
FAIL_LIMIT_PCT = 1.0
KEPT_UP = 0.9
"""A step passes with < FAIL_LIMIT_PCT failures, achieving at least KEPT_UP of its rate."""
FLOOD_SIPP = ("-default_behaviors", "all,-bye", "-buff_size", str(4 << 20))
"""The flood's sipp: a refused registration just ends (no BYE, as a phone sends none), and
socket buffers large enough that sipp, busy sending, drops no answer."""
ANSWERED_BAR = 0.9
GAP_BAR_MS = 200.0
RSS_BAR = 0.10


@dataclass
class Flood:
    offered_rate: float = 0.0
    sent_rate: float = 0.0
    count: int = 0
    answered: int = 0
    refused: int = 0
    other_failures: dict[str, int] = field(default_factory=dict)
    answered_rate: float = 0.0
    refused_rate: float = 0.0
    answered_pct_of_max: float = 0.0
    core_cpu_pct: float = 0.0
    box_refused: int = 0
    box_overload: dict[str, Any] = field(default_factory=dict)
    relayed_gap_ms: dict[str, float] = field(default_factory=dict)
    sent_gap_ms: dict[str, float] = field(default_factory=dict)
    relayed_packets: dict[str, int] = field(default_factory=dict)
    call_survived: bool = False


@dataclass
class Result:
    machine: dict[str, Any]
    config: dict[str, Any]
    idle_rss_mb: float = 0.0
    register_steps: list[Step] = field(default_factory=list)
    call_steps: list[dict[str, Any]] = field(default_factory=list)
    max_register_rate: float = 0.0
    max_call_rate: float = 0.0
    flood: Flood = field(default_factory=Flood)
    peak_rss_mb: float = 0.0
    rss_after_mb: list[float] = field(default_factory=list)
    """RSS each second after the flood ended."""
    seconds_to_idle: float | None = None
    """Seconds after the flood until RSS was within RSS_BAR of idle (None: not in the time)."""

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k != "register_steps"},
            "register_steps": [{**asdict(s), "passed": passed(s)} for s in self.register_steps],
            "rss_after_60s_mb": self.rss_after_mb[-1] if self.rss_after_mb else None,
        }


def passed(step: Step) -> bool:
    return step.passed and step.achieved_rate >= KEPT_UP * step.offered_rate


def sending_rates(stats_file: Path) -> tuple[float, float, float]:
    """From a sipp `-stf` file written every second: calls created, succeeded and failed with
    an unexpected message (the box's 503s) per second while sipp was still creating calls, so
    that waiting for the last answers does not dilute the rates."""
    lines = [ln for ln in stats_file.read_text(errors="replace").splitlines() if ln.strip()]
    names = lines[0].rstrip(";").split(";")
    rows = [dict(zip(names, ln.rstrip(";").split(";"), strict=False)) for ln in lines[1:]]
    rows = [r for r in rows if r.get("CurrentTime")]
    if len(rows) < 2:
        return 0.0, 0.0, 0.0

    def count(row: dict[str, str], name: str) -> int:
        value = row.get(name, "0")
        return int(value) if value.isdigit() else 0

    created = count(rows[-1], "TotalCallCreated")
    end = next((r for r in rows if count(r, "TotalCallCreated") >= created), rows[-1])
    if end is rows[0]:
        end = rows[-1]
    seconds = _epoch(end["CurrentTime"]) - _epoch(rows[0]["CurrentTime"])
    if seconds <= 0:
        return 0.0, 0.0, 0.0
    return tuple(  # type: ignore[return-value]
        (count(end, name) - count(rows[0], name)) / seconds
        for name in ("TotalCallCreated", "SuccessfulCall(C)", "FailedUnexpectedMessage(C)")
    )


def largest_gaps(
    datagrams: list[pcap.Datagram], start: float, end: float, ports: dict[str, int]
) -> tuple[dict[str, float], dict[str, float], dict[str, int]]:
    """For each side (name: its sipp media port), in [start, end]: the largest gap (ms) in the
    RTP the box sent it, the largest in the RTP it sent the box, and the packets relayed."""
    low, high = calls_bench.RTP_PORT_MIN, calls_bench.RTP_PORT_MAX
    relayed: dict[str, float] = {}
    sent: dict[str, float] = {}
    packets: dict[str, int] = {}
    for name, port in ports.items():
        into = [d.time for d in datagrams if d.dst[1] == port and low <= d.src[1] <= high]
        out = [d.time for d in datagrams if d.src[1] == port and low <= d.dst[1] <= high]
        for times, found in ((into, relayed), (out, sent)):
            window = [start, *sorted(t for t in times if start <= t <= end), end]
            found[name] = 1000 * max(b - a for a, b in itertools.pairwise(window))
        packets[name] = sum(1 for t in into if start <= t <= end)
    return relayed, sent, packets


class RssSampler:
    """The core's peak RSS, sampled every 0.2 s in a thread while a load runs."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, rss_mb(self.pid))

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(timeout=5)
        return max(self.peak, rss_mb(self.pid))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/overload",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog="Example: .venv/bin/python bench/overload --json out.json",
    )
    p.add_argument(
        "--register-rates",
        type=_rates,
        default=None,
        help="REGISTER/s steps for the maximum (default "
        + ",".join(map(str, DEFAULT_REGISTER_RATES))
        + ")",
    )
    p.add_argument(
        "--call-rates",
        type=_rates,
        default=None,
        help="calls/s steps for the maximum; '0' skips them (default "
        + ",".join(map(str, DEFAULT_CALL_RATES))
        + ")",
    )
    p.add_argument("--step", type=float, default=None, help="seconds per REGISTER step (default 5)")
    p.add_argument("--factor", type=float, default=3.0, help="flood / maximum (default 3)")
    p.add_argument("--flood", type=float, default=None, help="flood seconds (default 20)")
    p.add_argument(
        "--after",
        type=float,
        default=None,
        help="seconds of RSS readings after the flood (default 60)",
    )
    p.add_argument(
        "--extensions",
        type=int,
        default=None,
        metavar="N",
        help="extensions the load registers (default 1000)",
    )
    p.add_argument("--core-cpu", type=int, default=0, help="CPU for the core (default 0)")
    p.add_argument("--sipp-cpu", type=int, default=1, help="CPU for sipp (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument("--no-install", action="store_true", help="never apt-get install tcpdump")
    p.add_argument("--pbx", default=None, help="the pbx command (default .venv/bin/pbx)")
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the figures to FILE as JSON",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 100 extensions, REGISTER 200,400/s for 2 s, calls 5/s,"
        " a 3 s flood, 5 s of RSS after",
    )
    return p


def _rates(text: str) -> list[int]:
    try:
        rates = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers: {text!r}") from None
    if any(r < 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must not be negative")
    return [r for r in rates if r > 0]


def run(args: argparse.Namespace) -> Result:
    quick = bool(args.quick)
    register_rates = args.register_rates or list(
        QUICK_REGISTER_RATES if quick else DEFAULT_REGISTER_RATES
    )
    call_rates = (
        args.call_rates
        if args.call_rates is not None
        else list(QUICK_CALL_RATES if quick else DEFAULT_CALL_RATES)
    )
    step_s = args.step or (2.0 if quick else 5.0)
    flood_s = args.flood or (3.0 if quick else 20.0)
    after_s = args.after if args.after is not None else (5.0 if quick else 60.0)
    n_ext = args.extensions or (100 if quick else 1000)
    if not 0 < step_s <= 60 or not 0 < flood_s <= 120 or not 0 <= after_s <= 600:
        raise BenchError("--step must be 0-60 s, --flood 0-120 s, --after 0-600 s")
    if not 1 < args.factor <= 10:
        raise BenchError("--factor must be in (1, 10]")
    pbx = args.pbx or str(ROOT / ".venv" / "bin" / "pbx")
    if shutil.which(pbx) is None:
        raise BenchError(f"no pbx command at {pbx}")
    for tool in ("sipp",) + (() if args.no_pin else ("taskset",)):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed")
    tcpdump = calls_bench.ensure_tcpdump(not args.no_install)
    core_cpu: int | None = None if args.no_pin else args.core_cpu
    sipp_cpu: int | None = None if args.no_pin else args.sipp_cpu
    result = Result(
        machine=machine_info(),
        config={
            "register_rates": register_rates,
            "call_rates": call_rates,
            "step_s": step_s,
            "factor": args.factor,
            "flood_s": flood_s,
            "after_s": after_s,
            "extensions": n_ext,
            "core_cpu": core_cpu,
            "sipp_cpu": sipp_cpu,
            "quick": quick,
        },
    )
    result.machine["background_busy_pct"] = round(busy_cpu_pct(1.0), 1)
    result.machine["code"] = calls_bench.code_version()
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-overload-"))
    procs = calls_bench.Processes()
    core: Core | None = None
    try:
        data = work / "var"
        pbx_cli(pbx, data, "config", "set", "rtp.port_min", str(calls_bench.RTP_PORT_MIN))
        pbx_cli(pbx, data, "config", "set", "rtp.port_max", str(calls_bench.RTP_PORT_MAX))
        creds = create_extensions(data, n_ext + 2)
        (callee, callee_password), caller, phones = creds[-1], creds[-2], creds[:-2]
        injection = work / "phones.csv"
        write_injection(injection, phones, "SEQUENTIAL", 3600)
        calls_bench.write_audio(work)
        print(
            f"created {n_ext} extensions, caller {caller[0]}, callee {callee}; data in {work}",
            flush=True,
        )
        core = Core(pbx, data, work / "core.log", core_cpu)
        core.wait_ready(timeout=30)
        time.sleep(1.0 if quick else 3.0)  # start-up settles (imports, first checkpoints)
        result.idle_rss_mb = rss_mb(core.pid)
        taken = {core.port}
        ports = [free_udp_port() for _ in range(3)]
        while len(set(ports) | taken) != 4:
            ports = [free_udp_port() for _ in range(3)]
        load_port, uac_port, uas_port = ports
        setup = calls_bench.Setup(
            pbx=pbx,
            work=work,
            data=data,
            core=core,
            procs=procs,
            tcpdump=tcpdump,
            callers=[caller],
            callee=callee,
            uac_port=uac_port,
            uas_port=uas_port,
            uac_media=calls_bench.free_media_port(taken | set(ports)),
            uas_media=0,
            sipp_cpu=sipp_cpu,
        )
        setup.uas_media = calls_bench.free_media_port(taken | set(ports) | {setup.uac_media})
        calls_bench.register_callee(setup, callee_password)
        calls_bench.start_callee(setup, int(30 * len(call_rates) + 4 * flood_s + 600))
        print(
            f"core pid {core.pid} on 127.0.0.1:{core.port}; idle RSS {result.idle_rss_mb:.1f} MiB",
            flush=True,
        )

        sipp = SippSetup(core.port, REGISTER_SCENARIO, injection, load_port, sipp_cpu, work, 5000)
        peak = RssSampler(core.pid)
        print("\nREGISTER steps:")
        for rate in register_rates:
            step = run_step(sipp, core, rate, step_s)
            result.register_steps.append(step)
            print(
                f"  {rate:>6}/s offered: {step.achieved_rate:>6.0f}/s achieved,"
                f" {step.failures_pct:5.2f}% failed, core CPU {step.core_cpu_pct:3.0f}%,"
                f" RSS {step.rss_mb_after:.1f} MiB {step.failures or ''}",
                flush=True,
            )
            if not passed(step):
                break
            result.max_register_rate = max(result.max_register_rate, step.achieved_rate)
        if result.max_register_rate <= 0:
            raise BenchError("no REGISTER step passed: the box or the machine is too busy")
        if call_rates:
            print("\ncall setup steps:")
        for rate in call_rates:
            rstep = calls_bench.run_rate(setup, rate, 5.0 if not quick else 2.0, 2.0)
            ok = rstep.passed
            result.call_steps.append(
                {
                    "offered_rate": rate,
                    "achieved_rate": rstep.achieved_rate,
                    "failures_pct": rstep.sipp.failures_pct,
                    "passed": ok,
                }
            )
            print(
                f"  {rate:>6}/s offered: {rstep.achieved_rate:>6.1f}/s achieved,"
                f" {rstep.sipp.failures_pct:5.2f}% failed",
                flush=True,
            )
            if not ok:
                break
            result.max_call_rate = max(result.max_call_rate, rstep.achieved_rate)
        calls_bench.wait_idle(setup, 60)

        result.flood = flood(args.factor, flood_s, result.max_register_rate, setup, sipp)
        result.peak_rss_mb = peak.stop()
        ended = time.monotonic()
        for second in range(1, int(after_s) + 1):
            time.sleep(max(0.0, ended + second - time.monotonic()))  # one reading a second
            rss = rss_mb(core.pid)
            result.rss_after_mb.append(rss)
            if result.seconds_to_idle is None and rss <= (1 + RSS_BAR) * result.idle_rss_mb:
                result.seconds_to_idle = float(second)
        if not core.alive():
            raise BenchError("the core exited during the run:\n" + core.tail())
    finally:
        procs.stop_all()
        if core is not None:
            rc = core.stop()
            if rc not in (0, -signal.SIGTERM):
                print(f"warning: core exited with status {rc}:\n{core.tail()}", flush=True)
        if args.keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


def flood(
    factor: float, seconds: float, maximum: float, setup: calls_bench.Setup, sipp: SippSetup
) -> Flood:
    """A call held through a REGISTER flood of `factor` x `maximum` for `seconds`."""
    from appliance import control

    fig = Flood(offered_rate=factor * maximum)
    hold = seconds + 30
    proc, stf = calls_bench.start_callers(setup, "held", hold, "1", 1000, 1, 1, int(hold + 60))
    deadline = time.monotonic() + 30
    while calls_bench.calls_in_box(setup.data) != 1 or not _answered(setup.data):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise BenchError("the call before the flood was not answered")
        time.sleep(0.1)
    rtp = calls_bench.rtp_capture(setup, "flood")
    time.sleep(1.0)  # a second of RTP before the flood: the gaps are measured from its start
    before = control.call(setup.data, "status")["overload"]["refused"]
    start = time.time()
    step = run_step(
        SippSetup(**{**asdict(sipp), "extra": FLOOD_SIPP}),
        setup.core,
        round(fig.offered_rate),
        seconds,
    )
    end = time.time()
    status = control.call(setup.data, "status")
    fig.call_survived = [c["state"] for c in status["calls"]] == ["answered"]
    rtp.stop()
    fig.count = step.count
    fig.answered = step.successful
    fig.refused = step.failures.get("UnexpectedMessage", 0)
    fig.other_failures = {k: v for k, v in step.failures.items() if k != "UnexpectedMessage"}
    fig.sent_rate, fig.answered_rate, fig.refused_rate = sending_rates(
        sipp.workdir / f"stat-{round(fig.offered_rate)}.csv"
    )
    fig.answered_pct_of_max = 100 * fig.answered_rate / maximum
    fig.core_cpu_pct = step.core_cpu_pct
    fig.box_refused = status["overload"]["refused"] - before
    fig.box_overload = status["overload"]
    media = {"caller": setup.uac_media, "callee": setup.uas_media}
    fig.relayed_gap_ms, fig.sent_gap_ms, fig.relayed_packets = largest_gaps(
        rtp.datagrams(), start, end, media
    )
    figures = calls_bench.finish_callers(setup, proc, stf, 1, hold + 90)
    fig.call_survived = fig.call_survived and figures.successful == 1
    return fig


def _answered(data: Path) -> bool:
    from appliance import control

    try:
        return [c["state"] for c in control.call(data, "status")["calls"]] == ["answered"]
    except (control.ControlError, OSError):
        return False


def report(result: Result) -> None:
    f = result.flood
    m = result.machine
    print()
    print(
        f"maximum REGISTER rate (< 1% failed, >= 90% of offered): {result.max_register_rate:.0f}/s"
    )
    print(
        f"maximum call rate: {result.max_call_rate:.1f}/s"
        if result.call_steps
        else "maximum call rate: not measured"
    )
    print(
        f"flood: {f.offered_rate:.0f}/s offered ({f.sent_rate:.0f}/s sent by sipp) for"
        f" {result.config['flood_s']:g} s: 200s at {f.answered_rate:.0f}/s"
        f" ({f.answered_pct_of_max:.0f}% of the maximum; bar {100 * ANSWERED_BAR:.0f}%),"
        f" 503s at {f.refused_rate:.0f}/s ({f.refused} in all, the box counted"
        f" {f.box_refused}); other failures {f.other_failures or 'none'}; core CPU"
        f" {f.core_cpu_pct:.0f}%"
    )
    for side in ("caller", "callee"):
        print(
            f"  RTP relayed to the {side}: largest gap {f.relayed_gap_ms.get(side, 0):.0f} ms"
            f" (bar {GAP_BAR_MS:.0f}), {f.relayed_packets.get(side, 0)} packets; largest gap"
            f" in what the {side} sent {f.sent_gap_ms.get(side, 0):.0f} ms"
        )
    print(f"  the call {'survived and hung up cleanly' if f.call_survived else 'FAILED'}")
    after = result.rss_after_mb
    print(
        f"RSS: idle {result.idle_rss_mb:.1f} MiB, peak {result.peak_rss_mb:.1f} MiB, after"
        f" {len(after)} s {after[-1] if after else 0:.1f} MiB; within {100 * RSS_BAR:.0f}% of"
        f" idle after {result.seconds_to_idle if result.seconds_to_idle is not None else '-'} s"
    )
    print(
        f"machine: {m['cpu_model']}; nproc {m['nproc']}; kernel {m['kernel']};"
        f" Python {m['python']}; {m['sipp']}; {m['date']}; code {m['code']};"
        f" busy before the run {m['background_busy_pct']}%"
    )


def _on_sigterm(_signum: int, _frame: object) -> None:
    raise SystemExit(143)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench/overload: {exc}", file=sys.stderr)
        return 2
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0
