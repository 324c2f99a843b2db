"""SIP trunks in the store: every field validated and made canonical when it is written, with a
message a technician understands naming the field; the password kept (the box answers the
provider's challenges with it) but never shown or logged; a trunk in use is not removed."""

from __future__ import annotations

import logging
import re
import time

import pytest

from appliance.store import dids, routes, trunks
from appliance.store.database import Database
from appliance.store.trunks import Trunk, TrunkError, TrunkExists

PASSWORD = "Pr0vider-Secret"


def sipnet(db: Database, **fields: object) -> Trunk:
    return trunks.add(
        db, "sipnet", **{"server": "sip.example.net", "username": "123456",
                         "password": PASSWORD, **fields},
    )  # fmt: skip


def test_a_register_trunk_gets_the_defaults_and_an_instance_token(db: Database) -> None:
    before = time.time()
    trunk = sipnet(db)
    assert trunks.get(db, "sipnet") == trunk
    assert trunk.masked() == {
        "name": "sipnet", "kind": "register", "server": "sip.example.net", "outbound_proxy": "",
        "transport": "udp", "username": "123456", "auth_user": "", "password": "********",
        "from_user": "", "from_domain": "", "codecs": "PCMA,PCMU,G722", "max_calls": 0,
        "expires": 300, "options_interval": 30, "external_address": "", "match_cidrs": "",
        "did_from": "auto", "late_offer": False, "enabled": True, "instance": trunk.instance,
        "created_at": trunk.created_at, "updated_at": trunk.created_at,
    }  # fmt: skip
    assert re.fullmatch(r"[0-9a-f]{12}", trunk.instance)
    assert trunk.created_at >= before and trunk.password == PASSWORD
    other = trunks.add(db, "other", server="10.0.0.1", kind="ip")
    assert other.instance != trunk.instance


def test_the_password_is_stored_but_never_shown_or_logged(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sipnet(db)
    trunks.update(db, "sipnet", password=PASSWORD + "2", expires=600)
    trunk = trunks.get(db, "sipnet")
    assert trunk is not None and trunk.password == PASSWORD + "2"
    for shown in (repr(trunk), str(trunk), f"{trunk}", str(trunk.masked()),
                  repr(trunks.list_all(db))):  # fmt: skip
        assert PASSWORD not in shown and "********" in shown
    assert "password='********'" in repr(trunk)
    assert PASSWORD not in caplog.text
    (stored,) = db.execute("SELECT password FROM trunks").fetchone()
    assert stored == PASSWORD + "2"  # in clear: the digest answers need it
    assert trunks.add(db, "ip", server="10.0.0.1", kind="ip").masked()["password"] == ""


def test_fields_are_made_canonical(db: Database) -> None:
    trunk = trunks.add(
        db, "office-2", kind=" IP ", server="[2001:DB8::1]:5061",
        outbound_proxy="Proxy.Example.NET", transport="TCP", codecs="pcmu, g.722", max_calls="10",
        expires="3600",
        options_interval=0, match_cidrs="10.0.0.5/24, 192.0.2.7,10.0.0.0/24",
        did_from="Header:X-Called-Number", late_offer="yes", external_address="203.0.113.9",
        from_domain="Office.Example.COM.",
    )  # fmt: skip
    assert (trunk.kind, trunk.server, trunk.outbound_proxy, trunk.transport) == (
        "ip",
        "[2001:db8::1]:5061",
        "proxy.example.net",
        "tcp",
    )
    assert (trunk.codecs, trunk.max_calls, trunk.expires, trunk.options_interval) == (
        "PCMU,G722",
        10,
        3600,
        0,
    )
    assert trunk.match_cidrs == "10.0.0.0/24,192.0.2.7/32"
    assert (trunk.did_from, trunk.late_offer, trunk.from_domain) == (
        "header:X-Called-Number",
        True,
        "office.example.com",
    )
    assert trunks.get(db, "office-2") == trunk
    assert trunks.update(db, "office-2", server="2001:db8::2").server == "[2001:db8::2]"
    assert trunks.update(db, "office-2", server="192.0.2.1:5080").server == "192.0.2.1:5080"
    assert trunks.update(db, "office-2", codecs=["G722", "PCMA"]).codecs == "G722,PCMA"


BAD = [
    ({"server": "sip example.net"}, "server",
     "server must be HOST or HOST:PORT (a host name or an IP address), not 'sip example.net'"),
    ({"server": "sip.example.net:0"}, "server",
     "server sip.example.net:0: the port must be 1 to 65535"),
    ({"server": "sip.example.net:65536"}, "server",
     "server sip.example.net:65536: the port must be 1 to 65535"),
    ({"server": "sip.example.net:"}, "server",
     "server must be HOST or HOST:PORT (a host name or an IP address), not 'sip.example.net:'"),
    ({"server": "10.0.0.300"}, "server",
     "server must be HOST or HOST:PORT (a host name or an IP address), not '10.0.0.300'"),
    ({"server": "[10.0.0.1]:5060"}, "server",
     "server must be HOST or HOST:PORT (a host name or an IP address), not '[10.0.0.1]:5060'"),
    ({"server": "-bad-.example"}, "server",
     "server must be HOST or HOST:PORT (a host name or an IP address), not '-bad-.example'"),
    ({"outbound_proxy": "proxy:99999"}, "outbound_proxy",
     "outbound proxy proxy:99999: the port must be 1 to 65535"),
    ({"transport": "tls"}, "transport", "transport must be udp or tcp, not 'tls'"),
    ({"kind": "peer"}, "kind", "kind must be register or ip, not 'peer'"),
    ({"codecs": "PCMA,OPUS"}, "codecs",
     "codecs must list some of PCMA, PCMU, G722, each once, most preferred first, not "
     "'PCMA,OPUS'"),
    ({"codecs": "pcma,PCMA"}, "codecs",
     "codecs must list some of PCMA, PCMU, G722, each once, most preferred first, not "
     "'pcma,PCMA'"),
    ({"codecs": ""}, "codecs",
     "codecs must list some of PCMA, PCMU, G722, each once, most preferred first, not ''"),
    ({"max_calls": "1001"}, "max_calls",
     "max calls must be a whole number from 0 (no limit) to 1000, not '1001'"),
    ({"max_calls": -1}, "max_calls",
     "max calls must be a whole number from 0 (no limit) to 1000, not '-1'"),
    ({"expires": "59"}, "expires", "registration expiry must be 60 to 86400 seconds, not '59'"),
    ({"expires": True}, "expires", "registration expiry must be 60 to 86400 seconds, not 'True'"),
    ({"options_interval": "5"}, "options_interval",
     "OPTIONS interval must be 0 (off) or 10 to 3600 seconds, not '5'"),
    ({"external_address": "203.0.113.9:5060"}, "external_address",
     "external address must be a host name or an IP address (no port), not '203.0.113.9:5060'"),
    ({"match_cidrs": "10.0.0.0/33"}, "match_cidrs",
     "'10.0.0.0/33' is not an IP address or network (CIDR, e.g. 203.0.113.0/24)"),
    ({"did_from": "from"}, "did_from",
     "DID source must be auto, request-uri, to or header:NAME, not 'from'"),
    ({"did_from": "header:X Did"}, "did_from",
     "DID source 'header:X Did': 'X Did' is not a SIP header name"),
    ({"late_offer": "maybe"}, "late_offer", "late offer must be yes or no, not 'maybe'"),
    ({"username": "12 34"}, "username",
     "username must be at most 64 characters without spaces or any of \":<>@\\, not '12 34'"),
    ({"username": ""}, "username",
     "a register trunk needs a username (the account at the provider)"),
    ({"password": ""}, "password", "a register trunk needs a password"),
    ({"password": "x\ny"}, "password", "password must be at most 128 printable characters"),
]  # fmt: skip


@pytest.mark.parametrize(("change", "field", "message"), BAD, ids=[m for _, _, m in BAD])
def test_a_bad_field_is_refused_with_a_clear_message_naming_it(
    db: Database, change: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(TrunkError) as refused:
        sipnet(db, **change)
    assert (str(refused.value), refused.value.field) == (message, field)
    assert trunks.list_all(db) == []
    sipnet(db)
    before = trunks.get(db, "sipnet")
    with pytest.raises(TrunkError) as refused:
        trunks.update(db, "sipnet", **change)
    assert (str(refused.value), refused.value.field) == (message, field)
    assert trunks.get(db, "sipnet") == before


@pytest.mark.parametrize("name", ["", "Sipnet", "-x", "a" * 33, "sip net", "sip.net"])
def test_a_bad_name_is_refused(db: Database, name: str) -> None:
    with pytest.raises(TrunkError) as refused:
        trunks.add(db, name, server="10.0.0.1", kind="ip")
    assert str(refused.value) == (
        "trunk name must be 1 to 32 lower-case letters, digits, '-' or '_', starting with a"
        f" letter or digit, not {name!r}"
    )
    assert refused.value.field == "name"


def test_an_ip_trunk_needs_no_credentials_and_a_server_is_needed(db: Database) -> None:
    trunk = trunks.add(db, "pbx2", kind="ip", server="pbx2.office.lan")
    assert (trunk.username, trunk.password, trunk.match_cidrs) == ("", "", "")
    with pytest.raises(TrunkError, match=r"^a trunk needs a server \(HOST or HOST:PORT\)$"):
        trunks.add(db, "pbx3", kind="ip")
    with pytest.raises(TypeError, match="unknown trunk fields: colour"):
        trunks.add(db, "pbx3", kind="ip", server="x.lan", colour="red")
    with pytest.raises(TrunkError, match=r"^a register trunk needs a username"):
        trunks.update(db, "pbx2", kind="register")


def test_a_name_is_used_once(db: Database) -> None:
    sipnet(db)
    with pytest.raises(TrunkExists, match=r"^trunk sipnet already exists$"):
        sipnet(db, server="other.example.net")
    assert [t.server for t in trunks.list_all(db)] == ["sip.example.net"]


def test_update_changes_only_what_is_given(db: Database) -> None:
    trunk = sipnet(db, codecs="PCMU")
    changed = trunks.update(db, "sipnet", enabled=False, max_calls=4)
    assert changed == Trunk(**{**trunk.masked(), "password": PASSWORD, "enabled": False,
                               "max_calls": 4, "updated_at": changed.updated_at})  # fmt: skip
    assert changed.updated_at >= trunk.updated_at and changed.instance == trunk.instance
    assert trunks.get(db, "sipnet") == changed
    with pytest.raises(TrunkError, match=r"^no trunk nothere$"):
        trunks.update(db, "nothere", max_calls=1)


def test_a_trunk_in_use_is_not_removed(office: Database) -> None:
    db = office
    sipnet(db)
    trunks.add(db, "backup", kind="ip", server="192.0.2.10")
    routes.add(db, "city", ["8XXXXXXXXXX"], ["backup", "sipnet"])
    dids.add(db, "+74951234567", "hangup:busy", trunk="sipnet")
    with pytest.raises(TrunkError) as refused:
        trunks.remove(db, "sipnet")
    assert str(refused.value) == (
        "trunk sipnet is used by route city, DID +74951234567; change that first"
    )
    routes.update(db, "city", trunks=["backup"])
    dids.update(db, "+74951234567", trunk="")
    trunks.remove(db, "sipnet")
    assert [t.name for t in trunks.list_all(db)] == ["backup"]
    with pytest.raises(TrunkError, match=r"^no trunk sipnet$"):
        trunks.remove(db, "sipnet")


def test_list_is_by_name(db: Database) -> None:
    for name in ("zeta", "alpha", "m2"):
        trunks.add(db, name, kind="ip", server="192.0.2.1")
    assert [t.name for t in trunks.list_all(db)] == ["alpha", "m2", "zeta"]
