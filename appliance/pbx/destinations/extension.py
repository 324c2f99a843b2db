"""An extension: ring every phone registered as it, at once; the first to answer takes it."""

from __future__ import annotations

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
        contacts = engine.registrar.bindings(self.number)
        if not contacts:
            engine.reject(call, 480, f"Temporarily Unavailable ({self.number} is not registered)")
            return
        engine.ring(call, [engine.contact_target(call, self.number, reg) for reg in contacts])


def from_text(target: str, _plan: DialPlan) -> Extension:
    return Extension(target)
