"""roles/intel_gpu/tasks/dpkg_repair.yml: an interrupted dpkg is finished before apt runs.

The tasks run on localhost against a fake dpkg (first on PATH) that answers
--audit as told and logs every call, and a journal directory of the test's own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playbook_runner import run_role_tasks

HALF_CONFIGURED = ("The following packages are only half configured, probably due to problems\n"
                   "configuring them the first time.  The configuration should be retried using\n"
                   "dpkg --configure <package> or the configure menu option in dselect:\n"
                   " intel-opencl-icd     Intel graphics compute runtime for OpenCL\n")


def repair(tmp_path: Path, audit: str, journal: list[str]) -> tuple[int, list[str]]:
    """Run the tasks; return changed= and the fake dpkg's calls."""
    bin_dir, updates = tmp_path / "bin", tmp_path / "updates"
    bin_dir.mkdir()
    updates.mkdir()
    for name in journal:
        (updates / name).write_text("Package: intel-opencl-icd\nStatus: install ok unpacked\n")
    (tmp_path / "audit").write_text(audit)
    calls = tmp_path / "calls"
    dpkg = bin_dir / "dpkg"
    dpkg.write_text(f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" = --audit ] && cat {tmp_path / "audit"}\nexit 0\n')
    dpkg.chmod(0o755)
    result = run_role_tasks("intel_gpu", "dpkg_repair", tmp_path / "work",
                            {"__intel_gpu_dpkg_updates_dir": str(updates)},
                            env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.rc == 0, result.output[-3000:]
    return result.changed, calls.read_text().splitlines() if calls.exists() else []


def test_a_clean_dpkg_is_left_alone(tmp_path: Path) -> None:
    changed, calls = repair(tmp_path, "", ["tmp.i"])  # apt only counts journal files named by a number
    assert changed == 0
    assert calls == ["--audit"]


@pytest.mark.parametrize(("audit", "journal"), [
    (HALF_CONFIGURED, []),
    ("", ["0000", "0001"]),
], ids=["audit-says-half-configured", "journal-left-behind"])
def test_an_interrupted_dpkg_is_finished(tmp_path: Path, audit: str, journal: list[str]) -> None:
    changed, calls = repair(tmp_path, audit, journal)
    assert changed == 1
    assert calls == ["--audit", "--configure -a"]
