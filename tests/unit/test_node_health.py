"""Unit tests for roles/node_health/files/xpulab_node_health.py: the metrics it
writes parse with prometheus_client's parser, a failing decode flips the
device's pass metric to 0 and keeps its last success, and the driver checks
read fake facts and /dev trees (fake_sysfs)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shlex
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from prometheus_client.parser import text_string_to_metric_families

from ansible_templar import ROOT, render, role_files
from fake_sysfs import FakeGpu, add_gpu

sys.path.insert(0, str(ROOT / "roles" / "node_health" / "files"))
import xpulab_node_health as health  # type: ignore[import-not-found]  # noqa: E402

GPU = {"pci_address": "0000:03:00.0", "has_media": True, "driver": "i915", "render_node": "/dev/dri/renderD128"}
NO_MEDIA = {"pci_address": "0000:04:00.0", "has_media": False, "driver": "xe", "render_node": "/dev/dri/renderD129"}


def report(devices: dict[str, str], fps: dict[str, float], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """A smoke report as xpulab_decode_smoke writes it (the fields the check reads)."""
    return {
        "status": "failed" if any(s == "failed" or (s == "absent" and d in required) for d, s in devices.items())
        else "passed",
        "devices": [{"device": d, "status": s, "required": d in required} for d, s in devices.items()],
        "clips": [{"name": "nasa_13013", "results": {
            d: {"status": s, "fps": fps.get(d)} for d, s in devices.items()}}],
    }


def fake_smoke(tmp_path: Path, body: str) -> Path:
    """A smoke command: a shell script whose --output is its last argument."""
    script = tmp_path / "smoke"
    script.write_text("#!/bin/sh\nfor last; do :; done\necho \"$@\" > \"$(dirname \"$last\")/argv\"\n" + body)
    script.chmod(0o755)
    return script


def smoke_writing(tmp_path: Path, data: dict[str, Any], rc: int = 0) -> Path:
    src = tmp_path / "report.json"
    src.write_text(json.dumps(data))
    return fake_smoke(tmp_path, f'cp "{src}" "$last"\nexit {rc}\n')


@pytest.fixture()
def node(tmp_path: Path) -> dict[str, Path]:
    """Facts, a /dev tree with one media GPU, a state dir and a textfile dir."""
    facts, dev, state, textfile = (tmp_path / n for n in ("facts", "root/dev", "state", "textfile"))
    for d in (facts, state, textfile):
        d.mkdir(parents=True)
    add_gpu(tmp_path / "root/sys", dev, FakeGpu(bdf="0000:03:00.0", device="0x56a0"))
    write_facts(facts, [GPU])
    return {"facts": facts, "dev": dev, "state": state, "metrics": textfile / "xpulab_node_health.prom"}


def write_facts(facts: Path, gpus: list[dict[str, Any]]) -> None:
    (facts / "xpulab_intel_gpu.fact").write_text(json.dumps({
        "gpus": gpus, "kernel_release": "6.1.0-26-amd64",
        "packages": {"intel-media-va-driver-non-free": "23.1.1+dfsg1-1", "vainfo": "2.12.0+ds1-1"}}))
    (facts / "xpulab_ffmpeg.fact").write_text(json.dumps({"current": "7.1.5", "current_prefix": "/opt/ffmpeg/current"}))
    (facts / "xpulab_pytorch.fact").write_text(json.dumps({"torch_version": "2.14.1+xpu"}))
    (facts / "xpulab_torchcodec.fact").write_text(json.dumps({"version": "0.17.0"}))


def run(node: dict[str, Path], smoke: Path, *extra: str, vainfo: str = "/bin/true") -> int:
    me = pwd.getpwuid(os.getuid())
    argv = ["--facts-dir", str(node["facts"]), "--dev-root", str(node["dev"]), "--state-dir", str(node["state"]),
            "--metrics", str(node["metrics"]), "--vainfo", vainfo, "--group", grp.getgrgid(me.pw_gid).gr_name,
            *extra, "--", str(smoke), "report", "--clips-json", "/etc/xpulab/decode-smoke-clips.json"]
    return health.main(argv)


def samples(path: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the metrics file, parsed by prometheus_client."""
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        assert family.name.startswith("xpulab_health_") and family.documentation and family.type == "gauge"
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float | None:
    return found.get((f"xpulab_health_{name}", tuple(sorted(labels.items()))))


def test_a_passing_run_writes_metrics_that_parse(node: dict[str, Path], tmp_path: Path) -> None:
    smoke = smoke_writing(tmp_path, report({"cpu": "passed", "xpu:0": "passed"}, {"cpu": 310.5, "xpu:0": 1200.0}))
    assert run(node, smoke, "--require-media-gpus") == 0
    found = samples(node["metrics"])
    assert value(found, "passed") == 1
    assert value(found, "decode_passed", device="cpu") == 1 and value(found, "decode_passed", device="xpu:0") == 1
    assert value(found, "decode_fps", device="xpu:0", clip="nasa_13013") == 1200.0
    assert value(found, "decode_last_success_timestamp_seconds", device="xpu:0") == pytest.approx(
        value(found, "last_run_timestamp_seconds"))
    for check in ("render_nodes", "vainfo", "groups", "decode"):
        assert value(found, "check_passed", check=check) == 1, check
    assert value(found, "render_node_present", render_node="/dev/dri/renderD128") == 1
    assert value(found, "vainfo_passed", render_node="/dev/dri/renderD128") == 1
    assert value(found, "last_run_duration_seconds") is not None
    info = [labels for (name, labels) in found if name == "xpulab_health_info"]
    assert dict(info[0]) == {"ffmpeg": "7.1.5", "torch": "2.14.1+xpu", "torchcodec": "0.17.0", "driver": "i915",
                             "media_driver": "23.1.1+dfsg1-1", "kernel": os.uname().release}
    # The media GPU is required; the smoke command gets --output in the state dir.
    argv = (node["state"] / "argv").read_text().split()
    assert "--require-device=xpu:0" in argv and argv[-1] == str(node["state"] / "decode-smoke.json")
    # Written atomically: no temp file left, world-readable for node_exporter.
    assert sorted(p.name for p in node["metrics"].parent.iterdir()) == ["xpulab_node_health.prom"]
    assert stat.S_IMODE(node["metrics"].stat().st_mode) == 0o644


def test_a_failed_decode_flips_the_device_and_keeps_its_last_success(node: dict[str, Path], tmp_path: Path) -> None:
    ok = tmp_path / "ok"
    ok.mkdir()
    assert run(node, smoke_writing(ok, report({"cpu": "passed", "xpu:0": "passed"}, {"cpu": 300.0}))) == 0
    first = samples(node["metrics"])
    bad = tmp_path / "bad"
    bad.mkdir()
    assert run(node, smoke_writing(bad, report({"cpu": "passed", "xpu:0": "failed"}, {"cpu": 290.0}), rc=1)) == 1
    found = samples(node["metrics"])
    assert value(found, "decode_passed", device="xpu:0") == 0 and value(found, "decode_passed", device="cpu") == 1
    assert value(found, "check_passed", check="decode") == 0 and value(found, "passed") == 0
    assert value(found, "decode_last_success_timestamp_seconds", device="xpu:0") == value(
        first, "decode_last_success_timestamp_seconds", device="xpu:0")
    assert value(found, "decode_last_success_timestamp_seconds", device="cpu") >= value(  # type: ignore[operator]
        first, "decode_last_success_timestamp_seconds", device="cpu")


@pytest.mark.parametrize("body", ["echo 'error: cannot load torch/torchcodec' >&2\nexit 1\n",  # no report
                                  "exit 127\n",  # the command is broken
                                  'echo "{not json" > "$last"\nexit 0\n'])
def test_a_smoke_command_that_fails_fails_every_known_device(node: dict[str, Path], tmp_path: Path,
                                                             body: str) -> None:
    assert run(node, smoke_writing(tmp_path, report({"cpu": "passed", "xpu:0": "passed"}, {}))) == 0
    last = value(samples(node["metrics"]), "decode_last_success_timestamp_seconds", device="xpu:0")
    broken = tmp_path / "broken"
    broken.mkdir()
    assert run(node, fake_smoke(broken, body)) == 1
    found = samples(node["metrics"])
    assert value(found, "decode_passed", device="cpu") == 0 and value(found, "decode_passed", device="xpu:0") == 0
    assert value(found, "decode_last_success_timestamp_seconds", device="xpu:0") == last
    assert not [k for k in found if k[0] == "xpulab_health_decode_fps"]
    # A stale report of the last run never passes for this one.
    assert not (node["state"] / "decode-smoke.json").exists() or "not json" in (
        node["state"] / "decode-smoke.json").read_text()


def test_an_absent_device_counts_only_when_required(node: dict[str, Path], tmp_path: Path) -> None:
    smoke = smoke_writing(tmp_path, report({"cpu": "passed", "xpu:0": "absent"}, {}))
    write_facts(node["facts"], [])  # no media GPU: xpu:0 is not required, and is left out
    assert run(node, smoke) == 0
    assert value(samples(node["metrics"]), "decode_passed", device="xpu:0") is None
    required = tmp_path / "required"
    required.mkdir()
    assert run(node, smoke_writing(required, report({"cpu": "passed", "xpu:0": "absent"}, {}, ("xpu:0",)), rc=1)) == 1
    assert value(samples(node["metrics"]), "decode_passed", device="xpu:0") == 0


def test_driver_checks_read_the_facts_and_dev_tree(node: dict[str, Path], tmp_path: Path) -> None:
    write_facts(node["facts"], [GPU, NO_MEDIA, {**GPU, "render_node": "/dev/dri/renderD130"}])
    failing_vainfo = tmp_path / "vainfo"
    failing_vainfo.write_text("#!/bin/sh\n[ \"$4\" != \"${4%renderD128}\" ] || exit 1\n")  # only renderD128 opens
    failing_vainfo.chmod(0o755)
    smoke = smoke_writing(tmp_path, report({"cpu": "passed"}, {}))
    assert run(node, smoke, "--group", "xpulab-no-such-group", vainfo=str(failing_vainfo)) == 1
    found = samples(node["metrics"])
    assert value(found, "render_node_present", render_node="/dev/dri/renderD128") == 1
    assert value(found, "render_node_present", render_node="/dev/dri/renderD130") == 0  # in the facts, not in /dev
    assert value(found, "render_node_present", render_node="/dev/dri/renderD129") is None  # no media engines
    assert value(found, "vainfo_passed", render_node="/dev/dri/renderD128") == 1
    assert value(found, "vainfo_passed", render_node="/dev/dri/renderD130") is None  # not there to open
    assert value(found, "group_member", group="xpulab-no-such-group") == 0
    for check, ok in (("render_nodes", 0), ("vainfo", 1), ("groups", 0), ("decode", 1)):
        assert value(found, "check_passed", check=check) == ok, check


def test_without_the_gpu_inventory_the_render_node_check_fails(node: dict[str, Path], tmp_path: Path) -> None:
    (node["facts"] / "xpulab_intel_gpu.fact").unlink()
    assert run(node, smoke_writing(tmp_path, report({"cpu": "passed"}, {}))) == 1
    found = samples(node["metrics"])
    assert value(found, "check_passed", check="render_nodes") == 0 and value(found, "check_passed", check="decode") == 1
    info = next(dict(labels) for name, labels in found if name == "xpulab_health_info")
    assert info["driver"] == "" and info["ffmpeg"] == "7.1.5"


def test_without_vainfo_its_check_is_left_out(node: dict[str, Path], tmp_path: Path) -> None:
    assert run(node, smoke_writing(tmp_path, report({"cpu": "passed"}, {})), vainfo="xpulab-no-vainfo") == 0
    found = samples(node["metrics"])
    assert value(found, "check_passed", check="vainfo") is None
    assert not [k for k in found if k[0] == "xpulab_health_vainfo_passed"]


def test_label_values_are_escaped() -> None:
    text = health.render([("info", "Versions.", [({"kernel": 'a"b\\c\nd'}, 1.0)])])
    family = next(iter(text_string_to_metric_families(text)))
    assert family.samples[0].labels == {"kernel": 'a"b\\c\nd'}


def test_write_atomic_leaves_the_old_file_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "m.prom"
    target.write_text("old\n")

    def fail(*_args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        health.write_atomic(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["m.prom"]


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert health.main(["--metrics", "/tmp/x.prom"]) == 2
    assert "required" in capsys.readouterr().err


@pytest.mark.parametrize("group_vars", [False, True])
def test_the_service_runs_the_smoke_test_as_the_decode_smoke_role_does(group_vars: bool, tmp_path: Path) -> None:
    """The units as the role renders them: User= the decode user, and ExecStart (parsed as the
    molecule check parses it) the check with the smoke command line the decode_smoke role runs.
    The role's play does not see decode_smoke's defaults, only the inventory (group_vars)."""
    sandbox = [ROOT / "inventories/sandbox/group_vars/all/decode_smoke.yml"] if group_vars else []
    data = {"xpulab_mirror_url": "http://127.0.0.1:8080", "ansible_local": {}}
    units = {kind: (ROOT / f"roles/node_health/templates/xpulab-node-health.{kind}.j2").read_text()
             for kind in ("service", "timer")}
    out = render(units, files=role_files("node_health") + sandbox, data=data)
    service = dict(line.split("=", 1) for line in out["service"].splitlines() if "=" in line and line[0] != "#")
    timer = dict(line.split("=", 1) for line in out["timer"].splitlines() if "=" in line and line[0] != "#")
    assert service["Type"] == "oneshot" and service["User"] == "xpulab" and int(service["TimeoutStartSec"]) == 1500
    assert timer == {"Description": timer["Description"], "OnCalendar": "daily", "OnBootSec": "15min",
                     "Persistent": "true", "RandomizedDelaySec": "1h", "Unit": "xpulab-node-health.service",
                     "WantedBy": "timers.target"}
    argv = shlex.split(service["ExecStart"])
    assert argv[:2] == ["/usr/bin/python3", "/opt/xpulab/lib/xpulab_node_health.py"]
    args = health.build_parser().parse_args(argv[2:])
    assert args.group == ["render"] and args.require_media_gpus and args.metrics == Path(
        "/var/lib/xpulab/health/xpulab_node_health.prom")
    decode_smoke = yaml.safe_load((ROOT / "roles/decode_smoke/tasks/main.yml").read_text())
    run_task = next(t for t in decode_smoke if t["name"] == "Run the decode smoke test as the decode user")
    role = render({"argv": run_task["ansible.builtin.command"]["argv"]}, files=role_files("decode_smoke") + sandbox,
                  templates=run_task["vars"], data=data)["argv"][4:]
    # The role's --json-stdout hands the report to Ansible; the check reads the file of its own --output.
    role = [a for a in role if a != "--json-stdout"]
    at = role.index("--output")
    assert args.smoke == [str(a) for a in role[:at] + role[at + 2:]]  # the check adds its own --output
    assert ("--devices" in args.smoke) == group_vars


def test_the_example_alert_rules_use_metrics_the_check_writes(node: dict[str, Path], tmp_path: Path) -> None:
    assert run(node, smoke_writing(tmp_path, report({"cpu": "passed", "xpu:0": "passed"}, {"cpu": 1.0}))) == 0
    written = {family.name for family in text_string_to_metric_families(node["metrics"].read_text())}
    rules = yaml.safe_load((ROOT / "docs/prometheus/xpulab-alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert {"XpulabDecodeDeviceFailing", "XpulabNoDecodeSuccessFor2Days"} <= {a["alert"] for a in alerts}
    for alert in alerts:
        used = set(re.findall(r"\bxpulab_[a-z_]+", alert["expr"]))
        assert used and used <= written, (alert["alert"], used - written)
