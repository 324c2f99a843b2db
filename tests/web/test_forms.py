"""Every form field is explained: each field of every form in appliance.web.forms has a label
and a help text, and every visible input, select and textarea on every page has a
<label for=...> and an aria-describedby pointing at an element with text."""

from __future__ import annotations

import inspect
from html.parser import HTMLParser
from pathlib import Path

from flask import Flask
from flask_wtf import FlaskForm
from werkzeug.test import TestResponse

from appliance.store import dids, routes, trunks
from appliance.store.db import open_db
from appliance.web import create_app, forms
from tests.web.conftest import Pages, add_extensions

VOID = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
                  "source", "track", "wbr"})  # fmt: skip
CONTROLS = frozenset({"input", "select", "textarea"})
NOT_LABELLED = frozenset({"hidden", "submit", "button", "reset", "image"})
"""Input types that are not fields a person fills in (buttons carry their own text)."""


def form_classes() -> list[type[FlaskForm]]:
    """Every form defined in appliance.web.forms."""
    return [
        cls
        for _, cls in inspect.getmembers(forms, inspect.isclass)
        if issubclass(cls, FlaskForm) and cls is not FlaskForm and cls.__module__ == forms.__name__
    ]


def test_every_form_field_has_a_label_and_a_help_text(app: Flask) -> None:
    classes = form_classes()
    names = {cls.__name__ for cls in classes}
    assert {"AccountForm", "LoginForm", "ExtensionForm", "UserForm", "RestoreForm", "TrunkForm",
            "NewTrunkForm", "NewDidForm", "RouteForm", "ExtensionEditForm"} <= names  # fmt: skip
    missing = []
    fields = 0
    with app.test_request_context():
        for cls in classes:
            for field in cls():
                if field.name == "csrf_token":
                    continue
                fields += 1
                if not str(field.label.text).strip():
                    missing.append(f"{cls.__name__}.{field.name}: no label")
                if not str(field.description or "").strip():
                    missing.append(f"{cls.__name__}.{field.name}: no help text")
    assert fields >= 60  # the forms were really looked at
    assert missing == []


class Controls(HTMLParser):
    """A page's form controls, its <label for> targets and the text of every element by id."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.controls: list[dict[str, str]] = []
        self.label_for: set[str] = set()
        self.text_of: dict[str, str] = {}
        self._open: list[tuple[str, str | None]] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        ident = attributes.get("id")
        if ident is not None:
            assert ident not in self.text_of, f"id {ident} twice on the page"
            self.text_of[ident] = ""
        if tag == "label" and "for" in attributes:
            self.label_for.add(attributes["for"])
        if tag in CONTROLS and attributes.get("type", "text") not in NOT_LABELLED:
            self.controls.append({"tag": tag, **attributes})
        if tag not in VOID:
            self._open.append((tag, ident))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._open) - 1, -1, -1):
            if self._open[i][0] == tag:
                del self._open[i:]
                return

    def handle_data(self, data: str) -> None:
        for _, ident in self._open:
            if ident is not None:
                self.text_of[ident] += data


def unexplained(html: str) -> list[str]:
    """What is wrong with the page's visible fields ([] when each is labelled and described)."""
    page = Controls(html)
    problems = []
    for control in page.controls:
        name = f"<{control['tag']} name={control.get('name')!r}>"
        ident = control.get("id", "")
        if not ident or ident not in page.label_for:
            problems.append(f"{name} has no <label for>")
        described = control.get("aria-describedby", "").split()
        if not described:
            problems.append(f"{name} has no aria-describedby")
        for target in described:
            if not page.text_of.get(target, "").strip():
                problems.append(f"{name} is described by {target!r}, which has no text")
    return problems


def test_every_visible_field_on_every_page_has_a_label_and_a_description(
    app: Flask, admin: Pages, data: Path, tmp_path: Path
) -> None:
    add_extensions(data, "150")
    db = open_db(data)
    trunks.add(db, "main", server="sip.example.net", username="u", password="Tr-Secret-77")
    dids.add(db, "+493012345678", "extension:150", "Main line", "main")
    routes.add(db, "local", ["NXXXXXX"], ["main"])
    db.conn.close()
    responses: dict[str, TestResponse] = {
        url: admin.get(url)
        for url in ("/", "/extensions/", "/extensions/new", "/extensions/150/edit", "/calls",
                    "/system", "/setup/office", "/setup/extensions", "/trunks/", "/trunks/new",
                    "/trunks/main/edit", "/numbers/", "/numbers/new",
                    "/numbers/+493012345678/edit", "/routes/", "/routes/new",
                    "/routes/local/edit")
    }  # fmt: skip
    responses["/login (anonymous)"] = app.test_client().get("/login")
    # A rejected form shows its errors, which aria-describedby must reach too.
    responses["/extensions/new (refused)"] = admin.submit(
        "/extensions/new", {"number": "999", "name": "x", "password": "short"}
    )
    responses["/extensions/150/edit (refused)"] = admin.submit(
        "/extensions/150/edit", {"name": 'x"y', "permissions": "local", "caller_id": ""}
    )
    responses["/trunks/new (refused)"] = admin.submit(
        "/trunks/new", {"name": "b", "kind": "register", "server": "x.example",
                        "transport": "udp", "max_calls": "many"},
    )  # fmt: skip
    responses["/numbers/new (refused)"] = admin.submit(
        "/numbers/new", {"number": "150", "destination": "hangup:busy", "trunk": ""}
    )
    responses["/routes/new (refused)"] = admin.submit(
        "/routes/new", {"name": "x", "patterns": "0Q", "trunks-0": "", "caller_id": ""}
    )
    first_boot = create_app({"DATA_DIR": tmp_path / "fresh", "TESTING": True}).test_client()
    responses["/setup/account (first boot)"] = first_boot.get("/setup/account")

    problems = {}
    counted = 0
    for url, response in responses.items():
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        counted += len(Controls(html).controls)
        if found := unexplained(html):
            problems[url] = found
    assert counted >= 120  # the pages' fields were really found
    assert "number-error" in responses["/extensions/new (refused)"].get_data(as_text=True)
    for url, field in (("/extensions/150/edit", "name"), ("/trunks/new", "max_calls"),
                       ("/numbers/new", "number"), ("/routes/new", "patterns")):  # fmt: skip
        assert f'id="{field}-error"' in responses[f"{url} (refused)"].get_data(as_text=True), url
    assert problems == {}
