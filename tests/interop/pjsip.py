"""Drive ``pjsip_peer.py``, a real PJSIP (pjsua2) phone, from a test: registration, calls,
DTMF, hold and transfers, over the peer's JSON-lines protocol (its docstring lists the events
and commands).

The phone runs in its own process because pjsua2 owns process-wide state (one Endpoint per
process, aborts if objects outlive ``libDestroy``) and needs a Python with the
``pjsua2-python`` wheel, which need not be the one running the tests. One process holds at
most 4 call legs: start one :class:`PjsipPhone` per extension.

    with PjsipPhone(f"{core.host}:{core.port}", "101", password, rtp_port=free_rtp_port()) as phone:
        phone.wait_registered()
        call = phone.place_call(f"sip:102@{core.host}:{core.port}")
        phone.wait_state(call, "CONFIRMED")
        phone.send(f"dtmf {call} 1234")
        mark = phone.mark()
        phone.send(f"xfer {call} sip:103@{core.host}")
        phone.wait_state(call, "DISCONNECTED", since=mark)
"""

from __future__ import annotations

import json
import logging
import socket
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

PEER_SCRIPT = Path(__file__).with_name("pjsip_peer.py")

Event = dict[str, Any]
"""One JSON event the phone printed: ``{"event": "state", "call": 0, ...}``."""


class PjsipPhoneError(Exception):
    """The phone could not be started or did not report what was awaited."""


class PjsipPhone:
    """One ``pjsip_peer.py`` process and the events it printed."""

    def __init__(
        self,
        registrar: str,
        user: str,
        password: str,
        *,
        local_port: int = 5072,
        local_host: str = "127.0.0.1",
        rtp_port: int = 4000,
        regint: int = 60,
        auto_answer: bool = False,
        tone: int = 440,
        record_dir: Path | None = None,
        log_level: int = 4,
        python: str = sys.executable,
        extra_args: Sequence[str] = (),
        stderr_path: Path | None = None,
        netns: NetNamespace | None = None,
        tls: bool = False,
        srtp: str = "disabled",
        tls_method: str = "default",
    ) -> None:
        """Describe the phone; :meth:`start` runs it (it starts registering at once).

        ``registrar`` is ``HOST:PORT``; ``python`` must have ``pjsua2``. ``rtp_port`` is the
        even port the first call's RTP uses (RTCP above it; later calls take the next pairs).
        ``auto_answer`` answers every incoming call (180, then 200), else each waits for an
        ``answer`` command; ``tone`` plays a sine of that many Hz into every call (0: none);
        ``record_dir`` receives ``call-ID.wav`` per call. PJSIP's log, at ``log_level`` (4
        includes every SIP message, which the ``received`` events need), goes to
        ``stderr_path`` if given, else it is inherited. With ``netns`` the phone runs inside
        that namespace (then ``local_host`` should be an address there, e.g. ``netns.host``).
        ``extra_args`` go to the script as they are (``--domain D``, ``--retry S``).
        With ``tls`` the phone speaks SIP over TLS (``registrar`` is then the box's TLS
        address, ``local_port`` the phone's TLS port; ``tls_method`` ``tlsv1`` makes it a
        TLS 1.0-only client); ``srtp`` ``optional`` or ``mandatory`` puts its calls in SRTP
        with SDES keys.
        """
        self.argv = [
            python, str(PEER_SCRIPT),
            "--registrar", registrar, "--user", user, "--password", password,
            "--local-host", local_host, "--local-port", str(local_port),
            "--rtp-port", str(rtp_port), "--regint", str(regint),
            "--tone", str(tone), "--log-level", str(log_level),
        ]  # fmt: skip
        if auto_answer:
            self.argv.append("--auto-answer")
        if tls:
            self.argv += ["--tls", "--tls-method", tls_method]
        self.argv += ["--srtp", srtp]
        if record_dir is not None:
            self.argv += ["--record-dir", str(record_dir)]
        self.argv += extra_args
        self._password = password
        self.stderr_path = stderr_path
        self.netns = netns
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._events: Feed[Event] = Feed()

    # -- the process --------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """PID of the running phone."""
        if self._proc is None:
            raise PjsipPhoneError("phone not started")
        return self._proc.pid

    def start(self) -> None:
        """Start the phone process."""
        if self._proc is not None:
            raise PjsipPhoneError("phone already started")
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
            target=self._read, args=(self._proc.stdout,), name=f"pjsip-{self._proc.pid}",
            daemon=True,
        )  # fmt: skip
        self._reader.start()
        masked = ["********" if arg == self._password else arg for arg in self.argv]
        logger.info("pjsip phone pid %d: %s", self._proc.pid, " ".join(masked))

    def _read(self, stream: IO[str]) -> None:
        """Collect the JSON events the phone prints."""
        for line in stream:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("pjsip phone printed a non-JSON line: %r", line)
                continue
            logger.debug("pjsip phone event %s", event)
            self._events.append(event)
        self._events.close()

    def send(self, command: str) -> None:
        """Write one command line (``call URI``, ``answer ID CODE``, ``hold ID``, ``xfer ID
        URI``...: see ``pjsip_peer.py``)."""
        if self._proc is None or self._proc.stdin is None:
            raise PjsipPhoneError("phone not started")
        self._proc.stdin.write(command + "\n")
        self._proc.stdin.flush()

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask the phone to quit (it hangs up its calls and un-registers), then SIGTERM, then
        kill, by PID. Returns the exit code (0 for a clean shutdown)."""
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
            logger.warning("pjsip phone pid %d did not quit; sending SIGTERM", proc.pid)
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=timeout)
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        logger.info("pjsip phone pid %d exited %s", proc.pid, proc.returncode)
        return proc.returncode

    def __enter__(self) -> Self:
        """Start the phone."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the phone."""
        self.stop()

    # -- events -------------------------------------------------------------------------------

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

        Raises :class:`PjsipPhoneError` listing the events seen on timeout or if the phone
        exits first.
        """
        try:
            return self._events.wait(predicate, timeout, since)[0]
        except FeedClosed as exc:
            seen = self._events.items[since:]
            raise PjsipPhoneError(f"{exc}; events since {since}: {seen}") from None

    def wait_registered(self, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait for a successful registration (or refresh, from event ``since`` on)."""
        return self.wait_event(
            lambda e: e["event"] == "reg" and e["code"] == 200 and e["expires"] > 0,
            timeout,
            since,
        )

    def place_call(self, uri: str, timeout: float = 10.0) -> int:
        """Call ``uri``; return the call's id."""
        mark = self.mark()
        self.send(f"call {uri}")
        event = self.wait_event(lambda e: e["event"] in ("calling", "error"), timeout, mark)
        assert event["event"] == "calling", event
        return int(event["call"])

    def wait_incoming(self, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait for an incoming INVITE; the event holds ``call`` and the whole ``message``."""
        return self.wait_event(lambda e: e["event"] == "incoming", timeout, since)

    def wait_state(self, call: int, state: str, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait until call ``call`` reports INVITE session state ``state``."""
        return self.wait_event(
            lambda e: e["event"] == "state" and e["call"] == call and e["state"] == state,
            timeout,
            since,
        )

    def wait_media(self, call: int, status: str, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait until call ``call`` reports audio status ``status`` (``ACTIVE``,
        ``LOCAL_HOLD``, ``REMOTE_HOLD``...)."""
        return self.wait_event(
            lambda e: e["event"] == "media" and e["call"] == call and e["status"] == status,
            timeout,
            since,
        )

    def wait_rx(
        self, call: int, method: str, *, role: str, timeout: float = 15.0, since: int = 0
    ) -> Event:
        """Wait until call ``call`` receives a ``method`` request (``role`` ``uas``) or a final
        response to one (``uac``); the event holds the whole ``message``."""
        return self.wait_event(
            lambda e: e["event"] == "rx" and e["call"] == call and e["method"] == method
            and e["role"] == role and (role == "uas" or e["status"] >= 200),
            timeout,
            since,
        )  # fmt: skip

    def wait_rtp(self, call: int, packets: int, timeout: float = 15.0) -> Event:
        """Wait until ``packets`` more RTP packets than now have reached call ``call``."""
        mark = self.mark()
        self.send(f"watch {call} {packets}")
        return self.wait_event(
            lambda e: e["event"] in ("rtp", "error") and e.get("reason") != "first"
            and e.get("call", call) == call,
            timeout,
            mark,
        )  # fmt: skip

    def wait_received(self, summary: str, timeout: float = 15.0, since: int = 0) -> Event:
        """Wait until PJSIP's log shows it received ``summary`` (``Request msg BYE``,
        ``Response msg 487/INVITE``...), also after its call has ended."""
        return self.wait_event(
            lambda e: e["event"] == "received" and e["summary"] == summary, timeout, since
        )

    def digits(self, call: int, count: int, timeout: float = 15.0, since: int = 0) -> str:
        """Wait for ``count`` DTMF digits on call ``call``; return them in order."""
        found: list[str] = []

        def enough(event: Event) -> bool:
            if event["event"] == "dtmf" and event["call"] == call:
                found.append(str(event["digit"]))
            return len(found) >= count

        self.wait_event(enough, timeout, since)
        return "".join(found)


def free_rtp_port(host: str = "127.0.0.1") -> int:
    """An even UDP port whose odd neighbour is free too (PJSIP's RTP and RTCP)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as rtp:
            rtp.bind((host, 0))
            port = int(rtp.getsockname()[1])
        if port % 2 or port + 1 > 65535:
            continue
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a,
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b,
        ):
            try:
                a.bind((host, port))
                b.bind((host, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free even/odd UDP port pair")
