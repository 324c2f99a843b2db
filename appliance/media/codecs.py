"""The audio codecs the media engine negotiates: G.711 µ-law and A-law (PCMU, PCMA) and G.722,
with their static RTP payload types and clock rates (RFC 3551 §4.5, Table 4), and transcoding
between them.

PCM is 16-bit signed mono in the machine's byte order, which is little-endian on every board we
run on. G.722 carries 16 kHz audio but its RTP clock runs at 8 kHz (RFC 3551 §4.5.2), so a
20 ms packet is 160 bytes and 160 timestamp units whatever the codec.
"""

from __future__ import annotations

import array
import warnings
from dataclasses import dataclass
from typing import Protocol

import G722

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13 (audioop-lts replaces it)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = [
    "CODECS",
    "CodecError",
    "CodecInfo",
    "Decoder",
    "Encoder",
    "Transcoder",
    "codec_info",
    "make_decoder",
    "make_encoder",
    "rtp_timestamp_step",
]

G722_BITRATE = 64_000
"""The 64 kbit/s mode, the one SIP phones offer as payload type 9."""


class CodecError(ValueError):
    """An unknown codec name, or PCM that is not whole 16-bit samples."""


@dataclass(frozen=True)
class CodecInfo:
    """A codec as SDP names it: `clock_rate` is the RTP timestamp rate, `sample_rate` the
    rate of the audio it carries."""

    name: str
    payload_type: int
    clock_rate: int
    sample_rate: int


CODECS: dict[str, CodecInfo] = {
    "PCMU": CodecInfo("PCMU", 0, 8000, 8000),
    "PCMA": CodecInfo("PCMA", 8, 8000, 8000),
    "G722": CodecInfo("G722", 9, 8000, 16000),
}


def codec_info(name: str) -> CodecInfo:
    """The codec called `name` in any case (SDP encoding names are case-insensitive)."""
    info = CODECS.get(name.upper())
    if info is None:
        raise CodecError(f"unknown codec {name!r}")
    return info


def rtp_timestamp_step(name: str, ms: int) -> int:
    """How far the RTP timestamp advances over `ms` milliseconds of `name` (160 for 20 ms)."""
    return codec_info(name).clock_rate * ms // 1000


class Decoder(Protocol):
    """Payloads of one stream into PCM at the codec's `sample_rate`. Stateful: one per stream."""

    def decode(self, payload: bytes) -> bytes: ...


class Encoder(Protocol):
    """PCM at the codec's `sample_rate` into payloads. Stateful: one per stream."""

    def encode(self, pcm: bytes) -> bytes: ...


def _check_pcm(pcm: bytes) -> None:
    if len(pcm) % 2:
        raise CodecError(f"PCM of {len(pcm)} bytes is not whole 16-bit samples")


class _UlawDecoder:
    def decode(self, payload: bytes) -> bytes:
        return audioop.ulaw2lin(payload, 2)


class _UlawEncoder:
    def encode(self, pcm: bytes) -> bytes:
        _check_pcm(pcm)
        return audioop.lin2ulaw(pcm, 2)


class _AlawDecoder:
    def decode(self, payload: bytes) -> bytes:
        return audioop.alaw2lin(payload, 2)


class _AlawEncoder:
    def encode(self, pcm: bytes) -> bytes:
        _check_pcm(pcm)
        return audioop.lin2alaw(pcm, 2)


class _G722Decoder:
    def __init__(self) -> None:
        self._codec = G722.G722(16000, G722_BITRATE)

    def decode(self, payload: bytes) -> bytes:
        samples: array.array[int] = self._codec.decode(payload)
        return samples.tobytes()


class _G722Encoder:
    """G.722 codes two samples a byte; an odd sample waits for the next call."""

    def __init__(self) -> None:
        self._codec = G722.G722(16000, G722_BITRATE)
        self._carry = b""

    def encode(self, pcm: bytes) -> bytes:
        _check_pcm(pcm)
        pcm = self._carry + pcm
        even = len(pcm) & ~3
        self._carry = pcm[even:]
        samples = array.array("h")
        samples.frombytes(pcm[:even])
        data: bytes = self._codec.encode(samples)
        return data


def make_decoder(name: str) -> Decoder:
    """A new decoder for codec `name` (any case)."""
    info = codec_info(name)
    if info.name == "PCMU":
        return _UlawDecoder()
    if info.name == "PCMA":
        return _AlawDecoder()
    return _G722Decoder()


def make_encoder(name: str) -> Encoder:
    """A new encoder for codec `name` (any case)."""
    info = codec_info(name)
    if info.name == "PCMU":
        return _UlawEncoder()
    if info.name == "PCMA":
        return _AlawEncoder()
    return _G722Encoder()


class _Resampler:
    """`audioop.ratecv` between two rates, its state kept across calls, giving exactly as many
    samples out as the input's duration calls for: ratecv runs a sample behind at first, so the
    first call is padded with silence, and any sample ahead is held for the next call."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._state: tuple[int, tuple[tuple[int, int], ...]] | None = None
        self._in = 0
        self._out = 0
        self._carry = b""

    def convert(self, pcm: bytes) -> bytes:
        out, self._state = audioop.ratecv(pcm, 2, 1, self.src_rate, self.dst_rate, self._state)
        self._in += len(pcm) // 2
        want = 2 * (self._in * self.dst_rate // self.src_rate - self._out)
        out = self._carry + out
        if len(out) < want:
            out = bytes(want - len(out)) + out
        self._carry = out[want:]
        self._out += want // 2
        return out[:want]


class Transcoder:
    """Payloads of codec `src` into payloads of codec `dst`, for one direction of one call:
    decode, resample between 8 and 16 kHz when the rates differ, encode. 20 ms in gives 20 ms
    out."""

    def __init__(self, src: str, dst: str) -> None:
        self.src = codec_info(src).name
        self.dst = codec_info(dst).name
        self._decoder = make_decoder(src)
        self._encoder = make_encoder(dst)
        src_rate, dst_rate = CODECS[self.src].sample_rate, CODECS[self.dst].sample_rate
        self._resampler = _Resampler(src_rate, dst_rate) if src_rate != dst_rate else None

    def convert(self, payload: bytes) -> bytes:
        pcm = self._decoder.decode(payload)
        if self._resampler is not None:
            pcm = self._resampler.convert(pcm)
        return self._encoder.encode(pcm)
