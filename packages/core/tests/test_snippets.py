"""Every Python snippet a user reads runs: the README's, the core README's and each docs page's.

The ```python blocks of one page run in order in one namespace (like a notebook). A block that includes
a file (``--8<--``: the examples, run by test_examples.py) is skipped, as is a block directly preceded by
the line ``<!-- snippet: skip -->``. A block directly preceded by ``<!-- snippet: standalone -->`` must also
run pasted alone, in a fresh namespace (e.g. "the same in PyTorch" after a JAX example).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PAGES = [ROOT / "README.md", ROOT / "packages" / "core" / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(?:<!-- snippet: (skip|standalone) -->\s*)?^```python\n(.*?)^```", re.S | re.M)


def python_blocks(page: Path, marker: str = "") -> list[str]:
    """The page's runnable blocks (``marker=""``), or those marked ``<!-- snippet: standalone -->``."""
    text = page.read_text(encoding="utf-8")
    blocks = [(mark, code) for mark, code in BLOCK.findall(text) if mark != "skip" and "--8<--" not in code]
    return [code for mark, code in blocks if not marker or mark == marker]


PAGES_WITH_CODE = [p for p in PAGES if python_blocks(p)]

# Modules whose docstring ``Example::`` block (the indented block after the line ending in "Example::")
# must run as is. TODO(lead): add "fg2u.jax" and "fg2u.torch" once their examples define every name.
MODULE_EXAMPLES: list[str] = ["fg2u.jax", "fg2u.torch"]


def docstring_example(module_name: str) -> str:
    import importlib
    import textwrap

    doc = importlib.import_module(module_name).__doc__ or ""
    match = re.search(r"Example[^\n]*::\n\n((?:[ \t]+.*\n|\n)+)", doc)
    assert match, f"{module_name}'s docstring has no 'Example::' block"
    return textwrap.dedent(match.group(1))


@pytest.mark.slow
@pytest.mark.parametrize("module_name", MODULE_EXAMPLES)
def test_module_docstring_example_runs(module_name):
    exec(compile(docstring_example(module_name), f"{module_name}.__doc__", "exec"), {"__name__": "docstring"})  # noqa: S102


def test_the_docs_have_snippets():
    names = {p.name for p in PAGES_WITH_CODE}
    assert {"README.md", "getting-started.md", "recipes.md", "records.md"} <= names


STANDALONE = [(p, i) for p in PAGES for i, _ in enumerate(python_blocks(p, "standalone"))]


def test_the_pytorch_snippet_is_marked_standalone():
    assert any(p.name == "getting-started.md" for p, _ in STANDALONE)


@pytest.mark.parametrize(
    "page,index", STANDALONE, ids=lambda x: str(x.relative_to(ROOT)) if isinstance(x, Path) else str(x)
)
def test_standalone_snippets_run_pasted_alone(page, index):
    code = python_blocks(page, "standalone")[index]
    exec(compile(code, f"{page.relative_to(ROOT)}[standalone {index}]", "exec"), {"__name__": "standalone"})  # noqa: S102


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES_WITH_CODE, ids=lambda p: str(p.relative_to(ROOT)))
def test_page_snippets_run(page):
    namespace: dict = {"__name__": f"snippets_{page.stem}"}
    for i, code in enumerate(python_blocks(page)):
        try:
            exec(compile(code, f"{page.relative_to(ROOT)}[block {i}]", "exec"), namespace)  # noqa: S102
        except Exception as exc:  # noqa: BLE001 - re-raised with the page and block named
            raise AssertionError(f"{page.relative_to(ROOT)}, python block {i} failed: {exc!r}\n{code}") from exc
