"""A sipp phone in the background: sipp for the signalling, started from its own directory,
with its standard error read live so that a scenario can tell the test something mid-call.

The ``pj_*.xml`` scenarios print ``pj-media PORT`` (an ``exec`` action) as soon as they know
the box's RTP port for their call; :meth:`SippPhone.wait_media_port` waits for that line, so the
test's :class:`tests.interop.rtp_endpoint.RtpEndpoint` can send media to it. When sipp exits,
:meth:`SippPhone.wait` parses its message log with :mod:`tests.interop.sipp`.
"""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Sequence
from itertools import count
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tests.feed import Feed, FeedClosed
from tests.interop.sipp import SCENARIOS, SIPP, SippRun, parse_message_log

logger = logging.getLogger(__name__)

GRACE = 15.0
"""Seconds sipp may outlive its own ``-timeout`` before it is killed (by PID)."""
MEDIA_LINE = "pj-media "

_RUN_NUMBER = count(1)


class SippPhone:
    """One sipp process running `scenario` from 127.0.0.1:`port` against `target`."""

    def __init__(
        self,
        scenario: str,
        target: tuple[str, int],
        row: Sequence[str | int],
        *,
        workdir: Path,
        port: int,
        media_port: int,
        timeout: float = 60.0,
    ) -> None:
        """`row` is the one injection row (see the scenario's header); `media_port` is sipp's
        own ``-mp`` (it binds it and the port two above, which the ``pj_`` scenarios leave
        unused: their SDP names the test's socket). sipp fails after `timeout` s."""
        if 5060 in (port, media_port):
            raise ValueError("sipp must not use port 5060")
        self.run_dir = workdir / f"sipp-{next(_RUN_NUMBER):02d}-{Path(scenario).stem}-{port}"
        self.run_dir.mkdir(parents=True)
        inject = self.run_dir / "inject.csv"
        inject.write_text("SEQUENTIAL\n" + ";".join(str(f) for f in row) + "\n")
        self.timeout = timeout
        self.argv: tuple[str, ...] = (
            SIPP, f"{target[0]}:{target[1]}",
            "-sf", str(SCENARIOS / scenario),
            "-inf", str(inject),
            "-i", "127.0.0.1", "-p", str(port), "-t", "u1",
            "-mi", "127.0.0.1", "-mp", str(media_port),
            "-m", "1", "-nostdin",
            "-timeout", f"{int(timeout)}s", "-timeout_error",
            "-trace_msg", "-message_file", str(self.run_dir / "messages.log"),
            "-trace_err", "-error_file", str(self.run_dir / "errors.log"),
        )  # fmt: skip
        self.stderr: Feed[str] = Feed()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        logger.info("starting %s", " ".join(self.argv))
        with (self.run_dir / "output.txt").open("w") as output:
            self._proc = subprocess.Popen(
                self.argv, cwd=self.run_dir, stdin=subprocess.DEVNULL, stdout=output,
                stderr=subprocess.PIPE, text=True, bufsize=1,
            )  # fmt: skip
        assert self._proc.stderr is not None
        self._reader = threading.Thread(
            target=self._read, args=(self._proc.stderr,), name="sipp-stderr", daemon=True
        )
        self._reader.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.stderr.append(line.rstrip("\n"))
        self.stderr.close()

    def wait_media_port(self, timeout: float = 20.0) -> int:
        """The box's RTP port for this call, once the scenario has printed it."""
        try:
            line = self.stderr.wait(lambda text: text.startswith(MEDIA_LINE), timeout)[0]
        except FeedClosed as exc:
            run = self.result(self._proc.poll() if self._proc else None)
            raise AssertionError(f"sipp never printed the box's RTP port ({exc})\n"
                                 f"{run.describe()}") from None  # fmt: skip
        return int(line[len(MEDIA_LINE) :].split()[0])

    def wait(self, timeout: float | None = None) -> SippRun:
        """Wait for sipp to exit (at most `timeout`, by default its own ``-timeout`` plus
        :data:`GRACE`); kill it, by PID, if it does not, and fail with what it logged."""
        assert self._proc is not None
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

    def kill(self) -> None:
        """Kill sipp (by PID) if it is still running."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def result(self, returncode: int | None) -> SippRun:
        """What sipp logged so far, as a :class:`SippRun`."""
        log = _read(self.run_dir / "messages.log")
        output = _read(self.run_dir / "output.txt") + "\n".join(self.stderr.items)
        return SippRun(
            self.argv, -1 if returncode is None else returncode,
            tuple(parse_message_log(log)), _read(self.run_dir / "errors.log").strip(), output,
        )  # fmt: skip

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


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
