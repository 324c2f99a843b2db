"""The prompt packs and the grammar of spoken values: Russian counted forms and gender
("1 минута", "2 минуты", "5 минут", "21 минута"), masculine ordinals ("третий"), English; every
path returned exists and is audio the media engine plays; words the Russian pack lacks are
synthesised by the real espeak-ng once into the cache and reused."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from appliance.media import prompts
from appliance.media.prompts import PromptError, Speaker, plural_ru
from appliance.media.sources import prompt, sequence


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("var")


@pytest.fixture(scope="module")
def ru(data: Path) -> Speaker:
    return Speaker("ru", data)


@pytest.fixture(scope="module")
def en(data: Path) -> Speaker:
    return Speaker("en", data)


def words(paths: list[Path]) -> list[str]:
    """What the files say: the pack's name ("digits/20") or the synthesised word ("одна");
    and each one exists and is a non-empty WAV file."""
    said = []
    for path in paths:
        assert path.is_file(), path
        with wave.open(str(path), "rb") as w:
            assert w.getnframes() > 0, path
        if path.stem.startswith("w-"):
            assert "prompts/cache" in path.as_posix()
            said.append(bytes.fromhex(path.stem[2:]).decode())
        else:
            said.append(f"{path.parent.name}/{path.stem}")
    return said


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, ["одна", "минута"]),
        (2, ["две", "минуты"]),
        (5, ["digits/5", "минут"]),
        (11, ["digits/11", "минут"]),
        (21, ["digits/20", "одна", "минута"]),
        (22, ["digits/20", "две", "минуты"]),
        (25, ["digits/20", "digits/5", "минут"]),
        (101, ["сто", "одна", "минута"]),
        (112, ["сто", "digits/12", "минут"]),
        (0, ["digits/0", "минут"]),
    ],
)
def test_russian_minutes_agree_in_number_and_gender(
    ru: Speaker, n: int, expected: list[str]
) -> None:
    assert words(ru.count(n, "minutes")) == expected


def test_russian_hours_are_masculine_and_seconds_feminine(ru: Speaker) -> None:
    assert words(ru.count(1, "hours")) == ["digits/1", "час"]
    assert words(ru.count(3, "hours")) == ["digits/3", "часа"]
    assert words(ru.count(5, "hours")) == ["digits/5", "часов"]
    assert words(ru.count(2, "seconds")) == ["две", "секунды"]
    assert words(ru.duration(3665)) == ["digits/1", "час", "одна", "минута", "digits/5", "секунд"]


def test_russian_gender_of_one_and_two(ru: Speaker) -> None:
    assert words(ru.number(1, "m")) == ["digits/1"]
    assert words(ru.number(1, "n")) == ["digits/1n"]
    assert words(ru.number(1, "f")) == ["одна"]
    assert words(ru.number(2, "m")) == ["digits/2"]
    assert words(ru.number(2, "n")) == ["digits/2n"]
    assert words(ru.number(2, "f")) == ["две"]
    assert words(ru.number(32, "f")) == ["digits/30", "две"]
    assert words(ru.number(7, "f")) == ["digits/7"]  # 3 and up have one form


def test_russian_thousands_are_feminine_and_counted(ru: Speaker) -> None:
    assert words(ru.number(1000)) == ["одна", "тысяча"]
    assert words(ru.number(2001)) == ["две", "тысячи", "digits/1"]
    assert words(ru.number(5000)) == ["digits/5", "тысяч"]
    assert words(ru.number(2_345_678)) == [
        "digits/2", "миллиона", "триста", "digits/40", "digits/5", "тысяч", "шестьсот",
        "digits/70", "digits/8",
    ]  # fmt: skip
    assert words(ru.number(-3)) == ["digits/minus", "digits/3"]


ORDINALS_RU = ["первый", "второй", "третий", "четвёртый", "пятый", "шестой", "седьмой",
               "восьмой", "девятый", "десятый"]  # fmt: skip


@pytest.mark.parametrize("n", range(1, 11))
def test_russian_ordinals_1_to_10_are_masculine_nominative(ru: Speaker, n: int) -> None:
    assert words(ru.ordinal(n)) == [ORDINALS_RU[n - 1]]


def test_russian_compound_ordinals(ru: Speaker) -> None:
    assert words(ru.ordinal(23)) == ["digits/20", "третий"]
    assert words(ru.ordinal(40)) == ["сороковой"]
    assert words(ru.ordinal(100)) == ["сотый"]
    assert words(ru.ordinal(121)) == ["сто", "digits/20", "первый"]


def test_plural_forms() -> None:
    assert [plural_ru(n) for n in (1, 2, 4, 5, 11, 12, 14, 21, 22, 25, 101, 111, 1001)] == [
        0, 1, 1, 2, 2, 2, 2, 0, 1, 2, 0, 2, 0,
    ]  # fmt: skip


def test_english_numbers_ordinals_and_durations(en: Speaker) -> None:
    assert words(en.number(101)) == ["digits/1", "digits/hundred", "digits/1"]
    assert words(en.number(2025)) == ["digits/2", "digits/thousand", "digits/20", "digits/5"]
    assert words(en.ordinal(3)) == ["digits/h-3"]
    assert words(en.ordinal(21)) == ["digits/20", "digits/h-1"]
    assert words(en.ordinal(100)) == ["digits/1", "digits/h-hundred"]
    assert words(en.count(1, "minutes")) == ["digits/1", "en_US_f_Allison/minute"]
    assert words(en.count(2, "minutes")) == ["digits/2", "en_US_f_Allison/minutes"]
    assert words(en.count(1, "seconds")) == ["digits/1", "en_US_f_Allison/second"]
    assert words(en.count(1, "hours")) == ["digits/1", "hour"]  # the pack has only "hours"
    assert words(en.count(3, "hours")) == ["digits/3", "en_US_f_Allison/hours"]


def test_digits_one_by_one(ru: Speaker, en: Speaker) -> None:
    assert words(ru.digits("10*#")) == ["digits/1", "digits/0", "digits/star", "digits/pound"]
    assert words(en.digits("42")) == ["digits/4", "digits/2"]
    with pytest.raises(PromptError, match="'x' is not a digit"):
        en.digits("4x")


def test_refusals(ru: Speaker) -> None:
    with pytest.raises(PromptError, match="ordinals from 1 to 999 can be spoken, not 0"):
        ru.ordinal(0)
    with pytest.raises(PromptError, match="too large"):
        ru.number(10**10)
    with pytest.raises(PromptError, match="cannot be negative"):
        ru.count(-1, "minutes")
    with pytest.raises(PromptError, match="no prompt pack for language 'de'"):
        prompts.pack_dir("de")


def test_a_missing_word_is_synthesised_once_and_reused(tmp_path: Path) -> None:
    made: list[str] = []

    def counting(text: str, language: str, target: Path) -> float:
        made.append(text)
        from appliance.tts import synthesize

        return synthesize(text, language, target)

    speaker = Speaker("ru", tmp_path, synthesize=counting)
    first = speaker.count(21, "minutes")
    second = Speaker("ru", tmp_path, synthesize=counting).count(21, "minutes")
    assert first == second
    assert sorted(made) == ["минута", "одна"]  # the second speaker found them in the cache
    with wave.open(str(first[-1]), "rb") as w:
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 500  # speech, not silence


def test_pack_prompts_by_name_and_the_root_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert prompts.path("vm-intro", "ru").is_file()
    assert prompts.path("digits/5", "en").parent.parent.name == "en_US_f_Allison"
    with pytest.raises(PromptError, match="there is no prompt 'no-such' in the en pack"):
        prompts.path("no-such", "en")
    with pytest.raises(PromptError, match="is not a prompt name"):
        prompts.path("../../etc/passwd", "en")
    monkeypatch.setenv(prompts.ROOT_ENV, str(tmp_path))
    with pytest.raises(PromptError, match="is not installed"):
        prompts.path("vm-intro", "ru")
    (tmp_path / "ru_RU_f_IvrvoiceRU").mkdir()
    (tmp_path / "ru_RU_f_IvrvoiceRU" / "hello.wav").write_bytes(b"")
    assert prompts.path("hello", "ru") == tmp_path / "ru_RU_f_IvrvoiceRU" / "hello.wav"


def test_the_media_engine_plays_what_say_returns(ru: Speaker) -> None:
    """The sequence decodes to audio as long as the files together, and it is not silence."""
    paths = ru.count(22, "minutes")
    total = 0.0
    for path in paths:
        with wave.open(str(path), "rb") as w:
            total += w.getnframes() / w.getframerate()
    source = sequence(paths)
    frames = []
    for _ in range(10_000):
        frame = source.read()
        if frame is None:
            break
        frames.append(frame)
    pcm = np.frombuffer(b"".join(frames), dtype="<i2")
    assert abs(len(pcm) / source.rate - total) < 0.1 * len(paths)
    assert np.abs(pcm).max() > 1000
    assert prompt(paths[0]).rate in (8000, 16000)
