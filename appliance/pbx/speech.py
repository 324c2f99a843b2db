"""What the box says to callers: prompt references resolved to files, and the tones it plays
itself (ringback while a menu's choice rings).

A prompt reference is `sound:NAME`, a prompt of the recorded pack in the office's language
(`appliance.media.prompts`), or the name of a custom prompt the office made (typed text
synthesised, or an upload: `appliance.store.prompts`), a file under the data directory.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from appliance.media.sources import TonePlan

logger = logging.getLogger(__name__)

RINGBACK = {
    "RU": TonePlan((((425,), 800), ((), 3200))),
    "US": TonePlan((((440, 480), 2000), ((), 4000))),
    "CA": TonePlan((((440, 480), 2000), ((), 4000))),
    "GB": TonePlan((((400, 450), 400), ((), 200), ((400, 450), 400), ((), 2000))),
    "DE": TonePlan((((425,), 1000), ((), 4000))),
}
"""Ringback by country (ITU-T E.180 Supplement 2); others hear the European 425 Hz 1 s/4 s."""


class PromptMissing(LookupError):
    """A menu names a prompt that is not there (a custom prompt removed, a pack not installed)."""


@dataclass(slots=True)
class Prompts:
    """Finds the file of a prompt reference, for the office's language."""

    language: str = "en"
    data_dir: Path | None = None
    custom: dict[str, str] = field(default_factory=dict)
    """Custom prompts' files by name, relative to the data directory."""

    def path(self, ref: str) -> Path:
        if ref.startswith("sound:"):
            from appliance.media import prompts

            try:
                return prompts.path(ref.removeprefix("sound:"), self.language)
            except prompts.PromptError as exc:
                raise PromptMissing(str(exc)) from None
        rel = self.custom.get(ref)
        if rel is None or self.data_dir is None:
            raise PromptMissing(f"no custom prompt {ref!r}")
        path = self.data_dir / rel
        if not path.is_file():
            raise PromptMissing(f"the file of prompt {ref!r} is missing: {path}")
        return path

    def paths(self, refs: list[str]) -> list[Path]:
        """The files of `refs`, leaving out (and logging) any that are missing: a caller hears
        the rest of a menu rather than silence."""
        found = []
        for ref in refs:
            try:
                found.append(self.path(ref))
            except PromptMissing as exc:
                logger.error("%s", exc)
        return found


def ringback(country: str) -> TonePlan:
    return RINGBACK.get(country, RINGBACK["DE"])
