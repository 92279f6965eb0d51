"""The pytorch role's venv artifact: packed once into the controller cache, installed on the others.

roles/pytorch/tasks/artifact_pack.yml and artifact_install.yml run on localhost
with ansible-playbook (as root) against temp directories that stand in for the
node's venv directory, the node's artifact directory and the controller cache.
A packed venv comes back byte for byte (modes, links, mtimes) where the archive
is installed, and neither the node's copy nor the staging is left behind. An
archive whose sha256 is not its record's, a record whose inputs are not the
node's, and an archive with a setuid or world-writable entry are refused with
the reason named, and the venv directory is as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
ID = "0123456789ab"
NAME = "pytorch-venv-2.14.1-debian-bookworm-x86_64-feedfacefeedface.tar.zst"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("zstd"), reason="installs as root, needs zstd")


def inputs(work: Path) -> dict[str, Any]:
    return {"name": "pytorch-venv", "torch": "2.14.1", "python": "3.11.2", "python_command": "python3",
            "venv": str(work / "venvs" / ID), "lock_sha256": "a" * 64, "indexes": ["http://mirror/simple"],
            "os": "debian-bookworm", "arch": "x86_64"}


def fingerprint(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def snapshot(root: Path) -> list[tuple[str, int, int, int, str]]:
    """(path, mode, uid, mtime, link target or content sha256) of everything under root."""
    found = []
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        what = os.readlink(path) if path.is_symlink() else (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "")
        found.append((str(path.relative_to(root)), st.st_mode, st.st_uid, int(st.st_mtime), what))
    return found


def make_venv(venv: Path) -> None:
    """A small venv-shaped tree: a link to the system Python, a script, a package with its .pyc."""
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    script = venv / "bin" / "torchrun"
    script.write_text(f"#!{venv}/bin/python\nprint('hi')\n")
    script.chmod(0o755)
    pkg = venv / "lib" / "python3.11" / "site-packages" / "torch"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("__version__ = '2.14.1'\n")
    (pkg / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\x00pyc")
    (venv / "xpulab-source.json").write_text("{}\n")
    for path in [venv, *venv.rglob("*")]:  # pip's files keep their wheel's times
        if not path.is_symlink():
            os.utime(path, (1_600_000_000, 1_600_000_000))


def playbook(work: Path, tasks_from: str, extra: dict[str, Any]) -> tuple[int, str]:
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "tasks": [{"ansible.builtin.include_role": {"name": "xpulab.gpu.pytorch", "tasks_from": tasks_from}}],
    }]
    (work / "play.yml").write_text(json.dumps(play))
    (work / "vars.json").write_text(json.dumps({
        "pytorch_venv": str(work / "venv"), "pytorch_venv_dirs": str(work / "venvs"),
        "pytorch_venv_target": str(work / "venvs" / ID), "pytorch_node_artifact_dir": str(work / "node-artifacts"),
        "pytorch_artifact_cache_dir": str(work / "cache"), "pytorch_artifact_name": NAME,
        "pytorch_artifact_inputs": inputs(work), "pytorch_artifact_fingerprint": fingerprint(inputs(work)),
        "pytorch_artifact_space_mb": 1, "pytorch_probe": {"torch_version": "2.14.1"},
        "pytorch_lock_file": str(work / "controller-lock.txt"), "xpulab_lock_node_dir": str(work / "node-locks"),
        "xpulab_state_cache_lock_wait": 5, **extra}))
    (work / "controller-lock.txt").write_text("torch==2.14.1 --hash=sha256:" + "a" * 64 + "\n")
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-e", f"@{work / 'vars.json'}",
         str(work / "play.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})
    return proc.returncode, proc.stdout + proc.stderr


def add_archive(work: Path, entries: dict[str, int], record: dict[str, Any] | None = None) -> str:
    """A zstd tar of <ID>/... with `entries` (name: mode) in the cache, and its record."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, mode, data in [(ID, 0o755, None), (f"{ID}/bin", 0o755, None),
                                 *((f"{ID}/{n}", m, b"x\n") for n, m in entries.items())]:
            info = tarfile.TarInfo(name)
            info.mode = mode
            info.uid = info.gid = 1234  # as an archive from elsewhere would be
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    archive = work / "cache" / NAME
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.write_bytes(subprocess.run(["zstd", "-q", "-c"], input=raw.getvalue(), capture_output=True,
                                       check=True).stdout)
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    meta = {"artifact": NAME, "sha256": sha, "fingerprint": fingerprint(inputs(work)), "inputs": inputs(work),
            **(record or {})}
    (work / "cache" / f"{NAME}.json").write_text(json.dumps(meta))
    return sha


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A node whose venv in use is another id (venv -> venvs/old)."""
    (tmp_path / "venvs" / "old").mkdir(parents=True)
    (tmp_path / "venvs" / "old" / "in-use").write_text("the venv in use\n")
    (tmp_path / "venv").symlink_to(tmp_path / "venvs" / "old")
    return tmp_path


def test_packed_venv_is_installed_byte_for_byte_and_leaves_no_copies(work: Path) -> None:
    venv = work / "venvs" / ID
    make_venv(venv)
    before = snapshot(venv)
    rc, out = playbook(work, "artifact_pack", {})
    assert rc == 0, out[-4000:]
    record = json.loads((work / "cache" / f"{NAME}.json").read_text())
    archive = work / "cache" / NAME
    assert record["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert record["inputs"] == inputs(work) and record["fingerprint"] == fingerprint(inputs(work))
    assert not any((work / "node-artifacts").iterdir()), "the node's copy of the archive is left"
    assert not [p for p in (work / "cache").iterdir() if p.name.endswith(".part")]

    shutil.rmtree(venv)
    rc, out = playbook(work, "artifact_install", {})
    assert rc == 0, out[-4000:]
    assert snapshot(venv) == before
    assert venv.stat().st_uid == 0
    assert sorted(p.name for p in (work / "venvs").iterdir()) == ["0123456789ab", "old"]
    assert not any((work / "node-artifacts").iterdir())
    assert (work / "venv").resolve() == work / "venvs" / "old", "installing never switches the venv in use"
    assert (work / "node-locks" / "controller-lock.txt").read_text() == (work / "controller-lock.txt").read_text()


def test_archive_from_elsewhere_is_installed_owned_by_root(work: Path) -> None:
    add_archive(work, {"bin/tool": 0o755, "lib/data.txt": 0o644})
    rc, out = playbook(work, "artifact_install", {})
    assert rc == 0, out[-4000:]
    venv = work / "venvs" / ID
    assert {(p.name, p.stat().st_uid, p.stat().st_gid) for p in [venv, *venv.rglob("*")]} == {
        (ID, 0, 0), ("bin", 0, 0), ("tool", 0, 0), ("lib", 0, 0), ("data.txt", 0, 0)}
    assert not (work / "venvs" / f".staging-{ID}").exists()


def test_pack_leaves_an_entry_another_run_filled(work: Path) -> None:
    make_venv(work / "venvs" / ID)
    sha = add_archive(work, {})
    rc, out = playbook(work, "artifact_pack", {})
    assert rc == 0, out[-4000:]
    assert hashlib.sha256((work / "cache" / NAME).read_bytes()).hexdigest() == sha


def test_archive_whose_sha256_is_not_its_records_is_refused(work: Path) -> None:
    add_archive(work, {}, {"sha256": "0" * 64})
    before = snapshot(work / "venvs")
    rc, out = playbook(work, "artifact_install", {})
    assert rc != 0
    assert f"The torch venv archive {NAME} has sha256" in out and f"record says {'0' * 64}" in out, out[-4000:]
    assert "was not switched" in out
    assert snapshot(work / "venvs") == before
    assert not any((work / "node-artifacts").iterdir())


@pytest.mark.parametrize("change", [{"lock_sha256": "b" * 64}, {"venv": "/opt/elsewhere/0123456789ab"}])
def test_record_of_other_inputs_is_refused_before_any_change(work: Path, change: dict[str, Any]) -> None:
    add_archive(work, {}, {"inputs": {**inputs(work), **change}})
    before = snapshot(work)
    rc, out = playbook(work, "artifact_install", {})
    assert rc != 0
    assert f"Refused torch venv artifact {NAME}: its record" in out, out[-4000:]
    assert "Nothing on the node was changed" in out
    assert [e for e in snapshot(work) if not e[0].startswith(("play.yml", "vars.json", "controller-lock.txt"))] == \
        [e for e in before if not e[0].startswith(("play.yml", "vars.json", "controller-lock.txt"))]


@pytest.mark.parametrize("entries", [{"bin/python-suid": 0o4755}, {"lib/open.txt": 0o666, "lib/sgid": 0o2755}])
def test_archive_with_setuid_or_world_writable_entries_is_refused(work: Path, entries: dict[str, int]) -> None:
    add_archive(work, entries)
    before = snapshot(work / "venvs")
    rc, out = playbook(work, "artifact_install", {})
    assert rc != 0
    said = out.split("special entries:", 1)[1].split(". ")[0]
    assert all(f"{ID}/{name}" in said for name in entries), out[-4000:]
    assert snapshot(work / "venvs") == before
    assert not any((work / "node-artifacts").iterdir())
