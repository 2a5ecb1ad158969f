"""The OpenAPI 3.1 description of `/api/v1`, written by hand to match `webapp.api.routes`."""

from __future__ import annotations

from typing import Any

DATE_TIME = {"type": "string", "format": "date-time"}
NULLABLE_DATE_TIME = {"type": ["string", "null"], "format": "date-time"}
HHMM = {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$"}

ERROR_DESCRIPTIONS = {
    "400": "The body is not valid JSON",
    "401": "Missing, expired or revoked token, or wrong credentials",
    "404": "No such child, message, absence or pickup person on this account, no term, no request or nothing "
           "published",
    "405": "Method not allowed",
    "409": "The request window is not open, there is nothing to withdraw or change, or the offer was already "
           "answered or has expired, the absence cutoff has passed, there is no service on the date, or the school's "
           "service notice must be signed first (`notice_unsigned`: POST /children/{pupil_id}/notice; a newer "
           "version than the one sent is `superseded`) — the message says which",
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


OFFER_ID = {"name": "offer_id", "in": "path", "required": True,
            "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}
PLAN_CHANGE_ITEM = {"type": "object", "required": ["day", "session_id"],
                    "properties": {"day": {"type": "integer"}, "session_id": {"type": ["integer", "null"]}}}

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
            "school": {"type": "object", "required": ["code", "name", "contact"],
                       "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                                      "contact": {"type": "string",
                                                  "description": "Whom families contact; may be empty"}}},
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
                "type": "object", "required": ["code", "name", "category", "description"],
                "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                               "category": {"type": "string"},
                               "description": {"type": "string", "description": "What the children do; may be "
                                                                                 "empty"}}}},
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
            "plan_version": {"type": "integer", "minimum": 0,
                             "description": "The version of the term's plan in force: 1 after the first "
                                            "publication, one more for every later change. 0 when the plan "
                                            "was published before versions were recorded."},
            "changes": {"type": "array", "description": "The versions after `since_version` that changed this "
                                                        "child's seats, oldest first (this child only).",
                        "items": {"type": "object", "required": ["version", "at", "kind", "gained", "lost"],
                                  "properties": {
                                      "version": {"type": "integer"}, "at": NULLABLE_DATE_TIME,
                                      "kind": {"enum": ["publish", "republish", "seat_removal", "session_edit",
                                                        "teacher_edit", "withdrawal", "change_request",
                                                        "promotion", "offer_accepted", "import"]},
                                      "gained": {"type": "array", "items": PLAN_CHANGE_ITEM},
                                      "lost": {"type": "array", "items": PLAN_CHANGE_ITEM}}}},
        },
    },
    "Offer": {
        "type": "object",
        "required": ["id", "pupil_id", "day", "sessions", "state", "offered_at", "expires_at"],
        "properties": {
            "id": {"type": "integer"}, "pupil_id": {"type": "integer"}, "day": {"type": "integer"},
            "sessions": {"type": "array", "items": {
                "type": "object", "required": ["id", "activity", "start", "end", "room"],
                "properties": {"id": {"type": "integer"}, "activity": {"type": "string"}, "start": HHMM,
                               "end": HHMM, "room": {"type": "string"}}}},
            "state": {"enum": ["open", "accepted", "declined", "expired", "lapsed"]},
            "offered_at": DATE_TIME,
            "expires_at": {**DATE_TIME, "description": "Answer before this time (UTC); then the seat passes on."},
        },
    },
    "Offers": {
        "type": "object", "required": ["offers"],
        "properties": {"offers": {"type": "array", "items": {"$ref": "#/components/schemas/Offer"}}},
    },
    "ChangeInput": {
        "type": "object", "required": ["effective_on"], "additionalProperties": False,
        "description": "Withdraw (`withdraw`: true), or give the new `days` and `pickup_time` (and optionally "
                       "`preferences`) as for PUT /request.",
        "properties": {
            "effective_on": {"type": "string", "format": "date", "examples": ["2026-10-01"],
                             "description": "From this day (today or later, within the term)."},
            "withdraw": {"type": "boolean"},
            "days": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 7}, "minItems": 1,
                     "maxItems": 7},
            "pickup_time": HHMM,
            "preferences": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 3},
        },
    },
    "Change": {
        "type": "object", "additionalProperties": False,
        "required": ["id", "pupil_id", "effective_on", "withdraw", "days", "pickup_time", "preferences", "state"],
        "properties": {
            "id": {"type": "integer"}, "pupil_id": {"type": "integer"},
            "effective_on": {"type": "string", "format": "date"}, "withdraw": {"type": "boolean"},
            "days": {"type": "array", "items": {"type": "integer"}}, "pickup_time": {"type": "string"},
            "preferences": {"type": "array", "items": {"type": "string"}},
            "state": {"enum": ["pending", "applied", "superseded"],
                      "description": "applied when dated today, pending until its date otherwise"},
        },
    },
}

SCHEMAS["Notification"] = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "event", "title", "body", "pupil_id", "term_id", "created_at", "read_at"],
    "properties": {
        "id": {"type": "integer"},
        "event": {"enum": ["results_published", "plan_amended", "offer_made", "offer_expiring", "offer_expired",
                           "offer_withdrawn", "change_applied", "absence_unreported", "pupil_left"]},
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

DATE = {"type": "string", "format": "date"}
DATE_STRING = {"type": "string", "format": "date", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
SCHEMAS["AttendanceDay"] = {
    "type": "object", "additionalProperties": False,
    "required": ["date", "status", "sessions", "checked_in_at", "picked_up_at", "picked_up_by"],
    "properties": {
        "date": DATE,
        "status": {"enum": ["scheduled", "reported_absent", "present", "absent", "late", "picked_up",
                            "no_service"]},
        "sessions": {"type": "array", "items": {
            "type": "object", "required": ["session_id", "activity", "start", "end", "room"],
            "properties": {"session_id": {"type": "integer"}, "activity": {"type": "string"}, "start": HHMM,
                           "end": HHMM, "room": {"type": "string"}}}},
        "checked_in_at": NULLABLE_DATE_TIME, "picked_up_at": NULLABLE_DATE_TIME,
        "picked_up_by": {"type": ["string", "null"]},
    },
}
SCHEMAS["Attendance"] = {
    "type": "object", "additionalProperties": False, "required": ["days"],
    "properties": {"days": {"type": "array", "items": {"$ref": "#/components/schemas/AttendanceDay"}}},
}
SCHEMAS["AbsenceInput"] = {
    "type": "object", "required": ["date", "reason"], "additionalProperties": False,
    "properties": {"date": {**DATE_STRING, "examples": ["2026-09-07"]},
                   "until": {**DATE_STRING, "description": "The last day away (default: `date`)."},
                   "reason": {"type": "string", "minLength": 1, "maxLength": 200, "examples": ["看病"]}},
}
SCHEMAS["Absence"] = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "date", "until", "reason", "created_at", "cancelled_at"],
    "properties": {"id": {"type": "integer"}, "date": DATE, "until": DATE, "reason": {"type": "string"},
                   "created_at": DATE_TIME, "cancelled_at": NULLABLE_DATE_TIME},
}
SCHEMAS["PickupPersonInput"] = {
    "type": "object", "required": ["name", "relation", "phone"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 50, "examples": ["王奶奶"]},
                   "relation": {"type": "string", "minLength": 1, "maxLength": 20, "examples": ["奶奶"]},
                   "phone": {"type": "string", "minLength": 1, "maxLength": 32, "examples": ["13900139000"]}},
}
SCHEMAS["PickupPerson"] = {
    "type": "object", "additionalProperties": False, "required": ["id", "name", "relation", "phone"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "relation": {"type": "string"},
                   "phone": {"type": "string"}},
}
SCHEMAS["PickupPersons"] = {
    "type": "object", "additionalProperties": False, "required": ["pickup_persons"],
    "properties": {"pickup_persons": {"type": "array", "items": {"$ref": "#/components/schemas/PickupPerson"}}},
}
SCHEMAS["DelegateInput"] = {
    "type": "object", "required": ["name", "date"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 50, "examples": ["李阿姨"]},
                   "date": {**DATE_STRING, "description": "The one date the code is valid on."}},
}
SCHEMAS["Delegate"] = {
    "type": "object", "additionalProperties": False, "required": ["id", "name", "date", "code"],
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "date": DATE,
                   "code": {"type": "string", "description": "Single-use; returned this once only."}},
}
SCHEMAS["NoticeState"] = {
    "type": "object", "additionalProperties": False, "required": ["notice", "signed_at"],
    "properties": {
        "notice": {"oneOf": [{"type": "null"}, {
            "type": "object", "additionalProperties": False,
            "required": ["id", "version", "title", "content", "hours", "safety", "published_at"],
            "properties": {"id": {"type": "integer"}, "version": {"type": "integer"}, "title": {"type": "string"},
                           "content": {"type": "string"}, "hours": {"type": "string"}, "safety": {"type": "string"},
                           "published_at": DATE_TIME}}],
                   "description": "The service notice (告家长书) in force for the child's term; null when none."},
        "signed_at": {**NULLABLE_DATE_TIME, "description": "When a guardian signed the version in force."},
    },
}
SCHEMAS["NoticeSignInput"] = {
    "type": "object", "required": ["notice_id", "agree"], "additionalProperties": False,
    "properties": {"notice_id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
                   "agree": {"type": "boolean", "const": True}},
}
ABSENCE_ID = {"name": "absence_id", "in": "path", "required": True,
              "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}
PERSON_ID = {"name": "person_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}}


def daily_paths() -> dict[str, Any]:
    """The daily service's operations (`webapp.daily.api`)."""
    child = [PUPIL_ID]
    return {
        "/children/{pupil_id}/attendance": {"parameters": child, "get": {
            "operationId": "getAttendance",
            "summary": "The child's days in a range (at most 62): planned, reported absent, marked, picked up",
            "parameters": [{"name": "from", "in": "query", "required": True, "schema": DATE_STRING},
                           {"name": "to", "in": "query", "required": True, "schema": DATE_STRING}],
            "responses": _responses(_ok("One entry per date", "Attendance"), "404", "422"),
        }},
        "/children/{pupil_id}/absences": {"parameters": child, "post": {
            "operationId": "postAbsence",
            "summary": "Report an absence before the day's cutoff (default 12:00 local on the first day)",
            "requestBody": _body("AbsenceInput"),
            "responses": _responses({**_ok("Created", "Absence", "201"),
                                     **_ok("The same absence was already reported: no second row", "Absence")},
                                    "400", "404", "409", "413", "415", "422"),
        }},
        "/children/{pupil_id}/absences/{absence_id}": {"parameters": [PUPIL_ID, ABSENCE_ID], "delete": {
            "operationId": "cancelAbsence", "summary": "Cancel an absence before its first day's cutoff",
            "responses": _responses(_ok("Cancelled", "Absence"), "404", "409"),
        }},
        "/children/{pupil_id}/pickup-persons": {
            "parameters": child,
            "get": {"operationId": "listPickupPersons", "summary": "Adults authorised to collect the child",
                    "responses": _responses(_ok("The pickup persons", "PickupPersons"), "404")},
            "post": {"operationId": "addPickupPerson", "summary": "Authorise an adult to collect the child",
                     "requestBody": _body("PickupPersonInput"),
                     "responses": _responses(_ok("Added", "PickupPerson", "201"),
                                             "400", "404", "409", "413", "415", "422")},
        },
        "/children/{pupil_id}/pickup-persons/{person_id}": {"parameters": [PUPIL_ID, PERSON_ID], "delete": {
            "operationId": "removePickupPerson", "summary": "Withdraw an adult's authorisation",
            "responses": _responses({"204": {"description": "Removed"}}, "404"),
        }},
        "/children/{pupil_id}/notice": {
            "parameters": child,
            "get": {"operationId": "getNotice",
                    "summary": "The service notice in force (must be signed before a request) and its signature",
                    "responses": _responses(_ok("The notice and when it was signed", "NoticeState"), "404")},
            "post": {"operationId": "signNotice", "summary": "Sign the notice in force for the child",
                     "requestBody": _body("NoticeSignInput"),
                     "responses": _responses({**_ok("Signed", "NoticeState", "201"),
                                              **_ok("Already signed: no second row", "NoticeState")},
                                             "400", "404", "409", "413", "415", "422")},
        },
        "/children/{pupil_id}/delegates": {"parameters": child, "post": {
            "operationId": "createDelegate", "summary": "A single-use pickup code for one person on one date",
            "requestBody": _body("DelegateInput"),
            "responses": _responses(_ok("The code, shown this once", "Delegate", "201"),
                                    "400", "404", "409", "413", "415", "422"),
        }},
    }


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
                    "description": "Any time while the window is open is as good as any other: places are not "
                                   "first come, first served. The allocation runs after the window closes, and "
                                   "among children the school's rules rank equal a lottery decides. Listing a "
                                   "second and third choice never lowers the chance of the first (rank points "
                                   "3/2/1, the same however many are listed).",
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
                "parameters": [{"name": "since_version", "in": "query", "required": False,
                                "description": "List the changes to this child's seats after this version",
                                "schema": {"type": "integer", "minimum": 0, "maximum": 999999999,
                                           "default": 0}}],
                "responses": _responses(_ok("The result", "Result"), "404", "422"),
            }},
            "/children/{pupil_id}/changes": {"parameters": child_params, "post": {
                "operationId": "postChange", "summary": "Change the published request from a date",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ChangeInput"}}}},
                "responses": _responses(_ok("The change, applied or pending", "Change", "201"),
                                        "400", "404", "409", "413", "415", "422"),
            }},
            "/offers": {"get": {
                "operationId": "listOffers", "summary": "Seats offered to the account's children",
                "responses": _responses(_ok("The offers, newest first", "Offers")),
            }},
            "/offers/{offer_id}/accept": {"parameters": [OFFER_ID], "post": {
                "operationId": "acceptOffer", "summary": "Accept an open offer",
                "responses": _responses(_ok("Accepted", "Offer"), "404", "409"),
            }},
            "/offers/{offer_id}/decline": {"parameters": [OFFER_ID], "post": {
                "operationId": "declineOffer", "summary": "Decline an open offer",
                "responses": _responses(_ok("Declined", "Offer"), "404", "409"),
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
            **daily_paths(),
        },
    }
