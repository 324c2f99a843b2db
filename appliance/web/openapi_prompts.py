"""The OpenAPI description of /api/v1/prompts (`appliance.web.api_prompts`), merged into the
document by `appliance.web.openapi`."""

from __future__ import annotations

from typing import Any

from appliance.i18n import LANGUAGES
from appliance.tts import MAX_TEXT, MAX_UPLOAD_BYTES

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": _ERROR}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


AUTH = {"401": _error("no valid API token")}
WRITE = {**AUTH, "403": _error("the token's role is viewer: read-only")}
PROMPT_NAME = {
    "type": "string",
    "minLength": 1,
    "maxLength": 40,
    "pattern": r"^\w[\w.-]*$",
    "example": "greeting-day",
}
NAME_PARAM = {"name": "name", "in": "path", "required": True, "schema": PROMPT_NAME}
LANGUAGE = {"type": "string", "enum": list(LANGUAGES), "example": "ru"}

SCHEMAS: dict[str, Any] = {
    "Prompt": {
        "type": "object",
        "required": ["name", "language", "kind", "text", "duration", "created_at", "audio"],
        "properties": {
            "name": PROMPT_NAME,
            "language": LANGUAGE,
            "kind": {"type": "string", "enum": ["tts", "upload"]},
            "text": {
                "type": "string",
                "description": "The text spoken (tts) or the uploaded file's name (upload).",
            },
            "duration": {"type": "number", "description": "Seconds."},
            "created_at": {"type": "number", "description": "Unix time."},
            "audio": {"type": "string", "description": "Path of its WAV file (16 kHz mono)."},
        },
    },
    "NewPrompt": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "language", "text"],
        "properties": {
            "name": PROMPT_NAME,
            "language": LANGUAGE,
            "text": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_TEXT,
                "pattern": r"\S",
                "description": "Spoken offline by espeak-ng.",
            },
        },
    },
    "PromptUpload": {
        "type": "object",
        "required": ["name", "language", "file"],
        "properties": {
            "name": PROMPT_NAME,
            "language": LANGUAGE,
            "file": {
                "type": "string",
                "format": "binary",
                "description": f"WAV, MP3 or OGG, at most {MAX_UPLOAD_BYTES >> 20} MiB;"
                " converted to 16 kHz mono WAV.",
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/prompts": {
        "get": {
            "summary": "List the office's custom prompts",
            "operationId": "listPrompts",
            "responses": {
                "200": _json(
                    "every custom prompt",
                    {
                        "type": "object",
                        "required": ["prompts"],
                        "properties": {
                            "prompts": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/Prompt"},
                            }
                        },
                    },
                ),
                **AUTH,
            },
        },
        "post": {
            "summary": "Make a prompt: typed text (JSON) is synthesised, a file (multipart) is"
            " converted",
            "operationId": "createPrompt",
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/NewPrompt"}},
                    "multipart/form-data": {
                        "schema": {"$ref": "#/components/schemas/PromptUpload"}
                    },
                },
            },
            "responses": {
                "201": _json("made", {"$ref": "#/components/schemas/Prompt"}),
                "400": _error(
                    "a bad name or language; empty or too long text; a file that is"
                    " not WAV, MP3 or OGG audio, or too big or too long"
                ),
                "409": _error("a prompt of that name exists"),
                "503": _error("espeak-ng or sox is not installed on the box"),
                **WRITE,
            },
        },
    },
    "/prompts/{name}": {
        "parameters": [NAME_PARAM],
        "get": {
            "summary": "One custom prompt",
            "operationId": "getPrompt",
            "responses": {
                "200": _json("the prompt", {"$ref": "#/components/schemas/Prompt"}),
                "404": _error("no such prompt"),
                **AUTH,
            },
        },
        "delete": {
            "summary": "Delete a custom prompt and its file",
            "operationId": "deletePrompt",
            "responses": {
                "204": {"description": "deleted"},
                "404": _error("no such prompt"),
                **WRITE,
            },
        },
    },
    "/prompts/{name}/audio": {
        "parameters": [NAME_PARAM],
        "get": {
            "summary": "The prompt's audio (WAV, 16 kHz 16-bit mono; range requests answered)",
            "operationId": "getPromptAudio",
            "responses": {
                "200": {
                    "description": "the WAV file",
                    "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
                },
                "206": {
                    "description": "the part of the file a Range header asked for",
                    "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}},
                },
                "404": _error("no such prompt, or its file is missing"),
                **AUTH,
            },
        },
    },
}
