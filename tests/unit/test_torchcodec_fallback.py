"""The TorchCodec builder fallback (roles/torchcodec/tasks/source.yml), run by ansible-playbook on two local hosts.

The role's own tasks, from the first build to the naming of this run's builders, are played with
build_locked.yml replaced by a stand-in that fails on the builders named in `dies` and otherwise writes
the wheel's record into the controller cache, as a build does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "roles" / "torchcodec" / "tasks" / "source.yml"
FIRST, LAST = "Build the TorchCodec wheel once per fingerprint", "Name the builders that made this run's wheels"


def play(tmp_path: Path, dies: list[str]) -> tuple[int, str]:
    tasks = yaml.safe_load(SOURCE.read_text())
    names = [t.get("name") for t in tasks]
    (tmp_path / "fallback.yml").write_text(yaml.safe_dump(tasks[names.index(FIRST):names.index(LAST) + 1]))
    (tmp_path / "build_locked.yml").write_text(yaml.safe_dump([
        {"name": "The build dies", "ansible.builtin.fail": {"msg": "builder died"},
         "when": "inventory_hostname in dies"},
        {"name": "The build fills the cache", "delegate_to": "localhost",
         "ansible.builtin.copy": {"content": '{"built_on": "{{ inventory_hostname }}"}\n', "mode": "0644",
                                  "dest": "{{ torchcodec_artifact_cache_dir }}/{{ torchcodec_artifact }}.json"}}]))
    (tmp_path / "cache").mkdir()
    (tmp_path / "play.yml").write_text(json.dumps([{
        "hosts": "n1,n2", "gather_facts": False,
        "vars": {"dies": dies, "torchcodec_artifact": "torchcodec-x",
                 "torchcodec_artifact_cache_dir": str(tmp_path / "cache"), "torchcodec_git_ref": "refs/pull/558/head",
                 "torchcodec_build_root": str(tmp_path / "build"), "torchcodec_build_space_mb": 1},
        "tasks": [{"ansible.builtin.set_fact": {  # as source.yml's plan leaves them, for hostvars
                      "torchcodec_needs_build": True, "torchcodec_fingerprint": "fp1",
                      "torchcodec_builders": {"fp1": "n1"}}},
                  {"ansible.builtin.include_tasks": str(tmp_path / "fallback.yml")},
                  {"ansible.builtin.debug": {"msg": "builders {{ torchcodec_builders | to_json }}"}}]}]))
    (tmp_path / "hosts.ini").write_text("".join(
        f"{h} ansible_connection=local ansible_python_interpreter={sys.executable}\n" for h in ("n1", "n2")))
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", str(tmp_path / "hosts.ini"),
         str(tmp_path / "play.yml")], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")})
    return proc.returncode, " ".join(proc.stdout.split())


def test_the_next_node_builds_when_the_builder_fails(tmp_path: Path) -> None:
    rc, out = play(tmp_path, dies=["n1"])
    assert rc == 2, out[-3000:]  # the builder's failure stays visible
    assert "n2 builds TorchCodec refs/pull/558/head (fp1) in place of n1, which failed or became unreachable" in out
    assert json.loads((tmp_path / "cache" / "torchcodec-x.json").read_text()) == {"built_on": "n2"}
    assert r'builders {\"fp1\": \"n2\"}' in out  # JSON inside the debug output


def test_no_stand_in_when_the_builder_succeeds(tmp_path: Path) -> None:
    rc, out = play(tmp_path, dies=[])
    assert rc == 0, out[-3000:]
    assert "builds TorchCodec refs" not in out
    assert json.loads((tmp_path / "cache" / "torchcodec-x.json").read_text()) == {"built_on": "n1"}
