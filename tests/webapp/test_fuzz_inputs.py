"""Hostile values in every query parameter of every route, in every upload and in every JSON body.

- Query strings: every GET route (as the role it is for, with its own objects' ids) is called with every query
  parameter name the code reads anywhere (found in the source, so a new parameter is fuzzed the day it is
  written) set to each hostile value: integers past 64 bits, control characters, deep brackets, formulas.
- Uploads: each import kind gets a dimension bomb, formula cells, control characters, an overlong CSV field,
  doubled and broken quotes; the answer is a page (never a 5xx) within two seconds, and rosters exported
  after importing formula names hold no formula.
- JSON: every API route taking a body gets deep, wide and oversized JSON.
Checked throughout: no 5xx, ever.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask

from tests.webapp.factories import World, api_token, bearer, csrf_token, sign_in, xlsx
from tests.webapp.test_access_matrix import ACCOUNT, ADMIN, API, BUREAU, PARENT, POLICY, _url
from tests.webapp.test_access_matrix import matrix as matrix  # noqa: F401  (the fixture)
from tests.webapp.test_security_findings import FORMULA, FORMULA_PAYLOADS, _bomb, _formula_cells, own_cpu

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"
QUERY_NAME = re.compile(r"""(?:request\.args\.get(?:list)?|int_arg)\(\s*["'](\w+)["']""")
HOSTILE = ("9223372036854775808", "-9223372036854775809", str(2**64), "9" * 4000, "1e400", "0x7f", "-0",
           "\x00", "1\x00", "A\x01B\x1f", "\r\n/evil", "[" * 2000, FORMULA, "/\t/evil.example", "%", "\ud7ff")
ROLE_FOR = {PARENT: "parent_a", ACCOUNT: "parent_a", ADMIN: "admin_x", BUREAU: "bureau", API: "parent_a"}


def query_names() -> list[str]:
    """Every query-string parameter name read anywhere under webapp/, plus a few the code does not know."""
    names = {name for path in WEBAPP.rglob("*.py") for name in QUERY_NAME.findall(path.read_text("utf-8"))}
    return sorted(names | {"page", "id", "unknown"})


def test_query_parameters_are_discovered() -> None:
    assert {"page", "day", "a", "b", "run", "school", "district", "next", "q", "class", "reason"} <= set(
        query_names())


def test_no_view_parses_query_integers_by_hand() -> None:
    """`int_arg` is the one parser of request integers: `type=int` and int(request...) are not allowed."""
    offenders = []
    for path in WEBAPP.rglob("*.py"):
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            if re.search(r"request\.(args|form|values)\.get\([^)]*type=int|int\(request\.(args|form)", line):
                offenders.append(f"{path.relative_to(WEBAPP)}:{number}")
    assert offenders == []


def test_hostile_query_strings_never_give_a_500(app: Flask, matrix: tuple[World, dict[str, Any]]) -> None:  # noqa: F811
    world, objects = matrix
    clients: dict[str, Any] = {"anonymous": app.test_client()}
    for role in ("parent_a", "admin_x", "bureau"):
        clients[role] = app.test_client()
        sign_in(clients[role], world.logins[role])
    token = api_token(app.test_client(), world.logins["parent_a"])
    names = query_names()
    checked = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint == "static":
            continue
        kind = POLICY[rule.endpoint]
        client = clients[ROLE_FOR.get(kind, "anonymous")]
        headers = bearer(token) if kind == API else {}
        base = _url(rule, objects["x"])
        for value in HOSTILE:  # every name at once: a hostile value reads as absent, so none masks another
            query = "&".join(f"{name}={quote(value, safe='')}" for name in names)
            url = f"{base}{'&' if '?' in base else '?'}{query}"
            response = client.get(url, headers=headers)
            assert response.status_code < 500, url
            checked += 1
    assert checked > 500


HEADERS = {"pupils": ["学号", "姓名", "年级", "班级"], "teachers": ["工号", "姓名", "资质"],
           "sessions": ["编号", "活动", "星期", "时段", "教室", "容量"]}


def uploads(kind: str) -> list[tuple[str, bytes]]:
    header = HEADERS[kind]
    formula_rows = [header] + [[f"F{i}", payload, 3, payload] for i, payload in enumerate(FORMULA_PAYLOADS)]
    csv_header = ",".join(header)
    return [
        ("bomb.xlsx", _bomb("XFD")),
        ("bomb-narrow.xlsx", _bomb("ALL")),
        ("formulas.xlsx", xlsx(formula_rows)),
        ("formulas.csv", "\n".join([csv_header] + [f'F{i},"{p.replace(chr(34), chr(34) * 2)}",3'
                                                   for i, p in enumerate(FORMULA_PAYLOADS)]).encode()),
        ("controls.csv", f"{csv_header}\nX1,A\x00B,3\nX2,\x1b[31m,3\n".encode()),
        ("controls.xlsx", xlsx([header, ["X1", "A_x0001_B", 3]])),  # the reader unescapes it to U+0001
        ("long.csv", f"{csv_header}\nX1,{'x' * 140_000},3\n".encode()),
        ("quotes.csv", f'{csv_header}\nX1,"Li ""Lily""",3,"3,1"\n'.encode()),
        ("broken.csv", f'{csv_header}\nX1,"Li "Lily"",3\nX2,"open,3\n'.encode()),
        ("deep.csv", ("[" * 5000 + "\n").encode()),
        ("wide.csv", (",".join(["h"] * 500) + "\n" + ",".join(["v"] * 500)).encode()),
    ]


@pytest.mark.parametrize("kind", ["pupils", "teachers", "sessions"])
def test_hostile_uploads_are_answered_quickly(app: Flask, matrix: tuple[World, dict[str, Any]],  # noqa: F811
                                              kind: str) -> None:
    world, _objects = matrix
    client = app.test_client()
    sign_in(client, world.logins["admin_x"])
    for name, data in uploads(kind):
        token = csrf_token(client, f"/admin/import/{kind}")
        # The cost is the work the server does, so CPU seconds of this process (the request runs in it), which
        # other load on the machine does not inflate as it does the wall clock (`own_cpu`).
        with own_cpu() as spent:
            response = client.post(f"/admin/import/{kind}",
                                   data={"csrf_token": token, "file": (io.BytesIO(data), name)},
                                   content_type="multipart/form-data")
        assert response.status_code < 500, name
        assert spent() < 2, name
    for export in ("sessions", "classes", "teachers"):
        response = client.get(f"/admin/rosters/{world.ids['term_x']}/{export}.xlsx")
        assert response.status_code == 200 and _formula_cells(response.data) == [], export


@pytest.mark.parametrize("body", ["[" * 50_000, "{\"a\":" * 10_000, "[" * 100 + "]" * 100,
                                  "[" + "1," * 40_000 + "1]", '"' + "x" * 100_000 + '"', "\x00", "9" * 5000])
def test_hostile_json_bodies_never_give_a_500(app: Flask, matrix: tuple[World, dict[str, Any]],  # noqa: F811
                                              body: str) -> None:
    world, objects = matrix
    token = api_token(app.test_client(), world.logins["parent_a"])
    client = app.test_client()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/"):
            continue
        for method in sorted((rule.methods or set()) & {"POST", "PUT", "DELETE", "PATCH"}):
            response = client.open(_url(rule, objects["x"]), method=method, data=body,
                                   content_type="application/json", headers=bearer(token))
            assert response.status_code < 500, (rule.rule, method)
            assert response.status_code == 204 or response.is_json, (rule.rule, method)
