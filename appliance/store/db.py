"""Open the appliance's SQLite database (WAL) and bring its schema up to date."""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from appliance.store.database import Database
from appliance.store.migrations import migrate

logger = logging.getLogger(__name__)

DB_NAME = "pbx.sqlite3"
SYNCHRONOUS = "FULL"
"""For every connection that commits (see `open_db`): durable against power loss."""
BUSY_TIMEOUT = 10.0
"""Seconds a connection waits for another's write lock before `database is locked`: longer
than any one transaction here (a CDR pruning batch, about 70 ms; a restore, well under 1 s)."""


def database_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def open_db(data_dir: Path, *, migrate_schema: bool = True) -> Database:
    """Open `DATA/pbx.sqlite3`, creating the directory and applying pending migrations.

    WAL lets the CLI and the web service read and write while the core serves. Every commit on
    these connections is acknowledged to someone (a technician's change, a phone's 200 OK to
    REGISTER, a call record), so they use `synchronous=FULL`: in WAL mode SQLite then fsyncs the
    WAL at every commit, and a committed transaction survives a power cut (with NORMAL it
    survives a crash of the process, but the last commits may roll back on power loss:
    https://www.sqlite.org/pragma.html#pragma_synchronous). The cost is one fsync per commit,
    paid off the event loop (the core commits from `Writer`'s thread, in group commits); see
    docs/architecture.md, "Data". A writer waits up to `BUSY_TIMEOUT` for another's lock.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        database_path(data_dir), isolation_level=None, check_same_thread=False,
        timeout=BUSY_TIMEOUT,
    )  # fmt: skip
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    conn.execute("PRAGMA foreign_keys=ON")
    db = Database(conn)
    if migrate_schema:
        migrate(db)
    return db


@contextmanager
def transaction(db: Database) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception: all of it or nothing.

    IMMEDIATE takes the write lock at the start, so a read-then-write inside cannot race
    another writer (the connection runs in autocommit mode otherwise). Inside a transaction
    already open (a store function called in a caller's transaction) it is a SAVEPOINT: the
    inner part is undone alone when it fails, and the outer transaction decides the rest."""
    conn = db.conn
    if conn.in_transaction:
        conn.execute("SAVEPOINT nested")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK TO nested")
            conn.execute("RELEASE nested")
            raise
        conn.execute("RELEASE nested")
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class Checkpointer:
    """Checkpoints the WAL from a thread of its own, so the event loop never waits for fsync.

    The core's connection turns automatic checkpoints off (`wal_autocheckpoint=0`); this thread
    runs a PASSIVE checkpoint every `interval` seconds on its own connection. sqlite3 releases
    the GIL while SQLite works, so the loop keeps serving meanwhile.
    """

    def __init__(self, data_dir: Path, interval: float = 1.0) -> None:
        self._path = database_path(data_dir)
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)

    def start(self, db: Database) -> None:
        db.execute("PRAGMA wal_autocheckpoint=0")
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=BUSY_TIMEOUT)
        # A checkpoint fsyncs the WAL before copying it and the database after, at NORMAL as
        # at FULL; set like every other connection so that nothing here depends on defaults.
        conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
        try:
            # The first checkpoint at once: the connection opens its files now, at start-up,
            # not in the middle of whatever the core is doing a second later.
            while True:
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    logger.warning("WAL checkpoint failed: %s", exc)
                if self._stop.wait(self._interval):
                    break
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


class Writer:
    """Runs store writes from a thread of its own connection, in order, so that the event
    loop carrying SIP and RTP never waits for SQLite (CDRs and other events: the outbox).

    `submit` only queues; a failed write is logged with what it was. `stop` writes what is
    queued, then ends the thread."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir
        self._queue: queue.SimpleQueue[tuple[str, Callable[[Database], None]] | None]
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    def submit(self, what: str, write: Callable[[Database], None]) -> None:
        self._queue.put((what, write))

    def _run(self) -> None:
        db = open_db(self._path, migrate_schema=False)
        try:
            while (item := self._queue.get()) is not None:
                what, write = item
                try:
                    write(db)
                except sqlite3.Error as exc:  # the event is gone either way; say so loudly
                    logger.error("%s not written: %s", what, exc)
                except Exception:  # a bug in one write must not stop the ones after it
                    logger.exception("%s not written", what)
        finally:
            db.conn.close()

    def drain(self, timeout: float = 30.0) -> None:
        """Return once everything submitted before this call is written."""
        done = threading.Event()
        self.submit("drain", lambda _db: done.set())
        if self._thread.is_alive() and not done.wait(timeout):
            logger.error("the store writer did not finish its queue in %.0f s", timeout)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)
