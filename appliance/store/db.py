"""Open the appliance's SQLite database (WAL) and bring its schema up to date."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import sqlite_utils

from appliance.store.migrations import migrate

logger = logging.getLogger(__name__)

DB_NAME = "pbx.sqlite3"


def database_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def open_db(data_dir: Path, *, migrate_schema: bool = True) -> sqlite_utils.Database:
    """Open `DATA/pbx.sqlite3`, creating the directory and applying pending migrations.

    WAL lets the CLI and the web service read and write while the core serves; commits use
    `synchronous=NORMAL`, which in WAL mode is durable across application crashes and fsyncs at
    checkpoints.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        database_path(data_dir), isolation_level=None, check_same_thread=False, timeout=10
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    db = sqlite_utils.Database(conn)
    if migrate_schema:
        migrate(db)
    return db
