"""roles/pytorch/files/xpulab_torch_probe.py: what it reports of a (fake) torch, run as the role runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "roles" / "pytorch" / "files" / "xpulab_torch_probe.py"


def probe(site: Path) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-"], input=PROBE.read_text(), capture_output=True, text=True,
                          check=True, timeout=60, env={**os.environ, "PYTHONPATH": str(site)}, cwd=site)
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[-1])
    return result


def test_reports_the_record_of_the_installed_torch(tmp_path: Path) -> None:
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("__version__ = '2.14.1+cpu'\n")
    info = tmp_path / "torch-2.14.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.14.1\n")
    (info / "RECORD").write_text("torch/__init__.py,,\ntorch-2.14.1.dist-info/METADATA,,\ntorch-2.14.1.dist-info/RECORD,,\n")
    result = probe(tmp_path)
    assert result["torch_version"] == "2.14.1+cpu" and result["build"] == "cpu"
    assert result["torch_record"] == str(info / "RECORD")


def test_torch_without_metadata_has_no_record(tmp_path: Path) -> None:
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("__version__ = '2.14.1'\n")
    assert probe(tmp_path)["torch_record"] is None
