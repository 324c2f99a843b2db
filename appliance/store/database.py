"""The handle every store function takes: one SQLite connection, with the two calls they use.

sqlite-utils' `Database` did this job, but importing it costs every service 13.7 MiB of RSS
(it loads click, pluggy, dateutil and tabulate), which the 35 MiB budget of `pbx-web` cannot
carry, while the store used only `execute`, `conn` and `table_names` from it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any


class Database:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(
        self, sql: str, parameters: Iterable[Any] | Mapping[str, Any] = ()
    ) -> sqlite3.Cursor:
        return self.conn.execute(sql, parameters)  # type: ignore[arg-type]

    def table_names(self) -> list[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return [name for (name,) in rows.fetchall()]
