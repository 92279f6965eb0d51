"""TorchCodec's own test suite, as the torchcodec role ran it: no new failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

REPORT = "/var/lib/xpulab/reports/torchcodec-tests.json"


def test_torchcodec_suite_has_no_new_failures(host: Any) -> None:
    report = host.file(REPORT)
    if not report.exists:
        pytest.skip(f"{REPORT} is missing: the suite is switched off (torchcodec_test_suite: false)")
    data = json.loads(report.content_string)
    assert data["counts"]["total"] > 0, "the suite collected no tests"
    assert data["counts"]["new"] == 0, data["new_failures"]
    assert data["status"] == "passed", data.get("message")


def test_the_suite_ran_as_an_unprivileged_user(host: Any) -> None:
    report = host.file(REPORT)
    if not report.exists:
        pytest.skip(f"{REPORT} is missing: the suite is switched off (torchcodec_test_suite: false)")
    tests = json.loads(report.content_string)["tests_dir"]
    assert report.user != "root", "the suite's report was written by root"
    # The user owns the checkout it ran (and its conftest.py); root owns the runner.
    assert host.file(tests).user == report.user
    assert host.file("/opt/xpulab/lib/xpulab_torchcodec_tests.py").user == "root"
