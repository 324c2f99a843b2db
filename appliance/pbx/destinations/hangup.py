"""Hang up with a cause: the destination of numbers nobody answers (and of a denied call)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.dialplan import DialPlan
    from appliance.pbx.legs import Call

CAUSES = {
    "busy": (486, "Busy Here"),
    "not-found": (404, "Not Found"),
    "unavailable": (480, "Temporarily Unavailable"),
    "rejected": (603, "Decline"),
    "congestion": (503, "Service Unavailable"),
}
"""The causes a technician may choose (`hangup:CAUSE`), as SIP status and reason."""


@dataclass(frozen=True, slots=True)
class Hangup:
    status: int
    reason: str | None = None

    def route(self, call: Call, engine: CallEngine) -> None:
        engine.reject(call, self.status, self.reason, "busy" if self.status == 486 else "failed")


def from_text(target: str, _plan: DialPlan) -> Hangup:
    status, reason = CAUSES.get(target, CAUSES["not-found"])
    return Hangup(status, reason)
