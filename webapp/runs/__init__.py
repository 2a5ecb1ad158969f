"""Allocation runs for school admins: start, watch, cancel, compare, pin and publish."""

from __future__ import annotations

from webapp.runs.routes import bp

__all__ = ["bp"]
