"""The OpenAPI 3.1 document of the watch API and its callbacks: the contract, served at
/api/v1/openapi.json and checked against the live server by tests/test_api_contract.py."""

from __future__ import annotations

from typing import Any

from bot.vendors import SPECS, State

ERROR_CODES = (
    "invalid_json",
    "invalid_body",
    "unknown_field",
    "missing_field",
    "invalid_field",
    "unknown_vendor",
    "malformed_ref",
    "channel_required",
    "unknown_connection",
    "vendor_not_configured",
    "invalid_idempotency_key",
    "idempotency_key_reused",
    "unauthorized",
    "channel_not_allowed",
    "not_found",
    "method_not_allowed",
    "not_in_channel",
    "channel_archived",
    "idempotency_in_progress",
    "body_too_large",
    "rate_limited",
    "quota_exceeded",
    "no_job_id",
    "internal_error",
    "slack_unavailable",
    "unavailable",
)

_STATUSES = {
    "400": "Bad JSON, an unknown or missing field, an unknown vendor or connection, a "
    "malformed job ref, or a reused Idempotency-Key.",
    "401": "No token, or not a valid one (which, is not said).",
    "403": "The channel is outside the token's scope.",
    "404": "No such watch for this token.",
    "405": "Method not allowed here.",
    "409": "syncwatch is not in the channel (or it is archived), or a request with the same "
    "Idempotency-Key is still being answered.",
    "413": "Body over 64 KB.",
    "429": "Too many requests for this token, or a watch quota reached; see Retry-After.",
    "502": "Slack could not be asked about the channel.",
    "503": "The database can't take writes right now.",
}


def _error(status: str) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _STATUSES[status],
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    if status in ("429",):
        response["headers"] = {"Retry-After": {"schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    if status == "401":
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def _errors(*statuses: str) -> dict[str, Any]:
    return {s: _error(s) for s in statuses}


def _watch_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Watch"}}},
    }


def document() -> dict[str, Any]:
    vendors = sorted({n for s in SPECS.values() if s.kind == "job" for n in (s.key, *s.aliases)})
    hook_vendors = vendors
    nullable_text = {"type": ["string", "null"]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "syncwatch watch API",
            "version": "1",
            "description": "Start, read and stop watches of vendor jobs from scripts, and "
            "let vendors announce jobs through callbacks. Every watch posts in Slack as if "
            "typed with /syncwatch watch, naming the token that started it.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/watches": {
                "post": {
                    "operationId": "createWatch",
                    "summary": "Watch a job (idempotent: the same job in the same channel "
                    "answers 200 with the running watch)",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "pattern": "^[!-~]{1,200}$"},
                            "description": "A repeated key answers the first request's watch "
                            "and status again (kept 24 h); with another body it is a 400.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/NewWatch"}
                            }
                        },
                    },
                    "responses": {
                        "201": _watch_response("A new watch."),
                        "200": _watch_response(
                            "The job is already watched in that channel: that watch."
                        ),
                        **_errors("400", "401", "403", "405", "409", "413", "429", "502", "503"),
                    },
                }
            },
            "/api/v1/watches/{id}": {
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "get": {
                    "operationId": "getWatch",
                    "summary": "A watch: state, vendor status, progress, times, files, link",
                    "responses": {
                        "200": _watch_response("The watch."),
                        **_errors("401", "404", "405", "429", "503"),
                    },
                },
                "delete": {
                    "operationId": "stopWatch",
                    "summary": "Stop watching (the job keeps running at the vendor); the "
                    "thread says which token stopped it",
                    "responses": {
                        "200": _watch_response("The watch, stopped (or as it ended)."),
                        **_errors("401", "404", "405", "429", "503"),
                    },
                },
            },
            "/hooks/{vendor}/{key}": {
                "parameters": [
                    {
                        "name": "vendor",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": hook_vendors},
                    },
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                        "description": "The token's callback key (not the token).",
                    },
                    {"name": "job", "in": "query", "schema": {"type": "string"}},
                    {"name": "jobId", "in": "query", "schema": {"type": "string"}},
                    {"name": "id", "in": "query", "schema": {"type": "string"}},
                    {"name": "workspace", "in": "query", "schema": {"type": "string"}},
                ],
                "get": {
                    "operationId": "callbackGet",
                    "security": [],
                    "summary": "A vendor callback (Zuora AQuA notifyUrl)",
                    "responses": _hook_responses(),
                },
                "post": {
                    "operationId": "callbackPost",
                    "security": [],
                    "summary": "A vendor callback (Zoho Analytics callbackUrl, Zoho CRM "
                    "callback.url); the body's job id is read, nothing else",
                    "requestBody": {
                        "required": False,
                        "content": {
                            "application/json": {"schema": {}},
                            "application/x-www-form-urlencoded": {"schema": {}},
                        },
                    },
                    "responses": _hook_responses(),
                },
            },
            "/api/v1/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "security": [],
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "NewWatch": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["vendor", "ref"],
                    "properties": {
                        "vendor": {"type": "string", "examples": vendors},
                        "ref": {"type": "string", "description": "The job ref, as in Slack."},
                        "channel": {
                            "type": "string",
                            "pattern": "^[CG][A-Z0-9]{2,20}$",
                            "description": "Needed when the token has several channels.",
                        },
                        "connection": {"type": "string"},
                        "every": {
                            "oneOf": [
                                {"type": "string", "examples": ["30s", "2m", "1h"]},
                                {"type": "number", "minimum": 1, "maximum": 86400},
                            ]
                        },
                        "requested_by": {
                            "type": "string",
                            "maxLength": 80,
                            "description": "A Slack user id (mentioned when the job ends) or "
                            "a name shown beside the token's.",
                        },
                    },
                },
                "Watch": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": [
                        "id",
                        "vendor",
                        "ref",
                        "channel",
                        "status",
                        "state",
                        "vendor_status",
                        "progress",
                        "started_at",
                        "finished_at",
                        "files",
                        "permalink",
                    ],
                    "properties": {
                        "id": {"type": "string", "pattern": "^w[a-z0-9]{3,12}$"},
                        "vendor": {"type": "string"},
                        "ref": {"type": "string"},
                        "channel": {"type": "string"},
                        "status": {"enum": ["active", "done", "stopped", "paused"]},
                        "state": {"enum": [None, *(s.value for s in State)]},
                        "vendor_status": nullable_text,
                        "progress": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        },
                        "started_at": {"type": "string", "format": "date-time"},
                        "finished_at": {"type": ["string", "null"], "format": "date-time"},
                        "files": {"type": "array", "items": {"type": "string"}},
                        "permalink": {"type": ["string", "null"], "format": "uri"},
                    },
                },
                "Accepted": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["status", "watches"],
                    "properties": {
                        "status": {"enum": ["polling", "watching"]},
                        "watches": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "Error": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"enum": list(ERROR_CODES)},
                                "message": {"type": "string"},
                            },
                        }
                    },
                },
            },
        },
    }


def _hook_responses() -> dict[str, Any]:
    return {
        "202": {
            "description": "Taken: the job's watches are polled now, or a watch was started.",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}},
        },
        "404": {
            "description": "Unknown vendor or key (no detail).",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **_errors("400", "405", "409", "413", "429", "502", "503"),
    }
