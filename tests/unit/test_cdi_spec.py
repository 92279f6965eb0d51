"""Tests of the CDI spec of the gpu_containers role.

The spec is built by plugins/filter/cdi_spec.py from GPU inventories of fake
sysfs trees (the real xpulab_gpu_inventory pipeline), rendered with the
filters the role writes it with (to_nice_yaml, to_nice_json), checked
against a JSON schema written here from the CDI SPEC.md field list, and
handed to podman with the role's createContainer hook
(roles/gpu_containers/files/cdi-create-symlinks): inside the container,
/dev/dri/by-path/pci-<address>-render must be a symlink resolving to the
GPU's render node.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import cdi_spec as cdi  # type: ignore[import-not-found]
import jsonschema  # type: ignore[import-untyped]
import pytest
import xpulab_gpu_inventory as inv  # type: ignore[import-not-found]
import yaml  # type: ignore[import-untyped]
import fake_sysfs
from ansible.plugins.filter.core import to_nice_json, to_nice_yaml  # type: ignore[import-untyped]
from fake_sysfs import ARC_A770, ARC_B580, INTEGRATED_UHD770, MAX_1550, FakeGpu, build

# The "tar" extraction filter (Python 3.12, and 3.11.4 on): not in Debian 12's 3.11.2.
TAR_FILTER: dict[str, str] = {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}

ROOT = Path(__file__).resolve().parents[2]
HOOK = ROOT / "roles" / "gpu_containers" / "files" / "cdi-create-symlinks"
ROLE_HOOK = "/usr/local/libexec/xpulab/cdi-create-symlinks"

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
        assert paths and len(paths) == len(set(paths)), f"device {device['name']}: {paths}"
    # Names starting with a digit are a CDI 0.5.0 feature.
    assert tuple(map(int, spec["cdiVersion"].split("."))) >= (0, 5, 0)
    assert cdi.validate_spec(spec) == []


def built(gpus: list[Any], **options: Any) -> dict[str, Any]:
    """The spec of GPUs that make one."""
    spec: dict[str, Any] | None = cdi.cdi_spec(gpus, **options)["spec"]
    assert spec is not None, "no spec for a non-empty GPU list"
    return spec


def media_gpus(tmp_path: Path, gpus: list[FakeGpu]) -> list[dict[str, Any]]:
    """media_gpus of the inventory of a fake node holding the GPUs."""
    sys_root, dev_root = build(tmp_path, gpus)
    found: list[dict[str, Any]] = inv.inventory(str(sys_root), str(dev_root), "6.12.0")["media_gpus"]
    return found


def edits(spec: dict[str, Any], name: str) -> dict[str, Any]:
    (device,) = [device for device in spec["devices"] if device["name"] == name]
    found: dict[str, Any] = device["containerEdits"]
    return found


def nodes(*paths: str) -> list[dict[str, str]]:
    return [{"path": path} for path in paths]


def hook(*pairs: str, path: str = ROLE_HOOK) -> list[dict[str, Any]]:
    return [{"hookName": "createContainer", "path": path, "args": [os.path.basename(path), *pairs]}]


def links(bdf: str, number: int, card: int | None = None) -> list[str]:
    """The hook arguments making a GPU's by-path links."""
    return [f"/dev/dri/by-path/pci-{bdf}-render=../renderD{number}"] + (
        [f"/dev/dri/by-path/pci-{bdf}-card=../card{card}"] if card is not None else [])


# --- specs from fake inventories -------------------------------------------


def test_one_gpu(tmp_path: Path) -> None:
    result = cdi.cdi_spec(media_gpus(tmp_path, [A770]))
    spec = result["spec"]
    assert_valid(spec)
    assert (spec["cdiVersion"], spec["kind"]) == ("0.5.0", "intel.com/gpu")
    assert result["devices"] == [device["name"] for device in spec["devices"]] == ["0", "0000:03:00.0", "all"]
    assert result["qualified_devices"] == ["intel.com/gpu=0", "intel.com/gpu=0000:03:00.0", "intel.com/gpu=all"]
    expected = {"deviceNodes": nodes("/dev/dri/renderD128", "/dev/dri/card0"),
                "hooks": hook(*links("0000:03:00.0", 128, 0))}
    assert edits(spec, "0") == edits(spec, "0000:03:00.0") == edits(spec, "all") == expected
    assert result["gpus"] == [{"name": "0", "pci_address": "0000:03:00.0", "render_node": "/dev/dri/renderD128",
                               "card_node": "/dev/dri/card0", "family": "alchemist"}]


def test_two_gpus(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [B580, A770])
    result = cdi.cdi_spec(gpus)
    spec = result["spec"]
    assert_valid(spec)
    assert result["devices"] == ["0", "1", "0000:03:00.0", "0000:83:00.0", "all"]
    assert edits(spec, "0") == edits(spec, "0000:03:00.0")
    assert edits(spec, "1") == edits(spec, "0000:83:00.0") == {
        "deviceNodes": nodes("/dev/dri/renderD129", "/dev/dri/card1"), "hooks": hook(*links("0000:83:00.0", 129, 1))}
    # all: every node, and one hook making every link.
    assert edits(spec, "all") == {
        "deviceNodes": edits(spec, "0")["deviceNodes"] + edits(spec, "1")["deviceNodes"],
        "hooks": hook(*links("0000:03:00.0", 128, 0), *links("0000:83:00.0", 129, 1))}
    assert [row["pci_address"] for row in result["gpus"]] == ["0000:03:00.0", "0000:83:00.0"]
    assert "#   1: 0000:83:00.0 (/dev/dri/renderD129, /dev/dri/card1)\n" in result["comment"]


def test_no_gpu(tmp_path: Path) -> None:
    assert media_gpus(tmp_path, []) == []
    result = cdi.cdi_spec([])
    assert (result["spec"], result["devices"], result["qualified_devices"], result["gpus"]) == (None, [], [], [])
    assert result["kind"] == "intel.com/gpu"


def test_gpu_without_by_path_links_still_gets_them_in_containers(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [replace(A770, by_path=False)])
    assert gpus[0]["by_path_present"] is False and gpus[0]["render_by_path"] is None
    spec = built(gpus)
    assert_valid(spec)
    # The links come from the PCI address, not from the host's /dev.
    assert edits(spec, "0")["hooks"] == hook(*links("0000:03:00.0", 128, 0))


def test_gpu_without_card_node_or_pci_address() -> None:
    gpus = [{"pci_address": None, "render_node": "/dev/dri/renderD128", "card_node": None},
            {"pci_address": "0000:83:00.0", "render_node": "/dev/dri/renderD129", "card_node": None}]
    result = cdi.cdi_spec(gpus, order="render")
    spec = result["spec"]
    assert_valid(spec)
    assert result["devices"] == ["0", "1", "0000:83:00.0", "all"]
    assert edits(spec, "0") == {"deviceNodes": nodes("/dev/dri/renderD128")}  # nothing to link: no hook
    assert edits(spec, "1") == {"deviceNodes": nodes("/dev/dri/renderD129"),
                                "hooks": hook(*links("0000:83:00.0", 129))}
    assert edits(spec, "all")["hooks"] == edits(spec, "1")["hooks"]
    assert "#   0: no PCI address (/dev/dri/renderD128)\n" in result["comment"]


def test_hook_path_and_kind_are_settings(tmp_path: Path) -> None:
    result = cdi.cdi_spec(media_gpus(tmp_path, [A770]), vendor="example.org", cls="xpu", cdi_version="0.6.0",
                          hook="/opt/hooks/links")
    assert_valid(result["spec"])
    assert (result["spec"]["kind"], result["spec"]["cdiVersion"]) == ("example.org/xpu", "0.6.0")
    assert edits(result["spec"], "0")["hooks"] == hook(*links("0000:03:00.0", 128, 0), path="/opt/hooks/links")
    assert result["qualified_devices"][0] == "example.org/xpu=0"


def test_intel_gpus_include_gpus_without_media_engines(tmp_path: Path) -> None:
    sys_root, dev_root = build(tmp_path, [A770, replace(MAX_1550, render=129, card=1)])
    found = inv.inventory(str(sys_root), str(dev_root), "6.12.0")
    assert len(built(found["media_gpus"])["devices"]) == 3
    spec = built(found["intel_gpus"])
    assert_valid(spec)
    assert [device["name"] for device in spec["devices"]] == ["0", "1", "0000:03:00.0", "0000:3a:00.0", "all"]
    assert edits(spec, "1")["deviceNodes"][0] == {"path": "/dev/dri/renderD129"}  # the Max sorts after 03:00.0


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
    result = cdi.cdi_spec(gpus, order=order)
    assert_valid(result["spec"])
    assert [row["pci_address"] for row in result["gpus"]] == expected
    assert result["devices"] == ["0", "1", "2", *expected, "all"]
    for row in result["gpus"]:
        assert edits(result["spec"], row["name"]) == edits(result["spec"], row["pci_address"])
        assert edits(result["spec"], row["name"])["deviceNodes"][0] == {"path": row["render_node"]}


def test_unknown_order_is_refused() -> None:
    with pytest.raises(cdi.SpecError, match="unknown order 'alphabetical'"):
        cdi.cdi_spec([], order="alphabetical")


# --- validation ---------------------------------------------------------------


def good_spec() -> dict[str, Any]:
    return {"cdiVersion": "0.5.0", "kind": "intel.com/gpu",
            "devices": [{"name": "0", "containerEdits": {"deviceNodes": nodes("/dev/dri/renderD128"),
                                                         "hooks": hook("/dev/dri/by-path/x=../renderD128")}}]}


@pytest.mark.parametrize(("change", "problem"), [
    (lambda s: s.update(cdiVersion="0.9.0"), "cdiVersion '0.9.0' is not one of 0.5.0, 0.6.0"),
    (lambda s: s.update(cdiVersion="0.4.0"), "need 0.5.0"),
    (lambda s: s.update(kind="intel.com"), "is not <vendor>/<class>"),
    (lambda s: s.update(kind="intel.com/gpu/x"), "is not <vendor>/<class>"),
    (lambda s: s.update(kind="1ntel.com/gpu"), "is not <vendor>/<class>"),
    (lambda s: s.update(kind="intel.com/gpu-"), "is not <vendor>/<class>"),
    (lambda s: s.update(devices=[]), "at least one device"),
    (lambda s: s["devices"][0].update(name="gpu 0"), "device name 'gpu 0' is invalid"),
    (lambda s: s["devices"][0].update(name="0:"), "device name '0:' is invalid"),
    (lambda s: s["devices"][0].update(name="-0"), "device name '-0' is invalid"),
    (lambda s: s["devices"].append(s["devices"][0]), "device name 0 appears twice"),
    (lambda s: s["devices"][0].update(containerEdits={}), "device 0: empty containerEdits"),
    (lambda s: s["devices"][0]["containerEdits"]["deviceNodes"].append({"path": "dev/dri/card0"}),
     "'dev/dri/card0' is not a normalised absolute path"),
    (lambda s: s["devices"][0]["containerEdits"]["deviceNodes"].append({"path": "/dev/dri/../dri/card0"}),
     "is not a normalised absolute path"),
    (lambda s: s["devices"][0]["containerEdits"]["hooks"][0].update(path="hooks/links"),
     "'hooks/links' is not a normalised absolute path"),
    (lambda s: s["devices"][0]["containerEdits"]["deviceNodes"].append({"path": "/dev/dri/renderD128"}),
     "device 0: /dev/dri/renderD128 appears twice"),
])
def test_validation_finds_problems(change: Any, problem: str) -> None:
    spec = good_spec()
    assert cdi.validate_spec(spec) == []
    change(spec)
    problems = cdi.validate_spec(spec)
    assert any(problem in text for text in problems), problems


def test_the_schema_catches_what_the_filter_catches() -> None:
    spec = good_spec()
    spec["devices"][0]["name"] = "gpu 0"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(CDI_SCHEMA).validate(spec)


GPU = {"pci_address": "0000:03:00.0", "render_node": "/dev/dri/renderD128", "card_node": "/dev/dri/card0"}


@pytest.mark.parametrize(("options", "message"), [
    ({"cdi_version": "0.4.0"}, "cdiVersion '0.4.0' is not one of"),
    ({"vendor": "intel.com/x"}, "is not <vendor>/<class>"),
    ({"cls": "g p u"}, "is not <vendor>/<class>"),
    ({"hook": "cdi-create-symlinks"}, "hook 'cdi-create-symlinks' is not an absolute path"),
])
def test_bad_settings_are_refused(options: dict[str, str], message: str) -> None:
    with pytest.raises(cdi.SpecError, match=f"the CDI spec would be invalid: .*{re.escape(message)}"):
        cdi.cdi_spec([GPU], **options)


@pytest.mark.parametrize(("gpus", "message"), [
    ([{"pci_address": "0000:03:00.0"}], "has no normalised absolute render_node: None"),
    ([{"render_node": "renderD128"}], "has no normalised absolute render_node"),
    ([{"render_node": "/dev/dri/../renderD128"}], "has no normalised absolute render_node"),
    ([{"render_node": "/dev/dri/renderD128", "card_node": "card0"}], "no normalised absolute card_node"),
    ([{"render_node": "/dev/dri/renderD128", "pci_address": "03:00.0"}], "malformed pci_address '03:00.0'"),
    ([{"render_node": "/dev/dri/renderD128"}, {"render_node": "/dev/dri/renderD128"}],
     r"gpus\[1\] \(/dev/dri/renderD128\) repeats render_node /dev/dri/renderD128 of gpus\[0\]"),
    ([GPU, {**GPU, "render_node": "/dev/dri/renderD129", "card_node": None}], "repeats pci_address"),
    (["/dev/dri/renderD128"], "is not a dict"),
])
def test_bad_gpu_items_are_refused(gpus: list[Any], message: str) -> None:
    with pytest.raises(cdi.SpecError, match=message):
        cdi.cdi_spec(gpus)


def test_registered_as_ansible_filter() -> None:
    assert cdi.FilterModule().filters() == {"cdi_spec": cdi.cdi_spec}


# --- the file the role writes --------------------------------------------------


def role_content(result: dict[str, Any], file_name: str) -> str:
    """The content of the role's "Write the CDI spec" task (tasks/spec.yml)."""
    if file_name.endswith(".json"):
        return str(to_nice_json(result["spec"], indent=2)) + "\n"
    return str(result["comment"] + to_nice_yaml(result["spec"], indent=2, sort_keys=False).strip()) + "\n"


def test_role_task_content_matches_this_test() -> None:
    """role_content() follows the task; a change to one must show in the other."""
    task = yaml.safe_load((ROOT / "roles" / "gpu_containers" / "tasks" / "spec.yml").read_text())
    (write,) = [item for item in task if item["name"] == "Write the CDI spec"]
    content = write["ansible.builtin.copy"]["content"]
    assert content.startswith("{{") and content.endswith("}}\n")  # one expression, then a newline
    content = " ".join(content.split())
    assert "(gpu_containers_cdi.spec | to_nice_json(indent=2)) if gpu_containers_cdi_file.endswith('.json')" in content
    assert ("else gpu_containers_cdi.comment ~ (gpu_containers_cdi.spec | to_nice_yaml(indent=2, sort_keys=false)"
            " | trim)") in content


@pytest.mark.parametrize("file_name", ["intel.com-gpu.yaml", "intel.com-gpu.json"])
def test_written_file_parses_back_to_the_spec(tmp_path: Path, file_name: str) -> None:
    result = cdi.cdi_spec(media_gpus(tmp_path, [A770, B580]))
    text = role_content(result, file_name)
    assert text.endswith("\n") and not text.endswith("\n\n")
    assert (json.loads(text) if file_name.endswith(".json") else yaml.safe_load(text)) == result["spec"]
    if file_name.endswith(".yaml"):
        # Quoted where YAML 1.1 would read a number: "0" and the sexagesimal-looking 0000:03:00.0.
        assert "- name: '0'\n" in text and "- name: '0000:03:00.0'\n" in text
        assert text.startswith("# Generated by the xpulab gpu_containers role")


# --- the hook -----------------------------------------------------------------


def run_hook(tmp_path: Path, root_path: str, *pairs: str) -> subprocess.CompletedProcess[str]:
    """Run the hook as runc does: OCI state on stdin, config.json in the bundle."""
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "config.json").write_text(json.dumps({"ociVersion": "1.0.2", "root": {"path": root_path}}))
    state = {"ociVersion": "1.0.2", "id": "x", "status": "creating", "pid": 1, "bundle": str(bundle),
             "annotations": {"bundle": "/elsewhere"}}
    return subprocess.run([sys.executable, str(HOOK), *pairs], input=json.dumps(state),
                          capture_output=True, text=True, check=False, timeout=60)


@pytest.mark.parametrize("relative", [True, False])
def test_hook_makes_the_links(tmp_path: Path, relative: bool) -> None:
    rootfs = tmp_path / "bundle" / "rootfs"
    (rootfs / "dev" / "dri").mkdir(parents=True)
    pairs = links("0000:03:00.0", 128, 0)
    for _ in range(2):  # a second device of the spec repeats links: no error
        proc = run_hook(tmp_path, "rootfs" if relative else str(rootfs), *pairs)
        assert proc.returncode == 0, proc.stderr
    by_path = rootfs / "dev" / "dri" / "by-path"
    assert sorted(os.listdir(by_path)) == ["pci-0000:03:00.0-card", "pci-0000:03:00.0-render"]
    assert os.readlink(by_path / "pci-0000:03:00.0-render") == "../renderD128"
    assert os.readlink(by_path / "pci-0000:03:00.0-card") == "../card0"
    assert oct(by_path.stat().st_mode & 0o777) == "0o755"


@pytest.mark.parametrize(("setup", "pair", "message"), [
    (lambda dev: (dev / "dri" / "by-path").mkdir(parents=True) or (dev / "dri" / "by-path" / "x").write_text(""),
     "/dev/dri/by-path/x=../renderD128", "/dev/dri/by-path/x exists in the container and is not a symlink"),
    (lambda dev: (dev / "dri" / "by-path").mkdir(parents=True) or (dev / "dri" / "by-path" / "x").symlink_to("y"),
     "/dev/dri/by-path/x=../renderD128", "is not a symlink to ../renderD128"),
    (lambda dev: (dev / "dri").symlink_to("/tmp"), "/dev/dri/by-path/x=../renderD128",
     "/dev/dri is a symlink in the container; not following it"),
    (lambda dev: None, "/etc/x=../renderD128", "want LINK=TARGET with LINK under /dev"),
    (lambda dev: None, "/dev/dri/../x=y", "want LINK=TARGET"),
    (lambda dev: None, "/dev/dri/x", "want LINK=TARGET"),
])
def test_hook_refuses(tmp_path: Path, setup: Any, pair: str, message: str) -> None:
    dev = tmp_path / "bundle" / "rootfs" / "dev"
    dev.mkdir(parents=True)
    setup(dev)
    proc = run_hook(tmp_path, "rootfs", pair)
    assert proc.returncode == 1 and message in proc.stderr, proc.stderr
    assert not os.path.lexists("/tmp/by-path/x")


def test_hook_leaves_the_hosts_dev_alone(tmp_path: Path) -> None:
    rootfs = tmp_path / "bundle" / "rootfs"
    rootfs.mkdir(parents=True)
    (rootfs / "dev").symlink_to("/dev")  # as with -v /dev:/dev
    proc = run_hook(tmp_path, "rootfs", "/dev/h3-cdi-test/x=../null")
    assert proc.returncode == 0, proc.stderr
    assert not os.path.lexists("/dev/h3-cdi-test")


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="bind mounts need root")
def test_hook_leaves_a_bind_mounted_by_path_alone(tmp_path: Path) -> None:
    host_by_path, rootfs = tmp_path / "host-by-path", tmp_path / "bundle" / "rootfs"
    host_by_path.mkdir()
    (rootfs / "dev" / "dri" / "by-path").mkdir(parents=True)
    (tmp_path / "bundle" / "config.json").write_text(json.dumps({"root": {"path": "rootfs"}}))
    state = json.dumps({"bundle": str(tmp_path / "bundle")})
    script = 'mount --bind "$1" "$2" && exec "$3" "$4" /dev/dri/by-path/x=../renderD128'
    proc = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                           str(host_by_path), str(rootfs / "dev" / "dri" / "by-path"), sys.executable, str(HOOK)],
                          input=state, capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(host_by_path) == [] and os.listdir(rootfs / "dev" / "dri" / "by-path") == []


def test_hook_is_executable_python() -> None:
    assert os.access(HOOK, os.X_OK)
    assert HOOK.read_text().startswith("#!/usr/bin/python3 -I\n")
    compile(HOOK.read_text(), str(HOOK), "exec")


def test_molecule_fake_trees(tmp_path: Path) -> None:
    """The scenario's trees: two GPUs (the second without by-path links), and none."""
    assert fake_sysfs.main(["fake_sysfs.py", "gpu_containers", str(tmp_path / "out")]) == 0
    for name in ("two-gpus", "no-gpu"):
        with tarfile.open(tmp_path / "out" / f"{name}.tar.gz") as tar:
            tar.extractall(tmp_path, **TAR_FILTER)
    two = tmp_path / "two-gpus"
    found = inv.inventory(str(two / "sys"), str(two / "dev"), "6.12.0")["media_gpus"]
    assert [(gpu["pci_address"], gpu["render_node"], gpu["by_path_present"]) for gpu in found] == [
        ("0000:03:00.0", "/dev/dri/renderD128", True), ("0000:83:00.0", "/dev/dri/renderD129", False)]
    assert_valid(built(found))
    none = tmp_path / "no-gpu"
    assert inv.inventory(str(none / "sys"), str(none / "dev"), "6.12.0")["gpus"] == []


# --- podman acceptance --------------------------------------------------------------

IMAGE = "localhost/xpulab-debian:12"
# Container names start with this (default xpulab-unit-), so a test run's containers can be found.
NAME_PREFIX = os.environ.get("XPULAB_TEST_NAME_PREFIX", "xpulab-unit-")
# Inside the container: one line per /dev/dri/by-path entry and per node.
PROBE = r"""
for entry in /dev/dri/by-path/* /dev/dri/card* /dev/dri/renderD*; do
  [ -e "$entry" ] || [ -L "$entry" ] || continue
  if [ -L "$entry" ]; then kind=link; else kind=node; fi
  echo "$kind $entry $(readlink "$entry") $(readlink -f "$entry") $(stat -L -c %t:%T "$entry")"
done
"""


class Podman:
    """podman run with a CDI spec directory holding only our spec.

    Newer podman has --cdi-spec-dir. Podman 4.3 (Debian 12) reads only
    /etc/cdi and /var/run/cdi, and its containers.conf has no cdi_spec_dirs,
    so there the run happens in a private mount namespace with /etc overlaid
    and our directory bind-mounted on /etc/cdi (and an empty one on
    /run/cdi): nothing on the host changes.
    """

    def __init__(self, work: Path, spec_dir: Path) -> None:
        self.work, self.spec_dir, self.runs = work, spec_dir, 0
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

    def run(self, devices: list[str], *command: str, options: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        self.runs += 1
        podman = ["podman", "run", "--rm", "--name", f"{NAME_PREFIX}cdi-{os.getpid()}-{self.runs}", "--network",
                  "host", *options, *(f"--device={device}" for device in devices), IMAGE, *command]
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

    def dri(self, *devices: str, options: tuple[str, ...] = ()) -> dict[str, tuple[str, str, str, str]]:
        """/dev/dri in a container given the CDI devices: path -> (link or node, link target, resolved, major:minor)."""
        proc = self.run(list(devices), "sh", "-c", PROBE, options=options)
        assert proc.returncode == 0, f"podman run --device {devices} failed: {proc.stderr}"
        found: dict[str, tuple[str, str, str, str]] = {}
        for line in proc.stdout.splitlines():
            kind, path, *rest = line.split()
            if kind == "node":
                rest = ["", *rest]
            found[path] = (kind, rest[0], rest[1], rest[2])
        return found


def in_container(bdf: str, render: int, card: int) -> dict[str, tuple[str, str, str, str]]:
    """What a container given the GPU sees: by-path symlinks resolving to its nodes (major 226 = e2 in hex)."""
    by_path = f"/dev/dri/by-path/pci-{bdf}"
    return {
        f"{by_path}-render": ("link", f"../renderD{render}", f"/dev/dri/renderD{render}", f"e2:{render:x}"),
        f"{by_path}-card": ("link", f"../card{card}", f"/dev/dri/card{card}", f"e2:{card:x}"),
        f"/dev/dri/renderD{render}": ("node", "", f"/dev/dri/renderD{render}", f"e2:{render:x}"),
        f"/dev/dri/card{card}": ("node", "", f"/dev/dri/card{card}", f"e2:{card:x}"),
    }


@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed on this machine")
def test_podman_gives_containers_by_path_symlinks(tmp_path: Path) -> None:
    gpus = media_gpus(tmp_path, [A770, B580])
    result = cdi.cdi_spec(gpus, hook=str(HOOK))
    # The inventory's nodes are plain files in a fake tree: make real character
    # devices (major 226, as DRM's) in a directory of their own and point the
    # spec's hostPath at them. The container gets its own nodes, with the
    # numbers of these; nothing on the host's /dev is touched.
    fake_dev = tmp_path / "devnodes"
    (fake_dev / "dri").mkdir(parents=True)
    for name, minor in (("renderD128", 128), ("card0", 0), ("renderD129", 129), ("card1", 1)):
        os.mknod(fake_dev / "dri" / name, 0o660 | 0o020000, os.makedev(226, minor))
    for device in result["spec"]["devices"]:
        for node in device["containerEdits"]["deviceNodes"]:
            node["hostPath"] = str(fake_dev) + node["path"][len("/dev"):]
    assert_valid(result["spec"])
    spec_dir = tmp_path / "cdi"
    spec_dir.mkdir()
    (spec_dir / "intel.com-gpu.yaml").write_text(role_content(result, "intel.com-gpu.yaml"))
    podman = Podman(tmp_path, spec_dir)
    gpu0, gpu1 = in_container("0000:03:00.0", 128, 0), in_container("0000:83:00.0", 129, 1)

    assert podman.dri("intel.com/gpu=0") == gpu0
    assert podman.dri("intel.com/gpu=1") == gpu1
    assert podman.dri("intel.com/gpu=0000:83:00.0") == gpu1
    assert podman.dri("intel.com/gpu=all") == {**gpu0, **gpu1}
    # Two devices naming the same links: the second hook finds them made.
    assert podman.dri("intel.com/gpu=0", "intel.com/gpu=all") == {**gpu0, **gpu1}
    # A read-only root file system: /dev is the runtime's own tmpfs, still writable for the hook.
    assert podman.dri("intel.com/gpu=1", options=("--read-only",)) == gpu1

    missing = podman.run(["intel.com/gpu=2"], "true")
    assert missing.returncode != 0 and "intel.com/gpu=2" in missing.stderr, missing.stderr
