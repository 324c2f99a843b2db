"""Client digest (RFC 2617/7616/8760): known answers, and answers our own DigestServer accepts."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

import appliance.sip.ua
from appliance.sip.digest import DigestServer, Verdict, parse_auth_params
from appliance.sip.message import Request, Response, make_response
from appliance.sip.ua import uac
from appliance.sip.ua.auth import ChallengeError, ClientAuth, Credentials, authorization
from appliance.store.extensions import digest_ha1

SECRET = b"k" * 32
PASSWORD = "Secret123456"
CREDS = Credentials("101", PASSWORD)

# RFC 7616 §3.9.1
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
MUFASA = Credentials("Mufasa", "Circle of Life")


def rfc_challenge(algorithm: str) -> str:
    return (
        f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def ha1_table(user: str, algorithm: str) -> str | None:
    return digest_ha1(algorithm, "101", "pbx", PASSWORD) if user == "101" else None


def register_request(body: bytes = b"") -> Request:
    return uac.request(
        "REGISTER", "sip:pbx.example", via="UDP 127.0.0.1:5062",
        from_="<sip:101@pbx.example>;tag=f1", to="<sip:101@pbx.example>", call_id="c1@box",
        cseq=7, headers=[("Contact", "<sip:101@127.0.0.1:5062>"), ("Expires", "300")],
        body=body,
    )  # fmt: skip


def challenge_response(
    request: Request, server: DigestServer, status: int = 401, *, stale: bool = False
) -> Response:
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    headers = [(name, c) for c in server.challenges(stale=stale)]
    return make_response(request, status, to_tag="t1", headers=headers)


def credential(request: Request, name: str = "Authorization") -> dict[str, str]:
    (value,) = request.get_all(name)
    scheme, params = parse_auth_params(value)
    assert scheme == "digest"
    return params


# -- known answers -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_mufasa_example(algorithm: str, response: str) -> None:
    got = authorization(
        rfc_challenge(algorithm), "GET", "/dir/index.html", MUFASA, cnonce=RFC_CNONCE
    )
    assert got == (
        f'Digest username="Mufasa", realm="{RFC_REALM}", nonce="{RFC_NONCE}", '
        f'uri="/dir/index.html", response="{response}", algorithm={algorithm}, qop=auth, '
        f'nc=00000001, cnonce="{RFC_CNONCE}", opaque="{RFC_OPAQUE}"'
    )
    assert parse_auth_params(got)[1] == {
        "username": "Mufasa", "realm": RFC_REALM, "uri": "/dir/index.html",
        "algorithm": algorithm, "nonce": RFC_NONCE, "nc": "00000001", "cnonce": RFC_CNONCE,
        "qop": "auth", "response": response, "opaque": RFC_OPAQUE,
    }  # fmt: skip


RFC2617 = (
    'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
    'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)


def test_rfc2617_example_without_algorithm() -> None:
    # RFC 2617 §3.5: no algorithm (so MD5, and none echoed), qop=auth.
    creds = Credentials("Mufasa", "Circle Of Life")
    got = authorization(RFC2617 + ', qop="auth,auth-int"', "GET", "/dir/index.html", creds,
                        cnonce="0a4f113b")  # fmt: skip
    params = parse_auth_params(got)[1]
    assert params["response"] == "6629fae49393a05397450978507c4ef1"
    assert "algorithm" not in params
    assert (params["qop"], params["nc"]) == ("auth", "00000001")


def test_no_qop_is_the_rfc2069_form() -> None:
    creds = Credentials("Mufasa", "Circle Of Life")
    got = authorization(RFC2617, "GET", "/dir/index.html", creds)
    params = parse_auth_params(got)[1]
    assert params["response"] == "670fd8c2df070c60b045671b8b24ff02"
    assert not {"qop", "nc", "cnonce"} & set(params)
    assert params["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"


def h(algorithm: str, text: str | bytes) -> str:
    data = text.encode() if isinstance(text, str) else text
    return hashlib.new({"MD5": "md5", "SHA-256": "sha256"}[algorithm], data).hexdigest()


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_auth_int_when_offered_alone_hashes_the_body(algorithm: str) -> None:
    challenge = f'Digest realm="r", nonce="n1", algorithm={algorithm}, qop="auth-int"'
    body = b"v=0\r\n"
    got = parse_auth_params(
        authorization(challenge, "INVITE", "sip:a@b", MUFASA, body=body, nc=3, cnonce="c")
    )[1]
    ha1 = h(algorithm, "Mufasa:r:Circle of Life")
    ha2 = h(algorithm, f"INVITE:sip:a@b:{h(algorithm, body)}")
    assert got["response"] == h(algorithm, f"{ha1}:n1:00000003:c:auth-int:{ha2}")
    assert (got["qop"], got["nc"]) == ("auth-int", "00000003")


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_sess_variants_hash_nonce_and_cnonce_into_ha1(algorithm: str) -> None:
    challenge = f'Digest realm="r", nonce="n1", algorithm={algorithm}-sess, qop=auth'
    got = parse_auth_params(authorization(challenge, "BYE", "sip:a@b", MUFASA, cnonce="c"))[1]
    ha1 = h(algorithm, f"{h(algorithm, 'Mufasa:r:Circle of Life')}:n1:c")
    ha2 = h(algorithm, "BYE:sip:a@b")
    assert got["response"] == h(algorithm, f"{ha1}:n1:00000001:c:auth:{ha2}")
    assert got["algorithm"] == f"{algorithm}-sess"


def test_quotes_in_values_are_escaped() -> None:
    got = authorization('Digest realm="a \\"b\\"", nonce="n"', "GET", "/", Credentials('x"y', "p"))
    params = parse_auth_params(got)[1]
    assert (params["username"], params["realm"]) == ('x"y', 'a "b"')


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        ('Basic realm="r"', "unsupported authentication scheme 'Basic'"),
        ('Digest realm="r", nonce="n", algorithm=SHA-512-256',
         "unsupported digest algorithm 'SHA-512-256'"),
        ('Digest realm="r", nonce="n", qop="auth-conf"', "unsupported qop 'auth-conf'"),
        ('Digest realm="r"', "challenge lacks nonce"),
        ('Digest realm="r, nonce=n', "malformed challenge: unterminated quoted string"),
    ],
)  # fmt: skip
def test_unanswerable_challenges_say_why(challenge: str, message: str) -> None:
    with pytest.raises(ChallengeError) as caught:
        authorization(challenge, "REGISTER", "sip:pbx", CREDS)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_credentials_do_not_print_the_password() -> None:
    assert PASSWORD not in repr(CREDS)


# -- against our own DigestServer ---------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_our_server_accepts_the_answer(algorithm: str) -> None:
    server = DigestServer("pbx", SECRET, algorithms=(algorithm,))
    (challenge,) = server.challenges()
    value = authorization(challenge, "REGISTER", "sip:pbx.example", CREDS)
    assert server.verify(value, "REGISTER", ha1_table).verdict is Verdict.OK


@pytest.mark.parametrize("order", [("MD5", "SHA-256"), ("SHA-256", "MD5")])
def test_client_auth_answers_a_401_preferring_sha256(order: tuple[str, str]) -> None:
    server = DigestServer("pbx", SECRET, algorithms=order)
    request = register_request(body=b"hello")
    retry = ClientAuth(CREDS).authorize(request, challenge_response(request, server))
    assert retry is not None
    assert credential(retry)["algorithm"] == "SHA-256"
    assert server.verify(retry.get_all("Authorization")[0], "REGISTER", ha1_table).verdict is (
        Verdict.OK
    )
    # Same dialog identifiers and other headers, next CSeq, new branch, body kept.
    assert (retry.call_id, retry.get("From"), retry.get("To")) == (
        request.call_id, request.get("From"), request.get("To"),
    )  # fmt: skip
    assert retry.cseq == (8, "REGISTER")
    assert retry.via.branch != request.via.branch
    assert retry.via.sent_by == request.via.sent_by
    assert "rport" in retry.via.params
    assert (retry.get("Contact"), retry.get("Expires"), retry.body) == (
        request.get("Contact"), "300", b"hello",
    )  # fmt: skip
    assert retry.headers[-1].name == "Content-Length"
    assert request.get("Authorization") is None  # the original is left alone


def test_rfc7616_challenges_pick_sha256_and_echo_opaque() -> None:
    request = register_request()
    response = make_response(request, 401, headers=[
        ("WWW-Authenticate", rfc_challenge("MD5")),
        ("WWW-Authenticate", rfc_challenge("SHA-256")),
    ])  # fmt: skip
    retry = ClientAuth(MUFASA).authorize(request, response)
    assert retry is not None
    params = credential(retry)
    assert (params["algorithm"], params["opaque"], params["qop"]) == (
        "SHA-256", RFC_OPAQUE, "auth",
    )  # fmt: skip


def test_a_407_is_answered_with_proxy_authorization() -> None:
    server = DigestServer("proxy", SECRET)
    request = register_request()
    retry = ClientAuth(CREDS).authorize(request, challenge_response(request, server, 407))
    assert retry is not None
    assert retry.get("Authorization") is None
    value = retry.get_all("Proxy-Authorization")[0]

    def proxy_ha1(user: str, algorithm: str) -> str | None:
        return digest_ha1(algorithm, "101", "proxy", PASSWORD)

    assert server.verify(value, "REGISTER", proxy_ha1).verdict is Verdict.OK


def test_proxy_then_registrar_keeps_both_with_rising_nonce_counts() -> None:
    proxy, registrar = DigestServer("proxy", SECRET), DigestServer("pbx", SECRET)
    auth = ClientAuth(CREDS)
    first = register_request()
    second = auth.authorize(first, challenge_response(first, proxy, 407))
    assert second is not None
    third = auth.authorize(second, challenge_response(second, registrar, 401))
    assert third is not None
    assert credential(second, "Proxy-Authorization")["nc"] == "00000001"
    assert credential(third, "Proxy-Authorization")["nc"] == "00000002"
    assert credential(third)["nc"] == "00000001"
    assert third.cseq.number == 9


def test_stale_nonce_is_answered_again_and_replaces_the_old_credentials() -> None:
    clock = Clock()
    server = DigestServer("pbx", SECRET, nonce_ttl=30, clock=clock)
    auth = ClientAuth(CREDS)
    request = register_request()
    answered = auth.authorize(request, challenge_response(request, server))
    assert answered is not None
    clock.now += 31
    header = answered.get_all("Authorization")[0]
    assert server.verify(header, "REGISTER", ha1_table).verdict is Verdict.STALE
    again = auth.authorize(answered, challenge_response(answered, server, stale=True))
    assert again is not None
    assert len(again.get_all("Authorization")) == 1
    assert credential(again)["nonce"] != credential(answered)["nonce"]
    assert server.verify(again.get_all("Authorization")[0], "REGISTER", ha1_table).verdict is (
        Verdict.OK
    )


def test_stale_without_end_gives_up() -> None:
    server = DigestServer("pbx", SECRET)
    auth = ClientAuth(CREDS)
    request: Request | None = register_request()
    sent = 0
    while request is not None and sent < 10:
        sent += 1
        request = auth.authorize(request, challenge_response(request, server, stale=sent > 1))
    assert request is None
    assert sent == 4  # the first answer, then two stale ones are answered, the third is not


def test_a_wrong_password_is_given_up_after_one_answer() -> None:
    server = DigestServer("pbx", SECRET)
    auth = ClientAuth(Credentials("101", "Wrong1234567"))
    request = register_request()
    answered = auth.authorize(request, challenge_response(request, server))
    assert answered is not None
    header = answered.get_all("Authorization")[0]
    assert server.verify(header, "REGISTER", ha1_table).verdict is Verdict.FORBIDDEN
    # A server that re-challenges a wrong password (as Kamailio does) without stale=true:
    assert auth.authorize(answered, challenge_response(answered, server)) is None
    # A new request starts afresh: its first challenge is answered again.
    fresh = register_request()
    assert auth.with_credentials(fresh).get("Authorization") is None
    assert auth.authorize(fresh, challenge_response(fresh, server)) is not None


def test_no_supported_challenge_gives_up() -> None:
    request = register_request()
    basic = make_response(request, 401, headers=[("WWW-Authenticate", 'Basic realm="x"')])
    assert ClientAuth(CREDS).authorize(request, basic) is None
    ok = make_response(request, 200)
    assert ClientAuth(CREDS).authorize(request, ok) is None


def test_later_requests_carry_credentials_with_the_next_nonce_count() -> None:
    server = DigestServer("pbx", SECRET)
    auth = ClientAuth(CREDS)
    request = register_request()
    answered = auth.authorize(request, challenge_response(request, server))
    assert answered is not None
    header = answered.get_all("Authorization")[0]
    assert server.verify(header, "REGISTER", ha1_table).verdict is Verdict.OK
    refresh = auth.with_credentials(register_request())
    assert credential(refresh)["nc"] == "00000002"
    assert credential(refresh)["nonce"] == credential(answered)["nonce"]
    header = refresh.get_all("Authorization")[0]
    assert server.verify(header, "REGISTER", ha1_table).verdict is Verdict.OK


def test_a_challenge_to_reused_credentials_is_answered_once_more() -> None:
    # A server that forgot our nonce and does not say stale: the reused answer was not refused.
    server = DigestServer("pbx", SECRET)
    auth = ClientAuth(CREDS)
    request = register_request()
    assert auth.authorize(request, challenge_response(request, server)) is not None
    refresh = auth.with_credentials(register_request())
    answered = auth.authorize(refresh, challenge_response(refresh, DigestServer("pbx", b"x" * 32)))
    assert answered is not None
    assert credential(answered)["nc"] == "00000001"


# -- layering ------------------------------------------------------------------------------


def test_the_user_agent_role_imports_nothing_above_the_sip_stack() -> None:
    forbidden = ("appliance.pbx", "appliance.store", "appliance.web", "appliance.media",
                 "appliance.lines")  # fmt: skip
    for path in Path(appliance.sip.ua.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            )  # fmt: skip
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"
