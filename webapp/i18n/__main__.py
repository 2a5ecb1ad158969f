"""`python -m webapp.i18n update [AREA] | compile | check`: maintain the message catalogues (see the package)."""

from __future__ import annotations

import sys

from webapp import i18n


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("update", "compile", "check"):
        print(i18n.__doc__)
        return 2
    if argv[0] == "update":
        for area in argv[1:] or i18n.areas():
            print(f"updated {i18n.update(area).relative_to(i18n.PACKAGE_DIR.parent)}")
    elif argv[0] == "compile":
        for path in i18n.compile_all():
            print(f"compiled {path.relative_to(i18n.PACKAGE_DIR.parent)}")
    else:
        issues = i18n.problems()
        for issue in issues:
            print(issue)
        return 1 if issues else 0
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
