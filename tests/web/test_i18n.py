"""The setup page in Russian and English (Flask-Babel), against a real SQLite data directory:

- the catalogue is complete and current (`appliance.web.catalog.problems()`);
- no user-visible string in the web code escapes translation (an AST scan of appliance/web);
- every page (each GET route of the app, filled with real objects, and the error, refusal and
  first-boot pages) rendered in Russian shows no Latin word outside the allowed list, and in
  English no Cyrillic (outside the data the test put there and the language switch);
- Russian plural forms for phones, calls and minutes, and the dashboard's real count;
- which language a request gets: the browser's Accept-Language until the user chooses, then the
  user's own choice (kept with the user, across logins and browsers); the REST API stays
  English;
- dates, times and numbers in the locale's format; the phone sheet in the office's language.

Tests that need Russian translations fail until the catalogue has them (their messages say
what is missing)."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date
from flask import Flask
from flask_babel import force_locale, ngettext
from werkzeug.test import TestResponse

from appliance.store import (
    cdrs,
    dids,
    extensions,
    menus,
    ports,
    prompts,
    recordings,
    registrations,
    routes,
    settings,
    tokens,
    users,
    voicemail,
)
from appliance.store.cdrs import Cdr
from appliance.store.database import Database
from appliance.store.db import open_db
from appliance.store.registrations import Registration
from appliance.store.trunks import add as add_trunk
from appliance.web import catalog, create_app
from tests.web.conftest import Pages
from tests.web.i18n_text import (
    CYRILLIC,
    latin_words,
    page_language,
    report,
    untranslated,
    visible_text,
)

WEB = Path(catalog.__file__).resolve().parent

# --- the box: an office whose data is digits and Cyrillic where the forms allow -------------

ADMIN = ("ivan", "Reception-Desk-2026!")
VIEWER = ("olga", "Accounts-Book-2026!")
OFFICE = "Стоматология «Улыбка»"
ZONE = ZoneInfo("Europe/Moscow")
TRUNK, ROUTE, DID = "77", "8", "+74951234567"
NAMES = {"150": "Приёмная", "151": "Бухгалтерия"}
DID_LABEL, TOKEN_NAME, NEW_NAME = "Главный", "Интеграция", "Склад"
DATA = (*ADMIN[:1], *VIEWER[:1], OFFICE, *NAMES.values(), DID_LABEL, TOKEN_NAME, NEW_NAME)
"""What the test puts on the pages: neither untranslated English nor stray Russian."""

CALL_STARTED = datetime(2024, 3, 10, 23, 30, tzinfo=ZONE)


def binding(aor: str) -> Registration:
    return Registration(
        aor=aor, contact_key=f"sip:{aor}@192.0.2.10:5062", contact=f"<sip:{aor}@192.0.2.10:5062>",
        expires_at=datetime.now().timestamp() + 3600, call_id=f"reg-{aor}", cseq=1, q=None,
        transport="udp", source="192.0.2.10:5062", user_agent="",
        registered_at=datetime.now().timestamp(),
    )  # fmt: skip


def install(data: Path) -> None:
    """An installed office: an admin and a viewer, the wizard done, two extensions (both
    registered, as stored: the core is not running), a trunk, a DID, a route, a call record
    and an API token."""
    db = open_db(data)
    try:
        users.add_first_admin(db, *ADMIN)
        users.add(db, *VIEWER, "viewer")
        for key, value in (
            ("ext.number_min", "100"), ("ext.number_max", "199"), ("office.name", OFFICE),
            ("office.country", "RU"), ("office.timezone", ZONE.key),
        ):  # fmt: skip
            settings.set_value(db, key, value)
        settings.set_text(db, "web.setup_done", "1")
        for number, name in NAMES.items():
            extensions.add(db, number, name)
        add_trunk(db, TRUNK, kind="ip", server="203.0.113.5:5080", max_calls=4)
        dids.add(db, DID, "extension:150", label=DID_LABEL, trunk=TRUNK)
        routes.add(db, ROUTE, ["8XXXXXXXXXX"], [TRUNK], caller_id=DID)
        started = CALL_STARTED.timestamp()
        cdrs.write(db, [Cdr(
            id="1", started_at=started, answered_at=started + 5, ended_at=started + 125,
            caller="150", caller_name=NAMES["150"], dialled="151", answered_by="151",
            disposition="answered", hangup_side="caller", hangup_cause="normal",
            codec_caller="PCMA", codec_callee="PCMA",
        )])  # fmt: skip
        tokens.create(db, TOKEN_NAME, "viewer")
        registrations.write(db, [binding("150"), binding("151")], [])
        add_media(db, data, started)
    finally:
        db.conn.close()


MEDIA = "7"
"""The name of the menu, the announcement and the prompt `add_media` makes (a name is shown as
typed: digits are in every language)."""
PREVIEW = "0123456789abcdef0123456789abcdef"
"""The token of the prompt preview `add_media` leaves, as a synthesis would."""


def add_media(db: Database, data: Path, started: float) -> None:
    """Menu and announcement main, prompt main, the call's recording, mailbox 150 with one
    message: the objects of the media pages."""
    menus.save_menu(db, menus.Menu(MEDIA, "Главное", "sound:hello-world"), create=True)
    menus.save_announcement(db, menus.Announcement(MEDIA, "Закрыто", "sound:vm-goodbye"),
                            create=True)  # fmt: skip
    wav = data / "prompts" / "main.wav"
    wav.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(wav), "synth", "0.5",
                    "sine", "440"], check=True)  # fmt: skip
    prompts.add(db, MEDIA, "ru", "upload", "", "prompts/main.wav", 0.5)
    (data / "prompts" / "preview").mkdir()
    (data / "prompts" / "preview" / f"{PREVIEW}.wav").write_bytes(wav.read_bytes())
    for path in (recordings.relative_path("1", started, 1),
                 voicemail.message_path("150", started, "151")):  # fmt: skip
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        (data / path).write_bytes(b"OggS")
    recordings.add(db, "1", recordings.relative_path("1", started, 1), started, 120.0, 4)
    voicemail.set_mailbox(db, "150")
    voicemail.add_message(db, "150", path=voicemail.message_path("150", started, "151"),
                          started_at=started, seconds=1.0, caller="151")  # fmt: skip
    ports.set_port(db, 1, "fxs", extension="151", password="Secret-151")
    ports.set_port(db, 3, "fxo", trunk=TRUNK)


@pytest.fixture
def office(app: Flask, data: Path) -> Flask:
    install(data)
    return app


def browser(app: Flask, accept_language: str | None = None) -> Pages:
    """A new browser (its own cookies) sending `accept_language` with every request."""
    client = app.test_client()
    if accept_language:
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = accept_language
    return Pages(client)


def logged_in(app: Flask, who: tuple[str, str], accept_language: str | None = None) -> Pages:
    client = browser(app, accept_language)
    response = client.login(*who)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def html(response: TestResponse) -> str:
    return response.get_data(as_text=True)


def text(response: TestResponse) -> str:
    """The page's visible text, one space between pieces."""
    return " ".join(chunk.text for chunk in visible_text(html(response)))


def choose(client: Pages, language: str, page: str = "/login") -> TestResponse:
    """Press the language switch on `page`."""
    return client.submit(page, {"language": language, "next": page}, action="/language")


ACCEPT = {"ru": "ru-RU,ru;q=0.9,en;q=0.5", "en": "en-US,en;q=0.9"}


# --- the catalogue ---------------------------------------------------------------------------


def test_the_catalogue_is_complete_and_current() -> None:
    found = catalog.problems()
    if found:
        pytest.fail(
            f"{len(found)} problems in the message catalogue (fix them with"
            " `.venv/bin/python -m appliance.web.catalog update`, then translate):\n"
            + "\n".join(found), pytrace=False,
        )  # fmt: skip


# --- no unmarked strings in the Python code of the page --------------------------------------

SCANNED = sorted(p for p in WEB.glob("*.py") if p.name not in ("api.py", "openapi.py",
                                                              "catalog.py"))  # fmt: skip
"""The page's Python modules; the REST API and its document stay English (an interface)."""

SINKS = {"flash": 0, "reject": 1, "refuse": 2, "abort": 1, "ValidationError": 0,
         "StopValidation": 0}  # fmt: skip
"""Calls that show their argument (at that position) to a person. Functions that pass one of
their parameters on to one of these are found and added (`corectl.applied`...)."""

VALIDATOR_MESSAGES = {"DataRequired": 0, "InputRequired": 0, "Optional": None, "EqualTo": 1,
                      "NumberRange": 2, "Length": 2, "Regexp": 2, "Email": 0, "URL": 1,
                      "AnyOf": 1, "NoneOf": 1, "FileRequired": 0, "FileAllowed": 1,
                      "FileSize": 2, "IPAddress": 2, "MacAddress": 0, "UUID": 0}  # fmt: skip
"""wtforms validators and the position of their message."""

GETTEXT = {"_": (0,), "_l": (0,), "ngettext": (0, 1), "lazy_ngettext": (0, 1)}
"""How the page's code marks a message; its id must be a literal for extraction to see it
(`appliance.web.i18n.translate` looks up ids it is given with `gettext`: not checked)."""


def name_of(call: ast.Call) -> str:
    func = call.func
    return func.id if isinstance(func, ast.Name) else (
        func.attr if isinstance(func, ast.Attribute) else ""
    )  # fmt: skip


def argument(call: ast.Call, position: int | None, keyword: str) -> ast.expr | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if position is not None and position < len(call.args):
        arg = call.args[position]
        return None if isinstance(arg, ast.Starred) else arg
    return None


def says_english(text: str) -> bool:
    """Text a person would read as English (not only allowed words, digits and signs)."""
    return bool(latin_words(text))


def unmarked(node: ast.expr | None) -> str | None:
    """Why the message `node` reaches a person untranslated, or None when it does not: a
    literal, an f-string, a literal formatted or joined, `str()` of something (use
    `translate()`: it says a store's message in the page's language, anything else as str()
    does)."""
    if node is None:
        return None
    if isinstance(node, ast.Constant):
        if isinstance(node.value, str) and says_english(node.value):
            return "a literal"
        return None
    if isinstance(node, ast.JoinedStr):
        literal = "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
        return "an f-string" if says_english(literal) else None
    if isinstance(node, ast.BinOp):
        return unmarked(node.left) or unmarked(node.right)
    if isinstance(node, ast.IfExp):
        return unmarked(node.body) or unmarked(node.orelse)
    if isinstance(node, ast.Call):
        if name_of(node) == "str":
            return "str() of something (say translate(...))"
        if name_of(node) == "format" and isinstance(node.func, ast.Attribute):
            return unmarked(node.func.value)
        if name_of(node) == "join" and isinstance(node.func, ast.Attribute):
            return unmarked(node.func.value) or next(
                filter(None, (unmarked(a) for a in node.args)), None
            )
    return None


@dataclass
class Finding:
    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(WEB.parents[1])}:{self.line}: {self.what}"


def trees() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), str(path)) for path in SCANNED}


def calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def sinks(modules: dict[Path, ast.Module]) -> dict[str, int]:
    """SINKS, and every function of these modules that passes a parameter on to one (at the
    sink's position), with that parameter's position; repeated until nothing is added."""
    found = dict(SINKS)
    functions = [
        node for tree in modules.values() for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    ]  # fmt: skip
    while True:
        added = False
        for function in functions:
            params = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
            for call in calls(function):
                position = found.get(name_of(call))
                if position is None or function.name in found:
                    continue
                arg = argument(call, position, "message")
                if isinstance(arg, ast.Name) and arg.id in params:
                    found[function.name] = params.index(arg.id) - (params[:1] == ["self"])
                    added = True
        if not added:
            return found


def wtforms_names(tree: ast.Module) -> set[str]:
    """The wtforms (and Flask-WTF) field classes this module imports."""
    return {
        alias.asname or alias.name
        for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        and (node.module or "").split(".")[0] in ("wtforms", "flask_wtf")
        for alias in node.names
        if alias.name.endswith("Field") or alias.name == "FieldList"
    }  # fmt: skip


def label_position(name: str) -> int:
    return 1 if name in ("FieldList", "FormField") else 0  # (after the field they hold)


def shown_parts(
    call: ast.Call, fields: set[str], shown: dict[str, int]
) -> Iterator[tuple[ast.expr | None, str]]:
    """The arguments of `call` that a person reads, each with what it is."""
    name = name_of(call)
    if name in shown:
        keyword = "description" if name == "abort" else "message"
        yield argument(call, shown[name], keyword), f"the message of {name}()"
    if name in VALIDATOR_MESSAGES:
        yield argument(call, VALIDATOR_MESSAGES[name], "message"), f"the message of {name}()"
    if name in fields:
        yield argument(call, label_position(name), "label"), f"the label of {name}()"
        yield argument(call, None, "description"), f"the description of {name}()"
        kw = argument(call, None, "render_kw")
        if isinstance(kw, ast.Dict):
            for key, value in zip(kw.keys, kw.values, strict=True):
                if isinstance(key, ast.Constant) and key.value in ATTRIBUTES:
                    yield value, f"the {key.value} of {name}()"
    if name == "SelectChoice":
        yield argument(call, 1, "label"), "the label of a choice"
        yield argument(call, 2, "optgroup"), "the group of a choice"
    if name == "choices":
        yield argument(call, 1, "optgroup"), "the group of choices"
    if name == "choices" or name in fields:
        pairs = [*call.args[:1]] if name == "choices" else []
        pairs += [kw.value for kw in call.keywords if kw.arg == "choices"]
        for node in pairs:
            for pair in ast.walk(node):
                if isinstance(pair, ast.Tuple) and len(pair.elts) == 2:
                    yield pair.elts[1], "the label of a choice"


ATTRIBUTES = ("placeholder", "title", "aria-label")
"""The attributes of a field (`render_kw`) that a person reads."""


def literal(node: ast.expr | None) -> bool:
    return node is None or (isinstance(node, ast.Constant) and isinstance(node.value, str))


def scan(modules: dict[Path, ast.Module]) -> list[Finding]:
    """Every place in `modules` where a person is shown a string not marked for translation,
    and every message id extraction cannot read."""
    shown = sinks(modules)
    found: list[Finding] = []
    for path, tree in modules.items():
        fields = wtforms_names(tree)
        for call in calls(tree):
            name = name_of(call)
            if name in GETTEXT:
                if not all(literal(argument(call, p, "")) for p in GETTEXT[name]):
                    found.append(Finding(path, call.lineno, f"{name}() of something not a"
                                         " string literal: extraction cannot see it"))  # fmt: skip
                continue
            for node, what in shown_parts(call, fields, shown):
                why = unmarked(node)
                if why:
                    found.append(Finding(path, call.lineno, f"{what} is {why}"))
    return found


def test_no_string_shown_to_a_user_escapes_translation() -> None:
    modules = trees()
    assert {p.name for p in modules} >= {"auth.py", "forms.py", "setup.py", "system.py"}
    found = scan(modules)
    if found:
        pytest.fail(
            "strings shown to a user but not marked for translation (wrap them in _() in a"
            " view, _l() in a form, translate() for a store's message):\n"
            + "\n".join(map(str, found)), pytrace=False,
        )  # fmt: skip


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scan itself, on code that does each wrong thing once (and some right things)."""
    source = """
from flask import abort, flash
from wtforms import StringField, SelectField
from wtforms.validators import EqualTo, DataRequired
def say(message):
    flash(message)
def view(form, exc, n):
    flash("Saved.")
    flash(f"Extension {n} saved.")
    say("Said through a helper.")
    reject(form.x, "Wrong.")
    reject(form.x, str(exc))
    refuse(form, exc.field, "Taken " + n, "name")
    abort(404, f"There is no trunk {n}.")
    flash(_("Saved."))
    flash(_("Extension %(n)s saved.", n=n))
    reject(form.x, translate(exc))
    flash(message_for(n), "error")
    abort(403)
    flash(_(f"Extension {n}"))
    flash("SIP / UDP")
class F:
    a = StringField("Name", description="Who sits here.")
    b = StringField(_l("Name"), [EqualTo("a", "The passwords differ.")], description=_l("Who."))
    c = SelectField(_l("Kind"), choices=[("ip", "IP address"), ("udp", "UDP")])
    d = StringField(_l("Number"), [DataRequired()], description="")
"""
    tree = ast.parse(source)
    found = {(f.line, f.what.split(" is ")[0]) for f in scan({WEB / "example.py": tree})}
    expected = {
        (8, "the message of flash()"), (9, "the message of flash()"),
        (10, "the message of say()"), (11, "the message of reject()"),
        (12, "the message of reject()"), (13, "the message of refuse()"),
        (14, "the message of abort()"),
        (20, "_() of something not a string literal: extraction cannot see it"),
        (23, "the label of StringField()"), (23, "the description of StringField()"),
        (24, "the message of EqualTo()"), (25, "the label of a choice"),
    }  # fmt: skip
    assert found == expected


# --- every page in both languages ------------------------------------------------------------

ARGS = {
    ("extensions", "number"): "150", ("dids", "number"): DID, ("trunks", "name"): TRUNK,
    ("routes", "name"): ROUTE, ("menus", "name"): MEDIA, ("prompts", "name"): MEDIA,
    ("recordings", "recording_id"): 1, ("ports", "port"): 1, ("voicemail", "number"): "150",
    ("voicemail", "message_id"): "1", ("prompts.preview_audio", "name"): PREVIEW,
    ("menus.sound", "name"): "hello-world",
}  # fmt: skip
"""The objects `install` made, for the URL parameters of each blueprint's pages."""
QUERIES: dict[str, dict[str, object]] = {"voicemail.add": {"number": "151"}}
"""Query arguments a page needs (the mailbox picker's target: an extension without one)."""


def get_pages(app: Flask) -> dict[str, str]:
    """Every GET route of the page (not the API, not static files), its parameters filled:
    endpoint -> URL."""
    adapter = app.url_map.bind("localhost")
    found = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        if rule.endpoint.startswith("api.") or rule.rule.startswith("/api/"):
            continue
        values = dict(QUERIES.get(rule.endpoint, {}))
        for arg in sorted(rule.arguments):
            key = (rule.endpoint, arg)  # one page's own object, else its blueprint's
            key = key if key in ARGS else (rule.endpoint.split(".")[0], arg)
            assert key in ARGS, f"{rule.rule}: no object for <{arg}>; add one to ARGS"
            values[arg] = ARGS[key]
        found[rule.endpoint] = adapter.build(rule.endpoint, values)
    return found


def render_all(app: Flask, data: Path, language: str) -> dict[str, TestResponse]:
    """Every page in `language` (the browser's Accept-Language; the users chose none; the
    office's language the same): each GET route, then the error pages, forms refused, the
    phone sheet, login and logout, and first boot on a box of its own. Page name -> response."""
    db = open_db(data)
    settings.set_value(db, "office.language", language)  # (the phone sheet speaks it)
    db.conn.close()
    accept = ACCEPT[language]
    admin = logged_in(app, ADMIN, accept)
    viewer = logged_in(app, VIEWER, accept)
    shown: dict[str, TestResponse] = {}
    for endpoint, url in get_pages(app).items():
        response = admin.client.get(url, follow_redirects=True)
        assert response.status_code == 200, (url, response.status_code)
        if response.mimetype == "text/html":  # not the CSV export, not the JSON of the dashboard
            shown[f"{endpoint} GET {url}"] = response
    new = "160" if language == "ru" else "161"
    posts = {
        "404 GET /extensions/999/edit": admin.client.get("/extensions/999/edit"),
        "403 (a viewer) GET /extensions/new": viewer.client.get("/extensions/new"),
        "400 (no CSRF token) POST /extensions/new": admin.client.post(
            "/extensions/new", data={"number": new}),
        "extension refused: out of range": admin.submit("/extensions/new", {"number": "5"}),
        "extension refused: nothing typed": admin.submit("/extensions/new", {"number": ""}),
        "extension refused: taken": admin.submit("/extensions/new", {"number": "150"}),
        "number refused: an extension's": admin.submit(
            "/numbers/new", {"number": "150", "destination": "extension:151", "trunk": ""}),
        "trunk refused": admin.submit("/trunks/new", {
            "name": "78", "kind": "ip", "server": "#@!", "codecs": "PCMA,GSM",
            "max_calls": "-1", "expires": "5", "options_interval": "x", "did_from": "y"}),
        "route refused": admin.submit("/routes/new", {
            "name": "9", "patterns": "8ABC", "trunks-0": TRUNK, "prepend": "x"}),
        "office refused": admin.submit("/setup/office", {
            "office_name": OFFICE, "country": "RU", "timezone": ZONE.key,
            "number_min": "300", "number_max": "200"}),
        "user refused: weak password": admin.submit("/system", {
            "user-username": "pavel", "user-password": "weakpassword", "user-role": "viewer"},
            action="/system/users"),
        "password refused": viewer.submit("/system", {
            "pw-current": "wrong", "pw-password": "x", "pw-confirm": "y"},
            action="/system/password"),
        "extension added: its phone sheet": admin.submit(
            "/extensions/new", {"number": new, "name": NEW_NAME}),
    }  # fmt: skip
    shown.update(posts)
    stranger = browser(app, accept)
    shown["login refused"] = stranger.login(ADMIN[0], "Wrong-Password-1")
    assert viewer.submit("/system", {}, action="/logout").status_code == 302
    shown["logged out"] = viewer.client.get("/login")  # with the flash of logging out
    first = create_app({"DATA_DIR": data.parent / f"first-boot-{language}", "TESTING": True})
    newcomer = browser(first, accept)
    shown["first boot: the admin account"] = newcomer.client.get("/", follow_redirects=True)
    shown["first boot: the account refused"] = newcomer.submit(
        "/setup/account", {"username": "Admin!", "password": "short1A", "confirm": "other"}
    )
    return shown


EXPECTED_STATUS = {"404": 404, "403": 403, "400": 400, "login refused": 401}


@pytest.mark.parametrize("language", ["ru", "en"])
def test_every_page_is_in_the_language_of_the_request(
    office: Flask, data: Path, language: str
) -> None:
    shown = render_all(office, data, language)
    assert len(shown) >= 30 and {"dashboard.index GET /", "cdrs.index GET /calls",
                                 "system.index GET /system"} <= set(shown)  # fmt: skip
    wrong: dict[str, list[str]] = {}
    for page, response in shown.items():
        status = next((s for key, s in EXPECTED_STATUS.items() if page.startswith(key)), None)
        problems = []
        if status is not None and response.status_code != status:
            problems.append(f"status {response.status_code}, expected {status}")
        if "refused" in page and 'role="alert"' not in html(response):
            problems.append("no error shown: the refusal this page stands for did not happen")
        if page_language(html(response)) != language:
            problems.append(f'<html lang="{page_language(html(response))}">')
        problems += untranslated(html(response), language, DATA)
        wrong[page] = problems
    if any(wrong.values()):
        words = "untranslated words" if language == "ru" else "Cyrillic"
        pytest.fail(f"{words} on the {language} pages:\n{report(wrong)}", pytrace=False)


# --- plural forms ----------------------------------------------------------------------------

PLURALS = {
    ("%(num)d phone registered", "%(num)d phones registered"): ("телефон", "телефона", "телефонов"),
    ("%(num)d call now", "%(num)d calls now"): ("звонок", "звонка", "звонков"),
    ("%(num)d call in the last 24 hours", "%(num)d calls in the last 24 hours"): (
        "звонок", "звонка", "звонков"),
    ("%(num)d call", "%(num)d calls"): ("звонок", "звонка", "звонков"),  # the Calls page
    ("%(num)d minute of talk", "%(num)d minutes of talk"): ("минута", "минуты", "минут"),
}  # fmt: skip
"""The counted phrases of the dashboard (and the Calls page), and the Russian noun for 1 (21...),
2-4 (22...), 5-20 (11, 25...)."""

COUNTS = {1: 0, 2: 1, 5: 2, 11: 2, 21: 0, 22: 1, 25: 2}
"""Each count tried, and which of the three Russian forms it takes."""


def test_the_counted_phrases_are_in_the_catalogue() -> None:
    extracted = catalog.extract()
    missing = [one for one, _ in PLURALS if extracted.get(one) is None]
    assert missing == [], (
        f"the counted phrases are not (or no longer) these msgids: {missing}; update PLURALS to"
        " what appliance/web/dashboard.py and templates/cdrs.html say"
    )


def test_russian_plural_forms_of_phones_calls_and_minutes(app: Flask) -> None:
    wrong = []
    with app.test_request_context(), force_locale("ru"):
        for (one, many), nouns in PLURALS.items():
            for n, form in COUNTS.items():
                said = ngettext(one, many, n)
                if not re.search(rf"(?<!\d){n}\s{nouns[form]}(?!\w)", said):
                    wrong.append(f"{n}: {said!r}, expected '{n} {nouns[form]}'")
    if wrong:
        pytest.fail("wrong Russian plural forms:\n" + "\n".join(wrong), pytrace=False)


def test_english_plural_forms(app: Flask) -> None:
    with app.test_request_context(), force_locale("en"):
        for one, many in PLURALS:
            for n in COUNTS:
                assert ngettext(one, many, n) == (one if n == 1 else many) % {"num": n}


@pytest.mark.parametrize(
    ("language", "phrase"),
    [("ru", r"(?<!\d)2\sтелефона(?!\w)"), ("en", r"(?<!\d)2 phones\b")],
    ids=["ru", "en"],
)
def test_the_dashboard_counts_the_registered_phones_in_words(
    office: Flask, language: str, phrase: str
) -> None:
    page = text(logged_in(office, ADMIN, ACCEPT[language]).get("/"))
    assert re.search(phrase, page), f"{phrase!r} not on the dashboard: {page}"


# --- which language a request gets -----------------------------------------------------------


def language_of(response: TestResponse) -> str:
    assert response.status_code == 200, response.status_code
    return page_language(html(response))


def stored_language(data: Path, username: str) -> str:
    db = open_db(data)
    try:
        user = users.get(db, username)
    finally:
        db.conn.close()
    assert user is not None
    return user.language


def test_the_browser_language_until_someone_chooses(office: Flask) -> None:
    assert language_of(browser(office, "ru-RU").get("/login")) == "ru"
    assert language_of(browser(office, "en-GB,en;q=0.8").get("/login")) == "en"
    assert language_of(browser(office, "de-DE,ru;q=0.7,en;q=0.5").get("/login")) == "ru"
    assert language_of(logged_in(office, ADMIN, "ru-RU").get("/")) == "ru"


def test_without_accept_language_the_office_language(office: Flask, data: Path) -> None:
    assert language_of(browser(office).get("/login")) == "en"
    db = open_db(data)
    settings.set_value(db, "office.language", "ru")
    db.conn.close()
    assert language_of(browser(office).get("/login")) == "ru"
    assert language_of(browser(office, "fr-FR").get("/login")) == "ru"


def test_a_user_who_chooses_english_keeps_it_and_another_keeps_russian(
    office: Flask, data: Path
) -> None:
    ivan = logged_in(office, ADMIN, "ru-RU")
    assert language_of(ivan.get("/")) == "ru"
    response = choose(ivan, "en", page="/extensions/")
    assert response.status_code == 302 and response.location.endswith("/extensions/")
    assert language_of(ivan.get("/extensions/")) == "en"
    assert stored_language(data, ADMIN[0]) == "en"

    ivan.submit("/", {}, action="/logout")
    assert language_of(ivan.get("/login")) == "en"  # the login page keeps it
    assert ivan.login(*ADMIN).status_code == 302
    assert language_of(ivan.get("/")) == "en"
    elsewhere = logged_in(office, ADMIN, "ru-RU")  # another browser, in Russian
    assert language_of(elsewhere.get("/")) == "en"

    olga = logged_in(office, VIEWER, "ru-RU")
    assert language_of(olga.get("/")) == "ru"
    assert stored_language(data, VIEWER[0]) == ""
    # The language Ivan left on the login page is not Olga's choice: hers is her browser's.
    ivan.submit("/", {}, action="/logout")
    assert ivan.login(*VIEWER).status_code == 302
    assert language_of(ivan.get("/")) == "ru"
    assert stored_language(data, VIEWER[0]) == ""


def test_a_language_chosen_before_logging_in_becomes_the_users(office: Flask, data: Path) -> None:
    olga = browser(office, "en-US")
    assert choose(olga, "ru").status_code == 302
    assert language_of(olga.get("/login")) == "ru"
    assert olga.login(*VIEWER).status_code == 302
    assert language_of(olga.get("/")) == "ru"
    assert stored_language(data, VIEWER[0]) == "ru"
    assert language_of(logged_in(office, VIEWER, "en-US").get("/")) == "ru"  # another browser


def test_on_first_boot_the_language_switch_works_and_the_choice_becomes_the_admins(
    app: Flask, data: Path
) -> None:
    newcomer = browser(app, "en-US")
    assert language_of(newcomer.client.get("/", follow_redirects=True)) == "en"
    response = choose(newcomer, "ru", page="/setup/account")
    assert response.status_code == 302
    assert language_of(newcomer.get("/setup/account")) == "ru"
    response = newcomer.submit("/setup/account", {"username": ADMIN[0], "password": ADMIN[1],
                                                  "confirm": ADMIN[1]})  # fmt: skip
    assert response.status_code == 302 and response.location.endswith("/setup/office")
    assert language_of(newcomer.get("/setup/office")) == "ru"
    assert stored_language(data, ADMIN[0]) == "ru"


def test_the_language_switch_refuses_an_unknown_language(office: Flask) -> None:
    client = browser(office, "ru-RU")
    response = choose(client, "xx")
    assert response.status_code == 400
    assert page_language(html(response)) == "ru"
    assert untranslated(html(response), "ru") == []


def test_the_api_answers_in_english_whatever_the_browser_says(office: Flask, data: Path) -> None:
    db = open_db(data)
    _, token = tokens.create(db, "скрипт", "admin")
    db.conn.close()
    client = office.test_client()
    auth = {"Authorization": f"Bearer {token}"}
    requests: list[tuple[str, str, dict[str, str], dict[str, str] | None]] = [
        ("GET", "/api/v1/extensions", {}, None),  # no token: 401
        ("GET", "/api/v1/extensions/999", auth, None),  # 404
        ("POST", "/api/v1/extensions", auth, {"number": "5"}),  # out of range (a store's Text)
        ("POST", "/api/v1/extensions", auth, {"number": "150"}),  # taken
        ("POST", "/api/v1/trunks", auth, {"name": "Bad Name", "server": "x"}),
    ]
    for method, url, headers, body in requests:
        answers = {}
        for accept in ("ru-RU,ru;q=0.9", "en-US"):
            response = client.open(url, method=method, json=body,
                                   headers={**headers, "Accept-Language": accept})  # fmt: skip
            assert response.status_code >= 400 and response.mimetype == "application/json"
            answers[accept] = response.get_json()
        ru, en = answers.values()
        assert ru == en, (method, url, ru, en)
        message = ru["error"]["message"]
        assert not CYRILLIC.search(message) and latin_words(message), (method, url, message)


# --- dates, times, numbers; the phone sheet --------------------------------------------------


def test_the_calls_page_shows_dates_and_times_in_the_locales_format(office: Flask) -> None:
    day = date(2024, 3, 10)
    ru = text(logged_in(office, ADMIN, ACCEPT["ru"]).get("/calls"))
    en = text(logged_in(office, VIEWER, ACCEPT["en"]).get("/calls"))

    def written(language: str) -> list[str]:  # (the page's text has its spaces made plain)
        return [" ".join(format_date(day, f, locale=language).split())
                for f in ("short", "medium", "long")]  # fmt: skip

    assert any(form in ru for form in written("ru")), ru
    assert re.search(r"(?<!\d)23:30(?!\s?[AP]M)", ru), ru
    assert any(form in en for form in written("en")), en
    assert re.search(r"(?<!\d)11:30(:00)?\s?PM", en), en
    assert "2024-03-10" not in ru and "Mar 10" not in ru


DECIMAL_POINT = re.compile(r"(?<![\d.,])\d+\.\d+(?![\d.])")
"""A decimal number written with a point (not an address like 192.0.2.10)."""


def test_the_dashboard_writes_decimals_as_the_locale_does(office: Flask) -> None:
    ru = text(logged_in(office, ADMIN, ACCEPT["ru"]).get("/"))
    assert DECIMAL_POINT.findall(ru) == [], ru
    en = text(logged_in(office, VIEWER, ACCEPT["en"]).get("/"))
    assert not re.search(r"\d,\d(?!\d\d)", en), en  # (1,024 is a thousand; 1,5 a decimal)


@pytest.mark.parametrize(("office_language", "reader"), [("ru", "en"), ("en", "ru")])
def test_the_phone_sheet_prints_in_the_offices_language(
    office: Flask, data: Path, office_language: str, reader: str
) -> None:
    db = open_db(data)
    settings.set_value(db, "office.language", office_language)
    db.conn.close()
    admin = logged_in(office, ADMIN, ACCEPT[reader])
    response = admin.submit("/extensions/new", {"number": "170", "name": NEW_NAME})
    assert response.status_code == 200
    page = html(response)
    assert visible_text(page, within="phone-card"), "no phone card on the sheet"
    wrong = untranslated(page, office_language, DATA, within="phone-card")
    if wrong:
        pytest.fail(f"the sheet is not in the office's language ({office_language}):\n"
                    + "\n".join(wrong), pytrace=False)  # fmt: skip
