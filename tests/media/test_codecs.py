"""Tests of `appliance.media.codecs`: a 1 kHz tone comes through every codec and every
transcoding pair at the same pitch and level, packet sizes are kept (20 ms in, 20 ms out), and
the codec table matches RFC 3551."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from appliance.media.codecs import (
    CODECS,
    CodecError,
    CodecInfo,
    Transcoder,
    codec_info,
    make_decoder,
    make_encoder,
    rtp_timestamp_step,
)

NAMES = sorted(CODECS)
SETTLE_MS = 60
"""What the analysis skips at the start: the codecs' and resampler's start-up transient."""


def exact(reason: str) -> str:
    return rf"\A{re.escape(reason)}\Z"


def sine(sample_rate: int, ms: int, hz: float = 1000.0, peak: float = 0.5) -> bytes:
    n = np.arange(sample_rate * ms // 1000)
    return (np.sin(2 * np.pi * hz * n / sample_rate) * peak * 32767).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def dominant_hz(pcm: bytes, sample_rate: int) -> float:
    x = samples(pcm)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sample_rate)[int(np.argmax(spectrum))])


def level_db(pcm: bytes) -> float:
    return float(10 * np.log10(np.mean(samples(pcm) ** 2)))


def packets(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_codec_table() -> None:
    table = dict(CODECS)
    assert table == {
        "PCMU": CodecInfo("PCMU", 0, 8000, 8000),
        "PCMA": CodecInfo("PCMA", 8, 8000, 8000),
        "G722": CodecInfo("G722", 9, 8000, 16000),
    }
    assert codec_info("pcmu") is CODECS["PCMU"]
    assert codec_info("g722") is CODECS["G722"]
    with pytest.raises(CodecError, match=exact("unknown codec 'opus'")):
        codec_info("opus")
    with pytest.raises(CodecError, match=exact("unknown codec 'G729'")):
        make_decoder("G729")
    with pytest.raises(CodecError, match=exact("unknown codec 'iLBC'")):
        Transcoder("PCMU", "iLBC")


@pytest.mark.parametrize("name", NAMES)
def test_timestamp_step(name: str) -> None:
    assert rtp_timestamp_step(name, 20) == 160
    assert rtp_timestamp_step(name, 30) == 240
    assert rtp_timestamp_step(name, 1) == 8


@pytest.mark.parametrize("name", NAMES)
def test_codec_keeps_pitch_and_level(name: str) -> None:
    rate = CODECS[name].sample_rate
    frame = 2 * rate // 50  # bytes of 20 ms of PCM
    pcm = sine(rate, 1000)
    encoder, decoder = make_encoder(name), make_decoder(name)
    payloads = [encoder.encode(chunk) for chunk in packets(pcm, frame)]
    assert {len(p) for p in payloads} == {160}  # 20 ms is 160 bytes in all three
    out = b"".join(decoder.decode(p) for p in payloads)
    assert len(out) == len(pcm)
    skip = 2 * rate * SETTLE_MS // 1000
    assert abs(dominant_hz(out[skip:], rate) - 1000) <= 20
    assert abs(level_db(out[skip:]) - level_db(pcm[skip:])) <= 3


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(NAMES, repeat=2)))
def test_transcoder_keeps_pitch_level_and_size(src: str, dst: str) -> None:
    src_rate, dst_rate = CODECS[src].sample_rate, CODECS[dst].sample_rate
    pcm = sine(src_rate, 1000)
    encoder = make_encoder(src)
    inbound = [encoder.encode(chunk) for chunk in packets(pcm, 2 * src_rate // 50)]
    transcoder = Transcoder(src, dst)
    assert (transcoder.src, transcoder.dst) == (src, dst)
    outbound = [transcoder.convert(p) for p in inbound]
    assert [len(p) for p in outbound] == [160] * 50  # every 20 ms packet stays 20 ms
    decoder = make_decoder(dst)
    out = b"".join(decoder.decode(p) for p in outbound)
    assert len(out) == 2 * dst_rate  # one second
    skip = 2 * dst_rate * SETTLE_MS // 1000
    assert abs(dominant_hz(out[skip:], dst_rate) - 1000) <= 20
    reference = sine(dst_rate, 1000)
    assert abs(level_db(out[skip:]) - level_db(reference[skip:])) <= 3


def test_transcoder_names_any_case() -> None:
    transcoder = Transcoder("pcmu", "g722")
    assert (transcoder.src, transcoder.dst) == ("PCMU", "G722")


@pytest.mark.parametrize("ms", [10, 20, 30])
def test_packet_times(ms: int) -> None:
    for src, dst in itertools.permutations(NAMES, 2):
        transcoder = Transcoder(src, dst)
        payload = bytes(8 * ms)  # 8 bytes a millisecond in each of the three
        assert all(len(transcoder.convert(payload)) == 8 * ms for _ in range(5))


def test_g722_odd_samples_wait_for_the_next_call() -> None:
    pcm = sine(16000, 40)
    whole = make_encoder("G722").encode(pcm)
    split = make_encoder("G722")
    assert split.encode(pcm[:2]) == b""  # one sample
    assert split.encode(pcm[2:6]) == whole[:1]  # three: one byte, one sample held
    assert split.encode(pcm[6:]) == whole[1:]


@pytest.mark.parametrize("name", NAMES)
def test_odd_byte_pcm_is_refused(name: str) -> None:
    with pytest.raises(CodecError, match=exact("PCM of 3 bytes is not whole 16-bit samples")):
        make_encoder(name).encode(b"abc")
