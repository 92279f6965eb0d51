"""plugins/connection/podman_pipelined.py: one ``podman exec`` per module call.

First against a recording stand-in for podman (the commands the connection
runs, counted), then for real against a podman container of
localhost/xpulab-debian:12: a module, a template-style file copy (put_file),
a fetch and a failing command, through ansible-playbook.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import podman_node
import pytest

ROOT = Path(__file__).resolve().parents[2]
PODMAN = podman_node.PODMAN
ENV = {**podman_node.ENV, "XPULAB_HISTORY": "0"}
CONNECTION = "xpulab.gpu.podman_pipelined"


def fake_podman(tmp_path: Path) -> tuple[Path, Path]:
    """A podman that logs its arguments (one JSON list per line) and runs the
    command it was given on this machine, stdin included; `mount` prints a directory."""
    log = tmp_path / "podman.log"
    mount = tmp_path / "mnt"
    mount.mkdir()
    script = tmp_path / "podman"
    script.write_text(f"""#!{sys.executable}
import json, subprocess, sys
args = sys.argv[1:]
with open({str(log)!r}, "a") as f:
    f.write(json.dumps(args) + "\\n")
if args[0] == "mount":
    print({str(mount)!r})
    sys.exit(0)
if args[0] == "exec":
    rest = [a for a in args[1:] if a != "--interactive"]
    sys.exit(subprocess.run(rest[1:], stdin=sys.stdin if "--interactive" in args else subprocess.DEVNULL).returncode)
sys.exit(3)
""")
    script.chmod(0o755)
    return script, log


def run_play(tmp_path: Path, tasks: list[dict], host: str, podman: str) -> subprocess.CompletedProcess[str]:
    """ansible-playbook with this connection; with the stand-in podman, modules run
    on this machine's Python (the container's own is found by discovery)."""
    (tmp_path / "play.yml").write_text(json.dumps([{"hosts": "all", "gather_facts": False, "tasks": tasks}]))
    local = [] if podman == PODMAN else ["-e", f"ansible_python_interpreter={sys.executable}"]
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", f"{host},", "-c", CONNECTION,
         "-e", f"ansible_podman_executable={podman}", *local, str(tmp_path / "play.yml")],
        env=ENV, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_module_call_is_one_interactive_exec(tmp_path: Path) -> None:
    podman, log = fake_podman(tmp_path)
    tasks = [{"ansible.builtin.stat": {"path": str(tmp_path)}, "register": "st"},
             {"ansible.builtin.assert": {"that": ["st.stat.isdir"]}}]
    result = run_play(tmp_path, tasks, "node-a", str(podman))
    assert result.returncode == 0, result.stdout + result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    # The module went to Python's stdin: no mount, no temporary directory, no copy, no rm.
    assert calls == [["exec", "--interactive", "node-a", "/bin/sh", "-c", f"{sys.executable} && sleep 0"]]


def test_file_copy_mounts_once_and_writes_under_the_mount(tmp_path: Path) -> None:
    podman, log = fake_podman(tmp_path)
    dest = tmp_path / "copied.txt"
    result = run_play(tmp_path, [{"ansible.builtin.copy": {"content": "hello\n", "dest": str(dest), "mode": "0644"}}],
                      "node-b", str(podman))
    # The fake mount is an empty directory, so the parent falls back to `podman cp`
    # (which this stand-in refuses): the copy fails, after asking for the mount once.
    calls = [json.loads(line)[0] for line in log.read_text().splitlines()]
    assert calls.count("mount") == 1, calls
    assert result.returncode != 0


@pytest.fixture(scope="module")
def node() -> Iterator[str]:
    if not podman_node.ready():
        pytest.skip(f"podman or the image {podman_node.IMAGE} is not here")
    with podman_node.container("pipelined") as name:
        yield name


def test_real_container_modules_copy_fetch_and_failure(node: str, tmp_path: Path) -> None:
    fetched = tmp_path / "fetched"
    tasks = [
        {"ansible.builtin.command": {"argv": ["cat", "/etc/debian_version"]}, "register": "ver", "changed_when": False},
        {"ansible.builtin.copy": {"content": "xpulab {{ ver.stdout }}\n", "dest": "/srv/pipelined.txt", "mode": "0640"}},
        {"ansible.builtin.fetch": {"src": "/srv/pipelined.txt", "dest": str(fetched) + "/", "flat": True}},
        {"ansible.builtin.stat": {"path": "/srv/pipelined.txt"}, "register": "st"},
        {"ansible.builtin.assert": {"that": ["st.stat.mode == '0640'", "ver.stdout is match('^12')"]}},
        {"ansible.builtin.command": {"argv": ["false"]}, "register": "bad", "failed_when": False, "changed_when": False},
        {"ansible.builtin.assert": {"that": ["bad.rc == 1"]}},
    ]
    result = run_play(tmp_path, tasks, node, podman=PODMAN)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (fetched / "pipelined.txt").read_text().startswith("xpulab 12")
    again = run_play(tmp_path, tasks, node, podman=PODMAN)
    assert again.returncode == 0 and "changed=0" in again.stdout, again.stdout
