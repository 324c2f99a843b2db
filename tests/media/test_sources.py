"""Audio sources: prompts decoded from real sound files (sox-made and the Debian prompt
packages), mono-mixed and resampled, cached; sequences, tones, silence, loops and streams.
Judged by content: length, dominant frequency."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from appliance.media import sources
from appliance.media.errors import MediaError

SOUNDS = Path("/usr/share/asterisk/sounds")


def sox(path: Path, rate: int, channels: int, seconds: float, *effect: str) -> Path:
    subprocess.run(["sox", "-n", "-r", str(rate), "-c", str(channels), "-b", "16", str(path),
                    "synth", str(seconds), *effect], check=True)  # fmt: skip
    return path


def drain(source: sources.Source, limit: int = 100_000) -> list[bytes]:
    frames: list[bytes] = []
    for _ in range(limit):
        frame = source.read()
        if frame is None:
            return frames
        frames.append(frame)
    raise AssertionError("source did not end")


def dominant(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, dtype="<i2").astype(float)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    spectrum[:3] = 0
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize(("rate", "out_rate"), [(8000, 8000), (22050, 16000), (48000, 16000),
                                                 (11025, 8000)])  # fmt: skip
def test_prompt_is_mono_resampled_in_whole_frames(tmp_path: Path, rate: int, out_rate: int) -> None:
    path = sox(tmp_path / "t.flac", rate, 2, 0.5, "sine", "1200", "vol", "0.5")
    source = sources.prompt(path)
    assert source.rate == out_rate
    frames = drain(source)
    assert {len(f) for f in frames} == {out_rate // 50 * 2}
    assert abs(len(frames) - 25) <= 1
    assert abs(dominant(b"".join(frames), out_rate) - 1200) < 10


def test_stereo_is_mixed_to_mono(tmp_path: Path) -> None:
    path = tmp_path / "lr.wav"
    subprocess.run(["sox", "-n", "-r", "8000", "-b", "16", str(path), "synth", "0.4", "sine",
                    "500", "sine", "1500", "channels", "2"], check=True)  # fmt: skip
    pcm = b"".join(drain(sources.prompt(path)))
    x = np.abs(np.fft.rfft(np.frombuffer(pcm, "<i2").astype(float)))
    k = len(x) / 4000
    assert x[round(500 * k)] > 0.3 * x.max() and x[round(1500 * k)] > 0.3 * x.max()


def test_real_prompts_of_both_languages() -> None:
    for lang in ("en_US_f_Allison", "ru_RU_f_IvrvoiceRU"):
        frames = drain(sources.prompt(SOUNDS / lang / "digits" / "5.wav"))
        pcm = np.frombuffer(b"".join(frames), "<i2")
        assert 0.2 < len(pcm) / 8000 < 2.0 and np.abs(pcm).max() > 3000


def test_missing_and_unreadable_files_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"sound file .*nope\.wav cannot be opened: No such file"):
        sources.prompt(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not really a wave file")
    with pytest.raises(MediaError, match=r"cannot read sound file .*bad\.wav"):
        sources.prompt(bad)


def test_prompts_are_decoded_once_and_the_cache_is_bounded(tmp_path: Path) -> None:
    sources.CACHE.clear()
    a = sox(tmp_path / "a.wav", 8000, 1, 1.0, "sine", "400")
    sources.prompt(a)
    size = sources.CACHE.size
    assert size == 16000
    sources.prompt(a)
    assert sources.CACHE.size == size  # the second caller shares the decoded copy
    old_limit = sources.CACHE.limit
    sources.CACHE.limit = 40000
    try:
        for name in "bcd":
            sources.prompt(sox(tmp_path / f"{name}.wav", 8000, 1, 1.0, "sine", "400"))
        assert sources.CACHE.size <= 40000
    finally:
        sources.CACHE.limit = old_limit
        sources.CACHE.clear()
    a.write_bytes(b"")  # a file changed on disk is decoded again, not served stale
    with pytest.raises(MediaError):
        sources.prompt(a)


def test_sequence_tones_silence_and_loop(tmp_path: Path) -> None:
    wide = sox(tmp_path / "w.wav", 16000, 1, 0.2, "sine", "2000")
    seq = sources.sequence(
        [
            sources.silence(100),
            wide,
            sources.tones(sources.TonePlan((((425,), 200),), repeat=False)),
        ]
    )
    assert seq.rate == 8000
    frames = drain(seq)
    assert len(frames) == 5 + 10 + 10
    assert not any(b"".join(frames[:5]))
    assert abs(dominant(b"".join(frames[5:15]), 8000) - 2000) < 15  # resampled 16k -> 8k
    assert abs(dominant(b"".join(frames[15:]), 8000) - 425) < 10
    # ringback: 800 ms of 425 Hz, 3200 ms of silence, repeated
    ring = sources.tones(sources.TonePlan((((425,), 800), ((), 3200))))
    cycle = [ring.read() or b"" for _ in range(400)]
    on = [any(f) for f in cycle]
    assert on == ([True] * 40 + [False] * 160) * 2
    level = np.frombuffer(b"".join(cycle[:40]), "<i2").astype(float)
    dbm0 = 20 * np.log10(np.sqrt(np.mean(level**2)) * np.sqrt(2) / 32768) + 3.17
    assert abs(dbm0 + 13.0) < 0.5
    dial = sources.tones(sources.TonePlan((((350, 440), 0),)), 16000)
    dual = b"".join(dial.read() or b"" for _ in range(25))
    spectrum = np.abs(np.fft.rfft(np.frombuffer(dual, "<i2").astype(float)))
    hz = np.arange(len(spectrum)) * 16000 / (len(dual) // 2)
    low, high = (hz > 300) & (hz < 400), (hz > 400) & (hz < 500)
    assert round(hz[low][np.argmax(spectrum[low])]) == 350
    assert round(hz[high][np.argmax(spectrum[high])]) == 440
    assert spectrum[low].max() > 0.7 * spectrum[high].max() > 0.5 * spectrum[low].max()
    looped = sources.loop(lambda: sources.silence(60))
    assert len([looped.read() for _ in range(100)]) == 100  # never ends


def test_stream_reads_a_long_file_in_blocks(tmp_path: Path) -> None:
    path = sox(tmp_path / "moh.wav", 44100, 2, 3.0, "sine", "700")
    source = sources.stream(path)
    assert source.rate == 16000
    frames = drain(source)
    assert abs(len(frames) - 150) <= 2
    assert abs(dominant(b"".join(frames), 16000) - 700) < 10
    with pytest.raises(MediaError):
        sources.stream(tmp_path / "missing.wav")
