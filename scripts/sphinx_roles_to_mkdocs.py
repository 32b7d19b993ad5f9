"""Rewrites Sphinx roles in Python sources into mkdocstrings cross-references (a one-off, re-runnable).

``:class:`~fg2u.jax.RGU``` becomes ``[`RGU`][fg2u.jax.RGU]`` when the built site has an anchor for the object
(the role's path, a public alias of the same object, or a relative name resolved from the file's module and
its packages), and plain backticks (``RGU``) otherwise. Needs a built site for the anchors and an
environment where fg2u (with jax and torch) imports:

    mkdocs build -d /tmp/site
    python scripts/sphinx_roles_to_mkdocs.py --site /tmp/site packages/core/src

Prints one line per rewritten role that found no anchor, so they can be checked by hand.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from pathlib import Path
from typing import Any

ROLE = re.compile(r":(func|class|mod|meth|data|attr|exc|obj):`(~?)([^`]+)`")
ANCHOR = re.compile(r'\bid="(fg2u[\w.]*)"')


def _resolve(path: str) -> Any:
    try:
        return importlib.import_module(path)
    except ImportError:
        parent, _, name = path.rpartition(".")
        if not parent:
            raise
        return getattr(_resolve(parent), name)


def _try(path: str) -> Any:
    try:
        return _resolve(path)
    except (ImportError, AttributeError):
        return None


def _try_attribute(path: str) -> Any:
    """The attribute at ``path`` (``fg2u.jax.unroll`` the function, where the import system gives the module)."""
    parent, _, name = path.rpartition(".")
    return getattr(_try(parent), name, None) if parent else None


class Anchors:
    def __init__(self, site: Path) -> None:
        ids = {a for page in site.rglob("*.html") for a in ANCHOR.findall(page.read_text(encoding="utf-8"))}
        self.ids = ids
        self.by_object: dict[int, list[str]] = {}
        for anchor in sorted(ids, key=lambda a: (a.count("."), a)):
            obj = _try(anchor)
            if obj is not None:
                self.by_object.setdefault(id(obj), []).append(anchor)

    def find(self, target: str, module: str, role: str) -> str | None:
        """The anchor of ``target`` (absolute, or relative to ``module`` or one of its packages); for a role
        other than ``:mod:`` an attribute wins over a same-named submodule (as in Python)."""
        parts = module.split(".")
        candidates = [target] if target.startswith("fg2u") else []
        candidates += [".".join(parts[:i] + [target]) for i in range(len(parts), 0, -1)]
        for path in candidates:
            obj = _try(path) if role == "mod" else _try_attribute(path) or _try(path)
            if obj is not None and self.by_object.get(id(obj)):
                anchors = self.by_object[id(obj)]
                return path if path in anchors else anchors[0]
            if path in self.ids and obj is None:
                return path
        return None


LINK = re.compile(r"\[`[^`]*`\]\[[\w.]+\]")
ENTRY = re.compile(r"^\s+[\w*]+(?: \([^)]*\))?: ")  # an Args/Attributes entry: "name: text", "name (type): text"


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _continues(line: str, indent: int) -> bool:
    """Whether ``line`` continues a paragraph at ``indent`` (so text carried over can join it)."""
    text = line.strip()
    return (
        bool(text)
        and _indent(line) == indent
        and not text.startswith(("*", "-", ">>>", "...", '"""', "#", "|"))
        and not text.endswith(":")
        and not ENTRY.match(line)
    )


def _split(line: str, width: int, start: int) -> tuple[str, str] | None:
    """``(head, rest)`` at the last space before ``width`` outside a link, or None when there is none."""
    protected = [range(m.start(), m.end()) for m in LINK.finditer(line)]
    cut = next((i for i in range(width, start, -1) if line[i] == " " and not any(i in r for r in protected)), None)
    if cut is None:
        return None
    return line[:cut].rstrip(), line[cut + 1 :].strip()


def rewrite(text: str, module: str, anchors: Anchors, unresolved: list[str], width: int = 120) -> str:
    """Rewrites every role of ``text``; a line the rewrite made longer than ``width`` is wrapped, its overflow
    joining the next line when that line continues the same paragraph (a local reflow)."""
    lines = text.split("\n")
    out: list[str] = []
    carry: tuple[str, int] | None = None  # text carried over from the previous line, and its indentation
    for i, raw in enumerate(lines):
        line = _rewrite_line(raw, module, anchors, unresolved)
        touched = line != raw
        if carry is not None:
            rest, indent = carry
            carry = None
            if _continues(line, indent):
                line, touched = " " * indent + rest + " " + line.lstrip(), True
            else:
                out.extend(_flush(" " * indent + rest, indent, width))
        if touched and len(line) > width and not line.lstrip().startswith("#"):  # comments stay long
            split = _split(line, width, _indent(line))
            if split is not None:
                head, rest = split
                hanging = ENTRY.match(line) or line.lstrip().startswith(("* ", "- "))
                indent = _indent(line) + (2 if hanging else 0)
                nxt = lines[i + 1] if i + 1 < len(lines) else ""
                if nxt.strip() and _indent(nxt) > indent:
                    indent = _indent(nxt)
                out.append(head)
                if '"""' in rest or "'''" in rest:  # the string ends here: nothing after it may join
                    out.extend(_flush(" " * indent + rest, indent, width))
                else:
                    carry = (rest, indent)
                continue
        out.append(line)
    if carry is not None:
        out.extend(_flush(" " * carry[1] + carry[0], carry[1], width))
    return "\n".join(out)


def _flush(line: str, indent: int, width: int) -> list[str]:
    out = []
    while len(line) > width and (split := _split(line, width, indent)) is not None:
        out.append(split[0])
        line = " " * indent + split[1]
    return out + [line]


def _rewrite_line(text: str, module: str, anchors: Anchors, unresolved: list[str]) -> str:
    def replace(match: re.Match) -> str:
        role, tilde, target = match.groups()
        target = target.strip()
        display = target.rsplit(".", 1)[-1] if tilde else target
        if "{" in target:  # inside an f-string: leave the link to the reader
            return f"`{display}`"
        anchor = anchors.find(target.rstrip("()"), module, role)
        if anchor is None:
            unresolved.append(f"{module}: {match.group(0)}")
            return f"`{display}`"
        return f"[`{display}`][{anchor}]"

    return ROLE.sub(replace, text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, required=True, help="a built mkdocs site (for its anchors)")
    parser.add_argument("src", type=Path, help="a source root, e.g. packages/core/src")
    args = parser.parse_args(argv)
    anchors = Anchors(args.site)
    unresolved: list[str] = []
    changed = 0
    for path in sorted(args.src.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        if not ROLE.search(text):
            continue
        rel = path.relative_to(args.src).with_suffix("")
        module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        new = rewrite(text, module, anchors, unresolved)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed += 1
    for line in unresolved:
        print(f"no anchor, plain backticks: {line}")
    print(f"{changed} files rewritten, {len(unresolved)} roles without an anchor", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
