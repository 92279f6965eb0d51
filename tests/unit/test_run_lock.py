"""The node run lock (roles/xpulab_state/tasks/lock.yml, unlock.yml), driven by ansible-playbook on local hosts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOSTNAME = socket.gethostname()


def run(tmp_path: Path, lock: Path, extra: dict[str, Any] | None = None, named: bool = True
        ) -> subprocess.CompletedProcess[str]:
    """A run: name it as preflight.yml does (unless not named: --limit leaves that play out), lock
    node n1, touch a marker (a change), unlock."""
    marker = tmp_path / "changed"
    play = [
        {"hosts": "localhost" if named else "none", "gather_facts": False, "tasks": [
            {"ansible.builtin.set_fact": {"xpulab_state_run": {
                "id": "run-under-test", "controller": HOSTNAME, "pid": os.getpid(), "user": "tester",
                "started": "2026-11-30T12:00:00Z"}}}]},
        {"hosts": "n1", "gather_facts": False, "vars": {"xpulab_state_lock_path": str(lock)}, "tasks": [
            {"ansible.builtin.import_role": {"name": "xpulab.gpu.xpulab_state", "tasks_from": "lock"}},
            {"ansible.builtin.file": {"path": str(marker), "state": "touch", "mode": "0644"}},
            {"ansible.builtin.import_role": {"name": "xpulab.gpu.xpulab_state", "tasks_from": "unlock"}}]},
    ]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "hosts.ini").write_text(f"n1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts.ini"),
         "-e", json.dumps(extra or {}), str(tmp_path / "play.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )


def hold(lock: Path, **holder: Any) -> None:
    lock.mkdir(parents=True)
    (lock / "holder.json").write_text(json.dumps({"id": "other-run", "user": "alice",
                                                  "started": "2026-11-30T11:00:00Z", **holder}))


def flat(proc: subprocess.CompletedProcess[str]) -> str:
    return " ".join(proc.stdout.split())


def test_free_node_is_locked_for_the_run_and_released(tmp_path: Path) -> None:
    lock = tmp_path / "state" / "run.lock"
    proc = run(tmp_path, lock)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "changed").exists()
    assert not lock.exists()


def test_live_holder_stops_the_run_before_any_change(tmp_path: Path, live_holder: int) -> None:
    lock = tmp_path / "run.lock"
    hold(lock, controller=HOSTNAME, pid=live_holder)
    proc = run(tmp_path, lock)
    assert proc.returncode == 2, proc.stdout[-3000:]
    out = flat(proc)
    assert "n1 is locked by another xpulab run, so this run stops here and changed nothing" in out
    assert f"run other-run from {HOSTNAME} (ansible-playbook pid {live_holder}, user alice)" in out
    assert "-e xpulab_state_lock_break=true" in out
    assert not (tmp_path / "changed").exists()
    assert json.loads((lock / "holder.json").read_text())["id"] == "other-run"


def test_holder_of_another_controller_stops_the_run_unless_broken(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    hold(lock, controller="controller-b.lab", pid=1)
    proc = run(tmp_path, lock)
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert "run other-run from controller-b.lab" in flat(proc)
    assert not (tmp_path / "changed").exists()
    proc = run(tmp_path, lock, {"xpulab_state_lock_break": True})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "as xpulab_state_lock_break says" in flat(proc)
    assert (tmp_path / "changed").exists() and not lock.exists()


def test_lock_of_a_run_that_is_gone_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = tmp_path / "run.lock"
    hold(lock, controller=HOSTNAME, pid=dead.pid)
    proc = run(tmp_path, lock)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "taking over the run lock of run other-run" in flat(proc)
    assert "which no longer runs" in flat(proc)
    assert (tmp_path / "changed").exists() and not lock.exists()


def test_run_without_the_naming_play_names_itself(tmp_path: Path) -> None:
    """ansible-playbook site.yml --limit <node> leaves preflight.yml's localhost play out: the lock names the run."""
    lock = tmp_path / "state" / "run.lock"
    proc = run(tmp_path, lock, named=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "changed").exists()
    assert not lock.exists()
