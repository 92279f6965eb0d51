"""Build fake sysfs and /dev trees laid out the way Linux lays them out.

For a GPU at 0000:03:00.0 behind the root port 0000:00:01.0::

    sys/devices/pci0000:00/0000:00:01.0/0000:03:00.0/{vendor,device,subsystem_device,class,uevent}
    sys/devices/.../0000:03:00.0/driver -> ../../../../bus/pci/drivers/i915
    sys/devices/.../0000:03:00.0/drm/renderD128/device -> ../../../0000:03:00.0
    sys/devices/.../0000:03:00.0/drm/card0/card0-DP-1/device -> ../../card0
    sys/class/drm/renderD128 -> ../../devices/pci0000:00/0000:00:01.0/0000:03:00.0/drm/renderD128
    sys/class/drm/card0-DP-1 -> ../../devices/.../drm/card0/card0-DP-1
    dev/dri/renderD128, dev/dri/card0 (plain files standing in for device nodes)
    dev/dri/by-path/pci-0000:03:00.0-render -> ../renderD128
"""

from __future__ import annotations

import os
import sys
import tarfile
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path


@dataclass(frozen=True)
class FakeGpu:
    bdf: str
    device: str
    vendor: str = "0x8086"
    driver: str | None = "i915"
    render: int = 128
    card: int | None = 0
    bridge: str | None = "0000:00:01.0"  # upstream root port; None = on the root bus
    pci_class: str = "0x030000"
    subsystem_device: str = "0x1020"
    uevent: bool = True  # write PCI_SLOT_NAME in uevent
    by_path: bool = True  # create /dev/dri/by-path links


def _link(link: Path, target: Path, absolute: bool) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(target if absolute else os.path.relpath(target, link.parent))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def add_gpu(sys_root: Path, dev_root: Path, gpu: FakeGpu, absolute: bool = False) -> Path:
    """Add one GPU to the trees; return its PCI device directory."""
    root_bus = f"pci{(gpu.bridge or gpu.bdf)[:7]}"  # "pci0000:00"
    pci_dir = sys_root.joinpath("devices", root_bus, *([gpu.bridge] if gpu.bridge else []), gpu.bdf)
    _write(pci_dir / "vendor", gpu.vendor + "\n")
    _write(pci_dir / "device", gpu.device + "\n")
    _write(pci_dir / "subsystem_device", gpu.subsystem_device + "\n")
    _write(pci_dir / "class", gpu.pci_class + "\n")
    uevent = f"DRIVER={gpu.driver}\n" if gpu.driver else ""
    if gpu.uevent:
        uevent += f"PCI_CLASS={gpu.pci_class[2:].upper()}\nPCI_SLOT_NAME={gpu.bdf}\n"
    _write(pci_dir / "uevent", uevent)
    if gpu.driver:
        driver_dir = sys_root / "bus" / "pci" / "drivers" / gpu.driver
        driver_dir.mkdir(parents=True, exist_ok=True)
        _link(pci_dir / "driver", driver_dir, absolute)
        _link(driver_dir / gpu.bdf, pci_dir, absolute)

    drm = sys_root / "class" / "drm"
    nodes = [f"renderD{gpu.render}"] + ([f"card{gpu.card}"] if gpu.card is not None else [])
    for node in nodes:
        node_dir = pci_dir / "drm" / node
        _write(node_dir / "dev", "226:0\n")
        _write(node_dir / "uevent", f"DEVNAME=dri/{node}\n")
        _link(node_dir / "device", pci_dir, absolute)
        _link(drm / node, node_dir, absolute)
        _write(dev_root / "dri" / node, "")
        kind = "render" if node.startswith("render") else "card"
        if gpu.by_path:
            _link(dev_root / "dri" / "by-path" / f"pci-{gpu.bdf}-{kind}", dev_root / "dri" / node, absolute)
    if gpu.card is not None:  # a display connector: matches "card*" but is no card node
        connector = pci_dir / "drm" / f"card{gpu.card}" / f"card{gpu.card}-DP-1"
        _link(connector / "device", pci_dir / "drm" / f"card{gpu.card}", absolute)
        _link(drm / connector.name, connector, absolute)
    return pci_dir


def build(tmp_path: Path, gpus: list[FakeGpu], absolute: bool = False) -> tuple[Path, Path]:
    """Fake (sysfs_root, dev_root) under tmp_path holding the given GPUs.

    With no GPUs, neither /sys/class/drm nor /dev/dri exists.
    """
    sys_root, dev_root = tmp_path / "sys", tmp_path / "dev"
    sys_root.mkdir()
    dev_root.mkdir()
    if gpus:
        _write(sys_root / "class" / "drm" / "version", "drm 1.1.0 20060810\n")
    for gpu in gpus:
        add_gpu(sys_root, dev_root, gpu, absolute)
    return sys_root, dev_root



def pack(target: Path, name: str, gpus: list[FakeGpu]) -> Path:
    """Build the trees of `gpus` as <name>/sys and <name>/dev and pack them as the tarball `target`.

    Relative symlinks are stored as symlinks. The tarball is written to a
    hidden file beside `target` and renamed over it, so `target` is never half
    written (the molecule playbooks skip the build when it exists).
    """
    partial = target.with_name(f".{target.name}.partial")
    with tempfile.TemporaryDirectory() as tmp:
        case_dir = Path(tmp) / name
        case_dir.mkdir()
        build(case_dir, gpus)
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(case_dir, arcname=name)
    partial.replace(target)
    return target


# The cards of the tests; vary them with dataclasses.replace().
ARC_A770 = FakeGpu(bdf="0000:03:00.0", device="0x56a0", driver="i915")
ARC_B580 = FakeGpu(bdf="0000:03:00.0", device="0xe20b", driver="xe")
FLEX_170 = FakeGpu(bdf="0000:4d:00.0", device="0x56c0", driver="i915", pci_class="0x038000")
MAX_1550 = FakeGpu(bdf="0000:3a:00.0", device="0x0bd5", driver="i915", pci_class="0x038000")
INTEGRATED_UHD770 = FakeGpu(bdf="0000:00:02.0", device="0xa780", driver="i915", bridge=None)
NVIDIA_H100 = FakeGpu(bdf="0000:65:00.0", vendor="0x10de", device="0x2330", driver="nvidia")


# The trees the molecule scenarios unpack on their nodes under /srv/fake:
# scenario -> case -> GPUs. Each case is packed as OUT_DIR/<case>.tar.gz.
SCENARIOS: dict[str, dict[str, list[FakeGpu]]] = {
    # intel_gpu side_effect.yml: verdicts also checked by test_intel_gpu_fake_trees.py.
    "intel_gpu": {
        "max-only": [MAX_1550],  # Data Center GPU Max: no media engines
        "no-gpu": [],
        "battlemage": [ARC_B580],  # on xe; needs kernel >= 6.11
        "arc": [ARC_A770],  # Alchemist on i915; fine on 6.8
    },
    # gpu_containers prepare.yml: an Arc A770 with /dev/dri/by-path links and an
    # Arc B580 on xe without them (the role's by-path warning), and no GPU at all.
    "gpu_containers": {
        "two-gpus": [
            ARC_A770,
            replace(ARC_B580, bdf="0000:83:00.0", render=129, card=1, bridge="0000:80:01.0", by_path=False),
        ],
        "no-gpu": [],
    },
    # pytorch side_effect.yml: an Arc A770 that torch cannot see.
    "pytorch": {"arc": [ARC_A770]},
}
USAGE = f"Usage: fake_sysfs.py SCENARIO OUT_DIR   (SCENARIO: {', '.join(SCENARIOS)}; prints one tarball path per line)"


def main(argv: list[str]) -> int:
    """Pack each case of a scenario as OUT_DIR/<case>.tar.gz and print the paths; 2 on a usage error."""
    if len(argv) != 3 or argv[1] not in SCENARIOS:
        print(USAGE, file=sys.stderr)
        return 2
    out_dir = Path(argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, gpus in SCENARIOS[argv[1]].items():
        print(pack(out_dir / f"{name}.tar.gz", name, gpus))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
