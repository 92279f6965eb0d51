"""roles/xpulab_state/tasks/space.yml: the disk-space preflight, run by ansible-playbook on localhost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_space(tmp_path: Path, places: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "tasks": [{"ansible.builtin.include_role": {"name": "xpulab.gpu.xpulab_state", "tasks_from": "space"},
                   "vars": {"xpulab_state_space": places, "xpulab_state_space_host": "localhost"}}],
    }]
    (tmp_path / "play.yml").write_text(json.dumps(play))
    return subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", str(tmp_path / "play.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1"},
    )


def test_enough_space_passes_for_a_path_that_does_not_exist_yet(tmp_path: Path) -> None:
    proc = run_space(tmp_path, [{"path": str(tmp_path / "not" / "yet"), "need_mb": 1, "what": "a build tree"}])
    assert proc.returncode == 0, proc.stdout[-3000:]


def test_short_space_fails_naming_place_need_found_and_variable(tmp_path: Path) -> None:
    free_mb = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize // 2**20
    proc = run_space(tmp_path, [
        {"path": str(tmp_path / "ok"), "need_mb": 1, "what": "small thing"},
        {"path": str(tmp_path / "build"), "need_mb": free_mb + 10_000, "what": "the FFmpeg build tree",
         "var": "ffmpeg_build_root"},
    ])
    assert proc.returncode == 2, proc.stdout[-3000:]
    out = " ".join(proc.stdout.split())
    assert "The controller has not enough free disk space, nothing was changed" in out
    assert f"the FFmpeg build tree at {tmp_path / 'build'} needs {free_mb + 10_000} MiB, found" in out
    assert "or point ffmpeg_build_root at a filesystem with room" in out
    assert "small thing" not in out
