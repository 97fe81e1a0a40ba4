"""docs/api.md is the API reference generated from the docstrings: it is current,
and generating it twice gives the same page."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_api", ROOT / "docs" / "gen_api.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_api", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def page(gen: ModuleType) -> tuple[str, list[str]]:
    text, skipped = gen.generate()
    return text, skipped


def test_api_md_is_up_to_date(gen: ModuleType, page: tuple[str, list[str]]) -> None:
    text, skipped = page
    if skipped:
        pytest.skip(f"optional dependencies missing, cannot document: {skipped}")
    current = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert current == text, f"docs/api.md is out of date: regenerate it with `{gen.COMMAND}`"


def test_every_public_name_is_documented(gen: ModuleType, page: tuple[str, list[str]]) -> None:
    text, _skipped = page
    for name in gen.public_module_names():
        module = gen.load(name)
        if isinstance(module, str):
            continue
        assert f'<a id="{gen.anchor(name)}"></a>' in text
        for attr in getattr(module, "__all__", ()):
            value = getattr(module, attr)
            home = getattr(value, "__module__", name)
            documented_here = f'<a id="{gen.anchor(f"{name}.{attr}")}"></a>' in text
            linked = (
                f"[`{attr}`](#{gen.anchor(f'{home}.{value.__name__}')})" in text
                if (home != name and hasattr(value, "__name__"))
                else False
            )
            assert documented_here or linked, f"{name}.{attr} is missing from the reference"


def test_the_page_is_deterministic_and_holds_no_addresses(
    gen: ModuleType, page: tuple[str, list[str]]
) -> None:
    first, _ = page
    second, _ = gen.generate()
    assert first == second
    assert " at 0x" not in first
    assert "ForwardRef(" not in first
