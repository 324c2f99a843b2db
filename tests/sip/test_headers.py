"""Tests of `appliance.sip.headers`: Via, CSeq and name-addr values parse and print
(RFC 3261 §20.10, §20.16, §20.20, §20.39, §20.42), and list values split on the right commas."""

from __future__ import annotations

import re

import pytest

from appliance.sip.grammar import SipParseError
from appliance.sip.headers import MAX_CSEQ, CSeq, NameAddr, Via, split_list
from appliance.sip.uri import SipUri


def exact(reason: str) -> str:
    return rf"\A{re.escape(reason)}\Z"


# -- Via -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds",
        "SIP/2.0/UDP 127.0.0.1:5072;rport;branch=z9hG4bKPjCU0BdHprZmMEyh-JYepPXZ4Imbh4gyqi",
        "SIP/2.0/TCP [2001:db8::9]:5070;branch=z9hG4bK1;received=2001:db8::9;rport=5070",
        "SIP/2.0/TLS proxy.example.com:5061;branch=z9hG4bKx;maddr=224.2.0.1;ttl=16",
        'SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK56sdasks;x="a;b"',
    ],
)
def test_via_round_trip(text: str) -> None:
    assert str(Via.parse(text)) == text


def test_via_fields() -> None:
    via = Via.parse("SIP/2.0/UDP 10.99.0.1:5070;branch=z9hG4bK56385e755b8051dd;rport")
    assert via == Via(
        "UDP", "10.99.0.1", 5070, {"branch": "z9hG4bK56385e755b8051dd", "rport": None}
    )
    assert via.branch == "z9hG4bK56385e755b8051dd"
    assert via.sent_by == "10.99.0.1:5070"


def test_via_ipv6() -> None:
    via = Via.parse("SIP/2.0/UDP [2001:DB8::9];branch=z9hG4bK1")
    assert (via.host, via.port) == ("[2001:DB8::9]", None)
    assert via.sent_by == "[2001:db8::9]:5060"


@pytest.mark.parametrize(
    ("text", "printed"),
    [
        # RFC 4475 §3.1.1.1: LWS around the slashes and around parameters.
        ("SIP  /   2.0 /UDP 192.0.2.2;rport;branch=390skdjuw",
         "SIP/2.0/UDP 192.0.2.2;rport;branch=390skdjuw"),
        ("SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8",
         "SIP/2.0/TCP spindle.example.com;branch=z9hG4bK9ikj8"),
        # Protocol name and transport are case-insensitive; the transport prints upper-case.
        ("sip/2.0/udp Host.Example.com;Branch=z9hG4bK1",
         "SIP/2.0/UDP Host.Example.com;branch=z9hG4bK1"),
        ("SIP/2.0/UDP h:5070 ;received=192.0.2.1", "SIP/2.0/UDP h:5070;received=192.0.2.1"),
    ],
)  # fmt: skip
def test_via_normalised(text: str, printed: str) -> None:
    assert str(Via.parse(text)) == printed


def test_via_without_branch() -> None:
    """RFC 2543 peers send no branch; `sent_by` lower-cases and defaults the port."""
    via = Via.parse("SIP/2.0/UDP Host.Example.COM")
    assert via.branch is None
    assert via.sent_by == "host.example.com:5060"


def test_via_built() -> None:
    via = Via("TLS", "example.com", 5061, {"branch": "z9hG4bKx", "rport": None})
    assert str(via) == "SIP/2.0/TLS example.com:5061;branch=z9hG4bKx;rport"
    assert Via.parse(str(via)) == via


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid Via header"),
        ("SIP/2.0/UDP", "invalid Via header"),
        ("pc33.atlanta.com", "invalid Via header"),
        ("SIP/2.0 pc33.atlanta.com", "invalid Via header"),
        ("SIP/2.0/UDP/X pc33.atlanta.com", "invalid Via header"),
        ("SIP/1.0/UDP pc33.atlanta.com", "invalid Via header"),
        ("SIPS/2.0/UDP pc33.atlanta.com", "invalid Via header"),
        ("SIP/2.0/ pc33.atlanta.com", "invalid Via header"),
        ("SIP/2.0/U@P pc33.atlanta.com", "invalid Via header"),
        ("SIP/2.0/UDP :5060", "bad host in Via header"),
        ("SIP/2.0/UDP a,b", "bad host in Via header"),
        ("SIP/2.0/UDP [::1]x", "bad host in Via header"),
        ("SIP/2.0/UDP [::1", "bad IPv6 reference in Via header"),
        ("SIP/2.0/UDP host:0", "bad port in Via header"),
        ("SIP/2.0/UDP host:70000", "bad port in Via header"),
        ("SIP/2.0/UDP host:" + "9" * 5000, "bad port in Via header"),
        ("SIP/2.0/UDP host;;branch=z9hG4bK1", "empty parameter in Via header"),
        ('SIP/2.0/UDP host;x="a;b";;rport', "empty parameter in Via header"),
    ],
    ids=lambda v: v[:40],
)
def test_via_invalid(text: str, reason: str) -> None:
    with pytest.raises(SipParseError, match=exact(reason)):
        Via.parse(text)


# -- CSeq ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number", "method", "printed"),
    [
        ("4711 INVITE", 4711, "INVITE", "4711 INVITE"),
        ("0 REGISTER", 0, "REGISTER", "0 REGISTER"),
        ("  0009 \t INVITE ", 9, "INVITE", "9 INVITE"),
        ("2147483647 OPTIONS", MAX_CSEQ, "OPTIONS", "2147483647 OPTIONS"),
        ("29344 RE%47IST%45R", 29344, "RE%47IST%45R", "29344 RE%47IST%45R"),
    ],
)
def test_cseq(text: str, number: int, method: str, printed: str) -> None:
    cseq = CSeq.parse(text)
    assert cseq == CSeq(number, method)
    assert str(cseq) == printed


@pytest.mark.parametrize(
    "text",
    [
        "",
        "4711",
        "INVITE",
        "INVITE 4711",
        "4711 INVITE extra",
        "-1 INVITE",
        "+1 INVITE",
        "1.0 INVITE",
        "2147483648 INVITE",
        "1 INV/TE",
        "١٢ INVITE",
        "1" * 5000 + " INVITE",
    ],
    ids=lambda v: v[:40],
)
def test_cseq_invalid(text: str) -> None:
    with pytest.raises(SipParseError, match=exact("invalid CSeq header")):
        CSeq.parse(text)


# -- name-addr: From, To, Contact ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "display", "uri", "params", "printed"),
    [
        ('"Bob" <sips:bob@biloxi.com>;tag=a48s', '"Bob"', "sips:bob@biloxi.com",
         {"tag": "a48s"}, '"Bob" <sips:bob@biloxi.com>;tag=a48s'),
        ("Anonymous <sip:c8oqz84zk7z@privacy.org>;tag=hyh8", "Anonymous",
         "sip:c8oqz84zk7z@privacy.org", {"tag": "hyh8"},
         "Anonymous <sip:c8oqz84zk7z@privacy.org>;tag=hyh8"),
        ("<sip:101@127.0.0.1:5072;ob>", None, "sip:101@127.0.0.1:5072;ob", {},
         "<sip:101@127.0.0.1:5072;ob>"),
        # addr-spec: the parameters after the URI are the header's (RFC 3261 §20.10).
        ("sip:+12125551212@phone2net.com;tag=887s", None, "sip:+12125551212@phone2net.com",
         {"tag": "887s"}, "<sip:+12125551212@phone2net.com>;tag=887s"),
        ("<sip:alice@atlanta.com;transport=tcp>;expires=3600;q=0.7", None,
         "sip:alice@atlanta.com;transport=tcp", {"expires": "3600", "q": "0.7"},
         "<sip:alice@atlanta.com;transport=tcp>;expires=3600;q=0.7"),
        ('"Quoted \\"<x>\\"" <sip:a@b.example.com>', '"Quoted \\"<x>\\""', "sip:a@b.example.com",
         {}, '"Quoted \\"<x>\\"" <sip:a@b.example.com>'),
        ('"A <B>" <sip:a@b.example.com>', '"A <B>"', "sip:a@b.example.com", {},
         '"A <B>" <sip:a@b.example.com>'),
        ('"Björn, Ü" <sip:b@example.com>', '"Björn, Ü"', "sip:b@example.com", {},
         '"Björn, Ü" <sip:b@example.com>'),
        ("Mr. Watson <mailto:watson@bell-telephone.com> ;q=0.1", "Mr. Watson",
         "mailto:watson@bell-telephone.com", {"q": "0.1"},
         "Mr. Watson <mailto:watson@bell-telephone.com>;q=0.1"),
        ('<sip:a@b.example.com>;tag="x;y";Expires=60', None, "sip:a@b.example.com",
         {"tag": '"x;y"', "expires": "60"}, '<sip:a@b.example.com>;tag="x;y";expires=60'),
        ("<sip:[2001:db8::1]:5070>", None, "sip:[2001:db8::1]:5070", {},
         "<sip:[2001:db8::1]:5070>"),
        # RFC 4475 §3.1.1.1 (wsinv): LWS inside the brackets' neighbourhood and parameters.
        ('"J Rosenberg \\\\\\""       <sip:jdrosen@example.com> ; tag = 98asjd8',
         '"J Rosenberg \\\\\\""', "sip:jdrosen@example.com", {"tag": "98asjd8"},
         '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8'),
    ],
)  # fmt: skip
def test_name_addr(
    text: str, display: str | None, uri: str, params: dict[str, str | None], printed: str
) -> None:
    value = NameAddr.parse(text, "To")
    assert value.display == display
    assert str(value.uri) == uri
    assert value.params == params
    assert not value.is_star
    assert str(value) == printed
    assert str(NameAddr.parse(printed, "To")) == printed


def test_name_addr_addr_spec_with_lws_before_params() -> None:
    """RFC 4475 §3.1.1.1: `To: sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n`."""
    value = NameAddr.parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n", "To")
    assert str(value.uri) == "sip:vivekg@chair-dnrc.example.com"
    assert value.tag == "1918181833n"


def test_name_addr_tag_and_expires() -> None:
    value = NameAddr.parse("<sip:a@b.example.com>;tag=1;expires=0", "Contact")
    assert (value.tag, value.expires) == ("1", "0")
    bare = NameAddr.parse("<sip:a@b.example.com>", "Contact")
    assert (bare.tag, bare.expires) == (None, None)


def test_name_addr_star() -> None:
    value = NameAddr.parse(" * ", "Contact")
    assert value.is_star and value.uri is None and value.display is None
    assert str(value) == "*"


def test_name_addr_built() -> None:
    value = NameAddr(SipUri("sip", user="101", host="10.0.0.2", port=5060), '"Desk"', {"tag": "x"})
    assert str(value) == '"Desk" <sip:101@10.0.0.2:5060>;tag=x'


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "invalid From header"),
        ("<>", "invalid From header"),
        ("<sip:a@b.example.com", "invalid From header"),
        ('"Alice <sip:a@b.example.com>', "invalid From header"),
        ('"Alice" sip:a@b.example.com', "invalid From header"),
        ("Alice <sip:a@b.example.com> junk", "invalid From header"),
        ("<sip:a@b.example.com> <sip:c@d.example.com>", "invalid From header"),
        ("sip:a@b.example.com junk", "invalid From header"),
        ("sip:a@b.example.com, sip:c@d.example.com", "invalid From header"),
        ("<alice>", "bad URI in From header"),
        ("alice", "bad URI in From header"),
        ("<sip:@b.example.com>", "empty user in From header"),
        ("<sip:a@>", "bad host in From header"),
        ("<sip:a@[::1>", "bad IPv6 reference in From header"),
        ("<sip:a@b.example.com:99999>", "bad port in From header"),
        ("<sip:a@b.example.com>;;tag=1", "empty parameter in From header"),
        ('<sip:a@b.example.com>;tag="x;y";;x', "empty parameter in From header"),
    ],
)
def test_name_addr_invalid(text: str, reason: str) -> None:
    with pytest.raises(SipParseError, match=exact(reason)):
        NameAddr.parse(text, "From")


# -- lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "items"),
    [
        ("", []),
        ("  ", []),
        ("a", ["a"]),
        ("INVITE,ACK, BYE ,CANCEL", ["INVITE", "ACK", "BYE", "CANCEL"]),
        (" , ,a,", ["a"]),
        ('"Doe, John" <sip:j@a.example.com>, <sip:k@b.example.com>',
         ['"Doe, John" <sip:j@a.example.com>', "<sip:k@b.example.com>"]),
        ("<sip:a@b;x=1,2>;q=0.5, <sip:c@d>", ["<sip:a@b;x=1,2>;q=0.5", "<sip:c@d>"]),
        ('"a\\",b", c', ['"a\\",b"', "c"]),
        ("SIP/2.0/UDP a;branch=z9hG4bK1,SIP/2.0/UDP b",
         ["SIP/2.0/UDP a;branch=z9hG4bK1", "SIP/2.0/UDP b"]),
    ],
)  # fmt: skip
def test_split_list(value: str, items: list[str]) -> None:
    assert split_list(value) == items
