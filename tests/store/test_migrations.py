"""Schema migrations: numbered, recorded, idempotent; the database runs in WAL mode."""

from __future__ import annotations

from pathlib import Path

from appliance.store import extensions, settings
from appliance.store.database import Database
from appliance.store.db import open_db
from appliance.store.migrations import MIGRATIONS, current_version, migrate


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    db = open_db(tmp_path, migrate_schema=False)
    assert migrate(db) == [n for n, _, _ in MIGRATIONS]
    assert migrate(db) == []
    assert current_version(db) == MIGRATIONS[-1][0]
    assert {"settings", "extensions", "registrations", "schema_migrations"} <= set(db.table_names())
    assert {"trunks", "dids", "routes"} <= set(db.table_names())


def columns(db: Database, table: str) -> dict[str, tuple[str, int, str | None]]:
    rows = db.execute(f"PRAGMA table_info({table})").fetchall()
    return {name: (kind, notnull, default) for _, name, kind, notnull, default, _ in rows}


def test_0004_adds_trunk_columns_to_extensions_and_cdrs_of_an_existing_box(
    tmp_path: Path,
) -> None:
    db = open_db(tmp_path, migrate_schema=False)
    step4 = MIGRATIONS.index(next(m for m in MIGRATIONS if m[0] == 4))
    saved = MIGRATIONS[step4:]
    del MIGRATIONS[step4:]
    try:
        migrate(db)
        db.execute("INSERT INTO extensions VALUES ('101', 'Reception', 'pbx', 'a', 'b', 0, 0)")
        db.execute(
            "INSERT INTO cdrs (id, started_at, ended_at, caller, dialled, disposition, duration,"
            " billsec, hangup_side, hangup_cause) VALUES ('c', 0, 1, '101', '102', 'busy', 1, 0,"
            " 'callee', '486')"
        )
    finally:
        MIGRATIONS.extend(saved)
    assert migrate(db)[0] == 4
    assert columns(db, "extensions")["permissions"] == (
        "TEXT",
        1,
        "'internal,local,mobile,long-distance'",
    )
    assert columns(db, "extensions")["caller_id"] == ("TEXT", 1, "''")
    added = ("direction", "trunk", "did", "did_label", "sent")
    assert {k: columns(db, "cdrs")[k] for k in added} == {
        "direction": ("TEXT", 1, "'internal'"), "trunk": ("TEXT", 0, None),
        "did": ("TEXT", 0, None), "did_label": ("TEXT", 0, None), "sent": ("TEXT", 0, None),
    }  # fmt: skip
    ext = extensions.get(db, "101")
    assert ext is not None and (ext.permissions, ext.caller_id) == (
        ("internal", "local", "mobile", "long-distance"),
        "",
    )
    assert db.execute("SELECT direction, trunk FROM cdrs").fetchone() == ("internal", None)
    assert set(columns(db, "trunks")) == {
        "name", "kind", "server", "outbound_proxy", "transport", "username", "auth_user",
        "password", "from_user", "from_domain", "codecs", "max_calls", "expires",
        "options_interval", "external_address", "match_cidrs", "did_from", "late_offer",
        "enabled", "instance", "created_at", "updated_at",
        "media_encryption",  # migration 8
    }  # fmt: skip


def test_reopening_keeps_secrets_and_uses_wal(tmp_path: Path) -> None:
    first = settings.get_text(open_db(tmp_path), "sip.nonce_secret")
    db = open_db(tmp_path)
    assert settings.get_text(db, "sip.nonce_secret") == first
    assert len(bytes.fromhex(first)) == 32
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_failing_migration_leaves_nothing_half_done(tmp_path: Path) -> None:
    db = open_db(tmp_path)

    def broken(db_: object) -> None:
        db.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    MIGRATIONS.append((999, "broken", broken))
    try:
        try:
            migrate(db)
        except RuntimeError:
            pass
        assert "half" not in db.table_names()
        assert current_version(db) == MIGRATIONS[-2][0]
    finally:
        MIGRATIONS.pop()


def test_0008_gives_every_extension_and_trunk_optional_media_encryption(tmp_path: Path) -> None:
    from appliance.store import encryption, trunks

    db = open_db(tmp_path)
    extensions.add(db, "101", "A", "Secret123456")
    trunks.add(db, "main", server="sip.example.net", kind="ip")
    assert encryption.of_extensions(db) == {"101": "optional"}
    assert encryption.of_trunks(db) == {"main": "optional"}
    for table in ("extensions", "trunks"):
        assert columns(db, table)["media_encryption"] == ("TEXT", 1, "'optional'")
