"""The documentation keeps up with the project.

Every variable a role declares (defaults/main.yml, or an option of any entry
point in meta/argument_specs.yml) has a row in docs/roles.md, and every
relative link in README.md and docs/*.md points at a file that exists (and,
for a link into a Markdown page, at a heading that exists).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
ROLES_DOC = ROOT / "docs" / "roles.md"
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
LINK_RE = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def role_variables() -> list[tuple[str, str]]:
    """(role, variable) for every variable a role declares."""
    found: set[tuple[str, str]] = set()
    for role in sorted(p for p in (ROOT / "roles").iterdir() if p.is_dir()):
        defaults = role / "defaults" / "main.yml"
        if defaults.exists():
            found.update((role.name, name) for name in yaml.safe_load(defaults.read_text()) or {})
        specs = role / "meta" / "argument_specs.yml"
        if specs.exists():
            for entry in (yaml.safe_load(specs.read_text()) or {}).get("argument_specs", {}).values():
                found.update((role.name, name) for name in entry.get("options") or {})
    return sorted(found)


def documented_rows() -> set[str]:
    """Variable names that start a table row of docs/roles.md."""
    return set(re.findall(r"^\| `([a-z0-9_]+)` \|", ROLES_DOC.read_text(), re.MULTILINE))


def anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def links() -> list[tuple[str, str]]:
    """(page, target) for every relative link of the Markdown pages."""
    found = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
        for target in LINK_RE.findall(text):
            if not re.match(r"^[a-z]+:", target):
                found.append((str(page.relative_to(ROOT)), target))
    return found


def test_roles_declare_variables() -> None:
    assert len(role_variables()) > 100


@pytest.mark.parametrize(("role", "name"), role_variables())
def test_role_variable_is_documented(role: str, name: str) -> None:
    assert name in documented_rows(), f"{name} (role {role}) has no row in docs/roles.md"


@pytest.mark.parametrize(("page", "target"), links())
def test_relative_link_resolves(page: str, target: str) -> None:
    path, _, fragment = target.partition("#")
    dest = (ROOT / page).parent / path if path else ROOT / page
    assert dest.exists(), f"{page} links to {target}, which does not exist"
    if fragment and dest.suffix == ".md":
        headings = re.findall(r"^#+ (.+)$", dest.read_text(), re.MULTILINE)
        assert fragment in {anchor(h) for h in headings}, f"{page} links to {target}: no such heading"
