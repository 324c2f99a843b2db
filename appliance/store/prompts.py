"""The office's own prompts: typed text synthesised offline, or uploaded audio.

A row names a prompt (menus and announcements refer to it by name) and says what it was made
from; the audio is a file under the data directory (`prompts/custom/`, 16 kHz 16-bit mono WAV,
made by `appliance.tts`), whose path is kept relative to the data directory so a restored
backup in another place still finds it. The store checks names and keeps rows and files
together; it does not make audio.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from appliance.i18n import LANGUAGES, T
from appliance.store.database import Database
from appliance.store.db import transaction

KINDS = ("tts", "upload")
MAX_NAME = 40
FOLDER = Path("prompts") / "custom"
"""Where the prompts' files live, relative to the data directory."""

_NAME = re.compile(r"^\w[\w.-]*$")


class PromptError(ValueError):
    """A request about a custom prompt cannot be done. `str()` says why; `field` names what
    was wrong (name, language, kind, text, file)."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


class PromptExists(PromptError):
    """Another prompt has that name already."""


@dataclass(frozen=True, slots=True)
class CustomPrompt:
    id: int
    name: str
    language: str
    kind: str
    """"tts" (synthesised from `text`) or "upload"."""
    text: str
    """What was typed (tts), or the uploaded file's original name (upload)."""
    path: str
    """The audio file, relative to the data directory."""
    duration: float
    """Seconds."""
    created_at: float

    def file(self, data_dir: Path) -> Path:
        return data_dir / self.path


_COLUMNS = "id, name, language, kind, text, path, duration, created_at"


def migrate_tables(db: Database) -> None:
    db.execute(
        """CREATE TABLE custom_prompts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            language TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('tts', 'upload')),
            text TEXT NOT NULL DEFAULT '',
            path TEXT NOT NULL,
            duration REAL NOT NULL,
            created_at REAL NOT NULL
        )"""
    )


def _row(row: tuple[object, ...]) -> CustomPrompt:
    id_, name, language, kind, text, path, duration, created_at = row
    return CustomPrompt(
        int(str(id_)), str(name), str(language), str(kind), str(text), str(path),
        float(str(duration)), float(str(created_at)),
    )  # fmt: skip


def check_name(name: str) -> str:
    """The name as stored (stripped), or PromptError: letters, digits, "_", "-", "." (no
    spaces: menus refer to it), up to MAX_NAME characters."""
    name = name.strip()
    if not name:
        raise PromptError(T("a prompt needs a name"))
    if len(name) > MAX_NAME:
        raise PromptError(
            T("the name {name!r} is longer than {limit} characters", name=name, limit=MAX_NAME)
        )
    if not _NAME.match(name):
        raise PromptError(
            T(
                'the name {name!r} may contain only letters, digits, "_", "-" and ".",'
                " and starts with a letter or a digit",
                name=name,
            )
        )
    return name


def check_language(language: str) -> str:
    if language not in LANGUAGES:
        raise PromptError(
            T("unknown language {language!r}; known: {known}", language=language,
              known=", ".join(LANGUAGES)),
            "language",
        )  # fmt: skip
    return language


def new_file() -> Path:
    """A fresh relative path for a prompt's audio (random, so a name may hold any letters and
    a replaced prompt never overwrites the file a call is playing)."""
    return FOLDER / f"{secrets.token_hex(8)}.wav"


def list_all(db: Database) -> list[CustomPrompt]:
    rows = db.execute(f"SELECT {_COLUMNS} FROM custom_prompts ORDER BY name").fetchall()
    return [_row(r) for r in rows]


def get(db: Database, name: str) -> CustomPrompt | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM custom_prompts WHERE name = ?", [name]).fetchone()
    return None if row is None else _row(row)


def add(
    db: Database, name: str, language: str, kind: str, text: str, path: Path | str,
    duration: float,
) -> CustomPrompt:  # fmt: skip
    """Record a prompt whose file (`path`, relative to the data directory) is already made."""
    name = check_name(name)
    check_language(language)
    if kind not in KINDS:
        raise PromptError(
            T("unknown kind {kind!r}; known: {known}", kind=kind, known=", ".join(KINDS)), "kind"
        )
    relative = Path(path)
    if relative.is_absolute() or ".." in relative.parts:
        raise PromptError(T("the file {path} is not inside the data directory", path=str(path)),
                          "file")  # fmt: skip
    with transaction(db):
        if get(db, name) is not None:
            raise PromptExists(T("a prompt named {name!r} already exists", name=name))
        cursor = db.execute(
            "INSERT INTO custom_prompts (name, language, kind, text, path, duration, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [name, language, kind, text, relative.as_posix(), duration, time.time()],
        )
        prompt_id = cursor.lastrowid
    found = db.execute(f"SELECT {_COLUMNS} FROM custom_prompts WHERE id = ?", [prompt_id])
    return _row(found.fetchone())


def create(
    db: Database, data_dir: Path, name: str, language: str, kind: str, text: str,
    make: Callable[[Path], float],
) -> CustomPrompt:  # fmt: skip
    """Check the name, have `make(file)` write the audio (returning its seconds: the caller
    brings the synthesiser or the converter, the store knows no audio), then record it. A
    refused name costs no synthesis; a failed insert leaves no file behind."""
    name = check_name(name)
    check_language(language)
    if get(db, name) is not None:
        raise PromptExists(T("a prompt named {name!r} already exists", name=name))
    relative = new_file()
    target = data_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        duration = make(target)
        return add(db, name, language, kind, text, relative, duration)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def remove(db: Database, data_dir: Path, name: str) -> CustomPrompt:
    """Delete the prompt `name` and its file; PromptError when there is none."""
    with transaction(db):
        prompt = get(db, name)
        if prompt is None:
            raise PromptError(T("there is no prompt named {name!r}", name=name))
        db.execute("DELETE FROM custom_prompts WHERE id = ?", [prompt.id])
    prompt.file(data_dir).unlink(missing_ok=True)
    return prompt
