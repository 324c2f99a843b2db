"""Read the box's CDRs (table ``cdrs`` of ``DATA/pbx.sqlite3``) from a test, waiting for rows
that the core writes when a call ends."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from appliance.store import cdrs
from appliance.store.db import open_db

Row = dict[str, Any]


def all_cdrs(data: Path) -> list[Row]:
    """Every CDR row, oldest first."""
    db = open_db(data, migrate_schema=False)
    try:
        return list(reversed(cdrs.recent(db, limit=10_000)))
    finally:
        db.conn.close()


def wait_cdrs(
    data: Path, done: Callable[[list[Row]], bool], timeout: float = 15.0, what: str = "CDRs"
) -> list[Row]:
    """Poll the table (every 0.1 s, at most `timeout` s) until `done(rows)`; return the rows."""
    deadline = time.monotonic() + timeout
    while True:
        rows = all_cdrs(data)
        if done(rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; CDRs: {rows}")
        time.sleep(0.1)  # polling a condition with a deadline (the core writes on its own)
