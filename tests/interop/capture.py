"""What crosses the loopback interface to or from one UDP port, as the kernel sends it: a raw
packet socket (AF_PACKET, root only) on `lo`, read in a thread.

It shows what is on the wire, whatever the endpoints say: a test of SRTP reads here that the
box's packets toward a phone are not plain RTP. Every packet on `lo` is seen twice by a packet
socket (leaving and arriving); only the leaving copy is kept.

    with LoopbackCapture(port) as capture:
        ...
        packets = capture.datagrams(dst_port=port)
"""

from __future__ import annotations

import socket
import struct
import threading
from dataclasses import dataclass
from types import TracebackType
from typing import Self

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
ETHERNET_HEADER = 14


@dataclass(frozen=True, slots=True)
class Datagram:
    """One UDP datagram seen on `lo`."""

    src: tuple[str, int]
    dst: tuple[str, int]
    payload: bytes


class LoopbackCapture:
    """UDP datagrams on `lo` from or to `port` (IPv4), kept in order of capture."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self._seen: list[Datagram] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="lo-capture", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                frame, address = self.sock.recvfrom(65_535)
            except TimeoutError:
                continue
            except OSError:
                return
            if address[2] != PACKET_OUTGOING:
                continue
            datagram = _udp(frame[ETHERNET_HEADER:])
            if datagram is not None and self.port in (datagram.src[1], datagram.dst[1]):
                with self._lock:
                    self._seen.append(datagram)

    def datagrams(self, *, src_port: int | None = None, dst_port: int | None = None
                  ) -> list[Datagram]:  # fmt: skip
        """What was captured so far, from `src_port` and/or to `dst_port`."""
        with self._lock:
            seen = list(self._seen)
        return [d for d in seen if (src_port is None or d.src[1] == src_port)
                and (dst_port is None or d.dst[1] == dst_port)]  # fmt: skip

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _udp(packet: bytes) -> Datagram | None:
    """The UDP datagram in an IPv4 packet; None for anything else."""
    if len(packet) < 28 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_UDP:
        return None
    header = (packet[0] & 0x0F) * 4
    src = socket.inet_ntoa(packet[12:16])
    dst = socket.inet_ntoa(packet[16:20])
    sport, dport, length = struct.unpack_from("!HHH", packet, header)
    return Datagram((src, sport), (dst, dport), packet[header + 8 : header + length])
