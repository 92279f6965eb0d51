"""The node_health role's scheduled check: its units are installed, and its
service, run by hand as systemd would run it (the unit's ExecStart as its
User=, read from the installed unit file: sandbox nodes have no systemd),
writes metrics that parse with prometheus_client. A broken FFmpeg link (the
current prefix the ffmpeg role exposes, moved aside) turns the decode metric
to 0 and keeps the last success; with the link restored it is back at 1."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import read_fact
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def health_fact(host: Any) -> dict[str, Any]:
    return read_fact(host, "xpulab_node_health")


def unit_settings(host: Any, path: str) -> dict[str, str]:
    """Key=value lines of a unit file (the last one wins, as for these keys in systemd)."""
    unit = host.file(path)
    assert unit.exists, f"{path} is missing"
    lines = [line.strip() for line in unit.content_string.splitlines()]
    return dict(line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("xpulab_health_") and family.documentation, family.name
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    return found.get((f"xpulab_health_{name}", tuple(sorted(labels.items()))))


def run_service(host: Any, fact: dict[str, Any]) -> tuple[Any, Samples]:
    service = unit_settings(host, fact["service"])
    argv = ["runuser", "-u", service["User"], "--", *shlex.split(service["ExecStart"])]
    run = host.run(shlex.join(argv))
    assert run.rc in (0, 1), f"{argv}: rc {run.rc}\n{run.stdout}\n{run.stderr}"
    metrics = host.file(fact["textfile_path"])
    assert metrics.exists, f"{fact['textfile_path']} was not written: {run.stdout}{run.stderr}"
    return run, parse(metrics.content_string)


@pytest.fixture(scope="module")
def runs(host: Any, health_fact: dict[str, Any], ffmpeg_prefix: str) -> Iterator[list[tuple[Any, Samples]]]:
    """Three runs of the service: as installed, with FFmpeg's link moved aside, restored."""
    aside = f"{ffmpeg_prefix}.node-health-test"
    found = [run_service(host, health_fact)]
    host.check_output(f"mv -T {shlex.quote(ffmpeg_prefix)} {shlex.quote(aside)}")
    try:
        found.append(run_service(host, health_fact))
    finally:
        host.check_output(f"mv -T {shlex.quote(aside)} {shlex.quote(ffmpeg_prefix)}")
    found.append(run_service(host, health_fact))
    yield found


def test_health_units_are_installed(host: Any, health_fact: dict[str, Any]) -> None:
    service = unit_settings(host, health_fact["service"])
    timer = unit_settings(host, health_fact["timer"])
    assert service["Type"] == "oneshot" and service["User"] == health_fact["user"] != "root"
    assert timer["OnCalendar"] == health_fact["on_calendar"] and timer["Persistent"] == "true"
    assert "OnBootSec" in timer and "RandomizedDelaySec" in timer
    link = host.file(health_fact["textfile_path"])
    assert link.is_symlink and link.linked_to == health_fact["metrics_path"]


def test_health_run_writes_metrics_that_parse(runs: list[tuple[Any, Samples]]) -> None:
    run, found = runs[0]
    assert value(found, "decode_passed", device="cpu") == 1, run.stdout
    assert value(found, "check_passed", check="decode") == 1
    assert value(found, "check_passed", check="groups") == 1
    assert value(found, "decode_last_success_timestamp_seconds", device="cpu")
    assert [labels for name, labels in found if name == "xpulab_health_info"]


def test_health_decode_metric_follows_the_ffmpeg_link(runs: list[tuple[Any, Samples]]) -> None:
    (_, before), (broken_run, broken), (_, restored) = runs
    assert broken_run.rc == 1
    assert value(broken, "decode_passed", device="cpu") == 0, broken_run.stdout
    assert value(broken, "check_passed", check="decode") == 0 and value(broken, "passed") == 0
    assert value(broken, "decode_last_success_timestamp_seconds", device="cpu") == value(
        before, "decode_last_success_timestamp_seconds", device="cpu")
    assert value(restored, "decode_passed", device="cpu") == 1
    assert value(restored, "decode_last_success_timestamp_seconds", device="cpu") > value(  # type: ignore[operator]
        broken, "decode_last_success_timestamp_seconds", device="cpu")
