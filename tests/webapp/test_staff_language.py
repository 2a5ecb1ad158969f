"""Untranslated words on every staff page, both ways.

In English no Chinese is left on the page except data (names of schools, pupils, teachers, activities, rooms…);
in Chinese no English word is left except data, codes and file formats (Excel). Text marked with its own
`lang` (the language switch, an import file's column headers) is what it says it is. Status words
from the solver or the database ("OPTIMAL", "done", "mother") are what this catches.
The pages are every GET page of the staff areas in the URL map (tests/webapp/staff_pages.py).
"""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.webapp.factories import post_form, sign_in
from tests.webapp.staff_pages import LOGINS, data_words, staff_urls, staff_world

CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
WORD = re.compile(r"(?<![\w.@/-])[A-Za-z][A-Za-z'’]+(?![\w@/-])")
ENGLISH_ALLOWED = {"Excel", "JSON", "CSV", "xlsx", "json", "csv", "A4", "MB", "UTC"}
"""Words a Chinese page may hold: file formats and units."""


def visible_text(page: str) -> str:
    """The words a reader sees (and hears): no markup, no scripts or styles, no attribute values but titles."""
    page = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    # text marked as another language on purpose (the language switch, a file's Chinese column headers)
    page = re.sub(r"<(?!html\b)(\w+)\b[^>]*\blang=\"[^\"]*\"[^>]*>.*?</\1>", " ", page, flags=re.S)
    titles = " ".join(re.findall(r'(?:title|aria-label|placeholder)="([^"]*)"', page))
    page = re.sub(r"<option\b[^>]*>", " ", page)
    return html.unescape(re.sub(r"<[^>]+>", " ", page) + " " + titles)


def without(text: str, words: set[str]) -> str:
    for word in sorted(words, key=len, reverse=True):
        text = text.replace(word, " ")
    return text


@pytest.fixture
def world(app: Flask) -> dict[str, Any]:
    app.config.update(JOBS_INLINE=True, BUREAU_TIME_LIMIT=1, BUREAU_ADVICE_TIME_LIMIT=1)
    return staff_world(app)


def _pages(app: Flask, client: FlaskClient, world: dict[str, Any], role: str) -> dict[str, str]:
    found = {}
    for url in staff_urls(app, world)[role]:
        response = client.get(url, follow_redirects=True)
        assert response.status_code == 200, url
        found[url] = visible_text(response.get_data(as_text=True))
    return found


@pytest.mark.parametrize("role", ["admin", "bureau"])
def test_no_chinese_left_in_english(app: Flask, client: FlaskClient, world: dict[str, Any], role: str) -> None:
    sign_in(client, LOGINS[role])
    assert post_form(client, "/lang/en", {"next": "/"}, token_from="/").status_code == 302
    data = data_words(app)
    pages = _pages(app, client, world, role)
    left = {url: sorted(set(CJK.findall(without(text, data)))) for url, text in pages.items()}
    left = {url: words for url, words in left.items() if words}
    assert not left, "Chinese in English pages:\n" + "\n".join(f"{url}: {' '.join(w)}" for url, w in left.items())


@pytest.mark.parametrize("role", ["admin", "bureau"])
def test_no_english_left_in_chinese(app: Flask, client: FlaskClient, world: dict[str, Any], role: str) -> None:
    sign_in(client, LOGINS[role])
    data = data_words(app) | set(LOGINS.values())
    left = {url: sorted(set(WORD.findall(without(text, data))) - ENGLISH_ALLOWED)
            for url, text in _pages(app, client, world, role).items()}
    left = {url: words for url, words in left.items() if words}
    assert not left, "English in Chinese pages:\n" + "\n".join(f"{url}: {' '.join(w)}" for url, w in left.items())
