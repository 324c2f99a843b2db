"""UDP datagrams in a classic pcap file (tcpdump -w), read and written without dependencies.

Only what the benchmarks capture: Ethernet framing (Linux `lo` is DLT_EN10MB), IPv4, UDP, with
microsecond or nanosecond timestamps. Anything else in the file (ARP, IPv6, TCP, IP fragments
after the first) is skipped. `write` produces the same format, so a reading can be checked
against packets whose times and contents are known.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC_USEC = 0xA1B2C3D4
MAGIC_NSEC = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
ETHERTYPE_IPV4 = 0x0800
IPPROTO_UDP = 17

_GLOBAL = struct.Struct("IHHiIII")  # byte order from the magic: prefixed when unpacking
_RECORD = struct.Struct("IIII")
_UDP = struct.Struct("!HHHH")


class PcapError(ValueError):
    """The file is not a pcap file this reader understands; `str()` says why."""


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP datagram as captured: when (Unix seconds), from where, to where, its payload."""

    time: float
    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


def read(path: Path) -> Iterator[Datagram]:
    """The IPv4 UDP datagrams of a pcap file, in file order (capture order)."""
    with path.open("rb") as f:
        head = f.read(_GLOBAL.size)
        if len(head) < _GLOBAL.size:
            raise PcapError(f"{path}: {len(head)} bytes, shorter than a pcap header")
        for order in ("<", ">"):
            magic = struct.unpack_from(order + "I", head)[0]
            if magic in (MAGIC_USEC, MAGIC_NSEC):
                break
        else:
            raise PcapError(f"{path}: not a pcap file (magic {head[:4].hex()})")
        *_, linktype = struct.unpack(order + _GLOBAL.format, head)
        if linktype != LINKTYPE_ETHERNET:
            raise PcapError(f"{path}: link type {linktype}, expected Ethernet (1)")
        scale = 1e-6 if magic == MAGIC_USEC else 1e-9
        record = struct.Struct(order + _RECORD.format)
        while True:
            rec = f.read(record.size)
            if len(rec) < record.size:
                return  # end of file (a capture stopped mid-record ends here too)
            sec, frac, incl, _orig = record.unpack(rec)
            frame = f.read(incl)
            if len(frame) < incl:
                return
            datagram = _udp(sec + frac * scale, frame)
            if datagram is not None:
                yield datagram


def _udp(when: float, frame: bytes) -> Datagram | None:
    if len(frame) < 14 + 20 + 8 or int.from_bytes(frame[12:14], "big") != ETHERTYPE_IPV4:
        return None
    ip = 14
    if frame[ip] >> 4 != 4 or frame[ip + 9] != IPPROTO_UDP:
        return None
    if int.from_bytes(frame[ip + 6 : ip + 8], "big") & 0x1FFF:
        return None  # a later fragment: no UDP header in it
    udp = ip + (frame[ip] & 0x0F) * 4
    if len(frame) < udp + 8:
        return None
    sport, dport, length, _ = _UDP.unpack_from(frame, udp)
    end = min(udp + max(length, 8), len(frame))  # the capture may have cut the datagram
    src = socket.inet_ntoa(frame[ip + 12 : ip + 16])
    dst = socket.inet_ntoa(frame[ip + 16 : ip + 20])
    return Datagram(when, (src, sport), (dst, dport), frame[udp + 8 : end])


def write(path: Path, datagrams: Iterable[Datagram]) -> None:
    """Write `datagrams` as a microsecond pcap of Ethernet/IPv4/UDP frames (checksums zero)."""
    with path.open("wb") as f:
        f.write(struct.pack("<" + _GLOBAL.format, MAGIC_USEC, 2, 4, 0, 0, 65535, 1))
        for d in datagrams:
            udp = _UDP.pack(d.src[1], d.dst[1], 8 + len(d.payload), 0) + d.payload
            ip = struct.pack(
                "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0x4000, 64, IPPROTO_UDP, 0,
                socket.inet_aton(d.src[0]), socket.inet_aton(d.dst[0]),
            )  # fmt: skip
            frame = bytes(12) + ETHERTYPE_IPV4.to_bytes(2, "big") + ip + udp
            sec = int(d.time)
            usec = round((d.time - sec) * 1e6)
            if usec == 1_000_000:
                sec, usec = sec + 1, 0
            f.write(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
