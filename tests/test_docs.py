"""The examples of the documentation run: every ``docs/*.md`` page and every docstring of the
package with ``>>>`` examples is a doctest."""

from __future__ import annotations

import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import protomodels
from protomodels.exceptions import SharedDataNotFoundError
from protomodels.paths import shared_dir

DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(p.name for p in DOCS.glob("*.md"))
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: a line that starts a doctest example
EXAMPLE = re.compile(r"^\s*>>> ", re.MULTILINE)

#: pages whose examples read the shared data folder (the protomodel template)
NEEDS_SHARED = {"walk.md"}


def _modules_with_examples() -> list[str]:
    """The package and every module pkgutil finds in it whose source has ``>>>``."""
    names = [protomodels.__name__] + [
        m.name for m in pkgutil.walk_packages(protomodels.__path__, protomodels.__name__ + ".")
    ]
    found = []
    for name in names:
        spec = importlib.util.find_spec(name)
        origin = getattr(spec, "origin", None)
        if origin and origin.endswith(".py") and ">>>" in Path(origin).read_text("utf-8"):
            found.append(name)
    return found


MODULES = _modules_with_examples()


def test_docs_exist() -> None:
    assert {"README.md", "database.md", "predictions.md", "statistics.md", "combiner.md",
            "critics.md", "walk.md"} <= set(PAGES)
    assert MODULES, "no docstring examples found in the package"


@pytest.mark.parametrize("page", PAGES)
def test_page_examples(page: str) -> None:
    path = DOCS / page
    if page in NEEDS_SHARED:
        try:
            shared_dir()
        except SharedDataNotFoundError as err:
            pytest.skip(f"{page} needs the shared data folder: {err}")
    result = doctest.testfile(
        str(path), module_relative=False, optionflags=FLAGS, encoding="utf-8", report=True
    )
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {page} failed"
    if EXAMPLE.search(path.read_text("utf-8")):
        assert result.attempted > 0, f"{page} has examples but doctest found none"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    assert ">>>" in inspect.getsource(module)
    result = doctest.testmod(module, optionflags=FLAGS, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed"
