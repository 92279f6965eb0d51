"""The ffmpeg role refuses unsafe artifacts and records that do not match the node.

roles/ffmpeg/tasks/fingerprint.yml and install.yml run on localhost with
ansible-playbook (as root), against an artifact and a record crafted in a temp
directory that stands in for the controller cache, and a temp install root
that already holds a release. Refused: an artifact with setuid, setgid or
world-writable entries (named in the message, staging removed), and a record
whose inputs are not this node's fingerprint inputs (the differing fields
named, before anything on the node is created). In each case the install root
is byte-for-byte as it was. A clean artifact is installed owned by root with
its modes reset to u=rwX,go=rX.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = yaml.safe_load((ROOT / "roles" / "ffmpeg" / "defaults" / "main.yml").read_text())
VERSION = DEFAULTS["ffmpeg_version"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ldd"), reason="installs as root, needs ldd")


def os_release() -> str:
    """<distribution>-<release> as Ansible's facts name it on Debian/Ubuntu."""
    fields = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    return f"{fields['ID'].strip(chr(34)).lower()}-{fields['VERSION_CODENAME'].strip(chr(34))}"


def node_inputs() -> dict[str, Any]:
    """This machine's fingerprint inputs, as roles/ffmpeg/tasks/fingerprint.yml computes them."""
    return {
        "name": "ffmpeg",
        "version": VERSION,
        "source_sha256": DEFAULTS["ffmpeg_versions"][VERSION]["sha256"],
        "configure_flags": DEFAULTS["ffmpeg_configure_flags"] + DEFAULTS["ffmpeg_extra_configure_flags"],
        "os": os_release(),
        "arch": platform.machine(),
    }


def fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


NODE_FP = fingerprint(node_inputs())
ARTIFACT = f"ffmpeg-{VERSION}-{os_release()}-{platform.machine()}-{NODE_FP}.tar.gz"


def make_artifact(path: Path, entries: dict[str, int]) -> str:
    """A gzip tarball of the prefix: bin/ffmpeg (a real dynamic executable) plus `entries` (name: mode).

    Entries are owned by uid 1234, as an archive from elsewhere would be. Returns its sha256.
    """
    binary = Path(shutil.which("true") or "/bin/true").read_bytes()
    with tarfile.open(path, "w:gz") as tar:
        for name, mode, data in [(".", 0o755, None), ("bin", 0o755, None), ("lib", 0o755, None),
                                 ("bin/ffmpeg", 0o755, binary), *((n, m, b"x\n") for n, m in entries.items())]:
            info = tarfile.TarInfo(name if name == "." else f"./{name}")
            info.uid = info.gid = 1234
            info.mode = mode
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_record(cache: Path, sha256: str, inputs: Any, fp: str = NODE_FP) -> None:
    record = {"artifact": ARTIFACT, "sha256": sha256, "fingerprint": fp, "inputs": inputs,
              "prefix": f"/x/{VERSION}", "built_on": "builder-01"}
    (cache / f"{ARTIFACT}.json").write_text(json.dumps(record))


def snapshot(root: Path) -> list[tuple[str, int, int, str]]:
    """(path, mode, uid, link target or content sha256) of everything under root."""
    found = []
    for path in sorted(root.rglob("*")):
        st = path.lstat()
        what = os.readlink(path) if path.is_symlink() else (
            hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "")
        found.append((str(path.relative_to(root)), st.st_mode, st.st_uid, what))
    return found


def run_install(work: Path) -> tuple[int, str]:
    """fingerprint.yml then install.yml of the role on localhost, with the temp dirs of `work`."""
    play = [{
        "hosts": "localhost", "gather_facts": True, "gather_subset": ["min"],
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "tasks": [
            {"ansible.builtin.include_role": {"name": "xpulab.gpu.ffmpeg", "tasks_from": "fingerprint"}},
            {"ansible.builtin.set_fact": {"ffmpeg_builders": {}}},
            {"ansible.builtin.include_role": {"name": "xpulab.gpu.ffmpeg", "tasks_from": "install"}},
        ],
    }]
    (work / "play.yml").write_text(json.dumps(play))
    (work / "vars.json").write_text(json.dumps({
        "ffmpeg_install_root": str(work / "opt"), "ffmpeg_node_artifact_dir": str(work / "node-artifacts"),
        "ffmpeg_artifact_cache_dir": str(work / "cache")}))
    proc = subprocess.run(
        [str(Path(sys.executable).with_name("ansible-playbook")), "-i", "localhost,", "-e", f"@{work / 'vars.json'}",
         str(work / "play.yml")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "ANSIBLE_NOCOLOR": "1",
             "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"})
    return proc.returncode, proc.stdout + proc.stderr


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A controller cache and an install root holding the current release (another fingerprint)."""
    (tmp_path / "cache").mkdir()
    old = tmp_path / "opt" / ".releases" / f"{VERSION}-0123456789abcdef"
    (old / "bin").mkdir(parents=True)
    (old / "bin" / "ffmpeg").write_text("the installed ffmpeg\n")
    (old / "xpulab-release.json").write_text("{}\n")
    (tmp_path / "opt" / VERSION).symlink_to(f".releases/{VERSION}-0123456789abcdef")
    (tmp_path / "opt" / "current").symlink_to(VERSION)
    return tmp_path


def test_clean_artifact_is_installed_root_owned_with_reset_modes(work: Path) -> None:
    sha = make_artifact(work / "cache" / ARTIFACT, {"lib/private.so": 0o700, "share/group.txt": 0o664})
    write_record(work / "cache", sha, node_inputs())
    rc, out = run_install(work)
    assert rc == 0, out[-4000:]
    release = work / "opt" / ".releases" / f"{VERSION}-{NODE_FP}"
    modes = {str(p.relative_to(release)): (p.stat().st_mode & 0o7777, p.stat().st_uid) for p in release.rglob("*")}
    assert modes["bin/ffmpeg"] == (0o755, 0)
    assert modes["lib/private.so"] == (0o755, 0)
    assert modes["share/group.txt"] == (0o644, 0)
    assert (release.stat().st_mode & 0o7777, release.stat().st_uid) == (0o755, 0)
    assert json.loads((release / "xpulab-release.json").read_text())["fingerprint"] == NODE_FP
    listing = json.loads((release / "xpulab-manifest.json").read_text())
    assert {"bin/ffmpeg", "lib/private.so", "xpulab-release.json"} <= set(listing["files"])
    assert listing["files"]["lib/private.so"]["mode"] == "0755"
    assert not Path(f"{release}.partial").exists()


def test_fresh_node_gets_directories_others_can_reach(work: Path) -> None:
    """On a node without /opt/ffmpeg the directories above the release are 0755 (the decode user loads the libraries)."""
    shutil.rmtree(work / "opt")
    sha = make_artifact(work / "cache" / ARTIFACT, {})
    write_record(work / "cache", sha, node_inputs())
    rc, out = run_install(work)
    assert rc == 0, out[-4000:]
    for directory in (work / "opt", work / "opt" / ".releases", work / "opt" / ".releases" / f"{VERSION}-{NODE_FP}"):
        assert directory.stat().st_mode & 0o777 == 0o755, directory


@pytest.mark.parametrize("entries", [
    {"bin/ffprobe": 0o4755},
    {"lib/libevil.so": 0o2755, "share/ffmpeg/open.txt": 0o666},
])
def test_artifact_with_setuid_setgid_or_world_writable_entries_is_refused(work: Path, entries: dict[str, int]) -> None:
    sha = make_artifact(work / "cache" / ARTIFACT, entries)
    write_record(work / "cache", sha, node_inputs())
    before = snapshot(work / "opt")
    rc, out = run_install(work)
    assert rc != 0
    assert f"Refused FFmpeg artifact {ARTIFACT}: it has setuid, setgid" in out, out[-4000:]
    for name in entries:
        assert f" {name}" in out.split("special entries:", 1)[1].split(". The staging")[0]
    assert "the installed FFmpeg releases were not changed" in out
    assert snapshot(work / "opt") == before
    assert not (work / "node-artifacts" / ARTIFACT).exists()


@pytest.mark.parametrize(("change", "fields"), [
    ({"configure_flags": [*node_inputs()["configure_flags"], "--enable-gpl"]}, ["configure_flags"]),
    ({"source_sha256": "0" * 64, "arch": "aarch64"}, ["arch", "source_sha256"]),
    (None, sorted(node_inputs())),
])
def test_record_whose_inputs_do_not_match_the_node_is_refused(
        work: Path, change: dict[str, Any] | None, fields: list[str]) -> None:
    sha = make_artifact(work / "cache" / ARTIFACT, {})
    # The record claims this node's fingerprint, but its inputs are another build's (or missing).
    write_record(work / "cache", sha, None if change is None else {**node_inputs(), **change})
    before = snapshot(work / "opt")
    rc, out = run_install(work)
    assert rc != 0
    assert f"Refused FFmpeg artifact {ARTIFACT}: its record" in out, out[-4000:]
    named = out.split("Differing inputs: ", 1)[1].split(" The record's inputs give")[0]
    assert [f for f in sorted(node_inputs()) if f"{f} (record" in named] == fields
    assert "Nothing on the node was changed" in out
    assert snapshot(work / "opt") == before
    assert not (work / "node-artifacts").exists()
