#!/usr/bin/python
"""Take or release a lock on the controller's artifact cache, waiting a bounded time for another run."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: xpulab_cache_lock
short_description: Lock one fingerprint of the controller's artifact cache while a run fills it
description:
  - The lock is a directory (C(mkdir) is atomic) holding C(holder.json), the
    run's id, controller, ansible-playbook pid, user and start time.
  - A lock held by this same run (a stand-in builder after a failed one), or
    by a run of this controller whose ansible-playbook process is gone, is
    taken over. Any other holder is waited for, up to I(wait) seconds; then
    the module fails naming it.
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
taken_over:
  description: The holder whose lock was taken over, or null.
  returned: state=present
  type: dict
waited:
  description: Seconds spent waiting for another run.
  returned: state=present
  type: int
"""

import json
import os
import shutil
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]


def read_holder(path: str) -> dict[str, Any]:
    try:
        with open(os.path.join(path, "holder.json"), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def runs(pid: Any) -> bool:
    """Whether process `pid` of this machine is an ansible-playbook."""
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as handle:
            return b"ansible-playbook" in handle.read()
    except (OSError, ValueError, TypeError):
        return False


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "a run that left no record"
    return (f"run {holder.get('id')} from {holder.get('controller')} (ansible-playbook pid {holder.get('pid')}, "
            f"user {holder.get('user')}), started {holder.get('started')}")


def stale(holder: dict[str, Any], me: dict[str, Any]) -> bool:
    """A lock this run may take over: its own, or a gone run's of this controller."""
    if holder.get("id") == me.get("id"):
        return True
    return bool(holder) and holder.get("controller") == me.get("controller") and not runs(holder.get("pid"))


def take(path: str, me: dict[str, Any], wait: int, delay: int) -> dict[str, Any]:
    """Take the lock; raise TimeoutError naming the holder after `wait` seconds."""
    start = time.monotonic()
    taken_over: dict[str, Any] | None = None
    while True:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            holder = read_holder(path)
            if stale(holder, me):
                # Rename first: of two runs taking over, only one wins the rename.
                aside = f"{path}.stale-{me.get('id')}-{os.getpid()}"
                try:
                    os.rename(path, aside)
                except OSError:
                    continue
                shutil.rmtree(aside, ignore_errors=True)
                taken_over = holder
                continue
            waited = time.monotonic() - start
            if waited >= wait:
                raise TimeoutError(describe(holder)) from None
            time.sleep(min(delay, max(wait - waited, 0.1)))
            continue
        tmp = os.path.join(path, ".holder.json")
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(json.dumps(me, sort_keys=True) + "\n")
        os.replace(tmp, os.path.join(path, "holder.json"))
        return {"taken_over": taken_over, "waited": int(time.monotonic() - start)}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "holder": {"type": "dict", "required": True},
            "wait": {"type": "int", "default": 0},
            "delay": {"type": "int", "default": 5},
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
        module.exit_json(changed=False, taken_over=None, waited=0)
    try:
        module.exit_json(changed=False, **take(path, me, params["wait"], params["delay"]))
    except TimeoutError as held:
        module.fail_json(msg=(
            f"The controller's artifact cache entry {os.path.basename(path)} is being filled by another xpulab run: "
            f"{held}. Waited {params['wait']} s. Run again when it has finished (it fills the cache for this run "
            f"too). If that run is gone, remove {path}."))


if __name__ == "__main__":
    main()
