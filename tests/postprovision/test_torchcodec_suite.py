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


def test_the_suite_ran_from_its_own_venv_and_left_the_production_venv_alone(host: Any) -> None:
    report = host.file(REPORT)
    if not report.exists:
        pytest.skip(f"{REPORT} is missing: the suite is switched off (torchcodec_test_suite: false)")
    python = json.loads(report.content_string)["command"][0]
    production = json.loads(host.file("/etc/ansible/facts.d/xpulab_pytorch.fact").content_string)["python"]
    assert python != production, "the suite ran with the production venv's Python"
    assert host.run(f"{python} -c 'import torch, torchcodec, pytest'").rc == 0, "the test venv does not see torch and torchcodec"
    # pytest is the suite's own dependency, never the production venv's.
    assert host.run(f"{production} -m pip show --quiet pytest").rc != 0, "pytest is in the production venv"
