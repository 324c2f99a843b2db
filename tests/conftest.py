"""Shared fixtures: real `pbx` service processes over a real SQLite file in a temp directory."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

import pytest

from tests.feed import Feed, FeedClosed

READY_PREFIX = "pbx-core: SIP on udp+tcp "

LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) \S+: ")
"""The first line of a record in the services' log format (`appliance/cli.py`)."""
PRINTED = re.compile(r"^pbx(-\w+)?: ")
"""A line the services print themselves (`pbx-core: stopped`, `pbx: error: ...`)."""
FAILURE_LEVELS = frozenset({"ERROR", "CRITICAL"})
TRACEBACK_MARKS = (
    "Traceback (most recent call last):",  # an exception printed, logged or uncaught
    "Exception in thread",  # threading.excepthook: a thread died
    "Exception ignored in",  # sys.unraisablehook: raised in __del__, a callback at exit
    "Fatal Python error",
)


CHAINED = ("During handling of the above exception", "The above exception was the direct")


def _new_traceback(block: list[str]) -> bool:
    """Whether a traceback starting after `block` is one of its own: after printed lines, or
    after another traceback it is not chained to; else it is the traceback of the record (or
    of the dead thread) that heads the block."""
    head = block[0]
    if not (LOG_RECORD.match(head) or head.startswith(TRACEBACK_MARKS)):
        return True
    if not any(line.startswith(TRACEBACK_MARKS[0]) for line in block):
        return False
    last = next((line for line in reversed(block) if line.strip()), "")
    return not last.startswith(CHAINED)


def log_problems(lines: list[str], expected: list[re.Pattern[str]]) -> list[str]:
    """What in a service's output shows a fault: records at ERROR or CRITICAL and anything
    with a traceback, each as its block of lines (a record with its continuation lines), less
    the blocks one of `expected` matches (searched in the whole block)."""
    blocks: list[list[str]] = []
    for line in lines:
        heads = LOG_RECORD.match(line) or PRINTED.match(line) or not blocks
        heads = heads or line.startswith(TRACEBACK_MARKS[1:])
        if heads or (line.startswith(TRACEBACK_MARKS[0]) and _new_traceback(blocks[-1])):
            blocks.append([line])
        else:
            blocks[-1].append(line)
    problems = []
    for block in blocks:
        record = LOG_RECORD.match(block[0])
        failed = record is not None and record["level"] in FAILURE_LEVELS
        if failed or any(line.startswith(TRACEBACK_MARKS) for line in block):
            text = "\n".join(block)
            if not any(pattern.search(text) for pattern in expected):
                problems.append(text)
    return problems


def pbx_cli(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `pbx` CLI (as `python -m appliance`) against `data`."""
    return subprocess.run(
        [sys.executable, "-m", "appliance", "--data", str(data), *args],
        capture_output=True, text=True, check=check, timeout=60,
    )  # fmt: skip


@dataclass
class ServiceProcess:
    """A `pbx` service child process over `data`, its output read all the time."""

    data: Path
    proc: subprocess.Popen[str] | None = None
    lines: Feed[str] = field(default_factory=Feed, repr=False)
    _reader: threading.Thread = field(default_factory=threading.Thread, repr=False)
    netns_pid: int | None = None
    log: list[str] = field(default_factory=list, repr=False)
    """Every line the service printed, over all its (re)starts."""
    expected_errors: list[re.Pattern[str]] = field(default_factory=list, repr=False)
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables for the service beside the test's own (NOTIFY_SOCKET, say)."""
    scan_log: ClassVar[bool] = False
    """Whether the test fails when the output shows a fault (see :func:`log_problems`)."""

    def expect_error(self, pattern: str) -> None:
        """Declare that this test makes the service log an error (or a traceback) that
        `pattern` (a regular expression) finds: the log scan lets those blocks pass."""
        self.expected_errors.append(re.compile(pattern))

    def log_problems(self) -> list[str]:
        """Faults in the output not declared with :meth:`expect_error`."""
        return log_problems(self.log, self.expected_errors)

    def spawn(self, *args: str) -> None:
        """Start `pbx --data DATA ARGS` (inside the netns when `netns_pid` is set)."""
        argv = [sys.executable, "-m", "appliance", "--data", str(self.data), *args]
        if self.netns_pid is not None:
            argv = ["nsenter", "-t", str(self.netns_pid), "-n", *argv]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **self.env},
        )  # fmt: skip
        # Drain the output all the time: a service blocked on a full pipe would stop serving.
        self.lines = Feed()
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.log.append(line.rstrip("\n"))
            self.lines.append(line.rstrip("\n"))
        self.lines.close()

    @property
    def output(self) -> list[str]:
        """Every line the service has printed since it (re)started."""
        return self.lines.items

    def wait_output(self, text: str, timeout: float = 20.0) -> str:
        """Wait until the service has printed a line containing `text`; return that line."""
        try:
            return self.lines.wait(lambda line: text in line, timeout)[0]
        except FeedClosed as exc:
            output = "\n".join(self.output)
            raise AssertionError(
                f"service never printed {text!r} ({exc}); output:\n{output}"
            ) from None

    def stop(self) -> int:
        """SIGTERM the service (by PID) and wait; return its exit status."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._reader.join(timeout=10)
        return rc


@dataclass
class CoreProcess(ServiceProcess):
    """A `pbx run` child process; `host`/`port` are where its SIP transports listen.

    A test fails when the core printed a traceback or logged at ERROR or above (issue 13):
    declare what a test provokes on purpose with :meth:`expect_error` or the marker
    `@pytest.mark.core_log_expects(PATTERN, ...)`."""

    scan_log: ClassVar[bool] = True

    sip: str = "127.0.0.1:0"
    host: str = ""
    port: int = 0
    tls_port: int = 0
    """Where SIP over TLS listens (before the first start 0: a free port; after a start
    without TLS, 0 too)."""
    run_args: tuple[str, ...] = ()

    def start(self, timeout: float = 20.0) -> None:
        # TLS on a free port, or the one it had before a restart: never the SIP port + 1,
        # which another test's socket may hold.
        self.spawn("run", "--sip", self.sip, "--tls", str(self.tls_port), *self.run_args)
        line = self.wait_output(READY_PREFIX, timeout)
        hostport = line[len(READY_PREFIX) :].split(",")[0]
        host, _, port = hostport.rpartition(":")
        self.host, self.port = host, int(port)
        tls = [part for part in line.split(", ") if part.startswith("tls ")]
        self.tls_port = int(tls[0].rpartition(":")[2]) if tls and ":" in tls[0] else 0

    @property
    def demo_passwords(self) -> dict[str, str]:
        """Passwords `run --demo` printed: lines `  101  password SECRET`."""
        found = {}
        for line in self.output:
            parts = line.split()
            if len(parts) == 3 and parts[1] == "password":
                found[parts[0]] = parts[2]
        return found

    def restart(self) -> None:
        """Stop and start again on the same address and data directory."""
        self.sip = f"{self.host}:{self.port}"
        self.stop()
        self.start()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return pbx_cli(self.data, *args, check=check)

    def add_extension(self, number: str, password: str | None = None) -> str:
        """Create an extension; return its password."""
        if password is None:
            out = self.cli("ext", "add", number).stdout
            return out.split()[-1]
        self.cli("ext", "add", number, "--password", password)
        return password


S = TypeVar("S", bound=ServiceProcess)


def stopped_after(kind: type[S], request: pytest.FixtureRequest | None = None) -> Iterator[type[S]]:
    """For a factory fixture: a subclass of `kind` whose every process, once spawned, is
    stopped (by its PID) when the test ends; then, for a kind that scans its log, the test
    fails if any process's output shows a fault that neither it nor the test's
    `core_log_expects` marker declared."""
    spawned: list[S] = []
    expected = [
        re.compile(pattern)
        for marker in (request.node.iter_markers("core_log_expects") if request else ())
        for pattern in marker.args
    ]

    class Tracked(kind):  # type: ignore[valid-type,misc]
        def spawn(self, *args: str) -> None:
            super().spawn(*args)
            if all(service is not self for service in spawned):
                spawned.append(self)
                self.expected_errors.extend(expected)

    yield Tracked
    for service in spawned:
        if service.proc is not None and service.proc.poll() is None:
            service.stop()
    faults = [(service, service.log_problems()) for service in spawned if service.scan_log]
    if any(problems for _, problems in faults):
        report = "\n\n".join(
            f"pid {service.proc.pid if service.proc else '?'}:\n" + "\n---\n".join(problems)
            for service, problems in faults
            if problems
        )
        pytest.fail(
            "the core logged errors or tracebacks the test did not declare (expect_error or"
            f" @pytest.mark.core_log_expects):\n{report}",
            pytrace=False,
        )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "core_log_expects(*patterns): regular expressions of errors or tracebacks the test"
        " makes the core log on purpose (the log scan of tests/conftest.py lets them pass)",
    )


@pytest.fixture
def core_factory(request: pytest.FixtureRequest) -> Iterator[type[CoreProcess]]:
    """Build cores with `core_factory(data=..., sip=...)`; all are stopped after the test,
    and the test fails if one logged an error or a traceback it did not declare."""
    yield from stopped_after(CoreProcess, request)


@pytest.fixture
def core(core_factory: type[CoreProcess], tmp_path: Path) -> CoreProcess:
    """A running core on 127.0.0.1 (a free port), default settings (MD5 digest)."""
    proc = core_factory(data=tmp_path / "var")
    proc.start()
    return proc


@dataclass
class WebProcess(ServiceProcess):
    """A `pbx web` child process; `url` is where it serves (`http://127.0.0.1:PORT`)."""

    listen: str = "127.0.0.1:0"
    https: bool = False
    url: str = ""

    def start(self, timeout: float = 20.0) -> None:
        self.spawn("web", "--listen", self.listen, *(["--https"] if self.https else []))
        line = self.wait_output("pbx-web: http", timeout)
        self.url = line.split("pbx-web: ", 1)[1].rstrip("/")


@pytest.fixture
def web_factory() -> Iterator[type[WebProcess]]:
    """Build web services with `web_factory(data=...)`; all are stopped after the test."""
    yield from stopped_after(WebProcess)
