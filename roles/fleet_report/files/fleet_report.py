"""Fleet report: one Markdown and one HTML page from the per-node JSON files.

Each file in --reports-dir is named <inventory_hostname>.json and holds what
an Ansible play gathered on that node: {"node", "gpus", "ffmpeg", "torch",
"torchcodec", "smoke", "test_suite"}, where "smoke" is the JSON report of
roles/decode_smoke/files/xpulab_decode_smoke.py (or null).

A node passes when its smoke report says "passed" and every device it found
passed every clip. Exit codes: 0 every node passed, 1 a node failed or has no
smoke report, 2 bad input (missing directory, invalid JSON, wrong types).

With --history-dir (the run history records of the xpulab_history callback,
<id>.json, schema 1), the report also charts decode fps per node and device
over the last --history-runs runs and tables the newest record's seconds per
role per node. The newest record is taken to be this run (the callback writes
it, "running", when the report play starts): its fps come from the node
reports. Files that cannot be read or have another schema are left out with
a note; history never changes the exit code.

The output depends only on the inputs (sorted nodes, cpu then xpu:N columns,
no clock): the same files give byte-identical reports. Standard library only.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

Json = dict[str, Any]

DEFAULT_TITLE = "xpulab fleet report"
DEVICE_RE = re.compile(r"^([a-z_]+)(?::(\d+))?$")
FAMILY_LABELS = {
    "alchemist": "Arc A-series",
    "battlemage": "Arc B-series",
    "flex": "Data Center GPU Flex",
    "max": "Data Center GPU Max",
    "integrated": "Intel integrated",
    "unknown-intel": "Intel",
}
# Cell texts (the Markdown shows them as they are; HTML colours them).
PASS, FAIL, ABSENT, NONE = "pass", "FAIL", "absent", "-"
# Bar colours by device column (cpu first); red is kept for failures.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#76b7b2", "#edc948", "#b07aa1", "#9c755f", "#bab0ac")
FAIL_COLOUR = "#d62728"
HISTORY_SCHEMA = 1
NO_ROLE = "(none)"  # the record's key for tasks outside roles
DEFAULT_HISTORY_RUNS = 20


class InputError(Exception):
    """Bad input: exit code 2."""


@dataclass(frozen=True)
class Run:
    """One run history record: per host, seconds per role, fps per device, smoke status."""

    id: str
    started: str
    result: str
    roles: dict[str, dict[str, float]]
    fps: dict[str, dict[str, float]]
    smoke: dict[str, str | None]


@dataclass(frozen=True)
class History:
    runs: list[Run]  # oldest first; the newest is this run
    notes: list[str]  # files left out, and why
    limit: int = DEFAULT_HISTORY_RUNS  # runs in the chart, this one included


@dataclass(frozen=True)
class DeviceResult:
    """One node's outcome on one device: PASS, FAIL, ABSENT or NONE (not tested)."""

    status: str
    fps: float | None = None
    required: bool = False

    @property
    def present(self) -> bool:
        return self.status in (PASS, FAIL)

    def cell(self) -> str:
        if self.status == PASS and self.fps is not None:
            return f"{PASS} {self.fps:.0f} fps"
        if self.status == ABSENT and self.required:
            return f"{ABSENT} (required)"
        return self.status


@dataclass(frozen=True)
class Failure:
    node: str
    clip: str
    device: str
    reason: str


@dataclass
class Node:
    name: str
    data: Json
    smoke: Json | None
    devices: dict[str, DeviceResult] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class Fleet:
    title: str
    nodes: list[Node]
    devices: list[str]  # table columns: cpu, then xpu:N numerically

    @property
    def passed(self) -> bool:
        return all(node.passed for node in self.nodes)


# Input ---------------------------------------------------------------


def _check(value: Any, kind: type, where: str, optional: bool = False) -> None:
    """Raise InputError unless value is of kind (or null, when optional)."""
    if not (isinstance(value, kind) or (optional and value is None)):
        raise InputError(f"{where} must be {kind.__name__}, not {type(value).__name__}")


def validate(data: Any, source: str) -> None:
    """Check the types the report relies on; raise InputError naming the file and key."""
    _check(data, dict, f"{source}: the top level")
    _check(data.get("node"), str, f"{source}: node", optional=True)
    _check(data.get("gpus"), list, f"{source}: gpus", optional=True)
    for i, gpu in enumerate(data.get("gpus") or []):
        _check(gpu, dict, f"{source}: gpus[{i}]")
    for key in ("ffmpeg", "torch", "torchcodec", "smoke", "test_suite"):
        _check(data.get(key), dict, f"{source}: {key}", optional=True)
    smoke = data.get("smoke") or {}
    _check(smoke.get("devices"), list, f"{source}: smoke.devices", optional=True)
    for i, device in enumerate(smoke.get("devices") or []):
        _check(device, dict, f"{source}: smoke.devices[{i}]")
        _check(device.get("device"), str, f"{source}: smoke.devices[{i}].device")
    _check(smoke.get("clips"), list, f"{source}: smoke.clips", optional=True)
    for i, clip in enumerate(smoke.get("clips") or []):
        _check(clip, dict, f"{source}: smoke.clips[{i}]")
        _check(clip.get("results"), dict, f"{source}: smoke.clips[{i}].results", optional=True)
        for device, result in (clip.get("results") or {}).items():
            _check(result, dict, f"{source}: smoke.clips[{i}].results.{device}")


def load_reports(directory: Path) -> list[tuple[str, Json]]:
    """(node name, data) of every *.json in directory, sorted by node name."""
    if not directory.is_dir():
        raise InputError(f"reports directory {directory} does not exist")
    reports = []
    for path in sorted(directory.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"{path.name}: invalid JSON: {exc}") from exc
        validate(data, path.name)
        reports.append((str(data.get("node") or path.stem), data))
    if not reports:
        raise InputError(f"no *.json node reports in {directory}")
    return sorted(reports, key=lambda item: item[0])


def _numbers(value: Any, where: str) -> dict[str, float]:
    """A {name: seconds or fps} mapping; nulls are dropped."""
    _check(value, dict, where)
    for key, item in value.items():
        if item is not None and (isinstance(item, bool) or not isinstance(item, (int, float))):
            raise InputError(f"{where}.{key} must be a number, not {type(item).__name__}")
    return {str(k): float(v) for k, v in value.items() if v is not None}


def parse_record(data: Any, source: str) -> Run:
    """A history record (schema 1) as a Run; InputError when it is not one."""
    _check(data, dict, f"{source}: the top level")
    if data.get("schema") != HISTORY_SCHEMA:
        raise InputError(f"{source}: schema {data.get('schema')!r}, not {HISTORY_SCHEMA}")
    _check(data.get("hosts"), dict, f"{source}: hosts")
    roles: dict[str, dict[str, float]] = {}
    fps: dict[str, dict[str, float]] = {}
    smoke: dict[str, str | None] = {}
    for host, entry in data["hosts"].items():
        _check(entry, dict, f"{source}: hosts.{host}")
        roles[host] = _numbers(entry.get("roles") or {}, f"{source}: hosts.{host}.roles")
        fps[host] = _numbers(entry.get("fps") or {}, f"{source}: hosts.{host}.fps")
        smoke[host] = entry.get("smoke") if isinstance(entry.get("smoke"), str) else None
    run_id, started, result = data.get("id"), data.get("started"), data.get("result")
    run_id = run_id if isinstance(run_id, str) else Path(source).stem
    return Run(
        run_id, started if isinstance(started, str) else "", str(result or "unknown"), roles, fps, smoke
    )


def load_history(directory: Path, limit: int = DEFAULT_HISTORY_RUNS) -> History:
    """The schema-1 records in directory, oldest first (names sort by time); never raises."""
    if not directory.is_dir():
        return History([], [f"no run history in {directory}"], limit)
    runs: list[Run] = []
    notes: list[str] = []
    for path in sorted(directory.glob("*.json")):
        if path.name.startswith("."):  # a record being written
            continue
        try:
            runs.append(parse_record(json.loads(path.read_text(encoding="utf-8")), path.name))
        except InputError as exc:
            notes.append(f"history record left out: {exc}")
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            notes.append(f"history record left out: {path.name}: unreadable: {exc}")
    return History(runs, notes, limit)


# Analysis ------------------------------------------------------------


def device_key(device: str) -> tuple[int, str, int, str]:
    """Sort key: cpu first, then each kind (xpu, ...) by index, then anything else."""
    match = DEVICE_RE.match(device)
    if match is None:
        return (2, "", 0, device)
    kind, index = match.group(1), match.group(2)
    return (0 if kind == "cpu" else 1, kind, -1 if index is None else int(index), device)


def _failed_checks(result: Json) -> str:
    """Why a clip failed on a device: the error, else the failed checks with their numbers."""
    if result.get("error"):
        return str(result["error"])
    problems = []
    for name, check in sorted((result.get("checks") or {}).items()):
        if not isinstance(check, dict) or check.get("passed", True):
            continue
        text = name
        if check.get("error"):
            text += f" ({check['error']})"
        elif check.get("psnr_db") is not None:
            text += f" (PSNR {check['psnr_db']} dB < {check.get('threshold_db')} dB"
            text += f", max diff {check.get('max_abs_diff')})"
        elif check.get("max_abs_diff") is not None:
            text += f" (max diff {check['max_abs_diff']})"
        problems.append(text)
    return "failed checks: " + ", ".join(problems) if problems else f"status {result.get('status')}"


def analyse(name: str, data: Json) -> Node:
    """Per-device outcome and failures of one node."""
    smoke = data.get("smoke")
    node = Node(name=name, data=data, smoke=smoke)
    if smoke is None:
        node.failures.append(Failure(name, NONE, NONE, str(data.get("error") or "no smoke report")))
        return node
    clips: list[Json] = smoke.get("clips") or []
    entries = {d["device"]: d for d in smoke.get("devices") or []}
    names = set(entries) | {device for clip in clips for device in clip.get("results") or {}}
    for device in sorted(names, key=device_key):
        entry = entries.get(device, {})
        results = [(str(c.get("name")), (c.get("results") or {}).get(device)) for c in clips]
        statuses = [r.get("status") if r else None for _name, r in results]
        first = results[0][1] if results else None
        fps = first.get("fps") if first else None
        required = bool(entry.get("required"))
        if entry.get("status") == "absent" or (statuses and all(s == "absent" for s in statuses)):
            node.devices[device] = DeviceResult(ABSENT, required=required)
            if required:
                node.failures.append(Failure(name, NONE, device, "required device absent"))
            continue
        passed = bool(statuses) and all(s == "passed" for s in statuses)
        passed = passed and entry.get("status", "passed") == "passed"
        node.devices[device] = DeviceResult(
            PASS if passed else FAIL, fps if isinstance(fps, (int, float)) else None
        )
        if passed:
            continue
        reasons = [
            (clip, _failed_checks(r) if r else "no result")
            for clip, r in results
            if not r or r.get("status") != "passed"
        ]
        reasons = reasons or [(NONE, "no clips decoded" if not clips else f"status {entry.get('status')}")]
        node.failures += [Failure(name, clip, device, reason) for clip, reason in reasons]
    if smoke.get("status") != "passed" and not node.failures:
        reason = f"smoke status {smoke.get('status')}"
        if smoke.get("error"):
            reason += f": {smoke['error']}"
        node.failures.append(Failure(name, NONE, NONE, reason))
    return node


def build_fleet(reports: list[tuple[str, Json]], title: str = DEFAULT_TITLE) -> Fleet:
    nodes = [analyse(name, data) for name, data in reports]
    devices = sorted({d for node in nodes for d in node.devices}, key=device_key)
    return Fleet(title=title, nodes=nodes, devices=devices)


def newest_timestamp(fleet: Fleet) -> str | None:
    """The newest smoke-report timestamp as written (ISO 8601), or None."""
    stamps = []
    for node in fleet.nodes:
        text = (node.smoke or {}).get("timestamp")
        if isinstance(text, str):
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                continue
            if when.tzinfo is None:  # naive: read as UTC, not as this machine's zone
                when = when.replace(tzinfo=timezone.utc)
            stamps.append((when.timestamp(), text))
    return max(stamps)[1] if stamps else None


def first_clips(fleet: Fleet) -> list[str]:
    """Distinct names of each node's first clip (the clip the fps figures come from)."""
    clips = [(node.smoke or {}).get("clips") for node in fleet.nodes]
    return sorted({str(c[0].get("name")) for c in clips if c and c[0].get("name") is not None})


# (label, {(node, device): (fps, node failed)}) per run in the history chart.
Point = tuple[float, bool]
ChartRun = tuple[str, dict[tuple[str, str], Point]]


def chart_runs(fleet: Fleet, history: History) -> list[ChartRun]:
    """The last history.limit runs with fps, oldest first; the last one is this run (the node reports)."""
    current: dict[tuple[str, str], Point] = {
        (node.name, device): (result.fps, not node.passed)
        for node in fleet.nodes
        for device, result in node.devices.items()
        if result.present and result.fps is not None
    }
    *earlier, newest = history.runs or [Run("", "this run", "", {}, {}, {})]
    runs: list[ChartRun] = []
    for run in earlier:  # runs that did not decode (check-only, failed early) are left out
        points = {(host, device): (fps, run.smoke.get(host) not in (None, "passed"))
                  for host, devices in run.fps.items() for device, fps in devices.items()}  # fmt: skip
        runs += [(run.started or run.id, points)] if points else []
    keep = runs[len(runs) - history.limit + 1 :] if history.limit > 1 else []
    return [*keep, (newest.started or newest.id, current)]


def seconds(value: float) -> str:
    return f"{value:.1f}"


def roles_table(run: Run, nodes: set[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows of seconds per role per node (of nodes, when given: the controller's
    own localhost plays are left out), a total column and a total row."""
    hosts = sorted(host for host in run.roles if nodes is None or host in nodes)
    roles = list(dict.fromkeys(role for host in hosts for role in run.roles[host]))
    roles.sort(key=lambda role: role == NO_ROLE)  # stable: tasks outside roles last
    rows = [
        [host, *(seconds(run.roles[host][r]) if r in run.roles[host] else NONE for r in roles),
         seconds(sum(run.roles[host].values()))]
        for host in hosts
    ]  # fmt: skip
    sums = [sum(run.roles[host].get(role, 0.0) for host in hosts) for role in roles]
    rows.append(["total", *(seconds(total) for total in sums), seconds(sum(sums))])
    return ["node", *roles, "total"], rows


def roles_heading(history: History) -> str:
    if not history.runs:
        return "Seconds per role: no run history record"
    run = history.runs[-1]
    return f"Seconds per role, run {run.id} ({run.result})"


HISTORY_NOTE = (
    "fps of each node's first clip per run (the rightmost: this run), from the run history records; "
    "runs without decode results are left out; a red ring: the node failed its smoke test in that run."
)
ROLES_NOTE = (
    "Seconds of each role's tasks on each node, from the newest run history record "
    f"(this run; while it is running, up to the report). {NO_ROLE}: tasks outside roles."
)


# Table cells ---------------------------------------------------------


def gpus_cell(gpus: list[Json]) -> str:
    items = []
    for gpu in gpus:
        family = gpu.get("family")
        label = FAMILY_LABELS.get(str(family))
        name = f"{label} ({family})" if label else str(family or gpu.get("vendor") or "GPU")
        text = f"{name} {gpu.get('pci_address') or '?'} {gpu.get('driver') or 'no driver'}"
        if gpu.get("has_media") is False:
            text += " (no media)"
        items.append(text)
    return "; ".join(items) or "none"


def ffmpeg_cell(ffmpeg: Json | None) -> str:
    if not ffmpeg:
        return NONE
    fingerprint = ffmpeg.get("fingerprint")
    return f"{ffmpeg.get('version')}" + (f" ({fingerprint})" if fingerprint else "")


def torch_cell(torch: Json | None) -> str:
    if not torch:
        return NONE
    text = str(torch.get("version"))
    count = torch.get("xpu_device_count") or 0
    if torch.get("xpu_available"):
        text += " xpu" + (f" x{count}" if isinstance(count, int) and count > 1 else "")
    return text


def torchcodec_cell(torchcodec: Json | None) -> str:
    if not torchcodec:
        return NONE
    parts = [torchcodec.get("method"), torchcodec.get("version")]
    commit = torchcodec.get("commit")
    parts.append(str(commit)[:12] if commit else None)
    plugin = torchcodec.get("xpu_plugin")
    if isinstance(plugin, dict):
        plugin = plugin.get("version")
    parts.append(f"+ torchcodec-xpu {plugin}" if plugin else None)
    return " ".join(str(p) for p in parts if p) or NONE


def suite_cell(suite: Json | None) -> str:
    if not suite:
        return NONE
    return f"{suite.get('passed', 0)} passed, {suite.get('known', 0)} known, {suite.get('new', 0)} new"


def table(fleet: Fleet) -> tuple[list[str], list[list[tuple[str, str]]]]:
    """Header and rows of (text, css class); shared by Markdown and HTML."""
    header = ["node", "GPUs and driver", "FFmpeg", "torch", "TorchCodec", *fleet.devices, "test suite"]
    rows = []
    for node in fleet.nodes:
        d = node.data
        row = [
            (node.name, "pass" if node.passed else "fail"),
            (gpus_cell(d.get("gpus") or []), ""),
            (ffmpeg_cell(d.get("ffmpeg")), ""),
            (torch_cell(d.get("torch")), ""),
            (torchcodec_cell(d.get("torchcodec")), ""),
        ]
        for device in fleet.devices:
            result = node.devices.get(device, DeviceResult(NONE))
            css = {PASS: "pass", FAIL: "fail", ABSENT: "fail" if result.required else "absent"}
            row.append((result.cell(), css.get(result.status, "")))
        row.append((suite_cell(d.get("test_suite")), ""))
        rows.append(row)
    return header, rows


def verdict(fleet: Fleet) -> str:
    passed = sum(node.passed for node in fleet.nodes)
    total = len(fleet.nodes)
    word = "PASS" if fleet.passed else "FAIL"
    detail = f"all {total} nodes passed" if fleet.passed else f"{passed} of {total} nodes passed"
    stamp = newest_timestamp(fleet)
    return f"{word}: {detail} (newest smoke report: {stamp or 'none'})"


def fps_note(fleet: Fleet) -> str:
    clips = ", ".join(first_clips(fleet)) or "none"
    return (
        f"fps: decode rate of the first clip of each node's smoke report ({clips}), not a mean. "
        "A device passes only when it passed every clip; absent: torch did not find it; "
        "-: not tested on that node."
    )


def failure_text(failure: Failure) -> str:
    where = ", ".join(part for part in (failure.node, failure.clip, failure.device) if part != NONE)
    return f"{where}: {failure.reason}"


# Markdown ------------------------------------------------------------


def md_escape(text: str) -> str:
    """Keep a table cell one cell: escape pipes and backslashes, flatten newlines."""
    return " ".join(text.replace("\\", "\\\\").replace("|", "\\|").split())


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(md_escape(cell) for cell in row) + " |" for row in rows]


def render_markdown(fleet: Fleet, history: History | None = None) -> str:
    header, rows = table(fleet)
    lines = [f"# {md_escape(fleet.title)}", "", f"**{md_escape(verdict(fleet))}**", ""]
    lines += markdown_table(header, [[text for text, _cls in row] for row in rows])
    lines += ["", md_escape(fps_note(fleet)), "", "## Failures", ""]
    failures = [f for node in fleet.nodes for f in node.failures]
    lines += [f"- {md_escape(failure_text(f))}" for f in failures] or ["None."]
    if history is not None:
        lines += ["", f"## {md_escape(roles_heading(history))}"]
        if history.runs:
            lines += ["", *markdown_table(*roles_table(history.runs[-1], {n.name for n in fleet.nodes})), "", md_escape(ROLES_NOTE)]
        lines += ["", *(f"- {md_escape(note)}" for note in history.notes)] if history.notes else []
    return "\n".join(lines) + "\n"


# HTML and SVG --------------------------------------------------------


def esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def nice_ticks(maximum: float) -> list[float]:
    """Axis ticks from 0 to a round number >= maximum, in at most six steps of 1, 2, 2.5 or 5 x 10^n."""
    if not maximum > 0:
        return [0.0, 1.0]
    raw = maximum / 6
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    count = math.ceil(maximum / step - 1e-9)
    return [round(i * step, 6) for i in range(count + 1)]


def number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:g}"


def _text(x: float, y: float, content: str, anchor: str = "start", extra: str = "") -> str:
    """An escaped SVG text element; extra holds further (trusted) attributes."""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(content)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, colour: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}"/>'


def render_svg(fleet: Fleet) -> str:
    """Grouped bar chart: one group per node, one bar per device present on that node.

    A device that failed gets a red outline and a red value; a bar without an
    fps figure (the decode raised) is drawn with height 0 and labelled n/a.
    Colours are attributes, not CSS, so the SVG also renders on its own.
    """
    devices = [
        d for d in fleet.devices if any(n.devices.get(d, DeviceResult(NONE)).present for n in fleet.nodes)
    ]
    colours = {d: PALETTE[i % len(PALETTE)] for i, d in enumerate(devices)}
    bar_w, gap, plot_h = 34.0, 30.0, 240.0
    left, top, bottom, right = 70.0, 50.0, 90.0, 20.0
    group_w = max(len(devices), 1) * bar_w + gap
    width = max(left + len(fleet.nodes) * group_w + right, 360.0)
    height = top + plot_h + bottom
    base, mid, centre = top + plot_h, top + plot_h / 2, (left + width - right) / 2
    values = [r.fps for n in fleet.nodes for r in n.devices.values() if r.present and r.fps]
    ticks = nice_ticks(max(values, default=0.0))
    scale = plot_h / ticks[-1]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="11" role="img" '
        'aria-label="decode fps per node and device">'
    ]
    for tick in ticks:
        y = base - tick * scale
        out += [_line(left, y, width - right, y, "#ddd"), _text(left - 6, y + 4, number(tick), "end")]
    out += [_line(left, top, left, base, "#333"), _line(left, base, width - right, base, "#333")]
    out.append(_text(16, mid, "decode fps", "middle", f' transform="rotate(-90 16 {mid:.1f})"'))
    out.append(_text(centre, height - 8, "node", "middle"))
    if not values:
        out.append(_text(centre, mid, "no decode results", "middle"))
    for g, node in enumerate(fleet.nodes):
        x0 = left + g * group_w + gap / 2
        for i, device in enumerate(devices):
            result = node.devices.get(device, DeviceResult(NONE))
            if not result.present:
                continue
            h = (result.fps or 0.0) * scale
            x, y = x0 + i * bar_w + 2, base - h
            label = "n/a" if result.fps is None else number(result.fps)
            failed = result.status == FAIL
            stroke = f' stroke="{FAIL_COLOUR}" stroke-width="2"' if failed else ""
            out.append(
                f'<rect class="bar" data-node="{esc(node.name)}" data-device="{esc(device)}" '
                f'x="{x:.1f}" y="{y:.1f}" width="{bar_w - 4:.1f}" height="{h:.1f}" fill="{colours[device]}"'
                f"{stroke}><title>{esc(f'{node.name} {device}: {label} fps {result.status}')}</title></rect>"
            )
            value_fill = f' fill="{FAIL_COLOUR}"' if failed else ""
            out.append(_text(x + (bar_w - 4) / 2, y - 4, label, "middle", f' font-size="10"{value_fill}'))
        cx, cy = x0 + (group_w - gap) / 2, base + 16
        out.append(_text(cx, cy, node.name, "end", f' transform="rotate(-30 {cx:.1f} {cy:.1f})"'))
    legend_x = left
    for device in devices:
        out.append(f'<rect x="{legend_x:.1f}" y="14" width="12" height="12" fill="{colours[device]}"/>')
        out.append(_text(legend_x + 16, 24, device))
        legend_x += 24 + 8 * len(device)
    out.append(
        f'<rect x="{legend_x:.1f}" y="14" width="12" height="12" fill="none" '
        f'stroke="{FAIL_COLOUR}" stroke-width="2"/>'
    )
    out += [_text(legend_x + 16, 24, "failed"), "</svg>"]
    return "\n".join(out)


def short_stamp(label: str) -> str:
    """An axis label: "11-30 15:01" from an ISO 8601 UTC start time, else the label as it is."""
    match = re.match(r"^\d{4}-(\d\d-\d\d)T(\d\d:\d\d)", label)
    return f"{match.group(1)} {match.group(2)}" if match else label


def render_history_svg(runs: list[ChartRun]) -> str:
    """Line chart: one series (a <g class="series">) per node and device, one point per run it has fps in.

    Runs are x positions, oldest left; a point whose node failed its smoke test
    in that run has a red ring. For assistive technology the chart, each series
    and each point are labelled (a <title>: node, device, run, fps).
    """
    series = sorted(
        {key for _label, points in runs for key in points}, key=lambda k: (k[0], device_key(k[1]))
    )
    step, plot_h, left, top, bottom = 70.0, 240.0, 70.0, 20.0, 80.0
    legend_x = left + max(len(runs) - 1, 1) * step + 50
    width = legend_x + 40 + 7 * max((len(f"{n} {d}") for n, d in series), default=8)
    height = top + max(plot_h + bottom, 16.0 * len(series) + 20)
    base, mid = top + plot_h, top + plot_h / 2
    ticks = nice_ticks(max((fps for _l, points in runs for fps, _f in points.values()), default=0.0))
    scale = plot_h / ticks[-1]
    title = f"decode fps per node and device over the last {len(runs)} runs"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart history" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="11" role="group" '
        f'aria-label="{esc(title)}">',
        f"<title>{esc(title)}</title>",
    ]
    for tick in ticks:
        y = base - tick * scale
        out += [_line(left, y, legend_x - 30, y, "#ddd"), _text(left - 6, y + 4, number(tick), "end")]
    out += [_line(left, top, left, base, "#333"), _line(left, base, legend_x - 30, base, "#333")]
    out.append(_text(16, mid, "decode fps", "middle", f' transform="rotate(-90 16 {mid:.1f})"'))
    xs = [left + 20 + i * step for i in range(len(runs))]
    for x, (label, _points) in zip(xs, runs):
        rotate = f' transform="rotate(-30 {x:.1f} {base + 14:.1f})"'
        out.append(_text(x, base + 14, short_stamp(label), "end", rotate))
    out.append(_text((left + legend_x - 30) / 2, height - 8, "run (UTC start)", "middle"))
    if not series:
        out.append(_text((left + legend_x - 30) / 2, mid, "no decode results", "middle"))
    for s, (node, device) in enumerate(series):
        colour, name = PALETTE[s % len(PALETTE)], f"{node} {device}"
        dash = "" if device == "cpu" else ' stroke-dasharray="6 3"'
        points = [
            (x, label, pts[(node, device)]) for x, (label, pts) in zip(xs, runs) if (node, device) in pts
        ]
        coords = " ".join(f"{x:.1f},{base - fps * scale:.1f}" for x, _l, (fps, _f) in points)
        out.append(
            f'<g class="series" data-node="{esc(node)}" data-device="{esc(device)}" role="group" '
            f'aria-label="{esc(name)}"><title>{esc(name)}</title>'
            f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>'
        )
        for x, label, (fps, failed) in points:
            ring = f' stroke="{FAIL_COLOUR}" stroke-width="2"' if failed else ""
            text = f"{name}, run {label}: {number(fps)} fps" + (" (node failed)" if failed else "")
            out.append(
                f'<circle class="point" data-run="{esc(label)}" cx="{x:.1f}" cy="{base - fps * scale:.1f}" '
                f'r="4" fill="{colour}"{ring} role="img"><title>{esc(text)}</title></circle>'
            )
        y = top + 16 * s + 6
        out += [
            f'<line x1="{legend_x:.1f}" y1="{y:.1f}" x2="{legend_x + 24:.1f}" y2="{y:.1f}" stroke="{colour}" '
            f'stroke-width="2"{dash}/>',
            _text(legend_x + 30, y + 4, name),
            "</g>",
        ]
    out.append("</svg>")
    return "\n".join(out)


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; }
td.pass { background: #e3f4e3; }
td.fail { background: #fbe0e0; font-weight: bold; }
td.absent { color: #777; }
p.verdict { font-size: 1.2em; font-weight: bold; }
p.verdict.pass { color: #1a7f1a; }
p.verdict.fail { color: #b00020; }
.note { color: #555; font-size: 0.9em; }
""".strip()


def render_history_html(fleet: Fleet, history: History) -> list[str]:
    runs = chart_runs(fleet, history)
    out = [
        "<h2>Decode rate over the last runs</h2>",
        render_history_svg(runs),
        f'<p class="note">{esc(HISTORY_NOTE)}</p>',
        f"<h2>{esc(roles_heading(history))}</h2>",
    ]
    if history.runs:
        header, rows = roles_table(history.runs[-1], {n.name for n in fleet.nodes})
        out += ['<table class="roles">', "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"]
        for row in rows:
            cells = "".join(
                f"<td>{esc(cell)}</td>" if i else f"<th>{esc(cell)}</th>" for i, cell in enumerate(row)
            )
            out.append(f"<tr>{cells}</tr>")
        out += ["</table>", f'<p class="note">{esc(ROLES_NOTE)}</p>']
    if history.notes:
        out += ['<ul class="note">', *(f"<li>{esc(note)}</li>" for note in history.notes), "</ul>"]
    return out


def render_html(fleet: Fleet, history: History | None = None) -> str:
    header, rows = table(fleet)
    css = "pass" if fleet.passed else "fail"
    out = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{esc(fleet.title)}</title>",
        f"<style>\n{CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{esc(fleet.title)}</h1>",
        f'<p class="verdict {css}">{esc(verdict(fleet))}</p>',
        "<table>",
        "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>",
    ]
    for row in rows:
        cells = "".join(f'<td class="{c}">{esc(t)}</td>' if c else f"<td>{esc(t)}</td>" for t, c in row)
        out.append(f"<tr>{cells}</tr>")
    out += ["</table>", f'<p class="note">{esc(fps_note(fleet))}</p>', "<h2>Failures</h2>"]
    failures = [f for node in fleet.nodes for f in node.failures]
    if failures:
        out += ["<ul>", *(f"<li>{esc(failure_text(f))}</li>" for f in failures), "</ul>"]
    else:
        out.append("<p>None.</p>")
    out += ["<h2>Decode rate</h2>", render_svg(fleet)]
    out += render_history_html(fleet, history) if history is not None else []
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"


# Command line --------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleet_report",
        description="Markdown and HTML fleet report from per-node JSON files.",
        epilog="Exit codes: 0 every node passed, 1 a node failed or has no smoke report, 2 bad input.",
    )
    parser.add_argument("--reports-dir", required=True, type=Path, metavar="DIR", help="<node>.json files")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="Markdown report to write")
    parser.add_argument("--html", type=Path, metavar="FILE", help="HTML report to write")
    parser.add_argument("--title", default=DEFAULT_TITLE, help=f"report title (default: {DEFAULT_TITLE})")
    parser.add_argument("--history-dir", type=Path, metavar="DIR", help="run history records (<id>.json)")
    parser.add_argument("--node-summaries", metavar="FILE",
                        help="JSON object node -> summary ('-': standard input) to write as <node>.json first")
    parser.add_argument("--no-report", action="store_true",
                        help="only write the --node-summaries (no report, exit 0)")
    parser.add_argument(
        "--history-runs",
        type=positive,
        default=DEFAULT_HISTORY_RUNS,
        metavar="N",
        help="runs in the fps chart",
    )
    return parser


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a positive integer: {text!r}")
    return int(text)


def write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc}") from exc


NODE_NAME = re.compile(r"^[A-Za-z0-9_.:-]+$")


def write_node_summaries(source: str, directory: Path) -> None:
    """Write each node's summary of this run as <node>.json (one call for the whole fleet)."""
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        summaries = json.loads(text)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the node summaries from {source}: {exc}") from exc
    if not isinstance(summaries, dict) or not all(isinstance(v, dict) for v in summaries.values()):
        raise InputError("the node summaries must be a JSON object of node name -> object")
    for node in summaries:
        if not NODE_NAME.match(node) or node.startswith("."):
            raise InputError(f"not a node name: {node!r}")
    for node, summary in sorted(summaries.items()):
        target = directory / f"{node}.json"
        write(target.with_name(f".{node}.json.tmp"), json.dumps(summary, indent=4, sort_keys=True) + "\n")
        target.with_name(f".{node}.json.tmp").replace(target)


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 for --help
        return int(exc.code or 0)
    try:
        if args.node_summaries:
            write_node_summaries(args.node_summaries, args.reports_dir)
        if args.no_report:
            return 0
        fleet = build_fleet(load_reports(args.reports_dir), args.title)
        history = load_history(args.history_dir, args.history_runs) if args.history_dir else None
        markdown = render_markdown(fleet, history)
        if args.markdown:
            write(args.markdown, markdown)
        if args.html:
            write(args.html, render_html(fleet, history))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(markdown)
    return 0 if fleet.passed else 1


if __name__ == "__main__":
    sys.exit(main())
