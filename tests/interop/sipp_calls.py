"""sipp callers and callees for call tests: sipp in the background, audio in its run directory.

:func:`tests.interop.sipp.run_sipp` runs one sipp to its end; a call needs its callee running
while the caller dials, so :meth:`SippPeers.start` starts sipp and returns at once, and
:meth:`SippProcess.wait` waits (bounded) for it to exit and parses its logs the same way, adding
the time sipp logged each message. The call scenarios (``tests/interop/sipp/call_*.xml``) stream
``caller.ulaw`` / ``callee.ulaw`` from sipp's working directory (sipp takes the file name of an
``rtp_stream`` literally): :meth:`SippPeers.start` writes both there before sipp starts.
"""

from __future__ import annotations

import logging
import math
import re
import signal
import socket
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import count
from pathlib import Path

from tests.interop.sipp import (
    SCENARIOS,
    SIPP,
    SipMessage,
    SippRun,
    free_port,
    parse_message_log,
)

logger = logging.getLogger(__name__)

GRACE = 15.0
"""Seconds a sipp may outlive its own `-timeout` before it is killed (by PID)."""

_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n", re.MULTILINE)
_RUN_NUMBER = count(1)
_MEDIA_PORTS: set[int] = set()


# -- audio -----------------------------------------------------------------------------------


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


# -- ports -----------------------------------------------------------------------------------


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


# -- runs ------------------------------------------------------------------------------------


def message_times(log: str) -> list[float]:
    """The Unix time of each entry of a sipp ``-message_file``, in log order (one per message
    :func:`tests.interop.sipp.parse_message_log` returns)."""
    return [datetime.fromisoformat(m[1]).timestamp() for m in _STAMP.finditer(log)]


@dataclass(frozen=True, slots=True)
class CallRun(SippRun):
    """A :class:`SippRun` that also knows when sipp logged each message (Unix seconds)."""

    times: tuple[float, ...] = ()

    def time_of(self, message: SipMessage) -> float:
        for logged, when in zip(self.messages, self.times, strict=True):
            if logged is message:
                return when
        raise ValueError(f"not a message of this run:\n{message}")

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


@dataclass
class SippProcess:
    """A sipp running in the background from its own run directory."""

    argv: tuple[str, ...]
    run_dir: Path
    proc: subprocess.Popen[bytes]
    timeout: float

    def wait(self, timeout: float | None = None) -> CallRun:
        """Wait for sipp to exit (at most `timeout`, by default its own -timeout plus
        :data:`GRACE`); kill it by PID if it does not, and fail with what it logged."""
        limit = self.timeout + GRACE if timeout is None else timeout
        try:
            returncode = self.proc.wait(limit)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"sipp still running after {limit} s\n{self.result(-9).describe()}"
            ) from None
        return self.result(returncode)

    def stop(self, timeout: float = GRACE) -> CallRun:
        """Ask sipp to end (SIGUSR1: no new calls, exit once the current ones end), wait for
        it, and return what it logged."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)
        return self.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def result(self, returncode: int) -> CallRun:
        log = _read(self.run_dir / "messages.log")
        messages = tuple(parse_message_log(log))
        times = tuple(message_times(log))
        assert len(times) == len(messages), f"unparsed sipp log in {self.run_dir}"
        output = _read(self.run_dir / "output.txt")
        errors = _read(self.run_dir / "errors.log").strip()
        return CallRun(self.argv, returncode, messages, errors, output, times)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class SippPeers:
    """Starts sipp instances against one target and kills, by PID, any left at :meth:`close`."""

    target: tuple[str, int]
    workdir: Path
    started: list[SippProcess] = field(default_factory=list)

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
    ) -> SippProcess:
        """Start `scenario` (a file in :data:`SCENARIOS`) from 127.0.0.1:`port`, media on
        127.0.0.1:`media_port`, for `calls` calls; `rows` become its injection file (read
        SEQUENTIAL, one row per call, wrapping round). sipp gives up after `timeout` s."""
        if 5060 in (port, media_port):
            raise ValueError("sipp must not use port 5060")
        run_dir = self.workdir / f"sipp-{next(_RUN_NUMBER):02d}-{Path(scenario).stem}-{port}"
        run_dir.mkdir(parents=True)
        for name, audio in AUDIO.items():
            (run_dir / name).write_bytes(audio)
        inject = run_dir / "inject.csv"
        inject.write_text(
            "SEQUENTIAL\n" + "".join(";".join(str(f) for f in row) + "\n" for row in rows)
        )
        argv = (
            SIPP, f"{self.target[0]}:{self.target[1]}",
            "-sf", str(SCENARIOS / scenario),
            "-inf", str(inject),
            "-i", "127.0.0.1", "-p", str(port), "-t", "u1",
            "-mi", "127.0.0.1", "-mp", str(media_port), "-ci", "127.0.0.1",
            "-m", str(calls), "-nostdin",
            "-timeout", f"{int(timeout)}s", "-timeout_error",
            "-trace_msg", "-message_file", str(run_dir / "messages.log"),
            "-trace_err", "-error_file", str(run_dir / "errors.log"),
            *extra,
        )  # fmt: skip
        logger.info("starting %s", " ".join(argv))
        with (run_dir / "output.txt").open("wb") as output:
            proc = subprocess.Popen(
                argv, cwd=run_dir, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        process = SippProcess(argv, run_dir, proc, timeout)
        self.started.append(process)
        return process

    def close(self) -> None:
        for process in self.started:
            process.kill()


def rtp_header(packet: bytes) -> tuple[int, bool, int, int] | None:
    """(payload type, marker, sequence number, timestamp) of an RTP packet, None if it is not
    RTP version 2 (RFC 3550 §5.1)."""
    if len(packet) < 12 or packet[0] >> 6 != 2:
        return None
    b1, seq, ts = struct.unpack_from("!xBHI", packet)
    return b1 & 0x7F, bool(b1 & 0x80), seq, ts
