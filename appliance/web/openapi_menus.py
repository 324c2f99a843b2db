"""The OpenAPI description of /api/v1/menus and /api/v1/announcements
(`appliance.web.api_menus`), merged into the document by `appliance.web.openapi`."""

from __future__ import annotations

from typing import Any

from appliance.store.menus import DEFAULT_INVALID, LABEL_MAX

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _ERROR}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


AUTH = {"401": _error("no valid API token")}
WRITE = {**AUTH, "403": _error("the token's role is viewer: read-only")}
NAME = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,31}$", "example": "main"}
NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": NAME}
PROMPT = {
    "type": "string",
    "description": "sound:NAME (a prompt of the office language's recorded pack) or a custom"
    " prompt's name.",
    "example": "sound:hello-world",
}
DESTINATION = {
    "type": "string",
    "description": "KIND:TARGET: extension:101, ivr:NAME, announcement:NAME, hangup:busy.",
    "example": "extension:101",
}
MENU_PROPERTIES: dict[str, Any] = {
    "label": {"type": "string", "maxLength": LABEL_MAX},
    "greeting": PROMPT,
    "invalid_prompt": {**PROMPT, "default": DEFAULT_INVALID},
    "timeout": {"type": "integer", "minimum": 1, "maximum": 60, "default": 5,
                "description": "Seconds to wait for a key after the greeting."},
    "repeats": {"type": "integer", "minimum": 1, "maximum": 10, "default": 3,
                "description": "Plays before on_timeout / on_invalid."},
    "direct_dial": {"type": "boolean", "default": False,
                    "description": "Callers may key an extension's number."},
    "on_timeout": {**DESTINATION, "default": "hangup:unavailable"},
    "on_invalid": {**DESTINATION, "default": "hangup:unavailable"},
    "choices": {
        "type": "object",
        "description": "Key (0-9, *, #) to destination.",
        "additionalProperties": DESTINATION,
        "example": {"1": "extension:101", "2": "ivr:sales"},
    },
}  # fmt: skip
ANNOUNCEMENT_PROPERTIES: dict[str, Any] = {
    "label": {"type": "string", "maxLength": LABEL_MAX},
    "prompt": PROMPT,
    "then": {**DESTINATION, "description": "Where the call goes after the prompt; '': hang up."},
}

SCHEMAS: dict[str, Any] = {
    "Menu": {
        "type": "object",
        "required": ["name", *MENU_PROPERTIES],
        "properties": {"name": NAME, **MENU_PROPERTIES},
    },
    "NewMenu": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "greeting"],
        "properties": {"name": NAME, **MENU_PROPERTIES},
    },
    "MenuBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["greeting"],
        "properties": MENU_PROPERTIES,
    },
    "Announcement": {
        "type": "object",
        "required": ["name", "label", "prompt", "then", "then_description"],
        "properties": {
            "name": NAME,
            **ANNOUNCEMENT_PROPERTIES,
            "then_description": {"type": "string"},
        },
    },
    "NewAnnouncement": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "prompt"],
        "properties": {"name": NAME, **ANNOUNCEMENT_PROPERTIES},
    },
    "AnnouncementBody": {
        "type": "object",
        "additionalProperties": False,
        "required": ["prompt"],
        "properties": ANNOUNCEMENT_PROPERTIES,
    },
}


def _resource(plural: str, one: str, what: str) -> dict[str, Any]:
    title = one[0].upper() + one[1:]
    body = {"required": True, "content": {"application/json": {"schema": _ref(f"{title}Body")}}}
    new = {"required": True, "content": {"application/json": {"schema": _ref(f"New{title}")}}}
    listed = {"type": "object", "required": [plural],
              "properties": {plural: {"type": "array", "items": _ref(title)}}}  # fmt: skip
    return {
        f"/{plural}": {
            "get": {
                "summary": f"List the office's {what}s", "operationId": f"list{title}s",
                "responses": {"200": _json(f"every {what}", listed), **AUTH},
            },
            "post": {
                "summary": f"Create {what}", "operationId": f"create{title}",
                "requestBody": new,
                "responses": {
                    "201": _json("created", _ref(title)),
                    "400": _error("a bad name, prompt, destination or value: the message says"),
                    "409": _error(f"{what} of that name exists"),
                    **WRITE,
                },
            },
        },
        f"/{plural}/{{name}}": {
            "parameters": [NAME_PARAM],
            "get": {
                "summary": f"One {what}", "operationId": f"get{title}",
                "responses": {"200": _json(f"the {what}", _ref(title)),
                              "404": _error(f"no such {what}"), **AUTH},
            },
            "put": {
                "summary": f"Replace {what} whole (left out: the default)",
                "operationId": f"replace{title}", "requestBody": body,
                "responses": {
                    "200": _json("saved", _ref(title)),
                    "400": _error("a bad prompt, destination or value: the message says"),
                    "404": _error(f"no such {what}"),
                    **WRITE,
                },
            },
            "delete": {
                "summary": f"Delete {what}", "operationId": f"delete{title}",
                "responses": {
                    "204": {"description": "deleted"},
                    "404": _error(f"no such {what}"),
                    "409": _error("a DID, a menu or an announcement still sends calls to it"),
                    **WRITE,
                },
            },
        },
    }  # fmt: skip


PATHS: dict[str, Any] = {
    **_resource("menus", "menu", "an IVR menu"),
    **_resource("announcements", "announcement", "an announcement"),
}
