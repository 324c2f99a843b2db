"""`pbx ivr` and `pbx announcement`: the IVR menus and announcements (`appliance.store.menus`),
from the command line. Wired into `appliance.cli` by `add_commands`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from appliance.store import menus
from appliance.store.db import open_db

Command = Callable[..., argparse.ArgumentParser]


def _choices(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    found = []
    for value in values or []:
        key, sep, target = value.partition("=")
        if not sep:
            raise menus.MenuError(f"a choice is KEY=DESTINATION (2=extension:102), not {value!r}",
                                  "choices")  # fmt: skip
        found.append((key.strip(), target.strip()))
    return tuple(found)


def cmd_ivr_save(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    create = args.ivr_command == "add"
    old = None if create else menus.get_menu(db, args.name)
    if not create and old is None:
        raise menus.MenuError(f"there is no menu {args.name}")
    base = old or menus.Menu(args.name, "", args.greeting or "")
    menu = menus.Menu(
        name=args.name,
        label=base.label if args.label is None else args.label,
        greeting=args.greeting or base.greeting,
        invalid_prompt=args.invalid_prompt or base.invalid_prompt,
        timeout=base.timeout if args.timeout is None else args.timeout,
        repeats=base.repeats if args.repeats is None else args.repeats,
        direct_dial=base.direct_dial if args.direct_dial is None else args.direct_dial,
        on_timeout=args.on_timeout or base.on_timeout,
        on_invalid=args.on_invalid or base.on_invalid,
        choices=base.choices if args.choice is None else _choices(args.choice),
    )
    saved = menus.save_menu(db, menu, create=create)
    args.notify(args)
    print(f"menu {saved.name} {'added' if create else 'changed'}")
    return 0


def _menu_json(menu: menus.Menu) -> dict[str, Any]:
    return {
        "name": menu.name, "label": menu.label, "greeting": menu.greeting,
        "invalid_prompt": menu.invalid_prompt, "timeout": menu.timeout,
        "repeats": menu.repeats, "direct_dial": menu.direct_dial,
        "on_timeout": menu.on_timeout, "on_invalid": menu.on_invalid,
        "choices": dict(menu.choices),
    }  # fmt: skip


def cmd_ivr_list(args: argparse.Namespace) -> int:
    found = menus.list_menus(open_db(args.data))
    if args.json:
        print(json.dumps([_menu_json(m) for m in found], ensure_ascii=False, indent=1))
        return 0
    for m in found:
        keys = ", ".join(f"{k}={t}" for k, t in m.choices) or "no choices"
        print(f"{m.name}: {m.greeting}; {keys}; timeout {m.timeout} s x{m.repeats}"
              f" -> {m.on_timeout}; invalid -> {m.on_invalid}"
              f"{'; direct dialling' if m.direct_dial else ''}")  # fmt: skip
    return 0


def cmd_ivr_remove(args: argparse.Namespace) -> int:
    menus.remove_menu(open_db(args.data), args.name)
    args.notify(args)
    print(f"menu {args.name} removed")
    return 0


def cmd_announcement_save(args: argparse.Namespace) -> int:
    create = args.announcement_command == "add"
    item = menus.Announcement(args.name, args.label or "", args.prompt, args.then or "")
    saved = menus.save_announcement(open_db(args.data), item, create=create)
    args.notify(args)
    print(f"announcement {saved.name} {'added' if create else 'changed'}")
    return 0


def cmd_announcement_list(args: argparse.Namespace) -> int:
    for a in menus.list_announcements(open_db(args.data)):
        print(f"{a.name}: {a.prompt} -> {a.then or 'hang up'}")
    return 0


def cmd_announcement_remove(args: argparse.Namespace) -> int:
    menus.remove_announcement(open_db(args.data), args.name)
    args.notify(args)
    print(f"announcement {args.name} removed")
    return 0


def add_commands(sub: Any, command: Command, notify: Callable[[argparse.Namespace], None]) -> None:
    """Add `ivr` and `announcement` to the `pbx` parser's subcommands."""
    ivr = command(sub, "ivr", "manage IVR menus (destination ivr:NAME)", None)
    ivrsub = ivr.add_subparsers(dest="ivr_command", required=True, metavar="COMMAND")
    for name, text in (("add", "add a menu"), ("set", "change a menu (given options only)")):
        p = command(ivrsub, name, text, cmd_ivr_save)
        p.set_defaults(notify=notify)
        p.add_argument("name", help="menu name: lower-case letters, digits, '-', '_'")
        p.add_argument(
            "--greeting",
            required=name == "add",
            metavar="PROMPT",
            help="sound:NAME from the recorded pack, or a custom prompt's name",
        )
        p.add_argument(
            "--choice",
            action="append",
            metavar="KEY=DEST",
            help="a key (0-9, *, #) and where it goes (2=extension:102); repeat",
        )
        p.add_argument("--timeout", type=int, help="seconds to wait for a key (default 5)")
        p.add_argument("--repeats", type=int, help="times the menu plays (default 3)")
        p.add_argument("--on-timeout", metavar="DEST", help="where silence goes at the end")
        p.add_argument("--on-invalid", metavar="DEST", help="where wrong keys go at the end")
        p.add_argument("--invalid-prompt", metavar="PROMPT", help="said after a wrong key")
        p.add_argument(
            "--direct-dial",
            action=argparse.BooleanOptionalAction,
            help="callers may key an extension's number",
        )
        p.add_argument("--label", help="a name for people")  # fmt: skip
    p = command(ivrsub, "list", "list menus", cmd_ivr_list)
    p.add_argument("--json", action="store_true", help="as JSON")
    p = command(ivrsub, "remove", "remove a menu no DID or menu sends calls to", cmd_ivr_remove)
    p.set_defaults(notify=notify)
    p.add_argument("name", help="the menu's name")

    ann = command(sub, "announcement", "manage announcements (destination announcement:NAME)",
                  None)  # fmt: skip
    annsub = ann.add_subparsers(dest="announcement_command", required=True, metavar="COMMAND")
    for name, text in (("add", "add an announcement"), ("set", "change an announcement")):
        p = command(annsub, name, text, cmd_announcement_save)
        p.set_defaults(notify=notify)
        p.add_argument("name", help="lower-case letters, digits, '-', '_'")
        p.add_argument(
            "--prompt",
            required=True,
            metavar="PROMPT",
            help="sound:NAME from the recorded pack, or a custom prompt's name",
        )
        p.add_argument("--then", metavar="DEST", help="where the call goes after; none: hang up")
        p.add_argument("--label", help="a name for people")  # fmt: skip
    command(annsub, "list", "list announcements", cmd_announcement_list)
    p = command(annsub, "remove", "remove an announcement", cmd_announcement_remove)
    p.set_defaults(notify=notify)
    p.add_argument("name", help="the announcement's name")
