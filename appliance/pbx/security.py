"""The core's side of intrusion protection: the SIP guard's settings, its bans kept in the
store, and the control socket's `bans` and `ban_remove` commands (the CLI, the setup page and
the API list and lift bans through them, since the core holds the live state).

Bans are written from the store's writer thread (`store.db.Writer`), as CDRs are, so a ban
costs the event loop nothing; they are read back when the core starts.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from appliance.sip.guard import Guard, GuardConfig, networks
from appliance.store import bans, settings
from appliance.store.bans import Ban, canonical_address
from appliance.store.database import Database
from appliance.store.db import Writer

logger = logging.getLogger(__name__)


def guard_config(db: Database) -> GuardConfig:
    """The `security.*` settings."""
    return GuardConfig(
        failures=settings.get_int(db, "security.ban_failures"),
        window=float(settings.get_int(db, "security.ban_window")),
        ban_time=float(settings.get_int(db, "security.ban_time")),
        rate=float(settings.get_int(db, "security.rate_limit")),
        allow=networks(settings.get_str(db, "security.allow")),
    )


class BanKeeper:
    """Keeps the guard's bans in the store and serves them on the control socket."""

    def __init__(self, guard: Guard, db: Database, writer: Writer) -> None:
        self.guard = guard
        self.writer = writer
        guard.on_ban = self._save
        guard.on_lift = self._forget  # (a stored ban of an address allowed since is lifted)
        guard.restore(bans.load(db, time.time()))

    def _save(self, ban: Ban) -> None:
        self.writer.submit(f"ban of {ban.address}", lambda db: bans.save(db, ban))

    def _forget(self, address: str) -> None:
        def forget(db: Database) -> None:
            bans.remove(db, address)

        self.writer.submit(f"lifting the ban of {address}", forget)

    def sweep(self) -> None:
        """Forget what the guard no longer needs, here and in the store."""
        self.guard.sweep()
        now = time.time()

        def prune(db: Database) -> None:
            bans.prune(db, now)

        self.writer.submit("ban pruning", prune)

    # -- control socket --------------------------------------------------------------------

    def list(self, _request: dict[str, Any]) -> dict[str, Any]:
        now = time.time()
        return {"bans": [ban.describe(now) for ban in self.guard.active()]}

    def remove(self, request: dict[str, Any]) -> dict[str, Any]:
        """Lift one ban (`address`); `removed` says whether one was in force. A bad address
        is a ValueError, which the control socket answers as an error."""
        try:
            address = canonical_address(str(request.get("address", "")))
        except ValueError:
            raise ValueError(f"not an IP address: {request.get('address')!r}") from None
        return {"address": address, "removed": self.guard.lift(address)}
