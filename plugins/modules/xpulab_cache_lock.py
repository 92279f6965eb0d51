#!/usr/bin/python
"""Take or release a lock on the controller's artifact cache, waiting a bounded time for another run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xpulab_cache_lock
short_description: Take or release an xpulab run lock (a controller cache entry, or a node)
description:
  - The lock is a directory (C(mkdir) is atomic) holding C(holder.json), the
    run's id, controller, ansible-playbook pid, user and start time.
  - A lock held by this same run (a stand-in builder after a failed one), by a
    holder named in I(gone), or (with I(local_pids)) by a run of this machine
    whose ansible-playbook process is gone, is taken over. Any other holder is
    waited for, up to I(wait) seconds; then the module fails naming it, or with
    I(on_held=report) returns C(taken=false) and the holder.
  - The controller's artifact cache locks one fingerprint with it; each node's
    run lock (one xpulab run at a time per node) is taken and released with it
    in one call each, the liveness of a holder being checked on the controller.
options:
  path:
    description: The lock directory.
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it when this run holds it.
    type: str
    choices: [present, absent]
    default: present
  holder:
    description: This run (id, controller, pid, user, started).
    type: dict
    required: true
  wait:
    description: Seconds to wait for a live holder before failing.
    type: int
    default: 0
  delay:
    description: Seconds between two looks at the lock while waiting.
    type: int
    default: 5
  local_pids:
    description:
      - Whether holders' pids are processes of the machine the module runs on
        (the controller's cache). A node's lock holds controller pids, so a
        node's lock sets it false and names gone holders in I(gone).
    type: bool
    default: true
  gone:
    description: Ids of holders known to be gone (checked by the caller), whose lock is taken over; an empty id stands for a holder that left no record.
    type: list
    elements: str
    default: []
  on_held:
    description: What to do when another run holds the lock after I(wait) seconds.
    type: str
    choices: [fail, report]
    default: fail
  parents:
    description: Create the lock's parent directory (mode 0755) when it is missing.
    type: bool
    default: false
notes:
  - Supports check mode (reports, takes nothing).
author:
  - xpulab (@xpulab)
"""

EXAMPLES = r"""
- name: Lock this fingerprint's cache entry
  xpulab_cache_lock:
    path: "{{ cache }}/.ffmpeg-7.1.1-abc.lock"
    holder: "{{ xpulab_state_run }}"
    wait: 1800
  delegate_to: localhost
"""

RETURN = r"""
taken:
  description: Whether this run holds the lock now.
  returned: state=present
  type: bool
holder:
  description: The run that holds the lock, when it is not this one (on_held=report).
  returned: state=present and not taken
  type: dict
taken_over:
  description: The holder whose lock was taken over, or null.
  returned: state=present
  type: dict
waited:
  description: Seconds spent waiting for another run.
  returned: state=present
  type: int
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]
from ansible_collections.xpulab.gpu.plugins.module_utils.run_lock import read_holder, take  # type: ignore[import-not-found]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "holder": {"type": "dict", "required": True},
            "wait": {"type": "int", "default": 0},
            "delay": {"type": "int", "default": 5},
            "local_pids": {"type": "bool", "default": True},
            "gone": {"type": "list", "elements": "str", "default": []},
            "on_held": {"type": "str", "choices": ["fail", "report"], "default": "fail"},
            "parents": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    path, me = params["path"], params["holder"]
    # Run bookkeeping, not configuration: never a change.
    if params["state"] == "absent":
        if not module.check_mode and read_holder(path).get("id") == me.get("id"):
            shutil.rmtree(path, ignore_errors=True)
        module.exit_json(changed=False)
    if module.check_mode:
        module.exit_json(changed=False, taken=False, taken_over=None, waited=0)
    if params["parents"]:
        os.makedirs(os.path.dirname(path.rstrip("/")), mode=0o755, exist_ok=True)
    try:
        module.exit_json(changed=False, **take(path, me, params["wait"], params["delay"], params["gone"],
                                               params["local_pids"]))
    except TimeoutError as held:
        if params["on_held"] == "report":
            module.exit_json(changed=False, taken=False, holder=read_holder(path), taken_over=None,
                             waited=params["wait"])
        module.fail_json(msg=(
            f"The controller's artifact cache entry {os.path.basename(path)} is being filled by another xpulab run: "
            f"{held}. Waited {params['wait']} s. Run again when it has finished (it fills the cache for this run "
            f"too). If that run is gone, remove {path}."))


if __name__ == "__main__":
    main()
