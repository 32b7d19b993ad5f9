"""Every public name of the core is on an API page, and no docstring uses a Sphinx role.

The API pages (docs/api/*.md) render objects with mkdocstrings directives (``::: fg2u.jax`` with
``members: [...]``) and, for classes static analysis cannot see, hand-written headings with the object's path
as id. This test resolves each listed path to the object it names (by import) and checks that every name in
the ``__all__`` of ``fg2u``, ``fg2u.jax``, ``fg2u.torch``, ``fg2u.estimators``, ``fg2u.quality`` and ``fg2u.experiment`` is one of
them (the same object: a re-export counts where its defining module is documented). That the listed paths
are rendered is checked on the built site by scripts/check_docs_site.py (``nox -s docs``).

mkdocstrings prints Sphinx roles (``:func:`…```) literally; docstrings use its cross-references
(``[`name`][fg2u.module.name]``) or plain backticks — the second test greps the sources for roles.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "packages" / "core" / "src"


def _site_checks() -> Any:
    spec = importlib.util.spec_from_file_location("check_docs_site", ROOT / "scripts" / "check_docs_site.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CHECKS = _site_checks()


def _resolve(path: str) -> Any:
    """The object at a dotted path, as mkdocstrings sees it: a submodule wins over a same-named attribute
    (``fg2u.jax.unroll`` is the module, as griffe reads it)."""
    try:
        return importlib.import_module(path)
    except ImportError:
        parent, _, name = path.rpartition(".")
        return getattr(_resolve(parent), name)


def _documented() -> list[Any]:
    objects = [_resolve(p) for p in CHECKS.listed_targets()]
    for target, members in CHECKS.api_directives():
        module = _resolve(target)
        if members is None and hasattr(module, "__all__"):  # no members option: its public names
            objects += [getattr(module, n) for n in module.__all__]
    return objects


@pytest.mark.parametrize(
    "module_name", ["fg2u", "fg2u.jax", "fg2u.torch", "fg2u.estimators", "fg2u.quality", "fg2u.experiment"]
)
def test_every_public_name_is_on_an_api_page(module_name: str) -> None:
    if module_name in ("fg2u.jax", "fg2u.torch"):
        pytest.importorskip(module_name.split(".")[1])
    module = importlib.import_module(module_name)
    documented = _documented()
    missing = [n for n in module.__all__ if not any(getattr(module, n) is o for o in documented)]
    assert not missing, (
        f"{module_name}.__all__ names on no API page: {missing}; add them to a `members: [...]` list in docs/api/"
    )


def test_listed_paths_exist() -> None:
    """A listed member that does not exist would render as nothing (mkdocstrings does not fail on it)."""
    for path in CHECKS.listed_targets():
        if path.startswith(("fg2u.jax", "fg2u.torch")):
            pytest.importorskip(path.split(".")[1])
        _resolve(path)  # raises AttributeError / ImportError naming the path


def test_no_sphinx_roles_in_core_docstrings() -> None:
    role = re.compile(r":(?:func|class|mod|meth|data|attr|exc|obj):`")
    found = [
        f"{path.relative_to(SRC)}:{number}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if role.search(line)
    ]
    assert not found, (
        "Sphinx roles render literally in the mkdocs site; write [`name`][fg2u.module.name] (mkdocstrings "
        "cross-reference) or `name`:\n"
        + "\n".join(found[:20])
        + (f"\n… {len(found) - 20} more" if len(found) > 20 else "")
    )
