"""Media encryption per extension and per trunk: whether the line's calls use SRTP (SDES).

`none`: plain RTP only (an SRTP offer is refused with 488); `optional` (the default): an SRTP
offer is accepted and answered with SRTP, and the box offers plain RTP; `required`: plain
RTP is refused with 488 and the box offers only RTP/SAVP. SDES keys travel in the SDP, so the
box takes and gives them only on SIP over TLS (see docs/architecture.md, "SRTP"). A column of
`extensions` and of `trunks` (migration 8), kept apart from their other fields here.
"""

from __future__ import annotations

import time

from appliance.i18n import T
from appliance.store.database import Database
from appliance.store.extensions import ExtensionError
from appliance.store.texts import reason
from appliance.store.trunks import TrunkError

POLICIES = ("none", "optional", "required")
DEFAULT = "optional"
FIELD = "media_encryption"


def check(value: str) -> str:
    """One of POLICIES (any case, spaces trimmed); raises ValueError naming them."""
    policy = value.strip().lower()
    if policy not in POLICIES:
        raise ValueError(
            T(
                "media encryption must be one of {choices}, not {value!r}",
                choices=", ".join(POLICIES),
                value=value,
            )
        )
    return policy


def set_for_extension(db: Database, number: str, value: str) -> str:
    try:
        policy = check(value)
    except ValueError as exc:
        raise ExtensionError(reason(exc), FIELD) from None
    cur = db.execute(
        "UPDATE extensions SET media_encryption = ?, updated_at = ? WHERE number = ?",
        [policy, time.time(), number],
    )
    if cur.rowcount == 0:
        raise ExtensionError(T("no extension {number}", number=number))
    return policy


def set_for_trunk(db: Database, name: str, value: str) -> str:
    try:
        policy = check(value)
    except ValueError as exc:
        raise TrunkError(reason(exc), FIELD) from None
    cur = db.execute(
        "UPDATE trunks SET media_encryption = ?, updated_at = ? WHERE name = ?",
        [policy, time.time(), name],
    )
    if cur.rowcount == 0:
        raise TrunkError(T("no trunk {name}", name=name), "name")
    return policy


def of_extensions(db: Database) -> dict[str, str]:
    """Every extension's policy, by number."""
    return dict(db.execute("SELECT number, media_encryption FROM extensions").fetchall())


def of_trunks(db: Database) -> dict[str, str]:
    """Every trunk's policy, by name."""
    return dict(db.execute("SELECT name, media_encryption FROM trunks").fetchall())


def of_extension(db: Database, number: str) -> str | None:
    row = db.execute(
        "SELECT media_encryption FROM extensions WHERE number = ?", [number]
    ).fetchone()
    return None if row is None else str(row[0])


def of_trunk(db: Database, name: str) -> str | None:
    row = db.execute("SELECT media_encryption FROM trunks WHERE name = ?", [name]).fetchone()
    return None if row is None else str(row[0])
