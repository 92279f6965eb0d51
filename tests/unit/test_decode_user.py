"""The decode user and its render-node check, run for real on a throwaway container.

roles/decode_smoke/tasks/user.yml (what the smoke test, the torchcodec role and
the pytorch role include before running anything as the decode user) is run
with ansible-playbook against a podman container of localhost/xpulab-debian:12,
whose fake /dev tree holds a render node the way udev makes one (group render,
mode 0660; a plain file stands in for the character device, as in
tests/unit/fake_sysfs.py: runuser's access check reads the same bits). A decode
user outside render fails, naming the node, its group and the user; with the
role's default groups it passes, and a second run changes nothing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import podman_node
import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/xpulab-debian:12"
PODMAN = str(ROOT / "sandbox" / "bin" / "podman")
DEV = "/srv/fake-dev"
NODE = f"{DEV}/dri/renderD128"
ENV = {**os.environ, "CONTAINERS_CONF": str(ROOT / "sandbox" / "containers.conf"), "ANSIBLE_NOCOLOR": "1",
       "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
       "ANSIBLE_PIPELINING": "true"}


pytestmark = pytest.mark.skipif(not podman_node.ready(), reason=f"podman or the image {IMAGE} is not here")


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    with podman_node.container("decode-user") as name:
        yield name


def sh(node: str, command: str) -> str:
    return subprocess.run([PODMAN, "exec", node, "sh", "-c", command], env=ENV, check=True, capture_output=True,
                          text=True, timeout=60).stdout


def play(node: str, tmp_path: Path, node_mode: str = "0660", role: dict[str, Any] | None = None,
         fixture: list[dict[str, Any]] | None = None, **variables: Any) -> tuple[int, str, int]:
    """Lay out the fake render node (as udev would: the render group first) and
    any more fixture tasks, then include the role (by default its user.yml).
    Returns (rc, output, changed count of the role's tasks)."""
    role = role or {"name": "xpulab.gpu.decode_smoke", "tasks_from": "user"}
    playbook = [{
        "hosts": "all", "gather_facts": "tasks_from" not in role,
        "tasks": [
            {"name": "Make the render group, as udev does", "ansible.builtin.group": {"name": "render", "system": True},
             "tags": ["fixture"]},
            {"name": "Make the fake dri directory", "ansible.builtin.file": {"path": f"{DEV}/dri", "state": "directory",
                                                                             "mode": "0755"}, "tags": ["fixture"]},
            {"name": "Make the fake render node", "ansible.builtin.copy": {
                "content": "", "dest": NODE, "owner": "root", "group": "render", "mode": node_mode},
             "tags": ["fixture"]},
            *[{**task, "tags": ["fixture"]} for task in fixture or []],
            {"name": "Run the role's decode-user tasks", "ansible.builtin.include_role": role},
        ],
    }]
    (tmp_path / "play.yml").write_text(json.dumps(playbook))
    (tmp_path / "vars.json").write_text(json.dumps({
        "ansible_connection": "containers.podman.podman", "ansible_podman_executable": PODMAN,
        "ansible_python_interpreter": "/usr/bin/python3", "decode_smoke_dev_root": DEV, **variables}))
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", f"{node},", "-e", f"@{tmp_path / 'vars.json'}",
         str(tmp_path / "play.yml")],
        cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=600, check=False)
    output = proc.stdout + proc.stderr
    fixture_changes = len(re.findall(r"^changed: .*", output.split("Run the role's decode-user tasks")[0], re.M))
    recap = re.search(rf"^{re.escape(node)}\s*:\s*ok=\d+\s+changed=(\d+)", output, re.M)
    return proc.returncode, output, (int(recap.group(1)) - fixture_changes) if recap else -1


def test_a_user_outside_render_is_refused_naming_the_group(node: str, tmp_path: Path) -> None:
    rc, output, _ = play(node, tmp_path, decode_smoke_user="xpulab", decode_smoke_user_groups=["video"])
    assert rc != 0, output[-3000:]
    assert "cannot open 1 render node(s) read-write" in output, output[-3000:]
    assert f"{NODE} (owner root, group render, mode 0660): xpulab is not in group render" in output
    assert "usermod -aG render xpulab" in output
    # The user was made, as a system account without a login shell, only in video.
    passwd = sh(node, "getent passwd xpulab").strip().split(":")
    assert int(passwd[2]) < 1000 and passwd[5] == "/var/lib/xpulab/home/xpulab" and passwd[6] == "/usr/sbin/nologin"
    assert set(sh(node, "id -nG xpulab").split()) == {"xpulab", "video"}
    assert sh(node, "stat -c '%U %a' /var/lib/xpulab/home/xpulab").split() == ["xpulab", "750"]


def test_the_default_groups_open_the_node_and_a_second_run_changes_nothing(node: str, tmp_path: Path) -> None:
    rc, output, changed = play(node, tmp_path, decode_smoke_user="xpulab")
    assert rc == 0, output[-3000:]
    assert changed == 1, output[-3000:]  # xpulab joins render
    assert {"render", "video"} <= set(sh(node, "id -nG xpulab").split())
    rc, output, changed = play(node, tmp_path, decode_smoke_user="xpulab")
    assert (rc, changed) == (0, 0), output[-3000:]
    # The check is real: the user can open the node, a stranger cannot.
    sh(node, f"runuser -u xpulab -- test -r {NODE} -a -w {NODE}")
    assert subprocess.run([PODMAN, "exec", node, "runuser", "-u", "nobody", "--", "test", "-w", NODE], env=ENV,
                          check=False, timeout=60).returncode == 1


def test_a_node_shut_to_its_group_and_a_missing_media_gpu_node_are_named(node: str, tmp_path: Path) -> None:
    gpus = [{"vendor": "intel", "has_media": True, "render_node": "/dev/dri/renderD129"},
            {"vendor": "intel", "has_media": False, "render_node": "/dev/dri/renderD130"}]
    rc, output, _ = play(node, tmp_path, node_mode="0600", decode_smoke_user="xpulab",
                         ansible_local={"xpulab_intel_gpu": {"gpus": gpus}})
    assert rc != 0
    assert "cannot open 2 render node(s) read-write" in output, output[-3000:]
    assert f"{NODE} (owner root, group render, mode 0600): its mode gives group render no read-write access" in output
    assert f"{DEV}/dri/renderD129 is missing, though the GPU inventory lists it" in output
    assert "renderD130" not in output  # no media engines: not the decode user's business


def test_an_existing_account_keeps_its_home(node: str, tmp_path: Path) -> None:
    sh(node, "id alice >/dev/null 2>&1 || useradd -m -d /home/alice -s /bin/sh alice")
    rc, output, _ = play(node, tmp_path, decode_smoke_user="alice")
    assert rc == 0, output[-3000:]
    assert sh(node, "getent passwd alice").strip().split(":")[5:] == ["/home/alice", "/bin/sh"]
    assert not sh(node, "ls /var/lib/xpulab/home").split().count("alice")


# The smoke test itself, end to end through the role: a stand-in for the venv's
# python (decode_smoke_python, which the wrapper runs with the CLI and its
# arguments) writes the report the way the CLI does, naming who ran it, and
# with --json-stdout (which the role passes) prints it on stdout too.
FAKE_PYTHON = r"""#!/bin/sh
json=0
while [ $# -gt 0 ]; do case "$1" in --output) out=$2 ;; --json-stdout) json=1 ;; esac; shift; done
report=$(printf '{"status": "passed", "user": {"name": "%s", "groups": ["%s"]}, "devices": [], "clips": []}' \
  "$(id -un)" "$(id -Gn | sed 's/ /", "/g')")
printf '%s\n' "$report" > "$out"
if [ "$json" = 1 ]; then
  echo "decode smoke test: PASSED (as $(id -un))" >&2
  printf '%s\n' "$report"
else
  echo "decode smoke test: PASSED (as $(id -un))"
fi
"""
CLIP = b"not really a clip\n"
REPORT = "/var/lib/xpulab/reports/decode-smoke.json"


def test_the_smoke_test_runs_as_the_decode_user_and_its_report_names_it(node: str, tmp_path: Path) -> None:
    import hashlib

    fixture = [
        {"ansible.builtin.copy": {"content": FAKE_PYTHON, "dest": "/usr/local/bin/xpulab-fake-python", "mode": "0755"}},
        {"ansible.builtin.file": {"path": "/var/cache/xpulab/media", "state": "directory", "mode": "0755"}},
        {"ansible.builtin.copy": {"content": CLIP.decode(), "dest": "/var/cache/xpulab/media/fake.mp4",
                                  "mode": "0644"}},
        # A report a run as root left behind (before the decode user existed).
        {"ansible.builtin.file": {"path": "/var/lib/xpulab/reports", "state": "directory", "mode": "0755"}},
        {"ansible.builtin.copy": {"content": "{}\n", "dest": REPORT, "force": False, "mode": "0644"}},
    ]
    variables = {
        "decode_smoke_python": "/usr/local/bin/xpulab-fake-python",
        "decode_smoke_media_base_url": "http://127.0.0.1:9/unused",  # the clip is there with its checksum
        "decode_smoke_clips": [{"name": "fake", "file": "fake.mp4", "sha256": hashlib.sha256(CLIP).hexdigest()}],
        "decode_smoke_devices": ["cpu"],
    }
    role = {"name": "xpulab.gpu.decode_smoke"}
    rc, output, changed = play(node, tmp_path, role=role, fixture=fixture, **variables)
    assert rc == 0, output[-4000:]
    report = json.loads(sh(node, f"cat {REPORT}"))
    assert report["user"]["name"] == "xpulab" and {"render", "video"} <= set(report["user"]["groups"])
    assert sh(node, f"stat -c '%U %a' {REPORT} /var/lib/xpulab/reports").split() == ["xpulab", "644", "xpulab", "755"]
    # What the user must not change stays root's.
    owners = sh(node, "stat -c '%n %U %a' /opt/xpulab/lib/xpulab_decode_smoke.py /usr/local/bin/xpulab-decode-smoke "
                      "/etc/xpulab/decode-smoke-clips.json /var/cache/xpulab/media/fake.mp4").splitlines()
    assert [line.split()[1:] for line in owners] == [["root", "644"], ["root", "755"], ["root", "644"], ["root", "644"]]
    rc, output, changed = play(node, tmp_path, role=role, fixture=fixture, **variables)
    assert (rc, changed) == (0, 0), output[-4000:]
