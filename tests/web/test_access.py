"""Roles on every route: each view declares who may use it, a viewer is refused (403) on every
route that changes something, nobody is let in before logging in, and first boot asks for the
admin account before anything else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from appliance.store import dids, trunks
from appliance.store import routes as route_store
from appliance.store.db import open_db
from appliance.web.auth import ACCESS_LEVELS
from tests.web.conftest import Pages, add_extensions, csrf_token

SAMPLE_ARGS = {
    "number": "150", "username": "admin", "token_id": "1", "call_id": "x", "name": "main",
    "event_id": "1", "address": "192.0.2.7", "rule_id": "1", "recording_id": "1", "port": "1",
    "message_id": "1",
}  # fmt: skip


def routes(app: Flask, level: str) -> list[tuple[str, str]]:
    """(method, url) of every route whose view is declared `level`, path arguments filled."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint == "static" or getattr(view, "access", None) != level:
            continue
        url = re.sub(r"<(?:[^:>]+:)?(\w+)>", lambda m: SAMPLE_ARGS[m.group(1)], rule.rule)
        found += [(m, url) for m in sorted(rule.methods or ()) if m not in ("HEAD", "OPTIONS")]
    return found


def test_every_view_declares_who_may_use_it(app: Flask) -> None:
    undeclared = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        and getattr(app.view_functions[rule.endpoint], "access", None) not in ACCESS_LEVELS
    ]
    assert undeclared == []
    admin = {f"{method} {url}" for method, url in routes(app, "admin")}
    assert len(admin) >= 50  # the editing routes this file checks one by one
    # Testing a trunk or moving a route changes nothing stored, but sends SIP traffic or
    # changes the order calls go out by: admins only, like every POST.
    assert {"POST /trunks/main/test", "POST /routes/main/move", "POST /numbers/150/delete",
            "GET /trunks/new", "POST /api/v1/trunks/main/test"} <= admin  # fmt: skip


def test_a_viewer_gets_403_on_every_editing_route(app: Flask, viewer: Pages) -> None:
    token = csrf_token(viewer.get("/system").get_data(as_text=True))
    refused = {}
    for method, url in routes(app, "admin"):
        if url.startswith("/api/"):
            continue  # the API checks tokens, not sessions: tests/web/test_api.py
        response = viewer.client.open(url, method=method, data={"csrf_token": token})
        refused[f"{method} {url}"] = response.status_code
    assert refused and set(refused.values()) == {403}, refused


READ_PAGES = (
    "/", "/extensions/", "/trunks/", "/numbers/", "/routes/", "/calls", "/system",
    "/dashboard/state", "/calls/export.csv",
)  # fmt: skip


def test_a_viewer_reads_every_page(viewer: Pages) -> None:
    for url in READ_PAGES:
        assert viewer.get(url).status_code == 200, url
    page = viewer.get("/extensions/").get_data(as_text=True)
    assert "Add extension" not in page and "Delete" not in page


def test_a_viewer_sees_trunks_numbers_and_routes_without_a_button_that_changes_them(
    viewer: Pages, data: Path
) -> None:
    add_extensions(data, "150")
    db = open_db(data)
    trunks.add(db, "main", server="sip.example.net", username="office", password="Tr-Secret-77")
    dids.add(db, "+493012345678", "extension:150", "Main line", "main")
    route_store.add(db, "local", ["NXXXXXX"], ["main"])
    db.conn.close()
    for url, shown in (("/trunks/", "main"), ("/numbers/", "+493012345678"), ("/routes/", "local")):
        page = viewer.get(url).get_data(as_text=True)
        assert shown in page, url
        for word in (">Add ", ">Edit<", ">Delete<", ">Test<", "draggable", "data-move"):
            assert word not in page, (url, word)


def test_nobody_gets_in_without_logging_in(app: Flask, admin: Pages) -> None:
    anonymous = app.test_client()
    for level in ("viewer", "admin"):
        for method, url in routes(app, level):
            if url.startswith("/api/"):
                continue
            response = anonymous.open(url, method=method)
            if method == "GET":
                assert response.status_code == 302, url
                assert response.headers["Location"].startswith("/login"), url
            else:  # a POST without a session fails the CSRF check before anything else
                assert response.status_code in (302, 400), (method, url)


@pytest.mark.parametrize("url", ["/", "/extensions/", "/login", "/system", "/calls"])
def test_first_boot_asks_for_the_admin_account_first(pages: Pages, url: str) -> None:
    response = pages.get(url)
    assert response.status_code == 302
    assert response.headers["Location"] == "/setup/account"


@pytest.mark.parametrize(
    ("target", "landing"),
    [
        ("/extensions/", "/extensions/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("https://evil.example/", "/"),
    ],
)
def test_after_login_only_a_page_of_this_box_is_followed(
    app: Flask, admin: Pages, target: str, landing: str
) -> None:
    client = Pages(app.test_client())
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.client.post(
        "/login", query_string={"next": target},
        data={"csrf_token": token, "username": "admin", "password": "Adm1n-Secret!"},
    )  # fmt: skip
    assert response.status_code == 302
    assert response.headers["Location"] == landing


def test_a_cookie_copied_before_logout_is_no_good_after_it(app: Flask, admin: Pages) -> None:
    copied = admin.client.get_cookie("pbx_session")
    assert copied is not None
    token = csrf_token(admin.get("/").get_data(as_text=True))
    assert admin.client.post("/logout", data={"csrf_token": token}).status_code == 302
    thief = app.test_client()
    thief.set_cookie("pbx_session", copied.value)
    assert thief.get("/").headers["Location"].startswith("/login")


def test_a_login_with_another_account_does_not_reset_the_failure_count(
    app: Flask, viewer: Pages
) -> None:
    """A viewer's own good logins between guesses at the admin's password change nothing."""
    guesser = Pages(app.test_client())
    statuses = []
    for _round in range(2):
        for attempt in range(3):
            statuses.append(guesser.login("admin", f"guess-{attempt}").status_code)
        statuses.append(guesser.login("viewer", "V1ewer-Secret!").status_code)
    # The fifth failure locks the address; the viewer's good login in between reset nothing,
    # and once locked nobody logs in from there, the viewer included.
    assert statuses == [401, 401, 401, 302, 401, 429, 429, 429], statuses


@pytest.mark.parametrize(
    "url",
    [
        "/calls?page=99999999999999999999",
        "/calls?until=9999-12-31",
        "/calls/export.csv?until=9999-12-31",
    ],
)
def test_out_of_range_filters_give_a_page_not_an_error(viewer: Pages, url: str) -> None:
    response = viewer.get(url)
    if url.startswith("/calls/export"):
        assert response.status_code == 302 and response.headers["Location"].startswith("/calls?")
        response = viewer.get(response.headers["Location"])
    assert response.status_code == 200
    if "until" in url:
        assert "This date is out of range." in response.get_data(as_text=True)


def test_guesses_at_the_current_password_lock_out_like_logins(viewer: Pages) -> None:
    for attempt in range(5):
        viewer.submit(
            "/system", {"pw-current": f"guess-{attempt}", "pw-password": "N3w-Secret-Pass",
                        "pw-confirm": "N3w-Secret-Pass"}, "/system/password",
        )  # fmt: skip
    page = viewer.submit(
        "/system", {"pw-current": "V1ewer-Secret!", "pw-password": "N3w-Secret-Pass",
                    "pw-confirm": "N3w-Secret-Pass"}, "/system/password",
    )  # fmt: skip
    assert "Too many wrong passwords" in page.get_data(as_text=True)
    assert viewer.login("viewer", "V1ewer-Secret!").status_code == 429  # same source, locked
