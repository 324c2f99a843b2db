"""Tests of `appliance.sip.message`: captured messages parse and print back byte for byte, the
typed header values read from them, framing (RFC 3261 §18.3), compact forms, lists, folding,
`make_response` (§8.2.6), and the exact reason of every parse error."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.sip.message import (
    MAX_MESSAGE_SIZE,
    Request,
    Response,
    SipMessage,
    SipParseError,
    make_response,
    parse,
)

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "sip"
FIXTURES = sorted(FIXTURE_DIR.glob("*.sip"))
USER_AGENTS = ("sipp", "baresip", "pjsua2")


def fixture(name: str) -> bytes:
    return (FIXTURE_DIR / name).read_bytes()


def exact(reason: str) -> str:
    """A `match=` pattern for the whole error message, not just a part of it."""
    return rf"\A{re.escape(reason)}\Z"


def parse_request(data: bytes) -> Request:
    msg = parse(data)
    assert isinstance(msg, Request)
    return msg


def parse_response(data: bytes) -> Response:
    msg = parse(data)
    assert isinstance(msg, Response)
    return msg


# A small valid request that the error tests below edit one line of.
BASE = (
    b"OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n"
    b"Max-Forwards: 70\r\n"
    b"To: <sip:carol@chicago.example.com>\r\n"
    b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"Call-ID: a84b4c76e66710\r\n"
    b"CSeq: 63104 OPTIONS\r\n"
    b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
    b"Expires: 3600\r\n"
    b"Accept: application/sdp\r\n"
    b"Content-Length: 0\r\n"
    b"\r\n"
)


def edit(old: bytes, new: bytes, data: bytes = BASE) -> bytes:
    """`data` with its one occurrence of `old` replaced by `new`."""
    assert data.count(old) == 1, old
    return data.replace(old, new)


def header_line(name: bytes) -> bytes:
    """The whole line of BASE's `name` header, CRLF included."""
    start = BASE.index(b"\r\n" + name + b":") + 2
    return BASE[start : BASE.index(b"\r\n", start) + 2]


def without(name: bytes) -> bytes:
    return edit(header_line(name), b"")


def replaced(name: bytes, value: bytes) -> bytes:
    return edit(header_line(name), name + b": " + value + b"\r\n")


# -- captured messages ----------------------------------------------------------------------


def test_fixtures_cover_each_user_agent() -> None:
    names = [p.name for p in FIXTURES]
    for ua in USER_AGENTS:
        assert any(n.startswith(f"{ua}-") for n in names), f"no fixture captured from {ua}"


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_round_trip(path: Path) -> None:
    data = path.read_bytes()
    assert bytes(parse(data)) == data


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_header_values(path: Path) -> None:
    """Every typed value the stack reads parses on every captured message."""
    msg = parse(path.read_bytes())
    assert msg.vias
    assert msg.via.branch
    assert msg.call_id
    assert msg.from_.tag
    assert msg.to.uri is not None
    assert all(c.uri is not None for c in msg.contacts)
    assert msg.int_header("Content-Length") == len(msg.body)
    if isinstance(msg, Request):
        assert msg.cseq.method == msg.method


def test_sipp_register_values() -> None:
    msg = parse_request(fixture("sipp-register-initial.sip"))
    assert (msg.method, msg.uri, msg.version) == ("REGISTER", "sip:127.0.0.1:5060", "SIP/2.0")
    assert msg.call_id == "1-4607@127.0.0.1"
    assert (msg.cseq.number, msg.cseq.method) == (1, "REGISTER")
    assert len(msg.vias) == 1
    assert (msg.via.transport, msg.via.host, msg.via.port) == ("UDP", "127.0.0.1", 5062)
    assert msg.via.branch == "z9hG4bK-4607-1-0"
    assert msg.from_.tag == "4607SIPpTag001"
    assert str(msg.from_.uri) == "sip:101@127.0.0.1:5060"
    assert msg.to.tag is None
    assert [str(c.uri) for c in msg.contacts] == ["sip:101@127.0.0.1:5062"]
    assert msg.int_header("Expires") == 60
    assert msg.int_header("Max-Forwards") == 70
    assert msg.get("User-Agent") == "SIPp"
    assert msg.body == b""


def test_baresip_register_values() -> None:
    """baresip puts the expiry in a Contact parameter, not in an Expires header."""
    msg = parse_request(fixture("baresip-register-initial.sip"))
    assert msg.method == "REGISTER"
    assert msg.call_id == "c2799fee33b0a7bc"
    assert (msg.cseq.number, msg.cseq.method) == (28320, "REGISTER")
    assert msg.via.branch == "z9hG4bK49e0d13cc9f5c0d1"
    assert msg.via.params == {"branch": "z9hG4bK49e0d13cc9f5c0d1", "rport": None}
    assert msg.from_.tag == "dcdc4ce911acf617"
    (contact,) = msg.contacts
    assert contact.uri is not None
    assert (contact.uri.user, contact.uri.host, contact.uri.port) == (
        "101-0x562c0426caf0",
        "10.99.0.1",
        5070,
    )
    assert contact.expires == "60"
    assert msg.int_header("Expires") is None
    assert msg.get_all("Allow") == [
        "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "NOTIFY", "SUBSCRIBE", "INFO", "MESSAGE",
        "REFER",
    ]  # fmt: skip


def test_pjsua2_unregister_values() -> None:
    data = fixture("pjsua2-unregister.sip")
    msg = parse_request(data)
    assert msg.call_id == "L3mn4XOwyTtPZCjgSs2UhqvoUIQlmVHZ"
    assert (msg.cseq.number, msg.cseq.method) == (50849, "REGISTER")
    assert msg.via.branch == "z9hG4bKPj-uziPcDAH-CHgnrzSlwR1GK0DJlt.fwy"
    assert list(msg.via.params) == ["rport", "branch"]
    assert msg.from_.tag == "c4Ha-jkaeg67x5V4SYyjy00GRmdlIKBL"
    (contact,) = msg.contacts
    assert contact.uri is not None
    assert contact.uri.params == {"ob": None}
    assert msg.int_header("Expires") == 0
    # pjsua2 writes two spaces after the colon; they survive the round trip.
    assert b"Content-Length:  0\r\n" in data
    assert msg.get("Content-Length") == "0"
    assert (msg.get("Authorization") or "").startswith('Digest username="101", realm="pbx"')


def test_pjsua2_options_accept_list() -> None:
    msg = parse_request(fixture("pjsua2-options.sip"))
    assert msg.method == "OPTIONS"
    assert msg.to.uri is not None and msg.to.uri.user is None
    assert msg.get_all("Accept") == [
        "application/sdp",
        "application/pidf+xml",
        "application/xpidf+xml",
        "application/dialog-info+xml",
        "application/simple-message-summary",
        "message/sipfrag;version=2.0",
        "application/im-iscomposing+xml",
        "text/plain",
    ]
    assert msg.contacts == []


def test_baresip_invite_body() -> None:
    data = fixture("baresip-invite.sip")
    msg = parse_request(data)
    assert msg.get("Content-Type") == "application/sdp"
    assert msg.int_header("Content-Length") == 340
    assert len(msg.body) == 340
    assert msg.body == data[data.index(b"\r\n\r\n") + 4 :]
    assert msg.body.startswith(b"v=0\r\no=- ")
    # An empty header value is kept, and is an empty list.
    assert msg.get("Supported") == ""
    assert msg.get_all("Supported") == []


def test_rfc4475_wsinv_values() -> None:
    """RFC 4475 §3.1.1.1: odd but valid whitespace, folding, case and compact forms."""
    msg = parse_request(fixture("rfc4475-wsinv.sip"))
    assert msg.method == "INVITE"
    assert msg.uri == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert (msg.cseq.number, msg.cseq.method) == (9, "INVITE")
    assert msg.int_header("Max-Forwards") == 68
    assert msg.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert [(v.transport, v.host, v.branch) for v in msg.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert msg.from_.display == '"J Rosenberg \\\\\\""'
    assert msg.from_.tag == "98asjd8"
    (contact,) = msg.contacts
    assert contact.display == '"Quoted string \\"\\""'
    assert contact.params == {"newparam": "newvalue", "secondparam": None, "q": "0.33"}
    assert msg.get("Subject") == ""
    assert msg.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert len(msg.body) == 150


def test_rfc4475_wsinv_to() -> None:
    """The To of wsinv is an addr-spec with LWS before its `;tag` parameter (valid SIP)."""
    msg = parse_request(fixture("rfc4475-wsinv.sip"))
    assert str(msg.to.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert msg.to.tag == "1918181833n"


def test_rfc4475_esc02_values() -> None:
    """RFC 4475 §3.1.1.5: escapes are not decoded in methods or header names."""
    msg = parse_request(fixture("rfc4475-esc02.sip"))
    assert msg.method == "RE%47IST%45R"
    assert (msg.cseq.number, msg.cseq.method) == (29344, "RE%47IST%45R")
    assert msg.to.display == '"%Z%45"'
    assert msg.via.branch == "z9hG4bK209%fzsnel234"
    # C%6Fntact is an extension header, not a third Contact.
    assert [str(c.uri) for c in msg.contacts] == [
        "sip:alias1@host1.example.com",
        "sip:alias3@host3.example.com",
    ]
    assert msg.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_rfc4475_escnull_values() -> None:
    """RFC 4475 §3.1.1.4: %00 in a user part is just text; the two Contacts differ."""
    msg = parse_request(fixture("rfc4475-escnull.sip"))
    assert str(msg.to.uri) == "sip:null-%00-null@example.com"
    assert msg.from_.tag == "839923423"
    users = [c.uri.user for c in msg.contacts if c.uri is not None]
    assert users == ["%00", "%00%00"]
    keys = {c.uri.key() for c in msg.contacts if c.uri is not None}
    assert len(keys) == 2
    assert msg.int_header("Content-Length") == 0  # written `L:0`


@pytest.mark.parametrize(
    "path", [p for p in FIXTURES if b"Content-Length" in p.read_bytes()], ids=lambda p: p.name
)
def test_fixture_truncated(path: Path) -> None:
    """Every prefix of a captured message is refused with the reason of what is missing."""
    data = path.read_bytes()
    body_start = data.index(b"\r\n\r\n") + 4
    for n in range(body_start):
        with pytest.raises(SipParseError, match=exact("missing empty line after headers")):
            parse(data[:n])
    for n in range(body_start, len(data)):
        with pytest.raises(SipParseError, match=exact("Content-Length larger than the body")):
            parse(data[:n])


# -- header syntax ---------------------------------------------------------------------------

COMPACT = (
    b"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    b"v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
    b"f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    b"t: Bob <sip:bob@biloxi.example.com>\r\n"
    b"i: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"m: <sip:alice@pc33.atlanta.example.com>;expires=30\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_compact_forms() -> None:
    """RFC 3261 §7.3.3: `v f t i m l` are Via, From, To, Call-ID, Contact, Content-Length."""
    msg = parse_request(COMPACT)
    assert bytes(msg) == COMPACT
    assert msg.via.branch == "z9hG4bK776asdhds"
    assert msg.from_.display == "Alice"
    assert msg.from_.tag == "1928301774"
    assert msg.to.display == "Bob"
    assert msg.call_id == "a84b4c76e66710@pc33.atlanta.example.com"
    assert [(str(c.uri), c.expires) for c in msg.contacts] == [
        ("sip:alice@pc33.atlanta.example.com", "30")
    ]
    assert msg.get("Content-Type") == "application/sdp"
    assert msg.int_header("Content-Length") == 4
    assert msg.body == b"v=0\n"
    for long, short in [("Via", "v"), ("Call-ID", "i"), ("Content-Length", "l")]:
        assert long in msg and short in msg
        assert msg.get(long) == msg.get(short)
    assert [h.name for h in msg.headers][:3] == ["v", "f", "t"]


def test_compact_and_long_forms_mix() -> None:
    data = edit(
        b"CSeq: 314159 INVITE\r\n",
        b"CSeq: 314159 INVITE\r\nVia: SIP/2.0/TCP 192.0.2.7;branch=z9hG4bK2\r\n",
        COMPACT,
    )
    msg = parse_request(data)
    assert [v.host for v in msg.vias] == ["pc33.atlanta.example.com", "192.0.2.7"]
    assert bytes(msg) == data


TWO_VIAS_ONE_LINE = edit(
    header_line(b"Via"),
    b"Via: SIP/2.0/UDP proxy.example.com:5070;branch=z9hG4bKtop,"
    b" SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n",
)
TWO_VIAS_TWO_LINES = edit(
    header_line(b"Via"),
    b"Via: SIP/2.0/UDP proxy.example.com:5070;branch=z9hG4bKtop\r\n"
    b"Via: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877\r\n",
)


@pytest.mark.parametrize("data", [TWO_VIAS_ONE_LINE, TWO_VIAS_TWO_LINES], ids=["one", "two"])
def test_two_vias(data: bytes) -> None:
    """RFC 3261 §7.3.1: a list on one line and the same list on two lines mean the same."""
    msg = parse(data)
    assert bytes(msg) == data
    assert msg.get_all("Via") == [
        "SIP/2.0/UDP proxy.example.com:5070;branch=z9hG4bKtop",
        "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKhjhs8ass877",
    ]
    assert [(v.host, v.port, v.branch) for v in msg.vias] == [
        ("proxy.example.com", 5070, "z9hG4bKtop"),
        ("pc33.atlanta.example.com", None, "z9hG4bKhjhs8ass877"),
    ]
    assert msg.via.branch == "z9hG4bKtop"


def test_get_all_order_across_lines_and_forms() -> None:
    data = edit(
        header_line(b"Via"),
        b"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com\r\n"
        b"v: SIP/2.0/TCP c.example.com\r\n"
        b"VIA: SIP/2.0/UDP d.example.com, SIP/2.0/UDP e.example.com\r\n",
    )
    msg = parse(data)
    assert [v.host for v in msg.vias] == [f"{c}.example.com" for c in "abcde"]


def test_contact_list_commas_in_quotes_and_brackets() -> None:
    data = replaced(
        b"Contact",
        b'"Doe, John" <sip:john@a.example.com;x=1,2>;q=0.5, <sip:k@b.example.com>,'
        b" sip:l@c.example.com",
    )
    msg = parse(data)
    assert [(c.display, str(c.uri)) for c in msg.contacts] == [
        ('"Doe, John"', "sip:john@a.example.com;x=1,2"),
        (None, "sip:k@b.example.com"),
        (None, "sip:l@c.example.com"),
    ]
    assert msg.contacts[0].params == {"q": "0.5"}


def test_contact_star() -> None:
    msg = parse(replaced(b"Contact", b"*"))
    (star,) = msg.contacts
    assert star.is_star and star.uri is None
    assert str(star) == "*"


def test_header_names_are_case_insensitive() -> None:
    data = (
        BASE.replace(b"\r\nVia:", b"\r\nvIA:")
        .replace(b"\r\nCall-ID:", b"\r\nCALL-id:")
        .replace(b"\r\nCSeq:", b"\r\ncseq:")
        .replace(b"\r\nContent-Length:", b"\r\ncontent-LENGTH:")
    )
    msg = parse(data)
    assert bytes(msg) == data
    assert msg.get("via") == msg.get("VIA") == msg.get("v")
    assert msg.via.branch == "z9hG4bKhjhs8ass877"
    assert msg.call_id == "a84b4c76e66710"
    assert msg.cseq.number == 63104
    assert msg.int_header("content-length") == 0
    assert [h.name for h in msg.headers if h.key == "call-id"] == ["CALL-id"]


def test_whitespace_before_colon() -> None:
    """RFC 3261 HCOLON = *( SP / HTAB ) ":" SWS."""
    data = edit(header_line(b"Accept"), b"Subject \t:   lunch  \r\n")
    msg = parse(data)
    assert msg.get("Subject") == "lunch"
    assert bytes(msg) == data


def test_folded_header_lines() -> None:
    """RFC 3261 §7.3.1: a line starting with SP or HTAB continues the previous header."""
    subject = (
        b"Subject: I know you're there,\r\n"
        b"         pick up the phone\r\n"
        b"\tand talk to me!\r\n"
    )  # fmt: skip
    data = edit(header_line(b"Accept"), subject)
    data = edit(
        header_line(b"Via"),
        b"Via: SIP/2.0/UDP pc33.atlanta.example.com\r\n ;branch=z9hG4bKfold\r\n",
        data,
    )
    msg = parse(data)
    assert bytes(msg) == data
    assert msg.get("Subject") == "I know you're there, pick up the phone and talk to me!"
    assert msg.via.branch == "z9hG4bKfold"
    assert msg.get("Max-Forwards") == "70"


# -- body framing ----------------------------------------------------------------------------

WITH_BODY = replaced(b"Content-Length", b"4") + b"abcd"


def test_body_by_content_length() -> None:
    msg = parse(WITH_BODY)
    assert msg.body == b"abcd"
    assert bytes(msg) == WITH_BODY


def test_datagram_trailer_discarded() -> None:
    """RFC 3261 §18.3: octets past Content-Length in a datagram are not part of the message."""
    msg = parse(WITH_BODY + b"OPTIONS sip:x SIP/2.0\r\n\r\n")
    assert msg.body == b"abcd"
    assert bytes(msg) == WITH_BODY


def test_zero_content_length_discards_everything_after_headers() -> None:
    msg = parse(BASE + b"\r\n\r\njunk")
    assert msg.body == b""
    assert bytes(msg) == BASE


def test_no_content_length_takes_the_rest_of_the_datagram() -> None:
    data = without(b"Content-Length") + b"rest\xff"
    msg = parse(data)
    assert msg.body == b"rest\xff"
    assert bytes(msg) == data


def test_binary_body() -> None:
    data = replaced(b"Content-Length", b"3") + b"\x00\xff\r"
    assert parse(data).body == b"\x00\xff\r"


def test_compact_content_length_frames_the_body() -> None:
    data = edit(header_line(b"Content-Length"), b"l: 2\r\n") + b"abcd"
    assert parse(data).body == b"ab"


def test_short_body() -> None:
    with pytest.raises(SipParseError, match=exact("Content-Length larger than the body")):
        parse(replaced(b"Content-Length", b"5") + b"abcd")


def test_largest_message() -> None:
    head = without(b"Content-Length")
    data = head + b"x" * (MAX_MESSAGE_SIZE - len(head))
    assert len(parse(data).body) == MAX_MESSAGE_SIZE - len(head)
    with pytest.raises(SipParseError, match=exact("message too large")):
        parse(data + b"x")


# -- start lines -----------------------------------------------------------------------------


def test_request_line() -> None:
    msg = parse_request(BASE)
    assert (msg.method, msg.uri, msg.version) == (
        "OPTIONS",
        "sip:carol@chicago.example.com",
        "SIP/2.0",
    )
    assert msg.start_line() == "OPTIONS sip:carol@chicago.example.com SIP/2.0"


def test_request_with_unknown_method_and_uri_scheme() -> None:
    data = edit(b"OPTIONS sip:carol@chicago.example.com", b"NEWMETHOD tel:+1-201-555-0123", BASE)
    msg = parse_request(data)
    assert (msg.method, msg.uri) == ("NEWMETHOD", "tel:+1-201-555-0123")
    assert bytes(msg) == data


@pytest.mark.parametrize(
    ("line", "status", "reason"),
    [
        (b"SIP/2.0 180 Ringing", 180, "Ringing"),
        (b"SIP/2.0 200 OK", 200, "OK"),
        (b"SIP/2.0 404 Not Found Here, really", 404, "Not Found Here, really"),
        (b"SIP/2.0 699 ", 699, ""),
        (b"SIP/2.0 100", 100, ""),
        ("SIP/2.0 480 Temporärement indisponible".encode(), 480, "Temporärement indisponible"),
    ],
)
def test_status_line(line: bytes, status: int, reason: str) -> None:
    data = line + BASE[BASE.index(b"\r\n") :]
    msg = parse_response(data)
    assert (msg.version, msg.status, msg.reason) == ("SIP/2.0", status, reason)
    assert bytes(msg) == data
    assert msg.cseq.method == "OPTIONS"


@pytest.mark.parametrize(
    "line",
    [b"OPTIONS sip:carol@chicago.example.com sip/2.0", b"sip/2.0 200 OK"],
    ids=["request", "response"],
)
def test_version_is_case_insensitive(line: bytes) -> None:
    """RFC 3261 §7.1: "The SIP-Version string is case-insensitive"."""
    data = line + BASE[BASE.index(b"\r\n") :]
    assert bytes(parse(data)) == data


# -- editing a message -------------------------------------------------------------------------


def test_set_add_remove() -> None:
    msg = parse(BASE)
    msg.set("cseq", "7 OPTIONS")
    assert msg.cseq.number == 7
    msg.add("Via", "SIP/2.0/TCP proxy.example.com;branch=z9hG4bKnew", first=True)
    assert [v.host for v in msg.vias] == ["proxy.example.com", "pc33.atlanta.example.com"]
    msg.remove("v")
    assert "Via" not in msg
    msg.add("Record-Route", "<sip:proxy.example.com;lr>")
    assert bytes(msg) == (
        b"OPTIONS sip:carol@chicago.example.com SIP/2.0\r\n"
        b"Max-Forwards: 70\r\n"
        b"To: <sip:carol@chicago.example.com>\r\n"
        b"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        b"Call-ID: a84b4c76e66710\r\n"
        b"cseq: 7 OPTIONS\r\n"
        b"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
        b"Expires: 3600\r\n"
        b"Accept: application/sdp\r\n"
        b"Content-Length: 0\r\n"
        b"Record-Route: <sip:proxy.example.com;lr>\r\n"
        b"\r\n"
    )


# -- make_response -------------------------------------------------------------------------


def test_make_response_bytes() -> None:
    request = parse_request(fixture("sipp-register-initial.sip"))
    response = make_response(
        request, 200, to_tag="as1", headers=[("Contact", "<sip:101@127.0.0.1:5062>;expires=60")]
    )
    assert bytes(response) == (
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-4607-1-0\r\n"
        b"From: <sip:101@127.0.0.1:5060>;tag=4607SIPpTag001\r\n"
        b"To: <sip:101@127.0.0.1:5060>;tag=as1\r\n"
        b"Call-ID: 1-4607@127.0.0.1\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b"Contact: <sip:101@127.0.0.1:5062>;expires=60\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )
    assert bytes(parse(bytes(response))) == bytes(response)


def test_make_response_copies_every_via_in_order() -> None:
    request = parse_request(TWO_VIAS_TWO_LINES)
    response = make_response(request, 486, to_tag="x")
    assert (response.status, response.reason) == (486, "Busy Here")
    assert response.get_all("Via") == request.get_all("Via")
    assert [h.name for h in response.headers] == [
        "Via", "Via", "To", "From", "Call-ID", "CSeq", "Content-Length",
    ]  # fmt: skip
    assert response.to.tag == "x"
    assert response.from_.tag == request.from_.tag
    assert response.call_id == request.call_id
    assert response.cseq == request.cseq


def test_make_response_keeps_compact_names_and_unfolds() -> None:
    request = parse_request(fixture("rfc4475-wsinv.sip"))
    response = make_response(request, 400, "Bad Request (wsinv)")
    assert [h.name for h in response.headers] == [
        "TO", "from", "Call-ID", "cseq", "Via", "v", "Content-Length",
    ]  # fmt: skip
    again = parse_response(bytes(response))
    assert bytes(again).startswith(b"SIP/2.0 400 Bad Request (wsinv)\r\nTO: sip:vivekg@")
    assert [v.branch for v in again.vias] == [v.branch for v in request.vias]
    assert again.cseq == request.cseq


@pytest.mark.parametrize(
    ("status", "to_tag", "expected_to"),
    [
        (100, "t1", "<sip:carol@chicago.example.com>"),
        (180, "t1", "<sip:carol@chicago.example.com>;tag=t1"),
        (200, "t1", "<sip:carol@chicago.example.com>;tag=t1"),
        (200, None, "<sip:carol@chicago.example.com>"),
        (404, "t1", "<sip:carol@chicago.example.com>;tag=t1"),
    ],
)
def test_make_response_to_tag(status: int, to_tag: str | None, expected_to: str) -> None:
    """§8.2.6.2: a UAS adds a To tag, except to 100 Trying, and only if there is none."""
    response = make_response(parse_request(BASE), status, to_tag=to_tag)
    assert response.get("To") == expected_to


def test_make_response_keeps_an_existing_to_tag() -> None:
    request = parse_request(fixture("baresip-ack.sip"))
    response = make_response(request, 200, to_tag="other")
    assert response.get("To") == "<sip:200@10.99.0.1:5060>;tag=8a48944dcb00"


def test_make_response_reason_and_body() -> None:
    response = make_response(
        parse_request(BASE), 299, headers=[("Content-Type", "text/plain")], body=b"hi"
    )
    assert (response.status, response.reason) == (299, "")
    assert response.get("Content-Length") == "2"
    assert bytes(response).endswith(b"Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi")
    assert parse(bytes(response)).body == b"hi"


def test_make_response_drops_other_headers() -> None:
    response = make_response(parse_request(BASE), 200)
    for name in ("Max-Forwards", "Contact", "Expires", "Accept"):
        assert name not in response


# -- errors: framing and syntax ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (BASE[:-2], "missing empty line after headers"),
        (BASE.replace(b"\r\n", b"\n"), "missing empty line after headers"),
        (b"", "missing empty line after headers"),
        (b"\r\n\r\n", "empty or NUL in header section"),
        (edit(b"a84b4c76e66710", b"a84b\x00c76e66710"), "empty or NUL in header section"),
        (edit(b"Alice", b"Al\xe9ce"), "header section is not valid UTF-8"),
        (edit(b"Alice", b"Al\xc3"), "header section is not valid UTF-8"),
        (edit(b"\r\nMax-Forwards", b"\nMax-Forwards"), "bare CR or LF in header section"),
        (edit(b"\r\nMax-Forwards", b"\rMax-Forwards"), "bare CR or LF in header section"),
        (edit(b"Alice", b"Al\nice"), "bare CR or LF in header section"),
        (
            b"OPTIONS sip:a@b SIP/2.0\r\n Via: x\r\n\r\n",
            "header continuation line before any header",
        ),
        (
            edit(b"Max-Forwards: 70", b"Max-Forwards 70"),
            "header line without colon: 'Max-Forwards 70'",
        ),
        (
            edit(b"Max-Forwards: 70", b"X" * 50),
            f"header line without colon: {'X' * 40!r}",
        ),
        (edit(b"Max-Forwards: 70", b"Max Forwards: 70"), "invalid header name 'Max Forwards'"),
        (edit(b"Max-Forwards: 70", b": 70"), "invalid header name ''"),
        (edit(b"Max-Forwards: 70", b"Max-Forwards@: 70"), "invalid header name 'Max-Forwards@'"),
        (
            edit(b"Max-Forwards: 70", b"Max-F\xc3\xb6rwards: 70"),
            "invalid header name 'Max-Förwards'",
        ),
        (
            edit(b"Max-Forwards: 70", b"Bad Name " * 6 + b": 70"),
            f"invalid header name {('Bad Name ' * 5)[:40]!r}",
        ),
        (replaced(b"Content-Length", b"zero"), "invalid Content-Length header"),
        (replaced(b"Content-Length", b"-1"), "invalid Content-Length header"),
        (replaced(b"Content-Length", b"12345678901"), "invalid Content-Length header"),
        (edit(header_line(b"Content-Length"), b"l: 1 2\r\n"), "invalid Content-Length header"),
        (replaced(b"Content-Length", b"1"), "Content-Length larger than the body"),
        (BASE + b"x" * (MAX_MESSAGE_SIZE + 1 - len(BASE)), "message too large"),
    ],
    ids=lambda v: None if isinstance(v, bytes) else v,
)
def test_invalid_message(data: bytes, reason: str) -> None:
    with pytest.raises(SipParseError, match=exact(reason)):
        parse(data)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"OPTIONS sip:carol@chicago.example.com SIP/2.0 extra", "bad request line"),
        (b"OPTIONS sip:carol@chicago.example.com SIP/2.0 ", "bad request line"),
        (b"OPTIONS  sip:carol@chicago.example.com SIP/2.0", "bad request line"),
        (b"OPTIONS\tsip:carol@chicago.example.com SIP/2.0", "bad request line"),
        (b" OPTIONS sip:carol@chicago.example.com SIP/2.0", "bad request line"),
        (b"OPTIONS sip:carol@chicago.example.com", "bad request line"),
        (b"OPTIONS sip:carol @chicago.example.com SIP/2.0", "bad request line"),
        (b"OPTIONS", "bad request line"),
        (b"OPT/ONS sip:carol@chicago.example.com SIP/2.0", "bad request method"),
        (b"OPTIONS sip:carol@chicago.example.com SIP/7.0", "unsupported SIP version"),
        (b"OPTIONS sip:carol@chicago.example.com SIP/2.0.1", "unsupported SIP version"),
        (b"OPTIONS sip:carol@chicago.example.com HTTP/1.1", "unsupported SIP version"),
        (b"OPTIONS carol SIP/2.0", "bad Request-URI"),
        (b"SIP/2.0", "bad status line"),
        (b"SIP/2.0OK", "bad status line"),
        (b"SIP/2.0OK 200", "unsupported SIP version"),
        (b"SIP/1.0 200 OK", "unsupported SIP version"),
        (b"SIP/2.00 200 OK", "unsupported SIP version"),
        (b"SIP/2.0 20 OK", "bad status code"),
        (b"SIP/2.0 2000 OK", "bad status code"),
        (b"SIP/2.0 099 OK", "bad status code"),
        (b"SIP/2.0 OK 200", "bad status code"),
        (b"SIP/2.0  200 OK", "bad status code"),
        ("SIP/2.0 ２００ OK".encode(), "bad status code"),
    ],
    ids=lambda v: v.decode() if isinstance(v, bytes) else v,
)
def test_invalid_start_line(line: bytes, reason: str) -> None:
    data = line + BASE[BASE.index(b"\r\n") :]
    with pytest.raises(SipParseError, match=exact(reason)):
        parse(data)


# -- errors: header values, read on first use ------------------------------------------------

Read = Callable[[SipMessage], object]
READERS: dict[str, Read] = {
    "Via": lambda m: m.vias,
    "CSeq": lambda m: m.cseq,
    "Call-ID": lambda m: m.call_id,
    "From": lambda m: m.from_,
    "To": lambda m: m.to,
    "Contact": lambda m: m.contacts,
    "Expires": lambda m: m.int_header("Expires"),
    "Max-Forwards": lambda m: m.int_header("Max-Forwards"),
}
"""How the stack reads each header of BASE; the values are parsed on this first read."""


def read_after_replacing(name: str, value: bytes | None) -> Callable[[], object]:
    """Parse BASE with header `name` set to `value` (None: left out); return its reader."""
    data = without(name.encode()) if value is None else replaced(name.encode(), value)
    msg = parse(data)  # the message itself is framed fine; the value fails when read
    return lambda: READERS[name](msg)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("Via", None, "missing Via header"),
        ("Via", b"", "missing Via header"),
        ("Via", b"SIP/2.0/UDP", "invalid Via header"),
        ("Via", b"SIP/2.0 host.example.com", "invalid Via header"),
        ("Via", b"SIP/3.0/UDP host.example.com", "invalid Via header"),
        ("Via", b"HTTP/2.0/UDP host.example.com", "invalid Via header"),
        ("Via", b"SIP/2.0/U(P host.example.com", "invalid Via header"),
        ("Via", b"SIP/2.0/UDP/X host.example.com", "invalid Via header"),
        ("Via", b"SIP/2.0/UDP :5060", "bad host in Via header"),
        ("Via", b'SIP/2.0/UDP ho"st', "bad host in Via header"),
        ("Via", b"SIP/2.0/UDP [::1]x", "bad host in Via header"),
        ("Via", b"SIP/2.0/UDP [::1", "bad IPv6 reference in Via header"),
        ("Via", b"SIP/2.0/UDP host.example.com:0", "bad port in Via header"),
        ("Via", b"SIP/2.0/UDP host.example.com:65536", "bad port in Via header"),
        ("Via", b"SIP/2.0/UDP host.example.com:x", "bad port in Via header"),
        ("Via", b"SIP/2.0/UDP host;;branch=z9hG4bK1", "empty parameter in Via header"),
        ("Via", b'SIP/2.0/UDP host;x="a;b";=1', "empty parameter in Via header"),
        ("Via", b"SIP/2.0/UDP a.example.com, SIP/2.0/UDP b:99999", "bad port in Via header"),
        ("CSeq", None, "missing CSeq header"),
        ("CSeq", b"63104", "invalid CSeq header"),
        ("CSeq", b"x OPTIONS", "invalid CSeq header"),
        ("CSeq", b"-1 OPTIONS", "invalid CSeq header"),
        ("CSeq", b"1 OPTIONS x", "invalid CSeq header"),
        ("CSeq", b"1 OPT/ONS", "invalid CSeq header"),
        ("CSeq", b"2147483648 OPTIONS", "invalid CSeq header"),
        ("CSeq", "١ OPTIONS".encode(), "invalid CSeq header"),
        ("Call-ID", None, "missing Call-ID header"),
        ("Call-ID", b"", "invalid Call-ID header"),
        ("Call-ID", b"a84b c76e", "invalid Call-ID header"),
        ("From", None, "missing From header"),
        ("From", b"<sip:alice@atlanta.example.com", "invalid From header"),
        ("From", b'"Alice <sip:alice@atlanta.example.com>', "invalid From header"),
        ("From", b"<sip:alice@atlanta.example.com> x", "invalid From header"),
        ("From", b"sip:alice@atlanta.example.com x", "invalid From header"),
        ("From", b"<>", "invalid From header"),
        ("From", b"<alice>", "bad URI in From header"),
        ("From", b"<1sip:alice@atlanta.example.com>", "bad URI in From header"),
        ("From", b"<sip:@atlanta.example.com>", "empty user in From header"),
        ("From", b"<sip:alice@>", "bad host in From header"),
        ("From", b"<sip:alice@atlanta.example.com:0>", "bad port in From header"),
        ("From", b"<sip:alice@atlanta.example.com>;;tag=1", "empty parameter in From header"),
        ("From", b"<sip:alice@atlanta.example.com;;lr>", "empty parameter in From header"),
        ("To", None, "missing To header"),
        ("To", b"<sip:carol@chicago.example.com", "invalid To header"),
        ("To", b"<mailto carol>", "bad URI in To header"),
        ("To", b"<sip:[::1>", "bad IPv6 reference in To header"),
        ("Contact", b"<sip:a@a.example.com>, <sip:b@b.example.com", "invalid Contact header"),
        ("Contact", b"<tel:>", "bad URI in Contact header"),
        ("Expires", b"soon", "invalid Expires header"),
        ("Expires", b"-1", "invalid Expires header"),
        ("Expires", b"12345678901", "invalid Expires header"),
        ("Max-Forwards", b"7O", "invalid Max-Forwards header"),
    ],
    ids=lambda v: v.decode(errors="replace")[:40] if isinstance(v, bytes) else v,
)
def test_invalid_header_value(name: str, value: bytes | None, reason: str) -> None:
    read = read_after_replacing(name, value)
    with pytest.raises(SipParseError, match=exact(reason)):
        read()


HUGE = b"1" * 5000  # more digits than int() converts (sys.get_int_max_str_digits() is 4300)


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("CSeq", HUGE + b" OPTIONS", "invalid CSeq header"),
        ("Via", b"SIP/2.0/UDP host.example.com:" + HUGE, "bad port in Via header"),
        ("Contact", b"<sip:a@a.example.com:" + HUGE + b">", "bad port in Contact header"),
        ("From", b"<sip:a@a.example.com:" + HUGE + b">", "bad port in From header"),
    ],
    ids=["cseq", "via-port", "contact-port", "from-port"],
)
def test_number_too_long_for_int(name: str, value: bytes, reason: str) -> None:
    """A 5,000-digit number fits in a datagram; it must be a parse error, not int()'s ValueError."""
    read = read_after_replacing(name, value)
    with pytest.raises(SipParseError, match=exact(reason)):
        read()


def test_header_values_are_valid_in_base() -> None:
    """The message the error tests edit is itself fine."""
    msg = parse(BASE)
    for read in READERS.values():
        read(msg)
    assert bytes(msg) == BASE


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(SipParseError, ValueError)
    assert str(SipParseError("bad request line")) == "bad request line"
