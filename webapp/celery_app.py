"""The Celery app for background jobs, used when `CELERY_BROKER_URL` is set (Redis).

Start a worker with `celery -A webapp.celery_app worker --pool solo` (one job at a time; the solver uses the
cores itself). The worker builds its Flask app from the environment (`DATABASE_URL`, `CELERY_BROKER_URL`,
optional `CELERY_RESULT_BACKEND`), and every task runs inside that app's context.

This module knows no job: the one task, `webapp.jobs.run`, is registered by `webapp.jobs.runner` on the app
defined here, and the worker loads it through `include` (a module name, not an import), so the job modules
import this one and never the other way round.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from flask import Flask

from webapp.extensions import new_app, settle_worker_heap

JOB_MODULES = ["webapp.jobs"]
"""Modules the worker imports at start: they register the task on `celery`."""

_flask_app: Flask | None = None


def flask_app() -> Flask:
    """The worker's Flask app, created on first use from the environment (`settle_worker_heap` then)."""
    global _flask_app
    if _flask_app is None:
        _flask_app = new_app()
        settle_worker_heap()
    return _flask_app


def configure(celery_app: Celery, config: dict[str, Any] | Any) -> Celery:
    """Broker and result backend from a Flask config (falling back to the environment)."""
    broker = config.get("CELERY_BROKER_URL") or os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"
    backend = config.get("CELERY_RESULT_BACKEND") or os.environ.get("CELERY_RESULT_BACKEND") or broker
    celery_app.conf.update(
        broker_url=broker,
        result_backend=backend,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_acks_late=False,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        result_expires=24 * 3600,
        task_default_queue=config.get("CELERY_QUEUE") or os.environ.get("CELERY_QUEUE") or "allocations",
    )
    return celery_app


class FlaskTask(Task):
    """A task that runs inside the worker's Flask app context."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with flask_app().app_context():
            return self.run(*args, **kwargs)


def make_celery(config: dict[str, Any] | None = None) -> Celery:
    app = Celery("webapp", task_cls=FlaskTask, include=JOB_MODULES)
    configure(app, config or {})
    return app


celery = make_celery()
