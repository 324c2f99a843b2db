"""Listening to voicemail by phone (`voicemail-main:own`, reached by dialling the feature code
`features.voicemail`, `*97`): the caller's own mailbox, in the office's language.

The box asks for the mailbox's PIN (keys, then `#`; three tries) unless the mailbox has none
(the phone has already proven it is the extension, with its SIP credentials), says "you have
N new and M old messages" in correct grammar ("одно новое сообщение", "два новых сообщения",
"пять новых сообщений"), then plays the messages, new first, oldest first. During or after a
message: 1 plays it again, 7 deletes it, 9 saves it, # goes to the next one (keeping it, as
saved). Silence repeats the choices twice, then the box says goodbye.
Keys are documented for users in docs/VOICEMAIL.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.media import prompts
from appliance.pbx.destinations.voicemail import Dialogue, start

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.dialplan import DialPlan
    from appliance.pbx.legs import Call
    from appliance.store.voicemail import Mailbox

logger = logging.getLogger(__name__)

PIN_TRIES = 3
PIN_TIMEOUT = 10.0
CHOICE_TIMEOUT = 6.0
CHOICE_ROUNDS = 3
KEYS = {"1": "vm-repeat", "7": "vm-delete", "9": "vm-savemessage", "#": "vm-next"}
"""The keys after a message, each with the pack's prompt naming what it does."""
KEY_NAMES = {"#": "digits/pound", "*": "digits/star"}


@dataclass(frozen=True, slots=True)
class Retrieval:
    plan: DialPlan
    mailbox: str = ""
    """The mailbox; "" (or "own"): the caller's."""

    def route(self, call: Call, engine: CallEngine) -> None:
        vm = self.plan.voicemail
        number = self.mailbox or call.a.number
        if call.origin.kind != "extension":
            engine.reject(call, 403, "Forbidden (voicemail is for the office's phones)")
            return
        box = vm.mailbox(number) if vm is not None else None
        if vm is None or box is None:
            engine.reject(call, 404, f"Not Found (extension {number} has no mailbox)")
            return
        if number != call.a.number and not box.has_pin:  # another's mailbox needs its PIN
            engine.reject(call, 403, f"Forbidden (mailbox {number} has no PIN)")
            return
        engine.answer(call, lambda answered: start(
            answered, f"voicemail-main {number}", _main(Dialogue(answered, vm), box, engine),
        ))  # fmt: skip


def count_phrase(language: str, speaker: prompts.Speaker, new: int, old: int) -> list[Path]:
    """ "You have 2 new and 1 old message(s)" from the pack, agreeing in number and, in
    Russian, in gender and case ("сообщение" is neuter: одно, два; новое / новых)."""

    def file(name: str) -> Path:
        return prompts.path(name, language)

    def counted(n: int, kind: str) -> list[Path]:
        if language == "ru":
            form = prompts.plural_ru(n)
            adjective = f"vm-{kind}n" if form == 0 else f"vm-{kind}x"
            noun = ("vm-message", "vm-messagex1", "vm-messagex2")[form]
            return [*speaker.number(n, "n"), file(adjective), file(noun)]
        adjective = "vm-INBOX" if kind == "new" else "vm-Old"
        return [*speaker.number(n), file(adjective),
                file("vm-message" if n == 1 else "vm-messages")]  # fmt: skip

    out = [file("vm-youhave")]
    if not new and not old:
        noun = "vm-messagex2" if language == "ru" else "vm-messages"
        return [*out, file("vm-no"), file(noun)]
    if new:
        out += counted(new, "new")
    if new and old:
        out.append(file("vm-and"))
    if old:
        out += counted(old, "old")
    return out


async def _main(d: Dialogue, box: Mailbox, engine: CallEngine) -> None:
    call, vm = d.call, d.vm
    if box.has_pin and not await _login(d, box):
        await d.play(d.pack("vm-goodbye"))
        engine.hangup(call, f"voicemail {box.number}: wrong PIN")
        return
    messages = await vm.messages(box.number)
    new = sum(1 for m in messages if m.folder == "new")
    language = vm.language
    speaker_paths = await asyncio.to_thread(_phrase, language, vm.data_dir, new,
                                            len(messages) - new)  # fmt: skip
    await d.play(speaker_paths)
    index, rounds = 0, 0
    while index < len(messages):
        message = messages[index]
        heard = await _message_paths(language, vm.data_dir, index, vm.path(message.path))
        paths = [*heard, *_choices(d)]
        while True:
            digits, _reason = await d.ask(paths, timeout=CHOICE_TIMEOUT)
            if digits == "1":
                paths, rounds = [*heard[-1:], *_choices(d)], 0
                continue
            if digits == "7":
                await vm.delete(message)
                await d.play(d.pack("vm-deleted"))
                break
            if digits == "9":
                await vm.save(message)
                await d.play(d.pack("vm-msgsaved"))
                break
            if digits == "#":
                await vm.save(message)
                break
            rounds += 1
            if rounds >= CHOICE_ROUNDS:
                await d.play(d.pack("vm-goodbye"))
                engine.hangup(call, f"voicemail {box.number}: no choice")
                return
            paths = [*(d.pack("vm-sorry") if digits else []), *_choices(d)]
        index, rounds = index + 1, 0
    await d.play(d.pack("vm-nomore", "vm-goodbye"))
    engine.hangup(call, f"voicemail {box.number} listened to")


async def _login(d: Dialogue, box: Mailbox) -> bool:
    for attempt in range(PIN_TRIES):
        ask = d.pack("vm-password") if attempt == 0 else d.pack("vm-invalidpassword")
        digits, _reason = await d.ask(ask, max_digits=10, timeout=PIN_TIMEOUT, inter=5.0,
                                      terminator="#")  # fmt: skip
        if digits and await d.vm.verify_pin(box.number, digits):
            return True
        logger.info("call %s: wrong PIN for mailbox %s (try %d)", d.call.id, box.number,
                    attempt + 1)  # fmt: skip
    await d.play(d.pack("vm-incorrect"))
    return False


def _phrase(language: str, data_dir: Path, new: int, old: int) -> list[Path]:
    """(In a thread: the speaker may synthesise a word the pack lacks.)"""
    try:
        return count_phrase(language, prompts.Speaker(language, data_dir), new, old)
    except prompts.PromptError as exc:
        logger.error("voicemail: %s", exc)
        return []


async def _message_paths(language: str, data_dir: Path, index: int, file: Path) -> list[Path]:
    """ "Message 2", then the message itself (last)."""

    def intro() -> list[Path]:
        try:
            speaker = prompts.Speaker(language, data_dir)
            return [prompts.path("vm-message", language), *speaker.number(index + 1, "n")]
        except prompts.PromptError as exc:
            logger.error("voicemail: %s", exc)
            return []

    return [*await asyncio.to_thread(intro), file]


def _choices(d: Dialogue) -> list[Path]:
    """ "To repeat this message, press 1; to delete it, 7; to save it, 9; the next, #"."""
    names: list[str] = []
    for key, prompt in KEYS.items():
        names += [prompt, "vm-press", KEY_NAMES.get(key, f"digits/{key}")]
    return d.pack(*names)


def from_text(target: str, plan: DialPlan) -> Retrieval:
    return Retrieval(plan, "" if target in ("", "own") else target)
