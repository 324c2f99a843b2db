"""An outbound route: the call goes out through a trunk, the next trunk taking it when one is
down, full, or answers 408 or 5xx (failover); other failures are the caller's answer. The
toll-fraud limits (`appliance.pbx.tollfraud`) are checked first: a call beyond them is refused
with 403 and its reason, and no trunk sees it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.legs import Call
    from appliance.pbx.trunks import TrunkLine

logger = logging.getLogger(__name__)


def fails_over(status: int) -> bool:
    """Whether a trunk's final answer sends the call to the next trunk."""
    return status == 408 or 500 <= status < 600


@dataclass(frozen=True, slots=True)
class Outbound:
    number: str
    """The number as it is sent to the provider."""
    trunks: tuple[str, ...]
    """In failover order."""
    caller_id: str = ""
    """The office's number presented; '' for the trunk's own."""
    number_class: str = field(default="", compare=False)
    """Its class (`numbering.classify`, derived from the number, so not compared): the
    limits need it, and "emergency" calls are never limited."""

    def route(self, call: Call, engine: CallEngine) -> None:
        left = list(self.trunks)
        call.direction = "outbound"
        call.sent = self.number
        guard = engine.dialplan.tollfraud
        refusal = guard.admit(call, self.number, self.number_class)
        if refusal is not None:
            engine.reject(call, 403, refusal)
            return
        emergency = self.number_class == "emergency"
        full: list[TrunkLine] = []

        def attempt() -> bool:
            while left:
                line = engine.trunks.get(left.pop(0))
                if line is None:
                    continue
                if not line.usable() and not (emergency and line.usable(ignore_limit=True)):
                    if line.usable(ignore_limit=True):
                        full.append(line)
                    continue
                call.trunk = line.name
                engine.ring(call, [line.target(call, self.number, self.caller_id, engine)])
                return True
            return False

        def failed(_call: Call, status: int) -> bool:
            if not fails_over(status):
                return False
            logger.info("call %s: trunk %s answered %d; trying the next", call.id, call.trunk,
                        status)  # fmt: skip
            return attempt()

        call.on_targets_failed = failed
        if attempt():
            return
        if full:
            engine.reject(call, 403, guard.trunk_full(call, full))
        else:
            engine.reject(call, 503, "Service Unavailable (no trunk available)")
