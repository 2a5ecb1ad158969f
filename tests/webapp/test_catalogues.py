"""The areas' catalogues are merged at run time, so a msgid must read the same in every catalogue that has it:
otherwise whichever catalogue loads last decides, on every page. Checked for every area: one concept, one word
(docs/glossary.md)."""

from __future__ import annotations

from collections import defaultdict

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
