"""Unit and acceptance tests for plugins/modules/xpulab_cdi_spec.py.

Specs are generated from GPU inventories of fake sysfs trees (the real
xpulab_gpu_inventory pipeline), validated by the module's own checks and by a
JSON schema written here from the CDI SPEC.md field list, and finally handed
to podman, which must resolve the device names and create the nodes.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import module_runner
import pytest
import xpulab_cdi_spec as cdi  # type: ignore[import-not-found]
import xpulab_gpu_inventory as inv  # type: ignore[import-not-found]
import yaml  # type: ignore[import-untyped]
import fake_sysfs
from fake_sysfs import ARC_A770, ARC_B580, INTEGRATED_UHD770, MAX_1550, FakeGpu, build

ROOT = Path(__file__).resolve().parents[2]

A770 = ARC_A770  # 0000:03:00.0, renderD128, card0, i915
B580 = replace(ARC_B580, bdf="0000:83:00.0", render=129, card=1, bridge="0000:80:01.0")

# --- a CDI JSON schema, written from SPEC.md (cncf-tags/container-device-interface) ---
# Field list of "CDI JSON Specification"; name rules of "Kind" and "CDI Devices"
# as implemented by api/producer/identifiers.go (device names may contain ":").
VENDOR_CLASS = r"[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?"
CDI_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["cdiVersion", "kind", "devices"],
    "additionalProperties": False,
    "properties": {
        "cdiVersion": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
        "kind": {"type": "string", "pattern": f"^{VENDOR_CLASS}/{VENDOR_CLASS}$"},
        "annotations": {"$ref": "#/definitions/annotations"},
        "devices": {"type": "array", "minItems": 1, "items": {"$ref": "#/definitions/device"}},
        "containerEdits": {"$ref": "#/definitions/containerEdits"},
    },
    "definitions": {
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "absolutePath": {"type": "string", "pattern": "^/"},
        "device": {
            "type": "object",
            "required": ["name", "containerEdits"],
            "additionalProperties": False,
            "properties": {
                "name": {"type": "string", "pattern": r"^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$"},
                "annotations": {"$ref": "#/definitions/annotations"},
                "containerEdits": {"$ref": "#/definitions/containerEdits"},
            },
        },
        "containerEdits": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "env": {"type": "array", "items": {"type": "string", "pattern": "^[^=]+="}},
                "deviceNodes": {"type": "array", "items": {"$ref": "#/definitions/deviceNode"}},
                "mounts": {"type": "array", "items": {
                    "type": "object", "required": ["hostPath", "containerPath"],
                    "properties": {"hostPath": {"type": "string"}, "containerPath": {"type": "string"},
                                   "type": {"type": "string"},
                                   "options": {"type": "array", "items": {"type": "string"}}}}},
                "hooks": {"type": "array", "items": {
                    "type": "object", "required": ["hookName", "path"],
                    "properties": {"hookName": {"type": "string"}, "path": {"$ref": "#/definitions/absolutePath"},
                                   "args": {"type": "array", "items": {"type": "string"}},
                                   "env": {"type": "array", "items": {"type": "string"}},
                                   "timeout": {"type": "integer", "minimum": 1}}}},
                "additionalGids": {"type": "array", "items": {"type": "integer", "minimum": 0}},
                "intelRdt": {"type": "object"},
            },
        },
        "deviceNode": {
            "type": "object",
            "required": ["path"],
            "additionalProperties": False,
            "properties": {
                "path": {"$ref": "#/definitions/absolutePath"},
                "hostPath": {"$ref": "#/definitions/absolutePath"},
                "type": {"enum": ["b", "c", "u", "p"]},
                "major": {"type": "integer"},
                "minor": {"type": "integer"},
                "fileMode": {"type": "integer"},
                "permissions": {"type": "string", "pattern": "^[rwm]*$"},
                "uid": {"type": "integer", "minimum": 0},
                "gid": {"type": "integer", "minimum": 0},
            },
        },
    },
}
jsonschema.Draft7Validator.check_schema(CDI_SCHEMA)


def assert_valid(spec: dict[str, Any]) -> None:
    """The spec passes the schema and the rules a schema cannot state."""
    jsonschema.Draft7Validator(CDI_SCHEMA).validate(spec)
    names = [device["name"] for device in spec["devices"]]
    assert len(names) == len(set(names)), f"duplicate device names: {names}"
    for device in spec["devices"]:
        paths = [node["path"] for node in device["containerEdits"]["deviceNodes"]]
        assert len(paths) == len(set(paths)), f"device {device['name']} repeats a path: {paths}"
        assert device["containerEdits"]["deviceNodes"], f"device {device['name']} has no edits"
    # hostPath and names starting with a digit are CDI 0.5.0 features.
    assert tuple(map(int, spec["cdiVersion"].split("."))) >= (0, 5, 0)
    assert cdi.validate_spec(spec) == []


def built(gpus: list[Any], **options: Any) -> dict[str, Any]:
    """build_spec for GPUs that make a spec."""
    spec: dict[str, Any] | None = cdi.build_spec(gpus, **options)
    assert spec is not None, "no spec for a non-empty GPU list"
    return spec


def media_gpus(tmp_path: Path, gpus: list[FakeGpu]) -> list[dict[str, Any]]:
    """media_gpus of the inventory of a fake node holding the GPUs."""
    sys_root, dev_root = build(tmp_path, gpus)
    found: list[dict[str, Any]] = inv.inventory(str(sys_root), str(dev_root), "6.12.0")["media_gpus"]
    return found


def nodes(spec: dict[str, Any], name: str) -> list[dict[str, str]]:
    (device,) = [device for device in spec["devices"] if device["name"] == name]
    found: list[dict[str, str]] = device["containerEdits"]["deviceNodes"]
    return found


def by_path(bdf: str, kind: str, host: str) -> dict[str, str]:
    return {"path": f"/dev/dri/by-path/pci-{bdf}-{kind}", "hostPath": host}


# --- specs from fake inventories -------------------------------------------


def test_one_gpu(tmp_path: Path) -> None:
    spec = built(media_gpus(tmp_path, [A770]))
    assert_valid(spec)
    assert (spec["cdiVersion"], spec["kind"]) == ("0.5.0", "intel.com/gpu")
    assert [device["name"] for device in spec["devices"]] == ["0", "0000:03:00.0", "all"]
    expected = [
        {"path": "/dev/dri/renderD128"},
        {"path": "/dev/dri/card0"},
        by_path("0000:03:00.0", "render", "/dev/dri/renderD128"),
        by_path("0000:03:00.0", "card", "/dev/dri/card0"),
    ]
    assert nodes(spec, "0") == nodes(spec, "0000:03:00.0") == nodes(spec, "all") == expected


def test_two_gpus(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [B580, A770])
    spec = built(gpus)
    assert_valid(spec)
    assert [device["name"] for device in spec["devices"]] == ["0", "1", "0000:03:00.0", "0000:83:00.0", "all"]
    assert nodes(spec, "0") == nodes(spec, "0000:03:00.0")
    assert nodes(spec, "1") == nodes(spec, "0000:83:00.0") == [
        {"path": "/dev/dri/renderD129"},
        {"path": "/dev/dri/card1"},
        by_path("0000:83:00.0", "render", "/dev/dri/renderD129"),
        by_path("0000:83:00.0", "card", "/dev/dri/card1"),
    ]
    assert nodes(spec, "all") == nodes(spec, "0") + nodes(spec, "1")
    assert [row["pci_address"] for row in cdi.gpu_table(gpus)] == ["0000:03:00.0", "0000:83:00.0"]


def test_no_gpu(tmp_path: Path) -> None:
    assert media_gpus(tmp_path, []) == []
    assert cdi.build_spec([]) is None


def test_gpu_without_by_path_links_still_gets_them_in_containers(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [replace(A770, by_path=False)])
    assert gpus[0]["by_path_present"] is False and gpus[0]["render_by_path"] is None
    spec = built(gpus)
    assert_valid(spec)
    # The links are built from the PCI address, not read from the host's /dev.
    assert by_path("0000:03:00.0", "render", "/dev/dri/renderD128") in nodes(spec, "0")
    assert by_path("0000:03:00.0", "card", "/dev/dri/card0") in nodes(spec, "0")


def test_gpu_without_card_node_or_pci_address() -> None:
    gpus = [{"pci_address": None, "render_node": "/dev/dri/renderD128", "card_node": None},
            {"pci_address": "0000:83:00.0", "render_node": "/dev/dri/renderD129", "card_node": None}]
    spec = built(gpus, order="render")
    assert_valid(spec)
    assert [device["name"] for device in spec["devices"]] == ["0", "1", "0000:83:00.0", "all"]
    assert nodes(spec, "0") == [{"path": "/dev/dri/renderD128"}]
    assert nodes(spec, "1") == [{"path": "/dev/dri/renderD129"},
                                by_path("0000:83:00.0", "render", "/dev/dri/renderD129")]


def test_intel_gpus_include_gpus_without_media_engines(tmp_path: Path) -> None:
    sys_root, dev_root = build(tmp_path, [A770, replace(MAX_1550, render=129, card=1)])
    found = inv.inventory(str(sys_root), str(dev_root), "6.12.0")
    assert len(built(found["media_gpus"])["devices"]) == 3
    spec = built(found["intel_gpus"])
    assert_valid(spec)
    assert [device["name"] for device in spec["devices"]] == ["0", "1", "0000:03:00.0", "0000:3a:00.0", "all"]
    assert nodes(spec, "1")[0] == {"path": "/dev/dri/renderD129"}  # the Max sorts after 03:00.0


# --- index order -------------------------------------------------------------


@pytest.mark.parametrize(("order", "expected"), [
    # Compute runtime default: discrete first (by PCI address), integrated last.
    ("runtime", ["0000:03:00.0", "0000:83:00.0", "0000:00:02.0"]),
    ("pci", ["0000:00:02.0", "0000:03:00.0", "0000:83:00.0"]),
    ("render", ["0000:00:02.0", "0000:83:00.0", "0000:03:00.0"]),
])
def test_index_order(tmp_path: Path, order: str, expected: list[str]) -> None:
    # Render numbers deliberately out of PCI order: B580 probed before A770.
    gpus = media_gpus(tmp_path, [INTEGRATED_UHD770, replace(B580, render=129, card=1),
                                 replace(A770, render=130, card=2)])
    assert [gpu["family"] for gpu in gpus] == ["integrated", "battlemage", "alchemist"]
    spec = built(gpus, order=order)
    assert_valid(spec)
    table = cdi.gpu_table(gpus, order)
    assert [row["pci_address"] for row in table] == expected
    for row in table:
        assert nodes(spec, row["name"])[0] == {"path": row["render_node"]}


def test_unknown_order_is_refused() -> None:
    with pytest.raises(cdi.SpecError, match="unknown order"):
        cdi.order_gpus([], "alphabetical")


# --- validation ---------------------------------------------------------------


def good_spec() -> dict[str, Any]:
    return {"cdiVersion": "0.5.0", "kind": "intel.com/gpu",
            "devices": [{"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/dri/renderD128"}]}}]}


@pytest.mark.parametrize(("change", "problem"), [
    (lambda s: s.update(cdiVersion="0.9.0"), "cdiVersion '0.9.0' is not one of"),
    (lambda s: s.update(cdiVersion="0.4.0"), "it needs at least 0.5.0"),
    (lambda s: s.update(kind="intel.com"), "is not <vendor>/<class>"),
    (lambda s: s.update(kind="intel.com/gpu/x"), "is not <vendor>/<class>"),
    (lambda s: s.update(kind="1ntel.com/gpu"), "is not <vendor>/<class>"),
    (lambda s: s.update(devices=[]), "at least one device"),
    (lambda s: s["devices"][0].update(name="gpu 0"), "device name 'gpu 0' is invalid"),
    (lambda s: s["devices"][0].update(name="0:"), "device name '0:' is invalid"),
    (lambda s: s["devices"][0].update(name="-0"), "device name '-0' is invalid"),
    (lambda s: s["devices"].append(s["devices"][0]), "device name 0 appears twice"),
    (lambda s: s["devices"][0].update(containerEdits={}), "empty containerEdits"),
    (lambda s: s["devices"][0]["containerEdits"]["deviceNodes"].append({"path": "dev/dri/card0"}),
     "'dev/dri/card0' is not a normalised absolute path"),
    (lambda s: s["devices"][0]["containerEdits"]["deviceNodes"].append(
        {"path": "/dev/dri/card0", "hostPath": "/dev/dri/../dri/card0"}), "is not a normalised absolute path"),
    (lambda s: s["devices"][0]["containerEdits"]["deviceNodes"].append({"path": "/dev/dri/renderD128"}),
     "appears twice"),
    (lambda s: s["devices"][0]["containerEdits"]["deviceNodes"][0].update(permissions="rwx"), "permissions 'rwx'"),
    (lambda s: s["devices"][0]["containerEdits"]["deviceNodes"][0].update(type="x"), "type 'x'"),
])
def test_validation_finds_problems(change: Any, problem: str) -> None:
    spec = good_spec()
    assert cdi.validate_spec(spec) == []
    change(spec)
    problems = cdi.validate_spec(spec)
    assert any(problem in text for text in problems), problems


def test_the_schema_catches_what_the_module_catches() -> None:
    spec = good_spec()
    spec["devices"][0]["name"] = "gpu 0"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(CDI_SCHEMA).validate(spec)


@pytest.mark.parametrize(("spec", "version"), [
    ({"kind": "a.com/b", "devices": [{"name": "gpu0", "containerEdits": {"deviceNodes": [{"path": "/dev/x"}]}}]}, "0.3.0"),
    ({"kind": "a.com/b", "devices": [{"name": "0", "containerEdits": {"deviceNodes": [{"path": "/dev/x"}]}}]}, "0.5.0"),
    ({"kind": "a.com/b", "devices": [{"name": "g", "containerEdits": {
        "deviceNodes": [{"path": "/dev/y", "hostPath": "/dev/x"}]}}]}, "0.5.0"),
    ({"kind": "a.com/b", "devices": [{"name": "g", "containerEdits": {
        "mounts": [{"hostPath": "/a", "containerPath": "/b", "type": "bind"}]}}]}, "0.4.0"),
    ({"kind": "a.com/b.c", "devices": [{"name": "g", "containerEdits": {"deviceNodes": [{"path": "/dev/x"}]}}]}, "0.6.0"),
    ({"kind": "a.com/b", "annotations": {"k": "v"}, "devices": []}, "0.6.0"),
])
def test_minimum_version(spec: dict[str, Any], version: str) -> None:
    assert cdi.minimum_version(spec) == version


def test_build_refuses_a_spec_it_cannot_write() -> None:
    gpus = [{"pci_address": "0000:03:00.0", "render_node": "/dev/dri/renderD128", "card_node": "/dev/dri/card0"}]
    with pytest.raises(cdi.SpecError, match="needs at least 0.5.0"):
        cdi.build_spec(gpus, cdi_version="0.4.0")
    with pytest.raises(cdi.SpecError, match="is not <vendor>/<class>"):
        cdi.build_spec(gpus, vendor="intel.com/x")


@pytest.mark.parametrize(("gpus", "message"), [
    ([{"pci_address": "0000:03:00.0"}], "has no absolute render_node"),
    ([{"render_node": "renderD128"}], "has no absolute render_node"),
    ([{"render_node": "/dev/dri/renderD128", "card_node": "card0"}], "not an absolute path"),
    ([{"render_node": "/dev/dri/renderD128", "pci_address": "03:00.0"}], "malformed pci_address"),
    ([{"render_node": "/dev/dri/renderD128"}, {"render_node": "/dev/dri/renderD128"}], "repeats render_node"),
    ([{"render_node": "/dev/dri/renderD128", "pci_address": "0000:03:00.0"},
      {"render_node": "/dev/dri/renderD129", "pci_address": "0000:03:00.0"}], "repeats pci_address"),
    (["/dev/dri/renderD128"], "is not a dict"),
])
def test_bad_gpu_items_are_refused(gpus: list[Any], message: str) -> None:
    with pytest.raises(cdi.SpecError, match=message):
        cdi.build_spec(gpus)


# --- rendering ------------------------------------------------------------------


@pytest.mark.parametrize("dest", ["/etc/cdi/intel.com-gpu.yaml", "/etc/cdi/intel.com-gpu.json"])
def test_rendered_file_parses_back_to_the_spec(tmp_path: Path, dest: str) -> None:
    gpus = media_gpus(tmp_path, [A770, B580])
    spec = built(gpus)
    text = cdi.render(spec, dest, cdi.gpu_table(gpus))
    assert (json.loads(text) if dest.endswith(".json") else yaml.safe_load(text)) == spec
    if dest.endswith(".yaml"):
        # Quoted: unquoted, YAML 1.1 reads 0000:03:00.0-like names as numbers.
        assert '- name: "0000:03:00.0"' in text and '- name: "0"' in text
        assert "#   1: 0000:83:00.0 (/dev/dri/renderD129, /dev/dri/card1)" in text


def test_yaml_renderer_handles_every_json_shape() -> None:
    value: dict[str, Any] = {"a": [], "b": {}, "c": [1, True, None, "x: y", [], {}, ["n"]], "needs quote": {"k": [{"a": 1, "b": [2]}]}}
    assert yaml.safe_load("\n".join(cdi._yaml(value, 0))) == value


# --- run(): files, changed, check mode, diff ---------------------------------------


def params(dest: Path, gpus: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"dest": str(dest), "gpus": gpus, "vendor": "intel.com", "class": "gpu", "cdi_version": "0.5.0",
            "order": "runtime", "mode": "0644", "state": "present", **extra}


def test_run_writes_once_then_keeps(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [A770, B580])
    dest = tmp_path / "cdi" / "intel.com-gpu.yaml"
    dest.parent.mkdir()
    first = cdi.run(params(dest, gpus))
    assert first["changed"] is True and first["written"] is True
    assert yaml.safe_load(dest.read_text()) == first["spec"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert first["devices"] == ["0", "1", "0000:03:00.0", "0000:83:00.0", "all"]
    assert first["qualified_devices"][0] == "intel.com/gpu=0"
    assert sorted(os.listdir(dest.parent)) == ["intel.com-gpu.yaml"]  # no temporary left behind
    inode = dest.stat().st_ino
    second = cdi.run(params(dest, gpus))
    assert second["changed"] is False and second["msg"].startswith("kept ")
    assert dest.stat().st_ino == inode  # not rewritten


def test_run_check_mode_and_diff(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [A770])
    dest = tmp_path / "intel.com-gpu.yaml"
    result = cdi.run(params(dest, gpus), check_mode=True, diff_mode=True)
    assert result["changed"] is True and not dest.exists()
    assert result["diff"]["before"] == "" and "renderD128" in result["diff"]["after"]
    cdi.run(params(dest, gpus))
    (tmp_path / "b").mkdir()
    bigger = media_gpus(tmp_path / "b", [A770, B580])
    result = cdi.run(params(dest, bigger), check_mode=True, diff_mode=True)
    assert result["changed"] is True and "renderD129" not in dest.read_text()
    assert "renderD129" in result["diff"]["after"] and "renderD129" not in result["diff"]["before"]
    assert "diff" not in cdi.run(params(dest, gpus), diff_mode=True)


def test_run_fixes_the_mode_alone(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [A770])
    dest = tmp_path / "intel.com-gpu.json"
    cdi.run(params(dest, gpus))
    dest.chmod(0o600)
    assert cdi.run(params(dest, gpus), check_mode=True)["changed"] is True
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    assert cdi.run(params(dest, gpus))["changed"] is True
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    assert json.loads(dest.read_text())["kind"] == "intel.com/gpu"


def test_run_without_gpus_writes_nothing_and_removes_a_stale_spec(tmp_path: Path) -> None:
    dest = tmp_path / "intel.com-gpu.yaml"
    result = cdi.run(params(dest, []))
    assert (result["changed"], result["written"], result["spec"], result["devices"]) == (False, False, None, [])
    assert result["msg"] == f"no GPUs: no CDI spec written; {dest} does not exist"
    dest.write_text("stale")
    result = cdi.run(params(dest, []), check_mode=True)
    assert result["changed"] is True and dest.exists()
    result = cdi.run(params(dest, []))
    assert result["changed"] is True and not dest.exists()
    assert result["msg"] == f"no GPUs: no CDI spec written; removed {dest}"


def test_run_state_absent(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [A770])
    dest = tmp_path / "intel.com-gpu.yaml"
    cdi.run(params(dest, gpus))
    assert cdi.run(params(dest, gpus, state="absent"))["changed"] is True
    assert not dest.exists()
    assert cdi.run(params(dest, gpus, state="absent"))["changed"] is False


@pytest.mark.parametrize(("extra", "message"), [
    ({"dest": "relative.yaml"}, "absolute path"),
    ({"dest": "/tmp/intel.com-gpu.txt"}, "must end in .json, .yaml or .yml"),
    ({"mode": "rw-r--r--"}, "mode must be octal"),
])
def test_run_refuses_bad_parameters(tmp_path: Path, extra: dict[str, Any], message: str) -> None:
    with pytest.raises(cdi.SpecError, match=message):
        cdi.run({**params(tmp_path / "x.yaml", []), **extra})


def test_run_needs_the_directory(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [A770])
    dest = tmp_path / "missing" / "intel.com-gpu.yaml"
    assert cdi.run(params(dest, gpus), check_mode=True)["changed"] is True
    with pytest.raises(cdi.SpecError, match="does not exist; create it first"):
        cdi.run(params(dest, gpus))


# --- the module as Ansible runs it -------------------------------------------------


def test_documentation_parses_and_matches_the_argument_spec() -> None:
    doc = yaml.safe_load(cdi.DOCUMENTATION)
    assert yaml.safe_load(cdi.EXAMPLES) and yaml.safe_load(cdi.RETURN)
    assert set(doc["options"]) == set(cdi.ARGUMENT_SPEC)
    for name, option in doc["options"].items():
        spec = cdi.ARGUMENT_SPEC[name]
        assert option["type"] == spec["type"], name
        assert option.get("default") == spec.get("default"), name
        assert option.get("choices") == spec.get("choices"), name
        assert option.get("required", False) == spec.get("required", False), name


def run_module(tmp_path: Path, args: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    return module_runner.run_module("xpulab_cdi_spec", tmp_path, args)


def test_module_end_to_end(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [A770, B580])
    dest = tmp_path / "intel.com-gpu.yaml"
    rc, result = run_module(tmp_path, {"gpus": gpus, "dest": str(dest), "_ansible_check_mode": True,
                                       "_ansible_diff": True})
    assert rc == 0, result
    assert result["changed"] is True and not dest.exists() and "diff" in result
    rc, result = run_module(tmp_path, {"gpus": gpus, "dest": str(dest)})
    assert rc == 0 and result["changed"] is True, result
    assert yaml.safe_load(dest.read_text()) == result["spec"]
    assert_valid(result["spec"])
    rc, result = run_module(tmp_path, {"gpus": gpus, "dest": str(dest)})
    assert rc == 0 and result["changed"] is False, result


def test_module_warns_about_a_gpu_without_pci_address(tmp_path: Path) -> None:
    rc, result = run_module(tmp_path, {"gpus": [{"render_node": "/dev/dri/renderD128"}],
                                       "dest": str(tmp_path / "s.json")})
    assert rc == 0, result
    # ansible-core 2.19 returns warnings as structured summaries; look in their text.
    assert "has no PCI address" in json.dumps(result.get("warnings", []))


def test_module_fails_with_the_reason(tmp_path: Path) -> None:
    rc, result = run_module(tmp_path, {"gpus": [{"render_node": "/dev/dri/renderD128"}],
                                       "dest": str(tmp_path / "s.yaml"), "class": "g p u"})
    assert rc != 0 and result["failed"] is True
    assert "is not <vendor>/<class>" in result["msg"]


def test_molecule_fake_trees(tmp_path: Path) -> None:
    """The scenario's trees: two GPUs (the second without by-path links), and none."""
    assert fake_sysfs.main(["fake_sysfs.py", "gpu_containers", str(tmp_path / "out")]) == 0
    for name in ("two-gpus", "no-gpu"):
        with tarfile.open(tmp_path / "out" / f"{name}.tar.gz") as tar:
            tar.extractall(tmp_path, filter="tar")
    two = tmp_path / "two-gpus"
    found = inv.inventory(str(two / "sys"), str(two / "dev"), "6.12.0")["media_gpus"]
    assert [(gpu["pci_address"], gpu["render_node"], gpu["by_path_present"]) for gpu in found] == [
        ("0000:03:00.0", "/dev/dri/renderD128", True), ("0000:83:00.0", "/dev/dri/renderD129", False)]
    assert_valid(built(found))
    none = tmp_path / "no-gpu"
    assert inv.inventory(str(none / "sys"), str(none / "dev"), "6.12.0")["gpus"] == []


# --- podman acceptance --------------------------------------------------------------

IMAGE = "localhost/xpulab-debian:12"
LS_DEVICE = re.compile(r"^c\S*\s+\d+\s+\S+\s+\S+\s+(\d+),\s+(\d+)\s+.*?\s(\S+)$")


def host_numbers(path: str) -> tuple[int, int]:
    rdev = os.stat(path).st_rdev
    return os.major(rdev), os.minor(rdev)


class Podman:
    """podman run with a CDI spec directory holding only our spec.

    Newer podman has --cdi-spec-dir. Podman 4.3 (Debian 12) reads only
    /etc/cdi and /var/run/cdi, so there the run happens in a private mount
    namespace with /etc overlaid and our directory bind-mounted on /etc/cdi
    (and an empty one on /run/cdi): nothing on the host changes.
    """

    def __init__(self, work: Path, spec_dir: Path) -> None:
        self.work, self.spec_dir = work, spec_dir
        self.env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF",
                                                                     str(ROOT / "sandbox" / "containers.conf"))}
        help_text = subprocess.run(["podman", "--help"], capture_output=True, text=True, env=self.env,
                                   check=False, timeout=60).stdout
        self.has_flag = "--cdi-spec-dir" in help_text
        if not self.has_flag and (os.geteuid() != 0 or shutil.which("unshare") is None):
            pytest.fail("this podman has no --cdi-spec-dir; the fallback (a private mount namespace over "
                        "/etc/cdi) needs root and unshare(1)")
        exists = subprocess.run(["podman", "image", "exists", IMAGE], env=self.env, check=False, timeout=60)
        if exists.returncode != 0:
            pytest.fail(f"image {IMAGE} is missing: build it with `make images`")

    def run(self, device: str, *command: str) -> subprocess.CompletedProcess[str]:
        podman = ["podman", "run", "--rm", "--network", "host", "--device", device, IMAGE, *command]
        if self.has_flag:
            argv = ["podman", "--cdi-spec-dir", str(self.spec_dir)] + podman[1:]
        else:
            for sub in ("upper", "work", "empty"):
                (self.work / sub).mkdir(exist_ok=True)
            script = (
                'set -e; mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1/upper,workdir=$1/work" /etc; '
                'mkdir -p /etc/cdi; mount --bind "$2" /etc/cdi; '
                'if [ -d /run/cdi ]; then mount --bind "$1/empty" /run/cdi; fi; shift 2; exec "$@"'
            )
            argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                    str(self.work), str(self.spec_dir), *podman]
        return subprocess.run(argv, capture_output=True, text=True, env=self.env, check=False, timeout=300)

    def devices(self, device: str) -> dict[str, tuple[int, int]]:
        """Character devices under /dev/dri in a container given the CDI device: name -> (major, minor)."""
        proc = self.run(device, "ls", "-l", "/dev/dri", "/dev/dri/by-path")
        assert proc.returncode == 0, f"podman run --device {device} failed: {proc.stderr}"
        found: dict[str, tuple[int, int]] = {}
        for line in proc.stdout.splitlines():
            match = LS_DEVICE.match(line.strip())
            if match:
                found[match.group(3)] = (int(match.group(1)), int(match.group(2)))
        return found


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed on this machine")
def test_podman_resolves_the_spec_and_creates_the_nodes(tmp_path: Path) -> None:
    # A fake inventory whose nodes exist on any Linux host: GPU 0 is /dev/null
    # (render) and /dev/zero (card), GPU 1 /dev/full and /dev/urandom.
    gpus = [
        {"pci_address": "0000:03:00.0", "render_node": "/dev/null", "card_node": "/dev/zero", "family": "alchemist"},
        {"pci_address": "0000:83:00.0", "render_node": "/dev/full", "card_node": "/dev/urandom",
         "family": "battlemage"},
    ]
    spec_dir = tmp_path / "cdi"
    spec_dir.mkdir()
    result = cdi.run(params(spec_dir / "intel.com-gpu.yaml", gpus))
    assert result["written"] is True
    podman = Podman(tmp_path, spec_dir)
    gpu0 = {"pci-0000:03:00.0-render": host_numbers("/dev/null"), "pci-0000:03:00.0-card": host_numbers("/dev/zero")}
    gpu1 = {"pci-0000:83:00.0-render": host_numbers("/dev/full"),
            "pci-0000:83:00.0-card": host_numbers("/dev/urandom")}

    assert podman.devices("intel.com/gpu=0") == gpu0
    assert podman.devices("intel.com/gpu=1") == gpu1
    assert podman.devices("intel.com/gpu=0000:83:00.0") == gpu1
    assert podman.devices("intel.com/gpu=all") == {**gpu0, **gpu1}

    missing = podman.run("intel.com/gpu=2", "true")
    assert missing.returncode != 0 and "intel.com/gpu=2" in missing.stderr, missing.stderr
