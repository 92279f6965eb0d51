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
