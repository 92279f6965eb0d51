#!/usr/bin/env python3
"""Pack a fake sysfs and /dev tree with one Arc A770 (a GPU with media engines).

The tarball holds ``arc/sys`` and ``arc/dev`` as laid out by
tests/unit/fake_sysfs.py (relative symlinks kept as symlinks), for
side_effect.yml to unpack on a node and point pytorch_sysfs_root /
pytorch_dev_root at.

Usage: make_fake_sysfs.py OUT_TARBALL
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from fake_sysfs import ARC_A770, pack  # noqa: E402


def main(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    pack(target, "arc", [ARC_A770])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
