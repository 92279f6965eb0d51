"""The decode smoke test passes on every node: CPU against the golden frames,
every XPU against the CPU; an absent device is reported absent, never passed.
It runs as the decode user, never root, and its report says so."""

from __future__ import annotations

import json
from typing import Any

import pytest

CLIPS = "/etc/xpulab/decode-smoke-clips.json"
COMMAND = "/usr/local/bin/xpulab-decode-smoke"
REPORT = "/var/lib/xpulab/reports/decode-smoke.json"


@pytest.fixture(scope="module")
def role_report(host: Any) -> dict[str, Any]:
    """The report the decode_smoke role's own run left on the node."""
    if not host.file(REPORT).exists:
        pytest.fail(f"{REPORT} is missing: the decode_smoke role has not run on this host")
    report: dict[str, Any] = json.loads(host.file(REPORT).content_string)
    return report


@pytest.fixture(scope="module")
def decode_user(role_report: dict[str, Any]) -> str:
    return str((role_report.get("user") or {}).get("name") or "xpulab")


@pytest.fixture(scope="module")
def smoke_report(host: Any, decode_user: str) -> dict[str, Any]:
    if not host.file(CLIPS).exists:
        pytest.fail(f"{CLIPS} is missing: the decode_smoke role has not run on this host")
    as_user = f"runuser -u {decode_user} --"
    out_dir = host.check_output(f"{as_user} mktemp -d")
    try:
        run = host.run(f"{as_user} {COMMAND} report --clips-json {CLIPS} --devices cpu,xpu:0 --output {out_dir}/r.json")
        assert run.rc in (0, 1), run.stderr
        report: dict[str, Any] = json.loads(host.file(f"{out_dir}/r.json").content_string)
        report["_rc"] = run.rc
        report["_stdout"] = run.stdout
        return report
    finally:
        host.run(f"rm -rf {out_dir}")


def media_gpus(host: Any) -> list[Any]:
    fact = host.file("/etc/ansible/facts.d/xpulab_intel_gpu.fact")
    if not fact.exists:
        return []
    data = json.loads(fact.content_string)
    return [g for g in data.get("gpus", []) if g.get("has_media")]


def test_smoke_test_passes(smoke_report: dict[str, Any]) -> None:
    assert smoke_report["_rc"] == 0, smoke_report["_stdout"]
    assert smoke_report["status"] == "passed"


def test_cpu_decodes_every_clip_and_matches_golden(smoke_report: dict[str, Any]) -> None:
    assert smoke_report["clips"], "no clip in the report"
    for clip in smoke_report["clips"]:
        cpu = clip["results"]["cpu"]
        assert cpu["status"] == "passed", cpu
        assert cpu["checks"]["shape"]["passed"] and cpu["checks"]["dtype"]["passed"]
        assert cpu["fps"] and cpu["fps"] > 0
        if clip.get("golden"):
            assert cpu["checks"]["vs_golden"]["equal"] is True, cpu["checks"]["vs_golden"]


def test_xpu_is_passed_where_gpus_exist_and_absent_elsewhere(host: Any, smoke_report: dict[str, Any]) -> None:
    devices = {d["device"]: d for d in smoke_report["devices"]}
    if media_gpus(host):
        assert devices["xpu:0"]["status"] == "passed", devices
    else:
        assert devices["xpu:0"]["status"] == "absent", devices
        for clip in smoke_report["clips"]:
            assert clip["results"]["xpu:0"]["status"] == "absent"


def test_the_role_ran_the_smoke_test_as_the_decode_user(
    host: Any, role_report: dict[str, Any], decode_user: str
) -> None:
    user = role_report.get("user")
    assert user, f"{REPORT} does not name the user that ran it"
    assert user["name"] != "root" and user["uid"] != 0, user
    assert {"render", "video"} <= set(user["groups"]), user
    report = host.file(REPORT)
    assert report.user == decode_user and host.file(REPORT.rsplit("/", 1)[0]).user == decode_user


def test_the_decode_user_cannot_change_what_it_runs(host: Any) -> None:
    for path in (CLIPS, COMMAND, "/opt/xpulab/lib/xpulab_decode_smoke.py"):
        item = host.file(path)
        assert item.user == "root" and item.mode & 0o022 == 0, f"{path}: {item.user} {oct(item.mode)}"


def test_the_smoke_test_checked_the_decode_users_groups(smoke_report: dict[str, Any], decode_user: str) -> None:
    assert smoke_report["user"]["name"] == decode_user
    assert "render" in smoke_report["user"]["groups"]
