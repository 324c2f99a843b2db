"""Destinations: what a dialled number resolves to in the dial plan.

Each kind is one small module with one interface, `Destination.route(call, engine)`: it takes
a call that is ringing (the caller has had 100 Trying) and asks the B2BUA for what it needs —
`engine.ring(call, targets)` to ring places, `engine.reject(call, status, reason)` to refuse,
`call.on_targets_failed` to go on when every target failed. A feature adds a module here and
an entry in `KINDS`; it does not grow the B2BUA.

Stored destinations are text, `KIND:TARGET` (`extension:101`, `hangup:busy`), validated by
`appliance.store.destinations` when they are configured.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.dialplan import DialPlan
    from appliance.pbx.legs import Call


class Destination(Protocol):
    def route(self, call: Call, engine: CallEngine) -> None:
        """Take the call: ring something, refuse it, or hand it on."""


Factory = Callable[[str, "DialPlan"], Destination]
"""Makes a destination from the TARGET part of its stored text."""


def kinds() -> dict[str, Factory]:
    """The destination kinds, by the KIND part of their stored text."""
    from appliance.pbx.destinations import (
        announcement,
        extension,
        hangup,
        ivr,
        voicemail,
        voicemail_main,
    )

    return {
        "extension": extension.from_text,
        "hangup": hangup.from_text,
        "ivr": ivr.from_text,
        "announcement": announcement.from_text,
        "voicemail": voicemail.from_text,
        "voicemail-main": voicemail_main.from_text,
    }
