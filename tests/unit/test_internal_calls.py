"""Calls into the collection's internal entry points, checked here instead of at run time.

A role entry point that only the collection's own tasks call (every entry of
xpulab_state, xpulab_lock's target/check/install, decode_smoke's user) is
imported or included with ``rolespec_validate: false``: its arguments come
from the calling task, not from the operator, and Ansible's run-time check
costs one task per call and node on every run (docs/performance.md). The
operator's inputs are still checked at run time: every role's main entry
point, and playbooks/preflight.yml against every role's spec before any node
changes. This test keeps the internal calls honest instead: each one names
an entry point that exists, passes only variables that entry point declares,
and leaves no required option unset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
# Entry points called only by the collection's own tasks (None: every entry).
INTERNAL: dict[str, set[str] | None] = {
    "xpulab_state": None,
    "xpulab_lock": {"target", "check", "install"},
    "decode_smoke": {"user"},
}
ACTIONS = ("ansible.builtin.import_role", "ansible.builtin.include_role")


def walk(tasks: Any) -> Iterator[dict[str, Any]]:
    """Every task of a task list or play list, blocks and plays opened."""
    for item in tasks or []:
        if not isinstance(item, dict):
            continue
        yield item
        for key in ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers"):
            yield from walk(item.get(key))


def role_calls() -> list[tuple[str, dict[str, Any]]]:
    """(file, task) for every import_role/include_role of the collection's roles and playbooks."""
    files = sorted([*(ROOT / "roles").glob("*/tasks/*.yml"), *(ROOT / "playbooks").glob("*.yml"), ROOT / "site.yml"])
    found = []
    for path in files:
        for task in walk(yaml.safe_load(path.read_text())):
            for action in ACTIONS:
                if action in task:
                    found.append((str(path.relative_to(ROOT)), task))
    return found


def call_args(task: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a task's import_role or include_role."""
    return dict(task[next(a for a in ACTIONS if a in task)])


def spec(role: str, entry: str) -> dict[str, Any] | None:
    specs = yaml.safe_load((ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())["argument_specs"]
    return specs.get(entry)


def defaults(role: str) -> dict[str, Any]:
    path = ROOT / "roles" / role / "defaults" / "main.yml"
    return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}


CALLS = role_calls()
UNCHECKED = [(f, t) for f, t in CALLS if call_args(t).get("rolespec_validate") is False]


def test_there_are_calls_to_check() -> None:
    assert len(CALLS) > 40
    assert len(UNCHECKED) > 30


@pytest.mark.parametrize(("path", "task"), UNCHECKED, ids=[f"{f}:{t['name']}" for f, t in UNCHECKED])
def test_an_unchecked_call_is_internal_and_passes_declared_variables(path: str, task: dict[str, Any]) -> None:
    args = call_args(task)
    role = str(args["name"]).split(".")[-1]
    entry = str(args.get("tasks_from", "main")).removesuffix(".yml")
    assert role in INTERNAL, f"{path}: {role} is not a role of internal entry points; its input must be checked"
    allowed = INTERNAL[role]
    assert allowed is None or entry in allowed, f"{path}: {role}:{entry} takes operator input; its check stays on"
    entry_spec = spec(role, entry)
    assert entry_spec is not None, f"{path}: {role} has no entry point {entry!r} in meta/argument_specs.yml"
    options = entry_spec.get("options") or {}
    # Variables of the called role's namespace that the call sets must be options of the entry point.
    passed = {name for name in (task.get("vars") or {}) if name.startswith(f"{role}_")}
    undeclared = passed - set(options)
    assert not undeclared, f"{path}: {role}:{entry} does not declare {sorted(undeclared)}"
    # A required option needs a value: from the call, or the role's defaults.
    missing = {name for name, opt in options.items() if opt.get("required")} - passed - set(defaults(role))
    assert not missing, f"{path}: {role}:{entry} requires {sorted(missing)}"


def test_operator_entry_points_stay_checked() -> None:
    """Main entry points (and the other operator-facing ones) are never called unchecked."""
    for path, task in UNCHECKED:
        args = call_args(task)
        assert str(args.get("tasks_from", "main")) != "main", path
