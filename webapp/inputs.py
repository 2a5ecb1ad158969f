"""Untrusted request input made safe once: query integers, `next` targets, control characters and JSON.

Every view reads query-string integers through `int_arg` (a test forbids `type=int` on `request.args`), every
redirect to a user-supplied target goes through `safe_next`, and the app's JSON provider refuses bodies deeper or
larger than the API will ever need before the parser sees them, so no input turns into an overflow, a
RecursionError or a redirect to another host.
"""

from __future__ import annotations

import re
from typing import Any, overload
from urllib.parse import urlsplit, urlunsplit

from flask import request
from flask.json.provider import DefaultJSONProvider
from werkzeug.datastructures import MultiDict

DB_INT_MAX = 2**63 - 1
MAX_NEXT_LENGTH = 2048
MAX_JSON_BYTES = 64 * 1024
MAX_JSON_DEPTH = 20
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_INTEGER = re.compile(r"[+-]?\d{1,19}")


@overload
def int_arg(name: str, default: int, *, low: int = 0, high: int = DB_INT_MAX,
            source: MultiDict[str, str] | None = None) -> int: ...


@overload
def int_arg(name: str, default: None = None, *, low: int = 0, high: int = DB_INT_MAX,
            source: MultiDict[str, str] | None = None) -> int | None: ...


def int_arg(name: str, default: int | None = None, *, low: int = 0, high: int = DB_INT_MAX,
            source: MultiDict[str, str] | None = None) -> int | None:
    """The whole number `name` from the query string (or `source`) within [low, high]; `default` otherwise.

    Anything else — words, 2**63, a thousand digits, a float — is the same as leaving the parameter out, so a
    hostile value can never reach the database as an out-of-range integer.
    """
    values = request.args if source is None else source
    text = (values.get(name) or "").strip()
    if not _INTEGER.fullmatch(text):
        return default
    number = int(text)
    return number if low <= number <= high else default


def control_character(text: str) -> str | None:
    """The first control character in `text` (tab, newline and carriage return allowed), as U+XXXX."""
    match = CONTROL_CHARS.search(text)
    return f"U+{ord(match.group()):04X}" if match else None


def safe_next(target: str | None, default: str) -> str:
    """`target` when it is a path on this site after the browser's own clean-up, else `default`.

    Browsers drop tabs and newlines anywhere in a URL and treat `\\` as `/`, so `/\\t/evil.example` becomes
    `//evil.example`: anything with a control or other non-printable character, a backslash, a scheme or a
    host is refused rather than repaired.
    """
    if not target or len(target) > MAX_NEXT_LENGTH or not target.isprintable() or "\\" in target:
        return default
    try:
        parts = urlsplit(target)
    except ValueError:
        return default
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return default
    rebuilt = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    if rebuilt != target or urlsplit(rebuilt).netloc:
        return default
    return target


def json_depth_exceeds(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether arrays and objects in `text` nest deeper than `limit` (strings are skipped, not parsed)."""
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False


class BoundedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, refusing bodies over MAX_JSON_BYTES or nested over MAX_JSON_DEPTH as invalid JSON."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if len(s) > MAX_JSON_BYTES:
            raise ValueError(f"JSON body larger than {MAX_JSON_BYTES} bytes")
        text = s.decode("utf-8", "replace") if isinstance(s, bytes) else s
        if json_depth_exceeds(text):
            raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH}")
        return super().loads(s, **kwargs)
