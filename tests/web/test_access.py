"""Roles on every route: each view declares who may use it, a viewer is refused (403) on every
route that changes something, nobody is let in before logging in, and first boot asks for the
admin account before anything else."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from appliance.web.auth import ACCESS_LEVELS
from tests.web.conftest import Pages, csrf_token

SAMPLE_ARGS = {"number": "150", "username": "admin", "token_id": "1", "call_id": "x"}


def routes(app: Flask, level: str) -> list[tuple[str, str]]:
    """(method, url) of every route whose view is declared `level`, path arguments filled."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if rule.endpoint == "static" or getattr(view, "access", None) != level:
            continue
        url = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: SAMPLE_ARGS[m.group(1)], rule.rule)
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
    assert len(routes(app, "admin")) >= 15  # the editing routes this file checks one by one


def test_a_viewer_gets_403_on_every_editing_route(app: Flask, viewer: Pages) -> None:
    token = csrf_token(viewer.get("/system").get_data(as_text=True))
    refused = {}
    for method, url in routes(app, "admin"):
        if url.startswith("/api/"):
            continue  # the API checks tokens, not sessions: tests/web/test_api.py
        response = viewer.client.open(url, method=method, data={"csrf_token": token})
        refused[f"{method} {url}"] = response.status_code
    assert refused and set(refused.values()) == {403}, refused


def test_a_viewer_reads_every_page(viewer: Pages) -> None:
    for url in ("/", "/extensions/", "/calls", "/system", "/dashboard/state", "/calls/export.csv"):
        assert viewer.get(url).status_code == 200, url
    page = viewer.get("/extensions/").get_data(as_text=True)
    assert "Add extension" not in page and "Delete" not in page


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
