"""Backup and restore of the whole configuration: a backup restored into a fresh data directory
gives back working credentials (digest HA1 values, scrypt hashes, token hashes), the settings,
the trunks (with their passwords: the lines need them), DIDs and routes, never carries this
box's own secrets, and every kind of bad file is refused with a readable BackupError while the
database stays exactly as it was. Backups made before trunks existed still restore."""

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

from appliance.store import backup, dids, extensions, routes, settings, tokens, trunks, users
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
    "office.area_code": "30",
    "dialplan.unknown_did": "extension:101",
}
TRUNK_PASSWORD = "Trunk-Secret-7"
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
            if key != "dialplan.unknown_did":  # its extension comes below
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
        trunks.add(db, "sipgate", server="sipgate.de", username="1234567e0",
                   password=TRUNK_PASSWORD, codecs="G722,PCMA", did_from="to")  # fmt: skip
        trunks.add(db, "pbx-hq", kind="ip", server="10.1.0.2:5070", match_cidrs="10.1.0.0/24")
        dids.add(db, "030 1234567", "extension:101", "Reception", "sipgate")
        dids.add(db, "+49301234568", "hangup:busy", "Fax")
        routes.add(db, "national", ["0Z."], ["sipgate", "pbx-hq"], caller_id="+49301234567")
        routes.add(db, "hq", ["8|1XX"], ["pbx-hq"], prepend="9")
        extensions.set_permissions(db, "102", ["local", "mobile", "international"])
        extensions.set_caller_id(db, "102", "+49301234568")
        settings.set_value(db, "dialplan.unknown_did", SETTINGS["dialplan.unknown_did"])
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
        trunks.add(db, "kept", kind="ip", server="192.0.2.9")
        dids.add(db, "+15550100", "extension:30", "Kept line")
        routes.add(db, "kept", ["X."], ["kept"])
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
    assert counts == {
        "extensions": 3, "users": 2, "api_tokens": 1, "trunks": 2, "dids": 2, "routes": 2
    }  # fmt: skip

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


def test_trunks_dids_and_routes_are_restored_as_they_were(
    box: Box, open_box: Callable[[str], Database]
) -> None:
    fresh = open_box("fresh")
    backup.restore(fresh, backup.dumps(box.db))

    def same(trunk: trunks.Trunk) -> dict[str, object]:
        return {**trunk.masked(), "password": trunk.password, "created_at": 0, "updated_at": 0}

    assert [same(t) for t in trunks.list_all(fresh)] == [same(t) for t in trunks.list_all(box.db)]
    sipgate = trunks.get(fresh, "sipgate")
    assert sipgate is not None and sipgate.password == TRUNK_PASSWORD  # the line still works
    assert [(d.number, d.label, d.trunk, d.destination) for d in dids.list_all(fresh)] == [
        ("+49301234567", "Reception", "sipgate", "extension:101"),
        ("+49301234568", "Fax", "", "hangup:busy"),
    ]
    assert [(r.position, r.name, r.patterns, r.prepend, r.trunks, r.caller_id)
            for r in routes.list_all(fresh)] == [
        (1, "national", ("0Z.",), "", ("sipgate", "pbx-hq"), "+49301234567"),
        (2, "hq", ("8|1XX",), "9", ("pbx-hq",), ""),
    ]  # fmt: skip
    ext = extensions.get(fresh, "102")
    assert ext is not None and ext == extensions.get(box.db, "102")
    assert (ext.permissions, ext.caller_id) == (
        ("internal", "local", "mobile", "international"),
        "+49301234568",
    )
    assert settings.get(fresh, "dialplan.unknown_did") == "extension:101"


def test_a_backup_holds_the_trunk_passwords_as_documented(box: Box) -> None:
    data = backup.dumps(box.db)
    assert TRUNK_PASSWORD.encode() in data
    assert backup.__doc__ is not None and "trunks' passwords in clear" in backup.__doc__


def test_a_backup_made_before_trunks_existed_still_restores(
    box: Box, open_box: Callable[[str], Database]
) -> None:
    doc = json.loads(backup.dumps(box.db))
    for key in ("trunks", "dids", "routes"):
        del doc[key]
    for key in ("office.area_code", "dialplan.unknown_did"):
        del doc["settings"][key]
    for ext in doc["extensions"]:
        del ext["permissions"], ext["caller_id"]
    target = open_box("target")
    counts = backup.restore(target, json.dumps(doc).encode())
    assert (counts["trunks"], counts["dids"], counts["routes"]) == (0, 0, 0)
    assert (trunks.list_all(target), dids.list_all(target), routes.list_all(target)) == ([], [], [])
    assert {(e.permissions, e.caller_id) for e in extensions.list_all(target)} == {
        (("internal", "local", "mobile", "long-distance"), "")
    }
    assert settings.get(target, "dialplan.unknown_did") == "hangup:not-found"


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
    "trunks not a list": (edit(_set("trunks", {})), "'trunks' must be a list of objects"),
    "bad trunk server": (
        edit(_set("trunks/0/server", "bad host")),
        "trunk pbx-hq: server must be HOST or HOST:PORT (a host name or an IP address), not"
        " 'bad host'",
    ),
    "trunk without password": (
        edit(_set("trunks/1/password", "")),
        "trunk sipgate: a register trunk needs a password",
    ),
    "bad trunk codecs": (
        edit(_set("trunks/1/codecs", "OPUS")),
        "trunk sipgate: codecs must list some of PCMA, PCMU, G722, each once, most preferred"
        " first, not 'OPUS'",
    ),
    "damaged trunk instance": (
        edit(_set("trunks/0/instance", "xyz")),
        "trunk pbx-hq: its instance token is damaged",
    ),
    "unknown trunk field": (
        edit(_set("trunks/0/colour", "red")),
        "trunk pbx-hq: unknown fields colour",
    ),
    "duplicate trunk": (edit(_duplicate("trunks")), "the backup lists trunk pbx-hq twice"),
    "trunk without server": (
        edit(lambda doc: doc["trunks"][0].pop("server")),
        "trunk pbx-hq must have the fields name, server and instance",
    ),
    "DID to a missing extension": (
        edit(_set("dids/0/destination", "extension:199")),
        "DID +49301234567: there is no extension 199",
    ),
    "DID to a route": (
        edit(_set("dids/0/destination", "route:national")),
        "DID +49301234567: calls from outside cannot go to an outbound route (route:national)",
    ),
    "DID on a missing trunk": (
        edit(_set("dids/0/trunk", "nope")),
        "DID +49301234567: there is no trunk 'nope'",
    ),
    "DID shadowing an extension": (
        edit(_set("dids/1/number", "150")),
        "DID 150: 150 is already extension 150",
    ),
    "duplicate DID": (
        edit(_duplicate("dids")),
        "DID +49301234567: +49301234567 is already the DID +49301234567 (Reception)",
    ),
    "DID not text": (
        edit(_set("dids/0/label", 7)),
        "dids[0] must have text fields number, label, trunk, destination",
    ),
    "route with a bad pattern": (
        edit(_set("routes/0/patterns", ["0Z["])),
        "route national: pattern '0Z[': unclosed '[' at 2",
    ),
    "route via a missing trunk": (
        edit(_set("routes/1/trunks", ["gone"])),
        "route hq: there is no trunk 'gone'",
    ),
    "duplicate route": (edit(_duplicate("routes")), "the backup lists route national twice"),
    "route caller ID not a DID": (
        edit(_set("routes/0/caller_id", "+49309999999")),
        "route national: caller ID +49309999999 is not one of the office's numbers (DIDs)",
    ),
    "extension caller ID not a DID": (
        edit(_set("extensions/1/caller_id", "+49309999999")),
        "extension 102: caller ID +49309999999 is not one of the office's numbers (DIDs)",
    ),
    "unknown permission": (
        edit(_set("extensions/1/permissions", "local,satellite")),
        "extension 102: unknown permission class 'satellite'; known: internal, local, mobile,"
        " long-distance, international, premium",
    ),
    "unknown DID to a missing extension": (
        edit(_set("settings/dialplan.unknown_did", "extension:199")),
        "setting dialplan.unknown_did: there is no extension 199",
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
