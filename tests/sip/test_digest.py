"""Digest authentication (RFC 7616/8760): responses, nonces, staleness and replays."""

from __future__ import annotations

import hashlib

import pytest

from appliance.sip.digest import (
    DigestServer,
    Verdict,
    digest_response,
    parse_auth_params,
)
from appliance.store.extensions import digest_ha1

SECRET = b"s" * 32
PASSWORD = "Secret123456"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ha1_table(user: str, algorithm: str) -> str | None:
    return digest_ha1(algorithm, "101", "pbx", PASSWORD) if user == "101" else None


def credential(
    server: DigestServer,
    *,
    user: str = "101",
    password: str = PASSWORD,
    algorithm: str = "MD5",
    nc: str = "00000001",
    nonce: str | None = None,
    realm: str = "pbx",
) -> str:
    nonce = nonce or server.new_nonce()
    ha1 = digest_ha1(algorithm, user, realm, password)
    response = digest_response(algorithm, ha1, nonce, nc, "c0ffee", "REGISTER", "sip:pbx")
    return (
        f'Digest username="{user}", realm="{realm}", nonce="{nonce}", uri="sip:pbx", '
        f'response="{response}", algorithm={algorithm}, qop=auth, nc={nc}, cnonce="c0ffee"'
    )


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_response_matches_rfc7616_examples(algorithm: str, expected: str) -> None:
    # RFC 7616 §3.9.1: Mufasa / Circle of Life.
    ha1 = digest_ha1(algorithm, "Mufasa", "http-auth@example.org", "Circle of Life")
    got = digest_response(
        algorithm, ha1, "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "00000001",
        "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", "GET", "/dir/index.html",
    )  # fmt: skip
    assert got == expected


def test_ha1_is_md5_and_sha256_of_user_realm_password() -> None:
    assert digest_ha1("MD5", "101", "pbx", "pw") == hashlib.md5(b"101:pbx:pw").hexdigest()
    assert digest_ha1("SHA-256", "101", "pbx", "pw") == hashlib.sha256(b"101:pbx:pw").hexdigest()


def test_challenges_offer_each_algorithm_in_order_with_one_nonce() -> None:
    server = DigestServer("pbx", SECRET, algorithms=("SHA-256", "MD5"))
    first, second = server.challenges()
    assert first.startswith('Digest realm="pbx", nonce="')
    assert "algorithm=SHA-256" in first
    assert "algorithm=MD5" in second
    assert 'qop="auth"' in first
    assert parse_auth_params(first)[1]["nonce"] == parse_auth_params(second)[1]["nonce"]
    assert "stale=true" in server.challenges(stale=True)[0]


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_right_password_is_accepted(algorithm: str) -> None:
    server = DigestServer("pbx", SECRET)
    result = server.verify(credential(server, algorithm=algorithm), "REGISTER", ha1_table)
    assert result.verdict is Verdict.OK
    assert result.username == "101"


def test_unknown_user_and_wrong_password_get_the_same_verdict() -> None:
    server = DigestServer("pbx", SECRET)
    wrong = server.verify(credential(server, password="Wrong1234567"), "REGISTER", ha1_table)
    unknown = server.verify(credential(server, user="999"), "REGISTER", ha1_table)
    assert (wrong.verdict, wrong.reason) == (unknown.verdict, unknown.reason)
    assert wrong.verdict is Verdict.FORBIDDEN


def test_other_users_credentials_are_forbidden() -> None:
    server = DigestServer("pbx", SECRET)
    result = server.verify(credential(server), "REGISTER", ha1_table, expected_user="102")
    assert result.verdict is Verdict.FORBIDDEN


def test_expired_nonce_is_stale_only_with_the_right_password() -> None:
    clock = Clock()
    server = DigestServer("pbx", SECRET, nonce_ttl=300, clock=clock)
    good, bad = credential(server), credential(server, password="Wrong1234567")
    clock.now += 301
    assert server.verify(good, "REGISTER", ha1_table).verdict is Verdict.STALE
    assert server.verify(bad, "REGISTER", ha1_table).verdict is Verdict.FORBIDDEN


def test_nonce_count_must_increase() -> None:
    server = DigestServer("pbx", SECRET)
    nonce = server.new_nonce()
    first = credential(server, nonce=nonce, nc="00000001")
    assert server.verify(first, "REGISTER", ha1_table).verdict is Verdict.OK
    assert server.verify(first, "REGISTER", ha1_table).verdict is Verdict.STALE  # replay
    second = credential(server, nonce=nonce, nc="00000002")
    assert server.verify(second, "REGISTER", ha1_table).verdict is Verdict.OK


def test_nonce_from_an_earlier_run_is_recognised_but_stale() -> None:
    before = DigestServer("pbx", SECRET)
    header = credential(before)
    after = DigestServer("pbx", SECRET)  # same secret: the box restarted
    assert after.verify(header, "REGISTER", ha1_table).verdict is Verdict.STALE
    stranger = DigestServer("pbx", b"x" * 32)
    assert stranger.verify(header, "REGISTER", ha1_table).verdict is Verdict.CHALLENGE


def test_tampered_nonce_gets_a_fresh_challenge() -> None:
    server = DigestServer("pbx", SECRET)
    nonce = server.new_nonce()
    forged = nonce[:-2] + ("AA" if nonce[-2:] != "AA" else "BB")
    header = credential(server, nonce=forged)
    assert server.verify(header, "REGISTER", ha1_table).verdict is Verdict.CHALLENGE


def test_other_realm_gets_a_fresh_challenge() -> None:
    server = DigestServer("pbx", SECRET)
    header = credential(server, realm="elsewhere")
    assert server.verify(header, "REGISTER", ha1_table).verdict is Verdict.CHALLENGE


def test_algorithm_not_offered_gets_a_fresh_challenge() -> None:
    server = DigestServer("pbx", SECRET, algorithms=("SHA-256",))
    result = server.verify(credential(server, algorithm="MD5"), "REGISTER", ha1_table)
    assert result.verdict is Verdict.CHALLENGE


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ('Digest username="101", realm="pbx"', "Authorization lacks nonce, uri, response"),
        ('Digest username="101, realm=pbx', "malformed Authorization: unterminated quoted string"),
        ("Digest username", "malformed Authorization: auth parameter without value"),
        ('Digest a="1", a="2"', "malformed Authorization: empty or repeated auth parameter"),
    ],
)
def test_malformed_credentials_are_a_bad_request(header: str, reason: str) -> None:
    result = DigestServer("pbx", SECRET).verify(header, "REGISTER", ha1_table)
    assert (result.verdict, result.reason) == (Verdict.BAD_REQUEST, reason)


def test_auth_params_honour_quotes_and_escapes() -> None:
    scheme, params = parse_auth_params(
        'Digest username="a\\"b", realm="x, y",nc=00000001 , qop=auth'
    )
    assert scheme == "digest"
    assert params == {"username": 'a"b', "realm": "x, y", "nc": "00000001", "qop": "auth"}
