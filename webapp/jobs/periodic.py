"""Periodic tasks: one registry, run by Celery beat when Celery is configured, else by a local scheduler thread.

Add one with

    register_periodic("offers.expire", expire_offers, config_key="OFFER_SWEEP_SECONDS", default_seconds=300)

where `func()` takes no argument, runs inside an app context, and commits its own work; it must be safe to run
twice at once (claim its rows with a guarded UPDATE, as the delivery job does), since a beat and a CLI call, or
two web processes, may overlap. Register it at import time of a module that `webapp.jobs` imports, so web
processes and Celery workers both know it.

- Celery (`CELERY_BROKER_URL` set): `celery -A webapp.celery_app beat` sends the one task `webapp.jobs.periodic`
  with the task's name every `config_key` seconds (else `default_seconds`); a worker runs it. The schedule is
  installed when beat starts (`beat_schedule`).
- Otherwise: the web app starts one daemon thread on its first request (`init_app`), which runs each task whose
  `config_key` is set (app config, or the environment outside tests) to a positive number of seconds. Nothing
  runs in CLI commands or in tests unless a test sets the key. Under a server with several processes each runs
  its own thread; tasks are safe to overlap, so that only costs a few queries.

An error in a task is logged and the schedule goes on.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from celery.signals import beat_init
from flask import Flask

from webapp.celery_app import celery, flask_app
from webapp.extensions import db

logger = logging.getLogger(__name__)

TASK_NAME = "webapp.jobs.periodic"
TICK_SECONDS = 1.0


@dataclass(frozen=True)
class Periodic:
    name: str
    func: Callable[[], Any]
    config_key: str
    default_seconds: float

    def seconds(self, config: Any, *, explicit_only: bool = False) -> float:
        """The interval from `config` (then the environment, outside tests); 0 means off."""
        raw = config.get(self.config_key)
        if raw is None and not config.get("TESTING"):
            raw = os.environ.get(self.config_key)
        if raw is None or raw == "":
            return 0.0 if explicit_only else self.default_seconds
        try:
            return max(0.0, float(raw))
        except (TypeError, ValueError):
            logger.error("%s must be a number of seconds, not %r: %s is off", self.config_key, raw, self.name)
            return 0.0


PERIODIC: dict[str, Periodic] = {}


def register_periodic(name: str, func: Callable[[], Any], *, config_key: str,
                      default_seconds: float) -> Periodic:
    """Add a periodic task (once per name); see the module docstring."""
    known = PERIODIC.get(name)
    if known is not None and known.func is not func:
        raise ValueError(f"periodic task {name!r} is registered already")
    task = PERIODIC[name] = Periodic(name, func, config_key, default_seconds)
    return task


def run_periodic(name: str) -> bool:
    """Run one registered task in the current app context; False when it failed (the error is logged)."""
    task = PERIODIC[name]
    try:
        task.func()
        return True
    except Exception:
        db.session.rollback()
        logger.exception("periodic task %s failed", name)
        return False


@celery.task(name=TASK_NAME)  # type: ignore[untyped-decorator,unused-ignore]
def periodic_task(name: str) -> bool:
    """The one Celery task for every periodic task (runs inside the worker's app context)."""
    return run_periodic(name)


def beat_schedule(config: Any) -> dict[str, dict[str, Any]]:
    """Celery beat entries for every registered task with a positive interval."""
    schedule = {}
    for task in PERIODIC.values():
        seconds = task.seconds(config)
        if seconds > 0:
            schedule[task.name] = {"task": TASK_NAME, "schedule": seconds, "args": (task.name,)}
    return schedule


@beat_init.connect
def _install_beat_schedule(sender: Any = None, **_kwargs: Any) -> None:
    celery.conf.beat_schedule = beat_schedule(flask_app().config)


class LocalScheduler(threading.Thread):
    """Runs the tasks configured for this app, each every its interval, in the app's context."""

    def __init__(self, app: Flask, intervals: dict[str, float]) -> None:
        super().__init__(name="periodic-scheduler", daemon=True)
        self.app, self.intervals = app, intervals
        self._stop_event = threading.Event()
        self.runs: dict[str, int] = dict.fromkeys(intervals, 0)

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join()

    def run(self) -> None:
        next_at = dict.fromkeys(self.intervals, time.monotonic())
        while not self._stop_event.is_set():
            for name, seconds in self.intervals.items():
                if time.monotonic() >= next_at[name]:
                    with self.app.app_context():
                        try:
                            run_periodic(name)
                        finally:
                            db.session.remove()
                    self.runs[name] += 1
                    next_at[name] = time.monotonic() + seconds
            self._stop_event.wait(min([TICK_SECONDS, *self.intervals.values()]))


def local_intervals(app: Flask) -> dict[str, float]:
    """The tasks this app runs itself: none under Celery, else those whose key is set explicitly."""
    if app.config.get("CELERY_BROKER_URL") or (not app.config.get("TESTING") and os.environ.get("CELERY_BROKER_URL")):
        return {}
    found = {task.name: task.seconds(app.config, explicit_only=True) for task in PERIODIC.values()}
    return {name: seconds for name, seconds in found.items() if seconds > 0}


_schedulers: dict[int, tuple[int, LocalScheduler]] = {}
_start_lock = threading.Lock()


def start_local_scheduler(app: Flask) -> LocalScheduler | None:
    """Start the app's scheduler thread in this process if it has tasks and none runs yet."""
    with _start_lock:
        running = _schedulers.get(id(app))
        if running is not None and running[0] == os.getpid() and running[1].is_alive():
            return running[1]
        intervals = local_intervals(app)
        if not intervals:
            return None
        scheduler = LocalScheduler(app, intervals)
        scheduler.start()
        _schedulers[id(app)] = (os.getpid(), scheduler)
        logger.info("local periodic scheduler started: %s", intervals)
        return scheduler


def stop_local_scheduler(app: Flask) -> None:
    running = _schedulers.pop(id(app), None)
    if running is not None:
        running[1].stop()


def init_app(app: Flask) -> None:
    """Start the local scheduler on the first request served (never in CLI commands)."""
    if not local_intervals(app):
        return

    @app.before_request
    def _ensure_scheduler() -> None:
        start_local_scheduler(app)
