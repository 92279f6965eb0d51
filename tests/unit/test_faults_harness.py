"""tests/faults/harness.py: how the fault suite reads roles' decisions and changes from job events."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "faults"))
from harness import DECIDE, PROBE, Job  # noqa: E402


def event(play: str, task: str, changed: bool = False, settled: dict[str, bool] | None = None,
          host: str = "n", delegated: bool = False) -> dict[str, Any]:
    res: dict[str, Any] = {"changed": changed}
    if settled is not None:
        res["ansible_facts"] = {"xpulab_state_settled": settled}
    if delegated:
        res["_ansible_delegated_vars"] = {"ansible_host": "localhost"}
    return {"event": "runner_on_ok", "event_data": {"host": host, "play": play, "task": task, "res": res}}


EVENTS = [
    event("tc", "Create the decode user", changed=True),
    event("tc", DECIDE + "torchcodec", settled={"torchcodec": True}),
    event("tc", DECIDE + "decode_smoke", settled={"torchcodec": True, "decode_smoke": True}),
    event("tc", "Write the summary on the controller", changed=True, delegated=True),
    event("tc", PROBE + "torchcodec_tests", changed=True),
    event("tc", DECIDE + "torchcodec_tests",
          settled={"torchcodec": True, "decode_smoke": True, "torchcodec_tests": False}),
    event("tc", "Install the runner", changed=True),
    event("tc", "Install the runner", changed=True, host="other"),
    event("health", "Write the timer", changed=True),
]


def test_changes_go_to_the_role_decided_last_in_their_play() -> None:
    job = Job("successful", 0, EVENTS, "")
    assert job.changed_roles("n") == {"torchcodec": ["Create the decode user"],
                                      "torchcodec_tests": [PROBE + "torchcodec_tests", "Install the runner"],
                                      "health": ["Write the timer"]}


def test_decisions_come_from_the_settled_fact() -> None:
    job = Job("successful", 0, EVENTS, "")
    assert job.role_decisions("n") == {"torchcodec": False, "decode_smoke": False, "torchcodec_tests": True}


def test_the_task_names_are_xpulab_states() -> None:
    check = (Path(__file__).resolve().parents[2] / "roles" / "xpulab_state" / "tasks" / "check.yml").read_text()
    assert f"- name: {PROBE}{{{{ xpulab_state_role }}}}" in check
    assert f"- name: {DECIDE}{{{{ xpulab_state_role }}}}" in check
