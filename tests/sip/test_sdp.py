"""Tests of `appliance.sip.sdp`: SDP bodies from real phones (and the RFCs' examples) parse and
print back byte for byte, every accessor reads them right, edits show up in place, the exact
reason of every parse error, `audio_offer` byte for byte, the RFC 3264 helpers, and
Hypothesis: generated descriptions round-trip and arbitrary bytes only ever raise SdpError."""

from __future__ import annotations

import contextlib
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.sip.message import parse as parse_sip
from appliance.sip.sdp import (
    DIRECTIONS,
    MAX_SDP_SIZE,
    STATIC_PAYLOADS,
    Media,
    Origin,
    Rtpmap,
    SdpError,
    SessionDescription,
    answer_direction,
    audio_offer,
    rejected_media,
)

FIXTURE_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "sip"


def sip_body(name: str) -> bytes:
    """The body of a captured SIP message in tests/fixtures/sip."""
    return parse_sip((FIXTURE_DIR / name).read_bytes()).body


def exact(reason: str) -> str:
    """A `match=` pattern for the whole error message, not just a part of it."""
    return rf"\A{re.escape(reason)}\Z"


def parse(data: bytes | str) -> SessionDescription:
    return SessionDescription.parse(data)


# -- SDP bodies -----------------------------------------------------------------------------

BARESIP_OFFER = sip_body("baresip-invite.sip")
"""baresip 1.0.0's INVITE offer, captured (see tests/fixtures/sip/README.md)."""

RFC4475_BODY = sip_body("rfc4475-wsinv.sip")
"""The body of RFC 4475's torture INVITE: two m= lines, one `a=rtpmap` without a clock rate."""

# Captured from PJSIP 2.15.1 (PyPI pjsua2-python 2.15.1.post1) on loopback: Call.makeCall to
# a throwaway UAS that answered with ASTERISK_ANSWER, then Call.setHold. Null audio device,
# default codecs. Note c=, b= and a=rtcp at media level, b=AS at session level before t=.
PJSIP_OFFER = (
    b"v=0\r\n"
    b"o=- 4004632566 4004632566 IN IP4 127.0.0.1\r\n"
    b"s=pjmedia\r\n"
    b"b=AS:84\r\n"
    b"t=0 0\r\n"
    b"a=X-nat:0\r\n"
    b"m=audio 4000 RTP/AVP 96 97 98 99 3 0 8 9 120 121 122\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"b=TIAS:64000\r\n"
    b"a=rtcp:4001 IN IP4 127.0.0.1\r\n"
    b"a=sendrecv\r\n"
    b"a=rtpmap:96 speex/16000\r\n"
    b"a=rtpmap:97 speex/8000\r\n"
    b"a=rtpmap:98 speex/32000\r\n"
    b"a=rtpmap:99 iLBC/8000\r\n"
    b"a=fmtp:99 mode=30\r\n"
    b"a=rtpmap:3 GSM/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:9 G722/8000\r\n"
    b"a=rtpmap:120 telephone-event/16000\r\n"
    b"a=fmtp:120 0-16\r\n"
    b"a=rtpmap:121 telephone-event/8000\r\n"
    b"a=fmtp:121 0-16\r\n"
    b"a=rtpmap:122 telephone-event/32000\r\n"
    b"a=fmtp:122 0-16\r\n"
    b"a=ssrc:965919964 cname:2720ad3232c08b60\r\n"
)

# The same PJSIP call's hold re-INVITE (RFC 3264 §8.4): version bumped, a=sendrecv gone and
# a=sendonly added at the end, the address kept.
PJSIP_HOLD = (
    PJSIP_OFFER.replace(b"4004632566 IN", b"4004632567 IN")
    .replace(b"a=sendrecv\r\n", b"")
    .replace(b"a=ssrc:965919964 cname:2720ad3232c08b60\r\n", b"")
    + b"a=ssrc:965919964 cname:2720ad3232c08b60\r\n"
    + b"a=sendonly\r\n"
)

# Captured from sipp 3.6.1 (Debian sip-tester 1:3.6.1-1+b2), `sipp -sn uac`: its built-in
# scenario's INVITE body.
SIPP_OFFER = (
    b"v=0\r\n"
    b"o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    b"s=-\r\n"
    b"c=IN IP4 127.0.0.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
)

# Written here, not captured: an answer in the form Asterisk's chan_pjsip gives.
ASTERISK_ANSWER = (
    b"v=0\r\n"
    b"o=- 1920927385 1920927387 IN IP4 192.0.2.10\r\n"
    b"s=Asterisk\r\n"
    b"c=IN IP4 192.0.2.10\r\n"
    b"t=0 0\r\n"
    b"m=audio 17342 RTP/AVP 0 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=maxptime:150\r\n"
    b"a=sendrecv\r\n"
)

# Written here, not captured: a hold offer in the old style of RFC 2543 (c= 0.0.0.0), as some
# phones still send it, with a=sendonly as well.
RFC2543_HOLD = (
    b"v=0\r\n"
    b"o=SIPPhone 8000 8001 IN IP4 192.0.2.33\r\n"
    b"s=SIP Call\r\n"
    b"c=IN IP4 0.0.0.0\r\n"
    b"t=0 0\r\n"
    b"m=audio 16384 RTP/AVP 8 0 18 101\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=fmtp:18 annexb=no\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=sendonly\r\n"
)

# RFC 8866 §5's example: i=, u=, e=, p= lines, three media, an IPv6 c= in the last one.
RFC8866_EXAMPLE = (
    b"v=0\r\n"
    b"o=jdoe 3724394400 3724394405 IN IP4 198.51.100.1\r\n"
    b"s=Call to John Smith\r\n"
    b"i=SDP Offer #1\r\n"
    b"u=http://www.jdoe.example.com/home.html\r\n"
    b"e=Jane Doe <jane@jdoe.example.com>\r\n"
    b"p=+1 617 555-6011\r\n"
    b"c=IN IP4 198.51.100.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0\r\n"
    b"m=audio 49180 RTP/AVP 0\r\n"
    b"m=video 51372 RTP/AVP 99\r\n"
    b"c=IN IP6 2001:db8::2\r\n"
    b"a=rtpmap:99 h263-1998/90000\r\n"
)

# RFC 4566 §5's example, with the r= and z= lines of its §5.10 and §5.11 added: a multicast
# c= with a TTL, a session-level direction.
RFC4566_EXAMPLE = (
    b"v=0\r\n"
    b"o=jdoe 2890844526 2890842807 IN IP4 10.47.16.5\r\n"
    b"s=SDP Seminar\r\n"
    b"i=A Seminar on the session description protocol\r\n"
    b"u=http://www.example.com/seminars/sdp.pdf\r\n"
    b"e=j.doe@example.com (Jane Doe)\r\n"
    b"c=IN IP4 224.2.17.12/127\r\n"
    b"t=2873397496 2873404696\r\n"
    b"r=7d 1h 0 25h\r\n"
    b"z=2882844526 -1h 2898848070 0\r\n"
    b"a=recvonly\r\n"
    b"m=audio 49170 RTP/AVP 0\r\n"
    b"m=video 51372 RTP/AVP 99\r\n"
    b"a=rtpmap:99 h263-1998/90000\r\n"
)

# Written here: what well-formed SDP allows that the others lack: lines out of the usual order
# (a= before c= and b=), unknown line types at both levels, a layered port count, runs of
# spaces, a rejected stream without formats, attributes with empty values, IPv6 everywhere.
ODD_BUT_VALID = (
    b"v=0\r\n"
    b"o=alice  7 0042 IN IP6 2001:db8::1\r\n"
    b"s= \r\n"
    b"y=unknown session line\r\n"
    b"t=0 0\r\n"
    b"c=IN IP6 2001:db8::1\r\n"
    b"a=group:BUNDLE 0\r\n"
    b"b=AS:64\r\n"
    b"m=audio 5004/2  RTP/AVP 0 101\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"c=IN IP6 2001:db8::2\r\n"
    b"a=fmtp:101\r\n"
    b"b=TIAS:64000\r\n"
    b"a=mid:0\r\n"
    b"a=empty:\r\n"
    b"x=unknown media line\r\n"
    b"a=inactive\r\n"
    b"m=video 0 RTP/AVP\r\n"
)

BODIES = {
    "baresip-offer": BARESIP_OFFER,
    "rfc4475-wsinv": RFC4475_BODY,
    "pjsip-offer": PJSIP_OFFER,
    "pjsip-hold": PJSIP_HOLD,
    "sipp-offer": SIPP_OFFER,
    "asterisk-answer": ASTERISK_ANSWER,
    "rfc2543-hold": RFC2543_HOLD,
    "rfc8866-example": RFC8866_EXAMPLE,
    "rfc4566-example": RFC4566_EXAMPLE,
    "odd-but-valid": ODD_BUT_VALID,
}


# -- round trips ----------------------------------------------------------------------------


def test_captured_bodies_are_what_we_think() -> None:
    assert BARESIP_OFFER.startswith(b"v=0\r\no=- 2904809799 719464416 IN IP4 10.99.0.1\r\n")
    assert len(BARESIP_OFFER) == 340
    assert RFC4475_BODY.endswith(b"a=rtpmap:31 LPC\r\n")
    assert len(PJSIP_OFFER) == len(PJSIP_HOLD) == 619  # the captured Content-Length


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_round_trip(body: bytes) -> None:
    assert bytes(parse(body)) == body


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_str_parses_as_bytes(body: bytes) -> None:
    assert parse(body.decode()) == parse(body)


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_bare_lf_is_written_back_with_crlf(body: bytes) -> None:
    assert bytes(parse(body.replace(b"\r\n", b"\n"))) == body


@pytest.mark.parametrize(
    "tail", [b"\r\n", b"\n", b"\r\n\r\n\n"], ids=["empty-line", "lf", "several"]
)
def test_trailing_empty_lines_are_tolerated(tail: bytes) -> None:
    assert bytes(parse(SIPP_OFFER + tail)) == SIPP_OFFER


def test_missing_last_line_end_is_tolerated() -> None:
    assert bytes(parse(SIPP_OFFER[:-2])) == SIPP_OFFER


def test_size_limit() -> None:
    filler = MAX_SDP_SIZE - len(SIPP_OFFER) - len("a=x:\r\n")
    largest = SIPP_OFFER + b"a=x:" + b"y" * filler + b"\r\n"
    assert len(largest) == MAX_SDP_SIZE
    assert bytes(parse(largest)) == largest
    with pytest.raises(SdpError, match=exact("SDP larger than 16384 bytes")):
        parse(largest + b"\r\n")
    with pytest.raises(SdpError, match=exact("SDP larger than 16384 bytes")):
        parse(largest.decode()[:-2] + "é\r\n")  # 16,384 characters but 16,385 bytes


# -- values read from real bodies -----------------------------------------------------------


def test_baresip_offer_values() -> None:
    sdp = parse(BARESIP_OFFER)
    assert sdp.version == 0
    assert sdp.origin == Origin("-", "2904809799", 719464416, "IN", "IP4", "10.99.0.1")
    assert str(sdp.origin) == "- 2904809799 719464416 IN IP4 10.99.0.1"
    assert sdp.name == "-"
    assert sdp.connection == "10.99.0.1"
    assert sdp.times == ["0 0"]
    assert sdp.attributes == [("tool", "baresip 1.0.0")]
    assert sdp.other == []
    (audio,) = sdp.media
    assert (audio.kind, audio.port, audio.proto) == ("audio", 8520, "RTP/AVP")
    assert audio.formats == ["0", "8", "101"]
    assert audio.connection is None
    assert audio.other == []
    assert audio.attributes == [
        ("rtpmap", "0 PCMU/8000"),
        ("rtpmap", "8 PCMA/8000"),
        ("rtpmap", "101 telephone-event/8000"),
        ("fmtp", "101 0-15"),
        ("sendrecv", None),
        ("label", "1"),
        ("rtcp-rsize", None),
        ("ssrc", "3372416785 cname:sip:101@10.99.0.1:5060"),
        ("minptime", "20"),
        ("ptime", "20"),
    ]
    assert audio.rtpmap(0) == Rtpmap("PCMU", 8000)
    assert audio.rtpmap(8) == Rtpmap("PCMA", 8000)
    assert audio.rtpmap(101) == Rtpmap("telephone-event", 8000)
    assert audio.fmtp(101) == "0-15"
    assert audio.fmtp(0) is None
    assert audio.direction == "sendrecv"
    assert audio.ptime == 20
    assert audio.rtcp_port is None
    assert audio.has("rtcp-rsize")
    assert audio.attribute("rtcp-rsize") is None
    assert audio.attribute("ssrc") == "3372416785 cname:sip:101@10.99.0.1:5060"
    assert audio.attribute("rtcp") is None
    assert not audio.has("rtcp")
    assert sdp.address(audio) == "10.99.0.1"
    assert sdp.direction(audio) == "sendrecv"
    assert not sdp.on_hold(audio)
    assert sdp.attribute("tool") == "baresip 1.0.0"
    assert sdp.has("tool")
    assert not sdp.has("sendrecv")


def test_pjsip_offer_values() -> None:
    sdp = parse(PJSIP_OFFER)
    assert sdp.origin.session_id == "4004632566"
    assert sdp.origin.session_version == 4004632566
    assert sdp.name == "pjmedia"
    assert sdp.connection is None
    assert sdp.other == [("b", "AS:84")]
    assert sdp.attributes == [("X-nat", "0")]
    (audio,) = sdp.media
    assert audio.formats == ["96", "97", "98", "99", "3", "0", "8", "9", "120", "121", "122"]
    assert audio.connection == "127.0.0.1"
    assert audio.other == [("b", "TIAS:64000")]
    assert sdp.address(audio) == "127.0.0.1"
    assert audio.rtcp_port == 4001
    assert audio.direction == "sendrecv"
    assert audio.ptime is None
    assert [audio.rtpmap(int(pt)) for pt in audio.formats] == [
        Rtpmap("speex", 16000),
        Rtpmap("speex", 8000),
        Rtpmap("speex", 32000),
        Rtpmap("iLBC", 8000),
        Rtpmap("GSM", 8000),
        Rtpmap("PCMU", 8000),
        Rtpmap("PCMA", 8000),
        Rtpmap("G722", 8000),
        Rtpmap("telephone-event", 16000),
        Rtpmap("telephone-event", 8000),
        Rtpmap("telephone-event", 32000),
    ]
    assert audio.fmtp(99) == "mode=30"
    assert audio.fmtp(121) == "0-16"
    assert audio.fmtp(12) is None  # not "fmtp:120": payload types match whole


def test_pjsip_hold_values() -> None:
    offer, hold = parse(PJSIP_OFFER), parse(PJSIP_HOLD)
    assert hold.origin.session_version == offer.origin.session_version + 1
    (audio,) = hold.media
    assert audio.direction == "sendonly"
    assert audio.attributes[-1] == ("sendonly", None)
    assert hold.on_hold(audio)
    assert not offer.on_hold(offer.media[0])
    assert hold.address(audio) == "127.0.0.1"


def test_sipp_offer_values() -> None:
    sdp = parse(SIPP_OFFER)
    assert sdp.origin == Origin("user1", "53655765", 2353687637, "IN", "IP4", "127.0.0.1")
    (audio,) = sdp.media
    assert (audio.port, audio.formats) == (6000, ["0"])
    assert audio.direction is None
    assert sdp.direction(audio) == "sendrecv"
    assert audio.ptime is None


def test_asterisk_answer_values() -> None:
    sdp = parse(ASTERISK_ANSWER)
    (audio,) = sdp.media
    assert audio.formats == ["0", "101"]
    assert audio.ptime == 20
    assert audio.attribute("maxptime") == "150"
    assert audio.fmtp(101) == "0-16"


def test_rfc2543_hold_values() -> None:
    sdp = parse(RFC2543_HOLD)
    (audio,) = sdp.media
    assert sdp.address(audio) == "0.0.0.0"
    assert sdp.direction(audio) == "sendonly"
    assert audio.rtpmap(18) == Rtpmap("G729", 8000)
    assert audio.fmtp(18) == "annexb=no"
    assert sdp.on_hold(audio)


def test_rfc4475_body_values() -> None:
    sdp = parse(RFC4475_BODY)
    assert sdp.origin.username == "mhandley"
    audio, video = sdp.media
    assert (audio.kind, audio.port, audio.formats) == ("audio", 49217, ["0", "12"])
    assert audio.rtpmap(0) == STATIC_PAYLOADS[0] == Rtpmap("PCMU", 8000)
    assert audio.rtpmap(12) == Rtpmap("QCELP", 8000)
    assert audio.rtpmap(96) is None
    assert (video.kind, video.port, video.formats) == ("video", 3227, ["31"])
    assert sdp.address(video) == "192.0.2.4"
    # "a=rtpmap:31 LPC" has no clock rate; 31 is not taken to be H261 regardless.
    with pytest.raises(SdpError, match=exact("malformed a=rtpmap value '31 LPC'")):
        video.rtpmap(31)


def test_rfc8866_example_values() -> None:
    sdp = parse(RFC8866_EXAMPLE)
    assert sdp.other == [
        ("i", "SDP Offer #1"),
        ("u", "http://www.jdoe.example.com/home.html"),
        ("e", "Jane Doe <jane@jdoe.example.com>"),
        ("p", "+1 617 555-6011"),
    ]
    first, second, video = sdp.media
    assert sdp.address(first) == sdp.address(second) == "198.51.100.1"
    assert video.connection == sdp.address(video) == "2001:db8::2"
    assert video.rtpmap(99) == Rtpmap("h263-1998", 90000)


def test_rfc4566_example_values() -> None:
    sdp = parse(RFC4566_EXAMPLE)
    assert sdp.connection == "224.2.17.12"  # the /127 TTL is not part of the address
    assert sdp.times == ["2873397496 2873404696"]
    assert sdp.other[-2:] == [("r", "7d 1h 0 25h"), ("z", "2882844526 -1h 2898848070 0")]
    audio, _ = sdp.media
    assert audio.direction is None
    assert sdp.direction(audio) == "recvonly"


def test_odd_but_valid_values() -> None:
    sdp = parse(ODD_BUT_VALID)
    assert sdp.origin == Origin("alice", "7", 42, "IN", "IP6", "2001:db8::1")
    assert sdp.name == " "
    assert sdp.connection == "2001:db8::1"
    assert sdp.other == [("y", "unknown session line"), ("b", "AS:64")]
    audio, video = sdp.media
    assert (audio.port, audio.proto, audio.formats) == (5004, "RTP/AVP", ["0", "101"])
    assert audio.connection == "2001:db8::2"
    assert audio.other == [("b", "TIAS:64000"), ("x", "unknown media line")]
    assert audio.fmtp(101) is None  # "a=fmtp:101" with no parameters
    assert audio.attribute("empty") == ""
    assert audio.direction == "inactive"
    assert (video.port, video.formats) == (0, [])


# -- accessors ------------------------------------------------------------------------------


def media_with(*attributes: tuple[str, str | None]) -> Media:
    return Media("audio", 5004, "RTP/AVP", ["0", "96"], None, list(attributes), [])


def test_rtpmap_wins_over_the_static_table() -> None:
    media = media_with(("rtpmap", "0 pcmu/8000"), ("rtpmap", "96 opus/48000/2"))
    assert media.rtpmap(0) == Rtpmap("pcmu", 8000)
    assert media.rtpmap(96) == Rtpmap("opus", 48000, 2)
    assert media.rtpmap(8) == Rtpmap("PCMA", 8000)
    assert media.rtpmap(97) is None
    assert media_with(("rtpmap", "96  L16/16000 ")).rtpmap(96) == Rtpmap("L16", 16000)


@pytest.mark.parametrize(
    "value",
    ["96 opus", "96 opus/", "96 /8000", "96 opus/x", "96 opus/8000/0", "96 opus/0",
     "96 opus/48000/2/1", "96 tele event/8000", "96 ", "96 opus/１６000"],
)  # fmt: skip
def test_malformed_rtpmap(value: str) -> None:
    media = media_with(("rtpmap", value))
    with pytest.raises(SdpError, match=exact(f"malformed a=rtpmap value {value!r}")):
        media.rtpmap(96)


def test_first_rtpmap_and_fmtp_win() -> None:
    media = media_with(
        ("rtpmap", "96 opus/48000/2"),
        ("fmtp", "96 useinbandfec=1"),
        ("rtpmap", "96 G722/8000"),
        ("fmtp", "96 stereo=1"),
    )
    assert media.rtpmap(96) == Rtpmap("opus", 48000, 2)
    assert media.fmtp(96) == "useinbandfec=1"


def test_attribute_and_has() -> None:
    media = media_with(("label", "1"), ("rtcp-mux", None), ("label", "2"), ("empty", ""))
    assert media.attribute("label") == "1"
    assert media.has("label")
    assert media.attribute("rtcp-mux") is None
    assert media.has("rtcp-mux")
    assert media.attribute("empty") == ""
    assert media.attribute("absent") is None
    assert not media.has("absent")
    assert not media.has("Label")  # attribute names match exactly


def test_direction_is_the_first_direction_attribute() -> None:
    assert media_with().direction is None
    assert media_with(("recvonly", None), ("sendonly", None)).direction == "recvonly"


@pytest.mark.parametrize(
    ("value", "ptime"),
    [("20", 20), ("30", 30), (" 20", 20), ("20.0", 20), ("22.5", 23), ("0.6", 1)],
)
def test_ptime(value: str, ptime: int) -> None:
    assert media_with(("ptime", value)).ptime == ptime


@pytest.mark.parametrize("value", [None, "", "0", "0.0", "x", "20ms", "-20", "2.", ".5", "1e3"])
def test_malformed_ptime(value: str | None) -> None:
    media = media_with(("ptime", value))
    with pytest.raises(SdpError, match=exact(f"malformed a=ptime value {value or ''!r}")):
        _ = media.ptime


@pytest.mark.parametrize(
    ("value", "port"),
    [("53020", 53020), ("53020 IN IP4 126.16.64.4", 53020), ("9 IN IP6 ::1", 9), ("0", 0)],
)
def test_rtcp_port(value: str, port: int) -> None:
    assert media_with(("rtcp", value)).rtcp_port == port


@pytest.mark.parametrize("value", [None, "", "x", "65536", "-1", "53020/2", "１"])
def test_malformed_rtcp(value: str | None) -> None:
    media = media_with(("rtcp", value))
    with pytest.raises(SdpError, match=exact(f"malformed a=rtcp value {value or ''!r}")):
        _ = media.rtcp_port


def test_session_level_direction_and_address() -> None:
    sdp = parse(SIPP_OFFER)
    audio = sdp.media[0]
    sdp.attributes.append(("inactive", None))
    assert sdp.direction(audio) == "inactive"
    assert sdp.on_hold(audio)
    audio.set_direction("recvonly")
    assert sdp.direction(audio) == "recvonly"
    assert not sdp.on_hold(audio)
    audio.connection = "192.0.2.1"
    assert sdp.address(audio) == "192.0.2.1"
    sdp.connection = audio.connection = None
    assert sdp.address(audio) is None


# -- edits show up in bytes(), untouched lines stay where they were --------------------------


def test_set_direction_replaces_in_place() -> None:
    sdp = parse(PJSIP_OFFER)
    sdp.media[0].set_direction("sendonly")
    assert bytes(sdp) == PJSIP_OFFER.replace(b"a=sendrecv", b"a=sendonly")


def test_set_direction_appends_when_there_is_none() -> None:
    sdp = parse(SIPP_OFFER)
    sdp.media[0].set_direction("inactive")
    assert bytes(sdp) == SIPP_OFFER + b"a=inactive\r\n"


def test_set_direction_keeps_one() -> None:
    media = media_with(("label", "1"), ("sendonly", None), ("ptime", "20"), ("recvonly", None))
    media.set_direction("sendrecv")
    assert media.attributes == [("label", "1"), ("sendrecv", None), ("ptime", "20")]
    with pytest.raises(ValueError, match=exact("not an SDP direction: 'hold'")):
        media.set_direction("hold")


def test_port_and_formats_edits() -> None:
    sdp = parse(BARESIP_OFFER)
    sdp.media[0].port = 0
    sdp.media[0].formats = ["0"]
    assert bytes(sdp) == BARESIP_OFFER.replace(
        b"m=audio 8520 RTP/AVP 0 8 101", b"m=audio 0 RTP/AVP 0"
    )


def test_session_connection_edits() -> None:
    sdp = parse(BARESIP_OFFER)
    sdp.connection = "192.0.2.7"
    assert bytes(sdp) == BARESIP_OFFER.replace(b"c=IN IP4 10.99.0.1", b"c=IN IP4 192.0.2.7")
    sdp.connection = "2001:db8::7"
    assert bytes(sdp) == BARESIP_OFFER.replace(b"c=IN IP4 10.99.0.1", b"c=IN IP6 2001:db8::7")
    sdp.connection = None
    assert bytes(sdp) == BARESIP_OFFER.replace(b"c=IN IP4 10.99.0.1\r\n", b"")


def test_media_connection_added_goes_after_m() -> None:
    sdp = parse(BARESIP_OFFER)
    sdp.media[0].connection = "0.0.0.0"
    assert bytes(sdp) == BARESIP_OFFER.replace(
        b"m=audio 8520 RTP/AVP 0 8 101\r\n", b"m=audio 8520 RTP/AVP 0 8 101\r\nc=IN IP4 0.0.0.0\r\n"
    )


def test_media_connection_edit_in_place() -> None:
    sdp = parse(PJSIP_OFFER)
    sdp.media[0].connection = "192.0.2.1"
    assert bytes(sdp) == PJSIP_OFFER.replace(
        b"c=IN IP4 127.0.0.1\r\nb=", b"c=IN IP4 192.0.2.1\r\nb="
    )


def test_session_other_added_goes_before_t() -> None:
    sdp = parse(BARESIP_OFFER)
    sdp.other.append(("b", "AS:64"))
    assert bytes(sdp) == BARESIP_OFFER.replace(b"t=0 0\r\n", b"b=AS:64\r\nt=0 0\r\n")


def test_attributes_added_and_removed() -> None:
    sdp = parse(ASTERISK_ANSWER)
    audio = sdp.media[0]
    audio.attributes = [a for a in audio.attributes if a[0] != "maxptime"]
    audio.attributes.append(("rtcp-mux", None))
    assert bytes(sdp) == ASTERISK_ANSWER.replace(b"a=maxptime:150\r\n", b"") + b"a=rtcp-mux\r\n"


def test_session_attribute_added_after_the_others() -> None:
    sdp = parse(PJSIP_OFFER)
    sdp.attributes.append(("sendonly", None))
    assert bytes(sdp) == PJSIP_OFFER.replace(b"a=X-nat:0\r\n", b"a=X-nat:0\r\na=sendonly\r\n")


def test_origin_version_bump() -> None:
    sdp = parse(PJSIP_OFFER)
    sdp.origin.session_version += 1
    assert bytes(sdp) == PJSIP_OFFER.replace(b"4004632566 IN", b"4004632567 IN")


def test_media_sections_reordered_and_removed() -> None:
    sdp = parse(RFC8866_EXAMPLE)
    first, _, video = sdp.media
    sdp.media = [video, first]
    head, rest = RFC8866_EXAMPLE.split(b"m=audio 49170", 1)
    assert bytes(sdp) == (
        head + b"m=video 51372 RTP/AVP 99\r\nc=IN IP6 2001:db8::2\r\n"
        b"a=rtpmap:99 h263-1998/90000\r\nm=audio 49170 RTP/AVP 0\r\n"
    )
    assert rest  # the untouched head is everything before the first m=


def test_raw_spelling_kept_until_the_value_changes() -> None:
    sdp = parse(ODD_BUT_VALID)
    audio = sdp.media[0]
    assert bytes(sdp).count(b"m=audio 5004/2  RTP/AVP 0 101\r\n") == 1
    assert b"o=alice  7 0042 IN IP6" in bytes(sdp)
    audio.port = 6000
    sdp.origin.session_version = 43
    out = bytes(sdp)
    assert b"m=audio 6000 RTP/AVP 0 101\r\n" in out
    assert b"o=alice 7 43 IN IP6 2001:db8::1\r\n" in out


def test_multicast_ttl_kept_until_the_address_changes() -> None:
    sdp = parse(RFC4566_EXAMPLE)
    assert b"c=IN IP4 224.2.17.12/127\r\n" in bytes(sdp)
    sdp.connection = "224.2.17.13"
    assert bytes(sdp) == RFC4566_EXAMPLE.replace(b"224.2.17.12/127", b"224.2.17.13")


def test_attribute_with_trailing_space() -> None:
    body = SIPP_OFFER + b"a=sendonly \r\n"
    sdp = parse(body)
    assert sdp.media[0].direction == "sendonly"
    assert bytes(sdp) == body
    sdp.media[0].set_direction("sendrecv")
    assert bytes(sdp) == SIPP_OFFER + b"a=sendrecv\r\n"


def test_built_by_hand_is_written_in_rfc_order() -> None:
    media = Media("audio", 5004, "RTP/AVP", ["0"], "192.0.2.2", [("sendrecv", None)],
                  [("x", "unknown"), ("b", "AS:64"), ("i", "after b, as listed")])  # fmt: skip
    sdp = SessionDescription(
        version=0,
        origin=Origin("-", "1", 1, "IN", "IP4", "192.0.2.1"),
        name="-",
        connection="192.0.2.1",
        attributes=[("tool", "test")],
        media=[media],
        other=[("k", "prompt"), ("i", "info"), ("z", "0 0"), ("b", "AS:64")],
    )
    assert bytes(sdp) == (
        b"v=0\r\n"
        b"o=- 1 1 IN IP4 192.0.2.1\r\n"
        b"s=-\r\n"
        b"c=IN IP4 192.0.2.1\r\n"
        b"t=0 0\r\n"
        b"k=prompt\r\n"
        b"i=info\r\n"
        b"z=0 0\r\n"
        b"b=AS:64\r\n"
        b"a=tool:test\r\n"
        b"m=audio 5004 RTP/AVP 0\r\n"
        b"c=IN IP4 192.0.2.2\r\n"
        b"x=unknown\r\n"
        b"b=AS:64\r\n"
        b"i=after b, as listed\r\n"
        b"a=sendrecv\r\n"
    )
    assert parse(bytes(sdp)) == sdp


# -- errors ---------------------------------------------------------------------------------

O_LINE = b"o=- 1 1 IN IP4 192.0.2.1\r\n"
HEAD = b"v=0\r\n" + O_LINE + b"s=-\r\nt=0 0\r\n"
AUDIO = b"m=audio 5004 RTP/AVP 0\r\n"

ERRORS = [
    (b"", "empty SDP"),
    (b"\r\n\r\n", "empty SDP"),
    (b"o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\n", "line 1: SDP must begin with v="),
    (b"\xef\xbb\xbfv=0\r\n", "line 1: SDP must begin with v="),  # a byte-order mark
    (b"v=1\r\n" + O_LINE, "line 1: unsupported SDP version '1'"),
    (b"v=0\r\ns=-\r\nt=0 0\r\n" + AUDIO, "missing o= line"),
    (b"v=0\r\n" + O_LINE + b"t=0 0\r\n", "missing s= line"),
    (b"v=0\r\n" + O_LINE + b"m=audio\r\n", "line 3: m= line has no port"),
    (HEAD + b"m=\r\n", "line 5: m= line has no media type"),
    (HEAD + b"m=audio RTP/AVP 0\r\n", "line 5: m= port 'RTP/AVP' is not a number"),
    (HEAD + b"m=audio -1 RTP/AVP 0\r\n", "line 5: m= port '-1' is not a number"),
    (HEAD + b"m=audio 5004/ RTP/AVP 0\r\n", "line 5: m= port '5004/' is not a number"),
    (HEAD + b"m=audio \xd9\xa1 RTP/AVP 0\r\n", "line 5: m= port '\u0661' is not a number"),
    (HEAD + b"m=audio 65536 RTP/AVP 0\r\n", "line 5: m= port 65536 is out of range"),
    (HEAD + b"m=audio 000005004 RTP/AVP 0\r\n", "line 5: m= port 000005004 is out of range"),
    (HEAD + b"m=audio 5004\r\n", "line 5: m= line has no transport protocol"),
    (HEAD + b"m=audio 5004 RTP/AVP\r\n", "line 5: m= line has no formats"),
    (HEAD + b"c=IN IP4\r\n", "line 5: c= line does not have 3 fields"),
    (HEAD + b"c=IN IP4 192.0.2.1 x\r\n", "line 5: c= line does not have 3 fields"),
    (HEAD + b"c=ATM NSAP 47.0005\r\n", "line 5: c= network type 'ATM' is not IN"),
    (HEAD + b"c=IN IPX 192.0.2.1\r\n", "line 5: c= address type 'IPX' is not IP4 or IP6"),
    (HEAD + b"c=IN IP4 /127\r\n", "line 5: c= line has no address"),
    (HEAD + b"c=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2\r\n",
     "line 6: more than one session-level c= line"),
    (HEAD + AUDIO + b"c=IN IP4 192.0.2.1\r\nc=IN IP4 192.0.2.2\r\n",
     "line 7: more than one c= line in a media description"),
    (b"v=0\r\no=- 1 IN IP4 192.0.2.1\r\n", "line 2: o= line does not have 6 fields"),
    (b"v=0\r\no=- 1 one IN IP4 192.0.2.1\r\n", "line 2: o= session version 'one' is not a number"),
    (b"v=0\r\no=- 1 123456789012345678901 IN IP4 x\r\n",
     "line 2: o= session version '123456789012345678901' is not a number"),
    (HEAD + O_LINE, "line 5: more than one o= line"),
    (HEAD + b"s=again\r\n", "line 5: more than one s= line"),
    (HEAD + b"v=0\r\n", "line 5: more than one v= line"),
    (HEAD + AUDIO + b"t=0 0\r\n", "line 6: t= line inside a media description"),
    (HEAD + AUDIO + b"o=- 1 1 IN IP4 192.0.2.1\r\n", "line 6: o= line inside a media description"),
    (HEAD + AUDIO + b"r=7d 1h 0 25h\r\n", "line 6: r= line inside a media description"),
    (HEAD + b"A=x\r\n", "line 5: invalid line type 'A'"),
    (HEAD + b"1=x\r\n", "line 5: invalid line type '1'"),
    (HEAD + b"\xc3\xa9=x\r\n", "line 5: invalid line type '\u00e9'"),
    (HEAD + b"ab=c\r\n", "line 5: expected <type>=<value>, got 'ab=c'"),
    (HEAD + b"a = b\r\n", "line 5: expected <type>=<value>, got 'a = b'"),
    (HEAD + b"a\r\n", "line 5: expected <type>=<value>, got 'a'"),
    (HEAD + b" \r\n", "line 5: expected <type>=<value>, got ' '"),
    (HEAD + b"\r\n" + AUDIO, "line 5: empty line"),
    (HEAD + b"a=x\ry\r\n", "line 5: CR without LF"),
    (HEAD + b"a=x\r", "line 5: CR without LF"),
    (HEAD + b"a=x\x00\r\n", "line 5: NUL character"),
    (HEAD + b"s=\xff\r\n", "SDP is not valid UTF-8"),
    (HEAD + b"s=\xc3\r\n", "SDP is not valid UTF-8"),
]  # fmt: skip


@pytest.mark.parametrize(("data", "reason"), ERRORS, ids=[r for _, r in ERRORS])
def test_parse_error(data: bytes, reason: str) -> None:
    with pytest.raises(SdpError, match=exact(reason)):
        parse(data)


def test_str_that_is_not_utf8() -> None:
    with pytest.raises(SdpError, match=exact("SDP is not valid UTF-8")):
        parse(HEAD.decode() + "s=\ud800\r\n")


def test_rejected_stream_needs_no_formats() -> None:
    body = HEAD + b"m=video 0 RTP/AVP\r\n"
    assert parse(body).media[0].formats == []
    assert bytes(parse(body)) == body


def test_sdp_error_is_a_value_error() -> None:
    assert issubclass(SdpError, ValueError)


# -- audio_offer and the RFC 3264 helpers ---------------------------------------------------

PAYLOADS: list[tuple[int, Rtpmap, str | None]] = [
    (9, STATIC_PAYLOADS[9], None),
    (0, STATIC_PAYLOADS[0], None),
    (8, STATIC_PAYLOADS[8], None),
    (101, Rtpmap("telephone-event", 8000), "0-16"),
]


def test_audio_offer_bytes() -> None:
    sdp = audio_offer("192.0.2.10", 40000, PAYLOADS, session_id="3021", session_version=1)
    assert bytes(sdp) == (
        b"v=0\r\n"
        b"o=pbx 3021 1 IN IP4 192.0.2.10\r\n"
        b"s=pbx\r\n"
        b"c=IN IP4 192.0.2.10\r\n"
        b"t=0 0\r\n"
        b"m=audio 40000 RTP/AVP 9 0 8 101\r\n"
        b"a=rtpmap:9 G722/8000\r\n"
        b"a=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:8 PCMA/8000\r\n"
        b"a=rtpmap:101 telephone-event/8000\r\n"
        b"a=fmtp:101 0-16\r\n"
        b"a=ptime:20\r\n"
        b"a=sendrecv\r\n"
    )
    assert parse(bytes(sdp)) == sdp
    audio = sdp.media[0]
    assert [audio.rtpmap(int(pt)) for pt in audio.formats] == [p[1] for p in PAYLOADS]
    assert audio.fmtp(101) == "0-16"
    assert audio.ptime == 20


def test_audio_offer_ipv6_hold_without_ptime() -> None:
    sdp = audio_offer(
        "2001:db8::10",
        0,
        [(0, STATIC_PAYLOADS[0], None), (96, Rtpmap("opus", 48000, 2), "useinbandfec=1")],
        session_id="7",
        session_version=12,
        direction="sendonly",
        ptime=None,
    )
    assert bytes(sdp) == (
        b"v=0\r\n"
        b"o=pbx 7 12 IN IP6 2001:db8::10\r\n"
        b"s=pbx\r\n"
        b"c=IN IP6 2001:db8::10\r\n"
        b"t=0 0\r\n"
        b"m=audio 0 RTP/AVP 0 96\r\n"
        b"a=rtpmap:0 PCMU/8000\r\n"
        b"a=rtpmap:96 opus/48000/2\r\n"
        b"a=fmtp:96 useinbandfec=1\r\n"
        b"a=sendonly\r\n"
    )
    assert sdp.on_hold(sdp.media[0])


def test_audio_offer_edits_and_reoffer() -> None:
    sdp = audio_offer("192.0.2.10", 40000, PAYLOADS[1:2], session_id="1", session_version=1)
    sdp.origin.session_version += 1
    sdp.media[0].set_direction("inactive")
    assert bytes(sdp).endswith(b"a=ptime:20\r\na=inactive\r\n")
    assert b"o=pbx 1 2 IN IP4" in bytes(sdp)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"port": 65536}, "port out of range: 65536"),
        ({"port": -1}, "port out of range: -1"),
        ({"direction": "hold"}, "not an SDP direction: 'hold'"),
        ({"payloads": []}, "an offer needs at least one payload type"),
        ({"payloads": [(128, Rtpmap("x", 8000), None)]}, "payload type out of range: 128"),
    ],
)
def test_audio_offer_rejects(kwargs: dict[str, object], reason: str) -> None:
    args: dict[str, object] = {"address": "192.0.2.1", "port": 4000, "payloads": PAYLOADS}
    args.update(kwargs)
    with pytest.raises(ValueError, match=exact(reason)):
        audio_offer(session_id="1", session_version=1, **args)  # type: ignore[arg-type]


def test_answer_direction() -> None:
    assert [answer_direction(d) for d in DIRECTIONS] == [
        "sendrecv", "recvonly", "sendonly", "inactive"
    ]  # fmt: skip
    with pytest.raises(ValueError, match=exact("not an SDP direction: 'SENDRECV'")):
        answer_direction("SENDRECV")


def test_rejected_media() -> None:
    video = parse(RFC8866_EXAMPLE).media[2]
    rejected = rejected_media(video)
    assert rejected == Media("video", 0, "RTP/AVP", ["99"], None, [], [])
    assert rejected.formats is not video.formats
    answer = audio_offer("192.0.2.1", 4000, PAYLOADS, session_id="1", session_version=1)
    answer.media.append(rejected)
    assert bytes(answer).endswith(b"a=sendrecv\r\nm=video 0 RTP/AVP 99\r\n")


def test_rtpmap_values() -> None:
    assert str(Rtpmap("PCMU", 8000)) == "PCMU/8000"
    assert str(Rtpmap("opus", 48000, 2)) == "opus/48000/2"
    assert Rtpmap("pcmu", 8000).matches(STATIC_PAYLOADS[0])
    assert Rtpmap("TELEPHONE-EVENT", 8000).matches(Rtpmap("telephone-event", 8000))
    assert not Rtpmap("telephone-event", 16000).matches(Rtpmap("telephone-event", 8000))
    assert not Rtpmap("L16", 44100, 2).matches(Rtpmap("L16", 44100))
    assert {Rtpmap("PCMU", 8000)} == {STATIC_PAYLOADS[0]}  # hashable: usable as a key


def test_static_payloads() -> None:
    assert STATIC_PAYLOADS[0] == Rtpmap("PCMU", 8000)
    assert STATIC_PAYLOADS[3] == Rtpmap("GSM", 8000)
    assert STATIC_PAYLOADS[4] == Rtpmap("G723", 8000)
    assert STATIC_PAYLOADS[8] == Rtpmap("PCMA", 8000)
    assert STATIC_PAYLOADS[9] == Rtpmap("G722", 8000)
    assert STATIC_PAYLOADS[13] == Rtpmap("CN", 8000)
    assert STATIC_PAYLOADS[18] == Rtpmap("G729", 8000)
    assert STATIC_PAYLOADS[10] == Rtpmap("L16", 44100, 2)
    assert all(pt < 35 for pt in STATIC_PAYLOADS)


# -- Hypothesis -----------------------------------------------------------------------------

PROPERTY_SETTINGS = settings(max_examples=500, deadline=None, database=None)
FUZZ_SETTINGS = settings(
    max_examples=2_000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TOKEN = st.text(string.ascii_letters + string.digits + "-./+_*#!~", min_size=1, max_size=10)
TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\r\n\x00"), max_size=16
)  # a line's value: anything but line ends and NUL
ADDRESS = st.one_of(st.ip_addresses().map(str), TOKEN.filter(lambda t: "/" not in t))
SESSION_OTHER = st.tuples(st.sampled_from("bdefghijklnpqruwxyz"), TEXT)
MEDIA_OTHER = st.tuples(st.sampled_from("bdefghijklnpquwxy"), TEXT)
ATTRIBUTE = st.tuples(
    st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=10),
    st.none() | TEXT,
)


@st.composite
def media_sections(draw: st.DrawFn) -> Media:
    port = draw(st.integers(0, 65535))
    formats = draw(st.lists(TOKEN, min_size=0 if port == 0 else 1, max_size=4))
    return Media(
        kind=draw(TOKEN),
        port=port,
        proto=draw(TOKEN),
        formats=formats,
        connection=draw(st.none() | ADDRESS),
        attributes=draw(st.lists(ATTRIBUTE, max_size=4)),
        other=draw(st.lists(MEDIA_OTHER, max_size=2)),
    )


@st.composite
def descriptions(draw: st.DrawFn) -> SessionDescription:
    origin = Origin(
        draw(TOKEN),
        draw(TOKEN),
        draw(st.integers(0, 10**20 - 1)),
        draw(TOKEN),
        draw(TOKEN),
        draw(TOKEN),
    )
    return SessionDescription(
        version=0,
        origin=origin,
        name=draw(TEXT),
        connection=draw(st.none() | ADDRESS),
        times=draw(st.lists(TEXT, max_size=2)),
        attributes=draw(st.lists(ATTRIBUTE, max_size=4)),
        media=draw(st.lists(media_sections(), max_size=3)),
        other=draw(st.lists(SESSION_OTHER, max_size=3)),
    )


@PROPERTY_SETTINGS
@given(descriptions())
def test_generated_descriptions_round_trip(sdp: SessionDescription) -> None:
    data = bytes(sdp)
    again = parse(data)
    assert again == sdp
    assert bytes(again) == data


def line(letter: str, value: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return value.map(lambda v: f"{letter}={v}")


ATTRIBUTE_LINE = ATTRIBUTE.map(lambda a: f"a={a[0]}" if a[1] is None else f"a={a[0]}:{a[1]}")
C_LINE = st.one_of(
    st.ip_addresses(v=4).map(lambda a: f"c=IN IP4 {a}"),
    st.ip_addresses(v=6).map(lambda a: f"c=IN IP6 {a}"),
    st.sampled_from(["c=IN IP4 224.2.1.1/127/3", "c=IN  IP4 192.0.2.1", "c=IN IP6 ::/"]),
)
M_LINE = st.one_of(
    st.tuples(TOKEN, st.integers(1, 65535), TOKEN, st.lists(TOKEN, min_size=1, max_size=4)).map(
        lambda m: f"m={m[0]} {m[1]} {m[2]} {' '.join(m[3])}"
    ),
    st.sampled_from(["m=audio 0 RTP/AVP", "m=video 49170/2 RTP/AVP 31", "m=audio  4000 X 0"]),
)
O_LINES = st.sampled_from(
    ["o=- 1 1 IN IP4 192.0.2.1", "o=jdoe 2890844526 0002890842807 IN IP4 10.47.16.5",
     "o=x  y 3 IN IP6 ::1"]
)  # fmt: skip


@st.composite
def sdp_texts(draw: st.DrawFn) -> bytes:
    """Well-formed SDP with its lines in any order RFC 8866's grammar would let past us: what
    comes after v= (session) and after each m= (media) shuffled."""
    session = [draw(O_LINES), draw(line("s", TEXT))]
    session += draw(st.lists(line("t", TEXT), max_size=2))
    session += draw(st.lists(C_LINE, max_size=1))
    session += draw(st.lists(ATTRIBUTE_LINE, max_size=4))
    session += draw(st.lists(SESSION_OTHER.map(lambda o: f"{o[0]}={o[1]}"), max_size=3))
    lines = ["v=0", *draw(st.permutations(session))]
    for _ in range(draw(st.integers(0, 3))):
        section = draw(st.lists(C_LINE, max_size=1))
        section += draw(st.lists(ATTRIBUTE_LINE, max_size=4))
        section += draw(st.lists(MEDIA_OTHER.map(lambda o: f"{o[0]}={o[1]}"), max_size=2))
        lines += [draw(M_LINE), *draw(st.permutations(section))]
    return "".join(f"{text}\r\n" for text in lines).encode()


@PROPERTY_SETTINGS
@given(sdp_texts())
def test_generated_text_round_trips_byte_for_byte(data: bytes) -> None:
    assert bytes(parse(data)) == data


def exercise(data: bytes) -> None:
    """Parse `data`: either SdpError, or a description whose every accessor works or raises
    SdpError and which prints to bytes that parse back to the same values."""
    try:
        sdp = parse(data)
    except SdpError:
        return
    for media in sdp.media:
        for pt in media.formats:
            if pt.isdigit() and pt.isascii() and len(pt) <= 3:
                with contextlib.suppress(SdpError):
                    media.rtpmap(int(pt))
                media.fmtp(int(pt))
        with contextlib.suppress(SdpError):
            _ = media.ptime
        with contextlib.suppress(SdpError):
            _ = media.rtcp_port
        assert sdp.direction(media) in DIRECTIONS
        sdp.address(media)
        sdp.on_hold(media)
    printed = bytes(sdp)
    again = parse(printed)
    assert again == sdp
    assert bytes(again) == printed


SEEDS = list(BODIES.values())
INSERTS = [
    b"\r", b"\n", b"\r\n", b"=", b":", b" ", b"/", b"\x00", b"\xff", b"\xc3", b"0", b"65536",
    b"99999999999999999999999", b"a=", b"m=", b"c=", b"o=", b"v=", b"t=", b"rtpmap:", b"ptime:",
    b"rtcp:", b"sendonly", b"IN IP4 ", b"IN IP6 ", b"RTP/AVP", b"A", b"\t",
]  # fmt: skip
PIECES = [
    *INSERTS,
    b"v=0\r\n", b"o=- 1 1 IN IP4 192.0.2.1\r\n", b"s=-\r\n", b"t=0 0\r\n", b"m=audio ",
    b"m=video 0 RTP/AVP\r\n", b"5004", b" RTP/AVP ", b"0 8 101\r\n", b"c=IN IP4 0.0.0.0\r\n",
    b"a=rtpmap:101 telephone-event/8000\r\n", b"a=rtpmap:0 ", b"a=fmtp:101 0-16\r\n",
    b"a=ptime:20\r\n", b"a=rtcp:4001\r\n", b"a=sendrecv\r\n", b"a=inactive \r\n", b"b=AS:64\r\n",
]  # fmt: skip


@FUZZ_SETTINGS
@given(st.binary(max_size=256))
def test_arbitrary_bytes_only_raise_sdp_error(data: bytes) -> None:
    exercise(data)


@FUZZ_SETTINGS
@given(st.lists(st.sampled_from(PIECES), max_size=24).map(b"".join))
def test_sdp_like_bytes_only_raise_sdp_error(data: bytes) -> None:
    exercise(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["flip", "cut", "delete", "insert"]))
        if action == "flip" and at < len(data):
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[at:]
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at:at] = draw(st.sampled_from(INSERTS))
    return bytes(data)


@FUZZ_SETTINGS
@given(mutated())
def test_mutated_bodies_only_raise_sdp_error(data: bytes) -> None:
    exercise(data)
