"""Leave a message (`voicemail:NUM`): the box answers, plays the mailbox's greeting, a beep,
and records the caller until `#`, `SILENCE_SECONDS` of silence, the mailbox's length limit or
the caller's hang-up (what was recorded is kept). A message under a second is dropped.

The greeting is the mailbox's own recording when it has one, else the prompt pack's in the
office's language naming the extension: "The person at extension 1 0 1 is on the phone" (busy)
or "is unavailable", then "please leave your message after the tone; when done, hang up or
press the pound key". The file is written off the event loop (`appliance.media.message`); the
row, the message-waiting NOTIFYs and the e-mail follow (`appliance.pbx.voicemail`).

Also here: the small coroutine toolkit both voicemail destinations use (play prompts, ask for
keys while they play, notice the caller hanging up), since a dialogue reads best as one.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appliance.media import prompts
from appliance.media.engine import MediaError
from appliance.media.message import MessageRecording
from appliance.media.recorder import RecordingResult
from appliance.media.sources import sequence

if TYPE_CHECKING:
    from appliance.media.engine import MediaLeg
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.dialplan import DialPlan
    from appliance.pbx.legs import Call
    from appliance.pbx.voicemail import Voicemail
    from appliance.store.voicemail import Mailbox

logger = logging.getLogger(__name__)

LONG = 3600.0
"""A first-key timeout that never fires while a prompt plays (the real one starts after it)."""
DEFAULT_GREETING_END = ("vm-intro", "beep")


class CallerGone(Exception):
    """The caller hung up while the box was speaking or listening."""


class Dialogue:
    """The box talking with one caller on `leg`: play, ask, and `gone` once it hangs up."""

    def __init__(self, call: Call, vm: Voicemail) -> None:
        self.call = call
        self.leg: MediaLeg = call.a.media
        self.vm = vm
        loop = asyncio.get_running_loop()
        self.gone: asyncio.Future[None] = loop.create_future()
        call.on_caller_gone.append(lambda _call: self._hung_up())

    def _hung_up(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    def pack(self, *names: str) -> list[Path]:
        """Prompt pack files by name, in the office's language; a missing one is left out."""
        found = []
        for name in names:
            try:
                found.append(prompts.path(name, self.vm.language))
            except prompts.PromptError as exc:
                logger.error("voicemail: %s", exc)
        return found

    async def _until(self, *futures: asyncio.Future[Any]) -> None:
        await asyncio.wait([*futures, self.gone], return_when=asyncio.FIRST_COMPLETED)
        if self.gone.done():
            raise CallerGone

    async def play(self, paths: list[Path]) -> bool:
        """Play `paths` to the caller; True once they ended, False if stopped."""
        if not paths:
            return True
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        try:
            self.leg.play(sequence(paths), lambda ended: settle(done, ended))
        except MediaError as exc:
            logger.error("call %s: voicemail prompt: %s", self.call.id, exc)
            return True
        try:
            await self._until(done)
        finally:
            if not done.done() and not self.leg.closed:
                self.leg.stop_playback()
        return done.result()

    async def ask(
        self, paths: list[Path], *, max_digits: int = 1, timeout: float = 5.0,
        inter: float = 3.0, terminator: str | None = None,
    ) -> tuple[str, str]:  # fmt: skip
        """Play `paths` and collect keys (a key stops the prompt); `timeout` for the first key
        starts once the prompt ended. (digits, reason) as `MediaLeg.collect` says."""
        loop = asyncio.get_running_loop()
        got: asyncio.Future[tuple[str, str]] = loop.create_future()

        def keyed(digits: str, reason: str) -> None:
            if not got.done():
                got.set_result((digits, reason))

        def collect(first: float) -> Any:
            return self.leg.collect(keyed, max_digits=max_digits, first_timeout=first,
                                    inter_timeout=inter, terminator=terminator)  # fmt: skip

        collector = collect(LONG if paths else timeout)
        try:
            if paths:
                played: asyncio.Future[bool] = loop.create_future()
                try:
                    self.leg.play(sequence(paths), lambda ended: settle(played, ended))
                except MediaError as exc:
                    logger.error("call %s: voicemail prompt: %s", self.call.id, exc)
                    played.set_result(True)
                await self._until(got, played)
                if not got.done() and not collector.digits:
                    collector.cancel()
                    collector = collect(timeout)
            await self._until(got)
            return got.result()
        finally:
            collector.cancel()
            if not self.leg.closed:
                self.leg.stop_playback()


def settle(future: asyncio.Future[Any], value: Any) -> None:
    """Give `future` its result unless it has one (a callback of the media engine's)."""
    if not future.done():
        future.set_result(value)


def start(call: Call, what: str, session: Coroutine[Any, Any, None]) -> None:
    """Run a dialogue as a task; its end (a hang-up included) is logged, never raised."""

    async def run() -> None:
        try:
            await session
        except CallerGone:
            logger.info("call %s: the caller hung up in %s", call.id, what)

    task = asyncio.get_running_loop().create_task(run(), name=f"{what} {call.id}")
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


_TASKS: set[asyncio.Task[None]] = set()
"""Dialogues running (the loop holds tasks weakly)."""


@dataclass(frozen=True, slots=True)
class LeaveMessage:
    number: str
    plan: DialPlan
    reason: str = ""
    """Why the call came: "busy" (the greeting says the person is on the phone) or "" """

    def route(self, call: Call, engine: CallEngine) -> None:
        vm = self.plan.voicemail
        box = vm.mailbox(self.number) if vm is not None else None
        if vm is None or box is None:
            logger.error("call %s: extension %s has no mailbox", call.id, self.number)
            if call.box_answered:
                engine.hangup(call, f"no mailbox {self.number}")
            else:
                engine.reject(call, 480, f"Temporarily Unavailable (no mailbox {self.number})")
            return
        engine.answer(
            call,
            lambda answered: start(answered, f"voicemail {self.number}",
                                   _leave(Dialogue(answered, vm), box, self.reason, engine)),
        )  # fmt: skip


def greeting(dialogue: Dialogue, box: Mailbox, reason: str) -> list[Path]:
    """The mailbox's own greeting and the beep, or the pack's naming the extension."""
    vm = dialogue.vm
    if box.greeting == "custom" and box.greeting_file:
        own = vm.path(box.greeting_file)
        if own.is_file():
            return [own, *dialogue.pack("beep")]
        logger.error("mailbox %s: greeting file %s is missing", box.number, own)
    state = "vm-isonphone" if reason == "busy" else "vm-isunavail"
    digits = [f"digits/{d}" for d in box.number]
    return dialogue.pack("vm-theperson", *digits, state, *DEFAULT_GREETING_END)


async def _leave(dialogue: Dialogue, box: Mailbox, reason: str, engine: CallEngine) -> None:
    call, vm = dialogue.call, dialogue.vm
    await dialogue.play(greeting(dialogue, box, reason))
    loop = asyncio.get_running_loop()
    stopped: asyncio.Future[str] = loop.create_future()
    closed: asyncio.Future[RecordingResult] = loop.create_future()
    started_at = time.time()
    relative = vm.new_path(box.number, started_at)

    try:
        recording = MessageRecording(
            engine.media, dialogue.leg, vm.path(relative), max_seconds=box.max_seconds,
            silence_seconds=vm.silence_seconds, on_stopped=lambda why: settle(stopped, why),
            on_closed=lambda result: settle(closed, result),
        )  # fmt: skip
    except MediaError as exc:
        logger.error("call %s: voicemail for %s not recorded: %s", call.id, box.number, exc)
        engine.hangup(call, "voicemail not recorded")
        return
    caller, name = call.a.number, call.caller_name
    try:
        while True:  # any key but # is ignored
            keys: asyncio.Future[tuple[str, str]] = loop.create_future()
            collector = dialogue.leg.collect(
                functools.partial(_keyed, keys), max_digits=32,
                first_timeout=box.max_seconds + 60.0, inter_timeout=box.max_seconds + 60.0,
                terminator="#",
            )  # fmt: skip
            try:
                await dialogue._until(keys, stopped)
            finally:
                collector.cancel()
            if stopped.done() or keys.result()[1] == "terminator":
                break
    except CallerGone:
        pass  # what was recorded is kept: the leg's close stopped the recording
    finally:
        recording.stop("key" if not stopped.done() else stopped.result())
        # Delivered whatever happens to the call (a task of its own: a hang-up does not stop it).
        start(call, f"voicemail delivery {box.number}",
              _deliver(vm, box, relative, closed, started_at, caller, name))  # fmt: skip
    result = await asyncio.shield(closed)
    if dialogue.gone.done():
        return
    if result.seconds < 1.0:
        await dialogue.play(dialogue.pack("vm-tooshort", "vm-goodbye"))
    else:
        await dialogue.play(dialogue.pack("vm-msgsaved", "vm-goodbye"))
    engine.hangup(call, f"voicemail left for {box.number}")


def _keyed(keys: asyncio.Future[tuple[str, str]], digits: str, why: str) -> None:
    settle(keys, (digits, why))


async def _deliver(
    vm: Voicemail, box: Mailbox, relative: str, closed: asyncio.Future[RecordingResult],
    started_at: float, caller: str, name: str,
) -> None:  # fmt: skip
    result = await closed
    try:
        await vm.deliver(box.number, relative, seconds=result.seconds, started_at=started_at,
                         caller=caller, caller_name=name)  # fmt: skip
    except Exception:  # the file stays on disk; the log says what was not stored
        logger.exception("voicemail %s for %s not stored", relative, box.number)


def from_text(target: str, plan: DialPlan) -> LeaveMessage:
    return LeaveMessage(target, plan)


def go_on_failure(
    number: str, plan: DialPlan, engine: CallEngine
) -> Callable[[Call, int], bool] | None:
    """The extension's rule for busy and no answer: to its mailbox, when it has one that takes
    such calls (`on_busy`, `on_no_answer`); None when it has none."""
    vm = plan.voicemail
    box = vm.mailbox(number) if vm is not None else None
    if box is None or not (box.on_busy or box.on_no_answer):
        return None

    def failed(call: Call, status: int) -> bool:
        busy = status in (486, 600) or any(s in (486, 600) for s in call.statuses)
        unanswered = not busy and status in (408, 480, 487)
        if (busy and box.on_busy) or (unanswered and box.on_no_answer):
            logger.info("call %s: extension %s %s: to voicemail", call.id, number,
                        "busy" if busy else "did not answer")  # fmt: skip
            LeaveMessage(number, plan, "busy" if busy else "").route(call, engine)
            return True
        return False

    return failed
