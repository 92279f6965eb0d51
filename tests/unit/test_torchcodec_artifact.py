"""The torchcodec role refuses wheel records that do not match the node, and unsafe wheels.

The real tasks of roles/torchcodec/tasks/install_wheel.yml are used: the
record check is rendered with Ansible's templar and the role's variables
(a record whose inputs differ is refused, naming the fields; a matching one
passes), and the wheel-mode probe's own command runs on crafted wheels (a
setuid, setgid or world-writable entry is listed, a clean wheel lists nothing).
The record the build writes carries the inputs its fingerprint covers.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from ansible_templar import ROOT, render, role_files

TASKS = ROOT / "roles" / "torchcodec" / "tasks"
INPUTS: dict[str, Any] = {
    "name": "torchcodec", "commit": "f06c28684edd0570cb44e9d7cbe440b60e37ff0e", "torch": "2.13.0+cpu",
    "python": "3.11", "ffmpeg": "de3126ee66e2733c", "enable_xpu": False, "oneapi": "",
    "build_env": {"I_CONFIRM_THIS_IS_NOT_A_LICENSE_VIOLATION": "1"}, "os": "debian-bookworm", "arch": "x86_64",
}


def fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def task(file: str, name: str) -> dict[str, Any]:
    (found,) = [t for t in yaml.safe_load((TASKS / file).read_text()) if t.get("name") == name]
    return found


def record_check(record: dict[str, Any]) -> dict[str, Any]:
    assert_task = task("install_wheel.yml", "Check the record's inputs against this node's fingerprint inputs")
    args = assert_task["ansible.builtin.assert"]
    conditions = " and ".join(f"({c})" for c in args["that"])
    return render({"ok": "{{ " + conditions + " }}", "msg": args["fail_msg"]},
                  files=role_files("torchcodec"), templates=assert_task["vars"],
                  data={"torchcodec_artifact_meta": record, "torchcodec_fingerprint_inputs": INPUTS,
                        "torchcodec_fingerprint": fingerprint(INPUTS), "torchcodec_artifact": "torchcodec-x",
                        "torchcodec_artifact_cache_dir": "/cache"})


def test_build_records_the_inputs_its_fingerprint_covers() -> None:
    put = task("build.yml", "Put the wheel and its record into the controller cache (temporary names, verified, renamed)")
    assert put["vars"]["xpulab_state_cache_record"]["inputs"] == "{{ torchcodec_fingerprint_inputs }}"
    assert put["vars"]["xpulab_state_cache_record"]["fingerprint"] == "{{ torchcodec_fingerprint }}"
    assert put["vars"]["xpulab_state_cache_sha256"] == "{{ torchcodec_built_wheel.stat.checksum }}"
    compute = task("source.yml", "Compute the build fingerprint")["vars"]["__inputs"]
    assert {"commit", "torch", "ffmpeg", "enable_xpu", "oneapi", "os", "arch"} <= set(compute)


def test_matching_record_passes() -> None:
    assert record_check({"fingerprint": fingerprint(INPUTS), "inputs": dict(INPUTS)})["ok"] is True


@pytest.mark.parametrize(("change", "fields"), [
    ({"torch": "2.14.1"}, ["torch"]),
    ({"commit": "0" * 40, "enable_xpu": True, "ffmpeg": "0123456789abcdef"}, ["commit", "enable_xpu", "ffmpeg"]),
    (None, sorted(INPUTS)),
])
def test_record_whose_inputs_differ_is_refused_naming_the_fields(change: dict[str, Any] | None, fields: list[str]) -> None:
    inputs = None if change is None else {**INPUTS, **change}
    out = record_check({"fingerprint": fingerprint(INPUTS), "inputs": inputs})
    assert out["ok"] is False
    assert out["msg"].startswith("Refused TorchCodec wheel torchcodec-x: its record (/cache/torchcodec-x.json)")
    named = out["msg"].split("Differing inputs: ", 1)[1].split(" The record's inputs give")[0]
    assert [f for f in sorted(INPUTS) if f"{f} (record" in named] == fields
    assert "Nothing on the node was changed" in out["msg"]


def make_wheel(path: Path, modes: dict[str, int]) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, mode in {"torchcodec/__init__.py": 0o100644, **modes}.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            wheel.writestr(info, b"")
    return path


def probe(wheel: Path) -> list[str]:
    """The role's own wheel-mode probe (its python -c), run on `wheel`."""
    argv = task("install_wheel.yml", "Read the wheel's entries with setuid, setgid or world-writable modes")[
        "ansible.builtin.command"]["argv"]
    assert argv[1] == "-c"
    return subprocess.run([sys.executable, "-c", argv[2], str(wheel)], capture_output=True, text=True,
                          check=True).stdout.split()


def test_wheel_probe_lists_setuid_setgid_and_world_writable_entries(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "bad.whl", {"torchcodec/bin/tool": 0o104755, "torchcodec/libg.so": 0o102755,
                                              "torchcodec/open.txt": 0o100666, "torchcodec/link": 0o120777,
                                              "torchcodec/run.sh": 0o100755})
    assert sorted(probe(wheel)) == ["torchcodec/bin/tool", "torchcodec/libg.so", "torchcodec/open.txt"]


def test_wheel_probe_passes_a_clean_wheel(tmp_path: Path) -> None:
    assert probe(make_wheel(tmp_path / "ok.whl", {"torchcodec/run.sh": 0o100755, "torchcodec/x.so": 0o100644})) == []
