"""Unit tests for roles/fleet_report/files/fleet_report.py (the controller-side fleet report)."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

import fleet_report  # roles/fleet_report/files (conftest.py)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "roles" / "decode_smoke" / "files"))
import xpulab_decode_smoke as smoke  # type: ignore[import-not-found]  # noqa: E402

Json = dict[str, Any]
CLIP = "nasa_13013"


# ------------------------------------------------------------------ builders


def result(
    status: str = "passed", fps: float | None = 2642.3, error: str | None = None, **checks: Any
) -> Json:
    """One clip's result on one device, shaped like xpulab_decode_smoke.check_device's."""
    if status == "absent":
        return {"status": "absent", "checks": {}, "fps": None, "frames": None, "seconds": None, "error": None}
    base = {"shape": {"passed": True}, "dtype": {"passed": True}, "vs_cpu": None, "vs_golden": None}
    return {
        "status": status,
        "checks": {**base, **checks},
        "fps": fps,
        "frames": 390,
        "seconds": 0.15,
        "error": error,
    }


def smoke_report(
    clips: dict[str, dict[str, Json]],
    timestamp: str = "2026-03-01T10:00:00+00:00",
    required: tuple[str, ...] = (),
) -> Json:
    """A smoke report whose devices and status follow the clips, like build_report."""
    devices = []
    failed = False
    names = sorted({d for results in clips.values() for d in results}, key=fleet_report.device_key)
    for device in names:
        statuses = [results[device]["status"] for results in clips.values()]
        if all(s == "absent" for s in statuses):
            status = "absent"
            failed = failed or device in required
        else:
            status = "failed" if "failed" in statuses else "passed"
            failed = failed or status == "failed"
        devices.append({"device": device, "status": status, "required": device in required, "name": None})
    return {
        "schema_version": 1,
        "tool": "xpulab_decode_smoke",
        "status": "failed" if failed else "passed",
        "hostname": "ignored",
        "timestamp": timestamp,
        "psnr_threshold_db": 40.0,
        "bench_frames": 0,
        "versions": {},
        "devices": devices,
        "clips": [
            {
                "name": name,
                "path": f"/var/cache/xpulab/media/{name}.mp4",
                "frames": "0:10",
                "results": results,
            }
            for name, results in clips.items()
        ],
    }


def node_file(name: str, smoke_data: Json | None, gpus: list[Json] | None = None, **extra: Any) -> Json:
    data: Json = {
        "node": name,
        "gpus": gpus or [],
        "ffmpeg": {"version": "7.1.5", "fingerprint": "ca5e711c98c4a608"},
        "torch": {"version": "2.14.1", "xpu_available": False, "xpu_device_count": 0},
        "torchcodec": {"method": "plugin", "version": "0.17.0", "commit": None, "xpu_plugin": None},
        "smoke": smoke_data,
        "test_suite": None,
    }
    data.update(extra)
    return data


def write_nodes(directory: Path, *nodes: Json) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for node in nodes:
        (directory / f"{node['node']}.json").write_text(json.dumps(node))
    return directory


def sandbox_nodes() -> list[Json]:
    """Two container nodes: cpu passes, xpu:0 configured but absent (no GPU)."""
    return [
        node_file(
            "xpulab-node1",
            smoke_report({CLIP: {"cpu": result(fps=2642.3), "xpu:0": result("absent")}}),
        ),
        node_file(
            "xpulab-node2",
            smoke_report(
                {CLIP: {"cpu": result(fps=2510.9), "xpu:0": result("absent")}},
                timestamp="2026-03-01T10:02:00+00:00",
            ),
        ),
    ]


def two_xpu_node(name: str = "gpu-node") -> Json:
    """A node with two Arc GPUs where xpu:1 fails the PSNR check on the second clip."""
    low_psnr = {"passed": False, "equal": False, "psnr_db": 31.2, "max_abs_diff": 79, "threshold_db": 40.0}
    gpus = [
        {"pci_address": "0000:03:00.0", "device_id": "0x56a0", "family": "alchemist", "driver": "i915",
         "has_media": True, "render_node": "/dev/dri/renderD128"},
        {"pci_address": "0000:04:00.0", "device_id": "0xe20b", "family": "battlemage", "driver": "xe",
         "has_media": True, "render_node": "/dev/dri/renderD129"},
    ]  # fmt: skip
    clips = {
        CLIP: {"cpu": result(fps=2642.3), "xpu:0": result(fps=4546.0), "xpu:1": result(fps=4100.4)},
        "testsrc2_vp9": {
            "cpu": result(fps=370.0),
            "xpu:0": result(fps=1714.0),
            "xpu:1": result("failed", fps=1650.2, vs_cpu=low_psnr),
        },
    }
    torch = {"version": "2.14.1+xpu", "xpu_available": True, "xpu_device_count": 2}
    return node_file(name, smoke_report(clips, timestamp="2026-03-02T08:00:00+00:00"), gpus, torch=torch)


def fleet_of(*nodes: Json) -> fleet_report.Fleet:
    reports = sorted(((n["node"], n) for n in nodes), key=lambda item: item[0])
    return fleet_report.build_fleet(reports)


def history_record(
    run_id: str,
    hosts: dict[str, tuple[dict[str, float], dict[str, float], str | None]],
    result: str = "passed",
) -> Json:
    """A run history record (schema 1, as the xpulab_history callback writes it): host -> (roles, fps, smoke)."""
    started = f"{run_id[0:4]}-{run_id[4:6]}-{run_id[6:8]}T{run_id[9:11]}:{run_id[11:13]}:{run_id[13:15]}Z"
    counts = {"ok": 10, "changed": 0, "failed": 0, "unreachable": 0, "skipped": 2, "rescued": 0, "ignored": 0}
    return {
        "schema": 1,
        "id": run_id,
        "started": started,
        "finished": None if result == "running" else started,
        "playbook": "site.yml",
        "inventory": ["inventories/sandbox"],
        "limit": None,
        "tags": ["all"],
        "check_mode": False,
        "controller": "controller",
        "user": "root",
        "result": result,
        "hosts": {
            host: {**counts, "roles": roles, "smoke": smoke, "fps": fps}
            for host, (roles, fps, smoke) in hosts.items()
        },
    }


def write_history(directory: Path, *records: Json) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for record in records:
        (directory / f"{record['id']}.json").write_text(json.dumps(record))
    return directory


ROLES = {"intel_gpu": 3.2, "ffmpeg": 5.1, "pytorch": 7.9, "(none)": 1.0}


def sandbox_history() -> list[Json]:
    """Three earlier runs of the two sandbox nodes (one without decode results) and this run, running."""
    both = ("xpulab-node1", "xpulab-node2")
    return [
        history_record(
            "20261130T110102Z-1a2b3c4d",
            {"xpulab-node1": (ROLES, {"cpu": 2600.0, "xpu:0": 1700.0}, "passed"),
             "xpulab-node2": (ROLES, {"cpu": 2480.0}, "failed")},
        ),
        history_record("20261130T120102Z-00000000", {h: (ROLES, {}, None) for h in both}, "failed"),
        history_record(
            "20261130T130102Z-2b3c4d5e",
            {h: (ROLES, {"cpu": 2500.0 + i, "xpu:0": 1800.0}, "passed") for i, h in enumerate(both)},
        ),
        history_record(
            "20261130T140102Z-3c4d5e6f",
            {"xpulab-node1": ({"intel_gpu": 2.0, "ffmpeg": 540.25, "(none)": 0.5}, {}, None),
             "xpulab-node2": ({"intel_gpu": 2.5, "pytorch": 61.0, "(none)": 0.25}, {}, None)},
            "running",
        ),
    ]  # fmt: skip


def bars(svg: str) -> list[tuple[str, str]]:
    return re.findall(r'<rect class="bar" data-node="([^"]*)" data-device="([^"]*)"', svg)


# ------------------------------------------------------------------ the sandbox case


SANDBOX_MARKDOWN = """\
# xpulab fleet report

**PASS: all 2 nodes passed (newest smoke report: 2026-03-01T10:02:00+00:00)**

| node | GPUs and driver | FFmpeg | torch | TorchCodec | cpu | xpu:0 | test suite |
| --- | --- | --- | --- | --- | --- | --- | --- |
| xpulab-node1 | none | 7.1.5 (ca5e711c98c4a608) | 2.14.1 | plugin 0.17.0 | pass 2642 fps | absent | - |
| xpulab-node2 | none | 7.1.5 (ca5e711c98c4a608) | 2.14.1 | plugin 0.17.0 | pass 2511 fps | absent | - |

fps: decode rate of the first clip of each node's smoke report (nasa_13013), not a mean. \
A device passes only when it passed every clip; absent: torch did not find it; -: not tested on that node.

## Failures

None.
"""


def test_sandbox_two_nodes_cpu_pass_xpu_absent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = write_nodes(tmp_path / "in", *sandbox_nodes())
    md, page = tmp_path / "out" / "fleet.md", tmp_path / "out" / "fleet.html"
    rc = fleet_report.main(["--reports-dir", str(reports), "--markdown", str(md), "--html", str(page)])
    assert rc == 0
    assert md.read_text() == SANDBOX_MARKDOWN
    assert capsys.readouterr().out == SANDBOX_MARKDOWN
    # Absent devices are not present: only the cpu bars are drawn.
    assert bars(page.read_text()) == [("xpulab-node1", "cpu"), ("xpulab-node2", "cpu")]


def test_required_absent_xpu_fails_the_node() -> None:
    data = node_file(
        "n1", smoke_report({CLIP: {"cpu": result(), "xpu:0": result("absent")}}, required=("xpu:0",))
    )
    fleet = fleet_of(data)
    assert not fleet.passed
    assert fleet.nodes[0].devices["xpu:0"].cell() == "absent (required)"
    assert [f.reason for f in fleet.nodes[0].failures] == ["required device absent"]


# ------------------------------------------------------------------ failures


def test_two_xpus_one_failing(tmp_path: Path) -> None:
    fleet = fleet_of(two_xpu_node(), *sandbox_nodes())
    assert fleet.devices == ["cpu", "xpu:0", "xpu:1"]
    node = next(n for n in fleet.nodes if n.name == "gpu-node")
    assert not node.passed and not fleet.passed
    assert node.devices["cpu"].cell() == "pass 2642 fps"
    assert node.devices["xpu:0"].cell() == "pass 4546 fps"  # the first clip's fps
    assert node.devices["xpu:1"].cell() == "FAIL"  # passed the first clip, failed the second
    assert [(f.clip, f.device) for f in node.failures] == [("testsrc2_vp9", "xpu:1")]
    assert "vs_cpu (PSNR 31.2 dB < 40.0 dB, max diff 79)" in node.failures[0].reason

    md = fleet_report.render_markdown(fleet)
    assert "**FAIL: 2 of 3 nodes passed (newest smoke report: 2026-03-02T08:00:00+00:00)**" in md
    row = next(line for line in md.splitlines() if line.startswith("| gpu-node"))
    assert (
        "| Arc A-series (alchemist) 0000:03:00.0 i915; Arc B-series (battlemage) 0000:04:00.0 xe "
        "| 7.1.5 (ca5e711c98c4a608) | 2.14.1+xpu xpu x2 | plugin 0.17.0 "
        "| pass 2642 fps | pass 4546 fps | FAIL | - |"
    ) in row
    # Sandbox nodes never listed xpu:1: "-", not "absent".
    assert "| pass 2642 fps | absent | - | - |" in md
    assert "- gpu-node, testsrc2_vp9, xpu:1: failed checks: vs_cpu (PSNR 31.2 dB" in md

    reports = write_nodes(tmp_path / "in", two_xpu_node(), *sandbox_nodes())
    assert fleet_report.main(["--reports-dir", str(reports)]) == 1


def test_decode_error_is_the_reason_and_bar_is_zero() -> None:
    data = node_file(
        "n1",
        smoke_report(
            {CLIP: {"cpu": result(), "xpu:0": result("failed", fps=None, error="RuntimeError: boom")}}
        ),
    )
    fleet = fleet_of(data)
    assert [fleet_report.failure_text(f) for f in fleet.nodes[0].failures] == [
        "n1, nasa_13013, xpu:0: RuntimeError: boom"
    ]
    svg = fleet_report.render_svg(fleet)
    assert bars(svg) == [("n1", "cpu"), ("n1", "xpu:0")]
    assert re.search(r'data-device="xpu:0"[^>]* height="0.0"', svg)
    assert '#d62728">n/a</text>' in svg  # red value: failed


def test_smoke_status_failed_without_device_failure_still_fails() -> None:
    report = smoke_report({CLIP: {"cpu": result()}})
    report["status"] = "failed"
    fleet = fleet_of(node_file("n1", report))
    assert [f.reason for f in fleet.nodes[0].failures] == ["smoke status failed"]


def test_node_without_smoke_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = write_nodes(tmp_path / "in", sandbox_nodes()[0], node_file("xpulab-node3", None))
    assert fleet_report.main(["--reports-dir", str(reports)]) == 1
    out = capsys.readouterr().out
    assert "**FAIL: 1 of 2 nodes passed" in out
    assert "| xpulab-node3 | none | 7.1.5 (ca5e711c98c4a608) | 2.14.1 | plugin 0.17.0 | - | - | - |" in out
    assert "- xpulab-node3: no smoke report" in out


def test_only_nodes_without_smoke_still_render() -> None:
    fleet = fleet_of(node_file("a", None, ffmpeg=None, torch=None, torchcodec=None))
    md = fleet_report.render_markdown(fleet)
    assert "newest smoke report: none" in md
    assert "| a | none | - | - | - | - |" in md  # no device columns at all
    svg = fleet_report.render_svg(fleet)
    assert bars(svg) == [] and "no decode results" in svg


# ------------------------------------------------------------------ the real smoke report


class _Tensor:
    def __init__(self, array: np.ndarray) -> None:
        self.array, self.shape = array, array.shape

    def cpu(self) -> _Tensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.array


def _decoder_factory(broken: set[str]) -> Any:
    frames = np.random.default_rng(7).integers(0, 256, size=(12, 3, 6, 8), dtype=np.uint8)

    class Decoder:
        def __init__(self, source: str, *, device: str, stream_index: int | None) -> None:
            self.frames = (frames // 2) if device in broken else frames
            self.cpu_fallback = False  # TorchCodec 0.17's CpuFallbackStatus: bool() is "fell back"
            self.metadata = SimpleNamespace(
                stream_index=0, codec="h264", height=6, width=8, num_frames=12, average_fps=30.0
            )

        def __len__(self) -> int:
            return 12

        def __getitem__(self, key: slice) -> _Tensor:
            return _Tensor(self.frames[key])

    return Decoder


def test_reads_what_the_smoke_test_writes() -> None:
    """Feed build_report's own output through: the schema the report reads is the real one."""
    xpu = SimpleNamespace(
        is_available=lambda: True,
        device_count=lambda: 2,
        get_device_name=lambda i: f"Intel Arc B580 #{i}",
        synchronize=lambda device=None: None,
    )
    backend = smoke.Backend(
        torch=SimpleNamespace(__version__="2.14.1+xpu", xpu=xpu),
        decoder_factory=_decoder_factory({"xpu:1"}),
        versions={},
    )
    clips = [smoke.Clip(name="a", path="a.mp4"), smoke.Clip(name="b", path="b.mp4")]
    report = smoke.build_report(backend, clips, ["cpu", "xpu:0", "xpu:1", "xpu:2"], set(), 40.0, 0)
    fleet = fleet_of(node_file("real", json.loads(json.dumps(report))))
    node = fleet.nodes[0]
    assert {d: r.status for d, r in node.devices.items()} == {
        "cpu": "pass",
        "xpu:0": "pass",
        "xpu:1": "FAIL",
        "xpu:2": "absent",
    }
    assert node.devices["cpu"].fps == report["clips"][0]["results"]["cpu"]["fps"]
    assert [(f.clip, f.device) for f in node.failures] == [("a", "xpu:1"), ("b", "xpu:1")]
    assert all(f.reason.startswith("failed checks: vs_cpu (PSNR") for f in node.failures)


# ------------------------------------------------------------------ HTML and SVG


def test_html_escapes_hostile_text() -> None:
    evil = '<script>alert("x")</script>&|'
    nodes = [
        node_file(
            evil,
            smoke_report({f"<b>{CLIP}</b>": {"cpu": result(), "xpu:0": result("failed", error=evil)}}),
            [{"pci_address": "<img src=x>", "family": "<i>", "driver": "'\"", "has_media": True}],
        )
    ]
    fleet = fleet_of(*nodes)
    page = fleet_report.render_html(fleet)
    assert "<script" not in page and "<img" not in page and "<b>" not in page and "<i>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;|" in page
    assert 'data-node="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;|"' in page
    # Markdown: a pipe in a name does not add a column.
    md = fleet_report.render_markdown(fleet)
    row = next(line for line in md.splitlines() if line.startswith("| <script"))
    assert len(re.findall(r"(?<!\\)\|", row)) == len(fleet_report.table(fleet)[0]) + 1


def test_html_is_standalone() -> None:
    page = fleet_report.render_html(fleet_of(two_xpu_node(), *sandbox_nodes()))
    assert page.startswith("<!DOCTYPE html>") and page.endswith("</html>\n")
    assert "<style>" in page and "<script" not in page
    assert not re.search(r"(?:src|href)=", page)  # no external assets
    assert page.count("<tr>") == 4  # header and three nodes


def test_svg_has_one_bar_per_node_and_present_device() -> None:
    fleet = fleet_of(two_xpu_node(), *sandbox_nodes())
    svg = fleet_report.render_svg(fleet)
    assert bars(svg) == [
        ("gpu-node", "cpu"),
        ("gpu-node", "xpu:0"),
        ("gpu-node", "xpu:1"),
        ("xpulab-node1", "cpu"),
        ("xpulab-node2", "cpu"),
    ]
    assert svg.count('stroke="#d62728" stroke-width="2">') == 1  # the failed xpu:1 bar
    for label in ("decode fps", ">node<", ">cpu<", ">xpu:0<", ">xpu:1<", ">failed<"):
        assert label in svg  # axis labels and legend
    for value in (">2642<", ">4546<", '#d62728">4100<', ">2511<"):
        assert value in svg  # values on bars
    heights = {
        (node, device): float(h)
        for node, device, h in re.findall(
            r'data-node="([^"]*)" data-device="([^"]*)"[^>]* height="([^"]*)"', svg
        )
    }
    assert heights[("gpu-node", "xpu:0")] > heights[("gpu-node", "cpu")] > 0
    assert max(heights.values()) <= 240.0


def test_svg_single_node() -> None:
    svg = fleet_report.render_svg(fleet_of(sandbox_nodes()[0]))
    assert bars(svg) == [("xpulab-node1", "cpu")]
    assert 'width="360"' in svg  # the minimum width holds the legend


@pytest.mark.parametrize(
    ("maximum", "ticks"),
    [
        (0.0, [0.0, 1.0]),
        (2642.3, [0.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0]),
        (4546.0, [0.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0]),
        (1.0, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
        (12.0, [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]),
        (13.0, [0.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0]),
    ],
)
def test_nice_ticks(maximum: float, ticks: list[float]) -> None:
    assert fleet_report.nice_ticks(maximum) == ticks


# ------------------------------------------------------------------ ordering and determinism


def test_device_columns_cpu_first_then_numeric() -> None:
    devices = ["xpu:10", "xpu:2", "cpu", "xpu", "xpu:0"]
    assert sorted(devices, key=fleet_report.device_key) == ["cpu", "xpu", "xpu:0", "xpu:2", "xpu:10"]


def test_deterministic_output(tmp_path: Path) -> None:
    reports = write_nodes(tmp_path / "in", two_xpu_node(), *sandbox_nodes())
    outputs = []
    for run in ("a", "b"):
        md, page = tmp_path / run / "f.md", tmp_path / run / "f.html"
        assert (
            fleet_report.main(["--reports-dir", str(reports), "--markdown", str(md), "--html", str(page)])
            == 1
        )
        outputs.append((md.read_bytes(), page.read_bytes()))
    assert outputs[0] == outputs[1]
    # Node order comes from the names, not from the directory order or the clock.
    assert [n.name for n in fleet_report.build_fleet(fleet_report.load_reports(reports)).nodes] == [
        "gpu-node",
        "xpulab-node1",
        "xpulab-node2",
    ]


def test_newest_timestamp_compares_instants() -> None:
    a, b = sandbox_nodes()
    a["smoke"]["timestamp"] = "2026-03-01T12:00:00+02:00"  # 10:00 UTC
    b["smoke"]["timestamp"] = "2026-03-01T11:00:00+00:00"
    assert fleet_report.newest_timestamp(fleet_of(a, b)) == "2026-03-01T11:00:00+00:00"


# ------------------------------------------------------------------ cells


def test_torchcodec_and_test_suite_cells() -> None:
    source = {"method": "source", "version": "0.7.0a0", "commit": "f06c28684edd0570cb44e9d7cbe440b60e37ff0e"}
    assert fleet_report.torchcodec_cell(source) == "source 0.7.0a0 f06c28684edd"
    plugin = {"method": "plugin", "version": "0.17.0", "xpu_plugin": "0.17.0"}
    assert fleet_report.torchcodec_cell(plugin) == "plugin 0.17.0 + torchcodec-xpu 0.17.0"
    suite = {"passed": 10, "failed": 1, "skipped": 2, "known": 1, "new": 0, "new_failures": [], "fixed": []}
    assert fleet_report.suite_cell(suite) == "10 passed, 1 known, 0 new"
    assert fleet_report.suite_cell(None) == "-"
    assert fleet_report.gpus_cell([{"pci_address": "0000:3a:00.0", "family": "max", "driver": None}]) == (
        "Data Center GPU Max (max) 0000:3a:00.0 no driver"
    )


# ------------------------------------------------------------------ bad input and exit codes


def test_invalid_json_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = write_nodes(tmp_path / "in", *sandbox_nodes())
    (reports / "broken-node.json").write_text('{"node": "broken-node", ')
    assert fleet_report.main(["--reports-dir", str(reports)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "broken-node.json: invalid JSON" in captured.err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "n.json: the top level must be dict, not list"),
        ('{"node": "n", "gpus": "none"}', "n.json: gpus must be list, not str"),
        (
            '{"node": "n", "smoke": {"clips": [{"results": []}]}}',
            "n.json: smoke.clips[0].results must be dict",
        ),
        ('{"node": "n", "smoke": {"clips": [null]}}', "n.json: smoke.clips[0] must be dict, not NoneType"),
        ('{"smoke": {"devices": [{"status": "passed"}]}}', "n.json: smoke.devices[0].device must be str"),
    ],
)
def test_wrong_types_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    (tmp_path / "n.json").write_text(content)
    assert fleet_report.main(["--reports-dir", str(tmp_path)]) == 2
    assert message in capsys.readouterr().err


def test_missing_directory_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet_report.main(["--reports-dir", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_empty_directory_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet_report.main(["--reports-dir", str(tmp_path)]) == 2
    assert "no *.json node reports" in capsys.readouterr().err


def test_usage_error_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert fleet_report.main([]) == 2
    assert "--reports-dir" in capsys.readouterr().err


def test_unwritable_output_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = write_nodes(tmp_path / "in", *sandbox_nodes())
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert fleet_report.main(["--reports-dir", str(reports), "--markdown", str(blocker / "x.md")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_script_runs_as_a_command(tmp_path: Path) -> None:
    reports = write_nodes(tmp_path / "in", *sandbox_nodes())
    script = Path(fleet_report.__file__)
    done = subprocess.run(
        [sys.executable, str(script), "--reports-dir", str(reports), "--title", "lab A"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("# lab A\n\n**PASS: all 2 nodes passed")


# ------------------------------------------------- the role: this run only


def test_summary_covers_this_run_only(tmp_path: Path) -> None:
    """playbooks/report.yml after a run where n2 failed: n2 shows as not reporting, a stale n3 is gone."""
    root = Path(__file__).resolve().parents[2]
    reports = tmp_path / "reports"
    (reports / "nodes").mkdir(parents=True)
    stale = {"node": "n2", "smoke": {"status": "passed", "devices": [], "clips": []}}
    (reports / "nodes" / "n2.json").write_text(json.dumps(stale))
    (reports / "nodes" / "n3.json").write_text(json.dumps({**stale, "node": "n3"}))
    # This run's history record, as the callback writes it when the report play starts.
    running = history_record(
        "20261130T150102Z-1a2b3c4d", {"n1": ({"decode_smoke": 4.5}, {}, None)}, "running"
    )
    write_history(reports / "history", running)
    (tmp_path / "hosts.ini").write_text(
        "[xpulab_nodes]\nn1\nn2\n[xpulab_nodes:vars]\nansible_connection=local\n"
        f"ansible_python_interpreter={sys.executable}\n"
    )
    smoke_ok = {
        "status": "passed",
        "devices": [{"device": "cpu", "status": "passed"}],
        "clips": [{"name": CLIP, "results": {"cpu": result()}}],
    }
    (tmp_path / "run.yml").write_text(
        json.dumps(
            [
                {
                    "hosts": "xpulab_nodes",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "ansible.builtin.fail": {"msg": "earlier role failed"},
                            "when": "inventory_hostname == 'n2'",
                        },
                        {"ansible.builtin.set_fact": {"decode_smoke_result": smoke_ok}},
                    ],
                },
                {"ansible.builtin.import_playbook": str(root / "playbooks" / "report.yml")},
            ]
        )
    )
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(tmp_path / "hosts.ini"),
            str(tmp_path / "run.yml"),
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, "XPULAB_REPORT_DIR": str(reports), "ANSIBLE_NOCOLOR": "1"},
    )
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert sorted(p.name for p in (reports / "nodes").iterdir()) == ["n1.json", "n2.json"]
    summary = (reports / "fleet-summary.md").read_text()
    assert "1 of 2 nodes passed" in summary, summary
    assert "did not report in this run" in summary, summary
    assert "n3" not in summary
    assert "## Seconds per role, run 20261130T150102Z-1a2b3c4d (running)" in summary, summary
    assert "| n1 | 4.5 | 4.5 |" in summary, summary
    assert (
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart history"'
        in (reports / "fleet-summary.html").read_text()
    )


# ------------------------------------------------- run history (--history-dir)


def series(svg: str) -> dict[tuple[str, str], list[str]]:
    """(node, device) -> the data-run of each point, in the order drawn."""
    found: dict[tuple[str, str], list[str]] = {}
    for node, device, body in re.findall(
        r'<g class="series" data-node="([^"]*)" data-device="([^"]*)"[^>]*>(.*?)</g>', svg, re.DOTALL
    ):
        found[(node, device)] = re.findall(r'<circle class="point" data-run="([^"]*)"', body)
    return found


def test_parse_record_keeps_roles_fps_and_smoke() -> None:
    record = history_record(
        "20261130T150102Z-1a2b3c4d", {"n1": ({"ffmpeg": 5, "(none)": 1.5}, {"cpu": 512.3}, "passed")}
    )
    record["hosts"]["n2"] = {"roles": None, "fps": {"cpu": None}, "smoke": 3}
    run = fleet_report.parse_record(record, "r.json")
    assert (run.id, run.started, run.result) == (
        "20261130T150102Z-1a2b3c4d",
        "2026-11-30T15:01:02Z",
        "passed",
    )
    assert run.roles == {"n1": {"ffmpeg": 5.0, "(none)": 1.5}, "n2": {}}
    assert run.fps == {"n1": {"cpu": 512.3}, "n2": {}}  # a null fps is no point
    assert run.smoke == {"n1": "passed", "n2": None}


def test_load_history_leaves_out_bad_records_with_a_note(tmp_path: Path) -> None:
    directory = write_history(tmp_path / "history", *sandbox_history())
    bad = {
        "a-broken.json": '{"schema": 1, ',
        "b-schema2.json": json.dumps({**sandbox_history()[0], "schema": 2}),
        "c-list.json": "[]",
        "d-roles.json": json.dumps(history_record("x", {"n": ({"ffmpeg": "5s"}, {}, None)})),
        "e-bool.json": json.dumps(history_record("x", {"n": ({}, {"cpu": True}, None)})),
        "f-hosts.json": json.dumps({"schema": 1, "hosts": []}),
    }
    for name, text in bad.items():
        (directory / name).write_text(text)
    (directory / "g-binary.json").write_bytes(b"\xff\xfe\x00")
    (directory / ".20261130T160000Z-tmp.json").write_text("{")  # being written: skipped silently
    (directory / "notes.txt").write_text("not a record")
    history = fleet_report.load_history(directory, 5)
    assert [run.id for run in history.runs] == [r["id"] for r in sandbox_history()]  # sorted by name
    assert history.limit == 5
    assert len(history.notes) == 7
    assert history.notes[0].startswith("history record left out: a-broken.json: unreadable: ")
    assert history.notes[1:6] == [
        "history record left out: b-schema2.json: schema 2, not 1",
        "history record left out: c-list.json: the top level must be dict, not list",
        "history record left out: d-roles.json: hosts.n.roles.ffmpeg must be a number, not str",
        "history record left out: e-bool.json: hosts.n.fps.cpu must be a number, not bool",
        "history record left out: f-hosts.json: hosts must be dict, not list",
    ]
    assert history.notes[6].startswith("history record left out: g-binary.json: unreadable: ")


def test_load_history_missing_directory(tmp_path: Path) -> None:
    history = fleet_report.load_history(tmp_path / "none")
    assert history.runs == [] and history.notes == [f"no run history in {tmp_path / 'none'}"]


def test_chart_runs_this_run_from_the_node_reports(tmp_path: Path) -> None:
    history = fleet_report.load_history(write_history(tmp_path / "h", *sandbox_history()))
    runs = fleet_report.chart_runs(fleet_of(*sandbox_nodes()), history)
    # The run without decode results is left out; the newest record (running) is this run,
    # its points are the node reports' (xpu:0 absent there: no point).
    assert runs == [
        ("2026-11-30T11:01:02Z", {("xpulab-node1", "cpu"): (2600.0, False), ("xpulab-node1", "xpu:0"): (1700.0, False),
                                  ("xpulab-node2", "cpu"): (2480.0, True)}),
        ("2026-11-30T13:01:02Z", {("xpulab-node1", "cpu"): (2500.0, False), ("xpulab-node1", "xpu:0"): (1800.0, False),
                                  ("xpulab-node2", "cpu"): (2501.0, False), ("xpulab-node2", "xpu:0"): (1800.0, False)}),
        ("2026-11-30T14:01:02Z", {("xpulab-node1", "cpu"): (2642.3, False), ("xpulab-node2", "cpu"): (2510.9, False)}),
    ]  # fmt: skip
    limited = fleet_report.History(history.runs, [], limit=2)
    assert [label for label, _ in fleet_report.chart_runs(fleet_of(*sandbox_nodes()), limited)] == [
        "2026-11-30T13:01:02Z",
        "2026-11-30T14:01:02Z",
    ]
    only = fleet_report.History(history.runs, [], limit=1)
    assert [label for label, _ in fleet_report.chart_runs(fleet_of(*sandbox_nodes()), only)] == [
        "2026-11-30T14:01:02Z"
    ]
    empty = fleet_report.chart_runs(fleet_of(two_xpu_node()), fleet_report.History([], []))
    assert [label for label, _ in empty] == ["this run"]
    assert empty[0][1][("gpu-node", "xpu:1")] == (4100.4, True)  # the node failed: red ring


def test_roles_table_totals_and_order() -> None:
    run = fleet_report.parse_record(sandbox_history()[-1], "r.json")
    header, rows = fleet_report.roles_table(run)
    assert header == ["node", "intel_gpu", "ffmpeg", "pytorch", "(none)", "total"]  # (none) last
    assert rows == [
        ["xpulab-node1", "2.0", "540.2", "-", "0.5", "542.8"],
        ["xpulab-node2", "2.5", "-", "61.0", "0.2", "63.8"],
        ["total", "4.5", "540.2", "61.0", "0.8", "606.5"],
    ]
    header, rows = fleet_report.roles_table(run, {"xpulab-node2", "localhost-not-a-node"})
    assert header == ["node", "intel_gpu", "pytorch", "(none)", "total"]  # only node2's roles
    assert rows == [["xpulab-node2", "2.5", "61.0", "0.2", "63.8"], ["total", "2.5", "61.0", "0.2", "63.8"]]


def test_markdown_with_history(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    reports = write_nodes(tmp_path / "in", *sandbox_nodes())
    history = write_history(tmp_path / "history", *sandbox_history())
    (history / "broken.json").write_text("{")
    md = tmp_path / "out" / "fleet.md"
    args = ["--reports-dir", str(reports), "--history-dir", str(history), "--markdown", str(md)]
    assert fleet_report.main(args) == 0  # a bad record never fails the report
    text = md.read_text()
    assert text.startswith(SANDBOX_MARKDOWN)
    assert text[len(SANDBOX_MARKDOWN) :] == (
        "\n## Seconds per role, run 20261130T140102Z-3c4d5e6f (running)\n\n"
        "| node | intel_gpu | ffmpeg | pytorch | (none) | total |\n"
        "| --- | --- | --- | --- | --- | --- |\n"
        "| xpulab-node1 | 2.0 | 540.2 | - | 0.5 | 542.8 |\n"
        "| xpulab-node2 | 2.5 | - | 61.0 | 0.2 | 63.8 |\n"
        "| total | 4.5 | 540.2 | 61.0 | 0.8 | 606.5 |\n\n"
        f"{fleet_report.ROLES_NOTE}\n\n"
        "- history record left out: broken.json: unreadable: Expecting property name enclosed in double quotes:"
        " line 1 column 2 (char 1)\n"
    )
    assert capsys.readouterr().out == text


def test_markdown_without_history_records(tmp_path: Path) -> None:
    fleet = fleet_of(*sandbox_nodes())
    text = fleet_report.render_markdown(fleet, fleet_report.load_history(tmp_path))
    assert text.endswith(f"\n## Seconds per role: no run history record\n")
    page = fleet_report.render_html(fleet, fleet_report.load_history(tmp_path / "gone"))
    assert (
        "<h2>Seconds per role: no run history record</h2>" in page
        and "roles" not in page.split("<h2>Decode rate over")[0]
    )
    assert f"<li>no run history in {tmp_path / 'gone'}</li>" in page


def test_history_svg_series_points_and_titles(tmp_path: Path) -> None:
    fleet = fleet_of(*sandbox_nodes())
    history = fleet_report.load_history(write_history(tmp_path / "h", *sandbox_history()))
    svg = fleet_report.render_history_svg(fleet_report.chart_runs(fleet, history))
    runs = ["2026-11-30T11:01:02Z", "2026-11-30T13:01:02Z", "2026-11-30T14:01:02Z"]
    assert series(svg) == {
        ("xpulab-node1", "cpu"): runs,
        ("xpulab-node1", "xpu:0"): runs[:2],
        ("xpulab-node2", "cpu"): runs,
        ("xpulab-node2", "xpu:0"): runs[1:2],
    }
    assert svg.count(f'stroke="{fleet_report.FAIL_COLOUR}"') == 1  # node2 failed in the first run
    assert "<title>decode fps per node and device over the last 3 runs</title>" in svg
    assert 'role="group" aria-label="decode fps per node and device over the last 3 runs"' in svg
    assert (
        'data-device="xpu:0" role="group" aria-label="xpulab-node1 xpu:0"><title>xpulab-node1 xpu:0</title>'
        in svg
    )
    assert "<title>xpulab-node2 cpu, run 2026-11-30T11:01:02Z: 2480 fps (node failed)</title>" in svg
    assert ">11-30 11:01<" in svg and ">11-30 14:01<" in svg and ">xpulab-node1 xpu:0<" in svg
    # y: 0 fps at the x axis (y 260), ticks to 3000 over 240 px: 2600 fps at y 52, 1700 at 124.
    points = re.findall(r'data-run="([^"]*)" cx="([^"]*)" cy="([^"]*)"', svg)
    assert points[0] == ("2026-11-30T11:01:02Z", "90.0", "52.0")  # xpulab-node1 cpu
    assert points[3] == ("2026-11-30T11:01:02Z", "90.0", "124.0")  # xpulab-node1 xpu:0
    assert sorted({float(x) for _r, x, _y in points}) == [90.0, 160.0, 230.0]


def test_history_svg_escapes_and_empty() -> None:
    evil = '<script>alert("x")</script>&'
    svg = fleet_report.render_history_svg([(evil, {(evil, "cpu"): (10.0, False)})])
    assert "<script" not in svg and 'data-node="&lt;script&gt;' in svg
    empty = fleet_report.render_history_svg([("this run", {})])
    assert "no decode results" in empty and "<g class" not in empty


def test_history_output_is_deterministic(tmp_path: Path) -> None:
    reports = write_nodes(tmp_path / "in", two_xpu_node(), *sandbox_nodes())
    history = write_history(tmp_path / "h", *sandbox_history())
    pages = []
    for run in ("a", "b"):
        page = tmp_path / run / "f.html"
        assert (
            fleet_report.main(
                ["--reports-dir", str(reports), "--history-dir", str(history), "--html", str(page)]
            )
            == 1
        )
        pages.append(page.read_bytes())
    assert pages[0] == pages[1]
    assert b'<table class="roles">' in pages[0]


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_history_runs_must_be_positive(
    value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fleet_report.main(["--reports-dir", str(tmp_path), "--history-runs", value]) == 2
    assert "not a positive integer" in capsys.readouterr().err


def test_node_summaries_from_stdin_are_written_then_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """What the localhost play passes: every reporting node's summary in one JSON object on stdin."""
    nodes = sandbox_nodes()
    reports = tmp_path / "nodes"
    reports.mkdir()
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({n["node"]: n for n in nodes})))
    assert fleet_report.main(["--reports-dir", str(reports), "--node-summaries", "-"]) == 0
    assert capsys.readouterr().out == SANDBOX_MARKDOWN
    assert sorted(p.name for p in reports.iterdir()) == ["xpulab-node1.json", "xpulab-node2.json"]
    assert json.loads((reports / "xpulab-node1.json").read_text()) == nodes[0]
    # The same files the per-node copy wrote (to_nice_json, sorted keys).
    assert (reports / "xpulab-node1.json").read_text() == json.dumps(nodes[0], indent=4, sort_keys=True) + "\n"


@pytest.mark.parametrize(("text", "message"), [
    ('{"../x": {}}', "not a node name"),
    ('{"a-good-one": {}, "b/../bad": {}}', "not a node name"),
    ('{".hidden": {}}', "not a node name"),
    ('["n1"]', "must be a JSON object"),
    ('{"n1": 3}', "must be a JSON object"),
    ("{", "cannot read the node summaries"),
])
def test_bad_node_summaries_write_nothing(tmp_path: Path, text: str, message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "summaries.json"
    source.write_text(text)
    reports = tmp_path / "nodes"
    reports.mkdir()
    assert fleet_report.main(["--reports-dir", str(reports), "--node-summaries", str(source)]) == 2
    assert message in capsys.readouterr().err
    assert list(reports.iterdir()) == []


def test_no_report_only_writes_the_summaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """node.yml's call: the summaries are written, no report is built, and a failing node does not fail it."""
    failing = node_file("n1", None)
    reports = tmp_path / "nodes"
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"n1": failing})))
    assert fleet_report.main(["--reports-dir", str(reports), "--node-summaries", "-", "--no-report"]) == 0
    assert capsys.readouterr().out == ""
    assert json.loads((reports / "n1.json").read_text()) == failing
