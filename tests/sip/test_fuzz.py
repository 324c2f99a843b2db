"""Fuzzing of the SIP message parser: whatever the bytes, `parse` and the lazily parsed header
values either work or raise `SipParseError` (the reason of a 400), never anything else.

Two sources of input, 50,000 examples each: arbitrary bytes (plain and built from SIP-ish
pieces, so that some get past the framing), and captured messages from `tests/fixtures/sip`
with bytes flipped, cut, deleted or inserted (CR, LF, colon, NUL, commas, quotes, brackets...).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.sip.message import Request, SipParseError, make_response, parse

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "sip"

# Captured messages, plus a few written here so that the fuzzer has seeds even before the
# capture exists and covers what the captures lack: compact forms, folding, lists, a response.
INLINE_SEEDS = [
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds,"
    b' SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK2;received="x"\r\n'
    b'f: "Alice, \\"A\\"" <sip:alice@atlanta.example.com>;tag=1928301774\r\n'
    b"t: Bob <sip:bob@biloxi.example.com>\r\n"
    b"i: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"m: <sip:alice@pc33.atlanta.example.com;transport=tcp>;expires=60, *\r\n"
    b"Subject: folded\r\n  onto two lines\r\n"
    b"Expires: 3600\r\n"
    b"c: application/sdp\r\n"
    b"l: 5\r\n"
    b"\r\n"
    b"v=0\r\n",
    b"SIP/2.0 200 OK\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKnashds8;received=192.0.2.1\r\n"
    b"From: <sip:101@192.0.2.9>;tag=a6c85cf\r\n"
    b"To: sip:101@192.0.2.9;tag=1410948204\r\n"
    b"Call-ID: 1-4607@127.0.0.1\r\n"
    b"CSeq: 2 REGISTER\r\n"
    b"Contact: <sip:101@192.0.2.1:5062>;expires=60\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n",
]
SEEDS = [p.read_bytes() for p in sorted(FIXTURE_DIR.glob("*.sip"))] + INLINE_SEEDS

INSERTS = [
    b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\r\n ", b":", b"\x00", b",", b'"', b"\\", b"<", b">",
    b";", b"=", b"@", b"[", b"]", b"?", b"%", b" ", b"\t", b"*", b"/", b"\xff", b"\xc3",
    b"\xe2\x80\xa8", b"0", b"9999999999999", b"SIP/2.0", b"Via: ", b"Content-Length: 9\r\n",
]  # fmt: skip

PIECES = [
    *INSERTS,
    b"SIP/2.0 ", b"INVITE ", b"REGISTER ", b"sip:", b"sips:", b"tel:", b"alice", b"host",
    b"[::1]", b":5060", b"v: ", b"f: ", b"t: ", b"i: ", b"m: ", b"l: ", b"From: ", b"To: ",
    b"Call-ID: ", b"CSeq: ", b"Contact: ", b"Expires: ", b"SIP/2.0/UDP ", b";branch=z9hG4bK",
    b";tag=", b"1", b"200 ", b"OK",
]  # fmt: skip

START_LINES = [
    b"",
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n",
    b"REGISTER sips:[2001:db8::1]:5061;transport=tcp SIP/2.0\r\n",
    b"SIP/2.0 200 OK\r\n",
    b"SIP/2.0 180 \r\n",
]

FUZZ_SETTINGS = settings(
    max_examples=50_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def exercise(data: bytes) -> None:
    """Parse `data` and, when that works, everything the stack reads from a message."""
    try:
        msg = parse(data)
    except SipParseError:
        return
    # What was parsed prints back as the bytes it came from (less any datagram trailer).
    out = bytes(msg)
    assert data.startswith(out)
    assert bytes(parse(out)) == out
    touches: list[Callable[[], object]] = [
        lambda: msg.vias,
        lambda: msg.via.branch,
        lambda: msg.cseq,
        lambda: msg.call_id,
        lambda: msg.from_.tag,
        lambda: msg.to.tag,
        lambda: [str(c) for c in msg.contacts],
        lambda: [c.uri.key() for c in msg.contacts if c.uri is not None],
        lambda: [str(v) for v in msg.vias],
        lambda: str(msg.cseq),
        lambda: str(msg.from_),
        lambda: str(msg.to),
        lambda: msg.int_header("Content-Length"),
        lambda: msg.int_header("Expires"),
        lambda: msg.int_header("Max-Forwards"),
    ]
    for touch in touches:
        with contextlib.suppress(SipParseError):
            touch()
    if isinstance(msg, Request):
        response = make_response(msg, 400, to_tag="fuzz")
        wire = bytes(response)
        assert bytes(parse(wire)) == wire


def mutate(seed: bytes, program: bytes) -> bytes:
    """Apply `program` to `seed`, four bytes an edit: what, where (two bytes), with what.

    Hypothesis draws the program as plain bytes, which is far cheaper than drawing each edit
    as its own structured value and still shrinks to the fewest, simplest edits.
    """
    data = bytearray(seed)
    for i in range(0, len(program) - 3, 4):
        op, hi, lo, arg = program[i : i + 4]
        pos = (hi << 8 | lo) % (len(data) + 1)
        kind = op % 16
        if kind < 8:
            data[pos:pos] = INSERTS[arg % len(INSERTS)]
        elif kind < 12:
            if pos < len(data):
                data[pos] ^= arg or 1
        elif kind < 15:
            del data[pos : pos + arg % 16 + 1]
        else:
            del data[pos:]
    return bytes(data)


def soup(program: bytes) -> bytes:
    """A start line, pieces (bytes below 192 pick a SIP-ish piece, the others an ASCII byte)
    and, for an odd first byte, the empty line that ends the header section."""
    if not program:
        return b""
    head = START_LINES[program[0] % len(START_LINES)]
    tail = b"\r\n\r\n" if program[0] % 2 else b""
    pieces = (PIECES[b % len(PIECES)] if b < 192 else bytes([b - 128]) for b in program[1:])
    return head + b"".join(pieces) + tail


mutated_fixtures = st.tuples(st.sampled_from(SEEDS), st.binary(min_size=4, max_size=24)).map(
    lambda seed_program: mutate(*seed_program)
)
sip_soup = st.binary(max_size=96).map(soup)


@FUZZ_SETTINGS
@given(st.binary(max_size=1024) | sip_soup)
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    exercise(data)


@FUZZ_SETTINGS
@given(mutated_fixtures)
def test_fuzz_mutated_fixtures(data: bytes) -> None:
    exercise(data)


def test_fuzz_seeds_parse() -> None:
    """The unmutated seeds are valid, so the mutation fuzzer starts from messages that parse."""
    assert len(SEEDS) > len(INLINE_SEEDS)
    for data in SEEDS:
        assert bytes(parse(data)) == data
        exercise(data)
