"""Waitlist offers and dated change requests come due with time: a periodic task settles them.

Every `OFFER_SWEEP_SECONDS` (default 300 under Celery beat) the task expires offers whose hold has run out —
passing each seat to the next family — and applies change requests whose effective date has come. Both are
`webapp.allocation` functions that own their transactions under the term's seat lock, so overlapping sweeps (a
beat and the `flask expire-offers` command) are safe. Offers are also checked whenever a family reads them.
"""

from __future__ import annotations

from webapp.allocation.changes import apply_due_changes
from webapp.allocation.offers import expire_offers
from webapp.jobs.periodic import register_periodic

PERIODIC_NAME = "offers.expire"
SWEEP_SECONDS = 300


def settle_due() -> tuple[int, int]:
    """Expire due offers, then apply due change requests: (offers expired, changes applied)."""
    return expire_offers(), apply_due_changes()


register_periodic(PERIODIC_NAME, settle_due, config_key="OFFER_SWEEP_SECONDS", default_seconds=SWEEP_SECONDS)
