"""Checks of the built documentation site (run by ``nox -s docs`` after ``mkdocs build``).

1. No raw Sphinx role (``:func:`…```, ``:class:`…```, ``:mod:``, ``:meth:``, ``:data:``, ``:attr:``, ``:exc:``,
   ``:obj:``) reached a page: mkdocstrings does not understand them and prints them literally. Write
   ``[`name`][fg2u.module.name]`` (a cross-reference) or plain backticks instead.
2. Every object an API page asks for (``::: target`` with ``members: [...]``, and hand-written headings
   ``### `Name` { #fg2u.module.Name }``) has its anchor in the site: a name that static analysis cannot see
   (a class built at import time, a name shadowed by a submodule) renders as nothing, silently.

    python scripts/check_docs_site.py site          # exit status 1 with the findings on stderr

The parsing of the API pages (:func:`api_directives`, :func:`listed_targets`) is shared with
packages/core/tests/test_api_pages.py, which checks that every public name is listed.
"""

from __future__ import annotations

import html
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_DIR = ROOT / "docs" / "api"

SPHINX_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):(?=[`~\w])")
_DIRECTIVE = re.compile(r"^::: *([\w.]+)[ \t]*\n((?:[ \t]+.*\n|[ \t]*\n)*)", re.M)
_MEMBERS = re.compile(r"^[ \t]+members:[ \t]*(.*)$", re.M)
_HEADING_ID = re.compile(r"^#+ .*\{ *#([\w.]+) *\}[ \t]*$", re.M)
_ANCHOR = re.compile(r'\bid="([^"]+)"')


def api_directives(api_dir: Path = API_DIR) -> list[tuple[str, list[str] | None | bool]]:
    """``(target, members)`` of every ``::: target`` of the API pages: ``members`` is the list of a
    ``members: [a, b]`` option, ``False`` for ``members: false``, ``None`` when the option is absent."""
    out: list[tuple[str, list[str] | None | bool]] = []
    for page in sorted(api_dir.glob("*.md")):
        for target, options in _DIRECTIVE.findall(page.read_text(encoding="utf-8")):
            match = _MEMBERS.search(options)
            members: list[str] | None | bool = None
            if match:
                value = match.group(1).strip()
                if value == "false":
                    members = False
                elif value.startswith("[") and value.endswith("]"):
                    members = [m.strip() for m in value[1:-1].split(",") if m.strip()]
                else:
                    raise ValueError(f"{page.name}: write `members:` of {target} as false or [a, b] on one line")
            out.append((target, members))
    return out


def heading_ids(api_dir: Path = API_DIR) -> list[str]:
    """The ids of the hand-written headings ``### … { #id }`` of the API pages."""
    return [i for page in sorted(api_dir.glob("*.md")) for i in _HEADING_ID.findall(page.read_text(encoding="utf-8"))]


def listed_targets(api_dir: Path = API_DIR) -> list[str]:
    """Every dotted path an API page renders explicitly (directive targets, their listed members,
    hand-written heading ids), in page order."""
    paths = []
    for target, members in api_directives(api_dir):
        paths.append(target)
        if isinstance(members, list):
            paths += [f"{target}.{m}" for m in members]
    return paths + heading_ids(api_dir)


def raw_roles(site: Path) -> list[str]:
    """``page: excerpt`` of each raw Sphinx role in the site's HTML pages."""
    found = []
    for page in sorted(site.rglob("*.html")):
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))
        for match in SPHINX_ROLE.finditer(text):
            excerpt = text[match.start() : match.start() + 60].split("\n")[0]
            found.append(f"{page.relative_to(site)}: {excerpt}")
    return found


def missing_anchors(site: Path, api_dir: Path = API_DIR) -> list[str]:
    """The paths an API page lists that have no anchor (``id="…"``) in the built API pages."""
    anchors = {a for page in (site / "api").rglob("*.html") for a in _ANCHOR.findall(page.read_text(encoding="utf-8"))}
    # a directive whose root heading is hidden has no anchor of its own, only its members do
    hidden = {t for t, m in api_directives(api_dir) if isinstance(m, list) and t not in anchors}
    return [p for p in dict.fromkeys(listed_targets(api_dir)) if p not in anchors and p not in hidden]


def main(argv: list[str]) -> int:
    site = Path(argv[0] if argv else "site")
    if not (site / "index.html").exists():
        print(f"{site} holds no built site; run `mkdocs build` first", file=sys.stderr)
        return 2
    roles, missing = raw_roles(site), missing_anchors(site)
    for line in roles:
        print(f"raw Sphinx role (write [`name`][fg2u.path] or `name`): {line}", file=sys.stderr)
    for path in missing:
        print(f"listed on an API page but not rendered (no anchor {path!r} in site/api)", file=sys.stderr)
    if roles or missing:
        return 1
    print(f"{site}: no raw Sphinx roles; all {len(set(listed_targets()))} listed API paths rendered")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
