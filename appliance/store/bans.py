"""Sources banned for failed authentications (`appliance.sip.guard` decides; this keeps them).

The core owns the live bans and writes each change here from its writer thread, so that a ban
survives a restart; the CLI and the setup page read this table when the core is down, and
remove a ban here then (the core reads the table when it starts). A row whose ban has ended
is kept for `REPEAT_MEMORY` so that the address's next ban lasts twice as long.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from appliance.store.database import Database

REPEAT_MEMORY = 7 * 86400.0
"""How long an ended ban is remembered: a source banned again within it is banned for twice as
long as the last time."""


@dataclass(frozen=True, slots=True)
class Ban:
    address: str
    reason: str
    """What the last failure was, as the log says it ("REGISTER 101: wrong credentials")."""
    banned_at: float
    until: float
    count: int = 1
    """Bans of this address so far, this one included (each lasts twice the one before)."""

    def active(self, now: float) -> bool:
        return self.until > now

    def describe(self, now: float) -> dict[str, object]:
        """As the control socket, the API and the CLI show it."""
        return {
            "address": self.address,
            "reason": self.reason,
            "banned_at": self.banned_at,
            "until": self.until,
            "remaining": max(int(self.until - now + 0.5), 0),
            "count": self.count,
        }


def canonical_address(text: str) -> str:
    """An address as the transports report it (`::1`, not `0:0:0:0:0:0:0:1`); ValueError for
    anything that is not one."""
    return str(ipaddress.ip_address(text.strip()))


_COLUMNS = "address, reason, banned_at, until, count"


def load(db: Database, now: float) -> list[Ban]:
    """Every ban still in force or still remembered (ended less than `REPEAT_MEMORY` ago)."""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM bans WHERE until > ? ORDER BY banned_at", [now - REPEAT_MEMORY]
    ).fetchall()
    return [Ban(str(a), str(r), float(b), float(u), int(c)) for a, r, b, u, c in rows]


def active(db: Database, now: float) -> list[Ban]:
    """The bans in force now, oldest first."""
    return [ban for ban in load(db, now) if ban.active(now)]


def save(db: Database, ban: Ban) -> None:
    db.execute(
        f"INSERT INTO bans ({_COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (address) DO UPDATE"
        " SET reason = excluded.reason, banned_at = excluded.banned_at,"
        " until = excluded.until, count = excluded.count",
        [ban.address, ban.reason, ban.banned_at, ban.until, ban.count],
    )


def remove(db: Database, address: str) -> bool:
    """Forget an address's ban and its history; False when there was no row."""
    return db.execute("DELETE FROM bans WHERE address = ?", [address]).rowcount > 0


def prune(db: Database, now: float) -> int:
    """Delete the rows no longer remembered; return how many."""
    return db.execute("DELETE FROM bans WHERE until <= ?", [now - REPEAT_MEMORY]).rowcount
