"""Run a real baresip 1.0.0 phone inside a :class:`NetNamespace` for interop tests.

:class:`Baresip` writes a config directory (``config`` and ``accounts``),
starts ``baresip -f DIR`` through ``nsenter`` with its stdin on a pipe (the
``stdio`` module then reads menu commands such as ``/dial 200`` or ``/options
sip:...`` from it), copies everything it prints into ``baresip.log`` and lets a
test wait for a line.

What baresip 1.0.0 prints (ANSI colour codes removed; verified against
tests/fixtures/sip/capture.py, account 101 at 10.99.0.1:5060):

* first registration accepted (pattern :data:`REGISTER_OK`)::

      101@10.99.0.1: {0/UDP/v4} 200 OK (pbx-fixture-capture) [1 binding]

  (``USER@HOST: {index/transport/af} CODE REASON (Server header) [N
  binding(s)]``), followed once all accounts are registered by
  ``All 1 useragent registered successfully! (2 ms)`` (menu module,
  :data:`ALL_REGISTERED`).  Refreshes print **nothing**: to see a refresh,
  watch the registrar.  Each refresh (and the un-REGISTER) is first sent
  without credentials and repeated after the 401.
* registration refused (pattern :data:`REGISTER_FAILED`; no ``USER@HOST:``
  prefix here), e.g. a 403 after the challenge::

      reg: sip:101@10.99.0.1:5060: 403 Forbidden (pbx-fixture-capture)

* the 401 offers an algorithm it lacks (``algorithm=SHA-256``, even when an
  MD5 challenge follows), at once::

      reg: sip:101@10.99.0.1:5060: Register: Function not implemented

* nobody answers, after 32 s::

      reg: sip:101@10.99.0.1:5060: Register: Connection timed out

* shutdown (SIGTERM or ``-t``): ``terminated by signal 15`` (SIGTERM only),
  then ``ua: stop all (forced=0)``; it un-registers before exiting.
"""

from __future__ import annotations

import logging
import re
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tests.feed import Feed, FeedClosed
from tests.interop.netns import NetNamespace

logger = logging.getLogger(__name__)

#: One account registered (initial registration or refresh); group 1 is the AOR.
REGISTER_OK = re.compile(r"^(\S+): \{\d+/\w+/v[46]\} 200 OK\b")
#: A registration failed: group 1 the account URI, group 2 the status or error.
REGISTER_FAILED = re.compile(r"^reg: (sip:\S+?): (.+)$")
#: Every account registered (printed by the menu module once).
ALL_REGISTERED = re.compile(r"All \d+ useragents? registered successfully!")

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

MODULE_PATH = "/usr/lib/baresip/modules"


class BaresipError(Exception):
    """baresip could not be started or did not print what was awaited."""


@dataclass(frozen=True)
class BaresipAccount:
    """One line of baresip's ``accounts`` file."""

    user: str
    host: str
    port: int = 5060
    password: str | None = None
    regint: int = 60
    #: Further account parameters, e.g. ``{"answermode": "auto", "audio_codecs": "PCMU"}``.
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def aor(self) -> str:
        """``USER@HOST`` as baresip prefixes its messages about this account."""
        return f"{self.user}@{self.host}"

    def line(self) -> str:
        """The accounts-file line, e.g. ``<sip:101@10.99.0.1:5060>;auth_pass=x;regint=60``."""
        parts = [f"<sip:{self.user}@{self.host}:{self.port}>"]
        if self.password is not None:
            parts.append(f"auth_pass={self.password}")
        parts.append(f"regint={self.regint}")
        parts.extend(f"{key}={value}" for key, value in self.params.items())
        return ";".join(parts)


@dataclass(frozen=True)
class BaresipAudio:
    """Deterministic audio without a sound card (see TEST-PEERS.md).

    ``source`` ``ausine,440`` plays a sine; ``player`` ``aubridge,NAME`` takes
    what the phone decodes; ``snd_path`` (module sndfile) dumps the decoded
    and encoded audio as WAV files into that directory.
    """

    source: str = "ausine,440"
    player: str = "aubridge,bridge"
    snd_path: Path | None = None
    srate: int = 48000
    channels: int = 2

    def modules(self) -> list[str]:
        """Modules this audio setup needs, besides the codecs."""
        names = {self.source.split(",")[0], self.player.split(",")[0]}
        if self.snd_path is not None:
            names.add("sndfile")
        return sorted(f"{name}.so" for name in names)

    def config(self) -> dict[str, str]:
        """Config-file entries for this audio setup."""
        entries = {
            "audio_source": self.source,
            "audio_player": self.player,
            "audio_alert": self.player,
            "ausrc_srate": str(self.srate),
            "ausrc_channels": str(self.channels),
            "auplay_srate": str(self.srate),
            "auplay_channels": str(self.channels),
        }
        if self.snd_path is not None:
            entries["snd_path"] = str(self.snd_path)
        return entries


class Baresip:
    """One baresip process with its own config directory, in a network namespace."""

    def __init__(
        self,
        netns: NetNamespace,
        workdir: Path,
        accounts: BaresipAccount | Sequence[BaresipAccount],
        *,
        listen: str | None = None,
        audio: BaresipAudio | None = None,
        codecs: Sequence[str] = ("g711.so",),
        quit_after: int | None = 600,
        sip_trace: bool = False,
        extra_config: Mapping[str, str] | None = None,
    ) -> None:
        """Describe the phone; :meth:`start` writes the config and runs it.

        ``workdir`` becomes the ``-f`` config directory and holds
        ``baresip.log``.  ``listen`` is ``sip_listen`` (default
        ``NETNS_HOST:5070``; baresip also takes the next port for TLS, so
        space instances 10 apart).  ``quit_after`` is passed as ``-t`` so a
        forgotten phone ends by itself; ``None`` disables that guard.
        ``sip_trace`` (``-s``) prints every SIP message sent and received.
        """
        self.netns = netns
        self.workdir = Path(workdir)
        self.accounts = [accounts] if isinstance(accounts, BaresipAccount) else list(accounts)
        self.listen = listen or f"{netns.host}:5070"
        self.audio = audio
        self.codecs = list(codecs)
        self.quit_after = quit_after
        self.sip_trace = sip_trace
        self.extra_config = dict(extra_config or {})
        self.log_path = self.workdir / "baresip.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._reader: threading.Thread | None = None
        self._lines: Feed[str] = Feed()

    def config_text(self) -> str:
        """The ``config`` file: SIP listen address and only the needed modules."""
        entries: list[tuple[str, str]] = [
            ("poll_method", "epoll"),
            ("sip_listen", self.listen),
            ("module_path", MODULE_PATH),
            ("module", "stdio.so"),  # reads menu commands from stdin (a pipe here)
        ]
        entries += [("module", codec) for codec in self.codecs]
        if self.audio is not None:
            entries += [("module", module) for module in self.audio.modules()]
            entries += list(self.audio.config().items())
        entries += [("module_tmp", "account.so"), ("module_app", "menu.so")]
        entries += list(self.extra_config.items())
        return "".join(f"{key}\t\t{value}\n" for key, value in entries)

    def write_config(self) -> Path:
        """Write ``config`` and ``accounts`` into the work directory; return it."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "config").write_text(self.config_text())
        (self.workdir / "accounts").write_text(
            "".join(account.line() + "\n" for account in self.accounts)
        )
        return self.workdir

    @property
    def pid(self) -> int:
        """PID of the running baresip."""
        if self._proc is None:
            raise BaresipError("baresip not started")
        return self._proc.pid

    def start(self) -> None:
        """Write the config and start baresip inside the namespace."""
        if self._proc is not None:
            raise BaresipError("baresip already started")
        self.write_config()
        argv = ["baresip", "-f", str(self.workdir)]
        if self.quit_after is not None:
            argv += ["-t", str(self.quit_after)]
        if self.sip_trace:
            argv.append("-s")
        # stdbuf: baresip writes with stdio, which would block-buffer into a pipe.
        self._proc = self.netns.popen(
            ["stdbuf", "-oL", "-eL", *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self._proc.stdout is not None
        self._reader = threading.Thread(
            target=self._read,
            args=(self._proc.stdout,),
            name=f"baresip-{self._proc.pid}",
            daemon=True,
        )
        self._reader.start()
        logger.info("baresip pid %d started in %s", self._proc.pid, self.workdir)

    def _read(self, stream: IO[bytes]) -> None:
        """Copy baresip's output to the log file and the line list."""
        with self.log_path.open("wb") as log:
            for raw in stream:
                log.write(raw)
                log.flush()
                # The stdio module echoes typed commands with \r redraws.
                text = _ANSI.sub("", raw.decode("utf-8", "replace")).split("\r")[-1].rstrip("\n")
                self._lines.append(text)
        self._lines.close()

    @property
    def lines(self) -> list[str]:
        """Every line printed so far (colour codes removed)."""
        return self._lines.items

    def mark(self) -> int:
        """Current line count; pass it as ``since`` to wait for a *new* line."""
        return self._lines.mark()

    def wait_for(
        self, pattern: str | re.Pattern[str], timeout: float = 10.0, since: int = 0
    ) -> re.Match[str]:
        """Wait for a printed line (number ``since`` or later) matching ``pattern``.

        ``pattern`` is searched (``re.search``) in each line.  Raises
        :class:`BaresipError` with the last lines on timeout or if baresip
        exits first.
        """
        return self._search(pattern, timeout, since)[0]

    def _search(
        self, pattern: str | re.Pattern[str], timeout: float, since: int
    ) -> tuple[re.Match[str], int]:
        """:meth:`wait_for`, also returning the number of the line after the match."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        try:
            _, match, index = self._lines.wait(regex.search, timeout, since)
        except FeedClosed as exc:
            tail = "\n".join(self._lines.items[-20:])
            raise BaresipError(f"{exc}: {regex.pattern!r}; last output:\n{tail}") from None
        assert isinstance(match, re.Match)
        return match, index

    def wait_registered(self, timeout: float = 10.0, since: int = 0) -> None:
        """Wait until every account printed a ``200 OK`` registration line.

        Raises :class:`BaresipError` as soon as a registration fails.
        """
        pending = {account.aor for account in self.accounts}
        either = re.compile(f"{REGISTER_OK.pattern}|{REGISTER_FAILED.pattern}")
        deadline = time.monotonic() + timeout
        index = since
        while pending:
            match, index = self._search(either, max(0.0, deadline - time.monotonic()), index)
            if REGISTER_FAILED.search(match.string):
                raise BaresipError(f"registration failed: {match.string}")
            pending.discard(match.group(1))

    def command(self, line: str) -> None:
        """Type a menu command (``/dial 200``, ``/hangup``, ``/options URI``...)."""
        if self._proc is None or self._proc.stdin is None:
            raise BaresipError("baresip not started")
        self._proc.stdin.write(line.encode() + b"\n")
        self._proc.stdin.flush()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM baresip by PID (it un-registers), wait, kill if needed; return its code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                logger.warning("baresip pid %d ignored SIGTERM; killing it", proc.pid)
                proc.kill()
                proc.wait(timeout=timeout)
        if proc.stdin is not None:
            proc.stdin.close()
        if self._reader is not None:
            self._reader.join(timeout=timeout)
        logger.info("baresip pid %d exited %s", proc.pid, proc.returncode)
        return proc.returncode

    def __enter__(self) -> Self:
        """Start baresip."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaresipError] | type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop baresip."""
        self.stop()
