"""Registrar throughput benchmark: sipp REGISTER-with-digest against a real `pbx run`.

One registration is the whole RFC 3261 exchange: REGISTER, 401 challenge, REGISTER with an MD5
digest, 200. The core is pinned to one CPU and sipp to another; sipp offers rising rates, each
step bounded in count (`-m RATE*DURATION`) and time (`-timeout`, plus a hard subprocess timeout),
until a step fails 1 % or more of its registrations.

Extensions are created through `appliance.store.extensions.add`, the function `pbx ext add`
calls, in one process (a thousand `pbx ext add` processes would take minutes). Everything else
goes through the `pbx` CLI. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = ROOT / "tests" / "interop" / "sipp" / "register.xml"
READY_PREFIX = "pbx-core: SIP on udp+tcp "
DEFAULT_RATES = (500, 1000, 1500, 2000, 2500, 3000, 3500, 4000)
QUICK_RATES = (200, 500)
FAIL_LIMIT_PCT = 1.0
FIRST_NUMBER = 100000  # six-digit extension numbers: up to 899,999 extensions
CLK_TCK = os.sysconf("SC_CLK_TCK")


class BenchError(RuntimeError):
    """The benchmark cannot go on; `str()` says why."""


@dataclass
class Step:
    offered_rate: int
    count: int
    created: int = 0
    successful: int = 0
    failed_sipp: int = 0
    failures_pct: float = 100.0
    elapsed_s: float = 0.0
    achieved_rate: float = 0.0
    core_cpu_pct: float = 0.0
    core_sys_pct: float = 0.0
    sipp_cpu_pct: float = 0.0
    core_wait_pct: float = 0.0
    core_cpu_ms_per_reg: float = 0.0
    retransmissions: int = 0
    avg_latency_ms: float = 0.0
    rss_mb_after: float = 0.0
    sipp_exit: int | None = None
    timed_out: bool = False
    failures: dict[str, int] = field(default_factory=dict)
    """Failed registrations by sipp's reason (UnexpectedMessage: a 503, for bench/overload)."""

    @property
    def passed(self) -> bool:
        return self.failures_pct < FAIL_LIMIT_PCT


@dataclass
class Result:
    machine: dict[str, Any]
    config: dict[str, Any]
    startup_rss_mb: float = 0.0
    idle_rss_mb: float = 0.0
    steps: list[Step] = field(default_factory=list)

    def best(self) -> Step | None:
        """The passing step (< 1 % failures) with the highest achieved rate."""
        passing = [s for s in self.steps if s.passed]
        return max(passing, key=lambda s: s.achieved_rate) if passing else None

    def best_sustained(self) -> Step | None:
        """The highest passing step whose achieved rate kept up (>= 95 % of offered)."""
        kept = [s for s in self.steps if s.passed and s.achieved_rate >= 0.95 * s.offered_rate]
        return max(kept, key=lambda s: s.offered_rate) if kept else None

    def to_json(self) -> dict[str, Any]:
        best, sustained = self.best(), self.best_sustained()
        return {
            "machine": self.machine,
            "config": self.config,
            "startup_rss_mb": self.startup_rss_mb,
            "idle_rss_mb": self.idle_rss_mb,
            "steps": [{**asdict(s), "passed": s.passed} for s in self.steps],
            "max_rate_under_1pct": best.offered_rate if best else None,
            "achieved_rate_at_max": best.achieved_rate if best else None,
            "core_cpu_pct_at_max": best.core_cpu_pct if best else None,
            "max_rate_sustained": sustained.offered_rate if sustained else None,
        }


# ---------------------------------------------------------------- /proc readings


def rss_mb(pid: int) -> float:
    """VmRSS of `pid` in MiB (0.0 when it is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in text.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of the whole process `pid` (all threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK  # fields 14 and 15 of proc(5)


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process `pid` (all threads), in seconds."""
    return sum(cpu_times(pid))


def runqueue_wait(pid: int) -> float:
    """Seconds the core's main thread has spent runnable but waiting for a CPU (schedstat)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def busy_cpu_pct(seconds: float = 1.0) -> float:
    """How busy the whole machine is (all CPUs, %), from /proc/stat over `seconds`."""

    def sample() -> tuple[int, int]:
        vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = vals[3] + vals[4]  # idle + iowait
        return sum(vals[:8]), idle

    total0, idle0 = sample()
    time.sleep(seconds)
    total1, idle1 = sample()
    return 100 * (1 - (idle1 - idle0) / max(1, total1 - total0))


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


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
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sipp": _sipp_version(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _sipp_version() -> str:
    try:
        out = subprocess.run(
            ["sipp", "-v"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    for line in out.splitlines():
        if "SIPp" in line:
            return line.strip()
    return "unknown"


# ---------------------------------------------------------------- set-up


def free_udp_port() -> int:
    """A UDP port on 127.0.0.1 that nobody holds right now (never 5060)."""
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != 5060:
            return port
    raise BenchError("no free UDP port on 127.0.0.1")


def make_password(number: str) -> str:
    """16 letters and digits, both present, not containing the number (the store's rules).

    It starts with a letter: sipp reads a password beginning with "0x" as hex bytes, and then
    answers the challenge wrongly (a 403 that is the benchmark's fault, not the registrar's).
    """
    alphabet = string.ascii_letters + string.digits
    for _ in range(100):
        pw = secrets.choice(string.ascii_letters)
        pw += "".join(secrets.choice(alphabet) for _ in range(15))
        if any(c.isdigit() for c in pw) and number not in pw:
            return pw
    raise BenchError("could not generate a password")  # pragma: no cover


def pbx_cli(pbx: str, data: Path, *args: str) -> None:
    proc = subprocess.run(
        [pbx, "--data", str(data), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise BenchError(f"pbx {' '.join(args)} failed: {proc.stderr.strip() or proc.stdout}")


def create_extensions(data: Path, count: int) -> list[tuple[str, str]]:
    """Create `count` extensions with their own passwords; return (number, password) pairs."""
    from appliance.store import extensions
    from appliance.store.db import open_db

    creds = [(str(FIRST_NUMBER + i), "") for i in range(count)]
    creds = [(n, make_password(n)) for n, _ in creds]
    db = open_db(data)
    try:
        for number, password in creds:
            extensions.add(db, number, "", password)
    finally:
        db.conn.close()
    return creds


def write_injection(path: Path, creds: Sequence[tuple[str, str]], order: str, expires: int) -> None:
    lines = [order]
    lines += [f"{n};[authentication username={n} password={p}];{expires}" for n, p in creds]
    path.write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------- the core


class Core:
    """A `pbx run` child pinned with taskset; stopped by its PID (SIGTERM, then wait)."""

    def __init__(self, pbx: str, data: Path, log: Path, cpu: int | None) -> None:
        self.log_path = log
        argv = [pbx, "--data", str(data), "run", "--sip", "127.0.0.1:0"]
        if cpu is not None:
            argv = ["taskset", "-c", str(cpu), *argv]  # taskset execs: same PID
        self._log = log.open("w")
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.pid = self.proc.pid
        self.port = 0

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith(READY_PREFIX):
                    hostport = line[len(READY_PREFIX) :].split(",")[0]
                    self.port = int(hostport.rpartition(":")[2])
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise BenchError("core did not start; its output:\n" + self.tail())

    def tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            rc = self.proc.wait(timeout=15)
        self._log.close()
        return rc


# ---------------------------------------------------------------- sipp steps


def _epoch(cell: str) -> float:
    """A sipp time cell `YYYY-MM-DD<TAB>HH:MM:SS.ffffff<TAB>EPOCH` → EPOCH."""
    return float(cell.rsplit("\t", maxsplit=1)[-1])


def _duration_ms(cell: str) -> float:
    """A sipp duration `HH:MM:SS:uuuuuu` → milliseconds."""
    h, m, s, us = (int(x) for x in cell.split(":"))
    return ((h * 60 + m) * 60 + s) * 1000 + us / 1000


def read_stats(path: Path) -> dict[str, str] | None:
    """The last (final, cumulative) row of a sipp `-stf` file, by column name."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return None
    if len(lines) < 2:
        return None
    names = lines[0].rstrip(";").split(";")
    values = lines[-1].rstrip(";").split(";")
    return dict(zip(names, values, strict=False))


@dataclass(frozen=True)
class SippSetup:
    target_port: int
    scenario: Path
    injection: Path
    local_port: int
    cpu: int | None
    workdir: Path
    recv_timeout_ms: int
    extra: tuple[str, ...] = ()
    """More sipp arguments (bench/overload: `-nd` and larger socket buffers)."""


def run_step(setup: SippSetup, core: Core, rate: int, duration: float) -> Step:
    count = max(1, round(rate * duration))
    step = Step(offered_rate=rate, count=count)
    stf = setup.workdir / f"stat-{rate}.csv"
    out = setup.workdir / f"sipp-{rate}.out"
    sipp_timeout = int(duration * 2 + 20)  # sipp's own bound, in seconds
    argv = [
        "sipp",
        f"127.0.0.1:{setup.target_port}",
        "-sf",
        str(setup.scenario),
        "-inf",
        str(setup.injection),
        "-i",
        "127.0.0.1",
        "-p",
        str(setup.local_port),
        "-t",
        "u1",
        "-r",
        str(rate),
        "-rp",
        "1000",
        "-m",
        str(count),
        "-recv_timeout",
        str(setup.recv_timeout_ms),
        "-timeout",
        str(sipp_timeout),
        "-max_recv_loops",
        "10000",
        "-max_sched_loops",
        "10000",
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(stf),
        "-fd",
        "1",
        *setup.extra,
    ]
    if setup.cpu is not None:
        argv = ["taskset", "-c", str(setup.cpu), *argv]
    with out.open("w") as sink:
        kids0 = _children_cpu()
        wait0 = runqueue_wait(core.pid)
        sys0 = cpu_times(core.pid)[1]
        cpu0, t0 = cpu_seconds(core.pid), time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)
        try:
            step.sipp_exit = proc.wait(timeout=sipp_timeout + 15)
        except subprocess.TimeoutExpired:
            step.timed_out = True
            proc.kill()  # this one child, by its PID
            proc.wait(timeout=15)
        except BaseException:  # interrupted (SIGINT/SIGTERM): leave no sipp behind
            proc.kill()
            proc.wait(timeout=15)
            raise
        wall = time.monotonic() - t0
        cpu1 = cpu_seconds(core.pid) if core.alive() else cpu0
        sys1 = cpu_times(core.pid)[1] if core.alive() else sys0
        wait1 = runqueue_wait(core.pid) if core.alive() else wait0
    step.core_cpu_pct = 100 * (cpu1 - cpu0) / wall
    step.core_sys_pct = 100 * (sys1 - sys0) / wall
    step.sipp_cpu_pct = 100 * (_children_cpu() - kids0) / wall  # sipp is the only child reaped
    step.rss_mb_after = rss_mb(core.pid)
    stats = read_stats(stf)
    step.elapsed_s = wall
    if stats is not None:
        step.created = int(stats.get("TotalCallCreated", "0"))
        step.successful = int(stats.get("SuccessfulCall(C)", "0"))
        step.failed_sipp = int(stats.get("FailedCall(C)", "0"))
        step.retransmissions = int(stats.get("Retransmissions(C)", "0"))
        step.avg_latency_ms = _duration_ms(stats.get("CallLength(C)", "0:0:0:0"))
        step.failures = {
            name[len("Failed") : -len("(C)")]: int(value)
            for name, value in stats.items()
            if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)"
            and value.isdigit() and int(value)
        }  # fmt: skip
        try:
            step.elapsed_s = _epoch(stats["CurrentTime"]) - _epoch(stats["StartTime"])
        except (KeyError, ValueError):
            pass
    # Anything offered that did not succeed counts: failed, timed out or never sent.
    step.failures_pct = 100 * (count - step.successful) / count
    step.achieved_rate = step.successful / step.elapsed_s if step.elapsed_s > 0 else 0.0
    step.core_wait_pct = 100 * (wait1 - wait0) / wall
    step.core_cpu_ms_per_reg = 1000 * (cpu1 - cpu0) / step.successful if step.successful else 0.0
    if stats is None:
        print(f"  (sipp wrote no statistics; its output:)\n{_tail(out)}", flush=True)
    return step


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ---------------------------------------------------------------- driver


def parse_rates(text: str) -> list[int]:
    try:
        rates = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not rates or any(r <= 0 for r in rates):
        raise argparse.ArgumentTypeError("rates must be positive")
    return rates


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/register",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=__doc__,
        epilog=(
            "Output: one line per step (offered rate, achieved rate = successful registrations /"
            " elapsed seconds, failures % of offered, the core's CPU as % of one core), then the"
            " highest offered rate with < 1 % failures, its CPU, the idle RSS and the machine."
            "\nExample: .venv/bin/python bench/register --rates 1000,2000 --duration 5"
            " --json out.json"
        ),
    )
    p.add_argument(
        "--rates",
        type=parse_rates,
        default=None,
        help="comma-separated registrations/s to offer, in order (default "
        + ",".join(map(str, DEFAULT_RATES))
        + ")",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of traffic per step: sipp -m RATE*DURATION (default 10)",
    )
    p.add_argument(
        "--extensions",
        type=int,
        default=None,
        metavar="N",
        help="extensions to create, each with its own password (default 1000)",
    )
    p.add_argument(
        "--order",
        choices=("SEQUENTIAL", "RANDOM"),
        default="SEQUENTIAL",
        help="sipp injection-file line selection (default SEQUENTIAL)",
    )
    p.add_argument("--expires", type=int, default=3600, help="Expires asked for (default 3600)")
    p.add_argument(
        "--settle",
        type=float,
        default=None,
        help="seconds to wait after start-up before the idle RSS reading (default 3)",
    )
    p.add_argument("--pause", type=float, default=1.0, help="seconds between steps (default 1)")
    p.add_argument(
        "--confirm",
        type=int,
        default=1,
        help="after a failing step, stop unless one of the next CONFIRM steps passes (default 1)",
    )
    p.add_argument(
        "--recv-timeout",
        type=int,
        default=5000,
        metavar="MS",
        help="sipp -recv_timeout: a registration waiting longer fails (default 5000)",
    )
    p.add_argument("--core-cpu", type=int, default=0, help="CPU for the core (default 0)")
    p.add_argument("--sipp-cpu", type=int, default=1, help="CPU for sipp (default 1)")
    p.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    p.add_argument(
        "--sipp-port",
        type=int,
        default=0,
        help="sipp's local UDP port, -p (default: a free one, never 5060)",
    )
    p.add_argument(
        "--pbx", default=None, help="the pbx command (default .venv/bin/pbx of this checkout)"
    )
    p.add_argument(
        "--scenario",
        type=Path,
        default=DEFAULT_SCENARIO,
        help="sipp scenario (default tests/interop/sipp/register.xml)",
    )
    p.add_argument(
        "--json",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the figures to FILE as JSON",
    )
    p.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, sipp statistics)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 100 extensions, rates 200,500 for 3 s each, 1 s settle",
    )
    return p


def _on_sigterm(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(143)  # unwind through the finally blocks: stop the core, clean up


def run(args: argparse.Namespace) -> Result:
    quick = bool(args.quick)
    rates: list[int] = args.rates or list(QUICK_RATES if quick else DEFAULT_RATES)
    duration: float = args.duration or (3.0 if quick else 10.0)
    n_ext: int = args.extensions or (100 if quick else 1000)
    settle: float = args.settle if args.settle is not None else (1.0 if quick else 3.0)
    if not 1 <= n_ext <= 999999 - FIRST_NUMBER:
        raise BenchError(f"--extensions must be 1 to {999999 - FIRST_NUMBER}")
    if duration <= 0 or duration > 600:
        raise BenchError("--duration must be in (0, 600] seconds")
    pbx = args.pbx or str(ROOT / ".venv" / "bin" / "pbx")
    if shutil.which(pbx) is None:
        raise BenchError(f"no pbx command at {pbx}")
    for tool in ("sipp",) + (() if args.no_pin else ("taskset",)):
        if shutil.which(tool) is None:
            raise BenchError(f"{tool} is not installed")
    if not args.scenario.is_file():
        raise BenchError(f"no sipp scenario at {args.scenario}")
    core_cpu: int | None = None if args.no_pin else args.core_cpu
    sipp_cpu: int | None = None if args.no_pin else args.sipp_cpu
    allowed = os.sched_getaffinity(0)
    for cpu in (core_cpu, sipp_cpu):
        if cpu is not None and cpu not in allowed:
            raise BenchError(f"CPU {cpu} is not available (have {sorted(allowed)}); try --no-pin")
    sipp_port = args.sipp_port or free_udp_port()
    if sipp_port == 5060:
        raise BenchError("--sipp-port must not be 5060")

    result = Result(
        machine=machine_info(),
        config={
            "rates": rates,
            "duration_s": duration,
            "extensions": n_ext,
            "order": args.order,
            "expires": args.expires,
            "settle_s": settle,
            "core_cpu": core_cpu,
            "sipp_cpu": sipp_cpu,
            "recv_timeout_ms": args.recv_timeout,
            "digest": "MD5",
            "transport": "UDP 127.0.0.1",
            "quick": quick,
        },
    )
    background = busy_cpu_pct(1.0)
    result.machine["background_busy_pct"] = round(background, 1)
    if background > 10:
        print(
            f"warning: the machine is already {background:.0f}% busy (all CPUs) before the"
            " run; figures will be low: the core waits for its CPU (see 'CPU wait')",
            flush=True,
        )
    work = Path(tempfile.mkdtemp(prefix="pbx-bench-register-"))
    core: Core | None = None
    try:
        data = work / "var"
        pbx_cli(pbx, data, "config", "set", "sip.digest_algorithms", "MD5,SHA-256")
        t0 = time.monotonic()
        creds = create_extensions(data, n_ext)
        injection = work / "users.csv"
        write_injection(injection, creds, args.order, args.expires)
        print(
            f"created {n_ext} extensions in {time.monotonic() - t0:.1f} s; data in {work}",
            flush=True,
        )

        core = Core(pbx, data, work / "core.log", core_cpu)
        core.wait_ready(timeout=30)
        result.startup_rss_mb = rss_mb(core.pid)
        time.sleep(settle)
        result.idle_rss_mb = rss_mb(core.pid)
        print(
            f"core pid {core.pid} on 127.0.0.1:{core.port} (cpu {core_cpu}); sipp -p"
            f" {sipp_port} (cpu {sipp_cpu}); idle RSS {result.startup_rss_mb:.1f} MiB at"
            f" start-up, {result.idle_rss_mb:.1f} MiB after {settle:g} s",
            flush=True,
        )

        setup = SippSetup(
            core.port,
            args.scenario.resolve(),
            injection,
            sipp_port,
            sipp_cpu,
            work,
            args.recv_timeout,
        )
        print(TABLE_HEADER, flush=True)
        failing_run = 0
        for i, rate in enumerate(rates):
            if i:
                time.sleep(args.pause)
            if not core.alive():
                raise BenchError("the core exited during the run:\n" + core.tail())
            step = run_step(setup, core, rate, duration)
            result.steps.append(step)
            note = " (sipp killed at the time limit)" if step.timed_out else ""
            print(table_row(step) + note, flush=True)
            failing_run = 0 if step.passed else failing_run + 1
            if failing_run > args.confirm:
                break
        if not core.alive():
            raise BenchError("the core exited during the run:\n" + core.tail())
    finally:
        if core is not None:
            rc = core.stop()
            if rc not in (0, -signal.SIGTERM):
                print(f"warning: core exited with status {rc}:\n{core.tail()}", flush=True)
        if args.keep:
            print(f"kept {work}", flush=True)
        else:
            shutil.rmtree(work, ignore_errors=True)
    return result


TABLE_HEADER = (
    f"{'offered/s':>9} {'achieved/s':>10} {'failures':>9} {'core CPU':>9} {'of it sys':>9}"
    f" {'CPU wait':>9}"
    f" {'ms CPU/reg':>10} {'sipp CPU':>9} {'retrans':>8} {'avg ms':>8} {'RSS MiB':>8}"
)


def table_row(s: Step) -> str:
    return (
        f"{s.offered_rate:>9} {s.achieved_rate:>10.0f} {s.failures_pct:>8.2f}%"
        f" {s.core_cpu_pct:>8.0f}% {s.core_sys_pct:>8.0f}% {s.core_wait_pct:>8.0f}%"
        f" {s.core_cpu_ms_per_reg:>10.2f}"
        f" {s.sipp_cpu_pct:>8.0f}% {s.retransmissions:>8} {s.avg_latency_ms:>8.1f}"
        f" {s.rss_mb_after:>8.1f}"
    )


def report(result: Result) -> None:
    best = result.best()
    m = result.machine
    print()
    if best is None:
        print("highest rate with < 1% failures: none (every step failed 1% or more)")
    else:
        print(
            f"highest rate with < 1% failures: {best.achieved_rate:.0f}/s achieved"
            f" ({best.offered_rate}/s offered), core CPU {best.core_cpu_pct:.0f}% of one core"
        )
    sustained = result.best_sustained()
    if sustained is not None and sustained is not best:
        print(
            f"highest rate also achieved (>= 95% of offered): {sustained.offered_rate}/s,"
            f" core CPU {sustained.core_cpu_pct:.0f}%"
        )
    print(
        f"idle RSS of the core: {result.idle_rss_mb:.1f} MiB"
        f" (at start-up {result.startup_rss_mb:.1f} MiB)"
    )
    print(
        f"machine: {m['cpu_model']}; nproc {m['nproc']}; kernel {m['kernel']};"
        f" Python {m['python']}; {m['sipp']}; {m['date']};"
        f" busy before the run {m['background_busy_pct']}%"
    )
    if best is not None and best.core_cpu_ms_per_reg > 0:
        print(
            f"core CPU per registration at that rate: {best.core_cpu_ms_per_reg:.2f} ms"
            f" (one full core would do about {1000 / best.core_cpu_ms_per_reg:.0f}/s)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench/register: {exc}", file=sys.stderr)
        return 2
    report(result)
    if args.json is not None:
        args.json.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return 0
