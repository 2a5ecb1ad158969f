"""The areas' catalogues are merged at run time, so a msgid must read the same in every catalogue that has it:
otherwise whichever catalogue loads last decides, on every page. Checked for every area: one concept, one word
(docs/glossary.md)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from babel.messages.pofile import read_po

from webapp.i18n import all_catalogues, areas, catalogue_path


def _translations() -> dict[str, dict[str, set[str]]]:
    found: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in all_catalogues():
        with path.open("rb") as handle:
            for message in read_po(handle):
                if message.id and message.string and isinstance(message.id, str):
                    found[message.id][str(message.string)].add(str(path))
    return found


def test_the_checked_areas_agree_with_every_other_catalogue() -> None:
    everything = _translations()
    clashes = {}
    for area in areas():
        if not catalogue_path(area).exists():
            continue
        with catalogue_path(area).open("rb") as handle:
            ids = {m.id for m in read_po(handle) if m.id and isinstance(m.id, str)}
        clashes.update({msgid: sorted(everything[msgid]) for msgid in ids if len(everything[msgid]) > 1})
    assert not clashes, f"one msgid, several translations: {clashes}"


def test_the_catalogue_command_runs_without_a_double_import() -> None:
    """`python -m webapp.i18n` runs the package's `__main__`, which the app never imports: no runpy warning."""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-W", "error", "-m", "webapp.i18n"], capture_output=True, text=True,
                          cwd=root, env={**os.environ, "PYTHONPATH": str(root)}, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "RuntimeWarning" not in done.stderr and done.stderr == ""
    assert "python -m webapp.i18n update" in done.stdout
    assert "i18n" not in areas()
