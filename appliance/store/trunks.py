"""SIP trunks: the providers (or other boxes) the office's calls go out by and come in from.

A `register` trunk registers to the provider with a username and password (RFC 3261 §10);
an `ip` trunk has none and is recognised by the provider's addresses. The password is kept in
clear, because the box must answer the provider's digest challenges with it; it is shown as
`********` by `Trunk`'s repr and `masked()`, and this module never logs a trunk."""

from __future__ import annotations

import ipaddress
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from appliance.i18n import T
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.texts import either, joined

KINDS = ("register", "ip")
TRANSPORTS = ("udp", "tcp")
CODECS = ("PCMA", "PCMU", "G722")
DID_SOURCES = ("auto", "request-uri", "to")
MASK = "********"
NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?\Z")
_TOKEN_RE = re.compile(r"[A-Za-z0-9.!%*_+`'~-]+\Z")
"""RFC 3261 §25.1 token: what a header name is made of."""
_USER_FORBIDDEN = frozenset(' "<>:@\\')


class TrunkError(ValueError):
    """A request about a trunk cannot be done. `str()` says why, for a technician; `field`
    names what was wrong (name, server, password...) so a form can show it there."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


class TrunkExists(TrunkError):
    """Another trunk has that name."""


@dataclass(frozen=True, slots=True, repr=False)
class Trunk:
    name: str
    kind: str
    """"register" (the box registers to the provider) or "ip" (recognised by address)."""
    server: str
    """HOST or HOST:PORT the calls and registrations go to (IPv6 in brackets)."""
    outbound_proxy: str
    transport: str
    username: str
    auth_user: str
    """The digest user name when the provider's differs from `username`; "" for the same."""
    password: str
    from_user: str
    from_domain: str
    codecs: str
    """Comma-separated, most preferred first: "PCMA,PCMU,G722"."""
    max_calls: int
    """Calls at once over the trunk; 0 for no limit."""
    expires: int
    options_interval: int
    """Seconds between OPTIONS keep-alives; 0 for none."""
    external_address: str
    """The address to put in Contact and SDP when the box is behind NAT; "" to find it."""
    match_cidrs: str
    """Comma-separated networks (CIDR) whose calls are this trunk's; "" for the server's
    address."""
    did_from: str
    """Where an inbound call's DID is read: auto, request-uri, to, header:NAME."""
    late_offer: bool
    enabled: bool
    instance: str
    """12 hex digits made when the trunk is: the Contact's `line` parameter, by which the box
    recognises the calls the provider sends to its registration."""
    created_at: float
    updated_at: float

    def masked(self) -> dict[str, Any]:
        """Every field for pages, listings and logs, the password shown as ********."""
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["password"] = MASK if self.password else ""
        return shown

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.masked().items())
        return f"Trunk({inner})"

    __str__ = __repr__


_COLUMNS = tuple(f.name for f in fields(Trunk))
_SETTABLE = frozenset(_COLUMNS) - {"name", "instance", "created_at", "updated_at"}
DEFAULTS: dict[str, Any] = {
    "kind": "register",
    "outbound_proxy": "",
    "transport": "udp",
    "username": "",
    "auth_user": "",
    "password": "",
    "from_user": "",
    "from_domain": "",
    "codecs": "PCMA,PCMU,G722",
    "max_calls": 0,
    "expires": 300,
    "options_interval": 30,
    "external_address": "",
    "match_cidrs": "",
    "did_from": "auto",
    "late_offer": False,
    "enabled": True,
}
"""What a new trunk has unless told otherwise (the schema's defaults)."""


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise TrunkError(
            T(
                "trunk name must be 1 to 32 lower-case letters, digits, '-' or '_', starting with"
                " a letter or digit, not {name!r}",
                name=name,
            )
        )
    return name


def _host(text: str) -> str | None:
    """A host name or IP address, canonical (lower case; IPv6 compressed, no brackets)."""
    host = text.lower()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    if len(host) > 253 or not _HOSTNAME_RE.match(host) or re.fullmatch(r"[0-9.]+", host):
        return None  # all digits and dots, yet not an IPv4 address: a typing error
    return host.rstrip(".")


def check_hostport(text: object, what: str, field: str) -> str:
    """HOST or HOST:PORT (a host name, an IPv4 address, an IPv6 address in brackets when a
    port follows), canonical; what the server and the outbound proxy are."""
    value = _text(text, what, field).strip()
    host: str | None = None
    port = ""
    bracketed = re.fullmatch(r"\[([0-9a-fA-F:.]+)\](?::([0-9]{1,5}))?", value)
    if bracketed:  # [IPv6] or [IPv6]:PORT
        host = _host(bracketed[1])
        host, port = (host, bracketed[2] or "") if host and ":" in host else (None, "")
    elif value.count(":") > 1:  # an IPv6 address without a port
        host = _host(value)
    else:
        name, sep, port = value.partition(":")
        if not sep or re.fullmatch(r"[0-9]{1,5}", port):
            host = _host(name)
    if host is None:
        raise TrunkError(
            T(
                "{what} must be HOST or HOST:PORT (a host name or an IP address), not {value!r}",
                what=what,
                value=value,
            ),
            field,
        )
    if port and not 1 <= int(port) <= 65535:
        raise TrunkError(
            T("{what} {value}: the port must be 1 to 65535", what=what, value=value), field
        )
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{int(port)}" if port else shown


def _text(value: object, what: str, field: str) -> str:
    if not isinstance(value, str):
        raise TrunkError(T("{what} must be text", what=what), field)
    return value


def _choice(choices: tuple[str, ...], what: str, field: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value, what, field).strip().lower()
        if text not in choices:
            raise TrunkError(
                T(
                    "{what} must be {choices}, not {value!r}",
                    what=what,
                    choices=either(choices),
                    value=value,
                ),
                field,
            )
        return text

    return check


def _optional_hostport(what: str, field: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value, what, field).strip()
        return check_hostport(text, what, field) if text else ""

    return check


def _optional_host(what: str, field: str) -> Callable[[object], str]:
    def check(value: object) -> str:
        text = _text(value, what, field).strip()
        if not text:
            return ""
        host = _host(text)
        if host is None:
            raise TrunkError(
                T(
                    "{what} must be a host name or an IP address (no port), not {value!r}",
                    what=what,
                    value=text,
                ),
                field,
            )
        return host

    return check


def _user(what: str, field: str, allow_at: bool = False) -> Callable[[object], str]:
    forbidden = _USER_FORBIDDEN - {"@"} if allow_at else _USER_FORBIDDEN
    shown = "".join(sorted(forbidden - {" "}))

    def check(value: object) -> str:
        text = _text(value, what, field).strip()
        if len(text) > 64 or not text.isprintable() or forbidden & set(text):
            raise TrunkError(
                T(
                    "{what} must be at most 64 characters without spaces or any of {forbidden},"
                    " not {value!r}",
                    what=what,
                    forbidden=shown,
                    value=text,
                ),
                field,
            )
        return text

    return check


def check_password(value: object) -> str:
    text = _text(value, T("password"), "password")
    if len(text) > 128 or not text.isprintable():
        raise TrunkError(T("password must be at most 128 printable characters"), "password")
    return text


def _items(value: object, what: str, field: str) -> list[str]:
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise TrunkError(T("{what} must be a comma-separated list", what=what), field)
    return [p.strip() for p in parts if p.strip()]


def check_codecs(value: object) -> str:
    given = _items(value, T("codecs"), "codecs")
    items = [item.upper().replace(".", "") for item in given]
    if not items or any(c not in CODECS for c in items) or len(set(items)) != len(items):
        raise TrunkError(
            T(
                "codecs must list some of {codecs}, each once, most preferred first, not {value!r}",
                codecs=", ".join(CODECS),
                value=",".join(given),
            ),
            "codecs",
        )
    return ",".join(items)


def check_cidrs(value: object) -> str:
    """Networks (CIDR) or addresses whose calls are the trunk's, canonical, each once."""
    found: list[str] = []
    for item in _items(value, T("match"), "match_cidrs"):
        try:
            network = str(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise TrunkError(
                T(
                    "{value!r} is not an IP address or network (CIDR, e.g. 203.0.113.0/24)",
                    value=item,
                ),
                "match_cidrs",
            ) from None
        if network not in found:
            found.append(network)
    return ",".join(found)


def _int(what: str, field: str, ok: Callable[[int], bool], says: str) -> Callable[[object], int]:
    def check(value: object) -> int:
        number: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,9}\s*", value):
            number = int(value)
        if number is None or not ok(number):
            raise TrunkError(
                T("{what} must be {says}, not {value!r}", what=what, says=says, value=str(value)),
                field,
            )
        return number

    return check


_YES = {"1": True, "true": True, "yes": True, "on": True}
_NO = {"0": False, "false": False, "no": False, "off": False}


def _bool(what: str, field: str) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        if isinstance(value, bool):
            return value
        answer = {**_YES, **_NO}.get(value.strip().lower()) if isinstance(value, str) else None
        if answer is None:
            raise TrunkError(
                T("{what} must be yes or no, not {value!r}", what=what, value=value), field
            )
        return answer

    return check


def check_did_from(value: object) -> str:
    text = _text(value, T("DID source"), "did_from").strip()
    if text.lower() in DID_SOURCES:
        return text.lower()
    prefix, sep, header = text.partition(":")
    if sep and prefix.lower() == "header":
        if _TOKEN_RE.match(header):
            return f"header:{header}"
        raise TrunkError(
            T(
                "DID source {value!r}: {header!r} is not a SIP header name",
                value=text,
                header=header,
            ),
            "did_from",
        )
    raise TrunkError(
        T("DID source must be auto, request-uri, to or header:NAME, not {value!r}", value=text),
        "did_from",
    )


VALIDATORS: dict[str, Callable[[object], Any]] = {
    "kind": _choice(KINDS, T("kind"), "kind"),
    "server": lambda value: check_hostport(value, T("server"), "server"),
    "outbound_proxy": _optional_hostport(T("outbound proxy"), "outbound_proxy"),
    "transport": _choice(TRANSPORTS, T("transport"), "transport"),
    "username": _user(T("username"), "username"),
    "auth_user": _user(T("auth user"), "auth_user", allow_at=True),
    "password": check_password,
    "from_user": _user(T("From user"), "from_user"),
    "from_domain": _optional_host(T("From domain"), "from_domain"),
    "codecs": check_codecs,
    "max_calls": _int(
        T("max calls"),
        "max_calls",
        lambda n: 0 <= n <= 1000,
        T("a whole number from 0 (no limit) to 1000"),
    ),
    "expires": _int(
        T("registration expiry"),
        "expires",
        lambda n: 60 <= n <= 86400,
        T("60 to 86400 seconds"),
    ),
    "options_interval": _int(
        T("OPTIONS interval"),
        "options_interval",
        lambda n: n == 0 or 10 <= n <= 3600,
        T("0 (off) or 10 to 3600 seconds"),
    ),
    "external_address": _optional_host(T("external address"), "external_address"),
    "match_cidrs": check_cidrs,
    "did_from": check_did_from,
    "late_offer": _bool(T("late offer"), "late_offer"),
    "enabled": _bool(T("enabled"), "enabled"),
}
"""How each field a technician sets is checked and made canonical."""


def check_fields(values: dict[str, object]) -> dict[str, Any]:
    """Validate and canonicalise the given fields (any subset of the settable ones)."""
    unknown = sorted(set(values) - _SETTABLE)
    if unknown:
        raise TypeError(f"unknown trunk fields: {', '.join(unknown)}")
    return {key: VALIDATORS[key](value) for key, value in values.items()}


def check_trunk(values: dict[str, Any]) -> None:
    """What a trunk needs as a whole, once every field is valid."""
    if values["kind"] == "register":
        if not values["username"]:
            raise TrunkError(
                T("a register trunk needs a username (the account at the provider)"), "username"
            )
        if not values["password"]:
            raise TrunkError(T("a register trunk needs a password"), "password")


def _row(trunk: Trunk) -> dict[str, Any]:
    row = trunk.masked()
    row["password"] = trunk.password
    row["late_offer"], row["enabled"] = int(trunk.late_offer), int(trunk.enabled)
    return row


def _trunk(row: sqlite3.Row | tuple[Any, ...]) -> Trunk:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["late_offer"], values["enabled"] = bool(values["late_offer"]), bool(values["enabled"])
    return Trunk(**values)


def add(db: Database, name: str, **values: object) -> Trunk:
    """Create a trunk from the given fields (server at least; the rest as DEFAULTS); return it."""
    check_name(name)
    if "server" not in values:
        raise TrunkError(T("a trunk needs a server (HOST or HOST:PORT)"), "server")
    merged = {**DEFAULTS, **check_fields(values)}
    check_trunk(merged)
    now = time.time()
    trunk = Trunk(
        name=name, instance=secrets.token_hex(6), created_at=now, updated_at=now, **merged
    )
    try:
        db.execute(
            f"INSERT INTO trunks ({', '.join(_COLUMNS)})"
            f" VALUES ({', '.join(':' + c for c in _COLUMNS)})",
            _row(trunk),
        )
    except sqlite3.IntegrityError:
        raise TrunkExists(T("trunk {name} already exists", name=name)) from None
    return trunk


def update(db: Database, name: str, **values: object) -> Trunk:
    """Change the given fields of a trunk; return it as stored."""
    with transaction(db) as conn:
        trunk = get(db, name)
        if trunk is None:
            raise TrunkError(T("no trunk {name}", name=name))
        merged = {**trunk.masked(), "password": trunk.password, **check_fields(values)}
        check_trunk(merged)
        merged["updated_at"] = time.time()
        changed = Trunk(**merged)
        conn.execute(
            f"UPDATE trunks SET {', '.join(f'{c} = :{c}' for c in _COLUMNS)} WHERE name = :name",
            _row(changed),
        )
    return changed


def users(db: Database, name: str) -> list[str]:
    """What sends calls over, or expects calls from, trunk `name`: routes and DIDs."""
    found: list[str] = [
        T("route {name}", name=route)
        for route, names in db.execute("SELECT name, trunks FROM routes ORDER BY position")
        if name in names.split(",")
    ]
    found += [
        T("DID {number}", number=number)
        for (number,) in db.execute(
            "SELECT number FROM dids WHERE trunk = ? ORDER BY number", [name]
        )
    ]
    return found


def remove(db: Database, name: str) -> None:
    """Delete a trunk; refused while a route uses it or a DID is bound to it."""
    with transaction(db) as conn:
        used = users(db, name)
        if used:
            raise TrunkError(
                T(
                    "trunk {name} is used by {users}; change that first",
                    name=name,
                    users=joined(used),
                )
            )
        cur = conn.execute("DELETE FROM trunks WHERE name = ?", [name])
        if cur.rowcount == 0:
            raise TrunkError(T("no trunk {name}", name=name))


def get(db: Database, name: str) -> Trunk | None:
    row = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM trunks WHERE name = ?", [name]).fetchone()
    return None if row is None else _trunk(row)


def list_all(db: Database) -> list[Trunk]:
    rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM trunks ORDER BY name").fetchall()
    return [_trunk(row) for row in rows]
