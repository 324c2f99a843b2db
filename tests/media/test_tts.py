"""Offline speech and uploads, with the real espeak-ng and sox: the WAV made is 16 kHz 16-bit
mono, holds speech (not silence) of a plausible length; MP3 and OGG files made by sox in the
test convert with their content kept (a 440 Hz tone stays 440 Hz); a text file, a fake header,
an empty or too long text, a too big or too long file are refused with a clear message; a
missing program is named."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from appliance import tts
from appliance.tts import TtsError


def read(path: Path) -> tuple[np.ndarray, int, int]:
    """(samples, rate, channels) of a 16-bit WAV file."""
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data, w.getframerate(), w.getnchannels()


def dominant(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples.astype(float) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def speech_share(samples: np.ndarray, rate: int) -> float:
    """The share of the signal's energy in the speech band, 100-4000 Hz."""
    spectrum = np.abs(np.fft.rfft(samples.astype(float))) ** 2
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return float(spectrum[(freqs >= 100) & (freqs <= 4000)].sum() / spectrum.sum())


def sox(*args: str) -> None:
    subprocess.run(["sox", *args], check=True, capture_output=True, timeout=30)


@pytest.mark.parametrize(
    ("language", "short", "long"),
    [
        ("ru", "Добрый день", "Добрый день. Вы позвонили в компанию. Оставайтесь на линии, вам"
         " ответит первый освободившийся оператор."),
        ("en", "Good morning", "Good morning. You have reached the office. Please stay on the"
         " line, the first available operator will answer."),
    ],
)  # fmt: skip
def test_speech_is_16khz_mono_non_silent_and_as_long_as_its_text(
    tmp_path: Path, language: str, short: str, long: str
) -> None:
    short_seconds = tts.synthesize(short, language, tmp_path / "short.wav")
    long_seconds = tts.synthesize(long, language, tmp_path / "long.wav")
    samples, rate, channels = read(tmp_path / "long.wav")
    assert (rate, channels) == (16000, 1)
    assert abs(len(samples) / rate - long_seconds) < 0.01
    assert 0.4 < short_seconds < 3.0, short_seconds
    assert 4.0 < long_seconds < 15.0, long_seconds
    assert long_seconds > 3 * short_seconds
    rms = np.sqrt(np.mean(samples.astype(float) ** 2))
    assert rms > 1000, rms  # levelled to -3 dBFS peak: speech, not silence
    assert speech_share(samples, rate) > 0.9
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_the_two_languages_use_their_own_voices(tmp_path: Path) -> None:
    """The same letters in both voices: Russian "мама" is not the English reading of them."""
    tts.synthesize("мама мыла раму", "ru", tmp_path / "ru.wav")
    tts.synthesize("мама мыла раму", "en", tmp_path / "en.wav")
    ru, _, _ = read(tmp_path / "ru.wav")
    en, _, _ = read(tmp_path / "en.wav")
    assert not np.array_equal(ru[: min(len(ru), len(en))], en[: min(len(ru), len(en))])
    # espeak-ng's English voice spells Cyrillic letter by letter: far longer than the word
    assert len(en) > 1.5 * len(ru)


def test_text_starting_with_a_dash_is_spoken_not_taken_as_an_option(tmp_path: Path) -> None:
    seconds = tts.synthesize("-w /tmp/x --help", "en", tmp_path / "dash.wav")
    assert seconds > 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the text to speak is empty"),
        ("  \n\t ", "the text to speak is empty"),
        ("a" * (tts.MAX_TEXT + 1), "at most 1000 can be spoken"),
    ],
)
def test_empty_or_too_long_text_is_refused(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TtsError, match=message):
        tts.synthesize(text, "ru", tmp_path / "x.wav")
    assert not (tmp_path / "x.wav").exists()


def test_an_unknown_language_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TtsError, match="unknown language 'de'; known: ru, en"):
        tts.synthesize("Guten Tag", "de", tmp_path / "x.wav")


@pytest.mark.parametrize("kind", ["mp3", "ogg", "wav"])
def test_uploads_convert_keeping_their_content(tmp_path: Path, kind: str) -> None:
    source = tmp_path / f"tone.{kind}"
    sox("-n", "-r", "44100", "-c", "2", str(source), "synth", "2.0", "sine", "440")
    seconds = tts.convert_upload(source.read_bytes(), tmp_path / "out.wav")
    samples, rate, channels = read(tmp_path / "out.wav")
    assert (rate, channels) == (16000, 1)
    assert abs(seconds - 2.0) < 0.1, seconds  # MP3 pads a little
    assert abs(dominant(samples, rate) - 440) < 3
    assert np.abs(samples).max() > 16000  # levelled to -3 dBFS


def test_an_uploaded_file_is_judged_by_its_content_not_its_name(tmp_path: Path) -> None:
    text = Path(__file__).read_bytes()
    with pytest.raises(TtsError, match="the file is not audio in WAV, MP3 or OGG format"):
        tts.convert_upload(text, tmp_path / "out.wav")
    with pytest.raises(TtsError, match="the file is not readable WAV audio"):
        tts.convert_upload(b"RIFF\x24\x00\x00\x00WAVEjunk" + text[:200], tmp_path / "out.wav")
    with pytest.raises(TtsError, match="the file is not readable OGG audio"):
        tts.convert_upload(b"OggS" + text[:500], tmp_path / "out.wav")
    with pytest.raises(TtsError, match="the file is empty"):
        tts.convert_upload(b"", tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # nothing left behind


def test_too_big_or_too_long_uploads_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(TtsError, match="at most 8 MiB can be uploaded"):
        tts.convert_upload(b"RIFF" + bytes(tts.MAX_UPLOAD_BYTES), tmp_path / "out.wav")
    source = tmp_path / "long.ogg"
    sox("-n", "-r", "8000", str(source), "synth", "3.0", "sine", "300")
    monkeypatch.setattr(tts, "MAX_SECONDS", 2.0)
    with pytest.raises(TtsError, match="the audio lasts 3 s; at most 2 s is allowed"):
        tts.convert_upload(source.read_bytes(), tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


def test_a_missing_program_is_named_with_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with neither program
    with pytest.raises(tts.ToolMissing, match="espeak-ng is not installed; install the Debian"):
        tts.synthesize("hello", "en", tmp_path / "x.wav")
    with pytest.raises(tts.ToolMissing, match=r"sox is not installed.*sox libsox-fmt-mp3"):
        tts.convert_upload(b"OggS" + bytes(100), tmp_path / "x.wav")


def test_a_replaced_prompt_is_swapped_whole(tmp_path: Path) -> None:
    target = tmp_path / "p.wav"
    tts.synthesize("one", "en", target)
    before = target.stat().st_ino
    tts.synthesize("two three four five", "en", target)
    assert target.stat().st_ino != before  # a new file renamed over the old one
    samples, rate, _ = read(target)
    assert len(samples) / rate > 1.0
