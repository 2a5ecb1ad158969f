"""Locust scenario: parents sign in to the API, look at their child, the choices and the request, and submit.

Run it against gunicorn on PostgreSQL (three terminals, or `&` the first two):

    createdb -h 127.0.0.1 -U postgres load                       # or any empty database
    .venv/bin/python -m tests.load.rush seed postgresql://postgres@127.0.0.1:5432/load --parents 500
    .venv/bin/python -m tests.load.rush serve postgresql://postgres@127.0.0.1:5432/load --port 8000
    .venv/bin/locust -f tests/load/locustfile.py --headless -u 100 -r 20 -t 30s -H http://127.0.0.1:8000 \
        --csv /tmp/load --only-summary

`LOAD_PARENTS` (default 500) must not exceed the seeded number. Each simulated parent takes the next seeded
phone number, so up to that many users run at once.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
from typing import Any

from locust import HttpUser, between, task

PASSWORD = "deadline-rush-passphrase"
PHONE_BASE = 13900000000
PARENTS = int(os.environ.get("LOAD_PARENTS", "500"))
_numbers = itertools.count()
_lock = threading.Lock()


def _next_phone() -> str:
    with _lock:
        return str(PHONE_BASE + next(_numbers) % PARENTS)


class Parent(HttpUser):
    wait_time = between(0.5, 2.0)

    def on_start(self) -> None:
        response = self.client.post("/api/v1/tokens", json={"phone": _next_phone(), "password": PASSWORD},
                                    name="POST /tokens")
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['token']}"
        children = self.client.get("/api/v1/children", name="GET /children").json()["children"]
        self.pupil: int = children[0]["id"]
        options = self.client.get(f"/api/v1/children/{self.pupil}/options", name="GET /options").json()
        self.days: list[int] = options["days"]
        self.pickups: list[dict[str, Any]] = options["pickup_times"]

    @task(4)
    def browse(self) -> None:
        self.client.get("/api/v1/children", name="GET /children")
        self.client.get(f"/api/v1/children/{self.pupil}", name="GET /children/{id}")

    @task(2)
    def look_at_request(self) -> None:
        with self.client.get(f"/api/v1/children/{self.pupil}/request", name="GET /request",
                             catch_response=True) as response:
            if response.status_code in (200, 404):  # 404: nothing submitted yet
                response.success()

    @task(3)
    def submit(self) -> None:
        pickup = random.choice(self.pickups)
        body = {"days": random.sample(self.days, k=random.randint(1, len(self.days))),
                "pickup_time": pickup["time"], "preferences": pickup["activities"][:1]}
        self.client.put(f"/api/v1/children/{self.pupil}/request", json=body, name="PUT /request")

    @task(1)
    def result(self) -> None:
        with self.client.get(f"/api/v1/children/{self.pupil}/result", name="GET /result",
                             catch_response=True) as response:
            if response.status_code in (200, 404):  # 404: not published yet
                response.success()
