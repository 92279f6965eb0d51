"""Decode smoke test for xpulab TorchCodec nodes.

``dump``   decodes a frame range and writes raw RGB24 (NHWC, uint8), like the
           seed's dump script.
``report`` decodes clips on the CPU and on every accelerator torch sees (xpu:N,
           cuda:N), checks shape and dtype, compares each device with the CPU
           decode (equal, or PSNR >= a per-clip, per-backend threshold) and
           the CPU decode with golden files (exact, or PSNR >= a floor), fails
           a device that fell back to the CPU (TorchCodec's
           ``VideoDecoder.cpu_fallback``), measures decode throughput, and
           writes one JSON report.

Exit codes: 0 every present device passed every check, 1 a check failed,
2 usage error. torch and torchcodec are imported lazily (``load_backend``),
so the module itself needs only the standard library and numpy.
"""

from __future__ import annotations

import argparse
import grp
import importlib
import importlib.metadata
import json
import math
import os
import platform
import pwd
import re
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

SCHEMA_VERSION = 1
DEFAULT_PSNR_THRESHOLD_DB = 40.0
# A CPU decode through FFmpeg 7.1.5 built without x86 assembly differs from the
# golden file (made with assembly) at 49.65 dB, max diff 3 (measured on an
# NVIDIA H200 host, 2026-11-30): swscale's C path rounds differently.
DEFAULT_GOLDEN_PSNR_FLOOR_DB = 45.0
ACCELERATORS = ("xpu", "cuda")
DEFAULT_FRAMES = "0:10"
BENCH_CHUNK_FRAMES = 32
PEAK = 255.0
DEVICE_RE = re.compile(r"^[a-z_]+(:\d+)?$")

Frames = npt.NDArray[np.uint8]
Json = dict[str, Any]


class UsageError(Exception):
    """Bad command line or input files: exit code 2."""


class DecoderLike(Protocol):
    """What we use of torchcodec.decoders.VideoDecoder."""

    @property
    def metadata(self) -> Any: ...

    def __len__(self) -> int: ...

    def __getitem__(self, key: slice) -> Any: ...  # a torch.Tensor (tests: numpy-backed fakes)


class DecoderFactory(Protocol):
    def __call__(self, source: str, *, device: str, stream_index: int | None) -> DecoderLike: ...


@dataclass
class Backend:
    torch: Any
    decoder_factory: DecoderFactory
    versions: dict[str, str | None]


@dataclass
class Clip:
    name: str
    path: str
    frames: str = DEFAULT_FRAMES
    golden: str | None = None
    stream_index: int | None = None
    psnr_threshold_db: float | dict[str, float] | None = None  # a number, or {device/backend/"default": dB}


def parse_slice(text: str) -> slice:
    """Parse "start:stop[:step]" the way the seed's dump script does.

    Empty parts are None: "0:10" -> slice(0, 10), ":" -> everything,
    "5" -> slice(5) i.e. the first five frames.
    """
    try:
        parts = [int(part) if part.strip() else None for part in text.split(":")]
        result = slice(*parts)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"invalid frame slice {text!r}: expected start:stop[:step]") from exc
    if result.step == 0:
        raise ValueError(f"invalid frame slice {text!r}: step must not be 0")
    return result


def psnr(a: Frames, b: Frames) -> float:
    """Peak signal-to-noise ratio in dB (peak 255, float64 MSE); inf when identical."""
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch: {list(a.shape)} vs {list(b.shape)}")
    if a.size == 0:
        raise ValueError("cannot compute PSNR of empty arrays")
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(PEAK * PEAK / mse)


def compare_frames(ref: Frames, test: Frames, threshold: float | None) -> Json:
    """Compare decoded frames with a reference.

    Passes when byte-identical, or (threshold given) when PSNR >= threshold.
    psnr_db is null when the frames are identical (infinite PSNR), so the
    report stays strict JSON.
    """
    result: Json = {
        "passed": False,
        "equal": False,
        "psnr_db": None,
        "max_abs_diff": None,
        "differing_values": None,
        "threshold_db": threshold,
        "error": None,
    }
    if ref.shape != test.shape:
        result["error"] = f"shape {list(test.shape)} differs from reference {list(ref.shape)}"
        return result
    if ref.size == 0:
        result["error"] = "no frames to compare"
        return result
    diff = np.abs(ref.astype(np.int16) - test.astype(np.int16))
    value = psnr(ref, test)
    equal = bool(diff.max() == 0)
    result.update(
        passed=equal or (threshold is not None and value >= threshold),
        equal=equal,
        psnr_db=None if math.isinf(value) else round(value, 3),
        max_abs_diff=int(diff.max()),
        differing_values=int(np.count_nonzero(diff)),
    )
    return result


def load_golden(path: str | Path, shape: Sequence[int]) -> Frames:
    """Read a raw RGB24 NHWC file and return it as NCHW uint8.

    shape is the expected NCHW shape (frames, 3, height, width).
    """
    n, channels, height, width = shape
    if channels != 3:
        raise ValueError(f"expected 3 channels (RGB), got shape {list(shape)}")
    expected = n * height * width * 3
    size = Path(path).stat().st_size
    if size != expected:
        raise ValueError(
            f"golden file {path} has {size} bytes, but {n} frames of {width}x{height} "
            f"RGB24 need {expected} bytes"
        )
    data = np.fromfile(path, dtype=np.uint8).reshape(n, height, width, 3)
    return np.ascontiguousarray(data.transpose(0, 3, 1, 2))


def write_rgb24(path: str | Path, frames: Frames) -> None:
    """Write NCHW frames as raw RGB24 NHWC, like the seed's dump_rgb."""
    np.ascontiguousarray(np.transpose(frames, (0, 2, 3, 1))).tofile(str(path))


def threshold_for(value: float | dict[str, float] | None, device: str, default: float) -> float:
    """A clip's threshold on device: a number, or the entry for the device, its backend or "default"."""
    if isinstance(value, dict):
        value = value.get(device, value.get(device.partition(":")[0], value.get("default")))
    return default if value is None else float(value)


def _device_count(torch_module: Any, kind: str) -> int:
    backend = getattr(torch_module, kind, None)
    try:
        if backend is None or not backend.is_available():
            return 0
        return int(backend.device_count())
    except Exception:  # a broken runtime counts as no device
        return 0


def list_devices(torch_module: Any) -> list[str]:
    """The CPU plus "xpu:N" and "cuda:N" for every such device that torch reports."""
    return ["cpu"] + [f"{k}:{i}" for k in ACCELERATORS for i in range(_device_count(torch_module, k))]


def device_present(torch_module: Any, device: str) -> bool:
    kind, _sep, index = device.partition(":")
    if kind == "cpu":
        return True
    return _device_count(torch_module, kind) > (int(index) if index else 0)


def parse_devices(text: str) -> list[str]:
    devices = [d.strip() for d in text.split(",") if d.strip()]
    for device in devices:
        if not DEVICE_RE.match(device):
            raise UsageError(f"invalid device {device!r} (expected e.g. cpu, xpu, xpu:1, cuda:0)")
    return devices


def load_clips_json(path: str) -> list[Clip]:
    """Read [{"name","path","frames","golden","stream_index","psnr_threshold_db": dB or {device: dB}}]."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read clips file {path}: {exc}") from exc
    if isinstance(data, dict):
        data = data.get("clips")
    if not isinstance(data, list):
        raise UsageError(f"clips file {path} must hold a list of clips")
    clips = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise UsageError(f'clips file {path}: every clip needs a "path": {item!r}')
        if not isinstance(item.get("stream_index", 0), (int, type(None))):
            raise UsageError(f"clips file {path}: stream_index must be an integer: {item!r}")
        threshold = item.get("psnr_threshold_db")
        values = list(threshold.values()) if isinstance(threshold, dict) else [threshold]
        if not all(isinstance(v, (int, float, type(None))) for v in values):
            raise UsageError(f"clips file {path}: psnr_threshold_db must be a number or map: {item!r}")
        clips.append(
            Clip(
                name=str(item.get("name") or Path(item["path"]).name),
                path=item["path"],
                frames=str(item.get("frames", DEFAULT_FRAMES)),
                golden=item.get("golden"),
                stream_index=item.get("stream_index"),
                psnr_threshold_db=item.get("psnr_threshold_db"),
            )
        )
    return clips


@dataclass
class Decoded:
    frames: Frames  # NCHW on the CPU
    expected_count: int
    metadata: Json
    fallback: Json


def fallback_check(decoder: DecoderLike) -> Json:
    """Passes only when TorchCodec's cpu_fallback (0.17+) says the device decoded without falling back."""
    status = getattr(decoder, "cpu_fallback", None)
    if status is None:
        text, fell_back = "fallback unknown: no VideoDecoder.cpu_fallback", None
    elif not getattr(status, "status_known", True):
        text, fell_back = f"fallback unknown: {status}", None
    else:
        text, fell_back = str(status), bool(status)  # bool(): fell back; str(): why
    error = None if fell_back is False else text
    return {"passed": error is None, "fell_back": fell_back, "status": text, "error": error}


def _metadata(decoder: DecoderLike) -> Json:
    meta = decoder.metadata
    fields = ("stream_index", "codec", "height", "width", "num_frames", "average_fps")
    return {name: getattr(meta, name, None) for name in fields}


def decode_range(
    factory: DecoderFactory, path: str, device: str, stream_index: int | None, frames: slice
) -> Decoded:
    """Decode decoder[frames] on device and return the frames on the CPU as numpy."""
    decoder = factory(path, device=device, stream_index=stream_index)
    expected = len(range(*frames.indices(len(decoder))))
    array = np.asarray(decoder[frames].cpu().numpy())
    return Decoded(array, expected, _metadata(decoder), fallback_check(decoder))  # known after decoding


def bench_decode(
    factory: DecoderFactory,
    path: str,
    device: str,
    stream_index: int | None,
    max_frames: int = 0,
    sync: Callable[[], None] = lambda: None,
) -> tuple[int, float]:
    """Decode the first max_frames frames (0: all) in chunks; return (frames, seconds).

    Opening the decoder is not timed; sync() runs before the clock stops so
    asynchronous device work is included.
    """
    decoder = factory(path, device=device, stream_index=stream_index)
    total = len(decoder) if max_frames <= 0 else min(max_frames, len(decoder))
    decoded = 0
    start = time.perf_counter()
    for first in range(0, total, BENCH_CHUNK_FRAMES):
        decoded += int(decoder[first : min(first + BENCH_CHUNK_FRAMES, total)].shape[0])
    sync()
    return decoded, time.perf_counter() - start


def _sync_for(torch_module: Any, device: str) -> Callable[[], None]:
    backend = getattr(torch_module, device.partition(":")[0], None)
    synchronize = getattr(backend, "synchronize", None)
    if device == "cpu" or synchronize is None:
        return lambda: None
    return lambda: synchronize(device)


def _check_shape_dtype(decoded: Decoded) -> tuple[Json, Json, tuple[int, int, int, int]]:
    meta = decoded.metadata
    expected = (decoded.expected_count, 3, int(meta["height"] or 0), int(meta["width"] or 0))
    actual = [int(x) for x in decoded.frames.shape]
    shape = {
        "passed": actual == list(expected) and decoded.expected_count > 0,
        "expected": list(expected),
        "actual": actual,
    }
    dtype = {
        "passed": decoded.frames.dtype == np.uint8,
        "expected": "uint8",
        "actual": str(decoded.frames.dtype),
    }
    return shape, dtype, expected


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def check_device(
    backend: Backend,
    clip: Clip,
    device: str,
    reference: Frames | None,
    threshold: float,
    bench_frames: int,
    golden_floor: float = DEFAULT_GOLDEN_PSNR_FLOOR_DB,
) -> tuple[Json, Decoded | None]:
    """Run every check of one clip on one present device. Never raises."""
    entry = _entry("failed")
    checks = entry["checks"] = dict.fromkeys(("shape", "dtype", "vs_cpu", "vs_golden", "fallback"))
    decoded = None
    try:
        frame_range = parse_slice(clip.frames)
        decoded = decode_range(backend.decoder_factory, clip.path, device, clip.stream_index, frame_range)
        checks["shape"], checks["dtype"], expected = _check_shape_dtype(decoded)
        if device == "cpu":
            if clip.golden:
                try:
                    checks["vs_golden"] = compare_frames(
                        load_golden(clip.golden, expected), decoded.frames, golden_floor
                    )
                except (OSError, ValueError) as exc:
                    checks["vs_golden"] = {"passed": False, "error": str(exc)}
        else:
            checks["fallback"] = decoded.fallback
            if reference is None:
                checks["vs_cpu"] = {"passed": False, "error": "no CPU reference frames (CPU decode failed)"}
            else:
                checks["vs_cpu"] = compare_frames(reference, decoded.frames, threshold)
                entry["identical_to_cpu"] = checks["vs_cpu"]["equal"]  # a GPU rarely matches swscale exactly
        sync = _sync_for(backend.torch, device)
        frames, seconds = bench_decode(
            backend.decoder_factory, clip.path, device, clip.stream_index, bench_frames, sync
        )
        entry.update(
            frames=frames, seconds=round(seconds, 6), fps=round(frames / seconds, 1) if seconds > 0 else None
        )
    except Exception as exc:  # any decode error fails this device, not the run
        entry["error"] = _error_text(exc)
    passed = entry["error"] is None and all(c["passed"] for c in checks.values() if c is not None)
    entry["status"] = "passed" if passed else "failed"
    return entry, decoded


def _entry(status: str) -> Json:
    return {"status": status, "checks": {}, "fps": None, "frames": None, "seconds": None, "error": None}


def collect_versions(torch_module: Any) -> dict[str, str | None]:
    """Versions of the decode stack; anything missing is None."""
    versions: dict[str, str | None] = {"python": platform.python_version(), "numpy": np.__version__}
    versions.update(dict.fromkeys(("torch", "torchcodec", "torchcodec_xpu", "libavcodec", "ffmpeg")))
    if getattr(torch_module, "__version__", None) is not None:
        versions["torch"] = str(torch_module.__version__)
    try:
        versions["torchcodec"] = str(importlib.import_module("torchcodec").__version__)
        # {"libavcodec": [61, 19, 101], ..., "ffmpeg_version": "7.1.5"}
        libs = importlib.import_module("torchcodec._core").get_ffmpeg_library_versions()
        avcodec = libs.get("libavcodec")
        if isinstance(avcodec, (list, tuple)):
            avcodec = ".".join(str(part) for part in avcodec)
        versions["libavcodec"] = None if avcodec is None else str(avcodec)
        versions["ffmpeg"] = None if libs.get("ffmpeg_version") is None else str(libs["ffmpeg_version"])
    except Exception:  # no torchcodec, or one without this private helper
        pass
    try:
        versions["torchcodec_xpu"] = importlib.metadata.version("torchcodec-xpu")
    except importlib.metadata.PackageNotFoundError:
        pass
    return versions


def load_backend() -> Backend:
    """Import torch and torchcodec (only when decoding is asked for)."""
    torch = importlib.import_module("torch")
    video_decoder = importlib.import_module("torchcodec.decoders").VideoDecoder
    return Backend(torch=torch, decoder_factory=video_decoder, versions=collect_versions(torch))


def account() -> Json:
    """Who decoded, with its groups (render opens /dev/dri/renderD*)."""
    names = {g.gr_gid: g.gr_name for g in grp.getgrall()}
    groups = sorted({names.get(gid, str(gid)) for gid in (os.getgid(), *os.getgroups())})
    return {"name": pwd.getpwuid(os.getuid()).pw_name, "uid": os.getuid(), "groups": groups}


def _device_name(torch_module: Any, device: str) -> str | None:
    kind, _sep, index = device.partition(":")
    try:
        return str(getattr(torch_module, kind).get_device_name(int(index or 0)))
    except Exception:
        return None


def build_report(
    backend: Backend,
    clips: list[Clip],
    devices: list[str],
    required: set[str],
    threshold: float,
    bench_frames: int,
    golden_floor: float = DEFAULT_GOLDEN_PSNR_FLOOR_DB,
) -> Json:
    """Run every clip on every device (cpu first: it is the reference)."""
    devices = ["cpu"] + [d for d in dict.fromkeys(devices) if d != "cpu"]
    present = {d: device_present(backend.torch, d) for d in devices}
    clip_reports: list[Json] = []
    for clip in clips:
        results: dict[str, Json] = {}
        reference: Frames | None = None
        metadata: Json | None = None
        for device in devices:
            if not present[device]:
                results[device] = _entry("absent")
                continue
            limit = threshold_for(clip.psnr_threshold_db, device, threshold)
            entry, decoded = check_device(backend, clip, device, reference, limit, bench_frames, golden_floor)
            results[device] = entry
            if device == "cpu" and decoded is not None and entry["checks"]["shape"]["passed"]:
                reference = decoded.frames
            if metadata is None and decoded is not None:
                metadata = decoded.metadata
        clip_reports.append(
            {
                "name": clip.name,
                "path": clip.path,
                "stream_index": clip.stream_index,
                "frames": clip.frames,
                "golden": clip.golden,
                "psnr_threshold_db": threshold if clip.psnr_threshold_db is None else clip.psnr_threshold_db,
                "metadata": metadata,
                "results": results,
            }
        )

    device_reports = []
    failed = False
    for device in devices:
        statuses = [c["results"][device]["status"] for c in clip_reports]
        if not present[device]:
            status = "absent"
            failed = failed or device in required
        else:
            status = "failed" if "failed" in statuses or not statuses else "passed"
            failed = failed or status == "failed"
        device_reports.append(
            {
                "device": device,
                "status": status,
                "required": device in required,
                "name": _device_name(backend.torch, device) if present[device] and device != "cpu" else None,
            }
        )

    return {
        "schema_version": SCHEMA_VERSION, "tool": "xpulab_decode_smoke", "status": "failed" if failed else "passed",
        "hostname": socket.gethostname(), "user": account(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "psnr_threshold_db": threshold, "golden_psnr_floor_db": golden_floor, "bench_frames": bench_frames,
        "versions": backend.versions, "devices": device_reports, "clips": clip_reports,
    }


def summarize(report: Json) -> str:
    user = report.get("user") or {"name": "?", "groups": []}
    lines = [f"decode smoke test: {report['status'].upper()} (as {user['name']}: {' '.join(user['groups'])})"]
    for dev in report["devices"]:
        if dev["status"] == "absent":
            lines.append(f"  {dev['device']}: absent{' (REQUIRED)' if dev['required'] else ''}")
    for clip in report["clips"]:
        for device, res in clip["results"].items():
            if res["status"] == "absent":
                continue
            line = f"  {clip['name']} [{clip['frames']}] on {device}: {res['status']}"
            if res["fps"] is not None:
                line += f", {res['fps']} fps ({res['frames']} frames)"
            problems = [name for name, check in res["checks"].items() if check and not check["passed"]]
            if problems:
                line += f"; failed checks: {', '.join(problems)}"
            for name in ("vs_cpu", "vs_golden"):
                check = res["checks"].get(name)
                if check and check.get("max_abs_diff") is not None:
                    diff = f"{check['psnr_db']} dB, max diff {check['max_abs_diff']}"
                    line += f"; {name.replace('_', ' ')} {'exact' if check['equal'] else diff}"
            if res.get("identical_to_cpu"):
                line += "; FLAG: frames identical to the CPU's (did the device decode?)"
            if res["checks"].get("fallback"):
                line += f"; {res['checks']['fallback']['status']}"
            if res["error"]:
                line += f"; error: {res['error']}"
            lines.append(line)
    return "\n".join(lines)


def _slice_arg(text: str) -> slice:
    try:
        return parse_slice(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xpulab_decode_smoke",
        description="TorchCodec decode smoke test (CPU, XPU and CUDA devices).",
        epilog="Exit codes: 0 all present devices passed, 1 a check failed, 2 usage error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    dump = sub.add_parser("dump", help="decode frames and write raw RGB24 (NHWC uint8), like the seed")
    dump.add_argument("--input", "-i", required=True, help="stream to decode")
    dump.add_argument("--output", "-o", required=True, help="raw RGB24 output file (NHWC, uint8)")
    dump.add_argument("--device", "-d", default="cpu", help="PyTorch device (cpu, xpu:0, cuda:0, ...)")
    dump.add_argument("--slice", "-s", type=_slice_arg, default=slice(None), help="frames, e.g. 0:10 (all)")
    dump.add_argument("--stream-index", type=int, metavar="INDEX", help="video stream (default: best stream)")

    report = sub.add_parser("report", help="check clips on every device and write a JSON report")
    report.add_argument("--clip", action="append", default=[], metavar="PATH", help="clip (repeatable)")
    report.add_argument("--clips-json", metavar="FILE", help="JSON list of clips (see load_clips_json)")
    report.add_argument("--frames", default=DEFAULT_FRAMES, metavar="SLICE", help="frames of --clip clips")
    report.add_argument("--stream-index", type=int, metavar="INDEX", help="stream of --clip clips (best)")
    report.add_argument("--devices", metavar="LIST", help="default: cpu, each xpu:N, cuda:N; cpu always runs")
    report.add_argument("--require-device", action="append", default=[], metavar="DEV", help="fail if absent")
    for flag, default, what in (
        ("--psnr-threshold", DEFAULT_PSNR_THRESHOLD_DB, "a device's frames against the CPU's"),
        ("--golden-psnr-floor", DEFAULT_GOLDEN_PSNR_FLOOR_DB, "CPU frames against a golden file"),
    ):
        report.add_argument(flag, type=float, default=default, metavar="DB", help=f"least PSNR of {what}")
    report.add_argument("--bench-frames", type=int, default=0, metavar="N", help="fps frames (0: all)")
    report.add_argument("--output", "-o", required=True, metavar="FILE", help="JSON report to write")
    report.add_argument("--json-stdout", action="store_true",
                        help="also print the report as one line of JSON on stdout (the summary goes to stderr)")
    return parser


def _load_backend_or_report() -> Backend | None:
    try:
        return load_backend()
    except Exception as exc:
        print(f"error: cannot load torch/torchcodec: {_error_text(exc)}", file=sys.stderr)
        return None


def run_dump(args: argparse.Namespace) -> int:
    backend = _load_backend_or_report()
    if backend is None:
        return 1
    try:
        decoder = backend.decoder_factory(args.input, device=args.device, stream_index=args.stream_index)
        print(decoder.metadata)
        frames = np.asarray(decoder[args.slice].cpu().numpy())
        write_rgb24(args.output, frames)
    except Exception as exc:
        print(f"error: decode failed: {_error_text(exc)}", file=sys.stderr)
        return 1
    print(f"wrote {list(frames.shape)} (NCHW) as NHWC RGB24 to {args.output}", file=sys.stderr)
    return 0


def _report_inputs(args: argparse.Namespace) -> list[Clip]:
    """Validate report arguments; raise UsageError on anything wrong."""
    clips = [
        Clip(name=Path(p).name, path=p, frames=args.frames, stream_index=args.stream_index) for p in args.clip
    ]
    if args.clips_json:
        clips += load_clips_json(args.clips_json)
    if not clips:
        raise UsageError("give at least one --clip or --clips-json")
    if args.bench_frames < 0:
        raise UsageError("--bench-frames must be >= 0")
    if not (math.isfinite(args.psnr_threshold) and math.isfinite(args.golden_psnr_floor)):
        raise UsageError("--psnr-threshold and --golden-psnr-floor must be finite numbers")
    for clip in clips:
        try:
            parse_slice(clip.frames)
        except ValueError as exc:
            raise UsageError(f"clip {clip.name}: {exc}") from exc
        for label, path in (("clip", clip.path), ("golden file", clip.golden)):
            if path is not None and not Path(path).is_file():
                raise UsageError(f"clip {clip.name}: {label} {path} not found")
    return clips


def run_report(args: argparse.Namespace) -> int:
    clips = _report_inputs(args)
    devices = parse_devices(args.devices) if args.devices else None
    required = {d for item in args.require_device for d in parse_devices(item)}
    backend = _load_backend_or_report()
    if backend is None:
        if args.json_stdout:  # no report file is written; the caller still gets a failed report
            print(json.dumps({"schema_version": SCHEMA_VERSION, "tool": "xpulab_decode_smoke", "status": "failed",
                              "error": "cannot load torch/torchcodec (see stderr)", "devices": [], "clips": []}))
        return 1
    if devices is None:
        devices = list_devices(backend.torch)
    devices += sorted(required - set(devices))
    report = build_report(
        backend, clips, devices, required, args.psnr_threshold, args.bench_frames, args.golden_psnr_floor
    )
    try:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    except OSError as exc:  # a bad --output path is a usage error
        raise UsageError(f"cannot write report {args.output}: {exc}") from exc
    human = sys.stderr if args.json_stdout else sys.stdout
    print(summarize(report), file=human)
    print(f"report: {args.output}", file=human)
    if args.json_stdout:
        print(json.dumps(report, allow_nan=False))
    return 0 if report["status"] == "passed" else 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 2 on usage errors, 0 for --help
        return int(exc.code or 0)
    try:
        return run_dump(args) if args.command == "dump" else run_report(args)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
