"""A small playbook (two roles, two local hosts) for the xpulab command and history callback tests."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "cli") not in sys.path:
    sys.path.insert(0, str(ROOT / "cli"))
FPS = {"node1": {"cpu": 512.3, "xpu:0": 1830.0}, "node2": {"cpu": 498.0}}

ALPHA = [
    {"name": "Wait a second", "ansible.builtin.command": "sleep 1", "changed_when": False},
]
BETA = [
    {"name": "Fail where asked", "ansible.builtin.fail": {"msg": "asked to fail"},
     "when": "inventory_hostname == (cli_test_fail | default(''))"},
    {"name": "Create the node report directory", "run_once": True,
     "ansible.builtin.file": {"path": "{{ cli_test_reports }}/nodes", "state": "directory", "mode": "0755"}},
    {"name": "Write the node report", "ansible.builtin.copy": {
        "src": "{{ cli_test_fixtures }}/{{ inventory_hostname }}.json",
        "dest": "{{ cli_test_reports }}/nodes/{{ inventory_hostname }}.json", "mode": "0644"}},
    {"name": "Write the fleet summary", "run_once": True, "ansible.builtin.copy": {
        "content": "# Fleet summary\n\n2 nodes\n", "dest": "{{ cli_test_reports }}/fleet-summary.md", "mode": "0644"}},
]

# What the history holds while the run goes on: the record written at this play's start.
CLOSE = [
    {"name": "Find the history records", "ansible.builtin.find": {"paths": "{{ cli_test_reports }}/history"},
     "register": "cli_test_history"},
    {"name": "Keep a copy of the running record", "ansible.builtin.copy": {
        "src": "{{ (cli_test_history.files | sort(attribute='mtime') | last).path }}", "remote_src": True,
        "dest": "{{ cli_test_reports }}/running-{{ cli_test_run }}.json", "mode": "0644"},
     "when": "cli_test_history.files | length > 0"},
]


def node_report(node: str) -> dict[str, Any]:
    """A node report shaped like roles/fleet_report/tasks/node.yml's, smoke clips as xpulab_decode_smoke writes them."""
    first = {device: {"status": "passed", "fps": fps} for device, fps in FPS[node].items()}
    second = {device: {"status": "passed", "fps": 1.0} for device in FPS[node]}
    return {"node": node, "gpus": [], "smoke": {"status": "passed", "clips": [
        {"name": "first", "results": first}, {"name": "second", "results": second}]}}


def make_project(work: Path) -> tuple[Path, Path, Path]:
    """(playbook, inventory, report dir) of the small project under work."""
    for role, tasks in (("alpha", ALPHA), ("beta", BETA)):
        (work / "roles" / role / "tasks").mkdir(parents=True, exist_ok=True)
        (work / "roles" / role / "tasks" / "main.yml").write_text(json.dumps(tasks))
    fixtures = work / "fixtures"
    fixtures.mkdir(exist_ok=True)
    for node in FPS:
        (fixtures / f"{node}.json").write_text(json.dumps(node_report(node)))
    reports = work / "reports"
    playbook = work / "play.yml"
    playbook.write_text(json.dumps([
        {"name": "Two roles", "hosts": "node1:node2", "gather_facts": False, "roles": ["alpha", "beta"],
         "vars": {"cli_test_reports": str(reports), "cli_test_fixtures": str(fixtures)}},
        {"name": "Close on the controller", "hosts": "localhost", "gather_facts": False, "tasks": CLOSE,
         "vars": {"cli_test_reports": str(reports)}},
    ]))
    inventory = work / "inventory.json"
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory.write_text(json.dumps({"all": {"hosts": {"node1": local, "node2": local, "localhost": local}}}))
    return playbook, inventory, reports
