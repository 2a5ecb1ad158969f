"""Celery on Redis for allocation runs, used when `CELERY_BROKER_URL` is set.

Start a worker with `celery -A webapp.celery_app worker --pool solo` (one run at a time; the solver uses the
cores itself). The worker builds its Flask app from the environment (`DATABASE_URL`, `CELERY_BROKER_URL`,
optional `CELERY_RESULT_BACKEND`), and every task runs inside that app's context. The task body is the same
plain function the local process pool runs: `webapp.runs.jobs.run_allocation`.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery, Task
from flask import Flask

TASK_NAME = "webapp.run_allocation"

_flask_app: Flask | None = None


def flask_app() -> Flask:
    """The worker's Flask app, created on first use from the environment."""
    global _flask_app
    if _flask_app is None:
        from webapp import create_app

        _flask_app = create_app()
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


class FlaskTask(Task):  # type: ignore[misc]
    """A task that runs inside the worker's Flask app context."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with flask_app().app_context():
            return self.run(*args, **kwargs)


def make_celery(config: dict[str, Any] | None = None) -> Celery:
    app = Celery("webapp", task_cls=FlaskTask, include=["webapp.bureau.city"])
    configure(app, config or {})
    return app


celery = make_celery()


@celery.task(name=TASK_NAME)  # type: ignore[untyped-decorator,unused-ignore]
def run_allocation_task(run_id: int, database_url: str, options: dict[str, Any]) -> str:
    from webapp.runs.jobs import run_allocation

    return run_allocation(run_id, database_url, **options)


def submit_allocation(app: Flask, run_id: int, database_url: str, options: dict[str, Any]) -> str:
    """Queue one allocation run on the broker named by `app`'s config; returns the Celery task id."""
    configure(celery, app.config)
    result = run_allocation_task.apply_async(args=[run_id, database_url, options])
    return str(result.id)
