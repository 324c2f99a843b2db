"""Fixtures for the setup page: the Flask app over a real SQLite file (test client), and a real
`pbx web` process for tests that need a server (browser, schemathesis)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from appliance.store import extensions, settings, users
from appliance.store.db import open_db
from appliance.web import create_app

ADMIN = ("admin", "Adm1n-Secret!")
VIEWER = ("viewer", "V1ewer-Secret!")
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
HIDDEN_CSRF_RE = re.compile(r'type="hidden" name="csrf_token" value="([^"]+)"')


def csrf_token(html: str) -> str:
    """The first CSRF token on a page (a form's hidden field)."""
    match = CSRF_RE.search(html) or HIDDEN_CSRF_RE.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def prepare(data: Path, *, setup_done: bool = True, viewer: bool = True) -> None:
    """An installed box: the admin (and a viewer), the wizard finished, range 100-199."""
    db = open_db(data)
    users.add_first_admin(db, *ADMIN)
    if viewer:
        users.add(db, *VIEWER, "viewer")
    settings.set_value(db, "ext.number_min", "100")
    settings.set_value(db, "ext.number_max", "199")
    if setup_done:
        settings.set_text(db, "web.setup_done", "1")
    db.conn.close()


class Pages:
    """A Flask test client that submits forms the way a browser does: with the CSRF token of
    the page the form is on."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def get(self, url: str) -> TestResponse:
        return self.client.get(url)

    def submit(self, page: str, data: dict[str, str], action: str | None = None) -> TestResponse:
        token = csrf_token(self.get(page).get_data(as_text=True))
        return self.client.post(action or page, data={"csrf_token": token, **data})

    def login(self, username: str, password: str) -> TestResponse:
        return self.submit("/login", {"username": username, "password": password})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def app(data: Path) -> Flask:
    application = create_app({"DATA_DIR": data, "TESTING": True})
    return application


@pytest.fixture
def pages(app: Flask) -> Pages:
    return Pages(app.test_client())


@pytest.fixture
def admin(app: Flask, data: Path) -> Pages:
    """Logged in as the admin of an installed box."""
    prepare(data)
    client = Pages(app.test_client())
    assert client.login(*ADMIN).status_code == 302
    return client


@pytest.fixture
def viewer(app: Flask, data: Path, admin: Pages) -> Pages:
    """Logged in as a viewer (the admin exists too)."""
    client = Pages(app.test_client())
    assert client.login(*VIEWER).status_code == 302
    return client


def add_extensions(data: Path, *numbers: str) -> dict[str, str]:
    db = open_db(data)
    try:
        return {number: extensions.add(db, number, f"Phone {number}") for number in numbers}
    finally:
        db.conn.close()
