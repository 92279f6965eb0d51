"""Filter cdi_spec: the Container Device Interface (CDI) spec for a node's Intel GPUs.

``gpus | cdi_spec(...)`` takes GPUs as xpulab_gpu_inventory returns them
(``media_gpus`` or ``intel_gpus``) and returns the spec as data, validated,
with what the role records about it; the role writes it with
ansible.builtin.copy. Name rules: cncf-tags/container-device-interface,
api/producer/identifiers.go; versions: specs-go/version.go.
"""

from __future__ import annotations

import os
import re
from typing import Any

Gpu = dict[str, Any]

# Device names starting with a digit need CDI 0.5.0; podman 4.3 (Debian 12)
# rejects 0.6.0 and later. 0.3.0 and 0.4.0 cannot hold this spec.
KNOWN_VERSIONS = ("0.5.0", "0.6.0", "0.7.0", "0.8.0")
VENDOR_CLASS_RE = re.compile(r"^[A-Za-z](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$")
DEVICE_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.:-]*[A-Za-z0-9])?$")
BDF_RE = re.compile(r"^([0-9a-f]{4}):([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$")
RENDER_NUMBER_RE = re.compile(r"renderD(\d+)$")
BY_PATH = "/dev/dri/by-path"
DEFAULT_HOOK = "/usr/local/libexec/xpulab/cdi-create-symlinks"


class SpecError(ValueError):
    """Bad input, or a spec that would not be valid."""


def _bdf_key(gpu: Gpu) -> tuple[int, ...]:
    match = BDF_RE.match(str(gpu.get("pci_address") or ""))
    return tuple(int(part, 16) for part in match.groups()) if match else (1 << 16,)


def _render_key(gpu: Gpu) -> int:
    match = RENDER_NUMBER_RE.search(str(gpu.get("render_node") or ""))
    return int(match.group(1)) if match else 1 << 16


def order_gpus(gpus: list[Gpu], order: str = "runtime") -> list[Gpu]:
    """GPUs in index order.

    "runtime" is the default order of Intel's compute runtime
    (ExecutionEnvironment::sortNeoDevices), hence of PyTorch's xpu:N: discrete
    GPUs, then integrated ones, each by PCI address. "pci" is PCI order
    (ZE_ENABLE_PCI_ID_DEVICE_ORDER=1), "render" render-node order.
    """
    keys = {
        "runtime": lambda gpu: (gpu.get("family") == "integrated", _bdf_key(gpu), _render_key(gpu)),
        "pci": lambda gpu: (_bdf_key(gpu), _render_key(gpu)),
        "render": lambda gpu: (_render_key(gpu), _bdf_key(gpu)),
    }
    if order not in keys:
        raise SpecError(f"unknown order {order!r} (runtime, pci or render)")
    return sorted(gpus, key=keys[order])


def check_gpus(gpus: list[Gpu]) -> None:
    """Refuse GPU items a spec cannot be built from."""
    seen: dict[str, str] = {}
    for number, gpu in enumerate(gpus):
        if not isinstance(gpu, dict):
            raise SpecError(f"gpus[{number}] is not a dict: {gpu!r}")
        where = f"gpus[{number}] ({gpu.get('pci_address') or gpu.get('render_node')})"
        for key in ("render_node", "card_node"):
            value = gpu.get(key)
            if (value is not None or key == "render_node") and not _abs_path(value):
                raise SpecError(f"{where} has no normalised absolute {key}: {value!r}")
        bdf = gpu.get("pci_address")
        if bdf is not None and not BDF_RE.match(str(bdf)):
            raise SpecError(f"{where} has a malformed pci_address {bdf!r} (want like 0000:03:00.0)")
        for key in ("render_node", "card_node", "pci_address"):
            if gpu.get(key) is not None:
                other = seen.setdefault(f"{key}={gpu[key]}", where)
                if other != where:
                    raise SpecError(f"{where} repeats {key} {gpu[key]} of {other}: each GPU once")


def _abs_path(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("/") and os.path.normpath(value) == value


def links(gpu: Gpu) -> list[str]:
    """The GPU's /dev/dri/by-path names as LINK=TARGET, targets relative like udev's."""
    bdf = gpu.get("pci_address")
    nodes = [("render", gpu["render_node"]), ("card", gpu.get("card_node"))]
    return [f"{BY_PATH}/pci-{bdf}-{kind}={os.path.relpath(node, BY_PATH)}" for kind, node in nodes if bdf and node]


def container_edits(gpus: list[Gpu], hook: str) -> dict[str, Any]:
    """The GPUs' device nodes, and a createContainer hook making their by-path links."""
    edits: dict[str, Any] = {"deviceNodes": [{"path": node} for gpu in gpus
                                             for node in (gpu["render_node"], gpu.get("card_node")) if node]}
    pairs = [pair for gpu in gpus for pair in links(gpu)]
    if pairs:
        edits["hooks"] = [{"hookName": "createContainer", "path": hook, "args": [os.path.basename(hook), *pairs]}]
    return edits


def validate_spec(spec: dict[str, Any]) -> list[str]:
    """Why the spec is not a valid CDI spec of ours (empty when it is)."""
    problems: list[str] = []
    if spec.get("cdiVersion") not in KNOWN_VERSIONS:
        problems.append(f"cdiVersion {spec.get('cdiVersion')!r} is not one of {', '.join(KNOWN_VERSIONS)} "
                        "(device names starting with a digit need 0.5.0; podman 4.3 reads up to 0.5.0)")
    vendor, slash, cls = str(spec.get("kind", "")).partition("/")
    if not slash or not VENDOR_CLASS_RE.match(vendor) or not VENDOR_CLASS_RE.match(cls):
        problems.append(f"kind {spec.get('kind')!r} is not <vendor>/<class> (letters, digits, _ - . ; "
                        "starting with a letter, ending with a letter or digit)")
    devices = spec.get("devices") or []
    if not devices:
        problems.append("a spec needs at least one device")
    names: set[str] = set()
    for device in devices:
        name = device.get("name")
        if not isinstance(name, str) or not DEVICE_NAME_RE.match(name):
            problems.append(f"device name {name!r} is invalid (letters, digits, _ - . : ; starting and "
                            "ending with a letter or digit)")
        elif name in names:
            problems.append(f"device name {name} appears twice")
        names.add(str(name))
        edits = device.get("containerEdits") or {}
        paths = [node.get("path") for node in edits.get("deviceNodes") or []]
        paths += [hook.get("path") for hook in edits.get("hooks") or []]
        if not paths:
            problems.append(f"device {name}: empty containerEdits")
        problems += [f"device {name}: {path!r} is not a normalised absolute path" for path in paths
                     if not _abs_path(path)]
        problems += [f"device {name}: {path} appears twice" for path in sorted(set(map(str, paths)))
                     if paths.count(path) > 1]
    return problems


def cdi_spec(gpus: list[Gpu], vendor: str = "intel.com", cls: str = "gpu", cdi_version: str = "0.5.0",
             order: str = "runtime", hook: str = DEFAULT_HOOK) -> dict[str, Any]:
    """The spec (None without GPUs) and what the role records about it.

    Devices: one per GPU by index ("0", ...), one per GPU by PCI address, and
    "all". Returns spec, kind, cdi_version, devices, qualified_devices, gpus
    (index, PCI address, nodes, in index order) and comment (a YAML header).
    """
    check_gpus(gpus)
    ordered = order_gpus(gpus, order)
    kind = f"{vendor}/{cls}"
    named = [(str(number), [gpu]) for number, gpu in enumerate(ordered)]
    named += [(gpu["pci_address"], [gpu]) for gpu in ordered if gpu.get("pci_address")]
    named += [("all", ordered)] if ordered else []
    spec = {"cdiVersion": cdi_version, "kind": kind,
            "devices": [{"name": name, "containerEdits": container_edits(group, hook)} for name, group in named]}
    problems = validate_spec(spec) + ([] if _abs_path(hook) else [f"hook {hook!r} is not an absolute path"])
    if ordered and problems:
        raise SpecError("the CDI spec would be invalid: " + "; ".join(problems))
    table = [{"name": str(number), "pci_address": gpu.get("pci_address"), "render_node": gpu["render_node"],
              "card_node": gpu.get("card_node"), "family": gpu.get("family")} for number, gpu in enumerate(ordered)]
    comment = ["# Generated by the xpulab gpu_containers role: edits are overwritten.",
               f"# Use: podman run --device {kind}=<name> ...   (Docker: with CDI enabled)"]
    comment += [f"#   {row['name']}: {row['pci_address'] or 'no PCI address'} ({row['render_node']}"
                + (f", {row['card_node']})" if row["card_node"] else ")") for row in table]
    names = [name for name, _gpu in named]
    return {"spec": spec if ordered else None, "kind": kind, "cdi_version": cdi_version, "devices": names,
            "qualified_devices": [f"{kind}={name}" for name in names], "gpus": table,
            "comment": "\n".join(comment) + "\n"}


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self) -> dict[str, Any]:
        return {"cdi_spec": cdi_spec}
