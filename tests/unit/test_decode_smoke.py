"""Unit tests for roles/decode_smoke/files/xpulab_decode_smoke.py (no torch needed)."""

from __future__ import annotations

import grp
import json
import math
import os
import pwd
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "roles" / "decode_smoke" / "files"))
import xpulab_decode_smoke as smoke  # type: ignore[import-not-found]  # noqa: E402

N, H, W = 12, 6, 8  # a small fake clip: 12 frames of 8x6


def clip_frames() -> np.ndarray:
    rng = np.random.default_rng(1234)
    return rng.integers(0, 256, size=(N, 3, H, W), dtype=np.uint8)


class FakeTensor:
    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape = array.shape

    def cpu(self) -> FakeTensor:
        return self

    def numpy(self) -> np.ndarray:
        return self.array


class FakeFallback:
    """TorchCodec 0.17's CpuFallbackStatus: bool() says whether it fell back, str() why."""

    def __init__(self, fell_back: bool, status_known: bool = True) -> None:
        self.fell_back, self.status_known = fell_back, status_known

    def __bool__(self) -> bool:
        return self.status_known and self.fell_back

    def __str__(self) -> str:
        if not self.status_known:
            return "[CUDA] Fallback status: Unknown"
        if self.fell_back:
            return "[CUDA] Fallback status: Falling back due to: Video not supported"
        return "[CUDA] Fallback status: No fallback required"


def make_decoder(behaviour: dict[str, str]) -> Any:
    """A VideoDecoder stand-in. behaviour maps device -> exact | noisy | broken | raise
    | fallback (noisy frames, fell back) | unknown (status not known) | legacy (no cpu_fallback)."""

    class FakeDecoder:
        opened: list[tuple[str, str, int | None]] = []

        def __init__(self, source: str, *, device: str = "cpu", stream_index: int | None = None) -> None:
            mode = behaviour.get(device, "exact")
            if mode == "raise":
                raise RuntimeError(f"cannot open {device}: no render node")
            FakeDecoder.opened.append((source, device, stream_index))
            frames = clip_frames()
            if mode != "legacy":
                self.cpu_fallback = FakeFallback(mode == "fallback", mode != "unknown")
            if mode in ("noisy", "fallback"):  # +/-1 on every value: PSNR 48.13 dB
                frames = np.where(frames < 255, frames + 1, frames - 1).astype(np.uint8)
            if mode == "broken":  # heavy noise: far below 40 dB
                frames = (frames.astype(np.int16) + 40).clip(0, 255).astype(np.uint8)
            self.frames = frames
            self.metadata = SimpleNamespace(
                stream_index=3 if stream_index is None else stream_index,
                codec="h264",
                height=H,
                width=W,
                num_frames=N,
                average_fps=29.97,
            )

        def __len__(self) -> int:
            return N

        def __getitem__(self, key: slice) -> FakeTensor:
            return FakeTensor(self.frames[key])

    return FakeDecoder


def fake_backend(count: int, name: str) -> SimpleNamespace:
    return SimpleNamespace(
        is_available=lambda: count > 0,
        device_count=lambda: count,
        get_device_name=lambda i: f"{name} #{i}",
        synchronize=lambda device=None: None,
    )


def fake_torch(xpus: int | None, cudas: int | None = None) -> SimpleNamespace:
    """A torch stand-in; None means a torch without that module (xpu, cuda)."""
    torch = SimpleNamespace(__version__="2.14.1")
    if xpus is not None:
        torch.xpu = fake_backend(xpus, "Intel Arc B580")
    if cudas is not None:
        torch.cuda = fake_backend(cudas, "NVIDIA H200")
    return torch


@pytest.fixture
def clip_file(tmp_path: Path) -> Path:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"not really a video; the fake decoder ignores it")
    return path


def use_backend(
    monkeypatch: pytest.MonkeyPatch,
    xpus: int | None,
    behaviour: dict[str, str] | None = None,
    cudas: int | None = None,
) -> Any:
    decoder = make_decoder(behaviour or {})
    backend = smoke.Backend(
        torch=fake_torch(xpus, cudas), decoder_factory=decoder, versions={"python": "3.11", "torch": "fake"}
    )
    monkeypatch.setattr(smoke, "load_backend", lambda: backend)
    return decoder


def strict_json(path: Path) -> Any:
    def reject(token: str) -> None:
        raise ValueError(f"non-standard JSON constant {token}")

    return json.loads(path.read_text(), parse_constant=reject)


# ---------------------------------------------------------------- parse_slice


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:10", slice(0, 10)),
        (":", slice(None, None)),
        ("", slice(None)),
        ("5", slice(5)),
        ("2:", slice(2, None)),
        ("-3:", slice(-3, None)),
        ("0:10:2", slice(0, 10, 2)),
        (" 1 : 4 ", slice(1, 4)),
    ],
)
def test_parse_slice_like_the_seed(text: str, expected: slice) -> None:
    assert smoke.parse_slice(text) == expected


@pytest.mark.parametrize("text", ["a:b", "1:2:3:4", "1.5:3", "0:10:0"])
def test_parse_slice_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="invalid frame slice"):
        smoke.parse_slice(text)


# ----------------------------------------------------------------- PSNR


def test_psnr_identical_is_infinite() -> None:
    a = clip_frames()
    assert smoke.psnr(a, a.copy()) == math.inf


def test_psnr_known_mse() -> None:
    a = np.zeros((2, 3, 4, 4), dtype=np.uint8)
    assert smoke.psnr(a, a + 1) == pytest.approx(20 * math.log10(255))  # MSE 1: 48.1308 dB
    assert smoke.psnr(a, a + 10) == pytest.approx(10 * math.log10(255**2 / 100))  # MSE 100: 28.13 dB
    b = a.copy()
    b[0, 0, 0, 0] = 255  # no uint8 wrap-around: MSE = 255^2 / 96
    assert smoke.psnr(a, b) == pytest.approx(10 * math.log10(96))


def test_psnr_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape mismatch"):
        smoke.psnr(np.zeros((1, 3, 2, 2), np.uint8), np.zeros((1, 3, 2, 3), np.uint8))


def test_threshold_pass_and_fail_at_40_db() -> None:
    ref = np.full((2, 3, 4, 4), 100, dtype=np.uint8)
    close = smoke.compare_frames(ref, ref + 1, 40.0)  # 48.13 dB
    assert close["passed"] and not close["equal"]
    assert close["psnr_db"] == pytest.approx(48.131, abs=1e-3)
    assert close["max_abs_diff"] == 1
    far = smoke.compare_frames(ref, ref + 3, 40.0)  # MSE 9: 38.59 dB
    assert not far["passed"]
    assert far["psnr_db"] == pytest.approx(38.588, abs=1e-3)
    exactly = smoke.compare_frames(ref, ref + 3, smoke.psnr(ref, ref + 3))
    assert exactly["passed"]  # >= threshold passes


def test_identical_frames_pass_with_null_psnr() -> None:
    ref = clip_frames()
    result = smoke.compare_frames(ref, ref.copy(), 40.0)
    assert result == {
        "passed": True,
        "equal": True,
        "psnr_db": None,
        "max_abs_diff": 0,
        "differing_values": 0,
        "threshold_db": 40.0,
        "error": None,
    }


# ---------------------------------------------------------------- golden


def test_load_golden_converts_nhwc_to_nchw(tmp_path: Path) -> None:
    frames = clip_frames()
    golden = tmp_path / "golden.rgb24"
    np.transpose(frames, (0, 2, 3, 1)).tofile(golden)  # the seed's dump layout
    loaded = smoke.load_golden(golden, (N, 3, H, W))
    assert loaded.shape == (N, 3, H, W) and loaded.dtype == np.uint8
    assert np.array_equal(loaded, frames)


def test_golden_identical_passes_one_pixel_fails(tmp_path: Path) -> None:
    frames = clip_frames()
    golden = tmp_path / "golden.rgb24"
    smoke.write_rgb24(golden, frames)
    assert smoke.compare_frames(smoke.load_golden(golden, frames.shape), frames, None)["passed"]

    changed = frames.copy()
    changed[4, 1, 2, 3] ^= 0x01  # one value off by one
    result = smoke.compare_frames(smoke.load_golden(golden, frames.shape), changed, None)
    assert not result["passed"] and not result["equal"]
    assert result["max_abs_diff"] == 1
    assert result["differing_values"] == 1
    assert (
        result["psnr_db"] is not None and result["psnr_db"] > 40
    )  # PSNR alone would pass: golden needs equality


def test_golden_wrong_size_is_a_clear_error(tmp_path: Path) -> None:
    golden = tmp_path / "golden.rgb24"
    golden.write_bytes(bytes(N * H * W * 3 - 1))
    with pytest.raises(
        ValueError, match=rf"has {N * H * W * 3 - 1} bytes, but {N} frames of {W}x{H} RGB24 need"
    ):
        smoke.load_golden(golden, (N, 3, H, W))


# ---------------------------------------------------------------- devices


def test_list_devices() -> None:
    assert smoke.list_devices(fake_torch(None)) == ["cpu"]
    assert smoke.list_devices(fake_torch(0)) == ["cpu"]
    assert smoke.list_devices(fake_torch(2)) == ["cpu", "xpu:0", "xpu:1"]
    assert smoke.list_devices(fake_torch(None, cudas=2)) == ["cpu", "cuda:0", "cuda:1"]
    assert smoke.list_devices(fake_torch(1, cudas=1)) == ["cpu", "xpu:0", "cuda:0"]


def test_thresholds_by_device_backend_default() -> None:
    data = {"cuda:1": 20, "cuda": 30, "default": 35}
    assert smoke.threshold_for(data, "cuda:1", 40) == 20
    assert smoke.threshold_for(data, "cuda:0", 40) == 30
    assert smoke.threshold_for(data, "xpu:0", 40) == 35
    assert smoke.threshold_for({"cuda": 30}, "xpu:0", 40) == 40
    assert smoke.threshold_for(None, "xpu:0", 40) == 40 and smoke.threshold_for(33, "cuda:0", 40) == 33


def test_device_present() -> None:
    torch = fake_torch(1)
    assert smoke.device_present(torch, "cpu")
    assert smoke.device_present(torch, "xpu") and smoke.device_present(torch, "xpu:0")
    assert not smoke.device_present(torch, "xpu:1")
    assert not smoke.device_present(torch, "cuda:0")
    assert not smoke.device_present(fake_torch(None), "xpu:0")


def test_broken_xpu_runtime_counts_as_absent() -> None:
    def boom() -> bool:
        raise RuntimeError("level zero not found")

    torch = SimpleNamespace(xpu=SimpleNamespace(is_available=boom, device_count=lambda: 1))
    assert smoke.list_devices(torch) == ["cpu"]


# ---------------------------------------------------------------- decoding


def test_decode_range_uses_the_factory() -> None:
    decoder = make_decoder({})
    decoded = smoke.decode_range(decoder, "x.mp4", "xpu:0", 3, slice(0, 10))
    assert decoded.frames.shape == (10, 3, H, W)
    assert decoded.expected_count == 10
    assert decoded.metadata["height"] == H and decoded.metadata["stream_index"] == 3
    assert decoder.opened == [("x.mp4", "xpu:0", 3)]


def test_bench_decodes_all_or_n_frames() -> None:
    decoder = make_decoder({})
    synced: list[bool] = []
    frames, seconds = smoke.bench_decode(decoder, "x.mp4", "cpu", None, 0, lambda: synced.append(True))
    assert frames == N and seconds >= 0 and synced == [True]
    assert smoke.bench_decode(decoder, "x.mp4", "cpu", None, 5)[0] == 5
    assert smoke.bench_decode(decoder, "x.mp4", "cpu", None, 1000)[0] == N


# ---------------------------------------------------------------- report runs


def run(args: list[str]) -> int:
    return smoke.main(["report", *args])


def test_full_report_writes_valid_json(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_backend(monkeypatch, xpus=2, behaviour={"xpu:1": "noisy"})
    golden = tmp_path / "golden.rgb24"
    smoke.write_rgb24(golden, clip_frames()[2:8])
    clips = tmp_path / "clips.json"
    clips.write_text(
        json.dumps(
            [
                {
                    "name": "fake",
                    "path": str(clip_file),
                    "frames": "2:8",
                    "golden": str(golden),
                    "stream_index": 3,
                }
            ]
        )
    )
    out = tmp_path / "sub" / "report.json"

    assert run(["--clips-json", str(clips), "--output", str(out)]) == 0

    report = strict_json(out)
    assert report["schema_version"] == smoke.SCHEMA_VERSION
    assert report["status"] == "passed"
    assert report["hostname"] and report["timestamp"]
    # Who decoded: the process's own account and groups (the role runs it as the decode user).
    me = pwd.getpwuid(os.getuid()).pw_name
    assert report["user"]["name"] == me and report["user"]["uid"] == os.getuid()
    assert grp.getgrgid(os.getgid()).gr_name in report["user"]["groups"]
    assert report["versions"]["torch"] == "fake"
    assert [(d["device"], d["status"]) for d in report["devices"]] == [
        ("cpu", "passed"),
        ("xpu:0", "passed"),
        ("xpu:1", "passed"),
    ]
    assert report["devices"][1]["name"] == "Intel Arc B580 #0"
    (clip,) = report["clips"]
    assert clip["name"] == "fake" and clip["frames"] == "2:8" and clip["stream_index"] == 3
    assert clip["metadata"]["height"] == H and clip["metadata"]["num_frames"] == N
    cpu, xpu0, xpu1 = (clip["results"][d] for d in ("cpu", "xpu:0", "xpu:1"))
    assert cpu["checks"]["shape"] == {"passed": True, "expected": [6, 3, H, W], "actual": [6, 3, H, W]}
    assert cpu["checks"]["dtype"]["passed"]
    assert cpu["checks"]["vs_golden"]["equal"] and cpu["checks"]["vs_cpu"] is None
    assert xpu0["checks"]["vs_cpu"]["equal"] and xpu0["checks"]["vs_golden"] is None
    assert xpu1["status"] == "passed"
    assert not xpu1["checks"]["vs_cpu"]["equal"]
    assert xpu1["checks"]["vs_cpu"]["psnr_db"] == pytest.approx(48.131, abs=1e-3)
    for result in (cpu, xpu0, xpu1):
        assert result["frames"] == N
        assert result["fps"] is None or result["fps"] > 0
        assert result["error"] is None
    summary = capsys.readouterr().out
    assert f"decode smoke test: PASSED (as {me}: " in summary and "fake [2:8] on xpu:1: passed" in summary


def test_psnr_below_threshold_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path) -> None:
    use_backend(monkeypatch, xpus=1, behaviour={"xpu:0": "broken"})
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--output", str(out)]) == 1
    vs_cpu = strict_json(out)["clips"][0]["results"]["xpu:0"]["checks"]["vs_cpu"]
    assert not vs_cpu["passed"] and vs_cpu["psnr_db"] < 40 and vs_cpu["max_abs_diff"] == 40


def test_per_clip_threshold_overrides(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path
) -> None:
    use_backend(monkeypatch, xpus=1, behaviour={"xpu:0": "noisy"})
    clips = tmp_path / "clips.json"
    clips.write_text(json.dumps([{"path": str(clip_file), "psnr_threshold_db": 50}]))
    out = tmp_path / "r.json"
    assert run(["--clips-json", str(clips), "--output", str(out)]) == 1
    assert strict_json(out)["clips"][0]["psnr_threshold_db"] == 50


def test_per_backend_thresholds_from_the_clips_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path
) -> None:
    use_backend(monkeypatch, xpus=1, cudas=1, behaviour={"xpu:0": "noisy", "cuda:0": "noisy"})  # 48.13 dB
    clips = tmp_path / "clips.json"
    clips.write_text(json.dumps([{"path": str(clip_file), "psnr_threshold_db": {"cuda": 45, "default": 50}}]))
    out = tmp_path / "r.json"
    assert run(["--clips-json", str(clips), "--output", str(out)]) == 1
    results = strict_json(out)["clips"][0]["results"]
    assert results["cuda:0"]["status"] == "passed" and results["xpu:0"]["status"] == "failed"
    assert [results[d]["checks"]["vs_cpu"]["threshold_db"] for d in ("cuda:0", "xpu:0")] == [45, 50]
    clips.write_text(json.dumps([{"path": str(clip_file), "psnr_threshold_db": {"cuda": "high"}}]))
    assert run(["--clips-json", str(clips), "--output", str(out)]) == 2


@pytest.mark.parametrize(
    ("mode", "status"),
    [
        ("fallback", "[CUDA] Fallback status: Falling back due to: Video not supported"),
        ("unknown", "fallback unknown: [CUDA] Fallback status: Unknown"),
        ("legacy", "fallback unknown: no VideoDecoder.cpu_fallback"),
    ],
)
def test_fallback_or_unknown_fallback_fails_the_device(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    clip_file: Path,
    capsys: pytest.CaptureFixture[str],
    mode: str,
    status: str,
) -> None:
    use_backend(monkeypatch, xpus=None, cudas=1, behaviour={"cuda:0": mode})
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--output", str(out)]) == 1
    report = strict_json(out)
    cuda = report["clips"][0]["results"]["cuda:0"]
    assert cuda["status"] == "failed" and cuda["checks"]["vs_cpu"]["passed"]  # PSNR alone would pass
    assert cuda["checks"]["fallback"] == {
        "passed": False,
        "fell_back": True if mode == "fallback" else None,
        "status": status,
        "error": status,
    }
    assert report["devices"][1]["status"] == "failed" and report["devices"][1]["name"] == "NVIDIA H200 #0"
    assert "on cuda:0: failed" in capsys.readouterr().out


def test_identical_frames_on_a_device_are_flagged(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    use_backend(monkeypatch, xpus=None, cudas=2, behaviour={"cuda:1": "noisy"})
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--output", str(out)]) == 0
    results = strict_json(out)["clips"][0]["results"]
    assert results["cuda:0"]["identical_to_cpu"] and not results["cuda:1"]["identical_to_cpu"]
    assert results["cuda:0"]["checks"]["fallback"]["status"] == "[CUDA] Fallback status: No fallback required"
    assert "identical_to_cpu" not in results["cpu"]
    assert "on cuda:0: passed" in capsys.readouterr().out.split("FLAG: frames identical")[0]


@pytest.mark.parametrize(("floor", "code"), [([], 0), (["--golden-psnr-floor", "80"], 1)])
def test_golden_not_exact_passes_at_the_floor_only(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    clip_file: Path,
    capsys: pytest.CaptureFixture[str],
    floor: list[str],
    code: int,
) -> None:
    use_backend(monkeypatch, xpus=0)
    frames = clip_frames()[0:10]
    frames[0, 0, 0, 0] ^= 0x01  # one value off by one: 79.7 dB
    golden = tmp_path / "golden.rgb24"
    smoke.write_rgb24(golden, frames)
    clips = tmp_path / "clips.json"
    clips.write_text(json.dumps({"clips": [{"path": str(clip_file), "golden": str(golden)}]}))
    out = tmp_path / "r.json"
    assert run(["--clips-json", str(clips), "--output", str(out), *floor]) == code
    report = strict_json(out)
    vs_golden = report["clips"][0]["results"]["cpu"]["checks"]["vs_golden"]
    assert report["golden_psnr_floor_db"] == (80 if floor else smoke.DEFAULT_GOLDEN_PSNR_FLOOR_DB)
    assert not vs_golden["equal"] and vs_golden["max_abs_diff"] == 1 and vs_golden["passed"] == (code == 0)
    assert "vs golden 79.714 dB, max diff 1" in capsys.readouterr().out  # the report says: not exact


def test_golden_of_wrong_size_fails_with_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path
) -> None:
    use_backend(monkeypatch, xpus=0)
    golden = tmp_path / "golden.rgb24"
    golden.write_bytes(bytes(100))
    clips = tmp_path / "clips.json"
    clips.write_text(json.dumps([{"path": str(clip_file), "golden": str(golden)}]))
    out = tmp_path / "r.json"
    assert run(["--clips-json", str(clips), "--output", str(out)]) == 1
    vs_golden = strict_json(out)["clips"][0]["results"]["cpu"]["checks"]["vs_golden"]
    assert not vs_golden["passed"] and "has 100 bytes" in vs_golden["error"]


def test_device_that_raises_is_failed_with_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path
) -> None:
    use_backend(monkeypatch, xpus=1, behaviour={"xpu:0": "raise"})
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--output", str(out)]) == 1
    report = strict_json(out)
    xpu = report["clips"][0]["results"]["xpu:0"]
    assert xpu["status"] == "failed"
    assert xpu["error"] == "RuntimeError: cannot open xpu:0: no render node"
    assert report["clips"][0]["results"]["cpu"]["status"] == "passed"
    assert report["status"] == "failed"
    assert {d["device"]: d["status"] for d in report["devices"]} == {"cpu": "passed", "xpu:0": "failed"}


def test_cpu_failure_leaves_no_reference(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path
) -> None:
    use_backend(monkeypatch, xpus=1, behaviour={"cpu": "raise"})
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--output", str(out)]) == 1
    xpu = strict_json(out)["clips"][0]["results"]["xpu:0"]
    assert xpu["status"] == "failed" and "no CPU reference" in xpu["checks"]["vs_cpu"]["error"]


@pytest.mark.parametrize("xpus", [None, 1])
def test_absent_device_is_reported_not_passed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path, xpus: int | None
) -> None:
    decoder = use_backend(monkeypatch, xpus=xpus)
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--devices", "cpu,xpu:1", "--output", str(out)]) == 0
    report = strict_json(out)
    assert report["status"] == "passed"
    assert report["devices"][1] == {"device": "xpu:1", "status": "absent", "required": False, "name": None}
    assert report["clips"][0]["results"]["xpu:1"]["status"] == "absent"
    assert all(device == "cpu" for _, device, _ in decoder.opened)  # absent devices are never opened


def test_required_absent_device_fails(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path
) -> None:
    use_backend(monkeypatch, xpus=None)
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--require-device", "xpu:0", "--output", str(out)]) == 1
    report = strict_json(out)
    assert report["status"] == "failed"
    assert report["devices"][1] == {"device": "xpu:0", "status": "absent", "required": True, "name": None}


def test_default_devices_follow_torch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path
) -> None:
    use_backend(monkeypatch, xpus=2)
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--devices", "xpu:1", "--output", str(out)]) == 0
    assert [d["device"] for d in strict_json(out)["devices"]] == ["cpu", "xpu:1"]  # cpu is the reference
    assert run(["--clip", str(clip_file), "--output", str(out)]) == 0
    assert [d["device"] for d in strict_json(out)["devices"]] == ["cpu", "xpu:0", "xpu:1"]


def test_bench_frames_option(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path) -> None:
    use_backend(monkeypatch, xpus=0)
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--bench-frames", "4", "--output", str(out)]) == 0
    assert strict_json(out)["clips"][0]["results"]["cpu"]["frames"] == 4


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--output", "r.json"],
        ["--clip", "/nonexistent/clip.mp4", "--output", "r.json"],
        ["--clip", "CLIP", "--frames", "a:b", "--output", "r.json"],
        ["--clip", "CLIP", "--devices", "cpu,XPU 0", "--output", "r.json"],
        ["--clip", "CLIP", "--bench-frames", "-1", "--output", "r.json"],
        ["--clip", "CLIP", "--psnr-threshold", "forty", "--output", "r.json"],
        ["--clips-json", "/nonexistent/clips.json", "--output", "r.json"],
    ],
)
def test_usage_errors_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path, args: list[str]
) -> None:
    use_backend(monkeypatch, xpus=0)
    monkeypatch.chdir(tmp_path)
    assert run([str(clip_file) if a == "CLIP" else a for a in args]) == 2
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    "content",
    [
        [{"name": "no path"}],
        [{"path": "CLIP", "stream_index": "3"}],
        [{"path": "CLIP", "psnr_threshold_db": "forty"}],
        [{"path": "CLIP", "frames": "x"}],
        [{"path": "CLIP", "golden": "/nonexistent/golden.rgb24"}],
        {"not": "clips"},
    ],
)
def test_bad_clips_json_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path, content: Any
) -> None:
    use_backend(monkeypatch, xpus=0)
    clips = tmp_path / "clips.json"
    clips.write_text(json.dumps(content).replace('"CLIP"', json.dumps(str(clip_file))))
    assert run(["--clips-json", str(clips), "--output", str(tmp_path / "r.json")]) == 2
    assert not (tmp_path / "r.json").exists()


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.main(["report", "--help"]) == 0
    assert "--psnr-threshold" in capsys.readouterr().out


def test_missing_torch_is_not_a_pass(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path
) -> None:
    def no_torch() -> None:
        raise ModuleNotFoundError("No module named 'torch'")

    monkeypatch.setattr(smoke, "load_backend", no_torch)
    assert run(["--clip", str(clip_file), "--output", str(tmp_path / "r.json")]) == 1


def test_json_stdout_prints_the_report_as_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json-stdout (what the decode_smoke role passes): one JSON line on stdout equal to the
    report file, the summary on stderr."""
    use_backend(monkeypatch, xpus=1)
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--output", str(out), "--json-stdout"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 1 and json.loads(captured.out) == strict_json(out)
    assert "decode smoke test: PASSED" in captured.err and f"report: {out}" in captured.err


def test_json_stdout_without_torch_prints_a_failed_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No torch: no report file, and stdout still says failed (never an earlier run's report)."""
    def no_torch() -> None:
        raise ModuleNotFoundError("No module named 'torch'")

    monkeypatch.setattr(smoke, "load_backend", no_torch)
    out = tmp_path / "r.json"
    assert run(["--clip", str(clip_file), "--output", str(out), "--json-stdout"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["status"] == "failed" and not out.exists()
    assert "No module named 'torch'" in captured.err


def test_module_imports_without_torch() -> None:
    assert "torch" not in sys.modules and "torchcodec" not in sys.modules


# ---------------------------------------------------------------- dump


def test_dump_writes_seed_layout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    decoder = use_backend(monkeypatch, xpus=1)
    out = tmp_path / "out.rgb"
    argv = ["dump", "-i", str(clip_file), "-o", str(out), "-d", "xpu:0", "-s", "0:10", "--stream-index", "3"]
    assert smoke.main(argv) == 0
    expected = np.transpose(clip_frames()[0:10], (0, 2, 3, 1))  # torch.permute(t, (0,2,3,1)) in the seed
    assert out.read_bytes() == expected.tobytes()
    assert decoder.opened == [(str(clip_file), "xpu:0", 3)]
    assert "codec='h264'" in capsys.readouterr().out  # prints decoder.metadata like the seed


def test_dump_decode_error_exit_1(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clip_file: Path) -> None:
    use_backend(monkeypatch, xpus=1, behaviour={"xpu:0": "raise"})
    assert smoke.main(["dump", "-i", str(clip_file), "-o", str(tmp_path / "o.rgb"), "-d", "xpu:0"]) == 1
