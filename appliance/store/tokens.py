"""API tokens for the REST API: shown once when created, stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from appliance.i18n import T
from appliance.store.database import Database
from appliance.store.users import UserError, check_role

PREFIX = "pbx_"


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    name: str
    role: str
    created_at: float
    last_used_at: float | None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create(db: Database, name: str, role: str) -> tuple[Token, str]:
    """Create a token; return it and its clear text (the only time that is known)."""
    name = name.strip()
    if not 1 <= len(name) <= 64 or not name.isprintable():
        raise UserError(T("token name must be 1 to 64 printable characters"))
    check_role(role)
    clear = PREFIX + secrets.token_urlsafe(32)
    now = time.time()
    cur = db.execute(
        "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
        [name, role, _digest(clear), now],
    )
    assert cur.lastrowid is not None
    return Token(cur.lastrowid, name, role, now, None), clear


def list_all(db: Database) -> list[Token]:
    rows = db.execute("SELECT id, name, role, created_at, last_used_at FROM api_tokens ORDER BY id")
    return [Token(*row) for row in rows.fetchall()]


def revoke(db: Database, token_id: int) -> None:
    if db.execute("DELETE FROM api_tokens WHERE id = ?", [token_id]).rowcount == 0:
        raise UserError(T("no token {id}", id=token_id))


def lookup(db: Database, clear: str) -> Token | None:
    """The token with this clear text, its use recorded; None when there is none."""
    if not clear.startswith(PREFIX):
        return None
    row = db.execute(
        "SELECT id, name, role, created_at, last_used_at FROM api_tokens WHERE token_hash = ?",
        [_digest(clear)],
    ).fetchone()
    if row is None:
        return None
    db.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", [time.time(), row[0]])
    return Token(*row)
