"""docs/README.md, the docs index, links every guide in docs/."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_the_index_links_every_guide() -> None:
    index = (DOCS / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(([\w.-]+\.md)\)", index))
    guides = {p.name for p in DOCS.glob("*.md")} - {"README.md"}
    missing = sorted(guides - linked)
    assert not missing, f"docs/README.md does not link {missing}: add them to the index"


def test_the_readme_links_the_index() -> None:
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    assert "(docs/README.md)" in readme
