"""The recorded prompt packs, and numbers, digits, ordinals and durations spoken from them.

The packs are Debian's `asterisk-core-sounds-ru-wav` (IvrvoiceRU, CC BY 3.0) and
`asterisk-core-sounds-en-wav` (Allison Smith, CC BY-SA 3.0) under /usr/share/asterisk/sounds;
the office's language picks one. `PBX_SOUNDS_ROOT` (or the internal setting
`media.sounds_root`) points elsewhere, for a box that keeps them on another partition.

The "say" functions return LISTS OF FILE PATHS, to be played one after another
(`media.sources.sequence`). Russian needs words the Russian pack does not have in the right form:
it has 1 and 2 only as masculine ("один", "два", digits/1, digits/2) and neuter ("одно", "два",
digits/1n, digits/2n: the forms Asterisk's voicemail uses for "сообщение"), no feminine
("одна", "две": for "минута", "тысяча"), no hundreds ("двести", "пятьсот"), no counted forms of
"минута", "секунда", "час", "тысяча", "миллион", and its ordinals (digits/h-N) are the neuter
forms of dates ("первое"), not the masculine "вы третий в очереди". Those words are synthesised
with espeak-ng once, into the data directory's prompt cache (`prompts/cache/ru/`), and reused.
English takes everything from its pack.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from appliance import tts
from appliance.i18n import T

logger = logging.getLogger(__name__)

DEFAULT_ROOT = Path("/usr/share/asterisk/sounds")
ROOT_ENV = "PBX_SOUNDS_ROOT"
PACKS = {"ru": "ru_RU_f_IvrvoiceRU", "en": "en_US_f_Allison"}
"""The pack's directory under the root, for each language of the box."""

Gender = Literal["m", "f", "n"]
Unit = Literal["hours", "minutes", "seconds"]
UNITS: tuple[Unit, ...] = ("hours", "minutes", "seconds")


class PromptError(LookupError):
    """A prompt cannot be found or a value cannot be spoken; `str()` says why."""


def sounds_root(override: str | Path | None = None) -> Path:
    """Where the packs are: `override` (a setting), else $PBX_SOUNDS_ROOT, else Debian's place."""
    if override:
        return Path(override)
    env = os.environ.get(ROOT_ENV)
    return Path(env) if env else DEFAULT_ROOT


def pack_dir(language: str, root: str | Path | None = None) -> Path:
    """The directory of `language`'s pack; PromptError when the language has none or the pack
    is not installed."""
    if language not in PACKS:
        raise PromptError(
            T("no prompt pack for language {language!r}; known: {known}", language=language,
              known=", ".join(PACKS))
        )  # fmt: skip
    folder = sounds_root(root) / PACKS[language]
    if not folder.is_dir():
        raise PromptError(
            T("the prompt pack {folder} is not installed (Debian: asterisk-core-sounds-{lang}-wav)",
              folder=str(folder), lang=language)
        )  # fmt: skip
    return folder


def path(name: str, language: str, root: str | Path | None = None) -> Path:
    """The file of prompt `name` ("vm-intro", "digits/5") in `language`'s pack."""
    if not name or name.startswith("/") or ".." in name.split("/"):
        raise PromptError(T("{name!r} is not a prompt name", name=name))
    found = pack_dir(language, root) / f"{name}.wav"
    if not found.is_file():
        raise PromptError(
            T("there is no prompt {name!r} in the {language} pack", name=name, language=language)
        )
    return found


def plural_ru(n: int) -> int:
    """Which Russian counted form follows `n`: 0 "минута" (1, 21, 101), 1 "минуты" (2-4, 22),
    2 "минут" (5-20, 25, 111)."""
    n = abs(n)
    if n % 10 == 1 and n % 100 != 11:
        return 0
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return 1
    return 2


_RU_HUNDREDS = ("", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
                "восемьсот", "девятьсот")  # fmt: skip
_RU_FEMININE = {1: "одна", 2: "две"}
_RU_NOUNS: dict[str, tuple[str, str, str]] = {
    "hours": ("час", "часа", "часов"),
    "minutes": ("минута", "минуты", "минут"),
    "seconds": ("секунда", "секунды", "секунд"),
    "thousand": ("тысяча", "тысячи", "тысяч"),
    "million": ("миллион", "миллиона", "миллионов"),
}
_RU_UNIT_GENDER: dict[str, Gender] = {"hours": "m", "minutes": "f", "seconds": "f"}
_RU_ORDINALS = {
    1: "первый", 2: "второй", 3: "третий", 4: "четвёртый", 5: "пятый", 6: "шестой",
    7: "седьмой", 8: "восьмой", 9: "девятый", 10: "десятый", 11: "одиннадцатый",
    12: "двенадцатый", 13: "тринадцатый", 14: "четырнадцатый", 15: "пятнадцатый",
    16: "шестнадцатый", 17: "семнадцатый", 18: "восемнадцатый", 19: "девятнадцатый",
    20: "двадцатый", 30: "тридцатый", 40: "сороковой", 50: "пятидесятый", 60: "шестидесятый",
    70: "семидесятый", 80: "восьмидесятый", 90: "девяностый", 100: "сотый", 200: "двухсотый",
    300: "трёхсотый", 400: "четырёхсотый", 500: "пятисотый", 600: "шестисотый",
    700: "семисотый", 800: "восьмисотый", 900: "девятисотый",
}  # fmt: skip
MAX_NUMBER = 999_999_999
MAX_ORDINAL = 999


class Speaker:
    """Speaks values in one language from its pack, synthesising what the pack lacks into
    `data_dir/prompts/cache/<language>/` (made once, then reused)."""

    def __init__(
        self,
        language: str,
        data_dir: Path,
        root: str | Path | None = None,
        synthesize: Callable[[str, str, Path], float] = tts.synthesize,
    ) -> None:
        self.language = language
        self.pack = pack_dir(language, root)
        self.cache = data_dir / "prompts" / "cache" / language
        self._synthesize = synthesize

    # -- the files ----------------------------------------------------------------------------

    def file(self, name: str) -> Path:
        found = self.pack / f"{name}.wav"
        if not found.is_file():
            raise PromptError(
                T("there is no prompt {name!r} in the {language} pack", name=name,
                  language=self.language)
            )  # fmt: skip
        return found

    def word(self, text: str) -> Path:
        """A word the pack lacks, spoken by espeak-ng; made once into the cache."""
        target = self.cache / f"w-{text.encode('utf-8').hex()}.wav"
        if not target.is_file():
            logger.info("synthesising the missing %s word %r into %s", self.language, text, target)
            self._synthesize(text, self.language, target)
        return target

    # -- numbers --------------------------------------------------------------------------------

    def number(self, n: int, gender: Gender = "m") -> list[Path]:
        """A cardinal number; in Russian 1 and 2 agree with `gender` (m "один", f "одна",
        n "одно")."""
        if abs(n) > MAX_NUMBER:
            raise PromptError(T("{number} is too large to be spoken", number=n))
        if n < 0:
            return [self.file("digits/minus"), *self.number(-n, gender)]
        if n == 0:
            return [self.file("digits/0")]
        if self.language == "ru":
            return self._number_ru(n, gender)
        return self._number_en(n)

    def _below_thousand_ru(self, n: int, gender: Gender) -> list[Path]:
        out: list[Path] = []
        hundreds, rest = divmod(n, 100)
        if hundreds:
            out.append(self.word(_RU_HUNDREDS[hundreds]))
        if rest >= 20:
            tens, rest = divmod(rest, 10)
            out.append(self.file(f"digits/{tens * 10}"))
        if rest in (1, 2) and gender == "f":
            out.append(self.word(_RU_FEMININE[rest]))
        elif rest in (1, 2) and gender == "n":
            out.append(self.file(f"digits/{rest}n"))
        elif rest:
            out.append(self.file(f"digits/{rest}"))
        return out

    def _number_ru(self, n: int, gender: Gender) -> list[Path]:
        out: list[Path] = []
        millions, n = divmod(n, 1_000_000)
        thousands, n = divmod(n, 1000)
        if millions:
            out += self._below_thousand_ru(millions, "m")
            out.append(self.word(_RU_NOUNS["million"][plural_ru(millions)]))
        if thousands:
            out += self._below_thousand_ru(thousands, "f")
            out.append(self.word(_RU_NOUNS["thousand"][plural_ru(thousands)]))
        if n:
            out += self._below_thousand_ru(n, gender)
        return out

    def _below_thousand_en(self, n: int) -> list[Path]:
        out: list[Path] = []
        hundreds, rest = divmod(n, 100)
        if hundreds:
            out += [self.file(f"digits/{hundreds}"), self.file("digits/hundred")]
        if rest >= 20:
            tens, rest = divmod(rest, 10)
            out.append(self.file(f"digits/{tens * 10}"))
        if rest:
            out.append(self.file(f"digits/{rest}"))
        return out

    def _number_en(self, n: int) -> list[Path]:
        out: list[Path] = []
        for size, name in ((1_000_000, "million"), (1000, "thousand")):
            count, n = divmod(n, size)
            if count:
                out += [*self._below_thousand_en(count), self.file(f"digits/{name}")]
        if n:
            out += self._below_thousand_en(n)
        return out

    def digits(self, text: str) -> list[Path]:
        """Digits one by one ("101" is "one, zero, one"); `*` and `#` too."""
        names = {"*": "digits/star", "#": "digits/pound"}
        out: list[Path] = []
        for char in text:
            if char.isdigit() and char.isascii():
                out.append(self.file(f"digits/{char}"))
            elif char in names:
                out.append(self.file(names[char]))
            else:
                raise PromptError(T("{char!r} is not a digit that can be spoken", char=char))
        return out

    # -- ordinals -------------------------------------------------------------------------------

    def ordinal(self, n: int) -> list[Path]:
        """An ordinal, masculine nominative in Russian ("вы третий в очереди"); "third"."""
        if not 1 <= n <= MAX_ORDINAL:
            raise PromptError(
                T("ordinals from 1 to {limit} can be spoken, not {number}", limit=MAX_ORDINAL,
                  number=n)
            )  # fmt: skip
        if self.language == "ru":
            return self._ordinal_ru(n)
        return self._ordinal_en(n)

    def _ordinal_ru(self, n: int) -> list[Path]:
        if n in _RU_ORDINALS:
            return [self.word(_RU_ORDINALS[n])]
        hundreds, rest = divmod(n, 100)
        out: list[Path] = [self.word(_RU_HUNDREDS[hundreds])] if hundreds else []
        if rest in _RU_ORDINALS:
            return [*out, self.word(_RU_ORDINALS[rest])]
        tens, unit = divmod(rest, 10)
        return [*out, self.file(f"digits/{tens * 10}"), self.word(_RU_ORDINALS[unit])]

    def _ordinal_en(self, n: int) -> list[Path]:
        hundreds, rest = divmod(n, 100)
        if not rest:
            return [self.file(f"digits/{hundreds}"), self.file("digits/h-hundred")]
        out = [self.file(f"digits/{hundreds}"), self.file("digits/hundred")] if hundreds else []
        if rest <= 20 or rest % 10 == 0:
            return [*out, self.file(f"digits/h-{rest}")]
        tens, unit = divmod(rest, 10)
        return [*out, self.file(f"digits/{tens * 10}"), self.file(f"digits/h-{unit}")]

    # -- durations ------------------------------------------------------------------------------

    def count(self, n: int, unit: Unit) -> list[Path]:
        """A number of hours, minutes or seconds: "21 минута", "2 минуты", "1 minute"."""
        if unit not in UNITS:
            raise PromptError(
                T("unknown unit {unit!r}; known: {known}", unit=unit, known=", ".join(UNITS))
            )
        if n < 0:
            raise PromptError(T("a duration cannot be negative: {number}", number=n))
        if self.language == "ru":
            noun = self.word(_RU_NOUNS[unit][plural_ru(n)])
            return [*self.number(n, _RU_UNIT_GENDER[unit]), noun]
        if n != 1:
            return [*self.number(n), self.file(unit)]
        if unit == "hours":  # the pack has "hours" but no "hour"
            return [*self.number(n), self.word("hour")]
        return [*self.number(n), self.file(unit.removesuffix("s"))]

    def duration(self, seconds: int) -> list[Path]:
        """A length of time in hours, minutes and seconds, leaving out the parts that are
        zero ("1 час 5 минут"); "0 секунд" for nothing."""
        if seconds < 0:
            raise PromptError(T("a duration cannot be negative: {number}", number=seconds))
        hours, rest = divmod(seconds, 3600)
        minutes, secs = divmod(rest, 60)
        out: list[Path] = []
        for value, unit in ((hours, "hours"), (minutes, "minutes"), (secs, "seconds")):
            if value:
                out += self.count(value, unit)  # type: ignore[arg-type]
        return out or self.count(0, "seconds")


SAY_KINDS = ("number", "digits", "ordinal", "hours", "minutes", "seconds", "duration")


def say(language: str, kind: str, value: str, data_dir: Path, gender: Gender = "m",
        root: str | Path | None = None) -> list[Path]:  # fmt: skip
    """The files that speak `value` as `kind` (one of SAY_KINDS) in `language`: the CLI's
    `pbx prompt say ru 21 minutes` and whoever has the value as text."""
    speaker = Speaker(language, data_dir, root)
    if kind == "digits":
        return speaker.digits(value)
    try:
        n = int(value)
    except ValueError:
        raise PromptError(T("{value!r} is not a whole number", value=value)) from None
    if kind == "number":
        return speaker.number(n, gender)
    if kind == "ordinal":
        return speaker.ordinal(n)
    if kind == "duration":
        return speaker.duration(n)
    if kind in UNITS:
        return speaker.count(n, kind)
    raise PromptError(
        T("unknown kind {kind!r}; known: {known}", kind=kind, known=", ".join(SAY_KINDS))
    )
