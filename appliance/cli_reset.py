"""`pbx factory-reset`: make the box new again (see `appliance.factory_reset`). On the
appliance it files the request, and the box reboots and reformats its data partition; in a
checkout it empties the data directory, once no service of the PBX is running. Either way only
after the person typed the confirmation word (or passed `--yes`). Wired into `appliance.cli`
by `add_commands`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from appliance import control, factory_reset
from appliance.i18n import T

Command = Callable[..., argparse.ArgumentParser]


class ResetError(Exception):
    """The reset was not done: not confirmed, or a service still runs. `str()` says which."""


ERRORS = (ResetError,)


def _running(args: argparse.Namespace) -> list[str]:
    """The PBX services answering on their control sockets in this data directory."""
    found = []
    for name, path in (("pbx-core", control.socket_path(args.data)),
                       ("pbx-lines", control.lines_socket_path(args.data))):  # fmt: skip
        try:
            control.call_at(path, "status", 2.0, name)
        except (control.ControlError, OSError):
            continue
        found.append(name)
    return found


def cmd_factory_reset(args: argparse.Namespace) -> int:
    warning = T("This erases every setting, extension, call record, recording, prompt and "
                "voicemail message of the box in {data}.", data=args.data)  # fmt: skip
    print(warning)
    if not args.yes:
        print(T("Type {word} to confirm:", word=factory_reset.CONFIRMATION), end=" ", flush=True)
        answer = sys.stdin.readline().strip()
        if answer != factory_reset.CONFIRMATION:
            raise ResetError(T("not confirmed: nothing was erased"))
    if factory_reset.on_appliance():
        factory_reset.request(args.data, "pbx factory-reset")
        print(T("The box restarts now and comes back as new (about a minute)."))
        return 0
    running = _running(args)
    if running:
        raise ResetError(T("stop {services} first: nothing was erased",
                           services=", ".join(running)))  # fmt: skip
    removed = factory_reset.wipe(args.data)
    print(T("{data} emptied ({count} entries removed).", data=args.data, count=removed))
    return 0


def add_commands(sub: Any, command: Command) -> None:
    """Add `factory-reset` to the `pbx` parser's subcommands."""
    p = command(sub, "factory-reset",
                "erase everything the box was told and start as new (asks to confirm)",
                cmd_factory_reset)  # fmt: skip
    p.add_argument("--yes", action="store_true",
                   help=f"do not ask; as if {factory_reset.CONFIRMATION} was typed")  # fmt: skip
