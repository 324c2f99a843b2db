"""/api/v1/menus and /api/v1/announcements: the office's IVR menus and announcements for
scripts: list, create, read, replace, delete. Routes of `appliance.web.api`'s blueprint (its
bearer tokens, its JSON errors); described in `appliance.web.openapi_menus`."""

from __future__ import annotations

from typing import Any

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from appliance.store import destinations, menus
from appliance.store.menus import Announcement, Menu, MenuError
from appliance.web import corectl
from appliance.web.api import KINDS, ApiError, _body, _typed, bp
from appliance.web.auth import access, get_db

MENU_FIELDS = {
    "label": False, "greeting": True, "invalid_prompt": False, "timeout": False,
    "repeats": False, "direct_dial": False, "on_timeout": False, "on_invalid": False,
    "choices": False,
}  # fmt: skip
MENU_KINDS = {"timeout": "integer", "repeats": "integer", "direct_dial": "boolean"}
ANNOUNCEMENT_FIELDS = {"label": False, "prompt": True, "then": False}


def _menu_json(menu: Menu) -> dict[str, Any]:
    return {
        "name": menu.name, "label": menu.label, "greeting": menu.greeting,
        "invalid_prompt": menu.invalid_prompt, "timeout": menu.timeout,
        "repeats": menu.repeats, "direct_dial": menu.direct_dial,
        "on_timeout": menu.on_timeout, "on_invalid": menu.on_invalid,
        "choices": dict(menu.choices),
    }  # fmt: skip


def _announcement_json(item: Announcement) -> dict[str, Any]:
    return {
        "name": item.name, "label": item.label, "prompt": item.prompt, "then": item.then,
        "then_description": destinations.describe(get_db(), item.then) if item.then else "",
    }  # fmt: skip


def _refused(exc: MenuError, code: int = 400) -> ApiError:
    return ApiError(code, str(exc))


def _menu_body(name: str, *, with_name: bool) -> Menu:
    """The menu a request's JSON body describes; what it leaves out takes its default."""
    fields = {"name": True, **MENU_FIELDS} if with_name else MENU_FIELDS
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object (Content-Type: application/json)")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ApiError(400, f"unknown fields: {', '.join(unknown)}")
    missing = [key for key, required in fields.items() if required and key not in data]
    if missing:
        raise ApiError(400, f"missing fields: {', '.join(missing)}")
    for key, value in data.items():
        kind = MENU_KINDS.get(key, "string")
        if key == "choices":
            if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
                raise ApiError(400, "choices must be an object of key: destination (strings)")
        elif not _typed(value, kind):
            raise ApiError(400, f"{key} must be {KINDS[kind]}")
    defaults = Menu(name="", label="", greeting="")
    return Menu(
        name=data["name"] if with_name else name, label=data.get("label", ""),
        greeting=data["greeting"],
        invalid_prompt=data.get("invalid_prompt", defaults.invalid_prompt),
        timeout=data.get("timeout", defaults.timeout),
        repeats=data.get("repeats", defaults.repeats),
        direct_dial=data.get("direct_dial", defaults.direct_dial),
        on_timeout=data.get("on_timeout", defaults.on_timeout),
        on_invalid=data.get("on_invalid", defaults.on_invalid),
        choices=tuple(data.get("choices", {}).items()),
    )  # fmt: skip


def _menu(name: str) -> Menu:
    menu = menus.get_menu(get_db(), name)
    if menu is None:
        raise ApiError(404, f"no menu {name}")
    return menu


@bp.route("/menus", methods=["GET"])
@access("viewer")
def list_menus() -> ResponseReturnValue:
    return jsonify(menus=[_menu_json(m) for m in menus.list_menus(get_db())])


@bp.route("/menus", methods=["POST"])
@access("admin")
def create_menu() -> ResponseReturnValue:
    menu = _menu_body("", with_name=True)
    exists = menus.get_menu(get_db(), menu.name.strip().lower()) is not None
    try:
        made = menus.save_menu(get_db(), menu, create=True)
    except MenuError as exc:
        raise _refused(exc, 409 if exists else 400) from None
    corectl.reload()
    return jsonify(_menu_json(made)), 201


@bp.route("/menus/<name>", methods=["GET"])
@access("viewer")
def get_menu(name: str) -> ResponseReturnValue:
    return jsonify(_menu_json(_menu(name)))


@bp.route("/menus/<name>", methods=["PUT"])
@access("admin")
def replace_menu(name: str) -> ResponseReturnValue:
    """The menu as the body says, whole (what the body leaves out takes its default)."""
    _menu(name)
    try:
        saved = menus.save_menu(get_db(), _menu_body(name, with_name=False), create=False)
    except MenuError as exc:
        raise _refused(exc) from None
    corectl.reload()
    return jsonify(_menu_json(saved))


@bp.route("/menus/<name>", methods=["DELETE"])
@access("admin")
def delete_menu(name: str) -> ResponseReturnValue:
    _menu(name)
    try:
        menus.remove_menu(get_db(), name)
    except MenuError as exc:  # a DID, a menu or an announcement sends calls to it
        raise _refused(exc, 409) from None
    corectl.reload()
    return "", 204


def _announcement(name: str) -> Announcement:
    found = next((a for a in menus.list_announcements(get_db()) if a.name == name), None)
    if found is None:
        raise ApiError(404, f"no announcement {name}")
    return found


@bp.route("/announcements", methods=["GET"])
@access("viewer")
def list_announcements() -> ResponseReturnValue:
    found = menus.list_announcements(get_db())
    return jsonify(announcements=[_announcement_json(a) for a in found])


@bp.route("/announcements", methods=["POST"])
@access("admin")
def create_announcement() -> ResponseReturnValue:
    data = _body({"name": True, **ANNOUNCEMENT_FIELDS})
    item = Announcement(data["name"], data.get("label", ""), data["prompt"], data.get("then", ""))
    exists = any(a.name == item.name.strip().lower() for a in menus.list_announcements(get_db()))
    try:
        made = menus.save_announcement(get_db(), item, create=True)
    except MenuError as exc:
        raise _refused(exc, 409 if exists else 400) from None
    corectl.reload()
    return jsonify(_announcement_json(made)), 201


@bp.route("/announcements/<name>", methods=["GET"])
@access("viewer")
def get_announcement(name: str) -> ResponseReturnValue:
    return jsonify(_announcement_json(_announcement(name)))


@bp.route("/announcements/<name>", methods=["PUT"])
@access("admin")
def replace_announcement(name: str) -> ResponseReturnValue:
    _announcement(name)
    data = _body(ANNOUNCEMENT_FIELDS)
    item = Announcement(name, data.get("label", ""), data["prompt"], data.get("then", ""))
    try:
        saved = menus.save_announcement(get_db(), item, create=False)
    except MenuError as exc:
        raise _refused(exc) from None
    corectl.reload()
    return jsonify(_announcement_json(saved))


@bp.route("/announcements/<name>", methods=["DELETE"])
@access("admin")
def delete_announcement(name: str) -> ResponseReturnValue:
    _announcement(name)
    try:
        menus.remove_announcement(get_db(), name)
    except MenuError as exc:
        raise _refused(exc, 409) from None
    corectl.reload()
    return "", 204
