"""Setup-page benchmark: dashboard first paint in headless Chromium with a loaded box, and the
idle RSS of `pbx web`. See `bench/web --help`.

The box is a real `pbx run` and `pbx web` over a temporary data directory holding EXTENSIONS
extensions and CDRS call records (written straight into SQLite, the way the core writes them).
Chromium (Debian's, driven by Playwright) logs in, then loads the dashboard LOADS times; each
load's first paint and first contentful paint come from the browser's Paint Timing API
(milliseconds from the navigation's start, so the server's answer is included)."""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.register_bench import machine_info, rss_mb

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ADMIN = ("admin", "Bench-Office-2026")
IDLE_WAIT = 8.0
"""Seconds the web service is left alone before its idle RSS is read: longer than its malloc
trimmer's quiet spell (appliance.web.server.TRIM_INTERVAL)."""


class BenchError(RuntimeError):
    """The benchmark could not run; `str()` says why."""


@dataclass
class Result:
    extensions: int
    cdrs: int
    loads: int
    first_paint_ms: list[float]
    first_contentful_paint_ms: list[float]
    rss_start_mb: float
    rss_after_pages_mb: float
    rss_idle_mb: float
    machine: dict[str, Any]
    date: str

    def summary(self) -> dict[str, float]:
        fp, fcp = sorted(self.first_paint_ms), sorted(self.first_contentful_paint_ms)
        return {
            "first_paint_median_ms": fp[len(fp) // 2],
            "first_paint_max_ms": fp[-1],
            "first_contentful_paint_median_ms": fcp[len(fcp) // 2],
            "first_contentful_paint_max_ms": fcp[-1],
        }


def populate(data: Path, extensions: int, records: int) -> None:
    """The admin, `extensions` extensions from 1000 on and `records` CDRs over 30 days."""
    from appliance.store import cdrs, settings, users
    from appliance.store import extensions as ext
    from appliance.store.db import open_db

    db = open_db(data)
    users.add_first_admin(db, *ADMIN)
    settings.set_text(db, "web.setup_done", "1")
    settings.set_value(db, "office.name", "Bench office")
    numbers = [str(1000 + i) for i in range(extensions)]
    for number in numbers:
        ext.add(db, number, f"Phone {number}")
    rng = random.Random(4)
    now = time.time()
    batch: list[cdrs.Cdr] = []
    for _ in range(records):
        start = now - rng.uniform(0, 30 * 86400)
        answered = rng.random() < 0.7
        talk = rng.uniform(5, 600) if answered else 0.0
        caller, callee = rng.sample(numbers, 2)
        batch.append(
            cdrs.Cdr(
                id=uuid.uuid4().hex, started_at=start, ended_at=start + 3 + talk,
                caller=caller, caller_name=f"Phone {caller}", dialled=callee,
                disposition="answered" if answered else rng.choice(["busy", "no-answer"]),
                hangup_side=rng.choice(["caller", "callee"]), hangup_cause="BYE",
                answered_at=start + 3 if answered else None,
                answered_by=callee if answered else None, codec_caller="PCMU",
                codec_callee="PCMU",
            )
        )  # fmt: skip
        if len(batch) == 1000:
            cdrs.write(db, batch)
            batch = []
    cdrs.write(db, batch)
    db.conn.close()


class Service:
    """A `pbx` service started by the benchmark, stopped by its PID."""

    def __init__(self, data: Path, *args: str, ready: str) -> None:
        self.log = data / f"{args[0]}.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "appliance", "--data", str(data), *args],
                stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while ready not in self.log.read_text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"{args[0]} did not start:\n{self.log.read_text()}")
            time.sleep(0.05)
        self.line = next(x for x in self.log.read_text().splitlines() if ready in x)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def measure(url: str, loads: int) -> tuple[list[float], list[float]]:
    from playwright.sync_api import sync_playwright

    first_paint, contentful = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(f"{url}/login")
        page.fill("#username", ADMIN[0])
        page.fill("#password", ADMIN[1])
        page.click("main button[type=submit]")
        page.wait_for_selector("#live")
        for _ in range(loads):
            page.goto(f"{url}/", wait_until="load")
            deadline = time.monotonic() + 10
            timings: dict[str, float] = {}
            # Polled: the page's CSP forbids the eval that wait_for_function would need.
            while "first-contentful-paint" not in timings:
                if time.monotonic() > deadline:
                    raise BenchError("the dashboard never painted")
                timings = page.evaluate(
                    "Object.fromEntries(performance.getEntriesByType('paint')"
                    ".map(e => [e.name, e.startTime]))"
                )
            first_paint.append(round(float(timings["first-paint"]), 1))
            contentful.append(round(float(timings["first-contentful-paint"]), 1))
        browser.close()
    return first_paint, contentful


def run(args: argparse.Namespace) -> Result:
    if not Path(CHROMIUM).exists():
        raise BenchError(f"{CHROMIUM} is missing: apt-get install chromium")
    work = Path(tempfile.mkdtemp(prefix="pbx-web-bench-"))
    print(f"data in {work}", flush=True)
    services: list[Service] = []
    try:
        populate(work, args.extensions, args.cdrs)
        services.append(Service(work, "run", "--sip", "127.0.0.1:0", ready="pbx-core: SIP"))
        web = Service(work, "web", "--listen", "127.0.0.1:0", ready="pbx-web: http")
        services.append(web)
        url = web.line.split("pbx-web: ", 1)[1].rstrip("/")
        time.sleep(1.0)  # let start-up settle before the first reading
        rss_start = rss_mb(web.proc.pid)
        first_paint, contentful = measure(url, args.loads)
        rss_pages = rss_mb(web.proc.pid)
        time.sleep(IDLE_WAIT)
        rss_idle = rss_mb(web.proc.pid)
    finally:
        for service in reversed(services):
            service.stop()
        shutil.rmtree(work, ignore_errors=True)
    return Result(
        args.extensions, args.cdrs, args.loads, first_paint, contentful, rss_start, rss_pages,
        rss_idle, machine_info(), time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="bench/web", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    p.add_argument("--extensions", type=int, default=200, help="extensions (default 200)")
    p.add_argument("--cdrs", type=int, default=10_000, help="call records (default 10000)")
    p.add_argument("--loads", type=int, default=20, help="dashboard loads timed (default 20)")
    p.add_argument("--quick", action="store_true", help="20 extensions, 500 CDRs, 3 loads")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:
        args.extensions, args.cdrs, args.loads = 20, 500, 3
    try:
        result = run(args)
    except BenchError as exc:
        print(f"bench/web: {exc}", file=sys.stderr)
        return 1
    summary = result.summary()
    m = result.machine
    print(f"{result.date}; machine: {m['cpu_model']}; nproc {m['nproc']}; python {m['python']}")
    print(f"box: {result.extensions} extensions, {result.cdrs} CDRs; {result.loads} loads")
    print(f"dashboard first paint: median {summary['first_paint_median_ms']:.0f} ms, "
          f"max {summary['first_paint_max_ms']:.0f} ms (bar: <= 300 ms)")  # fmt: skip
    print(f"dashboard first contentful paint: median "
          f"{summary['first_contentful_paint_median_ms']:.0f} ms, "
          f"max {summary['first_contentful_paint_max_ms']:.0f} ms")  # fmt: skip
    print(f"pbx-web RSS: {result.rss_start_mb:.1f} MiB after start, "
          f"{result.rss_after_pages_mb:.1f} MiB after the pages, "
          f"{result.rss_idle_mb:.1f} MiB idle (bar: <= 35 MB)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({**asdict(result), **summary}, indent=1))
    return 0
