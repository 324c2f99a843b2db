"""An outbound route: the call goes out through a trunk, the next trunk taking it when one is
down, full, or answers 408 or 5xx (failover); other failures are the caller's answer."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.legs import Call

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

    def route(self, call: Call, engine: CallEngine) -> None:
        left = list(self.trunks)
        call.direction = "outbound"
        call.sent = self.number

        def attempt() -> bool:
            while left:
                line = engine.trunks.get(left.pop(0))
                if line is None or not line.usable():
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
        if not attempt():
            engine.reject(call, 503, "Service Unavailable (no trunk available)")
