"""HTTP Digest authentication for SIP, server side (RFC 7616, RFC 8760, RFC 3261 §22).

Nonces are stateless and signed: `base64url(time | boot | index | BLAKE2b-MAC(secret))`, so
any nonce this box issued (even before a restart) is recognised and an expired one is answered
with `stale=true`. Replays are refused with a nonce-count table indexed by the nonce's index, as
Kamailio's auth module does: a fixed, lazily touched array instead of one object per nonce.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

logger = logging.getLogger(__name__)

ALGORITHMS: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "SHA-256": hashlib.sha256,
    "MD5": hashlib.md5,
}
"""Supported algorithms in order of preference (RFC 8760 §3: SHA-256 first)."""

NC_SLOTS = 1 << 18
"""Nonces whose nonce-count is tracked at once; an older nonce is answered with stale=true."""

_NONCE = struct.Struct(">IIII")  # time, boot id, index, (padding for the MAC to follow)
_MAC_LEN = 16


class Verdict(Enum):
    OK = "ok"
    CHALLENGE = "challenge"  # no usable credentials: send a fresh challenge (401/407)
    STALE = "stale"  # right password, old nonce: challenge again with stale=true
    FORBIDDEN = "forbidden"  # wrong password, unknown user, or another user's identity: 403
    BAD_REQUEST = "bad-request"  # malformed Authorization header: 400


@dataclass(frozen=True, slots=True)
class AuthResult:
    verdict: Verdict
    username: str | None = None
    reason: str = ""


def digest_response(
    algorithm: str,
    ha1: str,
    nonce: str,
    nc: str,
    cnonce: str,
    method: str,
    uri: str,
    *,
    qop: str | None = "auth",
    body: bytes = b"",
) -> str:
    """RFC 7616 §3.4.1 `response`: KD(HA1, nonce:nc:cnonce:qop:HA2), HA2 = H(method:uri).

    The server checks qop=auth only. Clients also answer qop=auth-int (HA2 then ends with
    `:H(body)`) and challenges without qop (RFC 2069: KD(HA1, nonce:HA2); nc, cnonce unused).
    For the -sess algorithms, pass the base algorithm and the session HA1.
    """
    hash_ = ALGORITHMS[algorithm]

    def h(text: str) -> str:
        return hash_(text.encode()).hexdigest()

    if qop == "auth-int":
        ha2 = h(f"{method}:{uri}:{hash_(body).hexdigest()}")
    else:
        ha2 = h(f"{method}:{uri}")
    if qop is None:
        return h(f"{ha1}:{nonce}:{ha2}")
    return h(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


_AUTH_PARAM = re.compile(
    r'[ \t,]*([A-Za-z0-9_.-]+)[ \t]*=[ \t]*(?:"((?:[^"\\]|\\.)*)"|([^ \t,"]*))[ \t]*(?:,|\Z)'
)
_ESCAPE = re.compile(r"\\(.)")


_AUTH_PARAMS = re.compile(
    r'(?:[ \t,]*[A-Za-z0-9_.-]+[ \t]*=[ \t]*(?:"(?:[^"\\]|\\.)*"|[^ \t,"]*)[ \t]*(?:,|\Z))*'
    r"[ \t,]*\Z"
)


def parse_auth_params(text: str) -> tuple[str, dict[str, str]]:
    """`Digest a="x, y", b=z` into ("digest", {"a": "x, y", "b": "z"}); raises ValueError."""
    scheme, _, rest = text.strip().partition(" ")
    if _AUTH_PARAMS.match(rest) is None:
        return _parse_auth_params_slowly(scheme, rest)  # to say what is wrong
    params: dict[str, str] = {}
    for raw_name, quoted, token in _AUTH_PARAM.findall(rest):
        name = raw_name.lower()
        if name in params:
            raise ValueError("empty or repeated auth parameter")
        params[name] = (_ESCAPE.sub(r"\1", quoted) if "\\" in quoted else quoted) or token
    return scheme.lower(), params


def _parse_auth_params_slowly(scheme: str, rest: str) -> tuple[str, dict[str, str]]:
    """A character-by-character parse of auth-params that names the first error it meets."""
    params: dict[str, str] = {}
    i, n = 0, len(rest)
    while i < n:
        while i < n and rest[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = rest.find("=", i)
        if eq < 0:
            raise ValueError("auth parameter without value")
        name = rest[i:eq].strip().lower()
        i = eq + 1
        while i < n and rest[i] in " \t":
            i += 1
        if i < n and rest[i] == '"':
            i += 1
            out = []
            while i < n and rest[i] != '"':
                if rest[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(rest[i])
                i += 1
            if i >= n:
                raise ValueError("unterminated quoted string")
            i += 1
            value = "".join(out)
        else:
            end = rest.find(",", i)
            end = n if end < 0 else end
            value = rest[i:end].strip()
            i = end
        if not name or name in params:
            raise ValueError("empty or repeated auth parameter")
        params[name] = value
    return scheme.lower(), params


class DigestServer:
    """Issues challenges and checks credentials for one realm."""

    def __init__(
        self,
        realm: str,
        secret: bytes,
        *,
        nonce_ttl: float = 300.0,
        algorithms: tuple[str, ...] = ("SHA-256", "MD5"),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.realm = realm
        self._secret = secret
        self.nonce_ttl = nonce_ttl
        self.algorithms = algorithms
        self._clock = clock
        self._boot = int.from_bytes(os.urandom(4), "big")
        self._index = 0
        self._nc = memoryview(bytearray(4 * NC_SLOTS)).cast("I")

    # -- nonces --------------------------------------------------------------------------

    def _mac(self, head: bytes) -> bytes:
        # Keyed BLAKE2b is a MAC in one pass (RFC 7693 §2.5), and cheaper than HMAC here.
        return hashlib.blake2b(head, key=self._secret[:64], digest_size=_MAC_LEN).digest()

    def new_nonce(self) -> str:
        self._index = (self._index + 1) & 0xFFFFFFFF
        head = _NONCE.pack(int(self._clock()), self._boot, self._index, 0)[:12]
        return base64.urlsafe_b64encode(head + self._mac(head)).decode().rstrip("=")

    def _open_nonce(self, nonce: str) -> tuple[int, int, int] | None:
        """(time, boot, index) of a nonce this box signed, else None."""
        if len(nonce) != 38:
            return None
        try:
            raw = base64.urlsafe_b64decode(nonce + "==")
        except ValueError:
            return None
        head, mac = raw[:12], raw[12:]
        if len(raw) != 12 + _MAC_LEN or not hmac.compare_digest(mac, self._mac(head)):
            return None
        issued, boot, index, _ = _NONCE.unpack(head + b"\0\0\0\0")
        return issued, boot, index

    def challenges(self, *, stale: bool = False) -> list[str]:
        """WWW-Authenticate / Proxy-Authenticate values, one per algorithm, sharing one nonce."""
        nonce = self.new_nonce()
        tail = ", stale=true" if stale else ""
        return [
            f'Digest realm="{self.realm}", nonce="{nonce}", algorithm={alg}, qop="auth"{tail}'
            for alg in self.algorithms
        ]

    # -- verification --------------------------------------------------------------------

    def verify(
        self,
        header: str,
        method: str,
        ha1_for: Callable[[str, str], str | None],
        *,
        expected_user: str | None = None,
    ) -> AuthResult:
        """Check one Authorization (or Proxy-Authorization) header value.

        `ha1_for(username, algorithm)` returns the stored HA1, or None for an unknown user. An
        unknown user is checked against an HA1 derived from the server secret, so its answer
        and the time it takes are those of a wrong password.
        """
        try:
            scheme, p = parse_auth_params(header)
        except ValueError as exc:
            return AuthResult(Verdict.BAD_REQUEST, reason=f"malformed Authorization: {exc}")
        if scheme != "digest":
            return AuthResult(Verdict.CHALLENGE, reason="not a Digest credential")
        missing = [k for k in ("username", "realm", "nonce", "uri", "response") if k not in p]
        if missing:
            return AuthResult(
                Verdict.BAD_REQUEST, reason=f"Authorization lacks {', '.join(missing)}"
            )
        if p["realm"] != self.realm:
            return AuthResult(Verdict.CHALLENGE, reason="credentials for another realm")
        algorithm = p.get("algorithm", "MD5").upper()
        if algorithm not in ALGORITHMS or algorithm not in self.algorithms:
            return AuthResult(Verdict.CHALLENGE, reason=f"unsupported algorithm {algorithm}")
        opened = self._open_nonce(p["nonce"])
        if opened is None:
            return AuthResult(Verdict.CHALLENGE, reason="nonce not issued here")
        qop = p.get("qop")
        nc_text, cnonce = p.get("nc", ""), p.get("cnonce")
        if qop != "auth" or cnonce is None or len(nc_text) != 8:
            return AuthResult(
                Verdict.FORBIDDEN, p["username"], "qop=auth with nc and cnonce needed"
            )
        try:
            nc = int(nc_text, 16)
        except ValueError:
            return AuthResult(Verdict.BAD_REQUEST, reason="invalid nonce count")
        username = p["username"]
        hash_ = ALGORITHMS[algorithm]
        ha1 = ha1_for(username, algorithm)
        if ha1 is None:
            ha1 = hash_(self._secret + f":{algorithm}:{username}".encode()).hexdigest()
        expected = digest_response(algorithm, ha1, p["nonce"], nc_text, cnonce, method, p["uri"])
        if not hmac.compare_digest(expected.encode(), p["response"].lower().encode()):
            return AuthResult(Verdict.FORBIDDEN, username, "wrong credentials")
        if expected_user is not None and username != expected_user:
            return AuthResult(Verdict.FORBIDDEN, username, "credentials of another user")
        issued, boot, index = opened
        if self._clock() - issued > self.nonce_ttl:
            return AuthResult(Verdict.STALE, username, "nonce expired")
        if not self._count(boot, index, nc):
            return AuthResult(Verdict.STALE, username, "nonce count replayed")
        return AuthResult(Verdict.OK, username)

    def _count(self, boot: int, index: int, nc: int) -> bool:
        """Record nonce-count `nc`; False if it is not above the last one seen (a replay)."""
        age = (self._index - index) & 0xFFFFFFFF
        if boot != self._boot or age >= NC_SLOTS or nc == 0:
            return False
        slot = index % NC_SLOTS
        if nc <= self._nc[slot]:
            return False
        self._nc[slot] = nc
        return True
