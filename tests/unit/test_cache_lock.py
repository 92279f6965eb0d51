"""The controller artifact cache: its lock (module xpulab_cache_lock, tasks cache_lock/cache_unlock) and
its atomic fill (tasks cache_put), driven by ansible-playbook on localhost."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import module_runner
import pytest
from playbook_runner import Run, run_role_tasks

HOSTNAME = socket.gethostname()
ME = {"id": "run-under-test", "controller": HOSTNAME, "pid": os.getpid(), "user": "tester",
      "started": "2026-11-30T12:00:00Z"}


def hold(lock: Path, **holder: Any) -> None:
    lock.mkdir(parents=True)
    (lock / "holder.json").write_text(json.dumps({"id": "other-run", "user": "alice",
                                                  "started": "2026-11-30T11:00:00Z", **holder}))


def lock_module(tmp_path: Path, lock: Path, **args: Any) -> tuple[int, dict[str, Any]]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return module_runner.run_module("xpulab_cache_lock", work, {"path": str(lock), "holder": ME, **args})


def flat(run: Run) -> str:
    return " ".join(run.output.split())


def test_free_entry_is_locked_and_released(tmp_path: Path) -> None:
    lock = tmp_path / ".ffmpeg-x.lock"
    rc, result = lock_module(tmp_path, lock)
    assert rc == 0 and result["taken_over"] is None and not result["changed"], result
    assert json.loads((lock / "holder.json").read_text())["id"] == ME["id"]
    rc, _ = lock_module(tmp_path, lock, state="absent")
    assert rc == 0 and not lock.exists()


def test_release_leaves_another_runs_lock(tmp_path: Path, live_holder: int) -> None:
    lock = tmp_path / ".x.lock"
    hold(lock, controller=HOSTNAME, pid=live_holder)
    rc, _ = lock_module(tmp_path, lock, state="absent")
    assert rc == 0 and (lock / "holder.json").exists()


def test_live_holder_stops_a_second_run_after_the_wait_naming_it(tmp_path: Path, live_holder: int) -> None:
    lock = tmp_path / "artifacts" / ".ffmpeg-7.1.1-abc.lock"
    hold(lock, controller=HOSTNAME, pid=live_holder)
    started = time.monotonic()
    run = run_role_tasks("xpulab_state", "cache_lock", tmp_path / "play",
                         {"xpulab_state_run": ME, "xpulab_state_cache_lock_path": str(lock),
                          "xpulab_state_cache_lock_wait": 3, "xpulab_state_cache_lock_delay": 1})
    assert run.rc == 2, run.output[-3000:]
    assert time.monotonic() - started >= 3
    out = flat(run)
    assert "entry .ffmpeg-7.1.1-abc.lock is being filled by another xpulab run" in out
    assert f"run other-run from {HOSTNAME} (ansible-playbook pid {live_holder}, user alice)" in out
    assert "Waited 3 s" in out and f"remove {lock}" in out
    assert json.loads((lock / "holder.json").read_text())["id"] == "other-run"


def test_holder_of_another_controller_is_never_taken_over(tmp_path: Path) -> None:
    lock = tmp_path / ".x.lock"
    hold(lock, controller="controller-b.lab", pid=1)
    rc, result = lock_module(tmp_path, lock, wait=0)
    assert rc == 1 and "run other-run from controller-b.lab" in result["msg"]


def test_second_run_waits_and_takes_the_lock_once_released(tmp_path: Path, live_holder: int) -> None:
    lock = tmp_path / ".x.lock"
    hold(lock, controller=HOSTNAME, pid=live_holder)
    release = threading.Timer(2.0, lambda: subprocess.run(["rm", "-rf", str(lock)], check=True))
    release.start()
    rc, result = lock_module(tmp_path, lock, wait=60, delay=1)
    release.join()
    assert rc == 0 and result["taken_over"] is None and result["waited"] >= 1, result
    assert json.loads((lock / "holder.json").read_text())["id"] == ME["id"]


def test_stale_lock_of_a_gone_run_is_taken_over(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    lock = tmp_path / "artifacts" / ".x.lock"
    hold(lock, controller=HOSTNAME, pid=dead.pid)
    run = run_role_tasks("xpulab_state", "cache_lock", tmp_path / "play",
                         {"xpulab_state_run": ME, "xpulab_state_cache_lock_path": str(lock),
                          "xpulab_state_cache_lock_wait": 0})
    assert run.rc == 0, run.output[-3000:]
    assert "took over the controller cache lock" in flat(run) and "run other-run" in flat(run)
    assert json.loads((lock / "holder.json").read_text())["id"] == ME["id"]
    assert [p.name for p in lock.parent.iterdir()] == [".x.lock"]


def test_lock_of_this_same_run_is_taken_over(tmp_path: Path, live_holder: int) -> None:
    """A stand-in builder takes over the lock its failed builder left in this run."""
    lock = tmp_path / ".x.lock"
    hold(lock, controller=HOSTNAME, pid=live_holder, id=ME["id"])
    rc, result = lock_module(tmp_path, lock, wait=0)
    assert rc == 0 and result["taken_over"]["id"] == ME["id"], result


def test_check_mode_takes_nothing(tmp_path: Path) -> None:
    lock = tmp_path / ".x.lock"
    rc, _ = lock_module(tmp_path, lock, _ansible_check_mode=True)
    assert rc == 0 and not lock.exists()


def put(tmp_path: Path, src: Path, sha256: str) -> Run:
    cache = tmp_path / "cache"
    return run_role_tasks("xpulab_state", "cache_put", tmp_path / "play", {
        "xpulab_state_run": ME, "xpulab_state_cache_src": str(src),
        "xpulab_state_cache_dest": str(cache / "entry" / "thing.whl"), "xpulab_state_cache_sha256": sha256,
        "xpulab_state_cache_record": {"sha256": sha256, "fingerprint": "abc"},
        "xpulab_state_cache_record_dest": str(cache / "entry.json")})


def test_put_places_the_verified_file_then_its_record(tmp_path: Path) -> None:
    src = tmp_path / "built.whl"
    src.write_bytes(os.urandom(1 << 20))
    cache = tmp_path / "cache"
    (cache / "entry").mkdir(parents=True)
    (cache / "entry" / ".thing.whl.old-run.part").write_bytes(b"half")  # left by a killed run
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    run = put(tmp_path, src, sha)
    assert run.rc == 0, run.output[-3000:]
    assert (cache / "entry" / "thing.whl").read_bytes() == src.read_bytes()
    assert json.loads((cache / "entry.json").read_text()) == {"sha256": sha, "fingerprint": "abc"}
    assert sorted(p.name for p in cache.rglob("*")) == ["entry", "entry.json", "thing.whl"]


def test_put_of_a_file_that_does_not_verify_leaves_no_file_under_the_final_names(tmp_path: Path) -> None:
    src = tmp_path / "built.whl"
    src.write_bytes(b"truncated")
    run = put(tmp_path, src, "0" * 64)
    assert run.rc == 2, run.output[-3000:]
    out = flat(run)
    assert "the node measured " + "0" * 64 + ": it was not put into the controller cache" in out
    assert "The controller cache was left as it was" in out
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*")) == ["entry"]


def test_a_role_played_alone_names_its_run_and_releases_the_lock(tmp_path: Path) -> None:
    """Without playbooks/preflight.yml (molecule plays a role alone) cache_lock names the run itself."""
    lock = tmp_path / "artifacts" / ".x.lock"
    holder = tmp_path / "holder.json"
    play = [{"hosts": "n1", "gather_facts": False, "vars": {"xpulab_state_cache_lock_path": str(lock)}, "tasks": [
        {"ansible.builtin.include_role": {"name": "xpulab.gpu.xpulab_state", "tasks_from": "cache_lock"}},
        {"ansible.builtin.copy": {"src": str(lock / "holder.json"), "dest": str(holder), "mode": "0644"}},
        {"ansible.builtin.include_role": {"name": "xpulab.gpu.xpulab_state", "tasks_from": "cache_unlock"}}]}]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    (tmp_path / "hosts.ini").write_text(f"n1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts.ini"),
         str(tmp_path / "play.yml")], cwd=module_runner.ROOT, capture_output=True, text=True, timeout=300,
        check=False, env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:]
    named = json.loads(holder.read_text())
    assert named["controller"] == HOSTNAME and named["id"] and named["user"]
    assert isinstance(named["pid"], int) and named["pid"] not in (0, 1, os.getpid())  # the run's ansible-playbook
    assert not lock.exists()


def test_node_lock_reports_a_holder_whose_pid_is_not_this_machines(tmp_path: Path) -> None:
    """A node's lock (local_pids false): a holder of this controller whose pid is gone here is still
    reported, not taken over (the pid is the controller's, checked there); on_held=report does not fail."""
    lock = tmp_path / "var" / "run.lock"
    hold(lock, controller=HOSTNAME, pid=2 ** 22 + 1)
    rc, result = lock_module(tmp_path, lock, local_pids=False, on_held="report")
    assert rc == 0 and result["taken"] is False and result["holder"]["id"] == "other-run", result
    assert json.loads((lock / "holder.json").read_text())["id"] == "other-run"
    # Named gone by the caller: taken over.
    rc, result = lock_module(tmp_path, lock, local_pids=False, on_held="report", gone=["other-run"])
    assert rc == 0 and result["taken"] is True and result["taken_over"]["id"] == "other-run", result
    assert json.loads((lock / "holder.json").read_text())["id"] == ME["id"]


def test_node_lock_makes_its_parent_and_gone_empty_id_is_a_recordless_holder(tmp_path: Path) -> None:
    lock = tmp_path / "var" / "lib" / "run.lock"
    rc, result = lock_module(tmp_path, lock, parents=True, local_pids=False)
    assert rc == 0 and result["taken"] is True, result
    rc, _ = lock_module(tmp_path, lock, state="absent")
    assert rc == 0 and not lock.exists()
    lock.mkdir()  # killed between mkdir and holder.json
    rc, result = lock_module(tmp_path, lock, local_pids=False, on_held="report")
    assert rc == 0 and result["taken"] is False and result["holder"] == {}, result
    rc, result = lock_module(tmp_path, lock, local_pids=False, on_held="report", gone=[""])
    assert rc == 0 and result["taken"] is True, result
