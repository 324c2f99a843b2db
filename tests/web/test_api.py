"""The REST API under /api/v1: bearer tokens (none, wrong or malformed gets a JSON 401; a session
cookie is not enough; a viewer token reads and never writes), extensions created, read, changed,
re-keyed and deleted by an admin token with every refusal a JSON error, call-record filters,
registrations and live calls with no core running; SIP trunks (the password accepted, never
answered), the office's numbers (DIDs) in any written form and outbound routes in order, each
created, read, changed and deleted with its refusals; the OpenAPI document matching the routes
one for one, and schemathesis fuzzing a real `pbx web` against that document."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from appliance.numbering import DEFAULT_PERMISSIONS
from appliance.store import (
    cdrs,
    dids,
    menus,
    prompts,
    recordings,
    registrations,
    routes,
    settings,
    tokens,
    trunks,
    voicemail,
)
from appliance.store.cdrs import Cdr
from appliance.store.db import open_db
from appliance.store.extensions import digest_ha1
from appliance.store.registrations import Registration
from appliance.web import create_app
from appliance.web.auth import view_access
from tests.conftest import WebProcess
from tests.web.conftest import ADMIN, Pages, add_extensions, prepare

API = "/api/v1"
T0 = 1_700_000_000.0
"""A Unix time the call records below start from."""

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"

WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


# --- helpers ------------------------------------------------------------------------------


def make_token(data: Path, role: str) -> str:
    """A new API token of `role` on the box at `data`; its clear text."""
    db = open_db(data)
    try:
        return tokens.create(db, f"{role} script", role)[1]
    finally:
        db.conn.close()


class Api:
    """The Flask test client sending `Authorization: Bearer TOKEN` with every request."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.token = client, token

    def open(self, method: str, url: str, body: Any = None, **kwargs: Any) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        if body is not None:
            kwargs["json"] = body
        return self.client.open(url, method=method, headers=headers, **kwargs)

    def get(self, url: str, **kwargs: Any) -> TestResponse:
        return self.open("GET", url, **kwargs)


def error(response: TestResponse, code: int) -> str:
    """Assert `response` is the JSON error `code`; return its message."""
    assert response.status_code == code, (response.status_code, response.get_data(as_text=True))
    assert response.mimetype == "application/json", response.mimetype
    body = response.get_json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str) and message.strip(), body
    return message


def dump(data: Path) -> list[str]:
    """The whole configuration as SQL, but the tokens' last use (which reading changes)."""
    db = open_db(data)
    try:
        return [line for line in db.conn.iterdump() if "api_tokens" not in line]
    finally:
        db.conn.close()


def stored_extensions(data: Path) -> list[tuple[Any, ...]]:
    """Every extension as stored: number, name, realm and both HA1 values."""
    db = open_db(data)
    try:
        rows = db.execute(
            "SELECT number, name, realm, ha1_md5, ha1_sha256 FROM extensions ORDER BY number"
        )
        return [tuple(row) for row in rows.fetchall()]
    finally:
        db.conn.close()


def stored_hashes(data: Path, number: str) -> tuple[str, str, str]:
    """(realm, ha1_md5, ha1_sha256) of one extension."""
    rows = {row[0]: row for row in stored_extensions(data)}
    _, _, realm, md5, sha = rows[number]
    return str(realm), str(md5), str(sha)


def password_matches(data: Path, number: str, password: str) -> bool:
    """Does `password` give the HA1 values stored for `number` (both algorithms)?"""
    realm, md5, sha = stored_hashes(data, number)
    return (
        digest_ha1("MD5", number, realm, password) == md5
        and digest_ha1("SHA-256", number, realm, password) == sha
    )


def api_routes(app: Flask) -> list[tuple[str, str, str]]:
    """(method, Flask rule, endpoint) of every route under /api/v1 but the OpenAPI document."""
    found: list[tuple[str, str, str]] = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/") or rule.rule == f"{API}/openapi.json":
            continue
        methods = sorted(set(rule.methods or ()) - {"HEAD", "OPTIONS"})
        found += [(method, rule.rule, rule.endpoint) for method in methods]
    return found


DID = "+493012345678"
"""The installed box's DID (to extension 102 on trunk main)."""
TRUNK_PASSWORD = "Provider-Pass-3141"
"""The installed box's trunk `main` has this password: no answer may carry it."""


BANNED = "192.0.2.7"
"""The address /bans/<address> routes name (a ban of it is made by the tests that need one)."""


def fill(rule: str, args: dict[str, str]) -> str:
    """`rule` with its path arguments from `args`; under /dids/ and /routes/ the box's DID and
    route stand for `number` and `name` (the argument names an extension and a trunk use)."""
    own = {"address": BANNED, "recording_id": "1", "rule_id": "1", "message_id": "1", **args}
    if "/dids/" in rule:
        own["number"] = DID
    if "/routes/" in rule:
        own["name"] = "local"
    return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: own[m.group(1)], rule)


def extension(number: str, name: str, registered: int = 0, **extra: Any) -> dict[str, Any]:
    """An extension as the API answers it (default permissions, no caller ID unless given)."""
    return {
        "number": number, "name": name, "registered": registered,
        "permissions": list(DEFAULT_PERMISSIONS), "caller_id": "", "max_outbound_calls": None,
        "media_encryption": "optional", **extra,
    }  # fmt: skip


def cdr(
    call_id: str,
    started: float,
    caller: str,
    dialled: str,
    disposition: str,
    answered_by: str | None = None,
) -> Cdr:
    answered = started + 5 if disposition == "answered" else None
    return Cdr(
        id=call_id,
        started_at=started,
        ended_at=started + 65,
        caller=caller,
        dialled=dialled,
        disposition=disposition,
        hangup_side="caller",
        hangup_cause="normal",
        caller_name=f"Phone {caller}",
        answered_at=answered,
        answered_by=answered_by,
        codec_caller="PCMU" if answered else None,
        codec_callee="PCMU" if answered else None,
        rtp_caller={"packets_sent": 3000, "lost": 2} if answered else None,
    )


CALLS = [
    cdr("c1", T0 + 1000, "101", "102", "answered", answered_by="102"),
    cdr("c2", T0 + 2000, "102", "103", "no-answer"),
    cdr("c3", T0 + 3000, "103", "101", "busy"),
    cdr("c4", T0 + 4000, "104", "600", "answered", answered_by="101"),
    cdr("c5", T0 + 5000, "105", "106", "failed"),
]


def add_lines(data: Path) -> None:
    """Trunk main (with a password), the DID to extension 102 on it, and route local by it."""
    db = open_db(data)
    try:
        trunks.add(db, "main", server="sip.example.net", username="office",
                   password=TRUNK_PASSWORD)  # fmt: skip
        dids.add(db, DID, "extension:102", "Main line", "main")
        routes.add(db, "local", ["NXXXXXX"], ["main"])
    finally:
        db.conn.close()


def add_media(data: Path) -> None:
    """Menu and announcement main, custom prompt main (a real 0.5 s WAV), and the recording of
    call c3 (id 1): what the item routes of the media API read."""
    db = open_db(data)
    try:
        menus.save_menu(db, menus.Menu("main", "Main", "sound:hello-world"), create=True)
        menus.save_announcement(db, menus.Announcement("main", "Closed", "sound:vm-goodbye"),
                                create=True)  # fmt: skip
        wav = data / "prompts" / "main.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(wav), "synth",
                        "0.5", "sine", "440"], check=True)  # fmt: skip
        prompts.add(db, "main", "en", "upload", "", "prompts/main.wav", 0.5)
        path = recordings.relative_path("c3", T0 + 3000, 1)
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        (data / path).write_bytes(b"OggS")
        recordings.add(db, "c3", path, T0 + 3000, 1.0, 4)
        voicemail.set_mailbox(db, "101")  # and message 1 in it, left by 102
        left = voicemail.message_path("101", T0 + 1000, "102")
        (data / left).parent.mkdir(parents=True, exist_ok=True)
        (data / left).write_bytes(b"OggS")
        voicemail.add_message(db, "101", path=left, started_at=T0 + 1000, seconds=1.0,
                              caller="102")  # fmt: skip
    finally:
        db.conn.close()


def write_calls(data: Path) -> None:
    db = open_db(data)
    try:
        cdrs.write(db, CALLS)
    finally:
        db.conn.close()


def binding(aor: str, expires_at: float) -> Registration:
    return Registration(
        aor=aor,
        contact_key=f"sip:{aor}@127.0.0.1:5062",
        contact=f"<sip:{aor}@127.0.0.1:5062>",
        expires_at=expires_at,
        call_id=f"reg-{aor}",
        cseq=1,
        q=None,
        transport="udp",
        source="127.0.0.1:5062",
        user_agent="TestPhone 1.0",
        registered_at=time.time(),
    )


def register(data: Path, *bindings: Registration) -> None:
    db = open_db(data)
    try:
        registrations.write(db, list(bindings), [])
    finally:
        db.conn.close()


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An installed box (admin user, range 100-199) with extensions 101 and 102, trunk main,
    DID +493012345678, route local, five call records, and the media of `add_media`, made
    once: each test gets a copy (hashing passwords is what costs time)."""
    data = tmp_path_factory.mktemp("installed") / "var"
    prepare(data, viewer=False)
    add_extensions(data, "101", "102")
    add_lines(data)
    add_media(data)
    write_calls(data)
    return data


@pytest.fixture
def box(data: Path, installed: Path) -> Path:
    """This test's copy of the installed box, in the data directory of the `app` fixture."""
    shutil.copytree(installed, data)
    return data


@pytest.fixture
def app(box: Path) -> Flask:
    """The app over this test's box (overrides the conftest's `app`, which starts empty)."""
    return create_app({"DATA_DIR": box, "TESTING": True})


@pytest.fixture
def admin_api(app: Flask, box: Path) -> Api:
    return Api(app.test_client(), make_token(box, "admin"))


@pytest.fixture
def viewer_api(app: Flask, box: Path) -> Api:
    return Api(app.test_client(), make_token(box, "viewer"))


# --- authentication -----------------------------------------------------------------------


def assert_bearer_401(response: TestResponse) -> None:
    error(response, 401)
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response.headers


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer pbx_" + "x" * 43,  # well formed, but no such token
        "Bearer ",
        "Bearer",
        "Basic YWRtaW46QWRtMW4tU2VjcmV0IQ==",  # the admin's login, as HTTP Basic
        "{token}",  # the real token (filled in below) without a scheme
        "Token {token}",
        "Bearer {token}-tampered",
        "Bearer {token}x",
        "Bearer {reversed}",
        "Bearer {token_without_prefix}",
    ],
)
def test_every_route_refuses_a_missing_wrong_or_malformed_token_with_401_json(
    app: Flask, box: Path, authorization: str | None
) -> None:
    real = make_token(box, "admin")
    client = app.test_client()
    headers: dict[str, str] = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            token=real, reversed=real[::-1], token_without_prefix=real.removeprefix("pbx_")
        )
    routes = api_routes(app)
    assert len(routes) >= 9
    for method, rule, _ in routes:
        url = fill(rule, {"number": "101", "call_id": "c1", "name": "main"})
        response = client.open(url, method=method, headers=headers, json={"name": "x"})
        assert_bearer_401(response)
    assert [row[:2] for row in stored_extensions(box)] == [
        ("101", "Phone 101"),
        ("102", "Phone 102"),
    ]


def test_the_same_token_is_accepted_when_well_formed(app: Flask, box: Path) -> None:
    """The counterpart of the test above: the token it tampers with does work, with any case
    of the scheme and extra spaces."""
    real = make_token(box, "admin")
    client = app.test_client()
    for header in (f"Bearer {real}", f"bearer {real}", f"Bearer   {real}  "):
        response = client.get(f"{API}/extensions", headers={"Authorization": header})
        assert response.status_code == 200, header


def test_a_revoked_token_is_refused(app: Flask, box: Path) -> None:
    db = open_db(box)
    token, clear = tokens.create(db, "old CRM", "admin")
    db.conn.close()
    api = Api(app.test_client(), clear)
    assert api.get(f"{API}/extensions").status_code == 200
    db = open_db(box)
    tokens.revoke(db, token.id)
    db.conn.close()
    assert_bearer_401(api.get(f"{API}/extensions"))


def test_a_logged_in_session_cookie_does_not_authorize_the_api(app: Flask) -> None:
    admin = Pages(app.test_client())
    assert admin.login(*ADMIN).status_code == 302
    assert admin.get("/extensions/").status_code == 200  # the session works for pages
    for method, rule, _ in api_routes(app):
        url = fill(rule, {"number": "101", "call_id": "c1", "name": "main"})
        assert_bearer_401(admin.client.open(url, method=method, json={"number": "150"}))


def test_using_a_token_records_when_it_was_last_used(viewer_api: Api, box: Path) -> None:
    db = open_db(box)
    before = {t.name: t.last_used_at for t in tokens.list_all(db)}
    db.conn.close()
    assert before == {"viewer script": None}
    start = time.time()
    assert viewer_api.get(f"{API}/calls").status_code == 200
    db = open_db(box)
    (used,) = [t.last_used_at for t in tokens.list_all(db)]
    db.conn.close()
    assert used is not None and used >= start


# --- viewer tokens ------------------------------------------------------------------------

SAMPLE = {"number": "101", "call_id": "c3", "name": "main"}
WRITE_BODIES: dict[tuple[str, str], Any] = {
    ("POST", f"{API}/extensions"): {"number": "150", "name": "New", "password": "Str0ngPassw0rd"},
    ("PATCH", f"{API}/extensions/<number>"): {"name": "Renamed"},
    ("DELETE", f"{API}/extensions/<number>"): None,
    ("POST", f"{API}/extensions/<number>/password"): {"password": "An0therPassw0rd"},
    ("POST", f"{API}/trunks"): {"name": "backup", "server": "sip2.example.net", "kind": "ip"},
    ("PATCH", f"{API}/trunks/<name>"): {"server": "sip3.example.net"},
    ("DELETE", f"{API}/trunks/<name>"): None,
    ("POST", f"{API}/trunks/<name>/test"): None,
    ("POST", f"{API}/dids"): {"number": "+493099999999", "destination": "extension:101"},
    ("PATCH", f"{API}/dids/<number>"): {"label": "Renamed"},
    ("DELETE", f"{API}/dids/<number>"): None,
    ("DELETE", f"{API}/bans/<address>"): None,
    ("POST", f"{API}/routes"): {"name": "intl", "patterns": ["011."], "trunks": ["main"]},
    ("PATCH", f"{API}/routes/<name>"): {"prepend": "9"},
    ("DELETE", f"{API}/routes/<name>"): None,
    ("POST", f"{API}/routes/<name>/move"): {"position": 1},
    ("POST", f"{API}/menus"): {"name": "main", "greeting": "sound:hello-world"},
    ("PUT", f"{API}/menus/<name>"): {"greeting": "sound:hello-world"},
    ("DELETE", f"{API}/menus/<name>"): None,
    ("POST", f"{API}/announcements"): {"name": "closed", "prompt": "sound:vm-goodbye"},
    ("PUT", f"{API}/announcements/<name>"): {"prompt": "sound:vm-goodbye"},
    ("DELETE", f"{API}/announcements/<name>"): None,
    ("PUT", f"{API}/voicemail/mailboxes/<number>"): {"pin": "2468"},
    ("DELETE", f"{API}/voicemail/mailboxes/<number>"): None,
    ("PATCH", f"{API}/voicemail/messages/<message_id>"): {"folder": "saved"},
    ("DELETE", f"{API}/voicemail/messages/<message_id>"): None,
    ("POST", f"{API}/prompts"): {"name": "hello", "language": "en", "text": "Hello"},
    ("DELETE", f"{API}/prompts/<name>"): None,
    ("DELETE", f"{API}/recordings/<recording_id>"): None,
    ("POST", f"{API}/recording-rules"): {"match": "direction", "value": "inbound"},
    ("DELETE", f"{API}/recording-rules/<rule_id>"): None,
}


def test_a_viewer_token_reads_every_get_route(app: Flask, viewer_api: Api, box: Path) -> None:
    register(box, binding("101", time.time() + 3600))
    gets = [(rule, endpoint) for method, rule, endpoint in api_routes(app) if method == "GET"]
    assert len(gets) == 29  # a new read route is added to the box's fixtures above
    for rule, _ in gets:
        response = viewer_api.get(fill(rule, SAMPLE))
        assert response.status_code == 200, (rule, response.get_data(as_text=True))
        audio = rule.endswith(("/audio", "/file"))
        kind = response.mimetype or ""
        assert kind.startswith("audio/") if audio else kind == "application/json"
    assert viewer_api.get(f"{API}/extensions/101").get_json() == extension("101", "Phone 101", 1)
    assert viewer_api.get(f"{API}/cdrs/c3").get_json()["disposition"] == "busy"


def test_a_viewer_token_gets_403_on_every_write_and_nothing_changes(
    app: Flask, viewer_api: Api, box: Path
) -> None:
    before = dump(box)
    writes = [(m, rule) for m, rule, _ in api_routes(app) if m in WRITE_METHODS]
    assert sorted(writes) == sorted(WRITE_BODIES)  # a new write route needs a body here
    for method, rule in writes:
        response = viewer_api.open(method, fill(rule, SAMPLE), WRITE_BODIES[(method, rule)])
        assert "viewer" in error(response, 403), (method, rule)
    assert dump(box) == before
    assert viewer_api.get(f"{API}/extensions/150").status_code == 404


def test_the_role_a_route_needs_is_what_its_view_declares(app: Flask) -> None:
    """Reads are for any token, writes for admin tokens only (checked above by role)."""
    with app.test_request_context():
        for method, rule, endpoint in api_routes(app):
            expected = "admin" if method in WRITE_METHODS else "viewer"
            assert view_access(endpoint) == expected, (method, rule)


# --- extensions with an admin token -------------------------------------------------------


def test_creating_an_extension_answers_201_with_its_password_which_is_the_stored_one(
    admin_api: Api, box: Path
) -> None:
    response = admin_api.open("POST", f"{API}/extensions", {"number": "150", "name": " Anna "})
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"number", "name", "registered", "permissions", "caller_id", "password",
                         "max_outbound_calls", "media_encryption"}  # fmt: skip
    assert body["number"] == "150" and body["name"] == "Anna" and body["registered"] == 0
    password = body["password"]
    assert isinstance(password, str) and len(password) >= 10
    assert password_matches(box, "150", password)
    assert not password_matches(box, "150", password + "x")
    assert admin_api.get(f"{API}/extensions/150").get_json() == extension("150", "Anna")


def test_creating_an_extension_with_a_chosen_password_stores_that_password(
    admin_api: Api, box: Path
) -> None:
    response = admin_api.open(
        "POST", f"{API}/extensions", {"number": "151", "password": "Chos3nPassword"}
    )
    assert response.status_code == 201
    assert response.get_json() == extension("151", "", password="Chos3nPassword")
    assert password_matches(box, "151", "Chos3nPassword")


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"number": "101"}, 409, "already exists"),
        ({"number": "200"}, 400, "outside the allowed range"),
        ({"number": "99"}, 400, "outside the allowed range"),
        ({"number": "1a0"}, 400, "2 to 6 digits"),
        ({"number": "150", "password": "short1"}, 400, "at least 10"),
        ({"number": "150", "password": "onlyletters"}, 400, "too weak"),
        ({"number": "150", "password": "1234567890"}, 400, "too weak"),
        ({"number": "150", "password": "abc150defgh"}, 400, "too weak"),
        ({"number": "150", "password": "with space 123"}, 400, "spaces"),
        ({"number": "150", "name": 'say "hi"'}, 400, "name"),
        ({"number": "150", "name": "x" * 65}, 400, "name"),
        ({"number": "150", "admin": True}, 400, "unknown fields: admin"),
        ({"name": "No number"}, 400, "missing fields: number"),
        ({"number": 150}, 400, "number must be a string"),
        ({"number": "150", "password": None}, 400, "password must be a string"),
        (["150"], 400, "JSON object"),
        ("150", 400, "JSON object"),
    ],
)
def test_a_refused_extension_is_a_json_error_and_nothing_is_saved(
    admin_api: Api, box: Path, body: Any, code: int, says: str
) -> None:
    before = stored_extensions(box)
    message = error(admin_api.open("POST", f"{API}/extensions", body), code)
    assert says in message
    assert stored_extensions(box) == before


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        ("number=150", "application/x-www-form-urlencoded"),
        ('{"number": "150"', "application/json"),
        ('{"number": "150"}', "text/plain"),
        ("", "application/json"),
    ],
)
def test_a_body_that_is_not_json_is_refused_with_400(
    admin_api: Api, box: Path, payload: str, content_type: str
) -> None:
    before = stored_extensions(box)
    response = admin_api.open(
        "POST", f"{API}/extensions", data=payload, headers={"Content-Type": content_type}
    )
    assert "JSON object" in error(response, 400)
    assert stored_extensions(box) == before


def test_renaming_an_extension_changes_only_its_name(admin_api: Api, box: Path) -> None:
    hashes = stored_hashes(box, "101")
    response = admin_api.open("PATCH", f"{API}/extensions/101", {"name": "Reception"})
    assert response.status_code == 200
    assert response.get_json() == extension("101", "Reception")
    assert admin_api.get(f"{API}/extensions/101").get_json()["name"] == "Reception"
    assert stored_hashes(box, "101") == hashes


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "nothing to change: give one or more of name, permissions, caller_id"),
        ({"name": "A", "number": "150"}, "unknown fields: number"),
        ({"name": 'x"y'}, "name"),
        ({"name": ["Reception"]}, "name must be a string"),
    ],
)
def test_a_refused_rename_is_a_json_400_and_the_name_stays(
    admin_api: Api, box: Path, body: dict[str, Any], says: str
) -> None:
    assert says in error(admin_api.open("PATCH", f"{API}/extensions/101", body), 400)
    assert admin_api.get(f"{API}/extensions/101").get_json()["name"] == "Phone 101"


def test_deleting_an_extension_answers_204_then_it_is_gone(admin_api: Api, box: Path) -> None:
    register(box, binding("101", time.time() + 3600))
    response = admin_api.open("DELETE", f"{API}/extensions/101")
    assert response.status_code == 204 and response.get_data() == b""
    assert "no extension 101" in error(admin_api.get(f"{API}/extensions/101"), 404)
    error(admin_api.open("DELETE", f"{API}/extensions/101"), 404)
    assert [row[0] for row in stored_extensions(box)] == ["102"]
    assert admin_api.get(f"{API}/registrations").get_json() == {"registrations": []}


def test_a_new_password_is_generated_given_once_and_replaces_the_old_one(
    admin_api: Api, box: Path
) -> None:
    old = add_extensions(box, "160")["160"]
    response = admin_api.open("POST", f"{API}/extensions/160/password")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"number", "password"} and body["number"] == "160"
    new = body["password"]
    assert isinstance(new, str) and len(new) >= 10 and new != old
    assert password_matches(box, "160", new)
    assert not password_matches(box, "160", old)
    again = admin_api.open("POST", f"{API}/extensions/160/password", {})
    assert again.status_code == 200 and again.get_json()["password"] not in (old, new)


def test_a_chosen_new_password_is_checked_and_stored(admin_api: Api, box: Path) -> None:
    url = f"{API}/extensions/101/password"
    hashes = stored_hashes(box, "101")
    assert "too weak" in error(admin_api.open("POST", url, {"password": "abcdefghijk"}), 400)
    assert "unknown fields" in error(admin_api.open("POST", url, {"pass": "Str0ngPassw0rd"}), 400)
    assert stored_hashes(box, "101") == hashes
    response = admin_api.open("POST", url, {"password": "Str0ngPassw0rd"})
    assert response.get_json() == {"number": "101", "password": "Str0ngPassw0rd"}
    assert password_matches(box, "101", "Str0ngPassw0rd")


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/extensions/155", None),
        ("PATCH", "/extensions/155", {"name": "X"}),
        ("DELETE", "/extensions/155", None),
        ("POST", "/extensions/155/password", None),
        ("GET", "/cdrs/no-such-call", None),
    ],
)
def test_a_missing_resource_is_a_json_404(admin_api: Api, method: str, url: str, body: Any) -> None:
    error(admin_api.open(method, API + url, body), 404)


def test_an_unknown_api_route_is_a_json_404(admin_api: Api) -> None:
    error(admin_api.get(f"{API}/nope"), 404)
    error(admin_api.client.get(f"{API}/nope"), 404)  # without a token too


def test_before_the_first_account_an_api_error_is_still_json(tmp_path: Path) -> None:
    """A box nobody has set up yet: the pages send everyone to the first-account form, but an
    API client with a wrong URL or method still gets a JSON error, not a redirect to HTML."""
    fresh = create_app({"DATA_DIR": tmp_path / "fresh", "TESTING": True}).test_client()
    assert_bearer_401(fresh.get(f"{API}/extensions"))
    error(fresh.get(f"{API}/nope"), 404)
    error(fresh.put(f"{API}/extensions"), 405)


@pytest.mark.parametrize(
    ("method", "url"),
    [("PUT", "/extensions"), ("DELETE", "/extensions"), ("PUT", "/extensions/101"),
     ("POST", "/cdrs"), ("GET", "/extensions/101/password"), ("DELETE", "/calls")],
)  # fmt: skip
def test_a_wrong_method_is_a_json_405(admin_api: Api, box: Path, method: str, url: str) -> None:
    before = stored_extensions(box)
    error(admin_api.open(method, API + url, {"number": "150"}), 405)
    assert stored_extensions(box) == before


def test_a_405_names_the_allowed_methods(admin_api: Api) -> None:
    """RFC 9110 §15.5.6: a 405 response MUST carry an Allow header (schemathesis checks it)."""
    cases = [
        ("PUT", "/extensions", {"GET", "POST"}),
        ("PUT", "/extensions/101", {"GET", "PATCH", "DELETE"}),
        ("GET", "/extensions/101/password", {"POST"}),
        ("POST", "/calls", {"GET"}),
    ]
    wrong = {}
    for method, url, allowed in cases:
        response = admin_api.open(method, API + url)
        assert response.status_code == 405
        named = {m.strip() for m in response.headers.get("Allow", "").split(",") if m.strip()}
        if not allowed <= named or method in named:
            wrong[f"{method} {url}"] = response.headers.get("Allow")
    assert wrong == {}, f"405 answers without a right Allow header: {wrong}"


# --- trunks ---------------------------------------------------------------------------------

TRUNK_KEYS = {
    "name", "kind", "server", "outbound_proxy", "transport", "username", "auth_user",
    "password", "from_user", "from_domain", "codecs", "max_calls", "expires",
    "options_interval", "external_address", "match_cidrs", "did_from", "late_offer",
    "enabled", "created_at", "updated_at", "status", "media_encryption",
}  # fmt: skip


def stored_trunk(data: Path, name: str) -> trunks.Trunk | None:
    db = open_db(data)
    try:
        return trunks.get(db, name)
    finally:
        db.conn.close()


def test_a_trunk_is_listed_with_its_password_masked_and_no_status_without_a_core(
    viewer_api: Api,
) -> None:
    response = viewer_api.get(f"{API}/trunks")
    assert response.status_code == 200
    assert TRUNK_PASSWORD not in response.get_data(as_text=True)
    (row,) = response.get_json()["trunks"]
    assert set(row) == TRUNK_KEYS
    assert (row["name"], row["kind"], row["server"], row["username"]) == (
        "main", "register", "sip.example.net", "office",
    )  # fmt: skip
    assert row["password"] == "********"
    assert row["status"] is None  # no core runs it
    assert (row["max_calls"], row["late_offer"], row["enabled"]) == (0, False, True)
    assert viewer_api.get(f"{API}/trunks/main").get_json() == row


def test_a_created_trunk_keeps_the_password_it_never_answers(
    admin_api: Api, box: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    secret = "Sip-Provider-Secret-99"
    response = admin_api.open(
        "POST", f"{API}/trunks",
        {"name": "backup", "server": "Sip2.Example.NET:5080", "username": "0301234567",
         "password": secret, "max_calls": 4, "late_offer": True, "codecs": "pcmu,pcma"},
    )  # fmt: skip
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == TRUNK_KEYS
    assert body["server"] == "sip2.example.net:5080" and body["codecs"] == "PCMU,PCMA"
    assert (body["max_calls"], body["late_offer"], body["password"]) == (4, True, "********")
    stored = stored_trunk(box, "backup")
    assert stored is not None and stored.password == secret

    changed = admin_api.open("PATCH", f"{API}/trunks/backup", {"expires": 600})
    assert changed.status_code == 200 and changed.get_json()["expires"] == 600
    stored = stored_trunk(box, "backup")
    assert stored is not None and stored.password == secret  # kept when not given
    renewed = admin_api.open("PATCH", f"{API}/trunks/backup", {"password": "An0ther-Secret"})
    stored = stored_trunk(box, "backup")
    assert stored is not None and stored.password == "An0ther-Secret"

    ip = admin_api.open("POST", f"{API}/trunks", {"name": "office2", "server": "10.1.2.3",
                                                  "kind": "ip"})  # fmt: skip
    assert ip.status_code == 201 and ip.get_json()["password"] == ""
    answers = [response, changed, renewed, ip, admin_api.get(f"{API}/trunks")]
    answers.append(admin_api.open("POST", f"{API}/trunks/backup/test"))
    shown = [a.get_data(as_text=True) for a in answers]
    assert not any(secret in text or "An0ther-Secret" in text for text in shown)
    assert secret not in caplog.text and "An0ther-Secret" not in caplog.text


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"name": "main", "server": "sip.example.net", "kind": "ip"}, 409, "already exists"),
        ({"name": "Main Line", "server": "x.example"}, 400, "trunk name must be 1 to 32"),
        ({"name": "b"}, 400, "missing fields: server"),
        ({"name": "b", "server": "not a host!", "kind": "ip"}, 400, "server must be HOST"),
        ({"name": "b", "server": "x.example:99999", "kind": "ip"}, 400, "port must be 1 to"),
        ({"name": "b", "server": "x.example"}, 400, "needs a username"),
        ({"name": "b", "server": "x.example", "username": "u"}, 400, "needs a password"),
        ({"name": "b", "server": "x.example", "kind": "REGISTER"}, 400, "kind must be one of"),
        ({"name": "b", "server": "x.example", "kind": "ip", "transport": "tls"}, 400,
         "transport must be one of"),
        ({"name": "b", "server": "x.example", "kind": "ip", "max_calls": "5"}, 400,
         "max_calls must be a whole number"),
        ({"name": "b", "server": "x.example", "kind": "ip", "max_calls": True}, 400,
         "max_calls must be a whole number"),
        ({"name": "b", "server": "x.example", "kind": "ip", "max_calls": 1001}, 400,
         "max calls must be"),
        ({"name": "b", "server": "x.example", "kind": "ip", "options_interval": 5}, 400,
         "OPTIONS interval must be"),
        ({"name": "b", "server": "x.example", "kind": "ip", "enabled": "yes"}, 400,
         "enabled must be true or false"),
        ({"name": "b", "server": "x.example", "kind": "ip", "codecs": "GSM"}, 400,
         "codecs must list some of"),
        ({"name": "b", "server": "x.example", "kind": "ip", "match_cidrs": "10.0.0.0/33"},
         400, "is not an IP address or network"),
        ({"name": "b", "server": "x.example", "kind": "ip", "instance": "abc"}, 400,
         "unknown fields: instance"),
        ({"name": "b", "server": "x.example", "kind": "ip", "password": None}, 400,
         "password must be a string"),
        (["main"], 400, "JSON object"),
    ],
)  # fmt: skip
def test_a_refused_trunk_is_a_json_error_and_nothing_is_saved(
    admin_api: Api, box: Path, body: Any, code: int, says: str
) -> None:
    before = dump(box)
    assert says in error(admin_api.open("POST", f"{API}/trunks", body), code)
    assert dump(box) == before


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({}, "nothing to change"),
        ({"name": "other"}, "unknown fields: name"),
        ({"server": ""}, "server must be HOST"),
        ({"password": ""}, "needs a password"),  # a register trunk cannot lose it
        ({"expires": 59}, "registration expiry must be 60 to 86400"),
        ({"late_offer": 1}, "late_offer must be true or false"),
    ],
)
def test_a_refused_trunk_change_is_a_json_400_and_the_trunk_stays(
    admin_api: Api, box: Path, body: dict[str, Any], says: str
) -> None:
    before = dump(box)
    assert says in error(admin_api.open("PATCH", f"{API}/trunks/main", body), 400)
    assert dump(box) == before


def test_a_trunk_in_use_is_not_deleted_and_the_answer_says_by_what(
    admin_api: Api, box: Path
) -> None:
    says = error(admin_api.open("DELETE", f"{API}/trunks/main"), 409)
    assert says == f"trunk main is used by route local, DID {DID}; change that first"
    assert stored_trunk(box, "main") is not None
    assert admin_api.open("DELETE", f"{API}/routes/local").status_code == 204
    assert admin_api.open("PATCH", f"{API}/dids/{DID}", {"trunk": ""}).status_code == 200
    response = admin_api.open("DELETE", f"{API}/trunks/main")
    assert response.status_code == 204 and response.get_data() == b""
    assert "no trunk main" in error(admin_api.get(f"{API}/trunks/main"), 404)
    error(admin_api.open("DELETE", f"{API}/trunks/main"), 404)


def test_testing_a_trunk_without_a_core_is_a_409_that_says_so(admin_api: Api) -> None:
    assert "the core is not running" in error(admin_api.open("POST", f"{API}/trunks/main/test"),
                                              409)  # fmt: skip
    assert "no trunk nope" in error(admin_api.open("POST", f"{API}/trunks/nope/test"), 404)


# --- the office's numbers (DIDs) ---------------------------------------------------------------


@pytest.mark.parametrize(
    "written", [DID, "+49 30 1234 5678", "+49 (30) 1234-5678", "011 49 30 12345678"]
)
def test_a_did_is_found_by_its_number_in_any_written_form(viewer_api: Api, written: str) -> None:
    expected = {
        "number": DID, "label": "Main line", "trunk": "main", "destination": "extension:102",
        "destination_description": "extension 102 (Phone 102)",
    }  # fmt: skip
    assert viewer_api.get(f"{API}/dids").get_json() == {"dids": [expected]}
    response = viewer_api.get(f"{API}/dids/{quote(written, safe='')}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == expected


def test_a_did_is_created_normalised_changed_and_deleted(admin_api: Api) -> None:
    response = admin_api.open(
        "POST", f"{API}/dids",
        {"number": "+49 30 9999-9999", "destination": "hangup:busy", "label": "Fax"},
    )  # fmt: skip
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json() == {
        "number": "+493099999999", "label": "Fax", "trunk": "", "destination": "hangup:busy",
        "destination_description": "hang up (busy)",
    }  # fmt: skip
    url = f"{API}/dids/{quote('+49 30 9999 9999', safe='')}"
    changed = admin_api.open("PATCH", url, {"destination": "extension:101", "trunk": "main"})
    assert changed.status_code == 200
    body = changed.get_json()
    assert (body["destination_description"], body["trunk"], body["label"]) == (
        "extension 101 (Phone 101)", "main", "Fax",
    )  # fmt: skip
    assert admin_api.open("DELETE", url).status_code == 204
    assert "no DID +493099999999" in error(admin_api.get(url), 404)
    error(admin_api.open("DELETE", url), 404)
    error(admin_api.open("PATCH", url, {"label": "x"}), 404)


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"number": "101", "destination": "hangup:busy"}, 409,
         "101 is already extension 101 (Phone 101)"),
        ({"number": "+49 (30) 1234 5678", "destination": "hangup:busy"}, 409,
         f"{DID} is already the DID {DID} (Main line)"),
        ({"number": "+493055555555", "destination": "extension:199"}, 400,
         "there is no extension 199"),
        ({"number": "+493055555555", "destination": "route:local"}, 400,
         "calls from outside cannot go to an outbound route"),
        ({"number": "+493055555555", "destination": "hangup:maybe"}, 400, "a hang-up cause is"),
        ({"number": "+493055555555", "destination": "hangup:busy", "trunk": "nope"}, 400,
         "there is no trunk 'nope'"),
        ({"number": "+493055555555", "destination": "hangup:busy", "label": "x" * 33}, 400,
         "label must be at most 32"),
        ({"number": "abc", "destination": "hangup:busy"}, 400, "unexpected character"),
        ({"number": "12345678", "destination": "hangup:busy"}, 400, "not a complete number"),
        ({"number": "+493055555555"}, 400, "missing fields: destination"),
        ({"number": 4930, "destination": "hangup:busy"}, 400, "number must be a string"),
    ],
)  # fmt: skip
def test_a_refused_did_is_a_json_error_and_nothing_is_saved(
    admin_api: Api, box: Path, body: dict[str, Any], code: int, says: str
) -> None:
    before = dump(box)
    assert says in error(admin_api.open("POST", f"{API}/dids", body), code)
    assert dump(box) == before


def test_a_did_presented_as_caller_id_is_not_deleted(admin_api: Api, box: Path) -> None:
    response = admin_api.open("PATCH", f"{API}/extensions/101", {"caller_id": "+49 30 12345678"})
    assert response.status_code == 200 and response.get_json()["caller_id"] == DID
    says = error(admin_api.open("DELETE", f"{API}/dids/{DID}"), 409)
    assert says == f"DID {DID} is the caller ID of extension 101; change that first"
    assert admin_api.open("PATCH", f"{API}/extensions/101", {"caller_id": ""}).status_code == 200
    assert admin_api.open("DELETE", f"{API}/dids/{DID}").status_code == 204


# --- outbound routes --------------------------------------------------------------------------


def route_names(api: Api) -> list[str]:
    rows = api.get(f"{API}/routes").get_json()["routes"]
    assert [r["position"] for r in rows] == list(range(1, len(rows) + 1))
    return [r["name"] for r in rows]


def test_routes_are_created_in_order_moved_and_deleted(admin_api: Api) -> None:
    response = admin_api.open(
        "POST", f"{API}/routes",
        {"name": "intl", "patterns": ["011.", " 00. "], "trunks": ["main"], "prepend": "+"},
    )  # fmt: skip
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json() == {
        "name": "intl", "position": 2, "patterns": ["011.", "00."], "trunks": ["main"],
        "prepend": "+", "caller_id": "",
    }  # fmt: skip
    first = admin_api.open(
        "POST", f"{API}/routes",
        {"name": "emergency", "patterns": ["911"], "trunks": ["main"], "position": 1,
         "caller_id": DID},
    )  # fmt: skip
    assert first.status_code == 201 and first.get_json()["position"] == 1
    assert route_names(admin_api) == ["emergency", "local", "intl"]

    moved = admin_api.open("POST", f"{API}/routes/intl/move", {"position": 1})
    assert moved.status_code == 200
    assert [r["name"] for r in moved.get_json()["routes"]] == ["intl", "emergency", "local"]
    assert route_names(admin_api) == ["intl", "emergency", "local"]
    assert "position must be 1 to 3" in error(
        admin_api.open("POST", f"{API}/routes/intl/move", {"position": 4}), 400
    )
    assert "position must be a whole number" in error(
        admin_api.open("POST", f"{API}/routes/intl/move", {"position": "2"}), 400
    )
    error(admin_api.open("POST", f"{API}/routes/nope/move", {"position": 1}), 404)

    assert admin_api.open("DELETE", f"{API}/routes/emergency").status_code == 204
    assert route_names(admin_api) == ["intl", "local"]  # the rest closed up
    assert "no route emergency" in error(admin_api.get(f"{API}/routes/emergency"), 404)


def test_a_route_change_keeps_the_trunks_failover_order(admin_api: Api) -> None:
    assert admin_api.open("POST", f"{API}/trunks", {"name": "backup", "server": "10.0.0.2",
                                                    "kind": "ip"}).status_code == 201  # fmt: skip
    response = admin_api.open(
        "PATCH", f"{API}/routes/local", {"trunks": ["backup", "main"], "patterns": ["NXXXXXX"]}
    )
    assert response.status_code == 200
    assert response.get_json()["trunks"] == ["backup", "main"]
    assert admin_api.get(f"{API}/routes/local").get_json()["trunks"] == ["backup", "main"]


@pytest.mark.parametrize(
    ("method", "url", "body", "code", "says"),
    [
        ("POST", "/routes", {"name": "local", "patterns": ["00."], "trunks": ["main"]}, 409,
         "route local already exists"),
        ("POST", "/routes", {"name": "x", "patterns": ["0Q"], "trunks": ["main"]}, 400, "0Q"),
        ("POST", "/routes", {"name": "x", "patterns": [], "trunks": ["main"]}, 400,
         "at least one dial pattern"),
        ("POST", "/routes", {"name": "x", "patterns": ["00."], "trunks": []}, 400,
         "at least one trunk"),
        ("POST", "/routes", {"name": "x", "patterns": ["00."], "trunks": ["nope"]}, 400,
         "there is no trunk 'nope'"),
        ("POST", "/routes", {"name": "x", "patterns": ["00."], "trunks": ["main", "main"]}, 400,
         "trunk main is listed twice"),
        ("POST", "/routes", {"name": "x", "patterns": "00.", "trunks": ["main"]}, 400,
         "patterns must be a list of strings"),
        ("POST", "/routes", {"name": "x", "patterns": ["00."], "trunks": ["main"],
                             "caller_id": "+1 212 555 0100"}, 400,
         "is not one of the office's numbers"),
        ("POST", "/routes", {"name": "x", "patterns": ["00."], "trunks": ["main"],
                             "position": 5}, 400, "position must be 1 to 2"),
        ("PATCH", "/routes/local", {"prepend": "9x"}, 400, "prepend may hold only digits"),
        ("PATCH", "/routes/local", {"position": 1}, 400, "unknown fields: position"),
        ("PATCH", "/routes/local", {}, 400, "nothing to change"),
        ("PATCH", "/routes/nope", {"prepend": "9"}, 404, "no route nope"),
    ],
)  # fmt: skip
def test_a_refused_route_is_a_json_error_and_nothing_is_saved(
    admin_api: Api, box: Path, method: str, url: str, body: Any, code: int, says: str
) -> None:
    before = dump(box)
    assert says in error(admin_api.open(method, API + url, body), code)
    assert dump(box) == before


# --- extension permissions and caller ID; what refers to an extension ---------------------------


def test_an_extensions_permissions_and_caller_id_change_together(admin_api: Api) -> None:
    url = f"{API}/extensions/101"
    response = admin_api.open(
        "PATCH", url, {"permissions": ["international", "local"], "caller_id": "+4930 12345678"}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json() == extension(
        "101", "Phone 101", permissions=["internal", "local", "international"], caller_id=DID
    )
    assert admin_api.open("PATCH", url, {"permissions": []}).get_json()["permissions"] == [
        "internal"
    ]
    # All of it or nothing: a bad caller ID leaves the name as it was.
    says = error(admin_api.open("PATCH", url, {"name": "New", "caller_id": "+12125550100"}), 400)
    assert "caller ID +12125550100 is not one of the office's numbers" in says
    assert admin_api.get(url).get_json()["name"] == "Phone 101"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"permissions": ["Premium"]}, "permissions must be each one of internal, local"),
        ({"permissions": [""]}, "permissions must be each one of"),
        ({"permissions": "local"}, "permissions must be a list of strings"),
        ({"caller_id": 101}, "caller_id must be a string"),
    ],
)
def test_a_refused_permission_or_caller_id_is_a_json_400(
    admin_api: Api, box: Path, body: dict[str, Any], says: str
) -> None:
    before = dump(box)
    assert says in error(admin_api.open("PATCH", f"{API}/extensions/101", body), 400)
    assert dump(box) == before


def test_an_extension_calls_are_sent_to_is_not_deleted_and_the_answer_says_why(
    admin_api: Api, box: Path
) -> None:
    says = error(admin_api.open("DELETE", f"{API}/extensions/102"), 409)
    assert says == f"extension 102 is the destination of DID {DID}; change that first"
    db = open_db(box)
    settings.set_value(db, "dialplan.unknown_did", "extension:101")
    db.conn.close()
    says = error(admin_api.open("DELETE", f"{API}/extensions/101"), 409)
    assert "the setting dialplan.unknown_did" in says
    assert [row[0] for row in stored_extensions(box)] == ["101", "102"]


# --- call records ---------------------------------------------------------------------------


def ids(response: TestResponse) -> tuple[int, list[str]]:
    """(total, ids of the records on this page) of a /cdrs answer."""
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return body["total"], [row["id"] for row in body["cdrs"]]


@pytest.mark.parametrize(
    ("query", "total", "page"),
    [
        ("", 5, ["c5", "c4", "c3", "c2", "c1"]),
        (f"since={T0 + 2000}", 4, ["c5", "c4", "c3", "c2"]),  # since: included
        (f"until={T0 + 3000}", 2, ["c2", "c1"]),  # until: excluded
        (f"since={T0 + 2000}&until={T0 + 4000}", 2, ["c3", "c2"]),
        (f"since={int(T0) + 1500}&until={int(T0) + 2500}", 1, ["c2"]),
        ("extension=101", 3, ["c4", "c3", "c1"]),  # caller, dialled or answered by
        ("extension=600", 1, ["c4"]),
        ("extension=199", 0, []),
        ("disposition=answered", 2, ["c4", "c1"]),
        ("disposition=cancelled", 0, []),
        ("extension=101&disposition=answered", 2, ["c4", "c1"]),
        ("limit=2", 5, ["c5", "c4"]),
        ("limit=2&offset=2", 5, ["c3", "c2"]),
        ("offset=4", 5, ["c1"]),
        ("offset=5", 5, []),
        ("limit=1&offset=1&extension=101", 3, ["c3"]),
        ("limit=1000&offset=0", 5, ["c5", "c4", "c3", "c2", "c1"]),
    ],
)
def test_call_records_are_filtered_newest_first(
    viewer_api: Api, query: str, total: int, page: list[str]
) -> None:
    assert ids(viewer_api.get(f"{API}/cdrs?{query}")) == (total, page)


def test_a_call_record_has_every_field_the_store_keeps(viewer_api: Api) -> None:
    (row,) = viewer_api.get(f"{API}/cdrs?disposition=answered&limit=1").get_json()["cdrs"]
    assert row == viewer_api.get(f"{API}/cdrs/c4").get_json()
    assert row == {
        "id": "c4",
        "started_at": T0 + 4000,
        "answered_at": T0 + 4005,
        "ended_at": T0 + 4065,
        "caller": "104",
        "caller_name": "Phone 104",
        "dialled": "600",
        "answered_by": "101",
        "disposition": "answered",
        "duration": 65.0,
        "billsec": 60.0,
        "hangup_side": "caller",
        "hangup_cause": "normal",
        "codec_caller": "PCMU",
        "codec_callee": "PCMU",
        "rtp_caller": {"packets_sent": 3000, "lost": 2},
        "rtp_callee": None,
        "direction": "internal",
        "trunk": None,
        "did": None,
        "did_label": None,
        "sent": None,
    }


def test_call_records_are_filtered_by_direction_and_trunk(viewer_api: Api, box: Path) -> None:
    db = open_db(box)
    inbound = cdr("in1", T0 + 6000, "+4915112345678", DID, "answered", answered_by="102")
    inbound.direction, inbound.trunk, inbound.did, inbound.did_label = (
        "inbound", "main", DID, "Main line",
    )  # fmt: skip
    outbound = cdr("out1", T0 + 7000, "101", "5550100", "answered", answered_by="5550100")
    outbound.direction, outbound.trunk, outbound.sent = "outbound", "main", "+12125550100"
    other = cdr("out2", T0 + 8000, "102", "5550101", "failed")
    other.direction, other.trunk = "outbound", "backup"
    cdrs.write(db, [inbound, outbound, other])
    db.conn.close()
    assert ids(viewer_api.get(f"{API}/cdrs?direction=inbound")) == (1, ["in1"])
    assert ids(viewer_api.get(f"{API}/cdrs?direction=outbound")) == (2, ["out2", "out1"])
    assert ids(viewer_api.get(f"{API}/cdrs?trunk=main")) == (2, ["out1", "in1"])
    assert ids(viewer_api.get(f"{API}/cdrs?trunk=main&direction=outbound")) == (1, ["out1"])
    assert ids(viewer_api.get(f"{API}/cdrs?direction=internal"))[0] == len(CALLS)
    row = viewer_api.get(f"{API}/cdrs/in1").get_json()
    assert (row["direction"], row["trunk"], row["did"], row["did_label"], row["sent"]) == (
        "inbound", "main", DID, "Main line", None,
    )  # fmt: skip
    assert viewer_api.get(f"{API}/cdrs/out1").get_json()["sent"] == "+12125550100"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("limit=0", "limit must be between 1 and 1000"),
        ("limit=1001", "limit must be between 1 and 1000"),
        ("limit=abc", "limit must be a whole number"),
        ("limit=2.5", "limit must be a whole number"),
        ("offset=-1", "offset must be between"),
        ("offset=x", "offset must be a whole number"),
        ("since=yesterday", "since must be a number"),
        ("since=-1", "since must be between"),
        ("since=nan", "since must be between"),
        ("until=inf", "until must be between"),
        ("disposition=bogus", "disposition must be one of"),
        ("disposition=", "disposition must be one of"),
        ("extension=abc", "extension must be 2 to 6 digits"),
        ("extension=1", "extension must be 2 to 6 digits"),
        ("direction=sideways", "direction must be one of internal, inbound, outbound"),
        ("trunk=Main Line", "trunk must be a trunk name"),
        ("caller=101", "unknown query parameters: caller"),
        ("limit=5&sort=asc", "unknown query parameters: sort"),
    ],
)
def test_an_invalid_call_record_filter_is_a_json_400(
    viewer_api: Api, query: str, says: str
) -> None:
    assert says in error(viewer_api.get(f"{API}/cdrs?{query}"), 400)


# --- registrations and live calls without a core ---------------------------------------------


def test_registrations_come_from_the_store_when_no_core_is_running(
    viewer_api: Api, box: Path
) -> None:
    now = time.time()
    register(box, binding("101", now + 300), binding("102", now - 1))  # 102's has expired
    rows = viewer_api.get(f"{API}/registrations").get_json()["registrations"]
    assert len(rows) == 1
    (row,) = rows
    assert row["aor"] == "101" and row["contact"] == "<sip:101@127.0.0.1:5062>"
    assert row["source"] == "127.0.0.1:5062" and row["transport"] == "udp"
    assert row["user_agent"] == "TestPhone 1.0"
    assert 290 <= row["expires_in"] <= 300
    listed = viewer_api.get(f"{API}/extensions").get_json()["extensions"]
    assert listed == [extension("101", "Phone 101", 1), extension("102", "Phone 102")]


def test_live_calls_are_empty_and_the_core_stopped_when_no_core_is_running(
    viewer_api: Api,
) -> None:
    response = viewer_api.get(f"{API}/calls")
    assert response.status_code == 200
    assert response.get_json() == {"core": "stopped", "calls": []}


# --- the OpenAPI document -------------------------------------------------------------------


def openapi_document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get(f"{API}/openapi.json")  # public: no token
    assert response.status_code == 200 and response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def shape(path: str) -> str:
    """A path template with its parameter names left out: /extensions/{}."""
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_openapi_document_is_public_and_names_this_server(app: Flask, box: Path) -> None:
    document = openapi_document(app)
    assert document["openapi"].startswith("3.")
    assert document["servers"] == [{"url": f"http://localhost{API}"}]
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
    }


def test_the_openapi_document_describes_every_api_route_and_nothing_else(
    app: Flask, box: Path
) -> None:
    document = openapi_document(app)
    implemented: dict[str, set[str]] = {}
    for method, rule, _ in api_routes(app):
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.removeprefix(API))
        implemented.setdefault(path, set()).add(method.lower())
    described: dict[str, set[str]] = {
        path: set(item) - {"parameters", "summary", "description"}
        for path, item in document["paths"].items()
    }
    # Parameter names may differ (the document's /cdrs/{id} is the view's <call_id>): compare
    # the URL shapes, which is what a client sends.
    assert {shape(p): m for p, m in described.items()} == {
        shape(p): m for p, m in implemented.items()
    }
    assert len(described) == len(implemented)


def test_every_documented_operation_documents_its_refusals(app: Flask, box: Path) -> None:
    document = openapi_document(app)
    paths = document["paths"]
    levels: dict[tuple[str, str], str] = {}
    with app.test_request_context():
        for method, rule, endpoint in api_routes(app):
            path = shape(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.removeprefix(API)))
            levels[(path, method.lower())] = view_access(endpoint)
    for path, item in paths.items():
        declared = {
            p["name"] for p in item.get("parameters", []) if p["in"] == "path" and p["required"]
        }
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), path
        for method, operation in item.items():
            if method == "parameters":
                continue
            responses = operation["responses"]
            where = f"{method.upper()} {path}"
            error_ref = {"$ref": "#/components/schemas/Error"}
            assert responses["401"]["content"]["application/json"]["schema"] == error_ref, where
            if levels[(shape(path), method)] == "admin":
                assert "403" in responses, where
            else:
                assert "403" not in responses, where
            if "requestBody" in operation or any(
                p["in"] == "query" for p in operation.get("parameters", [])
            ):
                assert "400" in responses, where
            if "{" in path:
                assert "404" in responses, where
            for code, answer in responses.items():
                if code.startswith(("4", "5")):
                    assert answer["content"]["application/json"]["schema"] == error_ref, where


# --- schemathesis against a real `pbx web` ---------------------------------------------------

SCHEMATHESIS_CONFIG = """\
# Every check schemathesis has (what `--checks all` selects; on the command line --checks
# would override the exception below, so they are enabled here instead).
checks.enabled = true

# Except one check on the operations that create or change rows: positive_data_acceptance
# expects every body that fits the schema to be accepted, but the store refuses, with a
# documented 400, what OpenAPI 3.0 cannot express: passwords that contain the extension number
# (a rule across two fields), passwords without both letters and digits, names with quotes or
# unprintable characters (Python's str.isprintable, which no schema regex reproduces); a
# trunk's server that is not a host name, codecs it does not know, a keep-alive of 1 to 9 s;
# a DID that is not a number of the office's country, or whose destination, trunk or caller ID
# does not exist; dial patterns that do not parse, a trunk named in a route that does not
# exist, a position beyond the list (rules over other rows); a menu's or an announcement's
# destination or prompt that does not exist, a prompt file that is not audio (sox decides), a
# recording rule's value that names no extension, DID or route. The check stays on for every
# other operation.
[[operations]]
include-operation-id = [
    "createExtension", "updateExtension", "newExtensionPassword", "createTrunk", "updateTrunk",
    "createDid", "updateDid", "createRoute", "updateRoute", "moveRoute", "setMailbox",
    "createMenu", "replaceMenu", "createAnnouncement", "replaceAnnouncement", "createPrompt",
    "createRecordingRule",
]
checks.positive_data_acceptance.enabled = false
"""


@pytest.fixture
def web(web_factory: type[WebProcess], tmp_path: Path) -> Iterator[WebProcess]:
    """A real `pbx web` over an installed box whose numbering range is every number the
    schema allows but 00-09 (10-999999), so generated extensions are mostly created."""
    data = tmp_path / "var"
    prepare(data)
    db = open_db(data)
    settings.set_value(db, "ext.number_min", "10")
    settings.set_value(db, "ext.number_max", "999999")
    db.conn.close()
    add_extensions(data, "101", "102", "150")  # 101: the schema's example number
    add_lines(data)  # main, +493012345678 and local: the schema's examples too
    write_calls(data)
    server = web_factory(data=data)
    server.start()
    yield server


def schemathesis(
    url: str, token: str, workdir: Path, examples: int
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run the schemathesis CLI against `url`; return the run and the HAR entries it sent."""
    assert SCHEMATHESIS.exists(), SCHEMATHESIS
    workdir.mkdir()
    config = workdir / "schemathesis.toml"
    config.write_text(SCHEMATHESIS_CONFIG)
    har = workdir / "requests.har"
    argv = [
        str(SCHEMATHESIS), "--config-file", str(config), "run", f"{url}{API}/openapi.json",
        "--header", f"Authorization: Bearer {token}",
        "--max-examples", str(examples), "--seed", "20240601", "--workers", "1",
        "--generation-database", "none", "--request-timeout", "10", "--no-color",
        "--report", "har", "--report-har-path", str(har), "--output-sanitize", "false",
    ]  # fmt: skip
    run = subprocess.run(
        argv, check=False, cwd=workdir, capture_output=True, text=True, timeout=120
    )
    entries = json.loads(har.read_text())["log"]["entries"] if har.exists() else []
    return run, entries


def report(run: subprocess.CompletedProcess[str]) -> str:
    return f"schemathesis exited {run.returncode}:\n{run.stdout}\n{run.stderr}"


def sent(entry: dict[str, Any]) -> tuple[str, str, str, int]:
    """(method, path under /api/v1, Authorization header, status) of one HAR entry."""
    request = entry["request"]
    path = request["url"].split(API, 1)[1].split("?", 1)[0]
    auth = [h["value"] for h in request["headers"] if h["name"].lower() == "authorization"]
    return request["method"], path, auth[0] if auth else "", entry["response"]["status"]


def documented_writes(document: dict[str, Any]) -> list[tuple[str, re.Pattern[str]]]:
    """(method, path regex) of every POST, PATCH and DELETE operation in an OpenAPI document."""
    found = []
    for path, item in document["paths"].items():
        pieces = re.split(r"\{[^}]+\}", path)  # the text between the path parameters
        pattern = re.compile("[^/]+".join(map(re.escape, pieces)))
        found += [(m.upper(), pattern) for m in item if m.upper() in WRITE_METHODS]
    return found


def test_schemathesis_finds_nothing_wrong_with_an_admin_token(
    web: WebProcess, tmp_path: Path
) -> None:
    token = make_token(web.data, "admin")
    run, entries = schemathesis(web.url, token, tmp_path / "admin", examples=15)
    answers = [sent(e) for e in entries]
    assert all(status < 500 for *_, status in answers), report(run)
    leaked = [e["request"]["url"] for e in entries if TRUNK_PASSWORD in json.dumps(e["response"])]
    assert leaked == []  # the trunk's password is in no answer, whatever was asked
    # The run reached the API's logic, not only its refusals: it created and deleted.
    assert ("POST", "/extensions", f"Bearer {token}", 201) in answers, report(run)
    assert any(m == "DELETE" and s == 204 for m, _, _, s in answers), report(run)
    assert run.returncode == 0, report(run)  # last: every check schemathesis made passed


def test_schemathesis_with_a_viewer_token_gets_documented_403s_and_changes_nothing(
    web: WebProcess, tmp_path: Path
) -> None:
    token = make_token(web.data, "viewer")
    before = stored_extensions(web.data)
    run, entries = schemathesis(web.url, token, tmp_path / "viewer", examples=10)
    answers = [sent(e) for e in entries]
    with urllib.request.urlopen(f"{web.url}{API}/openapi.json", timeout=10) as response:
        operations = documented_writes(json.load(response))
    # The documented write operations sent with the viewer's token (not the requests with no or
    # a spoilt token, nor the undeclared methods schemathesis tries on every path): all 403.
    writes = [
        (method, path, status)
        for method, path, auth, status in answers
        if auth == f"Bearer {token}"
        and any(m == method and pattern.fullmatch(unquote(path)) for m, pattern in operations)
    ]
    assert len(writes) > 20, report(run)
    assert {method for method, *_ in writes} == set(WRITE_METHODS), writes
    refused = [write for write in writes if write[2] != 403]
    assert refused == [], refused
    assert any(m == "GET" and s == 200 for m, _, _, s in answers), report(run)
    assert stored_extensions(web.data) == before
    assert run.returncode == 0, report(run)  # last: every check schemathesis made passed
