"""Offer expiry and due change requests are one periodic task, also run by `flask expire-offers`."""

from __future__ import annotations

from flask import Flask

from webapp.jobs import PERIODIC
from webapp.jobs.offers import PERIODIC_NAME, settle_due


def test_offer_expiry_is_a_periodic_task() -> None:
    task = PERIODIC[PERIODIC_NAME]
    assert task.func is settle_due and task.config_key == "OFFER_SWEEP_SECONDS"


def test_expire_offers_command_settles_nothing_on_an_empty_database(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["expire-offers"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "0 offers expired, 0 change requests applied"
