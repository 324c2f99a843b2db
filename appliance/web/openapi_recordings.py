"""The OpenAPI description of /api/v1/recordings and /api/v1/recording-rules
(`appliance.web.recordings`), merged into the document by `appliance.web.openapi`."""

from __future__ import annotations

from typing import Any

from appliance.store.recordings import DELETE_REASONS, DIRECTIONS, MATCH_KINDS

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _ERROR}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}  # fmt: skip


AUTH = {"401": _error("no valid API token")}
WRITE = {**AUTH, "403": _error("the token's role is viewer: read-only")}
ID = {"type": "integer", "minimum": 1, "maximum": 2**62}
RECORDING_PARAM = {"name": "recording_id", "in": "path", "required": True, "schema": ID}
RULE_PARAM = {"name": "rule_id", "in": "path", "required": True, "schema": ID}
NULLABLE_NUMBER = {"type": "number", "nullable": True}

SCHEMAS: dict[str, Any] = {
    "Recording": {
        "type": "object",
        "required": ["id", "call_id", "started_at", "seconds", "bytes", "format", "file"],
        "properties": {
            "id": {"type": "integer"},
            "call_id": {"type": "string", "description": "the call's CDR id"},
            "started_at": {"type": "number", "description": "Unix time"},
            "seconds": {"type": "number"},
            "bytes": {"type": "integer"},
            "rule": {"type": "integer", "nullable": True,
                     "description": "the rule that recorded it; null: on demand or recovered"},
            "format": {"type": "string", "enum": ["ogg", "flac", "wav"]},
            "deleted_at": NULLABLE_NUMBER,
            "deleted_reason": {"type": "string", "nullable": True,
                               "enum": [*DELETE_REASONS, None]},
            "file": {"type": "string", "description": "the URL of the file (ranges supported)"},
        },
    },
    "RecordingRule": {
        "type": "object",
        "required": ["id", "match", "value", "record", "retention_days", "consent"],
        "properties": {
            "id": {"type": "integer"},
            "match": {"type": "string", "enum": list(MATCH_KINDS)},
            "value": {"type": "string"},
            "record": {"type": "boolean"},
            "retention_days": {"type": "integer", "nullable": True},
            "consent": {"type": "boolean"},
        },
    },
    "RecordingRuleNew": {
        "type": "object",
        "required": ["match", "value"],
        "additionalProperties": False,
        "properties": {
            "match": {"type": "string", "enum": list(MATCH_KINDS),
                      "description": "extension (either party), did, route (or trunk) or"
                      " direction; the most specific kind decides"},
            "value": {"type": "string", "description": "an extension or DID, a route or trunk"
                      f" name, or a direction: {', '.join(DIRECTIONS)}", "example": "inbound"},
            "record": {"type": "boolean", "default": True,
                       "description": "false: these calls are not recorded (an exception)"},
            "retention_days": {"type": "integer", "nullable": True, "minimum": 0,
                               "maximum": 36500, "description": "null: the default"},
            "consent": {"type": "boolean", "default": False,
                        "description": "the caller hears the consent announcement"},
        },
    },
}  # fmt: skip

PATHS: dict[str, Any] = {
    "/recordings": {
        "get": {
            "summary": "Call recordings, newest first",
            "operationId": "listRecordings",
            "parameters": [
                _query("call_id", {"type": "string"}, "only this call's recordings"),
                _query("deleted", {"type": "string", "enum": ["0", "1"]},
                       "1: include deleted ones (with the reason)"),
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000,
                                 "default": 100}, "at most this many"),
                _query("offset", {"type": "integer", "minimum": 0, "maximum": 1_000_000_000,
                                  "default": 0}, "skip this many"),
            ],
            "responses": {
                "200": _json("recordings", {
                    "type": "object", "required": ["recordings"],
                    "properties": {"recordings": {"type": "array",
                                                  "items": _ref("Recording")}},
                }),
                "400": _error("a limit or offset out of range"),
                **AUTH,
            },
        },
    },
    "/recordings/{recording_id}": {
        "parameters": [RECORDING_PARAM],
        "get": {
            "summary": "One recording",
            "operationId": "getRecording",
            "responses": {"200": _json("the recording", _ref("Recording")),
                          "404": _error("no such recording"), **AUTH},
        },
        "delete": {
            "summary": "Delete a recording's file (its row stays, marked deleted)",
            "operationId": "deleteRecording",
            "responses": {"204": {"description": "deleted (or it was already)"},
                          "404": _error("no such recording"), **WRITE},
        },
    },
    "/recordings/{recording_id}/file": {
        "parameters": [RECORDING_PARAM],
        "get": {
            "summary": "The recording's file (stereo: the caller left, the callee right); HTTP"
            " Range requests are answered 206. Each download is logged with the token's name.",
            "operationId": "getRecordingFile",
            "responses": {
                "200": {"description": "the whole file", "content": {
                    "audio/ogg": {"schema": {"type": "string", "format": "binary"}}}},
                "206": {"description": "the range asked for", "content": {
                    "audio/ogg": {"schema": {"type": "string", "format": "binary"}}}},
                "404": _error("no such recording"),
                "410": _error("the recording was deleted"),
                **AUTH,
            },
        },
    },
    "/recording-rules": {
        "get": {
            "summary": "The rules deciding which calls are recorded, in the order tried",
            "operationId": "listRecordingRules",
            "responses": {
                "200": _json("rules", {
                    "type": "object", "required": ["rules"],
                    "properties": {"rules": {"type": "array", "items": _ref("RecordingRule")}},
                }),
                **AUTH,
            },
        },
        "post": {
            "summary": "Add a recording rule",
            "operationId": "createRecordingRule",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("RecordingRuleNew")}}},
            "responses": {
                "201": _json("the rule", _ref("RecordingRule")),
                "400": _error("a value the rule's kind does not take"),
                "409": _error("a rule for this match and value exists"),
                **WRITE,
            },
        },
    },
    "/recording-rules/{rule_id}": {
        "parameters": [RULE_PARAM],
        "delete": {
            "summary": "Remove a recording rule",
            "operationId": "deleteRecordingRule",
            "responses": {"204": {"description": "removed"},
                          "404": _error("no such rule"), **WRITE},
        },
    },
}  # fmt: skip
