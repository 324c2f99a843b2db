"""An IVR menu (`ivr:NAME`): the box answers, plays the menu's greeting, and sends the call
where the key the caller presses leads (`appliance.store.menus` says what a menu is).

Keys arrive however the phone sends them (RFC 4733, SIP INFO, in-band tones): the media leg's
digit collector makes them one kind of event. A key pressed during the greeting stops it
(barge-in). With direct dialling, a caller may key an extension's number instead of a choice.
Pressing nothing, or a key with no choice, plays the menu again, `repeats` times in all, then
the call goes to the menu's `on_timeout` or `on_invalid` destination.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.media.engine import MediaError
from appliance.media.sources import sequence
from appliance.store.menus import Menu

if TYPE_CHECKING:
    from appliance.media.collector import Collector
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.dialplan import DialPlan
    from appliance.pbx.legs import Call

logger = logging.getLogger(__name__)

DURING_GREETING = 3600.0
"""The first-key timeout while the greeting plays: the menu's own timeout starts after it."""
DIRECT_DIAL_GAP = 2.0
"""Seconds between the keys of an extension's number dialled from a menu."""


@dataclass(frozen=True, slots=True)
class IvrMenu:
    menu: Menu
    plan: DialPlan

    def route(self, call: Call, engine: CallEngine) -> None:
        engine.answer(call, lambda answered: _MenuSession(self, answered, engine).start())


class _MenuSession:
    """One caller in one menu."""

    def __init__(self, ivr: IvrMenu, call: Call, engine: CallEngine) -> None:
        self.menu = ivr.menu
        self.plan = ivr.plan
        self.call = call
        self.engine = engine
        self.rounds = 0
        self.collector: Collector | None = None
        self.done = False
        call.on_caller_gone.append(lambda _call: self._stop())

    def start(self) -> None:
        self._round([self.menu.greeting])

    def _round(self, refs: list[str]) -> None:
        """Play `refs` and wait for a key."""
        if self.done:
            return
        self.rounds += 1
        leg = self.call.a.media
        paths = self.plan.prompts.paths(refs)
        try:
            self.collector = leg.collect(
                self._keyed, max_digits=1, first_timeout=DURING_GREETING,
                inter_timeout=DIRECT_DIAL_GAP, terminator=None,
            )  # fmt: skip
            leg.play(sequence(paths), on_done=self._greeted)
        except MediaError as exc:
            logger.error("call %s: menu %s: %s", self.call.id, self.menu.name, exc)
            self._leave(self.menu.on_invalid)

    def _greeted(self, ended: bool) -> None:
        """The greeting ended without a key (a key stops it: `ended` is then False): the
        menu's timeout starts now."""
        collector = self.collector
        if not ended or self.done or collector is None or collector.done or collector.digits:
            return
        collector.cancel()
        self.collector = self.call.a.media.collect(
            self._keyed, max_digits=1, first_timeout=float(self.menu.timeout),
            inter_timeout=DIRECT_DIAL_GAP, terminator=None,
        )  # fmt: skip

    def _keyed(self, digits: str, reason: str) -> None:
        if self.done:
            return
        if not digits:  # nothing pressed
            if self.rounds >= self.menu.repeats:
                self._leave(self.menu.on_timeout)
            else:
                self._round([self.menu.greeting])
            return
        if self.menu.direct_dial and len(digits) == 1 and self._extension_prefix(digits):
            # Maybe the first key of an extension's number: the rest follows within the gap.
            rest = self.plan.directory.longest_extension() - 1
            choice = self.menu.choice(digits)
            self.collector = self.call.a.media.collect(
                lambda more, why: self._dialled(digits + more, choice),
                max_digits=max(rest, 1), first_timeout=DIRECT_DIAL_GAP,
                inter_timeout=DIRECT_DIAL_GAP, terminator="#",
            )  # fmt: skip
            return
        self._choose(digits)

    def _dialled(self, number: str, choice: str | None) -> None:
        if self.done:
            return
        if self.plan.directory.extension(number) is not None:
            self._leave(f"extension:{number}")
        elif len(number) == 1 and choice is not None:
            self._leave(choice)
        else:
            self._invalid()

    def _extension_prefix(self, digits: str) -> bool:
        return self.plan.directory.has_extension_prefix(digits)

    def _choose(self, key: str) -> None:
        target = self.menu.choice(key)
        if target is None:
            self._invalid()
        else:
            self._leave(target)

    def _invalid(self) -> None:
        if self.rounds >= self.menu.repeats:
            self._leave(self.menu.on_invalid)
        else:
            self._round([self.menu.invalid_prompt, self.menu.greeting])

    def _leave(self, destination: str) -> None:
        """Hand the call on: the menu is done with it."""
        if self.done:
            return
        self._stop()
        logger.info("call %s: menu %s -> %s", self.call.id, self.menu.name, destination)
        self.engine.goto(self.call, destination)

    def _stop(self) -> None:
        self.done = True
        if self.collector is not None:
            self.collector.cancel()
            self.collector = None
        if not self.call.ended:
            self.call.a.media.stop_playback()


def from_text(target: str, plan: DialPlan) -> IvrMenu | _Missing:
    menu = plan.menus.get(target)
    if menu is None:
        return _Missing(f"menu {target}")
    return IvrMenu(menu, plan)


@dataclass(frozen=True, slots=True)
class _Missing:
    """A destination that names a menu or announcement no longer there (removed meanwhile)."""

    what: str

    def route(self, call: Call, engine: CallEngine) -> None:
        logger.error("call %s: %s does not exist", call.id, self.what)
        if call.box_answered:
            engine.hangup(call, f"{self.what} does not exist")
        else:
            engine.reject(call, 404, f"Not Found ({self.what} does not exist)")
