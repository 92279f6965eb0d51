#!/usr/bin/python
"""Write a Container Device Interface (CDI) spec for a node's Intel GPUs."""

from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

DOCUMENTATION = r"""
---
module: xpulab_cdi_spec
short_description: Write a CDI spec that gives containers a node's Intel GPUs, /dev/dri/by-path included
description:
  - Builds a Container Device Interface (CDI) spec of kind C(<vendor>/<class>)
    (default C(intel.com/gpu)) from GPUs as returned by xpulab_gpu_inventory
    (C(media_gpus) or C(intel_gpus)) and writes it to O(dest), atomically and
    only when its content changes.
  - One device per GPU, named by its index (C(0), C(1), ...), one alias per GPU
    named by its PCI address (C(0000:03:00.0)), and C(all) with every GPU.
  - Each device gives the container the GPU's C(renderD*) and C(card*) nodes
    and, because CDI cannot create symlinks, the C(/dev/dri/by-path) links as
    device nodes of their own (C(path) the link name, C(hostPath) the real
    node). TorchCodec's XPU path opens C(/dev/dri/by-path/pci-<BDF>-render)
    and Intel's compute runtime finds GPUs through that directory, so a
    container needs it; this works even where the host itself lacks the links.
  - The spec is validated before it is written (kind, device names, absolute
    paths, no duplicates, cdiVersion at least the one the spec needs).
options:
  gpus:
    description:
      - GPUs as returned by xpulab_gpu_inventory (items of C(media_gpus) or
        C(intel_gpus)). Each needs C(render_node); C(card_node),
        C(pci_address) and C(family) are used when present.
      - An empty list writes no spec (see O(state)).
    type: list
    elements: dict
    default: []
  vendor:
    description: Vendor part of the CDI kind (a DNS-like name).
    type: str
    default: intel.com
  class:
    description: Class part of the CDI kind.
    type: str
    default: gpu
  cdi_version:
    description:
      - cdiVersion written in the spec. The spec uses C(deviceNodes.hostPath)
        and device names starting with a digit, both CDI 0.5.0 features, so
        0.5.0 is the lowest that works and the default.
      - Podman 4.3 (Debian 12) rejects specs declaring 0.6.0 or later
        ("invalid version"); raise it only for runtimes that need it.
    type: str
    default: "0.5.0"
  order:
    description:
      - How GPUs are numbered. C(runtime) follows Intel's compute runtime
        (Level Zero, hence PyTorch C(xpu:N)) by default - discrete GPUs first,
        then integrated ones, each by PCI address. C(pci) is plain PCI-address
        order (the runtime with C(ZE_ENABLE_PCI_ID_DEVICE_ORDER=1)). C(render)
        is render-node order.
    type: str
    choices: [runtime, pci, render]
    default: runtime
  dest:
    description:
      - Spec file, like C(/etc/cdi/intel.com-gpu.yaml). C(.json) writes JSON,
        C(.yaml)/C(.yml) YAML. Its directory must exist.
    type: path
    required: true
  mode:
    description: Permissions of the spec file (runtimes and rootless users read it).
    type: str
    default: "0644"
  state:
    description:
      - C(present) writes the spec. With no GPUs there is nothing to describe,
        so no spec is written and an existing O(dest) is removed (a stale spec
        would name device nodes that are gone).
      - C(absent) removes O(dest).
    type: str
    choices: [present, absent]
    default: present
notes:
  - Supports check mode and diff mode.
  - The file is written to a hidden temporary file in the same directory and
    renamed over O(dest), so a runtime never reads half a spec; the temporary
    name does not end in C(.json)/C(.yaml), so runtimes ignore it.
author:
  - xpulab
"""

EXAMPLES = r"""
- name: Inventory the GPUs
  xpulab_gpu_inventory:
  register: xpu

- name: Give containers the GPUs with media engines
  xpulab_cdi_spec:
    gpus: "{{ xpu.media_gpus }}"
    dest: /etc/cdi/intel.com-gpu.yaml
  register: cdi

- name: Show the names to pass to podman run --device
  ansible.builtin.debug:
    msg: "{{ cdi.qualified_devices }}"
"""

RETURN = r"""
spec:
  description: The spec as written (or that would be written); null when there is none.
  returned: always
  type: dict
  sample:
    cdiVersion: "0.5.0"
    kind: intel.com/gpu
    devices:
      - name: "0"
        containerEdits:
          deviceNodes:
            - path: /dev/dri/renderD128
            - path: /dev/dri/card0
            - path: /dev/dri/by-path/pci-0000:03:00.0-render
              hostPath: /dev/dri/renderD128
            - path: /dev/dri/by-path/pci-0000:03:00.0-card
              hostPath: /dev/dri/card0
devices:
  description: Device names in the spec (indexes, PCI-address aliases, all).
  returned: always
  type: list
  elements: str
  sample: ["0", "1", "0000:03:00.0", "0000:83:00.0", "all"]
qualified_devices:
  description: The names as given to C(podman run --device) / C(docker run --device).
  returned: always
  type: list
  elements: str
  sample: ["intel.com/gpu=0", "intel.com/gpu=all"]
gpus:
  description: Index, PCI address and nodes of each GPU in the spec, in index order.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: "0", pci_address: "0000:03:00.0", render_node: /dev/dri/renderD128, card_node: /dev/dri/card0}
kind:
  description: The CDI kind.
  returned: always
  type: str
  sample: intel.com/gpu
cdi_version:
  description: cdiVersion of the spec.
  returned: always
  type: str
  sample: "0.5.0"
dest:
  description: The spec file.
  returned: always
  type: str
  sample: /etc/cdi/intel.com-gpu.yaml
written:
  description: Whether a spec file exists at dest after this run (or would, in check mode).
  returned: always
  type: bool
msg:
  description: What was done.
  returned: always
  type: str
  sample: "no GPUs: no CDI spec written"
"""

Gpu = dict[str, Any]
Spec = dict[str, Any]

# Spec versions of the CDI reference implementation (specs-go/version.go);
# 0.3.0 is the earliest it still accepts.
KNOWN_VERSIONS = ("0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0")

# api/producer/identifiers.go: vendor and class start with a letter, end with
# a letter or digit, with letters, digits, "_", "-", "." between; device names
# may also start with a digit and contain ":".
VENDOR_CLASS_RE = re.compile(r"^[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$")
DEVICE_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$")
BDF_RE = re.compile(r"^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$")
RENDER_NUMBER_RE = re.compile(r"renderD(\d+)$")
YAML_KEY_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
DEVICE_TYPES = ("", "b", "c", "u", "p")
ALL = "all"

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "gpus": {"type": "list", "elements": "dict", "default": []},
    "vendor": {"type": "str", "default": "intel.com"},
    "class": {"type": "str", "default": "gpu"},
    "cdi_version": {"type": "str", "default": "0.5.0"},
    "order": {"type": "str", "choices": ["runtime", "pci", "render"], "default": "runtime"},
    "dest": {"type": "path", "required": True},
    "mode": {"type": "str", "default": "0644"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}


class SpecError(ValueError):
    """Bad input or a spec that would not be valid."""


# --- ordering -------------------------------------------------------------


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def _bdf_key(gpu: Gpu) -> tuple[int, ...]:
    match = BDF_RE.match(str(gpu.get("pci_address") or ""))
    return tuple(int(part, 16) for part in match.groups()) if match else (1 << 16,)


def _render_key(gpu: Gpu) -> int:
    match = RENDER_NUMBER_RE.search(str(gpu.get("render_node") or ""))
    return int(match.group(1)) if match else 1 << 16


def order_gpus(gpus: list[Gpu], order: str = "runtime") -> list[Gpu]:
    """GPUs in index order.

    "runtime" is what Intel's compute runtime does by default
    (ExecutionEnvironment::sortNeoDevices): discrete GPUs first, then
    integrated ones, each group by PCI domain, bus, device, function. PyTorch
    numbers xpu:N in that order, so among the GPUs of one spec, index N is
    xpu:N in a container given intel.com/gpu=all. The render-node number breaks
    ties (GPUs without a PCI address).
    """
    if order == "render":
        return sorted(gpus, key=lambda gpu: (_render_key(gpu), _bdf_key(gpu)))
    if order == "pci":
        return sorted(gpus, key=lambda gpu: (_bdf_key(gpu), _render_key(gpu)))
    if order == "runtime":
        return sorted(gpus, key=lambda gpu: (gpu.get("family") == "integrated", _bdf_key(gpu), _render_key(gpu)))
    raise SpecError(f"unknown order {order!r} (runtime, pci or render)")


# --- building -------------------------------------------------------------


def check_gpus(gpus: list[Gpu]) -> None:
    """Refuse GPU items the spec cannot be built from."""
    seen: dict[str, str] = {}
    for number, gpu in enumerate(gpus):
        if not isinstance(gpu, dict):
            raise SpecError(f"gpus[{number}] is not a dict: {gpu!r}")
        where = f"gpus[{number}] ({gpu.get('pci_address') or gpu.get('render_node')})"
        render = gpu.get("render_node")
        if not isinstance(render, str) or not os.path.isabs(render):
            raise SpecError(f"{where} has no absolute render_node: {render!r}")
        card = gpu.get("card_node")
        if card is not None and (not isinstance(card, str) or not os.path.isabs(card)):
            raise SpecError(f"{where} has a card_node that is not an absolute path: {card!r}")
        bdf = gpu.get("pci_address")
        if bdf is not None and not BDF_RE.match(str(bdf)):
            raise SpecError(f"{where} has a malformed pci_address {bdf!r} (want like 0000:03:00.0)")
        for key in ("render_node", "card_node", "pci_address"):
            value = gpu.get(key)
            if value is None:
                continue
            if f"{key}={value}" in seen:
                raise SpecError(f"{where} repeats {key} {value} of {seen[f'{key}={value}']}: each GPU once")
            seen[f"{key}={value}"] = where


def device_nodes(gpu: Gpu) -> list[dict[str, str]]:
    """deviceNodes of one GPU: its nodes, then its by-path names for them.

    CDI cannot make symlinks, so /dev/dri/by-path/pci-<BDF>-render is a device
    node of its own in the container whose hostPath is the real render node.
    hostPath is left out where it equals path (CDI then uses path).
    """
    render: str = gpu["render_node"]
    card: str | None = gpu.get("card_node")
    bdf: str | None = gpu.get("pci_address")
    nodes = [{"path": render}] + ([{"path": card}] if card else [])
    if bdf:
        nodes.append({"path": f"/dev/dri/by-path/pci-{bdf}-render", "hostPath": render})
        if card:
            nodes.append({"path": f"/dev/dri/by-path/pci-{bdf}-card", "hostPath": card})
    return nodes


def build_spec(gpus: list[Gpu], vendor: str = "intel.com", cls: str = "gpu",
               cdi_version: str = "0.5.0", order: str = "runtime") -> Spec | None:
    """The CDI spec for the GPUs (None without GPUs), validated."""
    check_gpus(gpus)
    if not gpus:
        return None
    ordered = order_gpus(gpus, order)
    indexed = [{"name": str(number), "containerEdits": {"deviceNodes": device_nodes(gpu)}}
               for number, gpu in enumerate(ordered)]
    aliases = [{"name": gpu["pci_address"], "containerEdits": {"deviceNodes": device_nodes(gpu)}}
               for gpu in ordered if gpu.get("pci_address")]
    everything = [node for gpu in ordered for node in device_nodes(gpu)]
    spec: Spec = {
        "cdiVersion": cdi_version,
        "kind": f"{vendor}/{cls}",
        "devices": indexed + aliases + [{"name": ALL, "containerEdits": {"deviceNodes": everything}}],
    }
    problems = validate_spec(spec)
    if problems:
        raise SpecError("the CDI spec would be invalid: " + "; ".join(problems))
    return spec


def gpu_table(gpus: list[Gpu], order: str = "runtime") -> list[dict[str, Any]]:
    """Index, PCI address and nodes of each GPU, in index order."""
    return [{"name": str(number), "pci_address": gpu.get("pci_address"), "render_node": gpu["render_node"],
             "card_node": gpu.get("card_node"), "family": gpu.get("family")}
            for number, gpu in enumerate(order_gpus(gpus, order))]


# --- validation -----------------------------------------------------------


def minimum_version(spec: Spec) -> str:
    """Lowest cdiVersion that has every feature the spec uses (specs-go/version.go)."""
    required = "0.3.0"
    devices = spec.get("devices") or []
    edits = [spec.get("containerEdits") or {}] + [device.get("containerEdits") or {} for device in devices]
    if any(mount.get("type") for edit in edits for mount in edit.get("mounts") or []):
        required = "0.4.0"
    if (any(not str(device.get("name", "a"))[:1].isalpha() for device in devices)
            or any(node.get("hostPath") for edit in edits for node in edit.get("deviceNodes") or [])):
        required = "0.5.0"
    if (spec.get("annotations") or any(device.get("annotations") for device in devices)
            or "." in str(spec.get("kind", "")).partition("/")[2]):
        required = "0.6.0"
    if any(edit.get("intelRdt") is not None or edit.get("additionalGids") for edit in edits):
        required = "0.7.0"
    return required


def _check_edits(edits: Any, where: str) -> list[str]:
    if not isinstance(edits, dict):
        return [f"{where}: containerEdits is not an object"]
    problems: list[str] = []
    nodes = edits.get("deviceNodes") or []
    if not nodes and not any(edits.get(key) for key in ("env", "mounts", "hooks", "additionalGids", "intelRdt")):
        problems.append(f"{where}: empty containerEdits")
    paths: set[str] = set()
    for node in nodes:
        path, host = node.get("path"), node.get("hostPath", node.get("path"))
        for label, value in (("path", path), ("hostPath", host)):
            if not isinstance(value, str) or not os.path.isabs(value) or os.path.normpath(value) != value:
                problems.append(f"{where}: deviceNode {label} {value!r} is not a normalised absolute path")
        if path in paths:
            problems.append(f"{where}: deviceNode path {path} appears twice")
        paths.add(str(path))
        if node.get("type", "") not in DEVICE_TYPES:
            problems.append(f"{where}: deviceNode {path} has type {node.get('type')!r}")
        if set(str(node.get("permissions", ""))) - set("rwm"):
            problems.append(f"{where}: deviceNode {path} has permissions {node.get('permissions')!r}")
    return problems


def validate_spec(spec: Spec) -> list[str]:
    """Why the spec is not a valid CDI spec (empty when it is).

    The checks of the CDI reference validator (api/producer/validator-default.go)
    plus stricter ones of ours: absolute, normalised paths.
    """
    problems: list[str] = []
    version = spec.get("cdiVersion")
    if version not in KNOWN_VERSIONS:
        problems.append(f"cdiVersion {version!r} is not one of {', '.join(KNOWN_VERSIONS)}")
    else:
        needed = minimum_version(spec)
        if _version(str(version)) < _version(needed):
            problems.append(f"cdiVersion {version} is too old for this spec: it needs at least {needed}")
    vendor, slash, cls = str(spec.get("kind", "")).partition("/")
    if not slash or not VENDOR_CLASS_RE.match(vendor) or not VENDOR_CLASS_RE.match(cls):
        problems.append(f"kind {spec.get('kind')!r} is not <vendor>/<class> (letters, digits, _ - . ; "
                        "starting with a letter, ending with a letter or digit)")
    devices = spec.get("devices")
    if not isinstance(devices, list) or not devices:
        return problems + ["a spec needs at least one device"]
    names: set[str] = set()
    for device in devices:
        name = device.get("name")
        if not isinstance(name, str) or not DEVICE_NAME_RE.match(name):
            problems.append(f"device name {name!r} is invalid (letters, digits, _ - . : ; starting and "
                            "ending with a letter or digit)")
        elif name in names:
            problems.append(f"device name {name} appears twice")
        names.add(str(name))
        problems += _check_edits(device.get("containerEdits"), f"device {name}")
    if "containerEdits" in spec:
        problems += _check_edits(spec["containerEdits"], "spec")
    return problems


# --- rendering ------------------------------------------------------------


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a YAML double-quoted scalar


def _key(key: str) -> str:
    return key if YAML_KEY_RE.match(key) else json.dumps(key)


def _empty_or_scalar(value: Any) -> str:
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return _scalar(value)


def _yaml(value: Any, indent: int) -> list[str]:
    """Block-style YAML lines for the JSON-like value (every string double-quoted)."""
    pad = " " * indent
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{_key(key)}:")
                lines += _yaml(item, indent + 2)
            else:
                lines.append(f"{pad}{_key(key)}: {_empty_or_scalar(item)}")
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                inner = _yaml(item, indent + 2)
                lines.append(f"{pad}- {inner[0].lstrip()}")
                lines += inner[1:]
            else:
                lines.append(f"{pad}- {_empty_or_scalar(item)}")
    else:
        lines.append(pad + _scalar(value))
    return lines


def render(spec: Spec, dest: str, table: list[dict[str, Any]] | None = None) -> str:
    """File content for dest: JSON for .json, otherwise YAML with a header comment."""
    if dest.endswith(".json"):
        return json.dumps(spec, indent=2) + "\n"
    header = ["# Generated by xpulab (xpulab_cdi_spec, role gpu_containers): edits are overwritten.",
              f"# Use: podman run --device {spec['kind']}=<name> ...   (Docker: with CDI enabled)"]
    for row in table or []:
        card = f", {row['card_node']}" if row.get("card_node") else ""
        header.append(f"#   {row['name']}: {row.get('pci_address') or 'no PCI address'} ({row['render_node']}{card})")
    return "\n".join(header + _yaml(spec, 0)) + "\n"


# --- files ----------------------------------------------------------------


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomically(path: str, content: str, mode: int) -> None:
    """Write content to a hidden file beside path, then rename it over path."""
    directory = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def parse_mode(text: str) -> int:
    if not re.match(r"^0?[0-7]{3}$", str(text)):
        raise SpecError(f"mode must be octal like 0644, got {text!r}")
    return int(str(text), 8)


def run(params: dict[str, Any], check_mode: bool = False, diff_mode: bool = False) -> dict[str, Any]:
    """The module's work and result. Raises SpecError on bad input."""
    dest: str = params["dest"]
    vendor, cls = params.get("vendor") or "intel.com", params.get("class") or "gpu"
    version, order = params.get("cdi_version") or "0.5.0", params.get("order") or "runtime"
    mode = parse_mode(params.get("mode") or "0644")
    if not os.path.isabs(dest):
        raise SpecError(f"dest must be an absolute path, got {dest!r}")
    if not dest.endswith((".json", ".yaml", ".yml")):
        raise SpecError(f"dest must end in .json, .yaml or .yml (runtimes read only those), got {dest}")
    gpus: list[Gpu] = list(params.get("gpus") or [])
    present = params.get("state", "present") == "present"
    spec = build_spec(gpus, vendor, cls, version, order) if present else None
    table = gpu_table(gpus, order) if spec else []
    before = _read(dest)
    after = render(spec, dest, table) if spec else None
    names = [device["name"] for device in spec["devices"]] if spec else []
    result: dict[str, Any] = {
        "changed": False, "dest": dest, "spec": spec, "devices": names,
        "qualified_devices": [f"{vendor}/{cls}={name}" for name in names],
        "gpus": table, "kind": f"{vendor}/{cls}", "cdi_version": version, "written": after is not None,
    }
    if after is None:
        result["changed"] = before is not None
        if before is not None and not check_mode:
            os.unlink(dest)
        what = "no GPUs: no CDI spec written" if present else "state absent"
        result["msg"] = f"{what}; removed {dest}" if before is not None else f"{what}; {dest} does not exist"
    else:
        if not check_mode and not os.path.isdir(os.path.dirname(dest)):
            raise SpecError(f"the directory of {dest} does not exist; create it first")
        current_mode = stat.S_IMODE(os.stat(dest).st_mode) if before is not None else None
        result["changed"] = before != after or current_mode != mode
        if result["changed"] and not check_mode:
            if before != after:
                write_atomically(dest, after, mode)
            else:
                os.chmod(dest, mode)
        result["msg"] = (f"{'wrote' if before != after else 'kept'} {dest}: {len(table)} GPU(s), "
                         f"devices {', '.join(names)}")
    if diff_mode and before != after:
        result["diff"] = {"before": before or "", "after": after or "",
                          "before_header": dest, "after_header": dest}
    return result


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        result = run(module.params, module.check_mode, module._diff)
    except (SpecError, OSError) as error:
        module.fail_json(msg=str(error))
    for row in result["gpus"]:
        if not row.get("pci_address"):
            module.warn(f"GPU {row['name']} ({row['render_node']}) has no PCI address: no /dev/dri/by-path "
                        "entries and no alias for it; TorchCodec cannot find it by PCI address")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
