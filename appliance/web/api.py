"""The REST API under /api/v1: extensions, call records, registrations and live calls, for
CRMs and scripts. Bearer-token authentication (tokens made on the system page); every error is
JSON `{"error": {"code", "message"}}`; described by /api/v1/openapi.json (appliance.web.openapi).
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, g, jsonify, request
from flask.typing import ResponseReturnValue

from appliance.store import cdrs, extensions, registrations, tokens
from appliance.store.extensions import ExtensionError, ExtensionExists
from appliance.web import corectl
from appliance.web.auth import access, get_db, view_access

bp = Blueprint("api", __name__, url_prefix="/api/v1")

CDR_QUERY = frozenset({"since", "until", "extension", "disposition", "limit", "offset"})
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


def _body(allowed: dict[str, bool]) -> dict[str, str]:
    """The JSON object of a request: only `allowed` keys (True = required), all strings."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object (Content-Type: application/json)")
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ApiError(400, f"unknown fields: {', '.join(unknown)}")
    missing = [key for key, required in allowed.items() if required and key not in data]
    if missing:
        raise ApiError(400, f"missing fields: {', '.join(missing)}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise ApiError(400, f"{key} must be a string")
    return data


def _extension_json(ext: extensions.Extension, registered: int) -> dict[str, Any]:
    return {"number": ext.number, "name": ext.name, "registered": registered}


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
    data = _body({"name": True})
    try:
        extensions.rename(get_db(), number, data["name"].strip())
    except ExtensionError as exc:
        raise _rejected(exc) from None
    corectl.reload()
    return jsonify(_extension_json(_extension(number), _registered(number).get(number, 0)))


@bp.route("/extensions/<number>", methods=["DELETE"])
@access("admin")
def delete_extension(number: str) -> ResponseReturnValue:
    _extension(number)
    extensions.remove(get_db(), number)
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
    where = cdrs.Filter(
        since=_number_arg("since", 0, 1e10),
        until=_number_arg("until", 0, 1e10),
        extension=extension,
        disposition=disposition,
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
