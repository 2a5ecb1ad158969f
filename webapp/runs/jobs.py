"""Moved to `webapp.jobs`; `rowcount` stays importable here for `webapp.runs.publish` until it imports it from
`webapp.jobs` (delete this module then)."""

from __future__ import annotations

from webapp.jobs.runner import rowcount

__all__ = ["rowcount"]
