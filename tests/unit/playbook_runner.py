"""Run a task file of sandbox/playbooks/tasks on localhost with ansible-playbook, as the sandbox playbooks do."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TASKS = ROOT / "sandbox" / "playbooks" / "tasks"


@dataclass(frozen=True)
class Run:
    rc: int
    output: str

    @property
    def changed(self) -> int:
        """changed= of localhost in the play recap."""
        match = re.search(r"^localhost\s*:\s*ok=\d+\s+changed=(\d+)", self.output, re.MULTILINE)
        assert match, self.output[-3000:]
        return int(match.group(1))


def run_tasks(task_file: str, work: Path, extra_vars: dict[str, Any] | None = None,
              env: dict[str, str | None] | None = None, timeout: int = 600) -> Run:
    """Include TASKS/<task_file> in a localhost play whose mirror and cache live in `work`.

    `env` is added to the environment; a None value removes that variable.
    """
    work.mkdir(parents=True, exist_ok=True)
    play = work / "play.yml"
    play.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"sandbox_mirror_dir": str(work / "mirror"), "sandbox_cache_dir": str(work / "cache"),
                 "ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "tasks": [{"ansible.builtin.include_tasks": str(TASKS / task_file)}],
    }]))
    (work / "vars.json").write_text(json.dumps(extra_vars or {}))
    playbook = Path(sys.executable).with_name("ansible-playbook")
    proc = subprocess.run(
        [str(playbook), "-i", "localhost,", "-e", f"@{work / 'vars.json'}", str(play)],
        cwd=work, capture_output=True, text=True, timeout=timeout, check=False,
        env={k: v for k, v in {**os.environ, "ANSIBLE_NOCOLOR": "1", **(env or {})}.items() if v is not None},
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)


def run_role_tasks(role: str, tasks_from: str, work: Path, extra_vars: dict[str, Any] | None = None,
                   env: dict[str, str | None] | None = None, timeout: int = 600) -> Run:
    """Include xpulab.gpu.<role> tasks_from <tasks_from> in a localhost play, the collection resolved from this tree."""
    work.mkdir(parents=True, exist_ok=True)
    play = work / f"play-{role}-{tasks_from}.yml"
    play.write_text(json.dumps([{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "tasks": [{"ansible.builtin.include_role": {"name": f"xpulab.gpu.{role}", "tasks_from": tasks_from}}],
    }]))
    (work / "vars.json").write_text(json.dumps(extra_vars or {}))
    playbook = Path(sys.executable).with_name("ansible-playbook")
    proc = subprocess.run(
        [str(playbook), "-i", "localhost,", "-e", f"@{work / 'vars.json'}", str(play)],
        cwd=work, capture_output=True, text=True, timeout=timeout, check=False,
        env={k: v for k, v in {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),
                               **(env or {})}.items() if v is not None},
    )
    return Run(proc.returncode, proc.stdout + proc.stderr)
