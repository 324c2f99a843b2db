"""Shared fixtures: real `pbx` service processes over a real SQLite file in a temp directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest

from tests.feed import Feed, FeedClosed

READY_PREFIX = "pbx-core: SIP on udp+tcp "


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

    def spawn(self, *args: str) -> None:
        """Start `pbx --data DATA ARGS` (inside the netns when `netns_pid` is set)."""
        argv = [sys.executable, "-m", "appliance", "--data", str(self.data), *args]
        if self.netns_pid is not None:
            argv = ["nsenter", "-t", str(self.netns_pid), "-n", *argv]
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        # Drain the output all the time: a service blocked on a full pipe would stop serving.
        self.lines = Feed()
        self._reader = threading.Thread(target=self._read, args=(self.proc,), daemon=True)
        self._reader.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
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
    """A `pbx run` child process; `host`/`port` are where its SIP transports listen."""

    sip: str = "127.0.0.1:0"
    host: str = ""
    port: int = 0
    run_args: tuple[str, ...] = ()

    def start(self, timeout: float = 20.0) -> None:
        self.spawn("run", "--sip", self.sip, *self.run_args)
        line = self.wait_output(READY_PREFIX, timeout)
        hostport = line[len(READY_PREFIX) :].split(",")[0]
        host, _, port = hostport.rpartition(":")
        self.host, self.port = host, int(port)

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


def stopped_after(kind: type[S]) -> Iterator[type[S]]:
    """For a factory fixture: a subclass of `kind` whose every process, once spawned, is
    stopped (by its PID) when the test ends."""
    spawned: list[S] = []

    class Tracked(kind):  # type: ignore[valid-type,misc]
        def spawn(self, *args: str) -> None:
            super().spawn(*args)
            if all(service is not self for service in spawned):
                spawned.append(self)

    yield Tracked
    for service in spawned:
        if service.proc is not None and service.proc.poll() is None:
            service.stop()


@pytest.fixture
def core_factory() -> Iterator[type[CoreProcess]]:
    """Build cores with `core_factory(data=..., sip=...)`; all are stopped after the test."""
    yield from stopped_after(CoreProcess)


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
