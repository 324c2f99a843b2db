"""Tests of `appliance.sip.uri`: SIP URIs parse and print back (RFC 3261 §19.1.1, §19.1.3),
IPv6 references, parameters, and the comparison key of §19.1.4."""

from __future__ import annotations

import dataclasses
import re

import pytest

from appliance.sip.grammar import SipParseError
from appliance.sip.uri import SipUri


def exact(reason: str) -> str:
    return rf"\A{re.escape(reason)}\Z"


# RFC 3261 §19.1.3 examples, then IPv6 and odd but valid forms.
ROUND_TRIP = [
    "sip:alice@atlanta.com",
    "sip:alice:secretword@atlanta.com;transport=tcp",
    "sips:alice@atlanta.com?subject=project%20x&priority=urgent",
    "sip:+1-212-555-1212:1234@gateway.com;user=phone",
    "sips:1212@gateway.com",
    "sip:alice@192.0.2.4",
    "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
    "sip:alice;day=tuesday@atlanta.com",
    "sip:[2001:db8::10]",
    "sip:[2001:db8::10]:5070;transport=tcp",
    "sips:bob@[::1]:5061;maddr=[::2];lr",
    "SIP:Alice@Example.COM;Transport=UDP",
    "sip:101-0x562c0426caf0@10.99.0.1:5070",
    "sip:101@127.0.0.1:5072;ob",
    "sip:null-%00-null@example.com",
    "tel:+1-201-555-0123",
    "urn:service:sos",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_round_trip(text: str) -> None:
    assert str(SipUri.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        (
            "sip:alice@atlanta.com",
            {"scheme": "sip", "user": "alice", "password": None, "host": "atlanta.com",
             "port": None, "params": {}, "headers": None},
        ),
        (
            "sips:alice:secretword@atlanta.com;transport=tcp",
            {"scheme": "sips", "user": "alice", "password": "secretword",
             "host": "atlanta.com", "port": None, "params": {"transport": "tcp"}},
        ),
        (
            "sip:+1-212-555-1212:1234@gateway.com;user=phone",
            {"user": "+1-212-555-1212", "password": "1234", "params": {"user": "phone"}},
        ),
        (
            "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
            {"user": None, "host": "atlanta.com", "params": {"method": "REGISTER"},
             "headers": "to=alice%40atlanta.com"},
        ),
        ("sip:alice;day=tuesday@atlanta.com", {"user": "alice;day=tuesday", "params": {}}),
        ("sip:[2001:db8::10]", {"host": "[2001:db8::10]", "port": None}),
        (
            "sip:[2001:db8::10]:5070;transport=TCP;lr",
            {"host": "[2001:db8::10]", "port": 5070, "params": {"transport": "TCP", "lr": None}},
        ),
        ("sips:bob@[::1]:5061;maddr=[::2]", {"host": "[::1]", "port": 5061,
                                             "params": {"maddr": "[::2]"}}),
        ("SIP:Alice@Example.COM;Transport=UDP;LR",
         {"scheme": "sip", "user": "Alice", "host": "Example.COM",
          "params": {"transport": "UDP", "lr": None}}),
        ("sip:host.example.com:65535", {"host": "host.example.com", "port": 65535}),
        ("sip:a@b;x=", {"params": {"x": ""}}),
        ("  sip:a@b  ", {"host": "b", "raw": "sip:a@b"}),
        ("tel:+1-201-555-0123", {"scheme": "tel", "user": None, "host": "",
                                 "raw": "tel:+1-201-555-0123"}),
    ],
)  # fmt: skip
def test_fields(text: str, fields: dict[str, object]) -> None:
    uri = SipUri.parse(text)
    assert {name: getattr(uri, name) for name in fields} == fields


@pytest.mark.parametrize(
    ("uri", "text"),
    [
        (SipUri("sip", host="example.com"), "sip:example.com"),
        (SipUri("sips", user="bob", host="biloxi.com", port=5061), "sips:bob@biloxi.com:5061"),
        (
            SipUri("sip", user="alice", password="pw", host="[::1]", port=5060,
                   params={"transport": "tcp", "lr": None}, headers="x=y"),
            "sip:alice:pw@[::1]:5060;transport=tcp;lr?x=y",
        ),
    ],
)  # fmt: skip
def test_print_built_uri(uri: SipUri, text: str) -> None:
    assert str(uri) == text
    assert dataclasses.replace(SipUri.parse(text), raw=None) == uri


@pytest.mark.parametrize(
    ("text", "transport"),
    [
        ("sip:a@b", "udp"),
        ("sips:a@b", "tls"),
        ("sip:a@b;transport=TCP", "tcp"),
        ("sips:a@b;transport=ws", "ws"),
    ],
)
def test_transport(text: str, transport: str) -> None:
    assert SipUri.parse(text).transport == transport


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("alice", "bad URI in URI"),
        ("", "bad URI in URI"),
        (":alice@atlanta.com", "bad URI in URI"),
        ("1sip:alice@atlanta.com", "bad URI in URI"),
        ("sïp:alice@atlanta.com", "bad URI in URI"),
        ("tel:", "bad URI in URI"),
        ("tel:+1 201", "bad URI in URI"),
        ("sip:@atlanta.com", "empty user in URI"),
        ("sip:", "bad host in URI"),
        ("sip:alice@", "bad host in URI"),
        ("sip:alice@atl anta.com", "bad host in URI"),
        ("sip:alice@<atlanta.com>", "bad host in URI"),
        ("sip:[::1]5060", "bad host in URI"),
        ("sip:[::1", "bad IPv6 reference in URI"),
        ("sip:host:0", "bad port in URI"),
        ("sip:host:65536", "bad port in URI"),
        ("sip:host:50x", "bad port in URI"),
        ("sip:host:", "bad port in URI"),
        ("sip:[::1]:", "bad port in URI"),
        ("sip:host:-1", "bad port in URI"),
        ("sip:host:５０６０", "bad port in URI"),
        ("sip:host:" + "1" * 5000, "bad port in URI"),
        ("sip:host;;lr", "empty parameter in URI"),
        ("sip:host;=x", "empty parameter in URI"),
    ],
    ids=lambda v: v[:40],
)
def test_invalid(text: str, reason: str) -> None:
    with pytest.raises(SipParseError, match=exact(reason)):
        SipUri.parse(text)


def test_invalid_names_what_was_parsed() -> None:
    with pytest.raises(SipParseError, match=exact("bad URI in Request-URI")):
        SipUri.parse("alice", "Request-URI")
    with pytest.raises(SipParseError, match=exact("bad port in Contact header")):
        SipUri.parse("sip:a@b:0", "Contact header")


# RFC 3261 §19.1.4, the examples given there.
EQUAL = [
    ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
    ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
    ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
    (
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
    ),
    (
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
    ),
    # Not in the RFC's list, but by its rules: scheme and host are case-insensitive.
    ("SIPS:bob@Biloxi.COM:5061", "sips:bob@biloxi.com:5061"),
    ("sip:[2001:DB8::1]:5060", "sip:[2001:db8::1]:5060"),
]
UNEQUAL = [
    ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
    ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
    ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
    # By the rules of §19.1.4: scheme, userinfo (password included), and the parameters
    # user, ttl, method, maddr and transport when in either URI.
    ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
    ("sip:alice:secret@atlanta.com", "sip:alice@atlanta.com"),
    ("sip:alice@atlanta.com;user=phone", "sip:alice@atlanta.com"),
    ("sip:alice@atlanta.com;maddr=239.255.255.1", "sip:alice@atlanta.com;maddr=239.255.255.2"),
    ("sip:alice@atlanta.com;ttl=15", "sip:alice@atlanta.com"),
    ("sip:alice@atlanta.com;transport=tcp", "sip:alice@atlanta.com;transport=udp"),
    ("sip:%00@host5.example.com", "sip:%00%00@host5.example.com"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_key_equal(a: str, b: str) -> None:
    assert SipUri.parse(a).key() == SipUri.parse(b).key()


@pytest.mark.parametrize(("a", "b"), UNEQUAL)
def test_key_unequal(a: str, b: str) -> None:
    assert SipUri.parse(a).key() != SipUri.parse(b).key()


def test_key_ignores_headers() -> None:
    """A documented departure from §19.1.4, which calls these two unequal: `key()` ignores
    the header component (what a registrar compares Contacts on has none)."""
    a = SipUri.parse("sip:carol@chicago.com")
    b = SipUri.parse("sip:carol@chicago.com?Subject=next%20meeting")
    assert a.key() == b.key()


def test_key_of_other_schemes_is_the_text() -> None:
    assert SipUri.parse("tel:+1-201-555-0123").key() == "tel:+1-201-555-0123"
    assert SipUri.parse("tel:+1-201-555-0123").key() != SipUri.parse("tel:+1-201-555-0124").key()
