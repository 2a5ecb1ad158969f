"""Locust scenarios: parents on the JSON API, against gunicorn on PostgreSQL.

- `Parent` browses their child, looks at the request and the result, and now and then submits (the default);
- `RushParent` is the last hour before the deadline: mostly submitting, sometimes checking what was stored;
- `DutyTeacher` is the roll-call rush on the web pages: a duty teacher signs in, opens the session's roll-call
  page and marks its pupils one tap at a time, each tap sent by the page's script and answered with the pupil's
  row (`LOAD_DUTY_RELOAD=1`: a phone without script, the form posts and the page reloads after each tap);
  `python -m bench.load.rollcall` seeds the school and names each teacher's login, session and pupils in the
  JSON file `LOAD_DUTY`.

The whole measurement (scratch schema, seed, gunicorn, sign-ins, locust, report, tear-down) is one command:

    .venv/bin/python -m bench.load.rush bench            # or: make bench-load

By hand (three terminals, or `&` the first two):

    createdb -h 127.0.0.1 -U postgres load                       # or any empty database
    .venv/bin/python -m bench.load.rush seed postgresql://postgres@127.0.0.1:5432/load --parents 500
    .venv/bin/python -m bench.load.rush serve postgresql://postgres@127.0.0.1:5432/load --port 8000
    .venv/bin/locust -f bench/load/locustfile.py --headless -u 100 -r 20 -t 60s -H http://127.0.0.1:8000 \
        --only-summary Parent RushParent

Each simulated parent takes the next seeded phone number (`LOAD_PARENTS`, default 500, must not exceed the
seeded number) and signs in once in `on_start`, as the mini-program does once every few weeks. When
`LOAD_TOKENS` names a file of bearer tokens (one a line, written by `rush bench` after it has timed the sign-ins
on their own), users take the next token instead, so the argon2 sign-ins do not blur the steady-state numbers;
`LOAD_WARMUP` seconds after the start the statistics are reset, so ramp-up is not counted either.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import secrets
import threading
from pathlib import Path
from typing import Any

import gevent
from locust import HttpUser, between, constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment
from locust.runners import WorkerRunner

PASSWORD = "deadline-rush-passphrase"
PHONE_BASE = 13900000000
PARENTS = int(os.environ.get("LOAD_PARENTS", "500"))
TOKENS_FILE = os.environ.get("LOAD_TOKENS", "")
WARMUP = float(os.environ.get("LOAD_WARMUP", "0"))
_numbers = itertools.count()
_lock = threading.Lock()
_tokens: list[str] = Path(TOKENS_FILE).read_text().split() if TOKENS_FILE else []
DUTY_FILE = os.environ.get("LOAD_DUTY", "")
_duty: list[dict[str, Any]] = json.loads(Path(DUTY_FILE).read_text()) if DUTY_FILE else []
DUTY_PAUSE = [float(x) for x in os.environ.get("LOAD_DUTY_PAUSE", "0.5,1.5").split(",")]
DUTY_RELOAD = os.environ.get("LOAD_DUTY_RELOAD", "") == "1"
CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


@events.test_start.add_listener
def _reset_after_warmup(environment: Environment, **kwargs: Any) -> None:
    """With `LOAD_WARMUP` seconds, forget everything measured before: ramp-up and on_start are not steady state."""
    if WARMUP > 0 and not isinstance(environment.runner, WorkerRunner):
        gevent.spawn_later(WARMUP, environment.stats.reset_all)


def _next_index() -> int:
    with _lock:
        return next(_numbers)


class _ApiParent(FastHttpUser):
    """Signs in (or takes a prepared token), finds the child and the choices a request may contain."""

    abstract = True

    def on_start(self) -> None:
        index = _next_index()
        if _tokens:
            token = _tokens[index % len(_tokens)]
        else:
            body = {"phone": str(PHONE_BASE + index % PARENTS), "password": PASSWORD}
            response = self.client.post("/api/v1/tokens", json=body, name="POST /tokens")
            response.raise_for_status()
            token = response.json()["token"]
        self.auth = {"Authorization": f"Bearer {token}"}
        children = self.client.get("/api/v1/children", headers=self.auth, name="GET /children").json()["children"]
        self.pupil: int = children[0]["id"]
        options = self.client.get(f"/api/v1/children/{self.pupil}/options", headers=self.auth,
                                  name="GET /options").json()
        self.days: list[int] = options["days"]
        self.pickups: list[dict[str, Any]] = options["pickup_times"]

    def submit(self) -> None:
        pickup = random.choice(self.pickups)
        body = {"days": random.sample(self.days, k=random.randint(1, len(self.days))),
                "pickup_time": pickup["time"], "preferences": pickup["activities"][:1]}
        with self.client.put(f"/api/v1/children/{self.pupil}/request", json=body, headers=self.auth,
                             name="PUT /request", catch_response=True) as response:
            if response.status_code not in (200, 201):
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")

    def get_or_404(self, part: str, name: str) -> None:
        """GET a part of the child's record, counting 404 (nothing submitted or published yet) as success."""
        with self.client.get(f"/api/v1/children/{self.pupil}/{part}", headers=self.auth, name=name,
                             catch_response=True) as response:
            if response.status_code in (200, 404):
                response.success()

    def look_at_request(self) -> None:
        self.get_or_404("request", "GET /request")


class Parent(_ApiParent):
    """A parent in term time: mostly looking, sometimes changing the request."""

    wait_time = between(0.5, 2.0)

    @task(4)
    def browse(self) -> None:
        self.client.get("/api/v1/children", headers=self.auth, name="GET /children")
        self.client.get(f"/api/v1/children/{self.pupil}", headers=self.auth, name="GET /children/{id}")

    @task(2)
    def look(self) -> None:
        self.look_at_request()

    @task(3)
    def change(self) -> None:
        self.submit()

    @task(1)
    def result(self) -> None:
        self.get_or_404("result", "GET /result")


class RushParent(_ApiParent):
    """The last hour before the deadline: submit, and once in a while check what the school has stored."""

    wait_time = between(0.5, 1.5)

    @task(9)
    def rush(self) -> None:
        self.submit()

    @task(1)
    def check(self) -> None:
        self.look_at_request()


class CeilingParent(_ApiParent):
    """The cheapest signed-in request, without pause: what the server stack answers at most on these cores."""

    wait_time = constant(0)

    @task
    def me(self) -> None:
        self.client.get("/api/v1/me", headers=self.auth, name="GET /me")


class DutyTeacher(HttpUser):
    """A duty teacher's phone at roll-call: sign in, open the session, tap one pupil after another.

    Every tap writes a row: the first round marks present, the next late with a reason (a correction), and so
    on. The page's script sends the tap (`X-Requested-With: fetch`) and puts the answer, the pupil's row, in
    place; with `LOAD_DUTY_RELOAD=1` the phone has no script: the form posts, and the phone follows the redirect
    and reloads the page (the mark and the reload are timed apart).
    """

    wait_time = between(DUTY_PAUSE[0], DUTY_PAUSE[-1])
    """Seconds between taps (`LOAD_DUTY_PAUSE`, "low,high"; default 0.5 to 1.5: a teacher in a hurry)."""

    def on_start(self) -> None:
        plan = _duty[_next_index() % len(_duty)]
        self.session_id: int = plan["session"]
        self.pupils: list[int] = plan["pupils"]
        self.turn = 0
        login = self.client.get("/login", name="GET /login")
        body = {"csrf_token": self._token(login.text), "login": plan["login"], "password": PASSWORD}
        signed = self.client.post("/login", data=body, name="POST /login", allow_redirects=False)
        if signed.status_code != 302:
            raise RuntimeError(f"sign-in of {plan['login']} answered {signed.status_code}")
        self.page = f"/daily/duty/sessions/{self.session_id}"
        self.csrf = self._token(self.client.get(self.page, name="GET roll-call page").text)

    @staticmethod
    def _token(html: str) -> str:
        found = CSRF_RE.search(html)
        if found is None:
            raise RuntimeError("no CSRF token on the page")
        return found.group(1)

    @task
    def tap(self) -> None:
        pupil = self.pupils[self.turn % len(self.pupils)]
        round_no = self.turn // len(self.pupils)
        self.turn += 1
        body = {"csrf_token": self.csrf, "pupil_id": str(pupil), "session_id": str(self.session_id),
                "client_id": secrets.token_urlsafe(16), "status": "late" if round_no % 2 else "present",
                "reason": "迟到补记" if round_no else ""}
        if not DUTY_RELOAD:
            with self.client.post(f"{self.page}/mark", data=body, name="POST /mark",
                                  headers={"X-Requested-With": "fetch"}, catch_response=True) as row:
                if row.status_code != 200 or f'id="pupil-{pupil}"' not in row.text:
                    row.failure(f"HTTP {row.status_code}: {row.text[:200]}")
            return
        with self.client.post(f"{self.page}/mark", data=body, name="POST /mark", allow_redirects=False,
                              catch_response=True) as response:
            if response.status_code != 302 or "/daily/duty/sessions/" not in response.headers.get("Location", ""):
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
        with self.client.get(self.page, name="GET roll-call page", catch_response=True) as page:
            if "flash-error" in page.text:
                page.failure("the mark was refused: " + page.text[page.text.find("flash-error"):][:200])
