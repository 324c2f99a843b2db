"""Voicemail in the store: one mailbox per extension, and the messages left in it.

A mailbox belongs to an extension (same number; deleting the extension deletes its mailbox
and message rows). Its PIN is kept only as an scrypt hash (the same scheme as the setup page's
passwords, `appliance.store.users`), because a PIN read from a backup would open the mailbox.
A message's audio is a file under the data directory (`voicemail/NUM/ID.ogg`); its row holds
the path relative to the data directory, so a restored backup in another place still finds it.
A deleted message keeps its row (`deleted` = 1) until the file is gone, so the page can say so.
"""

from __future__ import annotations

import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.i18n import T
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.users import hash_password, verify_password

FOLDER = "voicemail"
"""Where messages live, relative to the data directory."""
FOLDERS = ("new", "saved")
GREETINGS = ("default", "custom")
PIN_RE = re.compile(r"[0-9]{4,10}\Z")
MAX_SECONDS_RANGE = (10, 600)
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+\Z")


class VoicemailError(ValueError):
    """A mailbox or message request cannot be done; `str()` says why, `field` names what."""

    def __init__(self, message: str, field: str = "mailbox") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Mailbox:
    number: str
    enabled: bool
    has_pin: bool
    greeting: str
    greeting_file: str
    max_seconds: int
    email: str
    attach: bool
    on_busy: bool
    on_no_answer: bool
    unsolicited_mwi: bool


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    mailbox: str
    caller: str
    caller_name: str
    started_at: float
    seconds: float
    path: str
    folder: str
    deleted: bool


def migrate_tables(db: Database) -> None:
    """Migration 12: the mailboxes and messages tables."""
    db.execute(
        """CREATE TABLE IF NOT EXISTS voicemail_boxes (
            number TEXT PRIMARY KEY REFERENCES extensions(number) ON DELETE CASCADE,
            enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
            pin_hash TEXT NOT NULL DEFAULT '',
            greeting TEXT NOT NULL DEFAULT 'default' CHECK (greeting IN ('default', 'custom')),
            greeting_file TEXT NOT NULL DEFAULT '',
            max_seconds INTEGER NOT NULL DEFAULT 120 CHECK (max_seconds BETWEEN 10 AND 600),
            email TEXT NOT NULL DEFAULT '',
            attach INTEGER NOT NULL DEFAULT 1 CHECK (attach IN (0, 1)),
            on_busy INTEGER NOT NULL DEFAULT 1 CHECK (on_busy IN (0, 1)),
            on_no_answer INTEGER NOT NULL DEFAULT 1 CHECK (on_no_answer IN (0, 1)),
            unsolicited_mwi INTEGER NOT NULL DEFAULT 1 CHECK (unsolicited_mwi IN (0, 1)),
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL
        )"""
    )
    db.execute(
        """CREATE TABLE IF NOT EXISTS voicemail_messages (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            mailbox TEXT NOT NULL REFERENCES voicemail_boxes(number) ON DELETE CASCADE,
            caller TEXT NOT NULL DEFAULT '',
            caller_name TEXT NOT NULL DEFAULT '',
            started_at REAL NOT NULL,
            seconds REAL NOT NULL DEFAULT 0,
            path TEXT NOT NULL,
            folder TEXT NOT NULL DEFAULT 'new' CHECK (folder IN ('new', 'saved')),
            deleted INTEGER NOT NULL DEFAULT 0 CHECK (deleted IN (0, 1))
        )"""
    )
    db.execute(
        "CREATE INDEX IF NOT EXISTS voicemail_messages_box"
        " ON voicemail_messages (mailbox, deleted, folder, started_at)"
    )


_BOX_COLUMNS = (
    "number, enabled, pin_hash, greeting, greeting_file, max_seconds, email, attach, on_busy,"
    " on_no_answer, unsolicited_mwi"
)
_MSG_COLUMNS = "id, mailbox, caller, caller_name, started_at, seconds, path, folder, deleted"


def _box(row: tuple[Any, ...]) -> Mailbox:
    return Mailbox(
        number=row[0],
        enabled=bool(row[1]),
        has_pin=bool(row[2]),
        greeting=row[3],
        greeting_file=row[4],
        max_seconds=int(row[5]),
        email=row[6],
        attach=bool(row[7]),
        on_busy=bool(row[8]),
        on_no_answer=bool(row[9]),
        unsolicited_mwi=bool(row[10]),
    )


def _message(row: tuple[Any, ...]) -> Message:
    return Message(
        id=int(row[0]),
        mailbox=row[1],
        caller=row[2],
        caller_name=row[3],
        started_at=float(row[4]),
        seconds=float(row[5]),
        path=row[6],
        folder=row[7],
        deleted=bool(row[8]),
    )


def check_pin(pin: str) -> str:
    """A PIN a phone's keypad can enter: 4 to 10 digits."""
    if not PIN_RE.match(pin):
        raise VoicemailError(T("the PIN must be 4 to 10 digits"), "pin")
    return pin


def mailbox(db: Database, number: str) -> Mailbox | None:
    row = db.execute(
        f"SELECT {_BOX_COLUMNS} FROM voicemail_boxes WHERE number = ?", (number,)
    ).fetchone()
    return None if row is None else _box(row)


def mailboxes(db: Database) -> list[Mailbox]:
    rows = db.execute(f"SELECT {_BOX_COLUMNS} FROM voicemail_boxes ORDER BY number").fetchall()
    return [_box(r) for r in rows]


def set_mailbox(
    db: Database,
    number: str,
    *,
    pin: str | None = None,
    enabled: bool | None = None,
    greeting: str | None = None,
    greeting_file: str | None = None,
    max_seconds: int | None = None,
    email: str | None = None,
    attach: bool | None = None,
    on_busy: bool | None = None,
    on_no_answer: bool | None = None,
    unsolicited_mwi: bool | None = None,
    now: float | None = None,
) -> Mailbox:
    """Create the extension's mailbox or change the given fields of it (None = keep as is).

    The PIN is hashed here, so no caller ever stores it in the clear."""
    stamp = time.time() if now is None else now
    changes: dict[str, Any] = {}
    if pin is not None:
        changes["pin_hash"] = hash_password(check_pin(pin)) if pin else ""
    if greeting is not None:
        if greeting not in GREETINGS:
            raise VoicemailError(T("the greeting must be default or custom"), "greeting")
        changes["greeting"] = greeting
    if greeting_file is not None:
        if greeting_file.startswith("/") or ".." in greeting_file.split("/"):
            raise VoicemailError(
                T("the greeting file must be a path inside the data directory"), "greeting"
            )
        changes["greeting_file"] = greeting_file
    if max_seconds is not None:
        low, high = MAX_SECONDS_RANGE
        if not low <= max_seconds <= high:
            raise VoicemailError(
                T("a message may last {low} to {high} seconds", low=low, high=high),
                "max_seconds",
            )
        changes["max_seconds"] = int(max_seconds)
    if email is not None:
        email = email.strip()
        if email and not EMAIL_RE.match(email):
            raise VoicemailError(T("this is not an e-mail address: {email}", email=email), "email")
        changes["email"] = email
    for name, flag in (
        ("enabled", enabled),
        ("attach", attach),
        ("on_busy", on_busy),
        ("on_no_answer", on_no_answer),
        ("unsolicited_mwi", unsolicited_mwi),
    ):
        if flag is not None:
            changes[name] = int(flag)
    with transaction(db) as conn:
        known = conn.execute("SELECT 1 FROM extensions WHERE number = ?", (number,)).fetchone()
        if known is None:
            raise VoicemailError(T("there is no extension {number}", number=number), "mailbox")
        conn.execute(
            "INSERT OR IGNORE INTO voicemail_boxes (number, created_at, updated_at)"
            " VALUES (?, ?, ?)",
            (number, stamp, stamp),
        )
        if (
            changes.get("greeting") == "custom"
            and not changes.get("greeting_file")
            and not conn.execute(
                "SELECT greeting_file FROM voicemail_boxes WHERE number = ?", (number,)
            ).fetchone()[0]
        ):
            raise VoicemailError(T("a custom greeting needs a recorded file"), "greeting")
        if changes:
            sets = ", ".join(f"{name} = ?" for name in changes)
            conn.execute(
                f"UPDATE voicemail_boxes SET {sets}, updated_at = ? WHERE number = ?",
                (*changes.values(), stamp, number),
            )
    found = mailbox(db, number)
    assert found is not None
    return found


def delete_mailbox(db: Database, number: str) -> bool:
    """Remove the mailbox and its message rows (the caller removes the files)."""
    with transaction(db) as conn:
        conn.execute("DELETE FROM voicemail_messages WHERE mailbox = ?", (number,))
        cur = conn.execute("DELETE FROM voicemail_boxes WHERE number = ?", (number,))
    return cur.rowcount > 0


def verify_pin(db: Database, number: str, pin: str) -> bool:
    """Whether `pin` opens the mailbox; False for no mailbox, no PIN set, or a disabled box,
    with the same cost as a real check so a caller cannot tell which mailboxes exist."""
    row = db.execute(
        "SELECT pin_hash, enabled FROM voicemail_boxes WHERE number = ?", (number,)
    ).fetchone()
    if row is None or not row[0] or not row[1]:
        verify_password(pin, "scrypt$16384$8$1$" + "00" * 16 + "$" + "00" * 64)
        return False
    return verify_password(pin, row[0])


def add_message(
    db: Database,
    mailbox_number: str,
    *,
    path: str,
    started_at: float,
    seconds: float,
    caller: str = "",
    caller_name: str = "",
) -> Message:
    """Store a message whose file is complete on disk (`path` relative to the data dir)."""
    if path.startswith("/") or ".." in path.split("/"):
        raise VoicemailError(T("a message's file must be inside the data directory"), "path")
    try:
        with transaction(db) as conn:
            cur = conn.execute(
                "INSERT INTO voicemail_messages"
                " (mailbox, caller, caller_name, started_at, seconds, path)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (mailbox_number, caller, caller_name, started_at, seconds, path),
            )
    except sqlite3.IntegrityError as exc:
        raise VoicemailError(
            T("there is no mailbox {number}", number=mailbox_number), "mailbox"
        ) from exc
    found = message(db, int(cur.lastrowid or 0))
    assert found is not None
    return found


def message(db: Database, message_id: int) -> Message | None:
    row = db.execute(
        f"SELECT {_MSG_COLUMNS} FROM voicemail_messages WHERE id = ?", (message_id,)
    ).fetchone()
    return None if row is None else _message(row)


def messages(
    db: Database, mailbox_number: str, folder: str | None = None, *, deleted: bool = False
) -> list[Message]:
    """The mailbox's messages, new first then saved, oldest first within a folder (the order
    the retrieval menu plays them in)."""
    sql = f"SELECT {_MSG_COLUMNS} FROM voicemail_messages WHERE mailbox = ?"
    params: list[Any] = [mailbox_number]
    if not deleted:
        sql += " AND deleted = 0"
    if folder is not None:
        if folder not in FOLDERS:
            raise VoicemailError(T("no such folder: {folder}", folder=folder), "folder")
        sql += " AND folder = ?"
        params.append(folder)
    sql += " ORDER BY folder = 'saved', started_at, id"
    return [_message(r) for r in db.execute(sql, params).fetchall()]


def move(db: Database, message_id: int, folder: str) -> bool:
    """Put a message into "new" or "saved" (listening and saving it moves it to saved)."""
    if folder not in FOLDERS:
        raise VoicemailError(T("no such folder: {folder}", folder=folder), "folder")
    with transaction(db) as conn:
        cur = conn.execute(
            "UPDATE voicemail_messages SET folder = ? WHERE id = ? AND deleted = 0",
            (folder, message_id),
        )
    return cur.rowcount > 0


def delete_message(db: Database, message_id: int) -> Message | None:
    """Mark a message deleted; returns it (so the caller removes its file) or None."""
    with transaction(db) as conn:
        cur = conn.execute(
            "UPDATE voicemail_messages SET deleted = 1 WHERE id = ? AND deleted = 0",
            (message_id,),
        )
    return message(db, message_id) if cur.rowcount else None


def counts(db: Database, mailbox_number: str) -> tuple[int, int]:
    """(new, saved) messages not deleted: what message-waiting indication reports."""
    row = db.execute(
        "SELECT COALESCE(SUM(folder = 'new'), 0), COALESCE(SUM(folder = 'saved'), 0)"
        " FROM voicemail_messages WHERE mailbox = ? AND deleted = 0",
        (mailbox_number,),
    ).fetchone()
    return int(row[0]), int(row[1])


def message_path(number: str, started_at: float, token: str) -> str:
    """Where a new message's file goes, relative to the data directory:
    `voicemail/NUM/<UTC time>-<token>.ogg` (sortable, unique with the caller's token)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started_at))
    return f"{FOLDER}/{number}/{stamp}-{token}.ogg"


def forget_message(db: Database, message_id: int) -> bool:
    """Remove a deleted message's row once its file is gone."""
    with transaction(db) as conn:
        cur = conn.execute(
            "DELETE FROM voicemail_messages WHERE id = ? AND deleted = 1", (message_id,)
        )
    return cur.rowcount > 0


# --- pages
# For the setup page, the API and the CLI (`appliance.web.voicemail`, `appliance.cli_voicemail`):
# the files go with the rows when a message or a mailbox is deleted there.


def message_file(data_dir: Path, msg: Message) -> Path | None:
    """The message's file, or None when it is missing or its row points outside the voicemail
    folder once resolved (no `..`, no symlink out)."""
    folder = (data_dir / FOLDER).resolve()
    path = (data_dir / msg.path).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        return None
    return path


def remove_message(db: Database, data_dir: Path, message_id: int) -> Message | None:
    """Delete a message: mark it deleted, remove its file, then forget its row. The message,
    or None when there was none (or it was deleted already)."""
    gone = delete_message(db, message_id)
    if gone is None:
        return None
    path = message_file(data_dir, gone)
    if path is not None:
        path.unlink(missing_ok=True)
    forget_message(db, message_id)
    return gone


def remove_mailbox(db: Database, data_dir: Path, number: str) -> bool:
    """Delete a mailbox with its message rows and files, and a greeting recorded by phone in
    its folder (a custom greeting that is a prompt of the Prompts page stays)."""
    box = mailbox(db, number)
    if box is None:
        return False
    files = [message_file(data_dir, m) for m in messages(db, number, deleted=True)]
    if not delete_mailbox(db, number):
        return False
    root = (data_dir / FOLDER).resolve()
    folder = (root / number).resolve()
    if box.greeting_file:
        files.append((data_dir / box.greeting_file).resolve())
    for path in files:
        if path is not None and path.is_relative_to(folder) and path.is_file():
            path.unlink()
    if folder.parent == root and folder.is_dir():
        try:
            folder.rmdir()
        except OSError:  # something else is in it (a greeting being recorded): it stays
            pass
    return True
