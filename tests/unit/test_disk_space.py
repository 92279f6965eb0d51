"""roles/xpulab_state/tasks/space.yml: the disk-space preflight, run by ansible-playbook on localhost."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playbook_runner import Run, run_role_tasks


def run_space(tmp_path: Path, places: list[dict[str, Any]]) -> Run:
    return run_role_tasks("xpulab_state", "space", tmp_path / "work",
                          {"xpulab_state_space": places, "xpulab_state_space_host": "localhost"})


def test_enough_space_passes_for_a_path_that_does_not_exist_yet(tmp_path: Path) -> None:
    proc = run_space(tmp_path, [{"path": str(tmp_path / "not" / "yet"), "need_mb": 1, "what": "a build tree"}])
    assert proc.rc == 0, proc.output[-3000:]


def test_short_space_fails_naming_place_need_found_and_variable(tmp_path: Path) -> None:
    free_mb = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize // 2**20
    proc = run_space(tmp_path, [
        {"path": str(tmp_path / "ok"), "need_mb": 1, "what": "small thing"},
        {"path": str(tmp_path / "build"), "need_mb": free_mb + 10_000, "what": "the FFmpeg build tree",
         "var": "ffmpeg_build_root"},
    ])
    assert proc.rc == 2, proc.output[-3000:]
    out = " ".join(proc.output.split())
    assert "The controller has not enough free disk space, nothing was changed" in out
    assert f"the FFmpeg build tree at {tmp_path / 'build'} needs {free_mb + 10_000} MiB, found" in out
    assert "or point ffmpeg_build_root at a filesystem with room" in out
    assert "small thing" not in out
