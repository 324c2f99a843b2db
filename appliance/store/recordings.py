"""Call recordings: the files' rows, the rules that decide which calls are recorded, and the
storage settings (quota, free-space floor, default retention, the on-demand feature code).

A recording is a file under the data directory (`recordings/YYYY/MM/DD/CALLID-N.ogg`), stereo,
the caller left and the callee right; its row is written by the core when the file is complete
on disk, and kept (with `deleted_at` and the reason) when the file is deleted, so the Calls page
can say why a recording is gone. `call_id` is the CDR's id; there is no foreign key, because
call records are pruned on their own schedule and a recording may outlive its CDR.

Rules match a call by one fact: an extension (either party), a DID, an outbound route or trunk,
or the direction. The most specific kind wins (extension, then DID, then route, then
direction), and of one kind the oldest rule; a call no rule matches is not recorded."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.i18n import T
from appliance.store import settings
from appliance.store.database import Database
from appliance.store.db import transaction

DAY = 86_400.0
MIB = 1 << 20
FOLDER = "recordings"
"""Where recordings live, relative to the data directory."""

MATCH_KINDS = ("extension", "did", "route", "direction")
"""What a rule matches on, most specific first: the order rules are tried in."""
DIRECTIONS = ("inbound", "outbound", "internal")
DELETE_REASONS = ("retention", "quota", "floor", "user", "missing")
FORMATS = ("opus", "flac", "wav")
SUFFIXES = {"opus": ".ogg", "flac": ".flac", "wav": ".wav"}
MIMETYPES = {".ogg": "audio/ogg", ".flac": "audio/flac", ".wav": "audio/wav"}


class RecordingError(ValueError):
    """A recording rule or setting cannot be accepted; `str()` says why, `field` names what."""

    def __init__(self, message: str, field: str = "value") -> None:
        super().__init__(message)
        self.field = field


class RuleExists(RecordingError):
    """A rule for the same match and value is there already."""


# -- settings -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SettingSpec:
    key: str
    default: str
    help: str
    low: int = 0
    high: int = 0
    """For whole numbers: the range; low == high == 0 for text settings."""


SETTINGS: dict[str, SettingSpec] = {
    s.key: s
    for s in (
        SettingSpec(
            "recording.quota_mib", "2048",
            T("most space all recordings may take (MiB); 0: no quota"), 0, 1_048_576,
        ),
        SettingSpec(
            "recording.floor_mib", "256",
            T("free space the disk always keeps: oldest recordings are deleted first (MiB)"),
            0, 1_048_576,
        ),
        SettingSpec(
            "recording.retention_days", "90",
            T("days a recording is kept unless its rule says otherwise; 0: for ever"), 0, 36_500,
        ),
        SettingSpec(
            "recording.viewers_listen", "0",
            T("1: users with the viewer role may play and download recordings too"), 0, 1,
        ),
        SettingSpec("recording.feature_code", "*1", T("code dialled during a call to start or"
                                                      " stop recording it")),
        SettingSpec("recording.format", "opus", T("file format: opus, flac or wav")),
    )
}  # fmt: skip

FEATURE_CODE_RE = re.compile(r"[*#][0-9*#]{1,3}")


def validate_setting(spec: SettingSpec, text: str) -> str:
    """The value as stored, or RecordingError saying what is wrong with `text`."""
    text = text.strip()
    if spec.key == "recording.feature_code":
        if not FEATURE_CODE_RE.fullmatch(text):
            raise RecordingError(
                T("the feature code must be * or # and 1 to 3 more digits, * or #, not {text!r}",
                  text=text), spec.key,
            )  # fmt: skip
        return text
    if spec.key == "recording.format":
        if text not in FORMATS:
            raise RecordingError(T("the format must be opus, flac or wav"), spec.key)
        return text
    try:
        value = int(text)
    except ValueError:
        raise RecordingError(
            T("{key} must be a whole number, not {text!r}", key=spec.key, text=text), spec.key
        ) from None
    if not spec.low <= value <= spec.high:
        raise RecordingError(
            T("{key} must be between {low} and {high}", key=spec.key, low=spec.low,
              high=spec.high), spec.key,
        )  # fmt: skip
    return str(value)


def get_setting(db: Database, key: str) -> str:
    spec = SETTINGS[key]
    row = db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return spec.default if row is None else str(row[0])


def get_int(db: Database, key: str) -> int:
    return int(get_setting(db, key))


def set_setting(db: Database, key: str, text: str) -> str:
    """Validate and store one recording setting; returns the value as stored."""
    spec = SETTINGS.get(key)
    if spec is None:
        raise RecordingError(
            T("unknown setting {key!r}; known: {known}", key=key, known=", ".join(SETTINGS)),
            "key",
        )
    value = validate_setting(spec, text)
    if key == "recording.feature_code":
        _check_code_free(db, value)
    db.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [key, value],
    )
    return value


def _check_code_free(db: Database, code: str) -> None:
    """The recording code may not be another feature's (`features.*`): a phone dialling it
    would reach one of the two only."""
    for key, other in settings.feature_codes(db).items():
        if key != "recording.feature_code" and other == code:
            raise RecordingError(
                T("{key}: {code} is already the feature code of {other}",
                  key="recording.feature_code", code=code, other=key), "recording.feature_code",
            )  # fmt: skip


def all_settings(db: Database) -> dict[str, str]:
    return {key: get_setting(db, key) for key in SETTINGS}


@dataclass(frozen=True, slots=True)
class Storage:
    """The storage rules as the retention sweep uses them, in bytes and days."""

    quota_bytes: int
    """0: no quota."""
    floor_bytes: int
    retention_days: int
    """The default for recordings whose rule says none; 0 keeps them for ever."""

    @classmethod
    def read(cls, db: Database) -> Storage:
        return cls(
            get_int(db, "recording.quota_mib") * MIB,
            get_int(db, "recording.floor_mib") * MIB,
            get_int(db, "recording.retention_days"),
        )


# -- rules ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    id: int
    match: str
    """One of MATCH_KINDS."""
    value: str
    """The extension, DID, route (or trunk) name, or direction it matches."""
    record: bool
    """False: calls it matches are not recorded (an exception to a broader rule)."""
    retention_days: int | None
    """None: the default (`recording.retention_days`)."""
    consent: bool
    """Play the consent announcement to the caller of an inbound call before connecting."""
    created_at: float


@dataclass(frozen=True, slots=True)
class Facts:
    """What a rule can match about a call: both parties' extensions, its DID, the route or
    trunk it went out or came in on, its direction."""

    extensions: tuple[str, ...] = ()
    did: str | None = None
    routes: tuple[str, ...] = ()
    direction: str = "internal"


_RULE_COLUMNS = "id, match, value, record, retention_days, consent, created_at"


def _rule(row: Sequence[Any]) -> Rule:
    id_, match, value, record, days, consent, created = row
    return Rule(id_, match, value, bool(record), days, bool(consent), created)


def rules(db: Database) -> list[Rule]:
    """Every rule, in the order they are tried (most specific kind first, then oldest)."""
    rows = db.execute(f"SELECT {_RULE_COLUMNS} FROM recording_rules ORDER BY id").fetchall()
    found = [_rule(row) for row in rows]
    return sorted(found, key=lambda r: (MATCH_KINDS.index(r.match), r.id))


def get_rule(db: Database, rule_id: int) -> Rule | None:
    row = db.execute(
        f"SELECT {_RULE_COLUMNS} FROM recording_rules WHERE id = ?", [rule_id]
    ).fetchone()
    return None if row is None else _rule(row)


def add_rule(
    db: Database, match: str, value: str, *, record: bool = True,
    retention_days: int | None = None, consent: bool = False, now: float | None = None,
) -> Rule:  # fmt: skip
    """Validate and store a rule; a second rule for the same match and value is refused."""
    match = match.strip().lower()
    value = value.strip()
    if match not in MATCH_KINDS:
        raise RecordingError(
            T("a rule matches one of {kinds}, not {match!r}", kinds=", ".join(MATCH_KINDS),
              match=match), "match",
        )  # fmt: skip
    if match == "direction":
        value = value.lower()
        if value not in DIRECTIONS:
            raise RecordingError(
                T("the direction must be one of {directions}", directions=", ".join(DIRECTIONS))
            )
    elif match in ("extension", "did"):
        if not re.fullmatch(r"\+?[0-9]{2,20}", value):
            raise RecordingError(T("{value!r} is not a phone number", value=value))
    elif not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", value):
        raise RecordingError(T("a route or trunk name is 1 to 32 letters, digits, '.', '_' or '-'"))
    if retention_days is not None and not 0 <= retention_days <= 36_500:
        raise RecordingError(T("the retention must be between 0 and 36500 days"), "retention_days")
    with transaction(db) as conn:
        taken = conn.execute(
            "SELECT id FROM recording_rules WHERE match = ? AND value = ?", [match, value]
        ).fetchone()
        if taken is not None:
            raise RuleExists(
                T("rule {id} already matches {match} {value}", id=taken[0], match=match,
                  value=value),
            )  # fmt: skip
        cur = conn.execute(
            "INSERT INTO recording_rules (match, value, record, retention_days, consent,"
            " created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [match, value, int(record), retention_days, int(consent),
             time.time() if now is None else now],
        )  # fmt: skip
        rule_id = int(cur.lastrowid or 0)
    found = get_rule(db, rule_id)
    assert found is not None
    return found


def remove_rule(db: Database, rule_id: int) -> None:
    cur = db.execute("DELETE FROM recording_rules WHERE id = ?", [rule_id])
    if cur.rowcount != 1:
        raise RecordingError(T("there is no recording rule {id}", id=rule_id), "id")


@dataclass(frozen=True, slots=True)
class Decision:
    record: bool
    rule: Rule | None


def decide(found: Iterable[Rule], facts: Facts) -> Decision:
    """Whether a call with these facts is recorded, and by which rule (`rules()` order: the
    first rule that matches decides, so an extension's "no" beats a direction's "yes")."""
    for rule in found:
        if (
            (rule.match == "extension" and rule.value in facts.extensions)
            or (rule.match == "did" and facts.did is not None and rule.value == facts.did)
            or (rule.match == "route" and rule.value in facts.routes)
            or (rule.match == "direction" and rule.value == facts.direction)
        ):
            return Decision(rule.record, rule)
    return Decision(False, None)


# -- recordings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Recording:
    id: int
    call_id: str
    path: str
    """Relative to the data directory."""
    started_at: float
    seconds: float
    bytes: int
    rule: int | None
    deleted_at: float | None
    deleted_reason: str | None

    def file(self, data_dir: Path) -> Path:
        return data_dir / self.path

    @property
    def mimetype(self) -> str:
        return MIMETYPES.get(Path(self.path).suffix, "application/octet-stream")


_COLUMNS = "id, call_id, path, started_at, seconds, bytes, rule, deleted_at, deleted_reason"


def _recording(row: Sequence[Any]) -> Recording:
    return Recording(*row)


def relative_path(call_id: str, started_at: float, part: int, fmt: str = "opus") -> str:
    """Where a call's `part`-th recording goes: by day (UTC), so no folder grows without end."""
    day = time.strftime("%Y/%m/%d", time.gmtime(started_at))
    return f"{FOLDER}/{day}/{call_id}-{part}{SUFFIXES[fmt]}"


def add(
    db: Database, call_id: str, path: str, started_at: float, seconds: float, size: int,
    rule: int | None = None,
) -> Recording:  # fmt: skip
    """Store a finished recording's row (once per path: a repeat, as crash recovery may make,
    returns the row already there)."""
    with transaction(db) as conn:
        conn.execute(
            "INSERT INTO recordings (call_id, path, started_at, seconds, bytes, rule)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (path) DO NOTHING",
            [call_id, path, started_at, seconds, size, rule],
        )
        row = conn.execute(f"SELECT {_COLUMNS} FROM recordings WHERE path = ?", [path]).fetchone()
    return _recording(row)


def get(db: Database, recording_id: int) -> Recording | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM recordings WHERE id = ?", [recording_id]).fetchone()
    return None if row is None else _recording(row)


def by_path(db: Database, path: str) -> Recording | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM recordings WHERE path = ?", [path]).fetchone()
    return None if row is None else _recording(row)


def listing(
    db: Database, *, call_id: str | None = None, include_deleted: bool = False,
    limit: int = 100, offset: int = 0,
) -> list[Recording]:  # fmt: skip
    """Recordings, the newest first."""
    clauses: list[str] = []
    args: list[Any] = []
    if call_id is not None:
        clauses.append("call_id = ?")
        args.append(call_id)
    if not include_deleted:
        clauses.append("deleted_at IS NULL")
    where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM recordings{where} ORDER BY started_at DESC, id DESC"
        " LIMIT ? OFFSET ?",
        [*args, limit, offset],
    ).fetchall()
    return [_recording(row) for row in rows]


def for_calls(db: Database, call_ids: Iterable[str]) -> dict[str, list[Recording]]:
    """The kept recordings of these calls (a page of the Calls list), by call, in order."""
    ids = list(call_ids)
    found: dict[str, list[Recording]] = {}
    if not ids:
        return found
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM recordings WHERE deleted_at IS NULL AND call_id IN"
        f" ({', '.join('?' * len(ids))}) ORDER BY started_at, id",
        ids,
    ).fetchall()
    for row in rows:
        rec = _recording(row)
        found.setdefault(rec.call_id, []).append(rec)
    return found


def kept_bytes(db: Database) -> int:
    """What the recordings not deleted take on disk, as their rows say."""
    (total,) = db.execute(
        "SELECT COALESCE(SUM(bytes), 0) FROM recordings WHERE deleted_at IS NULL"
    ).fetchone()
    return int(total)


def expired(db: Database, default_days: int, now: float, limit: int = 1000) -> list[Recording]:
    """Kept recordings past their retention (their rule's, else `default_days`; 0 = for
    ever), the oldest first."""
    rows = db.execute(
        f"SELECT {', '.join('r.' + c for c in _COLUMNS.split(', '))} FROM recordings r"
        " LEFT JOIN recording_rules u ON u.id = r.rule"
        " WHERE r.deleted_at IS NULL AND COALESCE(u.retention_days, ?) > 0"
        " AND r.started_at < ? - COALESCE(u.retention_days, ?) * ?"
        " ORDER BY r.started_at, r.id LIMIT ?",
        [default_days, now, default_days, DAY, limit],
    ).fetchall()
    return [_recording(row) for row in rows]


def oldest(db: Database, limit: int = 100) -> list[Recording]:
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM recordings WHERE deleted_at IS NULL"
        " ORDER BY started_at, id LIMIT ?",
        [limit],
    ).fetchall()
    return [_recording(row) for row in rows]


def mark_deleted(db: Database, recording_id: int, reason: str, now: float | None = None) -> bool:
    """Record that a recording's file is gone and why; False if it was already."""
    assert reason in DELETE_REASONS
    cur = db.execute(
        "UPDATE recordings SET deleted_at = ?, deleted_reason = ? WHERE id = ?"
        " AND deleted_at IS NULL",
        [time.time() if now is None else now, reason, recording_id],
    )
    return cur.rowcount == 1


def delete(db: Database, data_dir: Path, recording_id: int, reason: str = "user") -> bool:
    """Delete a recording's file and mark its row; False when there was none to delete."""
    rec = get(db, recording_id)
    if rec is None or rec.deleted_at is not None:
        return False
    rec.file(data_dir).unlink(missing_ok=True)
    return mark_deleted(db, recording_id, reason)


# -- migration 11 ---------------------------------------------------------------------------


def migrate_tables(db: Database) -> None:
    """The tables of migration 11 (appliance.store.migrations calls this)."""
    db.execute(
        """CREATE TABLE recording_rules (
            id INTEGER PRIMARY KEY,
            match TEXT NOT NULL CHECK (match IN ('extension', 'did', 'route', 'direction')),
            value TEXT NOT NULL,
            record INTEGER NOT NULL DEFAULT 1,
            retention_days INTEGER,
            consent INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            UNIQUE (match, value)
        )"""
    )
    db.execute(
        """CREATE TABLE recordings (
            id INTEGER PRIMARY KEY,
            call_id TEXT NOT NULL,
            path TEXT NOT NULL UNIQUE,
            started_at REAL NOT NULL,
            seconds REAL NOT NULL,
            bytes INTEGER NOT NULL,
            rule INTEGER,
            deleted_at REAL,
            deleted_reason TEXT
        )"""
    )
    db.execute("CREATE INDEX recordings_call ON recordings (call_id)")
    db.execute("CREATE INDEX recordings_kept ON recordings (deleted_at, started_at)")
