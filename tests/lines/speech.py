"""Ten minutes of synthesised speech, Russian and English, at 8 kHz, for talk-off tests: made
once with espeak-ng and sox into pytest's cache directory, then read back in every run.

A test module makes its fixture with `load_speech(request.config)`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

RATE = 8000
MINUTES = 10.0
VERSION = "v1"

TEXTS = {
    "ru": [
        "Добрый день. Вы позвонили в компанию Северный ветер. Пожалуйста, оставайтесь на "
        "линии, вам ответит первый освободившийся оператор. Ваш звонок очень важен для нас.",
        "Сегодня в Москве переменная облачность, местами небольшой снег, температура от "
        "минус пяти до минус восьми градусов, ветер северо-западный, три, семь метров в секунду.",
        "Чтобы соединиться с бухгалтерией, наберите один. Отдел продаж: два. Склад и доставка: "
        "три. Если вы знаете внутренний номер абонента, наберите его в любое время.",
        "Шестьсот сорок два рубля восемьдесят копеек. Девятнадцатое декабря, четверг. Номер "
        "заказа восемь девять один шесть, ноль ноль семь, двадцать три.",
        "Жили-были старик со старухой у самого синего моря. Старик ловил неводом рыбу, а "
        "старуха пряла свою пряжу. Раз он в море закинул невод, пришёл невод с одною тиной.",
        "Ой, слушай, а ты не помнишь, во сколько завтра совещание? Кажется, в десять, но я не "
        "уверен. Ага, хорошо, тогда я перезвоню. Ну всё, пока, пока!",
    ],
    "en": [
        "Thank you for calling North Wind Limited. Please stay on the line and the next "
        "available agent will take your call. Your call is important to us.",
        "Today will be mostly cloudy with occasional light snow, highs around twenty eight, "
        "northwest winds ten to fifteen miles per hour, gusting to thirty in the afternoon.",
        "For accounts, press one. For sales, press two. For shipping and deliveries, press "
        "three. If you know your party's extension, you may dial it at any time.",
        "Your balance is six hundred and forty two dollars and eighty cents. Your order number "
        "is eight nine one six, zero zero seven, twenty three, dispatched on Thursday.",
        "It was the best of times, it was the worst of times, it was the age of wisdom, it was "
        "the age of foolishness, it was the epoch of belief, it was the epoch of incredulity.",
        "Oh hi, yeah, it's me again. Listen, do you remember what time the meeting is tomorrow? "
        "I think it's ten, but I'm not sure. Okay, great, I'll call you back. Bye bye!",
    ],
}
VOICES = {
    "ru": ["ru", "ru+f2", "ru+m3", "ru+f4", "ru+m7"],
    "en": ["en-us", "en+f3", "en-gb+m2", "en+f5", "en-us+m4"],
}


def synthesise(text: str, voice: str, speed: int, pitch: int) -> bytes:
    """`text` spoken by espeak-ng, resampled by sox to 16-bit mono PCM at 8 kHz."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    return subprocess.run(
        ["sox", "-t", "wav", "-", "-r", str(RATE), "-b", "16", "-e", "signed-integer", "-c", "1",
         "-t", "raw", "-L", "-"],
        input=wav, capture_output=True, check=True, timeout=60,
    ).stdout  # fmt: skip


def make_speech(path: Path) -> None:
    """Cycle through languages, voices, speeds and pitches until `MINUTES` are spoken."""
    target = int(MINUTES * 60 * RATE * 2)
    parts: list[bytes] = []
    size = 0
    for round_ in range(40):  # bounded: each round adds ~1.5 minutes
        for language, texts in TEXTS.items():
            for index, text in enumerate(texts):
                voice = VOICES[language][(index + round_) % len(VOICES[language])]
                speed = 130 + 15 * ((index + 2 * round_) % 5)
                pitch = 30 + 10 * ((index + round_) % 5)
                pcm = synthesise(text, voice, speed, pitch)
                parts.append(pcm)
                size += len(pcm)
        if size >= target:
            break
    path.write_bytes(b"".join(parts)[:target])


def load_speech(config: pytest.Config) -> npt.NDArray[np.int16]:
    """Ten minutes of Russian and English speech, interleaved, as int16 samples at 8 kHz."""
    assert config.cache is not None, "the cacheprovider plugin is needed"
    directory = Path(config.cache.mkdir("espeak-speech"))
    path = directory / f"speech-{VERSION}-{MINUTES:g}min.raw"
    if not path.exists():
        partial = path.with_suffix(".part")
        make_speech(partial)
        partial.rename(path)
    return np.frombuffer(path.read_bytes(), dtype="<i2").astype(np.int16)
