"""Unit tests for plugins/modules/xpulab_gpu_inventory.py, on fake sysfs trees."""

from __future__ import annotations

import json
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import module_runner
import pytest
import xpulab_gpu_inventory as inv  # type: ignore[import-not-found]
import yaml  # type: ignore[import-untyped]
from fake_sysfs import (
    ARC_A770,
    ARC_B580,
    FLEX_170,
    INTEGRATED_UHD770,
    MAX_1550,
    NVIDIA_H100,
    FakeGpu,
    build,
)


# A770 at renderD129/card1, integrated at renderD128/card0, Max at renderD130/card2.
MIXED = [
    replace(ARC_A770, render=129, card=1),
    INTEGRATED_UHD770,
    replace(MAX_1550, render=130, card=2),
]


def scan(tmp_path: Path, gpus: list[FakeGpu], absolute: bool = False) -> list[dict[str, Any]]:
    sys_root, dev_root = build(tmp_path, gpus, absolute)
    return inv.scan(str(sys_root), str(dev_root))  # type: ignore[no-any-return]


def only(tmp_path: Path, gpu: FakeGpu) -> dict[str, Any]:
    (found,) = scan(tmp_path, [gpu])
    return found


# --- scan: one card at a time ---------------------------------------------


@pytest.mark.parametrize("absolute", [False, True])
def test_arc_a770(tmp_path: Path, absolute: bool) -> None:
    (gpu,) = scan(tmp_path, [ARC_A770], absolute)
    assert gpu == {
        "pci_address": "0000:03:00.0",
        "vendor_id": "0x8086",
        "device_id": "0x56a0",
        "subsystem_device": "0x1020",
        "pci_class": "0x030000",
        "vendor": "intel",
        "family": "alchemist",
        "has_media": True,
        "min_kernel": "6.2",
        "required_driver": None,
        "driver": "i915",
        "render_node": "/dev/dri/renderD128",
        "card_node": "/dev/dri/card0",
        "render_by_path": "/dev/dri/by-path/pci-0000:03:00.0-render",
        "card_by_path": "/dev/dri/by-path/pci-0000:03:00.0-card",
        "by_path_present": True,
    }
    assert inv.gate([gpu], "6.2.0-39-generic") == []
    assert inv.gate([gpu], "6.1.0-26-amd64") == [
        "kernel 6.1.0-26-amd64 too old for alchemist at 0000:03:00.0 (needs >= 6.2)"
    ]


def test_arc_b580_on_xe(tmp_path: Path) -> None:
    gpu = only(tmp_path, ARC_B580)
    assert (gpu["family"], gpu["has_media"], gpu["min_kernel"]) == ("battlemage", True, "6.11")
    assert (gpu["required_driver"], gpu["driver"], gpu["device_id"]) == ("xe", "xe", "0xe20b")
    assert inv.gate([gpu], "6.12.48+deb13-amd64") == []
    assert inv.gate([gpu], "6.11.0") == []


def test_arc_b580_on_an_old_kernel(tmp_path: Path) -> None:
    gpu = only(tmp_path, ARC_B580)
    assert inv.gate([gpu], "6.8.0-45-generic") == [
        "kernel 6.8.0-45-generic too old for battlemage at 0000:03:00.0 (needs >= 6.11)"
    ]


def test_arc_b580_bound_to_i915(tmp_path: Path) -> None:
    gpu = only(tmp_path, replace(ARC_B580, driver="i915"))
    assert gpu["driver"] == "i915"
    assert inv.gate([gpu], "6.12.0") == [
        "battlemage at 0000:03:00.0 is bound to i915; it needs the xe driver"
    ]


def test_arc_b580_unbound() -> None:
    gpu = {"vendor": "intel", "family": "battlemage", "has_media": True, "min_kernel": "6.11",
           "required_driver": "xe", "driver": None, "pci_address": "0000:03:00.0"}
    assert inv.gate([gpu], "6.12.0") == [
        "battlemage at 0000:03:00.0 is not bound to a driver; it needs the xe driver"
    ]


def test_flex_170(tmp_path: Path) -> None:
    gpu = only(tmp_path, FLEX_170)
    assert (gpu["family"], gpu["has_media"], gpu["min_kernel"]) == ("flex", True, None)
    assert (gpu["pci_address"], gpu["pci_class"]) == ("0000:4d:00.0", "0x038000")
    assert inv.gate([gpu], "5.15.0-91-generic") == []


def test_data_center_gpu_max_cannot_decode(tmp_path: Path) -> None:
    gpu = only(tmp_path, MAX_1550)
    assert (gpu["family"], gpu["has_media"], gpu["device_id"]) == ("max", False, "0x0bd5")
    assert inv.gate([gpu], "6.8.0") == [
        "only GPUs without media engines (Data Center GPU Max / Ponte Vecchio) found: 0000:3a:00.0 (max 0x0bd5)"
    ]


def test_integrated(tmp_path: Path) -> None:
    gpu = only(tmp_path, INTEGRATED_UHD770)
    assert (gpu["pci_address"], gpu["family"], gpu["has_media"]) == ("0000:00:02.0", "integrated", True)
    assert gpu["render_node"] == "/dev/dri/renderD128"
    assert inv.gate([gpu], "6.1.0-26-amd64") == []


def test_unknown_intel_off_bus_00(tmp_path: Path) -> None:
    gpu = only(tmp_path, FakeGpu(bdf="0000:05:00.0", device="0x1234"))
    assert (gpu["family"], gpu["has_media"], gpu["min_kernel"]) == ("unknown-intel", None, None)
    assert inv.gate([gpu], "6.12.0") == [
        "no Intel GPU known to have media engines found: 0000:05:00.0 (unknown-intel 0x1234)"
    ]


def test_nvidia_only(tmp_path: Path) -> None:
    gpu = only(tmp_path, NVIDIA_H100)
    assert (gpu["vendor"], gpu["vendor_id"], gpu["family"], gpu["has_media"]) == ("nvidia", "0x10de", None, None)
    assert gpu["driver"] == "nvidia"
    assert inv.gate([gpu], "6.12.0") == ["no Intel GPU found"]
    result = inv.inventory(str(tmp_path / "sys"), str(tmp_path / "dev"), "6.12.0")
    assert (result["intel_gpus"], result["media_gpus"]) == ([], [])
    assert result["counts"] == {"gpus": 1, "intel_gpus": 0, "media_gpus": 0}


def test_no_gpu_at_all(tmp_path: Path) -> None:
    sys_root, dev_root = build(tmp_path, [])
    assert not (sys_root / "class" / "drm").exists()
    result = inv.inventory(str(sys_root), str(dev_root), "6.12.0")
    assert result == {
        "gpus": [],
        "intel_gpus": [],
        "media_gpus": [],
        "counts": {"gpus": 0, "intel_gpus": 0, "media_gpus": 0},
        "kernel_release": "6.12.0",
        "problems": ["no Intel GPU found"],
    }


def test_missing_by_path_links(tmp_path: Path) -> None:
    sys_root, dev_root = build(tmp_path, [replace(ARC_A770, by_path=False)])
    assert not (dev_root / "dri" / "by-path").exists()
    (gpu,) = inv.scan(str(sys_root), str(dev_root))
    assert (gpu["render_by_path"], gpu["card_by_path"], gpu["by_path_present"]) == (None, None, False)
    assert (gpu["render_node"], gpu["card_node"]) == ("/dev/dri/renderD128", "/dev/dri/card0")


def test_pci_address_from_directory_name_without_uevent(tmp_path: Path) -> None:
    gpu = only(tmp_path, replace(ARC_A770, uevent=False))
    assert gpu["pci_address"] == "0000:03:00.0"
    assert gpu["render_by_path"] == "/dev/dri/by-path/pci-0000:03:00.0-render"


def test_render_only_gpu_has_no_card(tmp_path: Path) -> None:
    gpu = only(tmp_path, replace(ARC_A770, card=None))
    assert (gpu["card_node"], gpu["card_by_path"]) == (None, None)
    assert gpu["render_by_path"] == "/dev/dri/by-path/pci-0000:03:00.0-render"


# --- a mixed node ---------------------------------------------------------


def test_mixed_node(tmp_path: Path) -> None:
    sys_root, dev_root = build(tmp_path, MIXED)
    result = inv.inventory(str(sys_root), str(dev_root), "6.8.0-45-generic")
    gpus = result["gpus"]
    assert [g["render_node"] for g in gpus] == [f"/dev/dri/renderD{n}" for n in (128, 129, 130)]
    assert [g["card_node"] for g in gpus] == [f"/dev/dri/card{n}" for n in (0, 1, 2)]
    assert [g["family"] for g in gpus] == ["integrated", "alchemist", "max"]
    assert [g["pci_address"] for g in result["media_gpus"]] == ["0000:00:02.0", "0000:03:00.0"]
    assert result["intel_gpus"] == gpus
    assert result["counts"] == {"gpus": 3, "intel_gpus": 3, "media_gpus": 2}
    assert result["problems"] == []
    assert all(g["render_by_path"].startswith("/dev/dri/by-path/pci-") for g in gpus)
    assert not any(str(tmp_path) in json.dumps(g) for g in gpus)


def test_mixed_node_on_an_old_kernel_names_the_gpu(tmp_path: Path) -> None:
    gpus = scan(tmp_path, MIXED)
    assert inv.gate(gpus, "5.15.0-91-generic") == [
        "kernel 5.15.0-91-generic too old for alchemist at 0000:03:00.0 (needs >= 6.2)"
    ]


def test_render_nodes_sort_by_number(tmp_path: Path) -> None:
    gpus = scan(tmp_path, [replace(ARC_A770, render=1000, card=10), replace(FLEX_170, render=999, card=9)])
    assert [g["render_node"] for g in gpus] == ["/dev/dri/renderD999", "/dev/dri/renderD1000"]
    assert [g["card_node"] for g in gpus] == ["/dev/dri/card9", "/dev/dri/card10"]


# --- pure helpers ---------------------------------------------------------


@pytest.mark.parametrize(("release", "version"), [
    ("6.1.0-26-amd64", (6, 1, 0)),
    ("6.8.0-45-generic", (6, 8, 0)),
    ("6.12.48+deb13-amd64", (6, 12, 48)),
    ("6.11", (6, 11, 0)),
    ("5.15.167.4-microsoft-standard-WSL2", (5, 15, 167)),
    ("garbage", None),
])
def test_kernel_version(release: str, version: tuple[int, int, int] | None) -> None:
    assert inv.kernel_version(release) == version


def test_unparseable_kernel_counts_as_too_old() -> None:
    gpu = {"vendor": "intel", "family": "alchemist", "has_media": True, "min_kernel": "6.2",
           "required_driver": None, "driver": "i915", "pci_address": "0000:03:00.0"}
    assert inv.gate([gpu], "weird") == ["kernel weird too old for alchemist at 0000:03:00.0 (needs >= 6.2)"]


@pytest.mark.parametrize(("device", "bdf", "family"), [
    ("0x56a0", "0000:03:00.0", "alchemist"),
    ("0x5697", "0000:03:00.0", "alchemist"),
    ("0x56bf", "0000:03:00.0", "alchemist"),
    ("0x56c1", "0000:03:00.0", "flex"),
    ("0xe202", "0000:03:00.0", "battlemage"),
    ("0xe215", "0000:03:00.0", "battlemage"),
    ("0xe216", "0000:03:00.0", "battlemage"),
    ("0x0bd0", "0000:3a:00.0", "max"),
    ("0x0bdb", "0000:3a:00.0", "max"),
    ("0x0b69", "0000:3a:00.0", "max"),
    ("0x9a49", "0000:00:02.0", "integrated"),
    ("0x9a49", "0000:05:00.0", "unknown-intel"),
])
def test_classify(device: str, bdf: str, family: str) -> None:
    assert inv.classify("0x8086", device, bdf)[0] == family


def test_intel_non_display_device_on_bus_00_is_not_integrated() -> None:
    assert inv.classify("0x8086", "0x7d1d", "0000:00:0b.0", "0x120000")[0] == "unknown-intel"


# --- the module's documentation -----------------------------------------


@pytest.mark.parametrize("name", ["DOCUMENTATION", "EXAMPLES", "RETURN"])
def test_documentation_is_yaml(name: str) -> None:
    assert yaml.safe_load(getattr(inv, name))


def test_documented_options_match_the_argument_spec() -> None:
    options = yaml.safe_load(inv.DOCUMENTATION)["options"]
    assert options.keys() == inv.ARGUMENT_SPEC.keys()
    for name, spec in inv.ARGUMENT_SPEC.items():
        assert (options[name]["type"], options[name].get("default")) == (spec["type"], spec.get("default"))


def test_documented_return_keys_match_the_result(tmp_path: Path) -> None:
    sys_root, dev_root = build(tmp_path, [ARC_A770])
    result = inv.inventory(str(sys_root), str(dev_root), "6.12.0")
    assert yaml.safe_load(inv.RETURN).keys() == result.keys()
    assert yaml.safe_load(inv.RETURN)["gpus"]["sample"] == result["gpus"]


# --- the module through AnsibleModule -------------------------------------


def run_module(tmp_path: Path, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return module_runner.run_module("xpulab_gpu_inventory", tmp_path, args)


def test_module_end_to_end(tmp_path: Path) -> None:
    sys_root, dev_root = build(tmp_path, MIXED)
    rc, result = run_module(tmp_path, {"sysfs_root": str(sys_root), "dev_root": str(dev_root),
                                       "kernel_release": "6.1.0-26-amd64"})
    assert rc == 0, result
    assert result["changed"] is False
    assert "failed" not in result
    assert result["counts"] == {"gpus": 3, "intel_gpus": 3, "media_gpus": 2}
    assert result["gpus"] == inv.scan(str(sys_root), str(dev_root))
    assert result["problems"] == ["kernel 6.1.0-26-amd64 too old for alchemist at 0000:03:00.0 (needs >= 6.2)"]


def test_module_check_mode_and_running_kernel(tmp_path: Path) -> None:
    sys_root, dev_root = build(tmp_path, [])
    rc, result = run_module(tmp_path, {"sysfs_root": str(sys_root), "dev_root": str(dev_root),
                                       "_ansible_check_mode": True})
    assert rc == 0, result
    assert result["changed"] is False
    assert result["kernel_release"] == platform.release()
    assert (result["gpus"], result["problems"]) == ([], ["no Intel GPU found"])


def test_module_rejects_unknown_options(tmp_path: Path) -> None:
    rc, result = run_module(tmp_path, {"bogus": 1})
    assert rc != 0
    assert result["failed"] is True
    assert "bogus" in result["msg"]
