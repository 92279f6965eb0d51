"""Run a module of plugins/modules as Ansible does without AnsiballZ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
VENV_PYTHON = ROOT / ".venv" / "bin" / "python"


def run_module(name: str, work: Path, args: dict[str, Any],
               env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """(exit status, JSON result) of plugins/modules/<name>.py run in `work` with `args` in a JSON file."""
    args_file = work / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    python = str(VENV_PYTHON) if VENV_PYTHON.exists() else sys.executable
    module = ROOT / "plugins" / "modules" / f"{name}.py"
    # Modules import plugins/module_utils as ansible_collections.xpulab.gpu...
    env = {**os.environ, "PYTHONPATH": str(ROOT / "collections"), **(env or {})}
    proc = subprocess.run([python, str(module), str(args_file)], capture_output=True, text=True,
                          timeout=120, cwd=work, env=env, check=False)
    result: dict[str, Any] = json.loads(proc.stdout)
    return proc.returncode, result
