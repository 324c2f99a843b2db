"""The Menus page: the office's IVR menus shown as a tree (each menu's keys and where they lead,
a menu reached by a key shown under that key), its announcements, and the feature codes.

Admins add, edit and remove menus and announcements; viewers see them. A prompt is picked from
the office language's recorded pack (`sound:NAME`) or the custom prompts (the Prompts page), and
heard in the browser before saving: pack sounds are served here, only from the pack folder of
the office's language; custom prompts by the Prompts page's own route.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField
from wtforms.validators import InputRequired, NumberRange

from appliance.store import destinations, menus, prompts, recordings, settings
from appliance.store.database import Database
from appliance.store.menus import KEYS, SOUND_RE, Announcement, Menu, MenuError
from appliance.web import corectl
from appliance.web.auth import access, get_db
from appliance.web.forms import ConfirmForm, destination_choices, refuse, text
from appliance.web.i18n import _, _l, translate

bp = Blueprint("menus", __name__, url_prefix="/menus")

SOUNDS_ROOT = Path("/usr/share/asterisk/sounds")
ROOT_ENV = "PBX_SOUNDS_ROOT"
PACKS = {"ru": "ru_RU_f_IvrvoiceRU", "en": "en_US_f_Allison"}
"""The recorded packs, as `appliance.media.prompts` finds them (the page plays no media, so it
reads the same places rather than importing the engine)."""

KEY_FIELDS = {key: f"key_{ {'*': 'star', '#': 'hash'}.get(key, key) }" for key in KEYS}
"""The form field of each key (wtforms names cannot hold '*' or '#')."""


def pack_folder(db: Database) -> Path:
    """The pack folder of the office's language (the only folder pack sounds are served from)."""
    language = settings.get_str(db, "office.language")
    try:
        root = settings.get_text(db, "media.sounds_root")
    except KeyError:
        root = os.environ.get(ROOT_ENV, "") or str(SOUNDS_ROOT)
    return Path(root) / PACKS.get(language, PACKS["en"])


def pack_sounds(db: Database) -> list[str]:
    """The pack's prompts at its top level, as `sound:NAME` (for the picker's suggestions)."""
    folder = pack_folder(db)
    if not folder.is_dir():
        return []
    return sorted(f"sound:{p.stem}" for p in folder.glob("*.wav"))


# -- forms ---------------------------------------------------------------------------------


def _prompt_field(label: Any, description: Any) -> StringField:
    return StringField(label, description=description, render_kw={"list": "prompt-names"})


class MenuForm(FlaskForm):  # type: ignore[misc]  # flask_wtf ships no types
    """A menu: its prompts, its timing, and where each key and each failure leads."""

    name = StringField(
        _l("Name"),
        description=_l("How destinations refer to it (ivr:NAME): a-z, 0-9, '-' and '_'."),
    )
    label = StringField(_l("Label"), description=_l("What the menu is for, for people."))
    greeting = _prompt_field(
        _l("Greeting"),
        _l("The prompt the menu plays: sound:NAME from the recorded pack, or a custom prompt."),
    )
    invalid_prompt = _prompt_field(
        _l("Invalid-choice prompt"), _l("Played when a key leads nowhere, before the menu again.")
    )
    timeout = IntegerField(
        _l("Timeout (seconds)"), [InputRequired(), NumberRange(1, 60)], default=5,
        description=_l("How long the menu waits for a key after the greeting."),
    )  # fmt: skip
    repeats = IntegerField(
        _l("Plays"), [InputRequired(), NumberRange(1, 10)], default=3,
        description=_l("How many times the menu is played before it gives up."),
    )  # fmt: skip
    direct_dial = BooleanField(
        _l("Direct dialling"),
        description=_l("Callers may key an extension's number during the greeting."),
    )
    on_timeout = SelectField(
        _l("When nothing is pressed"), choices=[],
        description=_l("Where the call goes after the last play without a key."),
    )  # fmt: skip
    on_invalid = SelectField(
        _l("After invalid choices"), choices=[],
        description=_l("Where the call goes after the last invalid key."),
    )  # fmt: skip

    def offer(self, db: Database, menu: Menu | None) -> None:
        """The destinations from the store (what is set now kept among them)."""
        for name in ("on_timeout", "on_invalid"):
            current = getattr(menu, name) if menu else ""
            self[name].choices = destination_choices(db, current)
        for key, name in KEY_FIELDS.items():
            current = (menu.choice(key) or "") if menu else ""
            self[name].choices = [("", _("Nothing")), *destination_choices(db, current)]

    def key_fields(self) -> list[tuple[str, SelectField]]:
        return [(key, self[name]) for key, name in KEY_FIELDS.items()]


for _key, _name in KEY_FIELDS.items():
    setattr(
        MenuForm, _name,
        SelectField(_l("Key %(key)s", key=_key), choices=[], validate_choice=False,
                    description=_l("Where the key leads; Nothing: the invalid-choice prompt.")),
    )  # fmt: skip


class AnnouncementForm(FlaskForm):  # type: ignore[misc]
    """An announcement: a prompt, then a destination or the end of the call."""

    name = StringField(
        _l("Name"),
        description=_l("How destinations refer to it (announcement:NAME): a-z, 0-9, '-', '_'."),
    )
    label = StringField(_l("Label"), description=_l("What the announcement says, for people."))
    prompt = _prompt_field(
        _l("Prompt"), _l("sound:NAME from the recorded pack, or a custom prompt's name.")
    )
    then = SelectField(
        _l("Then"), choices=[], validate_choice=False,
        description=_l("Where the call goes after the prompt; Hang up: the call ends."),
    )  # fmt: skip

    def offer(self, db: Database, current: str) -> None:
        self.then.choices = [("", _("Hang up")), *destination_choices(db, current)]


def _menu_from(form: MenuForm, name: str) -> Menu:
    return Menu(
        name=name, label=text(form.label), greeting=text(form.greeting),
        invalid_prompt=text(form.invalid_prompt), timeout=int(form.timeout.data or 0),
        repeats=int(form.repeats.data or 0), direct_dial=bool(form.direct_dial.data),
        on_timeout=text(form.on_timeout), on_invalid=text(form.on_invalid),
        choices=tuple((key, text(f)) for key, f in form.key_fields() if text(f)),
    )  # fmt: skip


def _refuse(form: FlaskForm, exc: MenuError, fallback: str) -> None:
    """Show the store's refusal under the field it names (a key's own row for `choice_K`)."""
    name = exc.field
    if name.startswith("choice_") and name[7:] in KEY_FIELDS:
        name = KEY_FIELDS[name[7:]]
    elif name == "choices":
        name = KEY_FIELDS["0"]
    refuse(form, name, translate(exc), fallback)


# -- the tree ------------------------------------------------------------------------------


@dataclass
class Row:
    key: str
    destination: str
    shown: str
    child: Node | None = None
    again: bool = False
    """The key leads to a menu already shown above it (a loop back)."""


@dataclass
class Node:
    menu: Menu
    rows: list[Row] = field(default_factory=list)


def menu_tree(db: Database, found: list[Menu]) -> list[Node]:
    """The menus as a tree: a menu no other menu leads to is a root; a menu a key leads to is
    shown under that key (once per path; a loop back is marked, not followed)."""
    by_name = {m.name: m for m in found}
    reached = {t[4:] for m in found for _k, t in m.choices if t.startswith("ivr:")}
    placed: set[str] = set()

    def node(menu: Menu, path: tuple[str, ...]) -> Node:
        placed.add(menu.name)
        made = Node(menu)
        for key, target in menu.choices:
            row = Row(key, target, translate(destinations.describe(db, target)))
            child = by_name.get(target[4:]) if target.startswith("ivr:") else None
            if child is not None and child.name in path:
                row.again = True
            elif child is not None:
                row.child = node(child, (*path, child.name))
            made.rows.append(row)
        return made

    roots = [node(m, (m.name,)) for m in found if m.name not in reached]
    for menu in found:  # menus only reached inside a loop
        if menu.name not in placed:
            roots.append(node(menu, (menu.name,)))
    return roots


def feature_codes(db: Database) -> list[tuple[str, str]]:
    """(code, what it does) for every feature code the box has now."""
    codes = [(recordings.get_setting(db, "recording.feature_code"),
              _("Start or stop recording the call in progress"))]  # fmt: skip
    for key, spec in sorted(settings.SETTINGS.items()):
        if key.startswith("features."):
            codes.append((str(settings.get(db, key)), translate(spec.help)))
    return codes


# -- pages ---------------------------------------------------------------------------------


def _prompt_names(db: Database) -> list[str]:
    return [p.name for p in prompts.list_all(db)] + pack_sounds(db)


@bp.route("/")
@access("viewer")
def index() -> ResponseReturnValue:
    db = get_db()
    found = menus.list_menus(db)
    shown = [
        (a, translate(destinations.describe(db, a.then)) if a.then else _("Hang up"))
        for a in menus.list_announcements(db)
    ]
    return render_template(
        "menus.html", tree=menu_tree(db, found), announcements=shown,
        codes=feature_codes(db), form=ConfirmForm(),
    )  # fmt: skip


def _form_page(template: str, form: FlaskForm, name: str | None) -> str:
    return render_template(template, form=form, name=name, prompt_names=_prompt_names(get_db()))


@bp.route("/new", methods=["GET", "POST"])
@access("admin")
def new() -> ResponseReturnValue:
    form = MenuForm()
    form.offer(get_db(), None)
    if not form.is_submitted():
        form.on_timeout.data = form.on_invalid.data = "hangup:unavailable"
        form.invalid_prompt.data = menus.DEFAULT_INVALID
    if form.validate_on_submit():
        try:
            made = menus.save_menu(get_db(), _menu_from(form, text(form.name)), create=True)
        except MenuError as exc:
            _refuse(form, exc, "name")
        else:
            corectl.applied(_("Menu %(name)s added.", name=made.name))
            return redirect(url_for("menus.index"))
    return _form_page("menu_form.html", form, None)


def _existing_menu(name: str) -> Menu:
    menu = menus.get_menu(get_db(), name)
    if menu is None:
        abort(404, _("There is no menu %(name)s.", name=name))
    return menu


@bp.route("/<name>/edit", methods=["GET", "POST"])
@access("admin")
def edit(name: str) -> ResponseReturnValue:
    menu = _existing_menu(name)
    data: dict[str, object] = {
        "label": menu.label, "greeting": menu.greeting, "invalid_prompt": menu.invalid_prompt,
        "timeout": menu.timeout, "repeats": menu.repeats, "direct_dial": menu.direct_dial,
        "on_timeout": menu.on_timeout, "on_invalid": menu.on_invalid,
    }  # fmt: skip
    data |= {KEY_FIELDS[key]: target for key, target in menu.choices}
    form = MenuForm(data=data)
    del form.name
    form.offer(get_db(), menu)
    if form.validate_on_submit():
        try:
            menus.save_menu(get_db(), _menu_from(form, menu.name), create=False)
        except MenuError as exc:
            _refuse(form, exc, "label")
        else:
            corectl.applied(_("Menu %(name)s saved.", name=menu.name))
            return redirect(url_for("menus.index"))
    return _form_page("menu_form.html", form, menu.name)


@bp.route("/<name>/delete", methods=["POST"])
@access("admin")
def delete(name: str) -> ResponseReturnValue:
    menu = _existing_menu(name)
    if ConfirmForm().validate_on_submit():
        try:
            menus.remove_menu(get_db(), menu.name)
        except MenuError as exc:  # a DID or another menu sends calls to it
            flash(_("Menu %(name)s was not deleted: %(reason)s.", name=menu.name,
                    reason=translate(exc)), "error")  # fmt: skip
        else:
            corectl.applied(_("Menu %(name)s deleted.", name=menu.name))
    return redirect(url_for("menus.index"))


def _existing_announcement(name: str) -> Announcement:
    found = next((a for a in menus.list_announcements(get_db()) if a.name == name), None)
    if found is None:
        abort(404, _("There is no announcement %(name)s.", name=name))
    return found


@bp.route("/announcements/new", methods=["GET", "POST"])
@access("admin")
def new_announcement() -> ResponseReturnValue:
    form = AnnouncementForm()
    form.offer(get_db(), "")
    if form.validate_on_submit():
        item = Announcement(text(form.name), text(form.label), text(form.prompt), text(form.then))
        try:
            made = menus.save_announcement(get_db(), item, create=True)
        except MenuError as exc:
            _refuse(form, exc, "name")
        else:
            corectl.applied(_("Announcement %(name)s added.", name=made.name))
            return redirect(url_for("menus.index"))
    return _form_page("announcement_form.html", form, None)


@bp.route("/announcements/<name>/edit", methods=["GET", "POST"])
@access("admin")
def edit_announcement(name: str) -> ResponseReturnValue:
    item = _existing_announcement(name)
    form = AnnouncementForm(data={"label": item.label, "prompt": item.prompt, "then": item.then})
    del form.name
    form.offer(get_db(), item.then)
    if form.validate_on_submit():
        changed = Announcement(item.name, text(form.label), text(form.prompt), text(form.then))
        try:
            menus.save_announcement(get_db(), changed, create=False)
        except MenuError as exc:
            _refuse(form, exc, "label")
        else:
            corectl.applied(_("Announcement %(name)s saved.", name=item.name))
            return redirect(url_for("menus.index"))
    return _form_page("announcement_form.html", form, item.name)


@bp.route("/announcements/<name>/delete", methods=["POST"])
@access("admin")
def delete_announcement(name: str) -> ResponseReturnValue:
    item = _existing_announcement(name)
    if ConfirmForm().validate_on_submit():
        try:
            menus.remove_announcement(get_db(), item.name)
        except MenuError as exc:
            flash(_("Announcement %(name)s was not deleted: %(reason)s.", name=item.name,
                    reason=translate(exc)), "error")  # fmt: skip
        else:
            corectl.applied(_("Announcement %(name)s deleted.", name=item.name))
    return redirect(url_for("menus.index"))


@bp.route("/sounds/<path:name>")
@access("viewer")
def sound(name: str) -> ResponseReturnValue:
    """A prompt of the office language's pack (`sound:NAME` is /menus/sounds/NAME), for the
    preview. Only a name `sound:` allows, and only a file inside the pack folder once resolved
    (no `..`, no symlink out)."""
    if not SOUND_RE.match(f"sound:{name}") or ".." in name.split("/"):
        abort(404)
    folder = pack_folder(get_db()).resolve()
    found = (folder / f"{name}.wav").resolve()
    if not found.is_relative_to(folder) or not found.is_file():
        abort(404, _("The pack has no prompt %(name)s.", name=name))
    return send_file(found, mimetype="audio/wav", conditional=True, max_age=3600)
