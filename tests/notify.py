"""systemd's notification socket (`NOTIFY_SOCKET`), played by a test: a service started with
`env` tells it READY=1, WATCHDOG=1, RELOADING=1, STOPPING=1 as it would tell systemd."""

from __future__ import annotations

import socket
from pathlib import Path
from types import TracebackType
from typing import Self

WATCHDOG_USEC = 200_000
"""The watchdog period the services are given: pings every 0.1 s."""


class NotifySocket:
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(path))
        self._sock.settimeout(timeout)

    @property
    def env(self) -> dict[str, str]:
        """The environment variables systemd gives a Type=notify service with WatchdogSec."""
        return {"NOTIFY_SOCKET": str(self.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)}

    def recv(self) -> str:
        """The next message (raises TimeoutError when the service says nothing)."""
        return self._sock.recv(256).decode()

    def next_state(self) -> str:
        """The next message that is not a watchdog ping."""
        while (message := self.recv()) == "WATCHDOG=1":
            pass
        return message

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:  # fmt: skip
        self.close()
