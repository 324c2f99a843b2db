"""The OpenAPI 3.0 description of /api/v1, served at /api/v1/openapi.json.

Kept beside the views it describes; tests check that every route is described with its
methods and nothing else, and schemathesis checks the answers against these schemas."""

from __future__ import annotations

from typing import Any

from appliance.store.cdrs import DISPOSITIONS

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
        "required": ["number", "name", "registered"],
        "properties": {
            "number": NUMBER,
            "name": NAME,
            "registered": {"type": "integer", "minimum": 0, "description": "bindings now"},
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
        "required": ["name"],
        "additionalProperties": False,
        "properties": {"name": NAME},
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
        },
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
            "summary": "Rename an extension (its caller ID)",
            "operationId": "updateExtension",
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("ExtensionChange")}},
            },
            "responses": {
                "200": _json("changed", _ref("Extension")),
                "400": _error("invalid name"),
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
}


def document(server: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "PBX appliance API",
            "version": "1",
            "description": "Extensions, call records, registrations and live calls. Create a"
            " token on the System page and send it as `Authorization: Bearer TOKEN`.",
        },
        "servers": [{"url": f"{server}/api/v1"}],
        "security": [{"bearer": []}],
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
