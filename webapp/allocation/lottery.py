"""The term's lottery: one seed per term and one draw per family, the same draw the solver uses among equals.

The seed is drawn once (`ensure_lottery_seed`), before the first run starts or at the latest when a run is
published, and never changes afterwards, so anyone holding it can recompute every draw. A pupil's draw is the
scheduler's `lottery_key`: siblings (same `family_code`) share one draw, so they win or lose together on the
solver's ties and stand side by side on the waitlist.
"""

from __future__ import annotations

import secrets

from scheduler.groups import lottery_key as lottery_key_for
from webapp.models import Pupil, Term

SEED_LIMIT = 2**31 - 1
"""Seeds are positive 31-bit integers (0 means "not drawn yet"), so they fit the solver's seed parameter."""

def new_seed() -> int:
    """A fresh seed from the system's secure random source: the only place a seed is drawn."""
    return secrets.randbelow(SEED_LIMIT - 1) + 1


def ensure_lottery_seed(term: Term) -> int:
    """Draw the term's lottery seed if it has none yet and return it; the caller's transaction stores it."""
    if not term.lottery_seed:
        term.lottery_seed = new_seed()
    return term.lottery_seed


def lottery_key(seed: int, pupil: Pupil) -> bytes:
    """The pupil's place in the lottery for `seed`: the family's draw, then the pupil number to order siblings.

    Keyed exactly as the solver keys the pupils of an instance (by pupil number), so the waitlist and the
    solver's choice among equals follow one draw.
    """
    return lottery_key_for(seed, pupil.number, pupil.family_code or None)


def lottery_number(seed: int, pupil: Pupil) -> str:
    """The draw as families see it: the hex of the key's first 8 bytes (equal for siblings)."""
    return lottery_key(seed, pupil)[:8].hex()
