"""The whole configuration as one JSON document: downloaded as a backup, restored whole.

Configuration is settings, extensions (digest HA1 values, never clear passwords; their calling
permissions and caller ID), setup-page users (scrypt hashes), API tokens (SHA-256 hashes), SIP
trunks, the office's numbers (DIDs) and outbound routes. Runtime data (registrations, CDRs) is
not part of it. A restore is checked completely before anything is written, then applied in one
transaction: a bad file changes nothing.

**A backup holds the trunks' passwords in clear.** The box must answer its providers' digest
challenges, so it keeps them (unlike the phones' passwords, of which only HA1 digests are
needed), and a restore that lost them would leave the office without its lines. Keep backup
files as safe as the provider accounts themselves.

Backups made before trunks existed (without the keys `trunks`, `dids`, `routes` and the
extensions' `permissions`, `caller_id`) restore with none and the defaults."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from appliance import numbering
from appliance.i18n import LANGUAGES, T
from appliance.store import dids, encryption, extensions, routes, settings, trunks, users
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.migrations import MIGRATIONS, current_version
from appliance.store.texts import reason

FORMAT = "pbx-appliance-backup"
VERSION = 1
LOCAL_ONLY = frozenset({"web.secret_key", "sip.nonce_secret"})
"""Secrets of this box's own sessions and nonces: never exported, kept on restore."""
INTERNAL = frozenset({"sip.realm", "web.setup_done"})
"""Internal settings that are configuration (the realm the HA1 values were made in)."""
HEX_RE = re.compile(r"[0-9a-f]{32,128}\Z")
INSTANCE_RE = re.compile(r"[0-9a-f]{12}\Z")
TRUNK_FIELDS = ("name", "server", *sorted(trunks.DEFAULTS), "instance")
"""A trunk in a backup: its settable fields (password included), its name and instance."""


class BackupError(ValueError):
    """The file is not a backup this box can restore. `str()` says what is wrong."""


EXTENSION_FIELDS = ("number", "name", "realm", "ha1_md5", "ha1_sha256", "permissions",
                    "caller_id", "max_outbound_calls")  # fmt: skip


def _trunk_doc(trunk: trunks.Trunk) -> dict[str, Any]:
    return {key: getattr(trunk, key) for key in TRUNK_FIELDS}


def export(db: Database) -> dict[str, Any]:
    rows = db.execute("SELECT key, value FROM settings ORDER BY key").fetchall()
    return {
        "format": FORMAT,
        "version": VERSION,
        "schema": current_version(db),
        "created_at": time.time(),
        "settings": {k: v for k, v in rows if k not in LOCAL_ONLY},
        "extensions": [
            dict(zip(EXTENSION_FIELDS, row, strict=True))
            for row in db.execute(
                f"SELECT {', '.join(EXTENSION_FIELDS)} FROM extensions ORDER BY number"
            ).fetchall()
        ],
        "trunks": [_trunk_doc(t) for t in trunks.list_all(db)],
        "media_encryption": {
            "extensions": encryption.of_extensions(db),
            "trunks": encryption.of_trunks(db),
        },
        "dids": [
            {"number": d.number, "label": d.label, "trunk": d.trunk, "destination": d.destination}
            for d in dids.list_all(db)
        ],
        "routes": [
            {
                "name": r.name,
                "patterns": list(r.patterns),
                "prepend": r.prepend,
                "trunks": list(r.trunks),
                "caller_id": r.caller_id,
            }
            for r in routes.list_all(db)
        ],
        "users": [
            dict(zip(("username", "role", "password_hash", "language"), row, strict=True))
            for row in db.execute(
                "SELECT username, role, password_hash, language FROM users ORDER BY username"
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
        raise BackupError(T("'{key}' must be a list", key=key))
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
            raise BackupError(
                T(
                    "{key}[{index}] must have text fields {fields}",
                    key=key,
                    index=i,
                    fields=", ".join(fields),
                )
            )
    return items


def check(data: bytes) -> dict[str, Any]:
    """Parse and validate a backup file completely; raises BackupError saying what is wrong."""
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackupError(T("not a backup file (not JSON: {error})", error=str(exc))) from None
    except RecursionError:
        raise BackupError(T("not a backup file (nested too deeply)")) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise BackupError(T("not a backup file of this PBX"))
    if doc.get("version") != VERSION:
        raise BackupError(
            T("backup format version {version!r} is not supported", version=doc.get("version"))
        )
    conf = doc.get("settings")
    if not isinstance(conf, dict) or not all(isinstance(v, str) for v in conf.values()):
        raise BackupError(T("'settings' must map names to text values"))
    for key, value in conf.items():
        if key in settings.SETTINGS:
            try:
                settings.SETTINGS[key].validate(value)
            except settings.SettingError as exc:
                raise BackupError(T("setting {reason}", reason=reason(exc))) from None
        elif key not in INTERNAL:
            raise BackupError(T("unknown setting {key!r}", key=key))
    if not conf.get("sip.realm"):
        raise BackupError(T("the backup has no SIP realm: its extensions' credentials need it"))
    for ext in _list(doc, "extensions", ("number", "name", "realm", "ha1_md5", "ha1_sha256")):
        ext.setdefault("permissions", ",".join(numbering.DEFAULT_PERMISSIONS))
        ext.setdefault("caller_id", "")
        ext.setdefault("max_outbound_calls", None)  # (backups before toll-fraud limits)
        if not isinstance(ext["permissions"], str) or not isinstance(ext["caller_id"], str):
            raise BackupError(
                T(
                    "extension {number}: permissions and caller ID must be text",
                    number=ext["number"],
                )
            )
        try:
            extensions.check_number(ext["number"])
            extensions.check_name(ext["name"])
        except extensions.ExtensionError as exc:
            raise BackupError(reason(exc)) from None
        try:
            allowed = extensions.check_permissions(ext["permissions"].split(","))
            limit = ext["max_outbound_calls"]
            if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool)):
                limit = "-"  # a backup holds a number or null: text is refused, not read
            extensions.check_max_outbound_calls(limit)
        except extensions.ExtensionError as exc:
            raise BackupError(
                T("extension {number}: {reason}", number=ext["number"], reason=reason(exc))
            ) from None
        ext["permissions"] = ",".join(allowed)
        if not (HEX_RE.match(ext["ha1_md5"]) and HEX_RE.match(ext["ha1_sha256"])):
            raise BackupError(
                T("extension {number}: credentials are damaged", number=ext["number"])
            )
    people = _list(doc, "users", ("username", "role", "password_hash"))
    for user in people:
        try:
            users.check_username(user["username"])
            users.check_role(user["role"])
        except users.UserError as exc:
            raise BackupError(reason(exc)) from None
        try:
            users.parse_hash(user["password_hash"])
        except ValueError:
            raise BackupError(
                T("user {username}: password hash is damaged", username=user["username"])
            ) from None
        if user.setdefault("language", "") not in ("", *LANGUAGES):  # (older backups: none)
            raise BackupError(
                T(
                    "user {username}: unknown language {language!r}",
                    username=user["username"],
                    language=user["language"],
                )
            )
    if not any(u["role"] == "admin" for u in people):
        raise BackupError(T("the backup has no admin user: restoring it would lock everyone out"))
    for token in _list(doc, "api_tokens", ("name", "role", "token_hash")):
        if token["role"] not in users.ROLES or not HEX_RE.match(token["token_hash"]):
            raise BackupError(T("API token {name!r} is damaged", name=token["name"]))
        created = token.get("created_at", 0)
        if (
            isinstance(created, bool)
            or not isinstance(created, int | float)
            or not 0 <= created < 1e11  # NaN fails this too
        ):
            raise BackupError(T("API token {name!r} has a damaged date", name=token["name"]))
    for key in ("trunks", "dids", "routes"):
        doc.setdefault(key, [])  # a backup made before trunks existed
        if not isinstance(doc[key], list) or not all(isinstance(i, dict) for i in doc[key]):
            raise BackupError(T("'{key}' must be a list of objects", key=key))
    twice: dict[str, Callable[[str], str]] = {
        "extensions": lambda shown: T("the backup lists extension {number} twice", number=shown),
        "users": lambda shown: T("the backup lists user {username} twice", username=shown),
        "api_tokens": lambda shown: T("the backup lists API token {name} twice", name=shown),
    }
    for key, unique in (("extensions", "number"), ("users", "username"),
                        ("api_tokens", "token_hash")):  # fmt: skip
        seen: set[str] = set()
        for item in doc[key]:
            if item[unique] in seen:
                shown = item["name"] if key == "api_tokens" else item[unique]
                raise BackupError(twice[key](shown))
            seen.add(item[unique])
    _check_numbering(doc)
    return doc


def _check_numbering(doc: dict[str, Any]) -> None:
    """Check the trunks, DIDs, routes and extensions' caller IDs exactly as adding them would,
    in a scratch database holding the backup's settings and extensions; make them canonical
    in `doc` (a DID's number normalised, as restore writes it)."""
    scratch = Database(sqlite3.connect(":memory:", isolation_level=None))
    try:
        for _, _, step in MIGRATIONS:  # the schema, quietly: nothing is migrated here
            step(scratch)
        scratch.execute("DELETE FROM settings")
        scratch.conn.executemany(
            "INSERT INTO settings (key, value) VALUES (?, ?)", list(doc["settings"].items())
        )
        scratch.conn.executemany(
            "INSERT INTO extensions (number, name, realm, ha1_md5, ha1_sha256, created_at,"
            " updated_at) VALUES (?, ?, '', '', '', 0, 0)",
            [(e["number"], e["name"]) for e in doc["extensions"]],
        )
        for i, trunk in enumerate(doc["trunks"]):
            name = trunk.get("name")
            what = T("trunk {name}", name=name) if isinstance(name, str) else f"trunks[{i}]"
            missing = sorted({"name", "server", "instance"} - set(trunk))
            unknown = sorted(set(trunk) - set(TRUNK_FIELDS))
            if missing or not isinstance(name, str):
                raise BackupError(
                    T("{what} must have the fields name, server and instance", what=what)
                )
            if unknown:
                raise BackupError(
                    T("{what}: unknown fields {fields}", what=what, fields=", ".join(unknown))
                )
            if not isinstance(trunk["instance"], str) or not INSTANCE_RE.match(trunk["instance"]):
                raise BackupError(T("{what}: its instance token is damaged", what=what))
            fields = {k: v for k, v in trunk.items() if k not in ("name", "instance")}
            try:
                made = trunks.add(scratch, trunks.check_name(name), **fields)
            except trunks.TrunkExists:
                raise BackupError(T("the backup lists trunk {name} twice", name=name)) from None
            except trunks.TrunkError as exc:
                raise BackupError(T("{what}: {reason}", what=what, reason=reason(exc))) from None
            doc["trunks"][i] = {**_trunk_doc(made), "instance": trunk["instance"]}
        for i, did in enumerate(doc["dids"]):
            if set(did) != {"number", "label", "trunk", "destination"} or not all(
                isinstance(v, str) for v in did.values()
            ):
                raise BackupError(
                    T(
                        "dids[{index}] must have text fields number, label, trunk, destination",
                        index=i,
                    )
                )
            try:
                made_did = dids.add(scratch, did["number"], did["destination"], did["label"],
                                    did["trunk"])  # fmt: skip
            except dids.DidError as exc:
                raise BackupError(
                    T("DID {number}: {reason}", number=did["number"], reason=reason(exc))
                ) from None
            doc["dids"][i] = {**did, "number": made_did.number, "destination": made_did.destination}
        for i, route in enumerate(doc["routes"]):
            if set(route) != {"name", "patterns", "prepend", "trunks", "caller_id"} or not (
                isinstance(route["name"], str) and isinstance(route["prepend"], str)
                and isinstance(route["caller_id"], str)
                and all(isinstance(route[k], list) and all(isinstance(v, str) for v in route[k])
                        for k in ("patterns", "trunks"))
            ):  # fmt: skip
                raise BackupError(
                    T(
                        "routes[{index}] must have the fields name, patterns, prepend, trunks,"
                        " caller_id",
                        index=i,
                    )
                )
            try:
                made_route = routes.add(
                    scratch, route["name"], route["patterns"], route["trunks"], route["prepend"],
                    route["caller_id"],
                )  # fmt: skip
            except routes.RouteExists:
                raise BackupError(
                    T("the backup lists route {name} twice", name=route["name"])
                ) from None
            except routes.RouteError as exc:
                raise BackupError(
                    T("route {name}: {reason}", name=route["name"], reason=reason(exc))
                ) from None
            doc["routes"][i] = {
                **route,
                "patterns": list(made_route.patterns),
                "caller_id": made_route.caller_id,
            }
        for ext in doc["extensions"]:
            try:
                ext["caller_id"] = extensions.set_caller_id(
                    scratch, ext["number"], ext["caller_id"]
                )
            except extensions.ExtensionError as exc:
                raise BackupError(
                    T("extension {number}: {reason}", number=ext["number"], reason=reason(exc))
                ) from None
        for key, value in doc["settings"].items():
            spec = settings.SETTINGS.get(key)
            if isinstance(spec, settings.DestinationSetting):
                try:
                    spec.check(scratch, spec.validate(value))
                except settings.SettingError as exc:
                    raise BackupError(T("setting {reason}", reason=reason(exc))) from None
    finally:
        scratch.conn.close()


def _check_media_encryption(doc: dict[str, Any]) -> None:
    """`media_encryption`: {"extensions": {number: policy}, "trunks": {name: policy}}, for
    extensions and trunks of the backup (absent in backups made before SRTP: the default)."""
    policies = doc.setdefault("media_encryption", {})
    known = {
        "extensions": {e["number"] for e in doc["extensions"]},
        "trunks": {t["name"] for t in doc["trunks"]},
    }
    if not isinstance(policies, dict) or set(policies) - set(known):
        raise BackupError(T("'media_encryption' must map extensions and trunks to policies"))
    for kind, names in known.items():
        given = policies.setdefault(kind, {})
        if not isinstance(given, dict):
            raise BackupError(T("'media_encryption' must map extensions and trunks to policies"))
        for name in set(given) - names:
            del given[name]  # of an extension or trunk the backup does not restore
        for name, value in given.items():
            try:
                given[name] = encryption.check(value if isinstance(value, str) else "")
            except ValueError as exc:
                raise BackupError(reason(exc)) from None


def restore(db: Database, data: bytes) -> dict[str, int]:
    """Replace the configuration with the backup's, all at once; return what was restored."""
    doc = check(data)
    _check_media_encryption(doc)
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
            "INSERT INTO extensions (number, name, realm, ha1_md5, ha1_sha256, permissions,"
            " caller_id, max_outbound_calls, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(*(e[k] for k in EXTENSION_FIELDS), now, now) for e in doc["extensions"]],
        )
        for table in ("trunks", "dids", "routes"):
            conn.execute(f"DELETE FROM {table}")
        columns = (*TRUNK_FIELDS, "created_at", "updated_at")
        conn.executemany(
            f"INSERT INTO trunks ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
            [(*(t[k] for k in TRUNK_FIELDS), now, now) for t in doc["trunks"]],
        )
        for kind, table, key in (("extensions", "extensions", "number"),
                                 ("trunks", "trunks", "name")):  # fmt: skip
            conn.executemany(
                f"UPDATE {table} SET media_encryption = ? WHERE {key} = ?",
                [(policy, name) for name, policy in doc["media_encryption"][kind].items()],
            )
        conn.executemany(
            "INSERT INTO dids (number, label, trunk, destination, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            [(d["number"], d["label"], d["trunk"], d["destination"], now) for d in doc["dids"]],
        )
        conn.executemany(
            "INSERT INTO routes (name, position, patterns, prepend, trunks, caller_id,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(r["name"], position, ",".join(r["patterns"]), r["prepend"], ",".join(r["trunks"]),
              r["caller_id"], now) for position, r in enumerate(doc["routes"], 1)],
        )  # fmt: skip
        conn.execute("DELETE FROM registrations WHERE aor NOT IN (SELECT number FROM extensions)")
        # Sessions made before the restore end: every restored user starts a new epoch.
        (epoch,) = conn.execute("SELECT COALESCE(MAX(session_epoch), 0) + 1 FROM users").fetchone()
        conn.execute("DELETE FROM users")
        conn.executemany(
            "INSERT INTO users (username, role, password_hash, session_epoch, created_at,"
            " language) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (u["username"], u["role"], u["password_hash"], epoch, now, u["language"])
                for u in doc["users"]
            ],
        )
        conn.execute("DELETE FROM api_tokens")
        conn.executemany(
            "INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)",
            [(t["name"], t["role"], t["token_hash"], float(t.get("created_at") or now))
             for t in doc["api_tokens"]],
        )  # fmt: skip
    return {
        key: len(doc[key])
        for key in ("extensions", "users", "api_tokens", "trunks", "dids", "routes")
    }
