"""A real Kamailio (Debian ``kamailio`` 5.6 + ``kamailio-sqlite-modules``) playing a SIP provider.

:class:`Provider` writes a Kamailio config from :data:`CONFIG` (a Python string template) and a
SQLite ``subscriber`` database built with Kamailio's own schema files into a directory of the
test, then runs ``kamailio -f CFG -DD -E -Y RUNDIR -P PIDFILE`` in the foreground on
127.0.0.1, or another loopback address given as `host` (UDP and TCP, one free port, never
5060). The provider it plays, an ITSP:

* ``subscribers`` (username -> password) may REGISTER (401 digest challenge; a wrong password
  is challenged again, Kamailio never answers 403 for it; 403 only if the auth username is not
  the To user); bindings live in memory (usrloc ``db_mode=0``), so a restart forgets them;
* ``dids`` (DID -> username): an INVITE to a DID from the "PSTN side" (no credentials, From
  not a subscriber) is record-routed to the subscriber's registered Contact with the DID kept
  in ``To``; the Request-URI is the Contact (``lookup("location")``), or, with
  ``did_in_ruri=True``, the Contact with the DID as its user part. It goes to the Contact's
  address (over TCP: on a connection Kamailio opens to it), or, with ``deliver_on_flow=True``,
  back where the REGISTER came from (over TCP: on the subscriber's own connection), as
  providers do for customers behind NAT;
* any other INVITE (a number that is not a DID, or from a subscriber) is challenged with 407
  and, once authenticated, relayed unchanged to ``city`` (host, port) -- or answered with
  ``fail_outbound`` (e.g. 503) when that is set; an authenticated INVITE to a DID goes to its
  owner (on-net);
* ``peers`` (name -> (IP address, port)) are IP-authenticated customers: an INVITE whose
  source is exactly that address and port is the peer's, taken without a challenge (to the
  city, or to a DID); a DID owned by a peer (``dids`` may name a peer instead of a
  subscriber) is relayed statically, no registration involved, to ``sip:DID@HOST:PORT``
  (Record-Routed, the DID also kept in ``To``); without peers none of this is in the config;
* OPTIONS to the provider is answered 200; in-dialog requests follow the Record-Route.

Every INVITE it receives (bar retransmissions absorbed by ``tm``) and every REGISTER is logged
with ``xlog`` as one ``KAMPROV ...`` line on stderr, which the helper reads all the time:
:meth:`Provider.invites` parses them into :class:`InviteRecord` values. With
``log_requests=True`` it also logs every request it receives (any method, retransmissions
too) and every request it sends on (``onsend_route``), each with the transport it really
used: :meth:`Provider.requests` (:class:`RequestRecord`). Bindings are read
through the ``ul.lookup`` RPC with ``kamcmd`` on a control socket in the run directory.

Kamailio forks worker processes into the process group of its main process (started in a
session of its own): :meth:`Provider.stop` sends SIGTERM to the main PID (SIGKILL to the group
if that has not ended it within seconds), :meth:`Provider.kill` SIGKILL to that process group
only, and both wait (by pidfd) until every one of those processes has gone, so the port is
free again for :meth:`Provider.restart`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import select
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import count
from pathlib import Path
from types import TracebackType

from tests.feed import Feed, FeedClosed
from tests.interop.sipp import free_port

logger = logging.getLogger(__name__)

KAMAILIO = shutil.which("kamailio") or "/usr/sbin/kamailio"
KAMCMD = shutil.which("kamcmd") or "/usr/sbin/kamcmd"
MODULE_DIRS = (
    Path("/usr/lib/x86_64-linux-gnu/kamailio/modules"),
    Path("/usr/lib/aarch64-linux-gnu/kamailio/modules"),
    Path("/usr/lib/kamailio/modules"),
)
SCHEMA_DIRS = (
    Path("/usr/share/kamailio/db_sqlite"),
    Path("/usr/share/kamailio/sqlite"),
)
"""Where the Debian package keeps Kamailio's SQLite schema (``standard-create.sql``, ...)."""

TAG = "KAMPROV"
"""First word of every line the config logs for the helper."""

READY = f"{TAG} READY"

_NAME = re.compile(r"^[A-Za-z0-9_.+-]+$")
_RUN_NUMBER = count(1)

REASONS = {
    400: "Bad Request", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
    480: "Temporarily Unavailable", 486: "Busy Here", 487: "Request Terminated",
    488: "Not Acceptable Here", 500: "Server Internal Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 600: "Busy Everywhere",
    603: "Decline",
}  # fmt: skip
"""Reason phrases for :attr:`Provider.fail_outbound` statuses (others get ``Failure``)."""

# The fields of the INVITE and REGISTER log lines, in order, with the Kamailio pseudo-variable
# each logs ($fn: From display name, $ai: P-Asserted-Identity URI, $au: the auth username).
INVITE_FIELDS = {
    "outcome": "$var(outcome)", "status": "$var(status)", "kind": "$var(kind)",
    "ruri": "$var(ruri)", "from": "$fu", "from_name": "$fn", "to": "$tu", "pai": "$ai",
    "src": "$si:$sp", "proto": "$pr", "call_id": "$ci", "cseq": "$cs", "auth_user": "$au",
    "auth_rc": "$var(auth_rc)", "dest": "$var(dest)",
}  # fmt: skip
REGISTER_FIELDS = {
    "outcome": "$var(outcome)", "user": "$tU", "auth_user": "$au", "auth_rc": "$var(auth_rc)",
    "contact": "$ct", "expires": "$hdr(Expires)", "src": "$si:$sp", "proto": "$pr",
}  # fmt: skip
# With `log_requests`: every request received (`REQUEST`, before any routing) and every request
# sent on (`SENT`, in onsend_route: the transport and address it really left by).
REQUEST_FIELDS = {
    "method": "$rm", "proto": "$pr", "src": "$si:$sp", "ruri": "$ru", "call_id": "$ci",
}  # fmt: skip
SENT_FIELDS = {
    "method": "$rm", "proto": "$snd(sproto)", "dst": "$snd(ip):$snd(port)", "ruri": "$ru",
    "call_id": "$ci",
}  # fmt: skip


def _xlog_format(kind: str, fields: Mapping[str, str]) -> str:
    """The xlog format of one `TAG KIND|key=value|...` line."""
    return f"{TAG} {kind}|" + "|".join(f"{key}={pv}" for key, pv in fields.items()) + "\\n"


def _line_pattern(kind: str, fields: Mapping[str, str]) -> re.Pattern[str]:
    """`TAG KIND|a=...|b=...` with each value matched up to the next known key, so a value
    holding a `|` (a display name, say) still parses."""
    body = r"\|".join(f"{re.escape(f)}=(?P<{f}>.*?)" for f in fields)
    return re.compile(rf"{TAG} {kind}\|{body}$")


_INVITE_LINE = _line_pattern("INVITE", INVITE_FIELDS)
_REGISTER_LINE = _line_pattern("REGISTER", REGISTER_FIELDS)
_REQUEST_LINE = _line_pattern("REQUEST", REQUEST_FIELDS)
_SENT_LINE = _line_pattern("SENT", SENT_FIELDS)


def _value(text: str) -> str:
    return "" if text == "<null>" else text


def _unquote(name: str) -> str:
    """A display name without the quotes of a quoted-string (RFC 3261 §25.1)."""
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return re.sub(r"\\(.)", r"\1", name[1:-1])
    return name


def _uri_user(uri: str) -> str:
    """The user part of a SIP URI (`sip:USER@host;params`), "" when it has none."""
    rest = uri.split(":", 1)[1] if ":" in uri else uri
    return rest.split("@", 1)[0] if "@" in rest else ""


def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port) if port.isdigit() else 0


@dataclass(frozen=True, slots=True)
class InviteRecord:
    """One INVITE the provider received, as its config logged it.

    `outcome` is ``relayed`` (sent on to `dest`), ``challenged`` (answered 407) or
    ``rejected`` (answered `status`); `kind` is ``inbound`` (from the PSTN side to a DID),
    ``outbound`` (a subscriber's call to `city`), ``on-net`` (a subscriber's call to a DID)
    or ``in-dialog`` (a re-INVITE following the Record-Route)."""

    outcome: str
    status: int | None
    kind: str
    ruri: str
    from_uri: str
    from_name: str
    to_uri: str
    pai: str
    source: tuple[str, int]
    proto: str
    call_id: str
    cseq: str
    auth_user: str
    auth_rc: str
    dest: str
    run: int
    """Which start of the provider logged it (1 for the first, 2 after one restart, ...)."""

    @property
    def ruri_user(self) -> str:
        """The number the INVITE was sent to (user part of the Request-URI it arrived with)."""
        return _uri_user(self.ruri)

    @property
    def from_user(self) -> str:
        """The caller ID the INVITE claimed in From."""
        return _uri_user(self.from_uri)

    @property
    def to_user(self) -> str:
        return _uri_user(self.to_uri)

    @property
    def relayed(self) -> bool:
        return self.outcome == "relayed"

    @classmethod
    def parse(cls, line: str, run: int) -> InviteRecord | None:
        """The record a log line holds, None for any other line."""
        match = _INVITE_LINE.search(line)
        if match is None:
            return None
        v = {k: _value(match[k]) for k in INVITE_FIELDS}
        return cls(
            outcome=v["outcome"], status=int(v["status"]) if v["status"].isdigit() else None,
            kind=v["kind"], ruri=v["ruri"], from_uri=v["from"], from_name=_unquote(v["from_name"]),
            to_uri=v["to"], pai=v["pai"], source=_hostport(v["src"]), proto=v["proto"],
            call_id=v["call_id"], cseq=v["cseq"], auth_user=v["auth_user"],
            auth_rc=v["auth_rc"], dest=v["dest"], run=run,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RegisterRecord:
    """One REGISTER the provider received: `outcome` ``saved`` (answered 200 by
    ``save("location")``, an unregistration too), ``challenged`` (401), ``forbidden`` (403:
    the auth user is not the To user) or ``error``."""

    outcome: str
    user: str
    auth_user: str
    auth_rc: str
    contact: str
    expires: str
    source: tuple[str, int]
    proto: str
    run: int

    @classmethod
    def parse(cls, line: str, run: int) -> RegisterRecord | None:
        match = _REGISTER_LINE.search(line)
        if match is None:
            return None
        v = {k: _value(match[k]) for k in REGISTER_FIELDS}
        return cls(
            v["outcome"], v["user"], v["auth_user"], v["auth_rc"], v["contact"], v["expires"],
            _hostport(v["src"]), v["proto"], run,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the provider received (`direction` ``received``, `address` its source) or
    sent on (``sent``, `address` where it went), with the transport (``udp``, ``tcp``) it
    really used; logged only by a provider started with ``log_requests=True``."""

    direction: str
    method: str
    proto: str
    address: tuple[str, int]
    ruri: str
    call_id: str
    run: int

    @classmethod
    def parse(cls, line: str, run: int) -> RequestRecord | None:
        for direction, pattern, where in (
            ("received", _REQUEST_LINE, "src"), ("sent", _SENT_LINE, "dst"),
        ):  # fmt: skip
            match = pattern.search(line)
            if match is not None:
                return cls(
                    direction, _value(match["method"]), _value(match["proto"]).lower(),
                    _hostport(_value(match[where])), _value(match["ruri"]),
                    _value(match["call_id"]), run,
                )  # fmt: skip
        return None


# -- the config ------------------------------------------------------------------------------

CONFIG = """\
#!KAMAILIO
# Generated by tests/interop/kamailio.py: a SIP provider (ITSP) for tests, loopback only.

debug=2
log_stderror=yes
fork=yes
children=2
tcp_children=2
auto_aliases=no
dns=no
rev_dns=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}
alias="{host}:{port}"
server_header="Server: kamailio-test-provider"
user_agent_header="User-Agent: kamailio-test-provider"

mpath="{mpath}"
loadmodule "db_sqlite.so"
loadmodule "tm.so"
loadmodule "tmx.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "sanity.so"
loadmodule "ctl.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"
loadmodule "auth_db.so"

modparam("ctl", "binrpc", "unix:{ctl}")
modparam("tm", "fr_timer", 5000)
modparam("tm", "fr_inv_timer", 60000)
modparam("rr", "append_fromtag", 1)
modparam("usrloc", "db_mode", 0)
modparam("registrar", "min_expires", 1)
modparam("registrar", "max_expires", 3600)
{received_param}
modparam("auth_db", "db_url", "sqlite:///{db}")
modparam("auth_db", "calculate_ha1", 1)
modparam("auth_db", "password_column", "password")
modparam("auth_db", "use_domain", 0)
modparam("auth_db", "load_credentials", "")

event_route[core:worker-one-init] {{
    xlog("L_NOTICE", "{tag} READY\\n");
}}

request_route {{
{log_request}
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (!sanity_check()) {{
        xlog("L_NOTICE", "{tag} INSANE|$rm|$si:$sp\\n");
        exit;
    }}
    if (has_totag()) {{
        route(WITHINDLG);
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (!is_method("ACK")) {{
        if (t_precheck_trans()) {{
            t_check_trans();
            exit;
        }}
        t_check_trans();
    }}
    if (is_method("ACK")) {{
        exit;
    }}
    remove_hf("Route");
    if (is_method("OPTIONS")) {{
        sl_send_reply("200", "OK");
        exit;
    }}
    if (is_method("REGISTER")) {{
        route(REGISTER);
        exit;
    }}
    if (is_method("INVITE")) {{
        route(INVITE);
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
    exit;
}}

route[RELAY] {{
    if (!t_relay()) {{
        xlog("L_NOTICE", "{tag} RELAY-FAILED|$rm|$ru|$du|$ci\\n");
        sl_reply_error();
    }}
    exit;
}}

route[WITHINDLG] {{
    if (loose_route()) {{
        if (is_method("INVITE")) {{
            record_route();
            $var(ruri) = $ru;
            $var(kind) = "in-dialog";
            $var(outcome) = "relayed";
            $var(status) = "";
            $var(dest) = $ru;
            route(LOG_INVITE);
        }}
        route(RELAY);
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            route(RELAY);
        }}
        exit;
    }}
    if (is_method("INVITE")) {{
        $var(ruri) = $ru;
        $var(kind) = "in-dialog";
        $var(outcome) = "rejected";
        $var(status) = "404";
        $var(dest) = "";
        route(LOG_INVITE);
    }}
    sl_send_reply("404", "Not here");
    exit;
}}

route[LOG_INVITE] {{
    xlog("L_NOTICE", "{invite_line}");
}}

route[LOG_REGISTER] {{
    xlog("L_NOTICE", "{register_line}");
}}

route[REGISTER] {{
    $var(auth_rc) = "";
    if (!www_authorize("{realm}", "subscriber")) {{
        $var(auth_rc) = $rc;
        $var(outcome) = "challenged";
        route(LOG_REGISTER);
        www_challenge("{realm}", "{qop}");
        exit;
    }}
    if ($au != $tU) {{
        $var(outcome) = "forbidden";
        route(LOG_REGISTER);
        sl_send_reply("403", "Forbidden auth ID");
        exit;
    }}
    consume_credentials();
{save_received}
    if (!save("location")) {{
        $var(outcome) = "error";
        route(LOG_REGISTER);
        sl_reply_error();
        exit;
    }}
    $var(outcome) = "saved";
    route(LOG_REGISTER);
    exit;
}}

route[INVITE] {{
    $var(ruri) = $ru;
    $var(auth_rc) = "";
    $var(dest) = "";
    $var(status) = "";
    $var(owner) = "";
{peer_vars}
{did_owner}
    $var(from_subscriber) = 0;
{from_subscriber}
{from_peer}
    if ($var(owner) != "" && $var(from_subscriber) == 0
            && !is_present_hf("Proxy-Authorization")) {{
        $var(kind) = "inbound";
        route(DELIVER);
        exit;
    }}
    if ($var(owner) != "") {{
        $var(kind) = "on-net";
    }} else {{
        $var(kind) = "outbound";
    }}
{peer_calls}
    if (!proxy_authorize("{realm}", "subscriber")) {{
        $var(auth_rc) = $rc;
        $var(outcome) = "challenged";
        $var(status) = "407";
        route(LOG_INVITE);
        proxy_challenge("{realm}", "{qop}");
        exit;
    }}
    consume_credentials();
    if ($var(owner) != "") {{
        route(DELIVER);
        exit;
    }}
    route(OUTBOUND);
    exit;
}}

# To a DID: the owner's registered Contact, the DID kept in To; a peer's DID goes to the
# peer's fixed address (a static route), the DID as the Request-URI user.
route[DELIVER] {{
    $var(did) = $rU;
{deliver_static}
    $rU = $var(owner);
    if (!lookup("location")) {{
        $var(outcome) = "rejected";
        $var(status) = "480";
        route(LOG_INVITE);
        sl_send_reply("480", "Temporarily Unavailable");
        exit;
    }}
{did_in_ruri}
    record_route();
    $var(outcome) = "relayed";
    if ($du != $null) {{
        $var(dest) = $du;
    }} else {{
        $var(dest) = $ru;
    }}
    route(LOG_INVITE);
    route(RELAY);
}}

# An authenticated subscriber's (or a peer's) call to a number that is not a DID.
route[OUTBOUND] {{
{outbound}
}}
{onsend}"""

_RELAY_TO_CITY = """\
    $du = "sip:{city_host}:{city_port}";
    record_route();
    $var(outcome) = "relayed";
    $var(dest) = $du;
    route(LOG_INVITE);
    route(RELAY);"""

_REJECT_OUTBOUND = """\
    $var(outcome) = "rejected";
    $var(status) = "{status}";
    route(LOG_INVITE);
    sl_send_reply("{status}", "{reason}");
    exit;"""

# With `peers` (IP-authenticated customers) only; empty otherwise, so a provider without peers
# runs the config it always ran.
_PEER_VARS = """\
    $var(peer) = "";
    $var(static) = "";"""

_FROM_PEER = """\
    if ($si == "{host}" && $sp == {port}) {{
        $var(peer) = "{name}";
    }}"""

# A peer is trusted by its source address: no challenge, its call goes to a DID or the city.
_PEER_CALLS = """\
    if ($var(peer) != "") {{
        if ($var(owner) != "") {{
            route(DELIVER);
            exit;
        }}
        route(OUTBOUND);
        exit;
    }}"""

_DELIVER_STATIC = """\
    if ($var(static) != "") {{
        $ru = "sip:" + $var(did) + "@" + $var(static);
        record_route();
        $var(outcome) = "relayed";
        $var(dest) = $ru;
        route(LOG_INVITE);
        route(RELAY);
    }}"""

# With `deliver_on_flow` only: a binding keeps where its REGISTER came from (transport, address,
# port) as `received`, and lookup() then sends to that address (over TCP: on that connection).
_RECEIVED_PARAM = """modparam("registrar", "received_avp", "$avp(RECEIVED)")"""

_SAVE_RECEIVED = """\
    $avp(RECEIVED) = "sip:" + $si + ":" + $sp + ";transport=" + $pr;"""

# With `log_requests` only: every request received, and every request sent (relayed).
_LOG_REQUEST = """\
    xlog("L_NOTICE", "{request_line}");"""

_ONSEND = """\
onsend_route {{
    xlog("L_NOTICE", "{sent_line}");
}}
"""


def _checked_name(kind: str, name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"{kind} {name!r}: only letters, digits and _.+- are allowed")
    return name


def render_config(
    *,
    host: str,
    port: int,
    db: Path,
    ctl: Path,
    subscribers: Mapping[str, str],
    dids: Mapping[str, str],
    city: tuple[str, int] | None,
    did_in_ruri: bool,
    fail_outbound: int | None,
    realm: str,
    qop: bool,
    mpath: Path,
    peers: Mapping[str, tuple[str, int]] | None = None,
    log_requests: bool = False,
    deliver_on_flow: bool = False,
) -> str:
    """The Kamailio config of a provider (see the module docstring)."""
    peers = dict(peers or {})
    for user in subscribers:
        _checked_name("subscriber", user)
    for name, (peer_host, peer_port) in peers.items():
        _checked_name("peer", name)
        if name in subscribers:
            raise ValueError(f"{name!r} is both a subscriber and a peer")
        ipaddress.ip_address(peer_host)  # an address, as $si compares it
        if not 0 < peer_port < 65536:
            raise ValueError(f"peer {name}: port {peer_port}")
    for did, owner in dids.items():
        _checked_name("DID", did)
        if owner not in subscribers and owner not in peers:
            raise ValueError(f"DID {did} belongs to {owner!r}, who is no subscriber or peer")
    if not re.fullmatch(r"[A-Za-z0-9.:-]+", realm):
        raise ValueError(f"realm {realm!r}")

    def owner_of(did: str, owner: str) -> str:
        found = f'        $var(owner) = "{owner}";'
        if owner in peers:
            found += f'\n        $var(static) = "{peers[owner][0]}:{peers[owner][1]}";'
        return f'    if ($rU == "{did}") {{\n{found}\n    }}'

    did_owner = "\n".join(owner_of(did, owner) for did, owner in dids.items())
    from_subscriber = "\n".join(
        f'    if ($fU == "{user}") {{\n        $var(from_subscriber) = 1;\n    }}'
        for user in subscribers
    )
    if fail_outbound is not None:
        if not 300 <= fail_outbound <= 699:
            raise ValueError(f"fail_outbound must be a final non-2xx status, not {fail_outbound}")
        outbound = _REJECT_OUTBOUND.format(
            status=fail_outbound, reason=REASONS.get(fail_outbound, "Failure")
        )
    elif city is not None:
        outbound = _RELAY_TO_CITY.format(city_host=city[0], city_port=city[1])
    else:
        outbound = _REJECT_OUTBOUND.format(status=404, reason="No Route")
    from_peer = "\n".join(
        _FROM_PEER.format(host=peer_host, port=peer_port, name=name)
        for name, (peer_host, peer_port) in peers.items()
    )
    return CONFIG.format(
        host=host, port=port, db=db, ctl=ctl, tag=TAG, realm=realm, qop="1" if qop else "0",
        mpath=f"{mpath}/", did_owner=did_owner, from_subscriber=from_subscriber,
        did_in_ruri="    $rU = $var(did);" if did_in_ruri else "", outbound=outbound,
        invite_line=_xlog_format("INVITE", INVITE_FIELDS),
        register_line=_xlog_format("REGISTER", REGISTER_FIELDS),
        peer_vars=_PEER_VARS if peers else "", from_peer=from_peer,
        received_param=_RECEIVED_PARAM if deliver_on_flow else "",
        save_received=_SAVE_RECEIVED if deliver_on_flow else "",
        peer_calls=_PEER_CALLS.format() if peers else "",
        deliver_static=_DELIVER_STATIC.format() if peers else "",
        log_request=_LOG_REQUEST.format(request_line=_xlog_format("REQUEST", REQUEST_FIELDS))
        if log_requests else "",
        onsend=_ONSEND.format(sent_line=_xlog_format("SENT", SENT_FIELDS)) if log_requests else "",
    )  # fmt: skip


def schema_dir() -> Path:
    """The directory of Kamailio's SQLite schema files."""
    for path in SCHEMA_DIRS:
        if (path / "auth_db-create.sql").exists():
            return path
    raise FileNotFoundError(f"no auth_db-create.sql in {SCHEMA_DIRS} (kamailio-sqlite-modules?)")


def module_dir() -> Path:
    for path in MODULE_DIRS:
        if (path / "db_sqlite.so").exists():
            return path
    raise FileNotFoundError(f"no db_sqlite.so in {MODULE_DIRS} (kamailio-sqlite-modules?)")


def build_database(path: Path, subscribers: Mapping[str, str], domain: str) -> None:
    """A fresh SQLite file with Kamailio's `version` and `subscriber` tables (from its own
    schema files) holding `subscribers` with plain passwords (``calculate_ha1``)."""
    path.unlink(missing_ok=True)
    schemas = schema_dir()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript((schemas / "standard-create.sql").read_text())
        db.executescript((schemas / "auth_db-create.sql").read_text())
        db.executemany(
            "INSERT INTO subscriber (username, domain, password) VALUES (?, ?, ?)",
            [(user, domain, password) for user, password in subscribers.items()],
        )


# -- process handling ------------------------------------------------------------------------


def _group_members(pgid: int) -> list[int]:
    """PIDs of the live processes of process group `pgid` (from /proc/PID/stat)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        # fields[0] is the state, [1] ppid, [2] pgrp; a zombie holds no sockets.
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _wait_gone(pids: list[int], timeout: float) -> list[int]:
    """Wait (on pidfds) until every one of `pids` has exited; return those still alive."""
    fds: dict[int, int] = {}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            fds[os.pidfd_open(pid)] = pid
    deadline = time.monotonic() + timeout
    try:
        while fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select(list(fds), [], [], remaining)
            for fd in ready:
                os.close(fd)
                del fds[fd]
        return sorted(fds.values())
    finally:
        for fd in fds:
            os.close(fd)


def options_ping(
    address: tuple[str, int], timeout: float = 1.0, transport: str = "udp"
) -> int | None:
    """Send one OPTIONS to `address` over `transport` (``udp`` or ``tcp``) from a fresh
    loopback port; the status of the answer, None if none came within `timeout` (or nobody
    listens)."""
    kind = socket.SOCK_DGRAM if transport == "udp" else socket.SOCK_STREAM
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.settimeout(timeout)
        try:
            if transport == "udp":
                sock.bind((address[0], 0))
            else:
                sock.connect(address)
        except OSError:
            return None
        local = sock.getsockname()
        call_id = uuid.uuid4().hex
        request = (
            f"OPTIONS sip:{address[0]}:{address[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport.upper()} {local[0]}:{local[1]}"
            f";branch=z9hG4bK-{call_id[:16]};rport\r\n"
            f"From: <sip:probe@{local[0]}:{local[1]}>;tag={call_id[16:24]}\r\n"
            f"To: <sip:{address[0]}:{address[1]}>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        received = ""
        try:
            sock.sendto(request.encode(), address)
            while (remaining := deadline - time.monotonic()) > 0:
                sock.settimeout(remaining)
                data = sock.recv(65535).decode(errors="replace")
                if not data:  # TCP closed
                    return None
                received = data if transport == "udp" else received + data
                if received.startswith("SIP/2.0 ") and call_id in received:
                    return int(received.split()[1])
        except OSError:  # a timeout, or ICMP port unreachable: nobody listens
            return None
    return None


class ProviderFailed(AssertionError):
    """Kamailio did not start, or did not answer; the message holds its output."""


class Provider:
    """A Kamailio SIP provider on `host` (127.0.0.1 unless given; see the module docstring);
    a context manager.

    The options are plain attributes: change one (e.g. ``fail_outbound``) and call
    :meth:`restart` to apply it. The port is chosen once (free for UDP and TCP) and kept
    across restarts; registrations are not (usrloc lives in memory).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        subscribers: Mapping[str, str],
        dids: Mapping[str, str] | None = None,
        city: tuple[str, int] | None = None,
        did_in_ruri: bool = False,
        fail_outbound: int | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        realm: str | None = None,
        qop: bool = False,
        peers: Mapping[str, tuple[str, int]] | None = None,
        log_requests: bool = False,
        deliver_on_flow: bool = False,
    ) -> None:
        self.subscribers = dict(subscribers)
        self.dids = dict(dids or {})
        self.peers = dict(peers or {})
        self.log_requests = log_requests
        self.deliver_on_flow = deliver_on_flow
        self.city = city
        self.did_in_ruri = did_in_ruri
        self.fail_outbound = fail_outbound
        self.host = host
        self.port = port if port is not None else free_port(host)
        if self.port == 5060:
            raise ValueError("the provider must not use port 5060")
        self.realm = realm or host
        self.qop = qop
        self.dir = workdir / f"kamailio-{next(_RUN_NUMBER):02d}-{self.port}"
        self.dir.mkdir(parents=True)
        # A Unix socket path must fit in 108 bytes: the run directory is a short one in /tmp.
        self.run_dir = Path(tempfile.mkdtemp(prefix="kamprov-"))
        self.cfg = self.dir / "kamailio.cfg"
        self.db = self.dir / "subscriber.sqlite"
        self.log = self.dir / "kamailio.log"
        self.pidfile = self.run_dir / "kamailio.pid"
        self.ctl = self.run_dir / "ctl.sock"
        self.proc: subprocess.Popen[str] | None = None
        self.lines: Feed[str] = Feed()
        self._earlier: list[tuple[int, str]] = []  # (run, line) of the runs before this one
        self._run = 0
        self._reader: threading.Thread | None = None

    # -- addresses

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def uri(self) -> str:
        return f"sip:{self.host}:{self.port}"

    # -- life cycle

    def __enter__(self) -> Provider:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def argv(self) -> list[str]:
        return [
            KAMAILIO, "-f", str(self.cfg), "-DD", "-E", "-Y", str(self.run_dir),
            "-P", str(self.pidfile), "-w", str(self.dir), "-m", "32", "-M", "8",
        ]  # fmt: skip

    def start(self, timeout: float = 20.0) -> None:
        """Write the config and database, start Kamailio and wait until it has logged READY
        and answers OPTIONS over UDP and over TCP."""
        if self.running:
            raise RuntimeError("the provider is already running")
        build_database(self.db, self.subscribers, self.realm)
        self.cfg.write_text(
            render_config(
                host=self.host, port=self.port, db=self.db, ctl=self.ctl,
                subscribers=self.subscribers, dids=self.dids, city=self.city,
                did_in_ruri=self.did_in_ruri, fail_outbound=self.fail_outbound,
                realm=self.realm, qop=self.qop, mpath=module_dir(), peers=self.peers,
                log_requests=self.log_requests, deliver_on_flow=self.deliver_on_flow,
            )
        )  # fmt: skip
        self.ctl.unlink(missing_ok=True)
        if self._run:
            self._earlier.extend((self._run, line) for line in self.lines.items)
        self._run += 1
        self.lines = Feed()
        argv = self.argv()
        logger.info("starting %s", " ".join(argv))
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace", bufsize=1, start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(
            target=self._read, args=(self.proc, self.lines, self._run, argv), daemon=True
        )
        self._reader.start()
        deadline = time.monotonic() + timeout
        try:
            self.lines.wait(lambda line: READY in line, timeout)
        except FeedClosed as exc:
            self._fail(f"Kamailio did not get ready ({exc})")
        # READY comes from the first SIP worker once it is initialised, while the main
        # process may still be forking the others (the TCP main process comes last). An
        # answer over TCP proves that one runs too. Each try is bounded.
        for transport in ("udp", "tcp"):
            while options_ping(self.address, 1.0, transport) != 200:
                if not self.running or time.monotonic() > deadline:
                    self._fail(f"Kamailio does not answer OPTIONS over {transport}")
        logger.info("kamailio provider ready on %s:%d (pid %d)", *self.address, self.proc.pid)

    def _read(
        self, proc: subprocess.Popen[str], lines: Feed[str], run: int, argv: list[str]
    ) -> None:
        assert proc.stdout is not None
        with self.log.open("a") as log:
            log.write(f"---- run {run}: {' '.join(argv)}\n")
            for line in proc.stdout:
                log.write(line)
                log.flush()
                lines.append(line.rstrip("\n"))
        lines.close()

    def _fail(self, why: str) -> None:
        self.kill()
        raise ProviderFailed(f"{why}; output:\n" + "\n".join(self.lines.items[-80:]))

    def _finish(self, signum: int, timeout: float) -> int:
        """Signal the main process (SIGTERM) or the whole group (SIGKILL), then wait until
        every process of the group has gone (SIGKILL for any left after `timeout`); the main
        process's exit status."""
        proc = self.proc
        if proc is None:
            return 0
        pgid = proc.pid  # start_new_session: the group is the one Kamailio's main leads
        members = set(_group_members(pgid))
        if signum == signal.SIGKILL:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        elif proc.poll() is None:
            proc.send_signal(signum)
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            # Kamailio's main waits for every child; one that missed the SIGTERM (it came
            # while the child was being forked) would keep it waiting for ever.
            logger.warning("kamailio %d ignored SIGTERM for %s s: SIGKILL", pgid, timeout)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            rc = proc.wait(10)
        members.update(_group_members(pgid))  # workers outliving their main process
        left = _wait_gone(sorted(members), timeout)
        if left:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
            left = _wait_gone(left, 10)
        if self._reader is not None:
            self._reader.join(timeout=10)
        assert not left, f"Kamailio processes {left} would not exit"
        return rc

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM Kamailio (its main PID) and wait until all its processes have exited
        (Kamailio takes some milliseconds; after `timeout` s the group gets SIGKILL)."""
        return self._finish(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL every Kamailio process of this provider (a provider that dies), by its
        process group (SIGKILL to the main process alone leaves the workers serving)."""
        self._finish(signal.SIGKILL, 10.0)

    def restart(self, timeout: float = 20.0) -> None:
        """Stop (if running) and start again on the same port with the current options."""
        if self.running:
            self.stop()
        self.start(timeout)

    def close(self) -> None:
        """Stop if running and remove the run directory (the test directory stays)."""
        if self.proc is not None:
            if self.running:
                self.stop()
            else:
                self._finish(signal.SIGKILL, 10.0)
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- what it saw

    def output(self) -> list[str]:
        """Every line Kamailio printed, over all runs."""
        return [line for _, line in self._all_lines()]

    def _all_lines(self) -> list[tuple[int, str]]:
        return [*self._earlier, *((self._run, line) for line in self.lines.items)]

    def invites(self) -> list[InviteRecord]:
        """Every INVITE logged, over all runs, in order."""
        records = (InviteRecord.parse(line, run) for run, line in self._all_lines())
        return [r for r in records if r is not None]

    def invites_to(self, number: str) -> list[InviteRecord]:
        """INVITEs whose Request-URI user (as received) was `number`."""
        return [r for r in self.invites() if r.ruri_user == number]

    def registers(self) -> list[RegisterRecord]:
        """Every REGISTER logged, over all runs, in order."""
        records = (RegisterRecord.parse(line, run) for run, line in self._all_lines())
        return [r for r in records if r is not None]

    def requests(self) -> list[RequestRecord]:
        """Every request received or sent on, over all runs, in order (``log_requests``)."""
        if not self.log_requests:
            raise RuntimeError("the provider logs requests only with log_requests=True")
        records = (RequestRecord.parse(line, run) for run, line in self._all_lines())
        return [r for r in records if r is not None]

    def wait_invite(
        self,
        predicate: Callable[[InviteRecord], bool] = lambda r: True,
        timeout: float = 10.0,
        since: int = 0,
    ) -> InviteRecord:
        """The first INVITE of the current run matching `predicate`, waiting for it; from
        output line `since` on (pass ``provider.lines.mark()`` taken earlier to skip what
        was already logged)."""

        def match(line: str) -> InviteRecord | None:
            record = InviteRecord.parse(line, self._run)
            return record if record is not None and predicate(record) else None

        try:
            _, found, _ = self.lines.wait(match, timeout, since)
        except FeedClosed as exc:
            raise AssertionError(
                f"no matching INVITE at the provider ({exc}); saw:\n"
                + "\n".join(map(str, self.invites()))
            ) from None
        assert isinstance(found, InviteRecord)
        return found

    def wait_request(
        self,
        predicate: Callable[[RequestRecord], bool],
        timeout: float = 10.0,
        since: int = 0,
    ) -> RequestRecord:
        """The first request of the current run received or sent on (``log_requests``) that
        matches `predicate`, waiting for it; from output line `since` on."""

        def match(line: str) -> RequestRecord | None:
            record = RequestRecord.parse(line, self._run)
            return record if record is not None and predicate(record) else None

        try:
            _, found, _ = self.lines.wait(match, timeout, since)
        except FeedClosed as exc:
            raise AssertionError(
                f"no matching request at the provider ({exc}); saw:\n"
                + "\n".join(map(str, self.requests()))
            ) from None
        assert isinstance(found, RequestRecord)
        return found

    def rpc(self, *command: str, timeout: float = 10.0) -> str:
        """Run one RPC command with kamcmd on the control socket; its output."""
        proc = subprocess.run(
            [KAMCMD, "-s", f"unix:{self.ctl}", *command],
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"kamcmd {' '.join(command)}: {proc.stdout}{proc.stderr}")
        return proc.stdout

    def registered(self, username: str) -> list[str]:
        """The Contact URIs bound to `username` right now (``ul.lookup`` RPC), [] if none."""
        # kamcmd exits 0 for an RPC error too, printing "error: CODE - REASON".
        text = self.rpc("ul.lookup", "location", username)
        if text.startswith("error:"):
            if "AOR not found" in text:
                return []
            raise RuntimeError(f"kamcmd ul.lookup location {username}: {text}")
        return re.findall(r"^\s*Address:\s*(\S+)\s*$", text, re.MULTILINE)

    def wait_registered(self, username: str, timeout: float = 10.0) -> list[str]:
        """Wait until `username` has a binding and the provider's log line of a REGISTER of
        that user it saved has been read (Kamailio answers 200 before it logs the line, so a
        binding can exist before :meth:`registers` lists its REGISTER); its Contact URIs."""

        def saved(line: str) -> bool:
            record = RegisterRecord.parse(line, self._run)
            return record is not None and record.outcome == "saved" and record.user == username

        deadline = time.monotonic() + timeout
        since = 0  # this run's log, from its start
        while True:
            try:
                _, _, since = self.lines.wait(saved, max(deadline - time.monotonic(), 0), since)
            except FeedClosed as exc:
                raise AssertionError(
                    f"{username} did not register ({exc}); REGISTERs seen:\n"
                    + "\n".join(map(str, self.registers()))
                ) from None
            contacts = self.registered(username)
            if contacts:
                return contacts


def provider_factory(workdir: Path) -> Iterator[Callable[..., Provider]]:
    """For a factory fixture: ``yield from provider_factory(tmp_path)`` gives a callable
    building *started* providers (same arguments as :class:`Provider`, without `workdir`);
    every one is closed when the test ends."""
    made: list[Provider] = []

    def make(**options: object) -> Provider:
        provider = Provider(workdir, **options)  # type: ignore[arg-type]
        made.append(provider)
        provider.start()
        return provider

    yield make
    for provider in made:
        provider.close()
