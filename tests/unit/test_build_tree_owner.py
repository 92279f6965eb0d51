"""A partial build tree is resumed only by the build user that started it.

The ffmpeg and torchcodec roles' own tasks (read from build.yml) run on
localhost with ansible-playbook against a temp tree: a tree another user owns
(the build user changed, e.g. from the shared xpulab-build to the per-kind
user) is removed so the build starts afresh; the build user's own tree is kept.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chowns the tree")


def owner_tasks(role: str) -> list[dict[str, Any]]:
    tasks = yaml.safe_load((ROOT / "roles" / role / "tasks" / "build.yml").read_text())
    wanted = ["Read who owns this fingerprint's build tree", "Remove a build tree that another user started"]
    return [t for t in tasks if t.get("name") in wanted]


@pytest.mark.parametrize("role", ["ffmpeg", "torchcodec"])
@pytest.mark.parametrize(("owner", "kept"), [(0, True), (65534, False)])
def test_tree_of_another_user_is_removed(tmp_path: Path, role: str, owner: int, kept: bool) -> None:
    tree = tmp_path / "tree"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "half-built.o").write_text("")
    os.chown(tree, owner, owner)
    tasks = owner_tasks(role)
    assert len(tasks) == 2
    play = [{"hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                      f"{role}_build_dir": str(tree), f"{role}_build_user": "root"},
             "tasks": tasks}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    proc = subprocess.run([str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,",
                           str(tmp_path / "play.yml")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=False, env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (tree / "src" / "half-built.o").exists() is kept
