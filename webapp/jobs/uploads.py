"""Uploaded files left waiting for a confirmation are removed after a day (`webapp.held_uploads`)."""

from __future__ import annotations

from webapp import held_uploads
from webapp.jobs.periodic import register_periodic

PERIODIC_NAME = "uploads.sweep"
SWEEP_SECONDS = 3600


def sweep_held() -> int:
    """Remove held uploads older than `held_uploads.HOLD_HOURS`; return how many."""
    return held_uploads.sweep()


register_periodic(PERIODIC_NAME, sweep_held, config_key="UPLOAD_SWEEP_SECONDS", default_seconds=SWEEP_SECONDS)
