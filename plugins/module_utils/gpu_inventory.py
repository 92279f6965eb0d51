"""GPU inventory of a node from sysfs (modules xpulab_gpu_inventory and xpulab_state)."""

from __future__ import annotations

import os
import platform
import re
from typing import Any, Optional, Tuple

Gpu = dict[str, Any]
# (family, has_media, min_kernel, required_driver)
Profile = Tuple[Optional[str], Optional[bool], Optional[str], Optional[str]]  # runtime: Python 3.8

# PCI device IDs from the Linux kernel's include/drm/intel/pciids.h
# (mainline: INTEL_DG2_IDS, INTEL_ATS_M_IDS, INTEL_BMG_IDS, INTEL_PVC_IDS).
# Additions, noted per table, come from other versions of that list.

# INTEL_DG2_G10/G11/G12 (_D desktop, _E embedded, _M mobile): Arc A-series.
# Not 0x5698: upstream dropped it in 2023 as reserved ("drm/i915/dg2: Drop one PCI ID").
ALCHEMIST_IDS = frozenset({
    0x5690, 0x5691, 0x5692, 0x5693, 0x5694, 0x5695, 0x5696, 0x5697,
    0x56A0, 0x56A1, 0x56A2, 0x56A3, 0x56A4, 0x56A5, 0x56A6,
    0x56B0, 0x56B1, 0x56B2, 0x56B3,
    0x56BA, 0x56BB, 0x56BC, 0x56BD, 0x56BE, 0x56BF,
})

# INTEL_ATS_M150_IDS (Flex 170) and INTEL_ATS_M75_IDS (Flex 140).
FLEX_IDS = frozenset({0x56C0, 0x56C1, 0x56C2})

# INTEL_BMG_IDS (G21 and E220-E223). 0xE215 is in the lists backported to
# the 6.12+ stable kernels but not in the current upstream list; kept so such
# a card is still recognised.
BATTLEMAGE_IDS = frozenset({
    0xE202, 0xE209, 0xE20B, 0xE20C, 0xE20D, 0xE210, 0xE211, 0xE212, 0xE215,
    0xE216, 0xE220, 0xE221, 0xE222, 0xE223,
})

# INTEL_PVC_IDS (Data Center GPU Max / Ponte Vecchio). 0x0BD0-0x0BD2 come from
# the older i915 list of Intel's backport driver
# (https://github.com/intel-gpu/intel-gpu-i915-backports); 0x0BD3 completes
# the range 0x0BD0-0x0BDB.
MAX_IDS = frozenset({0x0B69, 0x0B6E, *range(0x0BD0, 0x0BDC), 0x0BE0, 0x0BE1, 0x0BE5})

# Kernel minimums: Alchemist >= 6.2 (upstream i915 without force_probe; the
# backport driver's README says to use 6.2 or later); Battlemage needs xe and
# >= 6.11, where INTEL_BMG_IDS first appear in xe. Flex has no minimum here:
# Intel supports it on older kernels through its own backport driver.
FAMILIES: list[tuple[frozenset[int], Profile]] = [
    (ALCHEMIST_IDS, ("alchemist", True, "6.2", None)),
    (BATTLEMAGE_IDS, ("battlemage", True, "6.11", "xe")),
    (FLEX_IDS, ("flex", True, None, None)),
    (MAX_IDS, ("max", False, None, None)),
]
# Other Intel GPUs: on bus 00 they are integrated (Xe/UHD, with media engines);
# elsewhere unknown, so has_media is None (not counted as a media GPU).
INTEGRATED: Profile = ("integrated", True, None, None)
UNKNOWN_INTEL: Profile = ("unknown-intel", None, None, None)
NOT_INTEL: Profile = (None, None, None, None)

VENDORS = {"0x8086": "intel", "0x10de": "nvidia", "0x1002": "amd"}

BDF_RE = re.compile(r"^[0-9a-f]{4}:([0-9a-f]{2}):[0-9a-f]{2}\.[0-7]$")
RENDER_RE = re.compile(r"^renderD(\d+)$")
CARD_RE = re.compile(r"^card\d+$")


def _read(path: str) -> str | None:
    """Stripped content of a sysfs file, or None when it cannot be read."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            return handle.read().strip()
    except OSError:
        return None


def _hex(text: str | None, width: int = 4) -> str | None:
    """Normalise a sysfs hex value ("0x56A0\\n") to lowercase "0x56a0"."""
    try:
        return f"0x{int(text or '', 16):0{width}x}"
    except ValueError:
        return None


def pci_address(device_dir: str) -> str | None:
    """BDF of a PCI device directory: uevent PCI_SLOT_NAME, else its name."""
    for line in (_read(os.path.join(device_dir, "uevent")) or "").splitlines():
        key, _sep, value = line.partition("=")
        if key == "PCI_SLOT_NAME" and value:
            return value.lower()
    name = os.path.basename(device_dir).lower()
    return name if BDF_RE.match(name) else None


def classify(vendor_id: str | None, device_id: str | None, bdf: str | None,
             pci_class: str | None = None) -> Profile:
    """(family, has_media, min_kernel, required_driver) of a PCI device."""
    if vendor_id != "0x8086":
        return NOT_INTEL
    number = int(device_id, 16) if device_id else -1
    for ids, profile in FAMILIES:
        if number in ids:
            return profile
    match = BDF_RE.match(bdf or "")
    display = pci_class is None or pci_class.startswith("0x03")
    return INTEGRATED if match and match.group(1) == "00" and display else UNKNOWN_INTEL


def _by_path(dev_root: str, bdf: str | None, kind: str) -> str | None:
    """/dev path of the by-path link of a GPU when it exists under dev_root."""
    if bdf is None:
        return None
    rel = f"dri/by-path/pci-{bdf}-{kind}"
    return "/dev/" + rel if os.path.exists(os.path.join(dev_root, rel)) else None


def _drm_devices(drm_dir: str, pattern: re.Pattern[str]) -> dict[str, str]:
    """DRM entry name -> resolved device directory, for names matching pattern."""
    try:
        names = os.listdir(drm_dir)
    except OSError:
        return {}
    found: dict[str, str] = {}
    for name in names:
        link = os.path.join(drm_dir, name, "device")
        if pattern.match(name) and os.path.isdir(link):
            found[name] = os.path.realpath(link)
    return found


def describe(device_dir: str, render: str, card: str | None, dev_root: str) -> Gpu:
    """One GPU as reported by the module."""
    vendor_id = _hex(_read(os.path.join(device_dir, "vendor")))
    device_id = _hex(_read(os.path.join(device_dir, "device")))
    pci_class = _hex(_read(os.path.join(device_dir, "class")), 6)
    bdf = pci_address(device_dir)
    driver_link = os.path.join(device_dir, "driver")
    driver = os.path.basename(os.readlink(driver_link)) if os.path.islink(driver_link) else None
    family, has_media, min_kernel, required_driver = classify(vendor_id, device_id, bdf, pci_class)
    render_by_path = _by_path(dev_root, bdf, "render")
    return {
        "pci_address": bdf,
        "vendor_id": vendor_id,
        "device_id": device_id,
        "subsystem_device": _hex(_read(os.path.join(device_dir, "subsystem_device"))),
        "pci_class": pci_class,
        "vendor": VENDORS.get(vendor_id or "", "other"),
        "family": family,
        "has_media": has_media,
        "min_kernel": min_kernel,
        "required_driver": required_driver,
        "driver": driver,
        "render_node": f"/dev/dri/{render}",
        "card_node": f"/dev/dri/{card}" if card else None,
        "render_by_path": render_by_path,
        "card_by_path": _by_path(dev_root, bdf, "card") if card else None,
        "by_path_present": render_by_path is not None,
    }


def scan(sysfs_root: str = "/sys", dev_root: str = "/dev") -> list[Gpu]:
    """Every GPU with a render node, sorted by render node number."""
    drm_dir = os.path.join(sysfs_root, "class", "drm")
    renders = _drm_devices(drm_dir, RENDER_RE)
    cards = {device: name for name, device in _drm_devices(drm_dir, CARD_RE).items()}
    order = sorted(renders, key=lambda name: int(name[len("renderD"):]))
    return [describe(renders[name], name, cards.get(renders[name]), dev_root) for name in order]


def kernel_version(release: str) -> tuple[int, int, int] | None:
    """(major, minor, patch) of a release like "6.1.0-26-amd64" or "6.11"."""
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", release.strip())
    if not match:
        return None
    major, minor, patch = match.groups()
    return (int(major), int(minor), int(patch or 0))


def gate(gpus: list[Gpu], kernel_release: str) -> list[str]:
    """Human-readable reasons the node cannot be a decode node; empty when it can.

    Needs an Intel GPU with media engines; then every such GPU must have a new
    enough kernel and, for Battlemage, be bound to xe.
    """
    intel = [gpu for gpu in gpus if gpu.get("vendor") == "intel"]
    if not intel:
        return ["no Intel GPU found"]
    media = [gpu for gpu in intel if gpu.get("has_media") is True]
    if not media:
        found = ", ".join(f"{gpu.get('pci_address')} ({gpu.get('family')} {gpu.get('device_id')})" for gpu in intel)
        if all(gpu.get("has_media") is False for gpu in intel):
            return [f"only GPUs without media engines (Data Center GPU Max / Ponte Vecchio) found: {found}"]
        return [f"no Intel GPU known to have media engines found: {found}"]
    running = kernel_version(kernel_release)
    problems: list[str] = []
    for gpu in media:
        where = f"{gpu.get('family')} at {gpu.get('pci_address')}"
        needed = gpu.get("min_kernel")
        wanted = kernel_version(needed) if needed else None
        if wanted and (running is None or running < wanted):
            problems.append(f"kernel {kernel_release} too old for {where} (needs >= {needed})")
        required = gpu.get("required_driver")
        if required and gpu.get("driver") != required:
            bound = f"bound to {gpu['driver']}" if gpu.get("driver") else "not bound to a driver"
            problems.append(f"{where} is {bound}; it needs the {required} driver")
    return problems


def inventory(sysfs_root: str = "/sys", dev_root: str = "/dev",
              kernel_release: str | None = None) -> dict[str, Any]:
    """The module's result, without `changed`."""
    release = kernel_release or platform.release()
    gpus = scan(sysfs_root, dev_root)
    intel = [gpu for gpu in gpus if gpu["vendor"] == "intel"]
    media = [gpu for gpu in intel if gpu["has_media"] is True]
    return {
        "gpus": gpus,
        "intel_gpus": intel,
        "media_gpus": media,
        "counts": {"gpus": len(gpus), "intel_gpus": len(intel), "media_gpus": len(media)},
        "kernel_release": release,
        "problems": gate(gpus, release),
    }
