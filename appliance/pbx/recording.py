"""Call recording as a call feature: it watches the B2BUA's hooks (`bridged`, `finished`),
decides by the recording rules whether a call is recorded, asks the media engine for a stereo
recording (caller left, callee right), and writes the recording's row through the store's
writer when the file is complete. The on-demand feature code (`*1`) dialled during a call
starts or stops a recording of it.

The B2BUA knows nothing of this module; `appliance.pbx.core` makes one `CallRecording` and
calls `attach(engine)`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from appliance.pbx.retention import MARGIN, Usage, free_bytes
from appliance.store import events, recordings
from appliance.store.database import Database
from appliance.store.db import Writer

logger = logging.getLogger(__name__)

CODE_GAP = 2.0
"""Seconds within which the digits of the feature code must follow each other."""
CONSENT_PROMPT = "recording-consent"
"""A custom prompt of this name (typed or uploaded on the prompts page) is the consent
announcement; without one the box speaks `CONSENT_TEXT` in the office's language."""
CONSENT_TEXT = {
    "en": "This call is recorded.",
    "ru": "Этот разговор записывается.",
}
CONSENT_CACHE = "prompts/cache/recording-consent-{language}.wav"
"""Where the spoken default is kept, relative to the data directory (made once, at start)."""


def consent_file(data_dir: Path, language: str) -> Path:
    return data_dir / CONSENT_CACHE.format(language=language)


def prepare_consent(data_dir: Path) -> None:
    """Speak the default consent announcement in each language once (espeak-ng, a subprocess:
    run it off the event loop)."""
    from appliance import tts

    for language, text in CONSENT_TEXT.items():
        dest = consent_file(data_dir, language)
        if dest.is_file():
            continue
        try:
            tts.synthesize(text, language, dest)
        except tts.TtsError as exc:
            logger.error("the consent announcement (%s) cannot be spoken: %s", language, exc)


class Recording(Protocol):
    """What the media engine's `record` returns (appliance.media.recorder)."""

    def stop(self) -> None: ...
    def set_legs(self, left: Any, right: Any) -> None: ...


class Recorder(Protocol):
    """The part of `MediaEngine` this feature uses."""

    def record(
        self, path: Path, left: Any, right: Any, *, fmt: str = "opus",
        on_closed: Callable[[Any], None] | None = None,
    ) -> Recording: ...  # fmt: skip


@dataclass(frozen=True, slots=True)
class Config:
    """The recording rules and settings, read from the store when the core (re)loads."""

    rules: tuple[recordings.Rule, ...] = ()
    feature_code: str = "*1"
    fmt: str = "opus"
    floor_bytes: int = 0
    """The free-space floor: a recording starts only with `MARGIN` above it."""

    @classmethod
    def read(cls, db: Database) -> Config:
        return cls(
            tuple(recordings.rules(db)),
            recordings.get_setting(db, "recording.feature_code"),
            recordings.get_setting(db, "recording.format"),
            recordings.Storage.read(db).floor_bytes,
        )


def facts(call: Any) -> recordings.Facts:
    """What the rules can match about a call (`appliance.pbx.legs.Call`)."""
    numbers = [call.a.number]
    if call.b is not None:
        numbers.append(call.b.number)
    routes = [r for r in (getattr(call, "route", None), call.trunk) if r]
    return recordings.Facts(
        extensions=tuple(numbers), did=call.origin.did, routes=tuple(routes),
        direction=call.direction,
    )  # fmt: skip


@dataclass(slots=True)
class Active:
    """A call's recording in progress."""

    recording: Recording
    path: str
    started_at: float
    rule: int | None


@dataclass(slots=True)
class Watch:
    """The digits one leg dialled lately, for the feature code."""

    digits: str = ""
    last: float = 0.0
    chained: Callable[[Any, str], None] | None = None


@dataclass(slots=True)
class CallState:
    active: Active | None = None
    parts: int = 0
    watched: dict[int, Watch] = field(default_factory=dict)


class CallRecording:
    """Records calls by the rules and on demand."""

    def __init__(
        self, media: Recorder, data_dir: Path, writer: Writer | None,
        config: Config | None = None, *, usage: Usage = free_bytes,
        clock: Callable[[], float] = time.monotonic, prompts: Any = None,
    ) -> None:  # fmt: skip
        self.media = media
        self.data_dir = data_dir
        self.writer = writer
        self._config = config or Config()
        self._consent_task: asyncio.Future[None] | None = None
        self.usage = usage
        """Free bytes where recordings go (one statvfs: cheap enough for the loop)."""
        self.clock = clock
        self.prompts = prompts
        """The dial plan's `speech.Prompts` (the office's language and custom prompts), for
        the consent announcement; None: the English default."""
        self.calls: dict[str, CallState] = {}
        self.refused = 0

    @property
    def config(self) -> Config:
        return self._config

    @config.setter
    def config(self, config: Config) -> None:
        """New rules (the core's reload); the first rule asking for consent has the default
        announcement spoken, in a thread, unless it is there already."""
        self._config = config
        wanted = any(rule.consent for rule in config.rules)
        if wanted and self._consent_task is None:
            missing = [lang for lang in CONSENT_TEXT
                       if not consent_file(self.data_dir, lang).is_file()]  # fmt: skip
            if missing:
                loop = asyncio.get_running_loop()
                self._consent_task = loop.run_in_executor(None, prepare_consent, self.data_dir)

    def attach(self, engine: Any) -> None:
        """Subscribe to a CallEngine's hooks."""
        engine.hooks.bridged.append(self.bridged)
        engine.hooks.finished.append(self.finished)

    # -- hooks ------------------------------------------------------------------------------

    def bridged(self, call: Any) -> None:
        state = self.calls.setdefault(call.id, CallState())
        self._watch(call, state)
        if state.active is not None:  # a transfer joined other legs: follow them
            state.active.recording.set_legs(call.a.media, call.b.media)
            return
        if state.parts:
            return  # recorded before and stopped by the code: not started again by the rules
        decision = recordings.decide(self.config.rules, facts(call))
        if decision.record:
            started = self.start(call, decision.rule.id if decision.rule else None)
            if started and decision.rule is not None and decision.rule.consent:
                self.announce(call)

    def announce(self, call: Any) -> None:
        """The caller hears that the call is recorded, as it is connected: while it plays, the
        callee's voice does not reach the caller (the other way still does)."""
        path = self.consent_path()
        if path is None:
            return
        from appliance.media.errors import MediaError
        from appliance.media.sources import prompt

        try:
            call.a.media.play(prompt(path))
        except MediaError as exc:
            logger.error("consent announcement for call %s not played: %s", call.id, exc)

    def consent_path(self) -> Path | None:
        language = "en"
        if self.prompts is not None:
            language = self.prompts.language
            try:
                return Path(self.prompts.path(CONSENT_PROMPT))
            except LookupError:  # speech.PromptMissing: the office made none
                pass
        path = consent_file(self.data_dir, language)
        if not path.is_file():
            logger.error("no consent announcement: %s is missing", path)
            return None
        return path

    def finished(self, call: Any) -> None:
        state = self.calls.pop(call.id, None)
        if state is None:
            return
        for leg_id, watch in state.watched.items():
            leg = self._leg_by_id(call, leg_id)
            if leg is not None:
                leg.on_dtmf = watch.chained
        if state.active is not None:
            state.active.recording.stop()

    # -- start and stop ---------------------------------------------------------------------

    def start(self, call: Any, rule: int | None = None) -> bool:
        state = self.calls.setdefault(call.id, CallState())
        if state.active is not None or call.b is None:
            return False
        folder = self.data_dir / recordings.FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        if self.config.floor_bytes and self.usage(folder) < self.config.floor_bytes + MARGIN:
            self.refused += 1
            logger.warning("call %s not recorded: the disk is at its free-space floor", call.id)
            self._event(events.Event("recording.space", "recordings",
                                     {"refused": True, "call": call.id}))  # fmt: skip
            return False
        state.parts += 1
        started = time.time()
        relative = recordings.relative_path(call.id, started, state.parts, self.config.fmt)
        path = self.data_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)

        def closed(result: Any) -> None:
            self._stored(call.id, relative, started, rule, result)

        rec = self.media.record(path, call.a.media, call.b.media, fmt=self.config.fmt,
                                on_closed=closed)  # fmt: skip
        state.active = Active(rec, relative, started, rule)
        logger.info("recording call %s to %s (rule %s)", call.id, relative, rule)
        return True

    def stop(self, call: Any) -> bool:
        state = self.calls.get(call.id)
        if state is None or state.active is None:
            return False
        state.active.recording.stop()
        state.active = None
        return True

    def _stored(self, call_id: str, relative: str, started: float, rule: int | None,
                result: Any) -> None:  # fmt: skip
        seconds = float(getattr(result, "seconds", 0.0))
        size = int(getattr(result, "bytes", 0))

        def write(db: Database) -> None:
            recordings.add(db, call_id, relative, started, seconds, size, rule)

        if self.writer is not None:
            self.writer.submit(f"recording {relative}", write)

    def _event(self, event: events.Event) -> None:
        if self.writer is not None:
            self.writer.submit(f"event {event.kind}", lambda db: events.write(db, [event]))

    # -- the feature code -------------------------------------------------------------------

    @staticmethod
    def _leg_by_id(call: Any, leg_id: int) -> Any:
        for leg in (call.a, call.b):
            if leg is not None and id(leg.media) == leg_id:
                return leg.media
        return None

    def _watch(self, call: Any, state: CallState) -> None:
        for leg in (call.a, call.b):
            if leg is None or id(leg.media) in state.watched:
                continue
            media = leg.media
            watch = Watch(chained=media.on_dtmf)
            state.watched[id(media)] = watch

            def observe(m: Any, digit: str, watch: Watch = watch, call: Any = call) -> None:
                self._digit(call, watch, digit)
                if watch.chained is not None:
                    watch.chained(m, digit)

            media.on_dtmf = observe

    def _digit(self, call: Any, watch: Watch, digit: str) -> None:
        now = self.clock()
        code = self.config.feature_code
        if now - watch.last > CODE_GAP:
            watch.digits = ""
        watch.last = now
        watch.digits = (watch.digits + digit)[-len(code) :]
        if watch.digits != code:
            return
        watch.digits = ""
        if not self.stop(call):
            self.start(call)
