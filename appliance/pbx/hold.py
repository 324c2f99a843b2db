"""Music on hold: a phone that puts its call on hold (a `sendonly` or `inactive` offer, by
re-INVITE or UPDATE) makes the held party hear the office's hold music, not silence; taking the
call off hold stops it, and the relay between the two phones is as before.

A class of hold music is a folder of sound files played in turn, round and round: `default` is
Debian's `asterisk-moh-opsound-wav`, and the office may add classes of its own (uploads under
the data directory's `moh/CLASS/`). The class played is the office's `moh.class` setting.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.media.engine import MediaError, MediaLeg
from appliance.media.player import Playback
from appliance.media.sources import Source, loop, stream

if TYPE_CHECKING:
    from appliance.pbx.b2bua import CallEngine
    from appliance.pbx.legs import Call, Leg

logger = logging.getLogger(__name__)

DEFAULT_DIR = Path("/usr/share/asterisk/moh")
SUFFIXES = (".wav", ".flac", ".ogg")


def class_dir(data_dir: Path | None, name: str) -> Path:
    """The folder of hold-music class `name`."""
    if name == "default" or data_dir is None or not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", name):
        return DEFAULT_DIR
    return data_dir / "moh" / name


def tracks(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())


class HoldMusic:
    """Plays hold music to held parties; subscribed to the call engine's `hooks.held`."""

    def __init__(self, engine: CallEngine, data_dir: Path | None = None) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.music_class = "default"
        self.playing: dict[MediaLeg, Playback] = {}
        """The held parties' legs hearing music now."""
        engine.hooks.held.append(self.on_held)
        engine.hooks.bridged.append(self.on_bridged)

    def source(self) -> Source | None:
        """The current class's tracks, one after another, forever; None when it has none."""
        found = tracks(class_dir(self.data_dir, self.music_class))
        if not found and self.music_class != "default":
            logger.error("hold music class %s has no tracks: playing the default",
                         self.music_class)  # fmt: skip
            found = tracks(DEFAULT_DIR)
        if not found:
            return None
        order: Iterator[Path] = itertools.cycle(found)
        return loop(lambda: stream(next(order)))

    def on_held(self, call: Call, leg: Leg, held: bool) -> None:
        party = leg.peer
        if party is None or party.ended:
            return
        if not held:
            self._stop(party.media)
            return
        music = self.source()
        if music is None:
            logger.warning("call %s: no hold music installed: the held party hears silence",
                           call.id)  # fmt: skip
            return
        try:
            playback = party.media.play(music)
        except MediaError as exc:
            logger.error("call %s: hold music: %s", call.id, exc)
            return
        self.playing[party.media] = playback
        playback.on_done = lambda _ended, leg=party.media: self._forget(leg, playback)

    def on_bridged(self, call: Call) -> None:
        """A transfer joined a held party to someone new: the music stops (the phone that
        held it has left, and will never take it off hold)."""
        for leg in (call.a, call.b):
            if leg is not None:
                self._stop(leg.media)

    def _stop(self, media: MediaLeg) -> None:
        playback = self.playing.pop(media, None)
        if playback is not None:
            playback.stop()

    def _forget(self, media: MediaLeg, playback: Playback) -> None:
        if self.playing.get(media) is playback:
            del self.playing[media]
