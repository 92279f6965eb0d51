"""The inventory preflight stops a run before any host is touched."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))


def run_site(inventory: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "site.yml", "-i", inventory],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_shipped_lab_inventory_stops_with_instructions() -> None:
    result = run_site("lab")
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "lab/hosts.yml still holds the example nodes" in out
    assert "node-01.example.invalid, node-02.example.invalid" in out
    assert "replace the example entries under xpulab_nodes.hosts" in out
    # Only the localhost preflight ran: no play reached a node.
    assert "node-01.example.invalid : ok=" not in out
    assert "Gathering Facts" not in out


def test_inventory_without_nodes_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text("all:\n  hosts:\n    somewhere.example.invalid:\n")
    result = run_site(str(inventory))
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "has no hosts in group 'xpulab_nodes'" in out


def test_example_marker_alone_is_enough(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "xpulab_nodes:\n  hosts:\n    gpu1.lab.test:\n      xpulab_example_node: true\n"
        "    gpu2.lab.test: {}\n"
    )
    result = run_site(str(inventory))
    out = " ".join(result.stdout.split())
    assert result.returncode != 0
    assert "still holds the example nodes (gpu1.lab.test)" in out
