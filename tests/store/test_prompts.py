"""The custom prompts' rows, over a real SQLite file: names checked, unique, rows and files
kept together (a refused or failed prompt leaves no file; deleting removes the file), paths kept
relative to the data directory, the migration in place."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance import tts
from appliance.store import prompts
from appliance.store.database import Database
from appliance.store.migrations import MIGRATIONS
from appliance.store.prompts import PromptError, PromptExists


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


def test_the_migration_is_number_10_custom_prompts(db: Database) -> None:
    assert (10, "custom prompts") in [(n, name) for n, name, _ in MIGRATIONS]
    assert "custom_prompts" in db.table_names()


def test_create_synthesises_records_and_lists(db: Database, data: Path) -> None:
    made = prompts.create(db, data, "greeting-day", "ru", "tts", "Добрый день",
                          lambda target: tts.synthesize("Добрый день", "ru", target))  # fmt: skip
    assert made.name == "greeting-day" and made.kind == "tts" and made.text == "Добрый день"
    assert not Path(made.path).is_absolute() and made.path.startswith("prompts/custom/")
    assert made.file(data).is_file()
    assert made.duration == pytest.approx(made.file(data).stat().st_size / 32000, abs=0.01)
    assert prompts.get(db, "greeting-day") == made
    assert [p.name for p in prompts.list_all(db)] == ["greeting-day"]


def test_a_taken_name_is_refused_before_any_synthesis(db: Database, data: Path) -> None:
    prompts.add(db, "hello", "en", "upload", "hello.mp3", "prompts/custom/a.wav", 1.0)
    calls: list[Path] = []

    def make(target: Path) -> float:
        calls.append(target)
        return 1.0

    with pytest.raises(PromptExists, match="a prompt named 'hello' already exists"):
        prompts.create(db, data, "hello", "en", "tts", "x", make)
    assert calls == []


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "a prompt needs a name"),
        ("   ", "a prompt needs a name"),
        ("with space", "may contain only letters, digits"),
        ("-dash", "may contain only letters, digits"),
        ("x" * 41, "longer than 40 characters"),
        ("a/b", "may contain only letters, digits"),
    ],
)
def test_bad_names_are_refused(db: Database, data: Path, name: str, message: str) -> None:
    with pytest.raises(PromptError, match=message) as refused:
        prompts.create(db, data, name, "en", "tts", "x", lambda target: 1.0)
    assert refused.value.field == "name"


def test_names_may_be_russian(db: Database) -> None:
    made = prompts.add(db, "приветствие_1", "ru", "tts", "x", "prompts/custom/b.wav", 1.0)
    assert prompts.get(db, "приветствие_1") == made


def test_bad_language_kind_or_path_are_refused(db: Database) -> None:
    with pytest.raises(PromptError, match="unknown language 'de'") as refused:
        prompts.add(db, "a", "de", "tts", "x", "prompts/custom/a.wav", 1.0)
    assert refused.value.field == "language"
    with pytest.raises(PromptError, match="unknown kind 'record'"):
        prompts.add(db, "a", "en", "record", "x", "prompts/custom/a.wav", 1.0)
    with pytest.raises(PromptError, match="not inside the data directory"):
        prompts.add(db, "a", "en", "tts", "x", "/etc/passwd", 1.0)
    with pytest.raises(PromptError, match="not inside the data directory"):
        prompts.add(db, "a", "en", "tts", "x", "prompts/../../x.wav", 1.0)
    assert prompts.list_all(db) == []


def test_a_failed_synthesis_leaves_no_row_and_no_file(db: Database, data: Path) -> None:
    with pytest.raises(tts.TtsError, match="the text to speak is empty"):
        prompts.create(db, data, "empty", "ru", "tts", "",
                       lambda target: tts.synthesize("", "ru", target))  # fmt: skip
    assert prompts.list_all(db) == []
    assert list((data / prompts.FOLDER).iterdir()) == []


def test_remove_deletes_the_row_and_the_file(db: Database, data: Path) -> None:
    made = prompts.create(db, data, "bye", "en", "tts", "Goodbye",
                          lambda target: tts.synthesize("Goodbye", "en", target))  # fmt: skip
    gone = prompts.remove(db, data, "bye")
    assert gone == made
    assert not made.file(data).exists()
    assert prompts.get(db, "bye") is None
    with pytest.raises(PromptError, match="there is no prompt named 'bye'"):
        prompts.remove(db, data, "bye")
