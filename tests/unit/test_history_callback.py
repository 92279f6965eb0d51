"""The run history callback (plugins/callback/xpulab_history.py) under plain ansible-playbook, and its node report reader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ansible_collections.xpulab.gpu.plugins.callback import xpulab_history  # collections/ (conftest.py)
from cli_project import ROOT, make_project, node_report


def ansible_playbook(work: Path, *args: str, **env: str) -> tuple[int, str, Path]:
    """ansible-playbook from the checkout root (its ansible.cfg enables the callback) on the small project."""
    playbook, inventory, reports = make_project(work)
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(inventory), str(playbook),
         "-e", "cli_test_run=1", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("XPULAB_")},
             "ANSIBLE_NOCOLOR": "1", "XPULAB_REPORT_DIR": str(reports), **env},
    )
    return proc.returncode, proc.stdout + proc.stderr, reports


def test_plain_ansible_playbook_is_recorded(tmp_path: Path) -> None:
    rc, output, reports = ansible_playbook(tmp_path, "--check", "--limit", "node1:localhost", "--tags", "all")
    assert rc == 0, output
    [path] = (reports / "history").glob("*.json")
    record = json.loads(path.read_text())
    assert path.stem == record["id"] and len(record["id"]) == len("20261130T150102Z-1a2b3c4d")
    assert record["started"].endswith("Z") and record["finished"] >= record["started"]
    assert record["check_mode"] is True and record["limit"] == "node1:localhost" and record["tags"] == ["all"]
    assert record["result"] == "passed" and record["playbook"].endswith("play.yml")
    assert set(record["hosts"]) == {"node1", "localhost"}
    # check mode: the command is skipped, nothing is written, so no fps
    assert record["hosts"]["node1"]["skipped"] == 2 and record["hosts"]["node1"]["fps"] == {}
    assert record["hosts"]["node1"]["smoke"] is None
    assert not list((reports / "history").glob(".*"))  # no temporary file left


def test_history_off(tmp_path: Path) -> None:
    rc, output, reports = ansible_playbook(tmp_path, "--limit", "localhost", XPULAB_HISTORY="0")
    assert rc == 0, output
    assert not (reports / "history").exists()


def test_a_history_that_cannot_be_written_is_a_warning(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    rc, output, _reports = ansible_playbook(tmp_path / "p", "--limit", "localhost",
                                            XPULAB_HISTORY_DIR=str(blocker / "history"))
    assert rc == 0, output
    assert "xpulab_history: could not write" in output


def test_node_smoke_reads_the_first_clip(tmp_path: Path) -> None:
    path = tmp_path / "node1.json"
    report = node_report("node1")
    report["smoke"]["clips"][0]["results"]["xpu:1"] = {"status": "failed", "fps": None}
    report["smoke"]["clips"][0]["results"]["xpu:2"] = {"status": "failed", "fps": True}
    report["smoke"]["status"] = "failed"
    path.write_text(json.dumps(report))
    assert xpulab_history.node_smoke(str(path), time.time() - 60) == ("failed", {"cpu": 512.3, "xpu:0": 1830.0})
    # written before the run started: not this run's, unless a task of the run wrote it (unchanged)
    assert xpulab_history.node_smoke(str(path), time.time() + 60) == (None, {})
    assert xpulab_history.node_smoke(str(path), time.time() + 60, reported=True)[0] == "failed"


@pytest.mark.parametrize("content", ["not json", "[]", '{"smoke": null}', '{"smoke": {"clips": []}}'])
def test_node_smoke_without_a_usable_report(tmp_path: Path, content: str) -> None:
    path = tmp_path / "node1.json"
    path.write_text(content)
    status, fps = xpulab_history.node_smoke(str(path), 0)
    assert fps == {} and status is None
    assert xpulab_history.node_smoke(str(tmp_path / "absent.json"), 0) == (None, {})
