"""The store's and the numbering plan's messages are translatable (`appliance.i18n.T`): every
error meant for people is raised with a `Text` (checked by reading the code, so that a new
message in plain English fails here), each `T` call is one the catalogue's extractor finds with
the parameters its placeholders name, and the English the CLI and the API show is unchanged."""

from __future__ import annotations

import ast
import json
import string
from pathlib import Path
from typing import Any

import pytest

from appliance import numbering
from appliance.i18n import Text
from appliance.store import (
    backup,
    destinations,
    dids,
    extensions,
    numbers,
    routes,
    settings,
    texts,
    trunks,
)
from appliance.store.database import Database

APPLIANCE = Path(numbering.__file__).resolve().parent
SOURCES = sorted(
    [p for p in (APPLIANCE / "store").glob("*.py") if p.name != "cdrs.py"]
    + [APPLIANCE / "numbering.py"]
)
"""Where the messages are checked (cdrs.py has its own helper and tests)."""

KNOWN_ERRORS = {
    "ExtensionError", "ExtensionExists", "UserError", "TrunkError", "TrunkExists", "DidError",
    "DidTaken", "RouteError", "RouteExists", "SettingError", "BackupError", "DestinationError",
    "NumberTaken", "PatternError", "NumberError", "CountryError",
}  # fmt: skip
"""Errors whose message reaches people; any other ValueError defined in SOURCES counts too."""

BUILDERS = {"fail"}
"""Local helpers that make such an error from a message (`numbering`: `fail(problem, at)`)."""

PASSED_ON = {"reason"}
"""`texts.reason(exc)`: another error's message, passed on as it was (a Text)."""

ALLOWED = {
    # A destination kind's `exists` returns why its target is missing: a Text (checked in
    # test_descriptions_are_texts below).
    ("destinations.py", "problem"),
    # One of the Texts of the `twice` table just above it, by the kind of the duplicate.
    ("backup.py", "twice[key](shown)"),
    # A programmer's mistake (an internal setting written as a typed one), never a person's.
    ("settings.py", "f'{key} is a typed setting; use set_value'"),
}
"""First arguments that are not a T(...) call, each for the reason given."""


def _trees() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text(), str(path))) for path in SOURCES]


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def error_classes() -> set[str]:
    """Every class in SOURCES that is (by name, through its bases) a ValueError."""
    bases: dict[str, set[str]] = {}
    for _, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {n for b in node.bases if (n := _name(b))}
    found = {"ValueError"}
    while grown := {c for c, b in bases.items() if b & found and c not in found}:
        found |= grown
    return found - {"ValueError"}


def test_the_scan_sees_every_error_meant_for_people() -> None:
    assert error_classes() >= KNOWN_ERRORS


def test_every_error_meant_for_people_is_raised_with_a_text() -> None:
    classes = error_classes()
    bad: list[str] = []
    for path, tree in _trees():
        for node in ast.walk(tree):
            where = f"{path.relative_to(APPLIANCE.parent)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Raise) and node.exc is not None and _name(node.exc) in classes:
                bad.append(f"{where}: raised without a message")
            if not isinstance(node, ast.Call) or _name(node.func) not in classes | BUILDERS:
                continue
            message = node.args[0] if node.args else None
            message = next((k.value for k in node.keywords if k.arg == "message"), message)
            if message is None:
                bad.append(f"{where}: {ast.unparse(node)} has no message")
                continue
            if isinstance(message, ast.Call) and _name(message.func) in {"T", *PASSED_ON}:
                continue
            if (path.name, ast.unparse(message)) in ALLOWED:
                continue
            bad.append(f"{where}: {ast.unparse(message)} is not a T(...) message")
    assert bad == []


def test_every_text_is_found_by_the_extractor_and_fills_its_placeholders() -> None:
    bad: list[str] = []
    calls = 0
    for path, tree in _trees():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            if node.func.id != "T":
                continue
            calls += 1
            where = f"{path.name}:{node.lineno}"
            first = node.args[0] if node.args else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                bad.append(f"{where}: the message id is not a string literal")
                continue
            if len(node.args) > 1 or any(k.arg is None for k in node.keywords):
                bad.append(f"{where}: parameters must be given by name")
                continue
            wanted = {
                field.split(".")[0].split("[")[0]
                for _, field, _, _ in string.Formatter().parse(first.value)
                if field is not None
            }
            given = {k.arg for k in node.keywords if k.arg is not None}
            if wanted != given:
                bad.append(f"{where}: {first.value!r} takes {sorted(wanted)}, not {sorted(given)}")
    assert calls > 150
    assert bad == []


# --- the messages themselves --------------------------------------------------------------------


def _english(message: object) -> str:
    """The message as `appliance.web.i18n.translate` renders it with a catalogue that gives
    every id back as it is: from its id and parameters alone."""
    if not isinstance(message, Text):
        return str(message)
    params = {k: _english(v) for k, v in message.params.items()}
    return message.msgid.format(**params) if params else message.msgid


def _raised(error: type[Exception], call: Any, *args: Any, **kwargs: Any) -> Text:
    with pytest.raises(error) as info:
        call(*args, **kwargs)
    message = info.value.args[0]
    assert isinstance(message, Text)
    assert str(info.value) == str(message) == _english(message)
    return message


def test_an_error_keeps_its_english_and_carries_its_id_and_parameters() -> None:
    message = _raised(extensions.ExtensionError, extensions.check_number, "1")
    assert str(message) == "extension number must be 2 to 6 digits, not '1'"
    assert message.msgid == "extension number must be 2 to 6 digits, not {number!r}"
    assert message.params == {"number": "1"}


def test_the_pieces_of_a_message_are_texts_too() -> None:
    message = _raised(trunks.TrunkError, trunks.check_fields, {"outbound_proxy": 5})
    assert str(message) == "outbound proxy must be text"
    assert message.msgid == "{what} must be text"
    assert isinstance(message.params["what"], Text)
    assert message.params["what"].msgid == "outbound proxy"

    message = _raised(trunks.TrunkError, trunks.check_fields, {"transport": "sctp"})
    assert str(message) == "transport must be udp or tcp, not 'sctp'"
    assert message.params["choices"].msgid == "{head} or {tail}"


def test_a_message_passed_on_keeps_the_inner_text(office: Database) -> None:
    message = _raised(numbering.NumberError, numbering.normalize, "12a", "RU")
    assert str(message) == "number '12a': unexpected character 'a' at 2"
    assert message.params["problem"].msgid == "unexpected character {char!r} at {at}"

    message = _raised(dids.DidError, dids.add, office, "12a", "hangup:busy")
    assert message.msgid == "number {number!r}: {problem}"  # the NumberError's own

    doc = json.loads(backup.dumps(office))
    doc["extensions"] = [{"number": "101", "name": "", "realm": "x", "ha1_md5": "0" * 32,
                          "ha1_sha256": "0" * 64, "permissions": "local,zzz"}]  # fmt: skip
    message = _raised(backup.BackupError, backup.check, json.dumps(doc).encode())
    assert str(message) == (
        "extension 101: unknown permission class 'zzz'; known: internal, local, mobile,"
        " long-distance, international, premium"
    )
    assert message.msgid == "extension {number}: {reason}"
    inner = message.params["reason"]
    assert inner.msgid == "unknown permission class {permission!r}; known: {known}"


def test_a_list_of_who_uses_something_is_translated_item_by_item(office: Database) -> None:
    extensions.add(office, "101", "Alice")
    dids.add(office, "+74951234567", "extension:101")
    settings.set_value(office, "dialplan.unknown_did", "extension:101")
    message = _raised(extensions.ExtensionError, extensions.remove, office, "101")
    assert str(message) == (
        "extension 101 is the destination of DID +74951234567, the setting"
        " dialplan.unknown_did; change that first"
    )
    users = message.params["users"]
    assert users.msgid == "{head}, {tail}"
    assert [users.params["head"].msgid, users.params["tail"].msgid] == [
        "DID {number}",
        "the setting {key}",
    ]
    assert texts.joined([]) == "" and texts.joined(["a"]) == "a"
    assert texts.joined(["a", "b", "c"]) == "a, b, c"
    assert texts.either(["a", "b", "c"]) == "a or b or c"


def test_descriptions_are_texts(office: Database) -> None:
    extensions.add(office, "101", "Alice")
    extensions.add(office, "102")
    dids.add(office, "+74951234567", "extension:101", "Main")
    expected = {
        "extension:101": "extension 101 (Alice)",
        "extension:102": "extension 102",
        "extension:555": "extension 555 (missing)",
        "route:city": "outbound route city (missing)",
        "hangup:busy": "hang up (busy)",
    }
    for destination, english in expected.items():
        described = destinations.describe(office, destination)
        assert isinstance(described, Text)
        assert described == _english(described) == english
    busy = destinations.describe(office, "hangup:busy")
    assert isinstance(busy, Text) and busy.params["cause"].msgid == "busy"
    owner = numbers.owner(office, "+74951234567")
    assert isinstance(owner, Text) and owner == "the DID +74951234567 (Main)"
    for kind in destinations.KINDS.values():
        assert isinstance(kind.what, Text)
        missing = kind.exists(office, "555" if kind.what == "an extension" else "nope")
        assert missing is None or isinstance(missing, Text)
    message = _raised(routes.RouteError, routes.check_patterns, ["9|"])
    assert str(message) == "pattern '9|': nothing after '|' at 1"


def test_settings_and_countries_are_described_in_texts() -> None:
    for spec in settings.SETTINGS.values():
        assert isinstance(spec.help, Text), spec.key
    assert all(isinstance(label, Text) for label in settings.COUNTRIES.values())
    assert settings.COUNTRIES["DE"] == "Germany"
    language = settings.SETTINGS["office.language"]
    assert isinstance(language, settings.ChoiceSetting)
    assert language.choices == {"en": "English", "ru": "Russian"}
    assert all(isinstance(label, Text) for label in language.choices.values())


def test_the_page_translates_a_message_and_its_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    from appliance.web import i18n as web_i18n

    russian = {
        "{what} must be {choices}, not {value!r}": "{what}: нужно {choices}, а не {value!r}",
        "{head} or {tail}": "{head} или {tail}",
        "transport": "транспорт",
    }
    monkeypatch.setattr(web_i18n, "gettext", lambda msgid: russian.get(msgid, msgid))
    with pytest.raises(trunks.TrunkError) as info:
        trunks.check_fields({"transport": "sctp"})
    assert web_i18n.translate(info.value) == "транспорт: нужно udp или tcp, а не 'sctp'"
    assert str(info.value) == "transport must be udp or tcp, not 'sctp'"
