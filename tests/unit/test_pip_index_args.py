"""One builder of pip's index arguments (xpulab.gpu.xpulab_pip_index_args) for every role that runs pip.

Every ansible.builtin.pip task of every role that installs from an index is
found in the task files and its extra_args rendered with Ansible's templar,
with the role's defaults, vars and set_fact values, for a plain-http mirror
that is not localhost and for an https one: http needs --trusted-host, or pip
ignores the index ("The repository located at mirror.lab.internal is not a
trusted or secure host and is being ignored"). The air-gapped section of
docs/operations.md names every URL variable of every role.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import xpulab  # type: ignore[import-not-found]
import yaml  # type: ignore[import-untyped]
from ansible_templar import ROOT, render, role_files

HTTP = "http://mirror.lab.internal/pypi/simple"
HTTP_EXTRA = "http://mirror.lab.internal:8080/extra/simple"
HTTPS = "https://mirror.lab.internal/pypi/simple"


def test_https_index_is_not_trusted() -> None:
    assert xpulab.pip_index_args(HTTPS, ["https://pypi.org/simple"]) == [
        "--index-url", HTTPS, "--extra-index-url", "https://pypi.org/simple"]


def test_every_http_host_is_trusted_once_without_its_port() -> None:
    args = xpulab.pip_index_args(HTTP, [HTTPS.replace("mirror", "secure"), HTTP_EXTRA, "HTTP://Other.Lab:81/simple"])
    assert args == ["--index-url", HTTP, "--extra-index-url", "https://secure.lab.internal/pypi/simple",
                    "--extra-index-url", HTTP_EXTRA, "--extra-index-url", "HTTP://Other.Lab:81/simple",
                    "--trusted-host", "mirror.lab.internal", "--trusted-host", "other.lab"]


def test_file_index_and_no_extras() -> None:
    assert xpulab.pip_index_args("file:///srv/pypi/simple") == ["--index-url", "file:///srv/pypi/simple"]


def test_registered_as_ansible_filter() -> None:
    assert xpulab.FilterModule().filters()["xpulab_pip_index_args"] is xpulab.pip_index_args


def tasks(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every task of a task list, blocks included."""
    for task in items or []:
        for key in ("block", "rescue", "always"):
            yield from tasks(task.get(key, []))
        yield task


def role_tasks(role: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    for path in sorted((role / "tasks").glob("*.yml")):
        for task in tasks(yaml.safe_load(path.read_text()) or []):
            yield f"{role.name}/{path.name}: {task.get('name')}", task


def pip_installs() -> list[tuple[str, str, dict[str, Any]]]:
    """(role, label, task) for every install the roles make: each imports xpulab.gpu.xpulab_lock tasks_from install."""
    found = []
    for role in sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir()):
        for label, task in role_tasks(role):
            spec = task.get("ansible.builtin.import_role") or task.get("ansible.builtin.include_role") or {}
            if spec.get("name") == "xpulab.gpu.xpulab_lock" and spec.get("tasks_from") == "install":
                found.append((role.name, label, task))
    return found


def set_facts(role: str) -> dict[str, Any]:
    """Every set_fact value of the role's task files (templated only when a rendered expression uses it)."""
    values: dict[str, Any] = {}
    for _label, task in role_tasks(ROOT / "roles" / role):
        values.update({k: v for k, v in (task.get("ansible.builtin.set_fact") or {}).items() if k != "cacheable"})
    return values


def mirror_vars(role: str, index: str, extra: str) -> dict[str, Any]:
    """Every index URL variable of the role pointed at the mirror; every extra index list at one extra index."""
    names = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())
    values: dict[str, Any] = {name: index for name in names if name.endswith("_index_url")}
    values.update({name: [extra] for name in names if name.endswith("_extra_index_urls")})
    # The plugin install on an XPU node: torchcodec's and torchcodec-xpu's indexes together.
    return {**values, "torchcodec_use_xpu": True}


def rendered(index: str, extra: str) -> dict[str, list[str]]:
    """label -> pip's extra arguments (xpulab_lock_pip_args) for every install of the roles."""
    lines: dict[str, list[str]] = {}
    for role in sorted({role for role, _label, _task in pip_installs()}):
        mine = {label: task for r, label, task in pip_installs() if r == role}
        templates = set_facts(role)
        for task in mine.values():
            templates.update({k: v for k, v in (task.get("vars") or {}).items() if k != "xpulab_lock_pip_args"})
        out = render({label: task["vars"]["xpulab_lock_pip_args"] for label, task in mine.items()},
                     files=role_files(role), templates=templates, data=mirror_vars(role, index, extra))
        lines.update({label: [str(arg) for arg in argv] for label, argv in out.items()})
    return lines


def test_every_role_that_runs_pip_is_covered() -> None:
    labels = [label for _role, label, _task in pip_installs()]
    assert {label.split("/")[0] for label in labels} == {"pytorch", "torchcodec"}
    assert len(labels) == 3, labels
    # The only pip tasks that install are xpulab_lock's: from the lock with --require-hashes, or (opted out) by name.
    pips = [task.get("ansible.builtin.pip") for role in sorted((ROOT / "roles").iterdir()) if (role / "tasks").is_dir()
            for _label, task in role_tasks(role)
            if "ansible.builtin.pip" in task and task["ansible.builtin.pip"].get("state", "present") != "absent"]
    assert len(pips) == 2 and all("xpulab_lock_pip_args" in pip["extra_args"] for pip in pips), pips
    assert [pip.get("requirements") is not None and "--require-hashes" in pip["extra_args"] for pip in pips] == [True, False]


@pytest.fixture(scope="module")
def http_lines() -> dict[str, list[str]]:
    return rendered(HTTP, HTTP_EXTRA)


def test_http_mirror_is_a_trusted_host_of_every_pip_install(http_lines: dict[str, list[str]]) -> None:
    assert len(http_lines) == len(pip_installs())
    for label, argv in http_lines.items():
        line = shlex.join(argv)
        assert f"--index-url {HTTP}" in line, (label, line)
        assert "--trusted-host mirror.lab.internal" in line, (label, line)
        assert argv.count("--trusted-host") == 1, (label, line)


def test_extra_indexes_are_passed(http_lines: dict[str, list[str]]) -> None:
    with_extras = {label: argv for label, argv in http_lines.items() if "test_setup" not in label}
    for label, argv in with_extras.items():
        assert f"--extra-index-url {HTTP_EXTRA}" in shlex.join(argv), (label, argv)


def test_https_mirror_is_not_a_trusted_host() -> None:
    lines = rendered(HTTPS, HTTPS.replace("mirror", "extra"))
    assert len(lines) == len(pip_installs())
    for label, argv in lines.items():
        assert "--trusted-host" not in argv, (label, argv)
        assert argv[argv.index("--index-url") + 1] == HTTPS, (label, argv)


def test_air_gapped_docs_name_every_url_variable() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    section = text[text.index("## Air-gapped labs"):]
    section = section[:section.index("\n## ", 1)]
    urls = sorted(name for path in (ROOT / "roles").glob("*/defaults/main.yml")
                  for name in yaml.safe_load(path.read_text()) or {} if name.endswith(("_url", "_urls")))
    assert len(urls) >= 17, urls
    assert [name for name in urls if f"{name}:" not in section] == []
