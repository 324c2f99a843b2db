"""An extension: ring every phone registered as it, at once; the first to answer takes it.

When the extension's mailbox takes busy or unanswered calls (`on_busy`, `on_no_answer`), a
call it does not take (busy, no answer within the ring time, no phone registered) goes on to
voicemail (`destinations/voicemail.py`) instead of failing."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.dialplan import DialPlan
    from appliance.pbx.legs import Call


@dataclass(frozen=True, slots=True)
class Extension:
    number: str

    def route(self, call: Call, engine: CallEngine) -> None:
        from appliance.pbx.destinations.voicemail import go_on_failure

        contacts = engine.registrar.bindings(self.number)
        failed = go_on_failure(self.number, engine.dialplan, engine)
        if not contacts:
            if failed is not None and failed(call, 480):
                return
            engine.reject(call, 480, f"Temporarily Unavailable ({self.number} is not registered)")
            return
        if failed is not None:
            call.on_targets_failed = failed
            if call.ring_timer is not None:  # no answer in the ring time: voicemail's too
                call.ring_timer.cancel()
            call.ring_timer = asyncio.get_running_loop().call_later(
                engine.config.ring_timeout, _unanswered, call, engine
            )
        engine.ring(call, [engine.contact_target(call, self.number, reg) for reg in contacts])


def _unanswered(call: Call, engine: CallEngine) -> None:
    go_on = call.on_targets_failed
    if call.state == "ringing" and call.b is None and go_on is not None and go_on(call, 480):
        return
    engine.ring_timeout(call)


def from_text(target: str, _plan: DialPlan) -> Extension:
    return Extension(target)
