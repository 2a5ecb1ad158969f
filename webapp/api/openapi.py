"""The OpenAPI 3.1 description of `/api/v1`, written by hand to match `webapp.api.routes`."""

from __future__ import annotations

from typing import Any

DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
HHMM = {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}

ERROR_DESCRIPTIONS = {
    "400": "The body is not valid JSON",
    "401": "Missing, expired or revoked token, or wrong credentials",
    "404": "No such child or message on this account, no term, no request or nothing published",
    "405": "Method not allowed",
    "409": "The request window is not open, or there is nothing to withdraw",
    "413": "Body too large",
    "415": "The body is not JSON",
    "422": "Invalid fields; `fields` maps each field path to a sentence",
    "429": "Too many attempts",
    "500": "Server error",
}


def _error(status: str) -> dict[str, Any]:
    return {"description": ERROR_DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: str, status: str = "200") -> dict[str, Any]:
    return {status: {"description": description,
                     "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}}


def _responses(ok: dict[str, Any], *errors: str) -> dict[str, Any]:
    return {**ok, **{status: _error(status) for status in ("401", "405", "429", "500", *errors)}}


PUPIL_ID = {"name": "pupil_id", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error", "message", "fields"], "additionalProperties": False,
        "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                       "fields": {"type": "object", "additionalProperties": {"type": "string"}}},
    },
    "TokenRequest": {
        "type": "object", "required": ["phone", "password"], "additionalProperties": False,
        "properties": {"phone": {"type": "string", "minLength": 1, "maxLength": 32,
                                 "examples": ["13800138000"]},
                       "password": {"type": "string", "minLength": 1, "maxLength": 128}},
    },
    "Token": {
        "type": "object", "required": ["token", "token_type", "expires_at"], "additionalProperties": False,
        "properties": {"token": {"type": "string"}, "token_type": {"const": "Bearer"},
                       "expires_at": DATE_TIME},
    },
    "Me": {
        "type": "object", "required": ["phone", "display_name", "locale", "consent"],
        "properties": {
            "phone": {"type": ["string", "null"]}, "display_name": {"type": "string"},
            "locale": {"type": ["string", "null"]},
            "consent": {"type": "object", "required": ["policy_version", "given_at"],
                        "properties": {"policy_version": {"type": ["string", "null"]},
                                       "given_at": NULLABLE_DATE_TIME}},
        },
    },
    "Term": {
        "type": "object", "required": ["id", "name", "window", "results_date", "published"],
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"},
            "window": {"type": "object", "required": ["state", "opens_at", "closes_at"],
                       "properties": {"state": {"enum": ["not_open", "open", "closed"]},
                                      "opens_at": NULLABLE_DATE_TIME, "closes_at": NULLABLE_DATE_TIME}},
            "results_date": {"type": ["string", "null"], "format": "date"},
            "published": {"type": "boolean"},
        },
    },
    "Child": {
        "type": "object",
        "required": ["id", "name", "grade", "class_name", "school", "term", "request_status"],
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "grade": {"type": "integer"},
            "class_name": {"type": "string"},
            "school": {"type": "object", "required": ["code", "name"],
                       "properties": {"code": {"type": "string"}, "name": {"type": "string"}}},
            "term": {"oneOf": [{"$ref": "#/components/schemas/Term"}, {"type": "null"}]},
            "request_status": {"enum": ["active", "withdrawn", None]},
        },
    },
    "Children": {
        "type": "object", "required": ["children"],
        "properties": {"children": {"type": "array", "items": {"$ref": "#/components/schemas/Child"}}},
    },
    "Options": {
        "type": "object", "required": ["term", "days", "pickup_times", "activities", "max_preferences"],
        "properties": {
            "term": {"$ref": "#/components/schemas/Term"},
            "days": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}},
            "pickup_times": {"type": "array", "items": {
                "type": "object", "required": ["time", "periods", "activities"],
                "properties": {"time": HHMM, "periods": {"type": "array", "items": {"type": "string"}},
                               "activities": {"type": "array", "items": {"type": "string"}}}}},
            "activities": {"type": "array", "items": {
                "type": "object", "required": ["code", "name", "category"],
                "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                               "category": {"type": "string"}}}},
            "max_preferences": {"type": "integer"},
        },
    },
    "RequestInput": {
        "type": "object", "required": ["days", "pickup_time"], "additionalProperties": False,
        "properties": {
            "days": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}, "minItems": 1,
                     "maxItems": 7, "examples": [[1, 2]]},
            "pickup_time": {**HHMM, "examples": ["17:30"]},
            "preferences": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 3,
                            "examples": [["football"]],
                            "description": "Activity codes, best first. A placement in the first choice scores the "
                                           "same however many are listed (rank points 3/2/1), so listing more never "
                                           "lowers the first choice's chance. Submission time does not matter."},
        },
    },
    "CareRequest": {
        "type": "object", "additionalProperties": False,
        "required": ["pupil_id", "term_id", "term", "days", "pickup_time", "periods", "preferences", "status",
                     "submitted_at", "updated_at"],
        "properties": {
            "pupil_id": {"type": "integer"}, "term_id": {"type": "integer"}, "term": {"type": "string"},
            "days": {"type": "array", "items": {"type": "integer"}}, "pickup_time": {"type": "string"},
            "periods": {"type": "array", "items": {"type": "string"}},
            "preferences": {"type": "array", "items": {"type": "string"}},
            "status": {"enum": ["active", "withdrawn"]}, "submitted_at": DATE_TIME, "updated_at": DATE_TIME,
        },
    },
    "Result": {
        "type": "object",
        "required": ["term", "run_id", "published_at", "timetable", "uncovered", "requested_days",
                     "covered_days"],
        "properties": {
            "term": {"type": "string"}, "run_id": {"type": "integer"}, "published_at": NULLABLE_DATE_TIME,
            "timetable": {"type": "array", "items": {
                "type": "object", "required": ["day", "start", "end", "activity", "room", "teachers"],
                "properties": {"day": {"type": "integer"}, "start": HHMM, "end": HHMM,
                               "activity": {"type": "string"}, "room": {"type": "string"},
                               "teachers": {"type": "array", "items": {"type": "string"}}}}},
            "uncovered": {"type": "array", "items": {
                "type": "object", "required": ["day", "reason", "waitlist_position"],
                "properties": {"day": {"type": "integer"}, "reason": {"type": "string"},
                               "waitlist_position": {"type": ["integer", "null"]}}}},
            "requested_days": {"type": "array", "items": {"type": "integer"}},
            "covered_days": {"type": "array", "items": {"type": "integer"}},
        },
    },
}

SCHEMAS["Notification"] = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "event", "title", "body", "pupil_id", "term_id", "created_at", "read_at"],
    "properties": {
        "id": {"type": "integer"},
        "event": {"enum": ["results_published", "plan_amended", "offer_made", "offer_expiring", "offer_expired",
                           "change_applied"]},
        "title": {"type": "string"}, "body": {"type": "string"},
        "pupil_id": {"type": ["integer", "null"]}, "term_id": {"type": ["integer", "null"]},
        "created_at": DATE_TIME, "read_at": NULLABLE_DATE_TIME,
    },
}
SCHEMAS["Notifications"] = {
    "type": "object", "additionalProperties": False,
    "required": ["notifications", "page", "per_page", "total", "unread"],
    "properties": {
        "notifications": {"type": "array", "items": {"$ref": "#/components/schemas/Notification"}},
        "page": {"type": "integer", "minimum": 1}, "per_page": {"type": "integer", "minimum": 1},
        "total": {"type": "integer", "minimum": 0}, "unread": {"type": "integer", "minimum": 0},
    },
}

PAGE_PARAMS = [
    {"name": "page", "in": "query", "required": False, "description": "1 is the newest page",
     "schema": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1}},
    {"name": "per_page", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
]
NOTIFICATION_ID = {"name": "notification_id", "in": "path", "required": True,
                   "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}

BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def openapi_document() -> dict[str, Any]:
    child_params = [PUPIL_ID]
    return {
        "openapi": "3.1.0",
        "info": {"title": "After-school care: parents' API", "version": "1.0.0",
                 "description": "For the parents' mini-program. Sign in with POST /tokens, then send "
                                "`Authorization: Bearer <token>`. Times are UTC."},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "An opaque token from POST /tokens"}},
            "schemas": SCHEMAS,
        },
        "security": BEARER,
        "paths": {
            "/tokens": {"post": {
                "operationId": "createToken", "summary": "Sign in with phone number and password",
                "security": [],
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/TokenRequest"}}}},
                "responses": _responses(_ok("A new token", "Token", "201"), "400", "413", "415", "422"),
            }},
            "/tokens/current": {"delete": {
                "operationId": "revokeToken", "summary": "Revoke the token of this request",
                "responses": _responses({"204": {"description": "Revoked"}}),
            }},
            "/me": {"get": {
                "operationId": "me", "summary": "The signed-in parent",
                "responses": _responses(_ok("The account", "Me")),
            }},
            "/children": {"get": {
                "operationId": "listChildren", "summary": "Children linked to this account",
                "responses": _responses(_ok("Linked children", "Children")),
            }},
            "/children/{pupil_id}": {"parameters": child_params, "get": {
                "operationId": "getChild", "summary": "One linked child",
                "responses": _responses(_ok("The child", "Child"), "404"),
            }},
            "/children/{pupil_id}/options": {"parameters": child_params, "get": {
                "operationId": "getOptions",
                "summary": "Days, pickup times and activities a request may name",
                "responses": _responses(_ok("The choices", "Options"), "404"),
            }},
            "/children/{pupil_id}/request": {
                "parameters": child_params,
                "get": {"operationId": "getRequest", "summary": "The child's request for the current term",
                        "responses": _responses(_ok("The request", "CareRequest"), "404")},
                "put": {
                    "operationId": "putRequest", "summary": "Submit or change the request",
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/RequestInput"}}}},
                    "responses": _responses({**_ok("Updated", "CareRequest"),
                                             **_ok("Created", "CareRequest", "201")},
                                            "400", "404", "409", "413", "415", "422"),
                },
                "delete": {"operationId": "withdrawRequest", "summary": "Withdraw the request",
                           "responses": _responses(_ok("Withdrawn", "CareRequest"), "404", "409")},
            },
            "/children/{pupil_id}/result": {"parameters": child_params, "get": {
                "operationId": "getResult", "summary": "The published timetable and uncovered days",
                "responses": _responses(_ok("The result", "Result"), "404"),
            }},
            "/notifications": {"get": {
                "operationId": "listNotifications",
                "summary": "The parent's messages, newest first, in the account's language, with the unread count",
                "parameters": PAGE_PARAMS,
                "responses": _responses(_ok("A page of messages", "Notifications"), "422"),
            }},
            "/notifications/{notification_id}/read": {"parameters": [NOTIFICATION_ID], "post": {
                "operationId": "readNotification", "summary": "Mark one of the parent's messages read",
                "responses": _responses(_ok("The message, now read", "Notification"), "404"),
            }},
        },
    }
