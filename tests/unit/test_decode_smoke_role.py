"""The decode_smoke role requires an xpu:N for every media GPU of the node's GPU inventory.

The role's own expressions (vars/main.yml and the argv of "Run the decode
smoke test") are rendered with Ansible's templar against a fake
ansible_local.xpulab_intel_gpu fact shaped like the intel_gpu role writes it
(the xpulab_gpu_inventory module's `gpus`). That the CLI then fails on a
missing required device is shown in test_decode_smoke.py
(test_required_absent_device_fails).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from ansible_templar import ROOT, render, role_files

TASKS = yaml.safe_load((ROOT / "roles/decode_smoke/tasks/main.yml").read_text())
RUN = next(task for task in TASKS if task["name"] == "Run the decode smoke test as the decode user")
SANDBOX = ROOT / "inventories/sandbox/group_vars/all/decode_smoke.yml"


def gpu(vendor: str, family: str | None, has_media: bool | None, render_node: str) -> dict[str, Any]:
    """One item of the fact's gpus, as xpulab_gpu_inventory describes a GPU (the fields used here)."""
    return {"vendor": vendor, "family": family, "has_media": has_media, "render_node": render_node}


ARC = gpu("intel", "alchemist", True, "/dev/dri/renderD128")
FLEX = gpu("intel", "flex", True, "/dev/dri/renderD130")
MAX = gpu("intel", "max", False, "/dev/dri/renderD129")
NVIDIA = gpu("nvidia", None, None, "/dev/dri/renderD131")


def fact(*gpus: dict[str, Any]) -> dict[str, Any]:
    return {"ansible_local": {"xpulab_intel_gpu": {"gpus": list(gpus)}}}


def smoke_argv(data: dict[str, Any], group_vars: bool = False) -> tuple[list[str], list[str]]:
    """(the role's required devices, the smoke command's argv) for these variables."""
    files = role_files("decode_smoke") + ([SANDBOX] if group_vars else [])
    out = render({"required": "{{ __decode_smoke_required }}", "argv": RUN["ansible.builtin.command"]["argv"]},
                 files=files, templates=RUN["vars"],
                 data={"xpulab_mirror_url": "http://127.0.0.1:8080", **data})
    return out["required"], out["argv"][4:]


def required_option(argv: list[str]) -> str | None:
    return argv[argv.index("--require-device") + 1] if "--require-device" in argv else None


def test_two_media_gpus_require_xpu0_and_xpu1() -> None:
    required, argv = smoke_argv(fact(ARC, MAX, FLEX, NVIDIA))
    assert required == ["xpu:0", "xpu:1"]
    assert required_option(argv) == "xpu:0,xpu:1"
    assert argv[:2] == ["/usr/local/bin/xpulab-decode-smoke", "report"]


@pytest.mark.parametrize("data", [fact(), fact(MAX, NVIDIA), {"ansible_local": {}}, {}],
                         ids=["no-gpus", "no-media-gpus", "no-intel-gpu-fact", "no-local-facts"])
def test_no_media_gpu_requires_nothing(data: dict[str, Any]) -> None:
    required, argv = smoke_argv(data)
    assert required == []
    assert "--require-device" not in argv


def test_users_devices_come_first_and_are_not_repeated() -> None:
    required, argv = smoke_argv({**fact(ARC, FLEX), "decode_smoke_require_devices": ["xpu:1", "cuda:0"]})
    assert required == ["xpu:1", "cuda:0", "xpu:0"]
    assert required_option(argv) == "xpu:1,cuda:0,xpu:0"


def test_switch_off_keeps_only_the_users_devices() -> None:
    data = {**fact(ARC, FLEX), "decode_smoke_require_media_gpus": False}
    assert smoke_argv(data) == ([], smoke_argv({**data, "ansible_local": {}})[1])
    required, argv = smoke_argv({**data, "decode_smoke_require_devices": ["cuda:0"]})
    assert (required, required_option(argv)) == (["cuda:0"], "cuda:0")


def test_the_smoke_test_runs_as_the_decode_user_in_its_home() -> None:
    data = {"decode_smoke_accounts": {"xpulab": {"uid": 999, "home": "/var/lib/xpulab/home/xpulab", "groups": []},
                                      "alice": {"uid": 1000, "home": "/home/alice", "groups": []}}}
    templates = {"argv": RUN["ansible.builtin.command"]["argv"], "chdir": RUN["ansible.builtin.command"]["chdir"],
                 "env": RUN["environment"]}
    for user, home in (("xpulab", "/var/lib/xpulab/home/xpulab"), ("alice", "/home/alice")):
        out = render(templates, files=role_files("decode_smoke"), templates=RUN["vars"],
                     data={**data, "decode_smoke_user": user})
        assert out["argv"][:6] == ["runuser", "-u", user, "--", "/usr/local/bin/xpulab-decode-smoke", "report"]
        assert out["chdir"] == home
        assert out["env"] == {"HOME": home, "XDG_CACHE_HOME": f"{home}/.cache", "TMPDIR": "/tmp"}
    # Before user.yml has run (check mode on a new node) the home is the one it would make.
    out = render({"chdir": RUN["ansible.builtin.command"]["chdir"]}, files=role_files("decode_smoke"),
                 templates=RUN["vars"], data={})
    assert out["chdir"] == "/var/lib/xpulab/home/xpulab"


def test_sandbox_nodes_without_gpus_list_xpu0_without_requiring_it() -> None:
    required, argv = smoke_argv(fact(), group_vars=True)
    assert required == []
    assert argv[argv.index("--devices") + 1] == "cpu,xpu:0"
    assert "--require-device" not in argv


# ------------------------------------------------ the decode user's render-node check (tasks/user_converge.yml)

USER_TASKS = yaml.safe_load((ROOT / "roles/decode_smoke/tasks/user_converge.yml").read_text())
CHECKS = next(task for task in USER_TASKS if "block" in task)["block"]
STOP = next(task for task in CHECKS if task["name"] == "Stop when the decode user cannot open a render node")


def node_stat(path: str, group: str, mode: str) -> dict[str, Any]:
    """An item of ansible.builtin.find's files (the fields the message uses)."""
    return {"path": path, "pw_name": "root", "gr_name": group, "mode": mode}


def test_render_nodes_checked_are_those_present_and_each_media_gpus() -> None:
    found = {"files": [node_stat("/srv/dev/dri/renderD128", "render", "0660")]}
    out = render({"nodes": "{{ __decode_smoke_render_nodes }}"}, files=role_files("decode_smoke"),
                 data={**fact(ARC, MAX, FLEX, NVIDIA), "decode_smoke_dev_root": "/srv/dev/",
                       "decode_smoke_render_found": found})
    # renderD128 once (present and listed), renderD130 (listed: media); not MAX's or NVIDIA's node.
    assert out["nodes"] == ["/srv/dev/dri/renderD128", "/srv/dev/dri/renderD130"]


def test_a_denied_render_node_is_named_with_its_group_and_the_fix() -> None:
    found = {"files": [node_stat("/dev/dri/renderD128", "render", "0660"),
                       node_stat("/dev/dri/renderD129", "video", "0600")]}
    access = {"results": [{"item": "/dev/dri/renderD128", "rc": 1}, {"item": "/dev/dri/renderD129", "rc": 1},
                          {"item": "/dev/dri/renderD130", "rc": 1}, {"item": "/dev/dri/renderD131", "rc": 0}]}
    out = render({"when": "{{ " + STOP["when"] + " }}", "msg": STOP["ansible.builtin.fail"]["msg"]},
                 files=role_files("decode_smoke"), templates=STOP["vars"],
                 data={"inventory_hostname": "node-01", "decode_smoke_user": "xpulab",
                       "decode_smoke_user_groups": ["video"],
                       "decode_smoke_accounts": {"xpulab": {"groups": ["xpulab", "video"]}},
                       "decode_smoke_render_found": found, "decode_smoke_render_access": access})
    assert out["when"] is True
    assert out["msg"].splitlines() == [
        "node-01: the decode user xpulab (groups: xpulab, video) cannot open 3 render node(s) read-write:",
        "- /dev/dri/renderD128 (owner root, group render, mode 0660): xpulab is not in group render. Add it: put render"
        " in decode_smoke_user_groups (now video), or run usermod -aG render xpulab; processes already running keep"
        " their old groups until a new login.",
        "- /dev/dri/renderD129 (owner root, group video, mode 0600): its mode gives group video no read-write access."
        ' Fix the node\'s udev rule (Debian and Ubuntu give render nodes GROUP="render", MODE="0660").',
        "- /dev/dri/renderD130 is missing, though the GPU inventory lists it: the GPU has no render node here (driver"
        " not bound, or a container without the device).",
    ]


def test_nothing_denied_does_not_stop() -> None:
    out = render({"when": "{{ " + STOP["when"] + " }}"}, files=role_files("decode_smoke"), templates=STOP["vars"],
                 data={"decode_smoke_user": "xpulab", "decode_smoke_accounts": {"xpulab": {"groups": ["render"]}},
                       "decode_smoke_render_found": {"files": []},
                       "decode_smoke_render_access": {"results": [{"item": "/dev/dri/renderD128", "rc": 0}]}})
    assert out["when"] is False


# ------------------------------------------------ the one-call account check (tasks/user.yml)

PROBE_TASKS = yaml.safe_load((ROOT / "roles/decode_smoke/tasks/user.yml").read_text())
READY = next(task for task in PROBE_TASKS if task["name"] == "Decide whether the decode user's account needs work")
PROBE_SCRIPT = ROOT / "roles/decode_smoke/files/xpulab_user_probe.py"


def ready(rc: int, found: dict[str, Any], groups: list[str]) -> bool:
    out = render({"ready": READY["ansible.builtin.set_fact"]["decode_smoke_user_ready"]}, templates=READY["vars"],
                 data={"decode_smoke_user_groups": groups,
                       "decode_smoke_user_probe": {"rc": rc, "stdout": json.dumps(found)}})
    return bool(out["ready"])


GOOD = {"uid": 999, "home": "/var/lib/xpulab", "groups": ["render", "video", "xpulab"], "home_writable": True,
        "nodes": {"/dev/dri/renderD128": True}}


def test_a_settled_account_needs_no_work() -> None:
    assert ready(0, GOOD, ["video", "render"]) is True
    assert ready(0, {**GOOD, "nodes": {}}, ["video", "render"]) is True  # no render node to open


@pytest.mark.parametrize("rc, found, why", [
    (1, {}, "the user is missing (runuser fails)"),
    (0, {**GOOD, "groups": ["video", "xpulab"]}, "not in render"),
    (0, {**GOOD, "home_writable": False}, "home not writable"),
    (0, {**GOOD, "nodes": {"/dev/dri/renderD128": True, "/dev/dri/renderD129": False}}, "a node it cannot open"),
])
def test_an_account_that_falls_short_is_made_and_checked_in_full(rc: int, found: dict[str, Any], why: str) -> None:
    assert ready(rc, found, ["video", "render"]) is False, why


def test_the_probe_reports_the_nodes_present_and_those_that_must_be(tmp_path: Path) -> None:
    (tmp_path / "dri").mkdir()
    (tmp_path / "dri" / "renderD128").write_text("")
    missing = str(tmp_path / "dri" / "renderD130")
    out = json.loads(subprocess.run([sys.executable, "-c", PROBE_SCRIPT.read_text(), str(tmp_path), missing],
                                    check=True, capture_output=True, text=True).stdout)
    assert out["uid"] == os.getuid()
    assert out["nodes"] == {str(tmp_path / "dri" / "renderD128"): True, missing: False}
    assert out["home_writable"] is os.access(out["home"], os.W_OK)
