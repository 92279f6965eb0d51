"""Drive xpulab playbooks through ansible_runner.run() against podman sandbox nodes, and read the job events."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
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
# xpulab_state's decision task (roles/xpulab_state/tasks/check.yml), named after the role it decides for.
DECIDE = "Decide whether the role runs its tasks, for "
# Its probe, just before it: the probe's own change (a record cleared on drift) is the role's.
PROBE = "Ask the node whether the last complete run still holds for "
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

    def processes(self) -> list[str]:
        """Command lines of the node's processes (the lister itself left out)."""
        out = self.sh("for f in /proc/[0-9]*/cmdline; do [ \"$f\" = /proc/$$/cmdline ] || "
                      "{ tr '\\0' ' ' < \"$f\"; echo; } 2>/dev/null; done", check=False).stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def kill_all(self) -> None:
        """SIGKILL every process of the node but its init, by id: the node side of a run dies with it."""
        self.sh('for p in /proc/[0-9]*; do p=${p#/proc/}; [ "$p" = 1 ] || [ "$p" = $$ ] || kill -9 "$p" 2>/dev/null; '
                "done; true", check=False)

    def fact(self, name: str) -> dict[str, Any] | None:
        """A local fact of /etc/ansible/facts.d, or None when the node has none."""
        out = self.sh(f"cat /etc/ansible/facts.d/{name}.fact", check=False)
        return json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else None


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

    def role_decisions(self, host: str) -> dict[str, bool]:
        """Each role's xpulab_state decision on host: True when it ran its tasks, False when it skipped."""
        out = {}
        for e in self.host_events(host):
            data = e["event_data"]
            task = str(data.get("task", ""))
            if e["event"] == "runner_on_ok" and task.startswith(DECIDE):
                role = task.rsplit(" ", 1)[1]
                settled = ((data.get("res") or {}).get("ansible_facts") or {}).get("xpulab_state_settled") or {}
                out[role] = not settled[role]
        return out

    def changed_roles(self, host: str) -> dict[str, list[str]]:
        """Tasks that changed host, by role: the role whose probe or decision came last before the task
        in its play (the torchcodec play decides for torchcodec, decode_smoke, then torchcodec_tests),
        or for a task before any, the play's first decision; a play without one names itself."""
        first: dict[str, str] = {}
        for e in self.host_events(host):
            task = str(e["event_data"].get("task", ""))
            if task.startswith(DECIDE):
                first.setdefault(str(e["event_data"].get("play")), task.rsplit(" ", 1)[1])
        current: dict[str, str] = {}
        out: dict[str, list[str]] = {}
        for e in self.host_events(host):
            data = e["event_data"]
            play, task, res = str(data.get("play")), str(data.get("task", "")), data.get("res") or {}
            if task.startswith((PROBE, DECIDE)):
                current[play] = task.rsplit(" ", 1)[1]
            if e["event"] == "runner_on_ok" and res.get("changed") and not res.get("_ansible_delegated_vars"):
                role = current.get(play) or first.get(play, play)
                out.setdefault(role, []).append(task)
        return out

    def ran(self, host: str, task: str) -> bool:
        """Whether task ran (ok or changed) on host."""
        return any(e["event"] == "runner_on_ok" and e["event_data"].get("task") == task for e in self.host_events(host))


def inventory(work: Path, nodes: list[str], host_vars: dict[str, Any] | None = None) -> Path:
    """An inventory of podman nodes with the sandbox's group_vars (mirror URLs, versions)."""
    inv = work / "inventory"
    inv.mkdir(parents=True, exist_ok=True)
    (inv / "group_vars").unlink(missing_ok=True)
    (inv / "group_vars").symlink_to(ROOT / "inventories" / "sandbox" / "group_vars")
    hosts = {n: {"ansible_connection": "xpulab.gpu.podman_pipelined", "ansible_podman_executable": str(PODMAN),
                 "ansible_python_interpreter": "/usr/bin/python3", **(host_vars or {})} for n in nodes}
    (inv / "hosts.yml").write_text(json.dumps({"xpulab_nodes": {"hosts": hosts}}))
    return inv / "hosts.yml"


def playbook_pids() -> list[int]:
    """This process's ansible-playbook children (ansible_runner spawns each run in a session of its own)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == os.getpid() and b"ansible-playbook" in cmdline:
            pids.append(int(stat.parent.name))
    return pids


@dataclass
class Kill:
    """kill -9 of a run when a task starts on a node: once task_prefix starts (and, when process is
    set, a node process matches it), after delay seconds, SIGKILL the ansible-playbook process group
    on the controller, then every process of the node's run (podman exec sessions outlive their
    client, as a module can outlive a dropped ssh connection: a crash takes both)."""

    node: Node
    task_prefix: str
    process: str | None = None
    delay: float = 0.0
    wait: float = 900.0
    fired: threading.Event = field(default_factory=threading.Event)
    seen: list[str] = field(default_factory=list)  # the node processes that matched, at the kill

    def handler(self, event: dict[str, Any]) -> bool:
        data = event.get("event_data") or {}
        if (event.get("event") == "playbook_on_task_start" and str(data.get("task", "")).startswith(self.task_prefix)
                and not getattr(self, "_started", False)):
            self._started = True
            threading.Thread(target=self._kill, daemon=True).start()
        return True

    def _matching(self) -> list[str]:
        return [p for p in self.node.processes() if self.process and re.search(self.process, p)]

    def _kill(self) -> None:
        deadline = time.monotonic() + self.wait
        while self.process and not self._matching():
            if time.monotonic() > deadline or not playbook_pids():
                return
            time.sleep(0.5)
        time.sleep(self.delay)
        self.seen = self._matching()
        for pid in playbook_pids():
            try:
                os.killpg(os.getpgid(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.node.kill_all()
        self.fired.set()


def run(work: Path, playbook: str, inventory_path: Path | str, extravars: dict[str, Any] | None = None,
        tags: str | None = None, env: dict[str, str] | None = None, timeout: int = 1800,
        skip_tags: str | None = None, event_handler: Callable[[dict[str, Any]], bool] | None = None) -> Job:
    """ansible_runner.run() of a playbook of this repository; the events are kept in memory."""
    private = work / f"runner-{uuid.uuid4().hex[:8]}"
    private.mkdir(parents=True)
    result = ansible_runner.run(
        private_data_dir=str(private), project_dir=str(ROOT), playbook=str(ROOT / playbook),
        inventory=str(inventory_path), extravars=extravars or {}, tags=tags, skip_tags=skip_tags,
        envvars={**ENV, **(env or {})}, quiet=True, timeout=timeout, event_handler=event_handler,
    )
    stdout = result.stdout.read() if result.stdout else ""
    rc = -9 if result.rc is None else int(result.rc)  # None: killed by a signal
    return Job(result.status, rc, list(result.events), stdout)
