"""The fake sysfs trees of the intel_gpu molecule scenario give the verdicts side_effect.yml expects.

tests/unit/fake_sysfs.py (scenario intel_gpu) packs the trees the scenario
unpacks on its nodes; here they are unpacked locally and inventoried with the
module, so a change in either shows up without containers.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import fake_sysfs
import pytest
import xpulab_gpu_inventory as inv  # type: ignore[import-not-found]

# The "tar" extraction filter (Python 3.12, and 3.11.4 on): not in Debian 12's 3.11.2.
TAR_FILTER: dict[str, str] = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}

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
    assert fake_sysfs.main(["fake_sysfs.py", "intel_gpu", str(out)]) == 0
    dest = tmp_path_factory.mktemp("nodes")
    for name in EXPECTED:
        with tarfile.open(out / f"{name}.tar.gz") as tar:
            tar.extractall(dest, **TAR_FILTER)
    return dest


def test_every_case_is_built() -> None:
    assert set(fake_sysfs.SCENARIOS["intel_gpu"]) == set(EXPECTED)


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
    assert fake_sysfs.main(["fake_sysfs.py", str(Path("out"))]) == 2
    assert fake_sysfs.main(["fake_sysfs.py", "no_such_scenario", "out"]) == 2
    assert "Usage" in capsys.readouterr().err
