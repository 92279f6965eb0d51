"""The node probe: xpulab_state's node_record / node_probe states and the xpulab_node_probe action's inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fake_sysfs
import module_runner
import pytest
from ansible_collections.xpulab.gpu.plugins.action import xpulab_node_probe as action

HOLDER = {"id": "run-1", "controller": "ctl", "pid": 1, "user": "root", "started": "now"}


def state(tmp_path: Path, **args: Any) -> dict[str, Any]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    rc, result = module_runner.run_module("xpulab_state", work, {"facts_dir": str(tmp_path / "facts"), **args})
    assert rc == 0 or result.get("failed"), result
    return result


@pytest.fixture
def settled(tmp_path: Path) -> dict[str, Any]:
    """Two roles recorded and probed settled, and the node record of that run."""
    owned = tmp_path / "owned.conf"
    owned.write_text("one\n")
    checks: dict[str, Any] = {}
    for role, files in (("alpha", [str(owned)]), ("beta", [])):
        state(tmp_path, name=role, state="record", fingerprint=f"{role}-fp", files=files)
        probe = state(tmp_path, name=role, fingerprint=f"{role}-fp", files=files, paths=[str(tmp_path)])
        assert probe["settled"] is True
        checks[role] = probe["checks"]
    sys_root, dev_root = fake_sysfs.build(tmp_path, [fake_sysfs.FakeGpu(bdf="0000:03:00.0", device="0x56a0")])
    gpus = {"sysfs_root": str(sys_root), "dev_root": str(dev_root), "kernel_release": "6.8.0"}
    result = state(tmp_path, state="node_record", inputs="in-1", roles=checks, accounts={"root": 0},
                   gpu_inventory=gpus)
    assert result["changed"] is False and result["written"] is True
    return {"owned": owned, "checks": checks, "lock": tmp_path / "run.lock", "gpus": gpus, "sys": sys_root}


def probe(tmp_path: Path, lock: Path, inputs: str = "in-1", **gpus: Any) -> dict[str, Any]:
    gpu_args = gpus or {"sysfs_root": str(tmp_path / "sys"), "dev_root": str(tmp_path / "dev"),
                        "kernel_release": "6.8.0"}
    return state(tmp_path, state="node_probe", inputs=inputs, lock_path=str(lock), holder=HOLDER,
                 gpu_inventory=gpu_args)


def test_probe_returns_what_it_checked(tmp_path: Path, settled: dict[str, Any]) -> None:
    assert settled["checks"]["alpha"]["files"] == [str(settled["owned"])]
    assert settled["checks"]["alpha"]["paths"] == [str(tmp_path)]
    assert settled["checks"]["beta"]["links"] == {}


def test_settled_node_answers_for_every_role_and_takes_the_lock(tmp_path: Path, settled: dict[str, Any]) -> None:
    result = probe(tmp_path, settled["lock"])
    assert result["settled"] is True and result["reasons"] == [] and result["changed"] is False
    assert result["roles"] == {"alpha": "alpha-fp", "beta": "beta-fp"}
    assert result["lock_taken"] is True
    assert json.loads((settled["lock"] / "holder.json").read_text()) == HOLDER


def test_same_node_record_is_not_written_again(tmp_path: Path, settled: dict[str, Any]) -> None:
    again = state(tmp_path, state="node_record", inputs="in-1", roles=settled["checks"], accounts={"root": 0},
                  gpu_inventory=settled["gpus"])
    assert again["written"] is False and again["changed"] is False


def test_other_inputs_are_not_settled_and_leave_no_lock(tmp_path: Path, settled: dict[str, Any]) -> None:
    result = probe(tmp_path, settled["lock"], inputs="in-2")
    assert result["settled"] is False and result["lock_taken"] is False
    assert "inputs" in result["reasons"][0]
    assert not settled["lock"].exists()


def test_another_gpu_inventory_is_not_settled(tmp_path: Path, settled: dict[str, Any]) -> None:
    result = probe(tmp_path, settled["lock"], **{**settled["gpus"], "kernel_release": "6.1.0"})
    assert result["settled"] is False and result["reasons"] == ["the GPU inventory differs from the recorded run's"]
    fake_sysfs.add_gpu(settled["sys"], tmp_path / "dev", fake_sysfs.FakeGpu(bdf="0000:04:00.0", device="0x56a0",
                                                                            render=129, card=1))
    assert probe(tmp_path, settled["lock"])["reasons"] == ["the GPU inventory differs from the recorded run's"]
    assert not settled["lock"].exists()


def test_drift_is_not_settled_and_gives_the_lock_back(tmp_path: Path, settled: dict[str, Any]) -> None:
    settled["owned"].write_text("two\n")
    result = probe(tmp_path, settled["lock"])
    assert result["settled"] is False and result["lock_taken"] is False
    assert result["reasons"] == [f"alpha: {settled['owned']} changed since it was recorded"]
    assert not settled["lock"].exists()


def test_a_role_recorded_again_is_not_settled(tmp_path: Path, settled: dict[str, Any]) -> None:
    state(tmp_path, name="beta", state="record", fingerprint="beta-fp2", files=[])
    result = probe(tmp_path, settled["lock"])
    assert result["reasons"] == ["beta: its record changed since the recorded run"]


def test_a_held_lock_is_not_settled_and_stays(tmp_path: Path, settled: dict[str, Any]) -> None:
    settled["lock"].mkdir()
    (settled["lock"] / "holder.json").write_text('{"id": "other"}\n')
    result = probe(tmp_path, settled["lock"])
    assert result["settled"] is False and "run lock" in result["reasons"][0]
    assert json.loads((settled["lock"] / "holder.json").read_text()) == {"id": "other"}


def test_an_account_with_another_uid_is_not_settled(tmp_path: Path, settled: dict[str, Any]) -> None:
    state(tmp_path, state="node_record", inputs="in-1", roles=settled["checks"], accounts={"root": 4242},
          gpu_inventory=settled["gpus"])
    result = probe(tmp_path, settled["lock"])
    assert result["reasons"] == ["user root has uid 0, not 4242"]


def test_no_node_record_is_not_settled(tmp_path: Path) -> None:
    result = probe(tmp_path, tmp_path / "run.lock")
    assert result["settled"] is False and result["reasons"][0].startswith("no run")


def test_node_record_needs_every_role_record(tmp_path: Path) -> None:
    result = state(tmp_path, state="node_record", inputs="in-1", roles={"ghost": {}})
    assert result["failed"] is True and "ghost has no record" in result["msg"]


def test_check_mode_takes_no_lock(tmp_path: Path, settled: dict[str, Any]) -> None:
    result = state(tmp_path, state="node_probe", inputs="in-1", holder=HOLDER, gpu_inventory=settled["gpus"],
                   _ansible_check_mode=True)
    assert result["settled"] is True and result["lock_taken"] is False
    assert not settled["lock"].exists()


def test_inputs_digest_is_stable_and_sees_each_part() -> None:
    parts: dict[str, Any] = {"code": "c", "variables": {"a_x": 1}, "facts": {"kernel": "6"},
                             "controller": {"a_lock_dir": {"l.txt": "0" * 64}}}
    first = action.inputs_digest(**parts)
    assert first == action.inputs_digest(**json.loads(json.dumps(parts)))
    for key, other in (("code", "d"), ("variables", {"a_x": 2}), ("facts", {"kernel": "7"}),
                       ("controller", {"a_lock_dir": {}})):
        assert action.inputs_digest(**{**parts, key: other}) != first, key


def test_selected_names_keep_the_prefixes_and_leave_out_run_state() -> None:
    names = ["ffmpeg_version", "xpulab_mirror_url", "xpulab_state_run", "decode_smoke_accounts",
             "decode_smoke_user", "inventory_hostname", "ansible_kernel"]
    assert action.selected(names, ["ffmpeg_", "decode_smoke_", "xpulab_"],
                           ["xpulab_state_", "decode_smoke_accounts"]) == [
        "decode_smoke_user", "ffmpeg_version", "xpulab_mirror_url"]


def test_picked_facts_follow_dotted_paths() -> None:
    facts = {"kernel": "6.1", "env": {"PATH": "/usr/bin"}, "python": {"version": {"major": 3}}}
    assert action.picked_facts(facts, ["kernel", "env.PATH", "python.version", "service_mgr"]) == {
        "kernel": "6.1", "env.PATH": "/usr/bin", "python.version": {"major": 3}, "service_mgr": None}


def test_dir_digests_hash_each_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / "sub").mkdir()
    digests = action.dir_digests(str(tmp_path))
    assert list(digests) == ["a.txt"] and len(digests["a.txt"]) == 64  # type: ignore[index]
    assert str(action.dir_digests(str(tmp_path / "missing"))).startswith("unreadable")
