"""The OpenAPI 3.0 description of /api/v1, served at /api/v1/openapi.json.

Kept beside the views it describes; tests check that every route is described with its
methods and nothing else, and schemathesis checks the answers against these schemas."""

from __future__ import annotations

from typing import Any

from appliance.numbering import PERMISSION_CLASSES
from appliance.store.cdrs import DIRECTIONS, DISPOSITIONS
from appliance.store.destinations import HANGUP_CAUSES
from appliance.store.encryption import POLICIES
from appliance.store.trunks import CODECS, DID_SOURCES, KINDS, TRANSPORTS

NUMBER = {"type": "string", "pattern": "^[0-9]{2,6}$", "example": "101"}
NAME = {"type": "string", "maxLength": 64, "pattern": '^[^"\\\\]*$', "example": "Reception"}
PASSWORD = {
    "type": "string",
    "minLength": 10,
    "maxLength": 128,
    "pattern": '^[^ "\\\\]*$',
    "description": "At least 10 characters, letters and digits, not containing the number;"
    " no spaces, quotes or backslashes. Weak passwords are refused with 400.",
}
NULLABLE_NUMBER = {"type": "number", "nullable": True}
NULLABLE_TEXT = {"type": "string", "nullable": True}
ROW_NAME = {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,31}$"}
TRUNK_NAME = {**ROW_NAME, "example": "main"}
ROUTE_NAME = {**ROW_NAME, "example": "local"}
DID_NUMBER = {
    "type": "string",
    "minLength": 1,
    "example": "+493012345678",
    "description": "In any written form (`+49 30 1234-5678`, `030 12345678`, a short number);"
    " stored and answered normalised (E.164 `+...`, or a short number's digits).",
}
PERMISSIONS = {
    "type": "array",
    "items": {"type": "string", "enum": list(PERMISSION_CLASSES)},
    "description": "Classes of numbers the extension may call; `internal` is always among"
    " them (emergency numbers are always allowed).",
}
CALLER_ID = {
    "type": "string",
    "example": "",
    "description": "One of the office's DIDs presented on outbound calls; empty for the"
    " route's or the trunk's. Another number is refused with 400.",
}
DESTINATION = {
    "type": "string",
    "example": "extension:101",
    "description": "Where calls to the number go: `extension:NUMBER` (an extension that"
    f" exists) or `hangup:CAUSE` ({', '.join(HANGUP_CAUSES)}).",
}
TRUNK_STATES = (
    "registered", "registering", "failed", "unreachable", "reachable", "unknown", "disabled"
)  # fmt: skip
"""A trunk's state as the core reports it (appliance.pbx.trunks)."""


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


AUTH = {"401": _error("no valid API token")}
WRITE = {**AUTH, "403": _error("the token's role is viewer: read-only")}
NUMBER_PARAM = {"name": "number", "in": "path", "required": True, "schema": NUMBER}
TRUNK_PARAM = {"name": "name", "in": "path", "required": True, "schema": TRUNK_NAME}
ROUTE_PARAM = {"name": "name", "in": "path", "required": True, "schema": ROUTE_NAME}
DID_PARAM = {"name": "number", "in": "path", "required": True, "schema": DID_NUMBER}

MEDIA_ENCRYPTION: dict[str, Any] = {
    "type": "string", "enum": list(POLICIES),
    "description": "SRTP (SDES keys, over SIP over TLS only): none; optional (accept SRTP, offer"
                   " plain RTP; the default); required (refuse plain RTP with 488, offer SRTP)",
}  # fmt: skip

TRUNK_SETTINGS: dict[str, Any] = {
    "kind": {
        "type": "string", "enum": list(KINDS),
        "description": "register: the box registers with username and password; ip: the"
        " provider is recognised by its addresses.",
    },
    "server": {
        "type": "string", "example": "sip.example.net:5060",
        "description": "HOST or HOST:PORT (IPv6 in brackets when a port follows).",
    },
    "outbound_proxy": {"type": "string", "description": "HOST[:PORT], or empty for none"},
    "transport": {"type": "string", "enum": list(TRANSPORTS)},
    "username": {"type": "string", "description": "at most 64 characters, no spaces"},
    "auth_user": {"type": "string", "description": "empty for the username"},
    "password": {
        "type": "string", "maxLength": 128,
        "description": "Accepted, never answered: answers show `********` when one is set.",
    },
    "from_user": {"type": "string"},
    "from_domain": {"type": "string"},
    "codecs": {
        "type": "string", "example": ",".join(CODECS),
        "description": f"Comma-separated, most preferred first: some of {', '.join(CODECS)}.",
    },
    "max_calls": {"type": "integer", "minimum": 0, "maximum": 1000, "description": "0: no limit"},
    "expires": {"type": "integer", "minimum": 60, "maximum": 86400},
    "options_interval": {
        "type": "integer", "minimum": 0, "maximum": 3600,
        "description": "Seconds between OPTIONS keep-alives: 0 (off) or 10 to 3600.",
    },
    "external_address": {"type": "string"},
    "match_cidrs": {"type": "string", "description": "comma-separated networks (CIDR)"},
    "did_from": {
        "type": "string", "example": "auto",
        "description": f"{', '.join(DID_SOURCES)} or header:NAME",
    },
    "late_offer": {"type": "boolean"},
    "enabled": {"type": "boolean"},
    "media_encryption": MEDIA_ENCRYPTION,
}  # fmt: skip
"""The settings of a trunk. The store checks them (`appliance.store.trunks`) and refuses what
does not fit with 400; text it trims or reads in any case is not narrowed further here."""

ROUTE_SETTINGS: dict[str, Any] = {
    "patterns": {
        "type": "array", "minItems": 1, "items": {"type": "string"}, "example": ["8XXXXXXXXXX"],
        "description": "Dial patterns (X any digit, Z 1-9, N 2-9, [1-4] ranges, . any more).",
    },
    "trunks": {
        "type": "array", "minItems": 1, "items": TRUNK_NAME,
        "description": "Trunks that exist, each once, tried in this order.",
    },
    "prepend": {"type": "string", "description": "digits put before the number sent"},
    "caller_id": CALLER_ID,
}  # fmt: skip

MAX_OUTBOUND_CALLS: dict[str, Any] = {
    "type": "integer", "minimum": 0, "maximum": 1000, "nullable": True,
    "description": "outbound calls it may have up at once (toll-fraud limit); 0: no limit;"
                   " null: the setting tollfraud.max_outbound_calls",
}  # fmt: skip

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
            }
        },
    },
    "Extension": {
        "type": "object",
        "required": [
            "number",
            "name",
            "registered",
            "permissions",
            "caller_id",
            "max_outbound_calls",
            "media_encryption",
        ],
        "properties": {
            "number": NUMBER,
            "name": NAME,
            "registered": {"type": "integer", "minimum": 0, "description": "bindings now"},
            "permissions": PERMISSIONS,
            "caller_id": CALLER_ID,
            "max_outbound_calls": MAX_OUTBOUND_CALLS,
            "media_encryption": MEDIA_ENCRYPTION,
        },
    },
    "ExtensionWithPassword": {
        "allOf": [
            _ref("Extension"),
            {
                "type": "object",
                "required": ["password"],
                "properties": {
                    "password": {"type": "string", "description": "shown only in this answer"}
                },
            },
        ]
    },
    "NewExtension": {
        "type": "object",
        "required": ["number"],
        "additionalProperties": False,
        "properties": {"number": NUMBER, "name": NAME, "password": PASSWORD},
    },
    "ExtensionChange": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "name": NAME,
            "permissions": PERMISSIONS,
            "caller_id": CALLER_ID,
            "max_outbound_calls": MAX_OUTBOUND_CALLS,
            "media_encryption": MEDIA_ENCRYPTION,
        },
    },
    "PasswordChange": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"password": PASSWORD},
    },
    "Cdr": {
        "type": "object",
        "required": ["id", "started_at", "ended_at", "caller", "dialled", "disposition"],
        "properties": {
            "id": {"type": "string"},
            "started_at": {"type": "number", "description": "Unix time"},
            "answered_at": NULLABLE_NUMBER,
            "ended_at": {"type": "number"},
            "caller": {"type": "string"},
            "caller_name": {"type": "string"},
            "dialled": {"type": "string"},
            "answered_by": NULLABLE_TEXT,
            "disposition": {"type": "string", "enum": list(DISPOSITIONS)},
            "duration": {"type": "number"},
            "billsec": {"type": "number"},
            "hangup_side": {"type": "string", "enum": ["caller", "callee", "system"]},
            "hangup_cause": {"type": "string"},
            "codec_caller": NULLABLE_TEXT,
            "codec_callee": NULLABLE_TEXT,
            "rtp_caller": {"type": "object", "nullable": True},
            "rtp_callee": {"type": "object", "nullable": True},
            "direction": {"type": "string", "enum": list(DIRECTIONS)},
            "trunk": {**NULLABLE_TEXT, "description": "the trunk it came in or went out by"},
            "did": {**NULLABLE_TEXT, "description": "the office's number an inbound call was to"},
            "did_label": {**NULLABLE_TEXT, "description": "that number's label at the time"},
            "sent": {**NULLABLE_TEXT, "description": "the number sent to the provider"},
        },
    },
    "Trunk": {
        "type": "object",
        "required": ["name", *TRUNK_SETTINGS, "status"],
        "properties": {
            "name": TRUNK_NAME,
            **TRUNK_SETTINGS,
            "password": {
                "type": "string",
                "enum": ["", "********"],
                "description": "`********` when a password is set: never the password itself",
            },
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "status": {
                "type": "object",
                "nullable": True,
                "description": "as the running core reports it; null when it does not run it",
                "properties": {
                    "state": {"type": "string", "enum": list(TRUNK_STATES)},
                    "last_response": NULLABLE_TEXT,
                    "registered_until": NULLABLE_NUMBER,
                    "options_rtt_ms": NULLABLE_NUMBER,
                    "calls": {"type": "integer", "minimum": 0},
                },
            },
        },
    },
    "NewTrunk": {
        "type": "object",
        "required": ["name", "server"],
        "additionalProperties": False,
        "properties": {"name": TRUNK_NAME, **TRUNK_SETTINGS},
    },
    "TrunkChange": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": TRUNK_SETTINGS,
    },
    "TrunkTest": {
        "type": "object",
        "required": ["name", "state", "reachable", "rtt_ms"],
        "properties": {
            "name": TRUNK_NAME,
            "kind": {"type": "string", "enum": list(KINDS)},
            "server": {"type": "string"},
            "state": {"type": "string", "enum": list(TRUNK_STATES)},
            "last_response": NULLABLE_TEXT,
            "registered_until": NULLABLE_NUMBER,
            "options_rtt_ms": NULLABLE_NUMBER,
            "calls": {"type": "integer", "minimum": 0},
            "max_calls": {"type": "integer", "minimum": 0},
            "reachable": {"type": "boolean", "description": "an OPTIONS answer came back"},
            "rtt_ms": {**NULLABLE_NUMBER, "description": "its round trip; null without one"},
        },
    },
    "Did": {
        "type": "object",
        "required": ["number", "label", "trunk", "destination", "destination_description"],
        "properties": {
            "number": {**DID_NUMBER, "description": "normalised"},
            "label": {"type": "string"},
            "trunk": {"type": "string", "description": "its trunk; empty for any trunk"},
            "destination": {"type": "string", "example": "extension:101"},
            "destination_description": {"type": "string", "example": "extension 101 (Anna)"},
        },
    },
    "NewDid": {
        "type": "object",
        "required": ["number", "destination"],
        "additionalProperties": False,
        "properties": {
            "number": DID_NUMBER,
            "destination": DESTINATION,
            "label": {"type": "string", "description": "at most 32 characters"},
            "trunk": {"type": "string", "description": "a trunk's name; empty for any trunk"},
        },
    },
    "DidChange": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {
            "destination": DESTINATION,
            "label": {"type": "string", "description": "at most 32 characters"},
            "trunk": {"type": "string", "description": "a trunk's name; empty for any trunk"},
        },
    },
    "Route": {
        "type": "object",
        "required": ["name", "position", "patterns", "trunks", "prepend", "caller_id"],
        "properties": {
            "name": ROUTE_NAME,
            "position": {"type": "integer", "minimum": 1, "description": "1 is tried first"},
            "patterns": {"type": "array", "items": {"type": "string"}},
            "trunks": {"type": "array", "items": TRUNK_NAME, "description": "failover order"},
            "prepend": {"type": "string"},
            "caller_id": {"type": "string"},
        },
    },
    "NewRoute": {
        "type": "object",
        "required": ["name", "patterns", "trunks"],
        "additionalProperties": False,
        "properties": {
            "name": ROUTE_NAME,
            **ROUTE_SETTINGS,
            "position": {
                "type": "integer",
                "minimum": 1,
                "description": "where it goes (the others move down); last when not given",
            },
        },
    },
    "RouteChange": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": ROUTE_SETTINGS,
    },
    "RouteMove": {
        "type": "object",
        "required": ["position"],
        "additionalProperties": False,
        "properties": {"position": {"type": "integer", "minimum": 1}},
    },
    "Registration": {
        "type": "object",
        "required": ["aor", "contact", "source", "expires_in"],
        "properties": {
            "aor": {"type": "string", "description": "the extension number"},
            "contact": {"type": "string"},
            "source": {"type": "string", "description": "address the phone registered from"},
            "transport": {"type": "string"},
            "user_agent": {"type": "string"},
            "registered_at": {"type": "number"},
            "expires_in": {"type": "integer"},
        },
    },
    "Ban": {
        "type": "object",
        "required": ["address", "reason", "banned_at", "until", "remaining", "count"],
        "properties": {
            "address": {"type": "string"},
            "reason": {"type": "string", "description": "the last refusal, as the log says it"},
            "banned_at": {"type": "number", "description": "Unix time"},
            "until": {"type": "number", "description": "Unix time the ban ends"},
            "remaining": {"type": "integer", "description": "seconds left"},
            "count": {
                "type": "integer",
                "description": "bans of this address so far; each lasts twice the one before",
            },
        },
    },
    "LiveCall": {
        "type": "object",
        "required": ["id", "caller", "dialled", "state", "duration", "codecs"],
        "properties": {
            "id": {"type": "string"},
            "caller": {"type": "string"},
            "dialled": {"type": "string"},
            "state": {"type": "string"},
            "answered_by": NULLABLE_TEXT,
            "duration": {"type": "number", "description": "seconds since the call began"},
            "codecs": {"type": "array", "items": NULLABLE_TEXT},
        },
    },
}


def _list(key: str, schema: str, description: str) -> dict[str, Any]:
    """A 200 answer holding one array `key` of `schema` objects."""
    return _json(
        description,
        {
            "type": "object",
            "required": [key],
            "properties": {key: {"type": "array", "items": _ref(schema)}},
        },
    )


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


PATHS: dict[str, Any] = {
    "/extensions": {
        "get": {
            "summary": "List extensions",
            "operationId": "listExtensions",
            "responses": {
                "200": _json(
                    "every extension",
                    {
                        "type": "object",
                        "required": ["extensions"],
                        "properties": {"extensions": {"type": "array", "items": _ref("Extension")}},
                    },
                ),
                **AUTH,
            },
        },
        "post": {
            "summary": "Create an extension; its SIP password is in the answer, only there",
            "operationId": "createExtension",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("NewExtension")}},
            },
            "responses": {
                "201": _json("created", _ref("ExtensionWithPassword")),
                "400": _error("invalid number, name or password; outside the allowed range"),
                "409": _error("the number exists already"),
                **WRITE,
            },
        },
    },
    "/extensions/{number}": {
        "parameters": [NUMBER_PARAM],
        "get": {
            "summary": "One extension",
            "operationId": "getExtension",
            "responses": {
                "200": _json("the extension", _ref("Extension")),
                "404": _error("no such extension"),
                **AUTH,
            },
        },
        "patch": {
            "summary": "Change an extension's name, permission classes or caller ID (all or"
            " nothing)",
            "operationId": "updateExtension",
            "requestBody": _body("ExtensionChange"),
            "responses": {
                "200": _json("changed", _ref("Extension")),
                "400": _error("invalid name or class; a caller ID that is not a DID; no field"),
                "404": _error("no such extension"),
                **WRITE,
            },
        },
        "delete": {
            "summary": "Delete an extension and its registrations",
            "operationId": "deleteExtension",
            "responses": {
                "204": {"description": "deleted"},
                "404": _error("no such extension"),
                "409": _error("a DID or a setting still sends calls to it"),
                **WRITE,
            },
        },
    },
    "/extensions/{number}/password": {
        "parameters": [NUMBER_PARAM],
        "post": {
            "summary": "Set a new SIP password (generated unless given); shown only here",
            "operationId": "newExtensionPassword",
            "requestBody": {
                "required": False,
                "content": {"application/json": {"schema": _ref("PasswordChange")}},
            },
            "responses": {
                "200": _json(
                    "the new password",
                    {
                        "type": "object",
                        "required": ["number", "password"],
                        "properties": {"number": NUMBER, "password": {"type": "string"}},
                    },
                ),
                "400": _error("weak password"),
                "404": _error("no such extension"),
                **WRITE,
            },
        },
    },
    "/trunks": {
        "get": {
            "summary": "List SIP trunks, with their state in the running core",
            "operationId": "listTrunks",
            "responses": {"200": _list("trunks", "Trunk", "every trunk"), **AUTH},
        },
        "post": {
            "summary": "Create a trunk (the password is accepted, never answered)",
            "operationId": "createTrunk",
            "requestBody": _body("NewTrunk"),
            "responses": {
                "201": _json("created", _ref("Trunk")),
                "400": _error("an invalid setting (the message names it)"),
                "409": _error("a trunk of that name exists"),
                **WRITE,
            },
        },
    },
    "/trunks/{name}": {
        "parameters": [TRUNK_PARAM],
        "get": {
            "summary": "One trunk",
            "operationId": "getTrunk",
            "responses": {
                "200": _json("the trunk", _ref("Trunk")),
                "404": _error("no such trunk"),
                **AUTH,
            },
        },
        "patch": {
            "summary": "Change the given settings of a trunk",
            "operationId": "updateTrunk",
            "requestBody": _body("TrunkChange"),
            "responses": {
                "200": _json("changed", _ref("Trunk")),
                "400": _error("an invalid setting, or none given"),
                "404": _error("no such trunk"),
                **WRITE,
            },
        },
        "delete": {
            "summary": "Delete a trunk no route or DID uses",
            "operationId": "deleteTrunk",
            "responses": {
                "204": {"description": "deleted"},
                "404": _error("no such trunk"),
                "409": _error("a route or a DID uses it"),
                **WRITE,
            },
        },
    },
    "/trunks/{name}/test": {
        "parameters": [TRUNK_PARAM],
        "post": {
            "summary": "Test a trunk now: its registration state and an OPTIONS round trip",
            "operationId": "testTrunk",
            "responses": {
                "200": _json("what the running core found", _ref("TrunkTest")),
                "404": _error("no such trunk"),
                "409": _error("the core is not running, or does not run this trunk"),
                **WRITE,
            },
        },
    },
    "/dids": {
        "get": {
            "summary": "List the office's numbers (DIDs) and where their calls go",
            "operationId": "listDids",
            "responses": {"200": _list("dids", "Did", "every DID"), **AUTH},
        },
        "post": {
            "summary": "Add one of the office's numbers",
            "operationId": "createDid",
            "requestBody": _body("NewDid"),
            "responses": {
                "201": _json("created", _ref("Did")),
                "400": _error("not a number; a destination or trunk that does not exist"),
                "409": _error("the number is an extension's or another DID's"),
                **WRITE,
            },
        },
    },
    "/dids/{number}": {
        "parameters": [DID_PARAM],
        "get": {
            "summary": "One DID, by its number in any written form",
            "operationId": "getDid",
            "responses": {
                "200": _json("the DID", _ref("Did")),
                "404": _error("no such DID"),
                **AUTH,
            },
        },
        "patch": {
            "summary": "Change where a DID's calls go, its label or its trunk",
            "operationId": "updateDid",
            "requestBody": _body("DidChange"),
            "responses": {
                "200": _json("changed", _ref("Did")),
                "400": _error("a destination or trunk that does not exist; no field"),
                "404": _error("no such DID"),
                **WRITE,
            },
        },
        "delete": {
            "summary": "Delete a DID no extension or route presents as caller ID",
            "operationId": "deleteDid",
            "responses": {
                "204": {"description": "deleted"},
                "404": _error("no such DID"),
                "409": _error("an extension or a route presents it as caller ID"),
                **WRITE,
            },
        },
    },
    "/routes": {
        "get": {
            "summary": "Outbound routes in the order they are tried",
            "operationId": "listRoutes",
            "responses": {
                "200": _list("routes", "Route", "every route, first tried first"),
                **AUTH,
            },
        },
        "post": {
            "summary": "Add an outbound route (last, or at `position`)",
            "operationId": "createRoute",
            "requestBody": _body("NewRoute"),
            "responses": {
                "201": _json("created", _ref("Route")),
                "400": _error("an invalid pattern or position; a trunk or DID that does not exist"),
                "409": _error("a route of that name exists"),
                **WRITE,
            },
        },
    },
    "/routes/{name}": {
        "parameters": [ROUTE_PARAM],
        "get": {
            "summary": "One route",
            "operationId": "getRoute",
            "responses": {
                "200": _json("the route", _ref("Route")),
                "404": _error("no such route"),
                **AUTH,
            },
        },
        "patch": {
            "summary": "Change a route's patterns, trunks, prepend or caller ID",
            "operationId": "updateRoute",
            "requestBody": _body("RouteChange"),
            "responses": {
                "200": _json("changed", _ref("Route")),
                "400": _error("an invalid pattern; a trunk or DID that does not exist; no field"),
                "404": _error("no such route"),
                **WRITE,
            },
        },
        "delete": {
            "summary": "Delete a route (the ones after it move up)",
            "operationId": "deleteRoute",
            "responses": {
                "204": {"description": "deleted"},
                "404": _error("no such route"),
                "409": _error("calls are still sent to it"),
                **WRITE,
            },
        },
    },
    "/routes/{name}/move": {
        "parameters": [ROUTE_PARAM],
        "post": {
            "summary": "Put a route at another position (1 is tried first)",
            "operationId": "moveRoute",
            "requestBody": _body("RouteMove"),
            "responses": {
                "200": _list("routes", "Route", "every route in the new order"),
                "400": _error("a position beyond the list"),
                "404": _error("no such route"),
                **WRITE,
            },
        },
    },
    "/cdrs": {
        "get": {
            "summary": "Call records, newest first",
            "operationId": "listCdrs",
            "parameters": [
                _query(
                    "since",
                    {"type": "number", "minimum": 0, "maximum": 1e10},
                    "calls that started at or after this Unix time",
                ),
                _query(
                    "until",
                    {"type": "number", "minimum": 0, "maximum": 1e10},
                    "calls that started before this Unix time",
                ),
                _query("extension", NUMBER, "calls made, dialled or answered by this number"),
                _query(
                    "disposition",
                    {"type": "string", "enum": list(DISPOSITIONS)},
                    "how the call ended",
                ),
                _query(
                    "direction",
                    {"type": "string", "enum": list(DIRECTIONS)},
                    "between extensions, in from a trunk, or out through one",
                ),
                _query("trunk", TRUNK_NAME, "calls that came in or went out by this trunk"),
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
                    "at most this many records",
                ),
                _query(
                    "offset",
                    {"type": "integer", "minimum": 0, "maximum": 1000000000, "default": 0},
                    "skip this many records",
                ),
            ],
            "responses": {
                "200": _json(
                    "matching records and how many match in all",
                    {
                        "type": "object",
                        "required": ["total", "cdrs"],
                        "properties": {
                            "total": {"type": "integer", "minimum": 0},
                            "cdrs": {"type": "array", "items": _ref("Cdr")},
                        },
                    },
                ),
                "400": _error("invalid filter"),
                **AUTH,
            },
        }
    },
    "/cdrs/{id}": {
        "parameters": [
            {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "get": {
            "summary": "One call record",
            "operationId": "getCdr",
            "responses": {
                "200": _json("the record", _ref("Cdr")),
                "404": _error("no such record"),
                **AUTH,
            },
        },
    },
    "/registrations": {
        "get": {
            "summary": "Phones registered now",
            "operationId": "listRegistrations",
            "responses": {
                "200": _json(
                    "current bindings",
                    {
                        "type": "object",
                        "required": ["registrations"],
                        "properties": {
                            "registrations": {"type": "array", "items": _ref("Registration")}
                        },
                    },
                ),
                **AUTH,
            },
        }
    },
    "/calls": {
        "get": {
            "summary": "Calls in progress",
            "operationId": "listCalls",
            "responses": {
                "200": _json(
                    "live calls, from the running core",
                    {
                        "type": "object",
                        "required": ["core", "calls"],
                        "properties": {
                            "core": {"type": "string", "enum": ["running", "stopped"]},
                            "calls": {"type": "array", "items": _ref("LiveCall")},
                        },
                    },
                ),
                **AUTH,
            },
        }
    },
    "/bans": {
        "get": {
            "summary": "Addresses banned for failed authentications",
            "description": "A source with security.ban_failures failed authentications (or"
            " calls to unknown numbers) within security.ban_window seconds is banned: the box"
            " answers nothing it sends. From the running core, else as stored.",
            "operationId": "listBans",
            "responses": {"200": _list("bans", "Ban", "the bans in force, oldest first"), **AUTH},
        }
    },
    "/bans/{address}": {
        "parameters": [
            {"name": "address", "in": "path", "required": True, "schema": {"type": "string"}}
        ],
        "delete": {
            "summary": "Lift a ban (and forget the address's earlier bans)",
            "operationId": "deleteBan",
            "responses": {
                "204": {"description": "lifted"},
                "404": _error("the address is not banned (or is no IP address)"),
                **WRITE,
            },
        },
    },
}


def document(server: str) -> dict[str, Any]:
    from appliance.web import openapi_menus, openapi_prompts, openapi_recordings, openapi_voicemail

    return {
        "openapi": "3.0.3",
        "info": {
            "title": "PBX appliance API",
            "version": "1",
            "description": "Extensions, SIP trunks, the office's numbers (DIDs), outbound"
            " routes, call records, registrations, live calls and bans. Create a token on the"
            " System page and send it as `Authorization: Bearer TOKEN`. Secrets are accepted and"
            " never answered: a trunk's password reads `********`. Error messages are in English"
            " whatever the request's Accept-Language (the setup page speaks the user's"
            " language; the API's messages are an interface, kept stable: rely on the HTTP"
            " status and `error.code`, and show `error.message` to technicians).",
        },
        "servers": [{"url": f"{server}/api/v1"}],
        "security": [{"bearer": []}],
        "paths": {
            **PATHS,
            **openapi_prompts.PATHS,
            **openapi_menus.PATHS,
            **openapi_recordings.PATHS,
            **openapi_voicemail.PATHS,
        },
        "components": {
            "schemas": {
                **SCHEMAS,
                **openapi_prompts.SCHEMAS,
                **openapi_menus.SCHEMAS,
                **openapi_recordings.SCHEMAS,
                **openapi_voicemail.SCHEMAS,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
