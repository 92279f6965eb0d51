"""The fake sysfs trees of the intel_gpu molecule scenario give the verdicts side_effect.yml expects.

molecule/intel_gpu/files/make_fake_sysfs.py packs the trees the scenario
unpacks on its nodes; here they are unpacked locally and inventoried with the
module, so a change in either shows up without containers.
"""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

import pytest
import xpulab_gpu_inventory as inv  # type: ignore[import-not-found]

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "molecule" / "intel_gpu" / "files"))

import make_fake_sysfs  # type: ignore[import-not-found]  # noqa: E402

KERNEL_6_8 = "6.8.0-45-generic"
EXPECTED: dict[str, list[str]] = {
    "max-only": [
        "only GPUs without media engines (Data Center GPU Max / Ponte Vecchio) found: 0000:3a:00.0 (max 0x0bd5)"
    ],
    "no-gpu": ["no Intel GPU found"],
    "battlemage": [f"kernel {KERNEL_6_8} too old for battlemage at 0000:03:00.0 (needs >= 6.11)"],
    "arc": [],
}


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tarballs")
    assert make_fake_sysfs.main(["make_fake_sysfs.py", str(out)]) == 0
    dest = tmp_path_factory.mktemp("nodes")
    for name in EXPECTED:
        with tarfile.open(out / f"{name}.tar.gz") as tar:
            tar.extractall(dest, filter="tar")
    return dest


def test_every_case_is_built() -> None:
    assert set(make_fake_sysfs.CASES) == set(EXPECTED)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_case_verdict_on_kernel_6_8(unpacked: Path, case: str) -> None:
    result = inv.inventory(str(unpacked / case / "sys"), str(unpacked / case / "dev"), KERNEL_6_8)
    assert result["problems"] == EXPECTED[case]


def test_arc_render_node(unpacked: Path) -> None:
    result = inv.inventory(str(unpacked / "arc" / "sys"), str(unpacked / "arc" / "dev"), KERNEL_6_8)
    assert [gpu["render_node"] for gpu in result["media_gpus"]] == ["/dev/dri/renderD128"]
    assert result["media_gpus"][0]["by_path_present"] is True


def test_battlemage_is_fine_on_6_11(unpacked: Path) -> None:
    result = inv.inventory(str(unpacked / "battlemage" / "sys"), str(unpacked / "battlemage" / "dev"), "6.11.0")
    assert result["problems"] == []


def test_symlinks_survive_the_tarball(unpacked: Path) -> None:
    link = unpacked / "arc" / "sys" / "class" / "drm" / "renderD128"
    assert link.is_symlink() and not Path(link.readlink()).is_absolute()


def test_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert make_fake_sysfs.main(["make_fake_sysfs.py"]) == 2
    assert "Usage" in capsys.readouterr().err
