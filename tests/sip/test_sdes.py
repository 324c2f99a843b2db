"""RFC 4568 `a=crypto` values: parse <-> print, what is usable, what an offer chooses."""

from __future__ import annotations

import base64

import pytest

from appliance.sip.sdes import Crypto, SdesError, choose, new_key

KEY = base64.b64encode(bytes(range(30))).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}",
        f"2 AES_CM_128_HMAC_SHA1_32 inline:{KEY}|2^20",
        f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4",
        f"4 AES_CM_128_HMAC_SHA1_80 inline:{KEY} UNENCRYPTED_SRTP",
        f"5 AES_256_CM_HMAC_SHA1_80 inline:{KEY}",
    ],
)
def test_round_trip(text: str) -> None:
    assert str(Crypto.parse(text)) == text


def test_fields() -> None:
    crypto = Crypto.parse(f"7 aes_cm_128_hmac_sha1_80 inline:{KEY}|2^31|5:2")
    assert (crypto.tag, crypto.suite, crypto.lifetime, crypto.mki) == (
        7, "AES_CM_128_HMAC_SHA1_80", "2^31", "5:2")  # fmt: skip
    assert crypto.key_salt == bytes(range(30))


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("", "malformed a=crypto"),
        ("x AES_CM_128_HMAC_SHA1_80 inline:AAAA", "malformed a=crypto"),
        ("1 AES_CM_128_HMAC_SHA1_80", "malformed a=crypto"),
        ("1 AES_CM_128_HMAC_SHA1_80 uri:http://x", "key method 'uri' is not inline"),
        ("1 AES_CM_128_HMAC_SHA1_80 inline:@@@@", "not base64"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4|x", "too many fields"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|junk", "key field 'junk' is malformed"),
        (f"1 AES_CM_128_HMAC_SHA1_80 inline:{KEY};inline:{KEY}", "several keys"),
    ],
)
def test_malformed_values_say_why(text: str, error: str) -> None:
    with pytest.raises(SdesError, match=error):
        Crypto.parse(text)


def test_usable_and_choice() -> None:
    short = base64.b64encode(bytes(16)).decode()
    offer: list[str | None] = [
        f"1 AES_256_CM_HMAC_SHA1_80 inline:{KEY}",  # a suite the box lacks
        f"2 AES_CM_128_HMAC_SHA1_80 inline:{short}",  # a key of the wrong length
        f"3 AES_CM_128_HMAC_SHA1_80 inline:{KEY}|2^20|1:4",  # an MKI
        f"4 AES_CM_128_HMAC_SHA1_80 inline:{KEY} KDR=1",  # a session parameter
        "garbage",
        None,
        f"6 AES_CM_128_HMAC_SHA1_32 inline:{KEY}",
        f"7 AES_CM_128_HMAC_SHA1_80 inline:{KEY}",
    ]
    chosen = choose(offer)
    assert chosen is not None and (chosen.tag, chosen.suite) == (6, "AES_CM_128_HMAC_SHA1_32")
    assert choose(offer[:6]) is None


def test_new_keys_are_fresh() -> None:
    a, b = new_key(1, "AES_CM_128_HMAC_SHA1_80"), new_key(1, "AES_CM_128_HMAC_SHA1_80")
    assert a.usable and len(a.key_salt) == 30 and a.key_salt != b.key_salt
    with pytest.raises(ValueError, match="unsupported"):
        new_key(1, "AES_256_CM_HMAC_SHA1_80")
