"""Backup and restore of the whole configuration: a backup restored into a fresh data directory
gives back working credentials (digest HA1 values, scrypt hashes, token hashes) and the
settings, never carries this box's own secrets, and every kind of bad file is refused with a
readable BackupError while the database stays exactly as it was."""

from __future__ import annotations

import copy
import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.store import backup, extensions, settings, tokens, users
from appliance.store.backup import BackupError
from appliance.store.database import Database
from appliance.store.db import open_db

SETTINGS = {
    "office.name": "Dental Clinic",
    "office.country": "DE",
    "office.timezone": "Europe/Berlin",
    "ext.number_min": "100",
    "ext.number_max": "199",
    "sip.digest_algorithms": "SHA-256,MD5",
    "calls.ring_timeout": "45",
}
PEOPLE = {"boss": ("Bo55-Secret!", "admin"), "clerk": ("Cl3rk-Secret!", "viewer")}


@dataclass
class Box:
    """A configured box and the clear secrets it was given (which no backup may hold)."""

    db: Database
    extension_passwords: dict[str, str]
    token: str


@dataclass(frozen=True)
class Templates:
    """Data directories made once per module (scrypt costs ~50-150 ms a hash), copied per test."""

    source: Path
    target: Path
    extension_passwords: dict[str, str]
    token: str


def make_source(data: Path) -> tuple[dict[str, str], str]:
    db = open_db(data)
    try:
        for key, value in SETTINGS.items():
            settings.set_value(db, key, value)
        settings.set_text(db, "web.setup_done", "1")
        passwords = {
            "101": extensions.add(db, "101", "Reception"),
            "102": extensions.add(db, "102", "Dr. Weber", "Weber-Phone-42"),
            "150": extensions.add(db, "150", ""),
        }
        users.add_first_admin(db, "boss", PEOPLE["boss"][0])
        users.add(db, "clerk", *PEOPLE["clerk"])
        _, clear = tokens.create(db, "CRM integration", "viewer")
        return passwords, clear
    finally:
        db.conn.close()


def make_target(data: Path) -> None:
    """Another configured box, which a bad backup must leave untouched."""
    db = open_db(data)
    try:
        settings.set_value(db, "office.name", "Target Office")
        extensions.add(db, "30", "Target phone")
        users.add_first_admin(db, "keeper", "K33per-Secret!")
        tokens.create(db, "kept", "admin")
    finally:
        db.conn.close()


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> Templates:
    root = tmp_path_factory.mktemp("templates")
    passwords, token = make_source(root / "source")
    make_target(root / "target")
    return Templates(root / "source", root / "target", passwords, token)


@pytest.fixture
def open_box(tmp_path: Path, templates: Templates) -> Iterator[Callable[[str], Database]]:
    """Open a data directory by name: "source" and "target" start as copies of the templates,
    any other name starts empty (a fresh box)."""
    opened: list[Database] = []

    def opener(name: str) -> Database:
        data = tmp_path / name
        template = {"source": templates.source, "target": templates.target}.get(name)
        if template is not None and not data.exists():
            shutil.copytree(template, data)
        db = open_db(data)
        opened.append(db)
        return db

    yield opener
    for db in opened:
        db.conn.close()


@pytest.fixture
def box(open_box: Callable[[str], Database], templates: Templates) -> Box:
    return Box(open_box("source"), templates.extension_passwords, templates.token)


def dump(db: Database) -> list[str]:
    return list(db.conn.iterdump())


def local_secrets(db: Database) -> tuple[str, str]:
    return settings.get_text(db, "web.secret_key"), settings.get_text(db, "sip.nonce_secret")


def test_a_backup_restored_into_a_fresh_box_gives_back_working_credentials(
    box: Box, open_box: Callable[[str], Database]
) -> None:
    data = backup.dumps(box.db)
    fresh = open_box("fresh")
    counts = backup.restore(fresh, data)
    assert counts == {"extensions": 3, "users": 2, "api_tokens": 1}

    assert extensions.list_all(fresh) == extensions.list_all(box.db)
    credentials = extensions.all_credentials(fresh)
    assert credentials == extensions.all_credentials(box.db)
    for number, password in box.extension_passwords.items():
        realm = credentials[number].realm
        assert realm == settings.get_text(box.db, "sip.realm")
        assert credentials[number].ha1["MD5"] == extensions.digest_ha1(
            "MD5", number, realm, password
        )
        assert credentials[number].ha1["SHA-256"] == extensions.digest_ha1(
            "SHA-256", number, realm, password
        )

    for name, (password, role) in PEOPLE.items():
        user = users.authenticate(fresh, name, password)
        assert user is not None and user.role == role, name
        assert users.authenticate(fresh, name, password + "x") is None

    token = tokens.lookup(fresh, box.token)
    assert token is not None and (token.name, token.role) == ("CRM integration", "viewer")
    assert tokens.lookup(fresh, box.token[:-1]) is None

    for key in SETTINGS:
        assert settings.get(fresh, key) == settings.get(box.db, key), key
    assert settings.get_text(fresh, "web.setup_done") == "1"
    # What the restored box adds next is made in the same realm and range as before.
    assert extensions.add(fresh, "103") and extensions.get(fresh, "103") is not None
    with pytest.raises(extensions.ExtensionError, match="outside the allowed range 100-199"):
        extensions.add(fresh, "200")


def test_a_restore_replaces_the_configuration_instead_of_merging(
    box: Box, open_box: Callable[[str], Database]
) -> None:
    other = open_box("other")
    settings.set_value(other, "office.name", "Old Office")
    settings.set_value(other, "sip.max_contacts", "3")
    extensions.add(other, "20", "Old phone")
    users.add_first_admin(other, "olduser", "0ld-Admin-Pass!")
    _, old_token = tokens.create(other, "old", "admin")

    backup.restore(other, backup.dumps(box.db))
    assert [e.number for e in extensions.list_all(other)] == ["101", "102", "150"]
    assert [u.username for u in users.list_all(other)] == ["boss", "clerk"]
    assert tokens.lookup(other, old_token) is None
    assert settings.get(other, "office.name") == "Dental Clinic"
    assert settings.get(other, "sip.max_contacts") == 10  # back to the default: not in the backup


def test_local_secrets_are_never_exported_and_are_kept_on_restore(
    box: Box, open_box: Callable[[str], Database]
) -> None:
    data = backup.dumps(box.db)
    doc = json.loads(data)
    assert "web.secret_key" not in doc["settings"]
    assert "sip.nonce_secret" not in doc["settings"]
    for secret in local_secrets(box.db):
        assert len(secret) >= 32 and secret.encode() not in data

    fresh = open_box("fresh")
    kept = local_secrets(fresh)
    assert kept != local_secrets(box.db)  # two boxes have secrets of their own
    backup.restore(fresh, data)
    assert local_secrets(fresh) == kept


def test_a_backup_holds_no_clear_password_or_token(box: Box) -> None:
    data = backup.dumps(box.db)
    secrets = [*box.extension_passwords.values(), box.token, box.token.removeprefix("pbx_")]
    secrets += [password for password, _ in PEOPLE.values()]
    assert [s for s in secrets if s.encode() in data] == []
    doc = json.loads(data)
    assert doc["format"] == "pbx-appliance-backup" and doc["version"] == 1
    assert {u["username"]: u["role"] for u in doc["users"]} == {"boss": "admin", "clerk": "viewer"}
    assert all(u["password_hash"].startswith("scrypt$") for u in doc["users"])


def edit(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    """A backup file with one thing changed in its JSON."""

    def apply(data: bytes) -> bytes:
        doc = json.loads(data)
        change(doc)
        return json.dumps(doc).encode()

    return apply


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set `doc[a][b]...` for `path` "a/b/..." (numbers index lists)."""

    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value

    return change


def _duplicate(key: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc[key].append(copy.deepcopy(doc[key][0]))

    return change


def _all_viewers(doc: dict[str, Any]) -> None:
    for user in doc["users"]:
        user["role"] = "viewer"


def _drop_key(doc: dict[str, Any]) -> None:
    salt_and_key = doc["users"][0]["password_hash"].rsplit("$", 1)[0]
    doc["users"][0]["password_hash"] = salt_and_key  # the key cut off, as in a truncated file


BAD_FILES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "not JSON": (lambda data: data[: len(data) // 2], "not a backup file (not JSON"),
    "not UTF-8": (lambda data: b"\x80" + data, "not a backup file"),
    "a JSON list": (lambda data: b"[]", "not a backup file of this PBX"),
    "wrong format": (edit(_set("format", "pbx-other-backup")), "not a backup file of this PBX"),
    "wrong version": (edit(_set("version", 2)), "backup format version 2 is not supported"),
    "unknown setting": (edit(_set("settings/sip.colour", "blue")), "unknown setting 'sip.colour'"),
    "bad setting value": (
        edit(_set("settings/sip.min_expires", "0")),
        "sip.min_expires must be between 1 and 3600",
    ),
    "setting not text": (edit(_set("settings/calls.ring_timeout", 45)), "'settings' must map"),
    "bad time zone": (
        edit(_set("settings/office.timezone", "Mars/Olympus")),
        "'Mars/Olympus' is not a known time zone",
    ),
    "duplicate extension": (edit(_duplicate("extensions")), "the backup lists extension"),
    "duplicate user": (edit(_duplicate("users")), "the backup lists user"),
    "duplicate API token": (edit(_duplicate("api_tokens")), "the backup lists API token"),
    "bad extension number": (
        edit(_set("extensions/0/number", "1")),
        "extension number must be 2 to 6 digits",
    ),
    "extension without name": (
        edit(lambda doc: doc["extensions"][0].pop("name")),
        "extensions[0] must have text fields number, name, realm",
    ),
    "no user list": (edit(lambda doc: doc.pop("users")), "'users' must be a list"),
    "no admin user": (edit(_all_viewers), "no admin user: restoring it would lock everyone out"),
    "unknown role": (edit(_set("users/1/role", "root")), "role must be one of admin, viewer"),
    "bad user name": (edit(_set("users/1/username", "Bad Name")), "user name must be 2 to 32"),
    "damaged HA1": (
        edit(_set("extensions/0/ha1_md5", "not-a-digest")),
        "extension 101: credentials are damaged",
    ),
    "damaged password hash": (
        edit(_set("users/0/password_hash", "$2b$12$abcdefghijklmnopqrstuv")),
        "user boss: password hash is damaged",
    ),
    "truncated password hash": (edit(_drop_key), "user boss: password hash is damaged"),
    "damaged token hash": (
        edit(_set("api_tokens/0/token_hash", "xyz")),
        "API token 'CRM integration' is damaged",
    ),
    "damaged token date": (edit(_set("api_tokens/0/created_at", "yesterday")), "API token"),
    "token date NaN": (
        edit(_set("api_tokens/0/created_at", float("nan"))),
        "API token 'CRM integration' has a damaged date",
    ),
    "token date too big": (
        edit(_set("api_tokens/0/created_at", 10**400)),
        "API token 'CRM integration' has a damaged date",
    ),
    "nested too deeply": (lambda data: b"[" * 100_000, "not a backup file (nested too deeply)"),
    "no SIP realm": (
        edit(lambda doc: doc["settings"].pop("sip.realm")),
        "the backup has no SIP realm",
    ),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_bad_backup_is_refused_with_a_clear_message_and_changes_nothing(
    box: Box, open_box: Callable[[str], Database], kind: str
) -> None:
    damage, message = BAD_FILES[kind]
    bad = damage(backup.dumps(box.db))
    target = open_box("target")  # a configured box the bad file must not touch
    assert users.count(target) == 1 and extensions.get(target, "30") is not None
    before = dump(target)

    with pytest.raises(BackupError, match=re.escape(message)):
        backup.restore(target, bad)
    assert not target.conn.in_transaction
    assert dump(target) == before
    with pytest.raises(BackupError):
        backup.check(bad)  # the same verdict before anything would be written
