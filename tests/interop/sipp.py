"""Run sipp (Debian ``sip-tester`` 3.6.1) scenarios against the box and read back the wire.

Two ways to run one sipp, each on its own local port (never 5060), loopback only:

- :func:`run_sipp` runs it in the foreground for a fixed number of calls and waits for it to
  exit (a REGISTER, a caller whose callee needs nothing running);
- :class:`BackgroundSipp` starts it and returns at once (a callee must be listening while the
  caller dials; a caller must be mid-call while the test acts), reads its standard error live
  (the ``pj_*.xml`` scenarios print ``pj-media PORT`` there: :meth:`BackgroundSipp.wait_media_port`)
  and, once it exits, parses its logs the same way. :class:`SippPeers` starts several against
  one target and kills, by PID, any left running.

Either way sipp's ``-trace_msg`` log becomes :class:`SipMessage` values, with the time sipp
logged each, in a :class:`SippRun`, so a test can assert on every header the box sent back;
``-trace_err`` collects anything the scenario did not expect.

The scenarios live in ``tests/interop/sipp/``; they read an injection CSV whose rows are built
with :func:`credentials` (``USER;[authentication username=U password=P];EXPIRES``). The call
scenarios (``call_*.xml``) stream ``caller.ulaw`` / ``callee.ulaw`` (:data:`AUDIO`) from sipp's
working directory (sipp takes the file name of an ``rtp_stream`` literally); a background sipp
finds both there. Its media ports come from :func:`free_media_port`.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path
from types import TracebackType
from typing import IO, Literal, Self

from tests.feed import Feed, FeedClosed

logger = logging.getLogger(__name__)

SCENARIOS = Path(__file__).parent / "sipp"
"""Directory of the sipp scenario XML files."""

SIPP = shutil.which("sipp") or "/usr/bin/sipp"

Transport = Literal["u1", "t1"]
"""sipp `-t` modes used here: UDP or TCP, one socket for all calls."""

GRACE = 15.0
"""Seconds a sipp may outlive its own `-timeout` before it is killed (by PID)."""
MEDIA_LINE = "pj-media "
"""What the ``pj_*.xml`` scenarios print on standard error before the box's RTP port."""

# sipp 3.6.1 writes each traced message after a line of dashes and a timestamp, then e.g.
# "UDP message sent (333 bytes):" or "TCP message received [495] bytes :", a blank line,
# and the message itself.
_ENTRY = re.compile(
    r"^-{10,} (?P<stamp>\S+ \S+)\n"
    r"(?P<transport>[A-Z]+) message (?P<direction>sent|received) [^\n]*:\n\n",
    re.MULTILINE,
)
_RUN_NUMBER = count(1)
_PORTS_GIVEN: set[int] = set()
_MEDIA_PORTS: set[int] = set()


# -- the wire --------------------------------------------------------------------------------


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


def message_times(text: str) -> list[float]:
    """The Unix time of each entry of a sipp ``-message_file``, in log order (one per message
    :func:`parse_message_log` returns)."""
    return [datetime.fromisoformat(entry["stamp"]).timestamp() for entry in _ENTRY.finditer(text)]


@dataclass(frozen=True, slots=True)
class SippRun:
    """What one sipp run did: its exit status, every message on the wire (and when sipp logged
    it, Unix seconds), unexpected ones, its output."""

    argv: tuple[str, ...]
    returncode: int
    messages: tuple[SipMessage, ...]
    errors: str
    output: str
    times: tuple[float, ...] = ()

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

    def requests(self, method: str, direction: str = "received") -> list[SipMessage]:
        """Requests of `method` sipp sent or received, in order."""
        return [
            m for m in self.messages
            if m.direction == direction and m.status is None
            and m.start_line.split(" ", 1)[0] == method
        ]  # fmt: skip

    def responses_to(self, method: str, cseq: int | None = None) -> list[SipMessage]:
        """Responses sipp received for requests of `method` (and CSeq number `cseq`)."""
        found = []
        for m in self.responses:
            number, _, meth = m.one("CSeq").partition(" ")
            if meth.strip() == method and (cseq is None or int(number) == cseq):
                found.append(m)
        return found

    def time_of(self, message: SipMessage) -> float:
        """When sipp logged `message` (one of :attr:`messages`), Unix seconds."""
        for logged, when in zip(self.messages, self.times, strict=True):
            if logged is message:
                return when
        raise ValueError(f"not a message of this run:\n{message}")

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


# -- ports, credentials, audio ---------------------------------------------------------------


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


def free_media_port(host: str = "127.0.0.1") -> int:
    """An even UDP port P with P..P+3 free, for sipp's `-mp` (it binds P for audio and P+2 for
    video), never one given before in this process."""
    for _ in range(100):
        base = free_port(host) & ~1
        if any(p in _MEDIA_PORTS for p in range(base, base + 4)):
            continue
        socks = []
        try:
            for port in range(base, base + 4):
                sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(sock)
                sock.bind((host, port))
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
        _MEDIA_PORTS.update(range(base, base + 4))
        return base
    raise RuntimeError("no free media port range")


def credentials(user: str, password: str, auth_user: str | None = None) -> str:
    """The injection field sipp turns into an Authorization header after a 401 or 407."""
    return f"[authentication username={auth_user or user} password={password}]"


def ulaw(sample: int) -> int:
    """One 16-bit linear sample as G.711 µ-law (ITU-T G.711, the usual biased segment code)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(abs(sample), 32635) + 0x84
    exponent = magnitude.bit_length() - 8
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | exponent << 4 | mantissa) & 0xFF


def ulaw_tone(hz: float, seconds: float = 1.0, level: float = 0.25) -> bytes:
    """A sine of `hz` at 8 kHz as raw µ-law, what sipp's `rtp_stream` plays in 20 ms packets."""
    n = int(8000 * seconds)
    return bytes(ulaw(int(level * 32767 * math.sin(2 * math.pi * hz * i / 8000))) for i in range(n))


AUDIO = {"caller.ulaw": ulaw_tone(440.0), "callee.ulaw": ulaw_tone(1000.0)}
"""The files every call scenario may stream: the caller a 440 Hz tone, the callee 1 kHz."""


# -- running sipp ----------------------------------------------------------------------------


def _run_dir(
    workdir: Path, scenario: str, port: int, rows: Sequence[Sequence[str | int]]
) -> tuple[Path, Path]:
    """A fresh directory for one sipp run, with its injection file (read SEQUENTIAL, one row
    per call, wrapping round); returns both."""
    run_dir = workdir / f"sipp-{next(_RUN_NUMBER):02d}-{Path(scenario).stem}-{port}"
    run_dir.mkdir(parents=True)
    inject = run_dir / "inject.csv"
    inject.write_text(
        "SEQUENTIAL\n" + "".join(";".join(str(f) for f in row) + "\n" for row in rows)
    )
    return run_dir, inject


def _argv(
    scenario: str, target: tuple[str, int], inject: Path, run_dir: Path, *, port: int,
    transport: Transport, calls: int, timeout: float, media: Sequence[str] = (),
    extra: Sequence[str] = (), host: str = "127.0.0.1",
) -> tuple[str, ...]:  # fmt: skip
    return (
        SIPP, f"{target[0]}:{target[1]}",
        "-sf", str(SCENARIOS / scenario),
        "-inf", str(inject),
        "-i", host, "-p", str(port), "-t", transport,
        *media,
        "-m", str(calls), "-nostdin",
        "-timeout", f"{int(timeout)}s", "-timeout_error",
        "-trace_msg", "-message_file", str(run_dir / "messages.log"),
        "-trace_err", "-error_file", str(run_dir / "errors.log"),
        *extra,
    )  # fmt: skip


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _result(argv: tuple[str, ...], returncode: int, run_dir: Path, output: str) -> SippRun:
    """What the sipp run in `run_dir` logged."""
    log = _read(run_dir / "messages.log")
    errors = _read(run_dir / "errors.log").strip()
    return SippRun(
        argv, returncode, tuple(parse_message_log(log)), errors, output,
        tuple(message_times(log)),
    )  # fmt: skip


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
    host: str = "127.0.0.1",
) -> SippRun:
    """Run `scenario` (a file name in :data:`SCENARIOS`) from `host`:`port` to `target`
    (`host` another loopback address for a test that tells sources apart).

    `rows` become the injection file (read SEQUENTIAL, one row per call). sipp gives up after
    `timeout` seconds (`-timeout`, counted as a failure); the process is killed, by its PID,
    if it outlives that by :data:`GRACE`. Logs go to a fresh directory under `workdir`.
    """
    if port == 5060:
        raise ValueError("sipp must not use port 5060")
    run_dir, inject = _run_dir(workdir, scenario, port, rows)
    argv = _argv(scenario, target, inject, run_dir, port=port, transport=transport,
                 calls=calls, timeout=timeout, host=host)  # fmt: skip
    logger.info("running %s", " ".join(argv))
    proc = subprocess.run(
        argv, cwd=run_dir, capture_output=True, text=True, timeout=timeout + GRACE, check=False
    )
    (run_dir / "output.txt").write_text(proc.stdout + proc.stderr)
    return _result(argv, proc.returncode, run_dir, proc.stdout + proc.stderr)


@dataclass(frozen=True)
class SippLoad:
    """What a sipp load run (`run_sipp_load`) counted: its statistics file, one row a second
    and a final one, by column name (sipp's cumulative counters end in ``(C)``)."""

    argv: tuple[str, ...]
    returncode: int
    rows: tuple[dict[str, str], ...]
    output: str

    def total(self, column: str) -> int:
        """A cumulative counter (``SuccessfulCall``, ``FailedUnexpectedMessage``,
        ``TotalCallCreated``, ...) at the end of the run."""
        return _counter(self.rows[-1], column) if self.rows else 0

    @property
    def failures(self) -> dict[str, int]:
        """Failed calls by sipp's reason (``UnexpectedMessage``, ``MaxUDPRetrans``, ...)."""
        last = self.rows[-1] if self.rows else {}
        return {
            name[len("Failed") : -len("(C)")]: int(value)
            for name, value in last.items()
            if name.startswith("Failed") and name.endswith("(C)") and name != "FailedCall(C)"
            and value.isdigit() and int(value)
        }  # fmt: skip

    def rate(self, column: str = "SuccessfulCall") -> float:
        """`column` per second while sipp was still starting calls (from its first row to the
        first row at which every call was created): the rate the box kept up during the load,
        not diluted by the wait for the last answers."""
        rows = [r for r in self.rows if r.get("CurrentTime")]
        if len(rows) < 2:
            return 0.0
        created = _counter(rows[-1], "TotalCallCreated")
        end = next((r for r in rows if _counter(r, "TotalCallCreated") >= created), rows[-1])
        if end is rows[0]:
            end = rows[-1]
        seconds = _epoch(end["CurrentTime"]) - _epoch(rows[0]["CurrentTime"])
        done = _counter(end, column) - _counter(rows[0], column)
        return done / seconds if seconds > 0 else 0.0

    def describe(self) -> str:
        return (
            f"$ {' '.join(self.argv)}\nexit status {self.returncode}\n"
            f"final statistics: {self.rows[-1] if self.rows else '(none)'}\n"
            f"output (tail):\n{self.output[-2000:]}"
        )


def _counter(row: dict[str, str], column: str) -> int:
    """A cumulative counter of a statistics row (most end in ``(C)``; TotalCallCreated not)."""
    value = row.get(f"{column}(C)", row.get(column, "0"))
    return int(value) if value.isdigit() else 0


def _epoch(cell: str) -> float:
    """A sipp time cell ``YYYY-MM-DD<TAB>HH:MM:SS.ffffff<TAB>EPOCH`` (the epoch last)."""
    return float(cell.rsplit("\t", maxsplit=1)[-1])


LOAD_BUFFER = 4 << 20
"""sipp's socket buffers for a load (`-buff_size`; its default, 64 KiB, overflows while it is
busy sending, and the answers it drops come back as retransmissions and timeouts)."""


def run_sipp_load(
    scenario: str,
    target: tuple[str, int],
    rows: Sequence[Sequence[str | int]],
    *,
    workdir: Path,
    port: int,
    rate: int,
    calls: int,
    timeout: float,
    recv_timeout_ms: int = 5000,
    cpu: int | None = None,
) -> SippLoad:
    """Run `scenario` as a load: `rate` calls a second, `calls` in all (bounded in count and by
    `timeout` seconds), logging no messages (a load's would be hundreds of MiB) but sipp's
    statistics every second. A call that fails just ends (no BYE for a REGISTER
    refused: a phone sends none). The process is killed, by its PID, if it
    outlives `timeout` by :data:`GRACE`. `cpu`: the one CPU sipp runs on (`taskset`).
    """
    if port == 5060:
        raise ValueError("sipp must not use port 5060")
    run_dir, inject = _run_dir(workdir, scenario, port, rows)
    stats = run_dir / "stats.csv"
    pinned = () if cpu is None else ("taskset", "-c", str(cpu))
    argv = (
        *pinned, SIPP, f"{target[0]}:{target[1]}",
        "-sf", str(SCENARIOS / scenario), "-inf", str(inject),
        "-i", "127.0.0.1", "-p", str(port), "-t", "u1", "-r", str(rate), "-rp", "1000",
        "-m", str(calls), "-recv_timeout", str(recv_timeout_ms), "-timeout", f"{int(timeout)}s",
        "-max_recv_loops", "10000", "-max_sched_loops", "10000", "-nostdin",
        "-default_behaviors", "all,-bye",
        "-buff_size", str(LOAD_BUFFER),
        "-trace_stat", "-stf", str(stats), "-fd", "1",
    )  # fmt: skip
    logger.info("running %s", " ".join(argv))
    proc = subprocess.run(
        argv, cwd=run_dir, capture_output=True, text=True, timeout=timeout + GRACE, check=False
    )
    (run_dir / "output.txt").write_text(proc.stdout + proc.stderr)
    lines = [line for line in _read(stats).splitlines() if line.strip()]
    names = lines[0].rstrip(";").split(";") if lines else []
    table = tuple(dict(zip(names, line.rstrip(";").split(";"), strict=False)) for line in lines[1:])
    return SippLoad(argv, proc.returncode, table, proc.stdout + proc.stderr)


class BackgroundSipp:
    """One sipp running `scenario` in the background from 127.0.0.1:`port` against `target`,
    from its own run directory (with :data:`AUDIO` in it), its standard error read live.

    Use it as a context manager (started on entry, killed by PID on exit) or through
    :meth:`SippPeers.start`.
    """

    def __init__(
        self,
        scenario: str,
        target: tuple[str, int],
        rows: Sequence[Sequence[str | int]],
        *,
        workdir: Path,
        port: int,
        media_port: int,
        calls: int = 1,
        timeout: float = 30.0,
        extra: Sequence[str] = (),
        transport: Transport = "u1",
        host: str = "127.0.0.1",
    ) -> None:
        """Describe the run; :meth:`start` starts it.

        `rows` become its injection file (read SEQUENTIAL, one row per call, wrapping round;
        see the scenario's header); `media_port` is sipp's own ``-mp`` (it binds it and the
        port two above: take it from :func:`free_media_port`). sipp plays `calls` calls and
        fails after `timeout` s; `extra` are more sipp arguments; `transport` its `-t`;
        `host` the loopback address it sends from (signalling and media).
        """
        if 5060 in (port, media_port):
            raise ValueError("sipp must not use port 5060")
        self.run_dir, inject = _run_dir(workdir, scenario, port, rows)
        for name, audio in AUDIO.items():
            (self.run_dir / name).write_bytes(audio)
        self.timeout = timeout
        media = ("-mi", host, "-mp", str(media_port), "-ci", host)
        self.argv = _argv(scenario, target, inject, self.run_dir, port=port, transport=transport,
                          calls=calls, timeout=timeout, media=media, extra=extra,
                          host=host)  # fmt: skip
        self.stderr: Feed[str] = Feed()
        """sipp's standard error, line by line, as it comes."""
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        """PID of the sipp process."""
        if self._proc is None:
            raise RuntimeError("sipp not started")
        return self._proc.pid

    def start(self) -> None:
        """Start sipp; return at once."""
        if self._proc is not None:
            raise RuntimeError("sipp already started")
        logger.info("starting %s", " ".join(self.argv))
        with (self.run_dir / "output.txt").open("w") as output:
            self._proc = subprocess.Popen(
                self.argv, cwd=self.run_dir, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1,
            )  # fmt: skip
        assert self._proc.stderr is not None
        self._reader = threading.Thread(
            target=self._read_stderr, args=(self._proc.stderr,),
            name=f"sipp-{self._proc.pid}", daemon=True,
        )  # fmt: skip
        self._reader.start()

    def _read_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            self.stderr.append(line.rstrip("\n"))
        self.stderr.close()

    def wait_stderr(self, predicate: Callable[[str], bool], timeout: float = 20.0) -> str:
        """The first line of sipp's standard error for which `predicate` is true; fails with
        what sipp logged if none comes (in `timeout` s, or before sipp exits)."""
        try:
            return self.stderr.wait(predicate, timeout)[0]
        except FeedClosed as exc:
            run = self.result(self._proc.poll() if self._proc else None)
            raise AssertionError(f"sipp never printed the line awaited ({exc})\n"
                                 f"{run.describe()}") from None  # fmt: skip

    def wait_media_port(self, timeout: float = 20.0) -> int:
        """The box's RTP port for this call, once a ``pj_*.xml`` scenario has printed it."""
        line = self.wait_stderr(lambda text: text.startswith(MEDIA_LINE), timeout)
        return int(line[len(MEDIA_LINE) :].split()[0])

    def wait(self, timeout: float | None = None) -> SippRun:
        """Wait for sipp to exit (at most `timeout`, by default its own ``-timeout`` plus
        :data:`GRACE`); kill it, by PID, if it does not, and fail with what it logged."""
        if self._proc is None:
            raise RuntimeError("sipp not started")
        limit = self.timeout + GRACE if timeout is None else timeout
        try:
            returncode = self._proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"sipp still running after {limit} s\n{self.result(None).describe()}"
            ) from None
        if self._reader is not None:
            self._reader.join(timeout=5)
        return self.result(returncode)

    def stop(self, timeout: float = GRACE) -> SippRun:
        """Ask sipp to end (SIGUSR1: no new calls, exit once the current ones end), wait for
        it, and return what it logged."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGUSR1)
        return self.wait(timeout)

    def kill(self) -> None:
        """Kill sipp (by PID) if it is still running."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def result(self, returncode: int | None) -> SippRun:
        """What sipp logged so far (exit status -1 while it runs)."""
        output = _read(self.run_dir / "output.txt") + "\n".join(self.stderr.items)
        return _result(self.argv, -1 if returncode is None else returncode, self.run_dir, output)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.kill()


@dataclass
class SippPeers:
    """Starts background sipps against one target and kills, by PID, any left at
    :meth:`close` (or the end of a ``with`` block)."""

    target: tuple[str, int]
    workdir: Path
    started: list[BackgroundSipp] = field(default_factory=list)

    def start(
        self,
        scenario: str,
        rows: Sequence[Sequence[str | int]],
        *,
        port: int,
        media_port: int,
        calls: int = 1,
        timeout: float = 30.0,
        extra: Sequence[str] = (),
    ) -> BackgroundSipp:
        """Start `scenario` (a file in :data:`SCENARIOS`) from 127.0.0.1:`port`, media on
        127.0.0.1:`media_port`, for `calls` calls (see :class:`BackgroundSipp`)."""
        sipp = BackgroundSipp(
            scenario, self.target, rows, workdir=self.workdir, port=port,
            media_port=media_port, calls=calls, timeout=timeout, extra=extra,
        )  # fmt: skip
        self.started.append(sipp)
        sipp.start()
        return sipp

    def close(self) -> None:
        for sipp in self.started:
            sipp.kill()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
