"""HTTP Digest authentication for SIP, client side (RFC 2617, RFC 7616, RFC 8760, RFC 3261 §22).

`authorization` answers one `WWW-Authenticate` / `Proxy-Authenticate` challenge: MD5 or SHA-256
(and their -sess variants), qop=auth, qop=auth-int when it is the only one offered, or no qop
(RFC 2069). `ClientAuth` answers the 401 or 407 to a request with a new request, keeps the nonce
counts of one target, and knows when to stop: a realm that challenges again what we answered,
without saying the nonce was stale, refuses our password.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

from appliance.sip.dialog import new_branch
from appliance.sip.digest import ALGORITHMS, digest_response, parse_auth_params
from appliance.sip.headers import Via, split_list
from appliance.sip.message import HeaderField, Request, Response, SipParseError

logger = logging.getLogger(__name__)

MAX_STALE_IN_A_ROW = 2
"""Fresh answers to one realm that may be called stale one after the other before we stop."""

_PREFERENCE = ("SHA-256", "SHA-256-SESS", "MD5", "MD5-SESS")
"""Algorithms in the order we pick them when one realm offers several (RFC 8760 §3)."""

_HEADERS = {
    401: ("WWW-Authenticate", "Authorization"),
    407: ("Proxy-Authenticate", "Proxy-Authorization"),
}
"""Challenge status: the header that carries the challenge and the one that answers it."""


class ChallengeError(ValueError):
    """A challenge this client cannot answer (scheme, algorithm or qop), or a malformed one."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """The authentication user and password for one target; the password never prints."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Challenge:
    """One Digest challenge, read: its parameters, algorithm (upper case) and chosen qop."""

    params: dict[str, str]
    algorithm: str
    qop: str | None

    @property
    def realm(self) -> str:
        return self.params["realm"]

    @property
    def nonce(self) -> str:
        return self.params["nonce"]

    @property
    def stale(self) -> bool:
        return self.params.get("stale", "").lower() == "true"


def _read_challenge(text: str) -> _Challenge:
    try:
        scheme, params = parse_auth_params(text)
    except ValueError as exc:
        raise ChallengeError(f"malformed challenge: {exc}") from None
    if scheme != "digest":
        name = text.strip().partition(" ")[0]
        raise ChallengeError(f"unsupported authentication scheme {name!r}")
    for name in ("realm", "nonce"):
        if name not in params:
            raise ChallengeError(f"challenge lacks {name}")
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in _PREFERENCE:
        raise ChallengeError(f"unsupported digest algorithm {params['algorithm']!r}")
    if "qop" not in params:
        return _Challenge(params, algorithm, None)
    offered = [q.strip().lower() for q in params["qop"].split(",")]
    if "auth" in offered:
        qop = "auth"
    elif "auth-int" in offered:
        qop = "auth-int"
    else:
        raise ChallengeError(f"unsupported qop {params['qop']!r}")
    return _Challenge(params, algorithm, qop)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _answer(
    challenge: _Challenge,
    method: str,
    uri: str,
    creds: Credentials,
    body: bytes,
    nc: int,
    cnonce: str,
) -> tuple[str, str]:
    """The Authorization value for `challenge`, and the `response` digest in it."""
    base, sess = challenge.algorithm.removesuffix("-SESS"), challenge.algorithm.endswith("-SESS")
    hash_ = ALGORITHMS[base]
    realm, nonce, qop = challenge.realm, challenge.nonce, challenge.qop
    ha1 = hash_(f"{creds.username}:{realm}:{creds.password}".encode()).hexdigest()
    if sess:  # RFC 7616 §3.4.2
        ha1 = hash_(f"{ha1}:{nonce}:{cnonce}".encode()).hexdigest()
    nc_text = f"{nc:08x}"
    response = digest_response(base, ha1, nonce, nc_text, cnonce, method, uri, qop=qop, body=body)
    parts = [
        f"username={_quote(creds.username)}",
        f"realm={_quote(realm)}",
        f"nonce={_quote(nonce)}",
        f"uri={_quote(uri)}",
        f'response="{response}"',
    ]
    if "algorithm" in challenge.params:
        parts.append(f"algorithm={challenge.params['algorithm']}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc_text}", f"cnonce={_quote(cnonce)}"]
    if "opaque" in challenge.params:
        parts.append(f"opaque={_quote(challenge.params['opaque'])}")
    return "Digest " + ", ".join(parts), response


def _new_cnonce() -> str:
    return os.urandom(12).hex()


def authorization(
    challenge: str,
    method: str,
    uri: str,
    creds: Credentials,
    *,
    body: bytes = b"",
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The `Authorization` (or `Proxy-Authorization`) value answering one challenge value.

    `uri` is the Request-URI, `body` the message body (used by qop=auth-int only). Raises
    `ChallengeError` for a challenge that is not Digest, names an algorithm or qop we lack, or
    does not parse.
    """
    read = _read_challenge(challenge)
    return _answer(read, method, uri, creds, body, nc, cnonce or _new_cnonce())[0]


@dataclass(slots=True)
class _Space:
    """A realm we answered (RFC 7616 §3.3 protection space): its last challenge and counts."""

    challenge: _Challenge
    cnonce: str
    nc: int = 0
    fresh: str | None = None
    """The `response` of our last answer to a challenge: seeing it challenged means refusal."""
    stale_in_a_row: int = 0


class ClientAuth:
    """Answers 401 and 407 for the requests one user agent sends to one target.

    It remembers, per realm, the last challenge and its nonce count, so the next request to the
    same target can carry credentials at once (`with_credentials`) and the nonce count rises with
    every request that uses a nonce.
    """

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials
        self._spaces: dict[tuple[str, str], _Space] = {}
        """(answer header key, realm) -> what we know of that realm."""

    def authorize(self, request: Request, response: Response) -> Request | None:
        """A new request answering `response` (a 401 or 407 to `request`), or None to give up.

        The new request has the same Call-ID, From (tag included) and To, the next CSeq number,
        a new Via branch, and an `Authorization` (401) or `Proxy-Authorization` (407) for each
        realm challenged (SHA-256 preferred), replacing those it had for these realms; credentials
        it had for other realms we answered before are kept with the next nonce count. Gives up
        when no challenge can be answered, or when a realm challenges again, without
        `stale=true`, the answer we gave to its last challenge (a wrong password).
        """
        names = _HEADERS.get(response.status)
        if names is None:
            return None
        challenge_name, answer_name = names
        offered = _best_by_realm(response.get_all(challenge_name))
        if not offered:
            logger.info("%s %s: no challenge we can answer", response.status, request.method)
            return None
        answer_key = answer_name.lower()
        previous = _credentials_by_realm(request, answer_name)
        answered: set[tuple[str, str]] = set()
        for realm, challenge in offered.items():
            key = (answer_key, realm)
            space = self._spaces.get(key)
            stale_in_a_row = 0
            ours = previous.get(realm)
            if space is not None and ours is not None and ours == space.fresh:
                # We answered this realm's last challenge, and it challenges that answer.
                if not challenge.stale or space.stale_in_a_row >= MAX_STALE_IN_A_ROW:
                    logger.info("%s %s: realm %r refused our credentials for %r",
                                response.status, request.method, realm,
                                self.credentials.username)  # fmt: skip
                    del self._spaces[key]
                    return None
                stale_in_a_row = space.stale_in_a_row + 1
            if space is None or space.challenge.nonce != challenge.nonce:
                space = self._spaces[key] = _Space(challenge, _new_cnonce())
            else:
                space.challenge = challenge  # same nonce: keep its count, take the rest anew
            space.stale_in_a_row = stale_in_a_row
            answered.add(key)
        renew = {
            had for h in request.headers
            if (had := _credential_key(h)) is not None and had not in answered
            and self._renewable(had)
        }  # fmt: skip
        return self._signed(_next_request(request), answered, renew)

    def with_credentials(self, request: Request) -> Request:
        """`request` with credentials for every realm answered before, at the next nonce count.

        For a new request to the same target (a registration refresh, say), to spare a round
        trip. Challenges without qop are left out: an answer to them repeats the one refused.
        """
        return self._signed(request, set(), {key for key in self._spaces if self._renewable(key)})

    def _renewable(self, key: tuple[str, str]) -> bool:
        space = self._spaces.get(key)
        return space is not None and space.challenge.qop is not None

    def _signed(
        self, new: Request, answered: set[tuple[str, str]], renew: set[tuple[str, str]]
    ) -> Request:
        """`new` with fresh answers for the realms in `answered`, renewed ones for `renew`."""
        replaced = answered | renew
        headers = [h for h in new.headers if _credential_key(h) not in replaced]
        at = len(headers) - 1 if headers and headers[-1].key == "content-length" else len(headers)
        for key, space in self._spaces.items():
            if key in replaced:
                space.nc += 1
                value, response = _answer(
                    space.challenge, new.method, new.uri, self.credentials, new.body,
                    space.nc, space.cnonce,
                )  # fmt: skip
                if key in answered:
                    space.fresh = response
                name = "Authorization" if key[0] == "authorization" else "Proxy-Authorization"
                headers.insert(at, HeaderField(name, value))
                at += 1
        return Request(headers=headers, body=new.body, method=new.method, uri=new.uri)


def _best_by_realm(values: list[str]) -> dict[str, _Challenge]:
    """The challenge we prefer for each realm among those we can answer."""
    best: dict[str, _Challenge] = {}
    for value in values:
        try:
            challenge = _read_challenge(value)
        except ChallengeError as exc:
            logger.debug("challenge skipped: %s", exc)
            continue
        held = best.get(challenge.realm)
        if held is None or _PREFERENCE.index(challenge.algorithm) < _PREFERENCE.index(
            held.algorithm
        ):
            best[challenge.realm] = challenge
    return best


def _credentials_by_realm(request: Request, name: str) -> dict[str, str | None]:
    """realm -> `response` of the Digest credentials of header `name` in `request`."""
    found: dict[str, str | None] = {}
    for value in request.get_all(name):
        try:
            scheme, params = parse_auth_params(value)
        except ValueError:
            continue
        if scheme == "digest" and "realm" in params:
            found[params["realm"]] = params.get("response")
    return found


def _credential_key(h: HeaderField) -> tuple[str, str] | None:
    """(header key, realm) of an Authorization or Proxy-Authorization line with Digest."""
    if h.key not in ("authorization", "proxy-authorization"):
        return None
    try:
        scheme, params = parse_auth_params(h.value)
    except ValueError:
        return None
    if scheme != "digest" or "realm" not in params:
        return None
    return (h.key, params["realm"])


def _next_request(request: Request) -> Request:
    """A copy of `request` to send again (§8.1.3.5): next CSeq number, new top Via branch."""
    cseq = request.cseq
    top = request.via
    via = Via(top.transport, top.host, top.port, {**top.params, "branch": new_branch()})
    headers: list[HeaderField] = []
    via_done = False
    for h in request.headers:
        if h.key == "via" and not via_done:
            via_done = True
            rest = split_list(h.value)[1:]
            headers.append(HeaderField(h.name, ", ".join([str(via), *rest])))
        elif h.key == "cseq":
            headers.append(HeaderField(h.name, f"{cseq.number + 1} {cseq.method}"))
        else:
            headers.append(HeaderField(h.name, h.value, h.raw, h.key))
    if not via_done:
        raise SipParseError("missing Via header")
    return Request(headers=headers, body=request.body, method=request.method, uri=request.uri)
