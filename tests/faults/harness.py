"""Drive xpulab playbooks through ansible_runner.run() against podman sandbox nodes, and read the job events."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner

ROOT = Path(__file__).resolve().parents[2]
PODMAN = ROOT / "sandbox" / "bin" / "podman"
IMAGE = "localhost/xpulab-debian:12"
ENV = {
    "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    "CONTAINERS_CONF": str(ROOT / "sandbox" / "containers.conf"),
    "ANSIBLE_NOCOLOR": "1",
    # Fault runs stay out of the run history (plugins/callback/xpulab_history.py).
    "XPULAB_HISTORY": "0",
}
# Read-only look at what a run could have changed on a node (snapshot before and after).
SNAPSHOT = ("dpkg-query -W -f '${Package} ${Version} ${db:Status-Status}\\n' | sort; "
            "find /opt /etc/ansible /etc/apt /etc/ld.so.conf.d /etc/profile.d /var/lib/xpulab /var/cache/xpulab "
            "/usr/local -xdev 2>/dev/null | sort; "
            "getent passwd | cut -d: -f1 | sort")


@dataclass
class Node:
    """A podman container from the sandbox image, on the host network like the sandbox nodes."""

    name: str
    mounts: list[str] = field(default_factory=list)

    def start(self) -> Node:
        podman("rm", "-f", self.name, check=False)
        podman("run", "-d", "--name", self.name, "--network", "host", *self.mounts, IMAGE, "sleep", "infinity")
        return self

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)

    def sh(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, "sh", "-c", command, check=check)

    def snapshot(self) -> str:
        return self.sh(SNAPSHOT).stdout


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PODMAN), *args], capture_output=True, text=True, check=check,
                          env={**os.environ, "CONTAINERS_CONF": ENV["CONTAINERS_CONF"]})


@dataclass
class Job:
    """One ansible-playbook run: its status, return code and job events."""

    status: str
    rc: int
    events: list[dict[str, Any]]
    stdout: str

    def host_events(self, host: str) -> list[dict[str, Any]]:
        return [e for e in self.events if (e.get("event_data") or {}).get("host") == host]

    def failure(self, host: str) -> tuple[str, str]:
        """(task name, message) of the failure that stopped host (the last runner_on_failed not ignored)."""
        failed = [e["event_data"] for e in self.host_events(host)
                  if e["event"] in ("runner_on_failed", "runner_on_unreachable")
                  and not e["event_data"].get("ignore_errors")]
        assert failed, f"{host} did not fail:\n{self.stdout[-4000:]}"
        data = failed[-1]
        res = data.get("res") or {}
        items = [r for r in res.get("results") or [] if r.get("failed")]
        msg = " ".join(f"[{r.get('item')}] {r.get('msg', '')}" for r in items) if items else res.get("msg") or ""
        return str(data.get("task")), " ".join(str(msg).split())

    def node_changes(self, host: str) -> list[str]:
        """Tasks that reported a change on host itself (tasks delegated to the controller left out)."""
        out = []
        for e in self.host_events(host):
            data = e["event_data"]
            res = data.get("res") or {}
            if e["event"] == "runner_on_ok" and res.get("changed") and not res.get("_ansible_delegated_vars"):
                out.append(str(data.get("task")))
        return out


def inventory(work: Path, nodes: list[str], host_vars: dict[str, Any] | None = None) -> Path:
    """An inventory of podman nodes with the sandbox's group_vars (mirror URLs, versions)."""
    inv = work / "inventory"
    inv.mkdir(parents=True, exist_ok=True)
    (inv / "group_vars").unlink(missing_ok=True)
    (inv / "group_vars").symlink_to(ROOT / "inventories" / "sandbox" / "group_vars")
    hosts = {n: {"ansible_connection": "containers.podman.podman", "ansible_podman_executable": str(PODMAN),
                 "ansible_python_interpreter": "/usr/bin/python3", **(host_vars or {})} for n in nodes}
    (inv / "hosts.yml").write_text(json.dumps({"xpulab_nodes": {"hosts": hosts}}))
    return inv / "hosts.yml"


def run(work: Path, playbook: str, inventory_path: Path | str, extravars: dict[str, Any] | None = None,
        tags: str | None = None, env: dict[str, str] | None = None, timeout: int = 1800) -> Job:
    """ansible_runner.run() of a playbook of this repository; the events are kept in memory."""
    private = work / f"runner-{uuid.uuid4().hex[:8]}"
    private.mkdir(parents=True)
    result = ansible_runner.run(
        private_data_dir=str(private), project_dir=str(ROOT), playbook=str(ROOT / playbook),
        inventory=str(inventory_path), extravars=extravars or {}, tags=tags,
        envvars={**ENV, **(env or {})}, quiet=True, timeout=timeout,
    )
    stdout = result.stdout.read() if result.stdout else ""
    return Job(result.status, int(result.rc), list(result.events), stdout)
