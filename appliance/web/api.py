"""The REST API under /api/v1: extensions, SIP trunks, the office's numbers (DIDs), outbound
routes, call records, registrations, live calls and bans, for CRMs and scripts. Bearer-token
authentication (tokens made on the system page); every error is JSON `{"error": {"code",
"message"}}`; described by /api/v1/openapi.json (appliance.web.openapi).
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from appliance.numbering import PERMISSION_CLASSES
from appliance.store import (
    bans,
    cdrs,
    destinations,
    dids,
    encryption,
    extensions,
    registrations,
    routes,
    tokens,
)
from appliance.store import trunks as trunk_store
from appliance.store.db import transaction
from appliance.store.dids import DidError, DidTaken
from appliance.store.extensions import ExtensionError, ExtensionExists
from appliance.store.routes import RouteError, RouteExists
from appliance.store.trunks import TrunkError, TrunkExists
from appliance.web import corectl, security
from appliance.web.auth import access, get_db, view_access

bp = Blueprint("api", __name__, url_prefix="/api/v1")

CDR_QUERY = frozenset(
    {"since", "until", "extension", "disposition", "direction", "trunk", "limit", "offset"}
)
"""The query parameters /cdrs takes (appliance.web.openapi documents each)."""


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> ResponseReturnValue:
    response = jsonify(error={"code": exc.code, "message": exc.message})
    if exc.code == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="pbx"'
    return response, exc.code


@bp.before_request
def _authenticate() -> None:
    level = view_access(request.endpoint)
    if level == "public":
        return
    scheme, _, clear = request.headers.get("Authorization", "").partition(" ")
    token = tokens.lookup(get_db(), clear.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise ApiError(401, "a valid API token is required: Authorization: Bearer pbx_...")
    g.token = token
    if level != "viewer" and (level != "admin" or token.role != "admin"):
        raise ApiError(403, "this token is read-only (role viewer)")


KINDS = {
    "string": "a string",
    "integer": "a whole number",
    "integer or null": "a whole number or null",
    "boolean": "true or false",
    "strings": "a list of strings",
}
"""The JSON types a body field may be (`_body`), and how a refusal names each."""


def _typed(value: object, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "integer or null":
        return value is None or _typed(value, "integer")
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "strings":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, str)


def _body(
    allowed: dict[str, bool], kinds: dict[str, str] | None = None, *, some: bool = False,
    enums: dict[str, tuple[str, ...]] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The JSON object of a request: only `allowed` keys (True = required), each of its kind
    in `kinds` (default: a string), each in `enums` one of those words exactly (the store
    would read other cases and spaces too; the API takes what its document says); `some` asks
    for at least one key (a change)."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object (Content-Type: application/json)")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown fields: {', '.join(unknown)}")
    missing = [key for key, required in allowed.items() if required and key not in data]
    if missing:
        raise ApiError(400, f"missing fields: {', '.join(missing)}")
    if some and not data:
        raise ApiError(400, f"nothing to change: give one or more of {', '.join(allowed)}")
    for key, value in data.items():
        kind = (kinds or {}).get(key, "string")
        if not _typed(value, kind):
            raise ApiError(400, f"{key} must be {KINDS[kind]}")
        words = (enums or {}).get(key)
        if words is not None and not set(value if kind == "strings" else [value]) <= set(words):
            raise ApiError(400, f"{key} must be {'each ' if kind == 'strings' else ''}one of"
                           f" {', '.join(words)}")  # fmt: skip
    return data


def _extension_json(ext: extensions.Extension, registered: int) -> dict[str, Any]:
    return {
        "number": ext.number, "name": ext.name, "registered": registered,
        "permissions": list(ext.permissions), "caller_id": ext.caller_id,
        "max_outbound_calls": ext.max_outbound_calls,
        "media_encryption": encryption.of_extension(get_db(), ext.number) or encryption.DEFAULT,
    }  # fmt: skip


def _registered(number: str | None = None) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in registrations.summary(get_db()):
        if number is None or row["aor"] == number:
            counts[row["aor"]] = counts.get(row["aor"], 0) + 1
    return counts


def _extension(number: str) -> extensions.Extension:
    ext = extensions.get(get_db(), number)
    if ext is None:
        raise ApiError(404, f"no extension {number}")
    return ext


def _rejected(exc: ExtensionError) -> ApiError:
    return ApiError(409 if isinstance(exc, ExtensionExists) else 400, str(exc))


@bp.route("/openapi.json")
@access("public")
def openapi_document() -> ResponseReturnValue:
    from appliance.web import openapi  # built when asked for: 0.2 MiB an idle service spares

    return jsonify(openapi.document(request.host_url.rstrip("/")))


@bp.route("/extensions", methods=["GET"])
@access("viewer")
def list_extensions() -> ResponseReturnValue:
    counts = _registered()
    rows = [_extension_json(e, counts.get(e.number, 0)) for e in extensions.list_all(get_db())]
    return jsonify(extensions=rows)


@bp.route("/extensions", methods=["POST"])
@access("admin")
def create_extension() -> ResponseReturnValue:
    data = _body({"number": True, "name": False, "password": False})
    try:
        password = extensions.add(
            get_db(), data["number"], data.get("name", "").strip(), data.get("password")
        )
    except ExtensionError as exc:
        raise _rejected(exc) from None
    corectl.reload()
    ext = _extension(data["number"])
    return jsonify({**_extension_json(ext, 0), "password": password}), 201


@bp.route("/extensions/<number>", methods=["GET"])
@access("viewer")
def get_extension(number: str) -> ResponseReturnValue:
    ext = _extension(number)
    return jsonify(_extension_json(ext, _registered(number).get(number, 0)))


@bp.route("/extensions/<number>", methods=["PATCH"])
@access("admin")
def update_extension(number: str) -> ResponseReturnValue:
    _extension(number)
    data = _body(
        {"name": False, "permissions": False, "caller_id": False, "max_outbound_calls": False,
         "media_encryption": False},
        {"permissions": "strings", "max_outbound_calls": "integer or null"},
        some=True,
        enums={"permissions": PERMISSION_CLASSES, "media_encryption": encryption.POLICIES},
    )  # fmt: skip
    db = get_db()
    try:
        with transaction(db):  # all of it or nothing
            if "name" in data:
                extensions.rename(db, number, data["name"].strip())
            if "permissions" in data:
                extensions.set_permissions(db, number, data["permissions"])
            if "caller_id" in data:
                extensions.set_caller_id(db, number, data["caller_id"])
            if "max_outbound_calls" in data:
                extensions.set_max_outbound_calls(db, number, data["max_outbound_calls"])
            if "media_encryption" in data:
                encryption.set_for_extension(db, number, data["media_encryption"])
    except ExtensionError as exc:
        raise _rejected(exc) from None
    corectl.reload()
    return jsonify(_extension_json(_extension(number), _registered(number).get(number, 0)))


@bp.route("/extensions/<number>", methods=["DELETE"])
@access("admin")
def delete_extension(number: str) -> ResponseReturnValue:
    _extension(number)
    try:
        extensions.remove(get_db(), number)
    except ExtensionError as exc:  # a DID or a setting still sends calls to it
        raise ApiError(409, str(exc)) from None
    corectl.reload()
    return "", 204


@bp.route("/extensions/<number>/password", methods=["POST"])
@access("admin")
def new_password(number: str) -> ResponseReturnValue:
    """A new SIP password, generated unless the body gives one; shown in this answer only."""
    _extension(number)
    data = _body({"password": False}) if request.content_length else {}
    try:
        password = extensions.set_password(get_db(), number, data.get("password"))
    except ExtensionError as exc:
        raise _rejected(exc) from None
    corectl.reload()
    return jsonify(number=number, password=password)


def _number_arg(name: str, low: float, high: float, integer: bool = False) -> float | None:
    text = request.args.get(name)
    if text is None:
        return None
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ApiError(400, f"{name} must be a {'whole ' if integer else ''}number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise ApiError(400, f"{name} must be between {low:g} and {high:g}")
    return value


@bp.route("/cdrs", methods=["GET"])
@access("viewer")
def list_cdrs() -> ResponseReturnValue:
    unknown = sorted(set(request.args) - CDR_QUERY)
    if unknown:
        raise ApiError(400, f"unknown query parameters: {', '.join(unknown)}")
    disposition = request.args.get("disposition")
    if disposition is not None and disposition not in cdrs.DISPOSITIONS:
        raise ApiError(400, f"disposition must be one of {', '.join(cdrs.DISPOSITIONS)}")
    extension = request.args.get("extension")
    if extension is not None and not extensions.NUMBER_RE.match(extension):
        raise ApiError(400, "extension must be 2 to 6 digits")
    direction = request.args.get("direction")
    if direction is not None and direction not in cdrs.DIRECTIONS:
        raise ApiError(400, f"direction must be one of {', '.join(cdrs.DIRECTIONS)}")
    trunk = request.args.get("trunk")
    if trunk is not None and not trunk_store.NAME_RE.match(trunk):
        raise ApiError(400, "trunk must be a trunk name (lower-case letters, digits, - and _)")
    where = cdrs.Filter(
        since=_number_arg("since", 0, 1e10),
        until=_number_arg("until", 0, 1e10),
        extension=extension,
        disposition=disposition,
        direction=direction,
        trunk=trunk,
    )
    limit = int(_number_arg("limit", 1, 1000, integer=True) or 100)
    offset = int(_number_arg("offset", 0, 1e9, integer=True) or 0)
    db = get_db()
    return jsonify(
        total=cdrs.count(db, where), cdrs=cdrs.search(db, where, limit=limit, offset=offset)
    )


@bp.route("/cdrs/<call_id>", methods=["GET"])
@access("viewer")
def get_cdr(call_id: str) -> ResponseReturnValue:
    row = cdrs.get(get_db(), call_id)
    if row is None:
        raise ApiError(404, f"no call record {call_id}")
    return jsonify(row)


@bp.route("/registrations", methods=["GET"])
@access("viewer")
def list_registrations() -> ResponseReturnValue:
    state = corectl.status()
    rows = state["registrations"] if state else registrations.summary(get_db())
    return jsonify(registrations=rows)


@bp.route("/calls", methods=["GET"])
@access("viewer")
def list_calls() -> ResponseReturnValue:
    state = corectl.status()
    return jsonify(core="running" if state else "stopped", calls=state["calls"] if state else [])


# --- bans -------------------------------------------------------------------------------------


@bp.route("/bans", methods=["GET"])
@access("viewer")
def list_bans() -> ResponseReturnValue:
    rows, _running = security.current_bans()
    return jsonify(bans=rows)


@bp.route("/bans/<address>", methods=["DELETE"])
@access("admin")
def delete_ban(address: str) -> ResponseReturnValue:
    try:
        canonical = bans.canonical_address(address)
    except ValueError:  # no address at all: banned it cannot be either
        raise ApiError(404, f"{address!r} is not a banned address (not an IP address)") from None
    if not security.lift(canonical):
        raise ApiError(404, f"{canonical} is not banned")
    return "", 204


# --- trunks -----------------------------------------------------------------------------------

TRUNK_FIELDS: dict[str, str] = {
    "kind": "string", "server": "string", "outbound_proxy": "string", "transport": "string",
    "username": "string", "auth_user": "string", "password": "string", "from_user": "string",
    "from_domain": "string", "codecs": "string", "max_calls": "integer", "expires": "integer",
    "options_interval": "integer", "external_address": "string", "match_cidrs": "string",
    "did_from": "string", "late_offer": "boolean", "enabled": "boolean",
    "media_encryption": "string",
}  # fmt: skip
"""What a trunk's body may set, and each field's JSON type (the store's fields)."""

TRUNK_ENUMS: dict[str, tuple[str, ...]] = {
    "kind": trunk_store.KINDS,
    "transport": trunk_store.TRANSPORTS,
    "media_encryption": encryption.POLICIES,
}

LIVE_KEYS = ("state", "last_response", "registered_until", "options_rtt_ms", "calls")


def _trunk_json(trunk: trunk_store.Trunk, live: dict[str, Any] | None) -> dict[str, Any]:
    """A trunk as the API shows it: its settings with the password masked (`********`, or ""
    when none is set), and `status` as the running core reports it (null when it does not)."""
    shown = trunk.masked()
    del shown["instance"]  # the box's own Contact parameter, nothing to set
    shown["media_encryption"] = encryption.of_trunk(get_db(), trunk.name) or encryption.DEFAULT
    shown["status"] = None if live is None else {k: live.get(k) for k in LIVE_KEYS}
    return shown


def _live_trunks() -> dict[str, dict[str, Any]]:
    core = corectl.status()
    return {t["name"]: t for t in (core or {}).get("trunks", [])}


def _trunk(name: str) -> trunk_store.Trunk:
    trunk = trunk_store.get(get_db(), name)
    if trunk is None:
        raise ApiError(404, f"no trunk {name}")
    return trunk


@bp.route("/trunks", methods=["GET"])
@access("viewer")
def list_trunks() -> ResponseReturnValue:
    live = _live_trunks()
    rows = [_trunk_json(t, live.get(t.name)) for t in trunk_store.list_all(get_db())]
    return jsonify(trunks=rows)


@bp.route("/trunks", methods=["POST"])
@access("admin")
def create_trunk() -> ResponseReturnValue:
    data = _body(
        {**dict.fromkeys(TRUNK_FIELDS, False), "name": True, "server": True}, TRUNK_FIELDS,
        enums=TRUNK_ENUMS,
    )  # fmt: skip
    name = data.pop("name")
    policy = data.pop("media_encryption", None)
    db = get_db()
    try:
        with transaction(db):
            trunk = trunk_store.add(db, name, **data)
            if policy is not None:
                encryption.set_for_trunk(db, name, policy)
    except TrunkError as exc:
        raise ApiError(409 if isinstance(exc, TrunkExists) else 400, str(exc)) from None
    corectl.reload()
    return jsonify(_trunk_json(trunk, _live_trunks().get(name))), 201


@bp.route("/trunks/<name>", methods=["GET"])
@access("viewer")
def get_trunk(name: str) -> ResponseReturnValue:
    return jsonify(_trunk_json(_trunk(name), _live_trunks().get(name)))


@bp.route("/trunks/<name>", methods=["PATCH"])
@access("admin")
def update_trunk(name: str) -> ResponseReturnValue:
    _trunk(name)
    data = _body(dict.fromkeys(TRUNK_FIELDS, False), TRUNK_FIELDS, some=True, enums=TRUNK_ENUMS)
    policy = data.pop("media_encryption", None)
    db = get_db()
    try:
        with transaction(db):
            trunk = trunk_store.update(db, name, **data) if data else _trunk(name)
            if policy is not None:
                encryption.set_for_trunk(db, name, policy)
    except TrunkError as exc:
        raise ApiError(400, str(exc)) from None
    corectl.reload()
    return jsonify(_trunk_json(trunk, _live_trunks().get(name)))


@bp.route("/trunks/<name>", methods=["DELETE"])
@access("admin")
def delete_trunk(name: str) -> ResponseReturnValue:
    _trunk(name)
    try:
        trunk_store.remove(get_db(), name)
    except TrunkError as exc:  # a route or a DID uses it
        raise ApiError(409, str(exc)) from None
    corectl.reload()
    return "", 204


@bp.route("/trunks/<name>/test", methods=["POST"])
@access("admin")
def test_trunk(name: str) -> ResponseReturnValue:
    """The trunk's state and an OPTIONS round trip now, from the running core."""
    _trunk(name)
    answer = corectl.trunk_test(name)
    if answer is None:
        raise ApiError(409, "the core is not running: start it to test a trunk")
    if "error" in answer:
        raise ApiError(409, f"the core did not test trunk {name}: {answer['error']}")
    return jsonify(answer)


# --- the office's numbers (DIDs) --------------------------------------------------------------


def _did_json(did: dids.Did) -> dict[str, Any]:
    return {
        "number": did.number, "label": did.label, "trunk": did.trunk,
        "destination": did.destination,
        "destination_description": destinations.describe(get_db(), did.destination),
    }  # fmt: skip


def _did(number: str) -> dids.Did:
    did = dids.get(get_db(), number)
    if did is None:
        raise ApiError(404, f"no DID {dids.normalize_or_text(get_db(), number)}")
    return did


@bp.route("/dids", methods=["GET"])
@access("viewer")
def list_dids() -> ResponseReturnValue:
    return jsonify(dids=[_did_json(d) for d in dids.list_all(get_db())])


@bp.route("/dids", methods=["POST"])
@access("admin")
def create_did() -> ResponseReturnValue:
    data = _body({"number": True, "destination": True, "label": False, "trunk": False})
    try:
        did = dids.add(
            get_db(), data["number"], data["destination"], data.get("label", ""),
            data.get("trunk", ""),
        )  # fmt: skip
    except DidError as exc:
        raise ApiError(409 if isinstance(exc, DidTaken) else 400, str(exc)) from None
    corectl.reload()
    return jsonify(_did_json(did)), 201


@bp.route("/dids/<number>", methods=["GET"])
@access("viewer")
def get_did(number: str) -> ResponseReturnValue:
    return jsonify(_did_json(_did(number)))


@bp.route("/dids/<number>", methods=["PATCH"])
@access("admin")
def update_did(number: str) -> ResponseReturnValue:
    did = _did(number)
    data = _body({"destination": False, "label": False, "trunk": False}, some=True)
    try:
        changed = dids.update(
            get_db(), did.number, destination=data.get("destination"), label=data.get("label"),
            trunk=data.get("trunk"),
        )  # fmt: skip
    except DidError as exc:
        raise ApiError(400, str(exc)) from None
    corectl.reload()
    return jsonify(_did_json(changed))


@bp.route("/dids/<number>", methods=["DELETE"])
@access("admin")
def delete_did(number: str) -> ResponseReturnValue:
    did = _did(number)
    try:
        dids.remove(get_db(), did.number)
    except DidError as exc:  # an extension or a route presents it as caller ID
        raise ApiError(409, str(exc)) from None
    corectl.reload()
    return "", 204


# --- outbound routes --------------------------------------------------------------------------

ROUTE_KINDS = {"patterns": "strings", "trunks": "strings", "position": "integer"}


def _route_json(route: routes.Route) -> dict[str, Any]:
    return {
        "name": route.name, "position": route.position, "patterns": list(route.patterns),
        "trunks": list(route.trunks), "prepend": route.prepend, "caller_id": route.caller_id,
    }  # fmt: skip


def _route(name: str) -> routes.Route:
    route = routes.get(get_db(), name)
    if route is None:
        raise ApiError(404, f"no route {name}")
    return route


@bp.route("/routes", methods=["GET"])
@access("viewer")
def list_routes() -> ResponseReturnValue:
    """Every route in the order they are tried."""
    return jsonify(routes=[_route_json(r) for r in routes.list_all(get_db())])


@bp.route("/routes", methods=["POST"])
@access("admin")
def create_route() -> ResponseReturnValue:
    data = _body(
        {"name": True, "patterns": True, "trunks": True, "prepend": False, "caller_id": False,
         "position": False},
        ROUTE_KINDS,
    )  # fmt: skip
    try:
        route = routes.add(
            get_db(), data["name"], data["patterns"], data["trunks"], data.get("prepend", ""),
            data.get("caller_id", ""), data.get("position"),
        )  # fmt: skip
    except RouteError as exc:
        raise ApiError(409 if isinstance(exc, RouteExists) else 400, str(exc)) from None
    corectl.reload()
    return jsonify(_route_json(route)), 201


@bp.route("/routes/<name>", methods=["GET"])
@access("viewer")
def get_route(name: str) -> ResponseReturnValue:
    return jsonify(_route_json(_route(name)))


@bp.route("/routes/<name>", methods=["PATCH"])
@access("admin")
def update_route(name: str) -> ResponseReturnValue:
    _route(name)
    data = _body(
        {"patterns": False, "trunks": False, "prepend": False, "caller_id": False}, ROUTE_KINDS,
        some=True,
    )  # fmt: skip
    try:
        route = routes.update(
            get_db(), name, patterns=data.get("patterns"), trunks=data.get("trunks"),
            prepend=data.get("prepend"), caller_id=data.get("caller_id"),
        )  # fmt: skip
    except RouteError as exc:
        raise ApiError(400, str(exc)) from None
    corectl.reload()
    return jsonify(_route_json(route))


@bp.route("/routes/<name>/move", methods=["POST"])
@access("admin")
def move_route(name: str) -> ResponseReturnValue:
    """Put a route at `position` (1 is tried first); answers every route in the new order."""
    _route(name)
    data = _body({"position": True}, ROUTE_KINDS)
    try:
        routes.move(get_db(), name, data["position"])
    except RouteError as exc:
        raise ApiError(400, str(exc)) from None
    corectl.reload()
    return jsonify(routes=[_route_json(r) for r in routes.list_all(get_db())])


@bp.route("/routes/<name>", methods=["DELETE"])
@access("admin")
def delete_route(name: str) -> ResponseReturnValue:
    _route(name)
    try:
        routes.remove(get_db(), name)
    except RouteError as exc:  # calls are still sent to it
        raise ApiError(409, str(exc)) from None
    corectl.reload()
    return "", 204


from appliance.web import (  # noqa: E402  # their routes, on this blueprint
    api_menus,  # noqa: F401
    api_prompts,  # noqa: F401
    api_voicemail,  # noqa: F401
)
