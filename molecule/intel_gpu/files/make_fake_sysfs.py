#!/usr/bin/env python3
"""Build the fake sysfs and /dev trees of the intel_gpu scenario, one tarball per case.

Each tarball holds ``<case>/sys`` and ``<case>/dev`` as laid out by
tests/unit/fake_sysfs.py (relative symlinks kept as symlinks), so
side_effect.yml can unpack it on a node under /srv/fake and point
intel_gpu_sysfs_root / intel_gpu_dev_root at it.

Usage: make_fake_sysfs.py OUT_DIR    (prints one tarball path per line)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from fake_sysfs import ARC_A770, ARC_B580, MAX_1550, FakeGpu, pack_cases  # noqa: E402

# Case name -> GPUs. The expected verdicts are checked offline by
# tests/unit/test_intel_gpu_fake_trees.py and on the nodes by side_effect.yml.
CASES: dict[str, list[FakeGpu]] = {
    "max-only": [MAX_1550],  # Data Center GPU Max: no media engines
    "no-gpu": [],
    "battlemage": [ARC_B580],  # on xe; needs kernel >= 6.11
    "arc": [ARC_A770],  # Alchemist on i915; fine on 6.8
}


def main(argv: list[str]) -> int:
    return pack_cases(argv, CASES, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
