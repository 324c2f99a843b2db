"""What retrieval says, from the real prompt packs: "you have N new messages" agreeing in
number, and in Russian in gender and case ("одно новое сообщение", "два новых сообщения",
"пять новых сообщений"); the default greeting naming the extension."""

from __future__ import annotations

from pathlib import Path

import pytest

from appliance.media import prompts
from appliance.pbx.destinations.voicemail_main import count_phrase


def names(paths: list[Path]) -> list[str]:
    return [f"{p.parent.name}/{p.stem}" if p.parent.name == "digits" else p.stem for p in paths]


@pytest.mark.parametrize(
    ("new", "old", "said"),
    [
        (1, 0, ["vm-youhave", "digits/1n", "vm-newn", "vm-message"]),
        (2, 0, ["vm-youhave", "digits/2n", "vm-newx", "vm-messagex1"]),
        (5, 0, ["vm-youhave", "digits/5", "vm-newx", "vm-messagex2"]),
        (0, 3, ["vm-youhave", "digits/3", "vm-oldx", "vm-messagex1"]),
        (0, 0, ["vm-youhave", "vm-no", "vm-messagex2"]),
    ],
)
def test_russian_counts(tmp_path: Path, new: int, old: int, said: list[str]) -> None:
    speaker = prompts.Speaker("ru", tmp_path)
    assert names(count_phrase("ru", speaker, new, old)) == said


def test_english_counts(tmp_path: Path) -> None:
    speaker = prompts.Speaker("en", tmp_path)
    assert names(count_phrase("en", speaker, 1, 2)) == [
        "vm-youhave", "digits/1", "vm-INBOX", "vm-message", "vm-and", "digits/2", "vm-Old",
        "vm-messages",
    ]  # fmt: skip
