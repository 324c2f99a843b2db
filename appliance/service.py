"""What every service process does the same way: tell systemd its state, restart in place."""

from __future__ import annotations

import os
import socket
import sys


def sd_notify(message: str) -> None:
    """Tell systemd (Type=notify) about our state; a no-op outside systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.sendto(message.encode(), address)


def reexec() -> None:
    """Start this service again in the same process (a restart asked for over the control
    socket or from the setup page): same PID, so systemd and a test harness keep tracking it."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])
