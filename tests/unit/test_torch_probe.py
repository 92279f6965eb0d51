"""roles/pytorch/files/xpulab_torch_probe.py: what it says about a torch, and the RECORD it names."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).resolve().parents[2] / "roles" / "pytorch" / "files" / "xpulab_torch_probe.py"


def fake_torch(site: Path, record: str) -> Path:
    """A torch 2.14.1 (CPU build) package with its dist-info, as pip leaves it."""
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text(
        "import types\n__version__ = '2.14.1+cpu'\nversion = types.SimpleNamespace(xpu=None, cuda=None, hip=None)\n")
    info = site / "torch-2.14.1+cpu.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: torch\nVersion: 2.14.1+cpu\n")
    (info / "RECORD").write_text(record)
    return info / "RECORD"


def probe(site: Path) -> dict[str, object]:
    out = subprocess.run([sys.executable, str(PROBE)], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(site)}, cwd=site)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_names_torchs_record_and_its_sha256(tmp_path: Path) -> None:
    text = "torch/__init__.py,sha256=abc,10\ntorch-2.14.1+cpu.dist-info/RECORD,,\n"
    record = fake_torch(tmp_path / "site", text)
    result = probe(tmp_path / "site")
    assert result["torch_version"] == "2.14.1+cpu" and result["build"] == "cpu"
    assert result["torch_record"] == os.path.realpath(record)
    assert result["torch_record_sha256"] == hashlib.sha256(text.encode()).hexdigest()


def test_another_build_of_the_same_version_has_another_sha256(tmp_path: Path) -> None:
    first = probe_with(tmp_path / "a", "torch/__init__.py,sha256=abc,10\ntorch-2.14.1+cpu.dist-info/METADATA,,\n")
    other = probe_with(tmp_path / "b", "torch/__init__.py,sha256=def,10\ntorch-2.14.1+cpu.dist-info/METADATA,,\n")
    assert first["torch_version"] == other["torch_version"]
    assert first["torch_record_sha256"] != other["torch_record_sha256"]


def probe_with(site: Path, record: str) -> dict[str, object]:
    fake_torch(site, record)
    return probe(site)


def test_no_record_no_keys(tmp_path: Path) -> None:
    site = tmp_path / "site"
    fake_torch(site, "")
    (site / "torch-2.14.1+cpu.dist-info" / "RECORD").unlink()
    result = probe(site)
    assert "torch_record" not in result and result["torch_version"] == "2.14.1+cpu"
