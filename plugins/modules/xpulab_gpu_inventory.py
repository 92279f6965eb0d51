#!/usr/bin/python
"""Inventory the GPUs of a node from sysfs and tell whether it can decode."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xpulab_gpu_inventory
short_description: List the GPUs of a node and tell whether it can be a TorchCodec decode node
description:
  - Reads C(/sys/class/drm/renderD*) and reports, for each render node, its PCI
    device (vendor, device ID, bound kernel driver, PCI address), the matching
    C(/dev/dri/card*) node and the C(/dev/dri/by-path) links.
  - Classifies Intel GPUs by PCI device ID (Alchemist, Battlemage, Flex, Data
    Center GPU Max, integrated) and says which have media engines.
  - Computes C(problems), the reasons the node cannot be a decode node (empty
    when it can). Never changes anything.
options:
  sysfs_root:
    description: Root of sysfs. Tests point it at a fake tree.
    type: path
    default: /sys
  dev_root:
    description:
      - Root of /dev, used to check which C(/dev/dri/by-path) links exist.
      - Returned paths always start with C(/dev), whatever this is.
    type: path
    default: /dev
  kernel_release:
    description:
      - Kernel release to check the GPUs against, like C(6.1.0-26-amd64).
      - Defaults to the running kernel (C(uname -r)).
    type: str
notes:
  - Supports check mode; the module only reads.
  - C(has_media) is null for an Intel GPU that is neither in the ID tables nor
    on PCI bus 00 (family C(unknown-intel)); whether it has media engines is
    unknown, and it does not count as a media GPU.
author:
  - xpulab (@xpulab)
"""

EXAMPLES = r"""
- name: Inventory the GPUs
  xpulab_gpu_inventory:
  register: xpu

- name: Refuse nodes that cannot decode
  ansible.builtin.assert:
    that: xpu.problems | length == 0
    fail_msg: "{{ xpu.problems | join('; ') }}"

- name: Render nodes of the GPUs with media engines
  ansible.builtin.debug:
    msg: "{{ xpu.media_gpus | map(attribute='render_node') | list }}"
"""

RETURN = r"""
gpus:
  description:
    - Every GPU with a render node, sorted by render node number.
    - Each item has C(pci_address), C(vendor_id), C(device_id),
      C(subsystem_device), C(pci_class), C(vendor) (intel, nvidia, amd, other),
      C(family) (alchemist, battlemage, flex, max, integrated, unknown-intel,
      or null for non-Intel), C(has_media) (bool, null when unknown),
      C(min_kernel), C(required_driver), C(driver) (name of the bound kernel
      driver, such as i915, xe, nvidia; null if unbound), C(render_node),
      C(card_node), C(render_by_path), C(card_by_path), C(by_path_present).
  returned: always
  type: list
  elements: dict
  sample:
    - pci_address: "0000:03:00.0"
      vendor_id: "0x8086"
      device_id: "0x56a0"
      subsystem_device: "0x1020"
      pci_class: "0x030000"
      vendor: intel
      family: alchemist
      has_media: true
      min_kernel: "6.2"
      required_driver: null
      driver: i915
      render_node: /dev/dri/renderD128
      card_node: /dev/dri/card0
      render_by_path: /dev/dri/by-path/pci-0000:03:00.0-render
      card_by_path: /dev/dri/by-path/pci-0000:03:00.0-card
      by_path_present: true
intel_gpus:
  description: The Intel items of C(gpus).
  returned: always
  type: list
  elements: dict
media_gpus:
  description: The Intel items of C(gpus) that have media engines.
  returned: always
  type: list
  elements: dict
counts:
  description: Lengths of C(gpus), C(intel_gpus) and C(media_gpus).
  returned: always
  type: dict
  sample: {gpus: 3, intel_gpus: 3, media_gpus: 2}
kernel_release:
  description: The kernel release the GPUs were checked against.
  returned: always
  type: str
  sample: 6.8.0-45-generic
problems:
  description: Why the node cannot be a decode node; empty when it can.
  returned: always
  type: list
  elements: str
  sample: ["kernel 6.8.0-45-generic too old for battlemage at 0000:03:00.0 (needs >= 6.11)"]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]
from ansible_collections.xpulab.gpu.plugins.module_utils.gpu_inventory import (  # type: ignore[import-not-found]
    classify, gate, inventory, kernel_version, scan)

# The classification, the scan and the gate live in module_utils (xpulab_state's node
# probe reads the same inventory); named here for the unit tests.
__all__ = ["ARGUMENT_SPEC", "classify", "gate", "inventory", "kernel_version", "main", "scan"]

ARGUMENT_SPEC: dict[str, dict[str, Any]] = {
    "sysfs_root": {"type": "path", "default": "/sys"},
    "dev_root": {"type": "path", "default": "/dev"},
    "kernel_release": {"type": "str"},
}


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    module.exit_json(changed=False, **inventory(params["sysfs_root"], params["dev_root"], params["kernel_release"]))


if __name__ == "__main__":
    main()
