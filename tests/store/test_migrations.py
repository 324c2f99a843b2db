"""Schema migrations: numbered, recorded, idempotent; the database runs in WAL mode."""

from __future__ import annotations

from pathlib import Path

from appliance.store import settings
from appliance.store.db import open_db
from appliance.store.migrations import MIGRATIONS, current_version, migrate


def test_migrations_apply_once_and_are_recorded(tmp_path: Path) -> None:
    db = open_db(tmp_path, migrate_schema=False)
    assert migrate(db) == [n for n, _, _ in MIGRATIONS]
    assert migrate(db) == []
    assert current_version(db) == MIGRATIONS[-1][0]
    assert {"settings", "extensions", "registrations", "schema_migrations"} <= set(db.table_names())


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
