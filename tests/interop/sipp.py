"""Run sipp (Debian ``sip-tester`` 3.6.1) scenarios against the box and read back the wire.

:func:`run_sipp` starts one sipp instance on its own local port (never 5060), loopback only,
for a fixed number of calls, and waits for it to exit. sipp's ``-trace_msg`` log is parsed
into :class:`SipMessage` values so a test can assert on every header the box sent back;
``-trace_err`` collects anything the scenario did not expect.

The scenarios live in ``tests/interop/sipp/``; they read an injection CSV whose rows are built
with :func:`credentials` (``USER;[authentication username=U password=P];EXPIRES``).
"""

from __future__ import annotations

import logging
import re
import shutil
import socket
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

SCENARIOS = Path(__file__).parent / "sipp"
"""Directory of the sipp scenario XML files."""

SIPP = shutil.which("sipp") or "/usr/bin/sipp"

Transport = Literal["u1", "t1"]
"""sipp `-t` modes used here: UDP or TCP, one socket for all calls."""

# sipp 3.6.1 writes each traced message after a line of dashes and a timestamp, then e.g.
# "UDP message sent (333 bytes):" or "TCP message received [495] bytes :", a blank line,
# and the message itself.
_ENTRY = re.compile(
    r"^-{10,} \S+ \S+\n(?P<transport>[A-Z]+) message (?P<direction>sent|received) [^\n]*:\n\n",
    re.MULTILINE,
)
_RUN_NUMBER = count(1)
_PORTS_GIVEN: set[int] = set()


@dataclass(frozen=True, slots=True)
class SipMessage:
    """One SIP message as sipp sent or received it: start line, headers in order, body."""

    direction: Literal["sent", "received"]
    transport: str
    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: str

    @property
    def status(self) -> int | None:
        """The status code of a response, None for a request."""
        if not self.start_line.startswith("SIP/2.0 "):
            return None
        return int(self.start_line.split()[1])

    def all(self, name: str) -> list[str]:
        """Values of every header called `name` (case-insensitive), in order."""
        return [v for n, v in self.headers if n.lower() == name.lower()]

    def one(self, name: str) -> str:
        """The value of the header `name`, which must appear exactly once."""
        values = self.all(name)
        assert len(values) == 1, f"{name}: expected one header, got {values!r} in\n{self}"
        return values[0]

    def __str__(self) -> str:
        lines = [self.start_line, *(f"{n}: {v}" for n, v in self.headers)]
        return "\n".join(lines) + "\n\n" + self.body


def parse_message(text: str, direction: Literal["sent", "received"], transport: str) -> SipMessage:
    """Parse one traced message (sipp's log keeps LF line ends; CRLF is accepted too)."""
    text = text.replace("\r\n", "\n")
    head, _, body = text.partition("\n\n")
    start_line, *lines = head.split("\n")
    headers: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and headers:  # folded continuation line
            name, value = headers.pop()
            headers.append((name, f"{value} {line.strip()}"))
            continue
        name, sep, value = line.partition(":")
        assert sep, f"not a header line: {line!r}"
        headers.append((name.strip(), value.strip()))
    return SipMessage(direction, transport, start_line.strip(), tuple(headers), body.strip("\n"))


def parse_message_log(text: str) -> list[SipMessage]:
    """Every message in a sipp ``-message_file``, in the order sipp logged them."""
    entries = list(_ENTRY.finditer(text))
    messages = []
    for i, entry in enumerate(entries):
        end = entries[i + 1].start() if i + 1 < len(entries) else len(text)
        direction: Literal["sent", "received"] = (
            "sent" if entry["direction"] == "sent" else "received"
        )
        messages.append(parse_message(text[entry.end() : end], direction, entry["transport"]))
    return messages


@dataclass(frozen=True, slots=True)
class SippRun:
    """What one sipp run did: its exit status, every message on the wire, unexpected ones."""

    argv: tuple[str, ...]
    returncode: int
    messages: tuple[SipMessage, ...]
    errors: str
    output: str

    @property
    def sent(self) -> list[SipMessage]:
        return [m for m in self.messages if m.direction == "sent"]

    @property
    def responses(self) -> list[SipMessage]:
        """Responses sipp received, in order."""
        return [m for m in self.messages if m.direction == "received" and m.status is not None]

    @property
    def statuses(self) -> list[int]:
        return [m.status for m in self.responses if m.status is not None]

    @property
    def final(self) -> SipMessage:
        """The last response received."""
        assert self.responses, f"sipp received no response\n{self.describe()}"
        return self.responses[-1]

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit status {self.returncode}\n"
            f"unexpected messages:\n{self.errors or '(none)'}\n"
            f"messages:\n" + "\n".join(f"[{m.direction}] {m}" for m in self.messages)
            + f"\noutput (tail):\n{self.output[-2000:]}"
        )  # fmt: skip

    def assert_passed(self) -> None:
        """sipp exited 0 (every scenario step matched) and saw nothing unexpected."""
        assert self.returncode == 0 and not self.errors, self.describe()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `host` (sipp binds both for `-t t1`), never 5060
    and never one this process was given before (so two calls give two ports)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port = int(udp.getsockname()[1])
            if port == 5060 or port in _PORTS_GIVEN:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                _PORTS_GIVEN.add(port)
                return port
    raise RuntimeError("no port free for both UDP and TCP")


def credentials(user: str, password: str, auth_user: str | None = None) -> str:
    """The injection field sipp turns into an Authorization header after a 401 or 407."""
    return f"[authentication username={auth_user or user} password={password}]"


def run_sipp(
    scenario: str,
    target: tuple[str, int],
    rows: Sequence[Sequence[str | int]],
    *,
    workdir: Path,
    port: int,
    transport: Transport = "u1",
    calls: int = 1,
    timeout: float = 30.0,
) -> SippRun:
    """Run `scenario` (a file name in :data:`SCENARIOS`) from 127.0.0.1:`port` to `target`.

    `rows` become the injection file (read SEQUENTIAL, one row per call). sipp gives up after
    `timeout` seconds (`-timeout`, counted as a failure); the process is killed, by its PID,
    if it outlives that by 15 s. Logs go to a fresh directory under `workdir`.
    """
    if port == 5060:
        raise ValueError("sipp must not use port 5060")
    run_dir = workdir / f"sipp-{next(_RUN_NUMBER):02d}-{Path(scenario).stem}-{port}"
    run_dir.mkdir(parents=True)
    inject = run_dir / "inject.csv"
    inject.write_text(
        "SEQUENTIAL\n" + "".join(";".join(str(f) for f in row) + "\n" for row in rows)
    )
    messages_file, errors_file = run_dir / "messages.log", run_dir / "errors.log"
    argv = (
        SIPP, f"{target[0]}:{target[1]}",
        "-sf", str(SCENARIOS / scenario),
        "-inf", str(inject),
        "-i", "127.0.0.1", "-p", str(port), "-t", transport,
        "-m", str(calls), "-nostdin",
        "-timeout", f"{int(timeout)}s", "-timeout_error",
        "-trace_msg", "-message_file", str(messages_file),
        "-trace_err", "-error_file", str(errors_file),
    )  # fmt: skip
    logger.info("running %s", " ".join(argv))
    proc = subprocess.run(
        argv, cwd=run_dir, capture_output=True, text=True, timeout=timeout + 15, check=False
    )
    (run_dir / "output.txt").write_text(proc.stdout + proc.stderr)
    log = messages_file.read_text(errors="replace") if messages_file.exists() else ""
    errors = errors_file.read_text(errors="replace") if errors_file.exists() else ""
    return SippRun(
        argv, proc.returncode, tuple(parse_message_log(log)), errors.strip(),
        proc.stdout + proc.stderr,
    )  # fmt: skip
