"""Malformed SIP at the box while ten calls talk (issue 13): the fuzz corpus and hand-written
nasties over UDP and TCP, and every call survives with its audio, in the same process.

Ten sipp callers (extensions 101-110, ``dialog_uac.xml``) call ten extensions (201-210) that
one sipp callee answers (``dialog_uas.xml``); every phone registered first. Each call's media
are two UDP sockets of the test (:class:`RtpEndpoint`), each sending a tone of its own, so a
socket's dominant frequency names the phone whose audio reached it: a call's audio is proven
both ways, and to the right party, before and after the corpus.

The corpus goes at the box from addresses no phone uses (127.0.0.9 and up): the captured
messages of ``tests/fixtures/sip`` damaged as ``tests/sip/test_fuzz.py`` damages them, over UDP
and over TCP connections, then requests written to hurt: a 64 KiB header, NUL bytes, every
wrong Content-Length, 100 Via headers, folded headers, bad UTF-8, cut start lines, absurd CSeq
numbers, Max-Forwards 0, broken SDP in a new INVITE and in a re-INVITE inside a live call's own
dialog (its real Call-ID and tags), broken digest parameters. Each that deserves an answer is
asserted to get the one RFC 3261 gives (400 for broken syntax, §8.2.6 and §18.3; 513 for the
oversize one, §21.5.11; 483 for Max-Forwards 0, §16.3), each that cannot be answered (no Via,
no whole start line) to get none.

The corpus's address is in `security.allow`, the technician's networks that are never
rate-limited nor banned: from any other address the per-source rate limit drops nearly all of
a burst of junk before the parser sees it (by design; and then this test would prove nothing).
The digest nasties come last, each from an address of its own outside the allowed ones and
two requests each, below any ban, so that they take the path a stranger's requests take.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance import control
from appliance.media.codecs import make_decoder
from appliance.sip.message import Response, parse
from appliance.store import extensions
from appliance.store.db import open_db
from tests.conftest import READY_PREFIX, CoreProcess
from tests.interop.call_records import wait_cdrs
from tests.interop.rtp_endpoint import RtpEndpoint, RtpPacket
from tests.interop.sipp import (
    BackgroundSipp,
    credentials,
    free_media_port,
    free_port,
    run_sipp,
    ulaw_tone,
)
from tests.interop.test_sipp_calls import RTP_PORTS, free_rtp_range
from tests.interop.tones import dominant_frequency
from tests.sip.peer import authorization
from tests.sip.test_fuzz import SEEDS, mutate

CALLS = 10
CALLERS = [str(101 + i) for i in range(CALLS)]
CALLEES = [str(201 + i) for i in range(CALLS)]
PROBER = "120"
"""The extension the test itself authenticates as, to get broken SDP past the challenge."""
PASSWORD = "Kq7vT9pLm2x"
CALLER_TONES = [400.0 + 60 * i for i in range(CALLS)]
CALLEE_TONES = [1100.0 + 60 * i for i in range(CALLS)]
TONE_TOLERANCE = 15.0
"""Hz: the tones are 60 Hz apart; half a second of audio resolves 2 Hz."""
HOLD_MS = 40_000
"""How long each call lasts before its caller hangs up: the corpus and the checks take about
10 s on an idle machine; the rest is margin for a busy one."""
FLOWING = 25
"""Packets (half a second of audio) that show a call's audio flowing one way."""
CORPUS_SOURCE = "127.0.0.9"
"""Where the corpus comes from: an address no phone of the test uses."""
DIGEST_SOURCES = "127.0.0.{}"
"""The digest nasties' addresses, one each from 127.0.0.20 on."""
FUZZ_UDP, FUZZ_TCP, TCP_CONNECTIONS = 2000, 200, 10
ANSWER_WAIT = 5.0
T1 = 0.5


# -- the calls -------------------------------------------------------------------------------


@dataclass
class Party:
    """One side of a call: its media socket, the box's RTP port it talks to, its tone."""

    rtp: RtpEndpoint
    tone: float
    box_port: int = 0

    def start(self, host: str) -> None:
        self.rtp.start((host, self.box_port), audio=ulaw_tone(self.tone))


@dataclass
class CallIds:
    """A dialog of a call as its phone's sipp printed it: the phone's number and tag, the
    box's tag."""

    call_id: str
    phone: str
    phone_tag: str
    box_tag: str


def heard(rtp: RtpEndpoint, since: int) -> float:
    """The dominant frequency of the next FLOWING PCMU packets from the box after `since`."""
    packets: list[RtpPacket] = rtp.wait_packets(lambda p: p.payload_type == 0, FLOWING,
                                                timeout=15.0, since=since)  # fmt: skip
    pcm = make_decoder("PCMU").decode(b"".join(p.payload for p in packets))
    return dominant_frequency(np.frombuffer(pcm, dtype="<i2").astype(np.float64), 8000)


def tone_of(frequency: float, tones: list[float]) -> int | None:
    """Which of `tones` `frequency` is (its index), None for none."""
    for i, tone in enumerate(tones):
        if abs(frequency - tone) <= TONE_TOLERANCE:
            return i
    return None


def assert_audio_both_ways(callers: list[Party], callees: list[Party], what: str) -> list[int]:
    """Every caller hears exactly one callee and that callee hears it: the pairing, as a list
    (caller i talks with callee pairs[i])."""
    caller_marks = [p.rtp.mark() for p in callers]
    callee_marks = [p.rtp.mark() for p in callees]
    caller_heard = [
        tone_of(heard(p.rtp, m), CALLEE_TONES) for p, m in zip(callers, caller_marks, strict=True)
    ]
    callee_heard = [
        tone_of(heard(p.rtp, m), CALLER_TONES) for p, m in zip(callees, callee_marks, strict=True)
    ]
    assert None not in caller_heard, f"{what}: a caller heard no callee's tone: {caller_heard}"
    assert None not in callee_heard, f"{what}: a callee heard no caller's tone: {callee_heard}"
    pairs = [int(i) for i in caller_heard if i is not None]
    assert sorted(pairs) == list(range(CALLS)), f"{what}: callers heard {pairs}"
    for caller, callee in enumerate(pairs):
        assert callee_heard[callee] == caller, (
            f"{what}: caller {caller} hears callee {callee}, who hears {callee_heard[callee]}"
        )
    return pairs


# -- talking to the box ----------------------------------------------------------------------


def udp_socket(source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.settimeout(ANSWER_WAIT)
    return sock


def tcp_socket(source: str, box: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source, 0))
    sock.settimeout(ANSWER_WAIT)
    sock.connect(box)
    return sock


_serial = iter(range(1, 1_000_000))


def request(
    method: str,
    sock: socket.socket,
    *,
    uri: str = "sip:201@127.0.0.1",
    headers: list[str] | None = None,
    body: bytes = b"",
    call_id: str | None = None,
    cseq: str | None = None,
    from_: str | None = None,
    to: str = "<sip:201@127.0.0.1>",
    length: str | None = None,
    max_forwards: str = "70",
    transport: str = "UDP",
) -> tuple[bytes, str]:
    """A request from `sock` (its Via names it, with rport), and its Call-ID. The parts a
    nasty breaks can be given: `headers` come after the mandatory ones, `length` replaces the
    Content-Length value (None: the body's length; "": no Content-Length header)."""
    host, port = sock.getsockname()[:2]
    n = next(_serial)
    call_id = call_id or f"nasty-{n}@{host}"
    lines = [
        f"{method} {uri} SIP/2.0",
        f"Via: SIP/2.0/{transport} {host}:{port};branch=z9hG4bK-nasty-{n};rport",
        f"From: {from_ or f'<sip:{PROBER}@127.0.0.1>;tag=nasty-{n}'}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq or f'{n} {method}'}",
        f"Max-Forwards: {max_forwards}",
        *(headers or []),
    ]
    if length != "":
        lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape") + body, call_id


def answer(
    sock: socket.socket, call_id: str, box: tuple[str, int], resend: bytes = b""
) -> Response:
    """The box's final response with `call_id` on a UDP socket (100 Trying and answers to
    earlier requests skipped); a non-2xx to an INVITE is ACKed, as its client would. Until
    something comes, `resend` is sent again as a client's Timer E/A would (T1 = 0.5 s,
    doubling): after a burst of junk, the box's receive buffer may have dropped it."""
    deadline = time.monotonic() + ANSWER_WAIT
    interval = T1
    resend_at = time.monotonic() + interval
    seen: list[str] = []
    while True:
        now = time.monotonic()
        if now >= deadline:
            raise AssertionError(f"no final answer to {call_id} in {ANSWER_WAIT} s; got {seen}")
        sock.settimeout(max(0.01, min(deadline, resend_at) - now))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            if resend and time.monotonic() >= resend_at:
                sock.sendto(resend, box)
                interval *= 2
                resend_at = time.monotonic() + interval
            continue
        resend = b""  # the box heard it: a provisional or another answer came
        message = parse(data)
        assert isinstance(message, Response), f"the box sent a request: {data[:200]!r}"
        seen.append(f"{message.start_line()} ({message.call_id})")
        if message.call_id != call_id or message.status < 200:
            continue
        if message.get_all("cseq")[0].endswith("INVITE"):  # (an absurd CSeq is echoed)
            sock.sendto(ack_for(message, sock), box)
        return message


def ack_for(response: Response, sock: socket.socket) -> bytes:
    """The ACK for a non-2xx final response to an INVITE (§17.1.1.3: same branch)."""
    return (
        f"ACK {response.to.uri} SIP/2.0\r\n"
        f"Via: {response.get_all('via')[0]}\r\n"
        f"From: {response.get_all('from')[0]}\r\nTo: {response.get_all('to')[0]}\r\n"
        f"Call-ID: {response.call_id}\r\nCSeq: {response.get_all('cseq')[0].split()[0]} ACK\r\n"
        "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def ask(sock: socket.socket, data: bytes, call_id: str, box: tuple[str, int]) -> Response:
    sock.sendto(data, box)
    return answer(sock, call_id, box, resend=data)


def unanswered(source: str, data: bytes, box: tuple[str, int]) -> None:
    """`data` gets no answer: an OPTIONS sent after it on the same socket is the first thing
    answered (the box reads one socket in order, so an answer to `data` would come first)."""
    with closing(udp_socket(source)) as sock:
        sock.sendto(data, box)
        probe, call_id = request("OPTIONS", sock)
        sock.sendto(probe, box)
        first = parse(sock.recv(65536))
        assert isinstance(first, Response) and first.call_id == call_id, (
            f"{data[:80]!r} was answered: {first.start_line()}"
        )
        assert first.status == 200


def tcp_answers(sock: socket.socket) -> tuple[list[Response], bool]:
    """Every response the box sends on a TCP connection until it closes it or falls silent
    for a second, and whether it closed it."""
    buffer = b""
    sock.settimeout(1.0)
    closed = False
    deadline = time.monotonic() + ANSWER_WAIT
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        buffer += chunk
    found = []
    while b"\r\n\r\n" in buffer:
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith((b"content-length:", b"l:"))), 0)  # fmt: skip
        message = parse(head + b"\r\n\r\n" + rest[:length])
        assert isinstance(message, Response)
        found.append(message)
        buffer = rest[length:]
    return found, closed


def broken_sdp(kind: int) -> bytes:
    return [
        b"v=0\r\nthis is no SDP at all\r\n\x00\xff\r\n",
        b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio notaport RTP/AVP 0\r\n",
        b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
        b"m=audio 4000 RTP/AVP 0 8 101 999999999999\r\na=rtpmap:0\r\nc=IN IP4\r\n",
        b"v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 999.1.1.1\r\nt=0 0\r\n"
        + b"m=audio 4000 RTP/AVP 0\r\n" * 1000,
    ][kind]


# -- the test --------------------------------------------------------------------------------


@pytest.fixture
def box(core_factory: type[CoreProcess], tmp_path: Path) -> CoreProcess:
    """The core with every extension of the test, on an RTP range of its own."""
    data = tmp_path / "var"
    db = open_db(data)
    for number in (*CALLERS, *CALLEES, PROBER):
        extensions.add(db, number, f"Phone {number}", PASSWORD)
    db.conn.close()
    core = core_factory(data=data)
    low = free_rtp_range()
    core.cli("config", "set", "rtp.port_min", str(low))
    core.cli("config", "set", "rtp.port_max", str(low + RTP_PORTS - 1))
    # The corpus's source is the technician's allowed network: never rate-limited nor banned
    # (a source sending junk by the thousand would be, by design; here every message must
    # reach the parser).
    core.cli("config", "set", "security.allow", f"127.0.0.1,::1,{CORPUS_SOURCE}")
    core.start()
    return core


def register(core: CoreProcess, numbers: list[str], port: int, workdir: Path) -> None:
    rows: list[list[str | int]] = [[n, credentials(n, PASSWORD), 600] for n in numbers]
    run = run_sipp("register.xml", (core.host, core.port), rows, workdir=workdir, port=port,
                   calls=len(numbers))  # fmt: skip
    run.assert_passed()
    assert run.statuses.count(200) == len(numbers), run.describe()


@pytest.mark.timeout(240)
def test_calls_survive_a_corpus_of_malformed_sip(box: CoreProcess, tmp_path: Path) -> None:
    target = (box.host, box.port)
    assert box.proc is not None
    pid = box.proc.pid
    work = tmp_path / "sipp"
    caller_port, callee_port = free_port(), free_port()
    register(box, CALLEES, callee_port, work)
    register(box, CALLERS, caller_port, work)
    with ExitStack() as stack:
        callers = [Party(stack.enter_context(RtpEndpoint()), t) for t in CALLER_TONES]
        callees = [Party(stack.enter_context(RtpEndpoint()), t) for t in CALLEE_TONES]
        uas = stack.enter_context(BackgroundSipp(
            "dialog_uas.xml", target, [[n, "-", p.rtp.port] for n, p in zip(CALLEES, callees,
                                                                          strict=True)],
            workdir=work, port=callee_port, media_port=free_media_port(), calls=CALLS,
            timeout=HOLD_MS / 1000 + 60,
        ))  # fmt: skip
        uac = stack.enter_context(BackgroundSipp(
            "dialog_uac.xml", target,
            [[n, credentials(n, PASSWORD), p.rtp.port, callee, HOLD_MS]
             for n, p, callee in zip(CALLERS, callers, CALLEES, strict=True)],
            workdir=work, port=caller_port, media_port=free_media_port(), calls=CALLS,
            timeout=HOLD_MS / 1000 + 60, extra=("-l", str(CALLS)),
        ))  # fmt: skip
        by_port = {p.rtp.port: p for p in (*callers, *callees)}
        callee_dialogs: list[CallIds] = []
        caller_dialogs: list[CallIds] = []
        for line in _lines(uas, "media ", CALLS):
            _, rtp_port, box_port, call_id, box_tag, own_tag = line.split()
            by_port[int(rtp_port)].box_port = int(box_port)
            callee = CALLEES[[p.rtp.port for p in callees].index(int(rtp_port))]
            callee_dialogs.append(CallIds(call_id, callee, own_tag, box_tag))
        for line in _lines(uac, "dialog ", CALLS):
            _, rtp_port, box_port, call_id, own_tag, box_tag = line.split()
            by_port[int(rtp_port)].box_port = int(box_port)
            caller = CALLERS[[p.rtp.port for p in callers].index(int(rtp_port))]
            caller_dialogs.append(CallIds(call_id, caller, own_tag, box_tag))
        for party in (*callers, *callees):
            party.start(box.host)
        pairs = assert_audio_both_ways(callers, callees, "before the corpus")

        fuzz(target)
        nasties_udp(target, callee_dialogs[0], caller_dialogs[0])
        nasties_tcp(target)
        nasties_digest(target)

        status = control.call(box.data, "status")
        assert status["pid"] == pid and box.proc.poll() is None, "the core restarted"
        states = sorted(call["state"] for call in status["calls"])
        assert states == ["answered"] * CALLS, status["calls"]
        assert assert_audio_both_ways(callers, callees, "after the corpus") == pairs
        uac_run = uac.wait()
        uac_run.assert_passed()
        assert len(uac_run.responses_to("BYE")) >= CALLS, uac_run.describe()
        uas.wait().assert_passed()

    def calls_of(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [row for row in rows if row["caller"] != PROBER]

    rows = wait_cdrs(box.data, lambda rows: len(calls_of(rows)) >= CALLS, what=f"{CALLS} CDRs")
    assert sorted(row["caller"] for row in calls_of(rows)) == CALLERS, rows
    for row in calls_of(rows):
        assert row["disposition"] == "answered", row
        assert row["duration"] >= HOLD_MS / 1000 - 1, row
    # The prober's refused INVITEs are attempts of a known caller: recorded, never answered.
    assert all(row["disposition"] != "answered" for row in rows if row["caller"] == PROBER)
    assert box.proc.pid == pid and box.proc.poll() is None
    assert control.call(box.data, "status")["pid"] == pid
    # Never restarted, not even in place (which keeps the PID): it said it was ready once.
    assert sum(line.startswith(READY_PREFIX) for line in box.log) == 1
    assert box.log_problems() == [], "the core logged errors or tracebacks"


def _lines(sipp: BackgroundSipp, prefix: str, count: int) -> Iterator[str]:
    seen: list[str] = []
    while len(seen) < count:
        line = sipp.wait_stderr(lambda text: text.startswith(prefix) and text not in seen, 30.0)
        seen.append(line)
        yield line


# -- the corpus ------------------------------------------------------------------------------


def fuzz(box: tuple[str, int]) -> None:
    """The captured messages, damaged by the SIP fuzzer's own mutations, over UDP, then over
    TCP on a few connections; the box must go on answering a well-formed request."""
    rng = random.Random(13)

    def damaged() -> bytes:
        return mutate(rng.choice(SEEDS), rng.randbytes(4 * rng.randint(1, 6)))

    with closing(udp_socket(CORPUS_SOURCE)) as sock:
        for _ in range(FUZZ_UDP):
            sock.sendto(damaged(), box)
    for _ in range(TCP_CONNECTIONS):
        try:
            with closing(tcp_socket(CORPUS_SOURCE, box)) as tcp:
                for _ in range(FUZZ_TCP // TCP_CONNECTIONS):
                    tcp.sendall(damaged())
        except (ConnectionResetError, BrokenPipeError):
            pass  # the box closed a connection whose framing the junk broke: its right
    with closing(udp_socket(CORPUS_SOURCE)) as sock:
        probe, call_id = request("OPTIONS", sock)
        assert ask(sock, probe, call_id, box).status == 200


def expect(status: int | tuple[int, ...], sock: socket.socket, box: tuple[str, int],
           what: str, built: tuple[bytes, str]) -> Response:  # fmt: skip
    wanted = (status,) if isinstance(status, int) else status
    got = ask(sock, built[0], built[1], box)
    assert got.status in wanted, f"{what}: {got.status} {got.reason}, expected {wanted}"
    return got


def in_dialog(sock: socket.socket, live: CallIds, cseq: str, body: bytes) -> tuple[bytes, str]:
    """An INVITE inside `live`'s dialog, as its phone would send it, from `sock`."""
    return request(
        "INVITE", sock, uri="sip:box@127.0.0.1", call_id=live.call_id, cseq=cseq, body=body,
        from_=f"<sip:{live.phone}@127.0.0.1>;tag={live.phone_tag}",
        to=f"<sip:box@127.0.0.1>;tag={live.box_tag}", headers=["Content-Type: application/sdp"],
    )  # fmt: skip


def nasties_udp(box: tuple[str, int], callee: CallIds, caller: CallIds) -> None:
    with closing(udp_socket(CORPUS_SOURCE)) as sock:
        huge = request("OPTIONS", sock, headers=["X-Huge: " + "a" * 64_000])
        assert len(huge[0]) > 64_000
        expect(513, sock, box, "a 64 KB header", huge)
        expect(400, sock, box, "NUL in a header value",
               request("OPTIONS", sock, headers=["Subject: a\x00b"]))  # fmt: skip
        expect(400, sock, box, "NUL in the Request-URI",
               request("OPTIONS", sock, uri="sip:2\x0001@127.0.0.1"))  # fmt: skip
        expect(400, sock, box, "NUL in a header name",
               request("OPTIONS", sock, headers=["X-\x00: 1"]))  # fmt: skip
        expect(400, sock, box, "Content-Length beyond the datagram (§18.3)",
               request("OPTIONS", sock, body=b"0123456789", length="500"))  # fmt: skip
        short = expect(200, sock, box, "Content-Length shorter than the datagram (§18.3)",
                       request("OPTIONS", sock, body=b"0123456789", length="2"))  # fmt: skip
        assert short.status == 200
        for bad in ("-5", "abc", "1e3", "99999999999999999999999", "0x10", "5, 6"):
            expect(400, sock, box, f"Content-Length {bad}",
                   request("OPTIONS", sock, body=b"hello", length=bad))  # fmt: skip
        vias = [f"Via: SIP/2.0/UDP 10.0.{i // 250}.{i % 250 + 1}:5060;branch=z9hG4bK-v{i}"
                for i in range(99)]  # fmt: skip
        hundred = expect(200, sock, box, "100 Via headers", request("OPTIONS", sock, headers=vias))
        assert len(hundred.vias) == 100, "a response copies every Via (§8.2.6.2)"
        folded = request("OPTIONS", sock, headers=["Subject: folded\r\n  onto\r\n\tthree lines",
                                                   "X-Folded:\r\n value"])  # fmt: skip
        expect(200, sock, box, "folded headers (§7.3.1)", folded)
        bad_utf8 = request("OPTIONS", sock, from_='"\udcff\udcfe\udcc3" <sip:120@127.0.0.1>;tag=u8',
                           headers=["Subject: \udcc3( \udce2(\udca1 \udcc0\udcaf"])  # fmt: skip
        expect((200, 400), sock, box, "bad UTF-8", bad_utf8)
        for cseq in ("99999999999999999999 OPTIONS", "4294967296 OPTIONS", "-1 OPTIONS",
                     "1 INVITE", "OPTIONS", "1.5 OPTIONS"):  # fmt: skip
            expect(400, sock, box, f"CSeq {cseq}", request("OPTIONS", sock, cseq=cseq))
        expect(400, sock, box, "Max-Forwards 99999999999",
               request("OPTIONS", sock, max_forwards="99999999999"))  # fmt: skip
        expect((200, 483), sock, box, "OPTIONS with Max-Forwards 0",
               request("OPTIONS", sock, max_forwards="0"))  # fmt: skip
        # Broken SDP in a new INVITE: challenged first (no call is made for a stranger) ...
        for kind in range(4):
            invite = request("INVITE", sock, body=broken_sdp(kind),
                             headers=["Content-Type: application/sdp"])  # fmt: skip
            expect(407, sock, box, f"broken SDP {kind} without credentials", invite)
        # ... and with them, refused: the offer cannot be read.
        for kind in range(4):
            authed = authenticated_invite(sock, box, broken_sdp(kind))
            expect((400, 488), sock, box, f"broken SDP {kind}", authed)
        expect(483, sock, box, "Max-Forwards 0 on an INVITE (§16.3)",
               authenticated_invite(sock, box, b"", max_forwards="0"))  # fmt: skip
        # Re-INVITEs inside a live call's dialog, with its real Call-ID and tags, as its callee
        # (whose CSeq they advance: the callee sends nothing more in the dialog) ...
        for kind in range(4):
            reinvite = in_dialog(sock, callee, f"{10 + kind} INVITE", broken_sdp(kind))
            expect((400, 488), sock, box, f"re-INVITE with broken SDP {kind}", reinvite)
        # ... and as its caller, with CSeq numbers that never reach the dialog: the caller's
        # BYE must still be in order.
        expect(
            400,
            sock,
            box,
            "re-INVITE with an absurd CSeq",
            in_dialog(sock, caller, "99999999999999999999 INVITE", broken_sdp(1)),
        )
        expect(
            400,
            sock,
            box,
            "re-INVITE with a negative CSeq",
            in_dialog(sock, caller, "-3 INVITE", broken_sdp(0)),
        )
    # What cannot be answered: no whole start line, or no Via to answer to.
    with closing(udp_socket(CORPUS_SOURCE)) as sock:
        options, _ = request("OPTIONS", sock)
    head = options.split(b"\r\n", 1)[1]
    for start in (b"OPTIONS sip:201@127.0.0.1\r\n", b"OPTIONS\r\n", b"\r\n", b"SIP/2.0\r\n",
                  b"OPTIONS sip:201@127.0.0.1 SIP/2.0 extra\r\n"):  # fmt: skip
        unanswered(CORPUS_SOURCE, start + head, box)
    unanswered(CORPUS_SOURCE, b"INVITE sip:201@127.0.0.1 SIP/2.", box)
    no_via = b"\r\n".join(line for line in options.split(b"\r\n") if not line.startswith(b"Via"))
    unanswered(CORPUS_SOURCE, no_via, box)
    unanswered(CORPUS_SOURCE, b"\x00" * 1000, box)
    unanswered(CORPUS_SOURCE, bytes(range(256)) * 4, box)


def authenticated_invite(
    sock: socket.socket, box: tuple[str, int], body: bytes, max_forwards: str = "70"
) -> tuple[bytes, str]:
    """An INVITE from the prober's extension to 201 with `body`, its 407 challenge answered."""
    sdp = ["Content-Type: application/sdp"] if body else []
    first, call_id = request("INVITE", sock, headers=sdp, body=body)
    challenge = ask(sock, first, call_id, box)
    assert challenge.status == 407, challenge.start_line()
    auth = authorization(challenge.get_all("proxy-authenticate")[0], PROBER, PASSWORD,
                         uri="sip:201@127.0.0.1", method="INVITE")  # fmt: skip
    return request("INVITE", sock, call_id=call_id, body=body, max_forwards=max_forwards,
                   headers=[*sdp, f"Proxy-Authorization: {auth}"])  # fmt: skip


def nasties_tcp(box: tuple[str, int]) -> None:
    def send(**parts: Any) -> tuple[list[Response], bool]:
        """An OPTIONS over a new TCP connection, with `parts` broken (see `request`): what
        the box answers on it, and whether it closed it."""
        with closing(tcp_socket(CORPUS_SOURCE, box)) as tcp:
            data, _ = request("OPTIONS", tcp, transport="TCP", **parts)
            try:
                tcp.sendall(data)
            except (ConnectionResetError, BrokenPipeError):
                return [], True
            return tcp_answers(tcp)

    answers, closed = send(headers=["X-Huge: " + "b" * 70_000])
    assert closed, "a 70 KB header section: the connection is closed"
    assert [a.status for a in answers] in ([], [513], [400]), [a.start_line() for a in answers]
    answers, closed = send(length="")
    assert [a.status for a in answers] == [400] and closed, "§18.3: 400, connection closed"
    for bad in ("-5", "abc", "99999999999999999999999"):
        answers, closed = send(body=b"hello", length=bad)
        assert [a.status for a in answers] == [400] and closed, (bad, answers, closed)
    answers, closed = send(headers=["Subject: a\x00b"])
    assert [a.status for a in answers] == [400], answers
    # Content-Length too small: the rest of the body is the next message's start, junk.
    answers, _ = send(body=b"0123456789", length="2")
    assert [a.status for a in answers][:1] == [200], answers
    # Content-Length too large: the box waits for the rest; the client goes away.
    with closing(tcp_socket(CORPUS_SOURCE, box)) as tcp:
        data, _ = request("OPTIONS", tcp, transport="TCP", body=b"hello", length="30000")
        tcp.sendall(data)
    vias = [f"Via: SIP/2.0/TCP 10.0.{i // 250}.{i % 250 + 1}:5060;branch=z9hG4bK-t{i}"
            for i in range(99)]  # fmt: skip
    answers, _ = send(headers=vias)
    assert [a.status for a in answers] == [200] and len(answers[0].vias) == 100, answers


DIGESTS = [
    'Digest username="120", realm="pbx", nonce="abc, uri="sip:201@127.0.0.1", response="1',
    'Digest username="120", realm="pbx", nonce="' + "n" * 20_000 + '", uri="sip:201@127.0.0.1",'
    ' response="00000000000000000000000000000000"',
    'Digest username="120", realm="pbx", uri="sip:201@127.0.0.1"',
    'Digest realm="pbx", nonce="abc", uri="sip:201@127.0.0.1", response="0"',
    "Digest",
    "Digest ,,,,,,",
    'Digest username="120", username="121", realm="pbx", nonce="a", response="b", uri="c"',
    "Digest username=120 realm=pbx nonce=abc",
    'Digest username="\\',
    "Basic MTIwOktxN3ZUOXBMbTJ4",
    'Digest username="120", realm="pbx", nonce="abc", uri="sip:201@127.0.0.1", '
    'response="0", qop=auth, nc=zzzzzzzz, cnonce="x"',
    'Digest username="120", realm="pbx", nonce="abc", uri="sip:201@127.0.0.1", '
    'response="0", algorithm=ROT13',
]


def nasties_digest(box: tuple[str, int]) -> None:
    """Broken credentials on INVITE and REGISTER, each from an address of its own."""
    for i, value in enumerate(DIGESTS):
        with closing(udp_socket(DIGEST_SOURCES.format(20 + i))) as sock:
            invite = request("INVITE", sock, headers=[f"Proxy-Authorization: {value}"])
            expect((400, 403, 407), sock, box, f"INVITE with {value[:60]!r}", invite)
            register = request(
                "REGISTER", sock, uri="sip:127.0.0.1", to="<sip:120@127.0.0.1>",
                from_="<sip:120@127.0.0.1>;tag=r", headers=[f"Authorization: {value}",
                                                            "Contact: <sip:120@127.0.0.9>"],
            )  # fmt: skip
            expect((400, 401, 403), sock, box, f"REGISTER with {value[:60]!r}", register)
