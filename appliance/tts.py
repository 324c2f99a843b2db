"""Offline speech and uploaded audio, both made into the one prompt format the box plays.

Every custom prompt ends up as a WAV file, 16-bit signed mono at 16 kHz: good enough for G.722
callers and resampled down for G.711 ones by `media.sources.prompt`. Text is spoken by espeak-ng
(no cloud service: the box works without the Internet); uploads (WAV, MP3, OGG) are converted by
sox. Both programs run as subprocesses with a time limit, never on the event loop's thread (the
web page and the CLI call these synchronously; the core would call them from an executor), and
every result is written under a temporary name and published atomically
(`appliance.store.files`), so a power cut never leaves half a prompt behind.

This module needs only the standard library (no numpy, no soundfile), so that the setup page
(`pbx-web`, with its small memory budget) can synthesise a preview with it too. It is a file
tool, not part of the media engine (no RTP, no clock), so it sits at the package's top beside
`i18n`: the page uses it, and `web` never imports `media` (ARCHITECTURE.md, import directions).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path

from appliance.i18n import T
from appliance.store.files import publish

logger = logging.getLogger(__name__)

RATE = 16000
"""The sample rate of every prompt the box makes."""
MAX_TEXT = 1000
"""Characters of text per synthesised prompt (about a minute of speech)."""
MAX_UPLOAD_BYTES = 8 << 20
"""Bytes of an uploaded file (the web app's MAX_CONTENT_LENGTH is the same)."""
MAX_SECONDS = 600.0
"""Seconds of audio a prompt may last (a long greeting; hold music has its own classes)."""
TIMEOUT = 60.0
"""Seconds espeak-ng or sox may run before the work is abandoned."""

Maker = Callable[[Path], float]
"""Writes a prompt's audio to the path it is given; returns its seconds."""

VOICES = {"ru": "ru", "en": "en-us"}
"""espeak-ng's voice for each language of the box."""


class TtsError(ValueError):
    """Speech or a conversion cannot be made; `str()` says why, for a technician."""


class ToolMissing(TtsError):
    """espeak-ng or sox is not installed: the box is incomplete, not the request wrong."""


class ToolFailed(TtsError):
    """espeak-ng or sox ran and refused the work (for sox: mostly an unreadable input)."""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ToolMissing(
            T(
                "{program} is not installed; install the Debian package {package}",
                program=name,
                package={"espeak-ng": "espeak-ng", "sox": "sox libsox-fmt-mp3"}.get(name, name),
            )
        )
    return found


def _run(argv: list[str], stdin: bytes | None = None) -> None:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise TtsError(
            T("{program} took longer than {seconds} s", program=Path(argv[0]).name,
              seconds=int(TIMEOUT))
        ) from None  # fmt: skip
    if done.returncode != 0:
        detail = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ToolFailed(
            T(
                "{program} failed: {detail}",
                program=Path(argv[0]).name,
                detail=detail[-1] if detail else T("exit status {status}", status=done.returncode),
            )
        )


def check_text(text: str, language: str) -> str:
    """The text as it will be spoken (stripped), or TtsError saying what is wrong with it."""
    if language not in VOICES:
        raise TtsError(
            T("unknown language {language!r}; known: {known}", language=language,
              known=", ".join(VOICES))
        )  # fmt: skip
    spoken = " ".join(text.split())
    if not spoken:
        raise TtsError(T("the text to speak is empty"))
    if len(spoken) > MAX_TEXT:
        raise TtsError(
            T("the text is {length} characters long; at most {limit} can be spoken",
              length=len(spoken), limit=MAX_TEXT)
        )  # fmt: skip
    return spoken


def _to_prompt_format(sox: str, source: Path, kind: str, dest: Path) -> float:
    """Convert `source` (of sox type `kind`) into `dest` atomically; its duration in seconds."""
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".wav")
    tmp = Path(name)
    os.close(fd)
    try:
        _run([sox, "-q", "-t", kind, str(source), "-r", str(RATE), "-c", "1", "-b", "16",
              "-e", "signed-integer", "-t", "wav", str(tmp), "gain", "-n", "-3"])  # fmt: skip
        with wave.open(str(tmp), "rb") as made:
            frames = made.getnframes()
        seconds = frames / RATE
        if frames == 0:
            raise TtsError(T("the audio is empty"))
        if seconds > MAX_SECONDS:
            raise TtsError(
                T("the audio lasts {seconds} s; at most {limit} s is allowed",
                  seconds=int(seconds), limit=int(MAX_SECONDS))
            )  # fmt: skip
        os.chmod(tmp, 0o644)
        publish(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return seconds


def synthesize(text: str, language: str, dest: Path) -> float:
    """Speak `text` in `language` ("ru" or "en") into the WAV file `dest` (16 kHz, 16-bit mono),
    replacing it atomically; returns its duration in seconds. The text goes to espeak-ng on its
    standard input, never on the command line (a text starting with "-" is not an option)."""
    spoken = check_text(text, language)
    espeak = _tool("espeak-ng")
    sox = _tool("sox")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".tts-") as work:
        raw = Path(work) / "espeak.wav"
        _run([espeak, "-v", VOICES[language], "-s", "150", "-w", str(raw), "--stdin"],
             stdin=spoken.encode("utf-8"))  # fmt: skip
        return _to_prompt_format(sox, raw, "wav", dest)


def sniff(data: bytes) -> str | None:
    """The sox type of an uploaded file from its first bytes ("wav", "mp3", "ogg"), or None
    when it is none of them: a file is judged by what it is, not by its name."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def convert_upload(data: bytes, dest: Path) -> float:
    """Make the uploaded file `data` (WAV, MP3 or OGG) into the prompt format at `dest`,
    atomically; returns its duration in seconds. Anything else, or a file too big or too long,
    is refused with TtsError."""
    if not data:
        raise TtsError(T("the file is empty"))
    if len(data) > MAX_UPLOAD_BYTES:
        raise TtsError(
            T("the file is {size} MiB; at most {limit} MiB can be uploaded",
              size=round(len(data) / (1 << 20), 1), limit=MAX_UPLOAD_BYTES >> 20)
        )  # fmt: skip
    kind = sniff(data)
    if kind is None:
        raise TtsError(T("the file is not audio in WAV, MP3 or OGG format"))
    sox = _tool("sox")
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".upload-") as work:
        source = Path(work) / f"upload.{kind}"
        source.write_bytes(data)
        try:
            return _to_prompt_format(sox, source, kind, dest)
        except ToolFailed as exc:
            logger.info("refused an upload: %s", exc)
            raise TtsError(T("the file is not readable {kind} audio", kind=kind.upper())) from exc
