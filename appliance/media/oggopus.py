"""An Ogg/Opus file writer (RFC 7845 in an Ogg container, RFC 3533) over libopus through
ctypes, for call recordings.

Why not soundfile: libsndfile's Opus encoder runs libopus at its highest complexity and offers
no way to lower it; measured, it costs 0.012-0.016 CPU-seconds per second of stereo 8 kHz
audio, four times the recorder's whole budget. Here libopus encodes `FRAME_MS` frames in its
VoIP mode at `COMPLEXITY` and `BITRATE`, 0.002-0.003 CPU-s per second. Pages are written whole, one
per `flush`, so a file cut short by a crash ends on a page boundary (or one torn page that
readers skip): libsndfile reads it to within the last flush. libopus (Debian's libopus0) is
already on every box as a dependency of libsndfile.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from pathlib import Path
from typing import BinaryIO

from appliance.media.errors import MediaError

BITRATE = 16_000
"""Bits per second for both channels: about 7 MB per call-hour, clear for narrowband speech."""
COMPLEXITY = 0
"""libopus' encoder complexity (0-10). Measured on the bench machine for stereo 8 kHz: 0 costs
about 0.0025 CPU-s per second, 3 about 0.005, 10 about 0.006 (libsndfile's: 0.012-0.016)."""
FRAME_MS = 60
"""Opus frame length: 60 ms costs a third less CPU than 20 ms on the Xeon bench machine
(0.0029-0.0031 against 0.0044-0.0048 CPU-s per second of stereo; on the EPYC machine of the
first measurements it made no difference) and 6.0 MB per hour instead of 6.8. A recording has
no latency to care about, and the writer still writes a page per second (the crash window is
unchanged)."""

_APPLICATION_VOIP = 2048
_SET_BITRATE = 4002
_SET_COMPLEXITY = 4010
_GET_LOOKAHEAD = 4027

_libs: tuple[ctypes.CDLL, ctypes.CDLL] | None = None


class _OggPage(ctypes.Structure):
    _fields_ = [
        ("header", ctypes.c_char_p),
        ("header_len", ctypes.c_long),
        ("body", ctypes.c_char_p),
        ("body_len", ctypes.c_long),
    ]


def _load() -> tuple[ctypes.CDLL, ctypes.CDLL]:
    global _libs
    if _libs is None:
        names = [ctypes.util.find_library(n) or f"lib{n}.so.0" for n in ("opus", "ogg")]
        try:
            opus, ogg = (ctypes.CDLL(name) for name in names)
        except OSError as exc:
            raise MediaError(f"libopus/libogg not available: {exc}") from exc
        opus.opus_multistream_encoder_create.restype = ctypes.c_void_p
        opus.opus_multistream_encoder_create.argtypes = [
            ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
            ctypes.c_int, ctypes.POINTER(ctypes.c_int),
        ]  # fmt: skip
        opus.opus_multistream_encoder_destroy.argtypes = [ctypes.c_void_p]
        opus.opus_multistream_encode.restype = ctypes.c_int32
        opus.opus_multistream_encode.argtypes = [
            ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int32,
        ]  # fmt: skip
        opus.opus_get_version_string.restype = ctypes.c_char_p
        ogg.ogg_page_checksum_set.argtypes = [ctypes.POINTER(_OggPage)]
        _libs = (opus, ogg)
    return _libs


class OggOpusWriter:
    """16-bit interleaved PCM at `rate` (8, 12, 16, 24 or 48 kHz), `channels` 1 or 2, into an
    Ogg/Opus file. `write` buffers encoded packets; `flush` writes them as one page.

    Each channel is its own mono Opus stream (RFC 7845 channel mapping family 1, no coupled
    streams): a stereo Opus stream at a speech bitrate codes the two channels jointly, and one
    voice bleeds into the other's side, where a recording must keep the caller left and the
    callee right apart. `BITRATE` is shared between the streams."""

    def __init__(self, path: str | Path, rate: int = 8000, channels: int = 2) -> None:
        self._opus, self._ogg = _load()
        err = ctypes.c_int()
        if channels not in (1, 2):
            raise MediaError(f"an Ogg/Opus recording has 1 or 2 channels, not {channels}")
        mapping = bytes(range(channels))
        enc = self._opus.opus_multistream_encoder_create(
            rate, channels, channels, 0, mapping, _APPLICATION_VOIP, ctypes.byref(err)
        )
        if not enc or err.value != 0:
            raise MediaError(f"opus_multistream_encoder_create failed ({err.value})")
        self._enc: int | None = enc
        ctl = self._opus.opus_multistream_encoder_ctl
        ctl(ctypes.c_void_p(enc), _SET_BITRATE, ctypes.c_int32(BITRATE))
        ctl(ctypes.c_void_p(enc), _SET_COMPLEXITY, ctypes.c_int32(COMPLEXITY))
        lookahead = ctypes.c_int32()
        ctl(ctypes.c_void_p(enc), _GET_LOOKAHEAD, ctypes.byref(lookahead))
        self.rate, self.channels = rate, channels
        self._samples = rate * FRAME_MS // 1000
        self._step = self._samples * 2 * channels
        self._scale = 48000 // rate
        self._carry = b""
        self._out = ctypes.create_string_buffer(4000)
        self._packets: list[bytes] = []
        self._granule = 0
        self._seq = 0
        self._serial = int.from_bytes(os.urandom(4), "little")
        self._file: BinaryIO | None = open(path, "wb")  # noqa: SIM115 (closed by close())
        self.frames = 0
        pre_skip = lookahead.value * self._scale
        family = 0 if channels == 1 else 1
        head = b"OpusHead" + struct.pack("<BBHIhB", 1, channels, pre_skip, rate, 0, family)
        if family:
            head += struct.pack("<BB", channels, 0) + mapping  # streams, coupled, mapping
        vendor = self._opus.opus_get_version_string() or b"libopus"
        tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
        self._page([head], 0, 0x02)
        self._page([tags], 0, 0x00)
        self._file.flush()

    def write(self, pcm: bytes) -> None:
        """Encode `pcm` (whole frames are encoded; a remainder waits for more)."""
        if self._enc is None:
            raise MediaError("write to a closed Ogg/Opus writer")
        data = self._carry + pcm if self._carry else pcm
        step, out, enc = self._step, self._out, ctypes.c_void_p(self._enc)
        end = len(data) - len(data) % step
        for i in range(0, end, step):
            n = self._opus.opus_multistream_encode(
                enc, data[i : i + step], self._samples, out, len(out)
            )
            if n < 0:
                raise MediaError(f"opus_multistream_encode failed ({n})")
            self._packets.append(out.raw[:n])
        self._carry = data[end:]
        self.frames += end // (2 * self.channels)

    def flush(self) -> None:
        """Write the packets encoded so far as whole pages, and hand them to the kernel."""
        self._pages(0)
        assert self._file is not None
        self._file.flush()

    def _pages(self, last_flags: int) -> None:
        packets = self._packets
        self._packets = []
        while packets or last_flags:
            batch: list[bytes] = []
            segments = 0
            while packets and segments + len(packets[0]) // 255 + 1 <= 255:
                segments += len(packets[0]) // 255 + 1
                batch.append(packets.pop(0))
            self._granule += len(batch) * self._samples * self._scale
            flags = last_flags if not packets else 0
            self._page(batch, self._granule, flags)
            if flags:
                return

    def _page(self, packets: list[bytes], granule: int, flags: int) -> None:
        lacing = bytearray()
        for p in packets:
            lacing += b"\xff" * (len(p) // 255) + bytes([len(p) % 255])
        header = b"OggS" + struct.pack("<BBqIIIB", 0, flags, granule, self._serial, self._seq,
                                       0, len(lacing)) + bytes(lacing)  # fmt: skip
        body = b"".join(packets)
        header_buf = ctypes.create_string_buffer(header, len(header))
        page = _OggPage(ctypes.cast(header_buf, ctypes.c_char_p), len(header), body, len(body))
        self._ogg.ogg_page_checksum_set(ctypes.byref(page))
        assert self._file is not None
        self._file.write(header_buf.raw)
        self._file.write(body)
        self._seq += 1

    def close(self) -> None:
        """Encode what is left (padded to a whole frame), write the last page (EOS), close."""
        if self._enc is None:
            return
        if self._carry:
            self.write(bytes(self._step - len(self._carry)))
        self._pages(0x04)
        assert self._file is not None
        self._file.close()
        self._file = None
        self._opus.opus_multistream_encoder_destroy(ctypes.c_void_p(self._enc))
        self._enc = None
