"""Render the roles' own Jinja with Ansible's templar and the xpulab.gpu filters.

The templar runs in a child Python, so the collection loader it installs stays
out of the test process. Variables come, lowest precedence first, from YAML
files (role defaults, role vars, group_vars: loaded as Ansible loads them),
then `templates` (task vars or set_fact values copied from a task file,
templated on use), then `data` (plain values such as facts or extra vars,
never templated).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

_CHILD = r"""
import json, sys
from ansible.plugins.loader import init_plugin_loader
init_plugin_loader([sys.argv[1]])
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

def trusted(value):
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, list):
        return [trusted(item) for item in value]
    if isinstance(value, dict):
        return {key: trusted(item) for key, item in value.items()}
    return value

job = json.load(sys.stdin)
loader = DataLoader()
variables = {}
for path in job["files"]:
    variables.update(loader.load_from_file(path, trusted_as_template=True) or {})
variables.update(trusted(job["templates"]))
variables.update(job["data"])
templar = Templar(loader=loader, variables=variables)
json.dump({name: templar.template(trusted(expr)) for name, expr in job["expressions"].items()}, sys.stdout)
"""


def render(expressions: dict[str, Any], files: list[Path] | None = None,
           templates: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> dict[str, Any]:
    """Each expression (a string, list or dict of templates) rendered with the given variables."""
    job = {"files": [str(path) for path in files or []], "templates": templates or {},
           "data": data or {}, "expressions": expressions}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(ROOT / "collections")], input=json.dumps(job),
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def role_files(role: str) -> list[Path]:
    """A role's defaults and vars files, in Ansible's order of precedence."""
    return [path for path in (ROOT / "roles" / role / "defaults" / "main.yml", ROOT / "roles" / role / "vars" / "main.yml")
            if path.exists()]
