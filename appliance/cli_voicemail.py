"""`pbx voicemail`: the extensions' mailboxes and their messages (`appliance.store.voicemail`),
from the command line. Wired into `appliance.cli` by `add_commands`.

A PIN given on the command line is seen by whoever lists the box's processes at that moment:
`--pin -` reads it from the standard input instead (a prompt without echo on a terminal)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from appliance.i18n import T
from appliance.store import prompts, voicemail
from appliance.store.db import open_db
from appliance.store.voicemail import VoicemailError

Command = Callable[..., argparse.ArgumentParser]
ERRORS = (VoicemailError,)
"""What `pbx voicemail` reports as a refusal (exit status 2) rather than a crash."""

FLAGS = {
    "enabled": "the mailbox takes messages (--no-enabled: calls are not sent to it)",
    "attach": "the e-mail carries the message's audio",
    "on_busy": "calls to the busy extension go to the mailbox",
    "on_no_answer": "calls nobody answers go to the mailbox",
    "unsolicited_mwi": "send message-waiting NOTIFY to phones that did not subscribe",
}


def _box_json(db: Any, box: voicemail.Mailbox) -> dict[str, Any]:
    new, saved = voicemail.counts(db, box.number)
    return {
        "number": box.number, "enabled": box.enabled, "has_pin": box.has_pin,
        "greeting": box.greeting, "greeting_file": box.greeting_file,
        "max_seconds": box.max_seconds, "email": box.email, "attach": box.attach,
        "on_busy": box.on_busy, "on_no_answer": box.on_no_answer,
        "unsolicited_mwi": box.unsolicited_mwi, "new": new, "saved": saved,
    }  # fmt: skip


def cmd_voicemail_list(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    boxes = voicemail.mailboxes(db)
    if args.json:
        print(json.dumps([_box_json(db, b) for b in boxes], ensure_ascii=False, indent=1))
        return 0
    for box in boxes:
        new, saved = voicemail.counts(db, box.number)
        when = [w for w, on in (("busy", box.on_busy), ("no answer", box.on_no_answer)) if on]
        print(f"{box.number:>6}  {'on ' if box.enabled else 'off'}  {new} new, {saved} saved"
              f"  {'PIN set' if box.has_pin else 'no PIN'}  greeting {box.greeting}"
              f"  max {box.max_seconds} s  on {', '.join(when) or 'nothing'}"
              f"{'  e-mail ' + box.email if box.email else ''}")  # fmt: skip
    if not boxes:
        print("no mailboxes")
    return 0


def _pin(args: argparse.Namespace) -> str | None:
    if args.no_pin:
        return ""
    if args.pin != "-":
        return str(args.pin) if args.pin is not None else None
    if sys.stdin.isatty():
        return getpass.getpass("PIN: ")
    return sys.stdin.readline().strip()


def cmd_voicemail_set(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    existed = voicemail.mailbox(db, args.number) is not None
    greeting_file = None
    if args.greeting_prompt is not None:
        found = prompts.get(db, args.greeting_prompt)
        if found is None:
            raise VoicemailError(
                T("there is no custom prompt {name}", name=args.greeting_prompt), "greeting"
            )
        greeting_file = found.path
    box = voicemail.set_mailbox(
        db, args.number, pin=_pin(args), greeting=args.greeting, greeting_file=greeting_file,
        max_seconds=args.max_seconds, email=args.email,
        **{flag: getattr(args, flag) for flag in FLAGS},
    )  # fmt: skip
    args.notify(args)
    print(f"mailbox {box.number} {'changed' if existed else 'added'}"
          f" ({'PIN set' if box.has_pin else 'no PIN'})")  # fmt: skip
    return 0


def cmd_voicemail_remove(args: argparse.Namespace) -> int:
    if not voicemail.remove_mailbox(open_db(args.data), args.data, args.number):
        raise VoicemailError(T("there is no mailbox {number}", number=args.number))
    args.notify(args)
    print(f"mailbox {args.number} removed with its messages")
    return 0


def cmd_voicemail_messages(args: argparse.Namespace) -> int:
    db = open_db(args.data)
    if voicemail.mailbox(db, args.number) is None:
        raise VoicemailError(T("there is no mailbox {number}", number=args.number))
    found = voicemail.messages(db, args.number, args.folder)
    for m in found:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(m.started_at))
        who = f"{m.caller} {m.caller_name}".strip() or "unknown"
        print(f"{m.id:>6}  {m.folder:<5}  {started}  {m.seconds:6.1f} s  {who}  {m.path}")
    if not found:
        print("no messages")
    return 0


def cmd_voicemail_delete_message(args: argparse.Namespace) -> int:
    gone = voicemail.remove_message(open_db(args.data), args.data, args.id)
    if gone is None:
        raise VoicemailError(T("there is no message {id}", id=args.id), "message")
    args.notify(args)
    print(f"message {gone.id} of mailbox {gone.mailbox} deleted")
    return 0


def cmd_voicemail_save_message(args: argparse.Namespace) -> int:
    if not voicemail.move(open_db(args.data), args.id, "saved"):
        raise VoicemailError(T("there is no message {id}", id=args.id), "message")
    args.notify(args)
    print(f"message {args.id} moved to saved")
    return 0


def add_commands(sub: Any, command: Command, notify: Callable[[argparse.Namespace], None]) -> None:
    """Add `voicemail` to the `pbx` parser's subcommands."""
    vm = command(sub, "voicemail", "manage the extensions' mailboxes and their messages", None)
    vmsub = vm.add_subparsers(dest="voicemail_command", required=True, metavar="COMMAND")
    p = command(vmsub, "list", "list the mailboxes with their new and saved messages",
                cmd_voicemail_list)  # fmt: skip
    p.add_argument("--json", action="store_true", help="as JSON")

    p = command(vmsub, "set", "make an extension's mailbox, or change the options given",
                cmd_voicemail_set)  # fmt: skip
    p.set_defaults(notify=notify)
    p.add_argument("number", help="the extension whose mailbox it is")
    pin = p.add_mutually_exclusive_group()
    pin.add_argument("--pin", metavar="DIGITS",
                     help="4 to 10 digits for listening by phone (*97); '-': read it from the"
                          " standard input")  # fmt: skip
    pin.add_argument("--no-pin", action="store_true",
                     help="remove the PIN (the mailbox cannot be heard by phone)")  # fmt: skip
    p.add_argument(
        "--greeting",
        choices=voicemail.GREETINGS,
        help="default: the recorded pack names the extension; custom: a prompt",
    )
    p.add_argument(
        "--greeting-prompt",
        metavar="NAME",
        help="the custom prompt (`pbx prompt list`) that is the custom greeting",
    )
    p.add_argument("--max-seconds", type=int, metavar="S",
                   help="the longest message, 10 to 600 seconds (default 120)")  # fmt: skip
    p.add_argument("--email", metavar="ADDRESS", help="new messages are e-mailed here; '': none")
    for flag, text in FLAGS.items():
        p.add_argument(f"--{flag.replace('_', '-')}", dest=flag,
                       action=argparse.BooleanOptionalAction, help=text)  # fmt: skip

    p = command(vmsub, "remove", "remove a mailbox with its messages", cmd_voicemail_remove)
    p.set_defaults(notify=notify)
    p.add_argument("number", help="the extension whose mailbox it is")

    p = command(vmsub, "messages", "list a mailbox's messages: new first, then saved",
                cmd_voicemail_messages)  # fmt: skip
    p.add_argument("number", help="the extension whose mailbox it is")
    p.add_argument("--folder", choices=voicemail.FOLDERS, help="only this folder's")

    p = command(vmsub, "delete-message", "delete a message and its file",
                cmd_voicemail_delete_message)  # fmt: skip
    p.set_defaults(notify=notify)
    p.add_argument("id", type=int, help="the message's number, as `pbx voicemail messages` shows")

    p = command(vmsub, "save-message", "move a message to the saved folder",
                cmd_voicemail_save_message)  # fmt: skip
    p.set_defaults(notify=notify)
    p.add_argument("id", type=int, help="the message's number, as `pbx voicemail messages` shows")
