"""The whole configuration as one JSON document: downloaded as a backup, restored whole.

Configuration is settings, extensions (digest HA1 values, never clear passwords), setup-page
users (scrypt hashes) and API tokens (SHA-256 hashes). Runtime data (registrations, CDRs) is not
part of it. A restore is checked completely before anything is written, then applied in one
transaction: a bad file changes nothing."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from appliance.store import extensions, settings, users
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.migrations import current_version

FORMAT = "pbx-appliance-backup"
VERSION = 1
LOCAL_ONLY = frozenset({"web.secret_key", "sip.nonce_secret"})
"""Secrets of this box's own sessions and nonces: never exported, kept on restore."""
INTERNAL = frozenset({"sip.realm", "web.setup_done"})
"""Internal settings that are configuration (the realm the HA1 values were made in)."""
HEX_RE = re.compile(r"[0-9a-f]{32,128}\Z")


class BackupError(ValueError):
    """The file is not a backup this box can restore. `str()` says what is wrong."""


def export(db: Database) -> dict[str, Any]:
    rows = db.execute("SELECT key, value FROM settings ORDER BY key").fetchall()
    return {
        "format": FORMAT,
        "version": VERSION,
        "schema": current_version(db),
        "created_at": time.time(),
        "settings": {k: v for k, v in rows if k not in LOCAL_ONLY},
        "extensions": [
            dict(zip(("number", "name", "realm", "ha1_md5", "ha1_sha256"), row, strict=True))
            for row in db.execute(
                "SELECT number, name, realm, ha1_md5, ha1_sha256 FROM extensions ORDER BY number"
            ).fetchall()
        ],
        "users": [
            dict(zip(("username", "role", "password_hash"), row, strict=True))
            for row in db.execute(
                "SELECT username, role, password_hash FROM users ORDER BY username"
            ).fetchall()
        ],
        "api_tokens": [
            dict(zip(("name", "role", "token_hash", "created_at"), row, strict=True))
            for row in db.execute(
                "SELECT name, role, token_hash, created_at FROM api_tokens ORDER BY id"
            ).fetchall()
        ],
    }


def dumps(db: Database) -> bytes:
    return json.dumps(export(db), indent=1, sort_keys=True).encode()


def _list(doc: dict[str, Any], key: str, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    items = doc.get(key)
    if not isinstance(items, list):
        raise BackupError(f"'{key}' must be a list")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
            raise BackupError(f"{key}[{i}] must have text fields {', '.join(fields)}")
    return items


def check(data: bytes) -> dict[str, Any]:
    """Parse and validate a backup file completely; raises BackupError saying what is wrong."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(f"not a backup file (not JSON: {exc})") from None
    except RecursionError:
        raise BackupError("not a backup file (nested too deeply)") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError("not a backup file of this PBX")
    if doc.get("version") != VERSION:
        raise BackupError(f"backup format version {doc.get('version')!r} is not supported")
    conf = doc.get("settings")
    if not isinstance(conf, dict) or not all(isinstance(v, str) for v in conf.values()):
        raise BackupError("'settings' must map names to text values")
    for key, value in conf.items():
        if key in settings.SETTINGS:
            try:
                settings.SETTINGS[key].validate(value)
            except settings.SettingError as exc:
                raise BackupError(f"setting {exc}") from None
        elif key not in INTERNAL:
            raise BackupError(f"unknown setting {key!r}")
    if not conf.get("sip.realm"):
        raise BackupError("the backup has no SIP realm: its extensions' credentials need it")
    for ext in _list(doc, "extensions", ("number", "name", "realm", "ha1_md5", "ha1_sha256")):
        try:
            extensions.check_number(ext["number"])
            extensions.check_name(ext["name"])
        except extensions.ExtensionError as exc:
            raise BackupError(str(exc)) from None
        if not (HEX_RE.match(ext["ha1_md5"]) and HEX_RE.match(ext["ha1_sha256"])):
            raise BackupError(f"extension {ext['number']}: credentials are damaged")
    people = _list(doc, "users", ("username", "role", "password_hash"))
    for user in people:
        try:
            users.check_username(user["username"])
            users.check_role(user["role"])
        except users.UserError as exc:
            raise BackupError(str(exc)) from None
        try:
            users.parse_hash(user["password_hash"])
        except ValueError:
            raise BackupError(f"user {user['username']}: password hash is damaged") from None
    if not any(u["role"] == "admin" for u in people):
        raise BackupError("the backup has no admin user: restoring it would lock everyone out")
    for token in _list(doc, "api_tokens", ("name", "role", "token_hash")):
        if token["role"] not in users.ROLES or not HEX_RE.match(token["token_hash"]):
            raise BackupError(f"API token {token['name']!r} is damaged")
        created = token.get("created_at", 0)
        if (
            isinstance(created, bool)
            or not isinstance(created, int | float)
            or not 0 <= created < 1e11  # NaN fails this too
        ):
            raise BackupError(f"API token {token['name']!r} has a damaged date")
    for key, unique, what in (("extensions", "number", "extension"),
                              ("users", "username", "user"),
                              ("api_tokens", "token_hash", "API token")):  # fmt: skip
        seen: set[str] = set()
        for item in doc[key]:
            if item[unique] in seen:
                shown = item["name"] if key == "api_tokens" else item[unique]
                raise BackupError(f"the backup lists {what} {shown} twice")
            seen.add(item[unique])
    return doc


def restore(db: Database, data: bytes) -> dict[str, int]:
    """Replace the configuration with the backup's, all at once; return what was restored."""
    doc = check(data)
    now = time.time()
    with transaction(db) as conn:
        conn.execute(
            f"DELETE FROM settings WHERE key NOT IN ({','.join('?' * len(LOCAL_ONLY))})",
            sorted(LOCAL_ONLY),
        )
        conn.executemany(
            "INSERT INTO settings (key, value) VALUES (?, ?)",
            [(k, v) for k, v in doc["settings"].items() if k not in LOCAL_ONLY],
        )
        conn.execute("DELETE FROM extensions")
        conn.executemany(
            "INSERT INTO extensions (number, name, realm, ha1_md5, ha1_sha256, created_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(e["number"], e["name"], e["realm"], e["ha1_md5"], e["ha1_sha256"], now, now)
             for e in doc["extensions"]],
        )  # fmt: skip
        conn.execute("DELETE FROM registrations WHERE aor NOT IN (SELECT number FROM extensions)")
        # Sessions made before the restore end: every restored user starts a new epoch.
        (epoch,) = conn.execute("SELECT COALESCE(MAX(session_epoch), 0) + 1 FROM users").fetchone()
        conn.execute("DELETE FROM users")
        conn.executemany(
            "INSERT INTO users (username, role, password_hash, session_epoch, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(u["username"], u["role"], u["password_hash"], epoch, now) for u in doc["users"]],
        )
        conn.execute("DELETE FROM api_tokens")
        conn.executemany(
            "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
            [(t["name"], t["role"], t["token_hash"], float(t.get("created_at") or now))
             for t in doc["api_tokens"]],
        )  # fmt: skip
    return {key: len(doc[key]) for key in ("extensions", "users", "api_tokens")}
