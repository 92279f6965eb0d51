#!/usr/bin/env python3
"""Build the fake sysfs and /dev trees of the gpu_containers scenario, one tarball per case.

Each tarball holds ``<case>/sys`` and ``<case>/dev`` as laid out by
tests/unit/fake_sysfs.py (relative symlinks kept as symlinks); prepare.yml
unpacks them on the node under /srv/fake and the playbooks point
gpu_containers_sysfs_root / gpu_containers_dev_root at one.

- two-gpus: two GPUs with media engines, an Arc A770 (i915, 0000:03:00.0,
  renderD128, card0, /dev/dri/by-path links present) and an Arc B580 (xe,
  0000:83:00.0, renderD129, card1) whose /dev/dri/by-path links are missing,
  so the role's by-path warning fires for it. converge.yml uses it.
- no-gpu: nothing under /sys/class/drm. side_effect.yml uses it.

Usage: make_fake_sysfs.py OUT_DIR    (prints one tarball path per line)
"""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from fake_sysfs import ARC_A770, ARC_B580, FakeGpu, pack_cases  # noqa: E402

CASES: dict[str, list[FakeGpu]] = {
    "two-gpus": [
        ARC_A770,
        replace(ARC_B580, bdf="0000:83:00.0", render=129, card=1, bridge="0000:80:01.0", by_path=False),
    ],
    "no-gpu": [],
}


def main(argv: list[str]) -> int:
    return pack_cases(argv, CASES, __doc__ or "")


if __name__ == "__main__":
    sys.exit(main(sys.argv))
