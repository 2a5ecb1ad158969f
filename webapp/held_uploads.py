"""Uploaded files waiting for an admin's confirmation: kept on disk by their SHA-256, for at most a day.

An import after publication that moves published seats is previewed first; the file waits here (under
`IMPORT_HOLD_FOLDER`, default `instance/held-imports/<school id>/<sha256>.xlsx|.csv`) until the admin confirms
the preview, and is removed once imported. Files may hold children's names, so whatever is older than
`HOLD_HOURS` is removed by the periodic task `uploads.sweep` (`webapp.jobs.uploads`) and on every new upload.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

from flask import current_app

HOLD_HOURS = 24
"""How long an uploaded file waits for the admin to confirm its preview before it is thrown away."""
SUFFIXES = (".xlsx", ".csv")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def file_digest(data: bytes) -> str:
    """The SHA-256 of an uploaded file: what a confirmation of its preview is bound to."""
    return hashlib.sha256(data).hexdigest()


def _root() -> Path:
    return Path(current_app.config["IMPORT_HOLD_FOLDER"])


def _folder(school_id: int) -> Path:
    return _root() / str(int(school_id))


def hold(school_id: int, filename: str, data: bytes) -> str:
    """Keep an uploaded file of the school until its preview is confirmed; return its digest."""
    sweep()
    folder = _folder(school_id)
    folder.mkdir(parents=True, exist_ok=True)
    digest = file_digest(data)
    suffix = ".csv" if filename.lower().endswith(".csv") else ".xlsx"
    (folder / f"{digest}{suffix}").write_bytes(data)
    return digest


def held(school_id: int, digest: str) -> tuple[str, bytes] | None:
    """The school's file kept under `digest`, as (file name, content); None when gone, never held or altered."""
    if not _DIGEST.match(digest or ""):
        return None
    for suffix in SUFFIXES:
        path = _folder(school_id) / f"{digest}{suffix}"
        if path.is_file():
            data = path.read_bytes()
            return (path.name, data) if file_digest(data) == digest else None
    return None


def release(school_id: int, digest: str) -> None:
    """Forget a held file once it is imported."""
    if _DIGEST.match(digest or ""):
        for suffix in SUFFIXES:
            (_folder(school_id) / f"{digest}{suffix}").unlink(missing_ok=True)


def sweep(now: float | None = None) -> int:
    """Remove every held file older than `HOLD_HOURS`; return how many (safe to run twice at once)."""
    root = _root()
    if not root.is_dir():
        return 0
    cutoff = (now if now is not None else time.time()) - HOLD_HOURS * 3600
    removed = 0
    for path in root.glob("*/*"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:  # another sweep took it
            continue
    return removed
