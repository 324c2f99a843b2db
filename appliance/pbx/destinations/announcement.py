"""An announcement (`announcement:NAME`): the box answers, plays a prompt, then hangs up or
hands the call on (the office's "we are closed" message before voicemail)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.media.engine import MediaError
from appliance.media.sources import sequence
from appliance.store.menus import Announcement

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.dialplan import DialPlan
    from appliance.pbx.legs import Call

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Announce:
    item: Announcement
    plan: DialPlan

    def route(self, call: Call, engine: CallEngine) -> None:
        engine.answer(call, lambda answered: self._speak(answered, engine))

    def _speak(self, call: Call, engine: CallEngine) -> None:
        def spoken(ended: bool) -> None:
            if call.ended or not ended:
                return  # the caller hung up, or another destination took over the leg
            if self.item.then:
                engine.goto(call, self.item.then)
            else:
                engine.hangup(call, f"announcement {self.item.name} played")

        try:
            call.a.media.play(sequence(self.plan.prompts.paths([self.item.prompt])), spoken)
        except MediaError as exc:
            logger.error("call %s: announcement %s: %s", call.id, self.item.name, exc)
            spoken(True)


def from_text(target: str, plan: DialPlan) -> Announce:
    from appliance.pbx.destinations.ivr import _Missing

    item = plan.announcements.get(target)
    if item is None:
        return _Missing(f"announcement {target}")  # type: ignore[return-value]
    return Announce(item, plan)
