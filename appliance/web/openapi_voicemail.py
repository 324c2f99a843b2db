"""The OpenAPI description of /api/v1/voicemail (`appliance.web.api_voicemail`), merged into
the document by `appliance.web.openapi`."""

from __future__ import annotations

from typing import Any

from appliance.store.voicemail import FOLDERS, GREETINGS, MAX_SECONDS_RANGE

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _ERROR}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


AUTH = {"401": _error("no valid API token")}
WRITE = {**AUTH, "403": _error("the token's role is viewer: read-only")}
NUMBER = {"type": "string", "pattern": "^[0-9]{2,6}$", "example": "101"}
NUMBER_PARAM = {"name": "number", "in": "path", "required": True, "schema": NUMBER,
                "description": "the extension whose mailbox it is"}  # fmt: skip
MESSAGE_PARAM = {"name": "message_id", "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 1, "maximum": 2**62}}  # fmt: skip
LOW, HIGH = MAX_SECONDS_RANGE
FLAGS: dict[str, Any] = {
    "enabled": {"type": "boolean", "description": "false: no calls go to it, nothing is left"},
    "attach": {"type": "boolean", "description": "the e-mail carries the message's audio"},
    "on_busy": {"type": "boolean", "description": "calls to the busy extension go to it"},
    "on_no_answer": {"type": "boolean", "description": "calls nobody answers go to it"},
    "unsolicited_mwi": {"type": "boolean",
                        "description": "message-waiting NOTIFY to phones that did not subscribe"},
}  # fmt: skip
MAX_SECONDS = {"type": "integer", "minimum": LOW, "maximum": HIGH,
               "description": "the longest message, in seconds"}  # fmt: skip
EMAIL = {"type": "string", "maxLength": 254, "pattern": r"^([^@\s]+@[^@\s]+\.[^@\s]+)?$",
         "description": "new messages are sent here; '': none",
         "example": "reception@example.com"}  # fmt: skip

SCHEMAS: dict[str, Any] = {
    "Mailbox": {
        "type": "object",
        "required": ["number", "has_pin", "greeting", "greeting_file", "max_seconds", "email",
                     *FLAGS, "new", "saved"],
        "properties": {
            "number": NUMBER,
            "has_pin": {"type": "boolean", "description": "a PIN is set (it is never shown)"},
            "greeting": {"type": "string", "enum": list(GREETINGS)},
            "greeting_file": {"type": "string",
                              "description": "the custom greeting's file, in the data directory"},
            "max_seconds": MAX_SECONDS,
            "email": EMAIL,
            **FLAGS,
            "new": {"type": "integer", "description": "messages not heard yet"},
            "saved": {"type": "integer"},
        },
    },
    "MailboxBody": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "pin": {"type": "string", "pattern": "^([0-9]{4,10})?$", "writeOnly": True,
                    "description": "4 to 10 digits; '': no PIN (the mailbox cannot be heard by"
                    " phone)"},
            "greeting": {"type": "string", "enum": list(GREETINGS),
                         "description": "custom needs greeting_prompt, now or before"},
            "greeting_prompt": {"type": "string",
                                "description": "a custom prompt's name: the custom greeting"},
            "max_seconds": MAX_SECONDS,
            "email": EMAIL,
            **FLAGS,
        },
    },
    "VoicemailMessage": {
        "type": "object",
        "required": ["id", "mailbox", "caller", "caller_name", "started_at", "seconds",
                     "folder", "audio"],
        "properties": {
            "id": {"type": "integer"},
            "mailbox": NUMBER,
            "caller": {"type": "string"},
            "caller_name": {"type": "string"},
            "started_at": {"type": "number", "description": "Unix time"},
            "seconds": {"type": "number"},
            "folder": {"type": "string", "enum": list(FOLDERS)},
            "audio": {"type": "string", "description": "the URL of its audio (ranges supported)"},
        },
    },
    "VoicemailMessageMove": {
        "type": "object",
        "additionalProperties": False,
        "required": ["folder"],
        "properties": {"folder": {"type": "string", "enum": list(FOLDERS)}},
    },
}  # fmt: skip

_AUDIO = {"schema": {"type": "string", "format": "binary"}}

PATHS: dict[str, Any] = {
    "/voicemail/mailboxes": {
        "get": {
            "summary": "The extensions' mailboxes, with their new and saved counts",
            "operationId": "listMailboxes",
            "responses": {
                "200": _json("every mailbox", {
                    "type": "object", "required": ["mailboxes"],
                    "properties": {"mailboxes": {"type": "array", "items": _ref("Mailbox")}},
                }),
                **AUTH,
            },
        },
    },
    "/voicemail/mailboxes/{number}": {
        "parameters": [NUMBER_PARAM],
        "get": {
            "summary": "One extension's mailbox",
            "operationId": "getMailbox",
            "responses": {"200": _json("the mailbox", _ref("Mailbox")),
                          "404": _error("the extension has no mailbox"), **AUTH},
        },
        "put": {
            "summary": "Make the extension's mailbox, or change the fields given (the others"
            " stay as they are)",
            "operationId": "setMailbox",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("MailboxBody")}}},
            "responses": {
                "200": _json("changed", _ref("Mailbox")),
                "201": _json("made", _ref("Mailbox")),
                "400": _error("a bad PIN, e-mail, length or greeting: the message says"),
                "404": _error("no such extension"),
                **WRITE,
            },
        },
        "delete": {
            "summary": "Delete the mailbox and its messages (their files too)",
            "operationId": "deleteMailbox",
            "responses": {"204": {"description": "deleted"},
                          "404": _error("the extension has no mailbox"), **WRITE},
        },
    },
    "/voicemail/mailboxes/{number}/messages": {
        "parameters": [NUMBER_PARAM],
        "get": {
            "summary": "The mailbox's messages: new first, then saved, oldest first in each",
            "operationId": "listVoicemailMessages",
            "parameters": [{"name": "folder", "in": "query", "required": False,
                            "schema": {"type": "string", "enum": list(FOLDERS)},
                            "description": "only this folder's"}],
            "responses": {
                "200": _json("messages", {
                    "type": "object", "required": ["messages"],
                    "properties": {"messages": {"type": "array",
                                                "items": _ref("VoicemailMessage")}},
                }),
                "400": _error("no such folder"),
                "404": _error("the extension has no mailbox"),
                **AUTH,
            },
        },
    },
    "/voicemail/messages/{message_id}": {
        "parameters": [MESSAGE_PARAM],
        "get": {
            "summary": "One message",
            "operationId": "getVoicemailMessage",
            "responses": {"200": _json("the message", _ref("VoicemailMessage")),
                          "404": _error("no such message"), **AUTH},
        },
        "patch": {
            "summary": "Move a message to the saved folder (or back to new)",
            "operationId": "moveVoicemailMessage",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": _ref("VoicemailMessageMove")}}},
            "responses": {
                "200": _json("moved", _ref("VoicemailMessage")),
                "400": _error("no such folder"),
                "404": _error("no such message"),
                **WRITE,
            },
        },
        "delete": {
            "summary": "Delete a message (its file too); phones' message-waiting follows",
            "operationId": "deleteVoicemailMessage",
            "responses": {"204": {"description": "deleted"},
                          "404": _error("no such message"), **WRITE},
        },
    },
    "/voicemail/messages/{message_id}/audio": {
        "parameters": [MESSAGE_PARAM],
        "get": {
            "summary": "The message's audio; HTTP Range requests are answered 206",
            "operationId": "getVoicemailMessageAudio",
            "responses": {
                "200": {"description": "the whole file", "content": {"audio/ogg": _AUDIO}},
                "206": {"description": "the range asked for", "content": {"audio/ogg": _AUDIO}},
                "404": _error("no such message, or its file is missing"),
                **AUTH,
            },
        },
    },
}  # fmt: skip
