"""`pbx prompt`: the office's custom prompts (`appliance.store.prompts`) and the recorded packs'
spoken values, from the command line. Wired into `appliance.cli` by `add_commands`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance import tts
from appliance.i18n import LANGUAGES
from appliance.media import prompts as packs
from appliance.store import prompts
from appliance.store.db import open_db

Command = Callable[..., argparse.ArgumentParser]
ERRORS = (prompts.PromptError, packs.PromptError, tts.TtsError)
"""What `pbx prompt` reports as a refusal (exit status 2) rather than a crash."""


def cmd_prompt_list(args: argparse.Namespace) -> int:
    found = prompts.list_all(open_db(args.data))
    for p in found:
        what = p.text if len(p.text) <= 48 else p.text[:47] + "…"
        print(f"{p.name:<24} {p.language}  {p.kind:<6} {p.duration:6.1f} s  {p.path}  {what}")
    if not found:
        print("no custom prompts")
    return 0


def cmd_prompt_add(args: argparse.Namespace) -> int:
    data: Path = args.data
    made = prompts.create(
        open_db(data), data, args.name, args.lang, "tts", args.text,
        lambda target: tts.synthesize(args.text, args.lang, target),
    )  # fmt: skip
    print(f"prompt {made.name} added: {made.duration:.1f} s, {made.path}")
    return 0


def cmd_prompt_upload(args: argparse.Namespace) -> int:
    data: Path = args.data
    source: Path = args.file
    content = source.read_bytes()
    made = prompts.create(
        open_db(data), data, args.name, args.lang, "upload", source.name,
        lambda target: tts.convert_upload(content, target),
    )  # fmt: skip
    print(f"prompt {made.name} added from {source.name}: {made.duration:.1f} s, {made.path}")
    return 0


def cmd_prompt_remove(args: argparse.Namespace) -> int:
    gone = prompts.remove(open_db(args.data), args.data, args.name)
    print(f"prompt {gone.name} removed")
    return 0


def cmd_prompt_say(args: argparse.Namespace) -> int:
    for found in packs.say(args.lang, args.kind, args.value, args.data, args.gender):
        print(found)
    return 0


def add_commands(sub: Any, command: Command) -> None:
    """Add `prompt` to the `pbx` parser's subcommands."""
    top = command(sub, "prompt", "custom prompts (typed text or uploads) and spoken values", None)
    psub = top.add_subparsers(dest="prompt_command", required=True, metavar="COMMAND")
    command(psub, "list", "list the custom prompts", cmd_prompt_list)
    p = command(psub, "add", "synthesise a prompt from text with espeak-ng", cmd_prompt_add)
    p.add_argument("name", help="prompt name: letters, digits, '_', '-', '.' (menus use it)")
    p.add_argument("--text", required=True, help=f"what it says (at most {tts.MAX_TEXT} chars)")
    p.add_argument("--lang", choices=LANGUAGES, default="ru", help="its language (default ru)")
    p = command(psub, "upload", "make a prompt from a WAV, MP3 or OGG file", cmd_prompt_upload)
    p.add_argument("file", type=Path, help="the audio file")
    p.add_argument("name", help="prompt name: letters, digits, '_', '-', '.'")
    p.add_argument("--lang", choices=LANGUAGES, default="ru", help="its language (default ru)")
    p = command(psub, "remove", "remove a custom prompt and its file", cmd_prompt_remove)
    p.add_argument("name", help="prompt name")
    p = command(psub, "say", "print the pack's files that speak a value, in order",
                cmd_prompt_say)  # fmt: skip
    p.add_argument("lang", choices=LANGUAGES, help="the pack's language")
    p.add_argument("value", help="a whole number, or digits for 'digits'")
    p.add_argument("kind", choices=packs.SAY_KINDS,
                   help="how to say it: number, digits, ordinal, hours, minutes, seconds, "
                        "duration (seconds as hours, minutes and seconds)")  # fmt: skip
    p.add_argument("--gender", choices=("m", "f", "n"), default="m",
                   help="grammatical gender of a Russian number (default m)")  # fmt: skip
