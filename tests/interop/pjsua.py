"""Drive ``pjsua_peer.py`` (a real PJSIP phone) from a test, as a subprocess.

The peer runs in its own process because pjsua2 owns process-wide state
(one Endpoint per process, aborts if objects outlive ``libDestroy``) and
needs a Python with the ``pjsua2-python`` wheel, which need not be the one
running the tests.  It speaks JSON lines (see ``pjsua_peer.py``):

    with PjsuaPeer("127.0.0.1:5060", "101", "s3cret", local_port=5072) as peer:
        peer.wait_event(lambda e: e["event"] == "reg" and e["code"] == 200)
        mark = peer.mark()
        peer.send("unregister")
        peer.wait_event(lambda e: e["event"] == "reg" and e["expires"] == 0, since=mark)
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from tests.feed import Feed, FeedClosed
from tests.interop.netns import NetNamespace

logger = logging.getLogger(__name__)

PEER_SCRIPT = Path(__file__).with_name("pjsua_peer.py")

Event = dict[str, Any]


class PjsuaPeerError(Exception):
    """The peer could not be started or did not report what was awaited."""


class PjsuaPeer:
    """One ``pjsua_peer.py`` process and the events it printed."""

    def __init__(
        self,
        registrar: str,
        user: str,
        password: str,
        *,
        local_port: int = 5072,
        local_host: str = "127.0.0.1",
        regint: int = 60,
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
        stderr_path: Path | None = None,
        netns: NetNamespace | None = None,
    ) -> None:
        """Describe the peer; :meth:`start` runs it.

        ``registrar`` is ``HOST:PORT``.  ``python`` must have ``pjsua2``.
        PJSIP's log (stderr) goes to ``stderr_path`` if given, else it is
        inherited.  With ``netns`` the peer runs inside that namespace (then
        ``local_host`` should be an address there, e.g. ``netns.host``).
        """
        self.argv = [
            python,
            str(PEER_SCRIPT),
            "--registrar",
            registrar,
            "--user",
            user,
            "--password",
            password,
            "--local-host",
            local_host,
            "--local-port",
            str(local_port),
            "--regint",
            str(regint),
            *extra_args,
        ]
        self._password = password
        self.stderr_path = stderr_path
        self.netns = netns
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._events: Feed[Event] = Feed()

    @property
    def pid(self) -> int:
        """PID of the running peer."""
        if self._proc is None:
            raise PjsuaPeerError("peer not started")
        return self._proc.pid

    def start(self) -> None:
        """Start the peer process (it starts registering at once)."""
        if self._proc is not None:
            raise PjsuaPeerError("peer already started")
        stderr: IO[str] | None = None
        if self.stderr_path is not None:
            stderr = self.stderr_path.open("w")
        kwargs: dict[str, Any] = {
            "stdin": subprocess.PIPE,
            "stdout": subprocess.PIPE,
            "stderr": stderr,
            "text": True,
            "bufsize": 1,
        }
        try:
            if self.netns is not None:
                self._proc = self.netns.popen(self.argv, **kwargs)
            else:
                self._proc = subprocess.Popen(self.argv, **kwargs)
        finally:
            if stderr is not None:
                stderr.close()  # the child has its own copy
        assert self._proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read,
            args=(self._proc.stdout,),
            name=f"pjsua-{self._proc.pid}",
            daemon=True,
        )
        self._reader.start()
        masked = ["********" if arg == self._password else arg for arg in self.argv]
        logger.info("pjsua peer pid %d: %s", self._proc.pid, " ".join(masked))

    def _read(self, stream: IO[str]) -> None:
        """Collect the JSON events the peer prints."""
        for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("pjsua peer printed a non-JSON line: %r", line)
                continue
            logger.debug("pjsua peer event %s", event)
            self._events.append(event)
        self._events.close()

    @property
    def events(self) -> list[Event]:
        """Every event received so far."""
        return self._events.items

    def mark(self) -> int:
        """Current event count; pass it as ``since`` to wait for a *new* event."""
        return self._events.mark()

    def wait_event(
        self, predicate: Callable[[Event], bool], timeout: float = 10.0, since: int = 0
    ) -> Event:
        """Wait for an event (number ``since`` or later) for which ``predicate`` is true.

        Raises :class:`PjsuaPeerError` listing the events seen on timeout or
        if the peer exits first.
        """
        try:
            return self._events.wait(predicate, timeout, since)[0]
        except FeedClosed as exc:
            seen = self._events.items[since:]
            raise PjsuaPeerError(f"{exc}; events since {since}: {seen}") from None

    def send(self, command: str) -> None:
        """Write one command line (``refresh``, ``unregister``, ``options URI``, ``quit``)."""
        if self._proc is None or self._proc.stdin is None:
            raise PjsuaPeerError("peer not started")
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask the peer to quit (it un-registers), then SIGTERM, then kill, by PID.

        Returns the exit code (0 for a clean shutdown).
        """
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None and proc.stdin is not None:
            try:
                proc.stdin.write("quit\n")
                proc.stdin.close()
            except BrokenPipeError:
                pass
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            logger.warning("pjsua peer pid %d did not quit; sending SIGTERM", proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        logger.info("pjsua peer pid %d exited %s", proc.pid, proc.returncode)
        return proc.returncode

    def __enter__(self) -> Self:
        """Start the peer."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the peer."""
        self.stop()
