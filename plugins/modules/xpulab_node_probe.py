#!/usr/bin/python
"""Documentation of the xpulab_node_probe action (plugins/action/xpulab_node_probe.py)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xpulab_node_probe
short_description: Ask a node in one call whether every role's last complete run still holds
description:
  - Runs on the controller. Works out one digest of the run's inputs for the
    node (the collection's code, the values of the host's variables that start
    with one of I(prefixes) as the roles see them with their defaults, the
    I(facts) named and the files in the I(controller_dirs)), then asks the node
    with the M(xpulab.gpu.xpulab_state) module (C(state=node_probe)) whether its
    node record has those inputs and the same GPU inventory, and whether every
    role's record and checks still hold.
  - Sets C(xpulab_node_inputs), C(xpulab_node_gpu_inventory) (the inventory's
    options, for the node record), C(xpulab_node_settled) and
    C(xpulab_node_reasons); on a settled node also C(xpulab_state_settled),
    C(xpulab_state_fingerprints) and C(xpulab_state_reasons) for every role,
    as the roles' own probes would.
  - A settled node's run lock is taken in the same call (I(lock_path)).
options:
  roles:
    description: Roles whose defaults are read (and whose names are the default I(prefixes)).
    type: list
    elements: str
    required: true
  prefixes:
    description: Prefixes of the variables that are inputs.
    type: list
    elements: str
  exclude:
    description: Prefixes of variables left out (run state, not inputs).
    type: list
    elements: str
    default: []
  facts:
    description: Facts that are inputs, as dotted paths under ansible_facts (C(env.PATH)).
    type: list
    elements: str
    default: []
  controller_dirs:
    description: Variables naming controller directories whose files are inputs (the Python locks).
    type: list
    elements: str
    default: []
  gpu_inventory:
    description: GPU inventory option (C(sysfs_root), C(dev_root), C(kernel_release)) -> the variable that gives its value.
    type: dict
    default: {}
  lock_path:
    description: The node's run lock, taken when the node is settled.
    type: path
  holder:
    description: This run, as the run lock records it.
    type: dict
    default: {}
  facts_dir:
    description: Directory of the local facts on the node.
    type: path
    default: /etc/ansible/facts.d
notes:
  - Supports check mode (the lock is not taken).
author:
  - xpulab (@xpulab)
"""

EXAMPLES = r"""
- name: Ask the node whether every role's last complete run still holds
  xpulab.gpu.xpulab_node_probe:
    roles: [intel_gpu, ffmpeg]
    facts: [distribution, kernel]
    lock_path: /var/lib/xpulab/run.lock
"""

RETURN = r"""
settled:
  description: Whether every role's last complete run still holds.
  returned: always
  type: bool
reasons:
  description: Why not, one sentence each.
  returned: always
  type: list
  elements: str
inputs:
  description: The digest of the run's inputs.
  returned: always
  type: str
lock_taken:
  description: Whether the node's run lock was taken.
  returned: always
  type: bool
"""
