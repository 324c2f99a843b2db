"""What every service process does the same way: tell systemd its state, restart in place."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


def sd_stopping(*, restarting: bool) -> None:
    """Tell systemd the service is going away, or (`restarting`: `reexec` follows) reloading:
    after STOPPING=1 systemd would wait for the process to exit and ignore the new READY=1."""
    if restarting:
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        sd_notify(f"RELOADING=1\nMONOTONIC_USEC={now}")
    else:
        sd_notify("STOPPING=1")


async def watchdog() -> None:
    """Ping systemd's watchdog (WatchdogSec, given as WATCHDOG_USEC) from the event loop, twice
    per period, until cancelled: a stuck loop stops the pings and systemd restarts the service.
    Returns at once when no watchdog is asked for."""
    usec = int(os.environ.get("WATCHDOG_USEC", "0") or 0)
    if usec <= 0:
        return
    while True:
        sd_notify("WATCHDOG=1")
        await asyncio.sleep(usec / 2e6)


def reexec() -> None:
    """Start this service again in the same process (a restart asked for over the control
    socket or from the setup page): same PID, so systemd and a test harness keep tracking it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
