"""tests/faults/summary.py: the fault suite's table from pytest's JUnit XML."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "faults" / "summary.py"
sys.path.insert(0, str(SCRIPT.parent))
import summary  # noqa: E402


def report(tmp_path: Path, body: str, name: str = "r.xml") -> Path:
    path = tmp_path / name
    path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{body}</testsuite></testsuites>')
    return path


PASSED = '<testcase classname="test_runs" name="test_full_build_root" time="12.25"/>'
FAILED = ('<testcase classname="test_drift" name="test_drift_is_repaired_by_its_role[package-vainfo]" time="80.5">'
          '<failure message="assert">x</failure></testcase>')
XFAILED = '<testcase classname="test_kills" name="test_x" time="1.0"><skipped type="pytest.xfail" message="m"/></testcase>'


def test_a_row_per_case_with_outcome_and_seconds(tmp_path: Path) -> None:
    found = summary.cases(report(tmp_path, PASSED + FAILED + XFAILED))
    assert found == [summary.Case("test_runs.py::test_full_build_root", "passed", 12.25),
                     summary.Case("test_drift.py::test_drift_is_repaired_by_its_role[package-vainfo]", "failed", 80.5),
                     summary.Case("test_kills.py::test_x", "xfailed", 1.0)]
    text = summary.table(found)
    assert "| `test_runs.py::test_full_build_root` | passed | 12.2 |" in text
    assert text.splitlines()[-1] == "3 cases: 1 failed, 1 passed, 1 xfailed; 93.8 s in all"


@pytest.mark.parametrize(("body", "rc"), [(PASSED, 0), (PASSED + FAILED, 1)])
def test_exit_status_follows_the_outcomes(tmp_path: Path, body: str, rc: int) -> None:
    first = report(tmp_path, body)
    second = report(tmp_path, XFAILED, "s.xml")
    done = subprocess.run([sys.executable, str(SCRIPT), str(first), str(second)], capture_output=True, text=True,
                          check=False)
    assert done.returncode == rc, done.stderr
    assert done.stdout.count("\n| `") == body.count("<testcase") + 1


def test_no_report_is_a_usage_error() -> None:
    assert summary.main([]) == 2
