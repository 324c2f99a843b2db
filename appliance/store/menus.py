"""IVR menus and announcements: the destinations that answer a call and speak.

A menu (`ivr:NAME`) plays its greeting and waits for one key; each key `0`-`9`, `*`, `#` may
send the call to any destination (an extension, another menu, voicemail, an announcement, an
outbound route). A caller who presses nothing hears the menu again, `repeats` times in all, then
goes to `on_timeout`; a key with no choice plays the invalid-choice prompt and the menu again,
then `on_invalid`. With `direct_dial`, a caller may also key an extension's number during the
greeting. An announcement (`announcement:NAME`) plays a prompt, then hangs up or goes on to
`then` (the office's "we are closed" message before voicemail).

Prompts are named as `appliance.store.prompts` stores them (a custom prompt's name) or as
`sound:NAME`, a prompt of the office language's recorded pack (`sound:vm-goodbye`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from appliance.i18n import T
from appliance.store import destinations, prompts
from appliance.store.database import Database
from appliance.store.db import transaction
from appliance.store.texts import reason

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}\Z")
SOUND_RE = re.compile(r"sound:[a-z0-9][a-z0-9_/-]{0,63}\Z")
KEYS = "0123456789*#"
DEFAULT_INVALID = "sound:pbx-invalid"
LABEL_MAX = 64
"""A menu's or announcement's label, for people (the API's maxLength)."""


class MenuError(ValueError):
    """A menu or announcement cannot be saved or removed as asked. `str()` says why, for a
    technician; `field` names the form field."""

    def __init__(self, message: str, field: str = "name") -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Menu:
    name: str
    label: str
    greeting: str
    invalid_prompt: str = DEFAULT_INVALID
    timeout: int = 5
    """Seconds to wait for a key after the greeting."""
    repeats: int = 3
    """How many times the menu is played before `on_timeout` / `on_invalid`."""
    direct_dial: bool = False
    on_timeout: str = "hangup:unavailable"
    on_invalid: str = "hangup:unavailable"
    choices: tuple[tuple[str, str], ...] = ()
    """(key, destination), in key order."""

    def choice(self, key: str) -> str | None:
        return dict(self.choices).get(key)


@dataclass(frozen=True, slots=True)
class Announcement:
    name: str
    label: str
    prompt: str
    then: str = ""
    """The destination after the prompt; "" hangs up."""


# -- prompts -------------------------------------------------------------------------------


def check_prompt(db: Database, text: str, field: str) -> str:
    """A prompt reference: `sound:NAME` from the pack, or a custom prompt's name."""
    text = text.strip()
    if not text:
        raise MenuError(T("choose a prompt"), field)
    if text.startswith("sound:"):
        if not SOUND_RE.match(text):
            raise MenuError(T("{text!r} is not a prompt of the pack", text=text), field)
        return text
    if prompts.get(db, text) is None:
        raise MenuError(T("there is no prompt {name}", name=text), field)
    return text


# -- menus ---------------------------------------------------------------------------------


def _check_name(name: str) -> str:
    name = name.strip().lower()
    if not NAME_RE.match(name):
        raise MenuError(
            T("a name is 1 to 32 of a-z, 0-9, - and _ (starting with a letter or digit), not"
              " {name!r}", name=name)
        )  # fmt: skip
    return name


def _check_label(label: str) -> str:
    label = label.strip()
    if len(label) > LABEL_MAX:
        raise MenuError(
            T("a label is at most {limit} characters, not {count}", limit=LABEL_MAX,
              count=len(label)), "label",
        )  # fmt: skip
    return label


def _check_destination(db: Database, text: str, field: str) -> str:
    try:
        return destinations.check_destination(db, text, field=field, inbound=True)
    except destinations.DestinationError as exc:
        raise MenuError(reason(exc), field) from None


def _checked(db: Database, menu: Menu) -> Menu:
    if not 1 <= menu.timeout <= 60:
        raise MenuError(T("the timeout is 1 to 60 seconds"), "timeout")
    if not 1 <= menu.repeats <= 10:
        raise MenuError(T("a menu is played 1 to 10 times"), "repeats")
    choices = []
    seen = set()
    for key, target in menu.choices:
        if len(key) != 1 or key not in KEYS:
            raise MenuError(T("{key!r} is not a key (0-9, * or #)", key=key), "choices")
        if key in seen:
            raise MenuError(T("the key {key} has two choices", key=key), "choices")
        seen.add(key)
        choices.append((key, _check_destination(db, target, f"choice_{key}")))
    choices.sort(key=lambda kv: KEYS.index(kv[0]))
    return Menu(
        name=_check_name(menu.name),
        label=_check_label(menu.label),
        greeting=check_prompt(db, menu.greeting, "greeting"),
        invalid_prompt=check_prompt(db, menu.invalid_prompt or DEFAULT_INVALID, "invalid_prompt"),
        timeout=menu.timeout,
        repeats=menu.repeats,
        direct_dial=menu.direct_dial,
        on_timeout=_check_destination(db, menu.on_timeout, "on_timeout"),
        on_invalid=_check_destination(db, menu.on_invalid, "on_invalid"),
        choices=tuple(choices),
    )


def save_menu(db: Database, menu: Menu, *, create: bool) -> Menu:
    """Create (or, with `create` False, replace) a menu; checked whole before anything is
    written, so a refused menu changes nothing."""
    menu = _checked(db, menu)
    with transaction(db):
        exists = db.execute("SELECT 1 FROM ivr_menus WHERE name = ?", [menu.name]).fetchone()
        if create and exists:
            raise MenuError(T("there is already a menu {name}", name=menu.name))
        if not create and not exists:
            raise MenuError(T("there is no menu {name}", name=menu.name))
        if ("ivr:" + menu.name) in (target for _key, target in menu.choices):
            raise MenuError(T("a choice of a menu cannot be the menu itself"), "choices")
        db.execute(
            "INSERT INTO ivr_menus (name, label, greeting, invalid_prompt, timeout, repeats,"
            " direct_dial, on_timeout, on_invalid, created_at) VALUES (?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT (name) DO UPDATE SET label = excluded.label, greeting ="
            " excluded.greeting, invalid_prompt = excluded.invalid_prompt, timeout ="
            " excluded.timeout, repeats = excluded.repeats, direct_dial = excluded.direct_dial,"
            " on_timeout = excluded.on_timeout, on_invalid = excluded.on_invalid",
            [menu.name, menu.label, menu.greeting, menu.invalid_prompt, menu.timeout,
             menu.repeats, int(menu.direct_dial), menu.on_timeout, menu.on_invalid,
             time.time()],
        )  # fmt: skip
        db.execute("DELETE FROM ivr_choices WHERE menu = ?", [menu.name])
        for key, target in menu.choices:
            db.execute(
                "INSERT INTO ivr_choices (menu, key, destination) VALUES (?, ?, ?)",
                [menu.name, key, target],
            )
    return menu


def list_menus(db: Database) -> list[Menu]:
    choices: dict[str, list[tuple[str, str]]] = {}
    for menu, key, target in db.execute("SELECT menu, key, destination FROM ivr_choices"):
        choices.setdefault(menu, []).append((key, target))
    rows = db.execute(
        "SELECT name, label, greeting, invalid_prompt, timeout, repeats, direct_dial,"
        " on_timeout, on_invalid FROM ivr_menus ORDER BY name"
    ).fetchall()
    return [
        Menu(name, label, greeting, invalid, timeout, repeats, bool(direct), on_timeout,
             on_invalid, tuple(sorted(choices.get(name, []), key=lambda kv: KEYS.index(kv[0]))))
        for name, label, greeting, invalid, timeout, repeats, direct, on_timeout, on_invalid
        in rows
    ]  # fmt: skip


def get_menu(db: Database, name: str) -> Menu | None:
    return next((m for m in list_menus(db) if m.name == name), None)


def remove_menu(db: Database, name: str) -> None:
    with transaction(db):
        if db.execute("SELECT 1 FROM ivr_menus WHERE name = ?", [name]).fetchone() is None:
            raise MenuError(T("there is no menu {name}", name=name))
        try:
            destinations.check_unused(db, f"ivr:{name}", T("menu {name}", name=name), "name")
        except destinations.DestinationError as exc:
            raise MenuError(reason(exc)) from None
        db.execute("DELETE FROM ivr_choices WHERE menu = ?", [name])
        db.execute("DELETE FROM ivr_menus WHERE name = ?", [name])


# -- announcements ----------------------------------------------------------------------------


def save_announcement(db: Database, item: Announcement, *, create: bool) -> Announcement:
    item = Announcement(
        _check_name(item.name), _check_label(item.label),
        check_prompt(db, item.prompt, "prompt"),
        _check_destination(db, item.then, "then") if item.then.strip() else "",
    )  # fmt: skip
    if item.then == f"announcement:{item.name}":
        raise MenuError(T("an announcement cannot go on to itself"), "then")
    with transaction(db):
        exists = db.execute(
            "SELECT 1 FROM announcements WHERE name = ?", [item.name]
        ).fetchone()  # fmt: skip
        if create and exists:
            raise MenuError(T("there is already an announcement {name}", name=item.name))
        if not create and not exists:
            raise MenuError(T("there is no announcement {name}", name=item.name))
        db.execute(
            "INSERT INTO announcements (name, label, prompt, then_to, created_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET label = excluded.label,"
            " prompt = excluded.prompt, then_to = excluded.then_to",
            [item.name, item.label, item.prompt, item.then, time.time()],
        )
    return item


def list_announcements(db: Database) -> list[Announcement]:
    rows = db.execute(
        "SELECT name, label, prompt, then_to FROM announcements ORDER BY name"
    ).fetchall()
    return [Announcement(*row) for row in rows]


def remove_announcement(db: Database, name: str) -> None:
    with transaction(db):
        if db.execute("SELECT 1 FROM announcements WHERE name = ?", [name]).fetchone() is None:
            raise MenuError(T("there is no announcement {name}", name=name))
        try:
            destinations.check_unused(
                db, f"announcement:{name}", T("announcement {name}", name=name), "name"
            )
        except destinations.DestinationError as exc:
            raise MenuError(reason(exc)) from None
        db.execute("DELETE FROM announcements WHERE name = ?", [name])
