"""Scheduled health check of an xpulab decode node (the node_health role's timer runs it).

Runs the cheap driver checks (each media GPU of the GPU inventory in the local
facts has its render node, ``vainfo`` opens it, the running user is in its GPU
groups) and the decode smoke test, then writes Prometheus metrics for
node_exporter's textfile collector, atomically (temp file + rename in the
metrics file's directory). The last success of each device is kept in a state
file across runs, so a failing run keeps it. Only the standard library.

Exit codes: 0 every check passed, 1 a check failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import grp
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

Json = dict[str, Any]
Metric = tuple[str, str, list[tuple[dict[str, str], float]]]  # name, help, samples
FACTS = ("xpulab_intel_gpu", "xpulab_ffmpeg", "xpulab_pytorch", "xpulab_torchcodec")
PREFIX = "xpulab_health_"


def read_facts(facts_dir: Path) -> dict[str, Json]:
    """The xpulab roles' local facts; a missing or broken one is empty."""
    facts: dict[str, Json] = {}
    for name in FACTS:
        try:
            data = json.loads((facts_dir / f"{name}.fact").read_text())
        except (OSError, ValueError):
            data = {}
        facts[name] = data if isinstance(data, dict) else {}
    return facts


def media_render_nodes(facts: dict[str, Json]) -> list[str]:
    gpus = facts["xpulab_intel_gpu"].get("gpus") or []
    return [g["render_node"] for g in gpus if g.get("has_media") is True and g.get("render_node")]


def on_root(node: str, dev_root: Path) -> Path:
    """/dev/dri/renderD128 under another /dev root (tests use fake trees)."""
    return dev_root / node.removeprefix("/dev/")


def vainfo_ok(vainfo: str, node: Path, timeout: float) -> bool:
    try:
        argv = [vainfo, "--display", "drm", "--device", str(node)]
        return subprocess.run(argv, capture_output=True, timeout=timeout, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def in_group(user: pwd.struct_passwd, group: str) -> bool:
    """Membership as the account database says (what a new login gets)."""
    try:
        entry = grp.getgrnam(group)
    except KeyError:
        return False
    return user.pw_name in entry.gr_mem or user.pw_gid == entry.gr_gid


def run_decode(argv: list[str], report: Path, home: str, timeout: float) -> tuple[Json | None, str]:
    """Run the smoke CLI (``report`` sub-command) writing ``report``; (report, error)."""
    report.unlink(missing_ok=True)  # a stale report must not pass for this run's
    env = dict(os.environ, HOME=home, XDG_CACHE_HOME=f"{home}/.cache")
    try:
        done = subprocess.run(
            [*argv, "--output", str(report)], capture_output=True, text=True, timeout=timeout, env=env, cwd=home,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, str(exc)
    tail = (done.stderr.strip().splitlines() or [""])[-1]
    if done.returncode not in (0, 1):
        return None, f"exit {done.returncode}: {tail}"
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        return None, f"exit {done.returncode} without a report: {tail}"
    return (data, "") if isinstance(data, dict) else (None, "report is not a JSON object")


def device_results(report: Json | None, known: list[str]) -> tuple[dict[str, bool], dict[tuple[str, str], float]]:
    """Pass/fail per device (absent and not required: left out) and fps per (device, clip).
    Without a report every known device (cpu at least) fails."""
    if report is None:
        return dict.fromkeys(sorted({"cpu", *known}), False), {}
    passed: dict[str, bool] = {}
    for dev in report.get("devices") or []:
        if dev.get("status") != "absent" or dev.get("required"):
            passed[str(dev["device"])] = dev.get("status") == "passed"
    fps: dict[tuple[str, str], float] = {}
    for clip in report.get("clips") or []:
        for device, result in (clip.get("results") or {}).items():
            if isinstance(result.get("fps"), (int, float)):
                fps[(device, str(clip.get("name")))] = float(result["fps"])
    return passed, fps


def versions(facts: dict[str, Json], kernel: str) -> dict[str, str]:
    gpu = facts["xpulab_intel_gpu"]
    packages = gpu.get("packages") or {}
    media = packages.get("intel-media-va-driver-non-free") or packages.get("intel-media-va-driver") or ""
    drivers = sorted({str(g["driver"]) for g in gpu.get("gpus") or [] if g.get("has_media") and g.get("driver")})
    return {
        "ffmpeg": str(facts["xpulab_ffmpeg"].get("current") or ""),
        "torch": str(facts["xpulab_pytorch"].get("torch_version") or ""),
        "torchcodec": str(facts["xpulab_torchcodec"].get("version") or ""),
        "driver": ",".join(drivers),
        "media_driver": str(media),
        "kernel": kernel,
    }


def _labels(labels: dict[str, str]) -> str:
    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{esc(v)}"' for k, v in labels.items()) + "}" if labels else ""


def render(metrics: list[Metric]) -> str:
    """Text exposition format 0.0.4: HELP, TYPE gauge, then the samples."""
    lines: list[str] = []
    for name, text, samples in metrics:
        lines += [f"# HELP {PREFIX}{name} {text}", f"# TYPE {PREFIX}{name} gauge"]
        lines += [f"{PREFIX}{name}{_labels(labels)} {value:.17g}" for labels, value in samples]
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    """Temp file in the same directory, then rename: readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check(args: argparse.Namespace) -> tuple[str, Json, dict[str, bool]]:
    """Run every check; return the metrics text, the new state and each check's result."""
    start = time.time()
    facts = read_facts(args.facts_dir)
    state_file = args.state_dir / "state.json"
    try:
        state = json.loads(state_file.read_text())
    except (OSError, ValueError):
        state = {}
    last: dict[str, float] = dict(state.get("last_success") or {})

    nodes = media_render_nodes(facts)
    present = {n: on_root(n, args.dev_root).exists() for n in nodes}
    vainfo = shutil.which(args.vainfo)
    va = {n: vainfo_ok(vainfo, on_root(n, args.dev_root), args.vainfo_timeout) for n in nodes if present[n] and vainfo}
    user = pwd.getpwuid(os.getuid())
    groups = {g: in_group(user, g) for g in args.group}

    argv = list(args.smoke)
    if args.require_media_gpus:
        argv += [f"--require-device=xpu:{i}" for i in range(len(nodes))]
    report, error = run_decode(argv, args.state_dir / "decode-smoke.json", user.pw_dir, args.decode_timeout)
    passed, fps = device_results(report, list(state.get("devices") or []))
    end = time.time()
    last.update({d: end for d, ok in passed.items() if ok})

    # Without the GPU inventory (the intel_gpu role's fact) the render nodes cannot be checked: failed.
    checks = {"render_nodes": bool(facts["xpulab_intel_gpu"]) and all(present.values()), "groups": all(groups.values()),
              "decode": report is not None and report.get("status") == "passed" and all(passed.values())}
    if vainfo and va:
        checks["vainfo"] = all(va.values())
    metrics: list[Metric] = [
        ("passed", "1 when every check of the last run passed.", [({}, float(all(checks.values())))]),
        ("check_passed", "1 when the check passed in the last run.",
         [({"check": c}, float(ok)) for c, ok in sorted(checks.items())]),
        ("decode_passed", "1 when the device passed the decode smoke test in the last run.",
         [({"device": d}, float(ok)) for d, ok in sorted(passed.items())]),
        ("decode_fps", "Frames per second the device decoded the clip at in the last run.",
         [({"device": d, "clip": c}, v) for (d, c), v in sorted(fps.items())]),
        ("decode_last_success_timestamp_seconds", "Unix time of the device's last passed decode smoke test.",
         [({"device": d}, t) for d, t in sorted(last.items())]),
        ("render_node_present", "1 when the render node of a media GPU in the GPU inventory exists.",
         [({"render_node": n}, float(ok)) for n, ok in sorted(present.items())]),
        ("vainfo_passed", "1 when vainfo opened the media GPU's render node.",
         [({"render_node": n}, float(ok)) for n, ok in sorted(va.items())]),
        ("group_member", "1 when the user running the check is in the group.",
         [({"group": g}, float(ok)) for g, ok in sorted(groups.items())]),
        ("last_run_timestamp_seconds", "Unix time the last run ended.", [({}, end)]),
        ("last_run_duration_seconds", "Seconds the last run took.", [({}, max(end - start, 0.0))]),
        ("info", "Versions of the decode stack (labels; value 1).", [(versions(facts, os.uname().release), 1.0)]),
    ]
    new_state = {"last_success": last, "devices": sorted(set(state.get("devices") or []) | set(passed)),
                 "error": error}
    return render(metrics), new_state, checks


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--facts-dir", type=Path, default=Path("/etc/ansible/facts.d"))
    p.add_argument("--dev-root", type=Path, default=Path("/dev"))
    p.add_argument("--state-dir", type=Path, required=True, help="owned by the user: state, smoke report")
    p.add_argument("--metrics", type=Path, required=True, help="the .prom file (written atomically)")
    p.add_argument("--group", action="append", default=[], help="group the user must be in (repeatable)")
    p.add_argument("--require-media-gpus", action="store_true", help="require xpu:0..M-1 for M media GPUs")
    p.add_argument("--vainfo", default="vainfo")
    p.add_argument("--vainfo-timeout", type=float, default=60.0)
    p.add_argument("--decode-timeout", type=float, default=1200.0)
    p.add_argument("smoke", nargs="+", help="the smoke command and its report arguments, after --")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    text, state, checks = check(args)
    write_atomic(args.state_dir / "state.json", json.dumps(state, sort_keys=True) + "\n")
    write_atomic(args.metrics, text)
    failed = [c for c, ok in sorted(checks.items()) if not ok]
    print(f"node health: {'FAILED: ' + ', '.join(failed) if failed else 'PASSED'}; metrics: {args.metrics}")
    if state["error"]:
        print(f"decode smoke test: {state['error']}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
