"""Fixtures for the store's tests: a real SQLite database per test, and a configured office."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.store import settings
from appliance.store.database import Database
from appliance.store.db import open_db


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    """A fresh box's database, in a data directory of its own."""
    handle = open_db(tmp_path / "var")
    yield handle
    handle.conn.close()


@pytest.fixture
def office(db: Database) -> Database:
    """The database of an office in Moscow (country RU, city code 495)."""
    settings.set_value(db, "office.country", "RU")
    settings.set_value(db, "office.area_code", "495")
    return db
