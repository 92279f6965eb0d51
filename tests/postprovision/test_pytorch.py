"""PyTorch as installed by the pytorch role: the venv, torch at the recorded
version, the recorded XPU state against a fresh probe, and XPU on media GPUs."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

import pytest
from conftest import FACT_DIR, read_fact

PROBE = """
import json, platform, torch
xpu = getattr(torch, "xpu", None)
count = int(xpu.device_count()) if xpu is not None else 0
print(json.dumps({
    "python_version": platform.python_version(),
    "torch_version": str(torch.__version__),
    "xpu_version": getattr(torch.version, "xpu", None),
    "xpu_available": bool(xpu.is_available()) if xpu is not None else False,
    "xpu_device_count": count,
    "xpu_devices": [str(xpu.get_device_name(i)) for i in range(count)],
}))
"""


@pytest.fixture(scope="module")
def pytorch_fact(host: Any) -> dict[str, Any]:
    return read_fact(host, "xpulab_pytorch")


@pytest.fixture(scope="module")
def venv_python(pytorch_fact: dict[str, Any]) -> str:
    return str(pytorch_fact["python"])


@pytest.fixture(scope="module")
def probe(host: Any, venv_python: str) -> dict[str, Any]:
    """What torch in the venv says now, independently of the role's probe."""
    out = host.run(f"{venv_python} -c {shlex.quote(PROBE)}")
    assert out.rc == 0, f"torch does not import with {venv_python}:\n{out.stderr}"
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def media_gpu_count(host: Any) -> int | None:
    """Intel GPUs with media engines per the intel_gpu role's fact, None when unknown."""
    path = f"{FACT_DIR}/xpulab_intel_gpu.fact"
    if not host.file(path).exists:
        return None
    fact = json.loads(host.file(path).content_string)
    if isinstance(fact.get("media_render_nodes"), list):
        return len(fact["media_render_nodes"])
    if isinstance(fact.get("media_gpus"), list):
        return len(fact["media_gpus"])
    if isinstance(fact.get("gpus"), list):
        return sum(1 for gpu in fact["gpus"] if gpu.get("vendor") == "intel" and gpu.get("has_media") is True)
    return None


def test_venv_exists(host: Any, pytorch_fact: dict[str, Any], venv_python: str) -> None:
    venv = pytorch_fact["venv"]
    assert host.file(venv).is_directory
    assert host.file(f"{venv}/pyvenv.cfg").is_file
    assert venv_python == f"{venv}/bin/python"
    assert host.file(venv_python).exists


def test_venv_python_matches_the_fact(probe: dict[str, Any], pytorch_fact: dict[str, Any]) -> None:
    assert probe["python_version"] == pytorch_fact["python_version"]


def test_torch_imports_at_the_recorded_version(probe: dict[str, Any], pytorch_fact: dict[str, Any]) -> None:
    assert probe["torch_version"] == pytorch_fact["torch_version"]
    requested = str(pytorch_fact["torch_requested"])
    installed = probe["torch_version"] if "+" in requested else probe["torch_version"].split("+")[0]
    assert installed == requested, f"torch {probe['torch_version']} installed, {requested} pinned"


def test_recorded_xpu_state_matches_a_fresh_probe(probe: dict[str, Any], pytorch_fact: dict[str, Any]) -> None:
    for field in ("xpu_available", "xpu_device_count", "xpu_devices"):
        assert pytorch_fact[field] == probe[field], f"{field}: fact {pytorch_fact[field]!r}, now {probe[field]!r}"
    assert pytorch_fact["torch_xpu_version"] == probe["xpu_version"]
    assert (pytorch_fact["torch_build"] == "xpu") == bool(probe["xpu_version"])


def test_venv_dependencies_are_consistent(host: Any, venv_python: str) -> None:
    out = host.run(f"{venv_python} -m pip check")
    assert out.rc == 0, out.stdout + out.stderr


def test_extra_packages_import(host: Any, pytorch_fact: dict[str, Any], venv_python: str) -> None:
    if not pytorch_fact["extra_packages"]:
        pytest.skip("no pytorch_extra_packages on this node")
    listed = host.check_output(f"{venv_python} -m pip list --format=json")
    installed = {p["name"].lower().replace("_", "-") for p in json.loads(listed)}
    for requirement in pytorch_fact["extra_packages"]:
        name = requirement.split(";")[0].split("[")[0]
        for sep in "<>=!~ @":
            name = name.split(sep)[0]
        assert name.lower().replace("_", "-") in installed, f"{requirement} is not installed in the venv"


def test_media_gpus_are_xpu_devices(host: Any, probe: dict[str, Any]) -> None:
    media = media_gpu_count(host)
    if media is None:
        pytest.skip("no xpulab_intel_gpu fact with the node's media GPUs (the intel_gpu role has not run here)")
    if media == 0:
        pytest.skip("the node has no Intel GPU with media engines")
    assert probe["xpu_available"] is True, f"{media} media GPU(s) but torch.xpu.is_available() is False"
    assert probe["xpu_device_count"] >= 1


def test_the_venv_matches_its_lock(host: Any, pytorch_fact: dict[str, Any], venv_python: str) -> None:
    """Every package of the node's copy of the torch lock is installed at the locked version (with a sha256 in the lock)."""
    lock = pytorch_fact.get("lock", "")
    if not lock or lock.startswith("none"):
        pytest.skip(f"no lock recorded ({lock or 'fact from before hash-locked installs'})")
    text = host.file(f"/opt/xpulab/locks/{lock}").content_string
    pins = dict(re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+) \\\n\s+--hash=sha256:[0-9a-f]{64}", text, re.MULTILINE))
    assert pins.get("torch", "").split("+")[0] == str(pytorch_fact["torch_requested"]).split("+")[0], pins
    listed = host.check_output(f"{venv_python} -m pip list --format=json")
    installed = {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(listed)}
    differ = {name: (version, installed.get(name.lower().replace("_", "-"))) for name, version in pins.items()
              if installed.get(name.lower().replace("_", "-")) != version}
    assert not differ, f"locked version, installed version: {differ}"
