"""Languages: Chinese by default, English on request; message catalogues one per area.

Message ids are written in English. Each area keeps its own catalogue so areas never edit the same file:

    webapp/translations/zh/LC_MESSAGES/messages.po          core: webapp/*.py, auth/, templates/*.html,
                                                             templates/auth/, templates/errors/
    webapp/<area>/translations/zh/LC_MESSAGES/messages.po   area: webapp/<area>/**.py, templates/<area>/**

    python -m webapp.i18n update [AREA]   extract msgids from the sources into the area's .po (new ones empty)
    python -m webapp.i18n compile         write every .mo from its .po (commit both)
    python -m webapp.i18n check           fail on untranslated or fuzzy entries, stale .mo, or msgids
                                          used in code but missing from their catalogue

The command line lives in `webapp/i18n/__main__.py`: the app imports this module, so running the module
itself as `__main__` would load it twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_file
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po, write_po
from flask import current_app, has_request_context, request
from flask_babel import get_locale
from flask_login import current_user
from jinja2.ext import babel_extract

from webapp.labels import (
    DAY_NAMES,
    amendment_reason,
    relation_label,
    seat_policy_label,
    show_date,
    show_time,
    solver_status,
    unserved_reason,
    zone_label,
)

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = PACKAGE_DIR / "templates"
TARGET_LOCALE = "zh"
CORE_TEMPLATE_DIRS = ("auth", "errors")
CORE_PACKAGES = ("auth", "i18n")
"""Packages whose messages live in the core catalogue rather than a catalogue of their own."""
KEYWORDS: dict[str, Any] = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
LANG_COOKIE = "lang"


def select_locale() -> str:
    """The language cookie, then the signed-in user's saved choice, then Chinese."""
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI commands, jobs and workers speak the default language
        return str(current_app.config["BABEL_DEFAULT_LOCALE"])
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in languages:
        return str(chosen)
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return str(current_user.locale)
    return str(current_app.config["BABEL_DEFAULT_LOCALE"])


def template_globals() -> dict[str, Any]:
    locale = str(get_locale() or "zh")
    return {
        "languages": current_app.config["LANGUAGES"],
        "current_locale": locale,
        "html_lang": "zh-CN" if locale.startswith("zh") else locale,
        "app_name": current_app.config["APP_NAME"],
        "has_endpoint": lambda name: name in current_app.view_functions,
        "day_labels": DAY_NAMES,
        "show_time": show_time,
        "show_date": show_date,
        "relation_label": relation_label,
        "solver_status": solver_status,
        "seat_policy_label": seat_policy_label,
        "unserved_reason": unserved_reason,
        "amendment_reason": amendment_reason,
        "zone_label": zone_label,
    }


# --- catalogue maintenance -------------------------------------------------------------------------------


def areas() -> list[str]:
    """"core" plus every package under webapp/ that has (or should have) its own catalogue."""
    found = ["core"]
    for path in sorted(PACKAGE_DIR.iterdir()):
        if (path / "__init__.py").exists() and path.name not in (*CORE_PACKAGES, "migrations", "translations"):
            found.append(path.name)
    return found


def catalogue_path(area: str) -> Path:
    base = PACKAGE_DIR / "translations" if area == "core" else PACKAGE_DIR / area / "translations"
    return base / TARGET_LOCALE / "LC_MESSAGES" / "messages.po"


def source_files(area: str) -> Iterator[Path]:
    if area == "core":
        yield from sorted(PACKAGE_DIR.glob("*.py"))
        for package in CORE_PACKAGES:
            yield from sorted((PACKAGE_DIR / package).rglob("*.py"))
        yield from sorted(TEMPLATES.glob("*.html"))
        for sub in CORE_TEMPLATE_DIRS:
            yield from sorted((TEMPLATES / sub).rglob("*.html"))
    else:
        yield from sorted((PACKAGE_DIR / area).rglob("*.py"))
        yield from sorted((TEMPLATES / area).rglob("*.html"))


def extract(area: str) -> Catalog:

    catalog = Catalog(project="afterschool", locale=None)
    for path in source_files(area):
        method: Any = babel_extract if path.suffix == ".html" else "python"
        options = {"trimmed": "true"} if path.suffix == ".html" else {}
        for lineno, message, comments, context in extract_from_file(method, str(path), KEYWORDS, (), options):
            catalog.add(message, None, [(str(path.relative_to(PACKAGE_DIR)), lineno)],
                        auto_comments=comments, context=context)
    return catalog


def _read(path: Path) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=TARGET_LOCALE)


def update(area: str) -> Path:
    path = catalogue_path(area)
    template = extract(area)
    if path.exists():
        catalog = _read(path)
        catalog.update(template, no_fuzzy_matching=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        catalog = Catalog(project="afterschool", locale=TARGET_LOCALE)
        catalog.update(template, no_fuzzy_matching=True)
    catalog.fuzzy = False
    catalog.header_comment = "# Chinese (Simplified) translations of the afterschool web app."
    with path.open("wb") as handle:
        write_po(handle, catalog, width=110, ignore_obsolete=True, omit_header=False)
    return path


def all_catalogues() -> list[Path]:
    return [catalogue_path(area) for area in areas() if catalogue_path(area).exists()]


def compile_all() -> list[Path]:
    written = []
    for path in all_catalogues():
        with path.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, _read(path), use_fuzzy=False)
        written.append(path.with_suffix(".mo"))
    return written


def _translations(catalog: Catalog) -> dict[Any, Any]:
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


def problems() -> list[str]:
    """Everything that would show a Chinese user an English sentence, or an English user a stale one."""
    found: list[str] = []
    for area in areas():
        path = catalogue_path(area)
        used = {m.id for m in extract(area) if m.id}
        if not path.exists():
            if used:
                found.append(f"{area}: no catalogue at {path.relative_to(PACKAGE_DIR)}; run `update {area}`")
            continue
        catalog = _read(path)
        for message in catalog:
            if message.id and (not message.string or message.fuzzy or
                               (isinstance(message.string, tuple) and not all(message.string))):
                found.append(f"{area}: untranslated {message.id!r}")
        missing = used - {m.id for m in catalog if m.id}
        found += [f"{area}: {msgid!r} is used but not in the catalogue; run `update {area}`"
                  for msgid in sorted(missing, key=str)]
        mo_path = path.with_suffix(".mo")
        if not mo_path.exists():
            found.append(f"{area}: {mo_path.name} missing; run `compile`")
        else:
            with mo_path.open("rb") as handle:
                if _translations(read_mo(handle)) != _translations(catalog):
                    found.append(f"{area}: {mo_path.name} is older than its .po; run `compile`")
    return found
